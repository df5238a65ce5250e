# SPDX-License-Identifier: GPL-2.0-only
#
# vfio_iommu_dirty - top-level make targets.
#
#   make            build the module (W=1) against KDIR
#   make sparse     run sparse (C=2) over the module; fails on any report
#   make checkpatch checkpatch --strict over the project's C files
#   make selftests  build the kselftest programs
#   make check      everything above, then the selftests in a QEMU guest;
#                   ends with "N passed, N failed"; KVER=6.1 for Linux 6.1,
#                   ARCH=arm64 [PAGES=16k] for arm64 with an SMMUv3
#   make check-debug the selftests on a debug kernel (KASAN, lockdep,
#                   kmemleak, fault injection), built once and cached
#                   outside the clone; ends with "N passed, N failed"
#   make demo       QEMU migrates a VM through this module while its device
#                   writes; the dirty pages of each sync, drawn
#   make bench      this module against in-tree type1, in one guest boot
#   make mutants    one-line bugs put into the module, the suite run on each
#                   in the guest; prints the survivors (slow; ONLY=id,...)
#   make install    modules_install into updates/ and depmod (uninstall)
#   make install-check  make install and DKMS in scratch trees, checked
#
# KDIR defaults to the newest installed Debian 6.12 headers; the running
# kernel's headers are never picked silently, since the build host usually
# runs some other kernel.

ifneq ($(KERNELRELEASE),)
include $(src)/Kbuild
else

SHELL := /bin/bash
PWD_ := $(CURDIR)
BUILD := $(PWD_)/build

# KVER: a kernel release, or a series (6.12, 6.1) meaning the newest
# release of it with headers installed. Default: 6.12. The series is
# resolved here, when make reads this file, which on a fresh machine is
# before "deps" has installed any headers; KVER_SERIES keeps what was
# asked for so that the targets needing deps can have it resolved again
# by a second make once the headers are there (DEPS_TARGETS below).
KVER ?= 6.12
ifeq ($(words $(subst ., ,$(KVER))),2)
KVER_SERIES := $(KVER)
override KVER := $(shell ls -d /lib/modules/$(KVER).*/build 2>/dev/null | \
		sed 's|/lib/modules/||; s|/build||' | sort -V | tail -n1)
endif
export KVER
KDIR ?= /lib/modules/$(KVER)/build

# make ... ARCH=arm64 [PAGES=16k]: Debian's arm64 kernel instead.
ifeq ($(ARCH),arm64)
include $(CURDIR)/scripts/arm64.mk
endif

MODULE := vfio-iommu-dirty.ko
SRCS := $(wildcard $(PWD_)/*.c $(PWD_)/*.h) \
	$(wildcard $(PWD_)/include/uapi/linux/*.h)

.PHONY: all modules deps kdir-check sparse checkpatch selftests payload \
	check check-debug demo bench bench-quick clean help install uninstall \
	print-kver install-check mutants

all: modules

deps:
	@$(PWD_)/scripts/install-deps.sh

kdir-check:
	@if [ ! -e "$(KDIR)/Makefile" ]; then \
		echo "error: no kernel build tree at '$(KDIR)'." >&2; \
		echo "  Run 'make deps$(if $(ARM64_LANE), ARCH=arm64 PAGES=$(PAGES))' for the Debian 6.12 headers, or pass KDIR=/path/to/build." >&2; \
		exit 1; \
	fi

modules: kdir-check
	$(MAKE) -C $(KDIR) M=$(PWD_) W=1 modules

sparse: kdir-check
	@$(PWD_)/scripts/sparse.sh $(KDIR)

checkpatch:
	@$(PWD_)/scripts/checkpatch.sh

selftests:
	@$(PWD_)/scripts/ksft-headers.sh $(BUILD)/ksft
	$(MAKE) -C $(PWD_)/tools/testing/selftests/vfio_iommu_dirty \
		KSFT_INC=$(BUILD)/ksft OUT=$(BUILD)/payload/selftests KDIR=$(KDIR)

# What the guest gets under /opt/vid.
payload: modules selftests
	@mkdir -p $(BUILD)/payload
	@cp $(PWD_)/$(MODULE) $(BUILD)/payload/

# The targets that need Debian's packages. This make has resolved KVER
# (and with it KDIR, and the KVER every script and make below gets from
# the environment) before deps ran: on a machine without the headers, to
# nothing. So deps runs first, then a second make reads this file again,
# resolves KVER from the series asked for and does the work. That make
# and every make under it see VID_DEPS_DONE=1 (in MAKEFLAGS) and go
# straight to the work; "make check VID_DEPS_DONE=1" skips deps.
DEPS_TARGETS := check check-debug demo bench bench-quick install-check \
	mutants

ifeq ($(VID_DEPS_DONE),)
$(DEPS_TARGETS): deps
	@$(MAKE) --no-print-directory VID_DEPS_DONE=1 \
		KVER=$(or $(KVER_SERIES),$(KVER)) $@
else
check:
	@$(PWD_)/scripts/check.sh

check-debug:
	@$(PWD_)/scripts/check.sh --debug

demo:
	@$(PWD_)/scripts/demo.sh

bench:
	@$(PWD_)/scripts/bench.sh

bench-quick:
	@$(PWD_)/scripts/bench.sh --quick

install-check:
	@$(PWD_)/scripts/install-check.sh

mutants:
	@$(PWD_)/scripts/mutants.sh $(if $(ONLY),--only $(ONLY))
endif

# INSTALL_MOD_PATH (a staging root) is passed through to kbuild.
install: modules
	$(MAKE) -C $(KDIR) M=$(PWD_) INSTALL_MOD_DIR=updates modules_install
	depmod -a $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) $(KVER)

uninstall:
	rm -f $(INSTALL_MOD_PATH)/lib/modules/$(KVER)/updates/vfio-iommu-dirty.ko*
	depmod -a $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) $(KVER)

clean:
	-$(MAKE) -C $(KDIR) M=$(PWD_) clean 2>/dev/null
	-$(MAKE) -C $(PWD_)/tools/testing/selftests/vfio_iommu_dirty \
		OUT=$(BUILD)/payload/selftests clean 2>/dev/null
	rm -rf $(BUILD)

# The kernel release the build uses (for scripts).
print-kver:
	@echo $(KVER)

help:
	@sed -n '3,/^$$/p' $(PWD_)/Makefile | sed '$$d; s/^# \{0,1\}//'

endif

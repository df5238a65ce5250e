# SPDX-License-Identifier: GPL-2.0-only
#
# make ... ARCH=arm64 [PAGES=16k]: the module, the selftests and vid-emu
# cross-built for Debian's arm64 kernel (PAGES=16k: its 16 KiB-page
# flavour), against the headers scripts/arm64.sh unpacks ("make deps
# ARCH=arm64" fetches them; make check and the other targets that run
# deps do it first). Included by the top-level Makefile, which has set
# KVER and KDIR for the host's kernels by now: they are replaced here.
#
# Everything built for the lane goes under build/arm64 (build/arm64-16k),
# so that the x86 payload and logs are left alone. The module's objects
# share the source tree with the x86 build, as with KVER=6.1: kbuild
# rebuilds what was compiled for another target (see KCFLAGS below).

PAGES ?= 4k
ifeq ($(filter 4k 16k,$(PAGES)),)
$(error PAGES must be 4k or 16k, not '$(PAGES)')
endif
export PAGES

ARM64_LANE := arm64$(if $(filter 16k,$(PAGES)),-16k)

# From the cache alone; empty before "make deps" has fetched anything.
ARM64_ENV := $(shell $(PWD_)/scripts/arm64.sh env --pages $(PAGES) 2>/dev/null)
arm64_env = $(patsubst VID_ARM64_$(1)=%,%,$(filter VID_ARM64_$(1)=%,$(ARM64_ENV)))

override KVER := $(call arm64_env,KVER)
KDIR := $(or $(call arm64_env,KDIR),/arm64-headers-not-fetched)
BUILD := $(PWD_)/build/$(ARM64_LANE)

# kbuild rebuilds an object when its command changes, not when only the
# tree it was built against does, and the 4 KiB and 16 KiB headers give
# the same commands: a 16 KiB build after a 4 KiB one kept the 4 KiB
# objects. Naming the lane in the command makes every switch between
# the lanes, and to and from the x86 build, rebuild (module and vid-emu).
export KCFLAGS += -DVID_LANE_$(subst -,_,$(ARM64_LANE))

# The selftests Makefile takes the compiler from CROSS_COMPILE and links
# libkmod from the unpacked arm64 packages. (The kernel headers' own
# .kernelvariables set the cross compiler for kbuild.)
export CROSS_COMPILE := aarch64-linux-gnu-
export VID_SYSROOT := $(call arm64_env,SYSROOT)
export ARCH

# make ARCH=arm64: everything the guest runs, not just the module.
all: payload

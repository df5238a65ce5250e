#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The install paths, exercised in scratch trees so the host is not touched:
#  1. make install INSTALL_MOD_PATH=<scratch>: the module lands in
#     lib/modules/<kver>/updates/ and depmod knows it;
#  2. DKMS: add, build and install the package into scratch DKMS, source
#     and install trees.
# Each result is checked with modinfo: name, version (from dkms.conf),
# vermagic and the documented parameters.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KVER=${KVER:-$(make -s -C "$ROOT" --no-print-directory print-kver)}
VERSION=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$ROOT/dkms.conf")
NAME=vfio_iommu_dirty
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

fail() {
	echo "install-check: $*" >&2
	exit 1
}

# check_ko FILE: the module's identity and parameters.
check_ko() {
	local ko=$1 info

	[ -e "$ko" ] || fail "missing $ko"
	info=$(modinfo "$ko")
	grep -qx "name: *$NAME" <<<"$info" || fail "$ko: wrong name"
	grep -qx "version: *$VERSION" <<<"$info" || fail "$ko: wrong version"
	grep -q "^vermagic: *$KVER " <<<"$info" || fail "$ko: wrong vermagic"
	for p in allow_unsafe_interrupts disable_hugepages dma_entry_limit; do
		grep -q "^parm: *$p:" <<<"$info" || fail "$ko: no parameter $p"
	done
	echo "install-check: $ko: $NAME $VERSION for $KVER"
}

# 1. make install into a staging root.
make -s -C "$ROOT" install INSTALL_MOD_PATH="$SCRATCH/root" \
	>"$SCRATCH/install.log" 2>&1 || { cat "$SCRATCH/install.log"; fail "make install"; }
check_ko "$(ls "$SCRATCH"/root/lib/modules/"$KVER"/updates/vfio-iommu-dirty.ko*)"
grep -q "updates/vfio-iommu-dirty.ko" \
	"$SCRATCH/root/lib/modules/$KVER/modules.dep" ||
	fail "depmod did not index the module"
make -s -C "$ROOT" uninstall INSTALL_MOD_PATH="$SCRATCH/root" \
	>>"$SCRATCH/install.log" 2>&1 || { cat "$SCRATCH/install.log"; fail "make uninstall"; }
! ls "$SCRATCH"/root/lib/modules/"$KVER"/updates/vfio-iommu-dirty.ko* \
	2>/dev/null || fail "uninstall left the module"

# 2. DKMS, from the sources git knows (all of them in a fresh clone).
src="$SCRATCH/src/$NAME-$VERSION"
mkdir -p "$src" "$SCRATCH/dkms" "$SCRATCH/install/$KVER"
(cd "$ROOT" && git ls-files -z -co --exclude-standard | xargs -0 tar -c) | tar -x -C "$src"
trees=(--sourcetree "$SCRATCH/src" --dkmstree "$SCRATCH/dkms"
       --installtree "$SCRATCH/install")
# The arm64 lanes' headers are unpacked, not in /lib/modules/<kver>/build;
# their .kernelvariables make DKMS's plain make a cross build.
if [ "${ARCH:-}" = arm64 ]; then
	trees+=(--kernelsourcedir "$("$ROOT/scripts/arm64.sh" env |
				     sed -n 's/^VID_ARM64_KDIR=//p')")
fi
dkms add -m "$NAME" -v "$VERSION" "${trees[@]}" >/dev/null
dkms build -m "$NAME" -v "$VERSION" -k "$KVER" "${trees[@]}" >/dev/null
dkms install -m "$NAME" -v "$VERSION" -k "$KVER" "${trees[@]}" \
	--no-depmod >/dev/null
check_ko "$(find "$SCRATCH/install/$KVER" -name 'vfio-iommu-dirty.ko*')"
echo "install-check: make install, uninstall and DKMS work"

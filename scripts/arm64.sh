#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The arm64 lane's packages (make ... ARCH=arm64 [PAGES=16k]): Debian's
# arm64 kernel, headers, busybox and the libraries the selftests link,
# taken from Debian's archive for the foreign architecture arm64.
#
# usage: scripts/arm64.sh fetch [--pages 4k|16k]
#        scripts/arm64.sh env [--pages 4k|16k]
#
# The arm64 headers package cannot be installed beside the amd64
# toolchain (its binutils:arm64 dependency conflicts), so nothing of
# arm64 is installed: the packages are downloaded and unpacked
# (apt-get download, dpkg-deb -x) into a cache shared by every clone:
#
#   $VID_ARM64_CACHE (default /var/cache/vfio_iommu_dirty/arm64, or
#   ~/.cache/vfio_iommu_dirty/arm64 for a user who cannot write there)
#     <release>/root/      kernel image, modules (depmod run), headers
#     <release>/version    the package version unpacked there
#     userland/root/       busybox-static, libkmod and its libraries
#     userland/version     their package versions
#
# <release> is the kernel release, 6.12.117+deb12-arm64 or, with --pages
# 16k, 6.12.117+deb12-arm64-16k: Debian's kernel with 16 KiB pages.
# The headers tree uses the host's (architecture-independent)
# linux-headers-<base>-common and its amd64 linux-kbuild-<base> (Multi-Arch:
# foreign); its .kernelvariables set ARCH=arm64 and the cross compiler.
#
# fetch (scripts/install-deps.sh runs it when ARCH=arm64) installs the
# amd64 tools (cross compiler, qemu-system-aarch64, the headers' common
# part and kbuild), enables the arm64 architecture in dpkg, and
# downloads and unpacks what the cache lacks: apt's current kernel of the
# flavour, and the userland. Like install-deps.sh it upgrades nothing
# that is there, prints nothing when nothing is missing, and then asks
# apt nothing (each apt-cache call costs seconds).
#
# env prints, from the cache alone (no network), the lines
#   VID_ARM64_KVER=<kernel release>
#   VID_ARM64_KDIR=<headers tree, for M= builds>
#   VID_ARM64_KERNEL=<kernel image for qemu-system-aarch64 -kernel>
#   VID_ARM64_MODDIR=<.../lib/modules/<release>, with modules.dep>
#   VID_ARM64_SYSROOT=<unpacked userland: busybox, libraries, headers>
# and fails (exit 1) when the cache does not have them yet.
set -euo pipefail

# The kernel series of the lane; the meta packages linux-image-<series>-<flavour>
# name the release.
SERIES=6.12
HOST_PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm binutils)
# libkmod2 and what it links, for the selftests (-lkmod); libc6 for the
# dynamic loader and libc the guest runs them with.
USER_PKGS=(busybox-static libkmod2 libkmod-dev liblzma5 libssl3 libzstd1 libc6)

if [ -n "${VID_ARM64_CACHE:-}" ]; then
	CACHE=$VID_ARM64_CACHE
elif [ -w /var/cache/vfio_iommu_dirty ] ||
     { [ ! -e /var/cache/vfio_iommu_dirty ] && [ -w /var/cache ]; }; then
	CACHE=/var/cache/vfio_iommu_dirty/arm64
else
	CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/vfio_iommu_dirty/arm64
fi

msg() { echo "arm64: $*" >&2; }
die() { msg "error: $*"; exit 1; }

usage() {
	sed -n '8,9p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

cmd=${1:-}
[ $# -gt 0 ] && shift
pages=${PAGES:-4k}
while [ $# -gt 0 ]; do
	case $1 in
	--pages) [ $# -ge 2 ] || usage; pages=$2; shift 2 ;;
	*) usage ;;
	esac
done
case $pages in
4k) flavour=arm64 ;;
16k) flavour=arm64-16k ;;
*) die "PAGES must be 4k or 16k, not '$pages'" ;;
esac

# ---------------------------------------------------------------- env

# cached_release: the newest release of the flavour the cache holds whole.
cached_release() {
	local d rel base

	for d in "$CACHE"/"$SERIES".*-"$flavour"/version; do
		[ -e "$d" ] || continue
		rel=${d%/version}
		rel=${rel##*/}
		base=${rel%-"$flavour"}
		# The arm64 flavour's glob also matches 6.12.117+deb12-arm64-16k.
		[[ $base == *-* ]] || echo "$rel"
	done | sort -V | tail -n 1
}

print_env() {
	local rel root hint="make deps ARCH=arm64 PAGES=$pages"

	rel=$(cached_release)
	[ -n "$rel" ] || die "no $flavour kernel in $CACHE ($hint)"
	[ -e "$CACHE/userland/version" ] || die "no arm64 userland in $CACHE ($hint)"
	root=$CACHE/$rel/root
	echo "VID_ARM64_KVER=$rel"
	echo "VID_ARM64_KDIR=$root/usr/src/linux-headers-$rel"
	echo "VID_ARM64_KERNEL=$root/boot/vmlinuz-$rel"
	echo "VID_ARM64_MODDIR=$root/lib/modules/$rel"
	echo "VID_ARM64_SYSROOT=$CACHE/userland/root"
}

# ---------------------------------------------------------------- fetch

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# candidates PKG...: "PKG=VERSION" per package, VERSION what apt would
# take (empty if it knows none). One apt-cache call: each costs seconds.
candidates() {
	apt-cache policy "$@" 2>/dev/null | awk '
		/^[^ ].*:$/ { p = $0; sub(/:$/, "", p); sub(/:arm64$/, "", p); next }
		/^ *Candidate:/ { v = $2; if (v == "(none)") v = ""; print p "=" v }'
}

apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_root() {
	[ "$(id -u)" -eq 0 ] || die "need root to $*"
}

# The arm64 package lists: once, when dpkg does not know the architecture
# yet or apt has no list for it.
enable_arm64() {
	local meta=linux-image-$SERIES-$flavour:arm64

	if dpkg --print-foreign-architectures | grep -qx arm64 &&
	   apt-cache show "$meta" >/dev/null 2>&1; then
		return 0
	fi
	need_root "add the arm64 architecture"
	msg "enabling Debian's arm64 packages (dpkg --add-architecture arm64)"
	dpkg --add-architecture arm64
	apt-get update -qq >/dev/null
	apt-cache show "$meta" >/dev/null 2>&1 || die "apt knows no $meta"
}

# release_of: the kernel release the flavour's meta package depends on.
release_of() {
	apt-cache depends "linux-image-$SERIES-$flavour:arm64" 2>/dev/null |
		sed -n "s/^ *Depends: linux-image-\($SERIES\.[^:]*-$flavour\)\(:arm64\)\{0,1\}$/\1/p" |
		head -n 1
}

# unpack DIR PKG...: download the arm64 packages and unpack them into
# DIR/root, in a scratch directory renamed to DIR once complete, so that
# an interrupted fetch never leaves a tree that looks whole.
unpack() {
	local dir=$1 tmp deb
	shift

	mkdir -p "$CACHE"
	tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
	# apt drops privileges to _apt for downloads: let it write there.
	chmod 755 "$tmp"
	mkdir "$tmp/debs"
	if id _apt >/dev/null 2>&1; then
		chown _apt "$tmp/debs"
	fi
	(cd "$tmp/debs" && apt-get download -qq "${@/%/:arm64}" >/dev/null) ||
		{ rm -rf "$tmp"; die "apt-get download $* failed"; }
	for deb in "$tmp"/debs/*.deb; do
		dpkg-deb -x "$deb" "$tmp/root"
	done
	rm -rf "$tmp/debs"
	UNPACKED=$tmp
	UNPACK_DIR=$dir
}

# commit VERSION: the unpacked tree becomes UNPACK_DIR.
commit() {
	echo "$1" >"$UNPACKED/version"
	rm -rf "$UNPACK_DIR"
	mv "$UNPACKED" "$UNPACK_DIR"
}

# fetch_kernel RELEASE VERSION
fetch_kernel() {
	local rel=$1 ver=$2 base=${1%-"$flavour"} dir=$CACHE/$1 root

	[ "$(cat "$dir/version" 2>/dev/null)" = "$ver" ] && return 0
	need_root "unpack the arm64 kernel into $CACHE"
	msg "downloading Debian's $rel kernel and headers (about 100 MB)"
	unpack "$dir" "linux-image-$rel" "linux-headers-$rel"
	root=$UNPACKED/root
	# The headers' "scripts" link is relative: ../../lib/linux-kbuild-<base>.
	mkdir -p "$root/usr/lib"
	ln -sfn "/usr/lib/linux-kbuild-$base" "$root/usr/lib/linux-kbuild-$base"
	# Debian's package leaves modules.dep to its postinst.
	depmod -b "$root" "$rel" || die "depmod for $rel failed"
	commit "$ver"
}

# fetch_userland VERSIONS: the packages' "PKG=VERSION" lines.
fetch_userland() {
	local dir=$CACHE/userland want=$1

	[ "$(cat "$dir/version" 2>/dev/null)" = "$want" ] && return 0
	need_root "unpack the arm64 userland into $CACHE"
	msg "downloading arm64 busybox and libraries"
	unpack "$dir" "${USER_PKGS[@]}"
	commit "$want"
}

# host_missing BASE: the amd64 packages not installed, for headers of the
# kernel base release BASE (6.12.117+deb12).
host_missing() {
	local p

	for p in "${HOST_PKGS[@]}" "linux-headers-$1-common" "linux-kbuild-$1"; do
		installed "$p" || echo "$p"
	done
}

fetch() {
	local rel base missing=() vers

	# Everything there: no apt call.
	rel=$(cached_release)
	if [ -n "$rel" ] && [ -e "$CACHE/userland/version" ] &&
	   [ -z "$(host_missing "${rel%-"$flavour"}")" ]; then
		return 0
	fi
	enable_arm64
	rel=$(release_of)
	[ -n "$rel" ] || die "cannot tell the release of linux-image-$SERIES-$flavour:arm64"
	base=${rel%-"$flavour"}
	mapfile -t missing < <(host_missing "$base")
	if [ ${#missing[@]} -gt 0 ]; then
		need_root "install ${missing[*]}"
		msg "installing ${missing[*]}"
		apt_install "${missing[@]}"
	fi
	vers=$(candidates "linux-image-$rel:arm64" "${USER_PKGS[@]/%/:arm64}")
	fetch_kernel "$rel" "$(sed -n 's/^linux-image-[^=]*=//p' <<<"$vers")"
	fetch_userland "$(grep -v '^linux-image-' <<<"$vers")"
}

case $cmd in
fetch) fetch ;;
env) print_env ;;
*) usage ;;
esac

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Build, once, the debug kernel of `make check-debug` and say where it is.
#
# usage: scripts/debug-kernel.sh [--jobs N] [--cached-only]
#
# The kernel is Debian's linux-source-6.12 configured with x86_64_defconfig,
# kernel/configs/kvm_guest.config and scripts/debug-kernel.config (KASAN,
# lockdep, kmemleak, fault injection, ...). It is built outside the clone,
# in a cache shared by every clone on the machine:
#
#   $VID_DEBUG_CACHE (default /var/cache/vfio_iommu_dirty/debug-kernel, or
#   ~/.cache/vfio_iommu_dirty/debug-kernel for a user who cannot write there)
#     src-<source package version>/   the extracted source (read-only use)
#     <key>/obj/                      the build tree: KDIR for M= builds
#     <key>/vmlinuz                   the image
#     <key>/root/lib/modules/<ver>/   its modules (modules_install)
#     <key>/build.log, build-seconds  how the build went and how long it took
#
# <key> is a hash of the config fragment, the source package version, the
# compiler version and RECIPE below, so editing any of them gives a fresh
# build and never a stale one. An interrupted build resumes where it
# stopped; two runs for the same key wait for each other.
#
# On success, stdout carries exactly these lines (progress goes to stderr):
#   VID_DEBUG_KVER=<kernel release>
#   VID_DEBUG_KERNEL=<image>
#   VID_DEBUG_MODDIR=<module tree, i.e. .../lib/modules/<kernel release>>
#   VID_DEBUG_KDIR=<build tree for out-of-tree modules>
#
# --cached-only prints them if the kernel is already built and fails (exit
# 1) otherwise. --jobs N sets make's -j (default 2; VID_DEBUG_JOBS too).
# The compiler runs under "nice -n 19": the machine is shared.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FRAGMENT=$SCRIPT_DIR/debug-kernel.config
TARBALL=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
SRCPKG=linux-source-6.12
if [ -n "${VID_DEBUG_CACHE:-}" ]; then
	CACHE=$VID_DEBUG_CACHE
elif [ -w /var/cache/vfio_iommu_dirty ] ||
     { [ ! -e /var/cache/vfio_iommu_dirty ] && [ -w /var/cache ]; }; then
	CACHE=/var/cache/vfio_iommu_dirty/debug-kernel
else
	CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/vfio_iommu_dirty/debug-kernel
fi
# Bump when the way the kernel is configured or installed changes.
RECIPE="defconfig+kvm_guest+fragment;bzImage+modules;v1"

msg() { echo "debug-kernel: $*" >&2; }
die() { msg "error: $*"; exit 1; }

jobs=${VID_DEBUG_JOBS:-2}
cached_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--jobs)
		[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a positive number"
		jobs=$2
		shift 2
		;;
	--cached-only) cached_only=1; shift ;;
	-h|--help) sed -n '4,32p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
	*) die "unknown argument: $1" ;;
	esac
done

[ -r "$FRAGMENT" ] || die "$FRAGMENT not found"
[ -r "$TARBALL" ] || die "$TARBALL not found (apt-get install $SRCPKG)"

# The source's identity: the package version when dpkg knows the tarball,
# else its size and modification time.
srcver=$(dpkg-query -W -f='${Version}' "$SRCPKG" 2>/dev/null || true)
[ -n "$srcver" ] || srcver=$(stat -c 'tarball-%s-%Y' "$TARBALL")
ccver=$(${CC:-gcc} --version 2>/dev/null | head -n 1) || die "no C compiler"

key=$({
	printf 'recipe %s\nsource %s\ncompiler %s\n' "$RECIPE" "$srcver" "$ccver"
	cat "$FRAGMENT"
} | sha256sum | cut -c1-16)

src=$CACHE/src-${srcver//[^A-Za-z0-9._-]/_}
out=$CACHE/$key
obj=$out/obj

# print_env: the four lines of the contract above, from a finished build.
print_env() {
	local kver
	kver=$(cat "$out/kernelrelease")
	echo "VID_DEBUG_KVER=$kver"
	echo "VID_DEBUG_KERNEL=$out/vmlinuz"
	echo "VID_DEBUG_MODDIR=$out/root/lib/modules/$kver"
	echo "VID_DEBUG_KDIR=$obj"
}

if [ -e "$out/.done" ]; then
	print_env
	exit 0
fi
if [ "$cached_only" = 1 ]; then
	msg "not built yet (key $key, cache $CACHE)"
	exit 1
fi

for tool in make flex bison bc xz tar depmod; do
	command -v "$tool" >/dev/null ||
		die "$tool not found; run scripts/install-deps.sh"
done
[ -e /usr/include/libelf.h ] || die "libelf headers missing (libelf-dev)"
[ -e /usr/include/openssl/ssl.h ] || die "OpenSSL headers missing (libssl-dev)"

mkdir -p "$CACHE"
exec 8>"$CACHE/$key.lock"
if ! flock -n 8; then
	msg "waiting for another build of $key"
	flock 8
fi
# The other run may have finished it meanwhile.
if [ -e "$out/.done" ]; then
	print_env
	exit 0
fi

t_start=$(date +%s)
mkdir -p "$out"
log=$out/build.log
# From here on everything also goes to the build log; on failure its end is
# shown.
on_exit() {
	local rc=$?
	[ "$rc" -eq 0 ] && return 0
	msg "FAILED (key $key); last lines of $log:"
	tail -n 40 "$log" | sed 's/^/   /' >&2
	return "$rc"
}
trap on_exit EXIT

# ---------------------------------------------------------------- source

(
	exec 7>"$src.lock"
	flock 7
	if [ ! -e "$src/.extracted" ]; then
		msg "extracting $TARBALL into $src"
		rm -rf "$src.tmp"
		mkdir -p "$src.tmp"
		tar -C "$src.tmp" -xJf "$TARBALL" --strip-components=1
		rm -rf "$src"
		mv "$src.tmp" "$src"
		touch "$src/.extracted"
	fi
)
# A build in the source tree itself would break every O= build from it.
[ ! -e "$src/.config" ] || die "$src has a .config; it must stay pristine"

# kmake ARGS...: make in the build tree, niced, output to the log.
kmake() {
	nice -n 19 make -C "$src" O="$obj" ARCH=x86_64 "$@" >>"$log" 2>&1
}

# ---------------------------------------------------------------- config

# check_config: every line of the fragment must hold in the final .config.
# "# CONFIG_X is not set" holds when CONFIG_X has no value at all.
check_config() {
	local line name bad=0
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*)
			if ! grep -qxF -- "$line" "$obj/.config"; then
				msg "config: wanted $line, got:" \
					"$(grep -E "^(# )?${line%%=*}[= ]" "$obj/.config" || echo unset)"
				bad=1
			fi
			;;
		"# CONFIG_"*" is not set")
			name=${line#\# }
			name=${name%% *}
			if grep -qE "^$name=" "$obj/.config"; then
				msg "config: wanted $name off, got:" \
					"$(grep -E "^$name=" "$obj/.config")"
				bad=1
			fi
			;;
		esac
	done <"$FRAGMENT"
	return "$bad"
}

if [ ! -e "$out/.configured" ]; then
	msg "configuring (key $key) in $obj"
	: >"$log"
	mkdir -p "$obj"
	kmake x86_64_defconfig
	# merge_config.sh -m only merges (later files win); olddefconfig then
	# fills in everything the fragments do not mention.
	(cd "$obj" && "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" \
		"$obj/.config" "$src/kernel/configs/kvm_guest.config" \
		"$FRAGMENT") >>"$log" 2>&1
	kmake olddefconfig
	check_config || die "the config fragment does not hold (see above)"
	touch "$out/.configured"
fi

# ---------------------------------------------------------------- build

msg "building in $obj with -j$jobs under nice (log: $log)"
msg "a first build takes a while; see README.md, 'Debug lane'"
t_build=$(date +%s)
kmake -j"$jobs" bzImage modules
t_built=$(date +%s)

kver=$(make -s -C "$src" O="$obj" ARCH=x86_64 kernelrelease 2>>"$log" | tail -n 1)
[ -n "$kver" ] || die "cannot tell the kernel release"

# Install into the cache only: never into /boot or /lib/modules.
rm -rf "$out/root"
kmake INSTALL_MOD_PATH="$out/root" modules_install
cp "$obj/arch/x86/boot/bzImage" "$out/vmlinuz"
echo "$kver" >"$out/kernelrelease"
[ -f "$out/root/lib/modules/$kver/modules.dep" ] ||
	die "modules_install left no modules.dep"

t_end=$(date +%s)
# CPU time of everything this script ran (user and system, children),
# which is what the build costs on an otherwise idle machine.
cpu=$(times | tail -n 1 | awk '{
	n = split($1 " " $2, t, " ")
	for (i = 1; i <= n; i++) {
		split(t[i], ms, "m")
		s += ms[1] * 60 + ms[2]
	}
	printf "%d", s
}')
{
	echo "total $((t_end - t_start))"
	echo "compile $((t_built - t_build))"
	echo "cpu $cpu"
	echo "jobs $jobs"
	echo "cpus $(nproc)"
	echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$out/build-seconds"
touch "$out/.done"
msg "kernel $kver built in $(((t_end - t_start) / 60)) min $(((t_end - t_start) % 60)) s" \
	"(compile $((t_built - t_build)) s, -j$jobs on $(nproc) CPUs, $cpu CPU-seconds)"
print_env

# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034  # its settings are read by guest-run.sh
#
# guest-run.sh --arch arm64: the arm64 test guest. Sourced by
# scripts/guest-run.sh after its arguments are read; it replaces the
# machine-dependent settings and functions guest-run.sh defines.
#
# Debian's arm64 kernel (PAGES=16k in the environment: its 16 KiB-page
# flavour) and busybox come from scripts/arm64.sh's cache unless --kernel
# and --moddir name others. QEMU's virt machine with an emulated SMMUv3
# and a GICv3, edu behind the SMMU, TCG on every host (the host is not
# arm64).

QEMU_BIN=qemu-system-aarch64
# Debian's arm64 kernel has no mdev module (CONFIG_VFIO_MDEV is off: no
# arm64 driver selects it); the module and vid-emu do not need it.
GUEST_MODULES=("${GUEST_MODULES[@]/#mdev/}")
# The virt machine's PL011 carries the kernel console.
KERNEL_ARGS="console=ttyAMA0"
# It has one UART: the command's output goes to a PCI serial port, which
# the arm64 kernel names ttyS0 (it has no legacy 8250 ports).
GUEST_OUT=/dev/ttyS0
# A fault the SMMU reports: "arm-smmu-v3 ...: event 0x10 received:".
IOMMU_FAULT='arm-smmu-v3.*event 0x[0-9a-f]+ received'

case ${VID_ACCEL:-tcg} in
tcg) VID_ACCEL=tcg ;;
*) die "--arch arm64 runs under TCG only (VID_ACCEL=$VID_ACCEL)" ;;
esac

arm64_env=$("$SCRIPT_DIR/arm64.sh" env) ||
	die "no arm64 kernel unpacked (make deps ARCH=arm64 PAGES=${PAGES:-4k})"
while IFS='=' read -r k v; do
	case $k in
	VID_ARM64_KERNEL|VID_ARM64_MODDIR|VID_ARM64_SYSROOT)
		printf -v "$k" '%s' "$v" ;;
	esac
done <<<"$arm64_env"
if [ -z "$kernel_opt" ] && [ -z "$moddir_opt" ]; then
	kernel_opt=$VID_ARM64_KERNEL
	moddir_opt=$VID_ARM64_MODDIR
fi
# The arm64 busybox cannot run here to list its applets; guest-run.sh has
# the host's (the same Debian version and configuration) list them.
GUEST_BUSYBOX=$VID_ARM64_SYSROOT/bin/busybox
ARM64_MULTIARCH=aarch64-linux-gnu

# gic-version=3: its ITS isolates MSIs, and VFIO_SET_IOMMU refuses a group
# without that isolation (EPERM) unless allow_unsafe_interrupts is set;
# the default GICv2 has none. pauth-impdef=on: QEMU's own pointer
# authentication algorithm, which the guest cannot tell from the
# architected one and TCG computes many times faster.
machine_args() {
	args+=(-machine "virt,iommu=smmuv3,gic-version=3"
	       -cpu "max,pauth-impdef=on"
	       -serial "file:$1"
	       -chardev "file,id=vidout,path=$2"
	       -device "pci-serial,chardev=vidout")
}

# arm64_lib NAME: the unpacked file of the shared library NAME.
arm64_lib() {
	local d

	for d in "$VID_ARM64_SYSROOT/lib/$ARM64_MULTIARCH" \
		 "$VID_ARM64_SYSROOT/usr/lib/$ARM64_MULTIARCH"; do
		if [ -e "$d/$1" ]; then
			echo "$d/$1"
			return 0
		fi
	done
	return 1
}

# elf_libs FILE: the libraries of an arm64 program, found by name in the
# unpacked packages (the host's ldd cannot read it), each with what they
# need in turn, all into /lib/<multiarch> of the guest; and the dynamic
# loader at the path the program asks for.
elf_libs() {
	local interp todo=("$1") seen=" " f name path

	interp=$(readelf -lW "$1" 2>/dev/null |
		 sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
	[ -n "$interp" ] || return 0
	path=$VID_ARM64_SYSROOT$interp
	[ -e "$path" ] || die "$1: no dynamic loader $interp in $VID_ARM64_SYSROOT"
	echo "$path $interp"
	while [ ${#todo[@]} -gt 0 ]; do
		f=${todo[0]}
		todo=("${todo[@]:1}")
		for name in $(readelf -dW "$f" 2>/dev/null |
			      sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
			case $seen in *" $name "*) continue ;; esac
			seen="$seen$name "
			path=$(arm64_lib "$name") ||
				die "$1: $name not in $VID_ARM64_SYSROOT"
			echo "$path /lib/$ARM64_MULTIARCH/$name"
			todo+=("$path")
		done
	done
}

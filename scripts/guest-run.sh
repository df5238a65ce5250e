#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run a shell command line inside a throw-away QEMU guest that boots the
# Debian 6.12 kernel with an emulated VT-d IOMMU and QEMU's "edu" PCI device
# bound to vfio-pci.
#
# usage: scripts/guest-run.sh [--kver VER] [--payload DIR] [--hostroot]
#                             [--timeout SEC] [--mem MB] [--smp N]
#                             [--workdir DIR] [--kernel IMAGE --moddir DIR]
#                             [--append ARGS] [--debug] [--arch arm64]
#                             -- 'shell command line'
#
# The command runs with "sh -c" in /opt/vid (where --payload DIR is copied)
# with VID_EDU_BDF, VID_EDU_GROUP (and VID_EDU_BDFS, VID_KVER, VID_HOSTROOT)
# in its environment.  The machine has two edu devices, each in its own
# group (VID_EDU_BDF is the first; domains_test uses both).  Its stdout
# and stderr are streamed live to our stdout; our own status lines go to
# stderr.  The kernel console is saved in
# WORKDIR/console.log and scanned for kernel problems after the guest stops.
#
# Exit status:
#   N     the command's exit status (kernel log clean, or command failed)
#   3     the command succeeded but the kernel log shows problems
#   124   timeout: the guest was killed
#   125   the guest never reported an exit status (panic, crash, QEMU error),
#         the runner could not set the guest up, or the guest's init could
#         not (its "@@VID-SETUP-FAILED problems=N@@" marker: a module that
#         did not load, no host root, edu not on vfio-pci, ...; the init
#         says what on "vid-init: set-up: ..." lines); the command still
#         ran, and its output is there, but it proves nothing
#   2     usage error
#
# Another kernel than Debian's (the debug kernel of scripts/debug-kernel.sh):
# --kernel IMAGE boots IMAGE and --moddir DIR takes its modules from DIR (a
# .../lib/modules/<release> tree with modules.dep); <release>, the last
# component of DIR, stands for --kver. --append adds kernel arguments.
#
# --debug is for a kernel with the debug options of scripts/debug-kernel.config:
# it boots with kmemleak=on, has the guest mark the boot's own kmemleak
# suspects as seen before the command and scan after it (any suspect is
# printed on the console and fails the run, as does a scan that did not
# happen), and also counts KASAN, lockdep, kmemleak, list-corruption and
# stall reports as kernel log problems.
#
# --arch arm64 boots Debian's arm64 kernel instead, with an emulated SMMUv3
# (scripts/guest/arch-arm64.sh says how; PAGES=16k in the environment picks
# its 16 KiB-page flavour), under TCG.
#
# Environment: VID_ACCEL=tcg|kvm forces the accelerator.  Otherwise a KVM
# probe boot decides once per kernel and the answer is cached in WORKDIR.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

# Modules the guest needs; modules.dep supplies their dependencies.
GUEST_MODULES=(vfio vfio_iommu_type1 vfio-pci mdev netfs 9pnet 9pnet_virtio 9p)
# Modules some kernels build in and others do not (Debian 6.1 has the
# virtio PCI transport as a module): taken when modules.dep has them.
OPTIONAL_MODULES=(virtio_pci)
KERNEL_LOG_PROBLEMS='BUG:|WARNING:|Oops|general protection fault|Call Trace|[Kk]ernel panic|hung_task|blocked for more than|soft lockup'
# With --debug, also the reports of the debug options (most of them also
# carry "BUG:" or "WARNING:"; these catch the ones that do not) and the
# guest's own kmemleak verdict.
DEBUG_LOG_PROBLEMS='KASAN|UBSAN|possible circular locking|possible recursive locking|inconsistent lock state|bad unlock balance|suspicious RCU usage|lock held when returning|list_(add|del) corruption|unreferenced object|kmemleak: .*(disabled|Cannot|[Ee]rror|pool empty)|INFO: task .* blocked|rcu: INFO|detected stalls'
KMEMLEAK_CLEAN='vid: kmemleak: clean'
SETUP_FAILED='@@VID-SETUP-FAILED problems=[0-9]*@@'
# The IOMMU's fault report, accepted only where a test announced it.
IOMMU_FAULT='DMAR:.*[Ff]ault'
KVM_PROBE_TIMEOUT=40

# The machine: x86-64 (q35, VT-d). scripts/guest/arch-<ARCH>.sh (--arch)
# replaces these, and may replace elf_libs and machine_args below.
QEMU_BIN=qemu-system-x86_64
KERNEL_ARGS="intel_iommu=on console=ttyS0"
# The guest's channel for the command's output (its init reads the name).
GUEST_OUT=/dev/ttyS1
# The busybox the guest gets; the host's own lists its applets.
GUEST_BUSYBOX=

# machine_args CONSOLE_LOG OUTPUT_LOG: add the machine, its IOMMU and the
# two serial channels to run_qemu's "args".
#
# The CPU is QEMU's "max" without LA57. With 5-level paging, Linux 6.12
# reads pgtable_l5_enabled() from boot_cpu_data's capabilities until the
# alternatives are patched, and identify_cpu() clears them for a moment
# while it looks at the boot CPU: an interrupt that comes in that window
# sees 4-level constants with 5-level addresses. On the debug kernel KASAN
# then takes the irq descriptor's lock in the direct map (0xff11...) for a
# wild access (seen on 2026-11-30 and 2026-12-01: "wild-memory-access in
# do_raw_spin_lock", handle_edge_irq from identify_cpu, 0.01 to 2.2 s into
# boot, on either of the suite's two boots); without KASAN other code can
# walk the wrong tables. Nothing here needs 5-level paging.
machine_args() {
	args+=(-machine "q35,kernel-irqchip=split" -cpu max,la57=off
	       -device "intel-iommu,intremap=on,caching-mode=on"
	       -serial "file:$1" -serial "file:$2")
}

# elf_libs FILE: "HOST_PATH GUEST_PATH" for each shared library and the
# dynamic loader FILE needs (ldd's answer: the host's own files).
elf_libs() {
	local out

	# ldd fails on static binaries and kernel modules: nothing to copy then.
	out=$(ldd "$1" 2>/dev/null) || return 0
	if grep -q 'not found' <<<"$out"; then
		die "$1: missing shared libraries:"$'\n'"$(grep 'not found' <<<"$out")"
	fi
	# Lines look like "libx.so.1 => /lib/.../libx.so.1 (0x...)" or, for the
	# loader, "/lib64/ld-linux-x86-64.so.2 (0x...)".  linux-vdso has no path.
	awk '$2 == "=>" && $3 ~ /^\// { print $3, $3 }
	     $1 ~ /^\// { print $1, $1 }' <<<"$out"
}

msg() { echo "guest-run: $*" >&2; }
die() { msg "error: $*"; exit 125; }

usage() {
	cat >&2 <<'EOF'
usage: guest-run.sh [--kver VER] [--payload DIR] [--hostroot] [--timeout SEC]
                    [--mem MB] [--smp N] [--workdir DIR]
                    [--kernel IMAGE --moddir DIR] [--append ARGS] [--debug]
                    [--arch arm64] -- 'shell command line'
EOF
	exit 2
}

# ---------------------------------------------------------------- arguments

kver=
payload=
hostroot=0
timeout_s=600
mem=2048
smp=2
workdir=$REPO_ROOT/build/guest
kernel_opt=
moddir_opt=
append=
debug=0
arch=x86_64

need_arg() {
	if [ $# -lt 2 ] || [ -z "$2" ]; then
		msg "$1 needs a value"
		usage
	fi
}
need_num() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { msg "$1: not a positive number: $2"; usage; }; }

while [ $# -gt 0 ]; do
	case $1 in
	--kver)     need_arg "$@"; kver=$2; shift 2 ;;
	--payload)  need_arg "$@"; payload=$2; shift 2 ;;
	--hostroot) hostroot=1; shift ;;
	--timeout)  need_arg "$@"; need_num "$1" "$2"; timeout_s=$2; shift 2 ;;
	--mem)      need_arg "$@"; need_num "$1" "$2"; mem=$2; shift 2 ;;
	--smp)      need_arg "$@"; need_num "$1" "$2"; smp=$2; shift 2 ;;
	--workdir)  need_arg "$@"; workdir=$2; shift 2 ;;
	--kernel)   need_arg "$@"; kernel_opt=$2; shift 2 ;;
	--moddir)   need_arg "$@"; moddir_opt=$2; shift 2 ;;
	--append)   need_arg "$@"; append="${append:+$append }$2"; shift 2 ;;
	--debug)    debug=1; shift ;;
	--arch)     need_arg "$@"; arch=$2; shift 2 ;;
	--)         shift; break ;;
	-h|--help)  usage ;;
	*)          msg "unknown argument: $1"; usage ;;
	esac
done
[ $# -gt 0 ] || { msg "missing -- 'command'"; usage; }
# Several words after "--" are joined with spaces, as ssh does.
cmd="$*"

if [ "$arch" != x86_64 ]; then
	[ -r "$SCRIPT_DIR/guest/arch-$arch.sh" ] || { msg "no such --arch: $arch"; usage; }
	# shellcheck source=guest/arch-arm64.sh
	. "$SCRIPT_DIR/guest/arch-$arch.sh"
fi

cmdline_extra=
if [ "$debug" = 1 ]; then
	cmdline_extra=" kmemleak=on"
	KERNEL_LOG_PROBLEMS="$KERNEL_LOG_PROBLEMS|$DEBUG_LOG_PROBLEMS"
fi
[ -z "$append" ] || cmdline_extra="$cmdline_extra $append"
# VID_TEST_BOOT_PROBLEM: an extra ERE that counts as a kernel report, for
# scripts/boot-retry-check.sh alone: a line every boot prints then stands
# for an early crash, to show the retry below and the guest's refusal to
# run the command. No single quote (it goes into the guest's config).
if [ -n "${VID_TEST_BOOT_PROBLEM:-}" ]; then
	case $VID_TEST_BOOT_PROBLEM in
	*"'"*) msg "VID_TEST_BOOT_PROBLEM may not hold a single quote"; usage ;;
	esac
	KERNEL_LOG_PROBLEMS="$KERNEL_LOG_PROBLEMS|$VID_TEST_BOOT_PROBLEM"
fi

# ---------------------------------------------------------------- the kernel

if [ -n "$moddir_opt" ]; then
	[ -d "$moddir_opt" ] || die "--moddir $moddir_opt is not a directory"
	moddir_opt=$(cd "$moddir_opt" && pwd)
	# The guest's modprobe looks in /lib/modules/$(uname -r): the tree
	# must carry the kernel's release as its name.
	[ -n "$kver" ] || kver=${moddir_opt##*/}
	[ "$kver" = "${moddir_opt##*/}" ] ||
		die "--moddir $moddir_opt does not end in the release $kver"
fi
if [ -n "$kernel_opt" ] && [ -z "$kver" ]; then
	die "--kernel needs --moddir (or --kver) to find its modules"
fi
if [ -z "$kver" ]; then
	# The newest 6.12 module tree that has a matching kernel image.
	kver=$(for d in /lib/modules/6.12.*; do
			v=${d##*/}
			if [ -f "/boot/vmlinuz-$v" ]; then echo "$v"; fi
		done | sort -V | tail -n 1)
	[ -n "$kver" ] || die "no 6.12 kernel found (need /lib/modules/6.12.* and" \
		"/boot/vmlinuz-<ver>; install linux-image-6.12-amd64)"
fi
kernel=${kernel_opt:-/boot/vmlinuz-$kver}
moddir=${moddir_opt:-/lib/modules/$kver}
[ -f "$kernel" ] || die "kernel image $kernel not found"
[ -f "$moddir/modules.dep" ] || die "$moddir/modules.dep not found"

if [ -n "$payload" ]; then
	[ -d "$payload" ] || die "payload $payload is not a directory"
	payload=$(cd "$payload" && pwd)
fi

for tool in "$QEMU_BIN" busybox depmod cpio xz ldd timeout flock; do
	command -v "$tool" >/dev/null || die "$tool not found (see scripts/install-deps.sh)"
done
BUSYBOX=$(command -v busybox)
# A dynamically linked busybox would not run in the guest.
GUEST_BUSYBOX=${GUEST_BUSYBOX:-$BUSYBOX}
if ldd "$GUEST_BUSYBOX" >/dev/null 2>&1; then
	die "$GUEST_BUSYBOX is dynamically linked; install busybox-static"
fi

mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)

# One runner per work directory at a time: they would overwrite each other's
# initramfs and logs.
exec 9>"$workdir/.lock"
if ! flock -n 9; then
	msg "waiting for another guest-run.sh using $workdir"
	flock 9
fi

# ---------------------------------------------------------------- initramfs

# copy_elf_deps ROOT FILE: copy the shared libraries and the dynamic loader
# FILE needs (as elf_libs reports them) to their guest paths under ROOT.
copy_elf_deps() {
	local root=$1 file=$2 libs lib dst

	libs=$(elf_libs "$file") || exit
	while read -r lib dst; do
		[ -n "$lib" ] || continue
		[ -e "$root$dst" ] && continue
		mkdir -p "$root$(dirname "$dst")"
		cp -L "$lib" "$root$dst"
	done <<<"$libs"
}

is_elf() {
	[ "$(od -An -c -N4 "$1" 2>/dev/null | tr -d ' ')" = '177ELF' ]
}

# build_initramfs OUT CMD HOSTROOT [PAYLOAD]
build_initramfs() {
	local out=$1 command=$2 want_hostroot=$3 pl=${4:-}
	local st=$workdir/staging kmods=$workdir/staging/lib/modules/$kver
	local name rel dst f

	rm -rf "$st"
	mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,host} \
		 "$st"/{etc/vid,opt/vid,lib64} "$kmods"

	# busybox and a link for each of its applets.
	cp "$GUEST_BUSYBOX" "$st/bin/busybox"
	"$BUSYBOX" --list-full | while read -r name; do
		case $name in
		bin/busybox|linuxrc|init) continue ;;
		esac
		[ -e "$st/$name" ] || ln -s /bin/busybox "$st/$name"
	done
	# The kernel opens /dev/console for /init before devtmpfs is mounted.
	mknod -m 600 "$st/dev/console" c 5 1 2>/dev/null || true

	# Kernel modules, decompressed: busybox insmod cannot read .ko.xz.
	# modules.dep lines are "path: dep dep ..." with all dependencies, so
	# taking the whole line of each wanted module is enough.
	for rel in $(awk -F': *' -v want="${GUEST_MODULES[*]//-/_}" \
			-v opt="${OPTIONAL_MODULES[*]//-/_}" '
		BEGIN {
			n = split(want, w, " "); for (i = 1; i <= n; i++) ok[w[i]] = 1
			n = split(opt, o, " "); for (i = 1; i <= n; i++) { ok[o[i]] = 1; optional[o[i]] = 1 }
		}
		{
			base = $1
			sub(/.*\//, "", base)
			sub(/\.ko(\.(xz|gz|zst))?$/, "", base)
			gsub(/-/, "_", base)
			if (base in ok) { print $1; if ($2 != "") print $2; found[base] = 1 }
		}
		END { for (m in ok) if (!(m in found) && !(m in optional)) print "MISSING:" m }
		' "$moddir/modules.dep" | tr ' ' '\n' | sort -u); do
		case $rel in
		MISSING:*) die "module ${rel#MISSING:} not in $moddir/modules.dep" ;;
		esac
		dst=$kmods/${rel%.*}
		mkdir -p "$(dirname "$dst")"
		case $rel in
		*.ko.xz)  xz -dc "$moddir/$rel" >"$dst" ;;
		*.ko.gz)  gzip -dc "$moddir/$rel" >"$dst" ;;
		*.ko.zst) zstd -qdc "$moddir/$rel" >"$dst" ;;
		*.ko)     dst=$kmods/$rel; cp "$moddir/$rel" "$dst" ;;
		esac
	done
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		[ -f "$moddir/$f" ] && cp "$moddir/$f" "$kmods/"
	done
	depmod -b "$st" "$kver" || die "depmod failed"

	# The payload, with whatever its dynamically linked programs need.
	if [ -n "$pl" ]; then
		cp -RL --preserve=mode,timestamps "$pl/." "$st/opt/vid/"
		while IFS= read -r -d '' f; do
			is_elf "$f" && copy_elf_deps "$st" "$f"
		done < <(find "$st/opt/vid" -type f -print0)
	fi

	install -m 0755 "$SCRIPT_DIR/guest/init" "$st/init"
	printf '%s\n' "$command" >"$st/etc/vid/cmd"
	echo "$GUEST_OUT" >"$st/etc/vid/out"
	{
		echo "VID_CFG_HOSTROOT=$want_hostroot"
		# What the guest's init looks for in what the kernel said while
		# it booted (see failed_before_init).
		echo "VID_CFG_BOOT_PROBLEMS='$KERNEL_LOG_PROBLEMS'"
		# Only the real run checks for leaks, never the KVM probe.
		if [ "$command" != true ]; then
			echo "VID_CFG_KMEMLEAK=$debug"
		fi
	} >"$st/etc/vid/config"

	# Uncompressed: it is small and the kernel unpacks it faster that way.
	(cd "$st" && find . -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc --owner=0:0 --quiet) >"$out"
}

# ---------------------------------------------------------------- QEMU

QPID=
LIVE_PID=
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	# Killing timeout(1) makes it pass the signal on to QEMU.
	[ -n "$QPID" ] && kill "$QPID" 2>/dev/null
	[ -n "$LIVE_PID" ] && kill "$LIVE_PID" 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# live_filter: copy the guest's output stream to stdout line by line, hiding
# the exit marker and the one blank line the guest prints in front of it
# (that newline is there in case the command's output did not end in one).
live_filter() {
	local line blanks=0
	while IFS= read -r line || [ -n "$line" ]; do
		if [ -z "$line" ]; then
			blanks=$((blanks + 1))
			continue
		fi
		if [[ $line == "@@VID-EXIT status="*"@@" ]]; then
			[ "$blanks" -gt 0 ] && blanks=$((blanks - 1))
			while [ "$blanks" -gt 0 ]; do echo; blanks=$((blanks - 1)); done
			continue
		fi
		while [ "$blanks" -gt 0 ]; do echo; blanks=$((blanks - 1)); done
		printf '%s\n' "$line"
	done
	while [ "$blanks" -gt 0 ]; do echo; blanks=$((blanks - 1)); done
}

# run_qemu ACCEL TIMEOUT INITRAMFS CONSOLE_LOG OUTPUT_LOG QEMU_LOG LIVE HOSTROOT
# Boots the guest.  LIVE=1 streams OUTPUT_LOG to stdout while it runs.
# Sets QEMU_RC (the status of timeout(1)) and QEMU_SECS (wall time).
run_qemu() {
	local accel=$1 tmo=$2 initrd=$3 console=$4 output=$5 qlog=$6
	local live=$7 want_hostroot=$8 t0 t1
	# printk.devkmsg=on: tests write markers to /dev/kmsg, which must not
	# be rate limited.
	local -a args=(
		-nodefaults -display none -monitor none -no-reboot
		-accel "$accel" -m "$mem" -smp "$smp"
		-device edu -device edu
		-kernel "$kernel" -initrd "$initrd"
		-append "$KERNEL_ARGS panic=-1 rdinit=/init printk.devkmsg=on$cmdline_extra"
	)
	machine_args "$console" "$output"
	if [ "$want_hostroot" = 1 ]; then
		args+=(-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap")
	fi

	: >"$console"
	: >"$output"
	t0=$(date +%s.%N)
	timeout --kill-after=10 "$tmo" "$QEMU_BIN" "${args[@]}" \
		</dev/null >"$qlog" 2>&1 &
	QPID=$!
	if [ "$accel" = kvm ]; then
		# A failing KVM guest does not exit, it stops: QEMU prints
		# "KVM internal error" and waits.  Do not wait out the timeout.
		(
			while kill -0 "$QPID" 2>/dev/null; do
				if grep -q 'KVM internal error' "$qlog"; then
					kill "$QPID" 2>/dev/null
					break
				fi
				sleep 0.5
			done
		) &
	fi
	if [ "$live" = 1 ]; then
		# tail exits once QPID is gone, i.e. after we have reaped it.
		live_filter < <(tail -n +1 -s 0.2 -f --pid="$QPID" "$output") &
		LIVE_PID=$!
	fi
	QEMU_RC=0
	wait "$QPID" || QEMU_RC=$?
	QPID=
	t1=$(date +%s.%N)
	if [ -n "$LIVE_PID" ]; then
		wait "$LIVE_PID" || true
		LIVE_PID=
	fi
	QEMU_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
}

# exit_marker FILE...: print "STATUS RUN" from the last exit marker found.
exit_marker() {
	local f m
	for f; do
		m=$(grep -a -o '@@VID-EXIT status=[0-9]* run=[0-9.]*@@' "$f" | tail -n 1) || true
		if [ -n "$m" ]; then
			sed -E 's/@@VID-EXIT status=([0-9]+) run=([0-9.]+)@@/\1 \2/' <<<"$m"
			return 0
		fi
	done
	return 1
}

# scan_console: print the kernel-log problems in the console log, with
# context, and return 1 if there are any.  IOMMU faults (DMAR, SMMU events)
# are expected (and ignored) between "vid: expect-dmar-fault begin" and
# "... end" lines.
scan_console() {
	tr -d '\r' <"$console_log" | awk -v bad="$KERNEL_LOG_PROBLEMS" \
		-v dmar="$IOMMU_FAULT" \
		-v before=3 -v after=15 -v maxlines=300 '
	{ line[NR] = $0 }
	/vid: expect-dmar-fault begin/ { expect = 1; next }
	/vid: expect-dmar-fault end/   { expect = 0; next }
	$0 ~ bad || ($0 ~ dmar && !expect) { hit[++nhits] = NR; ishit[NR] = 1 }
	END {
		if (nhits == 0)
			exit 0
		printf "==== guest-run: kernel log problems (%d line(s)) ====\n", nhits
		last = 0
		printed = 0
		for (i = 1; i <= nhits; i++) {
			from = hit[i] - before
			to = hit[i] + after
			if (from <= last)
				from = last + 1
			else if (last > 0)
				print "--"
			if (from < 1)
				from = 1
			for (l = from; l <= to && l <= NR; l++) {
				if (++printed > maxlines) {
					print "[... more in the console log ...]"
					exit 1
				}
				print ((l in ishit) ? ">> " : "   ") line[l]
			}
			if (to > last)
				last = to
		}
		exit 1
	}' >&2
}

# explain_abort: after a timeout or crash show what the kernel said: its
# problems if it reported any, else the end of the console log.
explain_abort() {
	if scan_console && [ -s "$console_log" ]; then
		msg "last console lines:"
		tail -n 20 "$console_log" | tr -d '\r' | sed 's/^/   /' >&2
	fi
	# Leave out QEMU's note that timeout(1) stopped it.
	if grep -qv 'terminating on signal' "$qemu_log"; then
		msg "QEMU said:"
		# awk reads to the end: head would stop grep with SIGPIPE,
		# and pipefail and set -e would end the script here.
		awk '!/terminating on signal/ && n++ < 20 { print "   " $0 }' \
			"$qemu_log" >&2
	fi
}

# failed_before_init: succeed if the guest's kernel reported a problem
# (a panic, an oops, a KASAN report: anything scan_console fails a run
# for) before it ran /init (the kernel prints "Run /init as init process"
# when it does), and QEMU was not stopped by the time limit. One awk
# reads the file: in a pipeline, a reader that stops at the first match
# kills the writer with SIGPIPE, and pipefail then turned an early report
# into "no report" (boot-retry-check.sh caught it).
failed_before_init() {
	[ "$QEMU_RC" != 124 ] && [ "$QEMU_RC" != 137 ] &&
		awk -v bad="$KERNEL_LOG_PROBLEMS" '
			{ sub(/\r$/, "") }
			/Run \/init as init process/ { exit }
			$0 ~ bad { found = 1; exit }
			END { exit !found }' "$console_log"
}

# ---------------------------------------------------------------- accelerator

# probe_kvm: boot a trivial guest under KVM; succeed if it ran to the end.
probe_kvm() {
	local d=$workdir/kvm-probe
	[ -w /dev/kvm ] || return 1
	mkdir -p "$d"
	build_initramfs "$d/initramfs.cpio" true 0
	run_qemu kvm "$KVM_PROBE_TIMEOUT" "$d/initramfs.cpio" "$d/console.log" \
		"$d/output.log" "$d/qemu.log" 0 0
	[ "$QEMU_RC" = 0 ] && [ "$(exit_marker "$d/output.log")" != "" ] &&
		[ "$(exit_marker "$d/output.log" | cut -d' ' -f1)" = 0 ]
}

case ${VID_ACCEL:-} in
tcg|kvm) accel=$VID_ACCEL ;;
"")
	cache=$workdir/accel.$kver
	qemu_bin=$(command -v "$QEMU_BIN")
	if [ -s "$cache" ] && [ "$cache" -nt "$qemu_bin" ]; then
		accel=$(cat "$cache")
	else
		msg "probing KVM (once, up to ${KVM_PROBE_TIMEOUT} s; result cached in $cache)"
		if probe_kvm; then accel=kvm; else accel=tcg; fi
		echo "$accel" >"$cache"
	fi
	;;
*) msg "VID_ACCEL must be tcg or kvm, not '$VID_ACCEL'"; usage ;;
esac

# ---------------------------------------------------------------- the run

initrd=$workdir/initramfs.cpio
console_log=$workdir/console.log
output_log=$workdir/output.log
qemu_log=$workdir/qemu.log

build_initramfs "$initrd" "$cmd" "$hostroot" "$payload"

msg "kernel $kver, accel $accel, timeout ${timeout_s} s"
run_qemu "$accel" "$timeout_s" "$initrd" "$console_log" "$output_log" \
	"$qemu_log" 1 "$hostroot"
# A guest kernel that fails before it runs /init has run nothing of this
# project: no module was loaded, the command had not started. Seen under
# TCG, both times in an interrupt taken early in boot: in CI a NULL dereference 2.3 s into boot that panicked, and on the debug
# kernel a KASAN wild-memory-access 0.006 s in (identify_cpu), after
# which the run went on and only the log check failed it. Say so with its
# report and boot once more; a second such failure fails the run as any
# other. The guest's init looks for the same reports before it starts the
# command and, when it finds one, powers off without running it, so the
# second boot costs a boot and not a whole suite.
if failed_before_init; then
	msg "the guest kernel failed before running /init (nothing of this" \
		"project had run):"
	explain_abort
	mkdir -p "$workdir/first-boot"
	cp "$console_log" "$output_log" "$qemu_log" "$workdir/first-boot/"
	msg "its logs: $workdir/first-boot; booting the guest once more"
	run_qemu "$accel" "$timeout_s" "$initrd" "$console_log" \
		"$output_log" "$qemu_log" 1 "$hostroot"
fi

if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
	msg "TIMEOUT: the guest was killed after ${timeout_s} s"
	explain_abort
	msg "exit status 124 (timeout), ${QEMU_SECS} s; logs in $workdir"
	exit 124
fi

if ! marker=$(exit_marker "$output_log" "$console_log"); then
	msg "the guest stopped without reporting an exit status" \
		"(kernel panic, QEMU error?); QEMU status $QEMU_RC"
	explain_abort
	msg "exit status 125, ${QEMU_SECS} s; logs in $workdir"
	exit 125
fi

read -r rc run_s <<<"$marker"
log_ok=1
scan_console || log_ok=0
# --debug: the guest's kmemleak scan must have happened and found nothing
# (what it found, it printed on the console, and scan_console showed).
# (grep reads the file itself: "grep -q" at the end of a pipeline can
# stop its writer with SIGPIPE, which pipefail reports as no match.)
if [ "$debug" = 1 ] && ! grep -aq "$KMEMLEAK_CLEAN" "$console_log"; then
	msg "no clean kmemleak scan after the command (see the console log)"
	log_ok=0
fi
boot_s=$(awk -v t="$QEMU_SECS" -v r="$run_s" 'BEGIN { printf "%.1f", t - r }')
if [ "$log_ok" = 0 ]; then
	[ "$rc" = 0 ] && rc=3
	msg "kernel log problems (full log: $console_log)"
fi
# The guest's own set-up failed: whatever the command reported, it ran in a
# guest that was not the one asked for. This outranks the command's status.
if grep -aq "$SETUP_FAILED" "$output_log" "$console_log"; then
	msg "the guest's set-up failed (its \"vid-init: set-up:\" lines say" \
		"what); the command's own exit status was $rc"
	rc=125
fi
msg "exit status $rc (boot ${boot_s} s + run ${run_s} s)"
exit "$rc"

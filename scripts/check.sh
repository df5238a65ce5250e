#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The whole test suite: static checks on the host, then every selftest in
# one boot of the QEMU guest. Each static check counts as one test, each
# kselftest TAP result as one, and a kernel log with unexpected reports
# (checked by the guest runner) as one more. The last line is
# "N passed, N failed" (", N skipped" when there are skips); the exit
# status is 0 only when nothing failed.
#
# check.sh --debug (make check-debug) runs the same suite on the debug
# kernel of scripts/debug-kernel.sh (built once, cached outside the clone):
# the module, the selftests and vid-emu are built against that kernel's
# tree, in copies under build/debug/ so that the ordinary build in the
# clone is left alone, and the guest runs with guest-run.sh --debug
# (KASAN, lockdep, kmemleak scan after the suite, ...). sparse and
# checkpatch do not depend on the kernel and are left to "make check";
# KVER (exported by the Makefile) is ignored: the debug kernel is 6.12.
set -uo pipefail

DEBUG=0
case ${1:-} in
--debug) DEBUG=1 ;;
"") ;;
*) echo "usage: $0 [--debug]" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
if [ "$DEBUG" = 1 ]; then
	DBG=$BUILD/debug
	LOGS=$BUILD/logs/debug
	PAYLOAD=$DBG/payload
	MODULE_KO=$DBG/mod/vfio-iommu-dirty.ko
	GUEST_ARGS=(--workdir "$BUILD/guest-debug" --debug
		    --mem "${VID_CHECK_MEM:-3072}"
		    --timeout "${VID_CHECK_TIMEOUT:-2700}")
else
	LOGS=$BUILD/logs
	PAYLOAD=$BUILD/payload
	MODULE_KO=$ROOT/vfio-iommu-dirty.ko
	GUEST_ARGS=(${KVER:+--kver "$KVER"}
		    --timeout "${VID_CHECK_TIMEOUT:-900}")
fi
mkdir -p "$LOGS"
cd "$ROOT"

passed=0
failed=0
skipped=0
failures=()

# step NAME COMMAND...: run a host-side check, keep its log, count it.
step() {
	local name=$1
	shift
	local log="$LOGS/$name.log"

	if "$@" >"$log" 2>&1; then
		echo "ok - $name"
		passed=$((passed + 1))
	else
		echo "not ok - $name (log: ${log#"$ROOT"/})"
		tail -n 30 "$log" | sed 's/^/    /'
		failed=$((failed + 1))
		failures+=("$name")
	fi
}

# A W=1 build that prints any warning counts as failed.
build_w1() {
	local out

	out=$(make -C "$ROOT" modules 2>&1) || { echo "$out"; return 1; }
	echo "$out"
	! grep -q 'warning:' <<<"$out"
}

# ---- the debug lane's builds

# debug_kernel: build (once) or find the debug kernel; its paths go to
# $DBG/kernel.env as VID_DEBUG_* lines.
debug_kernel() {
	mkdir -p "$DBG"
	"$ROOT/scripts/debug-kernel.sh" >"$DBG/kernel.env.tmp" &&
		mv -f "$DBG/kernel.env.tmp" "$DBG/kernel.env"
}

# sync_sources FROM TO: make TO's C files, headers and Kbuild those of FROM,
# copying only what changed so that kbuild rebuilds only that.
sync_sources() {
	local from=$1 to=$2 f

	mkdir -p "$to"
	for f in "$to"/*.c "$to"/*.h "$to"/Kbuild; do
		if [ -e "$f" ] && [ ! -e "$from/${f##*/}" ]; then
			rm -f "$f"
		fi
	done
	for f in "$from"/*.c "$from"/*.h "$from"/Kbuild; do
		[ -e "$f" ] || continue
		cmp -s "$f" "$to/${f##*/}" || cp -p "$f" "$to/"
	done
}

# The module, built from its copy against the debug kernel, W=1.
build_w1_debug() {
	local out

	sync_sources "$ROOT" "$DBG/mod"
	sync_sources "$ROOT/include/uapi/linux" "$DBG/mod/include/uapi/linux"
	out=$(make -C "$VID_DEBUG_KDIR" M="$DBG/mod" W=1 modules 2>&1) ||
		{ echo "$out"; return 1; }
	echo "$out"
	! grep -q 'warning:' <<<"$out"
}

# The selftest programs, and vid-emu built from its copy against the debug
# kernel; then the payload as "make payload" lays it out.
payload_debug() {
	local st=$ROOT/tools/testing/selftests/vfio_iommu_dirty

	sync_sources "$st/vid_emu" "$DBG/vid_emu" &&
	"$ROOT/scripts/ksft-headers.sh" "$BUILD/ksft" &&
	make -C "$st" KSFT_INC="$BUILD/ksft" OUT="$PAYLOAD/selftests" \
		KDIR="$VID_DEBUG_KDIR" EMU_DIR="$DBG/vid_emu" &&
	cp "$MODULE_KO" "$PAYLOAD/"
}

if [ "$DEBUG" = 1 ]; then
	echo "== debug kernel (a first build takes long: see README.md, 'Debug lane')"
	step debug-kernel debug_kernel
	VID_DEBUG_KDIR=
	if [ -s "$DBG/kernel.env" ]; then
		while IFS='=' read -r k v; do
			case $k in
			VID_DEBUG_KVER|VID_DEBUG_KERNEL|VID_DEBUG_MODDIR|VID_DEBUG_KDIR)
				printf -v "$k" '%s' "$v" ;;
			esac
		done <"$DBG/kernel.env"
		echo "   kernel $VID_DEBUG_KVER ($VID_DEBUG_KERNEL)"
		GUEST_ARGS+=(--kernel "$VID_DEBUG_KERNEL"
			     --moddir "$VID_DEBUG_MODDIR")
		rm -f "$MODULE_KO"
		step build-w1 build_w1_debug
		step selftests-build payload_debug
	fi
else
	step build-w1 build_w1
	step sparse make -C "$ROOT" -s sparse
	step checkpatch make -C "$ROOT" -s checkpatch
	step selftests-build make -C "$ROOT" payload
	step install-dkms make -C "$ROOT" -s install-check
fi

GUEST_LOG=$LOGS/guest.log
guest_rc=0
# Never count the results of an earlier run.
rm -f "$GUEST_LOG"
if [ -e "$MODULE_KO" ] &&
   [ -e "$PAYLOAD/selftests/run_tests.sh" ]; then
	echo "== selftests in the guest (log: ${GUEST_LOG#"$ROOT"/})"
	"$ROOT/scripts/guest-run.sh" --hostroot --payload "$PAYLOAD" \
		"${GUEST_ARGS[@]}" \
		-- 'sh selftests/run_tests.sh' 2>&1 | tr -d '\r' |
		tee "$GUEST_LOG"
	guest_rc=${PIPESTATUS[0]}
else
	echo "not ok - guest selftests (nothing to run: build failed)"
	guest_rc=1
fi

# kselftest harness lines: "ok N name", "not ok N name", "# SKIP" marks.
tap_ok=$(grep -cE '^ok [0-9]+ ' "$GUEST_LOG" 2>/dev/null || true)
tap_skip=$(grep -E '^ok [0-9]+ .*# SKIP' "$GUEST_LOG" 2>/dev/null |
	   wc -l || true)
tap_fail=$(grep -cE '^not ok [0-9]+ ' "$GUEST_LOG" 2>/dev/null || true)
# No log at all (the guest never ran): nothing to count.
tap_ok=${tap_ok:-0}
tap_fail=${tap_fail:-0}
passed=$((passed + tap_ok - tap_skip))
skipped=$((skipped + tap_skip))
failed=$((failed + tap_fail))
if [ "$tap_fail" -gt 0 ]; then
	mapfile -t -O "${#failures[@]}" failures < \
		<(grep -E '^not ok [0-9]+ ' "$GUEST_LOG")
fi

# The guest run itself: clean kernel log, no crash, no timeout.
if [ "$guest_rc" -eq 0 ]; then
	passed=$((passed + 1))
elif [ "$tap_fail" -eq 0 ] || [ "$guest_rc" -ne 1 ]; then
	failed=$((failed + 1))
	failures+=("guest run (exit status $guest_rc)")
fi

echo
if [ "$failed" -gt 0 ]; then
	echo "Failed:"
	printf '  %s\n' "${failures[@]}"
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The whole test suite: static checks on the host, then every selftest in
# one boot of the QEMU guest. Each static check counts as one test, each
# kselftest TAP result as one, and a kernel log with unexpected reports
# (checked by the guest runner) as one more. The last line is
# "N passed, N failed" (", N skipped" when there are skips); the exit
# status is 0 only when nothing failed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
LOGS=$BUILD/logs
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

step build-w1 build_w1
step sparse make -C "$ROOT" -s sparse
step checkpatch make -C "$ROOT" -s checkpatch
step selftests-build make -C "$ROOT" payload
step install-dkms make -C "$ROOT" -s install-check

GUEST_LOG=$LOGS/guest.log
guest_rc=0
if [ -e "$ROOT/vfio-iommu-dirty.ko" ] &&
   [ -e "$BUILD/payload/selftests/run_tests.sh" ]; then
	echo "== selftests in the guest (log: ${GUEST_LOG#"$ROOT"/})"
	"$ROOT/scripts/guest-run.sh" ${KVER:+--kver "$KVER"} --hostroot --payload "$BUILD/payload" \
		--timeout "${VID_CHECK_TIMEOUT:-900}" \
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

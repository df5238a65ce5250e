#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Does guest-run.sh boot once more when the guest kernel reports a problem
# before /init, and does the guest then refuse to run the command? The
# retry guards every lane against an early interrupt crash of the
# emulated machine (seen on the debug kernel and in CI), and nothing else
# takes that path on a good day, so make check takes it on purpose.
#
# usage: scripts/boot-retry-check.sh [GUEST-RUN ARGUMENTS...]
#
# The arguments (a lane's --kver, --kernel/--moddir, --debug, ...) go to
# scripts/guest-run.sh; this script adds its own --workdir and --timeout.
# Two runs of a command that prints a number it computes (so that the
# command's text never matches its output):
#
#   control  as make check boots: exit status 0, the number printed
#            (once, even when a real early report made the runner boot
#            twice);
#   forced   VID_TEST_BOOT_PROBLEM="Linux version [0-9]" (a line every
#            boot prints before /init): exit status 125, exactly two
#            boots, the first one's logs kept in WORKDIR/first-boot and
#            holding that line, the number never printed.
#
# Exit status: 0 when both hold, 1 otherwise.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/build/guest-retry
# 6 x 7: the guest prints "VID-RETRY-42", the command's text does not.
# shellcheck disable=SC2016  # expanded by the guest's shell
CMD='echo "VID-RETRY-$((6 * 7))"'
RAN=VID-RETRY-42
AGAIN='booting the guest once more'
FORCED='Linux version [0-9]'

bad=0
fail() { echo "not ok - boot retry: $*"; bad=1; }

# run LOG: the guest with the lane's arguments; its exit status in $rc.
run() {
	"$ROOT/scripts/guest-run.sh" "${ARGS[@]}" --workdir "$WORK" \
		--timeout 600 -- "$CMD" >"$1" 2>&1
	rc=$?
	echo "   (exit status $rc, log ${1#"$ROOT"/})"
}

ARGS=("$@")
mkdir -p "$WORK"

echo "control: a normal boot"
rm -rf "$WORK/first-boot"
run "$WORK/control.log"
[ "$rc" = 0 ] || fail "control: exit status $rc, not 0"
grep -q "$RAN" "$WORK/control.log" ||
	fail "control: the command's output ($RAN) is not in the log"
# A real early report (the reason for the retry) may strike the control
# too; the retry is then right, and the command still ran once.
if grep -q "$AGAIN" "$WORK/control.log"; then
	echo "   note: the control boot was retried after a real early report" \
		"(its logs: ${WORK#"$ROOT"/}/first-boot)"
	[ "$(grep -c "$RAN" "$WORK/control.log")" = 1 ] ||
		fail "control: the command ran on both boots"
fi

echo "forced: '$FORCED' counts as a kernel report"
rm -rf "$WORK/first-boot"
VID_TEST_BOOT_PROBLEM=$FORCED run "$WORK/forced.log"
[ "$rc" = 125 ] || fail "forced: exit status $rc, not 125"
n=$(grep -c "$AGAIN" "$WORK/forced.log")
[ "$n" = 1 ] || fail "forced: '$AGAIN' said $n times, not once"
! grep -q "$RAN" "$WORK/forced.log" "$WORK/output.log" ||
	fail "forced: the command ran"
grep -q 'the command is not run' "$WORK/forced.log" "$WORK/console.log" \
	"$WORK/output.log" 2>/dev/null ||
	fail "forced: the guest's init did not say it refused the command"
grep -Eq "$FORCED" "$WORK/first-boot/console.log" 2>/dev/null ||
	fail "forced: no first boot's console log with the report in $WORK/first-boot"

[ "$bad" = 0 ] && echo "ok - boot retry: one boot when clean; two, and no command, on an early report"
exit "$bad"

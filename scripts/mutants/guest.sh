#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# The guest half of scripts/mutants.sh: for each mutant ID given, load its
# module (mutants/ko/ID.ko under /opt/vid) and run the selftests in the
# order of mutants/order, stopping at the first program that fails.
# busybox sh: it runs in the test guest of scripts/guest-run.sh.
#
# The host reads these lines (and nothing else) from our output:
#   @@MUT begin ID@@
#   @@MUT start ID PROG@@                a program starts
#   @@MUT prog ID PROG rc=N skips=K secs=S@@
#   @@MUT end ID survived@@
#   @@MUT end ID killed PROG WHY@@       WHY: failed, timeout, kernel-log,
#                                        load, unload, pins
#   @@MUT reboot WHY@@                   stop here; boot a new guest for
#                                        the mutants not done
#   @@MUT done@@
# A guest that dies in a mutant (oops, panic, hang) says nothing more:
# the host counts the mutant killed by the program it was running.
#
# After a killed mutant the guest goes on only if it is clean: both
# modules unload and the system's pinned-page count is back to where it
# was at boot. A kernel log problem always asks for a new boot, since the
# kernel itself may be damaged. So may a free quiet lock (the host's
# /tmp/vid-quiet.lock, seen through the host root): the host waits for it
# to go before the next boot, leaving the CPUs to the benchmark.

HERE=/opt/vid
ST=$HERE/selftests
KO=$HERE/mutants/ko
ORDER=$HERE/mutants/order
# Longer than any program's run (migration_test: about 4 minutes).
PROG_TIMEOUT=1500
PROBLEMS='BUG:|WARNING:|Oops|general protection fault|Call Trace|[Kk]ernel panic|hung_task|blocked for more than|soft lockup'

mark() {
	echo "@@MUT $*@@"
}

# Pages pinned by anybody (FOLL_PIN), from the VM counters.
pinned_now() {
	awk '$1 == "nr_foll_pin_acquired" { a = $2 }
	     $1 == "nr_foll_pin_released" { r = $2 }
	     END { print a - r }' /proc/vmstat
}

# unload: remove the test device's module and ours; 1 if one stays.
unload() {
	if [ -d /sys/module/vid_emu ]; then
		rmmod vid_emu || return 1
	fi
	if [ -d /sys/module/vfio_iommu_dirty ]; then
		rmmod vfio_iommu_dirty || return 1
	fi
	return 0
}

# kernel_problems: print the kernel log lines since the last call that
# the host's scan (guest-run.sh) would fail on; 1 if there are none.
# DMAR faults count only outside a test's "expect-dmar-fault" markers.
kernel_problems() {
	dmesg -c | awk -v bad="$PROBLEMS" '
	/vid: expect-dmar-fault begin/ { expect = 1; next }
	/vid: expect-dmar-fault end/ { expect = 0; next }
	$0 ~ bad || (/DMAR:.*[Ff]ault/ && !expect) { print "  kernel: " $0; n++ }
	END { exit n ? 0 : 1 }'
}

# The host's quiet lock, looked for in a listing of its /tmp: readdir
# always asks the host, where a cached 9p dentry could be stale.
quiet_lock() {
	# shellcheck disable=SC2010
	ls /host/tmp 2>/dev/null | grep -qx 'vid-quiet.lock'
}

# run_prog ID PROG: run one program with its output passed through;
# sets RC and reports it with its count of skipped tests.
run_prog() {
	mark "start $1 $2"
	read -r T0 _ </proc/uptime
	(cd "$ST" && timeout -s KILL "$PROG_TIMEOUT" "./$2"; echo $? >/tmp/mut.rc) \
		2>&1 | tee /tmp/mut.out
	read -r T1 _ </proc/uptime
	RC=$(cat /tmp/mut.rc)
	mark "prog $1 $2 rc=$RC skips=$(grep -c '^ok [0-9]* .*# SKIP' /tmp/mut.out)" \
		"secs=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')"
}

# mutant ID: one mutant from load to unload. Sets VERDICT ("survived" or
# "killed PROG WHY") and CLEAN (0 when the guest must not go on).
mutant() {
	id=$1
	VERDICT=survived
	CLEAN=1
	mark "begin $id"
	if ! unload; then
		mark "reboot could not unload the modules before $id"
		exit 0
	fi
	dmesg -c >/dev/null
	modprobe vfio_iommu_type1
	if ! insmod "$KO/$id.ko"; then
		VERDICT="killed - load"
		kernel_problems && CLEAN=0
		return
	fi
	export VID_MODULE="$KO/$id.ko"
	# Not "while read": the programs would share its standard input.
	# shellcheck disable=SC2013
	for p in $(cat "$ORDER"); do
		run_prog "$id" "$p"
		if kernel_problems; then
			VERDICT="killed $p kernel-log"
			CLEAN=0
			return
		fi
		case $RC in
		0|4) ;;
		137) VERDICT="killed $p timeout"; break ;;
		*) VERDICT="killed $p failed"; break ;;
		esac
	done
	# The programs must leave nothing behind: a module they cannot let
	# go of, or pages still pinned, is a kill as much as a failed test,
	# and a guest the next mutant cannot trust.
	if ! unload; then
		[ "$VERDICT" = survived ] && VERDICT="killed - unload"
		CLEAN=0
	elif [ "$(pinned_now)" != "$PINNED0" ]; then
		echo "  pinned pages: $(pinned_now), at boot $PINNED0"
		[ "$VERDICT" = survived ] && VERDICT="killed - pins"
		CLEAN=0
	fi
}

if ! unload; then
	mark "reboot could not unload the modules at boot"
	exit 0
fi
PINNED0=$(pinned_now)
for id in "$@"; do
	if quiet_lock; then
		mark "reboot quiet-lock"
		exit 0
	fi
	mutant "$id"
	mark "end $id $VERDICT"
	# Against a failing control no verdict means anything.
	if [ "$id" = control ] && [ "$VERDICT" != survived ]; then
		mark "reboot the control failed"
		exit 0
	fi
	if [ "$CLEAN" = 0 ]; then
		mark "reboot guest not clean after $id"
		exit 0
	fi
done
mark "done"

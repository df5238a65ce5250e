#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run every vfio_iommu_dirty selftest program found next to this script,
# passing their TAP output through. Exits non-zero if any program failed.
# POSIX sh only: it runs under busybox in the test guest.
#
# Usage: run_tests.sh [PROGRAM...]   (default: all *_test programs here)
# Environment: VID_BACKEND=intree runs against in-tree vfio_iommu_type1;
# VID_MODULE, VID_EDU_BDF and VID_EDU_GROUP are passed to the tests.
#
# Each program's output starts with "# === NAME ===" and ends with
#   # run_tests: NAME: passed|skipped|failed (exit status N)
# and the last line sums them up. A skipped program (exit status 4, the
# kselftest code for "nothing here could run") does not fail this script:
# which skips are acceptable depends on the kernel and the backend, so
# scripts/check.sh judges them, per lane, against expected-skips. Its
# reader needs these lines exactly as they are.

dir=$(cd "$(dirname "$0")" && pwd)
cd "$dir" || exit 1

if [ $# -eq 0 ]; then
	set -- ./*_test
fi

total=0
failed=0
failed_list=
skipped=0
skipped_list=

for t in "$@"; do
	case $t in
	*/*) ;;
	*) t=./$t ;;
	esac
	name=${t##*/}
	if [ ! -x "$t" ]; then
		echo "# $t: not found or not executable"
		echo "# run_tests: $name: failed (not found)"
		failed=$((failed + 1))
		failed_list="$failed_list $name"
		continue
	fi
	total=$((total + 1))
	echo "# === $name ==="
	"$t"
	rc=$?
	# kselftest exit codes: 0 pass, 4 skip; anything else is a failure.
	case $rc in
	0)
		echo "# run_tests: $name: passed (exit status 0)"
		;;
	4)
		echo "# run_tests: $name: skipped (exit status 4)"
		skipped=$((skipped + 1))
		skipped_list="$skipped_list $name"
		;;
	*)
		echo "# run_tests: $name: failed (exit status $rc)"
		failed=$((failed + 1))
		failed_list="$failed_list $name"
		;;
	esac
done

if [ "$skipped" -ne 0 ]; then
	echo "# run_tests: $skipped of $total programs skipped:$skipped_list"
fi
if [ "$failed" -ne 0 ]; then
	echo "# run_tests: $failed of $total programs failed:$failed_list"
	exit 1
fi
echo "# run_tests: all $total programs passed or skipped"
exit 0

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

dir=$(cd "$(dirname "$0")" && pwd)
cd "$dir" || exit 1

if [ $# -eq 0 ]; then
	set -- ./*_test
fi

total=0
failed=0
failed_list=

for t in "$@"; do
	case $t in
	*/*) ;;
	*) t=./$t ;;
	esac
	if [ ! -x "$t" ]; then
		echo "# $t: not found or not executable"
		failed=$((failed + 1))
		failed_list="$failed_list ${t##*/}"
		continue
	fi
	total=$((total + 1))
	echo "# === ${t##*/} ==="
	"$t"
	rc=$?
	# kselftest exit codes: 0 pass, 4 skip; anything else is a failure.
	case $rc in
	0|4) ;;
	*)
		echo "# ${t##*/}: exit status $rc"
		failed=$((failed + 1))
		failed_list="$failed_list ${t##*/}"
		;;
	esac
done

if [ "$failed" -ne 0 ]; then
	echo "# run_tests: $failed of $total programs failed:$failed_list"
	exit 1
fi
echo "# run_tests: all $total programs passed"
exit 0

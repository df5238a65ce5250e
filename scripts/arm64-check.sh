# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash disable=SC2034  # its settings are read by check.sh
#
# make check ARCH=arm64 [PAGES=16k]: the arm64 lanes of scripts/check.sh,
# which sources this file when ARCH=arm64. The host-side steps are
# check.sh's own (make reads ARCH and PAGES from the environment and
# builds for the lane, scripts/arm64.mk); here the lane gets its name,
# its build directory and its guest: Debian's arm64 kernel (16 KiB pages
# with PAGES=16k) on QEMU's virt machine with an emulated SMMUv3
# (scripts/guest/arch-arm64.sh).
#
# Lanes: arm64 and arm64-16k, in expected-skips and test-floors like the
# others. The host root is shared into the guest as in the x86 lanes, so
# that the tests that run the host's QEMU find it and say why they cannot
# run it there (it is an x86-64 program).

case ${PAGES:-4k} in
4k) LANE=arm64 ;;
16k) LANE=arm64-16k ;;
*) echo "$0: PAGES must be 4k or 16k, not '$PAGES'" >&2; exit 2 ;;
esac
# scripts/arm64.mk builds into build/<lane>; the logs go there too.
LOGS=$BUILD/$LANE/logs
PAYLOAD=$BUILD/$LANE/payload
# Under TCG an arm64 guest runs slower than the x86 one; this is the
# limit for a guest that hangs, not an estimate of a run.
GUEST_ARGS=(--arch arm64 --workdir "$BUILD/$LANE/guest"
	    --timeout "${VID_CHECK_TIMEOUT:-2400}")

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The whole test suite: static checks on the host, then every selftest in
# one boot of the QEMU guest. Each static check counts as one test, each
# kselftest TAP result as one, and a kernel log with unexpected reports
# (checked by the guest runner) as one more. The last line is
# "S skipped (M programs), N passed, N failed": it ends with "N passed,
# N failed" as the README promises; S counts every skipped test and every
# program skipped whole, M the programs that ran no test at all. The exit
# status is 0 only when nothing failed.
#
# Skips are not free (issue 12: with edu unbound, the suite "passed" with
# 82 skips). Each lane (6.12, 6.1: the series of KVER; debug) declares the
# skips it expects, with the reason, in
# tools/testing/selftests/vfio_iommu_dirty/expected-skips, and the least
# number of tests it must run in .../test-floors. Any other skip, a
# declared skip that no longer happens, fewer tests than the floor, or a
# guest whose own set-up failed (its init's "@@VID-SETUP-FAILED@@") fails
# the run.
#
# check.sh [--debug] --from-log FILE judges a saved guest log again (say,
# after editing expected-skips) without building or booting anything.
#
# check.sh --debug (make check-debug) runs the same suite on the debug
# kernel of scripts/debug-kernel.sh (built once, cached outside the clone):
# the module, the selftests and vid-emu are built against that kernel's
# tree, in copies under build/debug/ so that the ordinary build in the
# clone is left alone, and the guest runs with guest-run.sh --debug
# (KASAN, lockdep, kmemleak scan after the suite, ...). sparse and
# checkpatch do not depend on the kernel and are left to "make check";
# KVER (exported by the Makefile) is ignored: the debug kernel is 6.12.
# The debug lane also measures coverage: the module is built with gcov
# (VID_GCOV=1), the guest prints its counters after the suite
# (scripts/guest/gcov-out), and scripts/coverage.sh reports them and holds
# the floor of tools/testing/selftests/vfio_iommu_dirty/coverage-floor
# (one more test).
set -uo pipefail

DEBUG=0
FROM_LOG=
while [ $# -gt 0 ]; do
	case $1 in
	--debug) DEBUG=1; shift ;;
	--from-log)
		if [ $# -lt 2 ] || [ ! -r "$2" ]; then
			echo "$0: --from-log needs a readable file" >&2
			exit 2
		fi
		FROM_LOG=$(cd "$(dirname "$2")" && pwd)/${2##*/}
		shift 2
		;;
	*) echo "usage: $0 [--debug] [--from-log GUEST_LOG]" >&2; exit 2 ;;
	esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
SELFTESTS=$ROOT/tools/testing/selftests/vfio_iommu_dirty
EXPECTED_SKIPS=$SELFTESTS/expected-skips
TEST_FLOORS=$SELFTESTS/test-floors
# A 1 GiB hugetlb page, reserved at boot, for hugepage_test's gig_page_*
# tests (a 1 GiB IOMMU page): a run-time allocation finds 1 GiB free and
# aligned on some boots only. Reserved from 4 GiB of guest memory, which
# leaves the suite 3 GiB; from 3 GiB it fails (the boot's own allocations
# sit in the aligned GiB above 4 GiB). The arm64 lanes (arm64-check.sh)
# boot without it, and those tests skip there (expected-skips).
GIG_PAGE="hugepagesz=1G hugepages=1"
if [ "$DEBUG" = 1 ]; then
	DBG=$BUILD/debug
	LOGS=$BUILD/logs/debug
	PAYLOAD=$DBG/payload
	MODULE_KO=$DBG/mod/vfio-iommu-dirty.ko
	# 1 GiB of the memory is the hugetlb page reserved at boot (below).
	GUEST_ARGS=(--workdir "$BUILD/guest-debug" --debug
		    --mem "${VID_CHECK_MEM:-4096}" --append "$GIG_PAGE"
		    --timeout "${VID_CHECK_TIMEOUT:-2700}")
	# After the suite, the gcov counters (coverage below); the suite's
	# status stays the command's.
	GUEST_CMD='sh selftests/run_tests.sh; rc=$?; sh ./gcov-out; exit $rc'
else
	LOGS=$BUILD/logs
	PAYLOAD=$BUILD/payload
	MODULE_KO=$ROOT/vfio-iommu-dirty.ko
	# The guest ran 8 minutes (boot 32 s, suite 448 s; migration_test
	# alone 3.5 minutes) under TCG on the 2-core machine while a kernel
	# build and another guest shared it; 900 s left too little room for
	# a busier day. 1800 s is the limit for a guest that hangs, not an
	# estimate of a run.
	GUEST_ARGS=(${KVER:+--kver "$KVER"}
		    --mem "${VID_CHECK_MEM:-4096}" --append "$GIG_PAGE"
		    --timeout "${VID_CHECK_TIMEOUT:-1800}")
	GUEST_CMD='sh selftests/run_tests.sh'
fi
# The lane whose expected skips and floors apply: debug, or the series
# (6.12, 6.1) of the kernel the guest boots; the Makefile exports KVER as
# a full release, guest-run.sh takes the newest 6.12 without one.
if [ "$DEBUG" = 1 ]; then
	LANE=debug
elif [[ ${KVER:-} =~ ^([0-9]+\.[0-9]+) ]]; then
	LANE=${BASH_REMATCH[1]}
else
	LANE=6.12
fi
# make check ARCH=arm64 [PAGES=16k]: the lanes arm64 and arm64-16k.
if [ "$DEBUG" = 0 ] && [ "${ARCH:-}" = arm64 ]; then
	# shellcheck source=arm64-check.sh
	. "$ROOT/scripts/arm64-check.sh"
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
	# VID_GCOV=1: profiled with gcov, for scripts/coverage.sh.
	out=$(make -C "$VID_DEBUG_KDIR" M="$DBG/mod" W=1 VID_GCOV=1 modules 2>&1) ||
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
	cp "$MODULE_KO" "$PAYLOAD/" &&
	cp "$ROOT/scripts/guest/gcov-out" "$PAYLOAD/"
}

if [ -n "$FROM_LOG" ]; then
	echo "== judging ${FROM_LOG#"$ROOT"/} (lane $LANE; nothing built or run)"
elif [ "$DEBUG" = 1 ]; then
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
if [ -n "$FROM_LOG" ]; then
	GUEST_OUT=$FROM_LOG
	# The runner's last word on the guest, as the log has it.
	guest_rc=$(sed -n 's/^guest-run: exit status \([0-9]*\).*/\1/p' \
		   "$GUEST_OUT" | tail -n 1)
	guest_rc=${guest_rc:-125}
else
	# The results are read from a copy of our own: the guest of another
	# check.sh in this clone waits for ours, its tee does not, and it
	# would replace guest.log under us. Never count an earlier run.
	GUEST_OUT=$(mktemp "$LOGS/.guest.XXXXXX")
	trap 'rm -f "$GUEST_OUT"' EXIT
	rm -f "$GUEST_LOG"
	if [ -e "$MODULE_KO" ] &&
	   [ -e "$PAYLOAD/selftests/run_tests.sh" ]; then
		echo "== selftests in the guest (log: ${GUEST_LOG#"$ROOT"/})"
		# The logs keep the gcov counters (coverage.sh reads them, and
		# --from-log can judge them again); the screen gets one line.
		"$ROOT/scripts/guest-run.sh" --hostroot --payload "$PAYLOAD" \
			"${GUEST_ARGS[@]}" \
			-- "$GUEST_CMD" 2>&1 | tr -d '\r' |
			tee "$GUEST_LOG" "$GUEST_OUT" |
			sed -u '/^@@VID-GCOV-BEGIN/,/^@@VID-GCOV-END@@$/{
				/^@@VID-GCOV-BEGIN/!d
				s/$/ (the gcov counters: in the log)/
			}'
		guest_rc=${PIPESTATUS[0]}
	else
		echo "not ok - guest selftests (nothing to run: build failed)"
		guest_rc=1
	fi
fi

# read_guest_log <LOG: what each program ran and skipped, from the
# kselftest TAP lines and run_tests.sh's own, as tab-separated records:
#   skip KEY REASON      a skipped test (PROGRAM.TEST) or program (PROGRAM)
#   fail PROGRAM LINE    a "not ok" result
#   prog PROGRAM RAN NOTEST   a program that started: its results that
#                        were not skips, and 1 if it ran no test at all
#                        (skipped whole, every test skipped, or nothing)
#   passes N             all "ok" results that were not skips
# A program skips whole with "1..0 # SKIP why" before its plan (the
# harness's ksft_exit_skip), with a nameless "ok N # SKIP why" after it,
# or with exit status 4 alone; a program that passed without running a
# test skipped whole too: none of these may count as nothing.
read_guest_log() {
	awk '
	function why(line, dflt,   r) {
		r = ""
		if (match(line, /# SKIP/))
			r = substr(line, RSTART + RLENGTH)
		gsub(/\t/, " ", r)
		sub(/^ +/, "", r)
		sub(/ +$/, "", r)
		return r == "" ? dflt : r
	}
	/^# === [^ ]+ ===$/ { prog = $3; order[++np] = prog; next }
	prog == "" { next }
	/^# run_tests: [^ ]+: (passed|skipped|failed) / {
		p = $3
		sub(/:$/, "", p)
		status[p] = $4
		next
	}
	/^1\.\.0([^0-9]|$)/ { whole[prog] = why($0, "plan 1..0"); next }
	/^ok [0-9]+ # SKIP/ { whole[prog] = why($0, "skipped after its plan"); next }
	/^ok [0-9]+ [^ #][^ ]* # SKIP/ {
		printf "skip\t%s.%s\t%s\n", prog, $3, why($0, "no reason given")
		nskip[prog]++
		next
	}
	/^ok [0-9]+ / { ran[prog]++; passes++; next }
	/^not ok [0-9]+ / { ran[prog]++; printf "fail\t%s\t%s\n", prog, $0; next }
	END {
		for (i = 1; i <= np; i++) {
			p = order[i]
			if (p in whole)
				printf "skip\t%s\t%s\n", p, whole[p]
			else if (status[p] == "skipped")
				printf "skip\t%s\t%s\n", p, "exit status 4, no skip line"
			else if (!ran[p] && !nskip[p] && status[p] == "passed")
				printf "skip\t%s\t%s\n", p, "passed without running a test"
			notest = !ran[p] && (nskip[p] || (p in whole) ||
				 status[p] == "skipped" || status[p] == "passed")
			printf "prog\t%s\t%d\t%d\n", p, ran[p], notest
		}
		printf "passes\t%d\n", passes + 0
	}'
}

# load_expected: the entries of expected-skips for $LANE into exp_pat
# (a glob over PROGRAM or PROGRAM.TEST), exp_reason and exp_where
# (file:line); 1 if the file is missing or a line is malformed.
exp_pat=()
exp_reason=()
exp_where=()
load_expected() {
	local n=0 bad=0 lanes pat reason l
	local -a ls

	if [ ! -r "$EXPECTED_SKIPS" ]; then
		echo "not ok - no ${EXPECTED_SKIPS#"$ROOT"/}"
		return 1
	fi
	while read -r lanes pat reason; do
		n=$((n + 1))
		case $lanes in
		""|"#"*) continue ;;
		esac
		# A skip without its reason is the silent skip this file
		# exists to end.
		if [ -z "$reason" ] ||
		   ! [[ $lanes =~ ^[A-Za-z0-9.-]+(,[A-Za-z0-9.-]+)*$ ]]; then
			echo "not ok - ${EXPECTED_SKIPS#"$ROOT"/}:$n: want" \
				"'LANE[,LANE...] PROGRAM[.TEST] REASON'"
			bad=1
			continue
		fi
		IFS=, read -ra ls <<<"$lanes"
		for l in "${ls[@]}"; do
			[ "$l" = "$LANE" ] || continue
			exp_pat+=("$pat")
			exp_reason+=("$reason")
			exp_where+=("${EXPECTED_SKIPS#"$ROOT"/}:$n")
		done
	done <"$EXPECTED_SKIPS"
	return "$bad"
}

# floor_of KEY: the lane's floor for KEY (tests, programs) in test-floors.
floor_of() {
	local lane key val

	[ -r "$TEST_FLOORS" ] || return 0
	while read -r lane key val; do
		if [ "$lane" = "$LANE" ] && [ "$key" = "$1" ]; then
			echo "$val"
		fi
	done <"$TEST_FLOORS" | tail -n 1
}

skip_keys=()
skip_why=()
started=()
tap_pass=0
tap_fail=0
tests_run=0
programs_ran=0
skipped_programs=0
while IFS=$'\t' read -r kind a b c; do
	case $kind in
	skip)
		skip_keys+=("$a")
		skip_why+=("$b")
		;;
	fail)
		tap_fail=$((tap_fail + 1))
		failures+=("$a: $b")
		;;
	prog)
		started+=("$a")
		tests_run=$((tests_run + b))
		if [ "$c" = 1 ]; then
			skipped_programs=$((skipped_programs + 1))
		elif [ "$b" -gt 0 ]; then
			programs_ran=$((programs_ran + 1))
		fi
		;;
	passes) tap_pass=$a ;;
	esac
done < <(read_guest_log <"$GUEST_OUT")
passed=$((passed + tap_pass))
failed=$((failed + tap_fail))
skipped=${#skip_keys[@]}

echo "== skips and test counts, lane $LANE (declared in" \
	"${EXPECTED_SKIPS#"$ROOT"/}, floors in ${TEST_FLOORS#"$ROOT"/})"
skips_ok=1
load_expected || { skips_ok=0; failed=$((failed + 1));
		   failures+=("${EXPECTED_SKIPS#"$ROOT"/}: missing or malformed (above)"); }
exp_used=()
for i in "${!skip_keys[@]}"; do
	key=${skip_keys[i]}
	hit=
	for j in "${!exp_pat[@]}"; do
		# shellcheck disable=SC2053  # the entry is a glob on purpose
		if [[ $key == ${exp_pat[j]} ]]; then
			hit=$j
			break
		fi
	done
	if [ -n "$hit" ]; then
		exp_used[hit]=1
		echo "   skipped as declared: $key: ${exp_reason[hit]}"
	else
		echo "not ok - skip not declared for lane $LANE: $key: ${skip_why[i]}"
		skips_ok=0
		failed=$((failed + 1))
		failures+=("skip not declared for lane $LANE: $key (${skip_why[i]})")
	fi
done
# A declared skip that did not happen fails too: the list must say what
# the lane really skips, or a test that starts skipping again later for
# the same key would go unnoticed. Whoever made it run deletes the line.
# Only for programs that started: a guest that died early is its own
# failure, and its untried skips say nothing.
for j in "${!exp_pat[@]}"; do
	[ -n "${exp_used[j]:-}" ] && continue
	ran_it=0
	for p in "${started[@]}"; do
		# shellcheck disable=SC2053  # the entry is a glob on purpose
		if [[ $p == ${exp_pat[j]%%.*} ]]; then
			ran_it=1
			break
		fi
	done
	if [ "$ran_it" = 1 ]; then
		echo "not ok - declared skip did not happen: ${exp_pat[j]}" \
			"(${exp_where[j]}): it runs now, delete the line"
		skips_ok=0
		failed=$((failed + 1))
		failures+=("declared skip did not happen: ${exp_pat[j]} (${exp_where[j]})")
	else
		echo "   not seen, its program did not run: ${exp_pat[j]} (${exp_where[j]})"
	fi
done
if [ "$skips_ok" = 1 ]; then
	echo "ok - skips as declared ($skipped)"
	passed=$((passed + 1))
fi

# The floors: a program that silently lost tests, or did not run at all,
# shows here even when everything that ran passed.
floor_tests=$(floor_of tests)
floor_programs=$(floor_of programs)
counts="$tests_run tests run (floor ${floor_tests:-none}), $programs_ran programs ran a test (floor ${floor_programs:-none})"
if ! [[ $floor_tests =~ ^[0-9]+$ && $floor_programs =~ ^[0-9]+$ ]]; then
	echo "not ok - no floors for lane $LANE in ${TEST_FLOORS#"$ROOT"/}"
	failed=$((failed + 1))
	failures+=("no floors for lane $LANE in ${TEST_FLOORS#"$ROOT"/}")
elif [ "$tests_run" -lt "$floor_tests" ] ||
     [ "$programs_ran" -lt "$floor_programs" ]; then
	echo "not ok - below the floor: $counts"
	failed=$((failed + 1))
	failures+=("below the floor: $counts")
else
	echo "ok - $counts"
	passed=$((passed + 1))
	if [ "$tests_run" -gt "$floor_tests" ] ||
	   [ "$programs_ran" -gt "$floor_programs" ]; then
		echo "   more than the floor: raise it in ${TEST_FLOORS#"$ROOT"/}"
	fi
fi

# The guest's own set-up (modules, host root, edu on vfio-pci, ...): its
# init says what failed on "vid-init: set-up:" lines and then prints the
# marker; guest-run.sh exits 125 on it.
setup_failed=0
if grep -q '@@VID-SETUP-FAILED' "$GUEST_OUT"; then
	setup_failed=1
	failed=$((failed + 1))
	failures+=("guest set-up failed: $(sed -n 's/^vid-init: set-up: //p' \
				       "$GUEST_OUT" | paste -sd ';' |
				       sed 's/;/; /g')")
fi

# The guest run itself: clean kernel log, no crash, no timeout.
if [ "$guest_rc" -eq 0 ]; then
	passed=$((passed + 1))
elif [ "$setup_failed" = 1 ] && [ "$guest_rc" -eq 125 ]; then
	: # counted above
elif [ "$tap_fail" -eq 0 ] || [ "$guest_rc" -ne 1 ]; then
	failed=$((failed + 1))
	failures+=("guest run (exit status $guest_rc)")
fi

# The runner's retry after a kernel report before /init, in the 6.12 and
# 6.1 lanes: the runner's logic is the same for every kernel. Not in the
# debug lane: its kernel crashes early under TCG by itself often enough
# (a KASAN wild-memory-access 0.01 s into boot, twice in a row in the
# control boots of one run) that three more boots there would make the
# lane flaky without testing anything more.
if [ -z "$FROM_LOG" ] && [ "$DEBUG" = 0 ] && [ "${ARCH:-}" != arm64 ]; then
	echo "== boot retry (scripts/boot-retry-check.sh: three short boots)"
	step boot-retry "$ROOT/scripts/boot-retry-check.sh" "${GUEST_ARGS[@]}"
fi

# Coverage (debug lane): measured from the counters in the guest's output,
# held to its floor; scripts/coverage.sh says what it measured.
if [ "$DEBUG" = 1 ]; then
	echo "== coverage of the module (scripts/coverage.sh; floor in" \
		"${SELFTESTS#"$ROOT"/}/coverage-floor)"
	if "$ROOT/scripts/coverage.sh" --guest-log "$GUEST_OUT" \
		--objdir "$DBG/mod" ${VID_DEBUG_KDIR:+--kdir "$VID_DEBUG_KDIR"}; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("coverage (above)")
	fi
fi

echo
if [ "$failed" -gt 0 ]; then
	echo "Failed:"
	printf '  %s\n' "${failures[@]}"
fi
if [ "$skipped_programs" = 1 ]; then
	progs="1 program"
else
	progs="$skipped_programs programs"
fi
echo "$skipped skipped ($progs), $passed passed, $failed failed"
[ "$failed" -eq 0 ]

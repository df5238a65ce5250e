#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make mutants: how strong is the suite? Each mutant of
# scripts/mutants/mutants.txt is a one-line bug put into the module; the
# suite must fail on it ("killed"), or it "survived" and a test is
# missing (or the mutant changes nothing anyone can observe: then say so
# in its comment, or drop it).
#
# usage: scripts/mutants.sh [--only ID,...] [--list]
#
#   --list        print the mutants (after checking them) and stop
#   --only IDS    run only these mutants (comma-separated)
#
# The run:
#   1. every mutant's pattern must occur exactly once in its file, or
#      nothing runs (a stale list fails loudly);
#   2. the unmutated module is built once in build/mutants/tree and kept
#      with its objects; each mutant then gets its own copy of that tree,
#      at the same path so that kbuild's records still match, with its
#      one file changed, and only that file is compiled again;
#   3. one guest (scripts/guest-run.sh) loads the unmutated module, the
#      control, and runs the selftests against it; they must pass or the
#      run is invalid. Then, in the same boot, each mutant's module in
#      turn, its programs in the order of scripts/mutants/order.txt (fast
#      and sensitive first), stopping at the first that fails
#      (scripts/mutants/guest.sh). A failed program, a kernel log problem
#      (WARN, oops, DMAR fault), a timeout, a module that will not unload
#      or pages left pinned kill the mutant. A guest that crashes, hangs
#      (no output for VID_MUTANTS_STALL seconds, default 1800; for
#      VID_MUTANTS_GRACE seconds, default 90, after a selftest of the
#      current program was terminated by timeout) or is no
#      longer clean is replaced by a new boot for the mutants left;
#   4. a table (mutant, what it models, killed by / SURVIVED) and the
#      line "mutants: N killed, M survived of T", also written to
#      results/mutants-<date>.txt.
#
# While /tmp/vid-quiet.lock exists (a benchmark wants quiet CPUs) nothing
# is built or booted; a running guest stops before its next mutant and
# the run goes on with a new boot once the lock is gone.
#
# Exit status: 0 when every mutant run was killed, 1 when one survived or
# did not build, 2 for a usage error or a stale list, 3 when the run is
# invalid (the control failed, or guests kept dying without progress).
#
# The suite takes 5 to 10 minutes per surviving mutant under TCG: too
# slow for CI. Environment: KVER as for make check.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MUTDIR=$ROOT/scripts/mutants
LIST=$MUTDIR/mutants.txt
ORDER_LIST=$MUTDIR/order.txt
W=$ROOT/build/mutants
TREE=$W/tree
BASE=$W/base
PAYLOAD=$W/payload
LOGS=$W/logs
QUIET_LOCK=/tmp/vid-quiet.lock
STALL=${VID_MUTANTS_STALL:-1800}
GRACE=${VID_MUTANTS_GRACE:-90}

# shellcheck source=scripts/mutants/list.sh
. "$MUTDIR/list.sh"

msg() { echo "mutants: $*" >&2; }

usage() {
	echo "usage: $0 [--only ID,...] [--list]" >&2
	exit 2
}

only=
list_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--list) list_only=1; shift ;;
	--only) [ $# -ge 2 ] || usage; only=$2; shift 2 ;;
	*) usage ;;
	esac
done

mut_load "$LIST" || { msg "fix $LIST first"; exit 2; }
mut_check "$ROOT" || { msg "stale mutants in $LIST: nothing run"; exit 2; }

if [ "$list_only" = 1 ]; then
	for i in "${!MUT_ID[@]}"; do
		printf '%-26s %-18s %s\n' "${MUT_ID[i]}" "${MUT_FILE[i]}" \
			"${MUT_WHY[i]}"
	done
	echo "${#MUT_ID[@]} mutants"
	exit 0
fi

# SEL: the indices of the mutants to run.
SEL=()
declare -A INDEX=()
for i in "${!MUT_ID[@]}"; do
	INDEX[${MUT_ID[i]}]=$i
done
if [ -n "$only" ]; then
	IFS=, read -ra want <<<"$only"
	for id in "${want[@]}"; do
		[ -n "${INDEX[$id]+x}" ] || { msg "no mutant '$id' (see --list)"; exit 2; }
		SEL+=("${INDEX[$id]}")
	done
else
	SEL=("${!MUT_ID[@]}")
fi

# quiet_wait: nothing heavy while a benchmark holds the quiet lock.
quiet_wait() {
	if [ -e "$QUIET_LOCK" ]; then
		msg "waiting while $QUIET_LOCK exists"
		while [ -e "$QUIET_LOCK" ]; do
			sleep 60
		done
	fi
}

# ---- building

KVER=$(make -s --no-print-directory -C "$ROOT" print-kver)
KDIR=/lib/modules/$KVER/build
[ -e "$KDIR/Makefile" ] || { msg "no kernel build tree at $KDIR"; exit 2; }

# The module's sources, as kbuild needs them, into an empty directory.
copy_sources() {
	mkdir -p "$1/include/uapi/linux"
	cp -p "$ROOT"/*.c "$ROOT"/*.h "$ROOT/Kbuild" "$ROOT/dkms.conf" "$1/"
	cp -p "$ROOT"/include/uapi/linux/*.h "$1/include/uapi/linux/"
}

# build_tree LOG: build the module in $TREE; no W=1, mutants may well
# leave a variable unused.
build_tree() {
	make -C "$KDIR" M="$TREE" modules >"$1" 2>&1
}

# install_ko NAME: the module just built, without its debug information
# (a tenth of the size: the guest's initramfs carries one per mutant).
install_ko() {
	strip --strip-debug -o "$PAYLOAD/mutants/ko/$1.ko" \
		"$TREE/vfio-iommu-dirty.ko"
}

quiet_wait
# build/mutants/guest stays: guest-run.sh caches its KVM probe there.
rm -rf "$TREE" "$BASE" "$PAYLOAD" "$LOGS"
mkdir -p "$LOGS" "$PAYLOAD/mutants/ko" "$ROOT/results"
msg "building the selftests and the unmutated module (kernel $KVER)"
make -s -C "$ROOT" selftests KDIR="$KDIR" >"$LOGS/selftests.log" 2>&1 ||
	{ tail -n 20 "$LOGS/selftests.log" >&2; msg "selftest build failed"; exit 3; }
copy_sources "$TREE"
build_tree "$LOGS/build-control.log" ||
	{ tail -n 20 "$LOGS/build-control.log" >&2; msg "the unmutated module does not build"; exit 3; }
install_ko control
mv "$TREE" "$BASE"

declare -A VERDICT=() SECS=()
BUILT=()
for i in "${SEL[@]}"; do
	id=${MUT_ID[i]}
	quiet_wait
	rm -rf "$TREE"
	cp -a "$BASE" "$TREE"
	if mut_apply "$i" "$TREE" && build_tree "$LOGS/build-$id.log"; then
		install_ko "$id"
		BUILT+=("$id")
	else
		VERDICT[$id]="BUILD FAILED (build/mutants/logs/build-$id.log)"
		msg "$id: does not build"
	fi
done
rm -rf "$TREE"
msg "${#BUILT[@]} of ${#SEL[@]} mutants built"

# ---- the payload

cp -a "$ROOT/build/payload/selftests" "$PAYLOAD/selftests"
cp "$PAYLOAD/mutants/ko/control.ko" "$PAYLOAD/vfio-iommu-dirty.ko"
cp "$MUTDIR/guest.sh" "$PAYLOAD/mutants/guest.sh"

# The programs in order.txt's order, then any program it does not name
# (a new test must not be left out for want of a line there).
{
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ORDER_LIST" | while read -r p; do
		if [ -x "$PAYLOAD/selftests/$p" ]; then
			echo "$p"
		else
			msg "order.txt names $p, which was not built"
		fi
	done
	for f in "$PAYLOAD"/selftests/*_test; do
		p=${f##*/}
		grep -qx "$p" < <(sed 's/#.*//; s/[[:space:]]//g' "$ORDER_LIST") ||
			echo "$p"
	done
} >"$PAYLOAD/mutants/order"

# ---- the guests

# timed_out LOG: a selftest timed out since the last program started.
# Its program has failed, so the mutant is killed whatever comes next;
# but a test process stuck in the module never exits, and the guest
# then waits for it in silence, with nothing on the console (seen with
# coarse-no-lead and unmap-no-recheck-tracking).
timed_out() {
	tr -d '\r' <"$1" | awk '
		/@@MUT start / { t = 0 }
		/Test terminated by timeout/ { t = 1 }
		END { exit !t }'
}

# run_guest LOG ID...: one guest for these mutants, its output in LOG.
# A guest silent for $STALL seconds, or for $GRACE seconds after a
# selftest timed out, is stopped; STALLED says so.
STALLED=0
run_guest() {
	local log=$1 pid age seen=0 line
	shift

	STALLED=0
	# The guest of scripts/check.sh: 4 GiB with a 1 GiB hugetlb page
	# reserved at boot, for hugepage_test's gig_page_* tests.
	"$ROOT/scripts/guest-run.sh" --hostroot --payload "$PAYLOAD" \
		--workdir "$W/guest" --kver "$KVER" \
		--mem 4096 --append "hugepagesz=1G hugepages=1" \
		--timeout $(( ($# + 1) * 1800 )) \
		-- "sh mutants/guest.sh $*" >"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 10
		# Say each verdict as it comes.
		while read -r line; do
			seen=$((seen + 1))
			msg "  ${line#end }"
		done < <(markers "$log" | grep '^end ' | tail -n +$((seen + 1)))
		age=$(( $(date +%s) - $(stat -c %Y "$log") ))
		if [ "$age" -gt "$GRACE" ] && timed_out "$log"; then
			msg "no output for $age s after a test timed out: stopping the guest"
			STALLED=1
			kill "$pid" 2>/dev/null || true
		elif [ "$age" -gt "$STALL" ]; then
			msg "no output for $age s: stopping the guest"
			STALLED=1
			kill "$pid" 2>/dev/null || true
		fi
	done
	wait "$pid" || true
}

# markers LOG: the guest's @@MUT lines, without the @@MUT and @@.
markers() {
	tr -d '\r' <"$1" | grep -ao '@@MUT [^@]*@@' |
		sed -e 's/^@@MUT //' -e 's/@@$//' || true
}

# What each program did under the control: mutants are judged against it.
declare -A CTRL_RC=() CTRL_SKIPS=()

# judge_survivor ID PROGLINES: a mutant whose programs all passed may
# still have made one skip what the control ran; that kills it too.
judge_survivor() {
	local id=$1 p rc sk

	while read -r _ _ p rc sk _; do
		[ -n "$p" ] || continue
		rc=${rc#rc=}
		sk=${sk#skips=}
		if [ "$rc" = 4 ] && [ "${CTRL_RC[$p]:-0}" != 4 ]; then
			echo "killed $p skipped"
			return
		fi
		if [ "$sk" -gt "${CTRL_SKIPS[$p]:-0}" ]; then
			echo "killed $p skips"
			return
		fi
	done <<<"$2"
	echo survived
}

# read_boot LOG: the verdicts of one boot into VERDICT and SECS. A
# mutant begun and never ended died with the guest, in the program it
# was running.
read_boot() {
	local log=$1 kind id rest cur='' prog='' progs='' verdict
	local -a f

	while read -r kind id rest; do
		case $kind in
		begin) cur=$id; prog=-; progs= ;;
		start) read -ra f <<<"$rest"; prog=${f[0]} ;;
		prog)
			progs+="$kind $id $rest"$'\n'
			SECS[$id]=$(awk -v a="${SECS[$id]:-0}" -v r="$rest" \
				'BEGIN { sub(/.*secs=/, "", r); printf "%.0f", a + r }')
			;;
		reboot) msg "  the guest stops: $id $rest" ;;
		end)
			verdict=$rest
			# The control is the baseline of skips, not judged by it.
			if [ "$id" = control ]; then
				while read -r _ _ p rc sk _; do
					[ -n "$p" ] || continue
					CTRL_RC[$p]=${rc#rc=}
					CTRL_SKIPS[$p]=${sk#skips=}
				done <<<"${progs%$'\n'}"
			elif [ "$verdict" = survived ]; then
				verdict=$(judge_survivor "$id" "${progs%$'\n'}")
			fi
			VERDICT[$id]=$verdict
			cur=
			;;
		esac
	done < <(markers "$log")
	if [ -n "$cur" ]; then
		if [ "$STALLED" = 1 ]; then
			VERDICT[$cur]="killed $prog hang"
		else
			VERDICT[$cur]="killed $prog crash"
		fi
		msg "  $cur ${VERDICT[$cur]} (the guest died in it)"
	fi
}

todo=(control "${BUILT[@]}")
boot=0
fruitless=0
while [ ${#todo[@]} -gt 0 ]; do
	quiet_wait
	boot=$((boot + 1))
	msg "boot $boot: ${#todo[@]} to run (log: build/mutants/logs/boot-$boot.log)"
	run_guest "$LOGS/boot-$boot.log" "${todo[@]}"
	before=${#todo[@]}
	read_boot "$LOGS/boot-$boot.log"
	if [ -n "${VERDICT[control]+x}" ] && [ "${VERDICT[control]}" != survived ]; then
		msg "the unmutated module fails (${VERDICT[control]}): the run is invalid"
		msg "see build/mutants/logs/boot-$boot.log"
		exit 3
	fi
	left=()
	for id in "${todo[@]}"; do
		[ -n "${VERDICT[$id]+x}" ] || left+=("$id")
	done
	todo=("${left[@]}")
	if [ ${#todo[@]} -eq "$before" ]; then
		fruitless=$((fruitless + 1))
		if [ "$fruitless" -ge 2 ]; then
			msg "two boots in a row did not finish a mutant: the run is invalid"
			exit 3
		fi
	else
		fruitless=0
	fi
done

# ---- the table

# why_text VERDICT: the "killed by" column.
why_text() {
	local -a w

	read -ra w <<<"$1"
	case ${w[0]} in
	survived) echo SURVIVED; return ;;
	killed) ;;
	*) echo "$1"; return ;;
	esac
	case ${w[2]} in
	failed) echo "${w[1]}" ;;
	load) echo "module load" ;;
	unload) echo "rmmod after the suite" ;;
	pins) echo "pages left pinned after the suite" ;;
	skipped) echo "${w[1]} (skipped whole)" ;;
	skips) echo "${w[1]} (skipped tests)" ;;
	kernel-log) echo "${w[1]} (kernel log)" ;;
	crash) echo "${w[1]} (guest crashed)" ;;
	*) echo "${w[1]} (${w[2]})" ;;
	esac
}

out=$ROOT/results/mutants-$(date -u +%Y%m%d-%H%M%S).txt
killed=0
survived=0
bad=0
{
	echo "make mutants, $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $KVER," \
		"commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
		"${only:+(--only $only)}"
	echo "program order: $(paste -sd ' ' "$PAYLOAD/mutants/order")"
	echo "control: passed in ${SECS[control]:-?} s"
	echo
	printf '| %s | %s | %s | %s |\n' mutant "what it models" "killed by" s
	printf '|---|---|---|---|\n'
	for i in "${SEL[@]}"; do
		id=${MUT_ID[i]}
		verdict=${VERDICT[$id]:-not run}
		case $verdict in
		survived) survived=$((survived + 1)) ;;
		killed*) killed=$((killed + 1)) ;;
		*) bad=$((bad + 1)) ;;
		esac
		printf '| %s | %s | %s | %s |\n' "$id" "${MUT_WHY[i]}" \
			"$(why_text "$verdict")" "${SECS[$id]:--}"
	done
	echo
	[ "$bad" -eq 0 ] || echo "$bad mutant(s) did not build or run: see above"
	echo "mutants: $killed killed, $survived survived of $((killed + survived))"
} >"$out"
cat "$out"
msg "written to ${out#"$ROOT"/}"
[ "$survived" -eq 0 ] && [ "$bad" -eq 0 ]

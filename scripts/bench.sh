#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make bench / make bench-quick: build the module, the emulated test device
# and tools/bench/vid_bench, boot the test guest once and run every
# workload alternately on in-tree vfio_iommu_type1 and on this module.
# The guest gets the host root (--hostroot): workload 6 migrates a VM with
# the host's QEMU while the test device writes its memory.
# The guest prints a table and one "BENCH {json}" line per row; from those
# this script writes, under results/ (ignored by git):
#
#   bench-<date>.json   every row: samples, medians, spread, ratio, target
#   bench-<date>.png    ratio in-tree/ours per row, and workload 2's scaling
#   bench-<date>.md     the table in Markdown
#   latest.{json,png,md}  copies of the newest full run
#
# --quick is the smoke mode CI runs: tiny sizes, one round; its files are
# named bench-<date>-quick.* and latest-quick.*, so a smoke run never
# replaces the last real result. No ratio ever fails a run: the exit
# status is that of the guest run (build errors, crash, kernel log
# problems, timeout), nothing else.
#
# --from-log FILE skips the build and the guest and writes the results
# again from the guest output saved in an earlier run's bench-<date>.log.
#
# --profile ID profiles instead: for each backend in turn, perf (the
# host's, copied into the guest) samples the timed part of the rows whose
# id matches the glob ID, with call chains, and prints where the time
# went (with the callers of the symbols --callers names, comma separated);
# the text lands in results/profile-<ID>-<date>.txt. Pass --only N after
# "--" to skip the other workloads.
#
# usage: scripts/bench.sh [--quick] [--mem MB] [--timeout S] [--from-log FILE]
#                         [--profile ID [--callers SYM,..]] [-- vid_bench args]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PAYLOAD=$ROOT/build/bench-payload
RESULTS=$ROOT/results
EMU_DIR=$ROOT/tools/testing/selftests/vfio_iommu_dirty/vid_emu

quick=0
profile=
callers=
from_log=
mem=
timeout_s=
bench_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--quick)   quick=1; shift ;;
	--profile) profile=$2; shift 2 ;;
	--callers) callers=$2; shift 2 ;;
	--from-log) from_log=$2; shift 2 ;;
	--mem)     mem=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--)        shift; bench_args=("$@"); break ;;
	*)         echo "usage: $0 [--quick] [--mem MB] [--timeout S] [--from-log FILE]" \
			"[--profile ID [--callers SYM,..]] [-- vid_bench args]" >&2
		   exit 2 ;;
	esac
done

# A saved log says which mode it was.
if [ -n "$from_log" ] && grep -q '"quick":true' "$from_log"; then
	quick=1
fi
if [ "$quick" = 1 ]; then
	# 16 MiB buffers: 2 GiB of guest memory is plenty.
	mem=${mem:-2048}
	timeout_s=${timeout_s:-300}
	bench_args=(--quick "${bench_args[@]}")
	suffix=-quick
else
	# Three 1 GiB buffers (4 KiB, THP, hugetlbfs) stay allocated for the
	# whole run, and mappings pin them: leave the kernel room besides.
	mem=${mem:-6144}
	timeout_s=${timeout_s:-4200}
	suffix=
fi

mkdir -p "$RESULTS"

# ------------------------------------------------------------------ build

build_payload() {
	local kver kdir

	# The newest Debian 6.12 headers, as the top-level Makefile picks.
	kver=$(printf '%s\n' /lib/modules/6.12.*/build |
		sed 's|/lib/modules/||; s|/build||' | sort -V | tail -n 1)
	kdir=${KDIR:-/lib/modules/$kver/build}

	echo "== building the module, the test device and vid_bench"
	rm -rf "$PAYLOAD"
	mkdir -p "$PAYLOAD"
	make -s -C "$ROOT" modules >/dev/null
	cp "$ROOT/vfio-iommu-dirty.ko" "$PAYLOAD/"
	# Without the test device the pinned-page scope rows say n/a.
	if [ -d "$EMU_DIR" ] &&
	   make -s -C "$kdir" M="$EMU_DIR" W=1 modules >/dev/null; then
		cp "$EMU_DIR/vid-emu.ko" "$PAYLOAD/"
	else
		echo "bench: the emulated test device did not build;" \
			"pinned-page scope rows will be n/a" >&2
	fi
	make -s -C "$ROOT/tools/bench" OUT="$PAYLOAD" >/dev/null
}

stamp=$(date -u +%Y%m%d-%H%M%S)

# ------------------------------------------------------------------ profile

if [ -n "$profile" ]; then
	"$ROOT/scripts/install-deps.sh"
	build_payload
	perf=$(command -v perf) || {
		echo "bench: --profile needs perf on the host (Debian package linux-perf)" >&2
		exit 1
	}
	cp "$perf" "$PAYLOAD/perf"
	# The guest side: one perf record per backend, the profiler switched
	# on by vid_bench only around the timed operation.
	cat >"$PAYLOAD/profile.sh" <<'EOF'
#!/bin/sh
id=$1
syms=$2
shift 2
for b in intree ours; do
	rm -f /tmp/ctl /tmp/ack
	mkfifo /tmp/ctl /tmp/ack
	echo "==== $b: rows $id"
	./perf record -q -g -F 20000 -D -1 --control fifo:/tmp/ctl,/tmp/ack \
		-o /tmp/perf.$b -- ./vid_bench --backend $b --profile "$id" \
		--profile-fifo /tmp/ctl,/tmp/ack "$@" >/tmp/out.$b 2>&1 ||
		{ cat /tmp/out.$b; continue; }
	grep -v '^BENCH' /tmp/out.$b | grep -E "^$id |no value"
	echo "---- self time per symbol"
	./perf report -i /tmp/perf.$b --stdio --no-children -n --sort sym \
		-g none --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep .
	echo "---- callers of the top symbols"
	./perf report -i /tmp/perf.$b --stdio --no-children -n --sort sym \
		-g caller,2,callee,function,percent --percent-limit 5 \
		2>/dev/null | grep -v '^#' | grep . | head -n 120
	[ -n "$syms" ] || continue
	echo "---- callers of $syms"
	./perf report -i /tmp/perf.$b --stdio --no-children -n --sort sym \
		-g caller,0.5,callee,function,percent --symbols "$syms" \
		2>/dev/null | grep -v '^#' | grep . | head -n 200
done
EOF
	chmod +x "$PAYLOAD/profile.sh"
	out=$RESULTS/profile-${profile//[^A-Za-z0-9_]/_}-$stamp.txt
	rc=0
	"$ROOT/scripts/guest-run.sh" --payload "$PAYLOAD" --hostroot \
		--mem "$mem" --timeout "$timeout_s" -- \
		"./profile.sh '$profile' '$callers' ${bench_args[*]}" 2>&1 |
		sed -u 's/\r$//' | tee "$out" || rc=$?
	echo "bench: profile in ${out#"$ROOT"/}"
	exit "$rc"
fi
# ------------------------------------------------------------------ run

if [ -n "$from_log" ]; then
	log=$from_log
	base=${log%.log}
	rc=$(sed -n 's/^guest-run: exit status \([0-9]*\).*/\1/p' "$log" | tail -n 1)
	rc=${rc:-125}
	mem=$(sed -n 's/^== booting the guest (\([0-9]*\) MiB.*/\1/p' "$log" | head -n 1)
	mem=${mem:-null}
else
	"$ROOT/scripts/install-deps.sh"
	build_payload
	base=$RESULTS/bench-$stamp$suffix
	log=$base.log
	# What was built: a "+dirty" commit had uncommitted changes.
	commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
		commit="$commit+dirty"
	fi
	echo "== booting the guest (${mem} MiB, timeout ${timeout_s} s, commit $commit):" \
		"vid_bench ${bench_args[*]}" | tee "$log"
	set +e
	"$ROOT/scripts/guest-run.sh" --payload "$PAYLOAD" --hostroot \
		--mem "$mem" --timeout "$timeout_s" -- "./vid_bench ${bench_args[*]}" 2>&1 |
		sed -u 's/\r$//' | tee -a "$log"
	rc=${PIPESTATUS[0]}
	set -e
fi

rows=$(sed -n 's/^BENCH //p' "$log")
if ! grep -q '"type":"row"' <<<"$rows"; then
	echo "bench: the guest printed no results (exit status $rc); log: ${log#"$ROOT"/}" >&2
	exit $((rc ? rc : 1))
fi

# ------------------------------------------------------------------ JSON

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
accel=$(sed -n 's/^guest-run: kernel .*, accel \([a-z]*\),.*/\1/p' "$log" | head -n 1)
# When the run started, from its name (bench-YYYYmmdd-HHMMSS[-quick]).
when=${base##*/bench-}
day="${when:0:4}-${when:4:2}-${when:6:2}"
started="${day}T${when:9:2}:${when:11:2}:${when:13:2}Z"
# The commit the guest ran, as the log's first line names it.
commit=$(sed -n 's/^== booting the guest .*, commit \([^)]*\)).*/\1/p' "$log" | head -n 1)
commit=${commit:-unknown}

# json_list TYPE: the BENCH objects of that type, comma separated.
json_list() {
	grep "\"type\":\"$1\"" <<<"$rows" | paste -sd, -
}

{
	printf '{"date":"%s","commit":"%s","mode":"%s",' \
		"$started" "$commit" \
		"$([ "$quick" = 1 ] && echo quick || echo full)"
	printf '"host":{"cpus":%s,"cpu":"%s","accel":"%s","guest_mem_mib":%s},' \
		"$(nproc)" "${cpu//\"/}" "${accel:-unknown}" "$mem"
	printf '"guest":%s,' "$(json_list meta | head -n 1)"
	printf '"rows":[%s],' "$(json_list row)"
	printf '"scaling":[%s],' "$(json_list scaling)"
	printf '"guest_exit_status":%s}\n' "$rc"
} >"$base.json"

# ------------------------------------------------------------------ table

# Field extraction for the flat objects vid_bench prints: strings hold no
# quotes or commas-in-brackets issues, numbers are plain or null.
AWK_GET='
function get(line, key,    m) {
	if (!match(line, "[{,]\"" key "\":(\"[^\"]*\"|[^,}]*)"))
		return ""
	m = substr(line, RSTART + length(key) + 4, RLENGTH - length(key) - 4)
	gsub(/^"|"$/, "", m)
	return m == "null" ? "" : m
}
function num(v) {
	return v + 0 >= 1000 ? sprintf("%.0f", v) : sprintf("%.4g", v)
}
function cell(line, b,    md) {
	md = get(line, b "_median")
	if (md == "")
		return "n/a"
	return num(md) " (" num(get(line, b "_min")) "–" num(get(line, b "_max")) ")" \
		(get(line, b "_two_modes") == "true" ? " ~" : "")
}'

grep '"type":"row"' <<<"$rows" | awk "$AWK_GET"'
BEGIN {
	print "| W | row | unit | in-tree median (min–max) | ours median (min–max) | in-tree/ours: of minima (of medians; round range) | target |"
	print "|---|---|---|---|---|---|---|"
}
{
	r = get($0, "ratio")
	rs = r == "" ? "n/a" : sprintf("**%.2f**", r)
	rm = get($0, "ratio_median")
	if (r != "" && rm != "" && get($0, "ratio_min") != "")
		rs = rs sprintf(" (%.2f; %.2f–%.2f)", rm,
				get($0, "ratio_min"), get($0, "ratio_max"))
	t = get($0, "target") + 0
	ts = "–"
	if (t > 0)
		ts = sprintf("≥ %.1f %s", t, r == "" ? "n/a" : (get($0, "met") == "true" ? "met" : "**missed**"))
	note = get($0, "note")
	lab = get($0, "label")
	if (note != "" && (get($0, "intree_median") == "" || get($0, "ours_median") == ""))
		lab = lab " (" note ")"
	printf "| %s | %s | %s | %s | %s | %s | %s |\n", get($0, "workload"), lab,
		get($0, "unit"), cell($0, "intree"), cell($0, "ours"), rs, ts
}' >"$base.md"

if grep -q '"ours_x_memset"' <<<"$rows"; then
	{
		echo
		echo "~: at least one sample in five over 1.25 × the fastest (a host in two modes)."
		echo
		echo "GET_BITMAP against the limit: the fastest call as a multiple of the fastest"
		echo "\`memset()\` of as many bytes as the bitmap, in the same guest and round:"
		echo
		echo "| row | id | memset µs (ours) | in-tree × memset | ours × memset |"
		echo "|---|---|---|---|---|"
		grep '"ours_x_memset"' <<<"$rows" | awk "$AWK_GET"'
		function x(v) { return v == "" ? "n/a" : sprintf("×%.2f", v) }
		{
			printf "| %s | %s | %s | %s | %s |\n", get($0, "label"),
				get($0, "id"), num(get($0, "ours_memset")),
				x(get($0, "intree_x_memset")), x(get($0, "ours_x_memset"))
		}'
	} >>"$base.md"
fi

if grep -q '"type":"scaling"' <<<"$rows"; then
	{
		echo
		echo "Workload 2, growth of the cost per call from the smallest to the largest count"
		echo "(a cost growing as log n stays under the bound; 10% allowed for noise):"
		echo
		echo "| operation | backend | growth | log bound | |"
		echo "|---|---|---|---|---|"
		grep '"type":"scaling"' <<<"$rows" | awk "$AWK_GET"'
		{
			g = get($0, "growth")
			printf "| %s | %s | %s | %.2f | %s |\n", get($0, "op"), get($0, "backend"),
				g == "" ? "n/a" : sprintf("×%.2f", g), get($0, "bound"),
				get($0, "met") == "true" ? "met" : "**missed**"
		}'
	} >>"$base.md"
fi

# ------------------------------------------------------------------ picture

plot_dir=$(mktemp -d)
trap 'rm -rf "$plot_dir"' EXIT

# ratio.dat: index, id, ratio, low, high, colour (met, missed, no target)
grep '"type":"row"' <<<"$rows" | awk "$AWK_GET"'
{
	r = get($0, "ratio")
	if (r == "")
		next
	lo = get($0, "ratio_min"); hi = get($0, "ratio_max")
	if (lo == "") { lo = r; hi = r }
	t = get($0, "target") + 0
	# grey 0x888888: no target; green 0x2a9d3c: met; red 0xd03030: missed
	c = t <= 0 ? 8947848 : (r + 0 >= t ? 2792764 : 13643824)
	printf "%d %s %g %g %g %d\n", n++, get($0, "id"), r, lo, hi, c
}' >"$plot_dir/ratio.dat"

# scale.dat: one block per operation and backend: count, median µs per call
grep '"type":"row"' <<<"$rows" | awk "$AWK_GET"'
{
	op = get($0, "op")
	if (op == "")
		next
	for (b = 0; b < 2; b++) {
		be = b ? "ours" : "intree"
		v = get($0, be "_median")
		if (v != "")
			line[op " " be] = line[op " " be] sprintf("%s %s\n", get($0, "count"), v)
	}
}
END {
	n = split("map unmap unmap_rand", ops, " ")
	for (i = 1; i <= n; i++)
		for (b = 0; b < 2; b++) {
			k = ops[i] " " (b ? "ours" : "intree")
			printf "# %s\n%s\n\n", k, (k in line) ? line[k] : "1 NaN\n"
		}
}' >"$plot_dir/scale.dat"

title="vfio_iommu_dirty vs in-tree type1 — $day, $(nproc) cores, ${accel:-?} guest"
[ "$quick" = 1 ] && title="$title (quick smoke run)"
if [ -s "$plot_dir/ratio.dat" ]; then
	scaling=0
	grep -q '"type":"scaling"' <<<"$rows" && scaling=1
	gnuplot -e "datadir='$plot_dir'; out='$base.png'; title='$title'; scaling=$scaling" \
		"$ROOT/tools/bench/bench.gp"
else
	echo "bench: no ratios to draw" >&2
fi

for ext in json md png; do
	[ -e "$base.$ext" ] && cp "$base.$ext" "$RESULTS/latest$suffix.$ext"
done

echo
cat "$base.md"
echo
echo "bench: results in ${base#"$ROOT"/}.{json,md,png} (copied to results/latest$suffix.*); log ${log#"$ROOT"/}"
exit "$rc"

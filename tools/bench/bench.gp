# SPDX-License-Identifier: GPL-2.0
#
# The picture of a vid_bench run, drawn by scripts/bench.sh:
#   gnuplot -e "datadir='DIR'; out='FILE.png'; title='TEXT'; scaling=1" bench.gp
#
# DIR/ratio.dat  index id ratio low high colour   (one row per table row;
#                colour as a decimal 0xRRGGBB)
# DIR/scale.dat  blocks "count µs-per-call", in the order map, unmap,
#                unmap_rand, each for intree then ours
#
# Top: in-tree / this module per row on a log scale, with the range of the
# per-round ratios; green met its target, red missed it, grey has none.
# Bottom: workload 2, cost per call against the number of mappings (only
# with scaling=1: a run with --only may have no workload 2).

if (scaling) {
	set terminal pngcairo size 1000,820 font "DejaVu Sans,8" noenhanced
} else {
	set terminal pngcairo size 1000,420 font "DejaVu Sans,8" noenhanced
}
set output out
set multiplot layout (scaling ? 2 : 1),1 title title font ",11"

set style fill solid 0.75 noborder
set boxwidth 0.7
set logscale y 2
set yrange [0.125:16]
set ytics ("1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8, "16" 16)
set ylabel "in-tree / ours (> 1: ours faster or smaller)"
set xtics rotate by 40 right nomirror font ",8"
set grid ytics
set key off
set xrange [-0.7:*]
set bmargin 9
plot datadir."/ratio.dat" using 1:3:(0.7):6:xtic(2) with boxes fc rgb variable, \
     "" using 1:4:(0):($5-$4) with vectors nohead lc rgb "black" lw 1.5, \
     1 with lines lc rgb "black" lw 1, \
     2 with lines lc rgb "#2a9d3c" dt 2 lw 1

if (!scaling) {
	unset multiplot
	exit
}
unset logscale
unset xrange
set bmargin 4
set logscale xy
set xtics norotate font ",9"
set xlabel "mappings of 4 KiB (workload 2)"
set ylabel "µs per call (median)"
set yrange [*:*]
set ytics auto
set key inside left top box opaque
set grid xtics ytics
plot datadir."/scale.dat" index 0 using 1:2 with linespoints lc rgb "#1f77b4" dt 2 pt 7 title "MAP in-tree", \
     "" index 1 using 1:2 with linespoints lc rgb "#1f77b4" pt 7 title "MAP ours", \
     "" index 2 using 1:2 with linespoints lc rgb "#ff7f0e" dt 2 pt 5 title "UNMAP in-tree", \
     "" index 3 using 1:2 with linespoints lc rgb "#ff7f0e" pt 5 title "UNMAP ours", \
     "" index 4 using 1:2 with linespoints lc rgb "#9467bd" dt 2 pt 9 title "UNMAP random in-tree", \
     "" index 5 using 1:2 with linespoints lc rgb "#9467bd" pt 9 title "UNMAP random ours"

unset multiplot

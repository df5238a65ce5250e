# SPDX-License-Identifier: GPL-2.0
#
# The dirty pages vfio_iommu_dirty reported per sync in make demo:
#   gnuplot -e "data='FILE'; out='FILE.png'; ram=MIB" demo.gp
# FILE: one run of dirty pages a line: sync, start (MiB), length (MiB).
# One row per sync, guest-physical memory left to right.

set terminal pngcairo size 1000,600 font "DejaVu Sans,9" noenhanced
set output out
set title "make demo: dirty pages vfio_iommu_dirty reported, per dirty sync"
set xlabel "guest-physical address (MiB)"
set ylabel "dirty sync"
set xrange [0:ram]
set yrange [*:*] reverse
set grid xtics
set key off
# A run at least a pixel wide, whatever its length.
minw = ram / 900.0
plot data using 2:1:($3 > minw ? $3 : minw):(0) with vectors nohead \
	lw 5 lc rgb "#d03030"

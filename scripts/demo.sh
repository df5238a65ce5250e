#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make demo: build the module, the test device (vid_emu) and the demo
# program, boot the test guest with the host root shared, and migrate a
# VM with the host's QEMU while its assigned device writes its memory,
# narrated (tools/vid-demo/vid_demo.c). The dirty pages this module
# reported per sync are also drawn into results/demo-<date>.png (and
# results/demo-latest.png) from the "@run" lines the program prints;
# the whole output is kept in results/demo-<date>.log.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PAYLOAD=$ROOT/build/demo-payload
RESULTS=$ROOT/results
EMU_DIR=$ROOT/tools/testing/selftests/vfio_iommu_dirty/vid_emu
KVER=${KVER:-$(make -s --no-print-directory -C "$ROOT" print-kver)}
KDIR=${KDIR:-/lib/modules/$KVER/build}

echo "== building the module, the test device and the demo program (Linux $KVER)"
rm -rf "$PAYLOAD"
mkdir -p "$PAYLOAD" "$RESULTS"
make -s -C "$ROOT" modules >/dev/null
make -s -C "$KDIR" M="$EMU_DIR" W=1 modules >/dev/null
make -s -C "$ROOT/tools/vid-demo" OUT="$PAYLOAD" >/dev/null
cp "$ROOT/vfio-iommu-dirty.ko" "$EMU_DIR/vid-emu.ko" "$PAYLOAD/"

stamp=$(date -u +%Y%m%d-%H%M%S)
log=$RESULTS/demo-$stamp.log
png=$RESULTS/demo-$stamp.png

echo "== booting the guest: q35, emulated VT-d, the host root shared read-only"
echo
set +e
"$ROOT/scripts/guest-run.sh" --payload "$PAYLOAD" --hostroot --timeout 300 \
	-- ./vid_demo 2>&1 | sed -u 's/\r$//' | tee "$log" | grep -v '^@'
rc=${PIPESTATUS[0]}
set -e

ram=$(sed -n 's/^@ram //p' "$log")
if [ "$rc" = 0 ] && [ -n "$ram" ]; then
	data=$(mktemp)
	trap 'rm -f "$data"' EXIT
	# sync, first MiB, length in MiB of each run
	awk '$1 == "@run" { printf "%d %.6f %.6f\n", $2, $3 / 1048576, $4 * 4096 / 1048576 }' \
		"$log" >"$data"
	if [ -s "$data" ]; then
		gnuplot -e "data='$data'; out='$png'; ram=$ram" \
			"$ROOT/tools/vid-demo/demo.gp"
		cp "$png" "$RESULTS/demo-latest.png"
		echo "demo: the dirty pages per sync, drawn: ${png#"$ROOT"/}"
	fi
fi
exit "$rc"

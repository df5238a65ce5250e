#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make demo: build the module and the demo program, boot the test guest,
# and run one narrated DMA round trip through this module's mappings.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PAYLOAD=$ROOT/build/demo-payload

echo "== building the module (Debian 6.12 headers)"
make -s -C "$ROOT" modules >/dev/null
echo "== building the demo program"
make -s -C "$ROOT/tools/vid-demo" OUT="$PAYLOAD" >/dev/null
cp "$ROOT/vfio-iommu-dirty.ko" "$PAYLOAD/"

echo "== booting the guest: q35, emulated VT-d, QEMU edu device on vfio-pci"
echo
exec "$ROOT/scripts/guest-run.sh" --payload "$PAYLOAD" --timeout 300 \
	-- ./vid_demo

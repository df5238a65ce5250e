#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Run sparse over every C file of the module (C=2 rechecks files that are
# already built) and fail on any report, wherever sparse says it is.
set -euo pipefail

KDIR=${1:?usage: sparse.sh KDIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

make -s -C "$KDIR" M="$ROOT" C=2 CHECK=sparse W=1 modules >"$LOG" 2>&1 || {
	cat "$LOG"
	echo "sparse: build failed" >&2
	exit 1
}
if grep -E 'warning:|error:' "$LOG"; then
	echo "sparse: $(grep -cE 'warning:|error:' "$LOG") report(s)" >&2
	exit 1
fi
echo "sparse: clean"

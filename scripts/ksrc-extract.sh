#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# ksrc-extract.sh DEST PATH...
#
# Extract files of the kernel source tree (paths relative to its top, e.g.
# scripts/checkpatch.pl) from Debian's linux-source-6.12 tarball into DEST,
# keeping their relative paths. Files already present are not extracted
# again, so the (slow) tarball is read at most once per cache.
set -euo pipefail

TARBALL=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
TOP=linux-source-6.12
DEST=${1:?usage: ksrc-extract.sh DEST PATH...}
shift

missing=()
for f in "$@"; do
	[ -e "$DEST/$f" ] || missing+=("$TOP/$f")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ ! -r "$TARBALL" ]; then
	echo "ksrc-extract: $TARBALL not found; run scripts/install-deps.sh" >&2
	exit 1
fi
mkdir -p "$DEST"
tar -C "$DEST" -xJf "$TARBALL" --strip-components=1 "${missing[@]}"

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Provide the kselftest harness headers (kselftest_harness.h, kselftest.h)
# for building the selftests. They are not kept in this repository: they are
# taken, at build time, from Debian's linux-source-6.12 tarball through
# ksrc-extract.sh, which reads the tarball only for files still missing.
#
# Usage: $0 [CACHE_DIR]
#   CACHE_DIR defaults to build/ksft under the repository root.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/build/ksft}
ksrc=$root/build/ksrc
files="kselftest_harness.h kselftest.h"

missing=
for f in $files; do
	[ -s "$dest/$f" ] || missing=1
done
[ -z "$missing" ] && exit 0

"$root/scripts/ksrc-extract.sh" "$ksrc" \
	tools/testing/selftests/kselftest_harness.h \
	tools/testing/selftests/kselftest.h
mkdir -p "$dest"
for f in $files; do
	cp "$ksrc/tools/testing/selftests/$f" "$dest/$f.tmp"
	mv -f "$dest/$f.tmp" "$dest/$f"
done

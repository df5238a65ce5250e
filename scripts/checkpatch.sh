#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Style checks with the kernel's own tools, taken from Debian's
# linux-source-6.12 tarball (extracted once into build/ksrc):
#  - checkpatch.pl --strict over every C file and header of the project;
#  - kernel-doc -Wall over the module's sources, so that every kernel-doc
#    comment is well formed and matches its function.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KSRC=$ROOT/build/ksrc

"$ROOT/scripts/ksrc-extract.sh" "$KSRC" scripts/checkpatch.pl \
	scripts/spelling.txt scripts/const_structs.checkpatch scripts/kernel-doc

cd "$ROOT"
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h' |
	sort)
[ ${#files[@]} -gt 0 ] || { echo "checkpatch: no files" >&2; exit 1; }

# The module is out of tree: there is no kernel git tree or MAINTAINERS.
if ! "$KSRC/scripts/checkpatch.pl" --strict --no-tree --terse --show-types \
		--quiet --ignore FILE_PATH_CHANGES -f "${files[@]}"; then
	echo "checkpatch: reports above" >&2
	exit 1
fi
echo "checkpatch: clean (${#files[@]} files)"

mapfile -t module_files < <(printf '%s\n' "${files[@]}" | grep -v /)
out=$(perl "$KSRC/scripts/kernel-doc" -none -Wall "${module_files[@]}" 2>&1)
if [ -n "$out" ]; then
	echo "$out"
	echo "kernel-doc: reports above" >&2
	exit 1
fi
echo "kernel-doc: clean (${#module_files[@]} files)"

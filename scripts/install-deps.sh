#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the build, the guest runner and the tests need, from
# Debian's archive only. Idempotent: when nothing is missing it prints
# nothing and exits 0.
set -euo pipefail

PKGS=(
	build-essential
	kmod
	libkmod-dev
	sparse
	perl
	xz-utils
	cpio
	busybox-static
	qemu-system-x86
	linux-headers-6.12-amd64
	linux-image-6.12-amd64
	linux-source-6.12
	linux-image-amd64
	linux-headers-amd64
	dkms
	flex
	bison
	bc
	libelf-dev
	libssl-dev
	gnuplot-nox
	# coverage of make check-debug (scripts/coverage.sh): lcov, genhtml
	lcov
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

# make ... ARCH=arm64: the arm64 lane's packages too, after the tools
# above (unpacking its kernel runs depmod).
arm64_deps() {
	if [ "${ARCH:-}" = arm64 ]; then
		"$(dirname "$0")/arm64.sh" fetch
	fi
}

[ ${#missing[@]} -eq 0 ] && { arm64_deps; exit 0; }

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: need root to install: ${missing[*]}" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
arm64_deps

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The README's first two commands on a fresh Debian 12, as a new user runs
# them: a minimal bookworm root (debootstrap --variant=minbase plus git and
# make, nothing else), "git clone" of this checkout's committed HEAD, then
# "make demo" and "make check" in the clone, chrooted, in private mount and
# PID namespaces. Fails if either fails. This is the one place where the
# dependencies are really missing when make starts: every other run is on
# a machine where an earlier run installed them, so a target that uses a
# package before "deps" installed it (issue 13) goes unseen there.
#
# usage: scripts/fresh-machine-check.sh [--keep] [--refresh] [-- CMD...]
#
#   -- CMD...   run these shell command lines in the clone instead of
#               "make demo" and "make check", e.g. -- 'make check KVER=6.1'
#   --keep      leave the root in place afterwards (its path is printed)
#   --refresh   build the base root afresh even if the cache has one
#
# Every command runs, in turn, even after one failed; the exit status is 0
# only when all passed. Uncommitted changes are not part of the check.
#
# The base root is cached untouched, as debootstrap left it plus the apt
# sources a Debian 12 install writes, never with anything installed into
# it, so each run starts from what a new user has:
#
#   $VID_FRESH_CACHE (default /var/cache/vfio_iommu_dirty/fresh-root)
#     bookworm-minbase.tar   the base root; rebuilt when older than
#                            $VID_FRESH_MAX_AGE days (default 30), so that
#                            it does not drift far from the archive
#
# The working root is a scratch directory under $VID_FRESH_WORK (default
# /var/tmp), removed afterwards: a few GiB once the dependencies are in.
# Mirrors: $VID_FRESH_MIRROR (default http://deb.debian.org/debian) and
# $VID_FRESH_SECURITY (http://deb.debian.org/debian-security), Debian's
# main and security archives, the two a Debian 12 install uses.
#
# The root gets a /dev of its own with the usual character devices, plus
# /dev/kvm when this machine has it (as a fresh machine would; the guest
# runner probes it and falls back to TCG, which works in a chroot too;
# VID_FRESH_KVM=0 leaves it out). Nothing else of the host is shared but
# the network, /etc/resolv.conf and, read-only, this checkout's git
# directory to clone from. The PID namespace makes sure that no QEMU or
# compiler outlives the run.
#
# debootstrap is installed on this host when missing. It is a tool of this
# check only, not a dependency of the project, so scripts/install-deps.sh
# (which the fresh root itself runs) does not carry it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUITE=bookworm
MIRROR=${VID_FRESH_MIRROR:-http://deb.debian.org/debian}
SECURITY=${VID_FRESH_SECURITY:-http://deb.debian.org/debian-security}
CACHE=${VID_FRESH_CACHE:-/var/cache/vfio_iommu_dirty/fresh-root}
MAX_AGE=${VID_FRESH_MAX_AGE:-30}
WORKBASE=${VID_FRESH_WORK:-/var/tmp}
BASE_TAR=$CACHE/$SUITE-minbase.tar
# Where the clone lives in the root, and where its origin is mounted.
CLONE=/root/vfio_iommu_dirty
ORIGIN=/mnt/origin.git
LOGDIR=$ROOT/build/logs/fresh-machine

msg() { echo "fresh-machine: $*" >&2; }
die() { msg "error: $*"; exit 1; }

keep=0
refresh=0
cmds=()
while [ $# -gt 0 ]; do
	case $1 in
	--keep)    keep=1; shift ;;
	--refresh) refresh=1; shift ;;
	--)        shift; cmds=("$@"); break ;;
	-h|--help) sed -n '4,48p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
	*)         die "unknown argument: $1 (see --help)" ;;
	esac
done
# The README's Quick start, in its order.
[ ${#cmds[@]} -gt 0 ] || cmds=("make demo" "make check")

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts)"
for t in unshare chroot mknod flock git tar; do
	command -v "$t" >/dev/null || die "$t not found"
done

if ! command -v debootstrap >/dev/null; then
	msg "installing debootstrap on this host"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends debootstrap >/dev/null ||
		die "could not install debootstrap"
fi

# What the new user clones: the committed HEAD, also when HEAD is
# detached or other work sits uncommitted in this tree.
head=$(git -C "$ROOT" rev-parse --verify HEAD)
gitdir=$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
	msg "note: uncommitted changes in $ROOT are not part of the check"
fi

start=$SECONDS

# ------------------------------------------------------------ base root

# make_base: debootstrap a minimal root and store it as $BASE_TAR. The
# sources.list is the one the Debian 12 installer writes (main, updates
# and security): debootstrap itself names only the suite it installed.
make_base() {
	local tmp=$CACHE/build.tmp

	rm -rf --one-file-system "$tmp"
	mkdir -p "$tmp/root"
	msg "debootstrap $SUITE (minbase, git, make) from $MIRROR"
	if ! debootstrap --variant=minbase --include=git,make \
			"$SUITE" "$tmp/root" "$MIRROR" >"$tmp/debootstrap.log" 2>&1; then
		tail -n 30 "$tmp/debootstrap.log" >&2
		die "debootstrap failed (log: $tmp/debootstrap.log)"
	fi
	cat >"$tmp/root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
	# debootstrap copies the host's resolver configuration and name and
	# keeps the .debs it installed; none of it is on a fresh machine
	# (the run supplies its own resolver).
	rm -f "$tmp/root/etc/resolv.conf" "$tmp/root/etc/hostname" \
		"$tmp"/root/var/cache/apt/archives/*.deb
	tar -C "$tmp/root" --numeric-owner -cf "$tmp/base.tar" . ||
		die "could not archive the base root"
	mv -f "$tmp/base.tar" "$BASE_TAR"
	rm -rf --one-file-system "$tmp"
}

mkdir -p "$CACHE"
# Two runs at once share the cache: one builds, the other waits for it.
exec 9>"$CACHE/lock"
flock 9
if [ "$refresh" = 1 ] || [ ! -s "$BASE_TAR" ] ||
   [ -n "$(find "$BASE_TAR" -mtime +"$MAX_AGE" 2>/dev/null)" ]; then
	make_base
	msg "base root built in $((SECONDS - start)) s"
else
	msg "base root from the cache ($BASE_TAR)"
fi

work=$(mktemp -d "$WORKBASE/vid-fresh.XXXXXX")
cleanup() {
	if [ "$keep" = 1 ]; then
		msg "root kept in $work/root"
	else
		# The mounts went with the namespace; --one-file-system in case
		# one did not.
		rm -rf --one-file-system "$work"
	fi
}
trap cleanup EXIT

t=$SECONDS
mkdir -p "$work/root"
tar -C "$work/root" --numeric-owner -xpf "$BASE_TAR"
flock -u 9
exec 9>&-
msg "root unpacked in $((SECONDS - t)) s ($work/root)"

# The run's resolver: the one thing of the host's configuration a fresh
# machine on this network would have too.
cat /etc/resolv.conf >"$work/root/etc/resolv.conf"
mkdir -p "$work/root$ORIGIN"

# ------------------------------------------------------------ the run

# The part inside the namespaces, before chroot: mounts. Runs as PID 1 of
# the new PID namespace; when it ends, everything started in it dies.
# shellcheck disable=SC2016 # expanded by the inner shell
setup='
set -euo pipefail
r=$1 gitdir=$2 origin=$3 kvm=$4
shift 4
mount -t proc proc "$r/proc"
mount -t sysfs sysfs "$r/sys"
mount -t tmpfs -o mode=755,nosuid dev "$r/dev"
for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
	IFS=: read -r name maj min <<<"$n"
	mknod -m 666 "$r/dev/$name" c "$maj" "$min"
done
mkdir -p "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm"
ln -s /proc/self/fd "$r/dev/fd"
ln -s /proc/self/fd/0 "$r/dev/stdin"
ln -s /proc/self/fd/1 "$r/dev/stdout"
ln -s /proc/self/fd/2 "$r/dev/stderr"
if [ "$kvm" = 1 ] && [ -c /dev/kvm ]; then
	touch "$r/dev/kvm"
	mount --bind /dev/kvm "$r/dev/kvm"
fi
mount -t tmpfs -o mode=755,nosuid,nodev run "$r/run"
mkdir -p "$r/run/lock"
mount --bind "$gitdir" "$r$origin"
mount -o remount,bind,ro "$r$origin"
# A root login shell'"'"'s environment, none of ours (no MAKEFLAGS, KVER,
# DEBIAN_FRONTEND from whoever started this check).
exec chroot "$r" /usr/bin/env -i HOME=/root USER=root LOGNAME=root \
	SHELL=/bin/bash TERM=dumb LANG=C.UTF-8 \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	/bin/bash -c "$FRESH_INNER" fresh-inner "$@"
'

# Inside the chroot: clone as the README says, then each command.
# shellcheck disable=SC2016 # expanded by the inner shell
inner='
set -uo pipefail
origin=$1 clone=$2 head=$3
shift 3
git clone -q "$origin" "$clone" && cd "$clone" &&
	git -c advice.detachedHead=false checkout -q "$head" || exit 125
echo "fresh-machine: cloned $(git log -1 --format="%h %s")"
rc=0
for cmd in "$@"; do
	t=$SECONDS
	echo "fresh-machine: \$ $cmd"
	if bash -c "$cmd"; then
		echo "fresh-machine: PASS: $cmd ($((SECONDS - t)) s)"
	else
		echo "fresh-machine: FAIL: $cmd (exit $?, $((SECONDS - t)) s)"
		rc=1
	fi
done
exit $rc
'

# One log per list of commands, so that runs of different commands (say
# 'make bench' and 'make check KVER=6.1' at once) keep theirs apart.
mkdir -p "$LOGDIR"
log=$LOGDIR/$(printf '%s_' "${cmds[@]}" | tr -c 'A-Za-z0-9.=_-' '-' |
	      sed 's/_$//').log
kvm=${VID_FRESH_KVM:-1}
msg "running in the root: ${cmds[*]} (log: ${log#"$ROOT"/})"
t=$SECONDS
set +e
FRESH_INNER=$inner unshare --mount --pid --fork --propagation private \
	/bin/bash -c "$setup" fresh-setup "$work/root" "$gitdir" "$ORIGIN" \
	"$kvm" "$ORIGIN" "$CLONE" "$head" "${cmds[@]}" </dev/null 2>&1 |
	tee "$log"
rc=${PIPESTATUS[0]}
set -e
msg "commands took $((SECONDS - t)) s; whole check $((SECONDS - start)) s"

# The per-command verdicts again, at the end where CI shows them.
grep -E '^fresh-machine: (PASS|FAIL): ' "$log" >&2 || true
if [ "$rc" -ne 0 ]; then
	msg "FAILED (exit status $rc)"
	exit 1
fi
msg "passed: ${cmds[*]}"

#!/usr/bin/env bash
# Runs the README's two set-up commands (scripts/demo.sh, then
# scripts/test.sh) on a clean Debian 12: a minimal root made by
# debootstrap, a fresh clone of this checkout's HEAD (what is committed,
# not the working tree), chroot.  Prints the time of each phase; exits
# non-zero if either command fails.  Needs root (debootstrap, mount,
# chroot) and network access to deb.debian.org.
#
#   scripts/fresh-machine-check.sh            reuse the cached clean root
#   scripts/fresh-machine-check.sh --no-cache debootstrap a new one first (the
#                                             cached .deb files are still used)
#   scripts/fresh-machine-check.sh --keep     leave the root for a look
#
# Cache (outside the repository; $UVT_FRESH_CACHE, default
# /var/cache/uvtask-fresh): a tarball of the untouched debootstrap root,
# and the .deb files apt downloaded inside it (same packages, not
# re-downloaded).  Nothing installed in a root is ever reused: each run
# unpacks the untouched tarball into a new directory.
set -euo pipefail

cache=${UVT_FRESH_CACHE:-/var/cache/uvtask-fresh}
mirror=${UVT_FRESH_MIRROR:-http://deb.debian.org/debian}
use_cache=1 keep=0
for a in "$@"; do
  case "$a" in
    --no-cache) use_cache=0 ;;
    --keep) keep=1 ;;
    *) echo "usage: scripts/fresh-machine-check.sh [--no-cache] [--keep]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine-check: run as root (debootstrap, mount, chroot)" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "fresh-machine-check: note: uncommitted changes are not tested (HEAD is $commit)"
fi

now() { date +%s.%N; }
elapsed() { LC_ALL=C awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f s", b - a }'; }
timings=()
phase_start=
begin() { phase_start=$(now); echo "== fresh-machine-check: $1"; }
end() { local t; t=$(elapsed "$phase_start"); timings+=("$(printf '%-34s %s' "$1" "$t")"); echo "== $1: $t"; }
report() {
  echo "== fresh-machine-check timings (commit ${commit:0:12})"
  printf '   %s\n' "${timings[@]}"
}

root=
cleanup() {
  local rc=$?
  if [ -n "$root" ]; then
    # -R: /dev was bind-mounted recursively (/dev/pts, /dev/shm...).
    for m in "$root/dev" "$root/proc" "$root/var/cache/apt/archives"; do
      if mountpoint -q "$m"; then umount -R "$m" || umount -R -l "$m"; fi
    done
    if [ "$keep" -eq 1 ]; then
      echo "fresh-machine-check: root kept in $root"
    elif ! grep -q " ${root}[/ ]" /proc/self/mounts; then
      rm -rf --one-file-system "$root"
    else
      echo "fresh-machine-check: something is still mounted under $root; not removing it" >&2
    fi
  fi
  [ ${#timings[@]} -gt 0 ] && report
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

total_start=$(now)
mkdir -p "$cache/debs"
tarball="$cache/bookworm-minbase.tar"

# ---- 1. a clean Debian 12 root --------------------------------------------
if [ "$use_cache" -eq 0 ] || [ ! -s "$tarball" ]; then
  begin "debootstrap --variant=minbase bookworm"
  if ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  fresh=$(mktemp -d /var/tmp/uvtask-debootstrap.XXXXXX)
  root=$fresh   # cleaned up (or kept) on every exit path from here on
  debootstrap --variant=minbase bookworm "$fresh" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  tar -C "$fresh" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf --one-file-system "$fresh"
  root=
  end "debootstrap"
fi

begin "unpack the clean root, clone HEAD into it"
root=$(mktemp -d /var/tmp/uvtask-fresh.XXXXXX)
tar -C "$root" --numeric-owner -xpf "$tarball"
# What a minbase root lacks that any installed machine has.
echo "127.0.0.1 localhost" >"$root/etc/hosts"
# debootstrap lists bookworm alone; an installed Debian 12 also has its
# updates and security suites (Chromium, for one, is updated only there).
cat >"$root/etc/apt/sources.list" <<EOF2
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF2
cp /etc/resolv.conf "$root/etc/resolv.conf"
# A clean clone of what is committed: no build directory, no untracked file.
git clone -q --no-local "$repo" "$root/src/uvtask"
git -C "$root/src/uvtask" checkout -q --detach "$commit"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"   # so unmounting it never reaches the host's /dev
mount --bind "$cache/debs" "$root/var/cache/apt/archives"
end "unpack + clone"

in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /src/uvtask && $1"
}

# ---- 2. the README's commands ---------------------------------------------
status=0
begin "scripts/demo.sh"
if in_root scripts/demo.sh; then end "scripts/demo.sh"; else status=1; end "scripts/demo.sh (FAILED)"; fi

if [ "$status" -eq 0 ]; then
  begin "scripts/test.sh"
  if in_root scripts/test.sh; then end "scripts/test.sh"; else status=1; end "scripts/test.sh (FAILED)"; fi
fi

timings+=("$(printf '%-34s %s' total "$(elapsed "$total_start")")")
if [ "$status" -eq 0 ]; then
  echo "fresh-machine-check: PASS: the README's commands work on a clean Debian 12"
else
  echo "fresh-machine-check: FAIL" >&2
fi
exit "$status"

#!/usr/bin/env bash
# Installs the Debian 12 packages uvtask builds, tests and demos with,
# only those missing (apt-get; needs root, or sudo when available).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libuv1-dev libunwind-dev libsqlite3-dev libcriterion-dev
  libdw-dev libelf-dev libjansson-dev
  valgrind redis-server redis-tools sqlite3
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user chromium gdb
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Installs the Debian 12 packages uvtask needs, only those missing
# (apt-get; needs root, or sudo when available).
#   scripts/install-deps.sh         everything: build, tests, benchmarks, CI
#   scripts/install-deps.sh --demo  only what scripts/demo.sh builds with:
#                                   the libraries, the `uvtask` command and
#                                   the examples
set -euo pipefail

# The libraries (release and debug), the `uvtask` command, the examples.
DEMO_PACKAGES=(
  build-essential cmake pkg-config
  libuv1-dev libunwind-dev libsqlite3-dev
  libdw-dev libelf-dev libjansson-dev
)
# The test suite on top: Criterion; valgrind, redis and Chromium for the
# tests that run them; the aarch64 cross compiler (with its C library
# headers) and qemu-user for the aarch64 context-switch self-test; the
# sqlite3 shell and gdb for inspecting recordings; python3 for the
# file-circle check (ctest file_circles, scripts/file-circles.py).
TEST_PACKAGES=(
  libcriterion-dev
  valgrind redis-server redis-tools sqlite3
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user chromium gdb
  python3
)

case "${1:-}" in
  --demo) PACKAGES=("${DEMO_PACKAGES[@]}") ;;
  "") PACKAGES=("${DEMO_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  *) echo "usage: scripts/install-deps.sh [--demo]" >&2; exit 2 ;;
esac

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

#!/usr/bin/env bash
# Builds uvtask and runs the whole test suite with ctest.
#   scripts/test.sh             release build in build/
#   scripts/test.sh --sanitize  AddressSanitizer + UBSan build in build-asan/
#   scripts/test.sh --tsan      ThreadSanitizer build of the tracer in build-tsan/
#   scripts/test.sh --ucontext  the portable context switch (-DUVT_UCONTEXT=ON,
#                               a documented option) in build-uc/
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

dir=build
opts=()
case "${1:-}" in
  --sanitize) dir=build-asan; opts+=(-DUVT_SANITIZE=ON) ;;
  --tsan) dir=build-tsan; opts+=(-DUVT_TSAN=ON) ;;
  --ucontext) dir=build-uc; opts+=(-DUVT_UCONTEXT=ON) ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--sanitize | --tsan | --ucontext]" >&2; exit 2 ;;
esac

cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUVT_BUILD_TESTS=ON "${opts[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
ctest --output-on-failure -j"$(nproc)"

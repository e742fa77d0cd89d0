#!/usr/bin/env bash
# Builds uvtask and runs a demo: the talk's "first completed" scenario,
# first with its bug (tasks left running when main returns), then fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "== examples/first_completed (the bug: the slower mirrors are left running)"
build/examples/first_completed
echo
echo "== examples/first_completed --fixed (the rest are cancelled and awaited)"
build/examples/first_completed --fixed

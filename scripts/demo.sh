#!/usr/bin/env bash
# Builds uvtask and runs the demo: the talk's "first completed" scenario
# (the slower mirrors are left running when main returns) with recording
# on, then what was recorded, then the fixed version.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --demo
# Only what the demo runs: the release and debug libraries, the `uvtask`
# command and the examples; no tests (no Criterion needed), no benchmarks,
# no cross builds.  scripts/test.sh turns the tests back on in the same
# build directory.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUVT_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target uvtask uvtask_debug uvtask_cmd uvt_examples >/dev/null

db=build/demo.db
rm -f "$db" "$db-wal" "$db-shm"
echo "== ASYNCIODEBUG=$db build/examples/first_completed   (debug library in front)"
ASYNCIODEBUG="$db" LD_LIBRARY_PATH="$PWD/build/debug" build/examples/first_completed
echo
echo "== uvtask report $db"
build/uvtask report "$db" || [ $? -eq 1 ]   # 1: findings, as expected here
echo
echo "== build/examples/first_completed --fixed"
ASYNCIODEBUG="$db.fixed" LD_LIBRARY_PATH="$PWD/build/debug" build/examples/first_completed --fixed
rm -f "$db.fixed"

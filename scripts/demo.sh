#!/usr/bin/env bash
# Builds uvtask and runs the demo: the talk's "first completed" scenario
# (the slower mirrors are left running when main returns) with recording
# on, then what was recorded, then the fixed version.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

db=build/demo.db
rm -f "$db" "$db-wal" "$db-shm"
echo "== ASYNCIODEBUG=$db build/examples/first_completed   (debug library in front)"
ASYNCIODEBUG="$db" LD_LIBRARY_PATH="$PWD/build/debug" build/examples/first_completed
echo
if [ -x build/uvtask ]; then
  echo "== uvtask report $db"
  build/uvtask report "$db" || true
else
  echo "== what was recorded (sqlite3 $db)"
  sqlite3 -header -column "$db" \
    "SELECT kind, file || ':' || line AS site, message FROM findings ORDER BY id"
fi
echo
echo "== build/examples/first_completed --fixed"
ASYNCIODEBUG="$db.fixed" LD_LIBRARY_PATH="$PWD/build/debug" build/examples/first_completed --fixed
rm -f "$db.fixed"

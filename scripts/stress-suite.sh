#!/usr/bin/env bash
# Runs the built suite N times in a row under `ctest -j8` while two CPU
# hogs run, to find tests that depend on timing.  Prints each run's result
# and the failing tests; exits non-zero if any run failed.
#   scripts/stress-suite.sh [N=20] [build dir=build]
# Build first (scripts/test.sh).  The hogs are this script's children and
# are killed on every exit path.
set -euo pipefail
n=${1:-20}
dir=${2:-build}
cd "$(dirname "$0")/.."
[ -f "$dir/CTestTestfile.cmake" ] || { echo "stress-suite: no suite in $dir (run scripts/test.sh first)" >&2; exit 2; }

hogs=()
stop_hogs() { [ ${#hogs[@]} -eq 0 ] || kill "${hogs[@]}" 2>/dev/null || true; }
trap stop_hogs EXIT
trap 'exit 130' INT TERM
for _ in 1 2; do
  yes >/dev/null &
  hogs+=($!)
done

failed_runs=0
log=$(mktemp /tmp/stress-suite.XXXXXX)
for i in $(seq "$n"); do
  start=$(date +%s)
  if (cd "$dir" && ctest -j8 --output-on-failure >"$log" 2>&1); then
    echo "run $i/$n: pass ($(( $(date +%s) - start )) s)"
  else
    failed_runs=$((failed_runs + 1))
    echo "run $i/$n: FAIL ($(( $(date +%s) - start )) s):"
    sed -n '/The following tests FAILED/,$p' "$log" | grep -E '^\s+[0-9]+ - ' || true
    cp "$log" "$log.run$i"
    echo "  full output: $log.run$i"
  fi
done
rm -f "$log"
echo "stress-suite: $n runs under ctest -j8 with 2 CPU hogs: $failed_runs failed"
[ "$failed_runs" -eq 0 ]

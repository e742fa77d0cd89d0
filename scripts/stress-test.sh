#!/usr/bin/env bash
# Runs one Criterion test N times, PAR at a time, while HOGS CPU hogs run,
# to count how often a test that depends on timing or interleaving fails.
# Keeps the output of each failing run; exits non-zero if any failed.
#   scripts/stress-test.sh BINARY SUITE/TEST [N=200] [PAR=4] [HOGS=3]
# e.g. scripts/stress-test.sh build/tests/test_recorder_safety \
#        safety/a_full_disk_is_never_reported_as_a_clean_run 600
# The hogs are this script's children and are killed on every exit path.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: scripts/stress-test.sh BINARY SUITE/TEST [N] [PAR] [HOGS]" >&2; exit 2; }
bin=$1 filter=$2 n=${3:-200} par=${4:-4} nhogs=${5:-3}
[ -x "$bin" ] || { echo "stress-test: $bin is not an executable (build first)" >&2; exit 2; }
# A filter that matches nothing would "pass" every run.
"$bin" --list 2>&1 | awk -v s="${filter%%/*}" -v t="${filter#*/}" \
  '/^[^ ]+: [0-9]+ tests?$/ { suite = substr($1, 1, length($1) - 1) } suite == s && $NF == t { found = 1 } END { exit !found }' ||
  { echo "stress-test: $bin has no test $filter" >&2; exit 2; }
logs=$(mktemp -d /tmp/stress-test.XXXXXX)

hogs=()
stop_hogs() { [ ${#hogs[@]} -eq 0 ] || kill "${hogs[@]}" 2>/dev/null || true; }
trap stop_hogs EXIT
trap 'exit 130' INT TERM
for _ in $(seq "$nhogs"); do
  yes >/dev/null &
  hogs+=($!)
done

i=0
while [ $i -lt "$n" ]; do
  runs=()
  for _ in $(seq "$par"); do
    i=$((i + 1))
    [ $i -le "$n" ] || break
    ( "$bin" --filter "$filter" >"$logs/run$i.log" 2>&1 && rm -f "$logs/run$i.log" ) &
    runs+=($!)
  done
  for p in "${runs[@]}"; do wait "$p" || true; done
done
failed=$(find "$logs" -name 'run*.log' | wc -l)
echo "stress-test: $filter: $n runs, $par at a time, $nhogs CPU hogs: $failed failed"
if [ "$failed" -gt 0 ]; then
  echo "  failing runs' output: $logs"
  exit 1
fi
rmdir "$logs"

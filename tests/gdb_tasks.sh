#!/bin/sh
# gdb's `info uvtasks` (share/uvtask/gdb/uvtask.py) lists the five parked
# tasks of tracer_scenario's "five" at their parked lines: on the live
# process, and on a core file gcore made of it; with the library given in
# LIB_DIR (release or debug), without its debug info being needed.
#   gdb_tasks.sh SCENARIO SOURCE EXTENSION LIB_DIR WORKDIR
set -u
scenario=$1 src=$2 ext=$3 libdir=$4 work=$5
mkdir -p "$work" || exit 1
out="$work/out.txt"
: > "$out"
LD_LIBRARY_PATH="$libdir" "$scenario" five > "$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$work"/core.*' EXIT
# Wait for "ready" (every task parked), at most 20 s.
i=0
until grep -q ready "$out"; do
  i=$((i + 1))
  [ $i -gt 2000 ] && { echo "the scenario never said ready"; exit 1; }
  sleep 0.01
done
check() { # $1: what, $2: gdb's output
  fail=0
  for m in five-lock:on_lock five-event:on_event five-queue:on_queue \
           five-sleep:on_sleep five-await:on_task; do
    marker=${m%%:*} func=${m#*:}
    line=$(grep -n "@$marker \*/" "$src" | cut -d: -f1)
    if ! printf '%s\n' "$2" | grep -q "parked at   $src:$line in $func\$"; then
      echo "$1: no task parked at $src:$line in $func"; fail=1
    fi
  done
  printf '%s\n' "$2" | grep -q "^7 uvtask tasks" || { echo "$1: not 7 tasks"; fail=1; }
  [ $fail = 0 ] || printf '%s\n' "$2"
  return $fail
}
live=$(timeout 120 gdb -batch -nx -ex "source $ext" -ex "info uvtasks" -p $pid 2>&1)
check live "$live" || exit 1
timeout 120 gcore -o "$work/core" $pid > /dev/null 2>&1 || { echo "gcore failed"; exit 1; }
core=$(timeout 120 gdb -batch -nx -ex "set solib-search-path $libdir" -ex "source $ext" \
       -ex "info uvtasks" "$scenario" "$work/core.$pid" 2>&1)
check core "$core" || exit 1
echo "live and core: 5 tasks at their parked lines"

#!/bin/sh
# gdb's `info uvtasks` and `uvtask bt` (share/uvtask/gdb/uvtask.py) on
# tracer_scenario's "five" (five tasks parked on five different things, a
# sixth awaiting one of them): `info uvtasks` lists them at their parked
# lines, and `uvtask bt` unwinds three of them, from the registers their
# switch saved, to the user's function and the line of its parking call.
# On the live process, on the core the kernel dumps when SIGABRT ends it,
# and on a core gcore made of it; with the library in LIB_DIR (release or
# debug), without its debug info being needed.
#
# gcore cannot copy a stack that has a guard region (Linux 6.13+): on such
# a core `uvtask bt` must say so; a second run with
# UVTASK_NO_GUARD_REGIONS=1 checks `uvtask bt` on a gcore core for real.
#   gdb_tasks.sh SCENARIO SOURCE EXTENSION LIB_DIR WORKDIR [stripped]
# With "stripped", a copy of the library without any symbol table but the
# dynamic one (strip --strip-all) stands in for it.
set -u
scenario=$1 src=$2 ext=$3 libdir=$4 work=$5 strip=${6:-}
rm -rf "$work"
mkdir -p "$work/kcore" || exit 1
if [ "$strip" = stripped ]; then
  mkdir -p "$work/lib" &&
  cp -L "$libdir/libuvtask.so.0.2" "$work/lib/" &&
  strip --strip-all "$work/lib/libuvtask.so.0.2" || { echo "cannot strip a copy"; exit 1; }
  libdir=$work/lib
fi
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"/core.* "$work"/kcore' EXIT

line_of() { grep -n "@$1 \*/" "$src" | cut -d: -f1; }

# Start the scenario in $work/kcore (where the kernel writes its core),
# with core dumps allowed if the hard limit lets us; wait for "ready"
# (every task parked), at most 20 s.
start() { # $1: extra environment assignment, or ""
  out="$work/out.txt"
  : > "$out"
  (cd "$work/kcore" && { ulimit -c unlimited 2>/dev/null; true; } &&
   exec env $1 LD_LIBRARY_PATH="$libdir" "$scenario" five) > "$out" 2>/dev/null &
  pid=$!
  i=0
  until grep -q ready "$out"; do
    i=$((i + 1))
    [ $i -gt 2000 ] && { echo "the scenario never said ready"; exit 1; }
    sleep 0.01
  done
}

check_info() { # $1: what, $2: gdb's output
  fail=0
  for m in five-lock:on_lock five-event:on_event five-queue:on_queue \
           five-sleep:on_sleep five-await:on_task; do
    marker=${m%%:*} func=${m#*:}
    line=$(line_of "$marker")
    if ! printf '%s\n' "$2" | grep -q "parked at   $src:$line in $func\$"; then
      echo "$1: no task parked at $src:$line in $func"; fail=1
    fi
  done
  printf '%s\n' "$2" | grep -q "^7 uvtask tasks" || { echo "$1: not 7 tasks"; fail=1; }
  [ $fail = 0 ] || printf '%s\n' "$2"
  return $fail
}

# The id `info uvtasks` gives the task named $2 (the first one).
id_of() { printf '%s\n' "$1" | sed -n "s/^task \(#[0-9:]*\) '$2' .*/\1/p" | head -n 1; }

# `uvtask bt` of on_lock, on_queue and the main task (five) must each
# reach that function at the line of its parking call.  A library built
# with UVT_UCONTEXT=ON (UVT_CTX=ucontext here) has no described register
# layout: each `uvtask bt` must say so instead (README, "uvtask bt").
check_bt() { # $1: what, $2: gdb's output
  fail=0
  if [ "${UVT_CTX:-}" = ucontext ]; then
    n=$(printf '%s\n' "$2" | grep -c "^uvtask bt: the library's context switch (ucontext) has no described register layout") || true
    if [ "$n" != 3 ]; then
      echo "$1: $n of 3 uvtask bt said that a ucontext build has no register layout"
      printf '%s\n' "$2"
      return 1
    fi
    return 0
  fi
  for m in five-lock:on_lock five-queue:on_queue five-main:five; do
    marker=${m%%:*} func=${m#*:}
    line=$(line_of "$marker")
    if ! printf '%s\n' "$2" | grep -q "^#[0-9]* *0x[0-9a-f]* in $func () at $src:$line\$"; then
      echo "$1: uvtask bt shows no frame of $func at $src:$line"; fail=1
    fi
  done
  [ $fail = 0 ] || printf '%s\n' "$2"
  return $fail
}

# gdb with the extension: `info uvtasks`, then `uvtask bt` of on_lock,
# on_queue and the main task by the ids it listed; $@: what to debug
# (-p PID, or PROGRAM CORE).
run_gdb() {
  info=$(timeout 120 gdb -batch -nx -ex "set solib-search-path $libdir" \
         -ex "source $ext" -ex "info uvtasks" "$@" 2>&1)
  bt=$(timeout 120 gdb -batch -nx -ex "set solib-search-path $libdir" -ex "source $ext" \
       -ex "uvtask bt $(id_of "$info" on_lock)" -ex "uvtask bt $(id_of "$info" on_queue)" \
       -ex "uvtask bt $(id_of "$info" 'scenarios\[i\].fn')" "$@" 2>&1)
}

# ---- 1: as the kernel allows (guard regions where it has them) ----------
start ""
run_gdb -p $pid
check_info live "$info" || exit 1
check_bt live "$bt" || exit 1

timeout 120 gcore -o "$work/core" $pid > /dev/null 2>&1 || { echo "gcore failed"; exit 1; }
run_gdb "$scenario" "$work/core.$pid"
check_info gcore "$info" || exit 1
if ! printf '%s\n' "$bt" | grep -q "is not in this core"; then
  check_bt gcore "$bt" || exit 1
fi
rm -f "$work/core.$pid"

# SIGABRT, not SIGQUIT: a shell starts background commands with SIGQUIT
# ignored.  Wait at most 20 s for the core to be written.
kill -ABRT $pid
i=0
while kill -0 $pid 2>/dev/null; do
  i=$((i + 1))
  [ $i -gt 2000 ] && { echo "SIGABRT did not end the scenario"; exit 1; }
  sleep 0.01
done
wait $pid 2>/dev/null
pid=
kcore=$(ls "$work"/kcore/core* 2>/dev/null | head -n 1)
if [ -n "$kcore" ]; then
  run_gdb "$scenario" "$kcore"
  check_info "kernel core" "$info" || exit 1
  check_bt "kernel core" "$bt" || exit 1
  rm -f "$kcore"
  kernel="kernel core,"
else
  echo "no kernel core written (core_pattern '$(cat /proc/sys/kernel/core_pattern)'," \
       "ulimit -c $(ulimit -H -c)): that case is not checked"
  kernel=
fi

# ---- 2: without guard regions, a gcore core has the stacks ---------------
start UVTASK_NO_GUARD_REGIONS=1
timeout 120 gcore -o "$work/core" $pid > /dev/null 2>&1 || { echo "gcore failed"; exit 1; }
kill $pid
wait $pid 2>/dev/null
run_gdb "$scenario" "$work/core.$pid"
pid=
check_info "gcore, no guard regions" "$info" || exit 1
check_bt "gcore, no guard regions" "$bt" || exit 1
echo "live, $kernel gcore: 5 tasks at their parked lines, uvtask bt reaches on_lock, on_queue, five"

#!/bin/sh
# gdb loads the installed extension by itself (auto-load): `cmake --install`
# into a temporary prefix, run tracer_scenario's "five" on the installed
# library (release, then debug if built), and attach gdb with only what
# README tells a user of a prefix other than /usr to add; `info uvtasks`
# must then work without any `source`.
#   gdb_autoload.sh CMAKE BUILD_DIR SCENARIO WORKDIR
set -u
cmake=$1 build=$2 scenario=$3 work=$4
prefix=$work/prefix
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null' EXIT
rm -rf "$work"
mkdir -p "$work" || exit 1
"$cmake" --install "$build" --prefix "$prefix" > "$work/install.log" 2>&1 ||
  { cat "$work/install.log"; echo "cmake --install failed"; exit 1; }
libdir=$(dirname "$(find "$prefix" -name libuvtask.so.0.2 -path '*uvtask-debug*' -prune -o \
                    -name libuvtask.so.0.2 -print | head -n 1)")
checked=
for dir in "$libdir" "$libdir/uvtask-debug"; do
  [ -e "$dir/libuvtask.so.0.2" ] || continue
  out="$work/out.txt"
  : > "$out"
  LD_LIBRARY_PATH="$dir" "$scenario" five > "$out" 2>/dev/null &
  pid=$!
  i=0
  until grep -q ready "$out"; do
    i=$((i + 1))
    [ $i -gt 2000 ] && { echo "the scenario never said ready"; exit 1; }
    sleep 0.01
  done
  got=$(timeout 120 gdb -batch -nx \
        -iex "add-auto-load-scripts-directory $prefix/share/gdb/auto-load" \
        -iex "add-auto-load-safe-path $prefix/share/gdb/auto-load" \
        -ex "info uvtasks" -ex "info auto-load python-scripts" -p $pid 2>&1)
  kill $pid
  wait $pid 2>/dev/null
  pid=
  if ! printf '%s\n' "$got" | grep -q "^7 uvtask tasks" ||
     ! printf '%s\n' "$got" | grep -q "^Yes  *$prefix/share/gdb/auto-load$dir/libuvtask.so.[0-9.]*-gdb.py"; then
    printf '%s\n' "$got"
    echo "$dir: gdb did not auto-load the installed extension"
    exit 1
  fi
  checked="$checked $dir"
done
[ -n "$checked" ] || { echo "no libuvtask.so.0.2 installed under $prefix"; exit 1; }
echo "auto-loaded for:$checked"

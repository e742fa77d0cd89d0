#!/bin/sh
# The tracer sees the runtime only through include/uvtask/hooks.h: no file
# in tracer/ may include a header that lives in runtime/ or hooks/.
# Exit status 1, naming the offending lines, if one does.
root=$(cd "$(dirname "$0")/.." && pwd)
bad=0
for f in "$root"/tracer/*.c "$root"/tracer/*.h; do
  grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
    sed 's/.*"\(.*\)".*/\1/' | while read -r h; do
      if [ -e "$root/runtime/$h" ] || [ -e "$root/hooks/$h" ]; then
        echo "${f#$root/}: includes runtime header $h"
        echo bad
      fi
    done
done | { out=$(cat); [ -z "$out" ] || { echo "$out" | grep -v '^bad$'; exit 1; }; }
bad=$?
[ "$bad" -eq 0 ] && echo "tracer/: no runtime headers included"
exit "$bad"

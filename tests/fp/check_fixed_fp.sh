#!/bin/sh
# check_fixed_fp.sh LIB: the debug library (x86_64) never leaves in %rbp
# anything but a frame pointer, which ASYNCIODEBUG_STACKS=fp relies on
# (tracer/fpstack.c): the register must still hold the user's frame
# pointer anywhere inside the library.  Every instruction that writes it
# must set up a frame (mov %rsp,%rbp), take one down (pop %rbp, leave) or
# be the context switch's (which swaps whole register sets).  Lists the
# offending instructions and exits 1 if any; 77 (skipped) without objdump.
lib=$1
command -v objdump >/dev/null 2>&1 || { echo "objdump not found"; exit 77; }
[ -r "$lib" ] || { echo "$lib: not readable"; exit 2; }
objdump -d --no-show-raw-insn "$lib" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $2; next }
  /^ *[0-9a-f]+:\t/ {
    line = $0
    sub(/^ *[0-9a-f]+:\t/, "", line)
    sub(/ *#.*$/, "", line)
    op = line; sub(/[ \t].*$/, "", op)
    args = line; sub(/^[^ \t]+[ \t]*/, "", args)
    if (fn ~ /^<uvt__ctx_(switch_asm|entry)/) next
    writes = 0
    if (args ~ /(^|,)%(rbp|ebp|bp|bpl)$/ && op !~ /^(push|cmp|test|bt)/) writes = 1
    if (op ~ /^(xchg|xadd)/ && args ~ /(^|,)%(rbp|ebp|bp|bpl)(,|$)/) writes = 1
    if (!writes) next
    if (op ~ /^mov/ && args == "%rsp,%rbp") next
    if (op ~ /^pop/ && args == "%rbp") next
    print fn " " line
    bad++
  }
  END {
    if (bad) { print bad " instruction(s) write %rbp with something else than a frame pointer"; exit 1 }
    print "no instruction writes %rbp but frame set-up and take-down"
  }'

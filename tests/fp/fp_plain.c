/*
 * Built with -fomit-frame-pointer: a caller without a frame record that
 * leaves the frame-pointer register alone (nothing here needs it).  A
 * frame-pointer walk from inside fn shows this function (fn's record
 * returns into it) but not this function's caller, as the README says;
 * libunwind, reading the unwind tables, shows both.  So the stack tells
 * which of the two took it.
 */
#include "fp_plain.h"

__attribute__((noinline)) void fp_plain_call(void (*fn)(void)) {
  fn();
  __asm__ volatile("" ::: "memory"); /* not a tail call */
}

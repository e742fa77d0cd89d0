/*
 * A shared library built with frame pointers and -g: fp_auto calls back
 * through it, so that the walk goes on through a library known to keep
 * them (tracer/fpknown.c reads and pins it).
 */
#include "fp_lib.h"

__attribute__((noinline)) void fp_lib_call(void (*fn)(void)) {
  fn();
  __asm__ volatile("" ::: "memory"); /* not a tail call */
}

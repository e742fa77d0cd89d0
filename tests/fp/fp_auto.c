/*
 * fp_auto: many creation stacks of many shapes, for
 * test_recorder_fpauto.  Built twice from this file: fp_auto_fp with frame
 * pointers and fp_auto_nofp without (both -g, so that their DWARF says
 * which), each with fp_plain.c built without them.  The test records each
 * with the default stacks and with ASYNCIODEBUG_STACKS=unwind and compares
 * the stacks stored.
 *
 * Each round, from the main task:
 *   - at recursion depths 0..MAX_DEPTH, a spawn and an await: stacks
 *     shorter than, as long as and longer than the stored depth (16);
 *   - a task that spawns a task of its own (a stack that ends at a task's
 *     bottom after one frame);
 *   - a spawn from a function called by code without frame pointers
 *     (fp_plain_call): there a walk would lose a frame;
 *   - a spawn from a function called back by a shared library built with
 *     frame pointers (fp_lib_call);
 *   - a coroutine made and run.
 * Usage: fp_auto [rounds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <uvtask.h>

#include "fp_lib.h"
#include "fp_plain.h"

#define MAX_DEPTH 20

static int quick(void *arg) {
  (void)arg;
  return 0;
}

static int spawn_await(void) {
  uvt_task_t *t = uvt_spawn(quick, NULL);
  if (t == NULL) return -1;
  return uvt_await(t);
}

/* Not a tail call, not inlined: each level is a frame. */
__attribute__((noinline)) static int nest(int depth) {
  int r = depth > 0 ? nest(depth - 1) : spawn_await();
  __asm__ volatile("" ::: "memory");
  return r;
}

static int spawner(void *arg) {
  (void)arg;
  return spawn_await();
}

static int plain_status;

__attribute__((noinline)) static void from_plain(void) {
  plain_status |= spawn_await();
  __asm__ volatile("" ::: "memory");
}

static int lib_status;

__attribute__((noinline)) static void from_lib(void) {
  lib_status |= spawn_await();
  __asm__ volatile("" ::: "memory");
}

static int fp_auto_main(void *arg) {
  int rounds = *(int *)arg, r, d;
  for (r = 0; r < rounds; r++) {
    uvt_task_t *t;
    uvt_coro_t *c;
    for (d = 0; d <= MAX_DEPTH; d++)
      if (nest(d) != 0) return -1;
    t = uvt_spawn(spawner, NULL);
    if (t == NULL || uvt_await(t) != 0) return -1;
    fp_plain_call(from_plain);
    if (plain_status != 0) return -1;
    fp_lib_call(from_lib);
    if (lib_status != 0) return -1;
    c = uvt_coro(quick, NULL);
    if (c == NULL || uvt_await_coro(c) != 0) return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 10;
  if (rounds <= 0) {
    fprintf(stderr, "usage: fp_auto [rounds]\n");
    return 2;
  }
  return uvt_run(NULL, fp_auto_main, &rounds) == 0 ? 0 : 1;
}

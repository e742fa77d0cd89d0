/*
 * stack_overflow: programs whose task overruns its stack, for test_stack.
 * Each must die (the tests read its stderr and how it ended), so each is
 * a process of its own.  The tests find the spawn lines by their marker
 * comments.
 *
 * Usage: stack_overflow recursion | big-frame
 *
 *  recursion  a task recurses without end on a stack of its own (guarded);
 *  big-frame  past the guarded-stack budget (on slab stacks), a task makes
 *             one 200 KB frame, written end to end, on its 128 KB stack:
 *             the frame reaches into the stack of the task carved just
 *             before it, which is parked.  The task then yields, wakes
 *             that neighbour and parks: were the overrun unnoticed, the
 *             wake-up would crash on the neighbour's wait-queue node
 *             (which lives on its stack), or the neighbour would be
 *             resumed on trampled frames, and nothing would name the
 *             task that overran.  UVTASK_NO_GUARD_REGIONS=1 in the
 *             environment makes the runtime use canaries instead of
 *             guard regions.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvtask.h>

#if defined(__SANITIZE_ADDRESS__)
/* Let the overflow reach the runtime's own detection: no ASan SIGSEGV
 * handler, and locals on the real stack (no fake stacks). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  return "handle_segv=0:detect_stack_use_after_return=0";
}
#define NO_ASAN __attribute__((no_sanitize_address))
#else
#define NO_ASAN
#endif

#define KEEP_FRAME __attribute__((noinline, noclone))

static volatile int keep_going = 1;

static KEEP_FRAME int recurse(int depth) {
  volatile char buf[256];
  int r = 0;
  memset((char *)buf, depth & 0x7f, sizeof buf);
  if (keep_going) r = recurse(depth + 1);
  return r + buf[depth % sizeof buf];
}

static int runaway(void *arg) {
  (void)arg;
  /* The line must carry the name the task has now. */
  uvt_name(NULL, "runaway-%d", 7);
  return recurse(0);
}

static int recursion_main(void *arg) {
  (void)arg;
  uvt_task_t *t = uvt_spawn(runaway, NULL); /* @runaway */
  return uvt_await(t);
}

/* ---- big-frame ---------------------------------------------------------------- */

#define BIG_FRAME (200 * 1024)

static uvt_event_t wake_neighbours;
static int parked;

static int neighbour(void *arg) {
  (void)arg;
  parked++;
  return uvt_event_wait(&wake_neighbours);
}

/* Not visible to ASan: its own checks would stop the writes into the
 * neighbour's (poisoned) frames before the runtime sees them. */
static NO_ASAN KEEP_FRAME int fill_big_frame(void) {
  volatile char buf[BIG_FRAME];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0x5a;
  return buf[BIG_FRAME / 2];
}

static int big_frame(void *arg) {
  (void)arg;
  int r = fill_big_frame();
  /* The switch away must notice before anything else runs. */
  (void)uvt_yield();
  uvt_event_set(&wake_neighbours);
  (void)uvt_sleep(10);
  return r == 0x5a ? 0 : -1;
}

static int big_frame_main(void *arg) {
  FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
  long cap = 65530, n;
  uvt_task_t *t;
  (void)arg;
  if (f != NULL) {
    if (fscanf(f, "%ld", &cap) != 1) cap = 65530;
    fclose(f);
  }
  /* The runtime gives cap / 8 stacks mappings of their own (this task's
   * included); a few more, and the next stacks come from a slab, this
   * one's neighbour below it in the same slab. */
  n = cap / 8 + 4;
  uvt_event_init(&wake_neighbours);
  for (long i = 0; i < n; i++) uvt_detach(uvt_spawn(neighbour, NULL));
  while (parked < n) uvt_yield();
  t = uvt_spawn(big_frame, NULL); /* @big-frame */
  return uvt_await(t);
}

int main(int argc, char **argv) {
  int st;
  /* 128 KiB in every build (sanitizer builds default to more). */
  uvt_set_default_stack_size(128 * 1024);
  if (argc == 2 && strcmp(argv[1], "recursion") == 0)
    st = uvt_run(NULL, recursion_main, NULL);
  else if (argc == 2 && strcmp(argv[1], "big-frame") == 0)
    st = uvt_run(NULL, big_frame_main, NULL);
  else {
    fprintf(stderr, "usage: stack_overflow recursion | big-frame\n");
    return 2;
  }
  printf("survived the overflow: status %d\n", st);
  return 0;
}

/*
 * fp_scenario: creation stacks taken by walking frame pointers
 * (ASYNCIODEBUG_STACKS=fp), for test_fp_stacks.  Built with frame
 * pointers, against the release library; the test runs it with the debug
 * library in front.  Each mode leaves one coroutine never awaited, whose
 * creation stack the report shows.  The test finds lines by the markers.
 *
 *   fp_scenario good      fp_outer -> fp_inner -> uvt_coro
 *   fp_scenario high|low  fp_outer -> fp_broken_call (built without frame
 *                         pointers; its frame-pointer register holds junk
 *                         above or below the stack) -> fp_make -> uvt_coro
 *   fp_scenario spawn     fp_outer -> fp_plain_call (built without frame
 *                         pointers, register left alone) -> fp_spawner ->
 *                         uvt_spawn of a task that fails, detached: its
 *                         error is never retrieved
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uvtask.h>

#include "fp_broken.h"
#include "fp_plain.h"

static const char *mode;

static int quick(void *arg) {
  (void)arg;
  return 0;
}

__attribute__((noinline)) static void fp_inner(void) {
  (void)!uvt_coro(quick, NULL); /* @fp-inner */
  __asm__ volatile("" ::: "memory"); /* not a tail call */
}

/* Called from code without frame pointers. */
__attribute__((noinline)) void fp_make(void) {
  (void)!uvt_coro(quick, NULL); /* @fp-make */
  __asm__ volatile("" ::: "memory");
}

static int fails(void *arg) {
  (void)arg;
  return UVT_EINVAL;
}

/* Called from code without frame pointers. */
__attribute__((noinline)) void fp_spawner(void) {
  uvt_detach(uvt_spawn(fails, NULL)); /* @fp-spawn */
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void fp_outer(void) {
  if (strcmp(mode, "good") == 0)
    fp_inner(); /* @fp-outer-good */
  else if (strcmp(mode, "spawn") == 0)
    fp_plain_call(fp_spawner); /* @fp-outer-plain */
  else
    fp_broken_call(fp_make, strcmp(mode, "high") == 0); /* @fp-outer-broken */
  __asm__ volatile("" ::: "memory");
}

static int fp_main(void *arg) {
  (void)arg;
  fp_outer();
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2 || (strcmp(argv[1], "good") != 0 && strcmp(argv[1], "high") != 0 &&
                    strcmp(argv[1], "low") != 0 && strcmp(argv[1], "spawn") != 0)) {
    fprintf(stderr, "usage: fp_scenario good|high|low|spawn\n");
    return 2;
  }
  mode = argv[1];
  return uvt_run(NULL, fp_main, NULL) == 0 ? 0 : 1;
}

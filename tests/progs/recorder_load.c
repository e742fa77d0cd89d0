/*
 * recorder_load: workloads for the tests of what recording costs and
 * whom it bills.  Built against the release library; the tests run it
 * with the debug library in front and ASYNCIODEBUG set.
 *
 *   recorder_load many-live N
 *     N tasks named "sleeper" park in a long sleep while a task named
 *     "ticker" wakes every millisecond for TICKS ticks; then main cancels
 *     the sleepers and gathers them.  No task but main does any work in a
 *     step: a slow-callback finding naming a sleeper or the ticker is the
 *     recorder billing its own work (writing N rows) to a task.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvtask.h>

#define TICKS 300

static size_t n_live;

static int sleeper(void *arg) {
  (void)arg;
  return uvt_sleep(3600 * 1000) == UVT_ECANCELED ? 0 : -1;
}

static int ticker(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < TICKS; i++)
    if (uvt_sleep(1) != 0) return -1;
  return 0;
}

static int many_live(void *arg) {
  uvt_task_t **ts = calloc(n_live, sizeof(*ts));
  uvt_task_t *tick;
  size_t i;
  int rc;
  (void)arg;
  if (ts == NULL) return UVT_ENOMEM;
  for (i = 0; i < n_live; i++) {
    ts[i] = uvt_spawn(sleeper, NULL);
    if (ts[i] == NULL) return UVT_ENOMEM;
  }
  tick = uvt_spawn(ticker, NULL);
  if (tick == NULL) return UVT_ENOMEM;
  rc = uvt_await(tick);
  for (i = 0; i < n_live; i++) uvt_cancel(ts[i]);
  if (rc == 0) rc = uvt_gather(ts, n_live);
  for (i = 0; i < n_live; i++) uvt_detach(ts[i]);
  free(ts);
  return rc;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "many-live") == 0) {
    n_live = (size_t)strtoul(argv[2], NULL, 10);
    return uvt_run(NULL, many_live, NULL) == 0 ? 0 : 1;
  }
  fprintf(stderr, "usage: recorder_load many-live N\n");
  return 2;
}

/*
 * slow_callback — a blocking call inside a task stalls every task.
 *
 * The bug: tasks share one thread and take turns at their awaits.  A task
 * that makes a blocking call (a synchronous DNS lookup, a blocking read, a
 * long computation) holds the thread for the whole call: no other task
 * runs, no timer fires, no I/O is served.  Here a ticker that should tick
 * every 10 ms misses 200 ms of ticks.
 *
 * The asyncio original ("asyncio vs gevent"; asyncio's debug mode logs
 * "Executing <Task ...> took 0.200 seconds"):
 *
 *     @coroutine
 *     def handler():
 *         time.sleep(0.2)          # blocks the event loop
 *
 * The fix (--fixed): run the blocking call on the thread pool and await
 * it, uvt_to_thread(fn, arg) (asyncio's run_in_executor / to_thread).
 *
 * Finding (debug variant): slow-callback, for the task 'handler', with the
 * stack where it was blocked: uv_sleep in blocking_lookup, called from
 * handler.
 */

#include <stdio.h>
#include <string.h>
#include <uvtask.h>

#define TICK_MS 10
#define BLOCK_MS 200

typedef struct {
  bool fixed;
  bool done;          /* the handler has finished: the ticker stops */
  uint64_t max_gap_ns;
  int ticks;
} state_t;

/* Stands for any blocking call.  uv_sleep() blocks the calling thread;
 * uvt_sleep() would only suspend the task. */
static int blocking_lookup(void *arg) {
  (void)arg;
  uv_sleep(BLOCK_MS);
  return 0;
}

static int handler(void *arg) {
  state_t *st = arg;
  int err = uvt_sleep(3 * TICK_MS); /* let the ticker get going */
  if (err == 0)
    err = st->fixed ? uvt_to_thread(blocking_lookup, NULL)
                    : blocking_lookup(NULL);
  st->done = true;
  return err;
}

static int ticker(void *arg) {
  state_t *st = arg;
  uint64_t last = uv_hrtime(), now;
  int err = 0;
  while (!st->done && (err = uvt_sleep(TICK_MS)) == 0) {
    now = uv_hrtime();
    if (now - last > st->max_gap_ns) st->max_gap_ns = now - last;
    last = now;
    st->ticks++;
  }
  return err;
}

static int serve(void *arg) {
  state_t *st = arg;
  uvt_task_t *t[2];
  int err;

  t[0] = uvt_spawn(ticker, st);
  t[1] = uvt_spawn(handler, st);
  err = uvt_gather(t, 2);
  uvt_detach(t[0]);
  uvt_detach(t[1]);
  printf("ticker: %d ticks, largest gap %.0f ms (it should tick every %d "
         "ms)\n", st->ticks, st->max_gap_ns / 1e6, TICK_MS);
  if (st->max_gap_ns > 10 * TICK_MS * UINT64_C(1000000))
    printf("BUG: a blocking call in a task stalled the loop for about %.0f "
           "ms\n", st->max_gap_ns / 1e6);
  return err;
}

int main(int argc, char **argv) {
  state_t st = {.fixed = argc > 1 && strcmp(argv[1], "--fixed") == 0};
  /* Line-buffered, so our lines and uvt_run's warnings on stderr come
   * out in the order they happened. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  return uvt_run(NULL, serve, &st) == 0 ? 0 : 1;
}

/*
 * bench_tasks: what the task layer costs, next to raw libuv, in one run.
 *
 *   spawn+await   spawn a trivial task, await it (the await gives the
 *                 handle up: the README's plain pattern, sequential)
 *   RSS 1M        resident set before and after 1,000,000 of those in one
 *                 uvt_run: the plain pattern must not grow it
 *   gather 100k   spawn 100,000 trivial tasks, gather them, detach them
 *   group 100k    spawn 100,000 trivial tasks into a task group, leave it
 *                 (the same rounds as gather, in one uvt_run)
 *   yield         two tasks ping-pong with uvt_yield: each yield is one
 *                 switch, straight to the other task (the loop's stack is
 *                 visited only when the pass budget sends it to libuv)
 *   uv_idle       one uv_idle callback per loop iteration (raw libuv)
 *   fn queue      function pointers drained from a uv_check (raw libuv)
 *   100k parked   RSS growth with 100,000 tasks suspended at once
 *
 * Usage: bench_tasks [scale]   (scale 1 = default sizes; 0.1 for a quick run)
 * Each figure is the best of 5 repetitions, in ns per operation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvtask.h>

#define REPS 5

static double scale = 1.0;

static size_t scaled(size_t n) {
  size_t v = (size_t)((double)n * scale);
  return v > 0 ? v : 1;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  if (f == NULL) return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
  fclose(f);
  return kib;
}

static int trivial(void *arg) {
  (void)arg;
  return 0;
}

/* ---- spawn + await ---------------------------------------------------- */

static int seq_main(void *arg) {
  size_t n = *(size_t *)arg, i;
  for (i = 0; i < n; i++) {
    uvt_task_t *t = uvt_spawn(trivial, NULL);
    if (uvt_await(t) != 0) return -1;
  }
  return 0;
}

/* ---- RSS over 1M spawn -> await ----------------------------------------- */

static long seq_rss_before, seq_rss_after;

/* A first 10,000 warm the pools (stacks, task structs, the quarantine of
 * released handles), then RSS is read around the 1M. */
static int seq_rss_main(void *arg) {
  size_t n = *(size_t *)arg, warm = 10000;
  if (seq_main(&warm) != 0) return -1;
  seq_rss_before = rss_kib();
  if (seq_main(&n) != 0) return -1;
  seq_rss_after = rss_kib();
  return 0;
}

static double bench_spawn_await(void) {
  size_t n = scaled(1000000);
  uint64_t t0 = uv_hrtime();
  if (uvt_run(NULL, seq_main, &n) != 0) abort();
  return (double)(uv_hrtime() - t0) / (double)n;
}

/* ---- gather 100k ---------------------------------------------------- */

static double gather_first, gather_best;

/* Rounds inside one uvt_run: the first pays for fresh memory (page faults
 * for 100,000 task structs), the later ones show the steady state a
 * running service sees. */
static int gather_main(void *arg) {
  size_t n = *(size_t *)arg, i;
  uvt_task_t **ts = malloc(n * sizeof(*ts));
  int err = 0, r;
  if (ts == NULL) return UVT_ENOMEM;
  gather_best = 1e30;
  for (r = 0; r < REPS && err == 0; r++) {
    uint64_t t0 = uv_hrtime();
    double v;
    for (i = 0; i < n; i++) ts[i] = uvt_spawn(trivial, NULL);
    err = uvt_gather(ts, n);
    for (i = 0; i < n; i++) uvt_detach(ts[i]);
    v = (double)(uv_hrtime() - t0) / (double)n;
    if (r == 0) gather_first = v;
    if (v < gather_best) gather_best = v;
  }
  free(ts);
  return err;
}

static double bench_gather(void) {
  size_t n = scaled(100000);
  if (uvt_run(NULL, gather_main, &n) != 0) abort();
  return gather_best;
}

/* ---- task group 100k ----------------------------------------------- */

static double group_first, group_best;

static int group_main(void *arg) {
  size_t n = *(size_t *)arg, i;
  int err = 0, r;
  group_best = 1e30;
  for (r = 0; r < REPS && err == 0; r++) {
    uint64_t t0 = uv_hrtime();
    double v;
    uvt_group_t g;
    if ((err = uvt_group_init(&g)) != 0) break;
    for (i = 0; i < n; i++)
      if (uvt_group_spawn(&g, trivial, NULL) == NULL) err = UVT_ENOMEM;
    err = uvt_group_leave(&g, err);
    uvt_group_destroy(&g);
    v = (double)(uv_hrtime() - t0) / (double)n;
    if (r == 0) group_first = v;
    if (v < group_best) group_best = v;
  }
  return err;
}

static double bench_group(void) {
  size_t n = scaled(100000);
  if (uvt_run(NULL, group_main, &n) != 0) abort();
  return group_best;
}

/* ---- yield ping-pong --------------------------------------------------- */

static int yielder(void *arg) {
  size_t n = *(size_t *)arg, i;
  for (i = 0; i < n; i++)
    if (uvt_yield() != 0) return -1;
  return 0;
}

static int yield_main(void *arg) {
  uvt_task_t *ts[2] = {uvt_spawn(yielder, arg), uvt_spawn(yielder, arg)};
  int err = uvt_gather(ts, 2);
  uvt_detach(ts[0]);
  uvt_detach(ts[1]);
  return err;
}

static double bench_yield(void) {
  size_t n = scaled(2000000);
  uint64_t t0 = uv_hrtime();
  if (uvt_run(NULL, yield_main, &n) != 0) abort();
  return (double)(uv_hrtime() - t0) / (double)(2 * n);
}

/* ---- raw libuv: uv_idle ------------------------------------------------- */

static size_t idle_left;

static void idle_cb(uv_idle_t *h) {
  if (--idle_left == 0) uv_idle_stop(h);
}

static double bench_uv_idle(void) {
  size_t n = scaled(2000000);
  uv_loop_t loop;
  uv_idle_t idle;
  uint64_t t0;
  uv_loop_init(&loop);
  uv_idle_init(&loop, &idle);
  idle_left = n;
  uv_idle_start(&idle, idle_cb);
  t0 = uv_hrtime();
  uv_run(&loop, UV_RUN_DEFAULT);
  t0 = uv_hrtime() - t0;
  uv_close((uv_handle_t *)&idle, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return (double)t0 / (double)n;
}

/* ---- raw libuv: function-pointer queue drained from uv_check ----------- */

typedef void (*fn_t)(void *);
#define RING 1024
static struct {
  fn_t fn[RING];
  void *arg[RING];
  size_t head, tail;
} ring;
static size_t fn_left;
static uv_idle_t fn_idle;

static void push(fn_t fn, void *arg) {
  ring.fn[ring.tail % RING] = fn;
  ring.arg[ring.tail % RING] = arg;
  ring.tail++;
}

static void step(void *arg) {
  (void)arg;
  /* The chains still in the ring when the count runs out stop here. */
  if (fn_left > 0 && --fn_left > 0) push(step, NULL);
}

static void check_cb(uv_check_t *h) {
  size_t end = ring.tail;
  while (ring.head != end) {
    size_t i = ring.head++ % RING;
    ring.fn[i](ring.arg[i]);
  }
  if (fn_left == 0) {
    uv_check_stop(h);
    uv_idle_stop(&fn_idle);
  }
}

static void fn_idle_cb(uv_idle_t *h) { (void)h; }

static double bench_fn_queue(void) {
  size_t n = scaled(2000000), k;
  uv_loop_t loop;
  uv_check_t check;
  uint64_t t0;
  uv_loop_init(&loop);
  uv_check_init(&loop, &check);
  uv_idle_init(&loop, &fn_idle);
  memset(&ring, 0, sizeof(ring));
  fn_left = n;
  /* 64 chains in flight, as 64 ready tasks would be. */
  for (k = 0; k < 64; k++) push(step, NULL);
  fn_left += 64;
  uv_check_start(&check, check_cb);
  uv_idle_start(&fn_idle, fn_idle_cb);
  t0 = uv_hrtime();
  uv_run(&loop, UV_RUN_DEFAULT);
  t0 = uv_hrtime() - t0;
  uv_close((uv_handle_t *)&check, NULL);
  uv_close((uv_handle_t *)&fn_idle, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return (double)t0 / (double)n;
}

/* ---- 100k parked tasks ------------------------------------------------- */

static long parked_rss_kib;

/* Each parked task holds its own reference, given up by its await. */
static int parked(void *arg) { return uvt_await_future(arg); }

static int parked_main(void *arg) {
  size_t n = *(size_t *)arg, i;
  uvt_future_t *f = uvt_future_new();
  uvt_task_t **ts = malloc(n * sizeof(*ts));
  long before = rss_kib();
  int err;
  if (ts == NULL || f == NULL) return UVT_ENOMEM;
  for (i = 0; i < n; i++) ts[i] = uvt_spawn(parked, uvt_future_ref(f));
  uvt_yield(); /* let every task start and park */
  parked_rss_kib = rss_kib() - before;
  uvt_future_set_result(f, NULL);
  err = uvt_gather(ts, n);
  for (i = 0; i < n; i++) uvt_detach(ts[i]);
  free(ts);
  uvt_future_detach(f);
  return err;
}

static double best(double (*fn)(void)) {
  double b = 1e30;
  int i;
  for (i = 0; i < REPS; i++) {
    double v = fn();
    if (v < b) b = v;
  }
  return b;
}

int main(int argc, char **argv) {
  double spawn, gather, group, yield, idle, fnq;
  size_t nparked, nseq;
  if (argc > 1) scale = atof(argv[1]);
  if (scale <= 0) scale = 1;

  spawn = best(bench_spawn_await);
  gather = bench_gather();
  group = bench_group();
  yield = best(bench_yield);
  idle = best(bench_uv_idle);
  fnq = best(bench_fn_queue);
  nparked = scaled(100000);
  if (uvt_run(NULL, parked_main, &nparked) != 0) abort();
  nseq = scaled(1000000);
  if (uvt_run(NULL, seq_rss_main, &nseq) != 0) abort();

  printf("bench_tasks (best of %d, scale %.2f)\n", REPS, scale);
  printf("  %-34s %8.1f ns  (%.2fx a uv_idle callback)\n",
         "spawn+run+await+free, sequential", spawn, spawn / idle);
  printf("  %-34s %8.1f ns/task (first round, fresh memory: %.1f)\n",
         "spawn+run+free, 100k gathered", gather, gather_first);
  printf("  %-34s %8.1f ns/task (first round: %.1f; %.2fx gathered)\n",
         "spawn+run+free, 100k in a group", group, group_first,
         group / gather);
  printf("  %-34s %8.1f ns  (one switch each; %.2fx a queued fn call)\n",
         "uvt_yield ping-pong, per yield", yield, yield / fnq);
  printf("  %-34s %8.1f ns\n", "raw libuv: uv_idle callback", idle);
  printf("  %-34s %8.1f ns\n", "raw libuv: fn queue from uv_check", fnq);
  printf("  %-34s %8.1f MiB (%.1f KiB per task)\n",
         "RSS growth, 100k suspended tasks", parked_rss_kib / 1024.0,
         (double)parked_rss_kib / (double)nparked);
  printf("  %-34s %8ld KiB (%ld -> %ld KiB over %zu spawn+await)\n",
         "RSS growth, spawn->await loop", seq_rss_after - seq_rss_before,
         seq_rss_before, seq_rss_after, nseq);
  return 0;
}

/*
 * tracer_scenario: small programs with one bug each, for the tracer tests.
 * Built against the release library; the tests run it with the debug
 * library preloaded and ASYNCIODEBUG set, then read the database.
 * The tests find each expected line by the marker comment on it.
 *
 * Usage: tracer_scenario NAME
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uvtask.h>
#include <uvtask/testing.h>

static int quick(void *arg) {
  (void)arg;
  return 0;
}

static int fails(void *arg) {
  (void)arg;
  return uvt_fail(UV_ECONNREFUSED, "redis is down"); /* @raised */
}

static int sleeps_forever(void *arg) {
  (void)arg;
  for (;;)
    if (uvt_sleep(1000) != 0) return UVT_ECANCELED; /* @parked */
}

static int blocks(void *arg) {
  (void)arg;
  usleep(300 * 1000); /* @blocked */
  return 0;
}

/* CPU-bound: the watchdog samples it with a signal, not from a syscall. */
static int spins(void *arg) {
  uint64_t end = uv_hrtime() + 300 * 1000000ull;
  volatile uint64_t x = 0;
  (void)arg;
  while (uv_hrtime() < end) x++; /* @spinning */
  return 0;
}

static int rate_lookup(void *arg) {
  (void)arg;
  return uvt_sleep(1);
}

static int never_awaited(void *arg) {
  (void)arg;
  (void)!uvt_coro(quick, NULL); /* @never-awaited */
  return 0;
}

static int unretrieved(void *arg) {
  (void)arg;
  uvt_detach(uvt_spawn(fails, NULL)); /* @unretrieved */
  return uvt_sleep(20);
}

static int pending(void *arg) {
  (void)arg;
  (void)!uvt_spawn(sleeps_forever, NULL); /* @pending */
  return uvt_sleep(5);
}

static int slow(void *arg) {
  uvt_task_t *t = uvt_spawn(blocks, arg); /* @slow */
  return uvt_await(t);
}

static int slow_busy(void *arg) {
  uvt_task_t *t = uvt_spawn(spins, arg); /* @slow-busy */
  return uvt_await(t);
}

static int noyield(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < 3; i++) { /* three sections, one finding each */
    UVT_NO_YIELD_BEGIN(); /* @section */
    uvt_await_coro(uvt_coro(rate_lookup, NULL)); /* @await */
    uvt_yield();
    UVT_NO_YIELD_END();
  }
  return 0;
}

static int returns_zero(void *arg) {
  (void)arg;
  return 0;
}

/* Calls that may yield and did not, each in a section of its own: one
 * finding each; the same calls outside a section: none. */
static int yield_points(void *arg) {
  uvt_lock_t lock;
  uvt_queue_t q;
  uvt_task_t *done = uvt_spawn(returns_zero, NULL);
  uvt_task_t *done2 = uvt_spawn(returns_zero, NULL);
  void *item;
  int st = 0;
  (void)arg;
  uvt_lock_init(&lock);
  uvt_queue_init(&q, 4);
  while (!uvt_done(done) || !uvt_done(done2)) uvt_yield();
  UVT_NO_YIELD_BEGIN();
  st |= uvt_lock_acquire(&lock); /* @yp-lock */
  UVT_NO_YIELD_END();
  st |= uvt_lock_release(&lock);
  UVT_NO_YIELD_BEGIN();
  st |= uvt_queue_put(&q, &q); /* @yp-queue */
  UVT_NO_YIELD_END();
  UVT_NO_YIELD_BEGIN();
  st |= uvt_await(done); /* @yp-done */
  UVT_NO_YIELD_END();
  UVT_NO_YIELD_BEGIN();
  st |= uvt_sleep(0); /* @yp-sleep0 */
  UVT_NO_YIELD_END();
  st |= uvt_lock_acquire(&lock) | uvt_lock_release(&lock) |
        uvt_queue_put(&q, &q) | uvt_queue_get(&q, &item) |
        uvt_queue_get(&q, &item) | uvt_await(done2) | uvt_sleep(0);
  uvt_queue_destroy(&q);
  uvt_lock_destroy(&lock);
  return st;
}

static uvt_task_t *victim;

static void other_thread(void *arg) {
  (void)arg;
  uvt_cancel(victim); /* @wrong-thread */
}

static int wrong_thread(void *arg) {
  uv_thread_t th;
  (void)arg;
  victim = uvt_spawn(sleeps_forever, NULL); /* @victim */
  uv_thread_create(&th, other_thread, NULL);
  uv_thread_join(&th);
  uvt_cancel(victim);
  return uvt_await(victim) == UVT_ECANCELED ? 0 : -1;
}

static int clean(void *arg) {
  uvt_task_t *ts[50];
  int i;
  uvt_lock_t lock;
  (void)arg;
  uvt_lock_init(&lock);
  for (i = 0; i < 50; i++) ts[i] = uvt_spawn(quick, NULL);
  if (uvt_gather(ts, 50) != 0) return -1;
  for (i = 0; i < 50; i++) uvt_detach(ts[i]);
  uvt_await_coro(uvt_coro(quick, NULL));
  uvt_coro_close(uvt_coro(quick, NULL));
  {
    uvt_task_t *f = uvt_spawn(fails, NULL);
    /* Error read, handle given up: no finding. */
    if (uvt_await(f) != UV_ECONNREFUSED) return -1;
  }
  (void)uvt_lock_acquire(&lock);
  UVT_NO_YIELD_BEGIN();
  uvt_lock_release(&lock); /* never yields: no finding */
  UVT_NO_YIELD_END();
  uvt_lock_destroy(&lock);
  return 0;
}

static int crash_abort(void *arg) {
  (void)arg;
  uvt_sleep(30);
  (void)!uvt_spawn(sleeps_forever, NULL); /* @live-at-crash */
  uvt_yield();             /* it starts and parks; no flush has seen it */
  abort(); /* @abort */
}

/* A task that spawns a long sleeper and ends at once, young and healthy:
 * the sleeper's pending-at-exit row names it as parent, so it needs a
 * row too. */
static int short_lived_parent(void *arg) {
  (void)arg;
  uvt_detach(uvt_spawn(sleeps_forever, NULL)); /* @orphan */
  return 0;
}

static int orphan(void *arg) {
  (void)arg;
  uvt_detach(uvt_spawn(short_lived_parent, NULL)); /* @short-parent */
  for (int i = 0; i < 4; i++) uvt_yield();
  return 0;
}

/* A future failed by a plain function: its error's stack starts there. */
static void fail_future(uvt_future_t *f) {
  uvt_future_set_error(f, UV_EPIPE, "peer went away"); /* @future-error */
}

static int future_error(void *arg) {
  uvt_future_t *f = uvt_future_new(); /* @future-new */
  (void)arg;
  fail_future(f);
  uvt_future_detach(f);
  return 0;
}

/* A NULL write in a renamed task: the crash finding is at the write, and
 * names the task by its current name. */
static int null_write_inner(void *arg) {
  volatile int *p = arg;
  uvt_name(NULL, "writer %d", 7);
  uvt_sleep(30);
  *p = 42; /* @null-write */
  return 0;
}

static int crash_null_write(void *arg) {
  uvt_task_t *t = uvt_spawn(null_write_inner, arg); /* @null-write-spawn */
  return uvt_await(t);
}

static int crash_segv(void *arg) {
  (void)arg;
  uvt_sleep(30);
  raise(SIGSEGV);
  return 0;
}

static int exit_in_task(void *arg) {
  (void)arg;
  (void)!uvt_spawn(sleeps_forever, NULL); /* @pending-exit */
  uvt_sleep(30);
  exit(3);
}

static int wait_forever(void *arg) {
  (void)arg;
  (void)!uvt_spawn(sleeps_forever, NULL); /* @killed */
  puts("ready");
  fflush(stdout);
  for (;;)
    if (uvt_sleep(1000) != 0) return 0;
}

/* Five tasks parked on five different things, a sixth awaiting one of
 * them; says "ready" once all are parked, then waits to be looked at
 * (`uvtask ps`, SIGQUIT, gdb). */
static uvt_lock_t five_lock;
static uvt_event_t five_event;
static uvt_queue_t five_queue;

static int on_lock(void *arg) {
  (void)arg;
  return uvt_lock_acquire(&five_lock); /* @five-lock */
}

static int on_event(void *arg) {
  (void)arg;
  return uvt_event_wait(&five_event); /* @five-event */
}

static int on_queue(void *arg) {
  void *item;
  (void)arg;
  return uvt_queue_get(&five_queue, &item); /* @five-queue */
}

static int on_sleep(void *arg) {
  (void)arg;
  return uvt_sleep(3600000); /* @five-sleep */
}

static int on_task(void *arg) {
  uvt_task_t *t = uvt_spawn(on_sleep, arg);
  return uvt_await(t); /* @five-await */
}

static int five(void *arg) {
  int i;
  (void)arg;
  uvt_lock_init(&five_lock);
  uvt_lock_acquire(&five_lock);
  uvt_event_init(&five_event);
  uvt_queue_init(&five_queue, 0);
  uvt_detach(uvt_spawn(on_lock, NULL));
  uvt_detach(uvt_spawn(on_event, NULL));
  uvt_detach(uvt_spawn(on_queue, NULL));
  uvt_detach(uvt_spawn(on_sleep, NULL));
  uvt_detach(uvt_spawn(on_task, NULL));
  for (i = 0; i < 4; i++) uvt_yield();
  puts("ready");
  fflush(stdout);
  for (;;)
    if (uvt_sleep(1000) != 0) return 0; /* @five-main */
}

static int forks(void *arg) {
  pid_t pid;
  (void)arg;
  uvt_sleep(5);
  pid = fork();
  if (pid == 0) exit(0); /* the child's session ends without findings */
  while (waitpid(pid, NULL, WNOHANG) == 0) /* without blocking the loop */
    uvt_sleep(5);
  (void)!uvt_coro(quick, NULL); /* @parent-only */
  return 0;
}

static int named(void *arg) {
  (void)arg;
  uvt_testing_set_name("cache::refresh_survives_reset");
  (void)!uvt_coro(quick, NULL); /* @named */
  return 0;
}

static int echo_handler(uvt_stream_t *s, void *arg) {
  char line[64];
  size_t n;
  (void)arg;
  while (uvt_readline(s, line, sizeof(line), &n) == 0 && n > 0)
    uvt_write(s, line, n);
  return 0;
}

static int unclosed(void *arg) {
  uvt_server_t *srv;
  (void)arg;
  if (uvt_start_server("127.0.0.1", 0, echo_handler, NULL, &srv) != 0) /* @server */
    return -1;
  return 0; /* the server is never closed */
}

/* Two loops on two threads, each with its own bug. */
static int one_leak(void *arg) {
  (void)arg;
  (void)!uvt_coro(quick, NULL); /* @thread-leak */
  return uvt_sleep(20);
}

static void loop_thread(void *arg) {
  (void)arg;
  uvt_run(NULL, one_leak, NULL);
}

static int threads(void *arg) {
  uv_thread_t a, b;
  (void)arg;
  uv_thread_create(&a, loop_thread, NULL);
  uv_thread_create(&b, loop_thread, NULL);
  uv_thread_join(&a);
  uv_thread_join(&b);
  return 0;
}

static int recurse(int depth) {
  volatile char pad[1024];
  pad[0] = (char)depth; /* @recurse */
  return depth > 1000000 ? pad[0] : recurse(depth + 1) + pad[0];
}

static int overflows(void *arg) {
  (void)arg;
  return recurse(0); /* @overflow */
}

static int overflow(void *arg) {
  uvt_task_t *t = uvt_spawn(overflows, arg);
  return uvt_await(t);
}

/* A task parked 100 frames deep: deeper than ASYNCIODEBUG_DEPTH allows. */
static int __attribute__((noinline)) park_deep(int n) {
  volatile int keep = n;
  if (n > 0) return park_deep(n - 1) + keep - n;
  for (;;)
    if (uvt_sleep(1000) != 0) return UVT_ECANCELED; /* @deep */
}

static int parks_deep(void *arg) {
  (void)arg;
  return park_deep(100);
}

static int deep(void *arg) {
  (void)arg;
  (void)!uvt_spawn(parks_deep, NULL); /* left pending on purpose */
  return uvt_sleep(5);
}

/* Says "ready", waits (without blocking the loop) until the file named by
 * UVT_GO exists, then makes UVT_BURST never-awaited findings (default
 * 3000) and ends: the tests change the database's surroundings (a lock
 * held, a full disk) in between. */
static int burst(void *arg) {
  const char *go = getenv("UVT_GO"), *n = getenv("UVT_BURST");
  int i, count = n != NULL ? atoi(n) : 3000;
  (void)arg;
  puts("ready");
  fflush(stdout);
  while (go != NULL && access(go, F_OK) != 0)
    if (uvt_sleep(5) != 0) return -1;
  for (i = 0; i < count; i++) {
    (void)!uvt_coro(quick, NULL); /* @burst */
    if (i % 100 == 99) uvt_sleep(1);
  }
  return 0;
}

/* Forks UVT_FORKS times (default 200) while another task keeps the
 * writer busy with findings.  Each child ends at once (its own session);
 * a child not gone within 5 s is counted as hung and killed.  Prints
 * "forks N hung H" and fails if any hung. */
static volatile int storm_over;

static int keeps_writer_busy(void *arg) {
  (void)arg;
  while (!storm_over) {
    int i;
    /* Short-lived tasks, each with a finding (an unread error) and rows
     * for every commit; none outlives its step, so a child has little to
     * write at its exit. */
    for (i = 0; i < 2; i++) uvt_detach(uvt_spawn(fails, NULL));
    if (uvt_sleep(1) != 0) return 0;
  }
  return 0;
}

static int fork_storm(void *arg) {
  const char *env = getenv("UVT_FORKS");
  int i, n = env != NULL ? atoi(env) : 200, hung = 0;
  uvt_task_t *busy = uvt_spawn(keeps_writer_busy, NULL);
  (void)arg;
  uvt_sleep(5);
  for (i = 0; i < n; i++) {
    uint64_t deadline;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) exit(0);
    deadline = uv_hrtime() + 5000000000ull;
    while (waitpid(pid, NULL, WNOHANG) == 0) {
      if (uv_hrtime() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        hung++;
        break;
      }
      uvt_yield();
    }
  }
  storm_over = 1;
  uvt_await(busy);
  printf("forks %d hung %d\n", n, hung);
  return hung == 0 ? 0 : -1;
}

/* A task whose name and error carry terminal control sequences: every
 * line on stderr must show them escaped. */
static int fails_hostile(void *arg) {
  (void)arg;
  return uvt_fail(UV_EIO, "disk \x1b[2Jgone\x07 \xc2\x9b" "31m");
}

static int hostile_text(void *arg) {
  uvt_task_t *t = uvt_spawn(fails_hostile, NULL);
  (void)arg;
  uvt_name(t, "job\x1b]0;owned\x07");
  uvt_detach(t);
  return uvt_sleep(20);
}

/* A task whose name is hostile HTML: the report must show it as text. */
static int hostile(void *arg) {
  uvt_task_t *t = uvt_spawn(sleeps_forever, NULL); /* @hostile */
  (void)arg;
  uvt_name(t, "<script>alert(1)</script>");
  return uvt_sleep(5);
}

/* The pending task of `pending`, on the ignore list: recorded, marked,
 * not counted. */
static int ignored(void *arg) {
  if (uvt_leaks_ignore("sleeps_forever") != 0) return -1;
  return pending(arg);
}

static const struct {
  const char *name;
  uvt_fn fn;
} scenarios[] = {
    {"never-awaited", never_awaited}, {"unretrieved-error", unretrieved},
    {"pending-at-exit", pending},     {"slow-callback", slow},
    {"slow-busy", slow_busy},
    {"yield-in-critical-section", noyield},
    {"yield-points", yield_points},
    {"wrong-thread", wrong_thread},   {"clean", clean},
    {"abort", crash_abort},           {"segv", crash_segv},
    {"null-write", crash_null_write}, {"orphan", orphan},
    {"future-error", future_error},   {"five", five},
    {"exit-in-task", exit_in_task},   {"wait-forever", wait_forever},
    {"fork", forks},                  {"named", named},
    {"unclosed-stream", unclosed},    {"threads", threads},
    {"overflow", overflow},           {"hostile", hostile},
    {"ignored", ignored},             {"deep", deep},
    {"burst", burst},                 {"hostile-text", hostile_text},
    {"fork-storm", fork_storm},
};

int main(int argc, char **argv) {
  size_t i;
  if (argc != 2) {
    fprintf(stderr, "usage: tracer_scenario NAME\n");
    return 2;
  }
  for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
    if (strcmp(argv[1], scenarios[i].name) == 0)
      return uvt_run(NULL, scenarios[i].fn, NULL) == 0 ? 0 : 1;
  fprintf(stderr, "tracer_scenario: no scenario '%s'\n", argv[1]);
  return 2;
}

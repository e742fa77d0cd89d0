/*
 * The scheduler: start order, round-robin fairness, pass boundaries,
 * I/O not starved by busy tasks, spawn cost in libuv iterations, and
 * uvt_sleep ordering.
 *
 * Checks inside task bodies use cr_expect (a failed cr_assert would
 * longjmp off the task's stack); cr_assert only after uvt_run returns.
 * Tasks write what they saw into a trace string that is compared after
 * uvt_run: the order is the behaviour under test, not the timing.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uvtask.h"

/* ---- a trace of who ran when ---------------------------------------------- */

struct trace {
  char buf[512];
  size_t len;
};

/* Append a space-separated word to the trace. */
static void trace_add(struct trace *tr, const char *word) {
  int n = snprintf(tr->buf + tr->len, sizeof tr->buf - tr->len, "%s%s",
                   tr->len > 0 ? " " : "", word);
  if (n > 0 && (size_t)n < sizeof tr->buf - tr->len) tr->len += (size_t)n;
}

/* A task with a name and a shared trace. */
struct actor {
  struct trace *tr;
  const char *name;
  int steps;
};

/* ---- start order ------------------------------------------------------------ */

static int record_once(void *arg) {
  struct actor *a = arg;
  trace_add(a->tr, a->name);
  return 0;
}

static int start_order_main(void *arg) {
  struct trace *tr = arg;
  struct actor a[3] = {{tr, "A", 0}, {tr, "B", 0}, {tr, "C", 0}};
  uvt_task_t *t[3];
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(record_once, &a[i]);
  cr_expect_eq(uvt_gather(t, 3), 0);
  return 0;
}

Test(sched, spawned_tasks_start_in_spawn_order) {
  struct trace tr = {0};
  cr_assert_eq(uvt_run(NULL, start_order_main, &tr), 0);
  cr_assert_str_eq(tr.buf, "A B C");
}

/* ---- a spawn does not switch ------------------------------------------------ */

static int set_flag(void *arg) {
  (*(int *)arg)++;
  return 0;
}

struct lazy {
  int ran;
  int seen_after_spawn, seen_after_work, seen_after_yield;
};

static int lazy_main(void *arg) {
  struct lazy *s = arg;
  uvt_task_t *t = uvt_spawn(set_flag, &s->ran);
  volatile unsigned sink = 0;
  s->seen_after_spawn = s->ran;
  /* Plenty of work without an await: still nobody else runs. */
  for (unsigned i = 0; i < 1000000; i++) sink += i;
  s->seen_after_work = s->ran;
  cr_expect_eq(uvt_yield(), 0);
  s->seen_after_yield = s->ran;
  cr_expect_eq(uvt_await(t), 0);
  return 0;
}

Test(sched, spawned_task_waits_until_the_spawner_yields) {
  struct lazy s = {0};
  cr_assert_eq(uvt_run(NULL, lazy_main, &s), 0);
  cr_assert_eq(s.seen_after_spawn, 0);
  cr_assert_eq(s.seen_after_work, 0);
  cr_assert_eq(s.seen_after_yield, 1);
  cr_assert_eq(s.ran, 1);
}

/* ---- round-robin with uvt_yield ----------------------------------------------- */

static int yielder(void *arg) {
  struct actor *a = arg;
  char word[16];
  for (int i = 1; i <= a->steps; i++) {
    snprintf(word, sizeof word, "%s%d", a->name, i);
    trace_add(a->tr, word);
    cr_expect_eq(uvt_yield(), 0);
  }
  return 0;
}

static int round_robin_main(void *arg) {
  struct trace *tr = arg;
  struct actor a[3] = {{tr, "A", 4}, {tr, "B", 4}, {tr, "C", 4}};
  uvt_task_t *t[3];
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(yielder, &a[i]);
  cr_expect_eq(uvt_gather(t, 3), 0);
  return 0;
}

Test(sched, yield_round_robin_interleaves_exactly) {
  struct trace tr = {0};
  cr_assert_eq(uvt_run(NULL, round_robin_main, &tr), 0);
  cr_assert_str_eq(tr.buf, "A1 B1 C1 A2 B2 C2 A3 B3 C3 A4 B4 C4");
}

/* Tasks that yield a different number of times: the ones left keep
 * alternating once the others are gone. */
static int uneven_main(void *arg) {
  struct trace *tr = arg;
  struct actor a[3] = {{tr, "A", 1}, {tr, "B", 3}, {tr, "C", 2}};
  uvt_task_t *t[3];
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(yielder, &a[i]);
  cr_expect_eq(uvt_gather(t, 3), 0);
  return 0;
}

Test(sched, yield_round_robin_uneven_lengths) {
  struct trace tr = {0};
  cr_assert_eq(uvt_run(NULL, uneven_main, &tr), 0);
  cr_assert_str_eq(tr.buf, "A1 B1 C1 B2 C2 B3");
}

/* ---- pass boundaries ---------------------------------------------------------------- */

struct nested {
  struct trace *tr;
  struct actor child;
  uvt_task_t *child_task;
};

/* Spawns a child while B and C are already ready: the child must run
 * after them. */
static int spawning_parent(void *arg) {
  struct nested *n = arg;
  trace_add(n->tr, "A");
  n->child_task = uvt_spawn(record_once, &n->child);
  return 0;
}

static int pass_main(void *arg) {
  struct trace *tr = arg;
  struct nested n = {tr, {tr, "D", 0}, NULL};
  struct actor b = {tr, "B", 0}, c = {tr, "C", 0};
  uvt_task_t *t[3];
  t[0] = uvt_spawn(spawning_parent, &n);
  t[1] = uvt_spawn(record_once, &b);
  t[2] = uvt_spawn(record_once, &c);
  /* Main itself is ready again after C: the child comes after main too. */
  cr_expect_eq(uvt_yield(), 0);
  trace_add(tr, "M");
  cr_expect_eq(uvt_gather(t, 3), 0);
  cr_expect_neq(n.child_task, NULL);
  if (n.child_task != NULL) cr_expect_eq(uvt_await(n.child_task), 0);
  return 0;
}

Test(sched, task_made_ready_during_a_pass_runs_in_the_next) {
  struct trace tr = {0};
  cr_assert_eq(uvt_run(NULL, pass_main, &tr), 0);
  cr_assert_str_eq(tr.buf, "A B C M D");
}

/* A task woken during a pass (by another task completing) also waits for
 * the next pass: the awaiter of A resumes after B, which was already
 * ready when A ended. */
struct woken {
  struct trace *tr;
  uvt_task_t *target;
};

static int awaiter(void *arg) {
  struct woken *w = arg;
  cr_expect_eq(uvt_await(w->target), 0);
  trace_add(w->tr, "W");
  return 0;
}

static int woken_main(void *arg) {
  struct trace *tr = arg;
  struct actor a = {tr, "A", 0}, b = {tr, "B", 0};
  struct actor x = {tr, "X", 1};
  struct woken w = {tr, NULL};
  uvt_task_t *t[3];
  w.target = uvt_spawn(yielder, &x);
  (void)!uvt_task_ref(w.target); /* the awaiter's and main's awaits */
  t[0] = uvt_spawn(awaiter, &w);
  cr_expect_eq(uvt_yield(), 0); /* X ran once and yielded; W is parked */
  t[1] = uvt_spawn(record_once, &a);
  t[2] = uvt_spawn(record_once, &b);
  /* Next pass: X ends (waking W), then A and B, then W. */
  cr_expect_eq(uvt_gather(t, 3), 0);
  for (int i = 0; i < 3; i++) uvt_detach(t[i]);
  cr_expect_eq(uvt_await(w.target), 0);
  return 0;
}

Test(sched, task_woken_during_a_pass_runs_in_the_next) {
  struct trace tr = {0};
  cr_assert_eq(uvt_run(NULL, woken_main, &tr), 0);
  cr_assert_str_eq(tr.buf, "X1 A B W");
}

/* ---- I/O is not starved by busy tasks ------------------------------------------------ */

/* Two tasks pass the turn back and forth with uvt_yield until a libuv
 * callback sets `stop`.  A scheduler that ran passes until the ready
 * queue emptied would never return to libuv and never stop: the bail-out
 * after 10 s turns that hang into a failure. */
struct starve {
  uv_timer_t timer;
  uv_idle_t idle;
  uv_check_t check;
  int stop;
  int fired;
  int closed;
  long turns[2];
  int bailed_out;
};

struct pinger {
  struct starve *s;
  int id;
};

static int ping_pong(void *arg) {
  struct pinger *p = arg;
  uint64_t start = uv_hrtime();
  while (!p->s->stop) {
    p->s->turns[p->id]++;
    if (uvt_yield() != 0) return -1;
    if (uv_hrtime() - start > 10000000000ull) {
      p->s->bailed_out = 1;
      return -1;
    }
  }
  return 0;
}

static void on_close(uv_handle_t *h) {
  struct starve *s = h->data;
  s->closed++;
}

static void wait_closed(struct starve *s, uv_handle_t *h) {
  uv_close(h, on_close);
  while (!s->closed) cr_expect_eq(uvt_sleep(1), 0);
}

static int run_ping_pong(struct starve *s) {
  struct pinger p[2] = {{s, 0}, {s, 1}};
  uvt_task_t *t[2];
  t[0] = uvt_spawn(ping_pong, &p[0]);
  t[1] = uvt_spawn(ping_pong, &p[1]);
  return uvt_gather(t, 2);
}

static void timer_cb(uv_timer_t *h) {
  struct starve *s = h->data;
  s->fired++;
  s->stop = 1;
}

static int timer_main(void *arg) {
  struct starve *s = arg;
  cr_expect_eq(uv_timer_init(uvt_loop(), &s->timer), 0);
  s->timer.data = s;
  cr_expect_eq(uv_timer_start(&s->timer, timer_cb, 20, 0), 0);
  cr_expect_eq(run_ping_pong(s), 0);
  wait_closed(s, (uv_handle_t *)&s->timer);
  return 0;
}

Test(sched, busy_yielding_tasks_do_not_starve_a_uv_timer) {
  struct starve s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, timer_main, &s), 0);
  cr_assert_eq(s.bailed_out, 0, "the timer never fired while tasks yielded");
  cr_assert_eq(s.fired, 1);
  cr_assert_eq(s.closed, 1);
  cr_assert_gt(s.turns[0], 0);
  /* Fair between the two: they alternate. */
  cr_assert_leq(labs(s.turns[0] - s.turns[1]), 1, "turns %ld vs %ld",
                s.turns[0], s.turns[1]);
}

static void idle_cb(uv_idle_t *h) {
  struct starve *s = h->data;
  s->fired++;
  s->stop = 1;
  uv_idle_stop(h);
}

static int idle_main(void *arg) {
  struct starve *s = arg;
  struct pinger p[2] = {{s, 0}, {s, 1}};
  uvt_task_t *t[2];
  cr_expect_eq(uv_idle_init(uvt_loop(), &s->idle), 0);
  s->idle.data = s;
  t[0] = uvt_spawn(ping_pong, &p[0]);
  t[1] = uvt_spawn(ping_pong, &p[1]);
  /* Started only once the busy tasks are running. */
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uv_idle_start(&s->idle, idle_cb), 0);
  cr_expect_eq(uvt_gather(t, 2), 0);
  wait_closed(s, (uv_handle_t *)&s->idle);
  return 0;
}

Test(sched, busy_yielding_tasks_do_not_starve_a_uv_idle) {
  struct starve s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, idle_main, &s), 0);
  cr_assert_eq(s.bailed_out, 0, "the idle callback never ran");
  cr_assert_eq(s.fired, 1);
  cr_assert_gt(s.turns[0], 0);
}

static void check_cb(uv_check_t *h) {
  struct starve *s = h->data;
  s->fired++;
  s->stop = 1;
  uv_check_stop(h);
}

static int check_main(void *arg) {
  struct starve *s = arg;
  struct pinger p[2] = {{s, 0}, {s, 1}};
  uvt_task_t *t[2];
  cr_expect_eq(uv_check_init(uvt_loop(), &s->check), 0);
  s->check.data = s;
  t[0] = uvt_spawn(ping_pong, &p[0]);
  t[1] = uvt_spawn(ping_pong, &p[1]);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uv_check_start(&s->check, check_cb), 0);
  cr_expect_eq(uvt_gather(t, 2), 0);
  wait_closed(s, (uv_handle_t *)&s->check);
  return 0;
}

Test(sched, busy_yielding_tasks_do_not_starve_a_uv_check) {
  struct starve s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, check_main, &s), 0);
  cr_assert_eq(s.bailed_out, 0, "the check callback never ran");
  cr_assert_eq(s.fired, 1);
  cr_assert_gt(s.turns[0], 0);
}

/* ---- a spawn does not cost a libuv iteration ------------------------------------ */

#define NSEQ 10000

struct iter {
  uv_prepare_t prepare;
  long iterations;
  int done;
  int closed;
};

static void count_iteration(uv_prepare_t *h) {
  struct iter *it = h->data;
  it->iterations++;
}

static void iter_closed(uv_handle_t *h) {
  struct iter *it = h->data;
  it->closed = 1;
}

static int trivial(void *arg) {
  (void)arg;
  return 0;
}

static int iter_main(void *arg) {
  struct iter *it = arg;
  cr_expect_eq(uv_prepare_init(uvt_loop(), &it->prepare), 0);
  it->prepare.data = it;
  cr_expect_eq(uv_prepare_start(&it->prepare, count_iteration), 0);
  for (int i = 0; i < NSEQ; i++) {
    uvt_task_t *t = uvt_spawn(trivial, NULL);
    if (t == NULL || uvt_await(t) != 0) break; /* gives the handle up */
    it->done++;
  }
  uv_prepare_stop(&it->prepare);
  uv_close((uv_handle_t *)&it->prepare, iter_closed);
  while (!it->closed) cr_expect_eq(uvt_sleep(1), 0);
  return 0;
}

Test(sched, sequential_spawn_await_does_not_cost_a_loop_iteration_each) {
  struct iter it;
  memset(&it, 0, sizeof it);
  cr_assert_eq(uvt_run(NULL, iter_main, &it), 0);
  cr_assert_eq(it.done, NSEQ);
  /* One iteration per spawn (or per wake) would be >= 10,000. */
  cr_assert_lt(it.iterations, NSEQ / 10, "%ld libuv iterations for %d spawns",
               it.iterations, NSEQ);
}

/* ---- uvt_sleep ------------------------------------------------------------------------ */

struct sleeper {
  struct trace *tr;
  int ms;
};

static int sleep_then_record(void *arg) {
  struct sleeper *sl = arg;
  char word[16];
  cr_expect_eq(uvt_sleep(sl->ms), 0);
  snprintf(word, sizeof word, "%d", sl->ms);
  trace_add(sl->tr, word);
  return 0;
}

static int sleep_order_main(void *arg) {
  struct trace *tr = arg;
  struct sleeper sl[3] = {{tr, 30}, {tr, 10}, {tr, 20}};
  uvt_task_t *t[3];
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(sleep_then_record, &sl[i]);
  cr_expect_eq(uvt_gather(t, 3), 0);
  return 0;
}

Test(sched, sleepers_wake_in_deadline_order) {
  struct trace tr = {0};
  cr_assert_eq(uvt_run(NULL, sleep_order_main, &tr), 0);
  cr_assert_str_eq(tr.buf, "10 20 30");
}

static int sleep50_main(void *arg) {
  uint64_t *elapsed_ns = arg;
  uint64_t start = uv_hrtime();
  cr_expect_eq(uvt_sleep(50), 0);
  *elapsed_ns = uv_hrtime() - start;
  return 0;
}

Test(sched, sleep_lasts_at_least_its_duration) {
  uint64_t elapsed_ns = 0;
  cr_assert_eq(uvt_run(NULL, sleep50_main, &elapsed_ns), 0);
  cr_assert_geq(elapsed_ns, 45000000ull, "uvt_sleep(50) took %llu ns",
                (unsigned long long)elapsed_ns);
}

static int sleep_args_main(void *arg) {
  (void)arg;
  cr_expect_eq(uvt_sleep(-1), UVT_EINVAL);
  cr_expect_eq(uvt_sleep(0), 0);
  return 0;
}

Test(sched, sleep_arguments) {
  cr_assert_eq(uvt_run(NULL, sleep_args_main, NULL), 0);
  cr_assert_eq(uvt_sleep(1), UVT_ENOTASK);
  cr_assert_eq(uvt_yield(), UVT_ENOTASK);
}

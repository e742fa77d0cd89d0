/*
 * Cancellation of every kind of await in the core task layer (sleep,
 * await, await_future, to_thread, gather, wait, yield), its one-shot
 * rule, and cancelling tasks that have not started or have already ended.
 *
 * Pattern: main spawns a victim, lets it reach its await, cancels it and
 * awaits it.  The victim records what its awaits returned (and what it saw
 * at that moment) into a struct; cr_assert runs after uvt_run returns.
 * Inside tasks only cr_expect is used (a failed cr_assert would longjmp
 * off the task's stack).
 *
 * The sync primitives (lock, event, sem, queue) are covered by their own
 * test files.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uvtask.h"

#define NEVER_MS 10000 /* a sleep that must be cut short */

/* Let the tasks spawned so far reach their first park. */
static void settle(void) {
  for (int i = 0; i < 4; i++) cr_expect_eq(uvt_yield(), 0);
}

/* A task that sleeps "forever" and records how its sleep ended. */
struct sleeper {
  int status;       /* what uvt_sleep returned */
  int ended;        /* the body ran to its end */
  uint64_t slept_ns;
};

static int long_sleeper(void *arg) {
  struct sleeper *s = arg;
  uint64_t start = uv_hrtime();
  s->status = uvt_sleep(NEVER_MS);
  s->slept_ns = uv_hrtime() - start;
  s->ended = 1;
  return s->status;
}

/* ---- uvt_sleep ------------------------------------------------------------ */

struct sleep_case {
  struct sleeper v;
  int cancel_rc;
  int await_rc;
};

static int sleep_main(void *arg) {
  struct sleep_case *c = arg;
  uvt_task_t *t = uvt_spawn(long_sleeper, &c->v);
  cr_expect_eq(uvt_sleep(10), 0);
  cr_expect_eq(c->v.ended, 0);
  c->cancel_rc = uvt_cancel(t);
  c->await_rc = uvt_await(t);
  return 0;
}

Test(cancel, sleep_returns_ecanceled_promptly) {
  struct sleep_case c;
  memset(&c, 0, sizeof c);
  cr_assert_eq(uvt_run(NULL, sleep_main, &c), 0);
  cr_assert_eq(c.cancel_rc, 1);
  cr_assert_eq(c.v.status, UVT_ECANCELED);
  cr_assert_eq(c.await_rc, UVT_ECANCELED);
  cr_assert_eq(c.v.ended, 1);
  cr_assert_lt(c.v.slept_ns, 5000000000ull, "cancelled sleep lasted %llu ns",
               (unsigned long long)c.v.slept_ns);
}

/* ---- uvt_await ----------------------------------------------------------- */

struct await_case {
  struct sleeper inner;
  uvt_task_t *inner_task;
  int await_status;      /* the victim's uvt_await(inner) */
  int inner_done_then;   /* uvt_done(inner) when that await returned */
  int inner_ended_then;
  int victim_await_rc;   /* main's uvt_await(victim) */
  int inner_await_rc;    /* main's uvt_await(inner) */
};

static int await_victim(void *arg) {
  struct await_case *c = arg;
  uvt_task_t *mine = uvt_spawn(long_sleeper, &c->inner);
  /* A second reference, for main's await below. */
  c->inner_task = uvt_task_ref(mine);
  c->await_status = uvt_await(mine);
  c->inner_done_then = uvt_done(c->inner_task);
  c->inner_ended_then = c->inner.ended;
  return c->await_status;
}

static int await_main(void *arg) {
  struct await_case *c = arg;
  uvt_task_t *v = uvt_spawn(await_victim, c);
  cr_expect_eq(uvt_sleep(10), 0);
  cr_expect_neq(c->inner_task, NULL);
  cr_expect_eq(uvt_cancel(v), 1);
  c->victim_await_rc = uvt_await(v);
  if (c->inner_task != NULL) c->inner_await_rc = uvt_await(c->inner_task);
  return 0;
}

Test(cancel, await_cancels_the_awaited_task_too) {
  struct await_case c;
  memset(&c, 0, sizeof c);
  cr_assert_eq(uvt_run(NULL, await_main, &c), 0);
  cr_assert_eq(c.await_status, UVT_ECANCELED);
  cr_assert_eq(c.inner.status, UVT_ECANCELED, "the inner task was not cancelled");
  /* The awaiter returned only once the inner task had finished. */
  cr_assert_eq(c.inner_done_then, 1);
  cr_assert_eq(c.inner_ended_then, 1);
  cr_assert_eq(c.victim_await_rc, UVT_ECANCELED);
  cr_assert_eq(c.inner_await_rc, UVT_ECANCELED);
  cr_assert_lt(c.inner.slept_ns, 5000000000ull);
}

/* ---- uvt_await_future ---------------------------------------------------- */

struct future_case {
  uvt_future_t *f;
  uvt_future_t *victim_f;
  int status;
  int future_done_after;
  int victim_rc;
};

static int future_victim(void *arg) {
  struct future_case *c = arg;
  c->status = uvt_await_future(c->victim_f);
  return c->status;
}

static int future_main(void *arg) {
  struct future_case *c = arg;
  uvt_task_t *v;
  c->f = uvt_future_new();
  c->victim_f = uvt_future_ref(c->f); /* the victim's await gives it up */
  v = uvt_spawn(future_victim, c);
  settle();
  cr_expect_eq(uvt_cancel(v), 1);
  c->victim_rc = uvt_await(v);
  /* As asyncio (test_tasks test_task_cancel_waiter_future): cancelling
   * the task parked on the future cancelled the future. */
  c->future_done_after = uvt_future_done(c->f);
  cr_expect_eq(uvt_future_set_result(c->f, c), UVT_EINVAL);
  cr_expect_eq(uvt_await_future(c->f), UVT_ECANCELED);
  return 0;
}

Test(cancel, await_future_returns_ecanceled_and_cancels_the_future) {
  struct future_case c;
  memset(&c, 0, sizeof c);
  cr_assert_eq(uvt_run(NULL, future_main, &c), 0);
  cr_assert_eq(c.status, UVT_ECANCELED);
  cr_assert_eq(c.victim_rc, UVT_ECANCELED);
  cr_assert_eq(c.future_done_after, 1);
}

/* ---- uvt_to_thread ------------------------------------------------------- */

struct thread_case {
  atomic_int started;
  atomic_int cancel_sent;
  atomic_int finished;
  int status;
  int finished_then;  /* `finished` when uvt_to_thread returned */
  int victim_rc;
};

/* Runs on a pool thread: no uvtask calls here.  Goes on until the task
 * awaiting it has been cancelled (bounded: 10 s), so the cancel always
 * lands while the function runs. */
static int slow_work(void *arg) {
  struct thread_case *c = arg;
  atomic_store(&c->started, 1);
  for (int i = 0; i < 10000 && !atomic_load(&c->cancel_sent); i++) usleep(1000);
  atomic_store(&c->finished, 1);
  return 0;
}

static int thread_victim(void *arg) {
  struct thread_case *c = arg;
  c->status = uvt_to_thread(slow_work, c);
  c->finished_then = atomic_load(&c->finished);
  return c->status;
}

static int thread_main(void *arg) {
  struct thread_case *c = arg;
  uvt_task_t *v = uvt_spawn(thread_victim, c);
  /* Cancel only once the function runs: work still queued would simply
   * be dequeued and never run. */
  for (int i = 0; i < 5000 && !atomic_load(&c->started); i++)
    cr_expect_eq(uvt_sleep(1), 0);
  cr_expect_eq(atomic_load(&c->started), 1);
  cr_expect_eq(uvt_cancel(v), 1);
  atomic_store(&c->cancel_sent, 1);
  c->victim_rc = uvt_await(v);
  return 0;
}

Test(cancel, to_thread_waits_for_the_running_function) {
  struct thread_case c;
  memset(&c, 0, sizeof c);
  cr_assert_eq(uvt_run(NULL, thread_main, &c), 0);
  cr_assert_eq(c.status, UVT_ECANCELED);
  cr_assert_eq(c.finished_then, 1,
               "uvt_to_thread returned before its function finished");
  cr_assert_eq(atomic_load(&c.finished), 1);
  cr_assert_eq(c.victim_rc, UVT_ECANCELED);
}

/* ---- uvt_gather ---------------------------------------------------------- */

struct gather_case {
  struct sleeper kids[2];
  uvt_task_t *kid_tasks[2];
  int status;
  int kids_done_then[2];
  int victim_rc;
};

static int gather_victim(void *arg) {
  struct gather_case *c = arg;
  for (int i = 0; i < 2; i++)
    c->kid_tasks[i] = uvt_spawn(long_sleeper, &c->kids[i]);
  c->status = uvt_gather(c->kid_tasks, 2);
  for (int i = 0; i < 2; i++) c->kids_done_then[i] = uvt_done(c->kid_tasks[i]);
  return c->status;
}

static int gather_main(void *arg) {
  struct gather_case *c = arg;
  uvt_task_t *v = uvt_spawn(gather_victim, c);
  cr_expect_eq(uvt_sleep(10), 0);
  cr_expect_eq(uvt_cancel(v), 1);
  c->victim_rc = uvt_await(v);
  return 0;
}

Test(cancel, gather_cancels_the_gathered_tasks) {
  struct gather_case c;
  memset(&c, 0, sizeof c);
  cr_assert_eq(uvt_run(NULL, gather_main, &c), 0);
  cr_assert_eq(c.status, UVT_ECANCELED);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(c.kids[i].status, UVT_ECANCELED, "kid %d", i);
    cr_assert_eq(c.kids_done_then[i], 1, "kid %d not done when gather returned", i);
  }
  cr_assert_eq(c.victim_rc, UVT_ECANCELED);
}

/* ---- uvt_wait ------------------------------------------------------------- */

struct wait_case {
  int kid_status[2];
  int kid_ran_to_end[2];
  uvt_task_t *kid_tasks[2];
  int status;
  size_t ndone;
  int kids_done_then[2];
  int victim_rc;
  int kid_rc[2];
  uvt_event_t go; /* the kids run until main lets them end */
};

static uvt_event_t *kids_go;

static int short_kid(void *arg) {
  int *status = arg;
  *status = uvt_event_wait(kids_go);
  return *status;
}

static int wait_victim(void *arg) {
  struct wait_case *c = arg;
  c->status = uvt_wait(c->kid_tasks, 2, UVT_ALL_COMPLETED, -1, &c->ndone);
  for (int i = 0; i < 2; i++) c->kids_done_then[i] = uvt_done(c->kid_tasks[i]);
  return c->status;
}

static int wait_main(void *arg) {
  struct wait_case *c = arg;
  uvt_task_t *v;
  for (int i = 0; i < 2; i++) {
    c->kid_status[i] = 1;
    c->kid_tasks[i] = uvt_spawn(short_kid, &c->kid_status[i]);
  }
  v = uvt_spawn(wait_victim, c);
  /* One turn: the kids park on the event, the victim in uvt_wait.  (A
   * timer here let the kids end first on a loaded machine.) */
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(v), 1);
  c->victim_rc = uvt_await(v);
  /* The waited tasks were left running and end normally. */
  uvt_event_set(&c->go);
  for (int i = 0; i < 2; i++) c->kid_rc[i] = uvt_await(c->kid_tasks[i]);
  return 0;
}

Test(cancel, wait_returns_ecanceled_and_leaves_the_tasks_running) {
  struct wait_case c;
  memset(&c, 0, sizeof c);
  cr_assert_eq(uvt_event_init(&c.go), 0);
  kids_go = &c.go;
  cr_assert_eq(uvt_run(NULL, wait_main, &c), 0);
  cr_assert_eq(c.status, UVT_ECANCELED);
  cr_assert_eq(c.ndone, 0);
  cr_assert_eq(c.victim_rc, UVT_ECANCELED);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(c.kids_done_then[i], 0, "kid %d was finished by the cancel", i);
    cr_assert_eq(c.kid_status[i], 0, "kid %d's sleep was cancelled", i);
    cr_assert_eq(c.kid_rc[i], 0);
  }
}

/* ---- uvt_yield -------------------------------------------------------------- */

struct yield_case {
  int status;
  long yields;
  int victim_rc;
};

static int yield_victim(void *arg) {
  struct yield_case *c = arg;
  while ((c->status = uvt_yield()) == 0 && c->yields < 1000000) c->yields++;
  return c->status;
}

static int yield_main(void *arg) {
  struct yield_case *c = arg;
  uvt_task_t *v = uvt_spawn(yield_victim, c);
  settle();
  cr_expect_gt(c->yields, 0);
  cr_expect_eq(uvt_cancel(v), 1);
  c->victim_rc = uvt_await(v);
  return 0;
}

Test(cancel, yield_returns_ecanceled) {
  struct yield_case c;
  memset(&c, 0, sizeof c);
  cr_assert_eq(uvt_run(NULL, yield_main, &c), 0);
  cr_assert_eq(c.status, UVT_ECANCELED);
  cr_assert_lt(c.yields, 1000000);
  cr_assert_eq(c.victim_rc, UVT_ECANCELED);
}

/* ---- one-shot ------------------------------------------------------------- */

struct oneshot {
  int first, second, third;
  int rc;
};

static int catch_and_continue(void *arg) {
  struct oneshot *o = arg;
  o->first = uvt_sleep(NEVER_MS);
  /* Cleanup that awaits: the cancel was delivered once, so this works. */
  o->second = uvt_sleep(5);
  o->third = uvt_yield();
  return 0;
}

static int oneshot_main(void *arg) {
  struct oneshot *o = arg;
  uvt_task_t *v = uvt_spawn(catch_and_continue, o);
  settle();
  cr_expect_eq(uvt_cancel(v), 1);
  o->rc = uvt_await(v);
  return 0;
}

Test(cancel, one_shot_task_may_await_again_after_catching) {
  struct oneshot o = {1, 1, 1, 1};
  cr_assert_eq(uvt_run(NULL, oneshot_main, &o), 0);
  cr_assert_eq(o.first, UVT_ECANCELED);
  cr_assert_eq(o.second, 0);
  cr_assert_eq(o.third, 0);
  cr_assert_eq(o.rc, 0, "the task caught the cancel and returned 0");
}

/* Two cancels while it is parked: the first wakes it, the second must not
 * be delivered to its next await. */
static int double_parked_main(void *arg) {
  struct oneshot *o = arg;
  uvt_task_t *v = uvt_spawn(catch_and_continue, o);
  settle();
  cr_expect_eq(uvt_cancel(v), 1);
  cr_expect_eq(uvt_cancel(v), 1);
  o->rc = uvt_await(v);
  return 0;
}

Test(cancel, twice_while_parked_delivers_once) {
  struct oneshot o = {1, 1, 1, 1};
  cr_assert_eq(uvt_run(NULL, double_parked_main, &o), 0);
  cr_assert_eq(o.first, UVT_ECANCELED);
  cr_assert_eq(o.second, 0, "the second cancel was delivered too");
  cr_assert_eq(o.third, 0);
  cr_assert_eq(o.rc, 0);
}

/* Two cancels while it is ready (it yielded and has not run again). */
struct ready_case {
  int started;
  int first, second, third;
  int rc;
};

static int yield_then_continue(void *arg) {
  struct ready_case *r = arg;
  r->started = 1;
  r->first = uvt_yield();
  r->second = uvt_yield();
  r->third = uvt_sleep(5);
  return 0;
}

static int double_ready_main(void *arg) {
  struct ready_case *r = arg;
  uvt_task_t *v = uvt_spawn(yield_then_continue, r);
  /* The victim runs first in the next pass and yields; we run after it,
   * so it is now in the ready queue, not parked. */
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(r->started, 1);
  cr_expect_eq(uvt_cancel(v), 1);
  cr_expect_eq(uvt_cancel(v), 1);
  r->rc = uvt_await(v);
  return 0;
}

Test(cancel, twice_while_ready_delivers_once) {
  struct ready_case r = {0, 1, 1, 1, 1};
  cr_assert_eq(uvt_run(NULL, double_ready_main, &r), 0);
  cr_assert_eq(r.started, 1);
  cr_assert_eq(r.first, UVT_ECANCELED);
  cr_assert_eq(r.second, 0, "the second cancel was delivered too");
  cr_assert_eq(r.third, 0);
  cr_assert_eq(r.rc, 0);
}

/* ---- before it starts ------------------------------------------------------ */

static int set_flag(void *arg) {
  (*(int *)arg)++;
  return 0;
}

struct unstarted {
  int ran;
  int cancel1, cancel2;
  int rc, rc_again;
  int done;
};

static int unstarted_main(void *arg) {
  struct unstarted *u = arg;
  uvt_task_t *t = uvt_spawn(set_flag, &u->ran);
  uvt_task_t *again = uvt_task_ref(t); /* for the second await */
  uvt_task_t *kept = uvt_task_ref(t);  /* read after both */
  u->cancel1 = uvt_cancel(t);
  u->cancel2 = uvt_cancel(t);
  u->rc = uvt_await(t);
  u->rc_again = uvt_await(again);
  u->done = uvt_done(kept);
  uvt_detach(kept);
  return 0;
}

Test(cancel, before_start_the_body_never_runs) {
  struct unstarted u;
  memset(&u, 0, sizeof u);
  cr_assert_eq(uvt_run(NULL, unstarted_main, &u), 0);
  cr_assert_eq(u.ran, 0, "the body of a task cancelled before it started ran");
  cr_assert_eq(u.cancel1, 1);
  cr_assert_eq(u.cancel2, 1);
  cr_assert_eq(u.rc, UVT_ECANCELED);
  cr_assert_eq(u.rc_again, UVT_ECANCELED);
  cr_assert_eq(u.done, 1);
}

/* ---- after it ended ---------------------------------------------------------- */

static int fails_minus_5(void *arg) {
  (void)arg;
  return uvt_fail(-5, "boom");
}

static int returns_3(void *arg) {
  (void)arg;
  return 3;
}

struct finished {
  int rc_fail[2], rc_ok[2];
  int cancel_fail, cancel_ok;
  const char *msg;
};

static int finished_main(void *arg) {
  struct finished *f = arg;
  uvt_task_t *bad = uvt_spawn(fails_minus_5, NULL);
  uvt_task_t *good = uvt_spawn(returns_3, NULL);
  /* One reference per await, and one kept to read the message. */
  uvt_task_t *bad2 = uvt_task_ref(bad), *bad3 = uvt_task_ref(bad);
  uvt_task_t *good2 = uvt_task_ref(good);
  f->rc_fail[0] = uvt_await(bad);
  f->rc_ok[0] = uvt_await(good);
  f->cancel_fail = uvt_cancel(bad2);
  f->cancel_ok = uvt_cancel(good2);
  f->rc_fail[1] = uvt_await(bad2);
  f->rc_ok[1] = uvt_await(good2);
  f->msg = uvt_error_message(bad3) != NULL && strcmp(uvt_error_message(bad3), "boom") == 0
               ? "boom" : NULL;
  uvt_detach(bad3);
  return 0;
}

Test(cancel, finished_task_is_unchanged) {
  struct finished f;
  memset(&f, 0, sizeof f);
  cr_assert_eq(uvt_run(NULL, finished_main, &f), 0);
  cr_assert_eq(f.cancel_fail, 0);
  cr_assert_eq(f.cancel_ok, 0);
  cr_assert_eq(f.rc_fail[0], -5);
  cr_assert_eq(f.rc_fail[1], -5);
  cr_assert_eq(f.rc_ok[0], 3);
  cr_assert_eq(f.rc_ok[1], 3);
  cr_assert_not_null(f.msg, "the error message changed");
}

/* ---- self-cancel --------------------------------------------------------------- */

struct selfc {
  int cancel_rc;
  int after_cancel;   /* code after uvt_cancel kept running */
  int first, second;
  uint64_t first_ns;
  int rc;
};

static int cancels_itself(void *arg) {
  struct selfc *s = arg;
  uint64_t start;
  s->cancel_rc = uvt_cancel(uvt_current());
  s->after_cancel = 1;
  start = uv_hrtime();
  s->first = uvt_sleep(NEVER_MS);
  s->first_ns = uv_hrtime() - start;
  s->second = uvt_sleep(1);
  return s->first;
}

static int selfc_main(void *arg) {
  struct selfc *s = arg;
  uvt_task_t *t = uvt_spawn(cancels_itself, s);
  s->rc = uvt_await(t);
  return 0;
}

Test(cancel, task_cancelling_itself_gets_ecanceled_at_next_await) {
  struct selfc s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, selfc_main, &s), 0);
  cr_assert_eq(s.cancel_rc, 1);
  cr_assert_eq(s.after_cancel, 1);
  cr_assert_eq(s.first, UVT_ECANCELED);
  cr_assert_lt(s.first_ns, 5000000000ull);
  cr_assert_eq(s.second, 0);
  cr_assert_eq(s.rc, UVT_ECANCELED);
}

/* A cancel that arrives while the task runs is delivered by its next
 * await, whatever kind it is, and only once: a second await works. */
enum kind { K_SLEEP, K_YIELD, K_AWAIT, K_FUTURE, K_THREAD, K_GATHER, K_WAIT,
            K_WAIT_FOR, K_NKINDS };

struct pending {
  enum kind kind;
  struct sleeper kid;     /* what K_AWAIT, K_GATHER, K_WAIT, K_WAIT_FOR wait on */
  uvt_task_t *kid_task;
  atomic_int thread_ran;
  int first, second;
  int kid_done_then;
  int kid_rc;
};

static int mark_ran(void *arg) {
  atomic_store((atomic_int *)arg, 1);
  return 0;
}

static int pending_victim(void *arg) {
  struct pending *p = arg;
  uvt_future_t *f = NULL;
  if (p->kind == K_AWAIT || p->kind == K_GATHER || p->kind == K_WAIT ||
      p->kind == K_WAIT_FOR)
    p->kid_task = uvt_spawn(long_sleeper, &p->kid);
  /* await and wait_for give up a reference: keep one to read after. */
  if (p->kind == K_AWAIT || p->kind == K_WAIT_FOR)
    (void)!uvt_task_ref(p->kid_task);
  if (p->kind == K_FUTURE) f = uvt_future_new();
  cr_expect_eq(uvt_cancel(uvt_current()), 1);
  switch (p->kind) {
  case K_SLEEP: p->first = uvt_sleep(NEVER_MS); break;
  case K_YIELD: p->first = uvt_yield(); break;
  case K_AWAIT: p->first = uvt_await(p->kid_task); break;
  case K_FUTURE: p->first = uvt_await_future(f), f = NULL; break;
  case K_THREAD: p->first = uvt_to_thread(mark_ran, &p->thread_ran); break;
  case K_GATHER: p->first = uvt_gather(&p->kid_task, 1); break;
  case K_WAIT:
    p->first = uvt_wait(&p->kid_task, 1, UVT_ALL_COMPLETED, NEVER_MS, NULL);
    break;
  case K_WAIT_FOR: p->first = uvt_wait_for(p->kid_task, NEVER_MS); break;
  default: break;
  }
  if (p->kid_task != NULL) p->kid_done_then = uvt_done(p->kid_task);
  p->second = uvt_sleep(1);
  if (p->kind == K_WAIT) {
    /* uvt_wait leaves the task running: stop it ourselves. */
    cr_expect_eq(uvt_cancel(p->kid_task), 1);
  }
  if (p->kid_task != NULL) p->kid_rc = uvt_await(p->kid_task);
  if (f != NULL) uvt_future_detach(f);
  return 0;
}

static int pending_main(void *arg) {
  struct pending *p = arg;
  return uvt_await(uvt_spawn(pending_victim, p));
}

Test(cancel, pending_cancel_is_delivered_by_every_await_kind) {
  static const char *names[K_NKINDS] = {"sleep", "yield", "await", "future",
                                        "to_thread", "gather", "wait",
                                        "wait_for"};
  for (int k = 0; k < K_NKINDS; k++) {
    struct pending p;
    memset(&p, 0, sizeof p);
    p.kind = (enum kind)k;
    p.first = p.second = 1;
    cr_assert_eq(uvt_run(NULL, pending_main, &p), 0, "%s", names[k]);
    cr_assert_eq(p.first, UVT_ECANCELED, "%s returned %d", names[k], p.first);
    cr_assert_eq(p.second, 0, "%s: the cancel was delivered twice", names[k]);
    if (k == K_THREAD)
      cr_assert_eq(atomic_load(&p.thread_ran), 0, "to_thread ran its function");
    if (k == K_AWAIT || k == K_GATHER || k == K_WAIT_FOR) {
      /* These pass the cancel on and return once the task has ended. */
      /* (Cancelled before it started, the kid's body never ran.) */
      cr_assert_eq(p.kid_done_then, 1, "%s", names[k]);
      cr_assert_eq(p.kid_rc, UVT_ECANCELED, "%s", names[k]);
    }
    if (k == K_WAIT) {
      cr_assert_eq(p.kid_done_then, 0, "uvt_wait cancelled the waited task");
      cr_assert_eq(p.kid_rc, UVT_ECANCELED);
    }
  }
}

/* ---- uvt_to_thread, still queued --------------------------------------------- */

#define POOL 4

struct queued {
  atomic_int busy_started;
  atomic_int release;
  atomic_int victim_ran;
  int status;
  int busy_rc[POOL];
};

/* Occupies one pool thread until released. */
static int occupy(void *arg) {
  struct queued *q = arg;
  atomic_fetch_add(&q->busy_started, 1);
  for (int i = 0; i < 10000 && !atomic_load(&q->release); i++) usleep(1000);
  return 0;
}

struct busy_slot {
  struct queued *q;
  int i;
};

static int busy_task(void *arg) {
  struct busy_slot *b = arg;
  b->q->busy_rc[b->i] = uvt_to_thread(occupy, b->q);
  return 0;
}

static int queued_victim(void *arg) {
  struct queued *q = arg;
  q->status = uvt_to_thread(mark_ran, &q->victim_ran);
  /* Returned while every pool thread is still busy: it was dequeued. */
  atomic_store(&q->release, 1);
  return q->status;
}

static int queued_main(void *arg) {
  struct queued *q = arg;
  struct busy_slot slots[POOL];
  uvt_task_t *busy[POOL], *v;
  for (int i = 0; i < POOL; i++) {
    slots[i].q = q;
    slots[i].i = i;
    busy[i] = uvt_spawn(busy_task, &slots[i]);
  }
  for (int i = 0; i < 5000 && atomic_load(&q->busy_started) < POOL; i++)
    cr_expect_eq(uvt_sleep(1), 0);
  cr_expect_eq(atomic_load(&q->busy_started), POOL);
  v = uvt_spawn(queued_victim, q);
  settle(); /* the victim's work is queued behind the busy ones */
  cr_expect_eq(uvt_cancel(v), 1);
  cr_expect_eq(uvt_await(v), UVT_ECANCELED);
  atomic_store(&q->release, 1);
  cr_expect_eq(uvt_gather(busy, POOL), 0);
  return 0;
}

Test(cancel, to_thread_still_queued_never_runs) {
  struct queued q;
  memset(&q, 0, sizeof q);
  /* The pool is created at the first use in this process (one per test). */
  cr_assert_eq(setenv("UV_THREADPOOL_SIZE", "4", 1), 0);
  cr_assert_eq(uvt_run(NULL, queued_main, &q), 0);
  cr_assert_eq(q.status, UVT_ECANCELED);
  cr_assert_eq(atomic_load(&q.victim_ran), 0, "the dequeued function ran");
  for (int i = 0; i < POOL; i++) cr_assert_eq(q.busy_rc[i], 0);
}

/* ---- bad handles ------------------------------------------------------------------ */

Test(cancel, null_handle) {
  cr_assert_eq(uvt_cancel(NULL), UVT_EINVAL);
}

/* ---- asyncio's rules: a cancel the task has not yet seen wins ------------- */

/* CPython test_tasks test_cancel_at_end: a task cancelled while it runs
 * (here by itself) that returns without another await ends cancelled.
 * (Before, it ended with its own status: the cancel vanished.) */
static int cancels_itself_then_returns(void *arg) {
  (void)arg;
  cr_expect_eq(uvt_cancel(uvt_current()), 1);
  return 12;
}

struct at_end {
  int rc;
};

static int at_end_main(void *arg) {
  struct at_end *e = arg;
  e->rc = uvt_await(uvt_spawn(cancels_itself_then_returns, NULL));
  return 0;
}

Test(cancel, cancel_at_end_ends_the_task_cancelled) {
  struct at_end e = {0};
  cr_assert_eq(uvt_run(NULL, at_end_main, &e), 0);
  cr_assert_eq(e.rc, UVT_ECANCELED, "got %d", e.rc);
}

/* A task woken (the future it awaits was set) and cancelled before it
 * runs again: the cancel wins, its await returns UVT_ECANCELED, and the
 * future keeps its value for anyone else.  (Before, the await returned 0
 * and the cancel came at the next await, or never.) */
struct woken {
  uvt_future_t *f;
  int await_rc;
};

static int future_sleeper(void *arg) {
  struct woken *w = arg;
  w->await_rc = uvt_await_future(w->f);
  return w->await_rc;
}

static int woken_main(void *arg) {
  struct woken *w = arg;
  uvt_future_t *f = uvt_future_new();
  uvt_task_t *t;
  static int value;
  w->f = uvt_future_ref(f); /* the sleeper's reference */
  t = uvt_spawn(future_sleeper, w);
  settle();
  cr_expect_eq(uvt_future_set_result(f, &value), 0); /* wakes the sleeper */
  cr_expect_eq(uvt_cancel(t), 1);                    /* before it runs */
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  cr_expect_eq(uvt_future_result(f), &value);
  cr_expect_eq(uvt_await_future(f), 0);
  return 0;
}

Test(cancel, a_cancel_before_a_woken_task_runs_wins) {
  struct woken w = {NULL, 1};
  cr_assert_eq(uvt_run(NULL, woken_main, &w), 0);
  cr_assert_eq(w.await_rc, UVT_ECANCELED, "got %d", w.await_rc);
}

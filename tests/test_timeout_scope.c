/*
 * Timeout scopes (uvt_timeout_*) and cancel counting (uvt_cancelling,
 * uvt_uncancel), ported from CPython 3.11's
 * Lib/test/test_asyncio/test_timeouts.py and test_tasks.py (each case
 * names its origin).  No test asserts a duration: a sleep of NEVER_MS
 * that returns at all was cut short.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "uvtask.h"
#include "uvtask/testing.h"

#define NEVER_MS 10000
#define BOOM UV_EIO

static void run(uvt_fn fn, void *ctx) {
  cr_assert_eq(uvt_run(NULL, fn, ctx), 0);
  UVT_ASSERT_NO_LEAKS();
}

struct basic { int sleep, leave, expired, cancelling; int64_t ms; };

static int basic_main(void *arg) {
  struct basic *c = arg;
  uvt_timeout_t to;
  cr_expect_eq(uvt_timeout_enter(&to, c->ms), 0);
  c->sleep = uvt_sleep(NEVER_MS);
  c->leave = uvt_timeout_leave(&to, c->sleep);
  c->expired = uvt_timeout_expired(&to);
  c->cancelling = uvt_cancelling(NULL);
  return 0;
}

/* test_timeouts.py::TimeoutTests::test_timeout_basic: TimeoutError and
 * cm.expired(); the task is not left cancelled (cancelling() == 0). */
Test(timeout_scope, expiry_becomes_etimedout) {
  struct basic c = {.ms = 10};
  run(basic_main, &c);
  cr_assert_eq(c.sleep, UVT_ECANCELED);
  cr_assert_eq(c.leave, UVT_ETIMEDOUT);
  cr_assert(c.expired);
  cr_assert_eq(c.cancelling, 0);
}

/* test_timeouts.py::TimeoutTests::test_timeout_zero: timeout(0) expires
 * at the next turn of the loop. */
Test(timeout_scope, zero_expires_at_once) {
  struct basic c = {.ms = 0};
  run(basic_main, &c);
  cr_assert_eq(c.leave, UVT_ETIMEDOUT);
  cr_assert(c.expired);
}

struct zero_yield { int yield, leave, expired; };

static int zero_yield_main(void *arg) {
  struct zero_yield *c = arg;
  uvt_timeout_t to;
  int i, st = 0;
  cr_expect_eq(uvt_timeout_enter(&to, 0), 0);
  /* sleep(0) until the timer's turn comes (bounded). */
  for (i = 0; i < 10000000 && st == 0; i++) st = uvt_sleep(0);
  c->yield = st;
  c->leave = uvt_timeout_leave(&to, st);
  c->expired = uvt_timeout_expired(&to);
  return 0;
}

/* test_timeouts.py::TimeoutTests::test_timeout_zero_sleep_zero: a scope
 * of 0 ms around sleep(0)s raises TimeoutError. */
Test(timeout_scope, zero_with_sleep_zero) {
  struct zero_yield c;
  memset(&c, 0, sizeof c);
  run(zero_yield_main, &c);
  cr_assert_eq(c.yield, UVT_ECANCELED);
  cr_assert_eq(c.leave, UVT_ETIMEDOUT);
  cr_assert(c.expired);
}

struct nested { int inner, outer, cancelled, e1, e2; int64_t ms1, ms2; };

static int nested_main(void *arg) {
  struct nested *c = arg;
  uvt_timeout_t t1, t2;
  int st;
  cr_expect_eq(uvt_timeout_enter(&t1, c->ms1), 0);
  cr_expect_eq(uvt_timeout_enter(&t2, c->ms2), 0);
  st = uvt_sleep(NEVER_MS);
  c->inner = uvt_timeout_leave(&t2, st);
  if (c->inner == UVT_ECANCELED) c->cancelled = 1;
  c->outer = uvt_timeout_leave(&t1, c->inner);
  c->e1 = uvt_timeout_expired(&t1);
  c->e2 = uvt_timeout_expired(&t2);
  return 0;
}

/* test_timeouts.py::TimeoutTests::test_nested_timeouts: two scopes with
 * the same deadline: only the outermost raises TimeoutError, the inner
 * passes CancelledError on; both expired. */
Test(timeout_scope, nested_same_deadline_outer_raises) {
  struct nested c = {.ms1 = 10, .ms2 = 10};
  run(nested_main, &c);
  cr_assert_eq(c.inner, UVT_ECANCELED);
  cr_assert_eq(c.cancelled, 1);
  cr_assert_eq(c.outer, UVT_ETIMEDOUT);
  cr_assert(c.e1);
  cr_assert(c.e2);
}

/* test_timeouts.py::TimeoutTests::test_nested_timeouts_concurrent: the
 * outer scope expires first: the inner one (not expired) passes the
 * cancel on, the outer turns it into TimeoutError. */
Test(timeout_scope, outer_expiry_passes_through_inner) {
  struct nested c = {.ms1 = 5, .ms2 = NEVER_MS};
  run(nested_main, &c);
  cr_assert_eq(c.inner, UVT_ECANCELED);
  cr_assert_eq(c.outer, UVT_ETIMEDOUT);
  cr_assert(c.e1);
  cr_assert(!c.e2);
}

/* The inner scope expires first and is handled there: the outer one,
 * never expired, sees the inner's UVT_ETIMEDOUT as the code's outcome. */
Test(timeout_scope, inner_expiry_handled_inside) {
  struct nested c = {.ms1 = NEVER_MS, .ms2 = 5};
  run(nested_main, &c);
  cr_assert_eq(c.inner, UVT_ETIMEDOUT);
  cr_assert_eq(c.outer, UVT_ETIMEDOUT);
  cr_assert(!c.e1);
  cr_assert(c.e2);
}

struct busy { int inner, second, outer; };

static int busy_main(void *arg) {
  struct busy *c = arg;
  uvt_timeout_t t1, t2;
  uint64_t until;
  cr_expect_eq(uvt_timeout_enter(&t1, 20), 0);
  cr_expect_eq(uvt_timeout_enter(&t2, 5), 0);
  /* The loop is busy past both deadlines (time.sleep(0.1)). */
  until = uv_hrtime() + 40 * 1000000ull;
  while (uv_hrtime() < until) {
  }
  c->inner = uvt_timeout_leave(&t2, uvt_sleep(NEVER_MS));
  c->second = c->inner == UVT_ECANCELED ? 0 : uvt_sleep(NEVER_MS);
  c->outer = uvt_timeout_leave(&t1, c->inner == UVT_ECANCELED ? c->inner : c->second);
  return 0;
}

/* test_timeouts.py::TimeoutTests::test_nested_timeouts_loop_busy: both
 * scopes expire in one turn of the loop: the inner one sees a second
 * cancel request above its own and passes CancelledError on; the outer
 * raises TimeoutError (asyncio 3.11 behaves the same way). */
Test(timeout_scope, both_expire_in_one_turn) {
  struct busy c;
  memset(&c, 0, sizeof c);
  run(busy_main, &c);
  cr_assert_eq(c.inner, UVT_ECANCELED);
  cr_assert_eq(c.outer, UVT_ETIMEDOUT);
}

struct notcalled { int sleep, leave, expired; };

static int notcalled_main(void *arg) {
  struct notcalled *c = arg;
  uvt_timeout_t to;
  cr_expect_eq(uvt_timeout_enter(&to, NEVER_MS), 0);
  c->sleep = uvt_sleep(1);
  c->leave = uvt_timeout_leave(&to, c->sleep);
  c->expired = uvt_timeout_expired(&to);
  return 0;
}

/* test_timeouts.py::TimeoutTests::test_timeout_not_called: the code ends
 * first: no error, not expired. */
Test(timeout_scope, not_expired_returns_status) {
  struct notcalled c;
  memset(&c, 0, sizeof c);
  run(notcalled_main, &c);
  cr_assert_eq(c.sleep, 0);
  cr_assert_eq(c.leave, 0);
  cr_assert(!c.expired);
}

static int disabled_main(void *arg) {
  struct notcalled *c = arg;
  uvt_timeout_t to;
  cr_expect_eq(uvt_timeout_enter(&to, -1), 0);
  c->sleep = uvt_sleep(1);
  c->leave = uvt_timeout_leave(&to, c->sleep);
  c->expired = uvt_timeout_expired(&to);
  return 0;
}

/* test_timeouts.py::TimeoutTests::test_timeout_disabled: timeout(None). */
Test(timeout_scope, disabled_never_expires) {
  struct notcalled c;
  memset(&c, 0, sizeof c);
  run(disabled_main, &c);
  cr_assert_eq(c.leave, 0);
  cr_assert(!c.expired);
}

static int foreign_main(void *arg) {
  struct notcalled *c = arg;
  uvt_timeout_t to;
  cr_expect_eq(uvt_timeout_enter(&to, 10), 0);
  c->leave = uvt_timeout_leave(&to, BOOM); /* raise KeyError */
  c->expired = uvt_timeout_expired(&to);
  return 0;
}

/* test_timeouts.py::TimeoutTests::test_foreign_exception_passed. */
Test(timeout_scope, foreign_error_passes) {
  struct notcalled c;
  memset(&c, 0, sizeof c);
  run(foreign_main, &c);
  cr_assert_eq(c.leave, BOOM);
  cr_assert(!c.expired);
}

static int crash(void *arg) {
  (void)arg;
  (void)uvt_sleep(NEVER_MS);
  return BOOM; /* finally: 1 / 0 */
}

static int foreign_on_timeout_main(void *arg) {
  struct notcalled *c = arg;
  uvt_timeout_t to;
  cr_expect_eq(uvt_timeout_enter(&to, 5), 0);
  c->leave = uvt_timeout_leave(&to, uvt_await_coro(uvt_coro(crash, NULL)));
  c->expired = uvt_timeout_expired(&to);
  return 0;
}

/* test_timeouts.py::TimeoutTests::test_foreign_exception_on_timeout: an
 * error raised while handling the expiry wins over TimeoutError. */
Test(timeout_scope, error_during_expiry_wins) {
  struct notcalled c;
  memset(&c, 0, sizeof c);
  run(foreign_on_timeout_main, &c);
  cr_assert_eq(c.leave, BOOM);
  cr_assert(c.expired);
}

static int foreign_cancel_main(void *arg) {
  struct notcalled *c = arg;
  uvt_timeout_t to;
  cr_expect_eq(uvt_timeout_enter(&to, NEVER_MS), 0);
  cr_expect_eq(uvt_cancel(uvt_current()), 1);
  c->sleep = uvt_sleep(NEVER_MS);
  c->leave = uvt_timeout_leave(&to, c->sleep);
  c->expired = uvt_timeout_expired(&to);
  (void)uvt_uncancel(NULL);
  return 0;
}

/* test_timeouts.py::TimeoutTests::test_foreign_cancel_doesnt_timeout_if_not_expired. */
Test(timeout_scope, foreign_cancel_is_not_a_timeout) {
  struct notcalled c;
  memset(&c, 0, sizeof c);
  run(foreign_cancel_main, &c);
  cr_assert_eq(c.leave, UVT_ECANCELED);
  cr_assert(!c.expired);
}

struct both { int leave, expired, cancelling; uvt_timeout_t *to; };

static int cancel_and_expire_victim(void *arg) {
  struct both *c = arg;
  uvt_timeout_t to;
  cr_expect_eq(uvt_timeout_enter(&to, 1), 0);
  c->to = &to;
  c->leave = uvt_timeout_leave(&to, uvt_sleep(NEVER_MS));
  c->to = NULL;
  c->expired = uvt_timeout_expired(&to);
  c->cancelling = uvt_cancelling(NULL);
  return c->leave;
}

static int cancel_and_expire_main(void *arg) {
  struct both *c = arg;
  uvt_task_t *v = uvt_spawn(cancel_and_expire_victim, c);
  long i;
  /* Poll (bounded) until the scope expired: `v` is then woken by its
   * scope's cancel but has not run yet, and the caller cancels it too. */
  for (i = 0; i < 10000000; i++) {
    if (c->to != NULL && uvt_timeout_expired(c->to)) break;
    cr_expect_eq(uvt_sleep(0), 0);
  }
  cr_expect_eq(uvt_cancel(v), 1);
  (void)uvt_await(v);
  return 0;
}

/* A task cancelled by its caller while its scope also expired tells the
 * two apart: the scope does not claim the cancel (UVT_ECANCELED, not
 * UVT_ETIMEDOUT) and the caller's request is still counted. */
Test(timeout_scope, caller_cancel_and_expiry_told_apart) {
  struct both c;
  memset(&c, 0, sizeof c);
  run(cancel_and_expire_main, &c);
  cr_assert_eq(c.leave, UVT_ECANCELED);
  cr_assert(c.expired);
  cr_assert_eq(c.cancelling, 1);
}

struct resched { int leave, again, expired, sleep; };

static int resched_victim(void *arg) {
  struct resched *c = arg;
  uvt_timeout_t to;
  cr_expect_eq(uvt_timeout_enter(&to, 5), 0);
  cr_expect_eq(uvt_timeout_reschedule(&to, NEVER_MS), 0);
  cr_expect_eq(uvt_timeout_reschedule(&to, -1), 0);
  c->sleep = uvt_sleep(20);
  c->leave = uvt_timeout_leave(&to, c->sleep);
  c->expired = uvt_timeout_expired(&to);
  c->again = uvt_timeout_reschedule(&to, 5);
  return 0;
}

/* test_timeouts.py::TimeoutTests::test_reschedule: moving the deadline
 * later, then to none; a left scope cannot be rescheduled. */
Test(timeout_scope, reschedule_moves_deadline) {
  struct resched c;
  memset(&c, 0, sizeof c);
  run(resched_victim, &c);
  cr_assert_eq(c.sleep, 0);
  cr_assert_eq(c.leave, 0);
  cr_assert(!c.expired);
  cr_assert_eq(c.again, UVT_EINVAL);
}

struct fin { int inner, outer; };

static int fin_main(void *arg) {
  struct fin *c = arg;
  uvt_timeout_t t1, t2;
  int st;
  cr_expect_eq(uvt_timeout_enter(&t1, 5), 0);
  st = uvt_sleep(NEVER_MS);
  /* finally: a scope of its own inside the expiring one. */
  cr_expect_eq(uvt_timeout_enter(&t2, 5), 0);
  c->inner = uvt_timeout_leave(&t2, uvt_sleep(NEVER_MS));
  c->outer = uvt_timeout_leave(&t1, st);
  return 0;
}

/* test_timeouts.py::TimeoutTests::test_nested_timeout_in_finally. */
Test(timeout_scope, nested_scope_in_cleanup) {
  struct fin c;
  memset(&c, 0, sizeof c);
  run(fin_main, &c);
  cr_assert_eq(c.inner, UVT_ETIMEDOUT);
  cr_assert_eq(c.outer, UVT_ETIMEDOUT);
}

struct counting { int c0, c1, c2, u1, u0, after_cancel; };

static int counting_victim(void *arg) {
  (void)arg;
  return uvt_sleep(NEVER_MS);
}

static int counting_main(void *arg) {
  struct counting *c = arg;
  uvt_task_t *t = uvt_spawn(counting_victim, NULL);
  cr_expect_eq(uvt_yield(), 0);
  c->c0 = uvt_cancelling(t);
  cr_expect_eq(uvt_cancel(t), 1);
  c->c1 = uvt_cancelling(t);
  cr_expect_eq(uvt_cancel(t), 1);
  c->c2 = uvt_cancelling(t);
  c->u1 = uvt_uncancel(t);
  c->u0 = uvt_uncancel(t);
  cr_expect_eq(uvt_uncancel(t), 0);
  cr_expect_eq(uvt_cancel(t), 1);
  c->after_cancel = uvt_await(t);
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_cancelling (and uncancel):
 * each cancel counts, uncancel takes one back, never below 0. */
Test(timeout_scope, cancel_counting) {
  struct counting c;
  memset(&c, 0, sizeof c);
  run(counting_main, &c);
  cr_assert_eq(c.c0, 0);
  cr_assert_eq(c.c1, 1);
  cr_assert_eq(c.c2, 2);
  cr_assert_eq(c.u1, 1);
  cr_assert_eq(c.u0, 0);
  cr_assert_eq(c.after_cancel, UVT_ECANCELED);
}

struct misuse { int outside, other, order; };

static int other_leaves(void *arg) {
  return uvt_timeout_leave((uvt_timeout_t *)arg, 0);
}

static int misuse_main(void *arg) {
  struct misuse *c = arg;
  uvt_timeout_t t1, t2;
  cr_expect_eq(uvt_timeout_enter(&t1, NEVER_MS), 0);
  cr_expect_eq(uvt_timeout_enter(&t2, NEVER_MS), 0);
  c->other = uvt_await(uvt_spawn(other_leaves, &t2));
  c->order = uvt_timeout_leave(&t1, 0);
  cr_expect_eq(uvt_timeout_leave(&t2, 0), 0);
  cr_expect_eq(uvt_timeout_leave(&t1, 0), 0);
  return 0;
}

/* Leaving from another task or out of order is refused (UVT_EINVAL), and
 * outside a task it is UVT_ENOTASK. */
Test(timeout_scope, leave_misuse_is_refused) {
  struct misuse c;
  uvt_timeout_t to;
  memset(&c, 0, sizeof c);
  cr_assert_eq(uvt_timeout_enter(&to, 5), UVT_ENOTASK);
  run(misuse_main, &c);
  cr_assert_eq(c.other, UVT_EINVAL);
  cr_assert_eq(c.order, UVT_EINVAL);
}

static int forgets_to_leave(void *arg) {
  uvt_timeout_t to;
  (void)arg;
  cr_expect_eq(uvt_timeout_enter(&to, 1), 0);
  return 0; /* a bug: the scope's memory goes with this frame */
}

static int abandon_main(void *arg) {
  int *rc = arg;
  uvt_task_t *t = uvt_spawn(forgets_to_leave, NULL);
  cr_expect_eq(uvt_await(t), 0);
  /* Past the dropped deadline: its timer must not fire into the dead
   * stack (ASan: stack-use-after-return; release: a wild call). */
  *rc = uvt_sleep(5);
  return 0;
}

/* A task ending inside a timeout scope: the deadline is dropped with a
 * line on stderr, and the loop goes on unharmed. */
Test(timeout_scope, task_ending_inside_scope_drops_deadline) {
  int rc = -1;
  run(abandon_main, &rc);
  cr_assert_eq(rc, 0);
}

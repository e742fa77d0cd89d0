/*
 * uvt_shield (asyncio.shield) and uvt_as_completed_* (asyncio.as_completed),
 * ported from CPython 3.11's Lib/test/test_asyncio/test_tasks.py (each
 * case names its origin).
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

static int sleep_then_result(void *arg) {
  int st = uvt_sleep((int64_t)(intptr_t)arg);
  if (st != 0) return st;
  uvt_set_result(arg);
  return 0;
}

static int fail_after_yield(void *arg) {
  (void)arg;
  if (uvt_yield() != 0) return UVT_ECANCELED;
  return uvt_fail(BOOM, "boom");
}

/* ---- shield ---------------------------------------------------------------- */

struct sh { int outer, inner; void *res; uvt_task_t *inner_t; uvt_event_t go; };

static int gated(void *arg) {
  struct sh *c = arg;
  int st = uvt_event_wait(&c->go);
  if (st != 0) return st;
  uvt_set_result((void *)7);
  return 0;
}

static int shielder(void *arg) {
  struct sh *c = arg;
  c->outer = uvt_shield_result(uvt_task_ref(c->inner_t), &c->res, NULL);
  return c->outer;
}

static int shield_cancel_main(void *arg) {
  struct sh *c = arg;
  uvt_task_t *outer;
  cr_expect_eq(uvt_event_init(&c->go), 0);
  c->inner_t = uvt_spawn(gated, c);
  outer = uvt_spawn(shielder, c);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(outer), 1);
  cr_expect_eq(uvt_await(outer), UVT_ECANCELED);
  /* The inner task was not cancelled: it still waits, and finishes. */
  cr_expect(!uvt_done(c->inner_t));
  uvt_event_set(&c->go);
  c->inner = uvt_await_result(c->inner_t, &c->res, NULL);
  uvt_event_destroy(&c->go);
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_shield_cancel_outer: cancelling the
 * shielding task cancels it, not the inner one, which completes. */
Test(shield, cancel_outer_leaves_inner_running) {
  struct sh c;
  memset(&c, 0, sizeof c);
  run(shield_cancel_main, &c);
  cr_assert_eq(c.outer, UVT_ECANCELED);
  cr_assert_eq(c.inner, 0);
  cr_assert_eq(c.res, (void *)7);
}

static int shield_result_main(void *arg) {
  struct sh *c = arg;
  c->outer = uvt_shield_result(uvt_spawn(sleep_then_result, (void *)(intptr_t)1),
                               &c->res, NULL);
  c->inner = uvt_shield(uvt_spawn(fail_after_yield, NULL));
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_shield_result and
 * test_shield_exception: without a cancel, shield is an await. */
Test(shield, passes_result_and_error) {
  struct sh c;
  memset(&c, 0, sizeof c);
  run(shield_result_main, &c);
  cr_assert_eq(c.outer, 0);
  cr_assert_eq(c.res, (void *)1);
  cr_assert_eq(c.inner, BOOM);
}

static int shield_cancel_inner_main(void *arg) {
  struct sh *c = arg;
  uvt_task_t *t;
  cr_expect_eq(uvt_event_init(&c->go), 0);
  t = uvt_spawn(gated, c);
  c->inner_t = uvt_task_ref(t);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(c->inner_t), 1);
  c->outer = uvt_shield(t);
  c->inner = uvt_await(c->inner_t);
  uvt_event_destroy(&c->go);
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_shield_cancel_inner: the inner task
 * cancelled directly: the shield reports its cancellation. */
Test(shield, inner_cancelled_shows_through) {
  struct sh c;
  memset(&c, 0, sizeof c);
  run(shield_cancel_inner_main, &c);
  cr_assert_eq(c.outer, UVT_ECANCELED);
  cr_assert_eq(c.inner, UVT_ECANCELED);
}

/* ---- as_completed ------------------------------------------------------------ */

struct ac { int order[3]; int n, last, timeout_rc; size_t got_before_timeout; };

static int ac_main(void *arg) {
  struct ac *c = arg;
  uvt_task_t *ts[3];
  uvt_as_completed_t it;
  uvt_task_t *d;
  int i, rc;
  /* Finish in the order b (0 ms: a yield), c (2 ms), a (20 ms). */
  ts[0] = uvt_spawn(sleep_then_result, (void *)(intptr_t)20);
  ts[1] = uvt_spawn(sleep_then_result, (void *)(intptr_t)0);
  ts[2] = uvt_spawn(sleep_then_result, (void *)(intptr_t)2);
  cr_expect_eq(uvt_as_completed_init(&it, ts, 3, -1), 0);
  while ((rc = uvt_as_completed_next(&it, &d)) == 1)
    c->order[c->n++] = (int)(intptr_t)uvt_result(d);
  c->last = rc;
  uvt_as_completed_destroy(&it);
  for (i = 0; i < 3; i++) cr_expect_eq(uvt_await(ts[i]), 0);
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_as_completed: results come in the
 * order the tasks finish, then the iterator ends. */
Test(as_completed, yields_in_completion_order) {
  struct ac c;
  memset(&c, 0, sizeof c);
  run(ac_main, &c);
  cr_assert_eq(c.n, 3);
  cr_assert_eq(c.order[0], 0);
  cr_assert_eq(c.order[1], 2);
  cr_assert_eq(c.order[2], 20);
  cr_assert_eq(c.last, 0);
}

static int ac_timeout_main(void *arg) {
  struct ac *c = arg;
  uvt_task_t *ts[2];
  uvt_as_completed_t it;
  uvt_task_t *d;
  int rc;
  ts[0] = uvt_spawn(sleep_then_result, (void *)(intptr_t)0);
  ts[1] = uvt_spawn(sleep_then_result, (void *)(intptr_t)NEVER_MS);
  cr_expect_eq(uvt_as_completed_init(&it, ts, 2, 5), 0);
  while ((rc = uvt_as_completed_next(&it, &d)) == 1) c->got_before_timeout++;
  c->timeout_rc = rc;
  uvt_as_completed_destroy(&it);
  cr_expect_eq(uvt_await(ts[0]), 0);
  cr_expect_eq(uvt_cancel(ts[1]), 1);
  cr_expect_eq(uvt_await(ts[1]), UVT_ECANCELED);
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_as_completed_with_timeout: the quick
 * task comes out, then TimeoutError; the slow one is left running. */
Test(as_completed, timeout_after_the_quick_ones) {
  struct ac c;
  memset(&c, 0, sizeof c);
  run(ac_timeout_main, &c);
  cr_assert_eq(c.got_before_timeout, 1);
  cr_assert_eq(c.timeout_rc, UVT_ETIMEDOUT);
}

static int ac_done_main(void *arg) {
  struct ac *c = arg;
  uvt_task_t *ts[2];
  uvt_as_completed_t it;
  uvt_task_t *d;
  ts[0] = uvt_spawn(sleep_then_result, (void *)(intptr_t)0);
  ts[1] = uvt_spawn(sleep_then_result, (void *)(intptr_t)0);
  cr_expect_eq(uvt_await(uvt_task_ref(ts[1])), 0);
  cr_expect_eq(uvt_await(uvt_task_ref(ts[0])), 0);
  cr_expect_eq(uvt_as_completed_init(&it, ts, 2, 0), 0);
  while (uvt_as_completed_next(&it, &d) == 1) c->order[c->n++] = d == ts[0] ? 0 : 1;
  uvt_as_completed_destroy(&it);
  uvt_detach(ts[0]);
  uvt_detach(ts[1]);
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_as_completed_concurrent (done
 * futures): tasks done before the call all come out, even with a limit
 * of 0, in the order given. */
Test(as_completed, already_done_come_first) {
  struct ac c;
  memset(&c, 0, sizeof c);
  run(ac_done_main, &c);
  cr_assert_eq(c.n, 2);
  cr_assert_eq(c.order[0], 0);
  cr_assert_eq(c.order[1], 1);
}

static int ac_einval_main(void *arg) {
  struct ac *c = arg;
  uvt_as_completed_t it;
  c->last = uvt_as_completed_init(&it, NULL, 0, -1);
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_as_completed_invalid_args: an empty
 * set is refused (asyncio's ValueError); outside a task, UVT_ENOTASK. */
Test(as_completed, empty_is_einval) {
  struct ac c;
  uvt_as_completed_t it;
  uvt_task_t *none[1] = {NULL};
  memset(&c, 0, sizeof c);
  run(ac_einval_main, &c);
  cr_assert_eq(c.last, UVT_EINVAL);
  cr_assert_eq(uvt_as_completed_init(&it, none, 1, -1), UVT_ENOTASK);
}

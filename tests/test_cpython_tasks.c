/*
 * CPython 3.11 Lib/test/test_asyncio/test_tasks.py, ported to uvtask's
 * tasks, cancellation, uvt_wait and uvt_gather.  Each test names the
 * Python test it comes from and asserts the same behaviour; where uvtask
 * differs on purpose the comment says so (and include/uvtask.h does).
 *
 * Python's test loops advance virtual time; here tasks that must finish
 * "later" wait on a future or an event that the test sets, so no test
 * depends on timing.  `test_utils.run_briefly` is uvt_yield().  Where
 * gather/wait take futures in Python they take tasks awaiting those
 * futures here (uvt_gather and uvt_wait take tasks).  Bodies run as
 * uvt_run's main task (UVT_TEST): checks use cr_expect, and anything left
 * behind (a task, an unread error, a handle) fails the test.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uvtask.h"
#include "uvtask/testing.h"

TestSuite(cpython_tasks, .timeout = 20);

#define ITEM(i) ((void *)(intptr_t)(i))
#define INT(p) ((int)(intptr_t)(p))

/* A task standing for a future: it awaits the future (its reference is
 * given to the task) and ends with its outcome and result. */
static int await_future(void *arg) {
  void *res = NULL;
  char *msg = NULL;
  int st = uvt_await_future_result((uvt_future_t *)arg, &res, &msg);
  uvt_set_result(res);
  if (msg != NULL) {
    st = uvt_fail(st, "%s", msg);
    free(msg);
  }
  return st;
}

static int sleep_ms(void *arg) { return uvt_sleep((int64_t)(intptr_t)arg); }

static int yield_twice_12(void *arg) {
  int st;
  (void)arg;
  if ((st = uvt_yield()) != 0) return st;
  if ((st = uvt_yield()) != 0) return st;
  return 12;
}

/* ---- basics and cancellation ---------------------------------------------- */

static int inner1(void *arg) {
  (void)arg;
  return 42;
}
static int inner2(void *arg) {
  (void)arg;
  return 1000;
}
static int outer_sum(void *arg) {
  int a = uvt_await_coro(uvt_coro(inner1, NULL));
  int b = uvt_await_coro(uvt_coro(inner2, NULL));
  (void)arg;
  return a + b;
}

/* test_tasks.py::BaseTaskTests::test_task_basics */
UVT_TEST(cpython_tasks, test_task_basics) {
  cr_expect_eq(uvt_await(uvt_spawn(outer_sum, NULL)), 1042);
}

static int awaits_itself(void *arg) {
  (void)arg;
  return uvt_await(uvt_current());
}

/* test_tasks.py::BaseTaskTests::test_task_awaits_on_itself (RuntimeError) */
UVT_TEST(cpython_tasks, test_task_awaits_on_itself) {
  cr_expect_eq(uvt_await(uvt_spawn(awaits_itself, NULL)), UVT_ESELF);
}

/* test_tasks.py::BaseTaskTests::test_cancel */
UVT_TEST(cpython_tasks, test_cancel) {
  uvt_task_t *t = uvt_spawn(sleep_ms, ITEM(10000));
  uvt_task_t *ref = uvt_task_ref(t);
  cr_expect_eq(uvt_yield(), 0); /* loop.call_soon(t.cancel) */
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  cr_expect(uvt_done(ref));
  cr_expect_eq(uvt_cancel(ref), 0);
  uvt_detach(ref);
}

/* test_tasks.py::BaseTaskTests::test_cancel_yield */
UVT_TEST(cpython_tasks, test_cancel_yield) {
  uvt_task_t *t = uvt_spawn(yield_twice_12, NULL);
  uvt_task_t *ref = uvt_task_ref(t);
  cr_expect_eq(uvt_yield(), 0); /* start coro */
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  cr_expect(uvt_done(ref));
  cr_expect_eq(uvt_cancel(ref), 0);
  uvt_detach(ref);
}

static int await_f_12(void *arg) {
  int st = uvt_await_future((uvt_future_t *)arg);
  return st != 0 ? st : 12;
}

/* test_tasks.py::BaseTaskTests::test_cancel_inner_future: the future the
 * task awaits is cancelled: the task ends cancelled. */
UVT_TEST(cpython_tasks, test_cancel_inner_future) {
  uvt_future_t *f = uvt_future_new();
  uvt_task_t *t = uvt_spawn(await_f_12, uvt_future_ref(f));
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_future_cancel(f), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  cr_expect_eq(uvt_await_future(f), UVT_ECANCELED); /* f.cancelled() */
}

/* test_tasks.py::BaseTaskTests::test_cancel_both_task_and_inner_future */
UVT_TEST(cpython_tasks, test_cancel_both_task_and_inner_future) {
  uvt_future_t *f = uvt_future_new();
  uvt_task_t *t = uvt_spawn(await_f_12, uvt_future_ref(f));
  uvt_task_t *ref = uvt_task_ref(t);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_future_cancel(f), 1);
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  cr_expect(uvt_done(ref));
  cr_expect_eq(uvt_await_future(f), UVT_ECANCELED);
  uvt_detach(ref);
}

struct two_futs {
  uvt_future_t *f1, *f2, *f3;
};

static int catching(void *arg) {
  struct two_futs *s = arg;
  int st = uvt_await_future(s->f1);
  if (st != 0) return st;
  if (uvt_await_future(s->f2) == UVT_ECANCELED) return 42;
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_cancel_task_catching: the task
 * catches the cancel of its await and returns 42: not cancelled. */
UVT_TEST(cpython_tasks, test_cancel_task_catching) {
  struct two_futs s = {uvt_future_new(), uvt_future_new(), NULL};
  uvt_future_t *f2 = uvt_future_ref(s.f2);
  uvt_task_t *t = uvt_spawn(catching, &s);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_future_set_result(s.f1, NULL), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(t), 1);
  /* Cancelling a task parked on a future cancels the future. */
  cr_expect(uvt_future_done(f2));
  cr_expect_eq(uvt_await(t), 42);
  cr_expect_eq(uvt_await_future(f2), UVT_ECANCELED);
}

static int ignoring(void *arg) {
  struct two_futs *s = arg;
  void *res = NULL;
  int st = uvt_await_future(s->f1);
  if (st != 0) return st;
  (void)uvt_await_future(s->f2); /* a cancel here is swallowed */
  st = uvt_await_future_result(s->f3, &res, NULL);
  if (st != 0) return st;
  return INT(res);
}

/* test_tasks.py::BaseTaskTests::test_cancel_task_ignoring: after the
 * swallowed cancel the task awaits again normally. */
UVT_TEST(cpython_tasks, test_cancel_task_ignoring) {
  struct two_futs s = {uvt_future_new(), uvt_future_new(), uvt_future_new()};
  uvt_future_t *f2 = uvt_future_ref(s.f2), *f3 = uvt_future_ref(s.f3);
  uvt_task_t *t = uvt_spawn(ignoring, &s);
  uvt_task_t *ref = uvt_task_ref(t);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_future_set_result(s.f1, NULL), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect(uvt_future_done(f2));
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_not(uvt_done(ref)); /* now parked on f3 */
  cr_expect_eq(uvt_future_set_result(f3, ITEM(42)), 0);
  cr_expect_eq(uvt_await(t), 42);
  cr_expect_eq(uvt_await_future(f3), 0); /* f3 not cancelled */
  cr_expect_eq(uvt_await_future(f2), UVT_ECANCELED);
  uvt_detach(ref);
}

static int cancel_self_then_sleep(void *arg) {
  int st;
  (void)arg;
  cr_expect_eq(uvt_cancel(uvt_current()), 1);
  st = uvt_sleep(100000); /* cancelled at once */
  return st != 0 ? st : 12;
}

/* test_tasks.py::BaseTaskTests::test_cancel_current_task */
UVT_TEST(cpython_tasks, test_cancel_current_task) {
  uvt_task_t *t = uvt_spawn(cancel_self_then_sleep, NULL);
  uvt_task_t *ref = uvt_task_ref(t);
  cr_expect_not(uvt_done(ref));
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  cr_expect(uvt_done(ref));
  cr_expect_eq(uvt_cancel(ref), 0);
  uvt_detach(ref);
}

struct awaited {
  uvt_task_t *self;
  uvt_task_t *nested;
  uvt_future_t *fut;
};

static int nested_await(void *arg) { return uvt_await_future((uvt_future_t *)arg); }

static int cancel_then_await_nested(void *arg) {
  struct awaited *s = arg;
  uvt_task_t *nested = uvt_spawn(nested_await, uvt_future_ref(s->fut));
  s->nested = uvt_task_ref(nested);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(uvt_current()), 1);
  /* Blocks on the nested task, which must be cancelled at once. */
  return uvt_await(nested);
}

/* test_tasks.py::BaseTaskTests::test_cancel_awaited_task (bpo-34872): a
 * task that cancelled itself and then awaits a task cancels that task,
 * and so the future it awaits. */
UVT_TEST(cpython_tasks, test_cancel_awaited_task) {
  struct awaited s = {NULL, NULL, uvt_future_new()};
  uvt_task_t *task = uvt_spawn(cancel_then_await_nested, &s);
  cr_expect_eq(uvt_await(task), UVT_ECANCELED);
  cr_expect(s.nested != NULL && uvt_done(s.nested));
  cr_expect_eq(uvt_await(s.nested), UVT_ECANCELED);
  cr_expect_eq(uvt_await_future(s.fut), UVT_ECANCELED);
}

static int sleeper_cancel_later(void *arg) {
  int st;
  cr_expect_eq(uvt_sleep(10), 0); /* loop.call_later(0.1, sleeper.cancel) */
  st = uvt_cancel((uvt_task_t *)arg) == 1 ? 0 : UVT_EINVAL;
  uvt_detach((uvt_task_t *)arg);
  return st;
}

static int doit(void *arg) {
  uvt_task_t *sleeper = uvt_spawn(sleep_ms, ITEM(5000000));
  uvt_task_t *canceller = uvt_spawn(sleeper_cancel_later, uvt_task_ref(sleeper));
  int st = uvt_await(sleeper);
  (void)arg;
  cr_expect_eq(uvt_await(canceller), 0);
  uvt_set_result(st == UVT_ECANCELED ? "cancelled" : "slept in");
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_task_cancel_sleeping_task */
UVT_TEST(cpython_tasks, test_task_cancel_sleeping_task) {
  void *res = NULL;
  cr_expect_eq(uvt_await_result(uvt_spawn(doit, NULL), &res, NULL), 0);
  cr_expect_str_eq((const char *)res, "cancelled");
}

/* test_tasks.py::BaseTaskTests::test_sleep_cancel: cancelling a sleeping
 * task ends its sleep at once (the timer does not hold it). */
UVT_TEST(cpython_tasks, test_sleep_cancel) {
  uvt_task_t *t = uvt_spawn(sleep_ms, ITEM(10000000));
  uvt_task_t *ref = uvt_task_ref(t);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_not(uvt_done(ref));
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(uvt_done(ref));
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  uvt_detach(ref);
}

static uvt_task_t *expected_current;
static int check_current(void *arg) {
  (void)arg;
  cr_expect(uvt_current() == expected_current);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(uvt_current() == expected_current);
  return 0;
}

static int run_check_current(void *arg) {
  (void)arg;
  uvt_task_t *t = uvt_spawn(check_current, NULL);
  expected_current = t;
  return uvt_await(t);
}

/* test_tasks.py::BaseTaskTests::test_current_task: the task itself inside
 * it; none outside any task. */
Test(cpython_tasks, test_current_task) {
  cr_assert_null(uvt_current());
  cr_assert_eq(uvt_run(NULL, run_check_current, NULL), 0);
  cr_assert_null(uvt_current());
}

struct interleave {
  uvt_task_t *task1, *task2;
  uvt_future_t *fut1, *fut2;
};
static struct interleave il;

static int coro1(void *arg) {
  int st;
  (void)arg;
  cr_expect(uvt_current() == il.task1);
  st = uvt_await_future(il.fut1);
  cr_expect(uvt_current() == il.task1);
  cr_expect_eq(uvt_future_set_result(il.fut2, NULL), 0);
  uvt_future_detach(il.fut2);
  return st;
}

static int coro2(void *arg) {
  (void)arg;
  cr_expect(uvt_current() == il.task2);
  cr_expect_eq(uvt_future_set_result(il.fut1, NULL), 0);
  uvt_future_detach(il.fut1);
  int st = uvt_await_future(il.fut2);
  cr_expect(uvt_current() == il.task2);
  return st;
}

/* test_tasks.py::BaseTaskTests::test_current_task_with_interleaving_tasks */
UVT_TEST(cpython_tasks, test_current_task_with_interleaving_tasks) {
  uvt_task_t *t[2];
  /* coro1 awaits fut1 (giving up one reference) and coro2 sets it and
   * drops another: two references each, fut2 the other way round. */
  il.fut1 = uvt_future_new();
  il.fut2 = uvt_future_new();
  cr_expect(uvt_future_ref(il.fut1) == il.fut1);
  cr_expect(uvt_future_ref(il.fut2) == il.fut2);
  t[0] = il.task1 = uvt_spawn(coro1, NULL);
  t[1] = il.task2 = uvt_spawn(coro2, NULL);
  cr_expect_eq(uvt_wait(t, 2, UVT_ALL_COMPLETED, -1, NULL), 0);
  cr_expect(uvt_current() != il.task1 && uvt_current() != il.task2);
  cr_expect_eq(uvt_await(t[0]), 0);
  cr_expect_eq(uvt_await(t[1]), 0);
}

/* ---- cancellation through coroutines and wait ------------------------------ */

static int proof;

static int inner_waiter(void *arg) {
  int st = uvt_await_future((uvt_future_t *)arg);
  if (st == UVT_ECANCELED) {
    proof += 1;
    return st;
  }
  cr_expect(0, "got past the await in inner()");
  return st;
}

static int outer_coro(void *arg) {
  int st = uvt_await_coro(uvt_coro(inner_waiter, arg));
  if (st == UVT_ECANCELED)
    proof += 100; /* expected path */
  else
    proof += 10;
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_yield_future_passes_cancel: cancelling
 * outer() cancels inner() cancels the future. */
UVT_TEST(cpython_tasks, test_yield_future_passes_cancel) {
  uvt_future_t *waiter = uvt_future_new();
  uvt_task_t *f = uvt_spawn(outer_coro, uvt_future_ref(waiter));
  proof = 0;
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(f), 1);
  cr_expect_eq(uvt_await(f), 0); /* outer caught it */
  cr_expect_eq(proof, 101);
  cr_expect_eq(uvt_await_future(waiter), UVT_ECANCELED);
}

static int inner_then_proof(void *arg) {
  int st = uvt_await_future((uvt_future_t *)arg);
  proof += 1;
  return st;
}

static uvt_task_t *shield_inner;
static int outer_wait(void *arg) {
  int st;
  shield_inner = uvt_spawn(inner_then_proof, arg);
  st = uvt_wait(&shield_inner, 1, UVT_ALL_COMPLETED, -1, NULL);
  if (st == 0) proof += 100;
  return st;
}

/* test_tasks.py::BaseTaskTests::test_yield_wait_does_not_shield_cancel:
 * cancelling outer() makes wait() return early and leaves inner()
 * running. */
UVT_TEST(cpython_tasks, test_yield_wait_does_not_shield_cancel) {
  uvt_future_t *waiter = uvt_future_new();
  uvt_task_t *f = uvt_spawn(outer_wait, uvt_future_ref(waiter));
  proof = 0;
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(f), 1);
  cr_expect_eq(uvt_await(f), UVT_ECANCELED);
  cr_expect_not(uvt_done(shield_inner));
  cr_expect_eq(uvt_future_set_result(waiter, NULL), 0);
  uvt_future_detach(waiter);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(proof, 1);
  cr_expect_eq(uvt_await(shield_inner), 0);
}

/* ---- uvt_wait ------------------------------------------------------------- */

static uvt_event_t gate;
static int wait_gate(void *arg) {
  (void)arg;
  return uvt_event_wait(&gate);
}

static int fail_now(void *arg) {
  (void)arg;
  return uvt_fail(UV_EIO, "err");
}

static int fail_after_yield(void *arg) {
  (void)arg;
  cr_expect_eq(uvt_yield(), 0);
  return uvt_fail(UV_EIO, "err");
}

static void detach_all(uvt_task_t **t, int n) {
  for (int i = 0; i < n; i++) uvt_detach(t[i]);
}

/* test_tasks.py::BaseTaskTests::test_wait: all done; again, at once */
UVT_TEST(cpython_tasks, test_wait) {
  uvt_task_t *t[2];
  size_t ndone = 0;
  t[0] = uvt_spawn(sleep_ms, ITEM(15)); /* b */
  t[1] = uvt_spawn(sleep_ms, ITEM(10)); /* a */
  cr_expect_eq(uvt_wait(t, 2, UVT_ALL_COMPLETED, -1, &ndone), 0);
  cr_expect_eq(ndone, 2u);
  cr_expect(uvt_done(t[0]) && uvt_done(t[1]));
  ndone = 0;
  cr_expect_eq(uvt_wait(t, 2, UVT_ALL_COMPLETED, -1, &ndone), 0);
  cr_expect_eq(ndone, 2u);
  detach_all(t, 2);
}

/* test_tasks.py::BaseTaskTests::test_wait_errors: an empty set and a bad
 * return_when are ValueError. */
UVT_TEST(cpython_tasks, test_wait_errors) {
  uvt_task_t *t = uvt_spawn(sleep_ms, ITEM(0));
  cr_expect_eq(uvt_wait(NULL, 0, UVT_ALL_COMPLETED, -1, NULL), UVT_EINVAL);
  cr_expect_eq(uvt_wait(&t, 1, -1, -1, NULL), UVT_EINVAL);
  cr_expect_eq(uvt_await(t), 0);
}

/* test_tasks.py::BaseTaskTests::test_wait_first_completed */
UVT_TEST(cpython_tasks, test_wait_first_completed) {
  uvt_task_t *t[2];
  size_t ndone = 0;
  cr_expect_eq(uvt_event_init(&gate), 0);
  t[0] = uvt_spawn(sleep_ms, ITEM(1)); /* b */
  t[1] = uvt_spawn(wait_gate, NULL);   /* a: "sleep(10)" */
  cr_expect_eq(uvt_wait(t, 2, UVT_FIRST_COMPLETED, -1, &ndone), 0);
  cr_expect_eq(ndone, 1u);
  cr_expect(uvt_done(t[0]));
  cr_expect_not(uvt_done(t[1]));
  cr_expect_null(uvt_result(t[0]));
  uvt_event_set(&gate);
  cr_expect_eq(uvt_wait(t, 2, UVT_ALL_COMPLETED, -1, NULL), 0);
  detach_all(t, 2);
  uvt_event_destroy(&gate);
}

static int one_yield(void *arg) {
  (void)arg;
  return uvt_yield();
}

/* test_tasks.py::BaseTaskTests::test_wait_really_done: both tasks are done
 * before wait starts looking: it reports both. */
UVT_TEST(cpython_tasks, test_wait_really_done) {
  uvt_task_t *t[2];
  size_t ndone = 0;
  t[1] = uvt_spawn(one_yield, NULL);      /* a */
  t[0] = uvt_spawn(yield_twice_12, NULL); /* b */
  for (int i = 0; i < 4; i++) cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_wait(t, 2, UVT_FIRST_COMPLETED, -1, &ndone), 0);
  cr_expect_eq(ndone, 2u);
  cr_expect(uvt_done(t[0]) && uvt_done(t[1]));
  detach_all(t, 2);
}

/* test_tasks.py::BaseTaskTests::test_wait_first_exception: a task that
 * failed already ends the wait; the other stays pending. */
UVT_TEST(cpython_tasks, test_wait_first_exception) {
  uvt_task_t *t[2];
  size_t ndone = 0;
  cr_expect_eq(uvt_event_init(&gate), 0);
  t[0] = uvt_spawn(fail_now, NULL);  /* b */
  t[1] = uvt_spawn(wait_gate, NULL); /* a */
  cr_expect_eq(uvt_wait(t, 2, UVT_FIRST_EXCEPTION, -1, &ndone), 0);
  cr_expect_eq(ndone, 1u);
  cr_expect(uvt_done(t[0]));
  cr_expect_not(uvt_done(t[1]));
  uvt_event_set(&gate);
  cr_expect_eq(uvt_await(t[0]), UV_EIO);
  cr_expect_eq(uvt_await(t[1]), 0);
  uvt_event_destroy(&gate);
}

/* test_tasks.py::BaseTaskTests::test_wait_first_exception_in_wait: the
 * failure comes while waiting. */
UVT_TEST(cpython_tasks, test_wait_first_exception_in_wait) {
  uvt_task_t *t[2];
  size_t ndone = 0;
  cr_expect_eq(uvt_event_init(&gate), 0);
  t[0] = uvt_spawn(fail_after_yield, NULL); /* b */
  t[1] = uvt_spawn(wait_gate, NULL);        /* a */
  cr_expect_eq(uvt_wait(t, 2, UVT_FIRST_EXCEPTION, -1, &ndone), 0);
  cr_expect_eq(ndone, 1u);
  cr_expect(uvt_done(t[0]));
  cr_expect_not(uvt_done(t[1]));
  uvt_event_set(&gate);
  cr_expect_eq(uvt_await(t[0]), UV_EIO);
  cr_expect_eq(uvt_await(t[1]), 0);
  uvt_event_destroy(&gate);
}

static int sleep_then_fail(void *arg) {
  int st = uvt_sleep((int64_t)(intptr_t)arg);
  return st != 0 ? st : uvt_fail(UV_EIO, "really");
}

/* test_tasks.py::BaseTaskTests::test_wait_with_exception: ALL_COMPLETED
 * waits for both; one of them holds an error; twice. */
UVT_TEST(cpython_tasks, test_wait_with_exception) {
  uvt_task_t *t[2];
  size_t ndone = 0;
  int errors = 0;
  t[0] = uvt_spawn(sleep_then_fail, ITEM(15)); /* b */
  t[1] = uvt_spawn(sleep_ms, ITEM(10));        /* a */
  for (int round = 0; round < 2; round++) {
    cr_expect_eq(uvt_wait(t, 2, UVT_ALL_COMPLETED, -1, &ndone), 0);
    cr_expect_eq(ndone, 2u);
  }
  errors += uvt_error_message(t[0]) != NULL;
  errors += uvt_error_message(t[1]) != NULL;
  cr_expect_eq(errors, 1);
  cr_expect_eq(uvt_await(t[0]), UV_EIO);
  cr_expect_eq(uvt_await(t[1]), 0);
}

/* test_tasks.py::BaseTaskTests::test_wait_with_timeout: the limit passes
 * with a done and b pending (uvt_wait says UVT_ETIMEDOUT; asyncio returns
 * the two sets either way). */
UVT_TEST(cpython_tasks, test_wait_with_timeout) {
  uvt_task_t *t[2];
  size_t ndone = 0;
  cr_expect_eq(uvt_event_init(&gate), 0);
  t[0] = uvt_spawn(wait_gate, NULL);   /* b */
  t[1] = uvt_spawn(sleep_ms, ITEM(1)); /* a */
  cr_expect_eq(uvt_wait(t, 2, UVT_ALL_COMPLETED, 50, &ndone), UVT_ETIMEDOUT);
  cr_expect_eq(ndone, 1u);
  cr_expect(uvt_done(t[1]));
  cr_expect_not(uvt_done(t[0]));
  uvt_event_set(&gate);
  cr_expect_eq(uvt_wait(t, 2, UVT_ALL_COMPLETED, -1, NULL), 0);
  detach_all(t, 2);
  uvt_event_destroy(&gate);
}

/* test_tasks.py::BaseTaskTests::test_wait_concurrent_complete: the same,
 * for a wait started at once (no task has run yet). */
UVT_TEST(cpython_tasks, test_wait_concurrent_complete) {
  uvt_task_t *t[2];
  size_t ndone = 0;
  cr_expect_eq(uvt_event_init(&gate), 0);
  t[0] = uvt_spawn(wait_gate, NULL);   /* b */
  t[1] = uvt_spawn(one_yield, NULL);   /* a */
  cr_expect_eq(uvt_wait(t, 2, UVT_ALL_COMPLETED, 30, &ndone), UVT_ETIMEDOUT);
  cr_expect_eq(ndone, 1u);
  uvt_event_set(&gate);
  cr_expect_eq(uvt_wait(t, 2, UVT_ALL_COMPLETED, -1, NULL), 0);
  detach_all(t, 2);
  uvt_event_destroy(&gate);
}

static int return_tag(void *arg) {
  uvt_set_result(arg);
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_wait_duplicate_coroutines: the same
 * task twice in the set */
UVT_TEST(cpython_tasks, test_wait_duplicate_coroutines) {
  uvt_task_t *c = uvt_spawn(return_tag, "test");
  uvt_task_t *s = uvt_spawn(return_tag, "spam");
  uvt_task_t *t[3] = {c, c, s};
  size_t ndone = 0;
  cr_expect_eq(uvt_wait(t, 3, UVT_ALL_COMPLETED, -1, &ndone), 0);
  cr_expect_eq(ndone, 3u);
  cr_expect_str_eq((const char *)uvt_result(c), "test");
  cr_expect_str_eq((const char *)uvt_result(s), "spam");
  uvt_detach(c);
  uvt_detach(s);
}

/* ---- gather ----------------------------------------------------------------- */

struct gather_run {
  uvt_task_t **t;
  size_t n;
  int status;
  int done;
};

static int gatherer(void *arg) {
  struct gather_run *g = arg;
  g->status = uvt_gather(g->t, g->n);
  g->done = 1;
  return 0;
}

/* Futures a.. and the tasks standing for them. */
static void futures_and_tasks(uvt_future_t **f, uvt_task_t **t, int n) {
  for (int i = 0; i < n; i++) {
    f[i] = uvt_future_new();
    t[i] = uvt_spawn(await_future, uvt_future_ref(f[i]));
  }
}

static void drop_futures(uvt_future_t **f, int n) {
  for (int i = 0; i < n; i++) uvt_future_detach(f[i]);
}

static void settle(void) {
  for (int i = 0; i < 4; i++) cr_expect_eq(uvt_yield(), 0);
}

/* test_tasks.py::FutureGatherTests::test_success (and
 * CoroutineGatherTests): done only once all are; results in order. */
UVT_TEST(cpython_tasks, gather_test_success) {
  uvt_future_t *f[3];
  uvt_task_t *t[3], *g;
  struct gather_run run = {t, 3, 1, 0};
  futures_and_tasks(f, t, 3);
  g = uvt_spawn(gatherer, &run);
  cr_expect_eq(uvt_future_set_result(f[1], ITEM(1)), 0);
  cr_expect_eq(uvt_future_set_result(f[0], ITEM(2)), 0);
  settle();
  cr_expect_not(run.done);
  cr_expect_eq(uvt_future_set_result(f[2], ITEM(3)), 0);
  cr_expect_eq(uvt_await(g), 0);
  cr_expect(run.done);
  cr_expect_eq(run.status, 0);
  cr_expect_eq(INT(uvt_result(t[0])), 2);
  cr_expect_eq(INT(uvt_result(t[1])), 1);
  cr_expect_eq(INT(uvt_result(t[2])), 3);
  detach_all(t, 3);
  drop_futures(f, 3);
}

/* test_tasks.py::FutureGatherTests::test_one_exception.  Deliberate
 * difference (uvtask.h, uvt_gather): asyncio's gather is done at the
 * first exception; uvt_gather waits for all, then returns that first
 * error (in completion order), so the later outcomes do not replace it. */
UVT_TEST(cpython_tasks, gather_test_one_exception) {
  uvt_future_t *f[5];
  uvt_task_t *t[5], *g;
  struct gather_run run = {t, 5, 1, 0};
  futures_and_tasks(f, t, 5);
  g = uvt_spawn(gatherer, &run);
  cr_expect_eq(uvt_future_set_result(f[0], ITEM(1)), 0);
  cr_expect_eq(uvt_future_set_error(f[1], UV_EIO, "zero division"), 0);
  settle();
  cr_expect_not(run.done); /* asyncio: done here */
  cr_expect_eq(uvt_future_set_result(f[2], ITEM(3)), 0);
  cr_expect_eq(uvt_future_cancel(f[3]), 1);
  cr_expect_eq(uvt_future_set_error(f[4], UV_EPIPE, "runtime"), 0);
  cr_expect_eq(uvt_await(g), 0);
  cr_expect_eq(run.status, UV_EIO);
  detach_all(t, 5);
  drop_futures(f, 5);
}

/* test_tasks.py::FutureGatherTests::test_return_exceptions: every outcome
 * stays readable per task: [3, 1, exc, exc2]. */
UVT_TEST(cpython_tasks, gather_test_return_exceptions) {
  uvt_future_t *f[4];
  uvt_task_t *t[4], *g;
  struct gather_run run = {t, 4, 1, 0};
  futures_and_tasks(f, t, 4);
  g = uvt_spawn(gatherer, &run);
  cr_expect_eq(uvt_future_set_result(f[1], ITEM(1)), 0);
  cr_expect_eq(uvt_future_set_error(f[2], UV_EIO, "exc"), 0);
  cr_expect_eq(uvt_future_set_result(f[0], ITEM(3)), 0);
  settle();
  cr_expect_not(run.done);
  cr_expect_eq(uvt_future_set_error(f[3], UV_EPIPE, "exc2"), 0);
  cr_expect_eq(uvt_await(g), 0);
  cr_expect_eq(run.status, UV_EIO);
  cr_expect_eq(INT(uvt_result(t[0])), 3);
  cr_expect_eq(uvt_await(t[0]), 0);
  cr_expect_eq(INT(uvt_result(t[1])), 1);
  cr_expect_eq(uvt_await(t[1]), 0);
  cr_expect_str_eq(uvt_error_message(t[2]), "exc");
  cr_expect_eq(uvt_await(t[2]), UV_EIO);
  cr_expect_str_eq(uvt_error_message(t[3]), "exc2");
  cr_expect_eq(uvt_await(t[3]), UV_EPIPE);
  drop_futures(f, 4);
}

/* test_tasks.py::FutureGatherTests::test_one_cancellation: a child
 * cancelled makes the gather report a cancellation, while the gathering
 * task itself is not cancelled (its next await runs).  uvt_gather waits
 * for all (deliberate, see test_one_exception), so the others complete. */
UVT_TEST(cpython_tasks, gather_test_one_cancellation) {
  uvt_future_t *f[4];
  uvt_task_t *t[4], *g;
  struct gather_run run = {t, 4, 1, 0};
  futures_and_tasks(f, t, 4);
  g = uvt_spawn(gatherer, &run);
  cr_expect_eq(uvt_future_set_result(f[0], ITEM(1)), 0);
  cr_expect_eq(uvt_future_cancel(f[1]), 1);
  cr_expect_eq(uvt_future_set_result(f[2], ITEM(3)), 0);
  cr_expect_eq(uvt_future_cancel(f[3]), 1);
  cr_expect_eq(uvt_await(g), 0); /* fut.cancelled() is False */
  cr_expect_eq(run.status, UVT_ECANCELED);
  detach_all(t, 4);
  drop_futures(f, 4);
}

/* test_tasks.py::FutureGatherTests::test_result_exception_one_cancellation:
 * each outcome readable: [1, zde, cancelled, 3, cancelled, rte]. */
UVT_TEST(cpython_tasks, gather_test_result_exception_one_cancellation) {
  uvt_future_t *f[6];
  uvt_task_t *t[6], *g;
  struct gather_run run = {t, 6, 1, 0};
  int want[6] = {1, UV_EIO, UVT_ECANCELED, 3, UVT_ECANCELED, UV_EPIPE};
  futures_and_tasks(f, t, 6);
  g = uvt_spawn(gatherer, &run);
  cr_expect_eq(uvt_future_set_result(f[0], ITEM(1)), 0);
  cr_expect_eq(uvt_future_set_error(f[1], UV_EIO, "zde"), 0);
  cr_expect_eq(uvt_future_cancel(f[2]), 1);
  settle();
  cr_expect_not(run.done);
  cr_expect_eq(uvt_future_set_result(f[3], ITEM(3)), 0);
  cr_expect_eq(uvt_future_cancel(f[4]), 1);
  cr_expect_eq(uvt_future_set_error(f[5], UV_EPIPE, "rte"), 0);
  cr_expect_eq(uvt_await(g), 0);
  cr_expect_eq(run.status, UV_EIO); /* the first failure */
  for (int i = 0; i < 6; i++) {
    int st = uvt_await(t[i]);
    if (want[i] > 0)
      cr_expect_eq(st, 0, "task %d", i);
    else
      cr_expect_eq(st, want[i], "task %d", i);
  }
  drop_futures(f, 6);
}

/* test_tasks.py::CoroutineGatherTests::test_duplicate_coroutines: the same
 * task gathered three times */
UVT_TEST(cpython_tasks, gather_test_duplicate_coroutines) {
  uvt_task_t *c = uvt_spawn(return_tag, "abc");
  uvt_task_t *d = uvt_spawn(return_tag, "def");
  uvt_task_t *t[4] = {c, c, d, c};
  cr_expect_eq(uvt_gather(t, 4), 0);
  cr_expect_str_eq((const char *)uvt_result(c), "abc");
  cr_expect_str_eq((const char *)uvt_result(d), "def");
  uvt_detach(c);
  uvt_detach(d);
}

static int inner_proof(void *arg) {
  int st = uvt_await_future((uvt_future_t *)arg);
  if (st == 0) proof += 1;
  return st;
}

static int outer_gather(void *arg) {
  struct gather_run *g = arg;
  int st = uvt_gather(g->t, g->n);
  if (st == 0) proof += 100;
  return st;
}

/* test_tasks.py::CoroutineGatherTests::test_cancellation_broadcast:
 * cancelling the gathering task cancels every child and the future they
 * await. */
UVT_TEST(cpython_tasks, gather_test_cancellation_broadcast) {
  uvt_future_t *waiter = uvt_future_new();
  uvt_task_t *child[2], *f;
  struct gather_run run = {child, 2, 1, 0};
  proof = 0;
  child[0] = uvt_spawn(inner_proof, uvt_future_ref(waiter));
  child[1] = uvt_spawn(inner_proof, uvt_future_ref(waiter));
  f = uvt_spawn(outer_gather, &run);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(f), 1);
  cr_expect_eq(uvt_await(f), UVT_ECANCELED);
  cr_expect(uvt_future_done(waiter));
  cr_expect_eq(uvt_await(child[0]), UVT_ECANCELED);
  cr_expect_eq(uvt_await(child[1]), UVT_ECANCELED);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(proof, 0);
  cr_expect_eq(uvt_await_future(waiter), UVT_ECANCELED);
}

static int inner_raise(void *arg) {
  int st = uvt_await_future((uvt_future_t *)arg);
  return st != 0 ? st : uvt_fail(UV_EIO, "should not be ignored");
}

static int outer_gather_two(void *arg) {
  uvt_future_t **fs = arg;
  uvt_task_t *t[2] = {uvt_spawn(inner_raise, fs[0]), uvt_spawn(inner_raise, fs[1])};
  int st = uvt_gather(t, 2);
  detach_all(t, 2);
  return st;
}

/* test_tasks.py::CoroutineGatherTests::test_exception_marking: the gather
 * passes the first error up and counts both as read (UVT_TEST fails the
 * test for an error nobody read). */
UVT_TEST(cpython_tasks, gather_test_exception_marking) {
  uvt_future_t *a = uvt_future_new(), *b = uvt_future_new();
  uvt_future_t *fs[2] = {uvt_future_ref(a), uvt_future_ref(b)};
  uvt_task_t *f = uvt_spawn(outer_gather_two, fs);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_future_set_result(a, NULL), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_future_set_result(b, NULL), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_await(f), UV_EIO);
  uvt_future_detach(a);
  uvt_future_detach(b);
}

static int gather_loop(void *arg) {
  (void)arg;
  for (int i = 0; i < 1000; i++) {
    uvt_task_t *s = uvt_spawn(sleep_ms, ITEM(5));
    int st = uvt_gather(&s, 1);
    uvt_detach(s);
    if (st != 0) return st;
  }
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_cancel_gather_2: a cancel of a task
 * looping over gathers reaches its awaiter as a cancellation. */
UVT_TEST(cpython_tasks, test_cancel_gather_2) {
  uvt_task_t *qwe = uvt_spawn(gather_loop, NULL);
  cr_expect_eq(uvt_sleep(20), 0);
  cr_expect_eq(uvt_cancel(qwe), 1);
  cr_expect_eq(uvt_await(qwe), UVT_ECANCELED);
}

/* ---- what is reported ------------------------------------------------------- */

static int kill_me(void *arg) {
  int st = uvt_await_future((uvt_future_t *)arg);
  if (st == 0) cr_expect(0, "code never reached");
  return st;
}

static int drop_pending_task(void *arg) {
  uvt_future_t *fut = uvt_future_new();
  (void)arg;
  uvt_detach(uvt_spawn(kill_me, fut));
  cr_expect_eq(uvt_yield(), 0); /* it now waits for the future */
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_log_destroyed_pending_task: a task
 * still pending that nobody holds is reported ("Task was destroyed but it
 * is pending!"), naming the task and where it was created.  In uvtask the
 * report comes when uvt_run ends (which then cancels it). */
Test(cpython_tasks, test_log_destroyed_pending_task) {
  const char *report = NULL;
  cr_assert_eq(uvt_run(NULL, drop_pending_task, NULL), 0);
  cr_assert_eq(uvt_assert_no_leaks_after_run(&report), 1, "%s", report);
  cr_assert(strstr(report, "kill_me") != NULL, "%s", report);
  cr_assert(strstr(report, "test_cpython_tasks.c") != NULL, "%s", report);
}

static int raise_type_error(void *arg) {
  (void)arg;
  return uvt_fail(UVT_EINVAL, "TypeError");
}

static int cancel_after_error(void *arg) {
  uvt_task_t *task = uvt_spawn(raise_type_error, NULL);
  (void)arg;
  cr_expect_eq(uvt_sleep(5), 0);
  cr_expect(uvt_done(task));
  cr_expect_eq(uvt_cancel(task), 0);
  uvt_detach(task);
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_tb_logger_not_called_after_cancel.
 * Deliberate difference (uvtask.h, uvt_cancel): a cancel of a task that
 * already ended changes nothing, so its unread error is still reported;
 * asyncio's cancel() silences the log even when it cancels nothing. */
Test(cpython_tasks, test_tb_logger_not_called_after_cancel) {
  const char *report = NULL;
  cr_assert_eq(uvt_run(NULL, cancel_after_error, NULL), 0);
  cr_assert_eq(uvt_assert_no_leaks_after_run(&report), 1, "%s", report);
  cr_assert(strstr(report, "TypeError") != NULL, "%s", report);
}

/* test_tasks.py::BaseTaskTests::test_create_task_with_noncoroutine
 * (TypeError, twice): no function, no task; the second call fails the
 * same way. */
UVT_TEST(cpython_tasks, test_create_task_with_noncoroutine) {
  cr_expect_null(uvt_spawn((uvt_fn)NULL, ITEM(123)));
  cr_expect_null(uvt_spawn((uvt_fn)NULL, ITEM(123)));
}

/*
 * CPython 3.11 Lib/test/test_asyncio/test_waitfor.py, ported to
 * uvt_wait_for.  Each test names the Python test it comes from and
 * asserts the same behaviour (times scaled down; no test asserts a time).
 * uvt_wait_for takes tasks: where Python waits for a bare future, the
 * future is awaited by a task (said in the test).  Its timeout: -1 is
 * asyncio's None, and other negatives are UVT_EINVAL where asyncio treats
 * them as 0 (a deliberate difference, in include/uvtask.h).
 *
 * Bodies run as uvt_run's main task (UVT_TEST): checks use cr_expect, and
 * anything left behind fails the test.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "uvtask.h"
#include "uvtask/testing.h"

TestSuite(cpython_waitfor, .timeout = 20);

#define ITEM(i) ((void *)(intptr_t)(i))
#define INT(p) ((int)(intptr_t)(p))

/* SlowTask: runs for `ms`, ignoring cancel requests. */
struct slow {
  int64_t ms;
  int exited;
  int cancels_seen;
};

static int slow_run(void *arg) {
  struct slow *s = arg;
  uint64_t exit_at = uv_hrtime() + (uint64_t)s->ms * 1000000u;
  for (;;) {
    uint64_t now = uv_hrtime();
    int st;
    if (now >= exit_at) break;
    st = uvt_sleep((int64_t)((exit_at - now) / 1000000u) + 1);
    if (st == UVT_ECANCELED) s->cancels_seen++;
  }
  s->exited = 1;
  return 0;
}

static int wait_for_slow(void *arg) {
  struct slow *s = arg;
  return uvt_wait_for(uvt_spawn(slow_run, s), s->ms * 2);
}

/* test_waitfor.py::AsyncioWaitForTest::test_asyncio_wait_for_cancelled:
 * cancelling the task in wait_for ends only once the inner task (which
 * ignores cancels) has exited. */
UVT_TEST(cpython_waitfor, test_asyncio_wait_for_cancelled) {
  struct slow s = {40, 0, 0};
  uvt_task_t *w = uvt_spawn(wait_for_slow, &s);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(w), 1);
  cr_expect_eq(uvt_wait(&w, 1, UVT_ALL_COMPLETED, -1, NULL), 0);
  cr_expect(s.exited);
  cr_expect_geq(s.cancels_seen, 1);
  cr_expect_eq(uvt_await(w), UVT_ECANCELED);
}

/* test_waitfor.py::AsyncioWaitForTest::test_asyncio_wait_for_timeout:
 * after the timeout, wait_for returns only once the inner task exited.
 * (Python accepts TimeoutError or none; the inner task swallowed the
 * cancel and returned, so its own outcome, 0, is what comes back.) */
UVT_TEST(cpython_waitfor, test_asyncio_wait_for_timeout) {
  struct slow s = {40, 0, 0};
  int st = uvt_wait_for(uvt_spawn(slow_run, &s), 20);
  cr_expect(st == 0 || st == UVT_ETIMEDOUT, "st %d", st);
  cr_expect(s.exited);
  cr_expect_eq(s.cancels_seen, 1);
}

static int foo_started;
static int foo_set_started(void *arg) {
  (void)arg;
  foo_started = 1;
  return 0;
}

/* test_waitfor.py::AsyncioWaitForTest::test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started */
UVT_TEST(cpython_waitfor, test_wait_for_timeout_0_coroutine_not_started) {
  foo_started = 0;
  cr_expect_eq(uvt_wait_for(uvt_spawn(foo_set_started, NULL), 0), UVT_ETIMEDOUT);
  cr_expect_eq(foo_started, 0);
}

static int foo_running;
static uvt_event_t started;

static int foo_sleeps(void *arg) {
  int st;
  (void)arg;
  foo_running = 1;
  uvt_event_set(&started);
  st = uvt_sleep(10000);
  foo_running = 0;
  if (st != 0) return st;
  uvt_set_result("done");
  return 0;
}

/* test_waitfor.py::AsyncioWaitForTest::test_wait_for_timeout_less_then_0_or_0
 * for timeout 0: the started task is cancelled and has finished when
 * wait_for returns. */
UVT_TEST(cpython_waitfor, test_wait_for_timeout_0_started_task) {
  uvt_task_t *fut, *ref;
  foo_running = -1;
  cr_expect_eq(uvt_event_init(&started), 0);
  fut = uvt_spawn(foo_sleeps, NULL);
  ref = uvt_task_ref(fut);
  cr_expect_eq(uvt_event_wait(&started), 0);
  cr_expect_eq(uvt_wait_for(fut, 0), UVT_ETIMEDOUT);
  cr_expect(uvt_done(ref));
  cr_expect_eq(uvt_await(ref), UVT_ECANCELED); /* fut.cancelled() */
  cr_expect_eq(foo_running, 0);
  uvt_event_destroy(&started);
}

/* test_waitfor.py::AsyncioWaitForTest::test_wait_for_timeout_less_then_0_or_0
 * for timeout -1.  Deliberate difference: -1 is uvtask's "no limit"
 * (asyncio's None) and any other negative is UVT_EINVAL, which gives up
 * nothing; asyncio treats a negative timeout as 0.  So -2 is refused and
 * the task runs on until cancelled by hand. */
UVT_TEST(cpython_waitfor, test_wait_for_timeout_negative) {
  uvt_task_t *fut;
  foo_running = -1;
  cr_expect_eq(uvt_event_init(&started), 0);
  fut = uvt_spawn(foo_sleeps, NULL);
  cr_expect_eq(uvt_event_wait(&started), 0);
  cr_expect_eq(uvt_wait_for(fut, -2), UVT_EINVAL);
  cr_expect_not(uvt_done(fut));
  cr_expect_eq(foo_running, 1);
  cr_expect_eq(uvt_cancel(fut), 1);
  cr_expect_eq(uvt_await(fut), UVT_ECANCELED);
  cr_expect_eq(foo_running, 0);
  uvt_event_destroy(&started);
}

/* test_waitfor.py::AsyncioWaitForTest::test_wait_for */
UVT_TEST(cpython_waitfor, test_wait_for) {
  uvt_task_t *fut, *ref;
  foo_running = -1;
  cr_expect_eq(uvt_event_init(&started), 0);
  fut = uvt_spawn(foo_sleeps, NULL);
  ref = uvt_task_ref(fut);
  cr_expect_eq(uvt_wait_for(fut, 20), UVT_ETIMEDOUT);
  cr_expect(uvt_done(ref));
  cr_expect_eq(uvt_await(ref), UVT_ECANCELED);
  cr_expect_eq(foo_running, 0);
  uvt_event_destroy(&started);
}

static int coro_done(void *arg) {
  (void)arg;
  uvt_set_result("done");
  return 0;
}

/* test_waitfor.py::AsyncioWaitForTest::test_wait_for_blocking (timeout
 * None: -1) */
UVT_TEST(cpython_waitfor, test_wait_for_blocking) {
  void *res = NULL;
  cr_expect_eq(uvt_wait_for_result(uvt_spawn(coro_done, NULL), -1, &res, NULL), 0);
  cr_expect_str_eq((const char *)res, "done");
}

/* A task awaiting a future: uvt_wait_for takes tasks, not futures. */
static int await_future(void *arg) {
  void *res = NULL;
  int st = uvt_await_future_result((uvt_future_t *)arg, &res, NULL);
  uvt_set_result(res);
  return st;
}

/* test_waitfor.py::AsyncioWaitForTest::test_wait_for_timeout_less_then_0_or_0_future_done:
 * done already: a 0 timeout still returns the result. */
UVT_TEST(cpython_waitfor, test_wait_for_timeout_0_future_done) {
  uvt_future_t *f = uvt_future_new();
  uvt_task_t *t;
  void *res = NULL;
  cr_expect_eq(uvt_future_set_result(f, "done"), 0);
  t = uvt_spawn(await_future, f);
  /* Let the task take the result: it is done before wait_for starts. */
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(uvt_done(t));
  cr_expect_eq(uvt_wait_for_result(t, 0, &res, NULL), 0);
  cr_expect_str_eq((const char *)res, "done");
}

static int later_set(void *arg) {
  int st = uvt_sleep(10);
  if (st != 0) return st;
  st = uvt_future_set_result((uvt_future_t *)arg, "ok");
  uvt_future_detach((uvt_future_t *)arg);
  return st;
}

/* test_waitfor.py::AsyncioWaitForTest::test_wait_for_race_condition: set
 * well before the limit: the result, not a timeout. */
UVT_TEST(cpython_waitfor, test_wait_for_race_condition) {
  uvt_future_t *f = uvt_future_new();
  uvt_task_t *setter = uvt_spawn(later_set, uvt_future_ref(f));
  void *res = NULL;
  cr_expect_eq(uvt_wait_for_result(uvt_spawn(await_future, f), 2000, &res, NULL), 0);
  cr_expect_str_eq((const char *)res, "ok");
  cr_expect_eq(uvt_await(setter), 0);
}

static int task_done_flag;
static int inner_slow_cancel(void *arg) {
  int st;
  (void)arg;
  st = uvt_sleep(10000);
  if (st == UVT_ECANCELED) cr_expect_eq(uvt_sleep(5), 0);
  task_done_flag = 1;
  return st;
}

/* test_waitfor.py::AsyncioWaitForTest::test_wait_for_waits_for_task_cancellation */
UVT_TEST(cpython_waitfor, test_wait_for_waits_for_task_cancellation) {
  task_done_flag = 0;
  cr_expect_eq(uvt_wait_for(uvt_spawn(inner_slow_cancel, NULL), 5), UVT_ETIMEDOUT);
  cr_expect(task_done_flag);
}

static int foo_timeout_0(void *arg) {
  uvt_task_t *inner = uvt_spawn(inner_slow_cancel, NULL);
  (void)arg;
  cr_expect_eq(uvt_sleep(5), 0);
  return uvt_wait_for(inner, 0);
}

/* test_waitfor.py::AsyncioWaitForTest::test_wait_for_waits_for_task_cancellation_w_timeout_0 */
UVT_TEST(cpython_waitfor, test_wait_for_waits_for_task_cancellation_w_timeout_0) {
  task_done_flag = 0;
  cr_expect_eq(uvt_await(uvt_spawn(foo_timeout_0, NULL)), UVT_ETIMEDOUT);
  cr_expect(task_done_flag);
}

/* Holds up two cancellations, then returns 42. */
static int inner_42(void *arg) {
  (void)arg;
  if (uvt_sleep(60) == UVT_ECANCELED)
    if (uvt_sleep(60) == UVT_ECANCELED) cr_expect_eq(uvt_sleep(60), 0);
  uvt_set_result(ITEM(42));
  return 0;
}

static int wait_for_inner(void *arg) {
  return uvt_wait_for((uvt_task_t *)arg, 20);
}

/* test_waitfor.py::AsyncioWaitForTest::test_wait_for_self_cancellation:
 * wait_for stays cancellable while the task it cancelled holds the
 * cancellation up; the inner task still ends with its result. */
UVT_TEST(cpython_waitfor, test_wait_for_self_cancellation) {
  uvt_task_t *inner = uvt_spawn(inner_42, NULL);
  uvt_task_t *task = uvt_spawn(wait_for_inner, uvt_task_ref(inner));
  void *res = NULL;
  cr_expect_eq(uvt_sleep(40), 0);
  cr_expect_eq(uvt_cancel(task), 1);
  cr_expect_eq(uvt_await(task), UVT_ECANCELED);
  cr_expect_eq(uvt_await_result(inner, &res, NULL), 0);
  cr_expect_eq(INT(res), 42);
}

/* Blocks on a future nobody sets. */
static int blocking_coroutine(void *arg) {
  (void)arg;
  return uvt_await_future(uvt_future_new());
}

struct cancel_wf {
  uvt_task_t *task;
  int64_t timeout;
};

static int wait_for_task(void *arg) {
  struct cancel_wf *c = arg;
  return uvt_wait_for(c->task, c->timeout);
}

/* _test_cancel_wait_for: cancelling the wait cancels the task
 * (bpo-23219). */
static void cancel_wait_for(int64_t timeout) {
  struct cancel_wf c;
  uvt_task_t *task = uvt_spawn(blocking_coroutine, NULL);
  uvt_task_t *wait;
  c.task = uvt_task_ref(task);
  c.timeout = timeout;
  wait = uvt_spawn(wait_for_task, &c);
  cr_expect_eq(uvt_yield(), 0); /* loop.call_soon(wait.cancel) */
  cr_expect_eq(uvt_cancel(wait), 1);
  cr_expect_eq(uvt_await(wait), UVT_ECANCELED);
  cr_expect(uvt_done(task));
  cr_expect_eq(uvt_await(task), UVT_ECANCELED); /* task.cancelled() */
}

/* test_waitfor.py::AsyncioWaitForTest::test_cancel_blocking_wait_for */
UVT_TEST(cpython_waitfor, test_cancel_blocking_wait_for) { cancel_wait_for(-1); }

/* test_waitfor.py::AsyncioWaitForTest::test_cancel_wait_for */
UVT_TEST(cpython_waitfor, test_cancel_wait_for) { cancel_wait_for(60000); }

/*
 * CPython 3.11 Lib/test/test_asyncio/test_futures.py, ported to uvtask's
 * futures.  Each test names the Python test it comes from and asserts the
 * same behaviour.  Python's InvalidStateError on a second set is
 * UVT_EINVAL; Future.cancel()'s True/False is uvt_future_cancel's 1/0;
 * `fut.result()` / `fut.exception()` is an await of a done future (which
 * returns at once and counts the error as retrieved).  The "traceback
 * logger" tests check what uvtask reports as an error nobody read
 * (uvt_assert_no_leaks_after_run, after uvt_run returned).
 *
 * Done callbacks (BaseFutureDoneCallbackTests) are not ported: main has no
 * done-callback call for futures yet.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uvtask.h"
#include "uvtask/testing.h"

TestSuite(cpython_futures, .timeout = 20);

#define ITEM(i) ((void *)(intptr_t)(i))
#define INT(p) ((int)(intptr_t)(p))

/* test_futures.py::BaseFutureTests::test_initial_state */
UVT_TEST(cpython_futures, test_initial_state) {
  uvt_future_t *f = uvt_future_new();
  cr_expect_not(uvt_future_done(f));
  cr_expect_eq(uvt_future_cancel(f), 1);
  cr_expect(uvt_future_done(f));
  cr_expect_eq(uvt_await_future(f), UVT_ECANCELED); /* cancelled() */
}

/* test_futures.py::BaseFutureTests::test_cancel */
UVT_TEST(cpython_futures, test_cancel) {
  uvt_future_t *f = uvt_future_new();
  cr_expect_eq(uvt_future_cancel(f), 1);
  cr_expect(uvt_future_done(f));
  cr_expect_eq(uvt_future_set_result(f, NULL), UVT_EINVAL);
  cr_expect_eq(uvt_future_set_error(f, UV_EIO, "late"), UVT_EINVAL);
  cr_expect_eq(uvt_future_cancel(f), 0);
  cr_expect_null(uvt_future_result(f));
  cr_expect_eq(uvt_await_future(f), UVT_ECANCELED); /* f.result() raises */
}

/* test_futures.py::BaseFutureTests::test_result */
UVT_TEST(cpython_futures, test_result) {
  uvt_future_t *f = uvt_future_new();
  void *res = NULL;
  cr_expect_null(uvt_future_result(f)); /* not done: no result yet */
  cr_expect_eq(uvt_future_set_result(f, ITEM(42)), 0);
  cr_expect(uvt_future_done(f));
  cr_expect_eq(INT(uvt_future_result(f)), 42);
  cr_expect_null(uvt_future_error_message(f)); /* exception() is None */
  cr_expect_eq(uvt_future_set_result(f, NULL), UVT_EINVAL);
  cr_expect_eq(uvt_future_set_error(f, UV_EIO, NULL), UVT_EINVAL);
  cr_expect_eq(uvt_future_cancel(f), 0);
  cr_expect_eq(uvt_await_future_result(f, &res, NULL), 0);
  cr_expect_eq(INT(res), 42);
}

/* test_futures.py::BaseFutureTests::test_exception */
UVT_TEST(cpython_futures, test_exception) {
  uvt_future_t *f = uvt_future_new();
  char *msg = NULL;
  cr_expect_eq(uvt_future_set_error(f, UV_EIO, "boom %d", 1), 0);
  cr_expect(uvt_future_done(f));
  cr_expect_str_eq(uvt_future_error_message(f), "boom 1");
  cr_expect_eq(uvt_future_set_result(f, NULL), UVT_EINVAL);
  cr_expect_eq(uvt_future_set_error(f, UV_EIO, NULL), UVT_EINVAL);
  cr_expect_eq(uvt_future_cancel(f), 0);
  cr_expect_eq(uvt_await_future_result(f, NULL, &msg), UV_EIO);
  cr_expect_str_eq(msg, "boom 1");
  free(msg);
}

/* test_futures.py::BaseFutureTests::test_exception (set_exception with a
 * non-exception: TypeError) — the C counterpart: an error code must be
 * negative. */
UVT_TEST(cpython_futures, test_exception_bad_value) {
  uvt_future_t *f = uvt_future_new();
  cr_expect_eq(uvt_future_set_error(f, 5, "not an error"), UVT_EINVAL);
  cr_expect_not(uvt_future_done(f));
  cr_expect_eq(uvt_future_set_result(f, NULL), 0);
  cr_expect_eq(uvt_await_future(f), 0);
}

static int yield_from_twice(void *arg) {
  uvt_future_t *f = arg;
  void *x = NULL, *y = NULL;
  uvt_future_t *again = uvt_future_ref(f);
  int st = uvt_await_future_result(f, &x, NULL);
  if (st != 0) {
    uvt_future_detach(again);
    return st;
  }
  cr_expect_eq(INT(x), 42);
  /* The second await of a done future does not suspend. */
  st = uvt_await_future_result(again, &y, NULL);
  cr_expect_eq(INT(y), 42);
  return st;
}

/* test_futures.py::BaseFutureTests::test_yield_from_twice */
UVT_TEST(cpython_futures, test_yield_from_twice) {
  uvt_future_t *f = uvt_future_new();
  uvt_task_t *t = uvt_spawn(yield_from_twice, f);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_not(uvt_done(t)); /* parked on f */
  cr_expect_eq(uvt_future_set_result(f, ITEM(42)), 0);
  cr_expect_eq(uvt_await(t), 0);
}

/* test_futures.py::BaseFutureTests::test_set_result_unless_cancelled */
UVT_TEST(cpython_futures, test_set_result_unless_cancelled) {
  uvt_future_t *f = uvt_future_new();
  cr_expect_eq(uvt_future_cancel(f), 1);
  cr_expect_eq(uvt_future_set_result(f, ITEM(2)), UVT_EINVAL);
  cr_expect_eq(uvt_await_future(f), UVT_ECANCELED);
}

/* ---- what is reported when a future is dropped ----------------------------
 * Each body runs under uvt_run; after it returns, the leaks it reported
 * are counted (an unread error, an unreleased handle). */

static int (*body)(void);
static int run_body(void *arg) {
  (void)arg;
  return body();
}

static int count_reported(int (*b)(void), const char **report) {
  body = b;
  cr_assert_eq(uvt_run(NULL, run_body, NULL), 0);
  return uvt_assert_no_leaks_after_run(report);
}

static int abandoned(void) {
  uvt_future_detach(uvt_future_new());
  return 0;
}

/* test_futures.py::BaseFutureTests::test_tb_logger_abandoned: a pending
 * future dropped is not an error. */
Test(cpython_futures, test_tb_logger_abandoned) {
  const char *report = NULL;
  cr_assert_eq(count_reported(abandoned, &report), 0, "%s", report);
}

static int result_unretrieved(void) {
  uvt_future_t *f = uvt_future_new();
  cr_expect_eq(uvt_future_set_result(f, ITEM(42)), 0);
  uvt_future_detach(f);
  return 0;
}

/* test_futures.py::BaseFutureTests::test_tb_logger_result_unretrieved */
Test(cpython_futures, test_tb_logger_result_unretrieved) {
  const char *report = NULL;
  cr_assert_eq(count_reported(result_unretrieved, &report), 0, "%s", report);
}

static int result_retrieved(void) {
  uvt_future_t *f = uvt_future_new();
  cr_expect_eq(uvt_future_set_result(f, ITEM(42)), 0);
  cr_expect_eq(uvt_await_future(f), 0);
  return 0;
}

/* test_futures.py::BaseFutureTests::test_tb_logger_result_retrieved */
Test(cpython_futures, test_tb_logger_result_retrieved) {
  const char *report = NULL;
  cr_assert_eq(count_reported(result_retrieved, &report), 0, "%s", report);
}

static int exception_unretrieved(void) {
  uvt_future_t *f = uvt_future_new();
  cr_expect_eq(uvt_future_set_error(f, UV_EIO, "boom"), 0);
  uvt_future_detach(f);
  return 0;
}

/* test_futures.py::BaseFutureTests::test_tb_logger_exception_unretrieved:
 * an error nobody read is reported, once. */
Test(cpython_futures, test_tb_logger_exception_unretrieved) {
  const char *report = NULL;
  cr_assert_eq(count_reported(exception_unretrieved, &report), 1, "%s", report);
}

/* test_futures.py::BaseFutureTests::test_future_exception_never_retrieved:
 * the report names the error's message. */
Test(cpython_futures, test_future_exception_never_retrieved) {
  const char *report = NULL;
  cr_assert_eq(count_reported(exception_unretrieved, &report), 1);
  cr_assert(strstr(report, "boom") != NULL || strstr(report, "error") != NULL,
            "%s", report);
}

static int exception_retrieved(void) {
  uvt_future_t *f = uvt_future_new();
  cr_expect_eq(uvt_future_set_error(f, UV_EIO, "boom"), 0);
  cr_expect_eq(uvt_await_future(f), UV_EIO);
  return 0;
}

/* test_futures.py::BaseFutureTests::test_tb_logger_exception_retrieved */
Test(cpython_futures, test_tb_logger_exception_retrieved) {
  const char *report = NULL;
  cr_assert_eq(count_reported(exception_retrieved, &report), 0, "%s", report);
}

static int error_then_cancel(void) {
  uvt_future_t *f = uvt_future_new();
  cr_expect_eq(uvt_future_set_error(f, UV_EIO, "boom"), 0);
  cr_expect_eq(uvt_future_cancel(f), 0);
  uvt_future_detach(f);
  return 0;
}

/* test_futures.py::BaseFutureTests::test_tb_logger_not_called_after_cancel.
 * Deliberate difference (uvtask.h, uvt_future_cancel): a cancel of a
 * future already done changes nothing, so its unread error is still
 * reported when it is released; asyncio's cancel() silences the log
 * even when it cancels nothing.  An error is counted as read only when
 * someone read it. */
Test(cpython_futures, test_tb_logger_not_called_after_cancel) {
  const char *report = NULL;
  cr_assert_eq(count_reported(error_then_cancel, &report), 1, "%s", report);
}

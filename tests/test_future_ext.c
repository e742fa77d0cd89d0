/*
 * Future done-callbacks and completion from another thread, ported where
 * CPython 3.11 has a case (Lib/test/test_asyncio/test_futures.py, each
 * case names its origin).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "uvtask.h"
#include "uvtask/testing.h"

static void run(uvt_fn fn, void *ctx) {
  cr_assert_eq(uvt_run(NULL, fn, ctx), 0);
  UVT_ASSERT_NO_LEAKS();
}

struct cbs { int calls[8]; int n; int removed; int done_seen; };

struct tag { struct cbs *c; int id; };

static void note(uvt_future_t *f, void *data) {
  struct tag *t = data;
  t->c->done_seen += uvt_future_done(f);
  if (t->c->n < 8) t->c->calls[t->c->n++] = t->id;
}

static int cb_main(void *arg) {
  struct cbs *c = arg;
  uvt_future_t *f = uvt_future_new();
  static struct tag t1, t2, t3, t4;
  t1 = (struct tag){c, 1};
  t2 = (struct tag){c, 2};
  t3 = (struct tag){c, 3};
  t4 = (struct tag){c, 4};
  cr_expect_eq(uvt_future_add_done_callback(f, note, &t1), 0);
  cr_expect_eq(uvt_future_add_done_callback(f, note, &t2), 0);
  cr_expect_eq(uvt_future_add_done_callback(f, note, &t3), 0);
  cr_expect_eq(uvt_future_add_done_callback(f, note, &t2), 0);
  c->removed = uvt_future_remove_done_callback(f, note, &t2);
  cr_expect_eq(c->n, 0, "a callback ran before the future was set");
  cr_expect_eq(uvt_future_set_result(f, (void *)5), 0);
  /* Added after it is done: runs at once. */
  cr_expect_eq(uvt_future_add_done_callback(f, note, &t4), 0);
  cr_expect_eq(uvt_await_future(f), 0);
  return 0;
}

/* test_futures.py::BaseFutureTests::test_callbacks_invoked_on_set_result
 * and test_remove_done_callback: callbacks run once set, in the order
 * added; removed ones (every registration of the pair) do not. */
Test(future_ext, done_callbacks_in_order) {
  struct cbs c;
  memset(&c, 0, sizeof c);
  run(cb_main, &c);
  cr_assert_eq(c.removed, 2);
  cr_assert_eq(c.n, 3);
  cr_assert_eq(c.calls[0], 1);
  cr_assert_eq(c.calls[1], 3);
  cr_assert_eq(c.calls[2], 4);
  cr_assert_eq(c.done_seen, 3);
}

static int cb_cancel_main(void *arg) {
  struct cbs *c = arg;
  uvt_future_t *f = uvt_future_new();
  static struct tag t1;
  t1 = (struct tag){c, 1};
  cr_expect_eq(uvt_future_add_done_callback(f, note, &t1), 0);
  cr_expect_eq(uvt_future_cancel(f), 1);
  cr_expect_eq(uvt_await_future(f), UVT_ECANCELED);
  return 0;
}

/* test_futures.py::BaseFutureTests::test_callbacks_invoked_on_set_exception
 * (via a cancel): a cancelled future runs its callbacks too. */
Test(future_ext, callbacks_run_on_cancel) {
  struct cbs c;
  memset(&c, 0, sizeof c);
  run(cb_cancel_main, &c);
  cr_assert_eq(c.n, 1);
}

struct ts {
  uvt_future_t *f;
  uv_thread_t th;
  uv_loop_t *loop;
  uvt_event_t after; /* set by a call posted after the set */
  int post_rc, await_rc, marker_rc;
  void *res;
  int err;
};

static int mark_after(void *arg) {
  uvt_event_set(&((struct ts *)arg)->after);
  return 0;
}

static void setter_thread(void *arg) {
  struct ts *c = arg;
  c->post_rc = c->err ? uvt_future_set_error_threadsafe(c->f, c->err)
                      : uvt_future_set_result_threadsafe(c->f, (void *)99);
  /* Posted calls run in order: once this one ran, the set has too. */
  if (c->loop != NULL) c->marker_rc = uvt_call_threadsafe(c->loop, mark_after, c);
}

static int ts_main(void *arg) {
  struct ts *c = arg;
  uvt_future_t *f = uvt_future_new();
  c->f = uvt_future_ref(f); /* the setter's reference, given up by the set */
  cr_expect_eq(uv_thread_create(&c->th, setter_thread, c), 0);
  c->await_rc = uvt_await_future_result(f, &c->res, NULL);
  uv_thread_join(&c->th);
  return 0;
}

/* A future completed by another thread (run_coroutine_threadsafe's
 * future): the awaiting task gets the value; the setter's reference is
 * given up (no unreleased handle at the end). */
Test(future_ext, set_from_another_thread) {
  struct ts c;
  memset(&c, 0, sizeof c);
  run(ts_main, &c);
  cr_assert_eq(c.post_rc, 0);
  cr_assert_eq(c.await_rc, 0);
  cr_assert_eq(c.res, (void *)99);
}

Test(future_ext, error_from_another_thread) {
  struct ts c;
  memset(&c, 0, sizeof c);
  c.err = UV_EIO;
  run(ts_main, &c);
  cr_assert_eq(c.post_rc, 0);
  cr_assert_eq(c.await_rc, UV_EIO);
}

static int ts_late_main(void *arg) {
  struct ts *c = arg;
  uvt_future_t *f = uvt_future_new();
  c->f = uvt_future_ref(f);
  c->loop = uvt_loop();
  cr_expect_eq(uvt_event_init(&c->after), 0);
  cr_expect_eq(uvt_future_set_result(f, (void *)1), 0);
  cr_expect_eq(uv_thread_create(&c->th, setter_thread, c), 0);
  /* The posted set is dropped, and gives its reference up (else
   * unreleased-handle at the end). */
  cr_expect_eq(uvt_event_wait(&c->after), 0);
  uv_thread_join(&c->th);
  c->await_rc = uvt_await_future_result(f, &c->res, NULL);
  uvt_event_destroy(&c->after);
  return 0;
}

/* A set from another thread that arrives after the future was set keeps
 * the first outcome. */
Test(future_ext, late_threadsafe_set_is_dropped) {
  struct ts c;
  memset(&c, 0, sizeof c);
  run(ts_late_main, &c);
  cr_assert_eq(c.post_rc, 0);
  cr_assert_eq(c.marker_rc, 0);
  cr_assert_eq(c.await_rc, 0);
  cr_assert_eq(c.res, (void *)1);
}

/* ---- uvt_wait_futures / uvt_wait_for_future ---------------------------------- */

struct fw {
  uvt_future_t *f[2];
  int rc, rc2, rc3, tmo_rc, cancelled_after;
  size_t nd, nd2, nd3;
  void *res;
  bool fail;
};

static int setter_task(void *arg) {
  struct fw *c = arg;
  if (uvt_yield() != 0) return UVT_ECANCELED;
  if (c->fail) (void)uvt_future_set_error(c->f[1], UV_EIO, "bad");
  else (void)uvt_future_set_result(c->f[1], (void *)3);
  uvt_future_detach(c->f[1]);
  return 0;
}

static int wait_futures_main(void *arg) {
  struct fw *c = arg;
  uvt_future_t *fs[2];
  fs[0] = uvt_future_new();
  fs[1] = uvt_future_new();
  c->f[1] = uvt_future_ref(fs[1]);
  uvt_detach(uvt_spawn(setter_task, c));
  c->rc = uvt_wait_futures(fs, 2, c->fail ? UVT_FIRST_EXCEPTION : UVT_FIRST_COMPLETED,
                           -1, &c->nd);
  c->rc2 = uvt_wait_futures(fs, 2, UVT_ALL_COMPLETED, 0, &c->nd2);
  c->rc3 = uvt_wait_futures(fs, 2, UVT_ALL_COMPLETED, 2, &c->nd3);
  (void)uvt_future_cancel(fs[0]);
  (void)uvt_await_future(fs[0]);
  (void)uvt_await_future(fs[1]);
  return 0;
}

/* test_tasks.py::BaseTaskTests::test_wait_first_completed (over futures):
 * returns once one is done; a limit of 0 or 2 ms with one still pending
 * returns TimeoutError-as-status with what is done. */
Test(future_ext, wait_futures_first_completed_and_limit) {
  struct fw c;
  memset(&c, 0, sizeof c);
  run(wait_futures_main, &c);
  cr_assert_eq(c.rc, 0);
  cr_assert_eq(c.nd, 1);
  cr_assert_eq(c.rc2, UVT_ETIMEDOUT);
  cr_assert_eq(c.nd2, 1);
  cr_assert_eq(c.rc3, UVT_ETIMEDOUT);
  cr_assert_eq(c.nd3, 1);
}

/* test_tasks.py::BaseTaskTests::test_wait_first_exception (over futures). */
Test(future_ext, wait_futures_first_exception) {
  struct fw c;
  memset(&c, 0, sizeof c);
  c.fail = true;
  run(wait_futures_main, &c);
  cr_assert_eq(c.rc, 0);
  cr_assert_eq(c.nd, 1);
}

static int wait_for_future_main(void *arg) {
  struct fw *c = arg;
  uvt_future_t *done = uvt_future_new();
  uvt_future_t *never = uvt_future_new();
  uvt_future_t *keep = uvt_future_ref(never);
  cr_expect_eq(uvt_future_set_result(done, (void *)8), 0);
  c->rc = uvt_wait_for_future(done, 0, &c->res, NULL);
  c->tmo_rc = uvt_wait_for_future(never, 2, NULL, NULL);
  c->cancelled_after = uvt_await_future(keep);
  return 0;
}

/* test_waitfor.py::AsyncioWaitForTest::test_wait_for_timeout_less_then_0_or_0_future_done
 * (a done future with a limit of 0 gives its result) and
 * test_waitfor.py::AsyncioWaitForTest::test_wait_for (a future never set:
 * TimeoutError, and the future is cancelled). */
Test(future_ext, wait_for_future) {
  struct fw c;
  memset(&c, 0, sizeof c);
  run(wait_for_future_main, &c);
  cr_assert_eq(c.rc, 0);
  cr_assert_eq(c.res, (void *)8);
  cr_assert_eq(c.tmo_rc, UVT_ETIMEDOUT);
  cr_assert_eq(c.cancelled_after, UVT_ECANCELED);
}

/*
 * Tests that must FAIL: each leaks one kind of object and ends with a leak
 * check, which must turn the leak into a failed Criterion test (a failed
 * assertion in the test's own process, exit status non-zero).
 *
 * ctest runs each one alone (--filter leaks_fail/<name>) with WILL_FAIL, so
 * a test that passes here is a failure there.  test_leaks.c runs this
 * binary too and reads what it printed: every test failed, and each
 * failure names the leaked object and the file:line marked "@name" below.
 *
 *   macro_*  UVT_ASSERT_NO_LEAKS() as the last statement of the main task,
 *            or (macro_after_run) of a plain test body after uvt_run;
 *   guard_*  the whole-test guard UVT_TEST, no explicit check.
 *
 *   *_stream a server left listening (a stream or server left open).
 *   guard_await_cycle  two tasks awaiting each other.
 */
#include <criterion/criterion.h>
#include <uvtask/testing.h>

static int sleeper(void *arg) {
  (void)arg;
  return uvt_sleep(10000); /* @sleeper-parked */
}

static int failing(void *arg) {
  (void)arg;
  return uvt_fail(UV_ECONNRESET, "peer went away");
}

static int work(void *arg) {
  (void)arg;
  return 0;
}

/* Wait until `t` is done without reading its status (uvt_wait does not
 * retrieve errors). */
static void wait_done(uvt_task_t *t) {
  cr_expect_eq(uvt_wait(&t, 1, UVT_ALL_COMPLETED, 5000, NULL), 0);
}

/* ---- UVT_ASSERT_NO_LEAKS() inside the main task ------------------------------ */

static int macro_pending_main(void *arg) {
  (void)arg;
  (void)!uvt_spawn(sleeper, NULL); /* @macro-pending-spawn */
  UVT_ASSERT_NO_LEAKS();    /* @macro-pending-check */
  return 0;
}

Test(leaks_fail, macro_pending_task) {
  uvt_leaks_set_settle_ms(20);
  cr_assert_eq(uvt_run(NULL, macro_pending_main, NULL), 0);
}

static int macro_coro_main(void *arg) {
  (void)arg;
  (void)!uvt_coro(work, NULL);   /* @macro-coro-create */
  UVT_ASSERT_NO_LEAKS();  /* @macro-coro-check */
  return 0;
}

Test(leaks_fail, macro_never_awaited) {
  cr_assert_eq(uvt_run(NULL, macro_coro_main, NULL), 0);
}

static int macro_task_error_main(void *arg) {
  uvt_task_t *t = uvt_spawn(failing, NULL); /* @macro-error-spawn */
  (void)arg;
  wait_done(t);
  UVT_ASSERT_NO_LEAKS(); /* @macro-error-check */
  return 0;
}

Test(leaks_fail, macro_task_error) {
  cr_assert_eq(uvt_run(NULL, macro_task_error_main, NULL), 0);
}

static int macro_future_error_main(void *arg) {
  uvt_future_t *f = uvt_future_new(); /* @macro-future-new */
  (void)arg;
  cr_expect_eq(uvt_future_set_error(f, UV_EIO, "disk on fire"), 0);
  UVT_ASSERT_NO_LEAKS(); /* @macro-future-check */
  return 0;
}

Test(leaks_fail, macro_future_error) {
  cr_assert_eq(uvt_run(NULL, macro_future_error_main, NULL), 0);
}

/* ---- UVT_ASSERT_NO_LEAKS() after uvt_run, in a plain test body --------------- */

static int after_run_main(void *arg) {
  (void)arg;
  (void)!uvt_spawn(sleeper, NULL); /* @after-run-spawn */
  return 0;
}

Test(leaks_fail, macro_after_run) {
  cr_assert_eq(uvt_run(NULL, after_run_main, NULL), 0);
  UVT_ASSERT_NO_LEAKS(); /* @after-run-check */
}

/* ---- the whole-test guard -------------------------------------------------------- */

UVT_TEST(leaks_fail, guard_pending_task) {
  (void)!uvt_spawn(sleeper, NULL); /* @guard-pending-spawn */
}

/* Two tasks awaiting each other: the failure names what each waits on
 * (the debug library records it; test_leaks.c checks both libraries). */
static uvt_task_t *ping_task, *pong_task;

static int ping(void *arg) {
  (void)arg;
  return uvt_await(pong_task); /* @ping-awaits */
}

static int pong(void *arg) {
  (void)arg;
  return uvt_await(ping_task); /* @pong-awaits */
}

UVT_TEST(leaks_fail, guard_await_cycle) {
  ping_task = uvt_spawn(ping, NULL); /* @cycle-ping-spawn */
  pong_task = uvt_spawn(pong, NULL); /* @cycle-pong-spawn */
}

UVT_TEST(leaks_fail, guard_never_awaited) {
  (void)!uvt_coro(work, NULL); /* @guard-coro-create */
}

UVT_TEST(leaks_fail, guard_task_error) {
  uvt_task_t *t = uvt_spawn(failing, NULL); /* @guard-error-spawn */
  wait_done(t);
  uvt_detach(t); /* given up unread: the error is the leak */
}

/* A task that ended well, its handle kept to the end: a C memory leak,
 * counted once the loop has ended (not by a check inside it). */
UVT_TEST(leaks_fail, guard_unreleased_handle) {
  uvt_task_t *t = uvt_spawn(work, NULL); /* @guard-unreleased-spawn */
  wait_done(t);
}

UVT_TEST(leaks_fail, guard_detached_error) {
  uvt_detach(uvt_spawn(failing, NULL)); /* @guard-detached-spawn */
}

UVT_TEST(leaks_fail, guard_future_error) {
  uvt_future_t *f = uvt_future_new(); /* @guard-future-new */
  cr_expect_eq(uvt_future_set_error(f, UV_EIO, "disk on fire"), 0);
  uvt_future_detach(f); /* the unread error is the leak, not the handle */
}

/* ---- a server left open ------------------------------------------------------- */

static int echo(uvt_stream_t *s, void *arg) {
  (void)s, (void)arg;
  return 0;
}

static int macro_stream_main(void *arg) {
  uvt_server_t *srv;
  (void)arg;
  cr_expect_eq(uvt_start_server("127.0.0.1", 0, echo, NULL, &srv), 0); /* @macro-stream-open */
  UVT_ASSERT_NO_LEAKS(); /* @macro-stream-check */
  return 0;
}

Test(leaks_fail, macro_stream) {
  uvt_leaks_set_settle_ms(20);
  cr_assert_eq(uvt_run(NULL, macro_stream_main, NULL), 0);
}

UVT_TEST(leaks_fail, guard_stream) {
  uvt_server_t *srv;
  cr_expect_eq(uvt_start_server("127.0.0.1", 0, echo, NULL, &srv), 0); /* @guard-stream-open */
}

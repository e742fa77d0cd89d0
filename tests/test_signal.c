/*
 * uvt_signal_wait: a task waiting for a signal (Ctrl-C is SIGINT; these
 * use SIGUSR1 so that a failure cannot stop the test runner).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "uvtask.h"
#include "uvtask/testing.h"

static void run(uvt_fn fn, void *ctx) {
  cr_assert_eq(uvt_run(NULL, fn, ctx), 0);
  UVT_ASSERT_NO_LEAKS();
}

struct sig { int rc[2]; int n; int bad; };

static int waiter(void *arg) {
  struct sig *c = arg;
  int st = uvt_signal_wait(SIGUSR1);
  c->rc[c->n++] = st;
  return st;
}

static int signal_main(void *arg) {
  struct sig *c = arg;
  uvt_task_t *a = uvt_spawn(waiter, c);
  uvt_task_t *b = uvt_spawn(waiter, c);
  cr_expect_eq(uvt_yield(), 0); /* both are parked in the wait */
  cr_expect_eq(uv_kill(getpid(), SIGUSR1), 0);
  cr_expect_eq(uvt_await(a), 0);
  cr_expect_eq(uvt_await(b), 0);
  c->bad = uvt_signal_wait(-1);
  return 0;
}

/* Every task waiting for the signal wakes with 0 when it arrives; a bad
 * signal number is libuv's UV_EINVAL. */
Test(signal, waiters_wake_on_signal) {
  struct sig c;
  memset(&c, 0, sizeof c);
  run(signal_main, &c);
  cr_assert_eq(c.n, 2);
  cr_assert_eq(c.rc[0], 0);
  cr_assert_eq(c.rc[1], 0);
  cr_assert_eq(c.bad, UV_EINVAL);
}

static int cancel_main(void *arg) {
  struct sig *c = arg;
  uvt_task_t *a = uvt_spawn(waiter, c);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(a), 1);
  cr_expect_eq(uvt_await(a), UVT_ECANCELED);
  /* No waiter left: the handle is closed (else uvt_run's end reports an
   * open handle and a second wait would still see it). */
  return 0;
}

/* The wait is cancellable (a program that stops waiting for Ctrl-C). */
Test(signal, wait_is_cancellable) {
  struct sig c;
  memset(&c, 0, sizeof c);
  run(cancel_main, &c);
  cr_assert_eq(c.n, 1);
  cr_assert_eq(c.rc[0], UVT_ECANCELED);
}

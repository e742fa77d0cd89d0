/*
 * Futures: set before or after the await, errors with messages, setting
 * twice, several awaiters (one reference each), a cancelled awaiter
 * cancelling the future, setting from a plain libuv callback, and
 * detaching.
 *
 * Checks inside task bodies use cr_expect or record into a struct that is
 * checked with cr_assert after uvt_run returns.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "uvtask.h"

static int value = 17;

static int set_flag(void *arg) {
  *(int *)arg = 1;
  return 0;
}

/* A task awaiting a future; what it got is recorded. */
struct waiter {
  uvt_future_t *f;
  int returned;
  int st;
  void *result;
};

static int await_it(void *arg) {
  struct waiter *w = arg;
  /* Gives up the reference w->f holds for this awaiter. */
  w->st = uvt_await_future_result(w->f, &w->result, NULL);
  w->returned = 1;
  return 0;
}

/* ---- set, then await -------------------------------------------------------- */

struct before {
  bool done_before_set, done_after_set;
  int st, st_again, flag_after_await;
  void *result;
};

static int set_before_main(void *arg) {
  struct before *r = arg;
  uvt_future_t *f = uvt_future_new();
  int flag = 0;
  uvt_task_t *other;
  r->done_before_set = uvt_future_done(f);
  cr_expect_eq(uvt_future_set_result(f, &value), 0);
  r->done_after_set = uvt_future_done(f);
  /* `other` is ready: a set future must not yield to it. */
  other = uvt_spawn(set_flag, &flag);
  uvt_future_t *again = uvt_future_ref(f); /* for the second await */
  r->st = uvt_await_future_result(f, &r->result, NULL);
  r->flag_after_await = flag;
  r->st_again = uvt_await_future(again);
  cr_expect_eq(uvt_await(other), 0);
  return 0;
}

Test(future, set_before_await_returns_at_once) {
  struct before r;
  memset(&r, 0, sizeof r);
  r.st = r.st_again = r.flag_after_await = -1;
  cr_assert_eq(uvt_run(NULL, set_before_main, &r), 0);
  cr_assert_not(r.done_before_set);
  cr_assert(r.done_after_set);
  cr_assert_eq(r.st, 0);
  cr_assert_eq(r.flag_after_await, 0, "awaiting a set future yielded");
  cr_assert_eq(r.result, &value);
  cr_assert_eq(r.st_again, 0);
}

/* ---- await, then set ------------------------------------------------------- */

struct after {
  struct waiter w;
  int returned_before_set, returned_right_after_set;
};

static int set_after_main(void *arg) {
  struct after *r = arg;
  uvt_task_t *t;
  r->w.f = uvt_future_new();
  t = uvt_spawn(await_it, &r->w);
  for (int i = 0; i < 3; i++) cr_expect_eq(uvt_yield(), 0);
  r->returned_before_set = r->w.returned;
  cr_expect_eq(uvt_future_set_result(r->w.f, &value), 0);
  r->returned_right_after_set = r->w.returned; /* set does not yield */
  cr_expect_eq(uvt_await(t), 0);
  return 0;
}

Test(future, set_after_await_wakes_the_awaiter) {
  struct after r;
  memset(&r, 0, sizeof r);
  r.w.st = -1;
  cr_assert_eq(uvt_run(NULL, set_after_main, &r), 0);
  cr_assert_eq(r.returned_before_set, 0, "the await returned before the set");
  cr_assert_eq(r.returned_right_after_set, 0, "uvt_future_set_result yielded");
  cr_assert_eq(r.w.returned, 1);
  cr_assert_eq(r.w.st, 0);
  cr_assert_eq(r.w.result, &value);
}

/* ---- errors ------------------------------------------------------------------ */

struct errors {
  struct waiter w;
  char msg[64];
  bool result_null;
  int st_no_msg;
  bool no_msg_null, ok_msg_null, unset_msg_null, unset_result_null;
};

static int error_main(void *arg) {
  struct errors *r = arg;
  uvt_future_t *plain = uvt_future_new();
  uvt_future_t *ok = uvt_future_new();
  uvt_future_t *f = uvt_future_new();
  uvt_task_t *t;
  const char *m;
  char *msg = (char *)"unset";
  r->w.f = uvt_future_ref(f); /* the awaiter's own reference */
  t = uvt_spawn(await_it, &r->w);
  cr_expect_eq(uvt_yield(), 0);
  r->unset_msg_null = uvt_future_error_message(f) == NULL;
  r->unset_result_null = uvt_future_result(f) == NULL;
  cr_expect_eq(uvt_future_set_error(f, UV_EIO, "boom %d", 42), 0);
  cr_expect_eq(uvt_await(t), 0);
  m = uvt_future_error_message(f);
  snprintf(r->msg, sizeof r->msg, "%s", m != NULL ? m : "(null)");
  r->result_null = uvt_future_result(f) == NULL;
  uvt_future_detach(f);

  cr_expect_eq(uvt_future_set_error(plain, UV_ETIMEDOUT, NULL), 0);
  r->st_no_msg = uvt_await_future_result(plain, NULL, &msg);
  r->no_msg_null = msg == NULL;

  cr_expect_eq(uvt_future_set_result(ok, &value), 0);
  r->ok_msg_null = uvt_future_error_message(ok) == NULL;
  uvt_future_detach(ok);
  return 0;
}

Test(future, set_error_reaches_the_awaiter_with_its_message) {
  struct errors r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, error_main, &r), 0);
  cr_assert(r.unset_msg_null);
  cr_assert(r.unset_result_null);
  cr_assert_eq(r.w.st, UV_EIO, "got %d", r.w.st);
  cr_assert_str_eq(r.msg, "boom 42");
  cr_assert(r.result_null);
  cr_assert_eq(r.st_no_msg, UV_ETIMEDOUT);
  cr_assert(r.no_msg_null);
  cr_assert(r.ok_msg_null);
}

/* ---- setting twice, bad codes ------------------------------------------------ */

struct twice {
  int rr, re, er, ee;
  void *kept_result;
  int kept_status;
  char kept_msg[32];
  int code_zero, code_positive;
  bool done_after_bad_code;
  int set_after_bad_code;
  int null_set, null_error;
};

static int twice_main(void *arg) {
  struct twice *r = arg;
  uvt_future_t *a = uvt_future_new(), *b = uvt_future_new();
  uvt_future_t *c = uvt_future_new(), *d = uvt_future_new();
  uvt_future_t *e = uvt_future_new();
  char *m = NULL;
  static int other;

  cr_expect_eq(uvt_future_set_result(a, &value), 0);
  r->rr = uvt_future_set_result(a, &other);
  r->re = uvt_future_set_error(a, UV_EIO, "late");
  r->kept_result = uvt_future_result(a);

  cr_expect_eq(uvt_future_set_error(b, UV_EPIPE, "first"), 0);
  r->er = uvt_future_set_result(b, &other);
  r->ee = uvt_future_set_error(b, UV_EIO, "second");
  r->kept_status = uvt_await_future_result(b, NULL, &m);
  snprintf(r->kept_msg, sizeof r->kept_msg, "%s", m != NULL ? m : "(null)");
  free(m);

  r->code_zero = uvt_future_set_error(c, 0, "not an error");
  r->code_positive = uvt_future_set_error(c, 3, "not an error either");
  r->done_after_bad_code = uvt_future_done(c);
  r->set_after_bad_code = uvt_future_set_result(c, NULL);

  r->null_set = uvt_future_set_result(NULL, NULL);
  r->null_error = uvt_future_set_error(NULL, UV_EIO, "x");
  /* Never set, never awaited: normal, once the handles are given up. */
  uvt_future_detach(a);
  uvt_future_detach(c);
  uvt_future_detach(d);
  uvt_future_detach(e);
  return 0;
}

Test(future, setting_twice_or_with_a_non_error_code_is_refused) {
  struct twice r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, twice_main, &r), 0);
  cr_assert_eq(r.rr, UVT_EINVAL);
  cr_assert_eq(r.re, UVT_EINVAL);
  cr_assert_eq(r.kept_result, &value, "a refused set changed the result");
  cr_assert_eq(r.er, UVT_EINVAL);
  cr_assert_eq(r.ee, UVT_EINVAL);
  cr_assert_eq(r.kept_status, UV_EPIPE, "a refused set changed the status");
  cr_assert_str_eq(r.kept_msg, "first");
  cr_assert_eq(r.code_zero, UVT_EINVAL);
  cr_assert_eq(r.code_positive, UVT_EINVAL);
  cr_assert_not(r.done_after_bad_code, "a refused set_error completed the future");
  cr_assert_eq(r.set_after_bad_code, 0);
  cr_assert_eq(r.null_set, UVT_EINVAL);
  cr_assert_eq(r.null_error, UVT_EINVAL);
}

/* ---- several awaiters -------------------------------------------------------- */

#define NWAITERS 6

struct many {
  struct waiter w[NWAITERS];
  int returned_before_set;
};

static int many_main(void *arg) {
  struct many *r = arg;
  uvt_future_t *f = uvt_future_new();
  uvt_task_t *t[NWAITERS];
  for (int i = 0; i < NWAITERS; i++) {
    r->w[i].f = uvt_future_ref(f); /* one reference per awaiter */
    r->w[i].st = -1;
    t[i] = uvt_spawn(await_it, &r->w[i]);
  }
  for (int i = 0; i < 3; i++) cr_expect_eq(uvt_yield(), 0);
  for (int i = 0; i < NWAITERS; i++) r->returned_before_set += r->w[i].returned;
  cr_expect_eq(uvt_future_set_result(f, &value), 0);
  uvt_future_detach(f);
  cr_expect_eq(uvt_gather(t, NWAITERS), 0);
  for (int i = 0; i < NWAITERS; i++) uvt_detach(t[i]);
  return 0;
}

Test(future, several_awaiters_all_wake) {
  struct many r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, many_main, &r), 0);
  cr_assert_eq(r.returned_before_set, 0);
  for (int i = 0; i < NWAITERS; i++) {
    cr_assert_eq(r.w[i].returned, 1, "awaiter %d was not woken", i);
    cr_assert_eq(r.w[i].st, 0);
    cr_assert_eq(r.w[i].result, &value);
  }
}

/* ---- a cancelled awaiter cancels the future ---------------------------------
 *
 * As asyncio (test_tasks test_task_cancel_waiter_future): cancelling a task
 * parked on a future cancels the future, and every other awaiter wakes
 * with UVT_ECANCELED; setting it afterwards is refused. */

struct cancel {
  struct waiter victim, other;
  int cancel_ret, victim_task_st;
  bool done_after_cancel;
  int set_after_cancel;
  int main_await;
};

static int cancel_main(void *arg) {
  struct cancel *r = arg;
  uvt_future_t *f = uvt_future_new();
  uvt_task_t *victim, *other;
  r->victim.f = uvt_future_ref(f);
  r->other.f = uvt_future_ref(f);
  victim = uvt_spawn(await_it, &r->victim);
  other = uvt_spawn(await_it, &r->other);
  cr_expect_eq(uvt_yield(), 0);
  r->cancel_ret = uvt_cancel(victim);
  r->victim_task_st = uvt_await(victim);
  r->done_after_cancel = uvt_future_done(f);
  r->set_after_cancel = uvt_future_set_result(f, &value);
  cr_expect_eq(uvt_await(other), 0);
  r->main_await = uvt_await_future(f);
  return 0;
}

Test(future, cancelling_an_awaiter_cancels_the_future) {
  struct cancel r;
  memset(&r, 0, sizeof r);
  r.victim.st = r.other.st = r.main_await = -1;
  cr_assert_eq(uvt_run(NULL, cancel_main, &r), 0);
  cr_assert_eq(r.cancel_ret, 1);
  cr_assert_eq(r.victim.st, UVT_ECANCELED, "got %d", r.victim.st);
  cr_assert_null(r.victim.result);
  cr_assert_eq(r.victim_task_st, 0, "the awaiter's own status (it returned 0)");
  cr_assert(r.done_after_cancel, "cancelling the awaiter left the future pending");
  cr_assert_eq(r.set_after_cancel, UVT_EINVAL);
  cr_assert_eq(r.other.st, UVT_ECANCELED);
  cr_assert_eq(r.main_await, UVT_ECANCELED);
}

struct fcancel {
  int first, second, set_after, await_rc;
};

static int future_cancel_main(void *arg) {
  struct fcancel *r = arg;
  uvt_future_t *f = uvt_future_new();
  uvt_future_t *done = uvt_future_new();
  r->first = uvt_future_cancel(f);
  r->second = uvt_future_cancel(f);
  r->set_after = uvt_future_set_result(f, &value);
  r->await_rc = uvt_await_future(f);
  cr_expect_eq(uvt_future_set_result(done, &value), 0);
  cr_expect_eq(uvt_future_cancel(done), 0);
  cr_expect_eq(uvt_await_future(done), 0);
  return 0;
}

Test(future, cancel_completes_a_pending_future_once) {
  struct fcancel r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, future_cancel_main, &r), 0);
  cr_assert_eq(r.first, 1);
  cr_assert_eq(r.second, 0);
  cr_assert_eq(r.set_after, UVT_EINVAL);
  cr_assert_eq(r.await_rc, UVT_ECANCELED);
}

/* ---- set from a plain libuv callback ------------------------------------------ */

struct from_cb {
  uv_timer_t timer;
  uvt_future_t *f;
  int set_ret;
  int st;
  void *result;
};

static void set_from_timer(uv_timer_t *h) {
  struct from_cb *r = h->data;
  r->set_ret = uvt_future_set_result(r->f, &value);
  uv_close((uv_handle_t *)h, NULL);
}

static int from_cb_main(void *arg) {
  struct from_cb *r = arg;
  r->f = uvt_future_new();
  uv_timer_init(uvt_loop(), &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, set_from_timer, 5, 0);
  r->st = uvt_await_future_result(r->f, &r->result, NULL);
  return uvt_sleep(1); /* the timer's close callback */
}

Test(future, set_from_a_libuv_callback_wakes_the_awaiter) {
  struct from_cb r;
  memset(&r, 0, sizeof r);
  r.st = r.set_ret = -1;
  cr_assert_eq(uvt_run(NULL, from_cb_main, &r), 0);
  cr_assert_eq(r.set_ret, 0);
  cr_assert_eq(r.st, 0);
  cr_assert_eq(r.result, &value);
}

/* ---- detach ------------------------------------------------------------------- */

struct detach {
  int set_after_detach, error_after_detach, set_of_set_detached;
  bool done_after_detach_of_set;
};

static int detach_main(void *arg) {
  struct detach *r = arg;
  uvt_future_t *a = uvt_future_new();
  uvt_future_t *b = uvt_future_new();
  uvt_future_t *c = uvt_future_new();
  uvt_future_t *d = uvt_future_new();

  /* Detached before it is set: freed when set. */
  uvt_future_detach(a);
  r->set_after_detach = uvt_future_set_result(a, &value);
  uvt_future_detach(b);
  cr_expect_eq(uvt_sleep(1), 0);
  r->error_after_detach = uvt_future_set_error(b, UV_EIO, "nobody reads %s", "this");

  /* Set, then detached: freed at once; the handle is gone. */
  cr_expect_eq(uvt_future_set_result(c, &value), 0);
  uvt_future_detach(c);
  r->set_of_set_detached = uvt_future_set_result(c, &value);
  r->done_after_detach_of_set = uvt_future_done(c);

  /* Detached and never set: freed by uvt_run. */
  uvt_future_detach(d);
  uvt_future_detach(NULL); /* ignored */
  return 0;
}

Test(future, detach_before_and_after_set) {
  struct detach r;
  memset(&r, 0, sizeof r);
  r.set_after_detach = r.error_after_detach = -1;
  cr_assert_eq(uvt_run(NULL, detach_main, &r), 0);
  cr_assert_eq(r.set_after_detach, 0);
  cr_assert_eq(r.error_after_detach, 0);
  cr_assert_eq(r.set_of_set_detached, UVT_ERELEASED);
  cr_assert_not(r.done_after_detach_of_set);
}

Test(future, future_new_needs_a_loop) {
  cr_assert_null(uvt_future_new());
  cr_assert_eq(uvt_await_future(NULL), UVT_ENOTASK);
}

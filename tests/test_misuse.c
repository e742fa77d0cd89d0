/*
 * Misuse gets an error code, never a crash: awaiting outside a task (from
 * plain code and from a libuv callback on a running uvtask loop), a task
 * awaiting itself, NULL and released handles, bad arguments, calls from
 * the wrong thread, and uvt_strerror's names for every code.
 *
 * Checks inside task bodies use cr_expect or record into a struct that is
 * checked with cr_assert after uvt_run returns.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "uvtask.h"

static int thread_fn_runs;

static int thread_fn(void *arg) {
  (void)arg;
  thread_fn_runs++;
  return 0;
}

static int return_zero(void *arg) {
  (void)arg;
  return 0;
}

static int sleeps(void *arg) {
  (void)arg;
  return uvt_sleep(20);
}

/* ---- awaiting outside a task -------------------------------------------------- */

Test(misuse, awaiting_calls_from_plain_code_return_enotask) {
  size_t ndone = 99;
  uvt_task_t *none = NULL;
  cr_assert_null(uvt_current());
  cr_assert_eq(uvt_await(NULL), UVT_ENOTASK);
  cr_assert_eq(uvt_sleep(1), UVT_ENOTASK);
  cr_assert_eq(uvt_sleep(0), UVT_ENOTASK);
  cr_assert_eq(uvt_yield(), UVT_ENOTASK);
  cr_assert_eq(uvt_to_thread(thread_fn, NULL), UVT_ENOTASK);
  cr_assert_eq(uvt_gather(&none, 0), UVT_ENOTASK);
  cr_assert_eq(uvt_wait(&none, 0, UVT_ALL_COMPLETED, -1, &ndone), UVT_ENOTASK);
  cr_assert_eq(ndone, 0);
  cr_assert_eq(uvt_wait_for(NULL, 10), UVT_ENOTASK);
  cr_assert_eq(uvt_await_future(NULL), UVT_ENOTASK);
  cr_assert_eq(thread_fn_runs, 0, "uvt_to_thread ran the function anyway");
}

/* From a libuv callback on a loop where tasks run, with real handles. */
struct outside {
  uv_timer_t timer;
  uvt_task_t *t;
  uvt_future_t *f;
  int called;
  int await, sleep, yield, to_thread, gather, wait, wait_for, future;
  size_t ndone;
};

static void outside_cb(uv_timer_t *h) {
  struct outside *r = h->data;
  r->called = 1;
  r->await = uvt_await(r->t);
  r->sleep = uvt_sleep(1);
  r->yield = uvt_yield();
  r->to_thread = uvt_to_thread(thread_fn, NULL);
  r->gather = uvt_gather(&r->t, 1);
  r->ndone = 99;
  r->wait = uvt_wait(&r->t, 1, UVT_FIRST_COMPLETED, 5, &r->ndone);
  r->wait_for = uvt_wait_for(r->t, 5);
  r->future = uvt_await_future(r->f);
  uv_close((uv_handle_t *)h, NULL);
}

static int outside_main(void *arg) {
  struct outside *r = arg;
  r->t = uvt_spawn(sleeps, NULL);
  r->f = uvt_future_new();
  uv_timer_init(uvt_loop(), &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, outside_cb, 1, 0);
  cr_expect_eq(uvt_await(r->t), 0);
  cr_expect_eq(uvt_sleep(1), 0); /* the timer's close callback */
  return 0;
}

Test(misuse, awaiting_calls_from_a_libuv_callback_return_enotask) {
  struct outside r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, outside_main, &r), 0);
  cr_assert_eq(r.called, 1);
  cr_assert_eq(r.await, UVT_ENOTASK);
  cr_assert_eq(r.sleep, UVT_ENOTASK);
  cr_assert_eq(r.yield, UVT_ENOTASK);
  cr_assert_eq(r.to_thread, UVT_ENOTASK);
  cr_assert_eq(r.gather, UVT_ENOTASK);
  cr_assert_eq(r.wait, UVT_ENOTASK);
  cr_assert_eq(r.ndone, 0);
  cr_assert_eq(r.wait_for, UVT_ENOTASK);
  cr_assert_eq(r.future, UVT_ENOTASK);
  cr_assert_eq(thread_fn_runs, 0);
}

/* ---- bad handles inside a task ------------------------------------------------------ */

struct handles {
  int self, null_await, null_cancel;
  bool null_done;
  bool null_result_is_null, null_msg_is_null, null_name_is_null;
  uvt_task_t *spawn_null_fn;
};

static int handles_main(void *arg) {
  struct handles *r = arg;
  r->self = uvt_await(uvt_current());
  r->null_await = uvt_await(NULL);
  r->null_cancel = uvt_cancel(NULL);
  r->null_done = uvt_done(NULL);
  r->null_result_is_null = uvt_result(NULL) == NULL;
  r->null_msg_is_null = uvt_error_message(NULL) == NULL;
  r->null_name_is_null = uvt_task_name(NULL) == NULL;
  uvt_detach(NULL); /* ignored */
  r->spawn_null_fn = uvt_spawn_at(NULL, NULL, 0, "NULL", __FILE__, __LINE__, __func__);
  return 0;
}

Test(misuse, self_and_null_handles) {
  struct handles r;
  memset(&r, 0, sizeof r);
  r.null_done = true;
  r.spawn_null_fn = (uvt_task_t *)&r;
  cr_assert_eq(uvt_run(NULL, handles_main, &r), 0);
  cr_assert_eq(r.self, UVT_ESELF, "a task awaiting itself got %d", r.self);
  cr_assert_eq(r.null_await, UVT_EINVAL);
  cr_assert_eq(r.null_cancel, UVT_EINVAL);
  cr_assert_not(r.null_done);
  cr_assert(r.null_result_is_null);
  cr_assert(r.null_msg_is_null);
  cr_assert(r.null_name_is_null);
  cr_assert_null(r.spawn_null_fn);
}

Test(misuse, spawn_with_no_running_loop_returns_null) {
  cr_assert_null(uvt_spawn(return_zero, NULL));
  cr_assert_null(uvt_spawn_stack(return_zero, NULL, 1 << 20));
  cr_assert_null(uvt_coro(return_zero, NULL));
  cr_assert_null(uvt_future_new());
}

struct released {
  int await, cancel, cancel_early_detached;
  bool done;
  bool name_is_null;
};

static int released_main(void *arg) {
  struct released *r = arg;
  uvt_task_t *t = uvt_spawn(return_zero, NULL);
  uvt_task_t *u = uvt_spawn(sleeps, NULL);
  cr_expect_eq(uvt_await(t), 0); /* finished: released now */
  r->await = uvt_await(t);
  r->cancel = uvt_cancel(t);
  r->done = uvt_done(t);
  r->name_is_null = uvt_task_name(t) == NULL;
  uvt_detach(t); /* a second detach is ignored */
  /* A running task detached: the handle is given up at once. */
  uvt_detach(u);
  cr_expect_eq(uvt_sleep(40), 0);
  r->cancel_early_detached = uvt_cancel(u);
  return 0;
}

Test(misuse, released_handles_return_ereleased) {
  struct released r;
  memset(&r, 0, sizeof r);
  r.done = true;
  cr_assert_eq(uvt_run(NULL, released_main, &r), 0);
  cr_assert_eq(r.await, UVT_ERELEASED, "got %d", r.await);
  cr_assert_eq(r.cancel, UVT_ERELEASED);
  cr_assert_not(r.done);
  cr_assert(r.name_is_null);
  cr_assert_eq(r.cancel_early_detached, UVT_ERELEASED);
}

/* ---- bad arguments ------------------------------------------------------------- */

struct args {
  int sleep_neg, wait_mode0, wait_mode3, wait_mode_neg;
  size_t ndone;
  int spawned_done;
};

static int args_main(void *arg) {
  struct args *r = arg;
  uvt_task_t *t = uvt_spawn(return_zero, NULL);
  r->sleep_neg = uvt_sleep(-1);
  r->wait_mode0 = uvt_wait(&t, 1, 0, -1, NULL);
  r->wait_mode3 = uvt_wait(&t, 1, 4, -1, NULL); /* 3 is FIRST_EXCEPTION */
  r->ndone = 99;
  r->wait_mode_neg = uvt_wait(&t, 1, -1, 10, &r->ndone);
  /* None of them waited: the spawned task has not run yet. */
  r->spawned_done = uvt_done(t);
  cr_expect_eq(uvt_await(t), 0);
  return 0;
}

Test(misuse, bad_arguments_return_einval) {
  struct args r;
  memset(&r, 0, sizeof r);
  r.spawned_done = -1;
  cr_assert_eq(uvt_run(NULL, args_main, &r), 0);
  cr_assert_eq(r.sleep_neg, UVT_EINVAL);
  cr_assert_eq(r.wait_mode0, UVT_EINVAL);
  cr_assert_eq(r.wait_mode3, UVT_EINVAL);
  cr_assert_eq(r.wait_mode_neg, UVT_EINVAL);
  cr_assert_eq(r.ndone, 0);
  cr_assert_eq(r.spawned_done, 0, "a refused call yielded");
}

/* ---- the wrong thread ------------------------------------------------------------ */

struct wrong {
  uvt_task_t *t;
  uvt_future_t *f;
  int cancel, set;
  uvt_task_t *spawned;
  bool future_done_after;
  int await_after;
};

static void wrong_thread(void *arg) {
  struct wrong *r = arg;
  r->cancel = uvt_cancel(r->t);
  r->set = uvt_future_set_result(r->f, NULL);
  r->spawned = uvt_spawn(return_zero, NULL);
}

static int wrong_main(void *arg) {
  struct wrong *r = arg;
  uv_thread_t th;
  r->t = uvt_spawn(sleeps, NULL);
  r->f = uvt_future_new();
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uv_thread_create(&th, wrong_thread, r), 0);
  cr_expect_eq(uv_thread_join(&th), 0);
  r->future_done_after = uvt_future_done(r->f);
  r->await_after = uvt_await(r->t);
  return 0;
}

Test(misuse, calls_from_a_thread_not_running_the_loop_are_refused) {
  struct wrong r;
  memset(&r, 0, sizeof r);
  r.spawned = (uvt_task_t *)&r;
  cr_assert_eq(uvt_run(NULL, wrong_main, &r), 0);
  cr_assert_eq(r.cancel, UVT_EWRONGTHREAD);
  cr_assert_eq(r.set, UVT_EWRONGTHREAD);
  cr_assert_null(r.spawned);
  cr_assert_not(r.future_done_after);
  cr_assert_eq(r.await_after, 0, "the refused cancel reached the task");
}

/* ---- uvt_strerror ---------------------------------------------------------------- */

static const struct {
  int code;
  const char *name;
} own_codes[] = {
    {UVT_ENOTASK, "UVT_ENOTASK"},   {UVT_ENOLOOP, "UVT_ENOLOOP"},
    {UVT_ESELF, "UVT_ESELF"},       {UVT_ERELEASED, "UVT_ERELEASED"},
    {UVT_ENESTED, "UVT_ENESTED"},   {UVT_ECLOSED, "UVT_ECLOSED"},
    {UVT_EWRONGTHREAD, "UVT_EWRONGTHREAD"},
    {UVT_ENOTLOCKED, "UVT_ENOTLOCKED"},
};

#define NOWN (sizeof own_codes / sizeof own_codes[0])

Test(misuse, strerror_names_every_uvt_code) {
  for (size_t i = 0; i < NOWN; i++) {
    const char *s = uvt_strerror(own_codes[i].code);
    char libuv_name[64];
    cr_assert_not_null(s, "%s", own_codes[i].name);
    cr_assert(strlen(s) > 0, "%s", own_codes[i].name);
    cr_assert_null(strcasestr(s, "unknown"), "%s is \"%s\"", own_codes[i].name, s);
    cr_assert_lt(own_codes[i].code, 0, "%s is not negative", own_codes[i].name);
    /* Distinct from the others, and from every libuv code. */
    for (size_t j = 0; j < i; j++) {
      cr_assert_neq(own_codes[i].code, own_codes[j].code);
      cr_assert_str_neq(s, uvt_strerror(own_codes[j].code));
    }
    uv_err_name_r(own_codes[i].code, libuv_name, sizeof libuv_name);
    cr_assert_not_null(strcasestr(libuv_name, "unknown"),
                       "%s collides with libuv's %s", own_codes[i].name,
                       libuv_name);
  }
}

Test(misuse, strerror_passes_libuv_codes_through) {
  static const int uv_codes[] = {UV_ECONNRESET, UV_EPIPE, UV_ENOENT, UV_EIO,
                                 UV_EOF, UV_EAI_NONAME};
  for (size_t i = 0; i < sizeof uv_codes / sizeof uv_codes[0]; i++)
    cr_assert_str_eq(uvt_strerror(uv_codes[i]), uv_strerror(uv_codes[i]));
  /* The aliases are libuv's own codes. */
  cr_assert_eq(UVT_ECANCELED, UV_ECANCELED);
  cr_assert_eq(UVT_ETIMEDOUT, UV_ETIMEDOUT);
  cr_assert_str_eq(uvt_strerror(UVT_ECANCELED), uv_strerror(UV_ECANCELED));
  cr_assert_str_eq(uvt_strerror(UVT_ETIMEDOUT), uv_strerror(UV_ETIMEDOUT));
  cr_assert_str_eq(uvt_strerror(UVT_EINVAL), uv_strerror(UV_EINVAL));
  cr_assert_str_eq(uvt_strerror(UVT_ENOMEM), uv_strerror(UV_ENOMEM));
}

/* The header promises "unknown error" and a static string for codes
 * neither library knows (uv_strerror would malloc a new one each call). */
Test(misuse, strerror_of_an_unknown_code_is_static) {
  const char *a = uvt_strerror(-29999);
  const char *b = uvt_strerror(-29999);
  cr_assert_not_null(strcasestr(a, "unknown"), "\"%s\"", a);
  cr_assert_eq(a, b, "a new string on each call");
}

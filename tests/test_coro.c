/*
 * Coroutine objects: uvt_await_coro runs the call inline on the current
 * task, uvt_spawn_coro makes it a task, uvt_coro_close discards it; each
 * consumes the object, and a second use is refused.
 *
 * Checks inside task bodies use cr_expect or record into a struct that is
 * checked with cr_assert after uvt_run returns.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "uvtask.h"

struct body {
  int runs;
  uvt_task_t *ran_on;
  int sleep_status;
};

static int result_token;

/* Records which task it ran on; sleeps, so an inline coroutine suspends
 * the task that awaits it. */
static int coro_body(void *arg) {
  struct body *b = arg;
  b->runs++;
  b->ran_on = uvt_current();
  b->sleep_status = uvt_sleep(2);
  uvt_set_result(&result_token);
  return -7;
}

/* ---- uvt_await_coro runs inline -------------------------------------------- */

struct inline_r {
  struct body b;
  int runs_after_create, runs_after_yield;
  int st;
  uvt_task_t *self;
  int st_child;
  void *child_result;
};

static int await_inline_main(void *arg) {
  struct inline_r *r = arg;
  uvt_coro_t *c = uvt_coro(coro_body, &r->b);
  cr_expect_not_null(c);
  r->self = uvt_current();
  r->runs_after_create = r->b.runs;
  cr_expect_eq(uvt_yield(), 0);
  r->runs_after_yield = r->b.runs; /* a coroutine object never runs alone */
  r->st = uvt_await_coro(c);
  return 0;
}

Test(coro, await_coro_runs_inline_on_the_current_task) {
  struct inline_r r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, await_inline_main, &r), 0);
  cr_assert_eq(r.runs_after_create, 0, "uvt_coro started the call");
  cr_assert_eq(r.runs_after_yield, 0, "the coroutine ran before it was awaited");
  cr_assert_eq(r.b.runs, 1);
  cr_assert_eq(r.b.ran_on, r.self, "the coroutine ran on another task");
  cr_assert_eq(r.b.sleep_status, 0);
  cr_assert_eq(r.st, -7, "uvt_await_coro returns the coroutine's status");
}

/* set_result and fail inside an awaited coroutine act on the task. */
static int failing_coro(void *arg) {
  (void)arg;
  uvt_set_result(&result_token);
  return uvt_fail(UV_EPROTO, "inside coroutine %d", 2);
}

static int awaits_failing_coro(void *arg) {
  (void)arg;
  return uvt_await_coro(uvt_coro(failing_coro, NULL));
}

static int acts_on_task_main(void *arg) {
  struct inline_r *r = arg;
  uvt_task_t *t = uvt_spawn(awaits_failing_coro, NULL);
  char *m = NULL;
  r->st_child = uvt_await_result(t, &r->child_result, &m);
  cr_expect(m != NULL && strcmp(m, "inside coroutine 2") == 0,
            "message: %s", m != NULL ? m : "(null)");
  free(m);
  return 0;
}

Test(coro, set_result_and_fail_inside_an_awaited_coroutine_act_on_the_task) {
  struct inline_r r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, acts_on_task_main, &r), 0);
  cr_assert_eq(r.st_child, UV_EPROTO);
  cr_assert_eq(r.child_result, &result_token);
}

/* ---- uvt_spawn_coro makes a task ----------------------------------------- */

struct spawn_r {
  struct body b;
  uvt_task_t *self, *spawned;
  int runs_after_spawn;
  int st;
  void *result;
  char name[64];
};

static int spawn_coro_main(void *arg) {
  struct spawn_r *r = arg;
  uvt_coro_t *c = uvt_coro(coro_body, &r->b);
  const char *n;
  r->self = uvt_current();
  r->spawned = uvt_spawn_coro(c);
  cr_expect_not_null(r->spawned);
  r->runs_after_spawn = r->b.runs;
  n = uvt_task_name(r->spawned);
  strncpy(r->name, n != NULL ? n : "(null)", sizeof r->name - 1);
  r->st = uvt_await_result(r->spawned, &r->result, NULL);
  return 0;
}

Test(coro, spawn_coro_makes_a_task) {
  struct spawn_r r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, spawn_coro_main, &r), 0);
  cr_assert_not_null(r.spawned);
  cr_assert_eq(r.runs_after_spawn, 0, "the task started inside uvt_spawn_coro");
  cr_assert_eq(r.b.runs, 1);
  cr_assert_eq(r.b.ran_on, r.spawned, "the coroutine did not run as its own task");
  cr_assert_neq(r.b.ran_on, r.self);
  cr_assert_str_eq(r.name, "coro_body", "the task is named after the coroutine");
  cr_assert_eq(r.st, -7);
  cr_assert_eq(r.result, &result_token);
}

/* ---- uvt_coro_close --------------------------------------------------------- */

static int close_main(void *arg) {
  struct body *b = arg;
  uvt_coro_t *c = uvt_coro(coro_body, b);
  cr_expect_eq(uvt_coro_close(c), 0);
  cr_expect_eq(uvt_sleep(5), 0);
  return 0;
}

Test(coro, close_discards_without_running) {
  struct body b;
  memset(&b, 0, sizeof b);
  cr_assert_eq(uvt_run(NULL, close_main, &b), 0);
  cr_assert_eq(b.runs, 0, "a closed coroutine ran");
}

/* ---- each use consumes ------------------------------------------------------- */

static int count_runs(void *arg) {
  (*(int *)arg)++;
  return 0;
}

struct consume {
  int runs;
  int await_then_await, await_then_close;
  uvt_task_t *await_then_spawn;
  uvt_task_t *spawn_first, *spawn_then_spawn;
  int spawn_then_await, spawn_then_close;
  int close_first, close_then_close, close_then_await;
  uvt_task_t *close_then_spawn;
  int null_await, null_close;
  uvt_task_t *null_spawn;
};

static int consume_main(void *arg) {
  struct consume *r = arg;
  uvt_coro_t *a = uvt_coro(count_runs, &r->runs);
  uvt_coro_t *s = uvt_coro(count_runs, &r->runs);
  uvt_coro_t *c = uvt_coro(count_runs, &r->runs);

  cr_expect_eq(uvt_await_coro(a), 0);
  r->await_then_await = uvt_await_coro(a);
  r->await_then_spawn = uvt_spawn_coro(a);
  r->await_then_close = uvt_coro_close(a);

  r->spawn_first = uvt_spawn_coro(s);
  r->spawn_then_spawn = uvt_spawn_coro(s);
  r->spawn_then_await = uvt_await_coro(s);
  r->spawn_then_close = uvt_coro_close(s);

  r->close_first = uvt_coro_close(c);
  r->close_then_close = uvt_coro_close(c);
  r->close_then_await = uvt_await_coro(c);
  r->close_then_spawn = uvt_spawn_coro(c);

  r->null_await = uvt_await_coro(NULL);
  r->null_spawn = uvt_spawn_coro(NULL);
  r->null_close = uvt_coro_close(NULL);

  if (r->spawn_first != NULL) cr_expect_eq(uvt_await(r->spawn_first), 0);
  return 0;
}

Test(coro, each_use_consumes_and_a_second_use_is_refused) {
  struct consume r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, consume_main, &r), 0);
  cr_assert_eq(r.runs, 2, "one awaited and one spawned coroutine ran: %d", r.runs);
  cr_assert_eq(r.await_then_await, UVT_EINVAL);
  cr_assert_null(r.await_then_spawn);
  cr_assert_eq(r.await_then_close, UVT_EINVAL);
  cr_assert_not_null(r.spawn_first);
  cr_assert_null(r.spawn_then_spawn);
  cr_assert_eq(r.spawn_then_await, UVT_EINVAL);
  cr_assert_eq(r.spawn_then_close, UVT_EINVAL);
  cr_assert_eq(r.close_first, 0);
  cr_assert_eq(r.close_then_close, UVT_EINVAL);
  cr_assert_eq(r.close_then_await, UVT_EINVAL);
  cr_assert_null(r.close_then_spawn);
  cr_assert_eq(r.null_await, UVT_EINVAL);
  cr_assert_null(r.null_spawn);
  cr_assert_eq(r.null_close, UVT_EINVAL);
}

/* ---- await outside a task -------------------------------------------------- */

/* A plain libuv timer callback on the uvtask loop is not a task: awaiting
 * there is refused, and the object is left for a task to await. */
struct outside {
  uvt_coro_t *c;
  int runs;
  int st_in_callback;
  int runs_after_callback;
  int st_in_task;
  int callback_ran;
  uv_timer_t timer;
};

static void outside_timer_cb(uv_timer_t *h) {
  struct outside *r = h->data;
  r->callback_ran = 1;
  r->st_in_callback = uvt_await_coro(r->c);
  r->runs_after_callback = r->runs;
  uv_close((uv_handle_t *)h, NULL);
}

static int outside_main(void *arg) {
  struct outside *r = arg;
  r->c = uvt_coro(count_runs, &r->runs);
  uv_timer_init(uvt_loop(), &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, outside_timer_cb, 1, 0);
  while (!r->callback_ran) cr_expect_eq(uvt_sleep(2), 0);
  r->st_in_task = uvt_await_coro(r->c); /* still unconsumed */
  cr_expect_eq(uvt_sleep(1), 0); /* lets the timer's close callback run */
  return 0;
}

Test(coro, await_coro_outside_a_task_is_refused_and_leaves_it_unconsumed) {
  struct outside r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, outside_main, &r), 0);
  cr_assert_eq(r.callback_ran, 1);
  cr_assert_eq(r.st_in_callback, UVT_ENOTASK);
  cr_assert_eq(r.runs_after_callback, 0);
  cr_assert_eq(r.st_in_task, 0, "the object was consumed by the refused await");
  cr_assert_eq(r.runs, 1);
}

Test(coro, await_coro_with_no_loop_at_all) {
  cr_assert_null(uvt_coro(count_runs, NULL), "uvt_coro with no uvtask loop");
  cr_assert_eq(uvt_await_coro(NULL), UVT_ENOTASK);
}

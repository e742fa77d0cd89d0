/*
 * Tasks: when a spawned task starts, what uvt_await returns and what the
 * handle still says afterwards (result, error message, name), detaching
 * finished and running tasks, trees of tasks joined with uvt_gather, and
 * awaiting a task that is already done.
 *
 * Checks inside task bodies use cr_expect (a failed cr_assert would
 * longjmp off the task's stack) or record into a struct that is checked
 * with cr_assert after uvt_run returns.  Strings owned by a task handle
 * are copied out before uvt_run ends, since it frees every handle.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uvtask.h"

static int set_flag(void *arg) {
  *(int *)arg = 1;
  return 0;
}

/* ---- a spawned task starts in a later pass ----------------------------- */

struct start {
  int flag_after_spawn;
  int flag_after_yield;
  int await_status;
};

static int start_main(void *arg) {
  struct start *r = arg;
  int flag = 0;
  uvt_task_t *t = uvt_spawn(set_flag, &flag);
  cr_expect_not_null(t);
  r->flag_after_spawn = flag;
  cr_expect_eq(uvt_yield(), 0);
  r->flag_after_yield = flag;
  r->await_status = uvt_await(t);
  return 0;
}

Test(task, spawned_task_starts_in_a_later_pass_not_inside_spawn) {
  struct start r = {-1, -1, -1};
  cr_assert_eq(uvt_run(NULL, start_main, &r), 0);
  cr_assert_eq(r.flag_after_spawn, 0, "the task body ran inside uvt_spawn");
  cr_assert_eq(r.flag_after_yield, 1, "the task did not run in the next pass");
  cr_assert_eq(r.await_status, 0);
}

/* ---- await: status, and the handle stays valid ------------------------- */

static int result_value = 42;

static int succeed_with_result(void *arg) {
  (void)arg;
  cr_expect_eq(uvt_sleep(1), 0);
  uvt_set_result(&result_value);
  return 0;
}

static int fail_with_message(void *arg) {
  const char *peer = arg;
  cr_expect_eq(uvt_yield(), 0);
  uvt_fail(UV_EPIPE, "an earlier message that is replaced");
  return uvt_fail(UV_ECONNRESET, "peer %s went away", peer);
}

/* Records a message but returns success: it did not fail. */
static int fail_then_succeed(void *arg) {
  (void)arg;
  uvt_fail(UV_EIO, "recorded, then recovered");
  return 0;
}

struct outcome {
  int st_ok, st_ok_again, st_fail, st_fail_again, st_recovered;
  bool done_before, done_after;
  void *result;
  void *result_of_failed;
  char msg[128];
  bool msg_of_ok_is_null;
  bool msg_of_recovered_is_null;
};

static int await_main(void *arg) {
  struct outcome *r = arg;
  uvt_task_t *ok = uvt_spawn(succeed_with_result, NULL);
  uvt_task_t *bad = uvt_spawn(fail_with_message, "bob");
  uvt_task_t *rec = uvt_spawn(fail_then_succeed, NULL);
  /* A second reference to await again and read after the first await. */
  uvt_task_t *ok2 = uvt_task_ref(ok), *bad2 = uvt_task_ref(bad);
  char *m = NULL;
  r->done_before = uvt_done(ok);
  r->st_ok = uvt_await_result(ok, &r->result, &m);
  r->done_after = uvt_done(ok2);
  r->msg_of_ok_is_null = m == NULL && uvt_error_message(ok2) == NULL;
  r->st_ok_again = uvt_await(ok2);

  r->st_fail = uvt_await_result(bad, NULL, &m);
  snprintf(r->msg, sizeof r->msg, "%s", m != NULL ? m : "(null)");
  free(m);
  r->result_of_failed = uvt_result(bad2);
  r->st_fail_again = uvt_await(bad2);

  m = (char *)"unset";
  r->st_recovered = uvt_await_result(rec, NULL, &m);
  r->msg_of_recovered_is_null = m == NULL;
  return 0;
}

Test(task, await_returns_status_and_hands_over_result_and_message) {
  struct outcome r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, await_main, &r), 0);
  cr_assert_not(r.done_before, "a just-spawned task is already done");
  cr_assert_eq(r.st_ok, 0);
  cr_assert(r.done_after);
  cr_assert_eq(r.result, &result_value, "uvt_set_result did not reach uvt_result");
  cr_assert(r.msg_of_ok_is_null);
  cr_assert_eq(r.st_ok_again, 0, "a second await of the same handle");
  cr_assert_eq(r.st_fail, UV_ECONNRESET, "got %d", r.st_fail);
  cr_assert_str_eq(r.msg, "peer bob went away");
  cr_assert_eq(r.st_fail_again, UV_ECONNRESET);
  cr_assert_null(r.result_of_failed);
  cr_assert_eq(r.st_recovered, 0);
  cr_assert(r.msg_of_recovered_is_null,
            "a task that returned 0 reports an error message");
}

/* ---- uvt_set_result ------------------------------------------------------- */

static int set_result_twice(void *arg) {
  uvt_set_result(arg);
  cr_expect_eq(uvt_yield(), 0);
  uvt_set_result((char *)arg + 1); /* the last one wins */
  return 0;
}

static int no_result(void *arg) {
  (void)arg;
  return 0;
}

struct results {
  void *before_done, *last, *none;
};

static int set_result_main(void *arg) {
  struct results *r = arg;
  static char buf[2];
  uvt_task_t *t = uvt_spawn(set_result_twice, buf);
  uvt_task_t *n = uvt_spawn(no_result, NULL);
  cr_expect_eq(uvt_yield(), 0); /* t has set a result but is not done */
  r->before_done = uvt_result(t);
  cr_expect_eq(uvt_await_result(t, &r->last, NULL), 0);
  cr_expect_eq(uvt_await_result(n, &r->none, NULL), 0);
  cr_expect_eq(r->last, &buf[1]);
  return 0;
}

Test(task, set_result_is_read_with_uvt_result_once_done) {
  struct results r = {(void *)1, NULL, (void *)1};
  uvt_set_result(&r); /* outside a task: does nothing, no crash */
  cr_assert_eq(uvt_run(NULL, set_result_main, &r), 0);
  cr_assert_null(r.before_done, "uvt_result of a task not yet done");
  cr_assert_not_null(r.last);
  cr_assert_null(r.none);
}

/* ---- detach ---------------------------------------------------------------- */

struct detach_finished {
  int st_await, st_cancel_after;
  bool done_before;
};

static int detach_finished_main(void *arg) {
  struct detach_finished *r = arg;
  int flag = 0;
  uvt_task_t *t = uvt_spawn(set_flag, &flag);
  uvt_task_t *kept = uvt_task_ref(t);
  r->st_await = uvt_await(t);
  r->done_before = uvt_done(kept);
  uvt_detach(kept); /* the last reference: freed now, it has ended */
  r->st_cancel_after = uvt_cancel(kept);
  cr_expect_eq(flag, 1);
  return 0;
}

Test(task, detach_of_a_finished_task_releases_it_at_once) {
  struct detach_finished r = {1, 1, false};
  cr_assert_eq(uvt_run(NULL, detach_finished_main, &r), 0);
  cr_assert_eq(r.st_await, 0);
  cr_assert(r.done_before);
  cr_assert_eq(r.st_cancel_after, UVT_ERELEASED,
               "the handle still works after detaching a finished task");
}

struct worker {
  uvt_future_t *finished;
  int steps;
};

/* Sleeps, yields, then tells main it is about to return. */
static int detached_worker(void *arg) {
  struct worker *w = arg;
  char scratch[512];
  memset(scratch, 0x5a, sizeof scratch); /* its stack is in use */
  cr_expect_eq(uvt_sleep(5), 0);
  w->steps++;
  cr_expect_eq(uvt_yield(), 0);
  w->steps += scratch[17] == 0x5a;
  cr_expect_eq(uvt_future_set_result(w->finished, NULL), 0);
  return 0;
}

struct detach_running {
  int steps_at_detach[2];
  int done_at_detach;
  int cancel_after_end[2];
  struct worker w[2];
};

static int detach_running_main(void *arg) {
  struct detach_running *r = arg;
  uvt_task_t *t[2];
  for (int i = 0; i < 2; i++) {
    r->w[i].finished = uvt_future_new();
    t[i] = uvt_spawn(detached_worker, &r->w[i]);
  }
  /* t[0] is detached before it starts, t[1] while parked in uvt_sleep. */
  uvt_detach(t[0]);
  r->steps_at_detach[0] = r->w[0].steps;
  cr_expect_eq(uvt_yield(), 0);
  r->done_at_detach = uvt_done(t[1]) ? -1 : 0;
  uvt_detach(t[1]);
  r->steps_at_detach[1] = r->w[1].steps;
  for (int i = 0; i < 2; i++) {
    cr_expect_eq(uvt_await_future(r->w[i].finished), 0);
  }
  /* The workers returned in the pass that set the futures; they were
   * freed then, before this task resumed. */
  for (int i = 0; i < 2; i++) r->cancel_after_end[i] = uvt_cancel(t[i]);
  return 0;
}

Test(task, detach_of_a_running_task_frees_it_when_it_ends) {
  struct detach_running r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, detach_running_main, &r), 0);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(r.steps_at_detach[i], 0);
    cr_assert_eq(r.w[i].steps, 2, "worker %d did not run to its end", i);
    cr_assert_eq(r.cancel_after_end[i], UVT_ERELEASED,
                 "worker %d was not released when it ended", i);
  }
  cr_assert_eq(r.done_at_detach, 0);
}

/* ---- names ------------------------------------------------------------------ */

struct names {
  char initial[64], renamed[64], renamed_again[64], self_named[64];
  char main_name[64];
};

static int renames_itself(void *arg) {
  struct names *r = arg;
  uvt_name(NULL, "self-%s-%d", "x", 7);
  snprintf(r->self_named, sizeof r->self_named, "%s",
           uvt_task_name(uvt_current()));
  return 0;
}

static int name_main(void *arg) {
  struct names *r = arg;
  uvt_task_t *t = uvt_spawn(renames_itself, r);
  snprintf(r->main_name, sizeof r->main_name, "%s",
           uvt_task_name(uvt_current()));
  snprintf(r->initial, sizeof r->initial, "%s", uvt_task_name(t));
  uvt_name(t, "worker-%d", 3);
  snprintf(r->renamed, sizeof r->renamed, "%s", uvt_task_name(t));
  uvt_name(t, "%s", "worker-again"); /* the owned name is replaced */
  snprintf(r->renamed_again, sizeof r->renamed_again, "%s", uvt_task_name(t));
  cr_expect_eq(uvt_await(t), 0);
  return 0;
}

Test(task, name_is_the_function_and_uvt_name_renames) {
  struct names r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, name_main, &r), 0);
  cr_assert_str_eq(r.main_name, "name_main");
  cr_assert_str_eq(r.initial, "renames_itself");
  cr_assert_str_eq(r.renamed, "worker-3");
  cr_assert_str_eq(r.renamed_again, "worker-again");
  cr_assert_str_eq(r.self_named, "self-x-7", "uvt_name(NULL, ...) on the current task");
}

/* ---- trees of tasks with gather --------------------------------------------- */

#define FANOUT 3
#define DEPTH 3 /* 1 + 3 + 9 + 27 = 40 tasks */

static int nodes_started;
static int leaves_finished;

/* Counts the tasks of its subtree; the count comes back as its result. */
static int tree(void *arg) {
  int depth = (int)(intptr_t)arg;
  uvt_task_t *kids[FANOUT];
  intptr_t count = 1;
  int st;
  nodes_started++;
  if (depth == 0) {
    cr_expect_eq(uvt_sleep(1), 0);
    leaves_finished++;
    uvt_set_result((void *)count);
    return 0;
  }
  for (int i = 0; i < FANOUT; i++)
    kids[i] = uvt_spawn(tree, (void *)(intptr_t)(depth - 1));
  st = uvt_gather(kids, FANOUT);
  for (int i = 0; i < FANOUT; i++) {
    count += (intptr_t)uvt_result(kids[i]);
    uvt_detach(kids[i]);
  }
  uvt_set_result((void *)count);
  return st;
}

struct tree_result {
  int st;
  intptr_t count;
};

static int tree_main(void *arg) {
  struct tree_result *r = arg;
  uvt_task_t *root = uvt_spawn(tree, (void *)(intptr_t)DEPTH);
  void *count = NULL;
  r->st = uvt_await_result(root, &count, NULL);
  r->count = (intptr_t)count;
  return 0;
}

Test(task, nested_spawning_joined_with_gather) {
  struct tree_result r = {-1, 0};
  cr_assert_eq(uvt_run(NULL, tree_main, &r), 0);
  cr_assert_eq(r.st, 0);
  cr_assert_eq(nodes_started, 40);
  cr_assert_eq(leaves_finished, 27);
  cr_assert_eq(r.count, 40, "results did not travel up the tree: %ld",
               (long)r.count);
}

/* A failure deep in a tree travels up as each level's gather status. */
static int deep_fail(void *arg) {
  int depth = (int)(intptr_t)arg;
  uvt_task_t *kids[2];
  int st;
  if (depth == 0) return uvt_fail(UV_EIO, "leaf failed");
  kids[0] = uvt_spawn(no_result, NULL);
  kids[1] = uvt_spawn(deep_fail, (void *)(intptr_t)(depth - 1));
  st = uvt_gather(kids, 2);
  if (depth == 1) {
    const char *m = uvt_error_message(kids[1]);
    cr_expect(m != NULL && strcmp(m, "leaf failed") == 0);
  }
  uvt_detach(kids[0]);
  uvt_detach(kids[1]);
  return st;
}

static int deep_fail_main(void *arg) {
  uvt_task_t *root = uvt_spawn(deep_fail, (void *)(intptr_t)3);
  *(int *)arg = uvt_await(root);
  return 0;
}

Test(task, a_failure_deep_in_a_tree_reaches_the_top) {
  int st = 0;
  cr_assert_eq(uvt_run(NULL, deep_fail_main, &st), 0);
  cr_assert_eq(st, UV_EIO, "got %d", st);
}

/* ---- positive statuses -------------------------------------------------------- */

static int return_five(void *arg) {
  (void)arg;
  return 5;
}

struct positive {
  int st_await, st_gather;
  bool msg_null;
};

static int positive_main(void *arg) {
  struct positive *r = arg;
  uvt_task_t *t[2];
  t[0] = uvt_spawn(return_five, NULL);
  t[1] = uvt_spawn(no_result, NULL);
  char *m = (char *)"unset";
  (void)!uvt_task_ref(t[0]); /* the gather below reads it again */
  r->st_await = uvt_await_result(t[0], NULL, &m);
  r->msg_null = m == NULL;
  r->st_gather = uvt_gather(t, 2);
  uvt_detach(t[0]);
  uvt_detach(t[1]);
  return 0;
}

Test(task, a_positive_return_value_is_not_an_error) {
  struct positive r = {0, -1, false};
  cr_assert_eq(uvt_run(NULL, positive_main, &r), 0);
  cr_assert_eq(r.st_await, 5, "uvt_await passes the positive status through");
  cr_assert(r.msg_null);
  cr_assert_eq(r.st_gather, 0, "gather counted a positive status as failure");
}

Test(task, uvt_run_returns_a_positive_main_status) {
  cr_assert_eq(uvt_run(NULL, return_five, NULL), 5);
}

/* ---- awaiting a done task does not yield ----------------------------------- */

static int return_three(void *arg) {
  (void)arg;
  return 3;
}

struct no_yield {
  int st_first, st_again, st_never_awaited;
  int flag_after_again, flag_after_never_awaited;
};

static int await_done_main(void *arg) {
  struct no_yield *r = arg;
  int flag1 = 0, flag2 = 0;
  uvt_task_t *a = uvt_spawn(return_three, NULL);
  uvt_task_t *a2 = uvt_task_ref(a); /* for the second await */
  uvt_task_t *b, *c, *d;
  r->st_first = uvt_await(a);
  /* b is ready; if awaiting the done task `a` yielded, b would run. */
  b = uvt_spawn(set_flag, &flag1);
  r->st_again = uvt_await(a2);
  r->flag_after_again = flag1;

  /* A done task never awaited before: the same. */
  c = uvt_spawn(return_three, NULL);
  while (!uvt_done(c)) cr_expect_eq(uvt_yield(), 0);
  d = uvt_spawn(set_flag, &flag2);
  r->st_never_awaited = uvt_await(c);
  r->flag_after_never_awaited = flag2;
  cr_expect_eq(uvt_await(b), 0);
  cr_expect_eq(uvt_await(d), 0);
  return 0;
}

Test(task, awaiting_a_done_task_returns_at_once_without_yielding) {
  struct no_yield r = {0, 0, 0, -1, -1};
  cr_assert_eq(uvt_run(NULL, await_done_main, &r), 0);
  cr_assert_eq(r.st_first, 3);
  cr_assert_eq(r.st_again, 3);
  cr_assert_eq(r.flag_after_again, 0, "uvt_await of a done task yielded");
  cr_assert_eq(r.st_never_awaited, 3);
  cr_assert_eq(r.flag_after_never_awaited, 0,
               "uvt_await of a done, never-awaited task yielded");
}

/* ---- cancelled before it starts ------------------------------------------------- */

struct early_cancel {
  int flag, cancel_ret, st;
};

static int early_cancel_main(void *arg) {
  struct early_cancel *r = arg;
  uvt_task_t *t = uvt_spawn(set_flag, &r->flag);
  r->cancel_ret = uvt_cancel(t);
  r->st = uvt_await(t);
  return 0;
}

Test(task, a_task_cancelled_before_it_starts_never_runs_its_body) {
  struct early_cancel r = {0, -1, -1};
  cr_assert_eq(uvt_run(NULL, early_cancel_main, &r), 0);
  cr_assert_eq(r.cancel_ret, 1);
  cr_assert_eq(r.st, UVT_ECANCELED);
  cr_assert_eq(r.flag, 0, "the body ran");
}

/* ---- uvt_current and uvt_loop ------------------------------------------------ */

struct current {
  uvt_task_t *seen_by_child, *child_handle;
  uv_loop_t *loop_main, *loop_child;
};

static struct current *cur_state;

static int report_current(void *arg) {
  (void)arg;
  cur_state->seen_by_child = uvt_current();
  cur_state->loop_child = uvt_loop();
  return 0;
}

static int current_main(void *arg) {
  struct current *r = arg;
  cur_state = r;
  r->loop_main = uvt_loop();
  r->child_handle = uvt_spawn(report_current, NULL);
  cr_expect_neq(r->child_handle, uvt_current());
  cr_expect_eq(uvt_await(r->child_handle), 0);
  return 0;
}

Test(task, current_and_loop_name_the_running_task) {
  struct current r;
  memset(&r, 0, sizeof r);
  cr_assert_null(uvt_current());
  cr_assert_null(uvt_loop());
  cr_assert_eq(uvt_run(NULL, current_main, &r), 0);
  cr_assert_not_null(r.loop_main);
  cr_assert_eq(r.loop_child, r.loop_main);
  cr_assert_eq(r.seen_by_child, r.child_handle);
  cr_assert_null(uvt_current());
}

/* ---- a recycled task struct starts clean -------------------------------- */

/* Task structs are recycled, and a recycled one is zeroed only where a
 * spawn does not set it (runtime/task_mem.c).  Tasks that left every kind
 * of state behind (a name of their own, a result, an error message, a
 * cancel, a park, an inline coroutine await) are released, enough others
 * pass through the release quarantine after them, and the next tasks,
 * built on those structs, must look and behave as fresh ones. */
enum { DIRTY = 300, FLUSH = 300, CLEAN = 600 };

struct recycled {
  int clean_seen;
  int clean_bad_inside;  /* a check inside a clean task failed */
  int clean_bad_handle;  /* a check on a clean task's handle failed */
};

static int dirty_coro(void *arg) {
  (void)arg;
  return uvt_yield();
}

static int dirty_body(void *arg) {
  int kind = (int)(intptr_t)arg;
  uvt_name(NULL, "dirty-%d", kind);
  uvt_set_result(&dirty_body);
  if (kind % 3 == 0) return uvt_sleep(60000); /* cancelled while parked */
  if (kind % 3 == 1) return uvt_fail(-5, "dirty task %d failed", kind);
  return uvt_await_coro(uvt_coro(dirty_coro, NULL));
}

static int flush_body(void *arg) {
  (void)arg;
  return 0;
}

static int clean_body(void *arg) {
  struct recycled *r = arg;
  uvt_task_t *self = uvt_current();
  r->clean_seen++;
  if (strcmp(uvt_task_name(self), "clean_body") != 0 ||
      uvt_cancelling(self) != 0 || uvt_result(self) != NULL ||
      uvt_error_message(self) != NULL || uvt_yield() != 0 ||
      uvt_sleep(0) != 0)
    r->clean_bad_inside++;
  return 0;
}

static int recycled_main(void *arg) {
  struct recycled *r = arg;
  uvt_task_t *ts[CLEAN];
  size_t i;
  for (i = 0; i < DIRTY; i++) ts[i] = uvt_spawn(dirty_body, (void *)(intptr_t)i);
  cr_expect_eq(uvt_yield(), 0); /* all of them run to their park or end */
  cr_expect_eq(uvt_yield(), 0);
  for (i = 0; i < DIRTY; i += 3) cr_expect_eq(uvt_cancel(ts[i]), 1);
  cr_expect_eq(uvt_gather(ts, DIRTY), -5);
  for (i = 0; i < DIRTY; i++) uvt_detach(ts[i]);
  for (i = 0; i < FLUSH; i++) cr_expect_eq(uvt_await(uvt_spawn(flush_body, NULL)), 0);
  for (i = 0; i < CLEAN; i++) {
    ts[i] = uvt_spawn(clean_body, r);
    if (ts[i] == NULL || uvt_done(ts[i]) || uvt_result(ts[i]) != NULL ||
        uvt_error_message(ts[i]) != NULL || uvt_cancelling(ts[i]) != 0 ||
        strcmp(uvt_task_name(ts[i]), "clean_body") != 0)
      r->clean_bad_handle++;
  }
  for (i = 0; i < CLEAN; i++) {
    void *result = &result;
    char *message = NULL;
    if (uvt_await_result(ts[i], &result, &message) != 0 || result != NULL ||
        message != NULL)
      r->clean_bad_handle++;
    free(message);
  }
  return 0;
}

Test(task, a_recycled_task_struct_starts_as_a_fresh_task) {
  struct recycled r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, recycled_main, &r), 0);
  cr_assert_eq(r.clean_seen, CLEAN);
  cr_assert_eq(r.clean_bad_inside, 0);
  cr_assert_eq(r.clean_bad_handle, 0);
}

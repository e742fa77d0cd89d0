/*
 * uvt_run and the ways into a loop: its status, private and caller loops
 * (a caller's loop must close cleanly afterwards), nesting, the shutdown
 * of tasks still pending when main returns, running twice, uvt_spawn_on
 * from plain libuv callbacks with uvt_loop_close, uvt_call_threadsafe from
 * another thread, and what uvt_run reports when it ends.
 *
 * The findings (pending-at-exit, unretrieved-error, never-awaited) are read
 * from the compiler-style lines uvt_run writes on stderr, captured into a
 * temporary file around the call and parsed by kind, name and file:line.
 * The runtime's own list (uvt__findings in runtime/findings.h) would be
 * the better source, but the shared library does not export it, and
 * findings.h pulls in headers outside the tests' include path.
 *
 * Checks inside task bodies use cr_expect or record into a struct that is
 * checked with cr_assert after uvt_run returns.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uvtask.h"
#include "uvtask/testing.h"

static int value = 5;

static int return_zero(void *arg) {
  (void)arg;
  return 0;
}

static int set_flag(void *arg) {
  *(int *)arg = 1;
  return 0;
}

/* ---- findings, read from stderr ---------------------------------------------- */

struct finding {
  char kind[32];
  char what[16];
  char name[64];
  char file[256];
  int line;
  char parked_what[32];
  char parked_file[256];
  int parked_line;
  int status;
};

#define MAX_FINDINGS 16

struct report {
  int saved_fd;
  FILE *tmp;
  char text[16384];
  struct finding f[MAX_FINDINGS];
  size_t n;
};

static void copy_span(char *dst, size_t cap, const char *from, const char *to) {
  size_t len = (size_t)(to - from);
  if (len >= cap) len = cap - 1;
  memcpy(dst, from, len);
  dst[len] = '\0';
}

/* "file:line: warning: what 'name' ... [kind]" */
static void parse_line(struct report *r, const char *line, const char *end) {
  const char *w = strstr(line, ": warning: ");
  const char *colon, *q1, *q2, *lb, *p;
  struct finding *f;
  if (w == NULL || w > end || r->n == MAX_FINDINGS) return;
  f = &r->f[r->n];
  memset(f, 0, sizeof *f);
  for (colon = w - 1; colon > line && *colon != ':'; colon--) {
  }
  if (colon == line) return;
  copy_span(f->file, sizeof f->file, line, colon);
  f->line = atoi(colon + 1);
  p = w + strlen(": warning: ");
  copy_span(f->what, sizeof f->what, p, strchr(p, ' '));
  q1 = strchr(p, '\'');
  q2 = q1 != NULL ? strchr(q1 + 1, '\'') : NULL;
  if (q2 == NULL || q2 > end) return;
  copy_span(f->name, sizeof f->name, q1 + 1, q2);
  for (lb = end; lb > q2 && *lb != '['; lb--) {
  }
  if (*lb != '[') return;
  copy_span(f->kind, sizeof f->kind, lb + 1, strchr(lb, ']'));
  if ((p = strstr(q2, ", parked in ")) != NULL && p < end) {
    const char *at = strstr(p, " at ");
    const char *c2;
    p += strlen(", parked in ");
    copy_span(f->parked_what, sizeof f->parked_what, p, at);
    at += 4;
    for (c2 = lb; c2 > at && *c2 != ':'; c2--) {
    }
    copy_span(f->parked_file, sizeof f->parked_file, at, c2);
    f->parked_line = atoi(c2 + 1);
  }
  if ((p = strstr(q2, " failed with ")) != NULL && p < end)
    f->status = atoi(p + strlen(" failed with "));
  r->n++;
}

/* Send stderr to a temporary file until report_end. */
static void report_begin(struct report *r) {
  memset(r, 0, sizeof *r);
  fflush(stderr);
  r->tmp = tmpfile();
  cr_assert_not_null(r->tmp);
  r->saved_fd = dup(STDERR_FILENO);
  cr_assert(r->saved_fd >= 0);
  cr_assert(dup2(fileno(r->tmp), STDERR_FILENO) >= 0);
}

/* Restore stderr, echo what was written there, parse the findings. */
static void report_end(struct report *r) {
  long len;
  char *p;
  fflush(stderr);
  dup2(r->saved_fd, STDERR_FILENO);
  close(r->saved_fd);
  len = ftell(r->tmp);
  cr_assert(len >= 0);
  if ((size_t)len >= sizeof r->text) len = (long)sizeof r->text - 1;
  rewind(r->tmp);
  if (len > 0) cr_assert_eq(fread(r->text, 1, (size_t)len, r->tmp), (size_t)len);
  r->text[len] = '\0';
  fclose(r->tmp);
  fputs(r->text, stderr);
  for (p = r->text; *p != '\0';) {
    char *nl = strchr(p, '\n');
    if (nl == NULL) nl = p + strlen(p);
    parse_line(r, p, nl);
    p = *nl != '\0' ? nl + 1 : nl;
  }
}

static size_t count_kind(const struct report *r, const char *kind) {
  size_t k = 0;
  for (size_t i = 0; i < r->n; i++) k += strcmp(r->f[i].kind, kind) == 0;
  return k;
}

static const struct finding *find(const struct report *r, const char *kind,
                                  const char *name) {
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(r->f[i].kind, kind) == 0 && strcmp(r->f[i].name, name) == 0)
      return &r->f[i];
  return NULL;
}

/* ---- status -------------------------------------------------------------------- */

static int fail_main(void *arg) {
  (void)arg;
  return uvt_fail(UV_EIO, "main gave up");
}

static int positive_main(void *arg) {
  (void)arg;
  return 9;
}

Test(run, returns_main_status) {
  struct report rep;
  cr_assert_eq(uvt_run(NULL, return_zero, NULL), 0);
  report_begin(&rep);
  cr_assert_eq(uvt_run(NULL, fail_main, NULL), UV_EIO);
  report_end(&rep);
  cr_assert_eq(rep.n, 0, "main's own error is returned, not reported: %s",
               rep.text);
  cr_assert_eq(uvt_run(NULL, positive_main, NULL), 9);
}

/* ---- private and caller loops ----------------------------------------------- */

static uv_timer_t forgotten_timer; /* static: uvt_run closes it */
static int forgotten_ticks;

static void forgotten_cb(uv_timer_t *h) {
  (void)h;
  forgotten_ticks++;
}

static int private_loop_main(void *arg) {
  uv_loop_t **seen = arg;
  *seen = uvt_loop();
  /* A repeating timer left running on the private loop. */
  uv_timer_init(uvt_loop(), &forgotten_timer);
  uv_timer_start(&forgotten_timer, forgotten_cb, 1, 1);
  cr_expect_eq(uvt_sleep(5), 0);
  return 0;
}

Test(run, private_loop_is_made_and_closed) {
  uv_loop_t *seen = NULL;
  cr_assert_eq(uvt_run(NULL, private_loop_main, &seen), 0);
  cr_assert_not_null(seen);
  cr_assert(uv_is_closing((uv_handle_t *)&forgotten_timer),
            "a handle left on the private loop was not closed");
}

struct caller {
  uv_loop_t *loop;
  uv_loop_t *seen;
  uv_timer_t mine;
  int ticks;
};

static void mine_cb(uv_timer_t *h) {
  struct caller *c = h->data;
  c->ticks++;
}

static int caller_loop_main(void *arg) {
  struct caller *c = arg;
  c->seen = uvt_loop();
  /* The caller's own handle keeps working while tasks run. */
  uv_timer_start(&c->mine, mine_cb, 1, 0);
  cr_expect_eq(uvt_sleep(10), 0);
  return 3;
}

Test(run, caller_loop_is_left_open_and_closes_cleanly) {
  struct caller c;
  uv_loop_t loop;
  memset(&c, 0, sizeof c);
  cr_assert_eq(uv_loop_init(&loop), 0);
  c.loop = &loop;
  uv_timer_init(&loop, &c.mine);
  c.mine.data = &c;
  cr_assert_eq(uvt_run(&loop, caller_loop_main, &c), 3);
  cr_assert_eq(c.seen, &loop, "main did not run on the caller's loop");
  cr_assert_eq(c.ticks, 1);
  cr_assert_not(uv_is_closing((uv_handle_t *)&c.mine),
                "uvt_run closed a handle of the caller's");
  /* The loop is still usable for uvtask. */
  cr_assert_eq(uvt_run(&loop, caller_loop_main, &c), 3);
  cr_assert_eq(c.ticks, 2);
  uv_close((uv_handle_t *)&c.mine, NULL);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(uv_loop_close(&loop), 0,
               "uvtask left handles open on the caller's loop");
}

/* ---- nesting ------------------------------------------------------------------ */

struct nested {
  uv_loop_t *caller;
  int st_private, st_caller;
  int inner_ran;
};

static int inner_main(void *arg) {
  *(int *)arg = 1;
  return 0;
}

static int nesting_main(void *arg) {
  struct nested *r = arg;
  r->st_private = uvt_run(NULL, inner_main, &r->inner_ran);
  r->st_caller = uvt_run(r->caller, inner_main, &r->inner_ran);
  return 0;
}

Test(run, uvt_run_inside_a_task_is_refused) {
  struct nested r;
  uv_loop_t other;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uv_loop_init(&other), 0);
  r.caller = &other;
  cr_assert_eq(uvt_run(NULL, nesting_main, &r), 0);
  cr_assert_eq(r.st_private, UVT_ENESTED);
  cr_assert_eq(r.st_caller, UVT_ENESTED);
  cr_assert_eq(r.inner_ran, 0);
  cr_assert_eq(uv_loop_close(&other), 0);
}

/* ---- pending tasks at main's end ------------------------------------------------ */

struct cleaner {
  int first, cleanup, cleaned;
  int sleep_line;
};

/* Parks in a long sleep; on cancellation sleeps once more to clean up. */
static int cleaner(void *arg) {
  struct cleaner *c = arg;
  c->sleep_line = __LINE__, c->first = uvt_sleep(1000000);
  if (c->first == UVT_ECANCELED) {
    c->cleanup = uvt_sleep(10);
    c->cleaned = 1;
  }
  return c->first;
}

struct pending {
  struct cleaner c;
  int spawn_line;
};

static int pending_main(void *arg) {
  struct pending *r = arg;
  uvt_task_t *t;
  r->spawn_line = __LINE__, t = uvt_spawn(cleaner, &r->c);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_not(uvt_done(t));
  return 0;
}

Test(run, pending_tasks_are_reported_cancelled_and_cleaned_up) {
  struct pending r;
  struct report rep;
  const struct finding *f;
  memset(&r, 0, sizeof r);
  report_begin(&rep);
  cr_assert_eq(uvt_run(NULL, pending_main, &r), 0);
  report_end(&rep);
  cr_assert_eq(r.c.first, UVT_ECANCELED);
  cr_assert_eq(r.c.cleanup, 0, "the cleanup sleep was cancelled too");
  cr_assert_eq(r.c.cleaned, 1, "the task was not given time to clean up");

  cr_assert_eq(count_kind(&rep, "pending-at-exit"), 1, "%s", rep.text);
  f = find(&rep, "pending-at-exit", "cleaner");
  cr_assert_not_null(f, "%s", rep.text);
  cr_assert_str_eq(f->what, "task");
  cr_assert_str_eq(f->file, __FILE__);
  cr_assert_eq(f->line, r.spawn_line, "creation line %d, spawned at %d",
               f->line, r.spawn_line);
  cr_assert_str_eq(f->parked_what, "uvt_sleep");
  cr_assert_str_eq(f->parked_file, __FILE__);
  cr_assert_eq(f->parked_line, r.c.sleep_line);
  /* Cancelled tasks are not errors nobody read. */
  cr_assert_eq(count_kind(&rep, "unretrieved-error"), 0, "%s", rep.text);
}

/* A task that ignores its cancellation is abandoned after a bounded time. */
static int stubborn_iterations, stubborn_cancels;

static int stubborn(void *arg) {
  (void)arg;
  for (;;) {
    if (uvt_sleep(20) == UVT_ECANCELED) stubborn_cancels++;
    stubborn_iterations++;
  }
  return 0;
}

static int stubborn_main(void *arg) {
  (void)arg;
  (void)!uvt_spawn(stubborn, NULL);
  return uvt_sleep(1);
}

Test(run, a_task_ignoring_cancellation_is_abandoned) {
  struct report rep;
  int frozen;
  report_begin(&rep);
  cr_assert_eq(uvt_run(NULL, stubborn_main, NULL), 0);
  report_end(&rep);
  frozen = stubborn_iterations;
  cr_assert(frozen > 1, "it kept running after its cancellation");
  cr_assert_eq(stubborn_cancels, 1, "cancellation is one-shot: delivered %d times",
               stubborn_cancels);
  cr_assert_not_null(find(&rep, "pending-at-exit", "stubborn"), "%s", rep.text);
  cr_assert_not_null(strstr(rep.text, "abandoning"), "%s", rep.text);
  /* The abandoned task never runs again, in a later uvt_run either. */
  cr_assert_eq(uvt_run(NULL, positive_main, NULL), 9);
  cr_assert_eq(stubborn_iterations, frozen);
}

/* ---- twice in a row ------------------------------------------------------------ */

static int count_main(void *arg) {
  int *runs = arg;
  uvt_task_t *t = uvt_spawn(return_zero, NULL);
  cr_expect_eq(uvt_await(t), 0);
  cr_expect_eq(uvt_sleep(1), 0);
  return ++*runs;
}

Test(run, twice_in_a_row_in_one_process) {
  int runs = 0;
  uv_loop_t loop;
  cr_assert_eq(uvt_run(NULL, count_main, &runs), 1);
  cr_assert_eq(uvt_run(NULL, count_main, &runs), 2);
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(uvt_run(&loop, count_main, &runs), 3);
  cr_assert_eq(uvt_run(&loop, count_main, &runs), 4);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ---- uvt_spawn_on from a plain libuv callback ------------------------------------ */

struct spawn_on {
  uv_loop_t loop;
  uv_timer_t timer, stopper;
  uvt_task_t *t;
  int child_flag;
  int slept;
  int task_status_seen;
  struct cleaner c;
  int spawn_line;
};

static int spawned_on(void *arg) {
  struct spawn_on *r = arg;
  uvt_task_t *child;
  cr_expect_eq(uvt_loop(), &r->loop);
  r->slept = uvt_sleep(5) == 0;
  child = uvt_spawn(set_flag, &r->child_flag);
  cr_expect_eq(uvt_await(child), 0);
  uvt_set_result(&value);
  return 4;
}

static void spawn_on_cb(uv_timer_t *h) {
  struct spawn_on *r = h->data;
  r->t = uvt_spawn_on(&r->loop, spawned_on, r);
  cr_expect_not_null(r->t);
}

Test(run, spawn_on_from_a_libuv_callback) {
  struct spawn_on r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uv_loop_init(&r.loop), 0);
  uv_timer_init(&r.loop, &r.timer);
  r.timer.data = &r;
  uv_timer_start(&r.timer, spawn_on_cb, 1, 0);
  /* The task's sleep and ready queue keep uv_run going until it ends. */
  cr_assert_eq(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
  cr_assert_not_null(r.t);
  cr_assert(uvt_done(r.t), "uv_run returned before the task ended");
  cr_assert_eq(uvt_result(r.t), &value);
  cr_assert_eq(r.slept, 1);
  cr_assert_eq(r.child_flag, 1);
  cr_assert_eq(uvt_loop_close(&r.loop), 0);
  cr_assert_eq(uvt_loop_close(&r.loop), UVT_ENOLOOP, "closed twice");
  uv_close((uv_handle_t *)&r.timer, NULL);
  cr_assert_eq(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(uv_loop_close(&r.loop), 0,
               "uvt_loop_close left uvtask's handles open");
}

static void spawn_cleaner_cb(uv_timer_t *h) {
  struct spawn_on *r = h->data;
  r->spawn_line = __LINE__, r->t = uvt_spawn_on(&r->loop, cleaner, &r->c);
}

static void stop_cb(uv_timer_t *h) { uv_stop(h->loop); }

Test(run, loop_close_cancels_tasks_still_pending_on_a_caller_loop) {
  struct spawn_on r;
  struct report rep;
  const struct finding *f;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uv_loop_init(&r.loop), 0);
  uv_timer_init(&r.loop, &r.timer);
  uv_timer_init(&r.loop, &r.stopper);
  r.timer.data = &r;
  uv_timer_start(&r.timer, spawn_cleaner_cb, 1, 0);
  uv_timer_start(&r.stopper, stop_cb, 20, 0);
  uv_run(&r.loop, UV_RUN_DEFAULT);
  cr_assert_not_null(r.t);
  cr_assert_not(uvt_done(r.t));
  report_begin(&rep);
  cr_assert_eq(uvt_loop_close(&r.loop), 0);
  report_end(&rep);
  cr_assert_eq(r.c.first, UVT_ECANCELED);
  cr_assert_eq(r.c.cleaned, 1);
  f = find(&rep, "pending-at-exit", "cleaner");
  cr_assert_not_null(f, "%s", rep.text);
  cr_assert_eq(f->line, r.spawn_line);
  cr_assert_str_eq(f->parked_what, "uvt_sleep");
  uv_close((uv_handle_t *)&r.timer, NULL);
  uv_close((uv_handle_t *)&r.stopper, NULL);
  cr_assert_eq(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(uv_loop_close(&r.loop), 0);
}

Test(run, loop_close_reports_a_task_that_never_started_and_never_runs_it) {
  uv_loop_t loop;
  struct report rep;
  const struct finding *f;
  uvt_task_t *t;
  int flag = 0, line;
  cr_assert_eq(uv_loop_init(&loop), 0);
  line = __LINE__, t = uvt_spawn_on(&loop, set_flag, &flag);
  cr_assert_not_null(t);
  report_begin(&rep);
  cr_assert_eq(uvt_loop_close(&loop), 0);
  report_end(&rep);
  cr_assert_eq(flag, 0, "a task cancelled before it started ran its body");
  cr_assert_eq(rep.n, 1, "%s", rep.text);
  f = find(&rep, "pending-at-exit", "set_flag");
  cr_assert_not_null(f, "%s", rep.text);
  cr_assert_eq(f->line, line);
  cr_assert_str_eq(f->parked_what, "", "a task that never ran is parked nowhere");
  cr_assert_not_null(strstr(rep.text, "never started"), "%s", rep.text);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ---- uvt_call_threadsafe ---------------------------------------------------------- */

struct ts {
  uv_loop_t *loop;
  uvt_future_t *f;
  uv_thread_t loop_thread, ran_on;
  int call_ret;
  int fail_call_ret;
  int await_st;
  void *result;
};

/* Runs as a task on the loop, called from the other thread. */
static int ts_setter(void *arg) {
  struct ts *s = arg;
  s->ran_on = uv_thread_self();
  cr_expect_not_null(uvt_current());
  return uvt_future_set_result(s->f, &value);
}

static void ts_thread(void *arg) {
  struct ts *s = arg;
  s->call_ret = uvt_call_threadsafe(s->loop, ts_setter, s);
}

static int ts_main(void *arg) {
  struct ts *s = arg;
  uv_thread_t th;
  s->loop = uvt_loop();
  s->loop_thread = uv_thread_self();
  s->f = uvt_future_new();
  cr_expect_eq(uv_thread_create(&th, ts_thread, s), 0);
  s->await_st = uvt_await_future_result(s->f, &s->result, NULL);
  cr_expect_eq(uv_thread_join(&th), 0);
  return 0;
}

Test(run, call_threadsafe_from_another_thread_wakes_a_task) {
  struct ts s;
  memset(&s, 0, sizeof s);
  s.call_ret = s.await_st = -1;
  cr_assert_eq(uvt_run(NULL, ts_main, &s), 0);
  cr_assert_eq(s.call_ret, 0);
  cr_assert_eq(s.await_st, 0);
  cr_assert_eq(s.result, &value);
  cr_assert(uv_thread_equal(&s.ran_on, &s.loop_thread),
            "the function did not run on the loop's thread");
}

Test(run, call_threadsafe_on_a_loop_without_uvtask) {
  uv_loop_t loop;
  struct caller c;
  memset(&c, 0, sizeof c);
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(uvt_call_threadsafe(&loop, return_zero, NULL), UVT_ENOLOOP);
  cr_assert_eq(uvt_loop_close(&loop), UVT_ENOLOOP);
  /* Once uvt_run has returned, uvtask is no longer attached to it. */
  uv_timer_init(&loop, &c.mine);
  c.mine.data = &c;
  cr_assert_eq(uvt_run(&loop, caller_loop_main, &c), 3);
  cr_assert_eq(uvt_call_threadsafe(&loop, return_zero, NULL), UVT_ENOLOOP);
  uv_close((uv_handle_t *)&c.mine, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ---- findings --------------------------------------------------------------------- */

static int fails(void *arg) {
  (void)arg;
  cr_expect_eq(uvt_yield(), 0);
  return uvt_fail(UV_ECONNRESET, "peer went away");
}

static int sleeps_long(void *arg) {
  (void)arg;
  return uvt_sleep(1000000);
}

static int return_seven(void *arg) {
  (void)arg;
  return 7;
}

struct lines {
  int detached_failed, kept_failed, never_awaited, failed_future;
};

static int buggy_main(void *arg) {
  struct lines *l = arg;
  uvt_task_t *t;
  uvt_future_t *f;
  /* Detached, then fails: reported once, when it ends. */
  l->detached_failed = __LINE__, t = uvt_spawn(fails, NULL);
  uvt_detach(t);
  /* Fails, handle kept, never awaited: reported when uvt_run ends. */
  l->kept_failed = __LINE__, t = uvt_spawn(fails, NULL);
  uvt_name(t, "kept");
  /* Created, never awaited, spawned or closed. */
  l->never_awaited = __LINE__, (void)!uvt_coro(return_zero, NULL);
  /* A future that failed and nobody read. */
  l->failed_future = __LINE__, f = uvt_future_new();
  uvt_future_set_error(f, UV_EPIPE, "nobody reads this");
  return uvt_sleep(5);
}

Test(run, findings_name_each_bug_once_with_its_creation_line) {
  struct lines l;
  struct report rep;
  const struct finding *f;
  memset(&l, 0, sizeof l);
  report_begin(&rep);
  cr_assert_eq(uvt_run(NULL, buggy_main, &l), 0);
  report_end(&rep);
  cr_assert_eq(rep.n, 6, "%s", rep.text);
  cr_assert_eq(count_kind(&rep, "unretrieved-error"), 3, "%s", rep.text);
  /* The kept task handle and the future handle were never given up. */
  cr_assert_eq(count_kind(&rep, "unreleased-handle"), 2, "%s", rep.text);
  cr_assert_eq(count_kind(&rep, "never-awaited"), 1, "%s", rep.text);

  f = find(&rep, "unretrieved-error", "fails");
  cr_assert_not_null(f, "%s", rep.text);
  cr_assert_str_eq(f->what, "task");
  cr_assert_str_eq(f->file, __FILE__);
  cr_assert_eq(f->line, l.detached_failed);
  cr_assert_eq(f->status, UV_ECONNRESET);
  cr_assert_not_null(strstr(rep.text, "peer went away"), "the message is shown");

  f = find(&rep, "unretrieved-error", "kept");
  cr_assert_not_null(f, "%s", rep.text);
  cr_assert_eq(f->line, l.kept_failed);

  f = find(&rep, "never-awaited", "return_zero");
  cr_assert_not_null(f, "%s", rep.text);
  cr_assert_str_eq(f->what, "coroutine");
  cr_assert_eq(f->line, l.never_awaited);

  f = find(&rep, "unretrieved-error", "future");
  cr_assert_not_null(f, "%s", rep.text);
  cr_assert_str_eq(f->what, "future");
  cr_assert_eq(f->line, l.failed_future);
  cr_assert_eq(f->status, UV_EPIPE);
}

static int clean_main(void *arg) {
  uvt_task_t *a, *b[2], *c, *d, *e;
  uvt_future_t *f;
  uvt_coro_t *k;
  (void)arg;
  /* A failure awaited. */
  a = uvt_spawn(fails, NULL);
  cr_expect_eq(uvt_await(a), UV_ECONNRESET); /* gives the handle up */
  /* Failures read by gather; the handles given up after. */
  b[0] = uvt_spawn(fails, NULL);
  b[1] = uvt_spawn(fails, NULL);
  cr_expect_eq(uvt_gather(b, 2), UV_ECONNRESET);
  uvt_detach(b[0]);
  uvt_detach(b[1]);
  /* Cancelled and never awaited, detached. */
  c = uvt_spawn(sleeps_long, NULL);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(c), 1);
  uvt_detach(c);
  /* Succeeded (positive status), never awaited. */
  d = uvt_spawn(return_seven, NULL);
  e = uvt_spawn(return_zero, NULL);
  uvt_detach(e);
  /* A failed future that was read; a coroutine closed on purpose. */
  f = uvt_future_new();
  uvt_future_set_error(f, UV_EPIPE, "read below");
  cr_expect_eq(uvt_await_future(f), UV_EPIPE);
  k = uvt_coro(return_zero, NULL);
  cr_expect_eq(uvt_coro_close(k), 0);
  while (!uvt_done(d)) cr_expect_eq(uvt_yield(), 0);
  uvt_detach(d);
  return uvt_sleep(2);
}

Test(run, a_clean_program_has_no_findings) {
  struct report rep;
  report_begin(&rep);
  cr_assert_eq(uvt_run(NULL, clean_main, NULL), 0);
  report_end(&rep);
  cr_assert_eq(rep.n, 0, "unexpected findings:\n%s", rep.text);
}

/* A function run by uvt_call_threadsafe that fails is reported: nobody
 * holds its handle to read the error. */
static int ts_fail(void *arg) {
  struct ts *s = arg;
  uvt_future_set_result(s->f, NULL);
  return uvt_fail(UV_EIO, "background call failed");
}

static void ts_fail_thread(void *arg) {
  struct ts *s = arg;
  s->fail_call_ret = uvt_call_threadsafe(s->loop, ts_fail, s);
}

static int ts_fail_main(void *arg) {
  struct ts *s = arg;
  uv_thread_t th;
  s->loop = uvt_loop();
  s->f = uvt_future_new();
  cr_expect_eq(uv_thread_create(&th, ts_fail_thread, s), 0);
  cr_expect_eq(uvt_await_future(s->f), 0);
  cr_expect_eq(uv_thread_join(&th), 0);
  return uvt_sleep(1);
}

Test(run, a_failed_threadsafe_call_is_reported) {
  struct ts s;
  struct report rep;
  const struct finding *f;
  memset(&s, 0, sizeof s);
  s.fail_call_ret = -1;
  report_begin(&rep);
  cr_assert_eq(uvt_run(NULL, ts_fail_main, &s), 0);
  report_end(&rep);
  cr_assert_eq(s.fail_call_ret, 0);
  cr_assert_eq(rep.n, 1, "%s", rep.text);
  f = find(&rep, "unretrieved-error", "ts_fail");
  cr_assert_not_null(f, "%s", rep.text);
  cr_assert_eq(f->status, UV_EIO);
}

/* Objects on the ignore list (testing.h) are expected to outlive the run:
 * uvt_run neither prints them nor lists them (issue 15). */
Test(run, ignored_objects_are_not_reported) {
  struct pending r;
  struct report rep;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_leaks_ignore("cleaner"), 0);
  report_begin(&rep);
  cr_assert_eq(uvt_run(NULL, pending_main, &r), 0);
  report_end(&rep);
  uvt_leaks_ignore_clear();
  cr_assert_eq(r.c.first, UVT_ECANCELED, "still cancelled and cleaned up");
  cr_assert_eq(count_kind(&rep, "pending-at-exit"), 0, "%s", rep.text);
  cr_assert_null(strstr(rep.text, "still pending"), "%s", rep.text);
}

/* asyncio's call_soon_threadsafe from the loop's own thread runs in call
 * order with what is scheduled after it; uvt_call_threadsafe from a task
 * on the loop's thread keeps its place before a later spawn.  (Before, it
 * went through uv_async and ran after the later spawn.) */
static char order_log[8];
static int order_n;

static int log_a(void *arg) {
  (void)arg;
  order_log[order_n++] = 'a';
  return 0;
}

static int log_b(void *arg) {
  (void)arg;
  order_log[order_n++] = 'b';
  return 0;
}

static int order_main(void *arg) {
  (void)arg;
  cr_expect_eq(uvt_call_threadsafe(uvt_loop(), log_a, NULL), 0);
  uvt_detach(uvt_spawn(log_b, NULL));
  for (int i = 0; i < 100 && order_n < 2; i++) cr_expect_eq(uvt_sleep(1), 0);
  return 0;
}

Test(run, call_threadsafe_from_the_loop_thread_keeps_call_order) {
  cr_assert_eq(uvt_run(NULL, order_main, NULL), 0);
  cr_assert_eq(order_n, 2);
  cr_assert_eq(order_log[0], 'a', "the threadsafe call ran after a later spawn");
  cr_assert_eq(order_log[1], 'b');
}

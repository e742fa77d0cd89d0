/*
 * Waiting on several tasks: uvt_gather, uvt_wait, uvt_wait_for.
 *
 * Checks inside task bodies use cr_expect (a failed cr_assert would
 * longjmp off the task's stack); cr_assert only after uvt_run returns.
 *
 * Whether an error counts as retrieved is read from the findings uvt_run
 * keeps (findings.h).  uvt__findings is internal: the shared library the
 * tests link does not export it, so it is declared weak here and, when it
 * is not there, the same findings are counted from what uvt_run printed
 * on stderr (one "... [kind]" line per finding).  The public leak check
 * (uvt_assert_no_leaks_after_run, uvtask/testing.h) must agree.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uvtask.h"
#include "uvtask/testing.h"
#include "findings.h"

#pragma weak uvt__findings

/* ---- running main and counting its findings ------------------------------ */

struct outcome {
  int status;        /* what uvt_run returned */
  char *stderr_text; /* what it printed, when captured */
};

/* Run main under uvt_run with stderr captured (and echoed afterwards). */
static void run_captured(uvt_fn main, void *arg, struct outcome *o) {
  FILE *tmp = tmpfile();
  int saved;
  long size;
  cr_assert_not_null(tmp);
  fflush(stderr);
  saved = dup(2);
  cr_assert_geq(saved, 0);
  cr_assert_geq(dup2(fileno(tmp), 2), 0);
  o->status = uvt_run(NULL, main, arg);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  fseek(tmp, 0, SEEK_END);
  size = ftell(tmp);
  rewind(tmp);
  o->stderr_text = calloc(1, (size_t)size + 1);
  cr_assert_not_null(o->stderr_text);
  if (size > 0) cr_assert_eq(fread(o->stderr_text, 1, (size_t)size, tmp), (size_t)size);
  fclose(tmp);
  fputs(o->stderr_text, stderr);
}

/* How many findings of `kind` (for a task named `name`, if not NULL) the
 * last uvt_run produced. */
static size_t count_findings(const struct outcome *o, const char *kind,
                             const char *name) {
  size_t k = 0;
  if (uvt__findings != NULL) {
    size_t n = 0;
    const uvt__finding_t *f = uvt__findings(&n);
    for (size_t i = 0; i < n; i++)
      if (strcmp(uvt_finding_kind_name(f[i].kind), kind) == 0 &&
          (name == NULL || (f[i].name != NULL && strcmp(f[i].name, name) == 0)))
        k++;
    return k;
  }
  char tag[64], quoted[128];
  snprintf(tag, sizeof tag, "[%s]", kind);
  snprintf(quoted, sizeof quoted, "'%s'", name != NULL ? name : "");
  for (const char *line = o->stderr_text; line != NULL && *line != '\0';) {
    const char *eol = strchr(line, '\n');
    size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
    char *copy = strndup(line, len);
    if (strstr(copy, tag) != NULL && (name == NULL || strstr(copy, quoted) != NULL))
      k++;
    free(copy);
    line = eol != NULL ? eol + 1 : NULL;
  }
  return k;
}

/* How many unread errors (of a task named `name`, if not NULL) the public
 * leak check finds in the last uvt_run. */
static size_t count_leaked_errors(const char *name) {
  char quoted[128];
  size_t k = 0;
  int n = uvt_assert_no_leaks_after_run(NULL);
  snprintf(quoted, sizeof quoted, "'%s'", name != NULL ? name : "");
  for (int i = 0; i < n; i++) {
    const char *text = uvt_leak_text((size_t)i);
    if (text != NULL && strncmp(text, "leaked error of", 15) == 0 &&
        (name == NULL || strstr(text, quoted) != NULL))
      k++;
  }
  return k;
}

/* No unretrieved-error, by both accounts. */
static void assert_all_retrieved(const struct outcome *o) {
  cr_assert_eq(count_findings(o, "unretrieved-error", NULL), 0,
               "stderr was:\n%s", o->stderr_text);
  cr_assert_eq(count_leaked_errors(NULL), 0);
}

/* ---- small task bodies ------------------------------------------------------ */

/* Sleep `ms`, then return `status`. */
struct job {
  int ms;
  int status;
  int ended;
  int sleep_status;
};

static int job_run(void *arg) {
  struct job *j = arg;
  if (j->ms > 0) j->sleep_status = uvt_sleep(j->ms);
  j->ended = 1;
  return j->sleep_status != 0 ? j->sleep_status : j->status;
}

static int trivial(void *arg) {
  (*(long *)arg)++;
  return 0;
}

static int ticker(void *arg) {
  (*(int *)arg)++;
  return 0;
}

static int await_future_task(void *arg) {
  return uvt_await_future(arg);
}

/* ---- gather ---------------------------------------------------------------- */

struct first_error {
  struct job j[3];
  int rc;
  int late[3];
};

static int first_error_main(void *arg) {
  struct first_error *s = arg;
  uvt_task_t *t[3];
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(job_run, &s->j[i]);
  s->rc = uvt_gather(t, 3);
  /* The handles stay valid; each keeps its own status. */
  for (int i = 0; i < 3; i++) s->late[i] = uvt_await(t[i]);
  return 0;
}

/* asyncio's gather raises the first exception in completion order; the
 * old rule (first by index) returned -5 here, the error that came later. */
Test(gather, returns_first_error_in_completion_order_and_retrieves_all) {
  /* Task 2 fails first (no sleep), task 1 later, task 0 succeeds last. */
  struct first_error s = {{{30, 0, 0, 0}, {15, -5, 0, 0}, {0, -7, 0, 0}}, 0, {0}};
  struct outcome o;
  run_captured(first_error_main, &s, &o);
  cr_assert_eq(o.status, 0);
  cr_assert_eq(s.rc, -7, "got %d", s.rc);
  cr_assert_eq(s.late[0], 0);
  cr_assert_eq(s.late[1], -5);
  cr_assert_eq(s.late[2], -7);
  assert_all_retrieved(&o);
  free(o.stderr_text);
}

/* Gather alone, with no later await, retrieves every error. */
static int gather_only_main(void *arg) {
  struct first_error *s = arg;
  uvt_task_t *t[3];
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(job_run, &s->j[i]);
  s->rc = uvt_gather(t, 3);
  for (int i = 0; i < 3; i++) uvt_detach(t[i]);
  return 0;
}

Test(gather, counts_every_error_as_retrieved) {
  struct first_error s = {{{0, -3, 0, 0}, {5, -5, 0, 0}, {0, -7, 0, 0}}, 0, {0}};
  struct outcome o;
  run_captured(gather_only_main, &s, &o);
  cr_assert_eq(o.status, 0);
  cr_assert_eq(s.rc, -3);
  assert_all_retrieved(&o);
  free(o.stderr_text);
}

static int gather_none_main(void *arg) {
  uvt_task_t *none[1] = {NULL};
  int *rc = arg;
  *rc = uvt_gather(none, 0);
  return 0;
}

Test(gather, zero_tasks) {
  int rc = 1;
  cr_assert_eq(uvt_run(NULL, gather_none_main, &rc), 0);
  cr_assert_eq(rc, 0);
}

struct many {
  size_t n;
  uvt_task_t **t;
  long count;
  struct job *jobs;
  int rc;
  size_t done;
};

static int gather_1000_main(void *arg) {
  struct many *m = arg;
  for (size_t i = 0; i < m->n; i++) {
    /* A mix: some finish at once, some yield, some sleep. */
    m->jobs[i].ms = (int)(i % 4);
    m->jobs[i].status = (int)(i % 7); /* 0 or positive: success */
    m->t[i] = uvt_spawn(job_run, &m->jobs[i]);
  }
  m->rc = uvt_gather(m->t, m->n);
  for (size_t i = 0; i < m->n; i++) m->done += uvt_done(m->t[i]);
  return 0;
}

Test(gather, one_thousand_tasks) {
  struct many m = {1000, NULL, 0, NULL, 1, 0};
  m.t = calloc(m.n, sizeof *m.t);
  m.jobs = calloc(m.n, sizeof *m.jobs);
  cr_assert_eq(uvt_run(NULL, gather_1000_main, &m), 0);
  cr_assert_eq(m.rc, 0);
  cr_assert_eq(m.done, m.n);
  for (size_t i = 0; i < m.n; i++) cr_assert_eq(m.jobs[i].ended, 1, "job %zu", i);
  free(m.t);
  free(m.jobs);
}

static int gather_100k_main(void *arg) {
  struct many *m = arg;
  for (size_t i = 0; i < m->n; i++) {
    m->t[i] = uvt_spawn(trivial, &m->count);
    if (m->t[i] == NULL) return UVT_ENOMEM;
  }
  /* None has started: gather waits on all of them. */
  m->rc = uvt_gather(m->t, m->n);
  for (size_t i = 0; i < m->n; i++) m->done += uvt_done(m->t[i]);
  return 0;
}

Test(gather, one_hundred_thousand_trivial_tasks) {
  struct many m = {100000, NULL, 0, NULL, 1, 0};
  m.t = calloc(m.n, sizeof *m.t);
  cr_assert_eq(uvt_run(NULL, gather_100k_main, &m), 0);
  cr_assert_eq(m.rc, 0);
  cr_assert_eq(m.count, 100000);
  cr_assert_eq(m.done, m.n);
  free(m.t);
}

/* More tasks than fit on the gatherer's stack: same first-error rule
 * (index 15 fails at once, index 5 later). */
static int gather_20_main(void *arg) {
  struct many *m = arg;
  for (size_t i = 0; i < m->n; i++) {
    m->jobs[i].ms = i == 5 ? 20 : 0;      /* the first failure ends last */
    m->jobs[i].status = i == 5 ? -5 : i == 15 ? -7 : 0;
    m->t[i] = uvt_spawn(job_run, &m->jobs[i]);
  }
  m->rc = uvt_gather(m->t, m->n);
  for (size_t i = 0; i < m->n; i++) m->done += uvt_done(m->t[i]);
  return 0;
}

Test(gather, first_error_in_completion_order_with_many_tasks) {
  struct many m = {20, NULL, 0, NULL, 1, 0};
  struct outcome o;
  m.t = calloc(m.n, sizeof *m.t);
  m.jobs = calloc(m.n, sizeof *m.jobs);
  run_captured(gather_20_main, &m, &o);
  cr_assert_eq(o.status, 0);
  cr_assert_eq(m.rc, -7, "got %d", m.rc);
  cr_assert_eq(m.done, m.n);
  assert_all_retrieved(&o);
  free(o.stderr_text);
  free(m.t);
  free(m.jobs);
}

/* A gather refused for a bad task at the end of its array (a NULL after
 * 20 tasks: nodes allocated; the caller itself after 3: nodes on its
 * stack) must leave the good ones as they were: no waiter left on them
 * (each would fire into freed memory when its task ends), no reference
 * kept (each would never be freed).  The same tasks then gather. */
struct refused {
  struct job jobs[23];
  uvt_task_t *t[23];
  int rc_null, rc_self, rc_many, rc_few;
};

static int refused_main(void *arg) {
  struct refused *r = arg;
  size_t i;
  for (i = 0; i < 20; i++) {
    r->jobs[i].ms = (int)(i % 3);
    r->t[i] = uvt_spawn(job_run, &r->jobs[i]);
  }
  /* None has run yet: every good task would get a node. */
  r->t[20] = NULL;
  r->rc_null = uvt_gather(r->t, 21);
  r->t[20] = uvt_current();
  r->rc_self = uvt_gather(r->t + 18, 3);
  for (i = 20; i < 23; i++) r->t[i] = uvt_spawn(job_run, &r->jobs[i]);
  r->rc_many = uvt_gather(r->t, 20);
  r->rc_few = uvt_gather(r->t + 20, 3);
  for (i = 0; i < 23; i++) uvt_detach(r->t[i]);
  return 0;
}

Test(gather, a_bad_task_after_good_ones_leaves_them_unwatched_and_unpinned) {
  struct refused r;
  struct outcome o;
  memset(&r, 0, sizeof r);
  run_captured(refused_main, &r, &o);
  cr_assert_eq(o.status, 0);
  cr_assert_eq(r.rc_null, UVT_EINVAL);
  cr_assert_eq(r.rc_self, UVT_ESELF);
  cr_assert_eq(r.rc_many, 0);
  cr_assert_eq(r.rc_few, 0);
  for (size_t i = 0; i < 23; i++) cr_assert_eq(r.jobs[i].ended, 1, "job %zu", i);
  cr_assert_eq(count_findings(&o, "unreleased-handle", NULL), 0,
               "stderr was:\n%s", o.stderr_text);
  cr_assert_eq(uvt_assert_no_leaks_after_run(NULL), 0);
  free(o.stderr_text);
}

/* ---- wait -------------------------------------------------------------------- */

struct wait_case {
  struct job j[3];
  int rc;
  size_t ndone;
  int done[3];
  int late[3];
};

static int first_completed_main(void *arg) {
  struct wait_case *s = arg;
  uvt_task_t *t[3];
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(job_run, &s->j[i]);
  s->rc = uvt_wait(t, 3, UVT_FIRST_COMPLETED, -1, &s->ndone);
  for (int i = 0; i < 3; i++) s->done[i] = uvt_done(t[i]);
  /* Clean up the rest, as a careful user must. */
  for (int i = 0; i < 3; i++) uvt_cancel(t[i]);
  for (int i = 0; i < 3; i++) s->late[i] = uvt_await(t[i]);
  return 0;
}

Test(wait, first_completed) {
  struct wait_case s = {{{300, 0, 0, 0}, {10, 0, 0, 0}, {400, 0, 0, 0}}, 1, 0, {0}, {0}};
  cr_assert_eq(uvt_run(NULL, first_completed_main, &s), 0);
  cr_assert_eq(s.rc, 0);
  cr_assert_eq(s.ndone, 1);
  cr_assert_eq(s.done[0], 0);
  cr_assert_eq(s.done[1], 1);
  cr_assert_eq(s.done[2], 0);
  cr_assert_eq(s.late[1], 0);
  cr_assert_eq(s.late[0], UVT_ECANCELED);
  cr_assert_eq(s.late[2], UVT_ECANCELED);
}

/* One already done: FIRST_COMPLETED is met at once. */
static int first_already_done_main(void *arg) {
  struct wait_case *s = arg;
  uvt_task_t *t[3];
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(job_run, &s->j[i]);
  while (!uvt_done(t[2])) cr_expect_eq(uvt_yield(), 0);
  s->rc = uvt_wait(t, 3, UVT_FIRST_COMPLETED, 0, &s->ndone);
  for (int i = 0; i < 3; i++) s->done[i] = uvt_done(t[i]);
  for (int i = 0; i < 3; i++) uvt_cancel(t[i]);
  for (int i = 0; i < 3; i++) s->late[i] = uvt_await(t[i]);
  return 0;
}

Test(wait, first_completed_with_one_already_done) {
  struct wait_case s = {{{5000, 0, 0, 0}, {5000, 0, 0, 0}, {0, 0, 0, 0}}, 1, 0, {0}, {0}};
  cr_assert_eq(uvt_run(NULL, first_already_done_main, &s), 0);
  cr_assert_eq(s.rc, 0, "even with timeout 0");
  cr_assert_eq(s.ndone, 1);
  cr_assert_eq(s.done[0], 0);
  cr_assert_eq(s.done[1], 0);
  cr_assert_eq(s.done[2], 1);
  cr_assert_eq(s.late[2], 0);
}

static int all_completed_main(void *arg) {
  struct wait_case *s = arg;
  uvt_task_t *t[3];
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(job_run, &s->j[i]);
  s->rc = uvt_wait(t, 3, UVT_ALL_COMPLETED, -1, &s->ndone);
  for (int i = 0; i < 3; i++) s->done[i] = uvt_done(t[i]);
  for (int i = 0; i < 3; i++) s->late[i] = uvt_await(t[i]);
  return 0;
}

Test(wait, all_completed) {
  struct wait_case s = {{{20, 0, 0, 0}, {10, -4, 0, 0}, {0, 2, 0, 0}}, 1, 0, {0}, {0}};
  cr_assert_eq(uvt_run(NULL, all_completed_main, &s), 0);
  cr_assert_eq(s.rc, 0, "wait reports the condition, not the tasks' errors");
  cr_assert_eq(s.ndone, 3);
  for (int i = 0; i < 3; i++) cr_assert_eq(s.done[i], 1);
  cr_assert_eq(s.late[0], 0);
  cr_assert_eq(s.late[1], -4);
  cr_assert_eq(s.late[2], 2);
}

static int timeout_main(void *arg) {
  struct wait_case *s = arg;
  uvt_task_t *t[3];
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(job_run, &s->j[i]);
  s->rc = uvt_wait(t, 3, UVT_ALL_COMPLETED, 100, &s->ndone);
  for (int i = 0; i < 3; i++) s->done[i] = uvt_done(t[i]);
  for (int i = 0; i < 3; i++) uvt_cancel(t[i]);
  for (int i = 0; i < 3; i++) s->late[i] = uvt_await(t[i]);
  return 0;
}

Test(wait, timeout_with_one_of_three_done) {
  struct wait_case s = {{{5, 0, 0, 0}, {5000, 0, 0, 0}, {5000, 0, 0, 0}}, 1, 0, {0}, {0}};
  cr_assert_eq(uvt_run(NULL, timeout_main, &s), 0);
  cr_assert_eq(s.rc, UVT_ETIMEDOUT);
  cr_assert_eq(s.ndone, 1);
  cr_assert_eq(s.done[0], 1);
  cr_assert_eq(s.done[1], 0);
  cr_assert_eq(s.done[2], 0);
  cr_assert_eq(s.late[0], 0);
  cr_assert_eq(s.late[1], UVT_ECANCELED);
}

/* timeout 0 with nothing done: UVT_ETIMEDOUT at once.  The tasks wait on
 * a future that is set only afterwards, so a wait that blocked would
 * never return. */
struct zero_case {
  int rc_all, rc_first;
  size_t ndone_all, ndone_first;
  int late[2];
};

static int zero_timeout_main(void *arg) {
  struct zero_case *z = arg;
  uvt_future_t *f = uvt_future_new();
  uvt_task_t *t[2];
  /* One reference to the future per awaiting task (each await gives its
   * own up), and main's, given up once it has set it. */
  for (int i = 0; i < 2; i++)
    t[i] = uvt_spawn(await_future_task, uvt_future_ref(f));
  z->ndone_all = z->ndone_first = 99;
  z->rc_all = uvt_wait(t, 2, UVT_ALL_COMPLETED, 0, &z->ndone_all);
  z->rc_first = uvt_wait(t, 2, UVT_FIRST_COMPLETED, 0, &z->ndone_first);
  cr_expect_eq(uvt_future_set_result(f, NULL), 0);
  uvt_future_detach(f);
  for (int i = 0; i < 2; i++) z->late[i] = uvt_await(t[i]);
  return 0;
}

Test(wait, zero_timeout_with_none_done) {
  struct zero_case z;
  memset(&z, 0, sizeof z);
  cr_assert_eq(uvt_run(NULL, zero_timeout_main, &z), 0);
  cr_assert_eq(z.rc_all, UVT_ETIMEDOUT);
  cr_assert_eq(z.ndone_all, 0);
  cr_assert_eq(z.rc_first, UVT_ETIMEDOUT);
  cr_assert_eq(z.ndone_first, 0);
  cr_assert_eq(z.late[0], 0);
  cr_assert_eq(z.late[1], 0);
}

/* A task that failed and was only waited on is still an unread error. */
static int fails_minus_9(void *arg) {
  (void)arg;
  return uvt_fail(-9, "waited, never awaited");
}

static int wait_only_main(void *arg) {
  int *rc = arg;
  uvt_task_t *t = uvt_spawn(fails_minus_9, NULL);
  *rc = uvt_wait(&t, 1, UVT_ALL_COMPLETED, -1, NULL);
  return 0; /* the handle is left to uvt_run */
}

Test(wait, does_not_retrieve_errors) {
  int rc = 1;
  struct outcome o;
  run_captured(wait_only_main, &rc, &o);
  cr_assert_eq(o.status, 0);
  cr_assert_eq(rc, 0);
  cr_assert_eq(count_findings(&o, "unretrieved-error", "fails_minus_9"), 1,
               "stderr was:\n%s", o.stderr_text);
  cr_assert_eq(count_leaked_errors("fails_minus_9"), 1);
  free(o.stderr_text);
}

/* After uvt_wait, awaiting a done task returns its status without
 * yielding, and that retrieves the error. */
struct after_wait {
  int wait_rc;
  int rc;
  int ticks_before, ticks_after;
};

static int after_wait_main(void *arg) {
  struct after_wait *a = arg;
  static int ticks;
  uvt_task_t *t = uvt_spawn(fails_minus_9, NULL);
  uvt_task_t *tick;
  a->wait_rc = uvt_wait(&t, 1, UVT_FIRST_COMPLETED, -1, NULL);
  tick = uvt_spawn(ticker, &ticks);
  a->ticks_before = ticks;
  a->rc = uvt_await(t);
  a->ticks_after = ticks;
  cr_expect_eq(uvt_await(tick), 0);
  return 0;
}

Test(wait, await_after_wait_returns_status_without_yielding) {
  struct after_wait a;
  struct outcome o;
  memset(&a, 0, sizeof a);
  run_captured(after_wait_main, &a, &o);
  cr_assert_eq(o.status, 0);
  cr_assert_eq(a.wait_rc, 0);
  cr_assert_eq(a.rc, -9);
  cr_assert_eq(a.ticks_before, 0);
  cr_assert_eq(a.ticks_after, 0, "uvt_await of a done task yielded");
  assert_all_retrieved(&o);
  free(o.stderr_text);
}

struct bad_args {
  int mode0, timeout_neg, self, null_task;
  size_t ndone;
};

static int bad_args_main(void *arg) {
  struct bad_args *b = arg;
  uvt_task_t *me = uvt_current();
  uvt_task_t *null_task = NULL;
  b->ndone = 99;
  b->mode0 = uvt_wait(&me, 1, 0, -1, &b->ndone);
  b->timeout_neg = uvt_wait(&me, 1, UVT_ALL_COMPLETED, -2, NULL);
  b->self = uvt_wait(&me, 1, UVT_ALL_COMPLETED, -1, NULL);
  b->null_task = uvt_wait(&null_task, 1, UVT_ALL_COMPLETED, -1, NULL);
  return 0;
}

Test(wait, bad_arguments) {
  struct bad_args b;
  memset(&b, 0, sizeof b);
  cr_assert_eq(uvt_wait(NULL, 0, UVT_ALL_COMPLETED, -1, NULL), UVT_ENOTASK);
  cr_assert_eq(uvt_run(NULL, bad_args_main, &b), 0);
  cr_assert_eq(b.mode0, UVT_EINVAL);
  cr_assert_eq(b.ndone, 0);
  cr_assert_eq(b.timeout_neg, UVT_EINVAL);
  cr_assert_eq(b.self, UVT_ESELF);
  cr_assert_eq(b.null_task, UVT_EINVAL);
}

/* ---- wait_for ---------------------------------------------------------------- */

/* Sleeps `ms`; when cancelled, cleans up with an await of its own. */
struct inner {
  int ms;
  int status;
  int sleep_status;
  int cleanup_status;
  int cleaned_up;
};

static int inner_run(void *arg) {
  struct inner *in = arg;
  in->sleep_status = uvt_sleep(in->ms);
  if (in->sleep_status == UVT_ECANCELED) {
    in->cleanup_status = uvt_sleep(5);
    in->cleaned_up = 1;
    return UVT_ECANCELED;
  }
  return in->status;
}

struct wf_case {
  struct inner in;
  int64_t timeout;
  int rc;
  int inner_done_then;
  int cleaned_up_then;
  int late;
};

static int wait_for_main(void *arg) {
  struct wf_case *c = arg;
  uvt_task_t *t = uvt_spawn(inner_run, &c->in);
  (void)!uvt_task_ref(t); /* wait_for gives one up; main reads it after */
  c->rc = uvt_wait_for(t, c->timeout);
  c->inner_done_then = uvt_done(t);
  c->cleaned_up_then = c->in.cleaned_up;
  c->late = uvt_await(t);
  return 0;
}

Test(wait_for, finishes_in_time) {
  struct wf_case c = {{10, -6, 0, 0, 0}, 2000, 1, 0, 0, 0};
  struct outcome o;
  run_captured(wait_for_main, &c, &o);
  cr_assert_eq(o.status, 0);
  cr_assert_eq(c.rc, -6);
  cr_assert_eq(c.in.sleep_status, 0);
  cr_assert_eq(c.inner_done_then, 1);
  cr_assert_eq(c.late, -6);
  assert_all_retrieved(&o);
  free(o.stderr_text);
}

Test(wait_for, finishes_in_time_ok_status) {
  struct wf_case c = {{5, 4, 0, 0, 0}, -1, 1, 0, 0, 0};
  cr_assert_eq(uvt_run(NULL, wait_for_main, &c), 0);
  cr_assert_eq(c.rc, 4);
  cr_assert_eq(c.inner_done_then, 1);
}

Test(wait_for, times_out_after_cancelling_the_task) {
  struct wf_case c = {{10000, 0, 0, 0, 0}, 20, 1, 0, 0, 0};
  cr_assert_eq(uvt_run(NULL, wait_for_main, &c), 0);
  cr_assert_eq(c.rc, UVT_ETIMEDOUT);
  cr_assert_eq(c.in.sleep_status, UVT_ECANCELED, "the inner task was not cancelled");
  cr_assert_eq(c.inner_done_then, 1, "wait_for returned before the task ended");
  cr_assert_eq(c.cleaned_up_then, 1);
  cr_assert_eq(c.in.cleanup_status, 0);
  cr_assert_eq(c.late, UVT_ECANCELED);
}

Test(wait_for, zero_timeout_cancels_a_pending_task) {
  struct wf_case c = {{10000, 0, 0, 0, 0}, 0, 1, 0, 0, 0};
  cr_assert_eq(uvt_run(NULL, wait_for_main, &c), 0);
  cr_assert_eq(c.rc, UVT_ETIMEDOUT);
  cr_assert_eq(c.inner_done_then, 1);
  cr_assert_eq(c.late, UVT_ECANCELED);
}

struct wf_done {
  int rc100, rc0, late;
};

static int fails_minus_4(void *arg) {
  (void)arg;
  return -4;
}

static int wait_for_done_main(void *arg) {
  struct wf_done *d = arg;
  uvt_task_t *t = uvt_spawn(fails_minus_4, NULL);
  while (!uvt_done(t)) cr_expect_eq(uvt_yield(), 0);
  (void)!uvt_task_ref(t); /* three calls, each giving one reference up */
  (void)!uvt_task_ref(t);
  d->rc100 = uvt_wait_for(t, 100);
  d->rc0 = uvt_wait_for(t, 0);
  d->late = uvt_await(t);
  return 0;
}

Test(wait_for, already_done_task) {
  struct wf_done d = {1, 1, 1};
  struct outcome o;
  run_captured(wait_for_done_main, &d, &o);
  cr_assert_eq(o.status, 0);
  cr_assert_eq(d.rc100, -4);
  cr_assert_eq(d.rc0, -4);
  cr_assert_eq(d.late, -4);
  assert_all_retrieved(&o);
  free(o.stderr_text);
}

/* The task calling wait_for is cancelled: it gets UVT_ECANCELED and the
 * inner task is cancelled (and finished) too. */
struct wf_outer {
  struct inner in;
  uvt_task_t *inner_task;
  int rc;
  int inner_done_then;
  int outer_rc;
};

static int outer_run(void *arg) {
  struct wf_outer *c = arg;
  c->inner_task = uvt_spawn(inner_run, &c->in);
  (void)!uvt_task_ref(c->inner_task); /* read after wait_for */
  c->rc = uvt_wait_for(c->inner_task, 10000);
  c->inner_done_then = uvt_done(c->inner_task);
  uvt_detach(c->inner_task);
  return c->rc;
}

static int wf_cancel_main(void *arg) {
  struct wf_outer *c = arg;
  uvt_task_t *outer = uvt_spawn(outer_run, c);
  cr_expect_eq(uvt_sleep(10), 0);
  cr_expect_eq(uvt_cancel(outer), 1);
  c->outer_rc = uvt_await(outer);
  return 0;
}

Test(wait_for, caller_cancelled) {
  struct wf_outer c;
  memset(&c, 0, sizeof c);
  c.in.ms = 10000;
  cr_assert_eq(uvt_run(NULL, wf_cancel_main, &c), 0);
  cr_assert_eq(c.rc, UVT_ECANCELED);
  cr_assert_eq(c.in.sleep_status, UVT_ECANCELED, "the inner task was not cancelled");
  cr_assert_eq(c.inner_done_then, 1);
  cr_assert_eq(c.in.cleaned_up, 1);
  cr_assert_eq(c.outer_rc, UVT_ECANCELED);
}

/* ---- asyncio's rules --------------------------------------------------------- */

/* asyncio.wait(FIRST_EXCEPTION): returns when a task fails (not merely
 * ends), or when all are done. */
struct first_exc {
  struct job j[3];
  int rc;
  size_t ndone;
  int done[3];
  int rc_all_ok;
  size_t ndone_all_ok;
};

static int first_exception_main(void *arg) {
  struct first_exc *s = arg;
  uvt_task_t *t[3], *ok[2];
  long count = 0;
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(job_run, &s->j[i]);
  s->rc = uvt_wait(t, 3, UVT_FIRST_EXCEPTION, -1, &s->ndone);
  for (int i = 0; i < 3; i++) s->done[i] = uvt_done(t[i]);
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect_eq(uvt_gather(t, 3), -5);
  for (int i = 0; i < 3; i++) uvt_detach(t[i]);
  /* None fails: it waits for all. */
  for (int i = 0; i < 2; i++) ok[i] = uvt_spawn(trivial, &count);
  s->rc_all_ok = uvt_wait(ok, 2, UVT_FIRST_EXCEPTION, -1, &s->ndone_all_ok);
  for (int i = 0; i < 2; i++) uvt_detach(ok[i]);
  return 0;
}

Test(wait, first_exception_returns_at_the_first_failure) {
  /* Task 1 ends well at once, task 2 fails after 10 ms, task 0 sleeps. */
  struct first_exc s = {{{10000, 0, 0, 0}, {0, 0, 0, 0}, {10, -5, 0, 0}}, 1, 0, {0}, 1, 0};
  cr_assert_eq(uvt_run(NULL, first_exception_main, &s), 0);
  cr_assert_eq(s.rc, 0);
  cr_assert_eq(s.ndone, 2);
  cr_assert_eq(s.done[0], 0, "waited for the sleeper");
  cr_assert_eq(s.done[1], 1);
  cr_assert_eq(s.done[2], 1);
  cr_assert_eq(s.rc_all_ok, 0);
  cr_assert_eq(s.ndone_all_ok, 2);
}

/* asyncio.wait([]) raises ValueError: uvt_wait on no task is UVT_EINVAL
 * (before, it returned 0 at once). */
static int wait_none_main(void *arg) {
  int *rc = arg;
  size_t nd = 7;
  rc[0] = uvt_wait(NULL, 0, UVT_ALL_COMPLETED, -1, &nd);
  rc[1] = uvt_wait(NULL, 0, UVT_FIRST_COMPLETED, 10, NULL);
  rc[2] = (int)nd;
  return 0;
}

Test(wait, on_no_task_is_einval) {
  int rc[3] = {1, 1, 1};
  cr_assert_eq(uvt_run(NULL, wait_none_main, rc), 0);
  cr_assert_eq(rc[0], UVT_EINVAL);
  cr_assert_eq(rc[1], UVT_EINVAL);
  cr_assert_eq(rc[2], 0);
}

/* CPython test_waitfor test_wait_for_reraises_exception_during_cancellation
 * and test_wait_for_cancellation_race_condition: the inner task, cancelled
 * at the timeout, ends with an outcome of its own (an error, or a value)
 * instead of a cancellation; wait_for returns that outcome.  (Before, it
 * returned UVT_ETIMEDOUT and hid it.) */
static int outcome_despite_cancel(void *arg) {
  int own = *(int *)arg;
  int st = uvt_sleep(10000);
  cr_expect_eq(st, UVT_ECANCELED);
  if (own > 0) uvt_set_result(arg);
  return own;
}

struct wf_own {
  int err_code, ok_code;
  int rc_err, rc_ok;
  void *result;
  char *msg;
};

static int wf_own_main(void *arg) {
  struct wf_own *w = arg;
  w->rc_err = uvt_wait_for(uvt_spawn(outcome_despite_cancel, &w->err_code), 10);
  w->rc_ok = uvt_wait_for_result(uvt_spawn(outcome_despite_cancel, &w->ok_code),
                                 10, &w->result, &w->msg);
  return 0;
}

Test(wait_for, returns_the_inner_outcome_when_it_ends_on_its_own) {
  struct wf_own w = {-9, 3, 0, 0, NULL, NULL};
  struct outcome o;
  run_captured(wf_own_main, &w, &o);
  cr_assert_eq(o.status, 0);
  cr_assert_eq(w.rc_err, -9, "got %d", w.rc_err);
  cr_assert_eq(w.rc_ok, 3, "got %d", w.rc_ok);
  cr_assert_eq(w.result, &w.ok_code);
  cr_assert_null(w.msg);
  /* The error it returned was read: no finding. */
  assert_all_retrieved(&o);
  free(o.stderr_text);
}

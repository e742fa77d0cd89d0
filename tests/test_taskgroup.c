/*
 * Task groups (uvt_group_*), ported from CPython 3.11's
 * Lib/test/test_asyncio/test_taskgroups.py (each case names its origin)
 * plus uvtask's own rules (borrowed handles, leave misuse, a group left
 * open when its owner ends).
 *
 * Where asyncio's tests sleep a little to order events, these yield or
 * wait on an event; sleeps of NEVER_MS are the ones that must be cut
 * short by a cancel.  Inside tasks only cr_expect; cr_assert after
 * uvt_run returns.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "uvtask.h"
#include "uvtask/testing.h"

#define NEVER_MS 10000
#define BOOM UV_EIO   /* a child's own error (ZeroDivisionError) */
#define MYEXC UV_EPIPE /* another error */

static void run(uvt_fn fn, void *ctx) {
  cr_assert_eq(uvt_run(NULL, fn, ctx), 0);
  UVT_ASSERT_NO_LEAKS();
}

/* ---- children ------------------------------------------------------------ */

static int answer_42(void *arg) {
  (void)arg;
  cr_expect_eq(uvt_yield(), 0);
  uvt_set_result((void *)42);
  return 0;
}

static int answer_11(void *arg) {
  (void)arg;
  cr_expect_eq(uvt_sleep(1), 0);
  uvt_set_result((void *)11);
  return 0;
}

static int crash_soon(void *arg) {
  (void)arg;
  if (uvt_yield() != 0) return UVT_ECANCELED;
  return uvt_fail(BOOM, "division by zero");
}

/* Sleeps "forever"; counts how often it was cancelled. */
static int sleep_counting(void *arg) {
  int *ncancel = arg;
  int st = uvt_sleep(NEVER_MS);
  if (st == UVT_ECANCELED) ++*ncancel;
  return st;
}

/* Sleeps "forever" and fails in its clean-up (`finally: 1 / 0`). */
static int crash_in_cleanup(void *arg) {
  (void)arg;
  (void)uvt_sleep(NEVER_MS);
  return uvt_fail(BOOM, "division by zero in finally");
}

/* Await a handle the test took a reference to, for its status. */
static int status_of(uvt_task_t *t) { return uvt_await(t); }

/* ---- test_taskgroup_01 / 02: results of children ------------------------- */

struct two { int leave; int s1, s2; void *r1, *r2; };

static int tg01_main(void *arg) {
  struct two *c = arg;
  uvt_group_t g;
  uvt_task_t *t1, *t2;
  cr_expect_eq(uvt_group_init(&g), 0);
  t1 = uvt_task_ref(uvt_group_spawn(&g, answer_42, NULL));
  cr_expect_eq(uvt_yield(), 0); /* 02: a child spawned after an await */
  t2 = uvt_task_ref(uvt_group_spawn(&g, answer_11, NULL));
  c->leave = uvt_group_leave(&g, 0);
  uvt_group_destroy(&g);
  c->s1 = uvt_await_result(t1, &c->r1, NULL);
  c->s2 = uvt_await_result(t2, &c->r2, NULL);
  return 0;
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_01 (and _02): leaving
 * waits for both children; t1.result() == 42, t2.result() == 11. */
Test(taskgroup, leave_waits_for_children_results) {
  struct two c;
  memset(&c, 0, sizeof c);
  run(tg01_main, &c);
  cr_assert_eq(c.leave, 0);
  cr_assert_eq(c.s1, 0);
  cr_assert_eq(c.s2, 0);
  cr_assert_eq(c.r1, (void *)42);
  cr_assert_eq(c.r2, (void *)11);
}

/* ---- test_taskgroup_03: a child cancelled explicitly --------------------- */

static int tg03_main(void *arg) {
  struct two *c = arg;
  uvt_group_t g;
  int n = 0;
  uvt_task_t *t1, *t2;
  cr_expect_eq(uvt_group_init(&g), 0);
  t1 = uvt_task_ref(uvt_group_spawn(&g, sleep_counting, &n));
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(t1), 1);
  t2 = uvt_task_ref(uvt_group_spawn(&g, answer_11, NULL));
  c->leave = uvt_group_leave(&g, 0);
  uvt_group_destroy(&g);
  c->s1 = status_of(t1);
  c->s2 = uvt_await_result(t2, &c->r2, NULL);
  return 0;
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_03: cancelling one
 * child is not a failure: t1.cancelled(), t2.result() == 11, no error. */
Test(taskgroup, cancelled_child_is_not_a_failure) {
  struct two c;
  memset(&c, 0, sizeof c);
  run(tg03_main, &c);
  cr_assert_eq(c.leave, 0);
  cr_assert_eq(c.s1, UVT_ECANCELED);
  cr_assert_eq(c.s2, 0);
  cr_assert_eq(c.r2, (void *)11);
}

/* ---- test_cancel_children_on_child_error (and _04) ----------------------- */

struct onerr {
  int ncancel, leave, body, nerrors, err0, sibling, runner_rc, after;
  const char *msg0;
  int cancelling_after;
};

static int onerr_runner(void *arg) {
  struct onerr *c = arg;
  uvt_group_t g;
  uvt_task_t *sib, *failed = NULL;
  cr_expect_eq(uvt_group_init(&g), 0);
  uvt_group_spawn(&g, crash_soon, NULL);
  uvt_group_spawn(&g, crash_soon, NULL);
  uvt_group_spawn(&g, crash_soon, NULL);
  sib = uvt_task_ref(uvt_group_spawn(&g, sleep_counting, &c->ncancel));
  c->body = uvt_sleep(NEVER_MS); /* cut short: runner_cancel */
  c->leave = uvt_group_leave(&g, c->body);
  c->nerrors = (int)uvt_group_nerrors(&g);
  c->err0 = uvt_group_error(&g, 0, &failed);
  c->msg0 = failed != NULL ? strdup(uvt_error_message(failed)) : NULL;
  c->cancelling_after = uvt_cancelling(NULL);
  uvt_group_destroy(&g);
  c->sibling = status_of(sib);
  if (c->leave != 0) return c->leave;
  c->after = 1; /* NUM += 10 must not run */
  return 0;
}

static int onerr_main(void *arg) {
  struct onerr *c = arg;
  c->runner_rc = uvt_await(uvt_spawn(onerr_runner, c));
  return 0;
}

/* test_taskgroups.py::TestTaskGroup::test_cancel_children_on_child_error:
 * the first failure cancels the sibling (t2_cancel) and the body's await
 * (runner_cancel); leaving raises the child's error, NUM stays 0. */
Test(taskgroup, child_error_cancels_siblings_and_body) {
  struct onerr c;
  memset(&c, 0, sizeof c);
  run(onerr_main, &c);
  cr_assert_eq(c.body, UVT_ECANCELED, "the body's await was not cancelled");
  cr_assert_eq(c.ncancel, 1, "the sibling was not cancelled");
  cr_assert_eq(c.sibling, UVT_ECANCELED);
  cr_assert_eq(c.leave, BOOM);
  cr_assert_eq(c.runner_rc, BOOM);
  cr_assert_eq(c.after, 0);
  /* Every error stays retrievable; as in asyncio the other crashers may
   * or may not have been cancelled before failing. */
  cr_assert_geq(c.nerrors, 1);
  cr_assert_eq(c.err0, BOOM);
  cr_assert_str_eq(c.msg0, "division by zero");
  free((void *)c.msg0);
  /* The group took its cancel of the owner back (cancelling() == 0). */
  cr_assert_eq(c.cancelling_after, 0);
}

/* ---- test_cancellation / test_taskgroup_07 / _22 -------------------------- */

struct outer_cancel {
  int ncancel, body, leave, runner_rc, in_body;
  bool body_awaits;
};

static int oc_runner(void *arg) {
  struct outer_cancel *c = arg;
  uvt_group_t g;
  int i, body = 0;
  cr_expect_eq(uvt_group_init(&g), 0);
  for (i = 0; i < 5; i++) uvt_group_spawn(&g, sleep_counting, &c->ncancel);
  if (c->body_awaits) {
    body = uvt_sleep(NEVER_MS);
    if (body == UVT_ECANCELED) c->in_body = 10; /* NUM += 10 */
  }
  c->body = body;
  c->leave = uvt_group_leave(&g, body);
  uvt_group_destroy(&g);
  return c->leave;
}

static int oc_main(void *arg) {
  struct outer_cancel *c = arg;
  uvt_task_t *r = uvt_spawn(oc_runner, c);
  int i;
  for (i = 0; i < 4; i++) cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_done(r), false);
  cr_expect_eq(uvt_cancel(r), 1);
  c->runner_rc = uvt_await(r);
  return 0;
}

/* test_taskgroups.py::TestTaskGroup::test_cancellation (and _22): the
 * owner cancelled while leaving cancels all 5 children, waits for them,
 * and the cancellation propagates. */
Test(taskgroup, cancel_while_leaving_cancels_children) {
  struct outer_cancel c;
  memset(&c, 0, sizeof c);
  run(oc_main, &c);
  cr_assert_eq(c.ncancel, 5);
  cr_assert_eq(c.leave, UVT_ECANCELED);
  cr_assert_eq(c.runner_rc, UVT_ECANCELED);
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_07: cancelled in the
 * body: NUM == 15 (10 from the body, 1 per child), CancelledError. */
Test(taskgroup, cancel_in_body_cancels_children) {
  struct outer_cancel c;
  memset(&c, 0, sizeof c);
  c.body_awaits = true;
  run(oc_main, &c);
  cr_assert_eq(c.in_body + c.ncancel, 15);
  cr_assert_eq(c.leave, UVT_ECANCELED);
  cr_assert_eq(c.runner_rc, UVT_ECANCELED);
}

/* ---- test_taskgroup_08: errors take priority over the cancellation ------- */

struct prio { int leave, runner_rc, nerrors; bool nested; };

static int prio_runner(void *arg) {
  struct prio *c = arg;
  uvt_group_t g1, g2;
  int i, st, n = 0;
  if (c->nested) {
    cr_expect_eq(uvt_group_init(&g1), 0);
    uvt_group_spawn(&g1, sleep_counting, &n);
  }
  cr_expect_eq(uvt_group_init(&g2), 0);
  for (i = 0; i < 5; i++) uvt_group_spawn(&g2, crash_in_cleanup, NULL);
  st = uvt_sleep(NEVER_MS);
  st = uvt_group_leave(&g2, st);
  c->nerrors = (int)uvt_group_nerrors(&g2);
  uvt_group_destroy(&g2);
  if (c->nested) {
    st = uvt_group_leave(&g1, st);
    uvt_group_destroy(&g1);
  }
  c->leave = st;
  return st;
}

static int prio_main(void *arg) {
  struct prio *c = arg;
  uvt_task_t *r = uvt_spawn(prio_runner, c);
  int i;
  for (i = 0; i < 4; i++) cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(r), 1);
  c->runner_rc = uvt_await(r);
  return 0;
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_08: children that fail
 * while being cancelled: the group raises their errors, not
 * CancelledError; all five are kept. */
Test(taskgroup, errors_beat_cancellation) {
  struct prio c;
  memset(&c, 0, sizeof c);
  run(prio_main, &c);
  cr_assert_eq(c.leave, BOOM);
  cr_assert_eq(c.runner_rc, BOOM);
  cr_assert_eq(c.nerrors, 5);
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_12: the same inside
 * an outer group with a sleeping child: the error comes out of both. */
Test(taskgroup, nested_errors_beat_cancellation) {
  struct prio c;
  memset(&c, 0, sizeof c);
  c.nested = true;
  run(prio_main, &c);
  cr_assert_eq(c.leave, BOOM);
  cr_assert_eq(c.runner_rc, BOOM);
  cr_assert_eq(c.nerrors, 5);
}

/* ---- test_taskgroup_09 / 10: an error in the body ------------------------- */

struct body_err { int leave, s1, s2; bool await_first; };

static int body_err_main(void *arg) {
  struct body_err *c = arg;
  uvt_group_t g;
  uvt_task_t *t1, *t2;
  int n = 0;
  cr_expect_eq(uvt_group_init(&g), 0);
  t1 = uvt_task_ref(uvt_group_spawn(&g, sleep_counting, &n));
  t2 = uvt_task_ref(uvt_group_spawn(&g, sleep_counting, &n));
  if (c->await_first) cr_expect_eq(uvt_yield(), 0);
  c->leave = uvt_group_leave(&g, MYEXC); /* 1 / 0 in the body */
  uvt_group_destroy(&g);
  c->s1 = status_of(t1);
  c->s2 = status_of(t2);
  return 0;
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_09: an error in the
 * body after an await cancels both children and is raised. */
Test(taskgroup, body_error_after_await_cancels_children) {
  struct body_err c = {.await_first = true};
  run(body_err_main, &c);
  cr_assert_eq(c.leave, MYEXC);
  cr_assert_eq(c.s1, UVT_ECANCELED);
  cr_assert_eq(c.s2, UVT_ECANCELED);
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_10: the same before
 * the children ever ran: they end cancelled. */
Test(taskgroup, body_error_before_children_ran) {
  struct body_err c = {.await_first = false};
  run(body_err_main, &c);
  cr_assert_eq(c.leave, MYEXC);
  cr_assert_eq(c.s1, UVT_ECANCELED);
  cr_assert_eq(c.s2, UVT_ECANCELED);
}

/* ---- test_taskgroup_13 / 14: nested groups ------------------------------- */

struct nest { int inner, outer; bool outer_crashes; };

static int nest_main(void *arg) {
  struct nest *c = arg;
  uvt_group_t g1, g2;
  int n = 0;
  cr_expect_eq(uvt_group_init(&g1), 0);
  uvt_group_spawn(&g1, c->outer_crashes ? crash_soon : sleep_counting, &n);
  cr_expect_eq(uvt_group_init(&g2), 0);
  uvt_group_spawn(&g2, c->outer_crashes ? sleep_counting : crash_soon, &n);
  c->inner = uvt_group_leave(&g2, 0);
  uvt_group_destroy(&g2);
  c->outer = uvt_group_leave(&g1, c->inner);
  uvt_group_destroy(&g1);
  return 0;
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_13: the outer group's
 * child crashes while the owner waits in the inner group: the inner
 * group is cancelled (its child too) and the outer raises the error. */
Test(taskgroup, outer_child_crash_cancels_inner_group) {
  struct nest c = {.outer_crashes = true};
  run(nest_main, &c);
  cr_assert_eq(c.inner, UVT_ECANCELED);
  cr_assert_eq(c.outer, BOOM);
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_14: the inner child
 * crashes: the inner group raises, the outer cancels its own child and
 * raises it too. */
Test(taskgroup, inner_child_crash_propagates_out) {
  struct nest c = {.outer_crashes = false};
  run(nest_main, &c);
  cr_assert_eq(c.inner, BOOM);
  cr_assert_eq(c.outer, BOOM);
}

/* ---- test_taskgroup_15: crash during the owner's own cancel clean-up ------ */

struct tg15 { int body, cleanup, leave; };

static int crash_after_sleep(void *arg) {
  (void)arg;
  if (uvt_sleep(20) != 0) return UVT_ECANCELED;
  return uvt_fail(BOOM, "late");
}

static int tg15_runner(void *arg) {
  struct tg15 *c = arg;
  uvt_group_t g;
  cr_expect_eq(uvt_group_init(&g), 0);
  uvt_group_spawn(&g, crash_after_sleep, NULL);
  c->body = uvt_sleep(NEVER_MS);
  /* The clean-up awaits; the child crashes meanwhile and cancels it. */
  c->cleanup = uvt_sleep(NEVER_MS);
  c->leave = uvt_group_leave(&g, c->body);
  uvt_group_destroy(&g);
  return c->leave;
}

static int tg15_main(void *arg) {
  struct tg15 *c = arg;
  uvt_task_t *r = uvt_spawn(tg15_runner, c);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(r), 1);
  (void)uvt_await(r);
  return 0;
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_15: the owner,
 * cancelled from outside, cleans up; a child crashes meanwhile: the
 * ExceptionGroup (the child's error) wins over the CancelledError. */
Test(taskgroup, crash_during_owner_cleanup_wins) {
  struct tg15 c;
  memset(&c, 0, sizeof c);
  run(tg15_main, &c);
  cr_assert_eq(c.body, UVT_ECANCELED);
  cr_assert_eq(c.cleanup, UVT_ECANCELED, "the crash did not cancel the owner");
  cr_assert_eq(c.leave, BOOM);
}

/* ---- test_taskgroup_17 / 18: cancelled with no children ------------------- */

struct tg17 { int leave; int num; int body_error; };

static int tg17_runner(void *arg) {
  struct tg17 *c = arg;
  uvt_group_t g;
  int st;
  cr_expect_eq(uvt_group_init(&g), 0);
  st = uvt_sleep(NEVER_MS);
  if (st == UVT_ECANCELED) {
    c->num += 10;
    if (c->body_error) st = c->body_error; /* raise MyExc */
  }
  c->leave = uvt_group_leave(&g, st);
  uvt_group_destroy(&g);
  return c->leave;
}

static int tg17_main(void *arg) {
  uvt_task_t *r = uvt_spawn(tg17_runner, arg);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(r), 1);
  (void)uvt_await(r);
  return 0;
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_17: NUM == 10 and the
 * CancelledError passes through an empty group. */
Test(taskgroup, empty_group_passes_cancel_on) {
  struct tg17 c = {0};
  run(tg17_main, &c);
  cr_assert_eq(c.num, 10);
  cr_assert_eq(c.leave, UVT_ECANCELED);
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_18: the body turns the
 * cancel into its own error: that error comes out. */
Test(taskgroup, body_replacing_cancel_with_error) {
  struct tg17 c = {.body_error = MYEXC};
  run(tg17_main, &c);
  cr_assert_eq(c.num, 10);
  cr_assert_eq(c.leave, MYEXC);
}

/* ---- test_taskgroup_no_create_task_after_failure -------------------------- */

struct nospawn { uvt_task_t *late; int leave; };

static int nospawn_main(void *arg) {
  struct nospawn *c = arg;
  uvt_group_t g;
  int st;
  cr_expect_eq(uvt_group_init(&g), 0);
  uvt_group_spawn(&g, crash_soon, NULL);
  st = uvt_sleep(NEVER_MS);
  cr_expect_eq(st, UVT_ECANCELED);
  c->late = uvt_group_spawn(&g, answer_42, NULL);
  c->leave = uvt_group_leave(&g, st);
  uvt_group_destroy(&g);
  return 0;
}

/* test_taskgroups.py::TestTaskGroup::test_taskgroup_no_create_task_after_failure:
 * once a child failed the group refuses new children (RuntimeError). */
Test(taskgroup, no_spawn_after_failure) {
  struct nospawn c;
  memset(&c, 0, sizeof c);
  run(nospawn_main, &c);
  cr_assert_null(c.late);
  cr_assert_eq(c.leave, BOOM);
}

/* ---- uvtask's own rules --------------------------------------------------- */

struct misuse { int leave_other, leave_twice, leave_order; uvt_task_t *after; };

static int other_leaves(void *arg) {
  return uvt_group_leave((uvt_group_t *)arg, 0);
}

static int misuse_main(void *arg) {
  struct misuse *c = arg;
  uvt_group_t g1, g2;
  cr_expect_eq(uvt_group_init(&g1), 0);
  cr_expect_eq(uvt_group_init(&g2), 0);
  c->leave_other = uvt_await(uvt_spawn(other_leaves, &g2));
  c->leave_order = uvt_group_leave(&g1, 0); /* g2 is innermost */
  cr_expect_eq(uvt_group_leave(&g2, 0), 0);
  cr_expect_eq(uvt_group_leave(&g1, 0), 0);
  c->leave_twice = uvt_group_leave(&g1, 0);
  c->after = uvt_group_spawn(&g1, answer_42, NULL);
  uvt_group_destroy(&g2);
  uvt_group_destroy(&g1);
  return 0;
}

/* Leaving from another task, out of order, or twice is refused; a group
 * that was left takes no children ("TaskGroup is finished"). */
Test(taskgroup, leave_misuse_is_refused) {
  struct misuse c;
  memset(&c, 0, sizeof c);
  run(misuse_main, &c);
  cr_assert_eq(c.leave_other, UVT_EINVAL);
  cr_assert_eq(c.leave_order, UVT_EINVAL);
  cr_assert_eq(c.leave_twice, UVT_EINVAL);
  cr_assert_null(c.after);
}

struct orphan { int ncancel; uvt_task_t *child; int child_rc; };

static int forgets_to_leave(void *arg) {
  struct orphan *c = arg;
  uvt_group_t g;
  cr_expect_eq(uvt_group_init(&g), 0);
  c->child = uvt_task_ref(uvt_group_spawn(&g, sleep_counting, &c->ncancel));
  cr_expect_eq(uvt_yield(), 0); /* the child starts sleeping */
  return 0; /* a bug: the group's memory goes with this frame */
}

static int orphan_main(void *arg) {
  struct orphan *c = arg;
  cr_expect_eq(uvt_await(uvt_spawn(forgets_to_leave, c)), 0);
  c->child_rc = uvt_await(c->child);
  return 0;
}

/* A child cannot outlive its group's memory: when the owner ends without
 * leaving, the children are cancelled and nothing points into its stack
 * any more (ASan would see a use after return otherwise). */
Test(taskgroup, owner_ending_inside_group_cancels_children) {
  struct orphan c;
  memset(&c, 0, sizeof c);
  run(orphan_main, &c);
  cr_assert_eq(c.ncancel, 1);
  cr_assert_eq(c.child_rc, UVT_ECANCELED);
}

/* A long-lived group keeps only what it must: children that succeeded
 * are freed as they end (the group does not grow with them). */
static int many_main(void *arg) {
  uvt_group_t g;
  int i, *rc = arg;
  cr_expect_eq(uvt_group_init(&g), 0);
  for (i = 0; i < 1000; i++) {
    uvt_group_spawn(&g, answer_42, NULL);
    if (i % 100 == 99) cr_expect_eq(uvt_sleep(0), 0);
  }
  *rc = uvt_group_leave(&g, 0);
  uvt_group_destroy(&g);
  return 0;
}

Test(taskgroup, thousand_children_leave_nothing_behind) {
  int rc = -1;
  run(many_main, &rc);
  cr_assert_eq(rc, 0);
}

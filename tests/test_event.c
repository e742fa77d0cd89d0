/*
 * uvt_event_t: set wakes every waiter, a set event does not block, clear,
 * cancellation, destroy, misuse.
 *
 * Checks inside task bodies use cr_expect (a failed cr_assert would
 * longjmp off the task's stack); cr_assert only after uvt_run returns.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "uvtask.h"

#define NWAIT 4

TestSuite(event, .timeout = 20);

static void settle(void) {
  for (int i = 0; i < 4; i++) cr_expect_eq(uvt_yield(), 0);
}

static int ticker(void *arg) {
  (*(int *)arg)++;
  return 0;
}

struct ev {
  uvt_event_t ev;
  int started, woken;
  int status[NWAIT];
  int idx[NWAIT];
};

static struct ev *ev_state;

static int waiter(void *arg) {
  int i = *(int *)arg;
  struct ev *s = ev_state;
  s->started++;
  s->status[i] = uvt_event_wait(&s->ev);
  s->woken++;
  return s->status[i] < 0 ? s->status[i] : 0;
}

static void spawn_waiters(struct ev *s, uvt_task_t **t, int n) {
  ev_state = s;
  for (int i = 0; i < n; i++) {
    s->idx[i] = i;
    s->status[i] = 1;
    t[i] = uvt_spawn(waiter, &s->idx[i]);
  }
  settle();
}

/* ---- set wakes all ------------------------------------------------------- */

static int wake_all_main(void *arg) {
  struct ev *s = arg;
  uvt_task_t *t[NWAIT];
  cr_expect_eq(uvt_event_init(&s->ev), 0);
  spawn_waiters(s, t, NWAIT);
  cr_expect_eq(s->started, NWAIT);
  cr_expect_eq(s->woken, 0, "a waiter returned before set");
  uvt_event_set(&s->ev);
  cr_expect(uvt_event_is_set(&s->ev));
  cr_expect_eq(s->woken, 0, "set yielded");
  cr_expect_eq(uvt_gather(t, NWAIT), 0);
  cr_expect(uvt_event_is_set(&s->ev), "the event stays set");
  uvt_event_set(&s->ev); /* again: no effect */
  cr_expect(uvt_event_is_set(&s->ev));
  uvt_event_destroy(&s->ev);
  return 0;
}

Test(event, set_wakes_all_waiters) {
  struct ev s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, wake_all_main, &s), 0);
  cr_assert_eq(s.woken, NWAIT);
  for (int i = 0; i < NWAIT; i++) cr_assert_eq(s.status[i], 0, "waiter %d", i);
}

/* ---- a set event does not block ------------------------------------------ */

static int set_no_yield_main(void *arg) {
  int *ran = arg;
  uvt_event_t e;
  uvt_task_t *t;
  cr_expect_eq(uvt_event_init(&e), 0);
  cr_expect_not(uvt_event_is_set(&e));
  uvt_event_set(&e);
  t = uvt_spawn(ticker, ran);
  cr_expect_eq(uvt_event_wait(&e), 0);
  cr_expect_eq(uvt_event_wait(&e), 0);
  cr_expect_eq(*ran, 0, "wait on a set event yielded");
  cr_expect_eq(uvt_await(t), 0);
  uvt_event_destroy(&e);
  return 0;
}

Test(event, wait_on_set_event_does_not_yield) {
  int ran = 0;
  cr_assert_eq(uvt_run(NULL, set_no_yield_main, &ran), 0);
  cr_assert_eq(ran, 1);
}

/* ---- clear --------------------------------------------------------------- */

static int clear_main(void *arg) {
  struct ev *s = arg;
  uvt_task_t *t[2];
  cr_expect_eq(uvt_event_init(&s->ev), 0);
  uvt_event_set(&s->ev);
  uvt_event_clear(&s->ev);
  cr_expect_not(uvt_event_is_set(&s->ev));
  /* After clear, waiters block again. */
  spawn_waiters(s, t, 1);
  cr_expect_eq(s->woken, 0);
  uvt_event_set(&s->ev);
  cr_expect_eq(uvt_await(t[0]), 0);
  cr_expect_eq(s->status[0], 0);
  /* A waiter woken by set keeps its wake-up even if the event is cleared
   * again before it runs (asyncio agrees). */
  uvt_event_clear(&s->ev);
  s->woken = 0;
  spawn_waiters(s, t, 2);
  uvt_event_set(&s->ev);
  uvt_event_clear(&s->ev);
  cr_expect_eq(uvt_gather(t, 2), 0);
  cr_expect_eq(s->woken, 2);
  cr_expect_not(uvt_event_is_set(&s->ev));
  uvt_event_destroy(&s->ev);
  return 0;
}

Test(event, clear_resets) {
  struct ev s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, clear_main, &s), 0);
  cr_assert_eq(s.status[0], 0);
  cr_assert_eq(s.status[1], 0);
}

/* ---- cancellation -------------------------------------------------------- */

static int cancel_main(void *arg) {
  struct ev *s = arg;
  uvt_task_t *t[3];
  cr_expect_eq(uvt_event_init(&s->ev), 0);
  spawn_waiters(s, t, 3);
  /* Cancel one, and set before it has run again: it still sees the
   * cancel, the others the event. */
  cr_expect_eq(uvt_cancel(t[1]), 1);
  uvt_event_set(&s->ev);
  cr_expect_eq(uvt_await(t[1]), UVT_ECANCELED);
  cr_expect_eq(s->status[1], UVT_ECANCELED);
  cr_expect_eq(uvt_await(t[0]), 0);
  cr_expect_eq(uvt_await(t[2]), 0);
  uvt_event_destroy(&s->ev);
  return 0;
}

Test(event, cancel_parked_waiter) {
  struct ev s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, cancel_main, &s), 0);
  cr_assert_eq(s.status[0], 0);
  cr_assert_eq(s.status[1], UVT_ECANCELED);
  cr_assert_eq(s.status[2], 0);
  cr_assert_eq(s.woken, 3);
}

static int set_then_cancel_main(void *arg) {
  struct ev *s = arg;
  uvt_task_t *t[1];
  cr_expect_eq(uvt_event_init(&s->ev), 0);
  spawn_waiters(s, t, 1);
  /* Woken by set, cancelled before it runs: the cancel wins, as asyncio's
   * does (the event stays set for everyone else). */
  uvt_event_set(&s->ev);
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect_eq(uvt_await(t[0]), UVT_ECANCELED);
  cr_expect(uvt_event_is_set(&s->ev));
  uvt_event_destroy(&s->ev);
  return 0;
}

Test(event, cancel_after_set_wins) {
  struct ev s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, set_then_cancel_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECANCELED);
}

/* ---- destroy and misuse -------------------------------------------------- */

static int destroy_main(void *arg) {
  struct ev *s = arg;
  uvt_task_t *t[2];
  cr_expect_eq(uvt_event_init(&s->ev), 0);
  spawn_waiters(s, t, 2);
  uvt_event_destroy(&s->ev);
  cr_expect_eq(uvt_await(t[0]), UVT_ECLOSED);
  cr_expect_eq(uvt_await(t[1]), UVT_ECLOSED);
  return 0;
}

Test(event, destroy_wakes_waiters_with_eclosed) {
  struct ev s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, destroy_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECLOSED);
  cr_assert_eq(s.status[1], UVT_ECLOSED);
}

Test(event, outside_a_task) {
  uvt_event_t e;
  cr_assert_eq(uvt_event_init(&e), 0);
  cr_assert_eq(uvt_event_wait(&e), UVT_ENOTASK);
  uvt_event_set(&e); /* set and clear need no task */
  cr_assert(uvt_event_is_set(&e));
  uvt_event_clear(&e);
  cr_assert_not(uvt_event_is_set(&e));
  uvt_event_destroy(&e);
}

Test(event, invalid_objects) {
  uvt_event_t e;
  memset(&e, 0, sizeof e);
  cr_assert_eq(uvt_event_init(NULL), UVT_EINVAL);
  cr_assert_eq(uvt_event_wait(NULL), UVT_EINVAL);
  cr_assert_not(uvt_event_is_set(NULL));
  uvt_event_set(NULL);
  uvt_event_clear(NULL);
  uvt_event_destroy(NULL);
  cr_assert_eq(uvt_event_wait(&e), UVT_EINVAL);
  uvt_event_set(&e);
  cr_assert_not(uvt_event_is_set(&e));
  cr_assert_eq(uvt_event_init(&e), 0);
  uvt_event_set(&e);
  uvt_event_destroy(&e);
  cr_assert_not(uvt_event_is_set(&e));
  cr_assert_eq(uvt_event_wait(&e), UVT_EINVAL);
  uvt_event_destroy(&e);
}

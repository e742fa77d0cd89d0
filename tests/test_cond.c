/*
 * asyncio.Condition (uvt_cond_t): wait releases the lock and takes it
 * back, notify wakes n waiters in order, notify_all wakes all, the lock
 * is required, and a cancel takes the lock back too.  Cases after CPython
 * 3.11's test_locks ConditionTests (test_wait, test_notify,
 * test_notify_all, test_wait_cancel_contested,
 * test_notify_unacquired), written for uvtask.
 *
 * Checks inside tasks use cr_expect; results are asserted after uvt_run.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "uvtask.h"

static void settle(void) {
  for (int i = 0; i < 4; i++) cr_expect_eq(uvt_yield(), 0);
}

struct cv {
  uvt_lock_t lock;
  uvt_cond_t cond;
  int order[8];
  int norder;
  int st[8];
  int held_after[8];
  int idx[8];
};

static struct cv *cv_state; /* the test's state, for the waiters */

static int waiter(void *arg) {
  int i = *(int *)arg;
  struct cv *s = cv_state;
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  s->st[i] = uvt_cond_wait(&s->cond);
  s->held_after[i] = uvt_lock_locked(&s->lock) && s->lock.holder == uvt_current();
  s->order[s->norder++] = i;
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  return 0;
}

static void spawn_waiters(struct cv *s, uvt_task_t **t, int n) {
  cv_state = s;
  for (int i = 0; i < n; i++) {
    s->idx[i] = i;
    s->st[i] = 1;
    t[i] = uvt_spawn(waiter, &s->idx[i]);
  }
  settle();
}

static int notify_main(void *arg) {
  struct cv *s = arg;
  uvt_task_t *t[3];
  cr_expect_eq(uvt_lock_init(&s->lock), 0);
  cr_expect_eq(uvt_cond_init(&s->cond, &s->lock), 0);
  spawn_waiters(s, t, 3);
  cr_expect_eq(s->norder, 0);
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  cr_expect_eq(uvt_cond_notify(&s->cond, 1), 0);
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  settle();
  cr_expect_eq(s->norder, 1);
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  cr_expect_eq(uvt_cond_notify(&s->cond, 2), 0);
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  cr_expect_eq(uvt_gather(t, 3), 0);
  for (int i = 0; i < 3; i++) uvt_detach(t[i]);
  uvt_cond_destroy(&s->cond);
  uvt_lock_destroy(&s->lock);
  return 0;
}

Test(cond, notify_wakes_waiters_in_order_with_the_lock_held) {
  struct cv s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, notify_main, &s), 0);
  cr_assert_eq(s.norder, 3);
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(s.order[i], i);
    cr_assert_eq(s.st[i], 0);
    cr_assert(s.held_after[i], "waiter %d returned without the lock", i);
  }
}

static int notify_all_main(void *arg) {
  struct cv *s = arg;
  uvt_task_t *t[4];
  cr_expect_eq(uvt_lock_init(&s->lock), 0);
  cr_expect_eq(uvt_cond_init(&s->cond, &s->lock), 0);
  spawn_waiters(s, t, 4);
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  cr_expect_eq(uvt_cond_notify_all(&s->cond), 0);
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  cr_expect_eq(uvt_gather(t, 4), 0);
  for (int i = 0; i < 4; i++) uvt_detach(t[i]);
  uvt_cond_destroy(&s->cond);
  uvt_lock_destroy(&s->lock);
  return 0;
}

Test(cond, notify_all_wakes_every_waiter) {
  struct cv s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, notify_all_main, &s), 0);
  cr_assert_eq(s.norder, 4);
}

/* Without the lock: refused (asyncio's RuntimeError). */
static int unacquired_main(void *arg) {
  int *r = arg;
  uvt_lock_t l;
  uvt_cond_t c;
  cr_expect_eq(uvt_lock_init(&l), 0);
  cr_expect_eq(uvt_cond_init(&c, &l), 0);
  r[0] = uvt_cond_wait(&c);
  r[1] = uvt_cond_notify(&c, 1);
  r[2] = uvt_cond_notify_all(&c);
  r[3] = uvt_cond_init(&c, NULL);
  uvt_cond_destroy(&c);
  uvt_lock_destroy(&l);
  return 0;
}

Test(cond, calls_without_the_lock_are_refused) {
  int r[4] = {0};
  cr_assert_eq(uvt_run(NULL, unacquired_main, r), 0);
  cr_assert_eq(r[0], UVT_ENOTLOCKED);
  cr_assert_eq(r[1], UVT_ENOTLOCKED);
  cr_assert_eq(r[2], UVT_ENOTLOCKED);
  cr_assert_eq(r[3], UVT_EINVAL);
}

/* A waiter cancelled while waiting, with the lock held by someone else:
 * its wait returns UVT_ECANCELED only once it holds the lock again
 * (test_wait_cancel_contested); a notified waiter cancelled before it
 * runs hands its notification to the next one. */
static int cancel_main(void *arg) {
  struct cv *s = arg;
  uvt_task_t *t[2];
  cr_expect_eq(uvt_lock_init(&s->lock), 0);
  cr_expect_eq(uvt_cond_init(&s->cond, &s->lock), 0);
  spawn_waiters(s, t, 2);
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  cr_expect_eq(uvt_cond_notify(&s->cond, 1), 0); /* to waiter 0 */
  cr_expect_eq(uvt_cancel(t[0]), 1);             /* before it runs */
  settle();
  cr_expect_eq(s->norder, 0, "a waiter returned while main held the lock");
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  cr_expect_eq(uvt_gather(t, 2), 0);
  for (int i = 0; i < 2; i++) uvt_detach(t[i]);
  uvt_cond_destroy(&s->cond);
  uvt_lock_destroy(&s->lock);
  return 0;
}

Test(cond, cancel_takes_the_lock_back_and_passes_the_notify_on, .timeout = 10) {
  struct cv s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, cancel_main, &s), 0);
  cr_assert_eq(s.st[0], UVT_ECANCELED);
  cr_assert(s.held_after[0], "the cancelled wait returned without the lock");
  cr_assert_eq(s.st[1], 0, "the notification was lost with the cancel");
  cr_assert(s.held_after[1]);
}

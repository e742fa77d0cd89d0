/*
 * uvt_sem_t: bounded concurrency, FIFO hand-off, cancellation, destroy,
 * misuse.
 *
 * Checks inside task bodies use cr_expect (a failed cr_assert would
 * longjmp off the task's stack); cr_assert only after uvt_run returns.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <string.h>

#include "uvtask.h"

#define NWORK 6
#define NWAIT 5

TestSuite(sem, .timeout = 20);

static void settle(void) {
  for (int i = 0; i < 4; i++) cr_expect_eq(uvt_yield(), 0);
}

static int ticker(void *arg) {
  (*(int *)arg)++;
  return 0;
}

/* Whether acquiring now needs to wait: spawn a ticker, acquire, see
 * whether the ticker got to run.  Leaves the permit taken. */
static bool acquire_yielded(uvt_sem_t *s) {
  int ran = 0;
  uvt_task_t *t = uvt_spawn(ticker, &ran);
  cr_expect_eq(uvt_sem_acquire(s), 0);
  bool yielded = ran != 0;
  cr_expect_eq(uvt_await(t), 0);
  return yielded;
}

/* ---- concurrency limit --------------------------------------------------- */

struct limit {
  uvt_sem_t sem;
  int inside, max_inside, done;
};

static int limit_worker(void *arg) {
  struct limit *s = arg;
  for (int round = 0; round < 2; round++) {
    cr_expect_eq(uvt_sem_acquire(&s->sem), 0);
    s->inside++;
    if (s->inside > s->max_inside) s->max_inside = s->inside;
    cr_expect_eq(uvt_yield(), 0);
    cr_expect_eq(uvt_sleep(1), 0);
    cr_expect_eq(uvt_yield(), 0);
    s->inside--;
    cr_expect_eq(uvt_sem_release(&s->sem), 0);
  }
  s->done++;
  return 0;
}

static int limit_main(void *arg) {
  struct limit *s = arg;
  uvt_task_t *t[NWORK];
  cr_expect_eq(uvt_sem_init(&s->sem, 2), 0);
  for (int i = 0; i < NWORK; i++) t[i] = uvt_spawn(limit_worker, s);
  cr_expect_eq(uvt_gather(t, NWORK), 0);
  /* Both permits are back. */
  cr_expect_not(acquire_yielded(&s->sem));
  cr_expect_not(acquire_yielded(&s->sem));
  uvt_sem_destroy(&s->sem);
  return 0;
}

Test(sem, limits_concurrency_to_n) {
  struct limit s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, limit_main, &s), 0);
  cr_assert_eq(s.max_inside, 2);
  cr_assert_eq(s.done, NWORK);
  cr_assert_eq(s.inside, 0);
}

/* ---- FIFO ---------------------------------------------------------------- */

struct fifo {
  uvt_sem_t sem;
  int idx[NWAIT];
  int status[NWAIT];
  int order[NWAIT + 1];
  int norder;
};

static struct fifo *fifo_state;

static int fifo_waiter(void *arg) {
  int i = *(int *)arg;
  struct fifo *s = fifo_state;
  s->status[i] = uvt_sem_acquire(&s->sem);
  if (s->status[i] != 0) return s->status[i];
  s->order[s->norder++] = i;
  return 0;
}

static int fifo_main(void *arg) {
  struct fifo *s = arg;
  uvt_task_t *t[NWAIT];
  fifo_state = s;
  cr_expect_eq(uvt_sem_init(&s->sem, 0), 0);
  for (int i = 0; i < NWAIT; i++) {
    s->idx[i] = i;
    t[i] = uvt_spawn(fifo_waiter, &s->idx[i]);
    settle();
  }
  cr_expect_eq(s->norder, 0);
  /* Release them one at a time: each permit goes to the oldest waiter. */
  for (int i = 0; i < NWAIT; i++) {
    cr_expect_eq(uvt_sem_release(&s->sem), 0);
    settle();
    cr_expect_eq(s->norder, i + 1);
  }
  cr_expect_eq(uvt_gather(t, NWAIT), 0);
  /* Handed over, never counted up: nothing is left. */
  cr_expect_eq(uvt_sem_release(&s->sem), 0);
  cr_expect_not(acquire_yielded(&s->sem));
  uvt_sem_destroy(&s->sem);
  return 0;
}

Test(sem, fifo_order) {
  struct fifo s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, fifo_main, &s), 0);
  cr_assert_eq(s.norder, NWAIT);
  for (int i = 0; i < NWAIT; i++) cr_assert_eq(s.order[i], i, "order[%d]", i);
}

static int relay_waiter(void *arg) {
  int i = *(int *)arg;
  struct fifo *s = fifo_state;
  s->status[i] = uvt_sem_acquire(&s->sem);
  if (s->status[i] != 0) return s->status[i];
  s->order[s->norder++] = i;
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_sem_release(&s->sem), 0);
  return 0;
}

static int no_barging_main(void *arg) {
  struct fifo *s = arg;
  uvt_task_t *t[3];
  fifo_state = s;
  cr_expect_eq(uvt_sem_init(&s->sem, 0), 0);
  for (int i = 0; i < 3; i++) {
    s->idx[i] = i;
    t[i] = uvt_spawn(relay_waiter, &s->idx[i]);
    settle();
  }
  /* The permit goes to the first waiter, not to the sem's count: our own
   * acquire right after must queue behind all three. */
  cr_expect_eq(uvt_sem_release(&s->sem), 0);
  cr_expect_eq(uvt_sem_acquire(&s->sem), 0);
  s->order[s->norder++] = 3;
  cr_expect_eq(uvt_gather(t, 3), 0);
  cr_expect_eq(uvt_sem_release(&s->sem), 0);
  uvt_sem_destroy(&s->sem);
  return 0;
}

Test(sem, release_hands_permits_to_waiters) {
  struct fifo s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, no_barging_main, &s), 0);
  cr_assert_eq(s.norder, 4);
  for (int i = 0; i < 4; i++) cr_assert_eq(s.order[i], i, "order[%d]", i);
}

/* ---- cancellation -------------------------------------------------------- */

static int cancel_main(void *arg) {
  struct fifo *s = arg;
  uvt_task_t *t[3];
  fifo_state = s;
  cr_expect_eq(uvt_sem_init(&s->sem, 0), 0);
  for (int i = 0; i < 3; i++) {
    s->idx[i] = i;
    t[i] = uvt_spawn(fifo_waiter, &s->idx[i]);
    settle();
  }
  /* Cancel the first waiter and release before it has run again: it
   * took no permit and is out of the queue. */
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect_eq(uvt_sem_release(&s->sem), 0);
  cr_expect_eq(uvt_await(t[0]), UVT_ECANCELED);
  cr_expect_eq(uvt_await(t[1]), 0);
  cr_expect_eq(uvt_sem_release(&s->sem), 0);
  cr_expect_eq(uvt_await(t[2]), 0);
  /* and with no waiter left a release counts up. */
  cr_expect_eq(uvt_sem_release(&s->sem), 0);
  cr_expect_not(acquire_yielded(&s->sem));
  uvt_sem_destroy(&s->sem);
  return 0;
}

Test(sem, cancel_parked_waiter) {
  struct fifo s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, cancel_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECANCELED);
  cr_assert_eq(s.status[1], 0);
  cr_assert_eq(s.status[2], 0);
  cr_assert_eq(s.norder, 2);
  cr_assert_eq(s.order[0], 1);
  cr_assert_eq(s.order[1], 2);
}

/* CPython test_locks SemaphoreTests::test_acquire_no_hang: c1 holds the
 * only permit, c2 waits; c1 releases (the permit is handed to c2) and
 * cancels c2 before it runs.  c2's acquire returns UVT_ECANCELED, its
 * block never runs, and the permit is not lost: acquiring it again does
 * not hang.  (Before, c2 kept the permit and entered its block.) */
static int acquire_once(void *arg) {
  int st = uvt_sem_acquire((uvt_sem_t *)arg);
  if (st == 0) st = uvt_sem_release((uvt_sem_t *)arg);
  return st;
}

struct no_hang {
  uvt_sem_t sem;
  uvt_task_t *t2;
  int c1_st, c2_st, c2_entered, again;
};

static int no_hang_c1(void *arg) {
  struct no_hang *h = arg;
  h->c1_st = uvt_sem_acquire(&h->sem);
  if (h->c1_st != 0) return h->c1_st;
  cr_expect_eq(uvt_yield(), 0); /* c2 parks in its acquire */
  cr_expect_eq(uvt_sem_release(&h->sem), 0);
  cr_expect_eq(uvt_cancel(h->t2), 1);
  return 0;
}

static int no_hang_c2(void *arg) {
  struct no_hang *h = arg;
  h->c2_st = uvt_sem_acquire(&h->sem);
  if (h->c2_st != 0) return h->c2_st;
  h->c2_entered = 1;
  cr_expect_eq(uvt_sem_release(&h->sem), 0);
  return 0;
}

static int no_hang_main(void *arg) {
  struct no_hang *h = arg;
  uvt_task_t *t[2];
  cr_expect_eq(uvt_sem_init(&h->sem, 1), 0);
  t[0] = uvt_spawn(no_hang_c1, h);
  t[1] = h->t2 = uvt_spawn(no_hang_c2, h);
  cr_expect_eq(uvt_gather(t, 2), UVT_ECANCELED);
  uvt_detach(t[0]);
  uvt_detach(t[1]);
  h->again = uvt_wait_for(uvt_spawn(acquire_once, &h->sem), 1000);
  uvt_sem_destroy(&h->sem);
  return 0;
}

Test(sem, cancel_after_hand_off_passes_the_permit_on) {
  struct no_hang h;
  memset(&h, 0, sizeof h);
  h.c2_st = 1;
  cr_assert_eq(uvt_run(NULL, no_hang_main, &h), 0);
  cr_assert_eq(h.c1_st, 0);
  cr_assert_eq(h.c2_st, UVT_ECANCELED, "the cancelled waiter got the permit");
  cr_assert_eq(h.c2_entered, 0, "the cancelled waiter entered its block");
  cr_assert_eq(h.again, 0, "the permit was lost: acquire hung");
}

/* ---- destroy and misuse -------------------------------------------------- */

static int destroy_main(void *arg) {
  struct fifo *s = arg;
  uvt_task_t *t[2];
  fifo_state = s;
  cr_expect_eq(uvt_sem_init(&s->sem, 0), 0);
  for (int i = 0; i < 2; i++) {
    s->idx[i] = i;
    t[i] = uvt_spawn(fifo_waiter, &s->idx[i]);
  }
  settle();
  uvt_sem_destroy(&s->sem);
  cr_expect_eq(uvt_await(t[0]), UVT_ECLOSED);
  cr_expect_eq(uvt_await(t[1]), UVT_ECLOSED);
  return 0;
}

Test(sem, destroy_wakes_waiters_with_eclosed) {
  struct fifo s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, destroy_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECLOSED);
  cr_assert_eq(s.status[1], UVT_ECLOSED);
}

Test(sem, outside_a_task) {
  uvt_sem_t s;
  cr_assert_eq(uvt_sem_init(&s, 1), 0);
  cr_assert_eq(uvt_sem_acquire(&s), UVT_ENOTASK);
  cr_assert_eq(uvt_sem_release(&s), 0); /* release needs no task */
  uvt_sem_destroy(&s);
}

Test(sem, invalid_objects) {
  uvt_sem_t s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_sem_init(NULL, 1), UVT_EINVAL);
  cr_assert_eq(uvt_sem_acquire(NULL), UVT_EINVAL);
  cr_assert_eq(uvt_sem_release(NULL), UVT_EINVAL);
  uvt_sem_destroy(NULL);
  cr_assert_eq(uvt_sem_acquire(&s), UVT_EINVAL);
  cr_assert_eq(uvt_sem_release(&s), UVT_EINVAL);
  cr_assert_eq(uvt_sem_init(&s, 3), 0);
  uvt_sem_destroy(&s);
  cr_assert_eq(uvt_sem_acquire(&s), UVT_EINVAL);
  cr_assert_eq(uvt_sem_release(&s), UVT_EINVAL);
  uvt_sem_destroy(&s);
}

Test(sem, release_overflow) {
  uvt_sem_t s;
  cr_assert_eq(uvt_sem_init(&s, UINT_MAX), 0);
  cr_assert_eq(uvt_sem_release(&s), UVT_EINVAL);
  uvt_sem_destroy(&s);
}

/* asyncio.BoundedSemaphore (test_locks BoundedSemaphore tests): releasing
 * above the initial value is refused. */
static int bounded_main(void *arg) {
  int *r = arg;
  uvt_sem_t s;
  cr_expect_eq(uvt_sem_init_bounded(&s, 2), 0);
  r[0] = uvt_sem_release(&s);
  cr_expect_eq(uvt_sem_acquire(&s), 0);
  r[1] = uvt_sem_release(&s);
  r[2] = uvt_sem_release(&s);
  uvt_sem_destroy(&s);
  return 0;
}

Test(sem, bounded_refuses_a_release_above_its_value) {
  int r[3] = {1, 1, 1};
  cr_assert_eq(uvt_run(NULL, bounded_main, r), 0);
  cr_assert_eq(r[0], UVT_EINVAL);
  cr_assert_eq(r[1], 0);
  cr_assert_eq(r[2], UVT_EINVAL);
}

/*
 * CPython 3.11 Lib/test/test_asyncio/test_locks.py, ported to uvtask's
 * Lock, Event, Condition, Semaphore and Barrier.  Each test names the
 * Python test it comes from and asserts the same behaviour; where uvtask
 * differs on purpose the comment says so (and include/uvtask.h does).
 *
 * `await asyncio.sleep(0)` is uvt_yield() (every other ready task runs
 * once).  Bodies run as uvt_run's main task (UVT_TEST), so checks use
 * cr_expect, never cr_assert; UVT_TEST also fails the test for any task,
 * error or handle left behind.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "uvtask.h"
#include "uvtask/testing.h"

TestSuite(cpython_locks, .timeout = 20);

/* The order in which tasks got through: Python's `result` list. */
static int result[16];
static int nresult;

static void note(int v) {
  if (nresult < 16) result[nresult++] = v;
}

static int result_is(const int *want, int n) {
  if (nresult != n) return 0;
  return memcmp(result, want, sizeof(int) * (size_t)n) == 0;
}

/* A worker: which object to use and the tag it appends. */
struct worker {
  void *obj;
  int tag;
};

/* ---- LockTests ----------------------------------------------------------- */

static uvt_lock_t lock;

/* Acquire and append the tag; keep the lock (as the Python coroutines). */
static int lock_taker(void *arg) {
  struct worker *w = arg;
  int st = uvt_lock_acquire(&lock);
  if (st != 0) return st;
  note(w->tag);
  return 0;
}

/* test_locks.py::LockTests::test_lock */
UVT_TEST(cpython_locks, lock_test_lock) {
  cr_expect_eq(uvt_lock_init(&lock), 0);
  cr_expect_eq(uvt_lock_acquire(&lock), 0);
  cr_expect(uvt_lock_locked(&lock));
  cr_expect_eq(uvt_lock_release(&lock), 0);
  cr_expect_not(uvt_lock_locked(&lock));
  uvt_lock_destroy(&lock);
}

/* test_locks.py::LockTests::test_acquire */
UVT_TEST(cpython_locks, lock_test_acquire) {
  struct worker w[3] = {{NULL, 1}, {NULL, 2}, {NULL, 3}};
  uvt_task_t *t1, *t2, *t3;
  nresult = 0;
  cr_expect_eq(uvt_lock_init(&lock), 0);
  cr_expect_eq(uvt_lock_acquire(&lock), 0);
  t1 = uvt_spawn(lock_taker, &w[0]);
  t2 = uvt_spawn(lock_taker, &w[1]);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(nresult, 0);

  cr_expect_eq(uvt_lock_release(&lock), 0);
  /* Deliberate difference (uvtask.h, uvt_lock_t): the lock is handed to
   * the first waiter at release, so it reads locked at once; asyncio's
   * reads unlocked until that waiter runs. */
  cr_expect(uvt_lock_locked(&lock));
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1}, 1));
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1}, 1));

  t3 = uvt_spawn(lock_taker, &w[2]);
  cr_expect_eq(uvt_lock_release(&lock), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1, 2}, 2));

  cr_expect_eq(uvt_lock_release(&lock), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1, 2, 3}, 3));

  cr_expect(uvt_done(t1) && uvt_done(t2) && uvt_done(t3));
  cr_expect_eq(uvt_await(t1), 0);
  cr_expect_eq(uvt_await(t2), 0);
  cr_expect_eq(uvt_await(t3), 0);
  cr_expect_eq(uvt_lock_release(&lock), 0);
  uvt_lock_destroy(&lock);
}

static int lock_acquire_only(void *arg) {
  (void)arg;
  return uvt_lock_acquire(&lock);
}

/* test_locks.py::LockTests::test_acquire_cancel */
UVT_TEST(cpython_locks, lock_test_acquire_cancel) {
  uvt_task_t *t;
  cr_expect_eq(uvt_lock_init(&lock), 0);
  cr_expect_eq(uvt_lock_acquire(&lock), 0);
  t = uvt_spawn(lock_acquire_only, NULL);
  cr_expect_eq(uvt_yield(), 0); /* call_soon(task.cancel): it is parked */
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  /* No waiter is left: the release frees the lock outright. */
  cr_expect_eq(uvt_lock_release(&lock), 0);
  cr_expect_not(uvt_lock_locked(&lock));
  uvt_lock_destroy(&lock);
}

static int lock_count, call_count;

static int lockit(void *arg) {
  int st;
  (void)arg;
  call_count++;
  st = uvt_lock_acquire(&lock);
  if (st != 0) return st;
  lock_count++;
  return 0;
}

/* test_locks.py::LockTests::test_cancel_release_race (bpo-32734): four
 * holders-to-be, cancel the first waiter and release: only one takes it. */
UVT_TEST(cpython_locks, lock_test_cancel_release_race) {
  uvt_task_t *t1, *t2, *t3;
  lock_count = call_count = 0;
  cr_expect_eq(uvt_lock_init(&lock), 0);
  cr_expect_eq(uvt_lock_acquire(&lock), 0);
  t1 = uvt_spawn(lockit, NULL);
  t2 = uvt_spawn(lockit, NULL);
  t3 = uvt_spawn(lockit, NULL);
  cr_expect_eq(uvt_yield(), 0);
  /* trigger(): t1.cancel(); lock.release() */
  cr_expect_eq(uvt_cancel(t1), 1);
  cr_expect_eq(uvt_lock_release(&lock), 0);
  uvt_task_t *t2ref = uvt_task_ref(t2);
  cr_expect_eq(uvt_await(t1), UVT_ECANCELED);
  cr_expect_eq(lock_count, 1);
  cr_expect_eq(call_count, 3);
  cr_expect(uvt_done(t2ref));
  cr_expect_eq(uvt_await(t2), 0);
  uvt_detach(t2ref);
  cr_expect_eq(uvt_cancel(t3), 1);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(uvt_done(t3));
  cr_expect_eq(uvt_await(t3), UVT_ECANCELED);
  cr_expect_eq(uvt_lock_release(&lock), 0); /* t2's */
  uvt_lock_destroy(&lock);
}

/* test_locks.py::LockTests::test_finished_waiter_cancelled: the first
 * waiter is cancelled as the lock is released; the lock still ends up
 * taken (by the second waiter), not lost. */
UVT_TEST(cpython_locks, lock_test_finished_waiter_cancelled) {
  uvt_task_t *tb, *tc;
  cr_expect_eq(uvt_lock_init(&lock), 0);
  cr_expect_eq(uvt_lock_acquire(&lock), 0);
  cr_expect(uvt_lock_locked(&lock));
  tb = uvt_spawn(lock_acquire_only, NULL);
  cr_expect_eq(uvt_yield(), 0);
  tc = uvt_spawn(lock_acquire_only, NULL);
  cr_expect_eq(uvt_cancel(tb), 1);
  cr_expect_eq(uvt_lock_release(&lock), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(uvt_lock_locked(&lock));
  cr_expect(uvt_done(tb));
  cr_expect_eq(uvt_await(tb), UVT_ECANCELED);
  cr_expect_eq(uvt_await(tc), 0);
  cr_expect_eq(uvt_lock_release(&lock), 0);
  uvt_lock_destroy(&lock);
}

/* test_locks.py::LockTests::test_release_not_acquired (RuntimeError) */
UVT_TEST(cpython_locks, lock_test_release_not_acquired) {
  cr_expect_eq(uvt_lock_init(&lock), 0);
  cr_expect_eq(uvt_lock_release(&lock), UVT_ENOTLOCKED);
  uvt_lock_destroy(&lock);
}

/* test_locks.py::LockTests::test_release_no_waiters */
UVT_TEST(cpython_locks, lock_test_release_no_waiters) {
  cr_expect_eq(uvt_lock_init(&lock), 0);
  cr_expect_eq(uvt_lock_acquire(&lock), 0);
  cr_expect(uvt_lock_locked(&lock));
  cr_expect_eq(uvt_lock_release(&lock), 0);
  cr_expect_not(uvt_lock_locked(&lock));
  uvt_lock_destroy(&lock);
}

/* ---- EventTests ---------------------------------------------------------- */

static uvt_event_t ev;

static int ev_waiter(void *arg) {
  struct worker *w = arg;
  int st = uvt_event_wait(&ev);
  if (st != 0) return st;
  note(w->tag);
  return 0;
}

/* test_locks.py::EventTests::test_wait: t3, created just before set(),
 * finds the event set and goes first; the woken t1, t2 follow. */
UVT_TEST(cpython_locks, event_test_wait) {
  struct worker w[3] = {{NULL, 1}, {NULL, 2}, {NULL, 3}};
  uvt_task_t *t1, *t2, *t3;
  nresult = 0;
  cr_expect_eq(uvt_event_init(&ev), 0);
  cr_expect_not(uvt_event_is_set(&ev));
  t1 = uvt_spawn(ev_waiter, &w[0]);
  t2 = uvt_spawn(ev_waiter, &w[1]);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(nresult, 0);
  t3 = uvt_spawn(ev_waiter, &w[2]);
  uvt_event_set(&ev);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){3, 1, 2}, 3), "order %d %d %d", result[0],
            result[1], result[2]);
  cr_expect(uvt_done(t1) && uvt_done(t2) && uvt_done(t3));
  cr_expect_eq(uvt_await(t1), 0);
  cr_expect_eq(uvt_await(t2), 0);
  cr_expect_eq(uvt_await(t3), 0);
  uvt_event_destroy(&ev);
}

static int yields_seen;
static int count_yields(void *arg) {
  (void)arg;
  yields_seen++;
  return 0;
}

/* test_locks.py::EventTests::test_wait_on_set (and, uvtask's promise, it
 * returns without yielding: a task spawned before it has not run) */
UVT_TEST(cpython_locks, event_test_wait_on_set) {
  uvt_task_t *t;
  yields_seen = 0;
  cr_expect_eq(uvt_event_init(&ev), 0);
  uvt_event_set(&ev);
  t = uvt_spawn(count_yields, NULL);
  cr_expect_eq(uvt_event_wait(&ev), 0);
  cr_expect_eq(yields_seen, 0);
  cr_expect_eq(uvt_await(t), 0);
  uvt_event_destroy(&ev);
}

static int ev_wait_only(void *arg) {
  (void)arg;
  return uvt_event_wait(&ev);
}

/* test_locks.py::EventTests::test_wait_cancel: the cancelled waiter is
 * gone: a later set wakes nobody twice and the event stays usable. */
UVT_TEST(cpython_locks, event_test_wait_cancel) {
  uvt_task_t *t;
  struct worker w = {NULL, 7};
  nresult = 0;
  cr_expect_eq(uvt_event_init(&ev), 0);
  t = uvt_spawn(ev_wait_only, NULL);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  /* `assertFalse(ev._waiters)`, seen from outside: a new waiter is the
   * only one the set wakes. */
  t = uvt_spawn(ev_waiter, &w);
  cr_expect_eq(uvt_yield(), 0);
  uvt_event_set(&ev);
  cr_expect_eq(uvt_await(t), 0);
  cr_expect(result_is((int[]){7}, 1));
  uvt_event_destroy(&ev);
}

/* test_locks.py::EventTests::test_clear */
UVT_TEST(cpython_locks, event_test_clear) {
  cr_expect_eq(uvt_event_init(&ev), 0);
  cr_expect_not(uvt_event_is_set(&ev));
  uvt_event_set(&ev);
  cr_expect(uvt_event_is_set(&ev));
  uvt_event_clear(&ev);
  cr_expect_not(uvt_event_is_set(&ev));
  uvt_event_destroy(&ev);
}

/* test_locks.py::EventTests::test_clear_with_waiters: set then clear
 * before the waiter runs still wakes it, once. */
UVT_TEST(cpython_locks, event_test_clear_with_waiters) {
  struct worker w = {NULL, 1};
  uvt_task_t *t;
  nresult = 0;
  cr_expect_eq(uvt_event_init(&ev), 0);
  t = uvt_spawn(ev_waiter, &w);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(nresult, 0);
  uvt_event_set(&ev);
  uvt_event_clear(&ev);
  cr_expect_not(uvt_event_is_set(&ev));
  uvt_event_set(&ev);
  uvt_event_set(&ev);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1}, 1));
  cr_expect(uvt_done(t));
  cr_expect_eq(uvt_await(t), 0);
  uvt_event_destroy(&ev);
}

/* ---- ConditionTests ------------------------------------------------------ */

static uvt_lock_t clock_;
static uvt_cond_t cond;

/* c1/c2/c3 of test_wait: take the lock, wait, append; keep the lock. */
static int cond_waiter_keep(void *arg) {
  struct worker *w = arg;
  int st = uvt_lock_acquire(&clock_);
  if (st != 0) return st;
  st = uvt_cond_wait(&cond);
  if (st != 0) return st;
  note(w->tag);
  return 0;
}

/* As above, releasing the lock after appending (test_notify's). */
static int cond_waiter_release(void *arg) {
  struct worker *w = arg;
  int st = uvt_lock_acquire(&clock_);
  if (st != 0) return st;
  st = uvt_cond_wait(&cond);
  if (st != 0) return st;
  note(w->tag);
  return uvt_lock_release(&clock_);
}

static void cond_setup(void) {
  nresult = 0;
  cr_expect_eq(uvt_lock_init(&clock_), 0);
  cr_expect_eq(uvt_cond_init(&cond, &clock_), 0);
}

static void cond_teardown(void) {
  uvt_cond_destroy(&cond);
  uvt_lock_destroy(&clock_);
}

/* test_locks.py::ConditionTests::test_wait */
UVT_TEST(cpython_locks, cond_test_wait) {
  struct worker w[3] = {{NULL, 1}, {NULL, 2}, {NULL, 3}};
  uvt_task_t *t[3];
  cond_setup();
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(cond_waiter_keep, &w[i]);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(nresult, 0);
  cr_expect_not(uvt_lock_locked(&clock_));

  cr_expect_eq(uvt_lock_acquire(&clock_), 0);
  cr_expect_eq(uvt_cond_notify(&cond, 1), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(nresult, 0);
  cr_expect(uvt_lock_locked(&clock_));

  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1}, 1));
  cr_expect(uvt_lock_locked(&clock_));

  /* t1 holds the lock now; notify needs it held by the caller in uvtask
   * (deliberate: uvtask.h, uvt_cond_t), so t1's lock is released for it
   * here and main notifies under its own acquire. */
  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cr_expect_eq(uvt_lock_acquire(&clock_), 0);
  cr_expect_eq(uvt_cond_notify(&cond, 2), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1}, 1));
  cr_expect(uvt_lock_locked(&clock_));

  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1, 2}, 2));
  cr_expect(uvt_lock_locked(&clock_));

  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1, 2, 3}, 3));
  cr_expect(uvt_lock_locked(&clock_));

  for (int i = 0; i < 3; i++) {
    cr_expect(uvt_done(t[i]));
    cr_expect_eq(uvt_await(t[i]), 0);
  }
  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cond_teardown();
}

static int cond_wait_own(void *arg) {
  int st;
  (void)arg;
  cr_expect_eq(uvt_lock_acquire(&clock_), 0);
  st = uvt_cond_wait(&cond);
  /* Cancelled or not, wait returns with the lock held again. */
  cr_expect(uvt_lock_locked(&clock_));
  cr_expect(clock_.holder == uvt_current());
  cr_expect_eq(uvt_lock_release(&clock_), 0);
  return st;
}

/* test_locks.py::ConditionTests::test_wait_cancel.  In Python main holds
 * the lock and the task waits; uvtask's condition wants the waiter to hold
 * the lock itself (deliberate, uvtask.h), so the task takes it.  The
 * cancelled wait raises and returns with the lock held; no waiter stays. */
UVT_TEST(cpython_locks, cond_test_wait_cancel) {
  uvt_task_t *t;
  cond_setup();
  t = uvt_spawn(cond_wait_own, NULL);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  /* No waiter left: notify_all under the lock wakes nobody. */
  cr_expect_eq(uvt_lock_acquire(&clock_), 0);
  cr_expect_eq(uvt_cond_notify_all(&cond), 0);
  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cond_teardown();
}

/* test_locks.py::ConditionTests::test_wait_cancel_contested: notified,
 * then cancelled while it waits to re-take the lock: the wait has already
 * been satisfied, and it still returns holding the lock. */
static int contested_status = 1;
static int cond_wait_keep_status(void *arg) {
  (void)arg;
  cr_expect_eq(uvt_lock_acquire(&clock_), 0);
  contested_status = uvt_cond_wait(&cond);
  cr_expect(clock_.holder == uvt_current());
  return 0;
}

UVT_TEST(cpython_locks, cond_test_wait_cancel_contested) {
  uvt_task_t *t;
  cond_setup();
  t = uvt_spawn(cond_wait_keep_status, NULL);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_not(uvt_lock_locked(&clock_));
  cr_expect_eq(uvt_lock_acquire(&clock_), 0);
  cr_expect_eq(uvt_cond_notify(&cond, 1), 0);
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cr_expect_eq(uvt_await(t), 0);
  /* Python accepts either outcome of the wait ("should not happen" is a
   * comment, not an assertion): what it asserts is the lock held after. */
  cr_expect(contested_status == 0 || contested_status == UVT_ECANCELED);
  cr_expect(uvt_lock_locked(&clock_));
  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cond_teardown();
}

static int waited;
static int wait_on_cond(void *arg) {
  int st;
  (void)arg;
  cr_expect_eq(uvt_lock_acquire(&clock_), 0);
  waited = 1;
  st = uvt_cond_wait(&cond);
  cr_expect_eq(uvt_lock_release(&clock_), 0);
  return st;
}

/* test_locks.py::ConditionTests::test_wait_cancel_after_notify (bpo-32841):
 * notified, then cancelled while it waits for the lock: it ends cancelled. */
UVT_TEST(cpython_locks, cond_test_wait_cancel_after_notify) {
  uvt_task_t *waiter;
  waited = 0;
  cond_setup();
  waiter = uvt_spawn(wait_on_cond, NULL);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_lock_acquire(&clock_), 0);
  cr_expect_eq(uvt_cond_notify(&cond, 1), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(waiter), 1);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(uvt_done(waiter));
  cr_expect_eq(uvt_await(waiter), UVT_ECANCELED);
  cr_expect(waited);
  cond_teardown();
}

/* test_locks.py::ConditionTests::test_wait_unacquired (RuntimeError) */
UVT_TEST(cpython_locks, cond_test_wait_unacquired) {
  cond_setup();
  cr_expect_eq(uvt_cond_wait(&cond), UVT_ENOTLOCKED);
  cond_teardown();
}

/* test_locks.py::ConditionTests::test_notify */
UVT_TEST(cpython_locks, cond_test_notify) {
  struct worker w[3] = {{NULL, 1}, {NULL, 2}, {NULL, 3}};
  uvt_task_t *t[3];
  cond_setup();
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(cond_waiter_release, &w[i]);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(nresult, 0);

  cr_expect_eq(uvt_lock_acquire(&clock_), 0);
  cr_expect_eq(uvt_cond_notify(&cond, 1), 0);
  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1}, 1));

  cr_expect_eq(uvt_lock_acquire(&clock_), 0);
  cr_expect_eq(uvt_cond_notify(&cond, 1), 0);
  cr_expect_eq(uvt_cond_notify(&cond, 2048), 0);
  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1, 2, 3}, 3));
  for (int i = 0; i < 3; i++) {
    cr_expect(uvt_done(t[i]));
    cr_expect_eq(uvt_await(t[i]), 0);
  }
  cond_teardown();
}

/* test_locks.py::ConditionTests::test_notify_all */
UVT_TEST(cpython_locks, cond_test_notify_all) {
  struct worker w[2] = {{NULL, 1}, {NULL, 2}};
  uvt_task_t *t[2];
  cond_setup();
  for (int i = 0; i < 2; i++) t[i] = uvt_spawn(cond_waiter_release, &w[i]);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(nresult, 0);
  cr_expect_eq(uvt_lock_acquire(&clock_), 0);
  cr_expect_eq(uvt_cond_notify_all(&cond), 0);
  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1, 2}, 2));
  for (int i = 0; i < 2; i++) {
    cr_expect(uvt_done(t[i]));
    cr_expect_eq(uvt_await(t[i]), 0);
  }
  cond_teardown();
}

/* test_locks.py::ConditionTests::test_notify_unacquired and
 * test_notify_all_unacquired (RuntimeError each) */
UVT_TEST(cpython_locks, cond_test_notify_unacquired) {
  cond_setup();
  cr_expect_eq(uvt_cond_notify(&cond, 1), UVT_ENOTLOCKED);
  cond_teardown();
}

UVT_TEST(cpython_locks, cond_test_notify_all_unacquired) {
  cond_setup();
  cr_expect_eq(uvt_cond_notify_all(&cond), UVT_ENOTLOCKED);
  cond_teardown();
}

/* test_locks.py::ConditionTests::test_explicit_lock: a condition over a
 * lock the caller made shares that lock's state. */
UVT_TEST(cpython_locks, cond_test_explicit_lock) {
  cond_setup();
  cr_expect_eq(uvt_lock_acquire(&clock_), 0);
  cr_expect(uvt_lock_locked(&clock_));
  /* Held through the lock: the condition accepts notify. */
  cr_expect_eq(uvt_cond_notify(&cond, 1), 0);
  cr_expect_eq(uvt_lock_release(&clock_), 0);
  cr_expect_eq(uvt_cond_notify(&cond, 1), UVT_ENOTLOCKED);
  cond_teardown();
}

/* ---- SemaphoreTests ------------------------------------------------------ */

static uvt_sem_t sem;

static int sem_taker(void *arg) {
  struct worker *w = arg;
  int st = uvt_sem_acquire(&sem);
  if (st != 0) return st;
  note(w->tag);
  return 0;
}

static int sem_acquire_only(void *arg) {
  (void)arg;
  return uvt_sem_acquire(&sem);
}

/* test_locks.py::SemaphoreTests::test_semaphore */
UVT_TEST(cpython_locks, sem_test_semaphore) {
  cr_expect_eq(uvt_sem_init(&sem, 1), 0);
  cr_expect_eq(sem.value, 1u);
  cr_expect_eq(uvt_sem_acquire(&sem), 0);
  cr_expect_eq(sem.value, 0u); /* locked() */
  cr_expect_eq(uvt_sem_release(&sem), 0);
  cr_expect_eq(sem.value, 1u);
  uvt_sem_destroy(&sem);
}

/* test_locks.py::SemaphoreTests::test_acquire: two permits of three are
 * taken; t1 gets the third, t2/t3 wait; two releases let two of t2, t3, t4
 * in; a last release lets the third in. */
UVT_TEST(cpython_locks, sem_test_acquire) {
  struct worker w[4] = {{NULL, 1}, {NULL, 2}, {NULL, 3}, {NULL, 4}};
  uvt_task_t *t[4];
  int done = 0;
  nresult = 0;
  cr_expect_eq(uvt_sem_init(&sem, 3), 0);
  cr_expect_eq(uvt_sem_acquire(&sem), 0);
  cr_expect_eq(uvt_sem_acquire(&sem), 0);
  cr_expect_neq(sem.value, 0u);
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(sem_taker, &w[i]);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(result_is((int[]){1}, 1));
  cr_expect_eq(sem.value, 0u);
  t[3] = uvt_spawn(sem_taker, &w[3]);
  cr_expect_eq(uvt_sem_release(&sem), 0);
  cr_expect_eq(uvt_sem_release(&sem), 0);
  cr_expect_eq(sem.value, 0u);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(sem.value, 0u);
  cr_expect_eq(nresult, 3);
  cr_expect(uvt_done(t[0]));
  for (int i = 1; i < 4; i++) done += uvt_done(t[i]);
  cr_expect_eq(done, 2);
  cr_expect_eq(uvt_sem_release(&sem), 0);
  cr_expect_eq(uvt_gather(t + 1, 3), 0);
  for (int i = 0; i < 4; i++) cr_expect_eq(uvt_await(t[i]), 0);
  uvt_sem_destroy(&sem);
}

/* test_locks.py::SemaphoreTests::test_acquire_cancel */
UVT_TEST(cpython_locks, sem_test_acquire_cancel) {
  uvt_task_t *t;
  cr_expect_eq(uvt_sem_init(&sem, 1), 0);
  cr_expect_eq(uvt_sem_acquire(&sem), 0);
  t = uvt_spawn(sem_acquire_only, NULL);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  /* No waiter left: the release goes back to the count. */
  cr_expect_eq(uvt_sem_release(&sem), 0);
  cr_expect_eq(sem.value, 1u);
  uvt_sem_destroy(&sem);
}

/* test_locks.py::SemaphoreTests::test_acquire_cancel_before_awoken: two
 * waiters cancelled, one release: exactly the first live waiter (t3) gets
 * the permit, t4 still waits. */
UVT_TEST(cpython_locks, sem_test_acquire_cancel_before_awoken) {
  uvt_task_t *t[4];
  cr_expect_eq(uvt_sem_init(&sem, 0), 0);
  for (int i = 0; i < 4; i++) t[i] = uvt_spawn(sem_acquire_only, NULL);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect_eq(uvt_cancel(t[1]), 1);
  cr_expect_eq(uvt_sem_release(&sem), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(uvt_done(t[2]));
  cr_expect_not(uvt_done(t[3]));
  cr_expect_eq(uvt_cancel(t[3]), 1);
  cr_expect_eq(uvt_await(t[0]), UVT_ECANCELED);
  cr_expect_eq(uvt_await(t[1]), UVT_ECANCELED);
  cr_expect_eq(uvt_await(t[2]), 0);
  cr_expect_eq(uvt_await(t[3]), UVT_ECANCELED);
  cr_expect_eq(sem.value, 0u);
  uvt_sem_destroy(&sem);
}

/* test_locks.py::SemaphoreTests::test_acquire_hang: the cancelled first
 * waiter's permit reaches the second. */
UVT_TEST(cpython_locks, sem_test_acquire_hang) {
  uvt_task_t *t1, *t2;
  cr_expect_eq(uvt_sem_init(&sem, 0), 0);
  t1 = uvt_spawn(sem_acquire_only, NULL);
  t2 = uvt_spawn(sem_acquire_only, NULL);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(t1), 1);
  cr_expect_eq(uvt_sem_release(&sem), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(sem.value, 0u); /* locked() */
  cr_expect(uvt_done(t2));
  cr_expect_eq(uvt_await(t1), UVT_ECANCELED);
  cr_expect_eq(uvt_await(t2), 0);
  uvt_sem_destroy(&sem);
}

/* test_locks.py::SemaphoreTests::test_release_no_waiters */
UVT_TEST(cpython_locks, sem_test_release_no_waiters) {
  cr_expect_eq(uvt_sem_init(&sem, 1), 0);
  cr_expect_eq(uvt_sem_acquire(&sem), 0);
  cr_expect_eq(sem.value, 0u);
  cr_expect_eq(uvt_sem_release(&sem), 0);
  cr_expect_eq(sem.value, 1u);
  uvt_sem_destroy(&sem);
}

static const char *fifo_tags[] = {"c1", "c2", "c3"};
static char fifo_log[6][8];
static int nfifo;

static int fifo_coro(void *arg) {
  const char *tag = arg;
  for (int round = 1; round <= 2; round++) {
    int st = uvt_sem_acquire(&sem);
    if (st != 0) return st;
    if (nfifo < 6) snprintf(fifo_log[nfifo++], sizeof fifo_log[0], "%s_%d", tag, round);
    cr_expect_eq(uvt_sleep(10), 0);
    cr_expect_eq(uvt_sem_release(&sem), 0);
  }
  return 0;
}

/* test_locks.py::SemaphoreTests::test_acquire_fifo_order (TaskGroup there,
 * gather here) */
UVT_TEST(cpython_locks, sem_test_acquire_fifo_order) {
  static const char *want[] = {"c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"};
  uvt_task_t *t[3];
  nfifo = 0;
  cr_expect_eq(uvt_sem_init(&sem, 1), 0);
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(fifo_coro, (void *)fifo_tags[i]);
  cr_expect_eq(uvt_gather(t, 3), 0);
  cr_expect_eq(nfifo, 6);
  for (int i = 0; i < 6; i++) cr_expect_str_eq(fifo_log[i], want[i]);
  for (int i = 0; i < 3; i++) uvt_detach(t[i]);
  uvt_sem_destroy(&sem);
}

static int fifo2_c2(void *arg) {
  (void)arg;
  int st = uvt_sem_acquire(&sem);
  if (st != 0) return st;
  note(2);
  cr_expect_eq(uvt_sem_release(&sem), 0);
  st = uvt_sem_acquire(&sem);
  if (st != 0) return st;
  note(4);
  return 0;
}

/* test_locks.py::SemaphoreTests::test_acquire_fifo_order_2.  Deliberate
 * difference (uvtask.h, uvt_sem_t): the two releases hand one permit each
 * to c2 and c3; c2 then releases its permit while no task waits, so it is
 * free, and c2's second acquire takes it at once, before c3 has run:
 * [1, 2, 4, 3].  asyncio makes a newcomer queue behind waiters that were
 * woken but have not run yet, and gets [1, 2, 3, 4].  Nobody waits while
 * a permit is free either way. */
UVT_TEST(cpython_locks, sem_test_acquire_fifo_order_2) {
  struct worker w1 = {NULL, 1}, w3 = {NULL, 3};
  uvt_task_t *t[3];
  nresult = 0;
  cr_expect_eq(uvt_sem_init(&sem, 1), 0);
  t[0] = uvt_spawn(sem_taker, &w1);
  t[1] = uvt_spawn(fifo2_c2, NULL);
  t[2] = uvt_spawn(sem_taker, &w3);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_sem_release(&sem), 0);
  cr_expect_eq(uvt_sem_release(&sem), 0);
  cr_expect_eq(uvt_gather(t, 3), 0);
  cr_expect(result_is((int[]){1, 2, 4, 3}, 4), "order %d %d %d %d", result[0],
            result[1], result[2], result[3]);
  for (int i = 0; i < 3; i++) uvt_detach(t[i]);
  uvt_sem_destroy(&sem);
}

/* test_locks.py::SemaphoreTests::test_acquire_fifo_order_3: a cancelled
 * first waiter is skipped; the two permits go to c2 then c3. */
UVT_TEST(cpython_locks, sem_test_acquire_fifo_order_3) {
  struct worker w[3] = {{NULL, 1}, {NULL, 2}, {NULL, 3}};
  uvt_task_t *t[3];
  nresult = 0;
  cr_expect_eq(uvt_sem_init(&sem, 0), 0);
  for (int i = 0; i < 3; i++) t[i] = uvt_spawn(sem_taker, &w[i]);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_sem_release(&sem), 0);
  cr_expect_eq(uvt_sem_release(&sem), 0);
  /* gather(return_exceptions=True) there; uvt_gather reports t1's
   * cancellation as the first failure. */
  cr_expect_eq(uvt_gather(t, 3), UVT_ECANCELED);
  cr_expect(result_is((int[]){2, 3}, 2));
  cr_expect_eq(uvt_await(t[0]), UVT_ECANCELED);
  cr_expect_eq(uvt_await(t[1]), 0);
  cr_expect_eq(uvt_await(t[2]), 0);
  uvt_sem_destroy(&sem);
}

/* ---- BarrierTests -------------------------------------------------------- */

static uvt_barrier_t bar;
static unsigned bar_index[8];
static int bar_status[8];
static int bar_after;

static int bar_waiter(void *arg) {
  int i = (int)(intptr_t)arg;
  bar_status[i] = uvt_barrier_wait(&bar, &bar_index[i]);
  bar_after++;
  return 0;
}

static int bar_waiter_twice(void *arg) {
  int i = (int)(intptr_t)arg;
  int st = uvt_barrier_wait(&bar, &bar_index[i]);
  if (st == 0) st = uvt_barrier_wait(&bar, &bar_index[i]);
  bar_status[i] = st;
  bar_after++;
  return 0;
}

static void bar_setup(unsigned parties) {
  memset(bar_index, 0xff, sizeof bar_index);
  memset(bar_status, 0x7f, sizeof bar_status);
  bar_after = 0;
  cr_expect_eq(uvt_barrier_init(&bar, parties), 0);
}

static void spawn_waiters(uvt_task_t **t, int n, uvt_fn fn) {
  for (int i = 0; i < n; i++) t[i] = uvt_spawn(fn, (void *)(intptr_t)i);
}

static void await_all(uvt_task_t **t, int n) {
  for (int i = 0; i < n; i++) cr_expect_eq(uvt_await(t[i]), 0);
}

/* test_locks.py::BarrierTests::test_barrier_parties: parties must be > 0 */
UVT_TEST(cpython_locks, barrier_test_barrier_parties) {
  cr_expect_eq(uvt_barrier_init(&bar, 0), UVT_EINVAL);
  cr_expect_eq(uvt_barrier_init(&bar, 1), 0);
  uvt_barrier_destroy(&bar);
}

/* test_locks.py::BarrierTests::test_filling_one_task: with one party the
 * wait returns at once with index 0. */
UVT_TEST(cpython_locks, barrier_test_filling_one_task) {
  unsigned idx = 99;
  cr_expect_eq(uvt_barrier_init(&bar, 1), 0);
  cr_expect_eq(uvt_barrier_wait(&bar, &idx), 0);
  cr_expect_eq(idx, 0u);
  uvt_barrier_destroy(&bar);
}

/* test_locks.py::BarrierTests::test_filling_one_task_twice */
UVT_TEST(cpython_locks, barrier_test_filling_one_task_twice) {
  unsigned idx = 99;
  cr_expect_eq(uvt_barrier_init(&bar, 1), 0);
  cr_expect_eq(uvt_barrier_wait(&bar, &idx), 0);
  cr_expect_eq(idx, 0u);
  idx = 99;
  cr_expect_eq(uvt_barrier_wait(&bar, &idx), 0);
  cr_expect_eq(idx, 0u);
  uvt_barrier_destroy(&bar);
}

/* test_locks.py::BarrierTests::test_filling_task_by_task: nobody passes
 * until the last party arrives; then all pass. */
UVT_TEST(cpython_locks, barrier_test_filling_task_by_task) {
  uvt_task_t *t[3];
  bar_setup(3);
  for (int i = 0; i < 3; i++) {
    t[i] = uvt_spawn(bar_waiter, (void *)(intptr_t)i);
    cr_expect_eq(uvt_yield(), 0);
    cr_expect_eq(bar.count, (unsigned)(i + 1) % 3);
    if (i < 2) cr_expect_eq(bar_after, 0);
  }
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(bar_after, 3);
  await_all(t, 3);
  uvt_barrier_destroy(&bar);
}

/* test_locks.py::BarrierTests::test_barrier: parties tasks all pass */
UVT_TEST(cpython_locks, barrier_test_barrier) {
  uvt_task_t *t[5];
  bar_setup(5);
  spawn_waiters(t, 5, bar_waiter);
  await_all(t, 5);
  cr_expect_eq(bar_after, 5);
  for (int i = 0; i < 5; i++) cr_expect_eq(bar_status[i], 0);
  uvt_barrier_destroy(&bar);
}

/* test_locks.py::BarrierTests::test_filling_tasks_wait_twice */
UVT_TEST(cpython_locks, barrier_test_filling_tasks_wait_twice) {
  uvt_task_t *t[3];
  bar_setup(3);
  spawn_waiters(t, 3, bar_waiter_twice);
  await_all(t, 3);
  cr_expect_eq(bar_after, 3);
  for (int i = 0; i < 3; i++) cr_expect_eq(bar_status[i], 0);
  cr_expect_eq(bar.count, 0u);
  uvt_barrier_destroy(&bar);
}

/* test_locks.py::BarrierTests::test_filling_tasks_check_return_value: the
 * indices handed out in one cycle are 0 .. parties-1, each once. */
UVT_TEST(cpython_locks, barrier_test_filling_tasks_check_return_value) {
  uvt_task_t *t[4];
  int seen[4] = {0};
  bar_setup(4);
  spawn_waiters(t, 4, bar_waiter);
  await_all(t, 4);
  for (int i = 0; i < 4; i++) {
    cr_expect_lt(bar_index[i], 4u);
    if (bar_index[i] < 4) seen[bar_index[i]]++;
  }
  for (int i = 0; i < 4; i++) cr_expect_eq(seen[i], 1);
  uvt_barrier_destroy(&bar);
}

/* test_locks.py::BarrierTests::test_filling_tasks_cancel_one: a waiter
 * cancelled before the barrier fills leaves it; the next arrival takes
 * its place. */
UVT_TEST(cpython_locks, barrier_test_filling_tasks_cancel_one) {
  uvt_task_t *t[4];
  bar_setup(3);
  t[0] = uvt_spawn(bar_waiter, (void *)0);
  t[1] = uvt_spawn(bar_waiter, (void *)1);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(bar.count, 2u);
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(bar_status[0], UVT_ECANCELED);
  cr_expect_eq(bar.count, 1u);
  t[2] = uvt_spawn(bar_waiter, (void *)2);
  t[3] = uvt_spawn(bar_waiter, (void *)3);
  await_all(t, 4);
  cr_expect_eq(bar_status[1], 0);
  cr_expect_eq(bar_status[2], 0);
  cr_expect_eq(bar_status[3], 0);
  cr_expect_eq(bar.count, 0u);
  uvt_barrier_destroy(&bar);
}

/* test_locks.py::BarrierTests::test_reset_barrier */
UVT_TEST(cpython_locks, barrier_test_reset_barrier) {
  bar_setup(1);
  uvt_barrier_reset(&bar);
  cr_expect_eq(bar.count, 0u);
  cr_expect_not(bar.broken);
  cr_expect_eq(uvt_barrier_wait(&bar, NULL), 0);
  uvt_barrier_destroy(&bar);
}

/* test_locks.py::BarrierTests::test_reset_barrier_while_tasks_waiting:
 * the waiters of the cycle are released with BrokenBarrierError, and the
 * barrier is usable again. */
UVT_TEST(cpython_locks, barrier_test_reset_barrier_while_tasks_waiting) {
  uvt_task_t *t[2];
  bar_setup(3);
  spawn_waiters(t, 2, bar_waiter);
  cr_expect_eq(uvt_yield(), 0);
  uvt_barrier_reset(&bar);
  await_all(t, 2);
  cr_expect_eq(bar_status[0], UVT_EBROKEN);
  cr_expect_eq(bar_status[1], UVT_EBROKEN);
  cr_expect_eq(bar.count, 0u);
  cr_expect_not(bar.broken);
  spawn_waiters(t, 2, bar_waiter);
  cr_expect_eq(uvt_barrier_wait(&bar, NULL), 0);
  await_all(t, 2);
  cr_expect_eq(bar_status[0], 0);
  uvt_barrier_destroy(&bar);
}

/* test_locks.py::BarrierTests::test_abort_barrier */
UVT_TEST(cpython_locks, barrier_test_abort_barrier) {
  bar_setup(1);
  uvt_barrier_abort(&bar);
  cr_expect(bar.broken);
  cr_expect_eq(uvt_barrier_wait(&bar, NULL), UVT_EBROKEN);
  uvt_barrier_destroy(&bar);
}

/* After test_locks.py::BarrierTests::test_abort_barrier_when_tasks_half_draining_half_blocking.
 * uvtask's barrier has no draining phase (a full cycle releases everyone
 * at once), so what remains of that test is: waiters parked when the
 * barrier is aborted, and every later arrival, get BrokenBarrierError. */
UVT_TEST(cpython_locks, barrier_test_abort_with_waiters) {
  uvt_task_t *t[4];
  bar_setup(5);
  spawn_waiters(t, 2, bar_waiter);
  cr_expect_eq(uvt_yield(), 0);
  uvt_barrier_abort(&bar);
  t[2] = uvt_spawn(bar_waiter, (void *)2);
  t[3] = uvt_spawn(bar_waiter, (void *)3);
  await_all(t, 4);
  for (int i = 0; i < 4; i++) cr_expect_eq(bar_status[i], UVT_EBROKEN);
  cr_expect(bar.broken);
  cr_expect_eq(bar.count, 0u);
  uvt_barrier_destroy(&bar);
}

#define BN 5
static uvt_barrier_t bar2;
static int results1, results2, results3;

/* coro of test_abort_barrier_when_exception: the task that arrives
 * (BN/2)th in the first cycle "raises" and aborts. */
static int abort_when_exception_coro(void *arg) {
  unsigned i = 99;
  int st;
  (void)arg;
  st = uvt_barrier_wait(&bar, &i);
  if (st == 0 && i == BN / 2) {
    uvt_barrier_abort(&bar);
    return 0;
  }
  if (st == 0) st = uvt_barrier_wait(&bar, NULL);
  if (st == 0) results1++;
  if (st == UVT_EBROKEN) results2++;
  return 0;
}

/* test_locks.py::BarrierTests::test_abort_barrier_when_exception */
UVT_TEST(cpython_locks, barrier_test_abort_barrier_when_exception) {
  uvt_task_t *t[BN];
  results1 = results2 = 0;
  bar_setup(BN);
  spawn_waiters(t, BN, abort_when_exception_coro);
  await_all(t, BN);
  cr_expect(bar.broken);
  cr_expect_eq(results1, 0);
  cr_expect_eq(results2, BN - 1);
  cr_expect_eq(bar.count, 0u);
  uvt_barrier_destroy(&bar);
}

static int abort_then_reset_coro(void *arg) {
  unsigned i = 99;
  int st;
  (void)arg;
  st = uvt_barrier_wait(&bar, &i);
  if (st == 0 && i == BN / 2) {
    uvt_barrier_abort(&bar);
  } else {
    if (st == 0) st = uvt_barrier_wait(&bar, NULL);
    if (st == 0) results1++;
    if (st == UVT_EBROKEN) results2++;
  }
  /* Everyone has left bar before the reset, and nobody enters it again
   * before the reset. */
  cr_expect_eq(uvt_barrier_wait(&bar2, &i), 0);
  if (i == BN / 2) uvt_barrier_reset(&bar);
  cr_expect_eq(uvt_barrier_wait(&bar2, NULL), 0);
  st = uvt_barrier_wait(&bar, NULL);
  if (st == 0) results3++;
  return st;
}

/* test_locks.py::BarrierTests::test_abort_barrier_when_exception_then_resetting */
UVT_TEST(cpython_locks, barrier_test_abort_barrier_when_exception_then_resetting) {
  uvt_task_t *t[BN];
  results1 = results2 = results3 = 0;
  bar_setup(BN);
  cr_expect_eq(uvt_barrier_init(&bar2, BN), 0);
  spawn_waiters(t, BN, abort_then_reset_coro);
  await_all(t, BN);
  cr_expect_not(bar.broken);
  cr_expect_eq(results1, 0);
  cr_expect_eq(results2, BN - 1);
  cr_expect_eq(results3, BN);
  uvt_barrier_destroy(&bar2);
  uvt_barrier_destroy(&bar);
}

/*
 * uvt_lock_t: mutual exclusion, FIFO hand-off, misuse, cancellation.
 *
 * Checks inside task bodies use cr_expect (a failed cr_assert would
 * longjmp off the task's stack); cr_assert only after uvt_run returns.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uvtask.h"

#define NWAIT 5

TestSuite(lock, .timeout = 20);

/* Yield often enough for every task spawned so far to reach its first
 * park: each yield lets every other ready task run once. */
static void settle(void) {
  for (int i = 0; i < 4; i++) cr_expect_eq(uvt_yield(), 0);
}

/* A task that only counts that it ran: spawned just before a call that
 * must not yield, it must not have run when the call returns. */
static int ticker(void *arg) {
  (*(int *)arg)++;
  return 0;
}

/* ---- mutual exclusion ---------------------------------------------------- */

struct excl {
  uvt_lock_t lock;
  int inside, max_inside, entries;
};

static int excl_worker(void *arg) {
  struct excl *s = arg;
  for (int round = 0; round < 3; round++) {
    cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
    s->inside++;
    s->entries++;
    if (s->inside > s->max_inside) s->max_inside = s->inside;
    /* Yield inside the critical section: the others must stay out. */
    cr_expect_eq(uvt_yield(), 0);
    cr_expect_eq(uvt_sleep(1), 0);
    cr_expect_eq(uvt_yield(), 0);
    s->inside--;
    cr_expect_eq(uvt_lock_release(&s->lock), 0);
  }
  return 0;
}

static int excl_main(void *arg) {
  struct excl *s = arg;
  uvt_task_t *t[4];
  cr_expect_eq(uvt_lock_init(&s->lock), 0);
  for (int i = 0; i < 4; i++) t[i] = uvt_spawn(excl_worker, s);
  cr_expect_eq(uvt_gather(t, 4), 0);
  cr_expect_not(uvt_lock_locked(&s->lock));
  uvt_lock_destroy(&s->lock);
  return 0;
}

Test(lock, mutual_exclusion_across_yields) {
  struct excl s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, excl_main, &s), 0);
  cr_assert_eq(s.max_inside, 1);
  cr_assert_eq(s.entries, 12);
  cr_assert_eq(s.inside, 0);
}

/* ---- FIFO order and hand-off --------------------------------------------- */

struct fifo {
  uvt_lock_t lock;
  int order[NWAIT + 1];
  int norder;
  int idx[NWAIT];
  int status[NWAIT];
};

static struct fifo *fifo_state;

static int fifo_waiter(void *arg) {
  int i = *(int *)arg;
  struct fifo *s = fifo_state;
  s->status[i] = uvt_lock_acquire(&s->lock);
  s->order[s->norder++] = i;
  cr_expect_eq(uvt_yield(), 0); /* hold it across a yield */
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  return 0;
}

static int fifo_main(void *arg) {
  struct fifo *s = arg;
  uvt_task_t *t[NWAIT];
  fifo_state = s;
  cr_expect_eq(uvt_lock_init(&s->lock), 0);
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  for (int i = 0; i < NWAIT; i++) {
    s->idx[i] = i;
    t[i] = uvt_spawn(fifo_waiter, &s->idx[i]);
    /* Let each one park before the next is spawned. */
    settle();
  }
  cr_expect_eq(s->norder, 0);
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  /* Handed to the first waiter, not unlocked: */
  cr_expect(uvt_lock_locked(&s->lock));
  /* so we queue behind all five instead of barging in. */
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  s->order[s->norder++] = NWAIT;
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  cr_expect_eq(uvt_gather(t, NWAIT), 0);
  uvt_lock_destroy(&s->lock);
  return 0;
}

Test(lock, fifo_order_and_no_barging) {
  struct fifo s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, fifo_main, &s), 0);
  cr_assert_eq(s.norder, NWAIT + 1);
  for (int i = 0; i <= NWAIT; i++) cr_assert_eq(s.order[i], i, "order[%d]", i);
  for (int i = 0; i < NWAIT; i++) cr_assert_eq(s.status[i], 0);
}

/* ---- fast path, misuse --------------------------------------------------- */

static int uncontended_main(void *arg) {
  int *ran = arg;
  uvt_lock_t l;
  uvt_task_t *t;
  cr_expect_eq(uvt_lock_init(&l), 0);
  t = uvt_spawn(ticker, ran);
  cr_expect_eq(uvt_lock_acquire(&l), 0);
  cr_expect_eq(*ran, 0, "an uncontended acquire yielded");
  cr_expect(uvt_lock_locked(&l));
  cr_expect_eq(uvt_lock_release(&l), 0);
  cr_expect_eq(*ran, 0, "release yielded");
  cr_expect_not(uvt_lock_locked(&l));
  cr_expect_eq(uvt_await(t), 0);
  uvt_lock_destroy(&l);
  return 0;
}

Test(lock, uncontended_acquire_does_not_yield) {
  int ran = 0;
  cr_assert_eq(uvt_run(NULL, uncontended_main, &ran), 0);
  cr_assert_eq(ran, 1);
}

static int unlocked_main(void *arg) {
  uvt_lock_t *l = arg;
  cr_expect_eq(uvt_lock_release(l), UVT_ENOTLOCKED);
  cr_expect_eq(uvt_lock_acquire(l), 0);
  cr_expect_eq(uvt_lock_release(l), 0);
  cr_expect_eq(uvt_lock_release(l), UVT_ENOTLOCKED);
  return 0;
}

Test(lock, release_unlocked) {
  uvt_lock_t l;
  cr_assert_eq(uvt_lock_init(&l), 0);
  cr_assert_eq(uvt_lock_release(&l), UVT_ENOTLOCKED); /* outside a task too */
  cr_assert_eq(uvt_run(NULL, unlocked_main, &l), 0);
  cr_assert_not(uvt_lock_locked(&l));
  uvt_lock_destroy(&l);
}

Test(lock, outside_a_task) {
  uvt_lock_t l;
  cr_assert_eq(uvt_lock_init(&l), 0);
  cr_assert_eq(uvt_lock_acquire(&l), UVT_ENOTASK);
  cr_assert_not(uvt_lock_locked(&l));
  uvt_lock_destroy(&l);
}

Test(lock, invalid_objects) {
  uvt_lock_t l;
  memset(&l, 0, sizeof l); /* never initialised */
  cr_assert_eq(uvt_lock_init(NULL), UVT_EINVAL);
  cr_assert_eq(uvt_lock_acquire(NULL), UVT_EINVAL);
  cr_assert_eq(uvt_lock_release(NULL), UVT_EINVAL);
  cr_assert_not(uvt_lock_locked(NULL));
  uvt_lock_destroy(NULL);
  cr_assert_eq(uvt_lock_acquire(&l), UVT_EINVAL);
  cr_assert_eq(uvt_lock_release(&l), UVT_EINVAL);
  uvt_lock_destroy(&l);
  cr_assert_eq(uvt_lock_init(&l), 0);
  uvt_lock_destroy(&l);
  cr_assert_eq(uvt_lock_acquire(&l), UVT_EINVAL); /* destroyed */
  cr_assert_eq(uvt_lock_release(&l), UVT_EINVAL);
  cr_assert_not(uvt_lock_locked(&l));
  uvt_lock_destroy(&l); /* twice: ignored */
}

/* ---- cancellation -------------------------------------------------------- */

struct cancel {
  uvt_lock_t lock;
  int idx[3];
  int status[3];
  int order[3];
  int norder;
  int after_cancel; /* status of the await that follows a late cancel */
};

static struct cancel *cancel_state;

static int cancel_waiter(void *arg) {
  int i = *(int *)arg;
  struct cancel *s = cancel_state;
  s->status[i] = uvt_lock_acquire(&s->lock);
  if (s->status[i] != 0) return s->status[i];
  s->order[s->norder++] = i;
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  return 0;
}

static int cancel_main(void *arg) {
  struct cancel *s = arg;
  uvt_task_t *t[3];
  cancel_state = s;
  cr_expect_eq(uvt_lock_init(&s->lock), 0);
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  for (int i = 0; i < 3; i++) {
    s->idx[i] = i;
    t[i] = uvt_spawn(cancel_waiter, &s->idx[i]);
    settle();
  }
  /* Cancel the first waiter while it is parked in acquire, and release
   * before it has run again: the lock must skip it. */
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect(uvt_lock_locked(&s->lock)); /* still ours */
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  cr_expect(uvt_lock_locked(&s->lock)); /* handed to t[1] */
  /* And the last one, behind t[1]. */
  cr_expect_eq(uvt_cancel(t[2]), 1);
  cr_expect_eq(uvt_await(t[0]), UVT_ECANCELED);
  cr_expect_eq(uvt_await(t[1]), 0);
  cr_expect_eq(uvt_await(t[2]), UVT_ECANCELED);
  cr_expect_not(uvt_lock_locked(&s->lock));
  /* The lock still works. */
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  uvt_lock_destroy(&s->lock);
  return 0;
}

Test(lock, cancel_parked_waiter) {
  struct cancel s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, cancel_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECANCELED);
  cr_assert_eq(s.status[1], 0);
  cr_assert_eq(s.status[2], UVT_ECANCELED);
  cr_assert_eq(s.norder, 1);
  cr_assert_eq(s.order[0], 1);
}

static int only_waiter_main(void *arg) {
  struct cancel *s = arg;
  uvt_task_t *t;
  cancel_state = s;
  cr_expect_eq(uvt_lock_init(&s->lock), 0);
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  s->idx[0] = 0;
  t = uvt_spawn(cancel_waiter, &s->idx[0]);
  settle();
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  /* Nobody waits any more: release unlocks. */
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  cr_expect_not(uvt_lock_locked(&s->lock));
  uvt_lock_destroy(&s->lock);
  return 0;
}

Test(lock, cancel_only_waiter_then_release_unlocks) {
  struct cancel s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, only_waiter_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECANCELED);
}

/* asyncio's rule (test_locks LockTests test_cancel_race): a waiter handed
 * the lock and cancelled before it runs again does not get it; its
 * acquire returns UVT_ECANCELED and the lock goes to the next waiter.
 * (Before, the cancelled waiter kept the lock and got the cancel at its
 * next await.) */
struct handoff;
struct handoff_waiter {
  struct handoff *s;
  int st;
};

struct handoff {
  uvt_lock_t lock;
  struct handoff_waiter w[2];
  int holder_ok;
};

static int handoff_waiter(void *arg) {
  struct handoff_waiter *w = arg;
  w->st = uvt_lock_acquire(&w->s->lock);
  if (w->st != 0) return w->st;
  w->s->holder_ok = w->s->lock.holder == uvt_current();
  cr_expect_eq(uvt_lock_release(&w->s->lock), 0);
  return 0;
}

static int handoff_main(void *arg) {
  struct handoff *s = arg;
  uvt_task_t *a, *b;
  cr_expect_eq(uvt_lock_init(&s->lock), 0);
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  s->w[0] = (struct handoff_waiter){s, -2};
  s->w[1] = (struct handoff_waiter){s, -2};
  a = uvt_spawn(handoff_waiter, &s->w[0]);
  b = uvt_spawn(handoff_waiter, &s->w[1]);
  settle();
  /* Hand the lock to a, then cancel a before it runs again. */
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  cr_expect_eq(uvt_cancel(a), 1);
  cr_expect_eq(uvt_await(a), UVT_ECANCELED);
  cr_expect_eq(uvt_await(b), 0);
  cr_expect_not(uvt_lock_locked(&s->lock));
  uvt_lock_destroy(&s->lock);
  return 0;
}

Test(lock, cancel_after_hand_off_passes_the_lock_on) {
  struct handoff s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, handoff_main, &s), 0);
  cr_assert_eq(s.w[0].st, UVT_ECANCELED, "the cancelled waiter got the lock");
  cr_assert_eq(s.w[1].st, 0, "the next waiter never got the lock");
  cr_assert(s.holder_ok, "the lock's holder is not the task holding it");
}

/* The same with nobody else waiting: the lock ends unlocked, and the
 * cancelled acquire left nothing behind in the lock's queue. */
struct lone {
  uvt_lock_t first, second;
  int st_first, st_second;
};

static int lone_waiter(void *arg) {
  struct lone *s = arg;
  s->st_first = uvt_lock_acquire(&s->first); /* handed over, then cancelled */
  if (s->st_first != 0) return s->st_first;
  s->st_second = uvt_lock_acquire(&s->second);
  return s->st_second;
}

static int lone_main(void *arg) {
  struct lone *s = arg;
  uvt_task_t *t;
  cr_expect_eq(uvt_lock_init(&s->first), 0);
  cr_expect_eq(uvt_lock_init(&s->second), 0);
  cr_expect_eq(uvt_lock_acquire(&s->first), 0);
  t = uvt_spawn(lone_waiter, s);
  settle();
  cr_expect_eq(uvt_lock_release(&s->first), 0);
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  cr_expect_not(uvt_lock_locked(&s->first));
  cr_expect_null(s->first.holder);
  cr_expect_eq(uvt_lock_acquire(&s->first), 0); /* no hang */
  cr_expect_eq(uvt_lock_release(&s->first), 0);
  uvt_lock_destroy(&s->first);
  uvt_lock_destroy(&s->second);
  return 0;
}

Test(lock, cancel_after_hand_off_with_no_other_waiter_unlocks) {
  struct lone s;
  memset(&s, 0, sizeof s);
  s.st_second = 1;
  cr_assert_eq(uvt_run(NULL, lone_main, &s), 0);
  cr_assert_eq(s.st_first, UVT_ECANCELED);
  cr_assert_eq(s.st_second, 1, "the cancelled task went on past its acquire");
}

/* A task still parked in acquire when main returns is cancelled by
 * uvt_run (pending-at-exit): it must leave the lock's queue, so that a
 * later release does not hand the lock to a task that no longer exists. */
struct at_exit {
  uvt_lock_t lock;
  int status;
};

static int at_exit_waiter(void *arg) {
  struct at_exit *s = arg;
  s->status = uvt_lock_acquire(&s->lock);
  return s->status;
}

static int at_exit_main(void *arg) {
  struct at_exit *s = arg;
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  uvt_detach(uvt_spawn(at_exit_waiter, s));
  settle();
  return 0; /* still holding the lock, the waiter parked */
}

Test(lock, waiter_pending_at_exit_leaves_the_queue) {
  struct at_exit s;
  memset(&s, 0, sizeof s);
  s.status = 1;
  cr_assert_eq(uvt_lock_init(&s.lock), 0);
  cr_assert_eq(uvt_run(NULL, at_exit_main, &s), 0);
  cr_assert_eq(s.status, UVT_ECANCELED);
  cr_assert(uvt_lock_locked(&s.lock));
  cr_assert_eq(uvt_lock_release(&s.lock), 0); /* nobody to hand it to */
  cr_assert_not(uvt_lock_locked(&s.lock));
  uvt_lock_destroy(&s.lock);
}

/* ---- destroy ------------------------------------------------------------- */

static int closed_waiter(void *arg) {
  struct cancel *s = cancel_state;
  int i = *(int *)arg;
  s->status[i] = uvt_lock_acquire(&s->lock);
  return 0;
}

static int closed_main(void *arg) {
  struct cancel *s = arg;
  uvt_task_t *t[2];
  cancel_state = s;
  cr_expect_eq(uvt_lock_init(&s->lock), 0);
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  for (int i = 0; i < 2; i++) {
    s->idx[i] = i;
    s->status[i] = 1;
    t[i] = uvt_spawn(closed_waiter, &s->idx[i]);
  }
  settle();
  uvt_lock_destroy(&s->lock);
  cr_expect_eq(uvt_gather(t, 2), 0);
  return 0;
}

Test(lock, destroy_wakes_waiters_with_eclosed) {
  struct cancel s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, closed_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECLOSED);
  cr_assert_eq(s.status[1], UVT_ECLOSED);
}

/* ---- a holder that ends holding the lock ----------------------------------- */

/* Each of many tasks ends holding its own lock.  The locks stay taken (the
 * bug is the program's; its next user would wait), but each ended task's
 * struct is freed: what the lock keeps of it is a small record, freed in
 * turn by a release from another task or by uvt_lock_destroy.  Heap bytes
 * in use (mallinfo2) are counted around it. */
#define NENDED 100000
#define BATCH 1000

struct ended {
  uvt_lock_t *locks;
  int next;
  size_t heap_before, heap_held, heap_after;
  int acquired, still_locked, released;
};

static size_t heap_in_use(void) { return mallinfo2().uordblks; }

static int take_and_return(void *arg) {
  struct ended *s = *(struct ended **)arg;
  int i = s->next++;
  if (uvt_lock_acquire(&s->locks[i]) == 0) s->acquired++;
  return 0; /* holding it */
}

/* Spawn `n` tasks that each take the next lock and end; await them. */
static void end_holding(struct ended *s, int n) {
  uvt_task_t *t[BATCH];
  for (int done = 0; done < n; done += BATCH) {
    int k = n - done < BATCH ? n - done : BATCH;
    for (int j = 0; j < k; j++) t[j] = uvt_spawn(take_and_return, &s);
    for (int j = 0; j < k; j++) cr_expect_eq(uvt_await(t[j]), 0);
  }
}

static int ended_main(void *arg) {
  struct ended *s = arg;
  /* Fill the stack pool and the task quarantine first. */
  end_holding(s, 2 * BATCH);
  s->heap_before = heap_in_use();
  end_holding(s, NENDED);
  s->heap_held = heap_in_use();
  for (int i = 0; i < s->next; i++) s->still_locked += uvt_lock_locked(&s->locks[i]);
  /* Another task may release it (as asyncio allows): it is free again. */
  s->released = uvt_lock_release(&s->locks[2 * BATCH]) == 0 &&
                !uvt_lock_locked(&s->locks[2 * BATCH]) &&
                uvt_lock_acquire(&s->locks[2 * BATCH]) == 0 &&
                uvt_lock_release(&s->locks[2 * BATCH]) == 0;
  for (int i = 0; i < s->next; i++) uvt_lock_destroy(&s->locks[i]);
  s->heap_after = heap_in_use();
  return 0;
}

Test(lock, tasks_ending_holding_their_lock_are_freed_and_the_lock_keeps_a_small_record) {
  struct ended s = {0};
  void *volatile probe; /* volatile: the compiler may not drop the pair */
  size_t h0;
  s.locks = calloc(NENDED + 2 * BATCH, sizeof(*s.locks));
  cr_assert_not_null(s.locks);
  for (int i = 0; i < NENDED + 2 * BATCH; i++) cr_assert_eq(uvt_lock_init(&s.locks[i]), 0);
  cr_assert_eq(uvt_run(NULL, ended_main, &s), 0);
  cr_assert_eq(s.acquired, NENDED + 2 * BATCH);
  cr_assert_eq(s.still_locked, NENDED + 2 * BATCH, "a lock left held stays taken");
  cr_assert(s.released, "another task's release frees it");
  h0 = heap_in_use();
  probe = malloc(1 << 14);
  if (heap_in_use() < h0 + (1 << 14)) {
    free(probe);
    free(s.locks);
    cr_skip("mallinfo2 does not see this malloc (a sanitizer's allocator)");
  }
  free(probe);
  cr_log_info("heap: %+ld bytes per task that ended holding its lock, %+ld once "
              "the locks are destroyed",
              ((long)s.heap_held - (long)s.heap_before) / NENDED,
              (long)s.heap_after - (long)s.heap_before);
  /* Before: a task struct (~400 bytes) kept per lock, for the process's life. */
  cr_expect_leq(s.heap_held - s.heap_before, (size_t)NENDED * 96,
                "%zu bytes kept per task that ended holding its lock",
                (s.heap_held - s.heap_before) / NENDED);
  cr_expect_leq(s.heap_after, s.heap_before + 64 * 1024,
                "%zu bytes still in use once the locks are destroyed",
                s.heap_after - s.heap_before);
  free(s.locks);
}

/* A lock left held by a task that ended, with a task queued on it: a
 * release by a third task hands it to the waiter, who then owns it. */
struct handed {
  uvt_lock_t lock;
  int waiter_got, waiter_was_holder, released_by_main;
};

static int leave_holding(void *arg) {
  struct handed *s = arg;
  cr_expect_eq(uvt_lock_acquire(&s->lock), 0);
  return 0;
}

static int wait_for_left_lock(void *arg) {
  struct handed *s = arg;
  s->waiter_got = uvt_lock_acquire(&s->lock) == 0;
  s->waiter_was_holder = s->lock.holder == uvt_current();
  cr_expect_eq(uvt_lock_release(&s->lock), 0);
  return 0;
}

static int handed_main(void *arg) {
  struct handed *s = arg;
  uvt_task_t *w;
  cr_expect_eq(uvt_await(uvt_spawn(leave_holding, s)), 0);
  w = uvt_spawn(wait_for_left_lock, s);
  settle();
  cr_expect_eq(s->waiter_got, 0, "the lock is still taken");
  s->released_by_main = uvt_lock_release(&s->lock) == 0;
  cr_expect_eq(uvt_await(w), 0);
  return 0;
}

Test(lock, a_lock_left_by_an_ended_task_is_handed_to_its_waiter_on_release) {
  struct handed s = {0};
  cr_assert_eq(uvt_lock_init(&s.lock), 0);
  cr_assert_eq(uvt_run(NULL, handed_main, &s), 0);
  cr_assert(s.released_by_main);
  cr_assert(s.waiter_got);
  cr_assert(s.waiter_was_holder);
  cr_assert_not(uvt_lock_locked(&s.lock));
  uvt_lock_destroy(&s.lock);
}

/* A lock on the ending task's own stack dies with the task: nothing is
 * kept for it (a record was allocated and dropped, a leak per task). */
static int take_own_and_return(void *arg) {
  uvt_lock_t own;
  (void)arg;
  if (uvt_lock_init(&own) != 0 || uvt_lock_acquire(&own) != 0) return -1;
  return 0; /* holding it, as it goes */
}

static int own_main(void *arg) {
  size_t *grew = arg, before;
  for (int round = 0; round < 2; round++) {
    /* Round 0 fills the stack pool and the quarantine. */
    before = heap_in_use();
    for (int i = 0; i < NENDED / 10; i++)
      if (uvt_await(uvt_spawn(take_own_and_return, NULL)) != 0) return -1;
    *grew = heap_in_use() - before;
  }
  return 0;
}

Test(lock, a_lock_on_the_ending_tasks_own_stack_keeps_nothing) {
  size_t grew = 0, h0;
  void *volatile probe;
  cr_assert_eq(uvt_run(NULL, own_main, &grew), 0);
  h0 = heap_in_use();
  probe = malloc(1 << 14);
  if (heap_in_use() < h0 + (1 << 14)) {
    free(probe);
    cr_skip("mallinfo2 does not see this malloc (a sanitizer's allocator; LSan checks it)");
  }
  free(probe);
  cr_expect_leq(grew, (size_t)16 * 1024, "%zu bytes kept for %d locks that died with their tasks",
                grew, NENDED / 10);
}

/*
 * asyncio.Lock.
 *
 * The lock is held while `holder` is set (a task, or the placeholder of
 * one that ended holding it); `waiters` queues the tasks parked in
 * acquire, first come first served.  The struct's `locked` field is no
 * longer kept: one word fewer to write on each side of the uncontended
 * path.  Release with waiters
 * does not unlock: it hands the lock straight to the first waiter (which
 * is woken with the lock already its own), so a task that calls acquire
 * in between cannot barge in ahead of the queue.  Hence the invariant
 *
 *     holder == NULL  =>  waiters is empty
 *
 * and acquire on an unlocked lock takes it at once, without yielding.
 */
#include "internal.h"
#include "waitq.h"

#include <stdlib.h>
#include <string.h>

/* Expected true: the error code is then loaded only on the way out,
 * not ahead of the test on the fast path (one instruction of an
 * uncontended acquire or release, 2 % of the pair). */
static inline bool lock_valid(const uvt_lock_t *l) {
  return UVT__LIKELY(l != NULL && l->magic == UVT__MAGIC_LIVE);
}

int uvt_lock_init(uvt_lock_t *l) {
  if (l == NULL) return UVT_EINVAL;
  memset(l, 0, sizeof(*l));
  uvt__waitq_init(&l->waiters);
  l->magic = UVT__MAGIC_LIVE;
  return 0;
}

/* ---- holders ---------------------------------------------------------------
 *
 * The holder and where it took the lock are read by the deadlock and
 * stall checks.  Each task lists the locks it holds (held_locks, through
 * next_held, the last taken first: releases mostly come in that order, so
 * the fast path unlinks the head).  A task that ends holding some hands
 * each to a small record of it (ended_t: id, name, creation site), owned
 * by the lock and freed when the lock is released or destroyed; the lock
 * then names `ended_holder`, a placeholder that is never parked and holds
 * no list, so the task's own struct is freed as any other's. */

/* `l`'s holder lets go of it (release, hand-off, destroy), off the fast
 * path: a lock not first in its holder's list, or held by a record. */
static __attribute__((noinline, cold)) void holder_unlink_slow(uvt_lock_t *l) {
  uvt_task_t *t = l->holder;
  if (t == &uvt__ended_holder) {
    uvt__lock_ended_free(l);
    return;
  }
  {
    uvt_lock_t **pp = &t->held_locks;
    while (*pp != NULL && *pp != l) pp = &(*pp)->next_held;
    if (*pp == NULL) uvt__panic("a held lock is missing from its holder's list");
    *pp = l->next_held;
  }
}

static inline __attribute__((always_inline)) void holder_unlink(uvt_lock_t *l) {
  uvt_task_t *t = l->holder;
  if (UVT__LIKELY(t->held_locks == l)) t->held_locks = l->next_held;
  else holder_unlink_slow(l);
}

static inline __attribute__((always_inline)) void holder_link(uvt_lock_t *l,
                                                               uvt_task_t *t) {
  l->holder = t;
  l->next_held = t->held_locks;
  t->held_locks = l;
}

static void lock_set_holder(uvt_lock_t *l, uvt_task_t *t,
                            const uvt__site_t *site) {
  if (l->holder != NULL) holder_unlink(l);
  l->holder = NULL;
  if (t != NULL) holder_link(l, t);
  l->acquired_file = site != NULL ? site->file : NULL;
  l->acquired_line = site != NULL ? site->line : 0;
}

UVT__HOOK_FN hook_lock(uvt_hook_kind_t kind, const uvt_lock_t *l,
                      const uvt_task_t *t, const char *file, int line,
                      const char *func) {
  UVT__HOOK(.kind = kind, .object_kind = UVT_OBJECT_TASK, .id = t->obj.id,
            .task_id = t->obj.id, .name = t->obj.name, .where_file = file,
            .where_line = line, .where_func = func, .wait = UVT_WAIT_LOCK,
            .wait_on = l, .loop = t->sched->loop, .object = t);
  (void)kind, (void)l, (void)t, (void)file, (void)line, (void)func;
}

/* The lock goes to its first waiter `n`. */
static __attribute__((noinline)) int lock_hand_off(uvt_lock_t *l,
                                                   uvt__wq_node_t *n) {
  lock_set_holder(l, n->task, n->site);
  uvt__waitq_grant_first(&l->waiters, NULL);
  return 0;
}

/* Unlocked by a task that ended holding it, or not in the last-taken-first
 * order. */
static __attribute__((noinline, cold)) int lock_unlock_slow(uvt_lock_t *l) {
  holder_unlink_slow(l);
  l->holder = NULL;
  return 0;
}

/* Hand the lock to the first waiter, or unlock it.  Unlocked, the holder
 * is NULL; acquired_file/line are then stale and not read.  What leaves
 * the fast path does so by tail calls: the uncontended release then keeps
 * no register across a call. */
static inline __attribute__((always_inline)) int
lock_release_to_next(uvt_lock_t *l) {
  uvt__wq_node_t *n = l->waiters.head;
  uvt_task_t *t;
  if (n != NULL) return lock_hand_off(l, n);
  t = l->holder;
  if (UVT__UNLIKELY(t->held_locks != l)) return lock_unlock_slow(l);
  t->held_locks = l->next_held;
  l->holder = NULL;
  return 0;
}

/* A waiter handed the lock and cancelled before it ran gives it on. */
static bool lock_revoke(uvt__wq_node_t *n) {
  (void)lock_release_to_next(n->obj);
  return true;
}

/* The lock is held: queue behind its holder.  Out of line, so that the
 * uncontended acquire builds no site nor node. */
static __attribute__((noinline)) int
lock_wait(uvt_lock_t *l, uvt_task_t *self, const char *file, int line,
          const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_lock_acquire", UVT_WAIT_LOCK, l, false);
  uvt__wq_node_t node = {0};
  int st;
  /* Waiting for a held lock is an edge to its holder. */
  uvt__deadlock_check(self, &site);
  /* On 0 the releaser has handed us the lock (holder set to us, never
   * NULL in between).  On UVT_ECANCELED we were unlinked before anyone gave it
   * to us; on UVT_ECLOSED the lock is gone: do not touch it. */
  /* The uncontended acquire does not bind the lock to its loop (the
   * first release does); a lock waited on is bound from here on. */
  if (l->loop == NULL) l->loop = self->sched->loop;
  node.revoke = lock_revoke;
  node.obj = l;
  st = uvt__waitq_wait(&l->waiters, &node, self, &site);
  if (st == 0)
    UVT__HOOK_AT(hook_lock, UVT_HOOK_LOCK_ACQUIRED, l, self, file, line, func);
  return st;
}

/* `hooks` false (a constant): the caller found the hook flag clear. */
static inline __attribute__((always_inline)) int
lock_take(uvt_lock_t *l, uvt_task_t *self, const char *file, int line,
          const char *func, bool hooks) {
  if (UVT__UNLIKELY(l->holder != NULL))
    return lock_wait(l, self, file, line, func);
  holder_link(l, self);
  l->acquired_file = file;
  l->acquired_line = line;
  if (hooks) UVT__HOOK_AT(hook_lock, UVT_HOOK_LOCK_ACQUIRED, l, self, file, line, func);
  return 0;
}

/* Debug library, once a no-yield section was opened or with a hook
 * subscriber (uvt__gate): the yield-point check, then the acquire with
 * its event (lock_take tests the hook flag again).  A tail call
 * from the fast path, which then keeps no register across a call. */
static __attribute__((noinline, cold, unused)) int
lock_take_watched(uvt_lock_t *l, uvt_task_t *self, const char *file,
                  int line, const char *func) {
  UVT__YIELD_POINT(self, "uvt_lock_acquire");
  return lock_take(l, self, file, line, func, true);
}

int uvt_lock_acquire_at(uvt_lock_t *l, const char *file, int line,
                        const char *func) {
  uvt_task_t *self;

  if (!lock_valid(l)) return UVT_EINVAL;
  self = uvt__task_current();
  if (self == NULL) return uvt__no_task_here(&l->loop, "uvt_lock_acquire", file, line);
  /* No binding to the loop here: the release that must follow binds it
   * (lock_release_checked), and an acquire needs a task of some loop
   * anyway.  Three instructions of the uncontended pair. */
#ifdef ASYNCIODEBUG
  if (UVT__GATE()) return lock_take_watched(l, self, file, line, func);
#endif
  return lock_take(l, self, file, line, func, false);
}

static inline __attribute__((always_inline)) int
lock_release_now(uvt_lock_t *l, bool hooks) {
  if (l->holder == NULL) return UVT_ENOTLOCKED;
  if (hooks && uvt__task_current() != NULL)
    hook_lock(UVT_HOOK_LOCK_RELEASED, l, uvt__task_current(), NULL, 0, NULL);
  return lock_release_to_next(l);
}

/* With a hook subscriber: the release and its event.  A tail call, for
 * the same reason as lock_take_watched. */
static __attribute__((noinline, cold, unused)) int
lock_release_hooked(uvt_lock_t *l) {
  return lock_release_now(l, true);
}

/* Not on this thread's loop: the thread check, then the release.  A tail
 * call from the fast path, which then keeps no register across a call
 * (12 % of an uncontended acquire+release otherwise). */
static __attribute__((noinline, cold)) int
lock_release_checked(uvt_lock_t *l, const char *file, int line) {
  int err;
  /* Not bound yet (acquires do not bind): its loop is its holder's. */
  if (l->loop == NULL && l->holder != NULL && l->holder != &uvt__ended_holder)
    l->loop = l->holder->sched->loop;
  err = uvt__loop_check_slow(&l->loop, "uvt_lock_release", file, line);
  return err != 0 ? err : lock_release_now(l, UVT__HOOKS_ACTIVE());
}

int uvt_lock_release_at(uvt_lock_t *l, const char *file, int line,
                        const char *func) {
  (void)func;
  if (!lock_valid(l)) return UVT_EINVAL;
  if (UVT__UNLIKELY(l->loop != uvt__tls_loop))
    return lock_release_checked(l, file, line);
  if (UVT__HOOKS_ACTIVE()) return lock_release_hooked(l);
  return lock_release_now(l, false);
}

bool uvt_lock_locked(const uvt_lock_t *l) {
  return lock_valid(l) && l->holder != NULL;
}

void uvt_lock_destroy_at(uvt_lock_t *l,
                         const char *file, int line, const char *func) {
  (void)func;
  if (!lock_valid(l) || uvt__loop_check(&l->loop, "uvt_lock_destroy", file, line)) return;
  uvt__waitq_wake_all(&l->waiters, UVT_ECLOSED);
  lock_set_holder(l, NULL, NULL);
  l->magic = UVT__MAGIC_DEAD;
}

/* The plain symbols of 0.2.0, for programs built before the header's
 * macros passed the caller's location (reported as unknown). */
int (uvt_lock_release)(uvt_lock_t *l) {
  return uvt_lock_release_at(l, NULL, 0, NULL);
}
void (uvt_lock_destroy)(uvt_lock_t *l) {
  uvt_lock_destroy_at(l, NULL, 0, NULL);
}

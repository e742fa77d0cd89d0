/*
 * asyncio.Lock.
 *
 * `locked` says whether some task holds the lock; `waiters` queues the
 * tasks parked in acquire, first come first served.  Release with waiters
 * does not unlock: it hands the lock straight to the first waiter (which
 * is woken with the lock already its own), so a task that calls acquire
 * in between cannot barge in ahead of the queue.  Hence the invariant
 *
 *     !locked  =>  waiters is empty
 *
 * and acquire on an unlocked lock takes it at once, without yielding.
 */
#include "internal.h"
#include "waitq.h"

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

/* The holder and where it took the lock: read by the deadlock check.
 * Each task counts the locks it holds (nlocks): one that ends holding
 * any is kept readable for as long as the process runs, since the lock
 * still names it. */
static void lock_set_holder(uvt_lock_t *l, uvt_task_t *t,
                            const uvt__site_t *site) {
  if (l->holder != NULL) l->holder->nlocks--;
  l->holder = t;
  if (t != NULL) t->nlocks++;
  l->acquired_file = site != NULL ? site->file : NULL;
  l->acquired_line = site != NULL ? site->line : 0;
}

/* Structs of tasks that ended holding a lock: reachable from here, never
 * freed (a lock left held is itself the bug; its next acquirer waits
 * forever and may walk to its holder). */
static uv_mutex_t kept_mutex;
static uv_once_t kept_once = UV_ONCE_INIT;
static uvt_task_t *kept_head;

static void kept_init(void) {
  if (uv_mutex_init(&kept_mutex) != 0)
    uvt__panic("cannot initialise the kept-holders mutex");
}

void uvt__lock_holder_keep(uvt_task_t *t) {
  uv_once(&kept_once, kept_init);
  uv_mutex_lock(&kept_mutex);
  t->ready_next = kept_head;
  kept_head = t;
  uv_mutex_unlock(&kept_mutex);
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

/* Hand the lock to the first waiter, or unlock it.  Unlocked, the holder
 * is NULL; acquired_file/line are then stale and not read. */
static inline __attribute__((always_inline)) void
lock_release_to_next(uvt_lock_t *l) {
  uvt__wq_node_t *n = l->waiters.head;
  if (n != NULL) {
    lock_set_holder(l, n->task, n->site);
    uvt__waitq_grant_first(&l->waiters, NULL);
  } else {
    l->locked = 0;
    l->holder->nlocks--;
    l->holder = NULL;
  }
}

/* A waiter handed the lock and cancelled before it ran gives it on. */
static bool lock_revoke(uvt__wq_node_t *n) {
  lock_release_to_next(n->obj);
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
  /* On 0 the releaser has handed us the lock (locked stayed 1, holder
   * set to us).  On UVT_ECANCELED we were unlinked before anyone gave it
   * to us; on UVT_ECLOSED the lock is gone: do not touch it. */
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
  if (UVT__UNLIKELY(l->locked)) return lock_wait(l, self, file, line, func);
  l->locked = 1;
  l->holder = self;
  self->nlocks++;
  l->acquired_file = file;
  l->acquired_line = line;
  if (hooks) UVT__HOOK_AT(hook_lock, UVT_HOOK_LOCK_ACQUIRED, l, self, file, line, func);
  return 0;
}

/* Debug library, inside a no-yield section or with a hook subscriber:
 * the yield-point check, then the acquire with its event.  A tail call
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
  if (l->loop == NULL) l->loop = self->sched->loop;
#ifdef ASYNCIODEBUG
  if (UVT__UNLIKELY(self->no_yield_depth > 0) || UVT__HOOKS_ACTIVE())
    return lock_take_watched(l, self, file, line, func);
#endif
  return lock_take(l, self, file, line, func, false);
}

static inline __attribute__((always_inline)) int
lock_release_now(uvt_lock_t *l, bool hooks) {
  if (!l->locked) return UVT_ENOTLOCKED;
  if (hooks && uvt__task_current() != NULL)
    hook_lock(UVT_HOOK_LOCK_RELEASED, l, uvt__task_current(), NULL, 0, NULL);
  lock_release_to_next(l);
  return 0;
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
  int err = uvt__loop_check_slow(&l->loop, "uvt_lock_release", file, line);
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
  return lock_valid(l) && l->locked != 0;
}

void uvt_lock_destroy_at(uvt_lock_t *l,
                         const char *file, int line, const char *func) {
  (void)func;
  if (!lock_valid(l) || uvt__loop_check(&l->loop, "uvt_lock_destroy", file, line)) return;
  uvt__waitq_wake_all(&l->waiters, UVT_ECLOSED);
  l->locked = 0;
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

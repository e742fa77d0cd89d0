/*
 * asyncio.Condition.
 *
 * `waiters` queues the tasks parked in wait, in order; `lock` is the
 * caller's lock, which every call requires held by the calling task.
 * notify pops up to n waiters and wakes them granted; each then takes the
 * lock again (after the notifier releases it) before its wait returns.  A
 * notified waiter cancelled before it runs passes the notification on to
 * the next waiter, so that a notify is not lost to a cancellation.
 */
#include "internal.h"
#include "waitq.h"

#include <string.h>

static bool cond_valid(const uvt_cond_t *c) {
  return c != NULL && c->magic == UVT__MAGIC_LIVE;
}

/* The calling task holds the condition's lock. */
static bool cond_owned(const uvt_cond_t *c) {
  uvt_task_t *self = uvt__task_current();
  return self != NULL && uvt_lock_locked(c->lock) && c->lock->holder == self;
}

int uvt_cond_init(uvt_cond_t *c, uvt_lock_t *lock) {
  if (c == NULL || lock == NULL) return UVT_EINVAL;
  memset(c, 0, sizeof(*c));
  uvt__waitq_init(&c->waiters);
  c->lock = lock;
  c->magic = UVT__MAGIC_LIVE;
  return 0;
}

static bool cond_revoke(uvt__wq_node_t *n) {
  uvt_cond_t *c = n->obj;
  (void)uvt__waitq_grant_first(&c->waiters, NULL);
  return true;
}

int uvt_cond_wait_at(uvt_cond_t *c, const char *file, int line,
                     const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_cond_wait", UVT_WAIT_CONDITION, c, false);
  uvt__wq_node_t node = {0};
  uvt_task_t *self;
  int st, lst;

  if (!cond_valid(c)) return UVT_EINVAL;
  if ((self = uvt__task_current()) == NULL)
    return uvt__no_task_here(&c->loop, "uvt_cond_wait", file, line);
  if (c->loop == NULL) c->loop = self->sched->loop;
  UVT__YIELD_POINT(self, "uvt_cond_wait");
  if (!cond_owned(c)) return UVT_ENOTLOCKED;
  node.revoke = cond_revoke;
  node.obj = c;
  /* Queued before the release: a notify from the task the lock goes to
   * reaches us. */
  uvt_lock_release(c->lock);
  st = uvt__waitq_wait(&c->waiters, &node, self, &site);
  if (st == UVT_ECLOSED) return st; /* destroyed: the lock may be gone too */
  /* Take the lock back whatever happened; a cancel meanwhile is kept
   * for the caller, as asyncio's wait does. */
  while ((lst = uvt_lock_acquire_at(c->lock, file, line, func)) == UVT_ECANCELED)
    st = UVT_ECANCELED;
  return lst != 0 ? lst : st;
}

int uvt_cond_notify_at(uvt_cond_t *c, unsigned n,
                       const char *file, int line, const char *func) {
  int err;
  if (!cond_valid(c)) return UVT_EINVAL;
  (void)func;
  if ((err = uvt__loop_check(&c->loop, "uvt_cond_notify", file, line))) return err;
  if (!cond_owned(c)) return UVT_ENOTLOCKED;
  while (n-- > 0 && uvt__waitq_grant_first(&c->waiters, NULL)) continue;
  return 0;
}

int uvt_cond_notify_all_at(uvt_cond_t *c,
                           const char *file, int line, const char *func) {
  int err;
  if (!cond_valid(c)) return UVT_EINVAL;
  (void)func;
  if ((err = uvt__loop_check(&c->loop, "uvt_cond_notify_all", file, line))) return err;
  if (!cond_owned(c)) return UVT_ENOTLOCKED;
  uvt__waitq_wake_all(&c->waiters, 0);
  return 0;
}

void uvt_cond_destroy_at(uvt_cond_t *c,
                         const char *file, int line, const char *func) {
  (void)func;
  if (!cond_valid(c) || uvt__loop_check(&c->loop, "uvt_cond_destroy", file, line)) return;
  uvt__waitq_wake_all(&c->waiters, UVT_ECLOSED);
  c->magic = UVT__MAGIC_DEAD;
}

/* The plain symbols of 0.2.0, for programs built before the header's
 * macros passed the caller's location (reported as unknown). */
int (uvt_cond_notify)(uvt_cond_t *c, unsigned n) {
  return uvt_cond_notify_at(c, n, NULL, 0, NULL);
}
int (uvt_cond_notify_all)(uvt_cond_t *c) {
  return uvt_cond_notify_all_at(c, NULL, 0, NULL);
}
void (uvt_cond_destroy)(uvt_cond_t *c) {
  uvt_cond_destroy_at(c, NULL, 0, NULL);
}

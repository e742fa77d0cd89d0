/*
 * Timeout scopes (asyncio.timeout, with 3.12's nesting rule): at the
 * deadline the scope cancels its task; leaving with the UVT_ECANCELED
 * that caused turns it into UVT_ETIMEDOUT if, once the scope's request
 * is taken back, no other cancel request is left above the count at
 * entry.  The timer node lives in the caller's struct (`timer` words):
 * entering a scope allocates nothing.
 */
#include "scope.h"

#include <stddef.h>
#include <string.h>

enum { TO_ARMED = 1, TO_EXPIRING = 2, TO_EXPIRED = 3, TO_LEFT = 4 };

/* The public struct keeps the node as plain words (the node's type is
 * internal); those words are only ever read and written as the node. */
typedef uvt__timer_t timer_alias_t;
_Static_assert(sizeof(uvt__timer_t) <= sizeof(((uvt_timeout_t *)0)->timer),
               "uvt_timeout_t.timer holds a timer node");

static timer_alias_t *node(uvt_timeout_t *to) {
  return (timer_alias_t *)(void *)to->timer;
}

static void expire(uvt__timer_t *tm) {
  uvt_timeout_t *to =
      (uvt_timeout_t *)(void *)((char *)tm - offsetof(uvt_timeout_t, timer));
  to->state = TO_EXPIRING;
  uvt__task_cancel(to->scope.task);
}

static int arm(uvt_timeout_t *to, int64_t ms) {
  uvt_task_t *t = to->scope.task;
  uvt__timer_stop(t->sched, node(to));
  if (ms < 0) return 0;
  return uvt__timer_start(t->sched, node(to), (uint64_t)ms, expire);
}

int uvt_timeout_enter(uvt_timeout_t *to, int64_t ms) {
  uvt_task_t *self = uvt__task_current();
  int err;
  if (self == NULL) return UVT_ENOTASK;
  if (to == NULL || ms < -1) return UVT_EINVAL;
  memset(to, 0, sizeof(*to));
  uvt__timer_init(node(to));
  to->state = TO_ARMED;
  to->base_cancelling = self->cancel_requests;
  to->pending_at_entry = self->cancel_pending;
  uvt__scope_push(self, &to->scope, UVT__SCOPE_TIMEOUT);
  if ((err = arm(to, ms)) != 0) {
    uvt__scope_pop(&to->scope);
    to->state = 0;
  }
  return err;
}

int uvt_timeout_reschedule(uvt_timeout_t *to, int64_t ms) {
  if (to == NULL || ms < -1 || to->scope.magic != UVT__SCOPE_MAGIC ||
      to->scope.kind != UVT__SCOPE_TIMEOUT || to->state != TO_ARMED)
    return UVT_EINVAL;
  return arm(to, ms);
}

bool uvt_timeout_expired(const uvt_timeout_t *to) {
  return to != NULL && (to->state == TO_EXPIRING || to->state == TO_EXPIRED);
}

int uvt_timeout_leave(uvt_timeout_t *to, int status) {
  uvt_task_t *self = uvt__task_current();
  if (self == NULL) return UVT_ENOTASK;
  if (to == NULL || !uvt__scope_leavable(&to->scope, UVT__SCOPE_TIMEOUT, self))
    return UVT_EINVAL;
  uvt__timer_stop(self->sched, node(to));
  uvt__scope_pop(&to->scope);
  if (to->state == TO_EXPIRING) {
    to->state = TO_EXPIRED;
    /* Ours was the last request above the entry's count: the cancel the
     * code saw (or, not yet delivered, now never will) was this scope's. */
    if (uvt__uncancel(self) <= to->base_cancelling) {
      if (!to->pending_at_entry) self->cancel_pending = false;
      if (status == UVT_ECANCELED) return UVT_ETIMEDOUT;
    }
    return status;
  }
  to->state = TO_LEFT;
  return status;
}

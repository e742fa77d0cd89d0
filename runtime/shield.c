/*
 * asyncio.shield: await a task without passing the awaiter's cancel on
 * to it.
 */
#include "internal.h"

#include <string.h>

static void shield_fire(uvt__waiter_t *w) { uvt__wake(w->task, 0); }

int uvt_shield_at(uvt_task_t *t, void **result, char **message,
                  const char *file, int line, const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt__site_t site = UVT__SITE_ON("uvt_shield", UVT_WAIT_TASK, t, false);
  bool cancelled = false;
  int err;
  if (self == NULL) return UVT_ENOTASK;
  UVT__YIELD_POINT(self, "uvt_shield");
  if (t == NULL) return UVT_EINVAL;
  if (t->obj.magic != UVT__MAGIC_LIVE) return UVT_ERELEASED;
  if (t == self) return UVT_ESELF;
  if (t->sched != self->sched) return UVT_EWRONGTHREAD;
  if (!t->out.done) {
    uvt__waiter_t w;
    memset(&w, 0, sizeof(w));
    w.fire = shield_fire;
    w.task = self;
    w.target = t;
    uvt__waiters_push(&t->out.waiters, &w);
    /* NULL on_cancel: a cancel wakes us at once, `t` is left alone.  A
     * cancel after `t` finished but before we ran wins (asyncio's rule):
     * the outcome stays unread. */
    while (!t->out.done && !cancelled)
      cancelled = uvt__park_revocable(&site, NULL, NULL) == UVT_ECANCELED;
    uvt__waiters_remove(&t->out.waiters, &w);
  }
  if (!cancelled) {
    uvt__outcome_retrieve(&t->obj, &t->out);
    err = t->out.status;
  } else {
    err = UVT_ECANCELED;
  }
  if (result != NULL || message != NULL)
    uvt__outcome_hand_over(&t->out, !cancelled, result, message);
  uvt__task_unref(t);
  return err;
}

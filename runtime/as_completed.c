/*
 * asyncio.as_completed as an iterator: one waiter node per task records
 * the order in which they finish; next hands them out in that order.
 * The iterator pins each task (a reference) so that the caller giving a
 * handle up meanwhile cannot free it under the nodes.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define AC_MAGIC 0x75767441u /* "uvtA" */

typedef struct {
  uvt__sched_t *sched;
  uvt_task_t **tasks;
  size_t n;
  uvt__waiter_t *nodes;
  uvt_task_t **order;   /* finished tasks, in the order they finished */
  size_t nready;        /* entries in order */
  size_t nnext;         /* entries handed out */
  uvt_task_t *waiting;  /* the task parked in next, or NULL */
  uvt__timer_t timer;
  bool timed_out;
} ac_t;

static void ac_fire(uvt__waiter_t *w) {
  ac_t *a = w->data;
  a->order[a->nready++] = w->target;
  if (a->waiting != NULL) uvt__wake(a->waiting, 0);
}

static void ac_timeout(uvt__timer_t *tm) {
  ac_t *a = (ac_t *)(void *)((char *)tm - offsetof(ac_t, timer));
  a->timed_out = true;
  if (a->waiting != NULL) uvt__wake(a->waiting, UVT_ETIMEDOUT);
}

int uvt_as_completed_init(uvt_as_completed_t *ac, uvt_task_t **ts, size_t n,
                          int64_t timeout_ms) {
  uvt_task_t *self = uvt__task_current();
  ac_t *a;
  size_t i;
  if (ac != NULL) memset(ac, 0, sizeof(*ac));
  if (self == NULL) return UVT_ENOTASK;
  if (ac == NULL || ts == NULL || n == 0 || timeout_ms < -1) return UVT_EINVAL;
  for (i = 0; i < n; i++) {
    if (ts[i] == NULL) return UVT_EINVAL;
    if (ts[i]->obj.magic != UVT__MAGIC_LIVE) return UVT_ERELEASED;
    if (ts[i]->sched != self->sched) return UVT_EWRONGTHREAD;
  }
  a = calloc(1, sizeof(*a));
  if (a != NULL) {
    a->nodes = calloc(n, sizeof(*a->nodes));
    a->order = calloc(n, sizeof(*a->order));
  }
  if (a == NULL || a->nodes == NULL || a->order == NULL) goto nomem;
  a->sched = self->sched;
  a->tasks = ts;
  a->n = n;
  uvt__timer_init(&a->timer);
  if (timeout_ms >= 0 &&
      uvt__timer_start(a->sched, &a->timer, (uint64_t)timeout_ms, ac_timeout) != 0)
    goto nomem;
  for (i = 0; i < n; i++) {
    ts[i]->out.refs++;
    if (ts[i]->out.done) {
      a->order[a->nready++] = ts[i];
      continue;
    }
    a->nodes[i].fire = ac_fire;
    a->nodes[i].task = self;
    a->nodes[i].target = ts[i];
    a->nodes[i].data = a;
    uvt__waiters_push(&ts[i]->out.waiters, &a->nodes[i]);
  }
  ac->impl = a;
  ac->magic = AC_MAGIC;
  return 0;
nomem:
  if (a != NULL) {
    free(a->nodes);
    free(a->order);
  }
  free(a);
  return UVT_ENOMEM;
}

int uvt_as_completed_next_at(uvt_as_completed_t *ac, uvt_task_t **done,
                             const char *file, int line, const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt__site_t site = UVT__SITE_ON("uvt_as_completed_next", UVT_WAIT_WAIT_SET,
                                  NULL, false);
  ac_t *a;
  if (done != NULL) *done = NULL;
  if (self == NULL) return UVT_ENOTASK;
  UVT__YIELD_POINT(self, "uvt_as_completed_next");
  if (ac == NULL || done == NULL || ac->magic != AC_MAGIC) return UVT_EINVAL;
  a = ac->impl;
  if (a->waiting != NULL || a->sched != self->sched) return UVT_EINVAL;
  for (;;) {
    int st;
    if (a->nnext < a->nready) {
      *done = a->order[a->nnext++];
      return 1;
    }
    if (a->nnext == a->n) return 0;
    if (a->timed_out) return UVT_ETIMEDOUT;
    a->waiting = self;
    /* Revocable: a cancel after a wake wins, and the task that woke us
     * stays in `order` for the next call. */
    st = uvt__park_revocable(&site, NULL, NULL);
    a->waiting = NULL;
    if (st == UVT_ECANCELED) return UVT_ECANCELED;
  }
}

void uvt_as_completed_destroy(uvt_as_completed_t *ac) {
  ac_t *a;
  size_t i;
  if (ac == NULL || ac->magic != AC_MAGIC) return;
  a = ac->impl;
  uvt__timer_stop(a->sched, &a->timer);
  for (i = 0; i < a->n; i++) {
    uvt__waiters_remove(&a->tasks[i]->out.waiters, &a->nodes[i]);
    uvt__task_unref(a->tasks[i]);
  }
  free(a->nodes);
  free(a->order);
  free(a);
  ac->impl = NULL;
  ac->magic = 0;
}

/*
 * uvt_wait and uvt_wait_for over futures.  One waiter node per future
 * not yet done (on the stack for a few, else one allocation); each call
 * pins the futures it waits on for as long as it waits.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define STACK_WAITERS 16

typedef struct {
  size_t ndone, need;
  bool first_exception, failed;
  uvt_task_t *self;
} fwait_t;

static bool is_failure(int status) {
  return status < 0 && status != UVT_ECANCELED;
}

static void fw_fire(uvt__waiter_t *w) {
  fwait_t *g = w->data;
  uvt_future_t *f = (uvt_future_t *)(void *)w->target;
  g->ndone++;
  if (is_failure(f->out.status)) g->failed = true;
  if (g->ndone >= g->need || (g->first_exception && g->failed))
    uvt__wake(g->self, 0);
}

static void fw_timeout(uvt__timer_t *tm) {
  uvt_task_t *t = (uvt_task_t *)(void *)((char *)tm - offsetof(uvt_task_t, timer));
  uvt__wake(t, UVT_ETIMEDOUT);
}

static int check(uvt_future_t **fs, size_t n, const uvt_task_t *self) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (fs[i] == NULL) return UVT_EINVAL;
    if (fs[i]->obj.magic != UVT__MAGIC_LIVE) return UVT_ERELEASED;
    if (fs[i]->sched != self->sched) return UVT_EWRONGTHREAD;
  }
  return 0;
}

int uvt_wait_futures_at(uvt_future_t **fs, size_t n, int mode,
                        int64_t timeout_ms, size_t *ndone, const char *file,
                        int line, const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt__site_t site = UVT__SITE_ON("uvt_wait_futures", UVT_WAIT_WAIT_SET, NULL,
                                  timeout_ms > 0);
  uvt__waiter_t local[STACK_WAITERS], *ws = local;
  fwait_t g;
  size_t i;
  int st = 0;
  if (ndone != NULL) *ndone = 0;
  if (self == NULL) {
    uvt_future_t *f0 = n > 0 && fs != NULL ? fs[0] : NULL;
    return uvt__not_in_task(f0 != NULL ? f0->sched : NULL,
                            f0 != NULL ? &f0->obj : NULL, "uvt_wait_futures",
                            file, line);
  }
  UVT__YIELD_POINT(self, "uvt_wait_futures");
  if ((mode != UVT_FIRST_COMPLETED && mode != UVT_ALL_COMPLETED &&
       mode != UVT_FIRST_EXCEPTION) ||
      timeout_ms < -1 || n == 0 || fs == NULL)
    return UVT_EINVAL;
  if ((st = check(fs, n, self)) != 0) return st;
  if (n > STACK_WAITERS && (ws = calloc(n, sizeof(*ws))) == NULL)
    return UVT_ENOMEM;
  if (ws == local) memset(local, 0, sizeof(local));
  memset(&g, 0, sizeof(g));
  g.need = mode == UVT_FIRST_COMPLETED ? 1 : n;
  g.first_exception = mode == UVT_FIRST_EXCEPTION;
  g.self = self;
  for (i = 0; i < n; i++) {
    fs[i]->out.refs++;
    if (fs[i]->out.done) {
      g.ndone++;
      if (is_failure(fs[i]->out.status)) g.failed = true;
      continue;
    }
    ws[i].fire = fw_fire;
    ws[i].task = self;
    ws[i].target = (uvt_task_t *)(void *)fs[i];
    ws[i].data = &g;
    uvt__waiters_push(&fs[i]->out.waiters, &ws[i]);
  }
  if (g.ndone >= g.need || (g.first_exception && g.failed)) {
    st = 0;
  } else if (timeout_ms == 0) {
    st = UVT_ETIMEDOUT;
  } else {
    if (timeout_ms > 0 &&
        uvt__timer_start(self->sched, &self->timer, (uint64_t)timeout_ms,
                         fw_timeout) != 0)
      st = UVT_ENOMEM;
    /* Revocable: a cancel after the wake but before we ran wins. */
    if (st == 0) st = uvt__park_revocable(&site, NULL, NULL);
    uvt__timer_stop(self->sched, &self->timer);
  }
  for (i = 0; i < n; i++) {
    uvt__waiters_remove(&fs[i]->out.waiters, &ws[i]);
    if (ndone != NULL && fs[i]->out.done) ++*ndone;
  }
  for (i = 0; i < n; i++) uvt__future_unref(fs[i]);
  if (ws != local) free(ws);
  return st;
}

int uvt_wait_for_future_at(uvt_future_t *f, int64_t timeout_ms, void **result,
                           char **message, const char *file, int line,
                           const char *func) {
  uvt_task_t *self = uvt__task_current();
  int st;
  bool ok;
  if (self == NULL)
    return uvt__not_in_task(f != NULL ? f->sched : NULL,
                            f != NULL ? &f->obj : NULL, "uvt_wait_for_future",
                            file, line);
  UVT__YIELD_POINT(self, "uvt_wait_for_future");
  if (f == NULL || timeout_ms < -1) return UVT_EINVAL;
  if ((st = check(&f, 1, self)) != 0) return st;
  st = uvt_wait_futures_at(&f, 1, UVT_ALL_COMPLETED, timeout_ms, NULL, file,
                           line, func);
  if (st == UVT_ETIMEDOUT && !f->out.done) {
    (void)uvt_future_cancel(f);
  } else if (st == UVT_ECANCELED) {
    /* As uvt_await_future: cancelling the awaiter cancels the future. */
    if (!f->out.done) (void)uvt_future_cancel(f);
  } else if (st == 0 || f->out.done) {
    st = 0;
  }
  ok = st == 0;
  if (ok) {
    uvt__outcome_retrieve(&f->obj, &f->out);
    st = f->out.status;
  }
  if (result != NULL || message != NULL)
    uvt__outcome_hand_over(&f->out, ok, result, message);
  uvt__future_unref(f);
  return st;
}

/*
 * Waiting on several tasks: gather, wait, wait_for.
 *
 * Each registers one waiter node per task not yet done; the nodes live on
 * the waiting task's stack (or, for many tasks, in one allocation) and are
 * unlinked before the call returns, whatever woke it.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define STACK_WAITERS 16

bool uvt__await_done(uvt_task_t *t, const uvt__site_t *site, bool cancelled);

typedef struct {
  /* First: a park's site points here (tasks, n, all) for waitfor.c. */
  uvt__taskset_t set;
  size_t ndone;
  size_t need;       /* wake when ndone reaches this */
  uvt_task_t *self;
  bool cancelled;
  bool cancel_children; /* gather: a cancel propagates to the tasks */
  bool first_exception; /* wait: wake at the first failure */
  int first_error;      /* the first failure in completion order */
} group_t;

/* A failure for gather's result and FIRST_EXCEPTION: an error other than
 * a cancellation (a cancellation is what a failure may have caused). */
static bool is_failure(int status) {
  return status < 0 && status != UVT_ECANCELED;
}

/* Whether `t` may be waited on by `self`: 0, or why not. */
static inline int task_bad(const uvt_task_t *t, const uvt_task_t *self) {
  if (t == NULL) return UVT_EINVAL;
  if (t->obj.magic != UVT__MAGIC_LIVE) return UVT_ERELEASED;
  if (t == self) return UVT_ESELF;
  if (t->sched != self->sched) return UVT_EWRONGTHREAD;
  return 0;
}

/* The failure path of group_fire, out of line: most children end well. */
static void group_child_failed(group_t *g, int status) {
  if (g->first_error != 0 || !is_failure(status)) return;
  g->first_error = status;
  if (g->first_exception) uvt__wake(g->self, 0);
}

/* A child ended (its node is already unlinked).  The waiting task is
 * woken once, by the child that completes the count (or, FIRST_EXCEPTION,
 * by the first failure); a wake of a task already woken is ignored. */
static void group_fire(uvt__waiter_t *w) {
  group_t *g = w->data;
  int status = w->target->out.status;
  if (UVT__UNLIKELY(status < 0)) group_child_failed(g, status);
  if (++g->ndone >= g->need) uvt__wake(g->self, 0);
}

static void group_cancel_children(group_t *g) {
  size_t i;
  for (i = 0; i < g->set.n; i++)
    if (!g->set.tasks[i]->out.done) uvt__task_cancel(g->set.tasks[i]);
}

static void group_on_cancel(uvt_task_t *self, void *data) {
  group_t *g = data;
  g->cancelled = true;
  if (g->cancel_children) group_cancel_children(g);
  else uvt__wake(self, UVT_ECANCELED);
}

static void timeout_fire(uvt__timer_t *tm) {
  uvt_task_t *t = (uvt_task_t *)((char *)tm - offsetof(uvt_task_t, timer));
  uvt__wake(t, UVT_ETIMEDOUT);
}

static void group_unlink(group_t *g, uvt__waiter_t *ws, uvt__waiter_t *local);
static void group_unpin(group_t *g);

/* Check every task (see task_bad), take a reference to each for as long
 * as this call waits on them (so that another task giving up its handle
 * cannot free one under it), and register a waiter on every one not
 * done.  Returns the node array (the caller frees it if it is not
 * `local`), or NULL with *err set (UVT_EINVAL, UVT_ERELEASED, UVT_ESELF,
 * UVT_EWRONGTHREAD for the first bad task, or UVT_ENOMEM): nothing is
 * taken then.  The nodes are not zeroed: a node is either pushed (which
 * sets its links) or marked unlinked, and group_fire reads only what is
 * set here.  One pass over the tasks: this is gather's per-task cost. */
static uvt__waiter_t *group_link(group_t *g, uvt__waiter_t *local, int *err) {
  uvt_task_t **ts = g->set.tasks, *self = g->self;
  size_t i, n = g->set.n;
  uvt__waiter_t *ws = local;
  if (ts == NULL && n > 0) {
    *err = UVT_EINVAL;
    return NULL;
  }
  if (n > STACK_WAITERS) {
    ws = malloc(n * sizeof(*ws));
    if (ws == NULL) {
      *err = UVT_ENOMEM;
      return NULL;
    }
  }
  g->ndone = 0;
  for (i = 0; i < n; i++) {
    uvt_task_t *t = ts[i];
    int bad = task_bad(t, self);
    if (UVT__UNLIKELY(bad != 0)) {
      /* Undo the tasks before this one. */
      g->set.n = i;
      group_unlink(g, ws, local);
      group_unpin(g);
      g->set.n = n;
      *err = bad;
      return NULL;
    }
    t->out.refs++;
    if (t->out.done) {
      ws[i].linked = false;
      g->ndone++;
      if (g->first_error == 0 && is_failure(t->out.status))
        g->first_error = t->out.status;
      continue;
    }
    ws[i].target = t;
    ws[i].fire = group_fire;
    ws[i].task = self;
    ws[i].data = g;
    uvt__waiters_push(&t->out.waiters, &ws[i]);
  }
  return ws;
}

static void group_unlink(group_t *g, uvt__waiter_t *ws, uvt__waiter_t *local) {
  size_t i;
  for (i = 0; i < g->set.n; i++)
    uvt__waiters_remove(&g->set.tasks[i]->out.waiters, &ws[i]);
  if (ws != local) free(ws);
}

/* Give up group_link's references. */
static void group_unpin(group_t *g) {
  size_t i;
  for (i = 0; i < g->set.n; i++) uvt__task_unref(g->set.tasks[i]);
}

int uvt_gather_at(uvt_task_t **ts, size_t n, const char *file, int line,
                  const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt__site_t site = UVT__SITE_ON("uvt_gather", UVT_WAIT_GATHER, NULL, false);
  uvt__waiter_t local[STACK_WAITERS], *ws;
  group_t g;
  size_t i;
  int err;
  if (self == NULL)
    return uvt__not_in_task(n > 0 && ts != NULL ? UVT__TASK_SCHED(ts[0]) : NULL,
                            n > 0 && ts != NULL ? UVT__TASK_OBJ(ts[0]) : NULL,
                            "uvt_gather", file, line);
  memset(&g, 0, sizeof(g));
  g.set.tasks = ts;
  g.set.n = n;
  g.need = n;
  g.self = self;
  g.cancel_children = true;
  g.set.all = true;
  site.on = &g.set;
  if ((ws = group_link(&g, local, &err)) == NULL) return err;
  /* After the checks (in group_link): a call refused for its arguments
   * is no yield point. */
  UVT__YIELD_POINT(self, "uvt_gather");
  if (g.ndone < g.set.n) uvt__deadlock_check(self, &site);
  while (g.ndone < g.set.n) {
    /* Revocable: all done, then cancelled before we ran, the cancel wins
     * (asyncio's gather future is then cancelled by its task). */
    int st = uvt__park_revocable(&site, group_on_cancel, &g);
    if (st == UVT_ECANCELED && !g.cancelled) {
      /* A cancel pending before the park or after the last wake:
       * propagate it the same way (to the children still running). */
      g.cancelled = true;
      group_cancel_children(&g);
    }
  }
  /* Every task is done, so no node is linked any more: each was either
   * never pushed (its task was done) or unlinked before it fired, and
   * only a fire counts in ndone.  Nothing to unlink. */
  if (ws != local) free(ws);
  /* The first failure in completion order; else a cancellation, if some
   * task ended cancelled.  One pass: each task's status is read, then its
   * reference given up (which may free it: not touched after). */
  err = g.first_error;
  for (i = 0; i < n; i++) {
    uvt_task_t *t = ts[i];
    /* Every error counts as read, even when the gather itself was
     * cancelled: as asyncio's gather, it speaks for its children. */
    uvt__outcome_retrieve(&t->obj, &t->out);
    if (err == 0 && t->out.status < 0) err = t->out.status;
    uvt__task_unref(t);
  }
  return g.cancelled ? UVT_ECANCELED : err;
}

int uvt_wait_at(uvt_task_t **ts, size_t n, int mode, int64_t timeout_ms,
                size_t *ndone, const char *file, int line, const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt__site_t site = UVT__SITE_ON("uvt_wait", UVT_WAIT_WAIT_SET, NULL, timeout_ms > 0);
  uvt__waiter_t local[STACK_WAITERS], *ws;
  group_t g;
  int err, st;
  if (ndone != NULL) *ndone = 0;
  if (self == NULL)
    return uvt__not_in_task(n > 0 && ts != NULL ? UVT__TASK_SCHED(ts[0]) : NULL,
                            n > 0 && ts != NULL ? UVT__TASK_OBJ(ts[0]) : NULL,
                            "uvt_wait", file, line);
  if (mode != UVT_FIRST_COMPLETED && mode != UVT_ALL_COMPLETED &&
      mode != UVT_FIRST_EXCEPTION)
    return UVT_EINVAL;
  if (timeout_ms < -1 || n == 0) return UVT_EINVAL;
  memset(&g, 0, sizeof(g));
  g.set.tasks = ts;
  g.set.n = n;
  g.need = mode == UVT_FIRST_COMPLETED ? 1 : n;
  g.first_exception = mode == UVT_FIRST_EXCEPTION;
  g.self = self;
  /* Only ALL_COMPLETED without a time limit needs every task: a cycle
   * through any one of them is then a deadlock. */
  g.set.all = mode == UVT_ALL_COMPLETED && timeout_ms < 0;
  site.on = &g.set;
  if ((ws = group_link(&g, local, &err)) == NULL) return err;
  UVT__YIELD_POINT(self, "uvt_wait");
  if (g.ndone >= g.need || (g.first_exception && g.first_error != 0)) {
    st = 0;
  } else if (timeout_ms == 0) {
    st = UVT_ETIMEDOUT;
  } else {
    st = 0;
    if (timeout_ms > 0 &&
        uvt__timer_start(self->sched, &self->timer, (uint64_t)timeout_ms,
                         timeout_fire) != 0)
      st = UVT_ENOMEM;
    if (st == 0 && g.set.all) uvt__deadlock_check(self, &site);
    /* Revocable: woken (done or timed out), then cancelled before we ran,
     * the cancel wins; the tasks run on, as with asyncio.wait. */
    if (st == 0) st = uvt__park_revocable(&site, group_on_cancel, &g);
    uvt__timer_stop(self->sched, &self->timer);
  }
  group_unlink(&g, ws, local);
  if (ndone != NULL) {
    size_t i, k = 0;
    for (i = 0; i < n; i++) k += ts[i]->out.done;
    *ndone = k;
  }
  group_unpin(&g);
  return st;
}

static int wait_for_pinned(uvt_task_t *self, uvt_task_t *t,
                           int64_t timeout_ms, const uvt__site_t *psite,
                           bool *ok) {
  uvt__site_t site = *psite;
  uvt__waiter_t w;
  group_t g;
  int st;
  if (!t->out.done) {
    memset(&g, 0, sizeof(g));
    memset(&w, 0, sizeof(w));
    g.set.tasks = &t;
    g.set.n = 1;
    g.need = 1;
    g.self = self;
    if (timeout_ms == 0) {
      st = UVT_ETIMEDOUT;
    } else {
      w.fire = group_fire;
      w.task = self;
      w.target = t;
      w.data = &g;
      uvt__waiters_push(&t->out.waiters, &w);
      st = 0;
      if (timeout_ms > 0 &&
          uvt__timer_start(self->sched, &self->timer, (uint64_t)timeout_ms,
                           timeout_fire) != 0)
        st = UVT_ENOMEM;
      if (st == 0 && timeout_ms < 0 && t->state == UVT_TASK_PARKED)
        uvt__deadlock_check(self, &site);
      if (st == 0) st = uvt__park(&site, group_on_cancel, &g);
      uvt__timer_stop(self->sched, &self->timer);
      uvt__waiters_remove(&t->out.waiters, &w);
      if (st == UVT_ENOMEM) return st;
    }
    if (!t->out.done) {
      /* Timed out or cancelled: cancel the task and wait for it to end,
       * as asyncio.wait_for does. */
      bool cancelled = st == UVT_ECANCELED;
      uvt__task_cancel(t);
      /* From here on the wait has no limit: an edge of the wait-for
       * graph (a task that awaits us back is a deadlock). */
      site.timeout = false;
      if (uvt__await_done(t, &site, cancelled) || cancelled)
        return UVT_ECANCELED;
      /* It finished on its own while being cancelled (its cancel came
       * too late to be seen): its own outcome, as asyncio.wait_for
       * (test_waitfor test_wait_for_cancellation_race_condition). */
      if (t->out.status != UVT_ECANCELED) {
        uvt__outcome_retrieve(&t->obj, &t->out);
        *ok = true;
        return t->out.status;
      }
      return UVT_ETIMEDOUT;
    }
    if (st == UVT_ECANCELED) return UVT_ECANCELED;
  }
  uvt__outcome_retrieve(&t->obj, &t->out);
  *ok = true;
  return t->out.status;
}

int uvt_wait_for_at(uvt_task_t *t, int64_t timeout_ms, void **result,
                    char **message, const char *file, int line,
                    const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt__site_t site = UVT__SITE_ON("uvt_wait_for", UVT_WAIT_TASK, t, timeout_ms > 0);
  bool ok = false;
  int st;
  if (self == NULL)
    return uvt__not_in_task(UVT__TASK_SCHED(t), UVT__TASK_OBJ(t), "uvt_wait_for", file, line);
  if (t == NULL || timeout_ms < -1) return UVT_EINVAL;
  if (t->obj.magic != UVT__MAGIC_LIVE) return UVT_ERELEASED;
  if (t == self) return UVT_ESELF;
  if (t->sched != self->sched) return UVT_EWRONGTHREAD;
  UVT__YIELD_POINT(self, "uvt_wait_for");
  /* The caller's reference keeps `t` until it is given up here. */
  st = wait_for_pinned(self, t, timeout_ms, &site, &ok);
  if (result != NULL || message != NULL)
    uvt__outcome_hand_over(&t->out, ok, result, message);
  uvt__task_unref(t);
  return st;
}

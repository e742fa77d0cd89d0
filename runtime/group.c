/*
 * Task groups (asyncio.TaskGroup, 3.12's exit order).
 *
 * Children are linked through their task structs (group_prev/next): the
 * live ones on g->live, the failed ones, in completion order, on
 * g->failed_head.  The group holds one reference per child: a child that
 * succeeds or is cancelled gives it back as it ends (a long-lived group
 * does not grow), a failed one keeps it until uvt_group_destroy so that
 * its error stays readable.  Completion costs no allocation and no
 * waiter node: uvt__task_complete calls uvt__group_child_done.
 */
#include "scope.h"

#include <stddef.h>

enum { GROUP_OPEN = 1, GROUP_LEFT = 2 };

static bool is_failure(int status) {
  return status < 0 && status != UVT_ECANCELED;
}

static void live_remove(uvt_group_t *g, uvt_task_t *t) {
  if (t->group_prev != NULL) t->group_prev->group_next = t->group_next;
  else g->live = t->group_next;
  if (t->group_next != NULL) t->group_next->group_prev = t->group_prev;
  t->group_prev = t->group_next = NULL;
  g->nlive--;
}

/* Cancel every live child.  A cancel never completes a task on the spot
 * (a task ends on its own stack, or in the next pass if it never
 * started), so the list stays intact under the walk. */
static void group_abort(uvt_group_t *g) {
  uvt_task_t *t;
  g->aborting = true;
  for (t = g->live; t != NULL; t = t->group_next) uvt__task_cancel(t);
}

void uvt__group_child_done(uvt_task_t *t) {
  uvt_group_t *g = t->group;
  uvt_task_t *owner = g->scope.task;
  live_remove(g, t);
  if (!is_failure(t->out.status)) {
    t->group = NULL;
    uvt__task_unref(t);
  } else {
    if (g->failed_tail != NULL) g->failed_tail->group_next = t;
    else g->failed_head = t;
    g->failed_tail = t;
    g->nfailed++;
    if (g->first_error == 0) g->first_error = t->out.status;
    if (!g->aborting && !g->parent_cancel_requested) {
      /* Stop the siblings, and whatever the owner is awaiting in the
       * body; leave takes the owner's cancel back. */
      group_abort(g);
      g->parent_cancel_requested = true;
      uvt__task_cancel(owner);
    }
  }
  if (g->nlive == 0 && g->left_waiting) uvt__wake(owner, 0);
}

int uvt_group_init(uvt_group_t *g) {
  uvt_task_t *self = uvt__task_current();
  if (g == NULL) return UVT_EINVAL;
  if (self == NULL) return UVT_ENOTASK;
  *g = (uvt_group_t){.state = GROUP_OPEN,
                     .base_cancelling = self->cancel_requests,
                     .pending_at_entry = self->cancel_pending};
  uvt__scope_push(self, &g->scope, UVT__SCOPE_GROUP);
  return 0;
}

uvt_task_t *uvt_group_spawn_at(uvt_group_t *g, uvt_fn fn, void *arg,
                               const char *name, const char *file, int line,
                               const char *func) {
  uvt__sched_t *s = uvt__sched_current();
  uvt_task_t *owner, *t;
  if (g == NULL || fn == NULL || g->scope.magic != UVT__SCOPE_MAGIC ||
      g->scope.kind != UVT__SCOPE_GROUP || g->state != GROUP_OPEN) {
    uvt__warn("%s:%d: uvt_group_spawn(%s): the group is not open (never "
              "initialised, or already left)", file, line, name);
    return NULL;
  }
  owner = g->scope.task;
  if (g->aborting) {
    uvt__warn("%s:%d: uvt_group_spawn(%s): the group is shutting down "
              "(a child failed or the group was cancelled)", file, line, name);
    return NULL;
  }
  if (s == NULL || s != owner->sched) {
    uvt__warn("%s:%d: uvt_group_spawn(%s): not on the group's loop", file,
              line, name);
    return NULL;
  }
  s->spawn_parent = owner;
  t = uvt__spawn(s, fn, arg, 0, name, file, line, func);
  s->spawn_parent = NULL;
  if (t == NULL) {
    uvt__warn("%s:%d: uvt_group_spawn(%s): out of memory", file, line, name);
    return NULL;
  }
  t->group = g;
  t->group_next = g->live;
  if (g->live != NULL) g->live->group_prev = t;
  g->live = t;
  g->nlive++;
  return t;
}

/* The owner was cancelled while waiting in leave.  It stays parked until
 * every child has ended; a cancel that did not come from the group
 * itself cancels the children. */
static void leave_on_cancel(uvt_task_t *self, void *data) {
  uvt_group_t *g = data;
  (void)self;
  g->cancel_seen = true;
  if (!g->aborting) group_abort(g);
}

int uvt_group_leave_at(uvt_group_t *g, int body_status, const char *file,
                       int line, const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt__site_t site = UVT__SITE_ON("uvt_group_leave", UVT_WAIT_GATHER, NULL, false);
  bool propagate = body_status == UVT_ECANCELED;
  uvt_task_t *t;
  if (self == NULL) return UVT_ENOTASK;
  UVT__YIELD_POINT(self, "uvt_group_leave");
  if (g == NULL || g->state != GROUP_OPEN ||
      !uvt__scope_leavable(&g->scope, UVT__SCOPE_GROUP, self))
    return UVT_EINVAL;
  /* An error or a cancellation in the body stops the children, as an
   * exception leaving `async with` does. */
  if (body_status < 0 && !g->aborting) group_abort(g);
  while (g->nlive > 0) {
    int st;
    g->left_waiting = true;
    st = uvt__park(&site, leave_on_cancel, g);
    g->left_waiting = false;
    if (st == UVT_ECANCELED) {
      /* A cancel seen here that the group did not make (or one made
       * before the abort began) is the caller's: pass it on. */
      if (!g->aborting) {
        group_abort(g);
        propagate = true;
      } else if (!g->parent_cancel_requested) {
        propagate = true;
      }
    }
  }
  /* A cancel that reached leave_on_cancel while the group was already
   * aborting for a reason of its own came from outside. */
  if (g->cancel_seen && !g->parent_cancel_requested) propagate = true;
  /* leave_on_cancel swallowed a cancel that arrived while aborting: the
   * count tells whether any came from outside the group. */
  if (g->parent_cancel_requested) {
    if (uvt__uncancel(self) <= g->base_cancelling) {
      propagate = false;
      if (!g->pending_at_entry) self->cancel_pending = false;
    } else {
      propagate = true;
    }
  }
  g->state = GROUP_LEFT;
  uvt__scope_pop(&g->scope);
  /* The group speaks for every failure: its first is the result. */
  for (t = g->failed_head; t != NULL; t = t->group_next)
    uvt__outcome_retrieve(&t->obj, &t->out);
  if (g->nfailed > 0) return g->first_error;
  if (body_status < 0 && body_status != UVT_ECANCELED) return body_status;
  return propagate ? UVT_ECANCELED : 0;
}

size_t uvt_group_nerrors(const uvt_group_t *g) {
  return g != NULL ? g->nfailed : 0;
}

int uvt_group_error(const uvt_group_t *g, size_t i, uvt_task_t **task) {
  uvt_task_t *t;
  if (task != NULL) *task = NULL;
  if (g == NULL || i >= g->nfailed) return 0;
  for (t = g->failed_head; i > 0; i--) t = t->group_next;
  if (task != NULL) *task = t;
  return t->out.status;
}

static void release_failed(uvt_group_t *g) {
  uvt_task_t *t = g->failed_head, *next;
  for (; t != NULL; t = next) {
    next = t->group_next;
    t->group_next = NULL;
    t->group = NULL;
    uvt__task_unref(t);
  }
  g->failed_head = g->failed_tail = NULL;
  g->nfailed = 0;
}

void uvt_group_destroy(uvt_group_t *g) {
  if (g == NULL) return;
  if (g->state != GROUP_LEFT) {
    uvt__warn("uvt_group_destroy: the group was not left (uvt_group_leave "
              "first); ignored");
    return;
  }
  release_failed(g);
  g->state = 0;
}

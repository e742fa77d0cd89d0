/*
 * Cancel counting (asyncio's cancelling()/uncancel()) and the clean-up of
 * scopes a task left open when it ended.
 */
#include "scope.h"

#include <stddef.h>

int uvt__uncancel(uvt_task_t *t) {
  if (t->cancel_requests > 0) t->cancel_requests--;
  if (t->cancel_requests == 0) t->cancel_pending = false;
  return t->cancel_requests;
}

int uvt_cancelling(const uvt_task_t *t) {
  if (t == NULL) t = uvt__task_current();
  if (t == NULL || t->obj.magic != UVT__MAGIC_LIVE) return 0;
  return t->cancel_requests;
}

int uvt_uncancel(uvt_task_t *t) {
  if (t == NULL) t = uvt__task_current();
  if (t == NULL) return UVT_EINVAL;
  if (t->obj.magic != UVT__MAGIC_LIVE) return UVT_ERELEASED;
  return uvt__uncancel(t);
}

static bool on_stack(const uvt_task_t *t, const void *p) {
  const char *lo = t->stack.lo;
  return lo != NULL && (const char *)p >= lo && (const char *)p < lo + t->stack.size;
}

/* The task returned from inside groups or timeout scopes, which lived
 * (as is natural) on its stack: that memory is dead now, and the frames
 * of this very clean-up overwrite it, so nothing here reads it.  What
 * still points into it is found by address instead: children whose
 * group is there (cancelled, and the group's reference given up: an
 * error they end with is then reported as unretrieved), and timer nodes
 * there (taken out of the heap by position). */
void uvt__scopes_abandon(uvt_task_t *t) {
  uvt__sched_t *s = t->sched;
  uvt__obj_t *o;
  uvt__timer_heap_t *h = &s->timers;
  size_t nchildren = 0, ntimers = 0, i;
  t->scopes = NULL;
  for (o = s->registry.next; o != &s->registry;) {
    uvt__obj_t *next = o->next;
    uvt_task_t *c = (uvt_task_t *)(void *)o;
    if (o->kind == UVT_OBJECT_TASK && c->group != NULL && on_stack(t, c->group)) {
      c->group = NULL;
      c->group_prev = c->group_next = NULL;
      if (!c->out.done) {
        nchildren++;
        uvt__task_cancel(c);
      }
      uvt__task_unref(c);
    }
    o = next;
  }
  for (i = 0; i < h->len;) {
    if (on_stack(t, h->items[i])) {
      uvt__heap_remove_at(h, i);
      ntimers++;
    } else {
      i++;
    }
  }
  uvt__warn("task '%s' (created at %s:%d) ended inside %s it did not leave: "
            "%zu running children cancelled, %zu deadlines dropped",
            t->obj.name, t->obj.file, t->obj.line,
            nchildren > 0 || ntimers == 0 ? "a task group or timeout scope"
                                          : "a timeout scope",
            nchildren, ntimers);
}

/*
 * Snapshots of a loop's tasks for hook subscribers (hooks.h): asked for
 * from anywhere, a signal handler included (threadsafe.c: an atomic store
 * and a wake of the scheduler's async handle), and sent from here on the
 * loop thread, where the tasks can be read safely.
 */
#include "internal.h"

#include <stdlib.h>

#ifdef ASYNCIODEBUG
/* The tasks parked in an await of `t`: one member each, in a malloc'd
 * array (NULL, 0 if none or out of memory). */
static uvt_hook_member_t *awaiters_of(const uvt_task_t *t, int *n) {
  const uvt__waiter_t *w;
  uvt_hook_member_t *m;
  int k = 0;
  *n = 0;
  for (w = t->out.waiters.head; w != NULL; w = w->next) k++;
  if (k == 0 || (m = calloc((size_t)k, sizeof(*m))) == NULL) return NULL;
  for (w = t->out.waiters.head; w != NULL; w = w->next) {
    const uvt_task_t *a = w->task;
    uvt_hook_member_t *e = &m[(*n)++];
    if (a == NULL) continue;
    e->id = a->obj.id;
    e->object = a;
    e->name = a->obj.name;
    if (a->state == UVT_TASK_PARKED) {
      e->wait = (uvt_wait_kind_t)a->parked_at.wait;
      e->wait_on = UVT__SITE_ON_PUBLIC(&a->parked_at);
      e->where_file = a->parked_at.file;
      e->where_line = a->parked_at.line;
    }
  }
  return m;
}

static void snapshot_task(uvt__sched_t *s, uvt_task_t *t, int reason) {
  bool parked = t->state == UVT_TASK_PARKED;
  int n;
  uvt_hook_member_t *m = awaiters_of(t, &n);
  UVT__HOOK(.kind = UVT_HOOK_SNAPSHOT_TASK, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .parent_id = t->parent_id, .name = t->obj.name,
            .file = t->obj.file, .line = t->obj.line, .func = t->obj.func,
            .where_file = parked ? t->parked_at.file : NULL,
            .where_line = parked ? t->parked_at.line : 0,
            .where_func = parked ? t->parked_at.func : NULL,
            .what = parked ? t->parked_at.what : NULL, .status = reason,
            .loop = s->loop, .object = t, .state = t->state,
            .wait = parked ? (uvt_wait_kind_t)t->parked_at.wait : UVT_WAIT_NONE,
            .wait_on = parked ? UVT__SITE_ON_PUBLIC(&t->parked_at) : NULL,
            .wait_on_id = parked ? UVT__SITE_ON_ID(&t->parked_at) : 0,
            .wait_timeout = parked && t->parked_at.timeout,
            .parked_ns = parked ? t->parked_ns : 0, .members = m,
            .nmembers = n);
  free(m);
}
#endif

void uvt__snapshot_if_asked(uvt__sched_t *s) {
#ifdef ASYNCIODEBUG
  int reason = __atomic_exchange_n(&s->snapshot_reason, 0, __ATOMIC_ACQ_REL);
  uvt__obj_t *o;
  if (reason == 0 || !UVT__HOOKS_ACTIVE()) return;
  UVT__HOOK(.kind = UVT_HOOK_SNAPSHOT_BEGIN, .status = reason, .loop = s->loop);
  for (o = s->registry.next; o != &s->registry; o = o->next)
    if (o->kind == UVT_OBJECT_TASK) snapshot_task(s, (uvt_task_t *)o, reason);
  UVT__HOOK(.kind = UVT_HOOK_SNAPSHOT_END, .status = reason, .loop = s->loop);
#else
  (void)s;
#endif
}

/*
 * Snapshots of a loop's tasks for hook subscribers (hooks.h): asked for
 * from anywhere, a signal handler included (threadsafe.c: an atomic store
 * and a wake of the scheduler's async handle), and sent from here on the
 * loop thread, where the tasks can be read safely.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* The tasks parked in an await of `t`, into m[max]; how many there are
 * (more than max: only max are filled). */
static int awaiters_of(const uvt_task_t *t, uvt_hook_member_t *m, int max) {
  const uvt__waiter_t *w;
  int n = 0;
  for (w = t->out.waiters.head; w != NULL; w = w->next, n++) {
    const uvt_task_t *a = w->task;
    uvt_hook_member_t *e;
    if (n >= max) continue;
    e = &m[n];
    memset(e, 0, sizeof(*e));
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
  return n;
}

#define MEMBERS_MAX 64

/* The SNAPSHOT_TASK event of `t`, given to fn. */
static void snapshot_task(const uvt__sched_t *s, uvt_task_t *t, int reason,
                          uvt_hook_fn fn, void *data) {
  bool parked = t->state == UVT_TASK_PARKED;
  uvt_hook_member_t m[MEMBERS_MAX];
  int n = awaiters_of(t, m, MEMBERS_MAX);
  uvt_hook_event_t ev;
  memset(&ev, 0, sizeof(ev));
  ev.kind = UVT_HOOK_SNAPSHOT_TASK;
  ev.object_kind = UVT_OBJECT_TASK;
  ev.id = t->obj.id;
  ev.parent_id = t->parent_id;
  ev.name = t->obj.name;
  ev.file = t->obj.file;
  ev.line = t->obj.line;
  ev.func = t->obj.func;
  ev.where_file = parked ? t->parked_at.file : NULL;
  ev.where_line = parked ? t->parked_at.line : 0;
  ev.where_func = parked ? t->parked_at.func : NULL;
  ev.what = parked ? t->parked_at.what : NULL;
  ev.status = reason;
  ev.loop = s->loop;
  ev.object = t;
  ev.state = t->state;
  ev.wait = parked ? (uvt_wait_kind_t)t->parked_at.wait : UVT_WAIT_NONE;
  ev.wait_on = parked ? UVT__SITE_ON_PUBLIC(&t->parked_at) : NULL;
  ev.wait_on_id = parked ? UVT__SITE_ON_ID(&t->parked_at) : 0;
#ifdef ASYNCIODEBUG
  ev.parked_ns = parked ? t->parked_ns : 0;
#endif
  ev.wait_timeout = parked && t->parked_at.timeout;
  ev.members = m;
  ev.nmembers = n < MEMBERS_MAX ? n : MEMBERS_MAX;
  fn(&ev, data);
}

void uvt__snapshot_sched(const uvt__sched_t *s, int reason, uvt_hook_fn fn,
                         void *data) {
  const uvt__obj_t *o;
  uvt_hook_event_t ev;
  memset(&ev, 0, sizeof(ev));
  ev.kind = UVT_HOOK_SNAPSHOT_BEGIN;
  ev.status = reason;
  ev.loop = s->loop;
  fn(&ev, data);
  for (o = s->registry.next; o != &s->registry; o = o->next)
    if (o->kind == UVT_OBJECT_TASK) snapshot_task(s, (uvt_task_t *)o, reason, fn, data);
  ev.kind = UVT_HOOK_SNAPSHOT_END;
  fn(&ev, data);
}

#ifdef ASYNCIODEBUG
/* Every subscriber gets the events, as from any hook point. */
static void to_subscribers(const uvt_hook_event_t *ev, void *data) {
  (void)data;
  /* The event is snapshot_task's own, on its stack: dispatch sets each
   * subscriber's `slot` in it. */
  uvt__hook_dispatch((uvt_hook_event_t *)(uintptr_t)ev);
}
#endif

void uvt__snapshot_if_asked(uvt__sched_t *s) {
#ifdef ASYNCIODEBUG
  int reason = __atomic_exchange_n(&s->snapshot_reason, 0, __ATOMIC_ACQ_REL);
  if (reason == 0 || !UVT__HOOKS_ACTIVE()) return;
  uvt__snapshot_sched(s, reason, to_subscribers, NULL);
#else
  (void)s;
#endif
}


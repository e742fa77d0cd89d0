/*
 * A task's life below the structured calls: its creation, its references
 * and its release, and a cancel request.  Task groups and scopes (group.c,
 * scope.c) spawn, cancel and release tasks through these; the task layer
 * above them (task.c) ends tasks, which tells the groups and scopes.
 * Ownership: see task.c.
 */
#include "internal.h"
#include "findings.h"

/* What every spawn sets in its struct `t` (zeroed, or recycled and
 * zeroed where this does not write: task_mem.c), then queue it. */
static inline __attribute__((always_inline)) uvt_task_t *
spawn_into(uvt__sched_t *s, uvt_task_t *t, uvt_fn fn, void *arg,
           size_t stack_size, const char *name, const char *file, int line,
           const char *func) {
  uvt_task_t *parent = uvt__spawn_parent(s);
  t->sched = s;
  t->fn = fn;
  t->arg = arg;
  t->stack_size = stack_size;
  t->parent = parent;
  t->parent_id = parent != NULL ? parent->obj.id : 0;
  t->state = UVT_TASK_CREATED;
  t->out.refs = 1;
  uvt__timer_init_zeroed(&t->timer);
  /* Last: its CREATE hook event sees a task whose fields are all set (a
   * recycled struct holds the previous task's parent .. arg until then). */
  uvt__obj_link(s, &t->obj, UVT_OBJECT_TASK, name, file, line, func);
  UVT__HOOK_AT(uvt__hook_create, s, &t->obj);
  s->live_tasks++;
  uvt__ready_push(s, t);
  return t;
}

uvt_task_t *uvt__spawn(uvt__sched_t *s, uvt_fn fn, void *arg,
                       size_t stack_size, const char *name, const char *file,
                       int line, const char *func) {
  /* A fresh struct when none is recycled (more tasks alive than the
   * recycled list keeps).  Not a spawn of its own apart (it saved the
   * registers this call needs): the creation hook point must stay inline
   * in the public call (uvt_spawn_at is flattened), where the recorder's
   * frame-pointer walk starts at the user's call. */
  uvt_task_t *t = UVT__LIKELY(s->free_tasks != NULL) ? uvt__task_take(s)
                                                     : uvt__task_fresh();
  if (t == NULL) return NULL;
  return spawn_into(s, t, fn, arg, stack_size, name, file, line, func);
}

/* `hooks` (a constant): whether to look at the hook flag for DESTROY. */
static inline __attribute__((always_inline)) void
task_release(uvt_task_t *t, bool hooks) {
  if (UVT__UNLIKELY(t->out.status < 0))
    uvt__finding_unretrieved(&t->obj, &t->out);
  uvt__obj_unlink(&t->obj);
  if (hooks) UVT__HOOK_AT_NOENTRY(uvt__hook_destroy, &t->obj);
  uvt__quarantine(t->sched, &t->obj);
}

void uvt__task_unref(uvt_task_t *t) {
  --t->out.refs;
  if (uvt__task_freeable(t)) task_release(t, true);
}

void uvt__task_unref_quiet(uvt_task_t *t) {
  --t->out.refs;
  if (uvt__task_freeable(t)) task_release(t, false);
}

void uvt__task_release(uvt_task_t *t) { task_release(t, true); }

int uvt__task_cancel(uvt_task_t *t) {
  if (t->state != UVT_TASK_DONE) t->cancel_requests++;
  switch (t->state) {
  case UVT_TASK_DONE:
    return 0;
  case UVT_TASK_PARKED:
    t->cancelled = true;
    if (t->on_cancel != NULL) {
      void (*cb)(uvt_task_t *, void *) = t->on_cancel;
      t->on_cancel = NULL;
      cb(t, t->on_cancel_data);
    }
    /* else: an earlier cancel is still being delivered. */
    return 1;
  case UVT_TASK_READY:
    /* Already woken by a cancel: one-shot, do not deliver it twice. */
    if (t->cancelled && t->wake_status == UVT_ECANCELED) return 1;
    /* fall through */
  default:
    t->cancelled = true;
    t->cancel_pending = true;
    return 1;
  }
}

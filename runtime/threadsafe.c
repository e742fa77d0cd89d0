/*
 * Calls from other threads: uvt_call_threadsafe, which has the loop's
 * thread spawn a detached task, and the snapshot request of hooks.h,
 * which must also be safe in a signal handler.  The scheduler only
 * carries the posted calls across (uvt__sched_post, its async handle).
 */
#include "internal.h"

#include <stdlib.h>

/* On the loop thread. */
static void spawn_detached(uvt__sched_t *s, struct uvt__ts_call_s *c) {
  uvt_task_t *t =
      uvt__spawn(s, c->fn, c->arg, 0, c->name, c->file, c->line, c->func);
  if (t != NULL) {
    t->threadsafe = true;
    uvt_detach(t);
  }
}

/* From the loop's own thread: spawn now, so that the call keeps its
 * place among later spawns (asyncio runs call_soon_threadsafe callbacks
 * in call order); through uv_async it would run after them. */
static bool call_here(uv_loop_t *loop, uvt_fn fn, void *arg, const char *name,
                      const char *file, int line, const char *func,
                      int *err) {
  uvt__sched_t *s = uvt__sched_current();
  uvt_task_t *t;
  uv_thread_t self;
  if (s == NULL || s->loop != loop || s->closing) return false;
  self = uv_thread_self();
  if (!uv_thread_equal(&self, &s->owner)) return false;
  t = uvt__spawn(s, fn, arg, 0, name, file, line, func);
  if (t == NULL) {
    *err = UVT_ENOMEM;
    return true;
  }
  t->threadsafe = true;
  uvt_detach(t);
  *err = 0;
  return true;
}

int uvt_call_threadsafe_at(uv_loop_t *loop, uvt_fn fn, void *arg,
                           const char *name, const char *file, int line,
                           const char *func) {
  struct uvt__ts_call_s *c;
  int err;
  if (loop == NULL || fn == NULL) return UVT_EINVAL;
  if (call_here(loop, fn, arg, name, file, line, func, &err)) return err;
  c = malloc(sizeof(*c));
  if (c == NULL) return UVT_ENOMEM;
  c->run = spawn_detached;
  c->fn = fn;
  c->arg = arg;
  c->name = name;
  c->file = file;
  c->line = line;
  c->func = func;
  err = uvt__sched_post(loop, c);
  if (err == UVT_ENOLOOP) free(c);
  return err;
}

int uvt_hook_request_snapshot(uv_loop_t *loop, int reason) {
#ifdef ASYNCIODEBUG
  uvt__sched_t *s;
  if (loop == NULL || reason <= 0) return UVT_EINVAL;
  if ((s = uvt__sched_find_signal_safe(loop)) == NULL) return UVT_ENOLOOP;
  __atomic_store_n(&s->snapshot_reason, reason, __ATOMIC_RELEASE);
  return uv_async_send(&s->async);
#else
  (void)loop, (void)reason;
  return UV_ENOTSUP;
#endif
}

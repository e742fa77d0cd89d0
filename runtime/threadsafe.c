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

int uvt_call_threadsafe_at(uv_loop_t *loop, uvt_fn fn, void *arg,
                           const char *name, const char *file, int line,
                           const char *func) {
  struct uvt__ts_call_s *c;
  int err;
  if (loop == NULL || fn == NULL) return UVT_EINVAL;
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

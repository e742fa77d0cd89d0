/*
 * Coroutine objects: a call not yet started (asyncio's coroutine object).
 * Await, spawn and close each consume one; whatever is left when uvt_run
 * ends was never awaited.
 */
#include "internal.h"

#include <stdlib.h>

static int coro_check(const uvt_coro_t *c) {
  if (c == NULL) return UVT_EINVAL;
  if (c->obj.magic != UVT__MAGIC_LIVE) return UVT_EINVAL;
  return 0;
}

/* Flattened: the creation hook point (uvt__obj_register) then lies in
 * the function the user called, where ASYNCIODEBUG_STACKS=fp starts its
 * walk (hooks/hook_points.h); not inlined, the capture takes libunwind. */
__attribute__((flatten)) uvt_coro_t *uvt_coro_at(uvt_fn fn, void *arg, const char *name,
                        const char *file, int line, const char *func) {
  uvt__sched_t *s = uvt__sched_current();
  uvt_coro_t *c;
  if (s == NULL && fn != NULL && uvt__off_loop_thread("uvt_coro", file, line))
    return NULL;
  if (s == NULL || fn == NULL) {
    uvt__warn("%s:%d: uvt_coro(%s): %s", file, line, name,
              fn == NULL ? "no function" : "no uvtask loop runs on this thread");
    return NULL;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  uvt__obj_register(s, &c->obj, UVT_OBJECT_CORO, name, file, line, func);
  c->sched = s;
  c->fn = fn;
  c->arg = arg;
  return c;
}

static void coro_consume(uvt_coro_t *c) {
  uvt__obj_unregister(&c->obj);
  uvt__quarantine(c->sched, &c->obj);
}

int uvt_await_coro_at(uvt_coro_t *c, const char *file, int line,
                      const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt_fn fn;
  void *arg;
  if (self == NULL)
    return uvt__not_in_task(c ? c->sched : NULL, c ? &c->obj : NULL,
                            "uvt_await_coro", file, line);
  if (coro_check(c) != 0) return UVT_EINVAL;
  if (c->sched != self->sched) return UVT_EWRONGTHREAD;
  UVT__YIELD_POINT(self, "uvt_await_coro");
  int st;
  fn = c->fn;
  arg = c->arg;
  coro_consume(c);
  /* An await inside the coroutine is, for a no-yield section around this
   * call, an await made here: remember the outermost inline await. */
  if (self->await_nest++ == 0)
    self->outer_await = UVT__SITE("uvt_await_coro");
  st = fn(arg);
  self->await_nest--;
  return st;
}

uvt_task_t *uvt_spawn_coro_at(uvt_coro_t *c, const char *file, int line,
                              const char *func) {
  uvt__sched_t *s = uvt__sched_current();
  uvt_task_t *t;
  if (coro_check(c) != 0) {
    uvt__warn("%s:%d: uvt_spawn_coro: not a live coroutine object (already "
              "awaited, spawned or closed?)", file, line);
    return NULL;
  }
  if (uvt__sched_check(c->sched, &c->obj, "uvt_spawn_coro", file, line)) return NULL;
  if (s != c->sched) {
    uvt__warn("%s:%d: uvt_spawn_coro('%s'): not on the coroutine's loop",
              file, line, c->obj.name);
    return NULL;
  }
  t = uvt__spawn(s, c->fn, c->arg, 0, c->obj.name, file, line, func);
  if (t != NULL) coro_consume(c);
  return t;
}

int uvt_coro_close(uvt_coro_t *c) {
  int err;
  if (coro_check(c) != 0) return UVT_EINVAL;
  if ((err = uvt__sched_check(c->sched, &c->obj, "uvt_coro_close", NULL, 0))) return err;
  coro_consume(c);
  return 0;
}

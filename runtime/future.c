/*
 * Futures: an outcome set by other code (a reader task resolving pipelined
 * requests, a callback).  Ownership is counted as for tasks (out.refs):
 * new gives one reference, uvt_future_ref adds one, an await or a detach
 * gives one up; the struct is freed once it is done and none is left.
 */
#include "internal.h"
#include "findings.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int future_check(const uvt_future_t *f) {
  if (f == NULL) return UVT_EINVAL;
  if (f->obj.magic != UVT__MAGIC_LIVE) return UVT_ERELEASED;
  return 0;
}

static bool on_owner_thread(const uvt__sched_t *s) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &s->owner);
}

/* Flattened: the creation hook point (uvt__obj_register) then lies in
 * the function the user called, where ASYNCIODEBUG_STACKS=fp starts its
 * walk (hooks/hook_points.h); not inlined, the capture takes libunwind. */
__attribute__((flatten)) uvt_future_t *uvt_future_new_at(const char *file, int line, const char *func) {
  uvt__sched_t *s = uvt__sched_current();
  uvt_future_t *f;
  if (s == NULL && uvt__off_loop_thread("uvt_future_new", file, line)) return NULL;
  if (s == NULL) {
    uvt__warn("%s:%d: uvt_future_new: no uvtask loop runs on this thread",
              file, line);
    return NULL;
  }
  f = calloc(1, sizeof(*f));
  if (f == NULL) return NULL;
  uvt__obj_register(s, &f->obj, UVT_OBJECT_FUTURE, "future", file, line, func);
  f->sched = s;
  f->out.refs = 1;
  return f;
}

void uvt__future_unref(uvt_future_t *f) {
  if (--f->out.refs == 0 && f->out.done) uvt__future_release(f);
}

uvt_future_t *uvt_future_ref(uvt_future_t *f) {
  if (future_check(f) != 0) return NULL;
  if (uvt__sched_check(f->sched, &f->obj, "uvt_future_ref", NULL, 0)) return NULL;
  f->out.refs++;
  return f;
}

void uvt__future_release(uvt_future_t *f) {
  uvt__finding_unretrieved(&f->obj, &f->out);
  uvt__obj_unregister(&f->obj);
  uvt__quarantine(f->sched, &f->obj);
}

static int future_settle(uvt_future_t *f, int status, void *result,
                         char *message, const char *file, int line) {
  int err = future_check(f);
  if (err == 0 && !on_owner_thread(f->sched)) err = UVT_EWRONGTHREAD;
  if (err == 0 && f->out.done) err = UVT_EINVAL;
  if (err != 0) {
    free(message);
    if (err == UVT_EWRONGTHREAD) uvt__wrong_thread(&f->obj, "uvt_future_set", file, line);
    if (err == UVT_EWRONGTHREAD)
      uvt__warn("future created at %s:%d set from a thread that does not "
                "run its loop; use uvt_call_threadsafe",
                f->obj.file, f->obj.line);
    return err;
  }
  f->out.result = result;
  f->out.message = message;
  UVT__HOOK(.kind = UVT_HOOK_DONE, .object_kind = UVT_OBJECT_FUTURE,
            .id = f->obj.id, .name = f->obj.name, .status = status,
            .message = message, .loop = f->sched->loop, .object = f);
  uvt__outcome_complete(&f->out, status);
  if (f->out.refs == 0) uvt__future_release(f);
  return 0;
}

int uvt_future_cancel_at(uvt_future_t *f, const char *file, int line,
                         const char *func) {
  int err = future_check(f);
  (void)func;
  if (err != 0) return err;
  if (f->out.done) return 0;
  err = future_settle(f, UVT_ECANCELED, NULL, NULL, file, line);
  return err == 0 ? 1 : err;
}

int uvt_future_set_result_at(uvt_future_t *f, void *result, const char *file,
                             int line, const char *func) {
  (void)func;
  return future_settle(f, 0, result, NULL, file, line);
}

static int future_set_error_v(uvt_future_t *f, int code, const char *file,
                              int line, const char *fmt, va_list ap) {
  char *msg = NULL;
  if (code >= 0) return UVT_EINVAL;
  if (fmt != NULL && vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  return future_settle(f, code, NULL, msg, file, line);
}

int uvt_future_set_error_at(const char *file, int line, const char *func,
                            uvt_future_t *f, int code, const char *fmt, ...) {
  va_list ap;
  int err;
  (void)func;
  va_start(ap, fmt);
  err = future_set_error_v(f, code, file, line, fmt, ap);
  va_end(ap);
  return err;
}

static void future_fire(uvt__waiter_t *w) { uvt__wake(w->task, 0); }

/* Cancelling a task parked on a future cancels the future, as asyncio
 * does (test_tasks test_task_cancel_waiter_future); its awaiters, this
 * one included, wake with UVT_ECANCELED. */
static void future_on_cancel(uvt_task_t *self, void *data) {
  uvt_future_t *f = data;
  if (!f->out.done) (void)uvt_future_cancel(f);
  uvt__wake(self, UVT_ECANCELED);
}

int uvt_await_future_at(uvt_future_t *f, void **result, char **message,
                        const char *file, int line, const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt__site_t site = UVT__SITE_ON("uvt_await_future", UVT_WAIT_FUTURE, f, false);
  uvt__waiter_t w;
  bool ok = true;
  int err;
  if (self == NULL)
    return uvt__not_in_task(f ? f->sched : NULL, f ? &f->obj : NULL,
                            "uvt_await_future", file, line);
  if ((err = future_check(f)) != 0) return err;
  if (f->sched != self->sched) return UVT_EWRONGTHREAD;
  UVT__YIELD_POINT(self, "uvt_await_future");
  if (!f->out.done) {
    memset(&w, 0, sizeof(w));
    w.fire = future_fire;
    w.task = self;
    uvt__waiters_push(&f->out.waiters, &w);
    err = uvt__park_revocable(&site, future_on_cancel, f);
    uvt__waiters_remove(&f->out.waiters, &w);
    /* A cancel pending before the park: deliver it the same way. */
    if (err == UVT_ECANCELED && !f->out.done) (void)uvt_future_cancel(f);
    /* A delivered cancel wins even if the future was set meanwhile: the
     * one-shot cancel must not be lost. */
    ok = err != UVT_ECANCELED;
  }
  if (ok) {
    uvt__outcome_retrieve(&f->obj, &f->out);
    err = f->out.status;
  }
  if (result != NULL || message != NULL)
    uvt__outcome_hand_over(&f->out, ok, result, message);
  uvt__future_unref(f);
  return err;
}

bool uvt_future_done(const uvt_future_t *f) {
  return future_check(f) == 0 && f->out.done;
}

void *uvt_future_result(const uvt_future_t *f) {
  return future_check(f) == 0 && f->out.done ? f->out.result : NULL;
}

const char *uvt_future_error_message(const uvt_future_t *f) {
  if (future_check(f) != 0 || !f->out.done || f->out.status >= 0) return NULL;
  return f->out.message;
}

void uvt_future_detach_at(uvt_future_t *f,
                          const char *file, int line, const char *func) {
  if (future_check(f) != 0 || f->out.refs <= 0) return;
  (void)func;
  if (uvt__sched_check(f->sched, &f->obj, "uvt_future_detach", file, line)) return;
  UVT__HOOK(.kind = UVT_HOOK_DETACH, .object_kind = UVT_OBJECT_FUTURE,
            .id = f->obj.id, .name = f->obj.name, .object = f);
  uvt__future_unref(f);
}

/* The plain symbols of 0.2.0, for programs built before the header's
 * macros passed the caller's location (reported as unknown). */
void (uvt_future_detach)(uvt_future_t *f) {
  uvt_future_detach_at(f, NULL, 0, NULL);
}
int (uvt_future_cancel)(uvt_future_t *f) {
  return uvt_future_cancel_at(f, NULL, 0, NULL);
}
int (uvt_future_set_result)(uvt_future_t *f, void *result) {
  return uvt_future_set_result_at(f, result, NULL, 0, NULL);
}
int (uvt_future_set_error)(uvt_future_t *f, int code, const char *fmt, ...) {
  va_list ap;
  int err;
  va_start(ap, fmt);
  err = future_set_error_v(f, code, NULL, 0, fmt, ap);
  va_end(ap);
  return err;
}

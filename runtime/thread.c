/*
 * uvt_to_thread: run a function on libuv's thread pool and await it.
 *
 * The work request lives on the awaiting task's stack, so the task stays
 * parked until libuv's after-work callback has run, even when cancelled:
 * uv_cancel dequeues work that has not started; work already running is
 * waited for, then UVT_ECANCELED is returned.  A cancel that comes after
 * the function returned but before the task ran again wins as well: the
 * function's status is dropped and UVT_ECANCELED returned.
 */
#include "internal.h"

typedef struct {
  uv_work_t req;
  uvt_fn fn;
  void *arg;
  int status;
  uvt_task_t *task;
  bool cancelled;
} work_t;

static void work_run(uv_work_t *req) {
  work_t *w = req->data;
  w->status = w->fn(w->arg);
}

static void work_done(uv_work_t *req, int status) {
  work_t *w = req->data;
  UVT__HOOK(.kind = UVT_HOOK_CALLBACK_BEGIN, .what = "work",
            .loop = w->task->sched->loop);
  if (status == UV_ECANCELED || w->cancelled) w->status = UVT_ECANCELED;
  uvt__wake(w->task, w->status);
  UVT__HOOK(.kind = UVT_HOOK_CALLBACK_END, .what = "work",
            .loop = w->task->sched->loop);
}

static void work_on_cancel(uvt_task_t *t, void *data) {
  work_t *w = data;
  (void)t;
  w->cancelled = true;
  uv_cancel((uv_req_t *)&w->req);
}

int uvt_to_thread_at(uvt_fn fn, void *arg, const char *file, int line,
                     const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt__site_t site = UVT__SITE_ON("uvt_to_thread", UVT_WAIT_POOL_WORK, NULL, false);
  work_t w;
  int err;
  if (self == NULL) return uvt__no_task_call("uvt_to_thread", file, line);
  if (fn == NULL) return UVT_EINVAL;
  UVT__YIELD_POINT(self, "uvt_to_thread");
  /* A pending cancel must be taken now: once queued, the request must
   * stay alive (on this stack) until libuv is done with it. */
  if (uvt__take_pending_cancel(self)) return UVT_ECANCELED;
  w.fn = fn;
  w.arg = arg;
  w.status = 0;
  w.task = self;
  w.cancelled = false;
  w.req.data = &w;
  err = uv_queue_work(self->sched->loop, &w.req, work_run, work_done);
  if (err != 0) return err;
  /* The request lives on this stack: shutdown must wait for it. */
  self->in_pool = true;
  /* Revocable: a cancel after the function finished but before we ran
   * wins; the function ran, its status is dropped (asyncio.to_thread). */
  err = uvt__park_revocable(&site, work_on_cancel, &w);
  self->in_pool = false;
  return err;
}

/*
 * Futures beyond set/await: done callbacks, and completion from another
 * thread.
 *
 * A callback is a waiter node of its own (malloc'd) on the future's
 * waiter list: the list fires in order when the outcome completes, and
 * the node frees itself after running.  A set from another thread is a
 * posted call (uvt__sched_post) carrying the future, which the poster
 * pinned with the reference the call gives up.
 */
#include "internal.h"

#include <stdlib.h>

typedef struct {
  uvt__waiter_t w; /* first: the node is the allocation */
  uvt_future_t *f;
  uvt_future_cb cb;
  void *data;
} done_cb_t;

static bool on_loop_thread(const uvt_future_t *f) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &f->sched->owner);
}

static int check(const uvt_future_t *f) {
  if (f == NULL) return UVT_EINVAL;
  if (f->obj.magic != UVT__MAGIC_LIVE) return UVT_ERELEASED;
  if (!on_loop_thread(f)) return UVT_EWRONGTHREAD;
  return 0;
}

static void done_cb_fire(uvt__waiter_t *w) {
  done_cb_t *d = (done_cb_t *)(void *)w;
  d->cb(d->f, d->data);
  free(d);
}

int uvt_future_add_done_callback(uvt_future_t *f, uvt_future_cb cb,
                                 void *data) {
  done_cb_t *d;
  int err = check(f);
  if (err != 0) return err;
  if (cb == NULL) return UVT_EINVAL;
  if (f->out.done) {
    cb(f, data);
    return 0;
  }
  d = calloc(1, sizeof(*d));
  if (d == NULL) return UVT_ENOMEM;
  d->w.fire = done_cb_fire;
  d->f = f;
  d->cb = cb;
  d->data = data;
  uvt__waiters_push(&f->out.waiters, &d->w);
  return 0;
}

int uvt_future_remove_done_callback(uvt_future_t *f, uvt_future_cb cb,
                                    void *data) {
  uvt__waiter_t *w, *next;
  int n = 0, err = check(f);
  if (err != 0) return err;
  for (w = f->out.waiters.head; w != NULL; w = next) {
    done_cb_t *d = (done_cb_t *)(void *)w;
    next = w->next;
    if (w->fire != done_cb_fire || d->cb != cb || d->data != data) continue;
    uvt__waiters_remove(&f->out.waiters, w);
    free(d);
    n++;
  }
  return n;
}

/* ---- from another thread ----------------------------------------------------- */

typedef struct {
  struct uvt__ts_call_s call; /* first: the loop thread frees the call */
  uvt_future_t *f;
  void *result;
  int status;
} ts_set_t;

/* On the loop thread. */
static void ts_set_run(uvt__sched_t *s, struct uvt__ts_call_s *c) {
  ts_set_t *t = (ts_set_t *)(void *)c;
  uvt_future_t *f = t->f;
  (void)s;
  if (f->obj.magic != UVT__MAGIC_LIVE) return; /* freed by the run's end */
  if (!f->out.done) {
    if (t->status == 0) (void)uvt_future_set_result(f, t->result);
    else (void)uvt_future_set_error(f, t->status, "set from another thread");
  }
  uvt__future_unref(f);
}

static int post_set(uvt_future_t *f, void *result, int status) {
  ts_set_t *t;
  int err;
  if (f == NULL) return UVT_EINVAL;
  t = calloc(1, sizeof(*t));
  if (t == NULL) return UVT_ENOMEM;
  t->call.run = ts_set_run;
  t->call.name = "uvt_future_set_threadsafe";
  t->call.file = f->obj.file;
  t->call.line = f->obj.line;
  t->call.func = f->obj.func;
  t->f = f;
  t->result = result;
  t->status = status;
  err = uvt__sched_post(f->sched->loop, &t->call);
  if (err == UVT_ENOLOOP) free(t);
  return err;
}

int uvt_future_set_result_threadsafe(uvt_future_t *f, void *result) {
  return post_set(f, result, 0);
}

int uvt_future_set_error_threadsafe(uvt_future_t *f, int code) {
  if (code >= 0) return UVT_EINVAL;
  return post_set(f, NULL, code);
}

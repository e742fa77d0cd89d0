/*
 * uvt_signal_wait: one uv_signal_t on the waiting task's stack, started
 * one-shot; the task stays parked until libuv has closed it (its memory
 * goes with the frame), whatever woke it.
 */
#include "internal.h"

#include <string.h>

typedef struct {
  uv_signal_t h;
  uvt_task_t *task;
  bool fired;
  bool closed;
  bool cancel_in_close; /* a cancel that came while the handle closed */
} sigwait_t;

static void on_signal(uv_signal_t *h, int signum) {
  sigwait_t *w = h->data;
  (void)signum;
  w->fired = true;
  uvt__wake(w->task, 0);
}

static void on_close(uv_handle_t *h) {
  sigwait_t *w = h->data;
  w->closed = true;
  uvt__wake(w->task, 0);
}

static void cancel_wait(uvt_task_t *t, void *data) {
  sigwait_t *w = data;
  uv_signal_stop(&w->h);
  uvt__wake(t, UVT_ECANCELED);
}

static void cancel_close(uvt_task_t *t, void *data) {
  sigwait_t *w = data;
  (void)t;
  w->cancel_in_close = true;
}

int uvt_signal_wait_at(int signum, const char *file, int line,
                       const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt__site_t site = UVT__SITE_ON("uvt_signal_wait", UVT_WAIT_SIGNAL, NULL, false);
  sigwait_t w;
  int st;
  if (self == NULL) return UVT_ENOTASK;
  UVT__YIELD_POINT(self, "uvt_signal_wait");
  memset(&w, 0, sizeof(w));
  w.task = self;
  if ((st = uv_signal_init(self->sched->loop, &w.h)) != 0) return st;
  w.h.data = &w;
  st = uv_signal_start_oneshot(&w.h, on_signal, signum);
  if (st == 0) {
    /* Not revocable: a signal that woke us was consumed; a cancel after
     * it comes at the next await. */
    st = uvt__park(&site, cancel_wait, &w);
  }
  uv_close((uv_handle_t *)&w.h, on_close);
  while (!w.closed)
    if (uvt__park(&site, cancel_close, &w) == UVT_ECANCELED && !w.closed)
      w.cancel_in_close = true;
  if (w.cancel_in_close) {
    self->cancelled = true;
    self->cancel_pending = true;
  }
  return st;
}

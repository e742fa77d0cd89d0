/*
 * Streams: creation, closing, and the runtime's shutdown hook.  The read
 * side is in stream_read.c, the write side in stream_write.c; the struct
 * and its life cycle in stream_internal.h; the contract in
 * uvtask/stream.h.
 *
 * Closing.  uvt_close marks the stream closing (API calls fail with
 * UVT_ECLOSED), wakes its reader and drainers with UVT_ECLOSED, waits for
 * the buffered bytes to go out, calls uv_close on the stream's two
 * handles, and waits until both close callbacks have run *and* the woken
 * reader has left the stream — a reader
 * resumes after its wake and must still find the struct — before it frees
 * it.  A cancel during the flush abandons the flush; a cancel after
 * uv_close only changes the return value: the memory cannot be freed
 * before libuv lets go of it.
 */
#include "stream_internal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* ---- SIGPIPE ------------------------------------------------------------- */

static uv_once_t sigpipe_once = UV_ONCE_INIT;

static void sigpipe_ignore(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) != 0) return;
  if ((sa.sa_flags & SA_SIGINFO) || sa.sa_handler != SIG_DFL) return;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);
}

void uvt__ignore_sigpipe(void) { uv_once(&sigpipe_once, sigpipe_ignore); }

/* ---- freeing ------------------------------------------------------------- */

static void stream_free_buffers(uvt_stream_t *s) {
  free(s->rbuf);
  free(s->wcur.data);
  free(s->wnext.data);
  s->rbuf = s->wcur.data = s->wnext.data = NULL;
  s->rcap = s->rstart = s->rend = 0;
  s->wcur.cap = s->wcur.len = s->wnext.cap = s->wnext.len = 0;
}

/* After the close callback: the memory is ours again. */
static void stream_release(uvt_stream_t *s) {
  stream_free_buffers(s);
  if (s->registered) {
    uvt__obj_unregister(&s->obj);
    uvt__quarantine(s->sched, &s->obj);
  } else {
    free(s);
  }
}

/* ---- closing ------------------------------------------------------------- */

static void close_cb(uv_handle_t *h) {
  uvt_stream_t *s = h->data;
  uvt__sched_t *sched = s->sched;
  if (--s->closes_pending > 0) return;
  s->handle_closed = true;
  if (s->detached) {
    stream_release(s);
    sched->pending_callbacks--;
  } else if (s->closer != NULL) {
    uvt__wake(s->closer, 0);
  }
}

void uvt__stream_uv_close(uvt_stream_t *s) {
  if (s->uv_closing) return;
  uvt__stream_read_stop(s);
  s->uv_closing = true;
  s->closes_pending = 2;
  uv_close((uv_handle_t *)&s->flusher, close_cb);
  uv_close(&s->u.handle, close_cb);
}

/* Cancelled while flushing: give up on the unsent bytes. */
static void close_flush_on_cancel(uvt_task_t *t, void *data) {
  uvt_stream_t *s = data;
  s->close_cancelled = true;
  uvt__wake(t, UVT_ECANCELED);
}

/* Cancelled while libuv closes the handle: note it; close_cb wakes us. */
static void close_wait_on_cancel(uvt_task_t *t, void *data) {
  uvt_stream_t *s = data;
  (void)t;
  s->close_cancelled = true;
}

/* uv_close (once) and wait for the close callbacks and for a woken
 * reader to have left.  Returns true if a cancel arrived meanwhile, also
 * after the last wake but before the task ran again (asyncio's rule: the
 * cancel wins; the stream is closed all the same). */
static bool close_handle_wait(uvt_stream_t *s, const uvt__site_t *site) {
  uvt__stream_uv_close(s);
  while (!s->handle_closed || s->reader != NULL)
    if (uvt__park_revocable(site, close_wait_on_cancel, s) == UVT_ECANCELED)
      s->close_cancelled = true;
  return s->close_cancelled;
}

int uvt_close_at(uvt_stream_t *s, const char *file, int line,
                 const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_close", UVT_WAIT_STREAM_CLOSE, s, false);
  uvt_task_t *self = uvt__task_current();
  bool cancelled;
  if (s == NULL) return UVT_EINVAL;
  if (s->obj.magic != UVT__MAGIC_LIVE || s->closing) return UVT_ECLOSED;
  if (uvt__sched_check(s->sched, &s->obj, "uvt_close", file, line)) return UVT_EWRONGTHREAD;
  if (self == NULL) return UVT_ENOTASK;
  UVT__YIELD_POINT(self, "uvt_close");
  s->closing = true;
  s->closer = self;
  s->close_cancelled = false;
  if (s->reader != NULL) uvt__wake(s->reader, UVT_ECLOSED);
  uvt__waitq_wake_all(&s->drainers, UVT_ECLOSED);
  while (!uvt__stream_flushed(s) && !s->close_cancelled)
    if (uvt__park(&site, close_flush_on_cancel, s) == UVT_ECANCELED)
      s->close_cancelled = true;
  cancelled = close_handle_wait(s, &site);
  s->closer = NULL;
  if (s->closed_flag != NULL) *s->closed_flag = true;
  stream_release(s);
  return cancelled ? UVT_ECANCELED : 0;
}

int uvt__stream_close_wait(uvt_stream_t *s, const uvt__site_t *site) {
  bool cancelled;
  s->closing = true;
  s->closer = uvt__task_current();
  cancelled = close_handle_wait(s, site);
  s->closer = NULL;
  stream_release(s);
  return cancelled ? UVT_ECANCELED : 0;
}

void uvt__stream_close_detached(uvt_stream_t *s) {
  /* A close already under way belongs to the task doing it. */
  if (s->uv_closing) return;
  s->closing = true;
  s->detached = true;
  s->sched->pending_callbacks++;
  uvt__stream_uv_close(s);
}

static void stream_on_shutdown(uvt__obj_t *o) {
  uvt__stream_close_detached((uvt_stream_t *)o);
}

/* ---- creation ------------------------------------------------------------ */

uvt_stream_t *uvt__stream_new(uvt__sched_t *sched, bool is_pipe) {
  uvt_stream_t *s = calloc(1, sizeof(*s));
  int err;
  if (s == NULL) return NULL;
  err = is_pipe ? uv_pipe_init(sched->loop, &s->u.pipe, 0)
                : uv_tcp_init(sched->loop, &s->u.tcp);
  if (err != 0) {
    free(s);
    return NULL;
  }
  uv_idle_init(sched->loop, &s->flusher); /* cannot fail */
  s->u.handle.data = s;
  s->flusher.data = s;
  s->sched = sched;
  s->is_pipe = is_pipe;
  s->limit = UVT_STREAM_LIMIT;
  s->hwm = UVT_STREAM_HIGH_WATER;
  uvt__waitq_init(&s->drainers);
  uvt__ignore_sigpipe();
  return s;
}

int uvt__stream_open(uvt_stream_t *s, const char *name, const char *file,
                     int line, const char *func) {
  int err;
  if (!s->is_pipe) uv_tcp_nodelay(&s->u.tcp, 1);
  if ((err = uvt__stream_read_start(s)) != 0) return err;
  uvt__obj_register(s->sched, &s->obj, UVT_OBJECT_STREAM, name, file, line,
                    func);
  s->obj.on_shutdown = stream_on_shutdown;
  s->registered = true;
  return 0;
}

uv_stream_t *uvt_stream_handle(uvt_stream_t *s) {
  return uvt__stream_check(s) == 0 ? &s->u.stream : NULL;
}

/*
 * Client streams: name resolution and connect, over TCP and Unix sockets.
 *
 * libuv requests must stay alive until their callback, even when the
 * await on them is cancelled:
 *   - resolution: the uv_getaddrinfo_t is heap memory.  A cancel calls
 *     uv_cancel (which dequeues it if no thread has picked it up yet) and
 *     returns UVT_ECANCELED at once, leaving the request to its callback,
 *     which frees it and the result.  Until then it counts in
 *     sched->pending_callbacks, so that uvt_run's shutdown waits for it
 *     before the loop goes away (a lookup can take seconds; the task
 *     need not);
 *   - connect: the uv_connect_t lives in the heap stream; a cancel calls
 *     uv_close on the handle, which makes libuv fail the connect with
 *     UV_ECANCELED and then call the close callback, and the task stays
 *     parked until that close callback (the next loop iteration), then
 *     frees the stream.
 * A cancel already pending when the call starts is taken before any
 * request is made, so no request is ever left without an owner.  A cancel
 * that comes after a request completed but before the task ran again
 * wins too (asyncio's rule): a resolved address list is freed, a
 * connected stream closed, and UVT_ECANCELED returned.
 */
#include "stream_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* ---- name resolution ----------------------------------------------------- */

typedef struct {
  uv_getaddrinfo_t req;
  uvt_task_t *task; /* the waiter; NULL once it gave up (cancelled) */
  uvt__sched_t *sched;
  struct addrinfo *res;
  int status;
  bool done; /* resolve_cb stored its answer */
} resolve_t;

static void resolve_cb(uv_getaddrinfo_t *req, int status,
                       struct addrinfo *res) {
  resolve_t *r = req->data;
  if (r->task == NULL) { /* orphaned by a cancel */
    if (res != NULL) uv_freeaddrinfo(res);
    r->sched->pending_callbacks--;
    free(r);
    return;
  }
  r->status = status;
  r->res = res;
  r->done = true;
  uvt__wake(r->task, 0);
}

static void resolve_on_cancel(uvt_task_t *t, void *data) {
  resolve_t *r = data;
  r->task = NULL;
  r->sched->pending_callbacks++;
  uv_cancel((uv_req_t *)&r->req); /* fails if running: the callback frees */
  uvt__wake(t, UVT_ECANCELED);
}

/* Resolve host:port to a list of stream addresses.  A numeric address is
 * parsed here without the thread pool.  On success *res is to be freed
 * with uv_freeaddrinfo. */
int uvt__resolve(const char *host, int port, bool passive,
                 struct addrinfo **res, const uvt__site_t *site) {
  uvt_task_t *self = uvt__task_current();
  struct addrinfo hints;
  char service[16];
  resolve_t *r;
  bool cancelled;
  int err;

  *res = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  snprintf(service, sizeof(service), "%d", port);

  if (uvt__take_pending_cancel(self)) return UVT_ECANCELED;
  /* Numeric hosts resolve synchronously and cannot block. */
  hints.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
  if (getaddrinfo(host, service, &hints, res) == 0) return 0;
  *res = NULL;
  hints.ai_flags &= ~AI_NUMERICHOST;

  if ((r = calloc(1, sizeof(*r))) == NULL) return UVT_ENOMEM;
  r->task = self;
  r->sched = self->sched;
  r->req.data = r;
  err = uv_getaddrinfo(self->sched->loop, &r->req, resolve_cb, host, service,
                       &hints);
  if (err != 0) {
    free(r);
    return err;
  }
  /* Either resolve_cb woke us (r->done) and r is ours to free, or a
   * cancel did while we were parked and r now belongs to resolve_cb.
   * Resolved, then cancelled before we ran: the cancel wins and the
   * answer is dropped. */
  cancelled = uvt__park_revocable(site, resolve_on_cancel, r) == UVT_ECANCELED;
  if (cancelled && !r->done) return UVT_ECANCELED;
  if (cancelled) {
    if (r->res != NULL) uv_freeaddrinfo(r->res);
    free(r);
    return UVT_ECANCELED;
  }
  err = r->status;
  *res = r->res;
  free(r);
  if (err != 0 && *res != NULL) {
    uv_freeaddrinfo(*res);
    *res = NULL;
  }
  return err;
}

/* ---- connect ------------------------------------------------------------- */

static void connect_cb(uv_connect_t *req, int status) {
  uvt_stream_t *s = req->handle->data;
  s->cdone = true;
  s->cstatus = status;
  /* Once a cancel has closed the handle, the close callback wakes. */
  if (!s->uv_closing && s->closer != NULL) uvt__wake(s->closer, 0);
}

static void connect_on_cancel(uvt_task_t *t, void *data) {
  uvt_stream_t *s = data;
  (void)t;
  s->close_cancelled = true;
  uvt__stream_uv_close(s); /* the last close callback wakes us */
}

/* Connect `s` (a fresh stream) to addr or path; on success open it.  On
 * any failure the stream is closed and freed.  The connect request has
 * been started by the caller; this waits for it. */
static int connect_finish(uvt_stream_t *s, const uvt__site_t *site,
                          const char *name, const char *file, int line,
                          const char *func) {
  int err;
  s->closer = uvt__task_current();
  while (!s->cdone && !s->uv_closing)
    if (uvt__park(site, connect_on_cancel, s) == UVT_ECANCELED &&
        !s->uv_closing)
      connect_on_cancel(s->closer, s); /* a cancel pending before the park */
  /* Connected (or failed), then cancelled before we ran: the cancel wins
   * and the connection is closed, as asyncio closes the transport. */
  if (!s->uv_closing && uvt__take_pending_cancel(s->closer))
    connect_on_cancel(s->closer, s);
  if (s->uv_closing) {
    /* Cancelled: wait for the close callback, then free. */
    uvt__stream_close_wait(s, site);
    return UVT_ECANCELED;
  }
  s->closer = NULL;
  err = s->cstatus;
  if (err == 0) err = uvt__stream_open(s, name, file, line, func);
  if (err != 0) {
    if (uvt__stream_close_wait(s, site) == UVT_ECANCELED) return UVT_ECANCELED;
    return err;
  }
  return 0;
}

int uvt_open_connection_at(const char *host, int port, uvt_stream_t **out,
                           const char *file, int line, const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_open_connection", UVT_WAIT_CONNECT, NULL, false);
  uvt_task_t *self = uvt__task_current();
  struct addrinfo *res, *ai;
  int err = UV_EAI_NONAME;
  if (out != NULL) *out = NULL;
  if (host == NULL || out == NULL || port < 0 || port > 65535)
    return UVT_EINVAL;
  if (self == NULL)
    return uvt__no_task_call("uvt_open_connection", file, line);
  UVT__YIELD_POINT(self, "uvt_open_connection");
  if ((err = uvt__resolve(host, port, false, &res, &site)) != 0) return err;
  err = UV_EAI_NONAME;
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    uvt_stream_t *s;
    if (uvt__take_pending_cancel(self)) {
      err = UVT_ECANCELED;
      break;
    }
    s = uvt__stream_new(self->sched, false);
    if (s == NULL) {
      err = UVT_ENOMEM;
      break;
    }
    err = uv_tcp_connect(&s->creq, &s->u.tcp, ai->ai_addr, connect_cb);
    if (err != 0) {
      if (uvt__stream_close_wait(s, &site) == UVT_ECANCELED)
        err = UVT_ECANCELED;
    } else {
      err = connect_finish(s, &site, "uvt_open_connection", file, line, func);
      if (err == 0) *out = s;
    }
    if (err == 0 || err == UVT_ECANCELED) break;
  }
  uv_freeaddrinfo(res);
  return err;
}

int uvt_open_unix_at(const char *path, uvt_stream_t **out, const char *file,
                     int line, const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_open_unix", UVT_WAIT_CONNECT, NULL, false);
  uvt_task_t *self = uvt__task_current();
  uvt_stream_t *s;
  int err;
  if (out != NULL) *out = NULL;
  if (path == NULL || out == NULL) return UVT_EINVAL;
  /* libuv 1.44 would silently truncate it. */
  if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    return UV_ENAMETOOLONG;
  if (self == NULL) return uvt__no_task_call("uvt_open_unix", file, line);
  UVT__YIELD_POINT(self, "uvt_open_unix");
  if (uvt__take_pending_cancel(self)) return UVT_ECANCELED;
  s = uvt__stream_new(self->sched, true);
  if (s == NULL) return UVT_ENOMEM;
  uv_pipe_connect(&s->creq, &s->u.pipe, path, connect_cb);
  err = connect_finish(s, &site, "uvt_open_unix", file, line, func);
  if (err == 0) *out = s;
  return err;
}

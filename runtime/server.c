/*
 * Servers: a listening TCP or Unix socket that runs a handler task per
 * accepted connection (asyncio.start_server).
 *
 * Each accepted connection gets a conn_t: the stream, the task running
 * the handler, and a waiter node on that task's outcome.  The node fires
 * when the task ends by any path — its handler returned, it was cancelled
 * before it ever ran (its body then never runs, so cleanup cannot live in
 * the body alone) — and removes the connection from the server, closes
 * the stream if the task did not (a detached close), and wakes a task
 * waiting in uvt_server_close when the last connection is gone.  The
 * connection tasks are detached at birth: nobody awaits them, so an error
 * a handler returns is reported as unretrieved.
 *
 * Invariant: a conn_t is on srv->conns, and counted in srv->nconns,
 * exactly while its task has not ended; so c->task is a live task
 * pointer for as long as c is on the list.
 */
#include "stream_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

typedef struct conn_s {
  uvt__waiter_t done; /* first: the fire callback gets this pointer */
  struct conn_s *prev, *next;
  uvt_server_t *srv;
  uvt_stream_t *stream;
  uvt_task_t *task;
  bool stream_closed; /* uvt_close ran on the stream */
} conn_t;

struct uvt_server_s {
  uvt__obj_t obj;
  uvt__sched_t *sched;
  uvt__uvstream_t u;
  bool is_pipe;
  uvt_conn_fn handler;
  void *arg;
  const char *name; /* the handler's name: names tasks and streams */
  conn_t *conns;
  size_t nconns;
  bool closing, uv_closing, handle_closed, close_cancelled;
  uvt_task_t *closer;
};

static int server_check(const uvt_server_t *srv) {
  if (srv == NULL) return UVT_EINVAL;
  if (srv->obj.magic != UVT__MAGIC_LIVE || srv->closing) return UVT_ECLOSED;
  return 0;
}

/* ---- connections --------------------------------------------------------- */

static int conn_main(void *arg) {
  conn_t *c = arg;
  int st = c->srv->handler(c->stream, c->srv->arg);
  if (!c->stream_closed) uvt_close(c->stream);
  return st;
}

/* The connection's task has ended (see the comment on top). */
static void conn_done(uvt__waiter_t *w) {
  conn_t *c = (conn_t *)w;
  uvt_server_t *srv = c->srv;
  if (!c->stream_closed) uvt__stream_close_detached(c->stream);
  if (c->prev != NULL) c->prev->next = c->next;
  else srv->conns = c->next;
  if (c->next != NULL) c->next->prev = c->prev;
  srv->nconns--;
  if (srv->nconns == 0 && srv->closer != NULL) uvt__wake(srv->closer, 0);
  free(c);
}

/* The main task has returned: uvt_run is shutting down and must not get
 * new tasks. */
static bool shutting_down(const uvt__sched_t *sched) {
  return sched->main != NULL && sched->main->out.done;
}

static void accept_cb(uv_stream_t *ls, int status) {
  uvt_server_t *srv = ls->data;
  uvt_stream_t *s;
  uvt_task_t *t;
  conn_t *c;
  if (status < 0 || srv->closing) return;
  s = uvt__stream_new(srv->sched, srv->is_pipe);
  /* Out of memory: libuv keeps the connection queued and stops accepting
   * until someone accepts it; without memory there is nothing better. */
  if (s == NULL) return;
  if (uv_accept(ls, &s->u.stream) != 0 || shutting_down(srv->sched) ||
      uvt__stream_open(s, srv->name, srv->obj.file, srv->obj.line,
                       srv->obj.func) != 0) {
    uvt__stream_close_detached(s);
    return;
  }
  c = calloc(1, sizeof(*c));
  t = c != NULL ? uvt__spawn(srv->sched, conn_main, c, 0, srv->name,
                             srv->obj.file, srv->obj.line, srv->obj.func)
                : NULL;
  if (t == NULL) {
    uvt__warn("%s:%d: server '%s': out of memory; connection dropped",
              srv->obj.file, srv->obj.line, srv->name);
    free(c);
    uvt__stream_close_detached(s);
    return;
  }
  c->srv = srv;
  c->stream = s;
  c->task = t;
  s->closed_flag = &c->stream_closed;
  c->done.fire = conn_done;
  uvt__waiters_push(&t->out.waiters, &c->done);
  c->next = srv->conns;
  if (srv->conns != NULL) srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  uvt_detach(t);
}

/* ---- creation ------------------------------------------------------------ */

static void server_detached_close_cb(uv_handle_t *h) {
  uvt_server_t *srv = h->data;
  uvt__sched_t *sched = srv->sched;
  if (srv->obj.magic == UVT__MAGIC_LIVE) {
    uvt__obj_unregister(&srv->obj);
    uvt__quarantine(sched, &srv->obj);
  } else {
    free(srv);
  }
  sched->pending_callbacks--;
}

/* Close without a task (a failed start, the runtime's shutdown). */
static void server_close_detached(uvt_server_t *srv) {
  if (srv->uv_closing) return;
  srv->closing = true;
  srv->uv_closing = true;
  srv->sched->pending_callbacks++;
  uv_close(&srv->u.handle, server_detached_close_cb);
}

static void server_on_shutdown(uvt__obj_t *o) {
  server_close_detached((uvt_server_t *)o);
}

static uvt_server_t *server_new(uvt__sched_t *sched, bool is_pipe,
                                uvt_conn_fn handler, void *arg,
                                const char *name) {
  uvt_server_t *srv = calloc(1, sizeof(*srv));
  int err;
  if (srv == NULL) return NULL;
  err = is_pipe ? uv_pipe_init(sched->loop, &srv->u.pipe, 0)
                : uv_tcp_init(sched->loop, &srv->u.tcp);
  if (err != 0) {
    free(srv);
    return NULL;
  }
  srv->u.handle.data = srv;
  srv->sched = sched;
  srv->is_pipe = is_pipe;
  srv->handler = handler;
  srv->arg = arg;
  srv->name = name != NULL ? name : "connection";
  uvt__ignore_sigpipe();
  return srv;
}

/* Listen on a bound server and register it; on failure close it. */
static int server_listen(uvt_server_t *srv, uvt_server_t **out,
                         const char *file, int line, const char *func) {
  int err = uv_listen(&srv->u.stream, SOMAXCONN, accept_cb);
  if (err != 0) {
    server_close_detached(srv);
    return err;
  }
  uvt__obj_register(srv->sched, &srv->obj, UVT_OBJECT_SERVER, srv->name, file,
                    line, func);
  srv->obj.on_shutdown = server_on_shutdown;
  *out = srv;
  return 0;
}

int uvt_start_server_at(const char *host, int port, uvt_conn_fn handler,
                        void *arg, uvt_server_t **out, const char *name,
                        const char *file, int line, const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_start_server", UVT_WAIT_CONNECT, NULL, false);
  uvt_task_t *self = uvt__task_current();
  struct addrinfo *res;
  uvt_server_t *srv;
  int err;
  if (out != NULL) *out = NULL;
  if (host == NULL || handler == NULL || out == NULL || port < 0 ||
      port > 65535)
    return UVT_EINVAL;
  if (self == NULL) return uvt__no_task_call("uvt_start_server", file, line);
  UVT__YIELD_POINT(self, "uvt_start_server");
  if ((err = uvt__resolve(host, port, true, &res, &site)) != 0) return err;
  srv = server_new(self->sched, false, handler, arg, name);
  if (srv == NULL) {
    uv_freeaddrinfo(res);
    return UVT_ENOMEM;
  }
  err = uv_tcp_bind(&srv->u.tcp, res->ai_addr, 0);
  uv_freeaddrinfo(res);
  if (err != 0) {
    server_close_detached(srv);
    return err;
  }
  return server_listen(srv, out, file, line, func);
}

int uvt_start_unix_server_at(const char *path, uvt_conn_fn handler, void *arg,
                             uvt_server_t **out, const char *name,
                             const char *file, int line, const char *func) {
  uvt__sched_t *sched = uvt__sched_current();
  uvt_server_t *srv;
  int err;
  if (out != NULL) *out = NULL;
  if (path == NULL || handler == NULL || out == NULL) return UVT_EINVAL;
  /* libuv 1.44 would silently truncate it. */
  if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    return UV_ENAMETOOLONG;
  if (sched == NULL) return UVT_ENOLOOP;
  srv = server_new(sched, true, handler, arg, name);
  if (srv == NULL) return UVT_ENOMEM;
  /* libuv unlinks the socket file when the handle closes. */
  if ((err = uv_pipe_bind(&srv->u.pipe, path)) != 0) {
    server_close_detached(srv);
    return err;
  }
  return server_listen(srv, out, file, line, func);
}

/* ---- inspection ---------------------------------------------------------- */

int uvt_server_port(const uvt_server_t *srv) {
  struct sockaddr_storage ss;
  int len = (int)sizeof(ss);
  int err = server_check(srv);
  if (err != 0) return err == UVT_ECLOSED ? UVT_EINVAL : err;
  if (srv->is_pipe) return UVT_EINVAL;
  err = uv_tcp_getsockname(&srv->u.tcp, (struct sockaddr *)&ss, &len);
  if (err != 0) return err;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return UVT_EINVAL;
}

size_t uvt_server_connections(const uvt_server_t *srv) {
  if (srv == NULL || srv->obj.magic != UVT__MAGIC_LIVE) return 0;
  return srv->nconns;
}

size_t uvt_server_cancel_connections_at(uvt_server_t *srv,
                                        const char *file, int line,
                                        const char *func) {
  conn_t *c, *next;
  size_t n = 0;
  if (srv == NULL || srv->obj.magic != UVT__MAGIC_LIVE) return 0;
  (void)func;
  if (uvt__sched_check(srv->sched, &srv->obj, "uvt_server_cancel_connections", file, line)) return 0;
  for (c = srv->conns; c != NULL; c = next) {
    next = c->next;
    if (uvt__task_cancel(c->task) == 1) n++;
  }
  return n;
}

/* ---- closing ------------------------------------------------------------- */

static void server_close_cb(uv_handle_t *h) {
  uvt_server_t *srv = h->data;
  srv->handle_closed = true;
  if (srv->closer != NULL) uvt__wake(srv->closer, 0);
}

/* The closer was cancelled: cancel the connections; the last one to end
 * (or the close callback) wakes it. */
static void server_close_on_cancel(uvt_task_t *t, void *data) {
  uvt_server_t *srv = data;
  (void)t;
  srv->close_cancelled = true;
  uvt_server_cancel_connections(srv);
}

int uvt_server_close_at(uvt_server_t *srv, const char *file, int line,
                        const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_server_close", UVT_WAIT_STREAM_CLOSE, srv, false);
  uvt_task_t *self = uvt__task_current();
  bool cancelled;
  int err = server_check(srv);
  if (err != 0) return err;
  if ((err = uvt__sched_check(srv->sched, &srv->obj, "uvt_server_close", file, line))) return err;
  if (self == NULL) return UVT_ENOTASK;
  UVT__YIELD_POINT(self, "uvt_server_close");
  srv->closing = true;
  srv->closer = self;
  srv->uv_closing = true;
  uv_close(&srv->u.handle, server_close_cb);
  while (!srv->handle_closed || srv->nconns > 0) {
    int st = uvt__park_revocable(&site, server_close_on_cancel, srv);
    if (st == UVT_ECANCELED && !srv->close_cancelled) {
      /* A cancel that was pending before the park, or came after the
       * last wake: deliver it the same way (the server is closed
       * regardless). */
      srv->close_cancelled = true;
      uvt_server_cancel_connections(srv);
    }
  }
  cancelled = srv->close_cancelled;
  srv->closer = NULL;
  uvt__obj_unregister(&srv->obj);
  uvt__quarantine(srv->sched, &srv->obj);
  return cancelled ? UVT_ECANCELED : 0;
}

/* The plain symbols of 0.2.0, for programs built before the header's
 * macros passed the caller's location (reported as unknown). */
size_t (uvt_server_cancel_connections)(uvt_server_t *srv) {
  return uvt_server_cancel_connections_at(srv, NULL, 0, NULL);
}

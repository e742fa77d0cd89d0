/*
 * A cancel requested after a wait completed but before the woken task ran
 * again wins (asyncio's rule; issue 12 item 2) for the waits on I/O, the
 * thread pool and sets of tasks: the call returns UVT_ECANCELED, and what
 * the wake brought is kept for the next call or undone — the bytes stay
 * buffered for the next read, a connected stream is closed, the pool
 * function's status is dropped (the function did run).
 *
 * The window, made deterministic.  Tasks run in uvtask's passes: a task
 * woken by a libuv callback of the poll phase (read, connect, pool work
 * done, a write that waited for the socket) runs in the check phase of
 * the same loop iteration.  libuv runs check handles newest first, so a
 * check handle the test starts after uvt_run began runs before uvtask's:
 * between the wake and the task's step.  It cancels the victim once
 * uvt_dump shows it ready.  Wakes from another task (gather, wait, a
 * future) come from a pass: there a canceller task queued before the
 * victim's wake runs first.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uvtask.h>
#include <uvtask/stream.h>

#define VICTIM "cancel-wake-victim"

/* ---- the canceller between the wake and the step ------------------------- */

static struct {
  uv_check_t check;
  uvt_task_t *victim;
  volatile int armed; /* the victim is about to park */
  int cancel_rc;      /* what uvt_cancel returned; 99 before it ran */
  int closed;
} cw;

/* Whether uvt_dump lists the victim as ready (woken, not yet run). */
static bool victim_ready(uv_loop_t *loop) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  bool ready;
  if (f == NULL) return false;
  (void)uvt_dump_loop(loop, f);
  fclose(f);
  ready = text != NULL && strstr(text, "'" VICTIM "' ready") != NULL;
  free(text);
  return ready;
}

static void on_check(uv_check_t *h) {
  if (!cw.armed || !victim_ready(h->loop)) return;
  cw.cancel_rc = uvt_cancel(cw.victim);
  uv_check_stop(h);
}

static void on_check_closed(uv_handle_t *h) {
  (void)h;
  cw.closed = 1;
}

/* From a task: spawn `fn` as the victim and start the canceller. */
static uvt_task_t *spawn_victim(uvt_fn fn, void *arg) {
  uvt_task_t *t = uvt_spawn(fn, arg);
  memset(&cw, 0, sizeof cw);
  cw.cancel_rc = 99;
  cw.victim = t;
  uvt_name(t, VICTIM);
  uv_check_init(uvt_loop(), &cw.check);
  uv_check_start(&cw.check, on_check);
  return t;
}

/* From a task: stop the canceller and wait for libuv to let go of it. */
static void stop_canceller(void) {
  uv_close((uv_handle_t *)&cw.check, on_check_closed);
  while (!cw.closed) (void)uvt_yield();
}

static void socket_path(char *path, size_t cap, const char *what) {
  snprintf(path, cap, "/tmp/uvt-cw-%s-%d.sock", what, (int)getpid());
  unlink(path);
}

/* ---- reads: the data stays for the next read ------------------------------- */

enum { READ_SOME, READ_LINE, READ_EXACTLY };

struct rd {
  int mode;
  uvt_event_t go, done;
  uvt_stream_t *c;
  int rc;        /* the victim's read */
  size_t got;    /* what it returned */
  size_t buffered_after; /* bytes still buffered after the cancel */
  char next[16]; /* what the next read returned */
  size_t next_n;
};

static int writes_when_told(uvt_stream_t *s, void *arg) {
  struct rd *r = arg;
  if (uvt_event_wait(&r->go) != 0) return -1;
  if (uvt_write(s, "abc\n", 4) != 0 || uvt_drain(s) != 0) return -1;
  return uvt_event_wait(&r->done);
}

static int reader_victim(void *arg) {
  struct rd *r = arg;
  char buf[16];
  size_t n = 0;
  cw.armed = 1;
  switch (r->mode) {
  case READ_SOME: r->rc = uvt_read(r->c, buf, sizeof buf, &n); break;
  case READ_LINE: r->rc = uvt_readline(r->c, buf, sizeof buf, &n); break;
  default: r->rc = uvt_readexactly(r->c, buf, 4); n = r->rc == 0 ? 4 : 0; break;
  }
  r->got = n;
  return 0;
}

static int read_main(void *arg) {
  struct rd *r = arg;
  uvt_server_t *srv = NULL;
  uvt_task_t *v;
  char path[64];
  socket_path(path, sizeof path, "read");
  cr_expect_eq(uvt_event_init(&r->go), 0);
  cr_expect_eq(uvt_event_init(&r->done), 0);
  cr_expect_eq(uvt_start_unix_server(path, writes_when_told, r, &srv), 0);
  cr_expect_eq(uvt_open_unix(path, &r->c), 0);
  if (srv == NULL || r->c == NULL) return -1;
  while (uvt_server_connections(srv) == 0) (void)uvt_yield();
  v = spawn_victim(reader_victim, r);
  (void)uvt_yield(); /* the victim parks in its read */
  uvt_event_set(&r->go);
  (void)uvt_await(v);
  stop_canceller();
  r->buffered_after = uvt_stream_read_buffered(r->c);
  /* Read what was left only if something was: on the old code the
   * victim took it and this read would wait forever. */
  if (r->buffered_after > 0)
    cr_expect_eq(uvt_read(r->c, r->next, sizeof r->next, &r->next_n), 0);
  uvt_event_set(&r->done);
  cr_expect_eq(uvt_close(r->c), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  uvt_event_destroy(&r->go);
  uvt_event_destroy(&r->done);
  unlink(path);
  return 0;
}

static void check_read(int mode) {
  struct rd r;
  memset(&r, 0, sizeof r);
  r.mode = mode;
  r.rc = 99;
  cr_assert_eq(uvt_run(NULL, read_main, &r), 0);
  cr_assert_eq(cw.cancel_rc, 1, "the canceller never saw the victim woken");
  cr_expect_eq(r.rc, UVT_ECANCELED, "the read returned %d (%zu bytes)", r.rc,
               r.got);
  cr_expect_eq(r.got, 0);
  cr_assert_eq(r.buffered_after, 4, "%zu bytes left buffered", r.buffered_after);
  cr_assert_eq(r.next_n, 4);
  cr_assert_eq(memcmp(r.next, "abc\n", 4), 0);
}

Test(cancel_wake, read_cancelled_after_data_arrived_leaves_the_data) {
  check_read(READ_SOME);
}

Test(cancel_wake, readline_cancelled_after_data_arrived_leaves_the_data) {
  check_read(READ_LINE);
}

Test(cancel_wake, readexactly_cancelled_after_data_arrived_leaves_the_data) {
  check_read(READ_EXACTLY);
}

/* ---- drain: woken when the socket took the bytes ---------------------------- */

struct dr {
  uvt_event_t go;
  uvt_stream_t *c;
  int rc;
  size_t peer_got;
};

#define DRAIN_BYTES (8u * 1024 * 1024) /* far more than a socket buffers */

static int reads_when_told(uvt_stream_t *s, void *arg) {
  struct dr *d = arg;
  char buf[65536];
  size_t n;
  if (uvt_event_wait(&d->go) != 0) return -1;
  while (uvt_read(s, buf, sizeof buf, &n) == 0 && n > 0) d->peer_got += n;
  return 0;
}

static int drain_victim(void *arg) {
  struct dr *d = arg;
  cw.armed = 1;
  d->rc = uvt_drain(d->c);
  return 0;
}

static int drain_main(void *arg) {
  struct dr *d = arg;
  uvt_server_t *srv = NULL;
  uvt_task_t *v;
  char path[64];
  char *big = calloc(1, DRAIN_BYTES);
  socket_path(path, sizeof path, "drain");
  cr_expect_eq(uvt_event_init(&d->go), 0);
  cr_expect_eq(uvt_start_unix_server(path, reads_when_told, d, &srv), 0);
  cr_expect_eq(uvt_open_unix(path, &d->c), 0);
  if (srv == NULL || d->c == NULL || big == NULL) return -1;
  cr_expect_eq(uvt_stream_set_high_water(d->c, 0), 0);
  cr_expect_eq(uvt_write(d->c, big, DRAIN_BYTES), 0);
  free(big);
  v = spawn_victim(drain_victim, d);
  (void)uvt_yield(); /* the victim parks in its drain */
  /* Let the flusher hand the bytes to libuv; the peer then reads, and
   * the write completes in a poll phase. */
  (void)uvt_yield();
  uvt_event_set(&d->go);
  (void)uvt_await(v);
  stop_canceller();
  cr_expect_eq(uvt_stream_write_buffered(d->c), 0);
  cr_expect_eq(uvt_close(d->c), 0);
  while (uvt_server_connections(srv) > 0) (void)uvt_yield();
  cr_expect_eq(uvt_server_close(srv), 0);
  uvt_event_destroy(&d->go);
  unlink(path);
  return 0;
}

Test(cancel_wake, drain_cancelled_after_the_bytes_left_returns_cancelled) {
  struct dr d;
  memset(&d, 0, sizeof d);
  d.rc = 99;
  cr_assert_eq(uvt_run(NULL, drain_main, &d), 0);
  cr_assert_eq(cw.cancel_rc, 1, "the canceller never saw the victim woken");
  cr_expect_eq(d.rc, UVT_ECANCELED, "the drain returned %d", d.rc);
  /* Nothing was lost: the peer got every byte. */
  cr_expect_eq(d.peer_got, DRAIN_BYTES);
}

/* ---- uvt_to_thread: the function ran, its status is dropped --------------- */

struct th {
  int rc;
  volatile int ran;
};

static int pool_fn(void *arg) {
  struct th *t = arg;
  t->ran = 1;
  return 7;
}

static int thread_victim(void *arg) {
  struct th *t = arg;
  cw.armed = 1;
  t->rc = uvt_to_thread(pool_fn, t);
  return 0;
}

static int thread_main(void *arg) {
  uvt_task_t *v = spawn_victim(thread_victim, arg);
  (void)uvt_await(v);
  stop_canceller();
  return 0;
}

Test(cancel_wake, to_thread_cancelled_after_the_function_returned) {
  struct th t = {99, 0};
  cr_assert_eq(uvt_run(NULL, thread_main, &t), 0);
  cr_assert_eq(cw.cancel_rc, 1, "the canceller never saw the victim woken");
  cr_expect_eq(t.rc, UVT_ECANCELED, "uvt_to_thread returned %d", t.rc);
  cr_expect_eq(t.ran, 1, "the function ran");
}

/* ---- connect: the connection completed, then is closed -------------------- */

struct cn {
  const char *host; /* TCP to host (NULL: the Unix socket at path) */
  int port;
  const char *path;
  uvt_stream_t *s;
  int rc;
  int peer_eof;   /* the server side read the end of the stream */
  int peer_seen;  /* the server side saw the connection */
};

static int waits_for_eof(uvt_stream_t *s, void *arg) {
  struct cn *c = arg;
  char buf[16];
  size_t n = 1;
  c->peer_seen = 1;
  while (n > 0)
    if (uvt_read(s, buf, sizeof buf, &n) != 0) return -1;
  c->peer_eof = 1;
  return 0;
}

static int connect_victim(void *arg) {
  struct cn *c = arg;
  cw.armed = 1;
  if (c->host != NULL)
    c->rc = uvt_open_connection(c->host, c->port, &c->s);
  else
    c->rc = uvt_open_unix(c->path, &c->s);
  return 0;
}

static int connect_main(void *arg) {
  struct cn *c = arg;
  uvt_server_t *srv = NULL;
  uvt_task_t *v;
  char path[64];
  if (c->host != NULL) {
    cr_expect_eq(uvt_start_server("127.0.0.1", 0, waits_for_eof, c, &srv), 0);
    if (srv == NULL) return -1;
    c->port = uvt_server_port(srv);
  } else {
    socket_path(path, sizeof path, "connect");
    c->path = path;
    cr_expect_eq(uvt_start_unix_server(path, waits_for_eof, c, &srv), 0);
  }
  if (srv == NULL) return -1;
  v = spawn_victim(connect_victim, c);
  (void)uvt_await(v);
  stop_canceller();
  /* On the old code the victim kept an open stream: close it, or the
   * peer would wait for its end forever. */
  if (c->s != NULL) (void)uvt_close(c->s);
  while (!c->peer_eof && uvt_server_connections(srv) > 0) (void)uvt_yield();
  cr_expect_eq(uvt_server_close(srv), 0);
  if (c->host == NULL) unlink(path);
  return 0;
}

static void check_connect(const char *host) {
  struct cn c;
  memset(&c, 0, sizeof c);
  c.host = host;
  c.rc = 99;
  cr_assert_eq(uvt_run(NULL, connect_main, &c), 0);
  cr_assert_eq(cw.cancel_rc, 1, "the canceller never saw the victim woken");
  cr_expect_eq(c.rc, UVT_ECANCELED, "the connect returned %d", c.rc);
  cr_expect_null(c.s);
  /* The connection was made and then closed by the runtime. */
  cr_expect(c.peer_seen && c.peer_eof);
}

Test(cancel_wake, connect_cancelled_after_it_completed_closes_the_stream) {
  check_connect(NULL);
}

Test(cancel_wake, tcp_connect_cancelled_after_it_completed_closes_the_stream) {
  check_connect("127.0.0.1");
}

/* A name is resolved on the thread pool: the victim is woken by the
 * answer, then cancelled.  The address list is freed (ASan/valgrind), no
 * connection is made. */
static int resolve_main(void *arg) {
  struct cn *c = arg;
  uvt_task_t *v = spawn_victim(connect_victim, c);
  (void)uvt_await(v);
  stop_canceller();
  if (c->s != NULL) (void)uvt_close(c->s);
  return 0;
}

Test(cancel_wake, connect_cancelled_after_the_name_resolved) {
  struct cn c;
  memset(&c, 0, sizeof c);
  c.host = "localhost";
  c.port = 9; /* never connected to */
  c.rc = 99;
  cr_assert_eq(uvt_run(NULL, resolve_main, &c), 0);
  cr_assert_eq(cw.cancel_rc, 1, "the canceller never saw the victim woken");
  cr_expect_eq(c.rc, UVT_ECANCELED, "uvt_open_connection returned %d", c.rc);
  cr_expect_null(c.s);
}

/* ---- server close: woken by the close callback ------------------------------
 * libuv runs close callbacks newest close first: a handle the victim
 * closes just before uvt_server_close has its callback run right after
 * the server's, which woke the victim; it cancels there. */

struct sc {
  uv_idle_t h;
  uvt_server_t *srv;
  int rc;
  int cancel_rc;
  bool was_ready;
};

static void cancels_on_close(uv_handle_t *h) {
  struct sc *c = h->data;
  c->was_ready = victim_ready(h->loop);
  c->cancel_rc = uvt_cancel(cw.victim);
}

static int server_close_victim(void *arg) {
  struct sc *c = arg;
  uv_idle_init(uvt_loop(), &c->h);
  c->h.data = c;
  uv_close((uv_handle_t *)&c->h, cancels_on_close);
  c->rc = uvt_server_close(c->srv);
  return 0;
}

static int server_close_main(void *arg) {
  struct sc *c = arg;
  uvt_task_t *v;
  char path[64];
  socket_path(path, sizeof path, "srvclose");
  cr_expect_eq(uvt_start_unix_server(path, waits_for_eof, NULL, &c->srv), 0);
  if (c->srv == NULL) return -1;
  v = spawn_victim(server_close_victim, c); /* not armed: the close cancels */
  (void)uvt_await(v);
  stop_canceller();
  unlink(path);
  return 0;
}

Test(cancel_wake, server_close_cancelled_after_it_finished) {
  struct sc c;
  memset(&c, 0, sizeof c);
  c.rc = 99;
  cr_assert_eq(uvt_run(NULL, server_close_main, &c), 0);
  cr_assert(c.was_ready, "the victim was not woken when cancelled");
  cr_assert_eq(c.cancel_rc, 1);
  /* The server is closed either way (uvt_run ended cleanly). */
  cr_expect_eq(c.rc, UVT_ECANCELED, "uvt_server_close returned %d", c.rc);
}

/* ---- gather, wait, wait_futures: woken by a task ------------------------- */

struct grp {
  uvt_task_t *waiter; /* the victim, for the canceller task */
  int mode;           /* 0 gather, 1 wait, 2 wait_futures */
  uvt_future_t *f;
  int rc;
  int cancel_rc;
  int child_cancelled; /* the child's own status was UVT_ECANCELED */
  size_t ndone;
};

static int child_returns_5(void *arg) {
  (void)arg;
  return 5;
}

static int sets_the_future(void *arg) {
  struct grp *g = arg;
  return uvt_future_set_result(g->f, g);
}

/* Queued before the victim's wake, so it runs between that wake and the
 * victim's step. */
static int canceller(void *arg) {
  struct grp *g = arg;
  g->cancel_rc = uvt_cancel(g->waiter);
  return 0;
}

static int group_victim(void *arg) {
  struct grp *g = arg;
  uvt_task_t *child, *c;
  g->waiter = uvt_current();
  if (g->mode == 2) {
    g->f = uvt_future_new();
    child = uvt_spawn(sets_the_future, g);
  } else {
    child = uvt_spawn(child_returns_5, NULL);
  }
  c = uvt_spawn(canceller, g);
  switch (g->mode) {
  case 0: g->rc = uvt_gather(&child, 1); break;
  case 1: g->rc = uvt_wait(&child, 1, UVT_FIRST_COMPLETED, -1, &g->ndone); break;
  default: g->rc = uvt_wait_futures(&g->f, 1, UVT_ALL_COMPLETED, -1, &g->ndone); break;
  }
  g->child_cancelled = uvt_await(child) == UVT_ECANCELED;
  (void)uvt_await(c);
  if (g->f != NULL) {
    cr_expect(uvt_future_done(g->f));
    cr_expect_eq(uvt_future_result(g->f), g, "the future keeps its result");
    uvt_future_detach(g->f);
  }
  return 0;
}

static int group_main(void *arg) {
  uvt_task_t *v = uvt_spawn(group_victim, arg);
  (void)uvt_await(v);
  return 0;
}

static void check_group(int mode, const char *call) {
  struct grp g;
  memset(&g, 0, sizeof g);
  g.mode = mode;
  g.rc = 99;
  cr_assert_eq(uvt_run(NULL, group_main, &g), 0);
  cr_assert_eq(g.cancel_rc, 1);
  cr_expect_eq(g.rc, UVT_ECANCELED, "%s returned %d", call, g.rc);
  /* The child had finished: the cancel did not reach it. */
  cr_expect_not(g.child_cancelled);
  if (mode != 0) cr_expect_eq(g.ndone, 1);
}

Test(cancel_wake, gather_cancelled_after_its_tasks_finished) {
  check_group(0, "uvt_gather");
}

Test(cancel_wake, wait_cancelled_after_a_task_finished) {
  check_group(1, "uvt_wait");
}

Test(cancel_wake, wait_futures_cancelled_after_the_future_was_set) {
  check_group(2, "uvt_wait_futures");
}

/* ---- stream close: woken by the last close callback --------------------------
 * The same order of close callbacks as for the server above. */

struct stc {
  uv_idle_t h;
  uvt_stream_t *c;
  int rc;
  int cancel_rc;
  bool was_ready;
  int peer_eof;
};

static void stream_cancels_on_close(uv_handle_t *h) {
  struct stc *c = h->data;
  c->was_ready = victim_ready(h->loop);
  c->cancel_rc = uvt_cancel(cw.victim);
}

static int stream_close_victim(void *arg) {
  struct stc *c = arg;
  uv_idle_init(uvt_loop(), &c->h);
  c->h.data = c;
  uv_close((uv_handle_t *)&c->h, stream_cancels_on_close);
  c->rc = uvt_close(c->c);
  return 0;
}

static int reads_to_eof(uvt_stream_t *s, void *arg) {
  struct stc *c = arg;
  char buf[16];
  size_t n = 1;
  while (n > 0)
    if (uvt_read(s, buf, sizeof buf, &n) != 0) return -1;
  c->peer_eof = 1;
  return 0;
}

static int stream_close_main(void *arg) {
  struct stc *c = arg;
  uvt_server_t *srv = NULL;
  uvt_task_t *v;
  char path[64];
  socket_path(path, sizeof path, "stclose");
  cr_expect_eq(uvt_start_unix_server(path, reads_to_eof, c, &srv), 0);
  cr_expect_eq(uvt_open_unix(path, &c->c), 0);
  if (srv == NULL || c->c == NULL) return -1;
  v = spawn_victim(stream_close_victim, c); /* not armed: the close cancels */
  (void)uvt_await(v);
  stop_canceller();
  while (!c->peer_eof && uvt_server_connections(srv) > 0) (void)uvt_yield();
  cr_expect_eq(uvt_server_close(srv), 0);
  unlink(path);
  return 0;
}

Test(cancel_wake, stream_close_cancelled_after_it_finished) {
  struct stc c;
  memset(&c, 0, sizeof c);
  c.rc = 99;
  cr_assert_eq(uvt_run(NULL, stream_close_main, &c), 0);
  cr_assert(c.was_ready, "the victim was not woken when cancelled");
  cr_assert_eq(c.cancel_rc, 1);
  cr_expect_eq(c.rc, UVT_ECANCELED, "uvt_close returned %d", c.rc);
  cr_expect(c.peer_eof, "the stream was closed all the same");
}

/*
 * bench_echo — requests per second of an echo server written with uvtask
 * streams vs one written with raw libuv callbacks, driven by the same
 * client in the same run.
 *
 * The client is raw libuv, on the main thread: CONNS TCP connections to
 * 127.0.0.1, each doing COUNT request/response ping-pongs of SIZE bytes
 * (send, read SIZE bytes back, send again).  The server runs on a thread
 * of its own (its own loop), so client and server each have a core.
 *
 *   raw     read_cb -> uv_try_write of the bytes just read (uv_write with
 *           a copy for what does not fit), the usual shape of a libuv echo
 *           server;
 *   uvtask  one task per connection (uvt_start_server):
 *               while (uvt_read(s, buf, ...) == 0 && n > 0) {
 *                 uvt_write(s, buf, n);
 *                 uvt_drain(s);
 *               }
 *
 * Rounds alternate raw / uvtask; the medians and their ratio are printed
 * (target: uvtask at >= 0.90 of raw).
 *
 * Usage: bench_echo [-c CONNS] [-n COUNT] [-s SIZE] [-r ROUNDS]
 *                   [--only raw|uvtask]
 * (--only runs one server, for profiling; no ratio is printed.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uvtask.h"
#include "median.h"
#include "uvtask/stream.h"

#define MAX_ROUNDS 15
#define MAX_SIZE (64 * 1024)

typedef struct {
  int conns;
  long count;
  size_t size;
  int rounds;
} config_t;

static void die(const char *what, int err) {
  fprintf(stderr, "bench_echo: %s: %s\n", what, uv_strerror(err));
  exit(1);
}

/* ---- the raw libuv server ------------------------------------------------ */

typedef struct {
  uv_tcp_t h;
  char buf[MAX_SIZE];
} raw_conn_t;

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} raw_write_t;

static void raw_free_conn(uv_handle_t *h) { free(h->data); }

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  raw_conn_t *c = h->data;
  (void)suggested;
  *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void raw_written(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  uv_buf_t b;
  int n;
  if (nread < 0) {
    uv_close((uv_handle_t *)s, raw_free_conn);
    return;
  }
  if (nread == 0) return;
  b = uv_buf_init(buf->base, (unsigned)nread); /* buf->len is the capacity */
  n = uv_try_write(s, &b, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) {
    uv_close((uv_handle_t *)s, raw_free_conn);
    return;
  }
  if (n < nread) {
    size_t rest = (size_t)nread - (size_t)n;
    raw_write_t *w = malloc(sizeof(*w) + rest);
    memcpy(w + 1, buf->base + n, rest);
    w->buf = uv_buf_init((char *)(w + 1), (unsigned)rest);
    uv_write(&w->req, s, &w->buf, 1, raw_written);
  }
}

static void raw_accept(uv_stream_t *server, int status) {
  raw_conn_t *c;
  if (status < 0) return;
  c = malloc(sizeof(*c));
  uv_tcp_init(server->loop, &c->h);
  c->h.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->h) != 0) {
    uv_close((uv_handle_t *)&c->h, raw_free_conn);
    return;
  }
  uv_tcp_nodelay(&c->h, 1);
  uv_read_start((uv_stream_t *)&c->h, raw_alloc, raw_read);
}

/* ---- the uvtask server --------------------------------------------------- */

static int echo_handler(uvt_stream_t *s, void *arg) {
  char buf[16 * 1024];
  size_t n;
  (void)arg;
  while (uvt_read(s, buf, sizeof buf, &n) == 0 && n > 0) {
    if (uvt_write(s, buf, n) != 0 || uvt_drain(s) != 0) break;
  }
  return 0;
}

/* ---- the server thread --------------------------------------------------- */

typedef struct {
  bool use_uvtask;
  uv_loop_t loop;
  uv_sem_t ready;
  int port;
  /* raw */
  uv_tcp_t listener;
  uv_async_t stop;
  /* uvtask */
  uvt_event_t stop_event;
} server_t;

static server_t SRV;

static void raw_close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, h->data != NULL ? raw_free_conn : NULL);
}

static void raw_stop(uv_async_t *a) { uv_walk(a->loop, raw_close_walk, NULL); }

static int uvtask_server_main(void *arg) {
  uvt_server_t *srv;
  int err;
  (void)arg;
  uvt_event_init(&SRV.stop_event);
  if ((err = uvt_start_server("127.0.0.1", 0, echo_handler, NULL, &srv)) != 0)
    die("uvt_start_server", err);
  SRV.port = uvt_server_port(srv);
  uv_sem_post(&SRV.ready);
  uvt_event_wait(&SRV.stop_event);
  uvt_server_cancel_connections(srv);
  uvt_server_close(srv);
  uvt_event_destroy(&SRV.stop_event);
  return 0;
}

static int uvtask_stop(void *arg) {
  (void)arg;
  uvt_event_set(&SRV.stop_event);
  return 0;
}

static void server_thread(void *arg) {
  (void)arg;
  uv_loop_init(&SRV.loop);
  if (SRV.use_uvtask) {
    uvt_run(&SRV.loop, uvtask_server_main, NULL);
  } else {
    struct sockaddr_in a;
    struct sockaddr_storage ss;
    int len = sizeof ss, err;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&SRV.loop, &SRV.listener);
    SRV.listener.data = NULL;
    if ((err = uv_tcp_bind(&SRV.listener, (struct sockaddr *)&a, 0)) != 0 ||
        (err = uv_listen((uv_stream_t *)&SRV.listener, 511, raw_accept)) != 0)
      die("listen", err);
    uv_tcp_getsockname(&SRV.listener, (struct sockaddr *)&ss, &len);
    SRV.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_async_init(&SRV.loop, &SRV.stop, raw_stop);
    SRV.stop.data = NULL;
    uv_sem_post(&SRV.ready);
    uv_run(&SRV.loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&SRV.loop);
}

static void server_stop(void) {
  if (SRV.use_uvtask) uvt_call_threadsafe(&SRV.loop, uvtask_stop, NULL);
  else uv_async_send(&SRV.stop);
}

/* ---- the client (raw libuv, main thread) --------------------------------- */

typedef struct {
  uv_tcp_t h;
  uv_connect_t creq;
  uv_write_t wreq;
  size_t got;
  long left;
  char rbuf[MAX_SIZE];
} client_t;

static struct {
  const config_t *cfg;
  char *msg;
  int connected, finished;
  uint64_t t0, t1;
  client_t *clients;
} CL;

static void client_send(client_t *c);

static void client_written(uv_write_t *req, int status) {
  if (status < 0) die("client write", status);
  (void)req;
}

static void client_send(client_t *c) {
  uv_buf_t b = uv_buf_init(CL.msg, (unsigned)CL.cfg->size);
  int n = uv_try_write((uv_stream_t *)&c->h, &b, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) die("client try_write", n);
  if ((size_t)n < CL.cfg->size) {
    b = uv_buf_init(CL.msg + n, (unsigned)(CL.cfg->size - (size_t)n));
    uv_write(&c->wreq, (uv_stream_t *)&c->h, &b, 1, client_written);
  }
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  client_t *c = h->data;
  (void)suggested;
  *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  client_t *c = s->data;
  (void)buf;
  if (nread < 0) die("client read", (int)nread);
  c->got += (size_t)nread;
  if (c->got < CL.cfg->size) return;
  if (c->got > CL.cfg->size) {
    fprintf(stderr, "bench_echo: the server sent back more than it got\n");
    exit(1);
  }
  c->got = 0;
  if (--c->left > 0) {
    client_send(c);
    return;
  }
  uv_read_stop(s);
  if (++CL.finished == CL.cfg->conns) CL.t1 = uv_hrtime();
}

static void client_connected(uv_connect_t *req, int status) {
  (void)req;
  if (status < 0) die("client connect", status);
  if (++CL.connected < CL.cfg->conns) return;
  /* Everyone is connected: start the clock and the ping-pongs. */
  CL.t0 = uv_hrtime();
  for (int i = 0; i < CL.cfg->conns; i++) {
    client_t *c = &CL.clients[i];
    uv_tcp_nodelay(&c->h, 1);
    uv_read_start((uv_stream_t *)&c->h, client_alloc, client_read);
    client_send(c);
  }
}

static double run_round(const config_t *cfg, bool use_uvtask) {
  uv_thread_t th;
  uv_loop_t loop;
  struct sockaddr_in a;
  memset(&SRV, 0, sizeof SRV);
  SRV.use_uvtask = use_uvtask;
  uv_sem_init(&SRV.ready, 0);
  uv_thread_create(&th, server_thread, NULL);
  uv_sem_wait(&SRV.ready);

  memset(&CL, 0, sizeof CL);
  CL.cfg = cfg;
  CL.msg = malloc(cfg->size);
  memset(CL.msg, 'e', cfg->size);
  CL.clients = calloc((size_t)cfg->conns, sizeof(client_t));
  uv_loop_init(&loop);
  uv_ip4_addr("127.0.0.1", SRV.port, &a);
  for (int i = 0; i < cfg->conns; i++) {
    client_t *c = &CL.clients[i];
    c->left = cfg->count;
    uv_tcp_init(&loop, &c->h);
    c->h.data = c;
    uv_tcp_connect(&c->creq, &c->h, (struct sockaddr *)&a, client_connected);
  }
  while (CL.finished < cfg->conns) uv_run(&loop, UV_RUN_ONCE);
  for (int i = 0; i < cfg->conns; i++)
    uv_close((uv_handle_t *)&CL.clients[i].h, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  server_stop();
  uv_thread_join(&th);
  uv_sem_destroy(&SRV.ready);
  free(CL.clients);
  free(CL.msg);
  return (double)cfg->conns * cfg->count / ((CL.t1 - CL.t0) / 1e9);
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv) {
  config_t cfg = {50, 4000, 64, 5};
  double raw[MAX_ROUNDS], ours[MAX_ROUNDS], mr, mo;
  bool do_raw = true, do_uvtask = true;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) cfg.conns = atoi(argv[++i]);
    else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) cfg.count = atol(argv[++i]);
    else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) cfg.size = (size_t)atol(argv[++i]);
    else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) cfg.rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      i++;
      do_raw = strcmp(argv[i], "raw") == 0;
      do_uvtask = strcmp(argv[i], "uvtask") == 0;
    } else {
      fprintf(stderr, "usage: %s [-c CONNS] [-n COUNT] [-s SIZE] [-r ROUNDS] "
                      "[--only raw|uvtask]\n", argv[0]);
      return 2;
    }
  }
  if (cfg.conns < 1 || cfg.count < 1 || cfg.size < 1 || cfg.size > MAX_SIZE ||
      cfg.rounds < 1 || cfg.rounds > MAX_ROUNDS || (!do_raw && !do_uvtask)) {
    fprintf(stderr, "bench_echo: bad arguments (SIZE 1..%d, ROUNDS 1..%d)\n",
            MAX_SIZE, MAX_ROUNDS);
    return 2;
  }
  printf("bench_echo: %d connections x %ld round trips of %zu bytes, %d rounds\n",
         cfg.conns, cfg.count, cfg.size, cfg.rounds);
  for (int r = 0; r < cfg.rounds; r++) {
    raw[r] = do_raw ? run_round(&cfg, false) : 0;
    ours[r] = do_uvtask ? run_round(&cfg, true) : 0;
    printf("  round %d: raw libuv %10.0f req/s   uvtask %10.0f req/s\n", r + 1,
           raw[r], ours[r]);
  }
  if (!do_raw || !do_uvtask) return 0;
  mr = median(raw, cfg.rounds);
  mo = median(ours, cfg.rounds);
  printf("median:    raw libuv %10.0f req/s   uvtask %10.0f req/s\n", mr, mo);
  printf("ratio uvtask / raw: %.2f (target >= 0.90)\n", mo / mr);
  return 0;
}

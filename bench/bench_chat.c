/*
 * bench_chat: a chat broadcast server under the release library, the debug
 * library with recording off and with recording on, in one run.
 *
 * The server is what a user would write with uvtask streams
 * (uvt_start_server): one task per client reads lines (uvt_readline) and
 * broadcasts each to every other client through that client's bounded
 * queue (uvt_queue_put_nowait: a full queue drops the message and counts
 * it, the usual policy of a chat server that must not let one slow reader
 * hold everyone back); a writer task per client drains its queue to the
 * socket (uvt_write, uvt_drain).
 *
 * The clients are raw libuv, on the main thread of the same process (the
 * server has a thread of its own, so each side gets a core).  CLIENTS
 * connections each send MESSAGES lines of SIZE bytes at RATE lines per
 * second (spread evenly over the clients), then "B" (bye).  When every
 * client has said bye the server closes the queues; each writer sends what
 * is left and then "E <dropped>", the number of messages that queue
 * dropped.  A client is done when its "E" line arrives; it checks that
 * received + dropped is what the others sent, in each sender's order.  A
 * client that has no "E" line GRACE seconds after its last send has timed
 * out.  Each line carries its send time: the client measures how long it
 * took to come back through the server.
 *
 * Printed per variant (median over ROUNDS; the variants alternate round by
 * round, each in a fresh process with the library chosen by
 * LD_LIBRARY_PATH as a user would put it in front): messages delivered per
 * second, messages dropped, clients timed out, the server's CPU time per
 * thousand deliveries (the process's CPU minus the client thread's, from
 * the first send to the last client's end: the recorder's threads count
 * as server, start-up and exit do not), the median and 99th
 * percentile delivery latency, the deliveries per writer wake-up (how
 * much each write carries: the CPU per message follows it), the rounds
 * that lost messages, and the ratios to release.
 *
 * Usage: bench_chat [-c CLIENTS] [-n MESSAGES] [-R RATE] [-q CAPACITY]
 *                   [-s SIZE] [-g GRACE] [-r ROUNDS] [--fail-on-timeout]
 *        bench_chat --worker [same options]   one server + clients in this
 *                   process, with whatever library and ASYNCIODEBUG it got
 *                   (for perf / strace); prints one RESULT line.
 * RATE 0 sends everything at once (the server reads as fast as it can:
 * a capacity test in which drops are expected).  Exit status 0, or 1 with
 * a one-line message when a worker fails, hangs (killed after the sends'
 * duration + GRACE + 60 s), or a client's count does not add up; with
 * --fail-on-timeout also when a client timed out.  2 for bad arguments.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uvtask.h"
#include "uvtask/stream.h"
#include "median.h"
#include "spawn_capture.h"


#define MAX_LINE 1024
#define MAX_ROUNDS 15
#define N_VARIANTS 3

typedef struct {
  int clients;
  int messages; /* per client */
  double rate;  /* lines per second per client; 0: all at once */
  int capacity; /* of each client's queue */
  int size;     /* bytes per line, '\n' included */
  double grace; /* seconds a client waits for its "E" after its last send */
  int rounds;
} config_t;

typedef struct {
  double delivered_per_s, dropped, timed_out, cpu_ms_per_k, p50_ms, p99_ms;
} result_t;

static config_t CFG = {200, 20, 8.0, 64, 64, 5.0, 3};
static int fail_on_timeout; /* --fail-on-timeout: a timed-out client fails the run */

static void die(const char *what, int err) {
  fprintf(stderr, "bench_chat: %s: %s\n", what, uv_strerror(err));
  exit(1);
}

/* ---- the server (uvtask, its own thread) --------------------------------- */

/* One broadcast line, shared by the queues it went into. */
typedef struct {
  int refs;
  size_t len;
  char data[];
} msg_t;

typedef struct {
  uvt_stream_t *s;
  uvt_queue_t q;
  uvt_task_t *writer;
  long dropped;     /* messages for this client its full queue refused */
  int queue_closed; /* no more puts: the writer ends after what is left */
} member_t;

static struct {
  uv_loop_t loop;
  uv_sem_t ready;
  int port, err;
  member_t **members; /* the connected clients, CFG.clients slots */
  int n, byes;
  long wakes; /* writer wake-ups: deliveries / wakes says how much is batched */
  atomic_int joined; /* read by the client thread before it sends */
  uvt_event_t stop;
} SV;

static void msg_unref(msg_t *m) {
  if (--m->refs == 0) free(m);
}

static void close_queue(member_t *m) {
  if (m->queue_closed) return;
  m->queue_closed = 1;
  uvt_queue_close(&m->q);
}

/* Never yields, so the member list cannot change under it. */
static void broadcast(const member_t *from, const char *line, size_t len) {
  msg_t *msg = malloc(sizeof(*msg) + len);
  int i;
  if (msg == NULL) return;
  memcpy(msg->data, line, len);
  msg->len = len;
  msg->refs = 0;
  for (i = 0; i < SV.n; i++) {
    member_t *to = SV.members[i];
    int err;
    if (to == from) continue;
    err = uvt_queue_put_nowait(&to->q, msg);
    if (err == 0) msg->refs++;
    else if (err == UVT_EAGAIN) to->dropped++;
  }
  if (msg->refs == 0) free(msg);
}

/* Once every client has said bye nothing more will be broadcast: each
 * writer sends what its queue holds, then the client's "E" line. */
static void bye(void) {
  int i;
  if (++SV.byes < CFG.clients) return;
  for (i = 0; i < SV.n; i++) close_queue(SV.members[i]);
}

static int writer_task(void *arg) {
  member_t *m = arg;
  void *item;
  int err = 0;
  char end[64];
  while (err == 0 && uvt_queue_get(&m->q, &item) == 0) {
    SV.wakes++;
    /* Write what has piled up, then wait for the socket once. */
    do {
      msg_t *msg = item;
      if (err == 0) err = uvt_write(m->s, msg->data, msg->len);
      msg_unref(msg);
    } while (uvt_queue_get_nowait(&m->q, &item) == 0);
    if (err == 0) err = uvt_drain(m->s);
  }
  if (err == 0 && m->queue_closed && SV.byes >= CFG.clients) {
    int n = snprintf(end, sizeof(end), "E %ld\n", m->dropped);
    if (uvt_write(m->s, end, (size_t)n) == 0) uvt_drain(m->s);
  }
  return 0; /* a client that went away is not an error */
}

static void leave(member_t *m) {
  int i;
  for (i = 0; i < SV.n; i++)
    if (SV.members[i] == m) {
      SV.members[i] = SV.members[--SV.n];
      return;
    }
}

static int chat_conn(uvt_stream_t *s, void *arg) {
  char line[MAX_LINE + 2];
  size_t len;
  void *item;
  member_t *m;
  (void)arg;
  if (SV.n == CFG.clients || (m = calloc(1, sizeof(*m))) == NULL) return 0;
  if (uvt_queue_init(&m->q, (size_t)CFG.capacity) != 0) {
    free(m);
    return 0;
  }
  m->s = s;
  m->writer = uvt_spawn(writer_task, m);
  if (m->writer != NULL) {
    SV.members[SV.n++] = m;
    atomic_fetch_add(&SV.joined, 1);
    while (uvt_readline(s, line, sizeof(line), &len) == 0 && len > 0) {
      if (line[0] == 'B') bye();
      else broadcast(m, line, len);
    }
    leave(m);
    close_queue(m);
    uvt_await(m->writer);
  }
  while (uvt_queue_get_nowait(&m->q, &item) == 0) msg_unref(item);
  uvt_queue_destroy(&m->q);
  free(m);
  return 0;
}

static int server_main(void *arg) {
  uvt_server_t *srv;
  (void)arg;
  uvt_event_init(&SV.stop);
  SV.err = uvt_start_server("127.0.0.1", 0, chat_conn, NULL, &srv);
  if (SV.err == 0) SV.port = uvt_server_port(srv);
  uv_sem_post(&SV.ready);
  if (SV.err != 0) return SV.err;
  uvt_event_wait(&SV.stop);
  uvt_server_cancel_connections(srv);
  uvt_server_close(srv);
  uvt_event_destroy(&SV.stop);
  return 0;
}

static int server_stop(void *arg) {
  (void)arg;
  uvt_event_set(&SV.stop);
  return 0;
}

static void server_thread(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "chat-server"); /* for perf --sort comm */
  uv_loop_init(&SV.loop);
  uvt_run(&SV.loop, server_main, NULL);
  uv_loop_close(&SV.loop);
}

/* ---- the clients (raw libuv, main thread) -------------------------------- */

enum { RUNNING, DONE, TIMED_OUT };

typedef struct {
  uv_tcp_t h;
  uv_connect_t creq;
  int id, state;
  long received, dropped;
  int *last_seq; /* per sender: the last sequence number received */
  uint64_t deadline; /* 0 until the bye is sent */
  size_t carry;      /* bytes of a line split across reads */
  char line[MAX_LINE + 2];
} client_t;

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} client_write_t;

/* Delivery latency histogram: 10 us buckets below 100 ms, 1 ms above. */
#define LAT_FINE 10000
#define LAT_BUCKETS (LAT_FINE + 100000)

static struct {
  client_t *c;
  int connected, finished, mismatched;
  long next; /* index of the next line to send, over all clients */
  uint64_t t0, t_end;
  double server_cpu0, server_cpu; /* at t0, and from t0 to the last finish */
  uv_timer_t tick;
  char rbuf[64 * 1024];
  uint32_t *lat;
  long lat_n;
} CL;

static void written(uv_write_t *req, int status) {
  (void)status; /* a server that went away shows as a timed-out client */
  free(req);
}

static void client_send(client_t *c, const char *buf, size_t len) {
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->h, &b, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) die("client write", n);
  if ((size_t)n < len) {
    size_t rest = len - (size_t)n;
    client_write_t *w = malloc(sizeof(*w) + rest);
    if (w == NULL) die("client write", UV_ENOMEM);
    memcpy(w + 1, buf + n, rest);
    w->buf = uv_buf_init((char *)(w + 1), (unsigned)rest);
    uv_write(&w->req, (uv_stream_t *)&c->h, &w->buf, 1, written);
  }
}

static double cpu_s(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* CPU time of every thread but this one (the clients'): the server's loop
 * and, with recording on, the recorder's threads.  Taken over the run
 * only, so that start-up (opening the database) and exit are left out. */
static double server_cpu_s(void) { return cpu_s(RUSAGE_SELF) - cpu_s(RUSAGE_THREAD); }

static void client_finish(client_t *c, int state, uint64_t now) {
  c->state = state;
  uv_read_stop((uv_stream_t *)&c->h);
  CL.t_end = now;
  if (++CL.finished == CFG.clients) CL.server_cpu = server_cpu_s() - CL.server_cpu0;
}

static void lat_add(uint64_t ns) {
  uint64_t us = ns / 1000;
  size_t b = us < (uint64_t)LAT_FINE * 10 ? (size_t)(us / 10)
                                          : LAT_FINE + (size_t)(us / 1000);
  if (b >= LAT_BUCKETS) b = LAT_BUCKETS - 1;
  CL.lat[b]++;
  CL.lat_n++;
}

static double lat_quantile(double q) {
  long want = (long)(q * (double)CL.lat_n), seen = 0;
  size_t b;
  for (b = 0; b < LAT_BUCKETS; b++) {
    seen += CL.lat[b];
    if (seen > want) break;
  }
  if (b >= LAT_BUCKETS) b = LAT_BUCKETS - 1;
  return b < LAT_FINE ? (double)b * 0.01 : (double)(b - LAT_FINE);
}

/* Parses "M sender seq sent_ns ..." without sscanf, which was most of the
 * client thread's user time. */
static int parse_msg(const char *line, int *sender, int *seq, uint64_t *sent_ns) {
  char *p;
  long a, b;
  unsigned long long t;
  if (line[0] != 'M' || line[1] != ' ') return -1;
  a = strtol(line + 2, &p, 10);
  if (*p != ' ') return -1;
  b = strtol(p + 1, &p, 10);
  if (*p != ' ') return -1;
  t = strtoull(p + 1, &p, 10);
  if (*p != ' ' || a < 0 || a >= CFG.clients || b < 0) return -1;
  *sender = (int)a;
  *seq = (int)b;
  *sent_ns = t;
  return 0;
}

static void client_line(client_t *c, const char *line, uint64_t now) {
  int sender, seq;
  uint64_t sent_ns;
  long dropped;
  if (parse_msg(line, &sender, &seq, &sent_ns) == 0 && sender != c->id) {
    if (seq <= c->last_seq[sender]) {
      fprintf(stderr, "bench_chat: client %d got message %d of %d after %d\n",
              c->id, seq, sender, c->last_seq[sender]);
      exit(1);
    }
    c->last_seq[sender] = seq;
    c->received++;
    lat_add(now - sent_ns);
  } else if (line[0] == 'E' && sscanf(line + 1, "%ld", &dropped) == 1) {
    c->dropped = dropped;
    if (c->received + dropped != (long)(CFG.clients - 1) * CFG.messages) {
      fprintf(stderr, "bench_chat: client %d: %ld received + %ld dropped, "
                      "expected %ld\n", c->id, c->received, dropped,
              (long)(CFG.clients - 1) * CFG.messages);
      CL.mismatched++;
    }
    client_finish(c, DONE, now);
  } else {
    fprintf(stderr, "bench_chat: client %d: unexpected line from the server\n", c->id);
    exit(1);
  }
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(CL.rbuf, sizeof(CL.rbuf)); /* consumed before the next read */
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  client_t *c = s->data;
  uint64_t now = uv_hrtime();
  const char *p = buf->base, *end = buf->base + (nread > 0 ? nread : 0);
  if (nread < 0) {
    if (c->state == RUNNING) client_finish(c, TIMED_OUT, now); /* lost the server */
    return;
  }
  while (p < end && c->state == RUNNING) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)((nl != NULL ? nl : end) - p);
    if (c->carry + n > MAX_LINE) {
      fprintf(stderr, "bench_chat: client %d: line too long\n", c->id);
      exit(1);
    }
    memcpy(c->line + c->carry, p, n);
    c->carry += n;
    if (nl == NULL) break;
    c->line[c->carry] = '\0';
    c->carry = 0;
    client_line(c, c->line, now);
    p = nl + 1;
  }
}

/* Line j of the run goes to client j % clients as its message j / clients,
 * at t0 + j / (clients * rate): the clients take turns at an even pace. */
static void send_due(uint64_t now) {
  long total = (long)CFG.clients * CFG.messages;
  char line[MAX_LINE + 2];
  while (CL.next < total) {
    int id = (int)(CL.next % CFG.clients), seq = (int)(CL.next / CFG.clients);
    client_t *c = &CL.c[id];
    int n;
    if (CFG.rate > 0 &&
        CL.t0 + (uint64_t)((double)CL.next * 1e9 / (CFG.clients * CFG.rate)) > now)
      break;
    n = snprintf(line, sizeof(line), "M %d %d %llu ", id, seq,
                 (unsigned long long)uv_hrtime());
    memset(line + n, 'x', (size_t)(CFG.size - 1 - n));
    line[CFG.size - 1] = '\n';
    client_send(c, line, (size_t)CFG.size);
    if (seq == CFG.messages - 1) {
      client_send(c, "B\n", 2);
      c->deadline = now + (uint64_t)(CFG.grace * 1e9);
    }
    CL.next++;
  }
}

static void on_tick(uv_timer_t *t) {
  uint64_t now = uv_hrtime();
  int i;
  (void)t;
  if (CL.t0 == 0) {
    /* Start once the server has every client in its list, so that each
     * message has the same audience. */
    if (atomic_load(&SV.joined) < CFG.clients) return;
    CL.t0 = now;
    CL.server_cpu0 = server_cpu_s();
  }
  send_due(now);
  for (i = 0; i < CFG.clients; i++) {
    client_t *c = &CL.c[i];
    if (c->state == RUNNING && c->deadline != 0 && now > c->deadline)
      client_finish(c, TIMED_OUT, now);
  }
  if (CL.finished == CFG.clients) uv_timer_stop(t);
}

static void client_connected(uv_connect_t *req, int status) {
  client_t *c = req->data;
  if (status < 0) die("client connect", status);
  uv_tcp_nodelay(&c->h, 1);
  uv_read_start((uv_stream_t *)&c->h, client_alloc, client_read);
  if (++CL.connected == CFG.clients) uv_timer_start(&CL.tick, on_tick, 1, 1);
}

static int worker(void) {
  uv_thread_t th;
  uv_loop_t loop;
  struct sockaddr_in a;
  long received = 0, dropped = 0;
  int i, timed_out = 0;
  double secs;
  uint64_t connect_bound;

  SV.members = calloc((size_t)CFG.clients, sizeof(*SV.members));
  CL.c = calloc((size_t)CFG.clients, sizeof(*CL.c));
  CL.lat = calloc(LAT_BUCKETS, sizeof(*CL.lat));
  if (SV.members == NULL || CL.c == NULL || CL.lat == NULL) die("worker", UV_ENOMEM);
  uv_sem_init(&SV.ready, 0);
  if (uv_thread_create(&th, server_thread, NULL) != 0) die("thread", UV_EAGAIN);
  uv_sem_wait(&SV.ready);
  if (SV.err != 0) die("uvt_start_server", SV.err);

  uv_loop_init(&loop);
  uv_timer_init(&loop, &CL.tick);
  uv_ip4_addr("127.0.0.1", SV.port, &a);
  for (i = 0; i < CFG.clients; i++) {
    client_t *c = &CL.c[i];
    c->id = i;
    c->last_seq = malloc((size_t)CFG.clients * sizeof(int));
    if (c->last_seq == NULL) die("worker", UV_ENOMEM);
    memset(c->last_seq, 0xff, (size_t)CFG.clients * sizeof(int)); /* -1 */
    uv_tcp_init(&loop, &c->h);
    c->h.data = c;
    c->creq.data = c;
    uv_tcp_connect(&c->creq, &c->h, (struct sockaddr *)&a, client_connected);
  }
  connect_bound = uv_hrtime() + 30 * (uint64_t)1000000000;
  while (CL.finished < CFG.clients) {
    uv_run(&loop, UV_RUN_ONCE);
    if (CL.t0 == 0 && uv_hrtime() > connect_bound) {
      fprintf(stderr, "bench_chat: the server took in %d of %d clients in 30 s\n",
              atomic_load(&SV.joined), CFG.clients);
      exit(1);
    }
  }
  secs = CL.t_end > CL.t0 ? (double)(CL.t_end - CL.t0) / 1e9 : 1e-9;
  for (i = 0; i < CFG.clients; i++) {
    client_t *c = &CL.c[i];
    received += c->received;
    if (c->state == DONE) dropped += c->dropped;
    else timed_out++;
    uv_close((uv_handle_t *)&c->h, NULL);
    free(c->last_seq);
  }
  uv_close((uv_handle_t *)&CL.tick, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  /* The clients are gone: each connection task sees its end of stream. */
  if (uvt_call_threadsafe(&SV.loop, server_stop, NULL) != 0) die("stop", UVT_ENOLOOP);
  uv_thread_join(&th);
  uv_sem_destroy(&SV.ready);

  printf("RESULT %.1f %ld %d %.4f %.3f %.3f %.2f %d\n", (double)received / secs,
         dropped, timed_out,
         CL.server_cpu * 1e6 / (double)(received > 0 ? received : 1),
         lat_quantile(0.5), lat_quantile(0.99),
         (double)received / (double)(SV.wakes > 0 ? SV.wakes : 1), CL.mismatched);
  free(CL.lat);
  free(CL.c);
  free(SV.members);
  if (CL.mismatched != 0) {
    fprintf(stderr, "bench_chat: %d clients got a count that does not add up\n",
            CL.mismatched);
    return 1;
  }
  return 0;
}

/* ---- the driver: variants in fresh processes ----------------------------- */

static long long db_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  long long v = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* What the recording said about the run: findings by kind, rows shed. */
static void db_summary(const char *path, char *out, size_t cap) {
  sqlite3 *db;
  sqlite3_stmt *st;
  size_t len;
  long long shed;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    snprintf(out, cap, "(no database)");
    sqlite3_close(db);
    return;
  }
  shed = db_int(db, "SELECT sum(shed) FROM sessions");
  len = (size_t)snprintf(out, cap, "shed %lld; findings:", shed);
  if (sqlite3_prepare_v2(db, "SELECT kind, count(*) FROM findings GROUP BY kind",
                         -1, &st, NULL) == SQLITE_OK) {
    int any = 0;
    while (sqlite3_step(st) == SQLITE_ROW && len < cap) {
      len += (size_t)snprintf(out + len, cap - len, " %s %lld",
                              (const char *)sqlite3_column_text(st, 0),
                              (long long)sqlite3_column_int64(st, 1));
      any = 1;
    }
    if (!any && len < cap) snprintf(out + len, cap - len, " none");
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
}

static int parse_args(int argc, char **argv, int first) {
  int i;
  for (i = first; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(o, "--fail-on-timeout") == 0) {
      fail_on_timeout = 1;
      continue;
    }
    if (v == NULL) return -1;
    if (strcmp(o, "-c") == 0) CFG.clients = atoi(v);
    else if (strcmp(o, "-n") == 0) CFG.messages = atoi(v);
    else if (strcmp(o, "-R") == 0) CFG.rate = atof(v);
    else if (strcmp(o, "-q") == 0) CFG.capacity = atoi(v);
    else if (strcmp(o, "-s") == 0) CFG.size = atoi(v);
    else if (strcmp(o, "-g") == 0) CFG.grace = atof(v);
    else if (strcmp(o, "-r") == 0) CFG.rounds = atoi(v);
    else return -1;
    i++;
  }
  if (CFG.clients < 2 || CFG.clients > 10000 || CFG.messages < 1 || CFG.rate < 0 ||
      CFG.capacity < 1 || CFG.size < 48 || CFG.size > MAX_LINE || CFG.grace <= 0 ||
      CFG.rounds < 1 || CFG.rounds > MAX_ROUNDS)
    return -1;
  return 0;
}

int main(int argc, char **argv) {
  static const char *const labels[N_VARIANTS] = {"release", "debug, off", "recording"};
  char self[4096], dir[4096], libs[2][4200], db[4096], summary[1024] = "";
  char opt[7][32], out[512];
  char *wargv[20];
  double v[N_VARIANTS][7][MAX_ROUNDS], med[N_VARIANTS][7], bound;
  int lossy[N_VARIANTS];
  char tmpdir[] = "/tmp/bench-chat-XXXXXX";
  ssize_t len;
  int r, k, j, failed = 0;
  struct rlimit nofile;

  if (argc >= 2 && strcmp(argv[1], "--worker") == 0) {
    if (parse_args(argc, argv, 2) != 0) {
      fprintf(stderr, "bench_chat: bad worker arguments\n");
      return 2;
    }
    /* Each client is two sockets in this process. */
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
    }
    return worker();
  }
  if (parse_args(argc, argv, 1) != 0) {
    fprintf(stderr, "usage: bench_chat [-c CLIENTS>=2] [-n MESSAGES>=1] [-R RATE>=0] "
                    "[-q CAPACITY>=1] [-s SIZE 48..%d] [-g GRACE>0] [-r ROUNDS 1..%d] "
                    "[--fail-on-timeout]\n",
            MAX_LINE, MAX_ROUNDS);
    return 2;
  }

  len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0) {
    fprintf(stderr, "bench_chat: cannot find its own executable\n");
    return 1;
  }
  self[len] = '\0';
  strcpy(dir, self);
  *strrchr(dir, '/') = '\0'; /* <build>/bench */
  snprintf(libs[0], sizeof(libs[0]), "%s/..", dir);
  snprintf(libs[1], sizeof(libs[1]), "%s/../debug", dir);
  if (mkdtemp(tmpdir) == NULL) {
    fprintf(stderr, "bench_chat: mkdtemp: %s\n", strerror(errno));
    return 1;
  }
  snprintf(db, sizeof(db), "%s/chat.db", tmpdir);

  snprintf(opt[0], 32, "%d", CFG.clients);
  snprintf(opt[1], 32, "%d", CFG.messages);
  snprintf(opt[2], 32, "%g", CFG.rate);
  snprintf(opt[3], 32, "%d", CFG.capacity);
  snprintf(opt[4], 32, "%d", CFG.size);
  snprintf(opt[5], 32, "%g", CFG.grace);
  k = 0;
  wargv[k++] = self;
  wargv[k++] = "--worker";
  for (j = 0; j < 6; j++) {
    static const char *const flags[6] = {"-c", "-n", "-R", "-q", "-s", "-g"};
    wargv[k++] = (char *)flags[j];
    wargv[k++] = opt[j];
  }
  wargv[k] = NULL;
  /* Connecting, the sends, the grace period, and room for a slow machine. */
  bound = (CFG.rate > 0 ? CFG.messages / CFG.rate : 0) + CFG.grace + 60;

  printf("bench_chat: %d clients x %d messages of %d bytes at %g/s each%s, "
         "queue capacity %d, %d rounds\n",
         CFG.clients, CFG.messages, CFG.size, CFG.rate,
         CFG.rate > 0 ? "" : " (0: all at once)", CFG.capacity, CFG.rounds);
  for (r = 0; r < CFG.rounds && !failed; r++) {
    for (j = 0; j < N_VARIANTS && !failed; j++) {
      int mism = 0, st;
      unlink(db);
      st = spawn_capture(wargv, libs[j == 0 ? 0 : 1], j == 2 ? db : NULL, NULL, bound, out,
                         sizeof(out));
      if (st == -2) {
        fprintf(stderr, "bench_chat: the %s worker ran over %.0f s and was killed "
                        "(round %d)\n", labels[j], bound, r + 1);
        failed = 1;
        break;
      }
      if (st != 0 ||
          sscanf(strstr(out, "RESULT") != NULL ? strstr(out, "RESULT") : "",
                 "RESULT %lf %lf %lf %lf %lf %lf %lf %d", &v[j][0][r], &v[j][1][r],
                 &v[j][2][r], &v[j][3][r], &v[j][4][r], &v[j][5][r], &v[j][6][r],
                 &mism) != 8) {
        fprintf(stderr, "bench_chat: the %s worker failed (round %d)\n", labels[j], r + 1);
        failed = 1;
        break;
      }
      printf("  round %d %-11s %9.0f msg/s  dropped %7.0f  timed out %3.0f  "
             "server %.3f ms CPU/1k msg  latency p50 %.2f ms p99 %.2f ms  "
             "%.1f msg/wake\n",
             r + 1, labels[j], v[j][0][r], v[j][1][r], v[j][2][r],
             v[j][3][r], v[j][4][r], v[j][5][r], v[j][6][r]);
      fflush(stdout);
      if (fail_on_timeout && v[j][2][r] > 0) {
        fprintf(stderr, "bench_chat: %.0f %s clients timed out (round %d)\n",
                v[j][2][r], labels[j], r + 1);
        failed = 1;
      }
      if (j == 2) db_summary(db, summary, sizeof(summary));
    }
  }
  unlink(db);
  {
    char wal[4300];
    snprintf(wal, sizeof(wal), "%s-wal", db);
    unlink(wal);
    snprintf(wal, sizeof(wal), "%s-shm", db);
    unlink(wal);
  }
  rmdir(tmpdir);
  if (failed) return 1;

  for (j = 0; j < N_VARIANTS; j++) {
    lossy[j] = 0;
    for (r = 0; r < CFG.rounds; r++) lossy[j] += v[j][1][r] > 0 || v[j][2][r] > 0;
    for (k = 0; k < 7; k++) med[j][k] = median(v[j][k], CFG.rounds);
  }
  printf("median of %d rounds:\n", CFG.rounds);
  printf("  %-11s %12s %9s %10s %16s %12s %12s %9s %7s\n", "variant", "msg/s", "dropped",
         "timed out", "server CPU/1k", "p50 latency", "p99 latency", "msg/wake", "lossy");
  for (j = 0; j < N_VARIANTS; j++)
    printf("  %-11s %12.0f %9.0f %10.0f %13.3f ms %9.2f ms %9.2f ms %9.1f %4d/%-2d  "
           "(throughput %.2fx, CPU %.2fx release)\n",
           labels[j], med[j][0], med[j][1], med[j][2], med[j][3], med[j][4], med[j][5],
           med[j][6], lossy[j], CFG.rounds, med[j][0] / med[0][0], med[j][3] / med[0][3]);
  printf("  (msg/wake: deliveries per writer wake-up; lossy: rounds with a message "
         "dropped or a client timed out)\n");
  printf("  recording (last round): %s\n", summary);
  printf("target: recording throughput >= 0.90 of release: %.2f; drops beyond "
         "release's: %.0f\n",
         med[2][0] / med[0][0], med[2][1] > med[0][1] ? med[2][1] - med[0][1] : 0.0);
  return 0;
}

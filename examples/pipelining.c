/*
 * pipelining — a Redis client that waits one round trip per request.
 *
 * The bug: request() is a coroutine that sends a command and then awaits
 * its reply.  Each caller waits a full round trip per request, and while
 * it waits the connection carries nothing: throughput is bounded by
 * latency, not by the network or the server.  (Worse, if tasks share the
 * connection, every request is a yield point: another task's command can
 * slip between a MULTI and its EXEC.)
 *
 * The asyncio original ("asyncio vs gevent", Pipelining — the bad example):
 *
 *     # not-a-coroutine
 *     def request(self, req):
 *         self.writer.write(req)
 *         yield from self.writer.drain()
 *         value = yield from self.reader.readline()
 *         return value
 *
 * The fix, from the same slides: request() is not a coroutine.  It writes
 * (uvt_write never yields) and returns a future; one reader task resolves
 * the futures in order:
 *
 *     def request(self, req):
 *         self.writer.write(req)  # (!)this is not-yielding
 *         fut = Future()
 *         self.requests.append(fut)
 *         return fut
 *
 *     @coroutine
 *     def reader(self):
 *         while True:
 *             line = yield from self.reader.readline()
 *             self.requests.popleft().set(line)
 *
 * examples/redisclient/redis.c is that client.  This program sends COUNT
 * INCRs both ways and prints the throughput of each, then sends a
 * MULTI/EXEC transaction whose four commands leave without a yield point
 * between them (declared with UVT_NO_YIELD_BEGIN/END).
 *
 * Usage: pipelining [--buggy | --fixed] [-n COUNT] [--socket PATH]
 *   (none)    both clients, and how much faster pipelining is
 *   --buggy   only the one-request-at-a-time client
 *   --fixed   only the pipelined client (and the transaction)
 * The one-at-a-time client prints a line starting "BUG:"; --fixed never
 * does.
 * Without --socket it starts a private redis-server (Debian package
 * redis-server) on a Unix socket in a temporary directory and stops it at
 * the end.  Exit status 0 when every counter came out right.
 *
 * Finding: none of its own; the throughput printed is the evidence.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redisclient/redis.c"
#include "../tests/redis_server.h"

typedef struct {
  const char *sock;
  int count;
  bool buggy, fixed;
  double rps_buggy, rps_fixed;
  int failures;
} config_t;

static double seconds_since(uint64_t t0) { return (uv_hrtime() - t0) / 1e9; }

/* ---- the bug: the talk's request(), on a plain stream -------------------- */

static int bad_request(uvt_stream_t *s, const char *req, char *reply,
                       size_t cap) {
  size_t len;
  int err;
  if ((err = uvt_write(s, req, strlen(req))) != 0) return err;
  if ((err = uvt_drain(s)) != 0) return err;
  return uvt_readline(s, reply, cap, &len); /* one round trip, every time */
}

static int one_at_a_time(config_t *cfg) {
  static const char incr[] = "*2\r\n$4\r\nINCR\r\n$6\r\nserial\r\n";
  uvt_stream_t *s;
  char reply[64];
  long long last = 0;
  uint64_t t0;
  double secs;
  int err = uvt_open_unix(cfg->sock, &s);
  if (err != 0) return uvt_fail(err, "connect: %s", uvt_strerror(err));
  t0 = uv_hrtime();
  for (int i = 0; i < cfg->count; i++) {
    if ((err = bad_request(s, incr, reply, sizeof reply)) != 0) break;
    last = strtoll(reply + 1, NULL, 10);
  }
  secs = seconds_since(t0);
  uvt_close(s);
  if (err != 0) return uvt_fail(err, "INCR: %s", uvt_strerror(err));
  cfg->rps_buggy = cfg->count / secs;
  printf("one request at a time: %d INCRs in %7.1f ms -> %9.0f requests/s\n",
         cfg->count, secs * 1e3, cfg->rps_buggy);
  printf("BUG: each request waited a full round trip (%.1f us) before the "
         "next was sent; the connection sat idle in between\n",
         secs * 1e6 / cfg->count);
  if (last != cfg->count) {
    printf("  wrong: the last INCR returned %lld\n", last);
    cfg->failures++;
  }
  return 0;
}

/* ---- the fix: futures, one reader task ----------------------------------- */

static int pipelined(config_t *cfg) {
  uvt_future_t **f = calloc((size_t)cfg->count, sizeof(*f));
  redis_reply_t *rep;
  redis_t *r;
  uint64_t t0;
  double secs;
  int wrong = 0, err;
  if (f == NULL) return UVT_ENOMEM;
  if ((err = redis_connect_unix(cfg->sock, &r)) != 0) {
    free(f);
    return uvt_fail(err, "connect: %s", redis_strerror(err));
  }
  t0 = uv_hrtime();
  for (int i = 0; i < cfg->count; i++) f[i] = redis_incr(r, "pipelined");
  for (int i = 0; i < cfg->count; i++) {
    err = redis_await(r, f[i], &rep);
    if (err != 0 || rep->type != REDIS_REPLY_INTEGER || rep->integer != i + 1)
      wrong++;
    redis_reply_free(rep);
  }
  secs = seconds_since(t0);
  free(f);
  cfg->rps_fixed = cfg->count / secs;
  printf("pipelined:             %d INCRs in %7.1f ms -> %9.0f requests/s\n",
         cfg->count, secs * 1e3, cfg->rps_fixed);
  if (wrong > 0) {
    printf("  wrong: %d replies out of order or failed\n", wrong);
    cfg->failures++;
  }
  return redis_close(r);
}

/* The talk's update_price, without a yield point inside the transaction. */
static int update_price(config_t *cfg) {
  uvt_future_t *f[4];
  redis_reply_t *rep = NULL;
  redis_t *r;
  int failed = 0, err = redis_connect_unix(cfg->sock, &r);
  if (err != 0) return uvt_fail(err, "connect: %s", redis_strerror(err));
  UVT_NO_YIELD_BEGIN(); /* the four commands leave together */
  f[0] = redis_multi(r);
  f[1] = redis_set(r, "price_dollars", "10");
  f[2] = redis_set(r, "price_uah", "415");
  f[3] = redis_exec(r);
  UVT_NO_YIELD_END();
  for (int i = 0; i < 3; i++) failed += redis_await(r, f[i], NULL) != 0;
  failed += redis_await(r, f[3], &rep) != 0;
  if (failed == 0 && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
    printf("MULTI/EXEC sent with no yield point inside: EXEC -> [%s, %s]\n",
           rep->element[0]->str, rep->element[1]->str);
  } else {
    printf("  wrong: the transaction failed\n");
    cfg->failures++;
  }
  redis_reply_free(rep);
  return redis_close(r);
}

static int main_task(void *arg) {
  config_t *cfg = arg;
  int err;
  if (!cfg->fixed && (err = one_at_a_time(cfg)) != 0) return err;
  if (!cfg->buggy && (err = pipelined(cfg)) != 0) return err;
  if (!cfg->buggy && !cfg->fixed)
    printf("pipelining is %.1fx faster: the one-at-a-time client waits a "
           "round trip per request\n",
           cfg->rps_fixed / cfg->rps_buggy);
  if (!cfg->buggy && (err = update_price(cfg)) != 0) return err;
  return 0;
}

int main(int argc, char **argv) {
  config_t cfg = {NULL, 10000, false, false, 0, 0, 0};
  redis_server_t server = {0};
  int st;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--buggy") == 0) cfg.buggy = true;
    else if (strcmp(argv[i], "--fixed") == 0) cfg.fixed = true;
    else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) cfg.count = atoi(argv[++i]);
    else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) cfg.sock = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--buggy | --fixed] [-n COUNT] [--socket PATH]\n",
              argv[0]);
      return 2;
    }
  }
  if (cfg.count < 1 || (cfg.buggy && cfg.fixed)) {
    fprintf(stderr, "%s: COUNT must be positive; --buggy and --fixed exclude "
            "each other\n", argv[0]);
    return 2;
  }
  if (cfg.sock == NULL) {
    if (redis_server_start(&server) != 0) return 1;
    cfg.sock = server.sock;
  }
  st = uvt_run(NULL, main_task, &cfg);
  if (server.pid > 0) redis_server_stop(&server);
  if (st != 0) {
    fprintf(stderr, "pipelining: %s\n", redis_strerror(st));
    return 1;
  }
  return cfg.failures == 0 ? 0 : 1;
}

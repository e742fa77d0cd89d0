/*
 * The pipelining Redis client (examples/redisclient) against a real
 * redis-server: a private instance per test, on a Unix socket in a
 * temporary directory (tests/redis_server.h), started by the suite's init
 * fixture in the test's own process and stopped by its fini.
 *
 * Needs Debian's redis-server package; without it every test fails in
 * its fixture, saying so.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_server.h"
#include "../examples/redisclient/redis.c"

static redis_server_t server;

static void start_redis(void) {
  cr_assert_eq(redis_server_start(&server), 0, "could not start redis-server");
}

static void stop_redis(void) { redis_server_stop(&server); }

TestSuite(redis, .init = start_redis, .fini = stop_redis, .timeout = 60);

static redis_t *connect_or_fail(void) {
  redis_t *r = NULL;
  int err = redis_connect_unix(server.sock, &r);
  cr_expect_eq(err, 0, "connect: %s", redis_strerror(err));
  return r;
}

/* ---- PING, SET, GET ------------------------------------------------------ */

static struct {
  int st_ping, st_set, st_get, st_missing, st_bin;
  int type_ping, type_set, type_get, type_missing;
  char ping[16], set[16], get[64];
  size_t bin_len;
  int bin_ok;
} B;

static int basics_main(void *arg) {
  redis_t *r = connect_or_fail();
  redis_reply_t *rep;
  /* A value with CRLF and NUL inside, as a binary-safe bulk string. */
  static const char bin[] = "a\r\nb\0c";
  const char *argv[3] = {"SET", "bin", bin};
  size_t argvlen[3] = {3, 3, sizeof bin - 1};
  uvt_future_t *f;
  (void)arg;
  if (r == NULL) return -1;

  B.st_ping = redis_await(r, redis_ping(r), &rep);
  B.type_ping = rep->type;
  snprintf(B.ping, sizeof B.ping, "%s", rep->str);
  redis_reply_free(rep);

  B.st_set = redis_await(r, redis_set(r, "greeting", "hello world"), &rep);
  B.type_set = rep->type;
  snprintf(B.set, sizeof B.set, "%s", rep->str);
  redis_reply_free(rep);

  B.st_get = redis_await(r, redis_get(r, "greeting"), &rep);
  B.type_get = rep->type;
  snprintf(B.get, sizeof B.get, "%s", rep->str);
  redis_reply_free(rep);

  B.st_missing = redis_await(r, redis_get(r, "no-such-key"), &rep);
  B.type_missing = rep->type;
  redis_reply_free(rep);

  cr_expect_eq(redis_await(r, redis_request(r, 3, argv, argvlen), NULL), 0);
  f = redis_get(r, "bin");
  B.st_bin = redis_await(r, f, &rep);
  B.bin_len = rep->len;
  B.bin_ok = rep->len == sizeof bin - 1 && memcmp(rep->str, bin, rep->len) == 0;
  redis_reply_free(rep);

  cr_expect_eq(redis_close(r), 0);
  return 0;
}

Test(redis, ping_set_get) {
  cr_assert_eq(uvt_run(NULL, basics_main, NULL), 0);
  cr_assert_eq(B.st_ping, 0);
  cr_assert_eq(B.type_ping, REDIS_REPLY_STATUS);
  cr_assert_str_eq(B.ping, "PONG");
  cr_assert_eq(B.st_set, 0);
  cr_assert_eq(B.type_set, REDIS_REPLY_STATUS);
  cr_assert_str_eq(B.set, "OK");
  cr_assert_eq(B.st_get, 0);
  cr_assert_eq(B.type_get, REDIS_REPLY_STRING);
  cr_assert_str_eq(B.get, "hello world");
  cr_assert_eq(B.st_missing, 0);
  cr_assert_eq(B.type_missing, REDIS_REPLY_NIL);
  cr_assert_eq(B.st_bin, 0);
  cr_assert_eq(B.bin_len, 6);
  cr_assert(B.bin_ok, "the binary value came back intact");
}

/* ---- 10,000 pipelined INCRs ---------------------------------------------- */

#define NINCR 10000

static struct {
  int sent_before_first_await;
  size_t pending_before_await;
  int in_order;
  int failures;
  char final[16];
  int st_get;
} P;

static int pipelined_main(void *arg) {
  redis_t *r = connect_or_fail();
  uvt_future_t **f = calloc(NINCR, sizeof *f);
  redis_reply_t *rep;
  (void)arg;
  if (r == NULL) return -1;
  /* All 10,000 go out before the first reply is awaited: request() does
   * not yield, so no reply can have been read yet. */
  for (int i = 0; i < NINCR; i++) f[i] = redis_incr(r, "counter");
  P.pending_before_await = redis_pending(r);
  for (int i = 0; i < NINCR; i++) {
    if (redis_await(r, f[i], &rep) != 0) {
      P.failures++;
    } else {
      /* Replies resolve the futures in order: the i-th INCR saw i+1. */
      P.in_order += rep->type == REDIS_REPLY_INTEGER && rep->integer == i + 1;
    }
    redis_reply_free(rep);
  }
  free(f);
  P.st_get = redis_await(r, redis_get(r, "counter"), &rep);
  if (rep != NULL) snprintf(P.final, sizeof P.final, "%s", rep->str);
  redis_reply_free(rep);
  cr_expect_eq(redis_close(r), 0);
  return 0;
}

Test(redis, ten_thousand_pipelined_incrs) {
  cr_assert_eq(uvt_run(NULL, pipelined_main, NULL), 0);
  cr_assert_eq(P.pending_before_await, NINCR);
  cr_assert_eq(P.failures, 0);
  cr_assert_eq(P.in_order, NINCR);
  cr_assert_eq(P.st_get, 0);
  cr_assert_str_eq(P.final, "10000");
}

/* ---- MULTI/EXEC ---------------------------------------------------------- */

static struct {
  int st[5];
  char status[5][16];
  int exec_type;
  size_t exec_n;
  int e0_type, e1_type, e2_type;
  char e0[8], e2[8];
  long long e1;
} M;

static int multi_main(void *arg) {
  redis_t *r = connect_or_fail();
  uvt_future_t *f[5];
  redis_reply_t *rep;
  (void)arg;
  if (r == NULL) return -1;
  /* The transaction is sent in one go: no await between its commands. */
  f[0] = redis_multi(r);
  f[1] = redis_set(r, "price", "41");
  f[2] = redis_incr(r, "price");
  f[3] = redis_get(r, "price");
  f[4] = redis_exec(r);
  for (int i = 0; i < 4; i++) {
    M.st[i] = redis_await(r, f[i], &rep);
    if (rep != NULL) snprintf(M.status[i], sizeof M.status[i], "%s", rep->str);
    redis_reply_free(rep);
  }
  M.st[4] = redis_await(r, f[4], &rep);
  M.exec_type = rep->type;
  M.exec_n = rep->elements;
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
    M.e0_type = rep->element[0]->type;
    snprintf(M.e0, sizeof M.e0, "%s", rep->element[0]->str);
    M.e1_type = rep->element[1]->type;
    M.e1 = rep->element[1]->integer;
    M.e2_type = rep->element[2]->type;
    snprintf(M.e2, sizeof M.e2, "%s", rep->element[2]->str);
  }
  redis_reply_free(rep);
  cr_expect_eq(redis_close(r), 0);
  return 0;
}

Test(redis, multi_exec) {
  cr_assert_eq(uvt_run(NULL, multi_main, NULL), 0);
  for (int i = 0; i < 5; i++) cr_assert_eq(M.st[i], 0, "reply %d", i);
  cr_assert_str_eq(M.status[0], "OK");
  for (int i = 1; i < 4; i++) cr_assert_str_eq(M.status[i], "QUEUED", "reply %d", i);
  cr_assert_eq(M.exec_type, REDIS_REPLY_ARRAY);
  cr_assert_eq(M.exec_n, 3);
  cr_assert_eq(M.e0_type, REDIS_REPLY_STATUS);
  cr_assert_str_eq(M.e0, "OK");
  cr_assert_eq(M.e1_type, REDIS_REPLY_INTEGER);
  cr_assert_eq(M.e1, 42);
  cr_assert_eq(M.e2_type, REDIS_REPLY_STRING);
  cr_assert_str_eq(M.e2, "42");
}

/* ---- error replies ------------------------------------------------------- */

static struct {
  int st_incr, type_incr;
  char msg[128];
  char fut_msg[128];
  int st_ping_after;
  int st_unknown;
  char unknown[128];
} E;

static int error_main(void *arg) {
  redis_t *r = connect_or_fail();
  redis_reply_t *rep;
  uvt_future_t *f;
  (void)arg;
  if (r == NULL) return -1;
  cr_expect_eq(redis_await(r, redis_set(r, "word", "abc"), NULL), 0);
  f = redis_incr(r, "word");
  /* The future itself carries the error and Redis's message (a second
   * reference: redis_await below gives up the first). */
  (void)!uvt_future_ref(f);
  cr_expect_eq(uvt_await_future(f), REDIS_EREPLY);
  snprintf(E.fut_msg, sizeof E.fut_msg, "%s",
           uvt_future_error_message(f) ? uvt_future_error_message(f) : "");
  E.st_incr = redis_await(r, f, &rep);
  E.type_incr = rep->type;
  snprintf(E.msg, sizeof E.msg, "%s", rep->str);
  redis_reply_free(rep);
  E.st_unknown = redis_await(r, redis_command(r, "NOSUCHCOMMAND", "x"), &rep);
  snprintf(E.unknown, sizeof E.unknown, "%s", rep->str);
  redis_reply_free(rep);
  /* An error reply does not break the connection. */
  E.st_ping_after = redis_await(r, redis_ping(r), NULL);
  cr_expect_eq(redis_close(r), 0);
  return 0;
}

Test(redis, error_reply_surfaces_with_redis_message) {
  cr_assert_eq(uvt_run(NULL, error_main, NULL), 0);
  cr_assert_eq(E.st_incr, REDIS_EREPLY);
  cr_assert_eq(E.type_incr, REDIS_REPLY_ERROR);
  cr_assert_not_null(strstr(E.msg, "ERR value is not an integer"), "got '%s'", E.msg);
  cr_assert_not_null(strstr(E.fut_msg, "ERR value is not an integer"), "got '%s'", E.fut_msg);
  cr_assert_eq(E.st_unknown, REDIS_EREPLY);
  cr_assert_not_null(strstr(E.unknown, "unknown command"), "got '%s'", E.unknown);
  cr_assert_eq(E.st_ping_after, 0);
}

/* ---- the server goes away ------------------------------------------------ */

static struct {
  int st_quit, st_after, st_late;
  char after_msg[128];
} Q;

static int quit_main(void *arg) {
  redis_t *r = connect_or_fail();
  redis_reply_t *rep;
  uvt_future_t *quit, *after;
  (void)arg;
  if (r == NULL) return -1;
  /* QUIT: Redis answers +OK and hangs up, so the PING sent behind it
   * fails with the connection's end instead of hanging. */
  quit = redis_command(r, "QUIT");
  after = redis_ping(r);
  Q.st_quit = redis_await(r, quit, NULL);
  Q.st_after = redis_await(r, after, &rep);
  if (rep != NULL) snprintf(Q.after_msg, sizeof Q.after_msg, "%s", rep->str);
  redis_reply_free(rep);
  /* Requests after that fail at once. */
  Q.st_late = redis_await(r, redis_ping(r), NULL);
  cr_expect_eq(redis_close(r), 0);
  return 0;
}

Test(redis, pending_requests_fail_when_the_server_hangs_up) {
  cr_assert_eq(uvt_run(NULL, quit_main, NULL), 0);
  cr_assert_eq(Q.st_quit, 0);
  cr_assert(Q.st_after == UV_EOF || Q.st_after == UV_ECONNRESET, "status %d", Q.st_after);
  cr_assert_not_null(strstr(Q.after_msg, "redis connection lost"), "got '%s'", Q.after_msg);
  cr_assert_eq(Q.st_late, Q.st_after);
}

/* ---- a large value and cancelling an await ------------------------------- */

#define BIGVAL (3 * 1024 * 1024)

static struct {
  int st_set, st_get, same, st_cancel, st_after;
  size_t len;
} L;

static int await_task(void *arg) {
  redis_t *r = arg;
  /* BLPOP blocks in the server for half a second: the await parks. */
  return redis_await(r, redis_command(r, "BLPOP", "empty-list", "0.5"), NULL);
}

static int large_main(void *arg) {
  redis_t *r = connect_or_fail();
  char *v = malloc(BIGVAL + 1);
  redis_reply_t *rep;
  uvt_task_t *t;
  (void)arg;
  if (r == NULL) return -1;
  for (size_t i = 0; i < BIGVAL; i++) v[i] = (char)('A' + i % 23);
  v[BIGVAL] = '\0';
  /* Larger than the stream's 64 KiB read limit. */
  L.st_set = redis_await(r, redis_set(r, "big", v), NULL);
  L.st_get = redis_await(r, redis_get(r, "big"), &rep);
  L.len = rep->len;
  L.same = rep->len == BIGVAL && memcmp(rep->str, v, BIGVAL) == 0;
  redis_reply_free(rep);
  free(v);
  t = uvt_spawn(await_task, r);
  uvt_sleep(50);
  uvt_cancel(t);
  L.st_cancel = uvt_await(t);
  /* The reply of the abandoned request is dropped when it comes; the
   * next one lines up behind it. */
  L.st_after = redis_await(r, redis_ping(r), NULL);
  cr_expect_eq(redis_close(r), 0);
  return 0;
}

Test(redis, large_values_and_cancelled_awaits) {
  cr_assert_eq(uvt_run(NULL, large_main, NULL), 0);
  cr_assert_eq(L.st_set, 0);
  cr_assert_eq(L.st_get, 0);
  cr_assert_eq(L.len, BIGVAL);
  cr_assert(L.same);
  cr_assert_eq(L.st_cancel, UVT_ECANCELED);
  cr_assert_eq(L.st_after, 0);
}

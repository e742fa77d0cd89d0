/*
 * Streams against an in-process server (uvt_start_server on 127.0.0.1 port
 * 0, or a Unix socket in a temporary directory): lines, the line limit
 * (an error that loses no data), end of stream, readexactly at EOF, a
 * 10 MB write with drain echoed back, backpressure, 1,000 concurrent
 * connections, cancellation in read, drain and connect, names and Unix
 * sockets, closing (streams and servers; close flushes), write errors,
 * misuse, and the unclosed-stream report.
 *
 * Only loopback addresses are used.  Checks inside task bodies use
 * cr_expect or record into a struct checked with cr_assert after uvt_run
 * returns (a failed cr_assert would longjmp off a task's stack).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uvtask.h"
#include "uvtask/stream.h"

#define MB (1024 * 1024)

/* One test's shared state: each Test runs in its own process. */
static struct ctx {
  uvt_event_t go;       /* released by the client to let a handler go on */
  uvt_event_t done;     /* set by a handler when it has finished */
  int port;
  size_t total;         /* bytes a handler counted */
  int handler_status[8];
  int handlers_run;
  int handlers_ended;
  bool flood_done;
} C;

static void ctx_init(void) {
  memset(&C, 0, sizeof C);
  uvt_event_init(&C.go);
  uvt_event_init(&C.done);
}

static void ctx_destroy(void) {
  uvt_event_destroy(&C.go);
  uvt_event_destroy(&C.done);
}

/* Start a TCP server on 127.0.0.1, port 0; C.port gets the port. */
#define SERVE(handler, srvp)                                                  \
  do {                                                                        \
    int serve_err_ = uvt_start_server("127.0.0.1", 0, handler, NULL, srvp);   \
    cr_expect_eq(serve_err_, 0, "start_server: %s", uvt_strerror(serve_err_)); \
    C.port = uvt_server_port(*(srvp));                                        \
    cr_expect_gt(C.port, 0);                                                  \
  } while (0)

static uvt_stream_t *dial(void) {
  uvt_stream_t *s = NULL;
  int err = uvt_open_connection("127.0.0.1", C.port, &s);
  cr_expect_eq(err, 0, "open_connection: %s", uvt_strerror(err));
  return s;
}

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + i / 251); }

/* ---- handlers ------------------------------------------------------------ */

/* Echo until the client ends the stream. */
static int echo(uvt_stream_t *s, void *arg) {
  static char buf[64 * 1024];
  (void)arg;
  for (;;) {
    size_t n;
    int err = uvt_read(s, buf, sizeof buf, &n);
    if (err != 0) return err == UVT_ECANCELED ? err : 0;
    if (n == 0) return 0;
    if ((err = uvt_write(s, buf, n)) != 0 || (err = uvt_drain(s)) != 0)
      return err == UVT_ECANCELED ? err : 0;
  }
}

/* Echo one line per line until EOF. */
static int echo_lines(uvt_stream_t *s, void *arg) {
  char line[256];
  size_t len;
  (void)arg;
  while (uvt_readline(s, line, sizeof line, &len) == 0 && len > 0)
    if (uvt_write(s, line, len) != 0) break;
  return 0;
}

/* ---- lines --------------------------------------------------------------- */

static int send_lines(uvt_stream_t *s, void *arg) {
  (void)arg;
  uvt_write(s, "alpha\n", 6);
  uvt_write(s, "be", 2);
  uvt_sleep(10);
  uvt_write(s, "ta\ngam", 6);
  uvt_sleep(10);
  uvt_write(s, "ma\n\nlast-no-newline", 19);
  return 0; /* the server closes the stream: EOF */
}

static struct {
  char line[6][64];
  size_t len[6];
  int st[6];
  int read_st;
  size_t read_n;
} L;

static int lines_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  char b[16];
  (void)arg;
  SERVE(send_lines, &srv);
  s = dial();
  for (int i = 0; i < 6; i++)
    L.st[i] = uvt_readline(s, L.line[i], sizeof L.line[i], &L.len[i]);
  L.read_st = uvt_read(s, b, sizeof b, &L.read_n);
  cr_expect_eq(uvt_close(s), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, readline_splits_lines_across_arrivals) {
  cr_assert_eq(uvt_run(NULL, lines_main, NULL), 0);
  const char *want[6] = {"alpha\n", "beta\n", "gamma\n", "\n",
                         "last-no-newline", ""};
  for (int i = 0; i < 6; i++) {
    cr_assert_eq(L.st[i], 0, "line %d: %s", i, uvt_strerror(L.st[i]));
    cr_assert_str_eq(L.line[i], want[i], "line %d", i);
    cr_assert_eq(L.len[i], strlen(want[i]), "line %d", i);
  }
  cr_assert_eq(L.read_st, 0);
  cr_assert_eq(L.read_n, 0, "uvt_read at EOF returns 0 bytes");
}

/* ---- the line limit loses no data ---------------------------------------- */

static int send_long_line(uvt_stream_t *s, void *arg) {
  char line[101];
  (void)arg;
  memset(line, 'x', 100);
  line[100] = '\n';
  uvt_write(s, line, sizeof line);
  uvt_write(s, "next\n", 5);
  return 0;
}

static struct {
  int st_small, st_exact, st_next;
  size_t buffered, len_next;
  char got[101];
  char next[16];
} LL;

static int long_line_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  char small[50];
  size_t len = 99;
  (void)arg;
  SERVE(send_long_line, &srv);
  s = dial();
  LL.st_small = uvt_readline(s, small, sizeof small, &len);
  cr_expect_eq(len, 0, "*len on error");
  LL.buffered = uvt_stream_read_buffered(s);
  LL.st_exact = uvt_readexactly(s, LL.got, sizeof LL.got);
  LL.st_next = uvt_readline(s, LL.next, sizeof LL.next, &LL.len_next);
  cr_expect_eq(uvt_close(s), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, line_longer_than_buffer_is_enobufs_and_keeps_data) {
  cr_assert_eq(uvt_run(NULL, long_line_main, NULL), 0);
  cr_assert_eq(LL.st_small, UV_ENOBUFS);
  cr_assert_geq(LL.buffered, 49, "the bytes are still buffered");
  cr_assert_eq(LL.st_exact, 0);
  for (int i = 0; i < 100; i++) cr_assert_eq(LL.got[i], 'x', "byte %d", i);
  cr_assert_eq(LL.got[100], '\n');
  cr_assert_eq(LL.st_next, 0);
  cr_assert_str_eq(LL.next, "next\n");
}

/* A line longer than the stream's limit: reading stops at the limit
 * (backpressure), readline says UV_ENOBUFS, and uvt_read then gets every
 * byte in order. */
static int send_4000_line(uvt_stream_t *s, void *arg) {
  char *buf = malloc(4001);
  (void)arg;
  for (int i = 0; i < 4000; i++) buf[i] = (char)('a' + i % 26);
  buf[4000] = '\n';
  uvt_write(s, buf, 4001);
  free(buf);
  return 0;
}

static struct {
  int st_line;
  size_t buffered_at_error;
  size_t total;
  int mismatches;
  int st_after;
  size_t len_after;
} LIM;

static int limit_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  char line[8192], b[700];
  size_t len, n;
  (void)arg;
  SERVE(send_4000_line, &srv);
  s = dial();
  cr_expect_eq(uvt_stream_set_limit(s, 1024), 0);
  LIM.st_line = uvt_readline(s, line, sizeof line, &len);
  LIM.buffered_at_error = uvt_stream_read_buffered(s);
  while (LIM.total < 4001 && uvt_read(s, b, sizeof b, &n) == 0 && n > 0) {
    for (size_t i = 0; i < n; i++) {
      size_t at = LIM.total + i;
      char want = at == 4000 ? '\n' : (char)('a' + at % 26);
      LIM.mismatches += b[i] != want;
    }
    LIM.total += n;
  }
  LIM.st_after = uvt_readline(s, line, sizeof line, &LIM.len_after);
  cr_expect_eq(uvt_close(s), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, line_over_limit_pauses_reading_and_keeps_data) {
  cr_assert_eq(uvt_run(NULL, limit_main, NULL), 0);
  cr_assert_eq(LIM.st_line, UV_ENOBUFS);
  cr_assert_eq(LIM.buffered_at_error, 1024, "reading stopped at the limit");
  cr_assert_eq(LIM.total, 4001);
  cr_assert_eq(LIM.mismatches, 0);
  cr_assert_eq(LIM.st_after, 0);
  cr_assert_eq(LIM.len_after, 0, "then end of stream");
}

/* ---- readexactly and EOF ------------------------------------------------- */

static int send_ten(uvt_stream_t *s, void *arg) {
  (void)arg;
  uvt_write(s, "0123456789", 10);
  return 0;
}

static struct {
  int st4, st20, st_read, st_eof;
  char first[5];
  size_t buffered;
  char rest[32];
  size_t n_rest, n_eof;
} RX;

static int readexactly_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  char big[20];
  (void)arg;
  SERVE(send_ten, &srv);
  s = dial();
  RX.st4 = uvt_readexactly(s, RX.first, 4);
  RX.st20 = uvt_readexactly(s, big, sizeof big);
  RX.buffered = uvt_stream_read_buffered(s);
  RX.st_read = uvt_read(s, RX.rest, sizeof RX.rest - 1, &RX.n_rest);
  RX.st_eof = uvt_read(s, RX.rest + 20, 4, &RX.n_eof);
  cr_expect_eq(uvt_close(s), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, readexactly_at_eof_keeps_the_partial_data) {
  cr_assert_eq(uvt_run(NULL, readexactly_main, NULL), 0);
  cr_assert_eq(RX.st4, 0);
  cr_assert_str_eq(RX.first, "0123");
  cr_assert_eq(RX.st20, UV_EOF);
  cr_assert_eq(RX.buffered, 6, "the 6 bytes short of 20 are still there");
  cr_assert_eq(RX.st_read, 0);
  cr_assert_eq(RX.n_rest, 6);
  cr_assert_str_eq(RX.rest, "456789");
  cr_assert_eq(RX.st_eof, 0);
  cr_assert_eq(RX.n_eof, 0);
}

/* ---- 10 MB through an echo server, with drain ---------------------------- */

#define BIG (10 * MB)

static struct {
  size_t got;
  size_t mismatches;
  int read_err;
  int st_write, st_drain, st_eof;
  size_t unsent_after_drain;
  size_t unsent_before_drain;
} BIGX;

static int big_reader(void *arg) {
  uvt_stream_t *s = arg;
  char *b = malloc(256 * 1024);
  while (BIGX.got < BIG) {
    size_t n;
    int err = uvt_read(s, b, 256 * 1024, &n);
    if (err != 0 || n == 0) {
      BIGX.read_err = err != 0 ? err : UV_EOF;
      break;
    }
    for (size_t i = 0; i < n; i++)
      BIGX.mismatches += (unsigned char)b[i] != pattern(BIGX.got + i);
    BIGX.got += n;
  }
  free(b);
  return 0;
}

static int big_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  uvt_task_t *r;
  unsigned char *data = malloc(BIG);
  char tail[4];
  size_t n = 9;
  (void)arg;
  for (size_t i = 0; i < BIG; i++) data[i] = pattern(i);
  SERVE(echo, &srv);
  s = dial();
  r = uvt_spawn(big_reader, s);
  BIGX.st_write = uvt_write(s, data, BIG);
  free(data); /* uvt_write copied it */
  BIGX.unsent_before_drain = uvt_stream_write_buffered(s);
  BIGX.st_drain = uvt_drain(s);
  BIGX.unsent_after_drain = uvt_stream_write_buffered(s);
  BIGX.st_eof = uvt_write_eof(s);
  cr_expect_eq(uvt_await(r), 0);
  cr_expect_eq(uvt_read(s, tail, sizeof tail, &n), 0);
  cr_expect_eq(n, 0, "the echo server ended the stream after our EOF");
  cr_expect_eq(uvt_close(s), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, ten_megabytes_written_drained_and_echoed_intact) {
  cr_assert_eq(uvt_run(NULL, big_main, NULL), 0);
  cr_assert_eq(BIGX.st_write, 0);
  cr_assert_gt(BIGX.unsent_before_drain, UVT_STREAM_HIGH_WATER,
               "10 MB cannot all be in the kernel at once");
  cr_assert_eq(BIGX.st_drain, 0);
  cr_assert_leq(BIGX.unsent_after_drain, UVT_STREAM_HIGH_WATER);
  cr_assert_eq(BIGX.st_eof, 0);
  cr_assert_eq(BIGX.read_err, 0, "%s", uvt_strerror(BIGX.read_err));
  cr_assert_eq(BIGX.got, (size_t)BIG);
  cr_assert_eq(BIGX.mismatches, 0);
}

/* ---- backpressure -------------------------------------------------------- */

#define FLOOD (64 * MB) /* more than every kernel buffer on the path */

static int flood(uvt_stream_t *s, void *arg) {
  char *chunk = malloc(MB);
  (void)arg;
  memset(chunk, 'f', MB);
  for (size_t sent = 0; sent < FLOOD; sent += MB) {
    int err = uvt_write(s, chunk, MB);
    if (err == 0) err = uvt_drain(s);
    if (err != 0) {
      free(chunk);
      return err;
    }
  }
  free(chunk);
  C.flood_done = true;
  return 0;
}

static struct {
  bool done_while_idle;
  size_t buffered_while_idle;
  size_t total;
} BP;

static int backpressure_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  char *b = malloc(MB);
  size_t n;
  (void)arg;
  SERVE(flood, &srv);
  s = dial();
  uvt_sleep(300); /* not reading */
  BP.done_while_idle = C.flood_done;
  BP.buffered_while_idle = uvt_stream_read_buffered(s);
  while (uvt_read(s, b, MB, &n) == 0 && n > 0) BP.total += n;
  free(b);
  cr_expect_eq(uvt_close(s), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, a_reader_that_does_not_read_holds_the_writer_in_drain) {
  ctx_init();
  cr_assert_eq(uvt_run(NULL, backpressure_main, NULL), 0);
  cr_assert_not(BP.done_while_idle, "the writer's drain returned although "
                                    "nobody read");
  cr_assert_leq(BP.buffered_while_idle, UVT_STREAM_LIMIT);
  cr_assert_gt(BP.buffered_while_idle, 0);
  cr_assert_eq(BP.total, (size_t)FLOOD);
  cr_assert(C.flood_done);
}

/* ---- 1,000 concurrent connections ---------------------------------------- */

#define NCONN 1000

static struct {
  int ok;
  int failed_status;
  size_t peak_server_conns;
  int connected;
} MC;

static int many_client(void *arg) {
  int i = (int)(intptr_t)arg;
  uvt_stream_t *s = NULL;
  char want[32], got[32];
  size_t len;
  int err = uvt_open_connection("127.0.0.1", C.port, &s);
  if (err != 0) {
    MC.failed_status = err;
    return err;
  }
  MC.connected++;
  /* Everyone stays connected until all are. */
  if ((err = uvt_event_wait(&C.go)) != 0) goto out;
  snprintf(want, sizeof want, "hello %d\n", i);
  if ((err = uvt_write(s, want, strlen(want))) != 0) goto out;
  if ((err = uvt_readline(s, got, sizeof got, &len)) != 0) goto out;
  if (strcmp(got, want) == 0) MC.ok++;
out:
  if (err != 0) MC.failed_status = err;
  uvt_close(s);
  return err;
}

static int many_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_task_t **t = calloc(NCONN, sizeof *t);
  (void)arg;
  SERVE(echo_lines, &srv);
  for (int i = 0; i < NCONN; i++) t[i] = uvt_spawn(many_client, (void *)(intptr_t)i);
  /* Wait (bounded) until the server holds every connection at once. */
  for (int k = 0; k < 1000 && uvt_server_connections(srv) < NCONN; k++)
    uvt_sleep(10);
  MC.peak_server_conns = uvt_server_connections(srv);
  uvt_event_set(&C.go);
  cr_expect_eq(uvt_gather(t, NCONN), 0);
  free(t);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, a_thousand_concurrent_connections) {
  struct rlimit rl;
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = rl.rlim_max;
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
  cr_assert_geq(rl.rlim_cur, 2 * NCONN + 64, "need %d descriptors", 2 * NCONN + 64);
  ctx_init();
  cr_assert_eq(uvt_run(NULL, many_main, NULL), 0);
  cr_assert_eq(MC.failed_status, 0, "%s", uvt_strerror(MC.failed_status));
  cr_assert_eq(MC.connected, NCONN);
  cr_assert_eq(MC.peak_server_conns, NCONN);
  cr_assert_eq(MC.ok, NCONN);
  ctx_destroy();
}

/* ---- cancelling a read --------------------------------------------------- */

/* Sends "abc", waits for the client's "go\n", then sends "defg\nlate\n". */
static int slow_sender(uvt_stream_t *s, void *arg) {
  char line[16];
  size_t len;
  (void)arg;
  uvt_write(s, "abc", 3);
  if (uvt_readline(s, line, sizeof line, &len) != 0 || len == 0) return 0;
  uvt_write(s, "defg\nlate\n", 10);
  return 0;
}

static struct {
  int st_line, st_exact, st_read_after;
  bool line_done_before_cancel, exact_done_before_cancel;
  size_t buffered_after_cancel;
  char line1[16], line2[16];
  int st1, st2;
} CR;

static int readline_task(void *arg) {
  char b[16];
  size_t len;
  CR.st_line = uvt_readline((uvt_stream_t *)arg, b, sizeof b, &len);
  return CR.st_line;
}

static int readexactly_task(void *arg) {
  char b[10];
  CR.st_exact = uvt_readexactly((uvt_stream_t *)arg, b, sizeof b);
  return CR.st_exact;
}

static int cancel_read_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  uvt_task_t *t;
  size_t len;
  (void)arg;
  SERVE(slow_sender, &srv);
  s = dial();
  /* A readline parked waiting for the '\n' after "abc". */
  t = uvt_spawn(readline_task, s);
  uvt_sleep(30);
  CR.line_done_before_cancel = uvt_done(t);
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  /* A readexactly parked wanting 10 bytes. */
  t = uvt_spawn(readexactly_task, s);
  uvt_sleep(30);
  CR.exact_done_before_cancel = uvt_done(t);
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  CR.buffered_after_cancel = uvt_stream_read_buffered(s);
  /* The stream still works, and nothing was lost. */
  cr_expect_eq(uvt_write(s, "go\n", 3), 0);
  CR.st1 = uvt_readline(s, CR.line1, sizeof CR.line1, &len);
  CR.st2 = uvt_readline(s, CR.line2, sizeof CR.line2, &len);
  cr_expect_eq(uvt_close(s), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, cancelled_reads_return_ecanceled_and_lose_nothing) {
  cr_assert_eq(uvt_run(NULL, cancel_read_main, NULL), 0);
  cr_assert_not(CR.line_done_before_cancel, "readline should be parked");
  cr_assert_eq(CR.st_line, UVT_ECANCELED);
  cr_assert_not(CR.exact_done_before_cancel, "readexactly should be parked");
  cr_assert_eq(CR.st_exact, UVT_ECANCELED);
  cr_assert_eq(CR.buffered_after_cancel, 3);
  cr_assert_eq(CR.st1, 0);
  cr_assert_str_eq(CR.line1, "abcdefg\n");
  cr_assert_eq(CR.st2, 0);
  cr_assert_str_eq(CR.line2, "late\n");
}

/* ---- cancelling a drain -------------------------------------------------- */

#define DRAINED (32 * MB)

/* Reads nothing until C.go, then counts bytes until EOF. */
static int lazy_counter(uvt_stream_t *s, void *arg) {
  char *b = malloc(MB);
  size_t n;
  int err;
  (void)arg;
  if (uvt_event_wait(&C.go) == 0)
    while ((err = uvt_read(s, b, MB, &n)) == 0 && n > 0) C.total += n;
  free(b);
  uvt_event_set(&C.done);
  return 0;
}

static struct {
  int st_cancelled, st_drain_again;
  bool done_before_cancel;
  size_t unsent_after_cancel;
} CD;

static int drain_task(void *arg) {
  CD.st_cancelled = uvt_drain((uvt_stream_t *)arg);
  return CD.st_cancelled;
}

static int cancel_drain_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  uvt_task_t *t;
  char *data = malloc(DRAINED);
  (void)arg;
  memset(data, 'd', DRAINED);
  SERVE(lazy_counter, &srv);
  s = dial();
  cr_expect_eq(uvt_write(s, data, DRAINED), 0);
  free(data);
  t = uvt_spawn(drain_task, s);
  uvt_sleep(50);
  CD.done_before_cancel = uvt_done(t);
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  CD.unsent_after_cancel = uvt_stream_write_buffered(s);
  /* Still usable: let the server read, drain again, end the stream. */
  uvt_event_set(&C.go);
  CD.st_drain_again = uvt_drain(s);
  cr_expect_eq(uvt_write_eof(s), 0);
  cr_expect_eq(uvt_event_wait(&C.done), 0);
  cr_expect_eq(uvt_close(s), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, a_cancelled_drain_still_sends_everything) {
  ctx_init();
  cr_assert_eq(uvt_run(NULL, cancel_drain_main, NULL), 0);
  cr_assert_not(CD.done_before_cancel, "drain should be parked");
  cr_assert_eq(CD.st_cancelled, UVT_ECANCELED);
  cr_assert_gt(CD.unsent_after_cancel, UVT_STREAM_HIGH_WATER);
  cr_assert_eq(CD.st_drain_again, 0);
  cr_assert_eq(C.total, (size_t)DRAINED);
  ctx_destroy();
}

/* ---- cancelling a connect ------------------------------------------------ */

/* A listener whose accept queue is full: the kernel drops further SYNs, so
 * a connect to it hangs (retransmitting) instead of completing. */
static int full_listener(int *port, int *filler) {
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  cr_assert_eq(listen(l, 0), 0);
  cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
  *port = ntohs(a.sin_port);
  *filler = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_eq(connect(*filler, (struct sockaddr *)&a, sizeof a), 0);
  return l;
}

static struct {
  int st_hang, st_quick, st_name, st_after;
  bool hang_done_early;
} CC;

static int connect_hang_task(void *arg) {
  uvt_stream_t *s = NULL;
  CC.st_hang = uvt_open_connection("127.0.0.1", *(int *)arg, &s);
  cr_expect_null(s);
  return CC.st_hang;
}

static int connect_quick_task(void *arg) {
  uvt_stream_t *s = NULL;
  (void)arg;
  CC.st_quick = uvt_open_connection("127.0.0.1", C.port, &s);
  cr_expect_null(s);
  if (s != NULL) uvt_close(s);
  return CC.st_quick;
}

static int connect_name_task(void *arg) {
  uvt_stream_t *s = NULL;
  (void)arg;
  CC.st_name = uvt_open_connection("localhost", C.port, &s);
  if (s != NULL) uvt_close(s);
  return CC.st_name;
}

static int cancel_connect_main(void *arg) {
  int *full_port = arg;
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  uvt_task_t *t;
  SERVE(echo_lines, &srv);

  /* 1. A connect that hangs, cancelled after 100 ms. */
  t = uvt_spawn(connect_hang_task, full_port);
  uvt_sleep(100);
  CC.hang_done_early = uvt_done(t);
  uvt_cancel(t);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);

  /* 2. Cancelled in the same pass as the connect was started (it cannot
   *    have completed: the loop has not polled since). */
  t = uvt_spawn(connect_quick_task, NULL);
  uvt_yield();
  uvt_cancel(t);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);

  /* 3. Cancelled during name resolution on the thread pool. */
  t = uvt_spawn(connect_name_task, NULL);
  uvt_yield();
  uvt_cancel(t);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);

  /* Connecting still works afterwards. */
  s = dial();
  CC.st_after = s != NULL ? 0 : -1;
  if (s != NULL) cr_expect_eq(uvt_close(s), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, cancelled_connects_return_ecanceled) {
  int port, filler;
  int l = full_listener(&port, &filler);
  cr_assert_eq(uvt_run(NULL, cancel_connect_main, &port), 0);
  close(filler);
  close(l);
  cr_assert_not(CC.hang_done_early, "the connect should still be pending");
  cr_assert_eq(CC.st_hang, UVT_ECANCELED);
  cr_assert_eq(CC.st_quick, UVT_ECANCELED);
  cr_assert_eq(CC.st_name, UVT_ECANCELED);
  cr_assert_eq(CC.st_after, 0);
}

/* A task still resolving a name when main returns: the shutdown cancels
 * it at once, and still waits for libuv's lookup before the loop closes
 * (under ASan a freed or leaked request would show). */
static int resolving_task(void *arg) {
  uvt_stream_t *s = NULL;
  int err = uvt_open_connection("localhost", *(int *)arg, &s);
  if (s != NULL) uvt_close(s);
  return err;
}

static int exit_while_resolving_main(void *arg) {
  uvt_task_t *t[8];
  for (int i = 0; i < 8; i++) t[i] = uvt_spawn(resolving_task, arg);
  uvt_yield(); /* they start and park in the lookup */
  for (int i = 0; i < 8; i++) cr_expect_not(uvt_done(t[i]));
  return 0;
}

Test(stream, exit_while_resolving_a_name) {
  int port = 9; /* nothing listens there; the lookup is what matters */
  cr_assert_eq(uvt_run(NULL, exit_while_resolving_main, &port), 0);
}

/* ---- names, refusals, Unix sockets --------------------------------------- */

static struct {
  int st_name, st_refused, st_unix, st_unix_srv, st_line;
  char line[32];
  bool path_exists_open, path_exists_closed;
  int port_unix;
} NU;

static int names_main(void *arg) {
  const char *path = arg;
  uvt_server_t *srv = NULL, *usrv = NULL;
  uvt_stream_t *s = NULL;
  size_t len;
  SERVE(echo_lines, &srv);
  /* "localhost" resolves on the thread pool, maybe to ::1 first (refused:
   * the server is IPv4), then 127.0.0.1. */
  NU.st_name = uvt_open_connection("localhost", C.port, &s);
  if (s != NULL) {
    uvt_write(s, "via name\n", 9);
    NU.st_line = uvt_readline(s, NU.line, sizeof NU.line, &len);
    cr_expect_eq(uvt_close(s), 0);
  }
  cr_expect_eq(uvt_server_close(srv), 0);
  /* Nobody listens there any more. */
  NU.st_refused = uvt_open_connection("127.0.0.1", C.port, &s);

  NU.st_unix_srv = uvt_start_unix_server(path, echo_lines, NULL, &usrv);
  NU.path_exists_open = access(path, F_OK) == 0;
  NU.port_unix = uvt_server_port(usrv);
  NU.st_unix = uvt_open_unix(path, &s);
  if (s != NULL) {
    char got[32];
    uvt_write(s, "over unix\n", 10);
    if (uvt_readline(s, got, sizeof got, &len) != 0 || strcmp(got, "over unix\n") != 0)
      NU.st_unix = -1;
    cr_expect_eq(uvt_close(s), 0);
  }
  cr_expect_eq(uvt_server_close(usrv), 0);
  NU.path_exists_closed = access(path, F_OK) == 0;
  return 0;
}

/* ---- misuse ------------------------------------------------------------- */

static struct {
  int st[12];
} MU;

static int misuse_main(void *arg) {
  const char *path = arg;
  char longpath[200], b[4];
  uvt_server_t *srv = NULL, *srv2 = NULL;
  uvt_stream_t *s = NULL;
  size_t n;
  memset(longpath, 'p', sizeof longpath - 1);
  longpath[0] = '/';
  longpath[sizeof longpath - 1] = '\0';
  MU.st[0] = uvt_open_connection(NULL, 80, &s);
  MU.st[1] = uvt_open_connection("127.0.0.1", 70000, &s);
  MU.st[2] = uvt_start_server(NULL, 0, echo_lines, NULL, &srv);
  MU.st[3] = uvt_open_unix(longpath, &s);
  MU.st[4] = uvt_start_unix_server(longpath, echo_lines, NULL, &srv);
  MU.st[5] = uvt_write(NULL, "x", 1);
  MU.st[6] = uvt_read(NULL, b, sizeof b, &n);
  /* A socket path already taken. */
  cr_expect_eq(uvt_start_unix_server(path, echo_lines, NULL, &srv), 0);
  MU.st[7] = uvt_start_unix_server(path, echo_lines, NULL, &srv2);
  cr_expect_null(srv2);
  MU.st[8] = uvt_open_unix(path, &s);
  if (s != NULL) {
    MU.st[9] = uvt_readline(s, b, 1, &n);
    MU.st[10] = uvt_read(s, b, 0, &n);
    uvt_close(s);
  }
  MU.st[11] = uvt_open_unix("/nonexistent/dir/s.sock", &s);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, misuse_is_refused) {
  char dir[] = "/tmp/uvt-stream-XXXXXX";
  char path[128];
  uvt_stream_t *s = (uvt_stream_t *)&s;
  uvt_server_t *srv = NULL;
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/s.sock", dir);
  /* Outside uvt_run. */
  cr_assert_eq(uvt_open_connection("127.0.0.1", 1, &s), UVT_ENOTASK);
  cr_assert_null(s, "*out is cleared on failure");
  cr_assert_eq(uvt_start_unix_server(path, echo_lines, NULL, &srv), UVT_ENOLOOP);
  cr_assert_eq(uvt_run(NULL, misuse_main, path), 0);
  rmdir(dir);
  cr_assert_eq(MU.st[0], UVT_EINVAL);
  cr_assert_eq(MU.st[1], UVT_EINVAL);
  cr_assert_eq(MU.st[2], UVT_EINVAL);
  cr_assert_eq(MU.st[3], UV_ENAMETOOLONG);
  cr_assert_eq(MU.st[4], UV_ENAMETOOLONG);
  cr_assert_eq(MU.st[5], UVT_EINVAL);
  cr_assert_eq(MU.st[6], UVT_EINVAL);
  cr_assert_eq(MU.st[7], UV_EADDRINUSE, "%s", uvt_strerror(MU.st[7]));
  cr_assert_eq(MU.st[8], 0);
  cr_assert_eq(MU.st[9], UVT_EINVAL);
  cr_assert_eq(MU.st[10], UVT_EINVAL);
  cr_assert_eq(MU.st[11], UV_ENOENT, "%s", uvt_strerror(MU.st[11]));
}

Test(stream, names_refusals_and_unix_sockets) {
  char dir[] = "/tmp/uvt-stream-XXXXXX";
  char path[128];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/s.sock", dir);
  cr_assert_eq(uvt_run(NULL, names_main, path), 0);
  rmdir(dir);
  cr_assert_eq(NU.st_name, 0, "%s", uvt_strerror(NU.st_name));
  cr_assert_eq(NU.st_line, 0);
  cr_assert_str_eq(NU.line, "via name\n");
  cr_assert_eq(NU.st_refused, UV_ECONNREFUSED, "%s", uvt_strerror(NU.st_refused));
  cr_assert_eq(NU.st_unix_srv, 0);
  cr_assert(NU.path_exists_open);
  cr_assert_eq(NU.port_unix, UVT_EINVAL);
  cr_assert_eq(NU.st_unix, 0, "%s", uvt_strerror(NU.st_unix));
  cr_assert_not(NU.path_exists_closed, "the socket file is removed on close");
}

/* ---- closing ------------------------------------------------------------- */

static struct {
  int st_reader, st_busy, st_close, st_close_again, st_write_after;
  int st_drain_after, st_eof_line;
  char count_line[16];
} CL;

static int parked_reader(void *arg) {
  char b[8];
  size_t n;
  CL.st_reader = uvt_read((uvt_stream_t *)arg, b, sizeof b, &n);
  return 0;
}

/* Counts bytes until EOF, then answers with the count. */
static int count_then_answer(uvt_stream_t *s, void *arg) {
  char b[64], line[32];
  size_t n, total = 0;
  (void)arg;
  while (uvt_read(s, b, sizeof b, &n) == 0 && n > 0) total += n;
  snprintf(line, sizeof line, "%zu\n", total);
  uvt_write(s, line, strlen(line));
  return 0;
}

static int closing_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  uvt_task_t *t;
  char b[8];
  size_t n;
  (void)arg;
  SERVE(count_then_answer, &srv);

  /* Half-close: the server sees EOF after our bytes and still answers. */
  s = dial();
  cr_expect_eq(uvt_write(s, "abcdef", 6), 0);
  cr_expect_eq(uvt_write_eof(s), 0);
  CL.st_eof_line = uvt_write(s, "x", 1);
  cr_expect_eq(uvt_readline(s, CL.count_line, sizeof CL.count_line, &n), 0);
  cr_expect_eq(uvt_close(s), 0);

  /* Close wakes a parked reader with UVT_ECLOSED; a second reader is
   * refused while the first waits. */
  s = dial();
  t = uvt_spawn(parked_reader, s);
  uvt_sleep(10);
  CL.st_busy = uvt_read(s, b, sizeof b, &n);
  CL.st_close = uvt_close(s);
  cr_expect_eq(uvt_await(t), 0);
  /* The handle is gone; a use right after is still caught. */
  CL.st_close_again = uvt_close(s);
  CL.st_write_after = uvt_write(s, "x", 1);
  CL.st_drain_after = uvt_drain(s);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, write_eof_and_close) {
  cr_assert_eq(uvt_run(NULL, closing_main, NULL), 0);
  cr_assert_eq(CL.st_eof_line, UV_EPIPE, "write after write_eof");
  cr_assert_str_eq(CL.count_line, "6\n");
  cr_assert_eq(CL.st_busy, UV_EBUSY);
  cr_assert_eq(CL.st_close, 0);
  cr_assert_eq(CL.st_reader, UVT_ECLOSED);
  cr_assert_eq(CL.st_close_again, UVT_ECLOSED);
  cr_assert_eq(CL.st_write_after, UVT_ECLOSED);
  cr_assert_eq(CL.st_drain_after, UVT_ECLOSED);
}

/* Bytes written just before uvt_close still arrive (close flushes). */
static int say_bye(uvt_stream_t *s, void *arg) {
  static char big[256 * 1024];
  (void)arg;
  memset(big, 'b', sizeof big);
  uvt_write(s, big, sizeof big);
  uvt_write(s, "bye\n", 4);
  return uvt_close(s); /* closed early by the handler itself */
}

static struct {
  size_t total;
  bool ends_with_bye;
} BYE;

static int bye_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  char *b = malloc(64 * 1024);
  size_t n;
  char last[4] = {0};
  (void)arg;
  SERVE(say_bye, &srv);
  s = dial();
  uvt_sleep(50); /* let the handler close before we read */
  while (uvt_read(s, b, 64 * 1024, &n) == 0 && n > 0) {
    for (size_t i = 0; i < n; i++) {
      memmove(last, last + 1, 3);
      last[3] = b[i];
    }
    BYE.total += n;
  }
  BYE.ends_with_bye = memcmp(last, "bye\n", 4) == 0;
  free(b);
  cr_expect_eq(uvt_close(s), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, close_sends_what_was_written_first) {
  cr_assert_eq(uvt_run(NULL, bye_main, NULL), 0);
  cr_assert_eq(BYE.total, 256 * 1024 + 4);
  cr_assert(BYE.ends_with_bye);
}

/* ---- write errors -------------------------------------------------------- */

static int hang_up(uvt_stream_t *s, void *arg) {
  (void)s;
  (void)arg;
  return 0;
}

static int peer_gone_main(void *arg) {
  int *status = arg;
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  char b[1024];
  size_t n;
  SERVE(hang_up, &srv);
  s = dial();
  cr_expect_eq(uvt_read(s, b, sizeof b, &n), 0);
  cr_expect_eq(n, 0, "the server hung up");
  memset(b, 'z', sizeof b);
  /* The first writes may still be accepted by the kernel; the peer's RST
   * then makes a later one fail.  SIGPIPE must not kill us. */
  for (int i = 0; i < 200 && *status == 0; i++) {
    *status = uvt_write(s, b, sizeof b);
    if (*status == 0) *status = uvt_drain(s);
    if (*status == 0) uvt_sleep(5);
  }
  cr_expect_eq(uvt_close(s), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, writing_to_a_closed_peer_fails_with_epipe_or_reset) {
  int status = 0;
  cr_assert_eq(uvt_run(NULL, peer_gone_main, &status), 0);
  cr_assert(status == UV_EPIPE || status == UV_ECONNRESET, "status %d (%s)",
            status, uvt_strerror(status));
}

/* ---- server close: waiting for and cancelling connections ---------------- */

static int wait_for_line(uvt_stream_t *s, void *arg) {
  char line[16];
  size_t len;
  int i = C.handlers_run++;
  (void)arg;
  int err = uvt_readline(s, line, sizeof line, &len);
  if (i < 8) C.handler_status[i] = err;
  C.handlers_ended++;
  return err == UVT_ECANCELED ? err : 0;
}

static struct {
  bool closer_done_with_open_conns;
  bool closer_done_after_one_left;
  int st_close, st_cancelled_close;
  size_t cancelled;
  int ended_before_cancel;
} SC;

static int closer_task(void *arg) {
  return uvt_server_close((uvt_server_t *)arg);
}

static int server_close_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s[3];
  uvt_task_t *t;
  (void)arg;

  /* uvt_server_close waits for connections; cancel_connections ends them. */
  SERVE(wait_for_line, &srv);
  for (int i = 0; i < 3; i++) s[i] = dial();
  for (int k = 0; k < 100 && C.handlers_run < 3; k++) uvt_sleep(5);
  t = uvt_spawn(closer_task, srv);
  uvt_sleep(20);
  SC.closer_done_with_open_conns = uvt_done(t);
  uvt_write(s[0], "bye\n", 4); /* one handler ends on its own */
  for (int k = 0; k < 100 && C.handlers_ended < 1; k++) uvt_sleep(5);
  SC.closer_done_after_one_left = uvt_done(t);
  SC.ended_before_cancel = C.handlers_ended;
  SC.cancelled = uvt_server_cancel_connections(srv);
  SC.st_close = uvt_await(t);
  for (int i = 0; i < 3; i++) uvt_close(s[i]);

  /* Cancelling the closer cancels the connections. */
  C.handlers_run = C.handlers_ended = 0;
  SERVE(wait_for_line, &srv);
  for (int i = 0; i < 2; i++) s[i] = dial();
  for (int k = 0; k < 100 && C.handlers_run < 2; k++) uvt_sleep(5);
  t = uvt_spawn(closer_task, srv);
  uvt_sleep(10);
  uvt_cancel(t);
  SC.st_cancelled_close = uvt_await(t);
  for (int i = 0; i < 2; i++) uvt_close(s[i]);
  return 0;
}

Test(stream, server_close_waits_for_connections) {
  ctx_init();
  cr_assert_eq(uvt_run(NULL, server_close_main, NULL), 0);
  cr_assert_not(SC.closer_done_with_open_conns);
  cr_assert_not(SC.closer_done_after_one_left);
  cr_assert_eq(SC.ended_before_cancel, 1);
  cr_assert_eq(SC.cancelled, 2);
  cr_assert_eq(SC.st_close, 0);
  cr_assert_eq(SC.st_cancelled_close, UVT_ECANCELED);
  cr_assert_eq(C.handlers_ended, 2, "the cancelled close ended both handlers");
  cr_assert_eq(C.handler_status[0], UVT_ECANCELED);
  cr_assert_eq(C.handler_status[1], UVT_ECANCELED);
  ctx_destroy();
}

/* ---- left open at the end of uvt_run ------------------------------------- */

static int leave_open_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  (void)arg;
  SERVE(echo_lines, &srv);
  s = dial();
  uvt_write(s, "unsent?\n", 8);
  (void)s;
  return 0; /* neither the stream nor the server is closed */
}

Test(stream, streams_and_servers_left_open_are_reported_and_freed) {
  FILE *tmp = tmpfile();
  int saved = dup(STDERR_FILENO);
  char text[4096] = {0};
  size_t len;
  fflush(stderr);
  dup2(fileno(tmp), STDERR_FILENO);
  int st = uvt_run(NULL, leave_open_main, NULL);
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  rewind(tmp);
  len = fread(text, 1, sizeof text - 1, tmp);
  text[len] = '\0';
  fclose(tmp);
  fputs(text, stderr);
  cr_assert_eq(st, 0);
  cr_assert_not_null(strstr(text, "stream 'uvt_open_connection' was never closed [unclosed-stream]"));
  cr_assert_not_null(strstr(text, "server 'echo_lines' was never closed [unclosed-stream]"));
  cr_assert_not_null(strstr(text, "test_stream.c:"));
}

/* ---- the handle and the drain high-water mark ------------------------------ */

#define HW_BYTES (32 * MB)

/* Reads nothing until the client says go, then everything. */
static int held_reader(uvt_stream_t *s, void *arg) {
  static char buf[256 * 1024];
  size_t n;
  int err;
  (void)arg;
  if ((err = uvt_event_wait(&C.go)) != 0) return err;
  while ((err = uvt_read(s, buf, sizeof buf, &n)) == 0 && n > 0) C.total += n;
  uvt_event_set(&C.done);
  return err;
}

static struct {
  int peer_port, handle_null, set_null, set_ok;
  int drain_early;      /* the drain under a high mark, before any reading */
  size_t unsent_early;  /* what was still unsent when it returned */
  int drain_all;
  size_t unsent_after;
} HW;

static int high_water_main(void *arg) {
  uvt_server_t *srv = NULL;
  uvt_stream_t *s;
  struct sockaddr_storage sa;
  int len = sizeof sa;
  char *big = malloc(HW_BYTES);
  uvt_task_t *t;
  (void)arg;
  SERVE(held_reader, &srv);
  s = dial();
  /* The libuv handle is the connected TCP socket. */
  if (uv_tcp_getpeername((uv_tcp_t *)uvt_stream_handle(s), (struct sockaddr *)&sa,
                         &len) == 0)
    HW.peer_port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
  HW.handle_null = uvt_stream_handle(NULL) == NULL;
  HW.set_null = uvt_stream_set_high_water(NULL, 1);
  /* Above the mark, drain waits; at or below it, it returns. */
  HW.set_ok = uvt_stream_set_high_water(s, 2 * HW_BYTES);
  memset(big, 'h', HW_BYTES);
  cr_expect_eq(uvt_write(s, big, HW_BYTES), 0);
  t = uvt_spawn(drain_task, s);
  HW.drain_early = uvt_wait_for(t, 5000);
  HW.unsent_early = uvt_stream_write_buffered(s);
  uvt_stream_set_high_water(s, 0); /* now drain waits for everything */
  uvt_event_set(&C.go);
  if (HW.drain_early == UVT_ETIMEDOUT) uvt_await(t);
  HW.drain_all = uvt_drain(s);
  HW.unsent_after = uvt_stream_write_buffered(s);
  cr_expect_eq(uvt_write_eof(s), 0);
  cr_expect_eq(uvt_event_wait(&C.done), 0);
  free(big);
  cr_expect_eq(uvt_close(s), 0);
  cr_expect_eq(uvt_server_close(srv), 0);
  return 0;
}

Test(stream, the_handle_and_the_drain_high_water_mark) {
  ctx_init();
  cr_assert_eq(uvt_run(NULL, high_water_main, NULL), 0);
  cr_expect_eq(HW.peer_port, C.port, "uvt_stream_handle is the connected socket");
  cr_expect(HW.handle_null);
  cr_expect_eq(HW.set_null, UVT_EINVAL);
  cr_expect_eq(HW.set_ok, 0);
  cr_expect_eq(HW.drain_early, 0, "under the high-water mark drain returns "
                                  "though nobody reads");
  cr_expect_gt(HW.unsent_early, 0, "with data still unsent");
  cr_expect_eq(HW.drain_all, 0);
  cr_expect_eq(HW.unsent_after, 0, "mark 0: drain waits until all is sent");
  cr_expect_eq(C.total, (size_t)HW_BYTES);
  ctx_destroy();
}

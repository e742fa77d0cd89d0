/*
 * bench_tracer: what the debug variant costs, in one run.
 *
 * The same workloads run three times, each in a fresh process of this
 * program: with the release library, with the debug library and recording
 * off (ASYNCIODEBUG unset), and with recording on (depth-16 stacks, a
 * temporary database).  The library is chosen by LD_LIBRARY_PATH, as a
 * user would put the debug library in front.
 *
 *   sequential  spawn a trivial task, await it, detach it
 *   gathered    spawn 100,000 tasks at once, gather them
 *   ping-pong   two tasks hand the turn to each other with uvt_yield:
 *               the cheapest way a task lets another run; ns per hand-off
 *   echo        bench_echo's uvtask echo server, requests per second
 *
 * Recording runs twice: with the default stacks (libunwind here: this
 * program is built without frame pointers) and with frame-pointer stacks
 * (ASYNCIODEBUG_STACKS=fp).  Then the workloads run again in
 * bench_tracer_fp, the same program built with -fno-omit-frame-pointer,
 * with the release library and with recording on and the default stacks,
 * which are then taken by frame pointers (tracer/fpknown.c); its ratios
 * are to its own release run.
 *
 * Printed: ns per task for each, the ratios to release, the rows written
 * per second by the writer and the statistics shed (findings never are).
 *
 * Usage: bench_tracer [scale]
 *        bench_tracer --worker SCALE [seq|gather|pong]   one variant's
 *        loops in this process (all three, or one), printing the three
 *        figures (1e30 for a loop not run): for profiling
 */
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uvtask.h>
#include "median.h"
#include "spawn_capture.h"


static int trivial(void *arg) {
  (void)arg;
  return 0;
}

static size_t n_seq, n_gather, n_pong;
/* --worker's loops: all three, or one ("seq", "gather", "pong"), so that
 * a profile (callgrind) can take one loop's cost apart from the others'. */
static const char *only;
static bool wanted(const char *loop) { return only == NULL || strcmp(only, loop) == 0; }
static double ns_seq, ns_gather, ns_pong;

static int ponger(void *arg) {
  size_t i;
  (void)arg;
  for (i = 0; i < n_pong; i++)
    if (uvt_yield() != 0) return -1;
  return 0;
}

/* Two tasks yielding to each other: 2 * n_pong hand-offs. */
static double ping_pong(void) {
  uvt_task_t *ts[2];
  uint64_t t0 = uv_hrtime();
  ts[0] = uvt_spawn(ponger, NULL);
  ts[1] = uvt_spawn(ponger, NULL);
  if (ts[0] == NULL || ts[1] == NULL) return 1e30;
  uvt_gather(ts, 2);
  uvt_detach(ts[0]);
  uvt_detach(ts[1]);
  return (double)(uv_hrtime() - t0) / (double)(2 * n_pong);
}

/* Each loop's three rounds run back to back, the gathered loop's last:
 * with recording, its ~100,000 rows a round are still being written (on
 * the same core, when pinned) after its clock stops, and that backlog
 * belongs to it, not to whatever loop would run next.  Interleaved, the
 * loops that followed it paid for it: a recorded ping-pong read 2.2-2.8x
 * release in the full run against 1.34x alone (2026-12-05).  A gathered
 * round still finds the previous round's rows being written. */
static int worker_main(void *arg) {
  size_t i, r;
  uvt_task_t **ts = malloc(n_gather * sizeof(*ts));
  (void)arg;
  if (ts == NULL) return UVT_ENOMEM;
  ns_seq = ns_gather = ns_pong = 1e30;
  for (r = 0; r < 3 && wanted("seq"); r++) {
    uint64_t t0 = uv_hrtime();
    double v;
    for (i = 0; i < n_seq; i++) {
      uvt_task_t *t = uvt_spawn(trivial, NULL);
      uvt_await(t); /* gives the handle up */
    }
    v = (double)(uv_hrtime() - t0) / (double)n_seq;
    if (v < ns_seq) ns_seq = v;
  }
  for (r = 0; r < 3 && wanted("pong"); r++) {
    double v = ping_pong();
    if (v < ns_pong) ns_pong = v;
  }
  for (r = 0; r < 3 && wanted("gather"); r++) {
    uint64_t t0 = uv_hrtime();
    double v;
    for (i = 0; i < n_gather; i++) ts[i] = uvt_spawn(trivial, NULL);
    uvt_gather(ts, n_gather);
    for (i = 0; i < n_gather; i++) uvt_detach(ts[i]);
    v = (double)(uv_hrtime() - t0) / (double)n_gather;
    if (v < ns_gather) ns_gather = v;
  }
  free(ts);
  return 0;
}

static int worker(double scale) {
  n_seq = (size_t)(200000 * scale) + 1;
  n_gather = (size_t)(100000 * scale) + 1;
  n_pong = (size_t)(200000 * scale) + 1;
  if (uvt_run(NULL, worker_main, NULL) != 0) return 1;
  printf("%.1f %.1f %.1f\n", ns_seq, ns_gather, ns_pong);
  return 0;
}

typedef struct {
  const char *label;
  double seq, gather, pong, wall_s;
} result_t;

/* Recording's settings for the worker: spawning 100k tasks in one step is
 * slow on purpose, so no slow-callback findings; and fp stacks or not. */
static const char *const rec_plain[] = {"ASYNCIODEBUG_SLOW_MS=60000", NULL};
static const char *const rec_fp[] = {"ASYNCIODEBUG_SLOW_MS=60000", "ASYNCIODEBUG_STACKS=fp",
                                     NULL};

static int run_variant(const char *self, const char *libdir, const char *db,
                       bool fp, const char *scale, result_t *out) {
  if (self == NULL) return 0; /* bench_tracer_fp is missing: left out */
  char *argv[] = {(char *)self, "--worker", (char *)scale, NULL};
  char buf[256];
  uint64_t t0 = uv_hrtime();
  if (spawn_capture(argv, libdir, db, fp ? rec_fp : rec_plain, 0, buf, sizeof(buf)) != 0)
    return -1;
  out->wall_s = (double)(uv_hrtime() - t0) / 1e9;
  return sscanf(buf, "%lf %lf %lf", &out->seq, &out->gather, &out->pong) == 3 ? 0 : -1;
}

/* The echo workload: bench_echo's uvtask server (50 connections, 5
 * rounds), median requests per second. */
static double run_echo(const char *echo, const char *libdir, const char *db, bool fp) {
  char *argv[] = {(char *)echo, "-r", "5", "-n", "2000", "--only", "uvtask", NULL};
  static char buf[8192];
  double v[16];
  int n = 0;
  const char *p;
  if (spawn_capture(argv, libdir, db, fp ? rec_fp : rec_plain, 0, buf, sizeof(buf)) != 0)
    return -1;
  for (p = buf; (p = strstr(p, "uvtask")) != NULL && n < 16; p += 6) {
    double x = atof(p + 6);
    if (x > 0) v[n++] = x;
  }
  if (n == 0) return -1;
  return median(v, n);
}

static long long db_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  long long v = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

int main(int argc, char **argv) {
  char self[4096], dir[4096], release[4200], debug[4200], db[4200], echo[4200];
  char echo_db[4300];
  double echo_rel, echo_off, echo_on, echo_fp;
  const char *scale = "1";
  result_t r[6] = {{"release", 0, 0, 0, 0}, {"debug, off", 0, 0, 0, 0},
                   {"recording", 0, 0, 0, 0}, {"recording, fp", 0, 0, 0, 0},
                   {"fp build", 0, 0, 0, 0}, {"  recording", 0, 0, 0, 0}};
  char self_fp[4200], db_fpb[4300];
  const char *fpb;
  char db_fp[4300];
  ssize_t len;
  sqlite3 *sdb;
  long long rows, shed, findings;
  char tmpdir[] = "/tmp/bench-tracer-XXXXXX";

  if (argc >= 2 && strcmp(argv[1], "--worker") == 0) {
    only = argc >= 4 ? argv[3] : NULL;
    return worker(argc >= 3 ? atof(argv[2]) : 1.0);
  }
  if (argc >= 2) scale = argv[1];

  len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0) return 1;
  self[len] = '\0';
  strcpy(dir, self);
  *strrchr(dir, '/') = '\0'; /* <build>/bench */
  snprintf(release, sizeof(release), "%s/..", dir);
  snprintf(debug, sizeof(debug), "%s/../debug", dir);
  if (mkdtemp(tmpdir) == NULL) return 1;
  snprintf(db, sizeof(db), "%s/bench.db", tmpdir);
  snprintf(echo_db, sizeof(echo_db), "%s/echo.db", tmpdir);
  snprintf(db_fp, sizeof(db_fp), "%s/bench-fp.db", tmpdir);
  snprintf(echo, sizeof(echo), "%s/bench_echo", dir);
  snprintf(self_fp, sizeof(self_fp), "%s/bench_tracer_fp", dir);
  snprintf(db_fpb, sizeof(db_fpb), "%s/bench-fpb.db", tmpdir);
  fpb = access(self_fp, X_OK) == 0 ? self_fp : NULL;

  if (run_variant(self, release, NULL, false, scale, &r[0]) != 0 ||
      run_variant(self, debug, NULL, false, scale, &r[1]) != 0 ||
      run_variant(self, debug, db, false, scale, &r[2]) != 0 ||
      run_variant(self, debug, db_fp, true, scale, &r[3]) != 0 ||
      run_variant(fpb, release, NULL, false, scale, &r[4]) != 0 ||
      run_variant(fpb, debug, db_fpb, false, scale, &r[5]) != 0) {
    fprintf(stderr, "bench_tracer: a worker failed\n");
    return 1;
  }
  echo_rel = run_echo(echo, release, NULL, false);
  echo_off = run_echo(echo, debug, NULL, false);
  echo_on = run_echo(echo, debug, echo_db, false);
  unlink(echo_db);
  echo_fp = run_echo(echo, debug, echo_db, true);
  unlink(echo_db);
  unlink(db_fp);
  unlink(db_fpb);
  if (sqlite3_open_v2(db, &sdb, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return 1;
  rows = db_int(sdb, "SELECT (SELECT count(*) FROM objects) + (SELECT count(*) "
                     "FROM steps) + (SELECT count(*) FROM site_stats) + "
                     "(SELECT count(*) FROM stacks)");
  shed = db_int(sdb, "SELECT shed FROM sessions");
  findings = db_int(sdb, "SELECT count(*) FROM findings");
  sqlite3_close(sdb);
  unlink(db);
  rmdir(tmpdir);

  printf("bench_tracer (scale %s; best of 3 rounds per variant)\n", scale);
  printf("  %-14s %12s %12s %12s\n", "variant", "sequential", "gathered", "ping-pong");
  for (int i = 0; i < (fpb != NULL ? 6 : 4); i++) {
    const result_t *base = i < 4 ? &r[0] : &r[4];
    printf("  %-14s %9.1f ns %9.1f ns %9.1f ns   (%.2fx / %.2fx / %.2fx release%s)\n",
           r[i].label, r[i].seq, r[i].gather, r[i].pong, r[i].seq / base->seq,
           r[i].gather / base->gather, r[i].pong / base->pong, i < 4 ? "" : ", fp build");
  }
  printf("  rows written: %lld in %.2f s of run (%.0f rows/s); shed: %lld; "
         "findings: %lld (expected 0)\n",
         rows, r[2].wall_s, (double)rows / r[2].wall_s, shed, findings);
  if (echo_rel > 0 && echo_off > 0 && echo_on > 0 && echo_fp > 0)
    printf("  echo (bench_echo's uvtask server, median req/s): release %.0f, "
           "debug off %.0f, recording %.0f, recording fp %.0f "
           "(recording/release %.2f, fp/release %.2f)\n",
           echo_rel, echo_off, echo_on, echo_fp, echo_on / echo_rel, echo_fp / echo_rel);
  else
    printf("  echo: bench_echo failed or is missing\n");
  return 0;
}

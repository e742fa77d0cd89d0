/*
 * bench_report: how long `uvtask report` takes on a big recording.
 *
 * Generates an asynciodebug database with the schema of tracer/schema.h —
 * by default one session with 1,000,000 objects and 100,000 findings over
 * 200 creation sites and the eight finding kinds — then runs
 * `uvtask report` on it (text, then JSON, then HTML) and prints the wall
 * time of each, the best of three runs.  Target: text report <= 3 s.
 *
 * The stacks are real: return addresses captured in this very process
 * (glibc backtrace() at several depths under several functions), with
 * this process's module map and build-ids, so the report symbolises them
 * with libdw as it would a traced program's.
 *
 * It is also the tests' generator (tests/test_report.c): with
 * --generate-only it only writes the file.  Its contents are
 * deterministic, so a test can predict them:
 *   object i (1..N):  a task, except every 10th a coroutine; named
 *                     "obj-<i % 50>"; parent (i - 1) / 8 (none for i = 1);
 *                     created at gen/site_<i % sites>.c:<100 + i % sites>
 *   finding j (0..M-1): kind kinds[j % nkinds]; site s = (j / nkinds) % sites,
 *                     i.e. file gen/site_<s>.c, line 100 + s; object
 *                     1 + (j * 7919) % N; slow-callback duration
 *                     (100 + j % 400) ms
 * so each (kind, site) group holds M / (nkinds * sites) findings when that
 * divides evenly.  With --unknown-kinds N, finding j's kind is
 * "kind-<j % N>" instead: N kinds this uvtask does not know, as a newer
 * tracer or a crafted file may hold (the report once was quadratic in
 * the number of distinct kinds).
 *
 * Usage: bench_report [--objects N] [--findings M] [--sites K]
 *                     [--sessions S] [--kinds K] [--unknown-kinds N] [--out FILE]
 *                     [--generate-only] [--uvtask PATH]
 */
#include <elf.h>
#include <execinfo.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <spawn.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../tracer/schema.h"
#include "../tracer/build_id.h"

extern char **environ;

#define NSTACKS 64
#define MAXDEPTH 24

static const char *const kinds[] = {
    "never-awaited",  "unretrieved-error", "pending-at-exit", "slow-callback",
    "yield-in-critical-section", "wrong-thread", "unclosed-stream", "crash"};

static void *stacks[NSTACKS][MAXDEPTH + 8];
static int stack_n[NSTACKS];

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- real stacks: recursion depth x leaf function ---------------------- */

static __attribute__((noinline)) int leaf_connect(int k) {
  stack_n[k] = backtrace(stacks[k], MAXDEPTH);
  return stack_n[k];
}
static __attribute__((noinline)) int leaf_parse(int k) {
  stack_n[k] = backtrace(stacks[k], MAXDEPTH);
  return stack_n[k] + 1;
}
static __attribute__((noinline)) int leaf_spawn(int k) {
  stack_n[k] = backtrace(stacks[k], MAXDEPTH);
  return stack_n[k] + 2;
}
static __attribute__((noinline)) int leaf_sleep(int k) {
  stack_n[k] = backtrace(stacks[k], MAXDEPTH);
  return stack_n[k] + 3;
}

static __attribute__((noinline)) int descend(int depth, int k) {
  int r;
  if (depth > 0) r = descend(depth - 1, k);
  else {
    switch (k % 4) {
    case 0: r = leaf_connect(k); break;
    case 1: r = leaf_parse(k); break;
    case 2: r = leaf_spawn(k); break;
    default: r = leaf_sleep(k); break;
    }
  }
  __asm__ volatile("" ::: "memory"); /* no tail call: keep the frame */
  return r;
}

static void capture_stacks(void) {
  int k;
  for (k = 0; k < NSTACKS; k++) descend(k / 4, k);
}

/* ---- module map ----------------------------------------------------------- */

typedef struct {
  sqlite3_stmt *st;
  int64_t session;
} modctx_t;

static int module_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  modctx_t *c = arg;
  uint64_t lo = UINT64_MAX, hi = 0;
  char exe[PATH_MAX];
  const char *path = info->dlpi_name;
  char *bid;
  int i;
  (void)size;
  for (i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    if (info->dlpi_addr + ph->p_vaddr < lo) lo = info->dlpi_addr + ph->p_vaddr;
    if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
      hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
  }
  if (hi == 0) return 0;
  if (path == NULL || path[0] == '\0') {
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) return 0;
    exe[n] = '\0';
    path = exe;
  }
  if (strncmp(path, "linux-vdso", 10) == 0) return 0;
  bid = uvt__build_id_hex(info);
  sqlite3_reset(c->st);
  sqlite3_bind_int64(c->st, 1, c->session);
  sqlite3_bind_text(c->st, 2, path, -1, SQLITE_TRANSIENT);
  if (bid != NULL) sqlite3_bind_text(c->st, 3, bid, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(c->st, 3);
  sqlite3_bind_int64(c->st, 4, (int64_t)info->dlpi_addr);
  sqlite3_bind_int64(c->st, 5, (int64_t)lo);
  sqlite3_bind_int64(c->st, 6, (int64_t)hi);
  sqlite3_step(c->st);
  free(bid);
  return 0;
}

/* ---- generation ------------------------------------------------------------- */

typedef struct {
  long objects, findings, sites, sessions, nkinds;
  long unknown_kinds; /* > 0: finding j's kind is "kind-<j % this>" instead */
  const char *out, *uvtask;
  int generate_only;
} opts_t;

static void die(sqlite3 *db, const char *what) {
  fprintf(stderr, "bench_report: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
  exit(1);
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) die(db, sql);
  return st;
}

static void step(sqlite3 *db, sqlite3_stmt *st) {
  if (sqlite3_step(st) != SQLITE_DONE) die(db, "insert");
  sqlite3_reset(st);
}

static void generate(const opts_t *o) {
  sqlite3 *db;
  sqlite3_stmt *ses, *mod, *stk, *obj, *fnd, *stp, *stat;
  char file[64], name[64], msg[256], v[64];
  long s, i;
  int64_t t0 = now_ns() - 60 * 1000000000LL;
  unlink(o->out);
  if (sqlite3_open(o->out, &db) != SQLITE_OK) die(db, o->out);
  sqlite3_exec(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF", NULL, NULL, NULL);
  if (sqlite3_exec(db, uvt_schema_sql, NULL, NULL, NULL) != SQLITE_OK) die(db, "schema");
  snprintf(v, sizeof(v), "PRAGMA user_version=%d", UVT_SCHEMA_VERSION);
  sqlite3_exec(db, v, NULL, NULL, NULL);
  sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  stat = prep(db, "INSERT INTO meta (key, value) VALUES ('format', ?1), ('writer', 'bench_report')");
  sqlite3_bind_text(stat, 1, UVT_SCHEMA_FORMAT, -1, SQLITE_STATIC);
  step(db, stat);
  sqlite3_finalize(stat);
  ses = prep(db, "INSERT INTO sessions (id, pid, ppid, argv, exe, start_ns, end_ns, "
                 "end_reason, exit_status, slow_ms, depth, objects, peak_tasks, findings, "
                 "shed) VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, 'exit', 0, 100, 16, ?7, ?8, ?9, 0)");
  mod = prep(db, "INSERT OR IGNORE INTO modules (session_id, path, build_id, base, lo, hi) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  stk = prep(db, "INSERT INTO stacks (session_id, id, pcs) VALUES (?1, ?2, ?3)");
  obj = prep(db, "INSERT INTO objects (session_id, id, kind, name, file, line, func, "
                 "parent_id, create_stack, created_ns, ended_ns, status, message, fail_file, "
                 "fail_line, fail_stack, steps, busy_ns, max_step_ns) VALUES "
                 "(?1, ?2, ?3, ?4, ?5, ?6, 'gen_func', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                 "?15, 3, 30000, 20000)");
  fnd = prep(db, "INSERT INTO findings (session_id, kind, object_id, file, line, func, "
                 "message, stack, where_file, where_line, where_what, status, duration_ns, "
                 "ts_ns) VALUES (?1, ?2, ?3, ?4, ?5, 'gen_func', ?6, ?7, ?8, ?9, ?10, ?11, "
                 "?12, ?13)");
  stp = prep(db, "INSERT INTO steps (session_id, object_id, start_ns, dur_ns, slow) "
                 "VALUES (?1, ?2, ?3, ?4, ?5)");
  for (s = 1; s <= o->sessions; s++) {
    long lo = (s - 1) * o->objects / o->sessions + 1, hi = s * o->objects / o->sessions;
    long flo = (s - 1) * o->findings / o->sessions, fhi = s * o->findings / o->sessions;
    modctx_t mc = {mod, s};
    int k;
    sqlite3_bind_int64(ses, 1, s);
    sqlite3_bind_int64(ses, 2, 40000 + s);
    sqlite3_bind_text(ses, 3, "./pricefeed --port 7000", -1, SQLITE_STATIC);
    sqlite3_bind_text(ses, 4, "/usr/local/bin/pricefeed", -1, SQLITE_STATIC);
    sqlite3_bind_int64(ses, 5, t0);
    sqlite3_bind_int64(ses, 6, t0 + 41300000000LL);
    sqlite3_bind_int64(ses, 7, hi - lo + 1);
    sqlite3_bind_int64(ses, 8, 312);
    sqlite3_bind_int64(ses, 9, fhi - flo);
    step(db, ses);
    dl_iterate_phdr(module_cb, &mc);
    for (k = 0; k < NSTACKS; k++) {
      unsigned char blob[(MAXDEPTH + 8) * 8];
      int f, b;
      for (f = 0; f < stack_n[k]; f++)
        for (b = 0; b < 8; b++)
          blob[f * 8 + b] = (unsigned char)((uint64_t)(uintptr_t)stacks[k][f] >> (8 * b));
      sqlite3_bind_int64(stk, 1, s);
      sqlite3_bind_int64(stk, 2, k + 1);
      sqlite3_bind_blob(stk, 3, blob, stack_n[k] * 8, SQLITE_TRANSIENT);
      step(db, stk);
    }
    for (i = lo; i <= hi; i++) {
      long site = i % o->sites;
      bool failed = i % 97 == 0;
      snprintf(file, sizeof(file), "gen/site_%ld.c", site);
      snprintf(name, sizeof(name), "obj-%ld", i % 50);
      sqlite3_bind_int64(obj, 1, s);
      sqlite3_bind_int64(obj, 2, i);
      sqlite3_bind_text(obj, 3, i % 10 == 0 ? "coroutine" : "task", -1, SQLITE_STATIC);
      sqlite3_bind_text(obj, 4, name, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(obj, 5, file, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(obj, 6, 100 + site);
      if (i > lo) sqlite3_bind_int64(obj, 7, lo + (i - lo - 1) / 8);
      else sqlite3_bind_null(obj, 7);
      sqlite3_bind_int64(obj, 8, 1 + i % NSTACKS);
      sqlite3_bind_int64(obj, 9, t0 + (i - lo) * 1000);
      sqlite3_bind_int64(obj, 10, t0 + (i - lo) * 1000 + 500000);
      sqlite3_bind_int64(obj, 11, failed ? -104 : 0);
      if (failed) {
        sqlite3_bind_text(obj, 12, "connection reset by peer", -1, SQLITE_STATIC);
        sqlite3_bind_text(obj, 13, file, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(obj, 14, 200 + site);
        sqlite3_bind_int64(obj, 15, 1 + (i + 7) % NSTACKS);
      } else {
        sqlite3_bind_null(obj, 12);
        sqlite3_bind_null(obj, 13);
        sqlite3_bind_null(obj, 14);
        sqlite3_bind_null(obj, 15);
      }
      step(db, obj);
      sqlite3_clear_bindings(obj);
      if (i - lo < 1000) { /* a timeline's worth of steps */
        int k2;
        for (k2 = 0; k2 < 10; k2++) {
          sqlite3_bind_int64(stp, 1, s);
          sqlite3_bind_int64(stp, 2, i);
          sqlite3_bind_int64(stp, 3, t0 + (i - lo) * 1000 + k2 * 40000);
          sqlite3_bind_int64(stp, 4, 20000);
          sqlite3_bind_int64(stp, 5, 0);
          step(db, stp);
        }
      }
    }
    for (i = flo; i < fhi; i++) {
      const char *kind = kinds[i % o->nkinds];
      char odd[32];
      if (o->unknown_kinds > 0) {
        snprintf(odd, sizeof(odd), "kind-%ld", i % o->unknown_kinds);
        kind = odd;
      }
      long site = (i / o->nkinds) % o->sites;
      long oid = lo + (i * 7919) % (hi - lo + 1);
      snprintf(file, sizeof(file), "gen/site_%ld.c", site);
      snprintf(msg, sizeof(msg), "%s of 'obj-%ld' at site %ld", kind, oid % 50, site);
      sqlite3_bind_int64(fnd, 1, s);
      sqlite3_bind_text(fnd, 2, kind, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(fnd, 3, oid);
      sqlite3_bind_text(fnd, 4, file, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(fnd, 5, 100 + site);
      sqlite3_bind_text(fnd, 6, msg, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(fnd, 7, 1 + (i * 31) % NSTACKS);
      if (strcmp(kind, "pending-at-exit") == 0) {
        sqlite3_bind_text(fnd, 8, file, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(fnd, 9, 300 + site);
        sqlite3_bind_text(fnd, 10, "uvt_sleep", -1, SQLITE_STATIC);
      }
      if (strcmp(kind, "unretrieved-error") == 0) sqlite3_bind_int64(fnd, 11, -104);
      if (strcmp(kind, "slow-callback") == 0) {
        int64_t d = (100 + i % 400) * 1000000LL;
        sqlite3_bind_int64(fnd, 12, d);
        sqlite3_bind_int64(stp, 1, s);
        sqlite3_bind_int64(stp, 2, oid);
        sqlite3_bind_int64(stp, 3, t0 + (oid - lo) * 1000);
        sqlite3_bind_int64(stp, 4, d);
        sqlite3_bind_int64(stp, 5, 1);
        step(db, stp);
      }
      sqlite3_bind_int64(fnd, 13, t0 + 40000000000LL);
      step(db, fnd);
      sqlite3_clear_bindings(fnd);
    }
  }
  sqlite3_finalize(ses);
  sqlite3_finalize(mod);
  sqlite3_finalize(stk);
  sqlite3_finalize(obj);
  sqlite3_finalize(fnd);
  sqlite3_finalize(stp);
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) die(db, "commit");
  sqlite3_close(db);
}

/* ---- timing ------------------------------------------------------------------- */

/* Wall seconds of `uvtask report FILE ARGS` with stdout to /dev/null. */
static double time_report(const opts_t *o, const char *const *extra, int *status) {
  char *argv[16];
  int n = 0, st;
  pid_t pid;
  double t;
  posix_spawn_file_actions_t fa;
  argv[n++] = (char *)o->uvtask;
  argv[n++] = "report";
  argv[n++] = (char *)o->out;
  while (*extra != NULL) argv[n++] = (char *)*extra++;
  argv[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  t = mono_s();
  if (posix_spawn(&pid, o->uvtask, &fa, NULL, argv, environ) != 0) {
    perror("bench_report: spawn uvtask");
    exit(1);
  }
  waitpid(pid, &st, 0);
  t = mono_s() - t;
  posix_spawn_file_actions_destroy(&fa);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return t;
}

static void bench(const opts_t *o, const char *label, const char *const *extra) {
  double best = 1e30;
  int r, status = 0;
  for (r = 0; r < 3; r++) {
    double t = time_report(o, extra, &status);
    if (t < best) best = t;
  }
  printf("  %-6s %7.3f s  (exit status %d)\n", label, best, status);
}

int main(int argc, char **argv) {
  opts_t o = {1000000, 100000, 200, 1, 8, 0, NULL, NULL, 0};
  char out[PATH_MAX], uvtask[PATH_MAX], html[PATH_MAX + 8];
  double t;
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--generate-only") == 0) o.generate_only = 1;
    else if (v == NULL) goto usage;
    else if (strcmp(a, "--objects") == 0) o.objects = atol(v), i++;
    else if (strcmp(a, "--findings") == 0) o.findings = atol(v), i++;
    else if (strcmp(a, "--sites") == 0) o.sites = atol(v), i++;
    else if (strcmp(a, "--sessions") == 0) o.sessions = atol(v), i++;
    else if (strcmp(a, "--kinds") == 0) o.nkinds = atol(v), i++;
    else if (strcmp(a, "--unknown-kinds") == 0) o.unknown_kinds = atol(v), i++;
    else if (strcmp(a, "--out") == 0) o.out = v, i++;
    else if (strcmp(a, "--uvtask") == 0) o.uvtask = v, i++;
    else goto usage;
  }
  if (o.objects < 1 || o.findings < 0 || o.sites < 1 || o.sessions < 1 ||
      o.sessions > o.objects || o.nkinds < 1 || o.nkinds > 8 || o.unknown_kinds < 0)
    goto usage;
  if (o.out == NULL) {
    snprintf(out, sizeof(out), "/tmp/bench_report-%d.db", (int)getpid());
    o.out = out;
  }
  if (o.uvtask == NULL) { /* <build>/bench/bench_report -> <build>/uvtask */
    ssize_t n = readlink("/proc/self/exe", uvtask, sizeof(uvtask) - 1);
    char *slash;
    if (n <= 0) goto usage;
    uvtask[n] = '\0';
    if ((slash = strrchr(uvtask, '/')) != NULL) *slash = '\0';
    if ((slash = strrchr(uvtask, '/')) != NULL) *slash = '\0';
    strncat(uvtask, "/uvtask", sizeof(uvtask) - strlen(uvtask) - 1);
    o.uvtask = uvtask;
  }
  capture_stacks();
  t = mono_s();
  generate(&o);
  t = mono_s() - t;
  if (o.generate_only) return 0;
  printf("bench_report: %ld objects, %ld findings, %ld sites, %ld session%s: generated in "
         "%.1f s\n", o.objects, o.findings, o.sites, o.sessions, o.sessions == 1 ? "" : "s", t);
  printf("uvtask report (best of 3):\n");
  {
    static const char *const text[] = {NULL};
    static const char *const json[] = {"--format", "json", NULL};
    const char *htmlargs[] = {"--format", "html", "-o", html, NULL};
    snprintf(html, sizeof(html), "%s.html", o.out);
    bench(&o, "text", text);
    bench(&o, "json", json);
    bench(&o, "html", htmlargs);
    unlink(html);
  }
  unlink(o.out);
  return 0;
usage:
  fprintf(stderr, "usage: bench_report [--objects N] [--findings M] [--sites K] "
                  "[--sessions S] [--kinds 1-8] [--unknown-kinds N] [--out FILE] "
                  "[--generate-only] [--uvtask PATH]\n");
  return 2;
}

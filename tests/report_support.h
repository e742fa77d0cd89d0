/*
 * What the tests of the `uvtask` command share (test_report*.c): a
 * directory per test, running the built command (posix_spawn, never fork)
 * with its output in files, and making databases by hand with the schema
 * of tracer/schema.h.  Include it after criterion.h; each file declares its
 * own TestSuite with .init = make_dir and .fini = remove_dir.
 */
#ifndef UVT_TESTS_REPORT_SUPPORT_H
#define UVT_TESTS_REPORT_SUPPORT_H

#include <criterion/criterion.h>
#include "source_line.h"
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "build_id.h"
#include "schema.h"
#include "uvtask.h"

extern char **environ;

#define UVTASK UVT_BUILD_DIR "/uvtask"
#define GENERATOR UVT_BUILD_DIR "/bench/bench_report"
#define SCENARIO UVT_BUILD_DIR "/tests/tracer_scenario"
#define SCENARIO_SRC UVT_SOURCE_DIR "/tests/progs/tracer_scenario.c"

static char dir[256];
static char *paths[256]; /* from path_in, freed with the directory */
static int npaths;

static inline void make_dir(void) {
  snprintf(dir, sizeof(dir), "/tmp/uvt-report-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static inline void remove_dir(void) {
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
  while (npaths > 0) free(paths[--npaths]);
}


/* A path in the test's directory, valid until the test ends. */
static inline const char *path_in(const char *name) {
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  cr_assert_not_null(p);
  cr_assert_lt(npaths, 256);
  sprintf(p, "%s/%s", dir, name);
  paths[npaths++] = p;
  return p;
}

static inline char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *s;
  long n;
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  s = malloc((size_t)n + 1);
  cr_assert_not_null(s);
  cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
  s[n] = '\0';
  fclose(f);
  if (len != NULL) *len = (size_t)n;
  return s;
}

/* ---- running programs ----------------------------------------------------- */

typedef struct {
  int status; /* exit status, or 128 + signal */
  char *out, *err;
  size_t outlen;
} result_t;

static inline void result_free(result_t *r) {
  free(r->out);
  free(r->err);
}

/* Wait for pid; with a bound (seconds > 0), kill it when the bound
 * passes (then the status says SIGKILL: the caller's check fails). */
static inline int wait_bounded(pid_t pid, int seconds) {
  struct timespec t0, now, pause = {0, 10 * 1000 * 1000};
  int st;
  if (seconds <= 0) {
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    cr_assert_geq(w, 0);
    if (w == pid) return st;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - t0.tv_sec >= seconds) {
      kill(pid, SIGKILL);
      cr_assert_eq(waitpid(pid, &st, 0), pid);
      return st;
    }
    nanosleep(&pause, NULL);
  }
}

/* Run argv (NULL-terminated) with extra environment entries (NULL or a
 * NULL-terminated list "NAME=value"; NAME= alone removes NAME); with
 * seconds > 0, kill it if it has not finished by then. */
static inline result_t run_env_bounded(const char *const *argv,
                                       const char *const *extra_env, int seconds) {
  const char *out = path_in("stdout"), *err = path_in("stderr");
  char *envp[256];
  posix_spawn_file_actions_t fa;
  result_t r;
  pid_t pid;
  int n = 0, i, st;
  for (i = 0; extra_env != NULL && extra_env[i] != NULL; i++)
    if (strchr(extra_env[i], '=')[1] != '\0') envp[n++] = (char *)extra_env[i];
  for (i = 0; environ[i] != NULL && n < 250; i++) {
    int k, skip = strncmp(environ[i], "ASYNCIODEBUG", 12) == 0 ||
                  strncmp(environ[i], "LD_PRELOAD=", 11) == 0 ||
                  strncmp(environ[i], "NO_COLOR=", 9) == 0;
    for (k = 0; extra_env != NULL && extra_env[k] != NULL; k++) {
      size_t len = (size_t)(strchr(extra_env[k], '=') - extra_env[k]) + 1;
      if (strncmp(environ[i], extra_env[k], len) == 0) skip = 1;
    }
    if (!skip) envp[n++] = environ[i];
  }
  envp[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, envp), 0,
               "cannot run %s", argv[0]);
  posix_spawn_file_actions_destroy(&fa);
  st = wait_bounded(pid, seconds);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = read_file(out, &r.outlen);
  r.err = read_file(err, NULL);
  cr_assert_not_null(r.out);
  cr_assert_not_null(r.err);
  return r;
}

static inline result_t run_env(const char *const *argv, const char *const *extra_env) {
  return run_env_bounded(argv, extra_env, 0);
}

static inline result_t run(const char *const *argv) { return run_env(argv, NULL); }

#define UVT(...) run((const char *const[]){UVTASK, __VA_ARGS__, NULL})

static inline int count_of(const char *hay, const char *needle) {
  int n = 0;
  const char *p = hay;
  while ((p = strstr(p, needle)) != NULL) {
    n++;
    p += strlen(needle);
  }
  return n;
}

static inline int lines_of(const char *s) {
  int n = 0;
  for (; *s != '\0'; s++)
    if (*s == '\n') n++;
  return n;
}

static inline void generate(const char *db, const char *objects, const char *findings,
                     const char *sites, const char *kinds) {
  result_t r = run((const char *const[]){GENERATOR, "--generate-only", "--out", db,
                                         "--objects", objects, "--findings", findings,
                                         "--sites", sites, "--kinds", kinds, NULL});
  cr_assert_eq(r.status, 0, "generator failed: %s", r.err);
  result_free(&r);
}

/* ---- making databases by hand ---------------------------------------------- */

/* Run sql with parameters bound from `fmt`: i int64, I int64 bound as
 * NULL when 0, t text, b blob (pointer, int length). */
static inline void q(sqlite3 *db, const char *sql, const char *fmt, ...) {
  sqlite3_stmt *st;
  va_list ap;
  int i, rc;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
               sqlite3_errmsg(db));
  va_start(ap, fmt);
  for (i = 0; fmt[i] != '\0'; i++) {
    switch (fmt[i]) {
    case 'i': sqlite3_bind_int64(st, i + 1, va_arg(ap, long long)); break;
    case 'I': {
      long long v = va_arg(ap, long long);
      if (v != 0) sqlite3_bind_int64(st, i + 1, v);
      break;
    }
    case 't': sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT); break;
    case 'b': {
      const void *p = va_arg(ap, const void *);
      int len = va_arg(ap, int);
      sqlite3_bind_blob(st, i + 1, p, len, SQLITE_TRANSIENT);
      break;
    }
    }
  }
  va_end(ap);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
  }
  cr_assert_eq(rc, SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
  sqlite3_finalize(st);
}

static inline long long q_int(sqlite3 *db, const char *sql, const char *text) {
  sqlite3_stmt *st;
  long long v = -1;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
               sqlite3_errmsg(db));
  if (text != NULL) sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

#define T0 1764000000000000000LL /* 2025-11-24, as session start */

/* A fresh database with the schema and one session (id 1, pid 4242). */
static inline sqlite3 *db_create(const char *path, bool wal) {
  sqlite3 *db;
  char v[64];
  unlink(path);
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  if (wal) cr_assert_eq(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, uvt_schema_sql, NULL, NULL, NULL), SQLITE_OK);
  snprintf(v, sizeof(v), "PRAGMA user_version=%d", UVT_SCHEMA_VERSION);
  cr_assert_eq(sqlite3_exec(db, v, NULL, NULL, NULL), SQLITE_OK);
  q(db, "INSERT INTO meta (key, value) VALUES ('format', ?1), ('writer', 'test')", "t",
    UVT_SCHEMA_FORMAT);
  q(db, "INSERT INTO sessions (id, pid, ppid, argv, exe, start_ns, end_ns, end_reason, "
        "exit_status, slow_ms, depth, objects, peak_tasks, findings) VALUES "
        "(1, 4242, 1, './app --port 7000', '/usr/bin/app', ?1, ?2, 'exit', 0, 100, 16, "
        "3, 2, 0)", "ii", T0, T0 + 1500000000LL);
  return db;
}

static inline void add_object(sqlite3 *db, long long session, long long id, const char *kind,
                       const char *name, const char *file, int line, long long parent) {
  q(db, "INSERT INTO objects (session_id, id, kind, name, file, line, func, parent_id, "
        "created_ns, ended_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'f', ?7, ?8, ?9)",
    "iitttiIii", session, id, kind, name, file, (long long)line,
    parent, T0 + id * 1000000, T0 + id * 1000000 + 500000);
}

static inline void add_finding(sqlite3 *db, long long session, const char *kind, long long object,
                        const char *file, int line, const char *message) {
  q(db, "INSERT INTO findings (session_id, kind, object_id, file, line, func, message, "
        "ts_ns) VALUES (?1, ?2, ?3, ?4, ?5, 'f', ?6, ?7)",
    "itItiti", session, kind, object, file, (long long)line, message, T0 + 1000);
}


static inline void expect_refused(const char *path, const char *reason) {
  result_t r = UVT("report", path);
  cr_expect_eq(r.status, 2, "%s: status %d, stderr %s", path, r.status, r.err);
  cr_expect_eq(lines_of(r.err), 1, "not one line: %s", r.err);
  cr_expect_neq(strstr(r.err, reason), NULL, "'%s' not in: %s", reason, r.err);
  cr_expect_neq(strstr(r.err, path), NULL, "the reason does not name the file: %s", r.err);
  cr_expect_eq(r.outlen, 0, "wrote a report anyway: %s", r.out);
  result_free(&r);
}

static inline void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(p, 1, n, f), n);
  fclose(f);
}

static inline int marker_line(const char *marker) { return source_line(SCENARIO_SRC, marker); }

/* Under ASan the debug library is instrumented, and libasan must come
 * first: a user of such a build preloads it, and `uvtask run` keeps it in
 * front of the debug library. */
static char asan_preload[4200] = "LD_PRELOAD=";

static inline int find_asan(struct dl_phdr_info *info, size_t size, void *arg) {
  const char *b = info->dlpi_name != NULL ? strrchr(info->dlpi_name, '/') : NULL;
  (void)size, (void)arg;
  if (b != NULL && strncmp(b + 1, "libasan.so", 10) == 0) {
    snprintf(asan_preload, sizeof(asan_preload), "LD_PRELOAD=%s", info->dlpi_name);
    return 1;
  }
  return 0;
}

static inline const char *preload_for_run(void) {
  dl_iterate_phdr(find_asan, NULL);
  return asan_preload;
}

#define RUN(...) \
  run_env((const char *const[]){UVTASK, "run", __VA_ARGS__, NULL}, \
          (const char *const[]){"ASYNCIODEBUG_LOG=0", preload_for_run(), NULL})

/* `uvtask run` puts the debug library in front: none without it. */
#ifdef UVT_TEST_NO_DEBUG_LIB
#define NEEDS_DEBUG_LIB() \
  cr_skip_test("built with -DASYNCIODEBUG=OFF: no debug library to run under")
#else
#define NEEDS_DEBUG_LIB() ((void)0)
#endif

/* ---- this process's module map, for stacks of its own return addresses ---- */

typedef struct {
  sqlite3 *db;
  const char *fake_build_id; /* for this executable, if not NULL */
  const char *fake_path;
} modctx_t;

static inline int module_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  modctx_t *c = arg;
  uint64_t lo = UINT64_MAX, hi = 0;
  char exe[4096];
  const char *path = info->dlpi_name;
  char *bid;
  bool main_program = path == NULL || path[0] == '\0';
  (void)size;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    if (info->dlpi_addr + ph->p_vaddr < lo) lo = info->dlpi_addr + ph->p_vaddr;
    if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
      hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
  }
  if (hi == 0 || (!main_program && strncmp(path, "linux-vdso", 10) == 0)) return 0;
  if (main_program) {
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    cr_assert_gt(n, 0);
    exe[n] = '\0';
    path = c->fake_path != NULL ? c->fake_path : exe;
  }
  bid = uvt__build_id_hex(info);
  q(c->db, "INSERT INTO modules (session_id, path, build_id, base, lo, hi) VALUES "
           "(1, ?1, ?2, ?3, ?4, ?5)", "ttiii", path,
    main_program && c->fake_build_id != NULL ? c->fake_build_id : (bid != NULL ? bid : ""),
    (long long)info->dlpi_addr, (long long)lo, (long long)hi);
  free(bid);
  return 0;
}

/* Session 1's module map: this process's modules (this executable under
 * fake_path and with fake_build_id when they are not NULL), so that a
 * return address of this test symbolises to its own source lines. */
static inline void add_own_modules(sqlite3 *db, const char *fake_build_id,
                                   const char *fake_path) {
  modctx_t c = {db, fake_build_id, fake_path};
  cr_assert_eq(dl_iterate_phdr(module_cb, &c), 0);
}

#endif

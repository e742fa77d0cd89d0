/*
 * End to end over the examples: record each under the debug library, then
 * read the database with the `uvtask` command as a user would.  The exact
 * finding (kind, and the example's own file:line) must appear in the text
 * report and in the JSON one; a fixed twin reports nothing and exits 0;
 * `uvtask run` finds the bug in an example built against the release
 * library, with no rebuild.
 */
#include <criterion/criterion.h>
#include <link.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char dir[256], db_path[512];

static void make_dir(void) {
  snprintf(dir, sizeof(dir), "/tmp/uvt-report-ex-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  snprintf(db_path, sizeof(db_path), "%s/trace.db", dir);
}

static void remove_dir(void) {
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}

TestSuite(report_examples, .init = make_dir, .fini = remove_dir, .timeout = 120);

static int line_of(const char *example, const char *needle) {
  char path[512], buf[512];
  FILE *f;
  int n = 0;
  snprintf(path, sizeof(path), "%s/examples/%s.c", UVT_SOURCE_DIR, example);
  f = fopen(path, "r");
  cr_assert_not_null(f, "%s", path);
  while (fgets(buf, sizeof(buf), f) != NULL) {
    n++;
    if (strstr(buf, needle) != NULL) {
      fclose(f);
      return n;
    }
  }
  fclose(f);
  cr_assert_fail("'%s' not found in %s", needle, path);
  return -1;
}

/* Run argv with extra environment entries; stdout (and stderr if `both`)
 * into `out` (NUL-terminated, at most cap-1 bytes).  Returns the status. */
static int run(char *const argv[], const char *env1, const char *env2,
               char *out, size_t cap, bool both) {
  char *envp[80];
  int n = 0, i, fd[2], status;
  size_t len = 0;
  ssize_t got;
  pid_t pid;
  posix_spawn_file_actions_t fa;
  if (env1 != NULL) envp[n++] = (char *)env1;
  if (env2 != NULL) envp[n++] = (char *)env2;
  envp[n++] = "ASYNCIODEBUG_LOG=0";
  for (i = 0; environ[i] != NULL && n < 78; i++)
    if (strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0 &&
        strncmp(environ[i], "BXFI_", 5) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  cr_assert_eq(pipe(fd), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
  if (both) posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
  else posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, envp), 0, "%s", argv[0]);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  while ((got = read(fd[0], out + len, cap - 1 - len)) > 0) len += (size_t)got;
  out[len] = '\0';
  close(fd[0]);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  return status;
}

static void record(const char *example, bool fixed) {
  char prog[512], env_db[600], env_lib[600], out[1 << 16];
  char *argv[] = {prog, fixed ? "--fixed" : NULL, NULL};
  int status;
  snprintf(prog, sizeof(prog), "%s/examples/%s", UVT_BUILD_DIR, example);
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", db_path);
  snprintf(env_lib, sizeof(env_lib), "LD_LIBRARY_PATH=%s/debug", UVT_BUILD_DIR);
  remove(db_path);
  status = run(argv, env_db, env_lib, out, sizeof(out), false);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %d", example, status);
}

static long long json_int(const char *json, const char *path) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long long v = -1;
  cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT json_extract(?1, ?2)", -1, &st, NULL), SQLITE_OK);
  sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static bool json_str_eq(const char *json, const char *path, const char *want) {
  sqlite3 *db;
  sqlite3_stmt *st;
  bool eq = false;
  cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT json_extract(?1, ?2) = ?3", -1, &st, NULL), SQLITE_OK);
  sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, want, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) eq = sqlite3_column_int(st, 0) == 1;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return eq;
}

/* The buggy run reports `count` of `kind` at the needle's line, in one
 * group, in text and JSON; the fixed run reports nothing. */
static void check(const char *example, const char *kind, const char *needle,
                  long long count) {
  static char out[1 << 20];
  char cmd[512], diag[256], bracket[64];
  char *text_argv[] = {cmd, "report", "--color", "never", db_path, NULL};
  char *json_argv[] = {cmd, "report", "--format", "json", db_path, NULL};
  int line = line_of(example, needle), status;
  snprintf(cmd, sizeof(cmd), "%s/uvtask", UVT_BUILD_DIR);

  record(example, false);
  status = run(text_argv, NULL, NULL, out, sizeof(out), false);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 1, "report exit %d", status);
  snprintf(diag, sizeof(diag), "examples/%s.c:%d: warning: ", example, line);
  snprintf(bracket, sizeof(bracket), "[%s]", kind);
  cr_expect_not_null(strstr(out, diag), "text report lacks '%s':\n%s", diag, out);
  cr_expect_not_null(strstr(out, bracket), "text report lacks %s", bracket);

  status = run(json_argv, NULL, NULL, out, sizeof(out), false);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 1);
  cr_expect_eq(json_int(out, "$.findings[0].count"), count);
  cr_expect(json_str_eq(out, "$.findings[0].kind", kind), "JSON kind");
  cr_expect_eq(json_int(out, "$.findings[0].line"), line);
  {
    sqlite3 *db;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT json_array_length(?1, '$.findings')", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, out, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_int(st, 0), 1, "one group of findings");
    sqlite3_finalize(st);
    sqlite3_close(db);
  }

  record(example, true);
  status = run(text_argv, NULL, NULL, out, sizeof(out), false);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "%s --fixed: report exit %d:\n%s", example, status, out);
}

Test(report_examples, forgot_await) {
  check("forgot_await", "never-awaited", "forgot the await", 1);
}

Test(report_examples, fire_and_forget) {
  check("fire_and_forget", "unretrieved-error", "else uvt_detach(uvt_spawn(redis_set", 1);
}

Test(report_examples, first_completed) {
  check("first_completed", "pending-at-exit", "t[i] = uvt_spawn(fetch", 1);
}

Test(report_examples, slow_callback) {
  check("slow_callback", "slow-callback", "t[1] = uvt_spawn(handler", 1);
}

Test(report_examples, transfer) {
  check("transfer", "yield-in-critical-section", "uvt_sleep(10)", 2);
}

/* Under ASan, libasan must be preloaded ahead of the (instrumented) debug
 * library; `uvtask run` keeps an existing preload in front. */
static char asan_preload[4200];

static int find_asan(struct dl_phdr_info *info, size_t size, void *arg) {
  const char *b = info->dlpi_name != NULL ? strrchr(info->dlpi_name, '/') : NULL;
  (void)size, (void)arg;
  if (b != NULL && strncmp(b + 1, "libasan.so", 10) == 0) {
    snprintf(asan_preload, sizeof(asan_preload), "LD_PRELOAD=%s", info->dlpi_name);
    return 1;
  }
  return 0;
}

/* uvtask run: the example was built against the release library; the
 * command puts the debug one in front and reports the run's finding. */
Test(report_examples, run_finds_the_bug_without_a_rebuild) {
  static char out[1 << 16];
  char cmd[512], prog[512], dbarg[600];
  char *argv[] = {cmd, "run", "--db", dbarg, "--", prog, NULL};
  int status;
  snprintf(cmd, sizeof(cmd), "%s/uvtask", UVT_BUILD_DIR);
  snprintf(prog, sizeof(prog), "%s/examples/forgot_await", UVT_BUILD_DIR);
  snprintf(dbarg, sizeof(dbarg), "%s", db_path);
  dl_iterate_phdr(find_asan, NULL);
  status = run(argv, asan_preload[0] ? asan_preload : NULL, NULL, out,
               sizeof(out), true);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 1, "run exit %d:\n%s", status, out);
  cr_expect_not_null(strstr(out, "[never-awaited]"), "%s", out);
  cr_expect_not_null(strstr(out, "examples/forgot_await.c:"), "%s", out);
}

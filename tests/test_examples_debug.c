/*
 * Every example under the debug library with ASYNCIODEBUG set: the buggy
 * run records exactly its finding, at the example's own source line; the
 * fixed twin records none.  The examples are built against the release
 * library; the debug one is put in front with LD_LIBRARY_PATH.
 */
#include <criterion/criterion.h>
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
  snprintf(dir, sizeof(dir), "/tmp/uvt-examples-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  snprintf(db_path, sizeof(db_path), "%s/trace.db", dir);
}

static void remove_dir(void) {
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}

TestSuite(examples_debug, .init = make_dir, .fini = remove_dir, .timeout = 60);

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

static void run(const char *example, bool fixed) {
  char prog[512], env_db[600], env_lib[600];
  char *argv[] = {prog, fixed ? "--fixed" : NULL, NULL};
  char *envp[80];
  int n = 0, i, status;
  pid_t pid;
  posix_spawn_file_actions_t fa;
  snprintf(prog, sizeof(prog), "%s/examples/%s", UVT_BUILD_DIR, example);
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", db_path);
  snprintf(env_lib, sizeof(env_lib), "LD_LIBRARY_PATH=%s/debug", UVT_BUILD_DIR);
  envp[n++] = env_db;
  envp[n++] = env_lib;
  envp[n++] = "ASYNCIODEBUG_LOG=0";
  for (i = 0; environ[i] != NULL && n < 78; i++)
    if (strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
  cr_assert_eq(posix_spawn(&pid, prog, &fa, NULL, argv, envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s exited %d",
            example, status);
}

static long long q(const char *sql, const char *kind, int line) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long long v = -1;
  cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  if (kind != NULL) sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, line);
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

/* The buggy run: `count` findings, all of `kind`, at the line holding
 * `needle` in the example's source.  The fixed run: none. */
static void check(const char *example, const char *kind, const char *needle,
                  int count) {
  int line = line_of(example, needle);
  run(example, false);
  cr_expect_eq(q("SELECT count(*) FROM findings", NULL, 0), count,
               "%s: unexpected findings", example);
  cr_expect_eq(q("SELECT count(*) FROM findings WHERE kind=?1 AND line=?2 "
                 "AND file LIKE '%examples/%'", kind, line), count,
               "%s: expected %d %s at line %d", example, count, kind, line);
  remove(db_path);
  run(example, true);
  cr_expect_eq(q("SELECT count(*) FROM findings", NULL, 0), 0,
               "%s --fixed recorded findings", example);
  cr_expect_eq(q("SELECT count(*) FROM sessions WHERE end_reason='exit'", NULL, 0), 1);
}

Test(examples_debug, forgot_await) {
  check("forgot_await", "never-awaited", "forgot the await", 1);
}

Test(examples_debug, fire_and_forget) {
  check("fire_and_forget", "unretrieved-error", "else uvt_detach(uvt_spawn(redis_set", 1);
}

Test(examples_debug, first_completed) {
  check("first_completed", "pending-at-exit", "t[i] = uvt_spawn(fetch", 1);
}

Test(examples_debug, slow_callback) {
  check("slow_callback", "slow-callback", "t[1] = uvt_spawn(handler", 1);
}

/* Two transfers run at once, each with its own section: one finding each,
 * at the await that was inserted into the section. */
Test(examples_debug, transfer) {
  check("transfer", "yield-in-critical-section", "uvt_sleep(10)", 2);
}

/* The lock released by a later task has no finding of its own: its effect
 * is in the output (the example's ctest checks it); nothing is recorded. */
Test(examples_debug, lock_release) {
  run("lock_release", false);
  cr_expect_eq(q("SELECT count(*) FROM findings", NULL, 0), 0);
}

/*
 * End to end over the examples: record each under the debug library, then
 * read the database with the `uvtask` command as a user would.  The exact
 * finding (kind, and the example's own file:line) must appear in the text
 * report and in the JSON one; a fixed twin reports nothing and exits 0;
 * `uvtask run` finds the bug in an example built against the release
 * library, with no rebuild.
 */
#include <link.h>
#include <sqlite3.h>

#include "e2e_support.h"

TestSuite(report_examples, .init = e2e_make_dir, .fini = e2e_remove_dir,
          .timeout = 120);

static void record(const char *example, bool fixed) {
  char prog[512];
  snprintf(prog, sizeof(prog), "%s/examples/%s", UVT_BUILD_DIR, example);
  remove(e2e_db);
  e2e_record(prog, fixed ? "--fixed" : NULL);
}

/* The report command's output (stdout, or both streams). */
static char *report(char *const argv[], const char *env, bool both, int *status) {
  return e2e_run(argv, env, NULL, both, status);
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
  char *out;
  char cmd[512], diag[256], bracket[64];
  char *text_argv[] = {cmd, "report", "--color", "never", e2e_db, NULL};
  char *json_argv[] = {cmd, "report", "--format", "json", e2e_db, NULL};
  int line = e2e_line_of(example, needle), status;
  snprintf(cmd, sizeof(cmd), "%s/uvtask", UVT_BUILD_DIR);

  record(example, false);
  out = report(text_argv, NULL, false, &status);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 1, "report exit %d", status);
  snprintf(diag, sizeof(diag), "examples/%s.c:%d: warning: ", example, line);
  snprintf(bracket, sizeof(bracket), "[%s]", kind);
  cr_expect_not_null(strstr(out, diag), "text report lacks '%s':\n%s", diag, out);
  cr_expect_not_null(strstr(out, bracket), "text report lacks %s", bracket);
  free(out);

  out = report(json_argv, NULL, false, &status);
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

  free(out);

  record(example, true);
  out = report(text_argv, NULL, false, &status);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "%s --fixed: report exit %d:\n%s", example, status, out);
  free(out);
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
  char *out;
  char cmd[512], prog[512], dbarg[600];
  char *argv[] = {cmd, "run", "--db", dbarg, "--", prog, NULL};
  int status;
  snprintf(cmd, sizeof(cmd), "%s/uvtask", UVT_BUILD_DIR);
  snprintf(prog, sizeof(prog), "%s/examples/forgot_await", UVT_BUILD_DIR);
  snprintf(dbarg, sizeof(dbarg), "%s", e2e_db);
  dl_iterate_phdr(find_asan, NULL);
  out = report(argv, asan_preload[0] ? asan_preload : NULL, true, &status);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 1, "run exit %d:\n%s", status, out);
  cr_expect_not_null(strstr(out, "[never-awaited]"), "%s", out);
  cr_expect_not_null(strstr(out, "examples/forgot_await.c:"), "%s", out);
  free(out);
}

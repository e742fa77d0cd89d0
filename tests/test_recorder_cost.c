/*
 * What recording costs the program, and whom it bills: run
 * tests/progs/recorder_load (built against the release library) with the
 * debug library in front and recording on, then read the database.
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

#define LOAD UVT_BUILD_DIR "/tests/recorder_load"

static char dir[256], db_path[512];

static void make_dir(void) {
  snprintf(dir, sizeof(dir), "/tmp/uvt-rcost-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  snprintf(db_path, sizeof(db_path), "%s/trace.db", dir);
}

static void remove_dir(void) {
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}

TestSuite(recorder_cost, .init = make_dir, .fini = remove_dir, .timeout = 120);

/* Run argv with recording on into db_path, the debug library in front and
 * the NULL-terminated `extra` environment entries; its wait status. */
static int record(char *const argv[], const char *const *extra) {
  char env_db[600], env_lib[600];
  char *envp[96];
  int n = 0, i, status;
  pid_t pid;
  posix_spawn_file_actions_t fa;
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", db_path);
  snprintf(env_lib, sizeof(env_lib), "LD_LIBRARY_PATH=%s/debug", UVT_BUILD_DIR);
  envp[n++] = env_db;
  envp[n++] = env_lib;
  envp[n++] = "ASYNCIODEBUG_LOG=0";
  for (i = 0; extra != NULL && extra[i] != NULL && n < 16; i++) envp[n++] = (char *)extra[i];
  for (i = 0; environ[i] != NULL && n < 94; i++)
    if (strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0 &&
        strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
        strncmp(environ[i], "BXFI_", 5) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
  cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, envp), 0, "cannot start %s",
               argv[0]);
  posix_spawn_file_actions_destroy(&fa);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  return status;
}

static long long q_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  long long v = -1;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
               sqlite3_errmsg(db));
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* 300,000 live tasks make writing their rows take about 100 ms
 * (a million took 256-577 ms); that work is the recorder's, and must not
 * become a slow-callback finding about whichever task ran next.  The
 * tasks of the load only sleep; main, which spawns them all in one step,
 * may be reported. */
Test(recorder_cost, writing_rows_is_never_billed_to_a_sleeping_task) {
  char *argv[] = {LOAD, "many-live", "300000", NULL};
  const char *extra[] = {"ASYNCIODEBUG_SLOW_MS=50", NULL};
  sqlite3 *db;
  int status = record(argv, extra);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
  cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  /* The run was recorded: every sleeper has its row (alive at a flush). */
  cr_expect_geq(q_int(db, "SELECT count(*) FROM objects WHERE name='sleeper'"), 300000);
  cr_expect_eq(q_int(db, "SELECT count(*) FROM findings f JOIN objects o "
                         "ON o.id=f.object_id WHERE f.kind='slow-callback' AND "
                         "o.name IN ('sleeper','ticker')"), 0,
               "a slow-callback finding names a task that only sleeps");
  sqlite3_close(db);
}

/*
 * The recorder against hostile paths, files and limits (issue 14): what
 * it refuses, what it leaves behind, and that the program always runs.
 * Each test runs tests/progs/tracer_scenario (release build, the debug
 * library in front) and judges its exit status, its stderr and the files.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SCENARIO UVT_BUILD_DIR "/tests/tracer_scenario"
#define SCENARIO_DEBUG UVT_BUILD_DIR "/tests/tracer_scenario_debug"
#define DEBUG_LIB_DIR UVT_BUILD_DIR "/debug"

static char dir[256], db_path[512], err_path[512];

static void make_dir(void) {
  snprintf(dir, sizeof(dir), "/tmp/uvt-safety-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  snprintf(db_path, sizeof(db_path), "%s/trace.db", dir);
  snprintf(err_path, sizeof(err_path), "%s/stderr.log", dir);
}

static void remove_dir(void) {
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}

TestSuite(safety, .init = make_dir, .fini = remove_dir, .timeout = 120);

/* Start `prog scenario` through `sh -c script` (script gets them as "$0"
 * "$1"), with ASYNCIODEBUG=db (none if NULL), `extra` (NAME=VALUE or NULL)
 * and the debug library on the library path; stderr to err_path
 * (truncated). */
static pid_t start_prog(const char *script, const char *prog, const char *scenario,
                        const char *db, const char *extra) {
  char env_db[600], env_lib[600];
  char *argv[] = {"sh", "-c", (char *)script, (char *)prog, (char *)scenario, NULL};
  char *envp[80];
  int n = 0, i;
  posix_spawn_file_actions_t fa;
  pid_t pid;
  if (db != NULL) {
    snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", db);
    envp[n++] = env_db;
  }
  snprintf(env_lib, sizeof(env_lib), "LD_LIBRARY_PATH=%s", DEBUG_LIB_DIR);
  if (extra == NULL || strncmp(extra, "LD_LIBRARY_PATH=", 16) != 0) envp[n++] = env_lib;
  if (extra != NULL) envp[n++] = (char *)extra;
  for (i = 0; environ[i] != NULL && n < 78; i++)
    if (strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
        strncmp(environ[i], "BXFI_", 5) != 0 &&
        strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  cr_assert_eq(posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

static int run_prog(const char *script, const char *prog, const char *scenario,
                    const char *db, const char *extra) {
  int status;
  pid_t pid;
  unlink(err_path);
  pid = start_prog(script, prog, scenario, db, extra);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  return status;
}

static int run(const char *scenario, const char *db) {
  return run_prog("exec \"$0\" \"$1\"", SCENARIO, scenario, db, NULL);
}

/* What the last run printed on stderr (static buffer). */
static const char *stderr_text(void) {
  static char buf[16384];
  FILE *f = fopen(err_path, "r");
  size_t n = 0;
  if (f != NULL) {
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
  }
  buf[n] = '\0';
  return buf;
}

/* Lines the recorder printed (the runtime's own warnings aside). */
static int count_lines(const char *s) {
  int n = 0;
  for (; (s = strstr(s, "asynciodebug:")) != NULL; s++) n++;
  return n;
}

static void expect_exit_0(int status) {
  cr_assert(WIFEXITED(status), "the program died (status %d): %s", status, stderr_text());
  cr_assert_eq(WEXITSTATUS(status), 0, "exit %d: %s", WEXITSTATUS(status), stderr_text());
}

static long long q_int(const char *path, const char *sql) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long long v = -1;
  cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
               sqlite3_errmsg(db));
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static bool exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* ---- item 5: setuid/setgid programs ------------------------------------- */

/* A setgid copy of the scenario (group nogroup, run by root whose gid is
 * 0) runs with AT_SECURE, like any setuid program run by another user. */
Test(safety, setgid_program_records_nothing) {
  char copy[600], cmd[3000];
  int status;
  cr_assert_eq(geteuid(), 0, "needs root (to make a setgid copy)");
  snprintf(copy, sizeof(copy), "%s/setgid_scenario", dir);
  snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chown 0:65534 '%s' && chmod 2755 '%s'",
           SCENARIO_DEBUG, copy, copy, copy);
  cr_assert_eq(system(cmd), 0);
  chmod(dir, 0755);
  status = run_prog("exec \"$0\" \"$1\"", copy, "never-awaited", db_path, NULL);
  expect_exit_0(status);
  cr_expect(!exists(db_path), "a setgid program created the database");
  cr_expect_not_null(strstr(stderr_text(), "AT_SECURE"), "stderr: %s", stderr_text());
  cr_expect_eq(count_lines(stderr_text()), 1, "stderr: %s", stderr_text());
  /* The same copy without the setgid bit records as usual. */
  chmod(copy, 0755);
  expect_exit_0(run_prog("exec \"$0\" \"$1\"", copy, "never-awaited", db_path, NULL));
  cr_expect_eq(q_int(db_path, "SELECT count(*) FROM sessions"), 1);
}

/* ---- item 6: planted files ---------------------------------------------- */

static void plant_valid_db(void) {
  expect_exit_0(run("clean", db_path));
  cr_assert_eq(q_int(db_path, "SELECT count(*) FROM sessions"), 1);
}

Test(safety, refuses_a_database_writable_by_others) {
  plant_valid_db();
  cr_assert_eq(chmod(db_path, 0666), 0);
  expect_exit_0(run("never-awaited", db_path));
  cr_expect_not_null(strstr(stderr_text(), "writable by other users"), "stderr: %s",
                     stderr_text());
  cr_expect_eq(q_int(db_path, "SELECT count(*) FROM sessions"), 1,
               "the planted file was written into");
}

Test(safety, refuses_a_database_of_another_user) {
  plant_valid_db();
  cr_assert_eq(chown(db_path, 65534, 65534), 0);
  expect_exit_0(run("never-awaited", db_path));
  cr_expect_not_null(strstr(stderr_text(), "owned by uid 65534"), "stderr: %s",
                     stderr_text());
  cr_expect_eq(q_int(db_path, "SELECT count(*) FROM sessions"), 1,
               "the planted file was written into");
}

/* ---- item 17: links in the path ----------------------------------------- */

Test(safety, a_symlinked_directory_is_followed) {
  char real[600], link[600], path[700], in_real[700];
  snprintf(real, sizeof(real), "%s/real", dir);
  snprintf(link, sizeof(link), "%s/run", dir);
  snprintf(path, sizeof(path), "%s/trace.db", link);
  snprintf(in_real, sizeof(in_real), "%s/trace.db", real);
  cr_assert_eq(mkdir(real, 0700), 0);
  cr_assert_eq(symlink("real", link), 0);
  expect_exit_0(run("never-awaited", path));
  cr_expect_eq(q_int(in_real, "SELECT count(*) FROM findings"), 1, "stderr: %s",
               stderr_text());
}

Test(safety, a_symlink_as_last_component_is_named_and_nothing_is_left) {
  char target[600], link[600];
  struct stat st;
  snprintf(target, sizeof(target), "%s/victim", dir);
  snprintf(link, sizeof(link), "%s/link.db", dir);
  cr_assert_eq(symlink("victim", link), 0);
  expect_exit_0(run("never-awaited", link));
  cr_expect(!exists(target), "the link's target was created");
  cr_expect_not_null(strstr(stderr_text(), "last component (link.db) is a symlink"),
                     "stderr: %s", stderr_text());
  cr_expect_eq(count_lines(stderr_text()), 1, "stderr: %s", stderr_text());
  cr_assert_eq(lstat(link, &st), 0);
  cr_expect(S_ISLNK(st.st_mode));
}

Test(safety, a_missing_directory_is_named) {
  char path[600];
  snprintf(path, sizeof(path), "%s/no-such-dir/trace.db", dir);
  expect_exit_0(run("never-awaited", path));
  cr_expect_not_null(strstr(stderr_text(), "no-such-dir: No such file"), "stderr: %s",
                     stderr_text());
}

/* ---- item 11: another program's database -------------------------------- */

Test(safety, another_programs_database_is_not_changed) {
  sqlite3 *db;
  char wal[600];
  struct stat before, after;
  cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, "CREATE TABLE invoices(x); INSERT INTO invoices VALUES (1)",
                            NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  cr_assert_eq(stat(db_path, &before), 0);
  expect_exit_0(run("never-awaited", db_path));
  cr_expect_not_null(strstr(stderr_text(), "belongs to another program"), "stderr: %s",
                     stderr_text());
  snprintf(wal, sizeof(wal), "%s-wal", db_path);
  cr_expect(!exists(wal), "a -wal file was made");
  {
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), "delete",
                     "the journal mode was changed");
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  cr_assert_eq(stat(db_path, &after), 0);
  cr_expect_eq(after.st_size, before.st_size);
}

/* ---- item 12: few file descriptors -------------------------------------- */

/* At every limit from 10 to 80 open files the program runs exactly as the
 * release library does (exit 0); recording is either on, or off after one
 * line on stderr; and a database that could not be set up is not left. */
Test(safety, a_low_fd_limit_turns_recording_off_with_one_line) {
  static const int limits[] = {10, 12, 13, 14, 15, 16, 18, 20, 40, 63, 64, 80};
  size_t k;
  for (k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
    int lim = limits[k];
    char script[200];
    int status, release;
    snprintf(script, sizeof(script), "ulimit -n %d && exec \"$0\" \"$1\"", lim);
    release = run_prog(script, SCENARIO, "clean", NULL, "LD_LIBRARY_PATH=" UVT_BUILD_DIR);
    unlink(db_path);
    status = run_prog(script, SCENARIO, "clean", db_path, "ASYNCIODEBUG_LOG=0");
    cr_expect_eq(status, release, "ulimit -n %d: status %d with recording, %d without: %s",
                 lim, status, release, stderr_text());
    if (strstr(stderr_text(), "recording off") != NULL) {
      cr_expect_eq(count_lines(stderr_text()), 1, "ulimit -n %d: %s", lim, stderr_text());
      cr_expect(!exists(db_path), "ulimit -n %d: the refused database was left behind", lim);
    } else {
      cr_expect_eq(count_lines(stderr_text()), 0, "ulimit -n %d: %s", lim, stderr_text());
      cr_expect_eq(q_int(db_path, "SELECT count(*) FROM sessions WHERE end_reason='exit'"), 1,
                   "ulimit -n %d", lim);
    }
  }
}

/* ---- item 14: the deepest stacks ---------------------------------------- */

/* A task parked 100 frames deep with ASYNCIODEBUG_DEPTH at its maximum:
 * the parked stack is unwound into a buffer sized by the same constant
 * (the ASan build catches an overflow). */
Test(safety, a_task_parked_deeper_than_the_maximum_depth) {
  int status = run_prog("exec \"$0\" \"$1\"", SCENARIO, "deep", db_path,
                        "ASYNCIODEBUG_DEPTH=64");
  expect_exit_0(status);
  cr_expect_eq(q_int(db_path, "SELECT count(*) FROM findings WHERE kind='pending-at-exit'"), 1);
  cr_expect_eq(q_int(db_path, "SELECT length(s.pcs) FROM findings f JOIN stacks s "
                              "ON s.id=f.stack AND s.session_id=f.session_id"), 64 * 8);
}

/*
 * The debug tracer end to end: run tests/progs/tracer_scenario.c (built
 * against the release library) with the debug library in front and
 * ASYNCIODEBUG set, then check the database with SQL: exactly the expected
 * findings, pointing at the scenario's own source lines.
 */
#include <criterion/criterion.h>
#include "source_line.h"
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "schema.h"

extern char **environ;

#define SCENARIO UVT_BUILD_DIR "/tests/tracer_scenario"
#define SCENARIO_SRC UVT_SOURCE_DIR "/tests/progs/tracer_scenario.c"
#define DEBUG_LIB_DIR UVT_BUILD_DIR "/debug"

static char dir[256], db_path[512];

static void make_dir(void) {
  snprintf(dir, sizeof(dir), "/tmp/uvt-tracer-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  snprintf(db_path, sizeof(db_path), "%s/trace.db", dir);
}

static void remove_dir(void) {
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}

TestSuite(tracer, .init = make_dir, .fini = remove_dir, .timeout = 60);

/* The line of the scenario's source that carries `marker`. */
static int marker_line(const char *marker) { return source_line(SCENARIO_SRC, marker); }

/* Start the scenario with recording on; `preload` uses LD_PRELOAD (as
 * `uvtask run` does) instead of LD_LIBRARY_PATH. */
static pid_t start(const char *name, const char *db, bool preload, int *out_fd) {
  char env_db[600], env_lib[600];
  char *argv[] = {(char *)SCENARIO, (char *)name, NULL};
  char *envp[64];
  int n = 0, i;
  posix_spawn_file_actions_t fa;
  int pipefd[2];
  pid_t pid;
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", db);
  if (preload)
    snprintf(env_lib, sizeof(env_lib), "LD_PRELOAD=%s/libuvtask.so", DEBUG_LIB_DIR);
  else
    snprintf(env_lib, sizeof(env_lib), "LD_LIBRARY_PATH=%s", DEBUG_LIB_DIR);
  envp[n++] = env_db;
  envp[n++] = env_lib;
  envp[n++] = "ASYNCIODEBUG_LOG=0";
  for (i = 0; environ[i] != NULL && n < 62; i++)
    if (strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
        strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  {
    /* The scenario's stderr (crash reports included) goes to a file: the
     * test judges it by its exit status and its database. */
    static char err_path[600];
    snprintf(err_path, sizeof(err_path), "%s/stderr.log", dir);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  }
  if (out_fd != NULL) {
    cr_assert_eq(pipe(pipefd), 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  }
  cr_assert_eq(posix_spawn(&pid, SCENARIO, &fa, NULL, argv, envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  if (out_fd != NULL) {
    close(pipefd[1]);
    *out_fd = pipefd[0];
  }
  return pid;
}

static int run_scenario(const char *name, bool preload) {
  int status;
#if defined(__SANITIZE_ADDRESS__)
  /* An ASan build's library cannot be preloaded ahead of libasan; the
   * library path puts it in front just as well. */
  preload = false;
#endif
  pid_t pid = start(name, db_path, preload, NULL);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  return status;
}

static sqlite3 *open_db(void) {
  sqlite3 *db;
  cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  return db;
}

static long long q_int(sqlite3 *db, const char *sql, const char *arg) {
  sqlite3_stmt *st;
  long long v = -1;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s",
               sql, sqlite3_errmsg(db));
  if (arg != NULL) sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* The count `sql` returns from the database a live process is writing,
 * polled until it reaches `want` or 10 s have passed: a loaded machine
 * delays the writer's commit, never past this bound.  Returns the last
 * count read (-1: none could be read). */
static long long poll_count(const char *sql, long long want) {
  long long n = -1;
  for (int i = 0; i < 2000 && n < want; i++) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st;
    if (i > 0) usleep(5000);
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
      if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
  }
  return n;
}

/* Exactly one finding in the database, of `kind`, at the marker's line of
 * the scenario's own source; returns its row id. */
static long long expect_only_finding(sqlite3 *db, const char *kind,
                                     const char *marker) {
  cr_expect_eq(q_int(db, "SELECT count(*) FROM findings", NULL), 1,
               "findings other than %s recorded", kind);
  cr_expect_eq(q_int(db, "SELECT count(*) FROM findings WHERE kind=?1", kind), 1);
  cr_expect_eq(q_int(db, "SELECT line FROM findings WHERE kind=?1", kind),
               marker_line(marker));
  cr_expect_eq(q_int(db, "SELECT file LIKE '%tracer_scenario.c' FROM findings "
                         "WHERE kind=?1", kind), 1);
  return q_int(db, "SELECT id FROM findings WHERE kind=?1", kind);
}

static void expect_clean_exit(int status, int code) {
  cr_assert(WIFEXITED(status), "scenario died (status %d)", status);
  cr_assert_eq(WEXITSTATUS(status), code);
}

Test(tracer, file_is_private_and_versioned) {
  struct stat st;
  sqlite3 *db;
  expect_clean_exit(run_scenario("clean", false), 0);
  cr_assert_eq(lstat(db_path, &st), 0);
  cr_expect_eq(st.st_mode & 0777, 0600);
  db = open_db();
  cr_expect_eq(q_int(db, "PRAGMA user_version", NULL), UVT_SCHEMA_VERSION);
  cr_expect_eq(q_int(db, "SELECT count(*) FROM meta WHERE key='format' AND value=?1",
                     UVT_SCHEMA_FORMAT), 1);
  /* The WAL was folded into the main file at exit. */
  cr_expect_eq(q_int(db, "SELECT count(*) FROM sessions WHERE end_reason='exit' "
                         "AND exit_status=0 AND end_ns >= start_ns", NULL), 1);
  sqlite3_close(db);
}

Test(tracer, clean_program_has_no_findings) {
  sqlite3 *db;
  expect_clean_exit(run_scenario("clean", false), 0);
  db = open_db();
  cr_expect_eq(q_int(db, "SELECT count(*) FROM findings", NULL), 0);
  cr_expect_eq(q_int(db, "SELECT objects FROM sessions", NULL) >= 53, 1);
  cr_expect_eq(q_int(db, "SELECT count(*) FROM modules WHERE path LIKE '%tracer_scenario'", NULL), 1);
  sqlite3_close(db);
}

Test(tracer, never_awaited) {
  sqlite3 *db;
  long long id;
  expect_clean_exit(run_scenario("never-awaited", true), 0);
  db = open_db();
  id = expect_only_finding(db, "never-awaited", "@never-awaited");
  (void)id;
  /* The coroutine's row names its creating task and carries a stack. */
  cr_expect_eq(q_int(db, "SELECT count(*) FROM objects o JOIN findings f ON "
                         "f.object_id=o.id WHERE o.kind='coroutine' AND "
                         "o.create_stack IS NOT NULL AND o.parent_id IS NOT NULL", NULL), 1);
  sqlite3_close(db);
}

Test(tracer, unretrieved_error) {
  sqlite3 *db;
  expect_clean_exit(run_scenario("unretrieved-error", false), 0);
  db = open_db();
  expect_only_finding(db, "unretrieved-error", "@unretrieved");
  cr_expect_eq(q_int(db, "SELECT status FROM findings", NULL), -111);
  cr_expect_eq(q_int(db, "SELECT o.fail_line FROM objects o JOIN findings f "
                         "ON f.object_id=o.id", NULL), marker_line("@raised"));
  cr_expect_eq(q_int(db, "SELECT count(*) FROM objects WHERE message='redis is down'", NULL), 1);
  cr_expect_eq(q_int(db, "SELECT stack IS NOT NULL FROM findings", NULL), 1);
  sqlite3_close(db);
}

Test(tracer, pending_at_exit) {
  sqlite3 *db;
  expect_clean_exit(run_scenario("pending-at-exit", false), 0);
  db = open_db();
  expect_only_finding(db, "pending-at-exit", "@pending");
  cr_expect_eq(q_int(db, "SELECT where_line FROM findings", NULL), marker_line("@parked"));
  cr_expect_eq(q_int(db, "SELECT where_what='uvt_sleep' FROM findings", NULL), 1);
  /* Where it is parked: a stack unwound from the suspended task. */
  cr_expect_eq(q_int(db, "SELECT length(s.pcs) >= 16 FROM findings f JOIN stacks s "
                         "ON s.id=f.stack", NULL), 1);
  sqlite3_close(db);
}

/* An object on the uvt_leaks_ignore list: its finding is kept, marked
 * ignored, and not counted in the session (issue 15). */
Test(tracer, an_ignored_object_is_recorded_but_not_counted) {
  sqlite3 *db;
  expect_clean_exit(run_scenario("ignored", false), 0);
  db = open_db();
  cr_expect_eq(q_int(db, "SELECT count(*) FROM findings WHERE kind='pending-at-exit' "
                         "AND ignored=1", NULL), 1);
  cr_expect_eq(q_int(db, "SELECT count(*) FROM findings WHERE ignored=0", NULL), 0);
  cr_expect_eq(q_int(db, "SELECT findings FROM sessions", NULL), 0);
  sqlite3_close(db);
}

Test(tracer, slow_callback) {
  sqlite3 *db;
  expect_clean_exit(run_scenario("slow-callback", false), 0);
  db = open_db();
  expect_only_finding(db, "slow-callback", "@slow");
  cr_expect_eq(q_int(db, "SELECT duration_ns >= 250000000 FROM findings", NULL), 1);
  cr_expect_eq(q_int(db, "SELECT count(*) FROM steps WHERE slow=1", NULL), 1);
  /* Sampled while blocked (in usleep), not where the task ended: the
   * stack holds the blocking libc call and the task's own frame. */
  cr_expect_eq(q_int(db, "SELECT length(s.pcs) >= 32 FROM findings f JOIN stacks s "
                         "ON s.id=f.stack", NULL), 1);
  sqlite3_close(db);
}

Test(tracer, slow_busy_loop_is_sampled_with_a_signal) {
  sqlite3 *db;
  expect_clean_exit(run_scenario("slow-busy", false), 0);
  db = open_db();
  expect_only_finding(db, "slow-callback", "@slow-busy");
  cr_expect_eq(q_int(db, "SELECT duration_ns >= 250000000 FROM findings", NULL), 1);
  cr_expect_eq(q_int(db, "SELECT length(s.pcs) >= 16 FROM findings f JOIN stacks s "
                         "ON s.id=f.stack", NULL), 1);
  sqlite3_close(db);
}

Test(tracer, yield_in_critical_section_once_per_section) {
  sqlite3 *db;
  expect_clean_exit(run_scenario("yield-in-critical-section", false), 0);
  db = open_db();
  cr_expect_eq(q_int(db, "SELECT count(*) FROM findings", NULL), 3);
  cr_expect_eq(q_int(db, "SELECT count(*) FROM findings WHERE "
                         "kind='yield-in-critical-section' AND "
                         "stack IS NOT NULL AND stack2 IS NOT NULL", NULL), 3);
  {
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM findings WHERE line=%d AND where_line=%d",
             marker_line("@await"), marker_line("@section"));
    cr_expect_eq(q_int(db, sql, NULL), 3);
  }
  sqlite3_close(db);
}

/* A call that may yield is flagged inside a section even when it did not
 * suspend: one finding per call, at its line, with the section's. */
Test(tracer, a_call_that_may_yield_is_recorded_at_its_line) {
  static const char *const markers[] = {"@yp-lock", "@yp-queue", "@yp-done",
                                        "@yp-sleep0"};
  sqlite3 *db;
  size_t i;
  expect_clean_exit(run_scenario("yield-points", false), 0);
  db = open_db();
  cr_expect_eq(q_int(db, "SELECT count(*) FROM findings", NULL), 4);
  for (i = 0; i < 4; i++) {
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM findings WHERE "
             "kind='yield-in-critical-section' AND line=%d AND where_line=%d "
             "AND stack IS NOT NULL AND stack2 IS NOT NULL",
             marker_line(markers[i]), marker_line(markers[i]) - 1);
    cr_expect_eq(q_int(db, sql, NULL), 1, "%s", markers[i]);
  }
  sqlite3_close(db);
}

Test(tracer, wrong_thread) {
  sqlite3 *db;
  expect_clean_exit(run_scenario("wrong-thread", false), 0);
  db = open_db();
  expect_only_finding(db, "wrong-thread", "@wrong-thread");
  /* `where` is the offending call, as for an await... */
  cr_expect_eq(q_int(db, "SELECT where_line FROM findings", NULL),
               marker_line("@wrong-thread"));
  cr_expect_eq(q_int(db, "SELECT where_what='uvt_cancel' FROM findings", NULL), 1);
  /* ...and the object it was called on keeps its row (it ended young,
   * which alone would leave it to the statistics), with its creation
   * site and stack, for the report's "created at". */
  {
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM findings f JOIN objects o ON o.id=f.object_id "
             "WHERE o.line=%d AND o.create_stack IN (SELECT id FROM stacks)",
             marker_line("@victim"));
    cr_expect_eq(q_int(db, sql, NULL), 1);
  }
  sqlite3_close(db);
}

Test(tracer, session_carries_the_test_name) {
  sqlite3 *db;
  expect_clean_exit(run_scenario("named", false), 0);
  db = open_db();
  expect_only_finding(db, "never-awaited", "@named");
  cr_expect_eq(q_int(db, "SELECT count(*) FROM sessions WHERE "
                         "test_name='cache::refresh_survives_reset'", NULL), 1);
  sqlite3_close(db);
}

Test(tracer, unclosed_server) {
  sqlite3 *db;
  expect_clean_exit(run_scenario("unclosed-stream", false), 0);
  db = open_db();
  expect_only_finding(db, "unclosed-stream", "@server");
  sqlite3_close(db);
}

Test(tracer, loops_on_two_threads_are_traced_at_once) {
  sqlite3 *db;
  char sql[256];
  expect_clean_exit(run_scenario("threads", false), 0);
  db = open_db();
  snprintf(sql, sizeof(sql), "SELECT count(DISTINCT object_id) FROM findings WHERE "
           "kind='never-awaited' AND line=%d", marker_line("@thread-leak"));
  cr_expect_eq(q_int(db, sql, NULL), 2);
  cr_expect_eq(q_int(db, "SELECT count(*) FROM findings", NULL), 2);
  sqlite3_close(db);
}

Test(tracer, sigterm_ends_the_session) {
  sqlite3 *db;
  char buf[16];
  int fd, status;
  pid_t pid = start("wait-forever", db_path, false, &fd);
  cr_assert_gt(read(fd, buf, sizeof(buf)), 0);
  close(fd);
  kill(pid, SIGTERM);
  waitpid(pid, &status, 0);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  db = open_db();
  cr_expect_eq(q_int(db, "SELECT count(*) FROM sessions WHERE end_reason='signal' "
                         "AND signal=15 AND end_ns IS NOT NULL", NULL), 1);
  sqlite3_close(db);
}

Test(tracer, stack_overflow_is_recorded) {
  sqlite3 *db;
  int status = run_scenario("overflow", false);
  cr_assert(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0),
            "the overflow must still kill the process");
  db = open_db();
  cr_expect_eq(q_int(db, "SELECT count(*) FROM sessions WHERE end_reason='signal' "
                         "AND signal IN (11, 7) AND crash_task_id IS NOT NULL", NULL), 1);
  sqlite3_close(db);
}

Test(tracer, abort_is_recorded) {
  sqlite3 *db;
  int status = run_scenario("abort", false);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
            "the process must still die of SIGABRT");
  db = open_db();
  cr_expect_eq(q_int(db, "SELECT count(*) FROM sessions WHERE end_reason='signal' "
                         "AND signal=6 AND crash_task_id IS NOT NULL", NULL), 1);
  {
    /* A task created just before the crash, never flushed: its row comes
     * from the crash path, with its creation stack. */
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM objects WHERE line=%d AND "
             "create_stack IN (SELECT id FROM stacks)", marker_line("@live-at-crash"));
    cr_expect_eq(q_int(db, sql, NULL), 1);
  }
  sqlite3_close(db);
}

Test(tracer, segv_is_recorded) {
  sqlite3 *db;
  int status = run_scenario("segv", false);
  /* Killed by the signal, or, under ASan, by ASan's own SEGV report, to
   * which the tracer passes the signal on after recording it. */
  cr_assert((WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) ||
                (WIFEXITED(status) && WEXITSTATUS(status) != 0),
            "the process must still die of the SIGSEGV");
  db = open_db();
  cr_expect_eq(q_int(db, "SELECT count(*) FROM sessions WHERE end_reason='signal' "
                         "AND signal=11", NULL), 1);
  sqlite3_close(db);
}

Test(tracer, exit_inside_a_task_ends_the_session) {
  sqlite3 *db;
  expect_clean_exit(run_scenario("exit-in-task", false), 3);
  db = open_db();
  cr_expect_eq(q_int(db, "SELECT exit_status FROM sessions WHERE end_reason='exit'", NULL), 3);
  expect_only_finding(db, "pending-at-exit", "@pending-exit");
  sqlite3_close(db);
}

Test(tracer, sigkill_keeps_a_sound_file) {
  sqlite3 *db;
  sqlite3_stmt *st;
  char buf[16], sql[256];
  int fd, status;
  long long committed;
  pid_t pid = start("wait-forever", db_path, false, &fd);
  ssize_t got = read(fd, buf, sizeof(buf)); /* "ready": the task exists */
  close(fd);
  /* Kill once the live task's row has been committed (the writer commits
   * every 20 ms, later on a loaded machine): that row is what SIGKILL
   * must not lose. */
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM objects WHERE kind='task' AND line=%d",
           marker_line("@killed"));
  committed = got > 0 ? poll_count(sql, 1) : -1;
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  cr_assert_gt(got, 0, "the scenario never said it was ready");
  cr_assert_eq(committed, 1, "the live task's row was not committed within 10 s");
  db = open_db();
  cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
  cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
  sqlite3_finalize(st);
  /* The session is there, never ended; the committed row survived. */
  cr_expect_eq(q_int(db, "SELECT count(*) FROM sessions WHERE end_ns IS NULL", NULL), 1);
  cr_expect_eq(q_int(db, sql, NULL), 1);
  sqlite3_close(db);
}

Test(tracer, fork_gives_the_child_its_own_session) {
  sqlite3 *db;
  /* The scenario reaps its child before it exits: both sessions are
   * complete once it has. */
  expect_clean_exit(run_scenario("fork", false), 0);
  db = open_db();
  cr_expect_eq(q_int(db, "SELECT count(*) FROM sessions", NULL), 2);
  cr_expect_eq(q_int(db, "SELECT count(*) FROM sessions c JOIN sessions p "
                         "ON c.ppid = p.pid", NULL), 1);
  expect_only_finding(db, "never-awaited", "@parent-only");
  sqlite3_close(db);
}

Test(tracer, several_processes_share_one_file) {
  pid_t pids[4];
  int i, status;
  sqlite3 *db;
  for (i = 0; i < 4; i++) pids[i] = start("never-awaited", db_path, false, NULL);
  for (i = 0; i < 4; i++) {
    waitpid(pids[i], &status, 0);
    expect_clean_exit(status, 0);
  }
  db = open_db();
  cr_expect_eq(q_int(db, "SELECT count(*) FROM sessions", NULL), 4);
  cr_expect_eq(q_int(db, "SELECT count(*) FROM findings WHERE kind='never-awaited'", NULL), 4);
  cr_expect_eq(q_int(db, "SELECT count(DISTINCT session_id) FROM findings", NULL), 4);
  sqlite3_close(db);
}

Test(tracer, refuses_a_symlink_and_a_foreign_file) {
  char link_path[600], other[600];
  sqlite3 *db;
  int fd;
  snprintf(link_path, sizeof(link_path), "%s/link.db", dir);
  snprintf(other, sizeof(other), "%s/victim", dir);
  fd = open(other, O_CREAT | O_WRONLY, 0644);
  cr_assert_geq(fd, 0);
  close(fd);
  cr_assert_eq(symlink(other, link_path), 0);
  {
    int status;
    pid_t pid = start("never-awaited", link_path, false, NULL);
    waitpid(pid, &status, 0);
    expect_clean_exit(status, 0); /* the program runs; recording is off */
  }
  {
    struct stat st;
    cr_assert_eq(stat(other, &st), 0);
    cr_expect_eq(st.st_size, 0, "the symlink's target was written");
  }
  /* Another program's SQLite database is not written into. */
  cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, "CREATE TABLE invoices(x)", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  {
    int status;
    pid_t pid = start("never-awaited", db_path, false, NULL);
    waitpid(pid, &status, 0);
    expect_clean_exit(status, 0);
  }
  db = open_db();
  cr_expect_eq(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name='sessions'", NULL), 0);
  sqlite3_close(db);
}

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
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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
  /* The full-disk test mounts a small tmpfs here (lazily: a failed
   * assertion can leave a database open in this process). */
  snprintf(cmd, sizeof(cmd), "umount -l '%s/full' 2>/dev/null", dir);
  (void)!system(cmd);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}

TestSuite(safety, .init = make_dir, .fini = remove_dir, .timeout = 120);

/* Start `prog scenario` through `sh -c script` (script gets them as "$0"
 * "$1"), with ASYNCIODEBUG=db (none if NULL), `extra` (NAME=VALUE or NULL)
 * and the debug library on the library path, finding lines off; stderr
 * appended to err_path. */
static pid_t start_prog_out(const char *script, const char *prog, const char *scenario,
                            const char *db, const char *extra, const char *extra2,
                            int *out_fd) {
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
  if (extra2 != NULL) envp[n++] = (char *)extra2;
  if ((extra == NULL || strncmp(extra, "ASYNCIODEBUG_LOG=", 17) != 0) &&
      (extra2 == NULL || strncmp(extra2, "ASYNCIODEBUG_LOG=", 17) != 0))
    envp[n++] = "ASYNCIODEBUG_LOG=0";
  for (i = 0; environ[i] != NULL && n < 78; i++)
    if (strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
        strncmp(environ[i], "BXFI_", 5) != 0 &&
        strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  if (out_fd != NULL) {
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    *out_fd = p[0];
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    cr_assert_eq(posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, envp), 0);
    close(p[1]);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    cr_assert_eq(posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, envp), 0);
  }
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

static pid_t start_prog(const char *script, const char *prog, const char *scenario,
                        const char *db, const char *extra) {
  return start_prog_out(script, prog, scenario, db, extra, NULL, NULL);
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

/* The writer's start failing after the database opened (no pipe, no
 * thread: the system's limits, made to fail once by a preload): the
 * program runs as with the release library, one line says why recording
 * is off, and no session is left that began and never ended, which a
 * report would show as a crash. */
Test(safety, a_writer_that_cannot_start_says_so_and_leaves_no_session) {
  static const struct {
    const char *call, *says;
  } cases[] = {{"pipe2", "cannot create the writer's pipes"},
               {"pthread_create", "cannot start the writer thread"}};
  size_t k;
  for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    char script[600];
    int status;
    snprintf(script, sizeof(script),
             "LD_PRELOAD=%s UVT_FAIL_CALL=%s "
             "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0\" "
             "exec \"$0\" \"$1\"",
             UVT_BUILD_DIR "/tests/libfail_call.so", cases[k].call);
    unlink(db_path);
    status = run_prog(script, SCENARIO, "clean", db_path, "ASYNCIODEBUG_LOG=0");
    expect_exit_0(status);
    cr_expect(strstr(stderr_text(), cases[k].says) != NULL, "%s failing: %s", cases[k].call,
              stderr_text());
    cr_expect(strstr(stderr_text(), "recording off") != NULL, "%s", stderr_text());
    cr_expect_eq(count_lines(stderr_text()), 1, "%s failing: %s", cases[k].call,
                 stderr_text());
    if (exists(db_path))
      cr_expect_eq(q_int(db_path, "SELECT count(*) FROM sessions"), 0,
                   "%s failing: a session was left", cases[k].call);
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

/* ---- Phase B: the writer under contention and faults --------------------- */

/* The status of `pid` once it ends, or -1 if it is still running after
 * `bound_ms` (a hang: it is then killed).  The bound only detects a hang;
 * nothing here depends on how long the program takes. */
static int wait_bounded(pid_t pid, int bound_ms) {
  int status, waited = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (waited >= bound_ms) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    usleep(10 * 1000);
    waited += 10;
  }
  return status;
}

static void wait_ready(int fd) {
  char buf[16];
  cr_assert_gt(read(fd, buf, sizeof(buf)), 0, "the program never said ready: %s",
               stderr_text());
  close(fd);
}

static void touch(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT, 0600);
  cr_assert_geq(fd, 0);
  close(fd);
}

/* issue 15 item 5: a program that recorded and exited leaves the .db
 * alone, the WAL folded in: copying the file is enough. */
Test(safety, a_finished_recording_leaves_no_wal) {
  char wal[600], shm[600];
  int status;
  pid_t pid = start_prog("exec \"$0\" \"$1\"", SCENARIO, "never-awaited", db_path,
                         "ASYNCIODEBUG_LOG=0");
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  expect_exit_0(status);
  snprintf(wal, sizeof(wal), "%s-wal", db_path);
  snprintf(shm, sizeof(shm), "%s-shm", db_path);
  cr_expect(exists(db_path), "nothing was recorded");
  cr_expect(!exists(wal) && !exists(shm), "-wal/-shm left behind");
}

/* Two processes closing one file at the same instant each saw the other
 * still open, and neither folded the WAL in (CI: 1 round in 40).  Here
 * the other is this test, made to be inside its own close when the
 * program ends: it holds a connection and the close turn (the flock the
 * recorder takes around its close), and lets both go once the program
 * has written its end, closing without a checkpoint as a peer that lost
 * the race does.  The program, closing last, must fold the WAL in. */
Test(safety, processes_closing_together_leave_no_wal) {
  char wal[600], shm[600];
  sqlite3 *peer;
  int fd, status, i;
  pid_t pid;
  snprintf(wal, sizeof(wal), "%s-wal", db_path);
  snprintf(shm, sizeof(shm), "%s-shm", db_path);
  /* A first run makes the file (in WAL mode). */
  pid = start_prog("exec \"$0\" \"$1\"", SCENARIO, "never-awaited", db_path, NULL);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  expect_exit_0(status);
  cr_assert_eq(sqlite3_open_v2(db_path, &peer, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_db_config(peer, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL),
               SQLITE_OK);
  sqlite3_busy_timeout(peer, 10000);
  cr_assert_eq(sqlite3_exec(peer, "SELECT count(*) FROM sessions", NULL, NULL, NULL),
               SQLITE_OK);
  fd = open(db_path, O_RDONLY | O_CLOEXEC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(flock(fd, LOCK_EX), 0);
  pid = start_prog("exec \"$0\" \"$1\"", SCENARIO, "never-awaited", db_path, NULL);
  /* The program's end record is committed just before its close. */
  for (i = 0; i < 30000; i++) {
    sqlite3_stmt *st;
    int ended = 0;
    if (sqlite3_prepare_v2(peer, "SELECT count(*) FROM sessions WHERE end_reason='exit'",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      ended = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (ended == 2) break;
    usleep(1000);
  }
  cr_assert_lt(i, 30000, "the program never wrote its end: %s", stderr_text());
  /* Give the program the time to close while we are still open (as it
   * did before closes took turns: then it ends here, leaving the WAL);
   * taking turns, it waits for us (up to a second), so let it go well
   * before that. */
  for (i = 0; i < 300 && waitpid(pid, &status, WNOHANG) == 0; i++) usleep(1000);
  cr_assert_eq(sqlite3_close(peer), SQLITE_OK);
  close(fd);
  if (i == 300) cr_assert_eq(waitpid(pid, &status, 0), pid);
  expect_exit_0(status);
  cr_expect(!exists(wal) && !exists(shm), "-wal/-shm left behind");
  cr_expect_eq(q_int(db_path, "SELECT count(*) FROM sessions WHERE end_reason='exit'"), 2);
}

/* item 7: four processes started together on one new file, round after
 * round: every process has its session, its finding and its object row. */
Test(safety, processes_starting_together_all_record) {
  enum { ROUNDS = 40, PROCS = 4 };
  int round, i;
  unlink(err_path);
  for (round = 0; round < ROUNDS; round++) {
    char path[600];
    pid_t pids[PROCS];
    snprintf(path, sizeof(path), "%s/shared-%d.db", dir, round);
    for (i = 0; i < PROCS; i++)
      pids[i] = start_prog("exec \"$0\" \"$1\"", SCENARIO, "never-awaited", path,
                           "ASYNCIODEBUG_LOG=0");
    for (i = 0; i < PROCS; i++) {
      int status;
      cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
      expect_exit_0(status);
    }
    /* Closing at the same instant, they take turns: the last folds the
     * WAL in (processes_closing_together_leave_no_wal). */
    {
      char wal[700];
      snprintf(wal, sizeof(wal), "%s-wal", path);
      cr_expect(!exists(wal), "round %d: -wal left behind", round);
    }
    cr_expect_eq(q_int(path, "SELECT count(*) FROM sessions WHERE end_reason='exit'"), PROCS,
                 "round %d: %s", round, stderr_text());
    cr_expect_eq(q_int(path, "SELECT count(DISTINCT session_id) FROM findings"), PROCS,
                 "round %d: %s", round, stderr_text());
    cr_expect_eq(q_int(path, "SELECT count(DISTINCT f.session_id) FROM findings f JOIN "
                             "objects o ON o.session_id=f.session_id AND o.id=f.object_id"),
                 PROCS, "round %d: %s", round, stderr_text());
  }
  cr_expect_eq(count_lines(stderr_text()), 0, "%s", stderr_text());
}

/* items 2 and 3: another process holds the write lock (as a peer stopped
 * by a debugger or ^Z while committing would) from before the program's
 * findings until after it has ended.  The program still ends, and says
 * that rows were not written. */
/* Starts the burst scenario, which records and then waits for the file
 * `go` (its path written there) before its findings; opens a peer
 * connection to its database in *h. */
static pid_t burst_waiting_for_go(char *go, size_t go_size, sqlite3 **h) {
  char env_go[700];
  int fd;
  pid_t pid;
  snprintf(go, go_size, "%s/go", dir);
  snprintf(env_go, sizeof(env_go), "UVT_GO=%s", go);
  unlink(err_path);
  pid = start_prog_out("exec \"$0\" \"$1\"", SCENARIO, "burst", db_path, env_go,
                       "UVT_BURST=300", &fd);
  wait_ready(fd);
  cr_assert_eq(sqlite3_open_v2(db_path, h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_busy_timeout(*h, 10000);
  return pid;
}

Test(safety, a_peer_holding_the_lock_cannot_hold_up_the_exit) {
  char go[600];
  sqlite3 *h;
  int status;
  pid_t pid = burst_waiting_for_go(go, sizeof(go), &h);
  cr_assert_eq(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK,
               "%s", sqlite3_errmsg(h));
  touch(go);
  status = wait_bounded(pid, 30000);
  sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(h);
  cr_assert_neq(status, -1, "the program never ended while the lock was held");
  expect_exit_0(status);
  cr_expect_not_null(strstr(stderr_text(), "could not be written (the database stayed "
                                           "locked by another process)"),
                     "stderr: %s", stderr_text());
}

/* Peers that keep committing take turns with the program; they do not
 * hold it up the way a stopped one does.  A peer commits back to back (a
 * transaction of 20 ms each, the lock free only for the instant between
 * them) from before the program's findings until 2.5 s after: far past
 * the 1 s an exit waits while nobody commits.  Every row of the program
 * is still written, and its session ends.  (200 processes ending
 * together lost one's last rows now and then under load:
 * hundreds_of_forks_under_load_never_block_a_child.) */
Test(safety, peers_that_keep_committing_cannot_make_the_exit_lose_rows) {
  char go[600];
  struct timespec t0, t;
  sqlite3 *h;
  int status;
  long commits = 0;
  pid_t pid = burst_waiting_for_go(go, sizeof(go), &h);
  cr_assert_eq(sqlite3_exec(h, "CREATE TABLE peer_rows(x)", NULL, NULL, NULL), SQLITE_OK,
               "%s", sqlite3_errmsg(h));
  touch(go);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    cr_assert_eq(sqlite3_exec(h, "BEGIN IMMEDIATE; INSERT INTO peer_rows VALUES (1)",
                              NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    usleep(20000);
    cr_assert_eq(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(h));
    commits++;
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 2500);
  status = wait_bounded(pid, 30000);
  sqlite3_close(h);
  cr_assert_neq(status, -1, "the program never ended");
  expect_exit_0(status);
  cr_expect_null(strstr(stderr_text(), "could not be written"), "after %ld commits of the "
                 "peer, stderr: %s", commits, stderr_text());
  cr_expect_eq(q_int(db_path, "SELECT count(*) FROM sessions WHERE end_reason='exit'"), 1,
               "%s", stderr_text());
}

/* item 4: the disk fills up after the session started.  The program runs
 * on; the rows it could not store are counted in the session row and said
 * on stderr; the session still ends; the report says so and exits 1,
 * never "clean".  With `no_room` the last free bytes are taken (by a peer
 * connection, 1-page commits until one fails) before the program writes:
 * its first failing commit then leaves no room at all for the record of
 * the loss (under load this happened by chance: the program's own commits
 * can end right at the disk's end). */
static void full_disk_run(bool no_room) {
  char full[600], path[700], go[600], env_go[700], fill[700], cmd[2400], out[700];
  int fd, status;
  pid_t pid;
  cr_assert_eq(geteuid(), 0, "needs root (to mount a small tmpfs)");
  snprintf(full, sizeof(full), "%s/full", dir);
  snprintf(path, sizeof(path), "%s/trace.db", full);
  snprintf(fill, sizeof(fill), "%s/fill", full);
  snprintf(go, sizeof(go), "%s/go", dir);
  snprintf(out, sizeof(out), "%s/report.txt", dir);
  snprintf(env_go, sizeof(env_go), "UVT_GO=%s", go);
  cr_assert_eq(mkdir(full, 0700), 0);
  snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=1m,mode=0700 tmpfs '%s'", full);
  cr_assert_eq(system(cmd), 0);
  unlink(err_path);
  pid = start_prog_out("exec \"$0\" \"$1\"", SCENARIO, "burst", path, env_go, NULL, &fd);
  wait_ready(fd);
  snprintf(cmd, sizeof(cmd), "dd if=/dev/zero of='%s' bs=4k 2>/dev/null", fill);
  (void)!system(cmd); /* fails when the disk is full: that is the point */
  if (no_room) {
    /* A peer recording into the same file: its session row, then its
     * counters committed one page at a time.  No checkpoint: it would let
     * the WAL start over. */
    sqlite3 *peer;
    sqlite3_stmt *st;
    int i, rc = SQLITE_DONE;
    cr_assert_eq(sqlite3_open_v2(path, &peer, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(peer, 10000);
    cr_assert_eq(sqlite3_exec(peer, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_exec(peer, "INSERT INTO sessions (pid, ppid, argv, start_ns, end_ns, "
                                    "end_reason, exit_status, slow_ms, depth) VALUES "
                                    "(1, 1, 'peer', 1, 2, 'exit', 0, 100, 16)",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(peer));
    cr_assert_eq(sqlite3_prepare_v2(peer, "UPDATE sessions SET peak_tasks = ?1 WHERE argv = "
                                          "'peer'", -1, &st, NULL), SQLITE_OK);
    /* The last commit, failing, leaves less than a page. */
    for (i = 1; i < 100000 && rc == SQLITE_DONE; i++) {
      sqlite3_bind_int(st, 1, i);
      rc = sqlite3_step(st);
      sqlite3_reset(st);
    }
    cr_assert_eq(rc & 0xff, SQLITE_FULL, "the peer's commits: %s", sqlite3_errstr(rc));
    sqlite3_finalize(st);
    cr_assert_eq(sqlite3_close(peer), SQLITE_OK);
  }
  touch(go);
  status = wait_bounded(pid, 60000);
  cr_assert_neq(status, -1, "the program never ended on a full disk");
  expect_exit_0(status);
  cr_expect_not_null(strstr(stderr_text(), "could not be written (database or disk is full)"),
                     "stderr: %s", stderr_text());
  unlink(fill);
  cr_expect_gt(q_int(path, "SELECT lost FROM sessions WHERE argv != 'peer'"), 0);
  cr_expect_eq(q_int(path, "SELECT count(*) FROM sessions WHERE end_reason IS NULL"), 0,
               "the session has no end");
  snprintf(cmd, sizeof(cmd), "'%s/uvtask' report '%s' > '%s' 2>&1", UVT_BUILD_DIR, path, out);
  status = system(cmd);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 1, "report status %d", status);
  {
    FILE *f = fopen(out, "r");
    char text[8192];
    size_t n = f != NULL ? fread(text, 1, sizeof(text) - 1, f) : 0;
    if (f != NULL) fclose(f);
    text[n] = '\0';
    /* "N rows lost" or "1 row lost" */
    cr_expect_not_null(strstr(text, " lost (not written: the recording is incomplete)"),
                       "report: %s", text);
    cr_expect_null(strstr(text, "killed or lost power"), "report: %s", text);
  }
}

Test(safety, a_full_disk_is_never_reported_as_a_clean_run) { full_disk_run(false); }

Test(safety, a_full_disk_with_no_room_left_still_records_the_loss) { full_disk_run(true); }

/* ---- item 15: control characters on stderr ------------------------------ */

/* No byte a terminal acts on, but newlines, in what the last run printed. */
static void expect_no_control_bytes(const char *who) {
  const unsigned char *p = (const unsigned char *)stderr_text();
  cr_assert_neq(*p, '\0', "%s printed nothing", who);
  for (; *p != '\0'; p++) {
    cr_expect(!((*p < 0x20 && *p != '\n') || *p == 0x7f || (*p == 0xc2 && p[1] >= 0x80 &&
                                                           p[1] <= 0x9f)),
              "%s printed the raw control byte 0x%02x: %s", who, *p, stderr_text());
  }
  cr_expect_not_null(strstr(stderr_text(), "job\\x1b]0;owned\\x07"), "%s: %s", who,
                     stderr_text());
  cr_expect_not_null(strstr(stderr_text(), "disk \\x1b[2Jgone\\x07 \\x9b31m"), "%s: %s", who,
                     stderr_text());
}

/* A task name and a uvt_fail message full of terminal controls: the
 * runtime's own line (release library) and the tracer's (recording) show
 * them escaped. */
Test(safety, stderr_lines_escape_control_characters) {
  expect_exit_0(run_prog("exec \"$0\" \"$1\"", SCENARIO, "hostile-text", NULL,
                         "LD_LIBRARY_PATH=" UVT_BUILD_DIR));
  expect_no_control_bytes("the runtime");
  expect_exit_0(run_prog("exec \"$0\" \"$1\"", SCENARIO, "hostile-text", db_path,
                         "ASYNCIODEBUG_LOG=1"));
  expect_no_control_bytes("the tracer");
  cr_expect_not_null(strstr(stderr_text(), "asynciodebug: 1 finding"), "%s", stderr_text());
}

/* ---- item 1: fork under load -------------------------------------------- */

/* 200 forks from a program whose writer is busy committing: no child may
 * block (the scenario kills and counts any not gone within 5 s), and
 * every child has its own ended session, as the parent has. */
Test(safety, hundreds_of_forks_under_load_never_block_a_child, .timeout = 600) {
  enum { FORKS = 200 };
  char forks[32];
  int fd, status;
  char out[256] = "";
  ssize_t n;
  pid_t pid;
  snprintf(forks, sizeof(forks), "UVT_FORKS=%d", FORKS);
  unlink(err_path);
  pid = start_prog_out("exec \"$0\" \"$1\"", SCENARIO, "fork-storm", db_path, forks, NULL, &fd);
  n = read(fd, out, sizeof(out) - 1);
  close(fd);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  out[n > 0 ? n : 0] = '\0';
  cr_expect_not_null(strstr(out, "hung 0"), "children that never finished: %s", out);
  expect_exit_0(status);
  cr_expect_eq(q_int(db_path, "SELECT count(*) FROM sessions WHERE end_reason='exit'"),
               FORKS + 1, "%s", stderr_text());
  cr_expect_eq(count_lines(stderr_text()), 0, "%s", stderr_text());
}

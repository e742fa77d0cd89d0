/*
 * The `uvtask` command against hostile files, odd runs and unlucky ends
 * (issue 14 items 8, 9, 10, 15, 16, 18 and 4's "never clean"; issue 15's
 * report fixes): each test runs the built command on a file crafted here
 * (tests/report_support.h) or on a run of tests/progs/tracer_scenario, and
 * checks what a user would see — exit status, the one line on stderr, what
 * is left on disk.  Commands that used to hang run under a bound and are
 * killed past it, which fails the test instead of the suite's timeout.
 */
#include <criterion/criterion.h>
#include "report_support.h"

#include <errno.h>
#include <poll.h>

#define DEBUG_LIB_DIR UVT_BUILD_DIR "/debug"
#define HANG_BOUND_S 30 /* far above what any of these takes when it works */

TestSuite(hardening, .init = make_dir, .fini = remove_dir, .timeout = 120);

static bool exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static const char *with_suffix(const char *path, const char *suffix) {
  char name[300];
  const char *base = strrchr(path, '/');
  snprintf(name, sizeof(name), "%s%s", base != NULL ? base + 1 : path, suffix);
  return path_in(name);
}

/* A finished file: one session with an end record, no findings. */
static void clean_db(const char *path) {
  sqlite3 *h = db_create(path, false);
  sqlite3_close(h);
}

static void expect_one_line_refusal(result_t *r, int status, const char *reason) {
  cr_expect_eq(r->status, status, "status %d, stderr: %s", r->status, r->err);
  cr_expect_eq(lines_of(r->err), 1, "not one line: %s", r->err);
  cr_expect_neq(strstr(r->err, reason), NULL, "'%s' not in: %s", reason, r->err);
}

/* ---- item 8: `uvtask run` matches its own sessions ------------------------------------- */

Test(hardening, run_twice_in_one_pid_namespace_shows_only_this_run) {
  const char *db = path_in("ns.db");
  const char *const argv[] = {"/usr/bin/unshare", "--pid", "--fork", UVTASK, "run", "--db", db,
                              "--", SCENARIO, "never-awaited", NULL};
  const char *const env[] = {"ASYNCIODEBUG_LOG=0", preload_for_run(), NULL};
  result_t r;
  NEEDS_DEBUG_LIB();
  r = run_env(argv, env);
  if (r.status != 1 && strstr(r.err, "unshare") != NULL)
    cr_skip_test("no pid namespaces here: %s", r.err);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  result_free(&r);
  /* In a fresh namespace the program is pid 2 both times. */
  r = run_env(argv, env);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_expect_eq(count_of(r.out, "session 2  "), 1, "the first run's session shows: %s", r.out);
  cr_expect_eq(strstr(r.out, "in 2 sessions"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "]  \xc3\x97" "1\n"), NULL, "%s", r.out);
  result_free(&r);
}

/* ---- item 18: --slow-ms, and a program that records nothing --------------------------- */

Test(hardening, run_refuses_a_slow_ms_the_tracer_would_ignore) {
  const char *db = path_in("slow.db");
  result_t r;
  sqlite3 *h;
  NEEDS_DEBUG_LIB();
  r = RUN("--db", db, "--slow-ms", "9999999", "--", SCENARIO, "clean");
  /* A usage error: the reason, then where to read more. */
  cr_expect_eq(r.status, 125, "%s", r.err);
  cr_expect_neq(strstr(r.err, "--slow-ms must be 1 to 3600000"), NULL, "%s", r.err);
  cr_expect(!exists(db), "the program ran anyway");
  result_free(&r);
  r = RUN("--db", db, "--slow-ms", "0", "--", SCENARIO, "clean");
  cr_expect_eq(r.status, 125, "%s", r.err);
  result_free(&r);
  /* The largest the tracer takes is passed through as given. */
  r = RUN("--db", db, "--slow-ms", "3600000", "--", SCENARIO, "clean");
  cr_expect_eq(r.status, 0, "%s", r.err);
  result_free(&r);
  cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
  cr_expect_eq(q_int(h, "SELECT slow_ms FROM sessions", NULL), 3600000);
  sqlite3_close(h);
}

Test(hardening, run_of_a_program_without_uvtask_says_it_recorded_nothing) {
  const char *db = path_in("true.db");
  result_t r;
  NEEDS_DEBUG_LIB();
  r = RUN("--db", db, "--", "/bin/true");
  expect_one_line_refusal(&r, 2, "recorded nothing");
  cr_expect_neq(strstr(r.err, "/bin/true"), NULL, "%s", r.err);
  cr_expect_neq(strstr(r.err, "libuvtask"), NULL, "%s", r.err);
  result_free(&r);
}

/* ---- item 10: where the output goes ------------------------------------------------- */

Test(hardening, an_output_that_is_an_input_is_refused) {
  const char *db = path_in("rec.db"), *link = path_in("link.json");
  char *before, *after;
  size_t n0, n1;
  result_t r;
  clean_db(db);
  before = read_file(db, &n0);
  cr_assert_eq(symlink(db, link), 0);
  r = UVT("report", "-o", db, db);
  expect_one_line_refusal(&r, 2, "is the input");
  result_free(&r);
  r = UVT("report", "--format", "json", "-o", link, db);
  expect_one_line_refusal(&r, 2, "is the input");
  result_free(&r);
  r = UVT("export", "--chrome-trace", db, db);
  expect_one_line_refusal(&r, 2, "is the input");
  result_free(&r);
  after = read_file(db, &n1);
  cr_expect(n0 == n1 && memcmp(before, after, n0) == 0, "the recording was overwritten");
  free(before);
  free(after);
  r = UVT("report", db);
  cr_expect_eq(r.status, 0, "%s", r.err);
  result_free(&r);
}

Test(hardening, run_refuses_an_output_that_is_its_database) {
  const char *db = path_in("rec.db");
  result_t r;
  NEEDS_DEBUG_LIB();
  clean_db(db);
  r = RUN("--db", db, "-o", db, "--", SCENARIO, "clean");
  expect_one_line_refusal(&r, 125, "is the input");
  result_free(&r);
  r = UVT("report", db);
  cr_expect_eq(r.status, 0, "%s", r.err);
  result_free(&r);
}

Test(hardening, a_link_planted_beside_the_output_is_not_followed) {
  const char *db = path_in("rec.db"), *victim = path_in("victim");
  const char *out = path_in("report.txt"), *trace = path_in("trace.json");
  char *v;
  result_t r;
  clean_db(db);
  write_bytes(victim, "precious\n", 9);
  cr_assert_eq(symlink(victim, with_suffix(out, ".tmp")), 0);
  cr_assert_eq(symlink(victim, with_suffix(trace, ".tmp")), 0);
  r = UVT("report", "-o", out, db);
  cr_expect_eq(r.status, 0, "%s", r.err);
  result_free(&r);
  r = UVT("export", "--chrome-trace", trace, db);
  cr_expect_eq(r.status, 0, "%s", r.err);
  result_free(&r);
  v = read_file(victim, NULL);
  cr_expect_str_eq(v, "precious\n");
  free(v);
  v = read_file(out, NULL);
  cr_assert_not_null(v);
  cr_expect_neq(strstr(v, "no findings"), NULL, "%s", v);
  free(v);
  {
    struct stat st;
    cr_expect_eq(lstat(out, &st), 0);
    cr_expect(S_ISREG(st.st_mode), "the report is not a regular file");
    cr_expect_eq(lstat(trace, &st), 0);
    cr_expect(S_ISREG(st.st_mode), "the trace is not a regular file");
  }
}

/* ---- item 9: files that used to hang the report ------------------------------------ */

Test(hardening, a_module_that_is_a_fifo_does_not_hang_the_report) {
  const char *db = path_in("fifo.db"), *fifo = path_in("libfifo.so");
  const unsigned char pcs[8] = {0x10, 0x20, 0, 0, 0, 0x7f, 0, 0}; /* 0x7f0000002010 */
  sqlite3 *h;
  result_t r;
  cr_assert_eq(mkfifo(fifo, 0600), 0);
  h = db_create(db, false);
  add_object(h, 1, 1, "task", "t", "src/a.c", 10, 0);
  q(h, "INSERT INTO modules (session_id, path, build_id, base, lo, hi) VALUES "
       "(1, ?1, NULL, ?2, ?2, ?3)", "tii", fifo, 0x7f0000000000LL, 0x7f0000100000LL);
  q(h, "INSERT INTO stacks (session_id, id, pcs) VALUES (1, 1, ?1)", "b", pcs, 8);
  q(h, "INSERT INTO findings (session_id, kind, object_id, file, line, message, stack, "
       "where_file, where_line, ts_ns) VALUES (1, 'pending-at-exit', 1, 'src/a.c', 10, "
       "'still pending', 1, 'src/a.c', 12, ?1)", "i", T0);
  sqlite3_close(h);
  r = run_env_bounded((const char *const[]){UVTASK, "report", db, NULL}, NULL, HANG_BOUND_S);
  cr_expect_eq(r.status, 1, "status %d (137: it hung), stderr: %s", r.status, r.err);
  cr_expect_neq(strstr(r.out, "libfifo.so+0x2010"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "not a regular file"), NULL, "%s", r.out);
  result_free(&r);
}

Test(hardening, a_recursive_view_in_place_of_a_table_is_refused) {
  const char *db = path_in("view.db");
  sqlite3 *h = db_create(db, false);
  result_t r;
  q(h, "DROP TABLE findings", "");
  q(h, "CREATE VIEW findings AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
       "FROM n) SELECT i AS id, 1 AS session_id, 'crash' AS kind, NULL AS object_id, "
       "NULL AS file, 0 AS line, NULL AS func, 'x' AS message, NULL AS stack, NULL AS stack2, "
       "NULL AS where_file, NULL AS where_line, NULL AS where_what, NULL AS status, "
       "NULL AS duration_ns, 0 AS ts_ns FROM n", "");
  sqlite3_close(h);
  r = run_env_bounded((const char *const[]){UVTASK, "report", db, NULL}, NULL, HANG_BOUND_S);
  expect_one_line_refusal(&r, 2, "not a table");
  cr_expect_neq(strstr(r.err, db), NULL, "%s", r.err);
  result_free(&r);
  r = run_env_bounded((const char *const[]){UVTASK, "export", "--chrome-trace",
                                            path_in("t.json"), db, NULL},
                      NULL, HANG_BOUND_S);
  expect_one_line_refusal(&r, 2, "not a table");
  result_free(&r);
}

/* ---- item 15: what reaches the terminal --------------------------------------------- */

Test(hardening, error_lines_carry_no_control_characters) {
  const char *db = path_in("evil.db");
  sqlite3 *h = db_create(db, false);
  result_t r;
  q(h, "UPDATE meta SET value = ?1 WHERE key = 'format'", "t",
    "evil\033]0;pwned\007\nsecond line\r");
  sqlite3_close(h);
  r = UVT("report", db);
  expect_one_line_refusal(&r, 2, "another program");
  cr_expect_eq(strchr(r.err, '\033'), NULL, "raw ESC: %s", r.err);
  cr_expect_eq(strchr(r.err, '\007'), NULL, "raw BEL");
  cr_expect_eq(strchr(r.err, '\r'), NULL, "raw CR");
  cr_expect_neq(strstr(r.err, "\\x1b]0;pwned\\x07"), NULL, "%s", r.err);
  result_free(&r);
}

Test(hardening, a_malformed_schema_is_one_escaped_line) {
  const char *db = path_in("schema.db");
  sqlite3 *h = db_create(db, false);
  result_t r;
  q(h, "PRAGMA writable_schema = ON", "");
  q(h, "UPDATE sqlite_master SET sql = ?1 WHERE name = 'findings'", "t",
    "CREATE TABLE findings (x '\nline2\033[31m\nline3\007\n");
  sqlite3_close(h);
  r = UVT("report", db);
  expect_one_line_refusal(&r, 2, "malformed database schema");
  cr_expect_eq(strchr(r.err, '\033'), NULL, "raw ESC: %s", r.err);
  result_free(&r);
}

/* ---- item 16: many distinct kinds ------------------------------------------------------ */

Test(hardening, thousands_of_distinct_kinds_are_each_counted) {
  const char *db = path_in("kinds.db");
  sqlite3 *h = db_create(db, false), *mem;
  result_t r;
  int i;
  q(h, "BEGIN", "");
  for (i = 0; i < 3000; i++) {
    char kind[32];
    snprintf(kind, sizeof(kind), "kind-%d", i);
    add_finding(h, 1, kind, 0, "src/a.c", 1 + i % 7, "odd");
    if (i % 3 == 0) add_finding(h, 1, kind, 0, "src/b.c", 5, "odd");
  }
  q(h, "COMMIT", "");
  sqlite3_close(h);
  r = UVT("report", "--format", "json", db);
  cr_assert_eq(r.status, 1, "%s", r.err);
  cr_assert_eq(sqlite3_open(":memory:", &mem), SQLITE_OK);
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, "
                          "'$.sessions[0].findings_by_kind')", r.out), 3000);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.sessions[0].findings_by_kind.\"kind-2997\"')",
                     r.out), 2);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.sessions[0].findings_by_kind.\"kind-2998\"')",
                     r.out), 1);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.sessions[0].findings')", r.out), 4000);
  sqlite3_close(mem);
  result_free(&r);
}

/* ---- issue 15 item 5: the text report's facts ------------------------------------------- */

Test(hardening, text_raised_at_is_the_line_of_uvt_fail) {
  const char *db = path_in("err.db");
  char want[128];
  const char *at, *eol;
  result_t r;
  NEEDS_DEBUG_LIB();
  r = RUN("--db", db, "--", SCENARIO, "unretrieved-error");
  cr_assert_eq(r.status, 1, "%s", r.err);
  snprintf(want, sizeof(want), "tracer_scenario.c:%d\n", marker_line("@raised"));
  at = strstr(r.out, "    raised at   ");
  cr_assert_not_null(at, "%s", r.out);
  eol = strchr(at, '\n');
  cr_assert_not_null(eol);
  cr_expect(eol + 1 - at >= (long)strlen(want) &&
                strncmp(eol + 1 - strlen(want), want, strlen(want)) == 0,
            "raised at is not %s:\n%s", want, r.out);
  cr_expect_eq(strstr(r.out, "task_entry"), NULL, "%s", r.out);
  result_free(&r);
}

Test(hardening, a_parent_missing_from_the_recording_is_named_and_explained) {
  const char *db = path_in("parent.db");
  sqlite3 *h = db_create(db, false);
  const long long sched1 = 1LL << 40;
  result_t r;
  add_object(h, 1, sched1 + 5, "coroutine", NULL, "src/a.c", 20, sched1 + 2448);
  add_finding(h, 1, "never-awaited", sched1 + 5, "src/a.c", 20, "never awaited");
  sqlite3_close(h);
  r = UVT("report", db);
  cr_assert_eq(r.status, 1, "%s", r.err);
  cr_expect_neq(strstr(r.out, "(object #1:2448: not in the recording: it ended before the "
                              "recorder kept a row for it)"), NULL, "%s", r.out);
  cr_expect_eq(strstr(r.out, "1099511630224"), NULL, "%s", r.out);
  result_free(&r);
}

Test(hardening, a_finished_file_is_read_without_leaving_wal_files) {
  const char *db = path_in("done.db");
  sqlite3 *h = db_create(db, true); /* a WAL-mode file, as the tracer writes */
  result_t r;
  sqlite3_close(h); /* the last connection removes its WAL */
  cr_assert(!exists(with_suffix(db, "-wal")));
  r = UVT("report", db);
  cr_expect_eq(r.status, 0, "%s", r.err);
  result_free(&r);
  r = UVT("report", "--format", "html", "-o", path_in("r.html"), db);
  cr_expect_eq(r.status, 0, "%s", r.err);
  result_free(&r);
  r = UVT("export", "--chrome-trace", path_in("t.json"), db);
  cr_expect_eq(r.status, 0, "%s", r.err);
  result_free(&r);
  cr_expect(!exists(with_suffix(db, "-wal")), "a -wal was left behind");
  cr_expect(!exists(with_suffix(db, "-shm")), "a -shm was left behind");
}

Test(hardening, a_live_file_keeps_its_wal_and_its_writer_goes_on) {
  const char *db = path_in("live.db");
  sqlite3 *h = db_create(db, true);
  result_t r;
  add_finding(h, 1, "never-awaited", 0, "src/a.c", 3, "in the WAL only");
  cr_assert(exists(with_suffix(db, "-wal")));
  r = UVT("report", db);
  cr_expect_eq(r.status, 1, "%s", r.err);
  cr_expect_neq(strstr(r.out, "src/a.c:3: warning: "), NULL, "%s", r.out);
  result_free(&r);
  cr_expect(exists(with_suffix(db, "-wal")), "the writer's WAL was removed");
  add_finding(h, 1, "never-awaited", 0, "src/a.c", 4, "after the report");
  sqlite3_close(h);
}

Test(hardening, export_takes_several_files) {
  const char *a = path_in("a.db"), *b = path_in("b.db"), *out = path_in("t.json");
  sqlite3 *h, *mem;
  result_t r;
  char *trace;
  h = db_create(a, false);
  add_object(h, 1, 1, "task", "in_a", "src/a.c", 1, 0);
  sqlite3_close(h);
  h = db_create(b, false);
  add_object(h, 1, 1, "task", "in_b", "src/b.c", 1, 0);
  add_finding(h, 1, "never-awaited", 1, "src/b.c", 1, "never awaited");
  sqlite3_close(h);
  r = UVT("export", "--chrome-trace", out, a, b);
  cr_assert_eq(r.status, 0, "%s", r.err);
  result_free(&r);
  trace = read_file(out, NULL);
  cr_assert_not_null(trace);
  cr_assert_eq(sqlite3_open(":memory:", &mem), SQLITE_OK);
  cr_assert_eq(q_int(mem, "SELECT json_valid(?1)", trace), 1);
  /* Both files' sessions, as two processes (both are row 1 of their file). */
  cr_expect_eq(q_int(mem, "SELECT count(DISTINCT json_extract(value, '$.pid')) FROM "
                          "json_each(?1, '$.traceEvents') WHERE "
                          "json_extract(value, '$.name') = 'process_name'", trace), 2);
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.traceEvents') WHERE "
                          "json_extract(value, '$.name') = 'thread_name'", trace), 2);
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.traceEvents') WHERE "
                          "json_extract(value, '$.ph') = 'i'", trace), 1);
  sqlite3_close(mem);
  free(trace);
  /* One unreadable input: nothing is written. */
  r = UVT("export", "--chrome-trace", path_in("t2.json"), a, path_in("missing.db"));
  expect_one_line_refusal(&r, 2, "no such file");
  cr_expect(!exists(path_in("t2.json")));
  result_free(&r);
}

/* ---- issue 14 item 4: a session that never ended -------------------------------------------- */

/* Start tracer_scenario wait-forever recording into db; returns once it
 * has said "ready" and its session row is in the file. */
static pid_t start_waiting(const char *db) {
  char env_db[600], env_lib[600];
  char *argv[] = {(char *)SCENARIO, "wait-forever", NULL};
  char *envp[64];
  posix_spawn_file_actions_t fa;
  int n = 0, i, fds[2];
  pid_t pid;
  char buf[16];
  sqlite3 *h;
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", db);
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
  cr_assert_eq(pipe(fds), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  cr_assert_eq(posix_spawn(&pid, SCENARIO, &fa, NULL, argv, envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  cr_assert_gt(read(fds[0], buf, sizeof(buf)), 0); /* "ready" */
  close(fds[0]);
  /* Its session row is committed by the writer thread: poll, bounded. */
  for (i = 0; i < 1000; i++) {
    long long sessions = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
      sqlite3_busy_timeout(h, 1000);
      sessions = q_int(h, "SELECT count(*) FROM sessions", NULL);
    }
    sqlite3_close(h);
    if (sessions == 1) return pid;
    poll(NULL, 0, 10);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  cr_assert_fail("the session row never appeared");
  return -1;
}

Test(hardening, a_session_whose_process_was_killed_is_never_clean) {
  const char *db = path_in("killed.db");
  pid_t pid;
  int st;
  result_t r;
  NEEDS_DEBUG_LIB();
  pid = start_waiting(db);
  r = UVT("report", db);
  cr_expect_eq(r.status, 0, "a live session with no finding: %s", r.err);
  cr_expect_neq(strstr(r.out, ", still running\n"), NULL, "%s", r.out);
  result_free(&r);
  kill(pid, SIGKILL);
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  r = UVT("report", db);
  cr_expect_eq(r.status, 1, "a killed run reported clean: %s", r.out);
  cr_expect_neq(strstr(r.out, "ended without an end record: killed or lost power?"), NULL,
                "%s", r.out);
  result_free(&r);
  r = UVT("report", "--fail-on", "killed", db);
  cr_expect_eq(r.status, 1);
  cr_expect_eq(r.err[0], '\0', "'killed' is a --fail-on word: %s", r.err);
  result_free(&r);
  r = UVT("report", "--fail-on", "crash", db);
  cr_expect_eq(r.status, 0, "--fail-on narrows as for kinds");
  result_free(&r);
  r = UVT("report", "--format", "json", db);
  cr_expect_neq(strstr(r.out, "\"state\":\"killed\""), NULL, "%s", r.out);
  result_free(&r);
}

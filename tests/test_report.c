/*
 * The `uvtask` command (viewer/): report in text, JSON and HTML, export,
 * run, and its answers to bad input.
 *
 * Databases are made here with the schema of tracer/schema.h — by the
 * bench generator (bench/bench_report --generate-only, deterministic: see
 * its header) or row by row with sqlite3 — and the built command is run on
 * them with posix_spawn (never fork in a Criterion test), its standard
 * output and error going to files that the checks read.  JSON is checked
 * with SQLite's own JSON functions (json_valid, json_extract).
 *
 * Symbolisation is checked against this very binary: a noinline function
 * records its own return address, the test records its module map (with
 * build-ids, from dl_iterate_phdr) into the database, and the report must
 * name that function and this file's line of the call.
 *
 * `uvtask run` is checked with tests/progs/tracer_scenario under the real
 * tracer (the debug library of this build).
 */
#include <criterion/criterion.h>
#include "source_line.h"
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "schema.h"
#include "uvtask.h"

extern char **environ;

#include "report_support.h"

TestSuite(report, .init = make_dir, .fini = remove_dir, .timeout = 120);

/* ---- grouping and counts ----------------------------------------------------- */

Test(report, groups_findings_by_kind_and_site_with_counts) {
  const char *db = path_in("gen.db");
  result_t r;
  /* 40 findings, 4 kinds x 5 sites: 20 groups of 2 (see bench_report.c). */
  generate(db, "1000", "40", "5", "4");
  r = UVT("report", db);
  cr_assert_eq(r.status, 1, "stderr: %s", r.err);
  cr_expect_eq(count_of(r.out, ": warning: "), 20);
  cr_expect_eq(count_of(r.out, "]  \xc3\x97" "2\n"), 20, "%s", r.out);
  cr_expect_neq(strstr(r.out, "gen/site_3.c:103: warning: "), NULL);
  cr_expect_neq(strstr(r.out, "[never-awaited]"), NULL);
  cr_expect_neq(strstr(r.out, "[slow-callback]"), NULL);
  cr_expect_neq(strstr(r.out, "40 findings at 20 sites"), NULL);
  cr_expect_neq(strstr(r.out, "1,000 objects created, 312 peak live tasks"), NULL);
  cr_expect_neq(strstr(r.out, "findings: 10 unretrieved-error, 10 pending-at-exit, "
                              "10 never-awaited, 10 slow-callback"), NULL, "%s", r.out);
  cr_expect_eq(r.err[0], '\0', "stderr: %s", r.err);
  result_free(&r);
}

Test(report, large_counts_are_written_with_separators) {
  const char *db = path_in("gen.db");
  result_t r;
  generate(db, "5000", "2408", "1", "2"); /* 2 groups of 1,204 */
  r = UVT("report", db);
  cr_assert_eq(r.status, 1);
  cr_expect_eq(count_of(r.out, "\xc3\x97" "1,204"), 2, "%s", r.out);
  result_free(&r);
}

Test(report, json_has_the_same_findings) {
  const char *db = path_in("gen.db");
  sqlite3 *mem;
  result_t r;
  generate(db, "1000", "40", "5", "4");
  r = UVT("report", "--format", "json", db);
  cr_assert_eq(r.status, 1);
  cr_assert_eq(sqlite3_open(":memory:", &mem), SQLITE_OK);
  cr_assert_eq(q_int(mem, "SELECT json_valid(?1)", r.out), 1);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.version')", r.out), 1);
  cr_expect_eq(q_int(mem, "SELECT json_array_length(?1, '$.findings')", r.out), 20);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.total')", r.out), 40);
  cr_expect_eq(q_int(mem, "SELECT sum(json_extract(value, '$.count')) FROM "
                          "json_each(?1, '$.findings')", r.out), 40);
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.findings') WHERE "
                          "json_extract(value, '$.kind') = 'pending-at-exit' AND "
                          "json_extract(value, '$.file') = 'gen/site_2.c' AND "
                          "json_extract(value, '$.line') = 102 AND "
                          "json_extract(value, '$.count') = 2 AND "
                          "json_extract(value, '$.where.what') = 'uvt_sleep'", r.out), 1);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.sessions[0].findings_by_kind."
                          "\"slow-callback\"')", r.out), 10);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.sessions[0].pid')", r.out), 40001);
  sqlite3_close(mem);
  result_free(&r);
}

Test(report, html_shows_as_many_findings_as_json) {
  const char *db = path_in("gen.db"), *html = path_in("r.html");
  result_t r;
  char *page, *p;
  long long sum = 0;
  generate(db, "1000", "40", "5", "4");
  r = UVT("report", "--format", "html", "-o", html, db);
  cr_assert_eq(r.status, 1, "%s", r.err);
  result_free(&r);
  page = read_file(html, NULL);
  cr_assert_not_null(page);
  cr_expect_eq(count_of(page, "<section class=\"finding\""), 20);
  for (p = page; (p = strstr(p, "data-count=\"")) != NULL; p++) sum += atoll(p + 12);
  cr_expect_eq(sum, 40);
  cr_expect_neq(strstr(page, "data-total=\"40\""), NULL);
  cr_expect_neq(strstr(page, "<svg"), NULL); /* the session's timeline */
  cr_expect_eq(count_of(page, "<details"), count_of(page, "</details>"));
  free(page);
}

/* ---- what each finding shows -------------------------------------------------- */

static sqlite3 *db_with_one_of_each(const char *path) {
  sqlite3 *db = db_create(path, false);
  add_object(db, 1, 1, "task", "serve", "src/main.c", 40, 0);
  add_object(db, 1, 2, "task", "handle_client", "src/server.c", 52, 1);
  add_object(db, 1, 3, "coroutine", "fetch_price", "src/feed.c", 88, 2);
  add_object(db, 1, 4, "task", "ticker", "src/feed.c", 202, 2);
  add_object(db, 1, 5, "task", "refresh_cache", "src/cache.c", 41, 1);
  q(db, "UPDATE objects SET message = 'connection reset by peer', fail_file = 'src/cache.c', "
        "fail_line = 77, status = -104 WHERE id = 5", "");
  add_finding(db, 1, "never-awaited", 3, "src/feed.c", 88,
              "coroutine 'fetch_price' was never awaited");
  q(db, "INSERT INTO findings (session_id, kind, object_id, file, line, message, where_file, "
        "where_line, where_what, ts_ns) VALUES (1, 'pending-at-exit', 4, 'src/feed.c', 202, "
        "'task ''ticker'' still pending at exit', 'src/feed.c', 217, 'uvt_sleep', ?1)", "i", T0);
  q(db, "INSERT INTO findings (session_id, kind, object_id, file, line, message, status, "
        "where_file, where_line, ts_ns) VALUES (1, 'unretrieved-error', 5, 'src/cache.c', 41, "
        "'task ''refresh_cache'' failed; nobody read the error', -104, 'src/cache.c', 77, ?1)",
    "i", T0);
  for (int k = 1; k <= 3; k++)
    q(db, "INSERT INTO findings (session_id, kind, object_id, file, line, message, "
          "duration_ns, ts_ns) VALUES (1, 'slow-callback', 2, 'src/server.c', 52, "
          "'task ''handle_client'' blocked the loop', ?1, ?2)", "ii", k * 100000000LL, T0);
  return db;
}

Test(report, each_kind_shows_its_facts) {
  const char *db = path_in("one.db");
  result_t r;
  sqlite3_close(db_with_one_of_each(db));
  r = UVT("report", db);
  cr_assert_eq(r.status, 1, "%s", r.err);
  cr_expect_neq(strstr(r.out, "src/feed.c:88: warning: coroutine 'fetch_price' was never "
                              "awaited [never-awaited]  \xc3\x97" "1\n"), NULL, "%s", r.out);
  /* The parent chain, in words, up to the task created outside any task. */
  cr_expect_neq(strstr(r.out, "(task 'handle_client' spawned at src/server.c:52 by task "
                              "'serve')"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "(task 'serve' spawned at src/main.c:40 outside any task)"),
                NULL);
  /* pending-at-exit: where it is parked. */
  cr_expect_neq(strstr(r.out, "parked in   uvt_sleep at src/feed.c:217"), NULL, "%s", r.out);
  /* slow-callback: count, max, median. */
  cr_expect_neq(strstr(r.out, "blocked     3 times, max 300 ms, p50 200 ms"), NULL, "%s",
                r.out);
  cr_expect_neq(strstr(r.out, "src/server.c:52: warning: task 'handle_client' blocked the "
                              "loop [slow-callback]  \xc3\x97" "3"), NULL);
  /* unretrieved-error: the error and where it was raised. */
  cr_expect_neq(strstr(r.out, "error       -104 (connection reset by peer): connection "
                              "reset by peer"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "raised at   src/cache.c:77"), NULL, "%s", r.out);
  /* The worst first: unretrieved-error before pending-at-exit before the rest. */
  cr_expect_lt(strstr(r.out, "[unretrieved-error]"), strstr(r.out, "[pending-at-exit]"));
  cr_expect_lt(strstr(r.out, "[pending-at-exit]"), strstr(r.out, "[never-awaited]"));
  cr_expect_neq(strstr(r.out, "session 4242  ./app --port 7000"), NULL);
  cr_expect_neq(strstr(r.out, ", exited with status 0"), NULL);
  cr_expect_neq(strstr(r.out, "6 findings at 4 sites"), NULL);
  result_free(&r);
}

Test(report, session_summary_says_how_it_ended) {
  const char *db = path_in("end.db");
  sqlite3 *h = db_create(db, false);
  result_t r;
  add_object(h, 1, 7, "task", "handle_client", "src/feed.c", 131, 0);
  q(h, "UPDATE sessions SET end_reason = 'signal', exit_status = NULL, signal = 11, "
       "crash_task_id = 7, shed = 12", "");
  /* No end record, and its process (pid 5151 in 2025) is long gone. */
  q(h, "INSERT INTO sessions (id, pid, ppid, argv, start_ns, slow_ms, depth, objects) "
       "VALUES (2, 5151, 1, './killed', ?1, 100, 16, 9)", "i", T0);
  sqlite3_close(h);
  r = UVT("report", db);
  cr_assert_eq(r.status, 1, "a killed session is not clean: %s", r.err);
  cr_expect_neq(strstr(r.out, "ended by SIGSEGV in task 'handle_client' (src/feed.c:131)"),
                NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "12 timeline events shed"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "session 5151  ./killed"), NULL);
  cr_expect_neq(strstr(r.out, "ended without an end record: killed or lost power?"), NULL,
                "%s", r.out);
  cr_expect_neq(strstr(r.out, "no findings"), NULL);
  result_free(&r);
}

/* ---- exit status and filters --------------------------------------------------- */

Test(report, exit_status_zero_when_clean_one_with_findings) {
  const char *db = path_in("one.db");
  const char *clean = path_in("clean.db");
  result_t r;
  sqlite3_close(db_with_one_of_each(db));
  sqlite3_close(db_create(clean, false));
  r = UVT("report", clean);
  cr_expect_eq(r.status, 0);
  cr_expect_neq(strstr(r.out, "no findings"), NULL);
  result_free(&r);
  r = UVT("report", db);
  cr_expect_eq(r.status, 1);
  result_free(&r);
  /* --fail-on narrows which kinds count... */
  r = UVT("report", "--fail-on", "wrong-thread,unclosed-stream", db);
  cr_expect_eq(r.status, 0);
  cr_expect_eq(count_of(r.out, ": warning: "), 4); /* ...not what is shown */
  result_free(&r);
  r = UVT("report", "--fail-on", "wrong-thread", "--fail-on", "never-awaited", db);
  cr_expect_eq(r.status, 1);
  result_free(&r);
}

Test(report, filters_by_kind_pid_and_duration) {
  const char *db = path_in("one.db");
  sqlite3 *h = db_with_one_of_each(db);
  result_t r;
  q(h, "INSERT INTO sessions (id, pid, ppid, argv, start_ns, end_ns, end_reason, "
       "exit_status, slow_ms, depth, objects) "
       "VALUES (2, 777, 1, './other', ?1, ?1, 'exit', 0, 100, 16, 1)", "i", T0);
  add_finding(h, 2, "wrong-thread", 0, "src/thread.c", 9, "uvt_spawn called from a thread");
  sqlite3_close(h);
  r = UVT("report", "--kind", "slow-callback,never-awaited", db);
  cr_expect_eq(r.status, 1);
  cr_expect_eq(count_of(r.out, ": warning: "), 2, "%s", r.out);
  cr_expect_eq(strstr(r.out, "[pending-at-exit]"), NULL);
  result_free(&r);
  r = UVT("report", "--pid", "777", db);
  cr_expect_eq(count_of(r.out, ": warning: "), 1);
  cr_expect_neq(strstr(r.out, "src/thread.c:9: warning: "), NULL);
  cr_expect_eq(strstr(r.out, "session 4242"), NULL);
  result_free(&r);
  r = UVT("report", "--kind", "slow-callback", "--min-ms", "150", db);
  cr_expect_neq(strstr(r.out, "blocked     2 times, max 300 ms, p50 200 ms"), NULL, "%s",
                r.out);
  result_free(&r);
  r = UVT("report", "--kind", "slow-callback", "--min-ms", "1000", db);
  cr_expect_eq(r.status, 0);
  result_free(&r);
  r = UVT("report", "--pid", "99999", db);
  cr_expect_eq(r.status, 0);
  result_free(&r);
}

Test(report, several_files_merge_into_one_report) {
  const char *a = path_in("a.db"), *b = path_in("b.db");
  sqlite3 *h;
  result_t r;
  h = db_create(a, false);
  add_finding(h, 1, "never-awaited", 0, "src/x.c", 5, "coroutine 'x' was never awaited");
  sqlite3_close(h);
  h = db_create(b, false);
  add_finding(h, 1, "never-awaited", 0, "src/x.c", 5, "coroutine 'x' was never awaited");
  sqlite3_close(h);
  r = UVT("report", a, b);
  cr_expect_eq(r.status, 1);
  cr_expect_neq(strstr(r.out, "\xc3\x97" "2 in 2 sessions"), NULL, "%s", r.out);
  cr_expect_eq(count_of(r.out, "session 4242"), 2);
  result_free(&r);
}

Test(report, colour_only_when_asked_or_on_a_terminal) {
  const char *db = path_in("one.db");
  result_t r;
  sqlite3_close(db_with_one_of_each(db));
  r = UVT("report", db); /* standard output is a file here */
  cr_expect_eq(strchr(r.out, '\033'), NULL);
  result_free(&r);
  r = UVT("report", "--color", "always", db);
  cr_expect_neq(strstr(r.out, "\033[1;35mwarning:"), NULL);
  result_free(&r);
}

/* On a terminal (util-linux script(1) provides one): colour, unless
 * NO_COLOR is set. */
Test(report, colour_on_a_terminal_unless_no_color) {
  const char *db = path_in("one.db");
  char cmd[1200];
  result_t r;
  if (access("/usr/bin/script", X_OK) != 0) cr_skip_test("no script(1) for a terminal");
  sqlite3_close(db_with_one_of_each(db));
  snprintf(cmd, sizeof(cmd), "%s report %s", UVTASK, db);
  r = run_env((const char *const[]){"/usr/bin/script", "-qec", cmd, "/dev/null", NULL},
              (const char *const[]){"TERM=xterm", NULL});
  cr_expect_eq(r.status, 1, "%s", r.err);
  cr_expect_neq(strstr(r.out, "\033[1;35mwarning:"), NULL, "%s", r.out);
  result_free(&r);
  r = run_env((const char *const[]){"/usr/bin/script", "-qec", cmd, "/dev/null", NULL},
              (const char *const[]){"TERM=xterm", "NO_COLOR=1", NULL});
  cr_expect_eq(r.status, 1);
  cr_expect_neq(strstr(r.out, "warning:"), NULL);
  cr_expect_eq(strchr(r.out, '\033'), NULL);
  result_free(&r);
}

/* ---- bad input: exit 2, one line ---------------------------------------------- */
Test(report, missing_file) { expect_refused(path_in("nothing.db"), "no such file"); }

Test(report, default_file_is_asynciodebug_db_in_the_working_directory) {
  result_t r;
  char here[4096];
  cr_assert_not_null(getcwd(here, sizeof(here)));
  cr_assert_eq(chdir(dir), 0);
  r = UVT("report");
  cr_assert_eq(chdir(here), 0);
  cr_expect_eq(r.status, 2);
  cr_expect_neq(strstr(r.err, "asynciodebug.db: no such file"), NULL, "%s", r.err);
  result_free(&r);
}

Test(report, empty_file) {
  write_bytes(path_in("empty.db"), "", 0);
  expect_refused(path_in("empty.db"), "empty file");
}

Test(report, not_sqlite) {
  write_bytes(path_in("text.db"), "hello, world\n", 13);
  expect_refused(path_in("text.db"), "not an SQLite database");
}

Test(report, sqlite_of_another_program) {
  sqlite3 *h;
  cr_assert_eq(sqlite3_open(path_in("other.db"), &h), SQLITE_OK);
  q(h, "CREATE TABLE songs (title TEXT)", "");
  sqlite3_close(h);
  expect_refused(path_in("other.db"), "another program");
  /* A meta table with someone else's format is another program's too. */
  cr_assert_eq(sqlite3_open(path_in("other2.db"), &h), SQLITE_OK);
  q(h, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)", "");
  q(h, "INSERT INTO meta VALUES ('format', 'photo-album')", "");
  sqlite3_close(h);
  expect_refused(path_in("other2.db"), "another program");
}

Test(report, newer_schema_version) {
  sqlite3 *h = db_create(path_in("new.db"), false);
  char v[64];
  snprintf(v, sizeof(v), "PRAGMA user_version=%d", UVT_SCHEMA_VERSION + 1);
  q(h, v, "");
  sqlite3_close(h);
  expect_refused(path_in("new.db"), "newer");
}

/* A database big enough to span many pages. */
static void big_db(const char *path) {
  sqlite3 *h = db_create(path, false);
  char msg[200];
  q(h, "BEGIN", "");
  for (int i = 0; i < 2000; i++) {
    snprintf(msg, sizeof(msg), "coroutine 'c%d' was never awaited, and padding to fill "
                               "pages .................................................", i);
    add_finding(h, 1, "never-awaited", 0, "src/x.c", i, msg);
  }
  q(h, "COMMIT", "");
  sqlite3_close(h);
}

Test(report, truncated_file) {
  const char *p = path_in("cut.db");
  big_db(p);
  cr_assert_eq(truncate(p, 3 * 4096), 0);
  expect_refused(p, "truncated");
  cr_assert_eq(truncate(p, 40), 0); /* not even a header */
  expect_refused(p, "truncated");
}

Test(report, corrupt_file) {
  const char *p = path_in("bad.db");
  size_t n, i;
  char *bytes;
  big_db(p);
  bytes = read_file(p, &n);
  cr_assert_gt(n, 8 * 4096);
  /* Keep page 1 (the header and the table of tables), garble the rest. */
  for (i = 4096; i < n; i++) bytes[i] = (char)(0x5a ^ (i * 131));
  write_bytes(p, bytes, n);
  free(bytes);
  expect_refused(p, "corrupt");
}

Test(report, json_refuses_bad_input_the_same_way) {
  result_t r = UVT("report", "--format", "json", path_in("nothing.db"));
  cr_expect_eq(r.status, 2);
  cr_expect_eq(r.outlen, 0);
  result_free(&r);
}

/* ---- hostile values: never a crash --------------------------------------------------- */

static void expect_survives(const char *db) {
  static const char *const formats[] = {"text", "json", "html"};
  const char *html = path_in("h.html"), *trace = path_in("h.json");
  result_t r;
  for (int i = 0; i < 3; i++) {
    r = UVT("report", "--format", formats[i], "-o", i == 2 ? html : "-", db);
    cr_expect(r.status == 0 || r.status == 1, "%s: status %d: %s", formats[i], r.status, r.err);
    result_free(&r);
  }
  r = UVT("export", "--chrome-trace", trace, db);
  cr_expect_eq(r.status, 0, "export: status %d: %s", r.status, r.err);
  result_free(&r);
}

Test(report, extreme_numbers_and_odd_rows) {
  const char *db = path_in("odd.db");
  sqlite3 *h = db_create(db, false);
  const unsigned char odd_blob[13] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
  q(h, "UPDATE sessions SET start_ns = ?1, end_ns = ?2, crash_task_id = 99, "
       "end_reason = 'signal', signal = 99999, exit_status = NULL", "ii",
    (long long)INT64_MAX, (long long)INT64_MIN);
  add_object(h, 1, 1, "task", NULL, NULL, -5, 2); /* a parent loop: 1 -> 2 -> 1 */
  add_object(h, 1, 2, "task", "b", "x.c", 2147483647, 1);
  q(h, "UPDATE objects SET created_ns = ?1, ended_ns = ?2, create_stack = 1, "
       "fail_stack = 77", "ii", (long long)INT64_MIN, (long long)INT64_MAX);
  q(h, "INSERT INTO stacks (session_id, id, pcs) VALUES (1, 1, ?1), (1, 2, x'')", "b",
    odd_blob, (int)sizeof(odd_blob));
  q(h, "INSERT INTO modules (session_id, path, build_id, base, lo, hi) VALUES "
       "(1, '/nonexistent/m.so', 'zz', ?1, 0, ?2)", "ii", (long long)INT64_MIN,
    (long long)INT64_MAX);
  add_finding(h, 1, "slow-callback", 1, NULL, 0, "");
  q(h, "UPDATE findings SET duration_ns = ?1, stack = 2, stack2 = 1, ts_ns = ?2", "ii",
    (long long)INT64_MAX, (long long)INT64_MIN);
  add_finding(h, 1, "made-up-kind", 12345, "y.c", -1, "a kind from the future");
  q(h, "INSERT INTO steps (session_id, object_id, start_ns, dur_ns, slow) VALUES "
       "(1, 1, ?1, ?2, 1), (1, 2, ?2, ?1, 0), (1, 1, -1, -1, 0)", "ii",
    (long long)INT64_MAX, (long long)INT64_MIN);
  sqlite3_close(h);
  expect_survives(db);
}

/* Tables with our names and columns but none of the constraints: every
 * column NULL or of the wrong type. */
Test(report, nulls_and_wrong_types_everywhere) {
  const char *db = path_in("loose.db");
  sqlite3 *h;
  char v[64];
  cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
  q(h, "CREATE TABLE meta (key, value)", "");
  q(h, "INSERT INTO meta VALUES ('format', ?1)", "t", UVT_SCHEMA_FORMAT);
  q(h, "CREATE TABLE sessions (id, pid, ppid, argv, exe, test_name, start_ns, end_ns, "
       "end_reason, exit_status, signal, crash_task_id, slow_ms, depth, objects, "
       "peak_tasks, findings, shed, lost)", "");
  q(h, "CREATE TABLE modules (session_id, path, build_id, base, lo, hi)", "");
  q(h, "CREATE TABLE stacks (session_id, id, pcs)", "");
  q(h, "CREATE TABLE objects (session_id, id, kind, name, file, line, func, parent_id, "
       "create_stack, created_ns, ended_ns, status, message, fail_file, fail_line, "
       "fail_stack, retrieved_ns, steps, busy_ns, max_step_ns)", "");
  q(h, "CREATE TABLE findings (id INTEGER PRIMARY KEY, session_id, kind, object_id, file, "
       "line, func, message, stack, stack2, where_file, where_line, where_what, status, "
       "duration_ns, ts_ns, ignored)", "");
  q(h, "CREATE TABLE site_stats (session_id, kind, name, file, line, count, steps, busy_ns, "
       "max_step_ns)", "");
  q(h, "CREATE TABLE steps (session_id, object_id, start_ns, dur_ns, slow)", "");
  q(h, "CREATE TABLE finding_members (session_id, finding_id, ord, object_id, name, wait, "
       "waits_on, held_by, where_file, where_line, acquire_file, acquire_line, stack)", "");

  q(h, "CREATE TABLE snapshots (session_id, id, reason, ts_ns, ntasks, finding_id)", "");
  q(h, "CREATE TABLE snapshot_tasks (session_id, snapshot_id, task_id, name, state, wait, "
       "wait_what, wait_on_id, parked_ns, where_file, where_line, where_func, file, line, "
       "func, parent_id, stack, awaiters)", "");
  snprintf(v, sizeof(v), "PRAGMA user_version=%d", UVT_SCHEMA_VERSION);
  q(h, v, "");
  q(h, "INSERT INTO snapshots VALUES (1, 1, NULL, 'x', NULL, NULL), (1, 'two', x'ff', 5, 5, 5)",
    "");
  q(h, "INSERT INTO snapshot_tasks VALUES (1, 1, NULL, x'ff00', NULL, 7, NULL, 'x', -5, "
       "NULL, 'y', NULL, x'00', NULL, NULL, 'p', 2, '1 x 99999999999999999999 -3'), "
       "(1, 'two', 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
       "NULL, NULL, 'not a stack', NULL)", "");
  q(h, "INSERT INTO sessions (id, argv, start_ns, end_reason) VALUES (1, x'ff00fe', 'soon', "
       "'exit'), (2, NULL, NULL, NULL), ('three', 3.5, x'00', 'signal')", "");
  q(h, "INSERT INTO modules VALUES (1, NULL, NULL, NULL, NULL, NULL), (1, 'm', 5, 'a', 1, 0)",
    "");
  q(h, "INSERT INTO stacks VALUES (1, 1, 'not a blob'), (1, 2, NULL)", "");
  q(h, "INSERT INTO objects (session_id, id, kind, parent_id, create_stack) VALUES "
       "(1, 1, NULL, 1, 1), (1, 2, 7, 'x', 2), (2, NULL, NULL, NULL, NULL)", "");
  q(h, "INSERT INTO findings (session_id, kind, object_id, stack, stack2) VALUES "
       "(1, NULL, 1, 1, 2), (1, 'never-awaited', 2, 'x', NULL), (2, 5, NULL, NULL, NULL), "
       "('three', 'slow-callback', 1, NULL, NULL)", "");
  q(h, "INSERT INTO steps VALUES (1, 1, NULL, NULL, NULL), (1, 2, 'a', 'b', 'c')", "");
  q(h, "INSERT INTO finding_members VALUES (1, 1, NULL, 'x', x'ff', 5, 'y', 2, 7, 'z', NULL, "
       "-1, 1), (1, 1, 'a', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'f', 2, 'q')", "");
  sqlite3_close(h);
  expect_survives(db);
}

/* ---- a file still being written ------------------------------------------------- */

Test(report, reads_a_database_its_writer_still_has_open) {
  const char *p = path_in("live.db");
  sqlite3 *h = db_create(p, true);
  struct stat st;
  result_t r;
  add_finding(h, 1, "never-awaited", 0, "src/live.c", 3, "coroutine 'live' was never awaited");
  /* The writer keeps its connection and is in the middle of a transaction. */
  q(h, "BEGIN IMMEDIATE", "");
  add_finding(h, 1, "never-awaited", 0, "src/live.c", 4, "not committed yet");
  cr_assert_eq(stat(path_in("live.db-wal"), &st), 0);
  cr_assert_gt(st.st_size, 0);
  r = UVT("report", p);
  cr_expect_eq(r.status, 1, "%s", r.err);
  cr_expect_neq(strstr(r.out, "src/live.c:3: warning: "), NULL, "%s", r.out);
  cr_expect_eq(strstr(r.out, "src/live.c:4"), NULL);
  result_free(&r);
  q(h, "COMMIT", "");
  sqlite3_close(h);
}

/* ---- escaping --------------------------------------------------------------------- */

static bool valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (k == 0 || i + k > n) return false;
    for (size_t j = 1; j < k; j++)
      if ((s[i + j] & 0xc0) != 0x80) return false;
    i += k;
  }
  return true;
}

static void hostile_db(const char *path) {
  sqlite3 *h = db_create(path, false);
  add_object(h, 1, 1, "task", "<script>alert(1)</script>", "src/<b>.c", 7, 0);
  add_object(h, 1, 2, "task", "bad\xff\xfe utf-8 \x1b[31m", "src/x.c", 8, 1);
  add_finding(h, 1, "pending-at-exit", 1, "src/<b>.c", 7,
              "task '<script>alert(1)</script>' still pending at exit");
  add_finding(h, 1, "never-awaited", 2, "src/x.c", 8,
              "coroutine 'bad\xff\xfe utf-8 \x1b[31m' was never awaited");
  q(h, "INSERT INTO steps (session_id, object_id, start_ns, dur_ns, slow) VALUES "
       "(1, 1, ?1, 200000000, 1), (1, 1, ?2, 1000000, 0)", "ii", T0 + 2000000, T0 + 300000000);
  sqlite3_close(h);
}

Test(report, html_escapes_every_string) {
  const char *db = path_in("evil.db"), *html = path_in("r.html");
  result_t r;
  char *page;
  hostile_db(db);
  r = UVT("report", "--format", "html", "-o", html, db);
  cr_expect_eq(r.status, 1, "%s", r.err);
  cr_expect_eq(r.outlen, 0);
  result_free(&r);
  page = read_file(html, NULL);
  cr_assert_not_null(page);
  cr_expect_eq(strstr(page, "<script"), NULL, "an unescaped script tag");
  cr_expect_eq(strstr(page, "<b>"), NULL);
  cr_expect_neq(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt;"), NULL);
  cr_expect_eq(strchr(page, '\033'), NULL);
  cr_expect(valid_utf8((const unsigned char *)page, strlen(page)));
  /* Self-contained: nothing fetched from anywhere. */
  cr_expect_eq(strstr(page, "http://"), strstr(page, "http://www.w3.org/2000/svg"));
  cr_expect_eq(strstr(page, "https://"), NULL);
  cr_expect_eq(strstr(page, "src="), NULL);
  /* Findings expand, and the timeline is drawn with the slow step marked. */
  cr_expect_eq(count_of(page, "<section class=\"finding\""), 2);
  cr_expect_neq(strstr(page, "<details"), NULL);
  cr_expect_neq(strstr(page, "<svg"), NULL);
  cr_expect_eq(count_of(page, "class=\"slow\""), 1);
  cr_expect_neq(strstr(page, "data-total=\"2\""), NULL);
  free(page);
}

Test(report, json_is_valid_even_with_invalid_utf8) {
  const char *db = path_in("evil.db");
  sqlite3 *mem;
  result_t r;
  hostile_db(db);
  r = UVT("report", "--format", "json", db);
  cr_expect_eq(r.status, 1, "%s", r.err);
  cr_expect(valid_utf8((const unsigned char *)r.out, r.outlen));
  cr_assert_eq(sqlite3_open(":memory:", &mem), SQLITE_OK);
  cr_assert_eq(q_int(mem, "SELECT json_valid(?1)", r.out), 1, "%s", r.out);
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.findings') WHERE "
                          "json_extract(value, '$.object.name') = "
                          "'bad' || char(65533, 65533) || ' utf-8 ' || char(27) || '[31m'",
                     r.out), 1);
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.findings') WHERE "
                          "json_extract(value, '$.object.name') = '<script>alert(1)</script>'",
                     r.out), 1);
  sqlite3_close(mem);
  result_free(&r);
}

Test(report, text_shows_control_characters_escaped) {
  const char *db = path_in("evil.db");
  result_t r;
  hostile_db(db);
  r = UVT("report", db);
  cr_expect_eq(strchr(r.out, '\033'), NULL);
  cr_expect_neq(strstr(r.out, "\\x1b[31m"), NULL, "%s", r.out);
  cr_expect(valid_utf8((const unsigned char *)r.out, r.outlen));
  result_free(&r);
}

/* ---- Chrome / Perfetto export ------------------------------------------------------ */

Test(report, chrome_trace_is_valid_json_with_the_events) {
  const char *db = path_in("evil.db"), *out = path_in("trace.json");
  sqlite3 *mem;
  result_t r;
  char *trace;
  hostile_db(db);
  r = UVT("export", "--chrome-trace", out, db);
  cr_expect_eq(r.status, 0, "%s", r.err);
  result_free(&r);
  trace = read_file(out, NULL);
  cr_assert_not_null(trace);
  cr_assert_eq(sqlite3_open(":memory:", &mem), SQLITE_OK);
  cr_assert_eq(q_int(mem, "SELECT json_valid(?1)", trace), 1);
  /* A track per task, named; its life and its steps as complete events. */
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.traceEvents') WHERE "
                          "json_extract(value, '$.name') = 'thread_name'", trace), 2);
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.traceEvents') WHERE "
                          "json_extract(value, '$.ph') = 'X' AND "
                          "json_extract(value, '$.cat') = 'step'", trace), 2);
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.traceEvents') WHERE "
                          "json_extract(value, '$.ph') = 'X' AND "
                          "json_extract(value, '$.args.slow') = 1 AND "
                          "json_extract(value, '$.dur') = 200000", trace), 1);
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.traceEvents') WHERE "
                          "json_extract(value, '$.ph') = 'X' AND "
                          "json_extract(value, '$.cat') = 'task'", trace), 2);
  /* Findings as instant events, on their task's track. */
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.traceEvents') WHERE "
                          "json_extract(value, '$.ph') = 'i' AND "
                          "json_extract(value, '$.s') = 't'", trace), 2);
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.traceEvents') WHERE "
                          "json_extract(value, '$.name') = 'pending-at-exit'", trace), 1);
  sqlite3_close(mem);
  free(trace);
}

Test(report, chrome_trace_needs_a_readable_input) {
  const char *out = path_in("trace.json");
  result_t r = UVT("export", "--chrome-trace", out, path_in("nothing.db"));
  cr_expect_eq(r.status, 2);
  cr_expect_eq(access(out, F_OK), -1);
  result_free(&r);
  r = UVT("export", path_in("nothing.db"));
  cr_expect_eq(r.status, 2);
  cr_expect_neq(strstr(r.err, "--chrome-trace"), NULL);
  result_free(&r);
}

/* ---- symbolisation ------------------------------------------------------------------- */

static __attribute__((noinline)) uint64_t return_address(void) {
  return (uint64_t)(uintptr_t)__builtin_return_address(0);
}

static volatile int sink;

/* Its own PC, just after the call: the report must say this line. */
static __attribute__((noinline)) uint64_t symbolised_here(int *line) {
  uint64_t pc = return_address(); *line = __LINE__;
  sink++; /* no tail call: the return address stays in this function */
  return pc;
}

/* A database whose never-awaited coroutine was created at symbolised_here. */
static int symbol_db(const char *path, const char *fake_build_id, const char *fake_path) {
  sqlite3 *h = db_create(path, false);
  int line;
  uint64_t pcs[2];
  pcs[0] = symbolised_here(&line);
  pcs[1] = 0x10; /* an address no module covers */
  add_own_modules(h, fake_build_id, fake_path);
  q(h, "INSERT INTO stacks (session_id, id, pcs) VALUES (1, 1, ?1)", "b", pcs,
    (int)sizeof(pcs));
  add_object(h, 1, 1, "coroutine", "probe", "tests/test_report.c", line, 0);
  q(h, "UPDATE objects SET create_stack = 1", "");
  add_finding(h, 1, "never-awaited", 1, "tests/test_report.c", line,
              "coroutine 'probe' was never awaited");
  sqlite3_close(h);
  return line;
}

Test(report, symbolises_with_the_binarys_own_debug_info) {
  const char *db = path_in("sym.db");
  char want[128];
  sqlite3 *mem;
  result_t r;
  int line = symbol_db(db, NULL, NULL);
  r = UVT("report", db);
  cr_assert_eq(r.status, 1, "%s", r.err);
  snprintf(want, sizeof(want), "test_report.c:%d\n", line);
  cr_expect_neq(strstr(r.out, "created at  symbolised_here"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, want), NULL, "no %s in %s", want, r.out);
  cr_expect_neq(strstr(r.out, "0x10 (no module)"), NULL, "%s", r.out);
  cr_expect_eq(strstr(r.out, "note:"), NULL, "%s", r.out);
  result_free(&r);
  r = UVT("report", "--format", "json", db);
  cr_assert_eq(sqlite3_open(":memory:", &mem), SQLITE_OK);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.findings[0].created_at[0].line')",
                     r.out), line);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.findings[0].created_at[0].function')"
                          " = 'symbolised_here'", r.out), 1);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.findings[0].created_at[0].file')"
                          " LIKE '%/tests/test_report.c'", r.out), 1);
  sqlite3_close(mem);
  result_free(&r);
}

Test(report, changed_binary_gives_module_offset_and_a_note) {
  const char *db = path_in("sym.db");
  char bad[128];
  result_t r;
  int line = symbol_db(db, "00112233445566778899aabbccddeeff00112233", NULL);
  r = UVT("report", db);
  cr_assert_eq(r.status, 1, "%s", r.err);
  snprintf(bad, sizeof(bad), "test_report.c:%d\n", line);
  cr_expect_eq(strstr(r.out, bad), NULL, "a line from a changed binary: %s", r.out);
  cr_expect_neq(strstr(r.out, "test_report+0x"), NULL, "%s", r.out);
  cr_expect_eq(count_of(r.out, "note: "), 1, "%s", r.out);
  cr_expect_neq(strstr(r.out, "has changed since the run (build-id differs)"), NULL);
  result_free(&r);
}

Test(report, missing_binary_gives_module_offset_and_a_note) {
  const char *db = path_in("sym.db");
  result_t r;
  symbol_db(db, NULL, "/nonexistent/uvt-gone-binary");
  r = UVT("report", db);
  cr_assert_eq(r.status, 1, "%s", r.err);
  cr_expect_neq(strstr(r.out, "uvt-gone-binary+0x"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "note: /nonexistent/uvt-gone-binary is gone"), NULL, "%s",
                r.out);
  result_free(&r);
}

/* ---- help and version ------------------------------------------------------------------ */

Test(report, help_and_version) {
  static const char *const cmds[] = {"report", "run", "export"};
  result_t r = UVT("--version");
  cr_expect_eq(r.status, 0);
  cr_expect_neq(strstr(r.out, UVTASK_VERSION_STRING), NULL);
  result_free(&r);
  r = UVT("help");
  cr_expect_eq(r.status, 0);
  cr_expect_neq(strstr(r.out, "usage: uvtask"), NULL);
  result_free(&r);
  for (size_t i = 0; i < 3; i++) {
    char want[64];
    snprintf(want, sizeof(want), "usage: uvtask %s", cmds[i]);
    r = UVT(cmds[i], "--help");
    cr_expect_eq(r.status, 0, "%s --help", cmds[i]);
    cr_expect_neq(strstr(r.out, want), NULL, "%s", r.out);
    result_free(&r);
    r = UVT("help", cmds[i]);
    cr_expect_neq(strstr(r.out, want), NULL);
    result_free(&r);
  }
  r = UVT("report", "--format", "yaml");
  cr_expect_eq(r.status, 2);
  cr_expect_neq(strstr(r.err, "yaml"), NULL);
  result_free(&r);
  r = UVT("frobnicate");
  cr_expect_eq(r.status, 2);
  result_free(&r);
}

/* ---- uvtask run ---------------------------------------------------------------------- */

Test(report, run_finds_the_bug_of_a_release_build) {
  const char *db = path_in("run.db");
  NEEDS_DEBUG_LIB();
  char want[128];
  result_t r = RUN("--db", db, "--", SCENARIO, "never-awaited");
  cr_expect_eq(r.status, 1, "stderr: %s", r.err);
  snprintf(want, sizeof(want), "tracer_scenario.c:%d: warning: ", marker_line("@never-awaited"));
  cr_expect_neq(strstr(r.out, want), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "[never-awaited]"), NULL);
  result_free(&r);
  /* A second run adds its session; the report is of this run only. */
  r = RUN("--db", db, "--", SCENARIO, "clean");
  cr_expect_eq(r.status, 0, "%s\n%s", r.out, r.err);
  cr_expect_eq(strstr(r.out, "[never-awaited]"), NULL, "%s", r.out);
  result_free(&r);
}

Test(report, run_passes_the_programs_failure_through) {
  const char *db = path_in("run.db");
  NEEDS_DEBUG_LIB();
  result_t r = RUN("--db", db, "--", SCENARIO, "exit-in-task");
  cr_expect_eq(r.status, 3, "%s", r.err);
  cr_expect_neq(strstr(r.out, "[pending-at-exit]"), NULL, "%s", r.out);
  result_free(&r);
  r = RUN("--db", db, "--", SCENARIO, "abort");
  cr_expect_eq(r.status, 128 + 6, "%s", r.err);
  cr_expect_neq(strstr(r.out, "ended by SIGABRT"), NULL, "%s", r.out);
  result_free(&r);
}

Test(report, run_cannot_start) {
  const char *db = path_in("run.db");
  NEEDS_DEBUG_LIB();
  result_t r = RUN("--db", db, "--", "/nonexistent/program");
  cr_expect_eq(r.status, 127);
  cr_expect_neq(strstr(r.err, "/nonexistent/program"), NULL);
  result_free(&r);
  write_bytes(path_in("notexec"), "#!/bin/sh\n", 10);
  r = RUN("--db", db, "--", path_in("notexec"));
  cr_expect_eq(r.status, 126);
  result_free(&r);
  r = RUN("--db", db);
  cr_expect_eq(r.status, 125);
  result_free(&r);
  r = run_env((const char *const[]){UVTASK, "run", "--", SCENARIO, "clean", NULL},
              (const char *const[]){"UVTASK_DEBUG_LIB=/nonexistent/libuvtask.so.0", NULL});
  cr_expect_eq(r.status, 125);
  cr_expect_neq(strstr(r.err, "UVTASK_DEBUG_LIB"), NULL, "%s", r.err);
  result_free(&r);
}

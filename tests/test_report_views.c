/*
 * What the report shows beyond the findings (issue 11 item 7, issue 15
 * item 5): the snapshots of a session's tasks in the HTML page, grouped as
 * `uvtask ps FILE` groups them; the timeline's legend and parked sites;
 * sessions with findings first in text, JSON and HTML; findings about
 * objects on the uvt_leaks_ignore list shown flagged and never counted.
 *
 * Databases are made by hand with the schema of tracer/schema.h; a parked
 * stack is a return address of this very binary, so that the page must
 * name this file's line.  One test records tracer_scenario's "ignored"
 * under the real tracer.
 */
#include "report_support.h"

TestSuite(views, .init = make_dir, .fini = remove_dir, .timeout = 60);

#define SCHED1(n) ((1LL << 40) + (n)) /* object n of scheduler 1: "#1:n" */

static __attribute__((noinline)) uint64_t own_return_address(void) {
  return (uint64_t)(uintptr_t)__builtin_return_address(0);
}

static volatile int sink;

/* Its own PC, just after the call: the page must say this line. */
static __attribute__((noinline)) uint64_t parked_here(int *line) {
  uint64_t pc = own_return_address(); *line = __LINE__;
  sink++; /* no tail call: the return address stays in this function */
  return pc;
}

static char *html_of(const char *db, int want_status) {
  const char *html = path_in("r.html");
  result_t r = UVT("report", "--format", "html", "-o", html, db);
  char *page;
  cr_expect_eq(r.status, want_status, "status %d: %s", r.status, r.err);
  result_free(&r);
  page = read_file(html, NULL);
  cr_assert_not_null(page);
  return page;
}

/* The text of `page` from `from` up to the next `to` (owned). */
static char *between(const char *page, const char *from, const char *to) {
  const char *a = strstr(page, from), *b;
  cr_assert_not_null(a, "no %s in:\n%s", from, page);
  b = strstr(a, to);
  cr_assert_not_null(b, "no %s after %s", to, from);
  return strndup(a, (size_t)(b - a));
}

/* ---- snapshots in the HTML page -------------------------------------------------- */

/* Session 1 with two snapshots: 1 (SIGQUIT) of five tasks, three of them
 * alike; 2 (`uvtask ps`) of one. */
static const char *snapshot_db(int *line) {
  const char *path = path_in("snap.db");
  sqlite3 *db = db_create(path, false);
  uint64_t pcs[1] = {parked_here(line)}, other[1] = {pcs[0] + 1};
  char awaiter[32]; /* 'holder' is awaited by task #1:2 */
  snprintf(awaiter, sizeof(awaiter), "%lld", SCHED1(2));
  add_own_modules(db, NULL, NULL);
  q(db, "INSERT INTO stacks (session_id, id, pcs) VALUES (1, 1, ?1), (1, 2, ?2)", "bb",
    pcs, (int)sizeof(pcs), other, (int)sizeof(other));
  q(db, "INSERT INTO snapshots (session_id, id, reason, ts_ns, ntasks) VALUES "
        "(1, 1, 'sigquit', ?1, 5), (1, 2, 'ps', ?2, 1)", "ii", T0 + 500000000LL,
    T0 + 900000000LL);
  q(db, "INSERT INTO snapshot_tasks (session_id, snapshot_id, task_id, name, state, wait, "
        "wait_what, wait_on_id, parked_ns, where_file, where_line, where_func, file, line, "
        "func, parent_id, stack, awaiters) VALUES "
        "(1, 1, ?1, '<script>alert(1)</script>', 'parked', 'task', 'uvt_await', ?2, "
        " 400000000, 'src/f.c', 10, 'evil_fn', 'src/f.c', 5, 'spawner', ?5, 1, NULL), "
        "(1, 1, ?2, 'holder', 'parked', 'sleep', 'uvt_sleep', NULL, 300000000, "
        " 'src/f.c', 20, 'holder_fn', 'src/f.c', 6, 'spawner', ?5, 2, ?6), "
        "(1, 1, ?3, 'worker', 'parked', 'queue-get', 'uvt_queue_get', NULL, 100000000, "
        " 'src/w.c', 9, 'work', 'src/w.c', 7, 'pool', ?5, 2, NULL), "
        "(1, 1, ?4, 'worker', 'parked', 'queue-get', 'uvt_queue_get', NULL, 200000000, "
        " 'src/w.c', 9, 'work', 'src/w.c', 7, 'pool', ?5, 2, NULL), "
        "(1, 1, ?7, 'worker', 'parked', 'queue-get', 'uvt_queue_get', NULL, 100000000, "
        " 'src/w.c', 9, 'work', 'src/w.c', 7, 'pool', ?5, 2, NULL), "
        "(1, 2, ?2, 'holder', 'ready', NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
        " 'src/f.c', 6, 'spawner', ?5, NULL, NULL)",
    "iiiiiti", SCHED1(2), SCHED1(3), SCHED1(4), SCHED1(5), SCHED1(1), awaiter, SCHED1(6));
  sqlite3_close(db);
  return path;
}

Test(views, html_shows_each_snapshot_with_its_tasks_grouped_and_escaped) {
  int line;
  const char *db = snapshot_db(&line);
  char *page = html_of(db, 0), *first, want[160];
  cr_expect_eq(strstr(page, "<script"), NULL, "an unescaped script tag");
  cr_expect_eq(count_of(page, "<details class=\"snapshot\""), 2, "%s", page);
  /* Oldest first; the last one open. */
  first = between(page, "<details class=\"snapshot\" data-reason=\"sigquit\" data-tasks=\"5\">",
                  "</details>\n<details class=\"snapshot\" open data-reason=\"ps\" "
                  "data-tasks=\"1\">");
  cr_expect_neq(strstr(first, "taken at SIGQUIT"), NULL, "%s", first);
  cr_expect_neq(strstr(first, "into the session: 5 tasks in 3 groups of alike tasks"), NULL,
                "%s", first);
  /* One entry per task, but the three alike workers are one. */
  cr_expect_eq(count_of(first, "<div class=\"sgroup\""), 3, "%s", first);
  cr_expect_neq(strstr(first, "<div class=\"sgroup\" data-tasks=\"3\"><div>3 tasks parked "
                              "[uvt_queue_get, "), NULL, "%s", first);
  cr_expect_neq(strstr(first, ": <code>#1:4</code> 'worker', <code>#1:5</code> 'worker', "
                              "<code>#1:6</code> 'worker'</div>"), NULL, "%s", first);
  /* Each entry: id and escaped name, state and await, what it waits on
   * (with the awaited task's name), parked and creation sites, parent. */
  cr_expect_neq(strstr(first, "task <code>#1:2</code> '&lt;script&gt;alert(1)&lt;/script&gt;' "
                              "parked [uvt_await, "), NULL, "%s", first);
  cr_expect_neq(strstr(first, "waits on <code>task</code> <code>#1:3</code> 'holder'"), NULL,
                "%s", first);
  cr_expect_neq(strstr(first, "parked at <code>src/f.c:10</code> in <code>evil_fn</code>"),
                NULL, "%s", first);
  cr_expect_neq(strstr(first, "created at <code>src/f.c:5</code> in <code>spawner</code>, "
                              "by task <code>#1:1</code>"), NULL, "%s", first);
  cr_expect_neq(strstr(first, "parked at <code>src/w.c:9</code> in <code>work</code>"), NULL,
                "%s", first);
  /* The parked stack, symbolised: this file's line. */
  cr_expect_neq(strstr(first, "parked stack: <code>parked_here</code>"), NULL, "%s", first);
  snprintf(want, sizeof(want), "test_report_views.c:%d</td>", line);
  cr_expect_neq(strstr(first, want), NULL, "no %s in:\n%s", want, first);
  /* Then who awaits whom. */
  cr_expect_neq(strstr(first, "<ul class=\"await-tree\">\n<li><code>#1:2</code> "
                              "'&lt;script&gt;alert(1)&lt;/script&gt;' <code>uvt_await</code> at "
                              "<code>src/f.c:10</code>\n<ul><li><code>#1:3</code> 'holder' "
                              "<code>uvt_sleep</code> at <code>src/f.c:20</code></li>\n</ul>"),
                NULL, "%s", first);
  cr_expect_neq(strstr(page, "task <code>#1:3</code> 'holder' ready</div>"), NULL, "%s", page);
  cr_expect_neq(strstr(page, "no task awaits another"), NULL, "%s", page);
  free(first);
  free(page);
}

/* Tasks awaiting each other have no root: the tree still shows them, each
 * once; odd awaiter lists (not numbers, unknown ids) are skipped. */
Test(views, html_await_tree_shows_a_cycle_once) {
  const char *path = path_in("cycle.db");
  sqlite3 *db = db_create(path, false);
  char a1[32], a2[32], *page, *tree;
  snprintf(a1, sizeof(a1), "%lld x", SCHED1(2));
  snprintf(a2, sizeof(a2), "999 %lld", SCHED1(1));
  q(db, "INSERT INTO snapshots (session_id, id, reason, ts_ns, ntasks) VALUES "
        "(1, 1, 'request', ?1, 2)", "i", T0 + 1000);
  q(db, "INSERT INTO snapshot_tasks (session_id, snapshot_id, task_id, name, state, wait, "
        "wait_what, where_file, where_line, file, line, awaiters) VALUES "
        "(1, 1, ?1, 'ping', 'parked', 'task', 'uvt_await', 'src/c.c', 1, 'src/c.c', 9, ?3), "
        "(1, 1, ?2, 'pong', 'parked', 'task', 'uvt_await', 'src/c.c', 2, 'src/c.c', 9, ?4)",
    "iitt", SCHED1(1), SCHED1(2), a1, a2);
  sqlite3_close(db);
  page = html_of(path, 0);
  tree = between(page, "<ul class=\"await-tree\">", "</ul></div>");
  cr_expect_eq(count_of(tree, "<li>"), 3, "%s", tree);
  cr_expect_eq(count_of(tree, "(shown above)"), 1, "%s", tree);
  free(tree);
  free(page);
}

/* ---- the timeline: legend and parked sites ------------------------------------------- */

Test(views, timeline_has_a_legend_and_shows_where_each_task_was_last_parked) {
  const char *path = path_in("tl.db");
  sqlite3 *db = db_create(path, false);
  char *page, *tl;
  add_object(db, 1, 1, "task", "idle", "src/t.c", 1, 0);
  add_object(db, 1, 2, "task", "sleeper", "src/t.c", 2, 0);
  add_object(db, 1, 3, "task", "locker", "src/t.c", 3, 0);
  q(db, "INSERT INTO steps (session_id, object_id, start_ns, dur_ns, slow) VALUES "
        "(1, 1, ?1, 1000, 0), (1, 2, ?2, 300000000, 1)", "ii", T0 + 1000000, T0 + 2000000);
  /* Task 2: parked at p.c:30 in a snapshot, later at p.c:33 at exit. */
  q(db, "INSERT INTO snapshots (session_id, id, reason, ts_ns, ntasks) VALUES "
        "(1, 1, 'ps', ?1, 1)", "i", T0 + 200000000LL);
  q(db, "INSERT INTO snapshot_tasks (session_id, snapshot_id, task_id, name, state, wait, "
        "wait_what, where_file, where_line, file, line) VALUES (1, 1, 2, 'sleeper', 'parked', "
        "'sleep', 'uvt_sleep', 'src/p.c', 30, 'src/t.c', 2)", "");
  q(db, "INSERT INTO findings (id, session_id, kind, object_id, file, line, message, "
        "where_file, where_line, where_what, ts_ns) VALUES "
        "(1, 1, 'pending-at-exit', 2, 'src/t.c', 2, 'still pending', 'src/p.c', 33, "
        "'uvt_event_wait', ?1), "
        "(2, 1, 'stall', 3, 'src/t.c', 3, 'no task can go on', NULL, NULL, NULL, ?1)", "i",
    T0 + 1400000000LL);
  /* Task 3: a member of the stall, parked at m.c:44. */
  q(db, "INSERT INTO finding_members (session_id, finding_id, ord, object_id, name, wait, "
        "where_file, where_line) VALUES (1, 2, 0, 3, 'locker', 'lock', 'src/m.c', 44)", "");
  sqlite3_close(db);
  page = html_of(path, 1);
  tl = between(page, "<details open><summary>timeline: 3 tasks", "</details>");
  /* A mark where each parked task was last seen, none for the other. */
  cr_expect_eq(count_of(tl, "<path class=\"park\""), 2, "%s", tl);
  cr_expect_neq(strstr(tl, "task &#39;sleeper&#39; created at src/t.c:2, last seen parked at "
                           "src/p.c:33 in uvt_event_wait</title></rect>"), NULL, "%s", tl);
  cr_expect_eq(strstr(tl, "src/p.c:30"), NULL, "the older site won: %s", tl);
  cr_expect_neq(strstr(tl, "last seen parked at src/m.c:44 in lock</title></path>"), NULL,
                "%s", tl);
  cr_expect_eq(count_of(tl, "class=\"slow\""), 1, "%s", tl);
  /* The legend says what each mark means. */
  cr_expect_neq(strstr(tl, "<div class=\"legend\">"), NULL, "%s", tl);
  cr_expect_neq(strstr(tl, "a task's life, from its creation to its end"), NULL);
  cr_expect_neq(strstr(tl, "a task still alive when the session ended"), NULL);
  cr_expect_neq(strstr(tl, "a step: the task ran"), NULL);
  cr_expect_neq(strstr(tl, "where the task was last seen parked"), NULL);
  cr_expect_neq(strstr(tl, "a task involved in a finding"), NULL);
  cr_expect_neq(strstr(tl, "a slow step: it blocked the loop for over 100 ms"), NULL, "%s", tl);
  free(tl);
  free(page);
}

/* ---- sessions with findings first ------------------------------------------------------ */

/* Sessions 4242 (first, clean), 5252 (later, one finding), 6262 (last,
 * clean). */
static const char *three_sessions_db(void) {
  const char *path = path_in("three.db");
  sqlite3 *db = db_create(path, false);
  q(db, "INSERT INTO sessions (id, pid, ppid, argv, exe, start_ns, end_ns, end_reason, "
        "exit_status, slow_ms, depth, objects, peak_tasks, findings) VALUES "
        "(2, 5252, 1, './later', '/usr/bin/later', ?1, ?2, 'exit', 0, 100, 16, 1, 1, 1), "
        "(3, 6262, 1, './last', '/usr/bin/last', ?3, ?4, 'exit', 0, 100, 16, 1, 1, 0)",
    "iiii", T0 + 10000000000LL, T0 + 11000000000LL, T0 + 20000000000LL, T0 + 21000000000LL);
  add_object(db, 2, 1, "coroutine", "lost", "src/later.c", 7, 0);
  add_finding(db, 2, "never-awaited", 1, "src/later.c", 7, "coroutine 'lost' was never awaited");
  sqlite3_close(db);
  return path;
}

static void expect_order(const char *out, const char *a, const char *b, const char *c) {
  const char *pa = strstr(out, a), *pb = strstr(out, b), *pc = strstr(out, c);
  cr_expect(pa != NULL && pb != NULL && pc != NULL && pa < pb && pb < pc,
            "not in the order %s, %s, %s:\n%s", a, b, c, out);
}

Test(views, sessions_with_findings_come_first_in_every_format) {
  const char *db = three_sessions_db();
  sqlite3 *mem;
  char *page;
  result_t r = UVT("report", "--color", "never", db);
  cr_expect_eq(r.status, 1, "%s", r.err);
  expect_order(r.out, "session 5252", "session 4242", "session 6262");
  result_free(&r);
  r = UVT("report", "--format", "json", db);
  cr_expect_eq(r.status, 1, "%s", r.err);
  cr_assert_eq(sqlite3_open(":memory:", &mem), SQLITE_OK);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.sessions[0].pid')", r.out), 5252);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.sessions[1].pid')", r.out), 4242);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.sessions[2].pid')", r.out), 6262);
  sqlite3_close(mem);
  result_free(&r);
  page = html_of(db, 1);
  expect_order(page, "<h3>session 5252 ", "<h3>session 4242 ", "<h3>session 6262 ");
  free(page);
}

/* ---- ignored findings ------------------------------------------------------------------ */

/* A task on the ignore list still pending at exit; with `counted`, a
 * pending one at the same site that is not ignored. */
static const char *ignored_db(bool counted) {
  const char *path = path_in(counted ? "mixed.db" : "ignored.db");
  sqlite3 *db = db_create(path, false);
  add_object(db, 1, 1, "task", "cleaner", "src/c.c", 12, 0);
  add_object(db, 1, 2, "task", "leaker", "src/c.c", 12, 0);
  q(db, "INSERT INTO findings (session_id, kind, object_id, file, line, message, where_file, "
        "where_line, where_what, ts_ns, ignored) VALUES (1, 'pending-at-exit', 1, 'src/c.c', "
        "12, 'task ''cleaner'' still pending', 'src/c.c', 20, 'uvt_sleep', ?1, 1)", "i", T0);
  if (counted)
    q(db, "INSERT INTO findings (session_id, kind, object_id, file, line, message, "
          "where_file, where_line, where_what, ts_ns) VALUES (1, 'pending-at-exit', 2, "
          "'src/c.c', 12, 'task ''leaker'' still pending', 'src/c.c', 20, 'uvt_sleep', ?1)",
      "i", T0);
  sqlite3_close(db);
  return path;
}

Test(views, an_ignored_finding_is_shown_flagged_and_the_report_exits_0) {
  const char *db = ignored_db(false);
  sqlite3 *mem;
  char *page;
  result_t r = UVT("report", "--color", "never", db);
  cr_expect_eq(r.status, 0, "%s\n%s", r.out, r.err);
  cr_expect_neq(strstr(r.out, "src/c.c:12: note: task 'cleaner' still pending "
                              "[pending-at-exit] [ignored]  \xc3\x97" "1\n"), NULL, "%s", r.out);
  cr_expect_eq(strstr(r.out, ": warning: "), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "no findings \xc2\xb7 1 ignored\n"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "\nno findings\n1 ignored finding at 1 site"), NULL, "%s", r.out);
  result_free(&r);
  r = UVT("report", "--fail-on", "pending-at-exit", db);
  cr_expect_eq(r.status, 0, "--fail-on counted an ignored finding: %s", r.out);
  result_free(&r);
  r = UVT("report", "--format", "json", db);
  cr_expect_eq(r.status, 0, "%s", r.err);
  cr_assert_eq(sqlite3_open(":memory:", &mem), SQLITE_OK);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.total')", r.out), 0, "%s", r.out);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.ignored')", r.out), 1);
  cr_expect_eq(q_int(mem, "SELECT json_array_length(?1, '$.findings')", r.out), 1);
  cr_expect_eq(q_int(mem, "SELECT json_type(?1, '$.findings[0].ignored') = 'true'", r.out), 1);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.findings[0].count')", r.out), 1);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.sessions[0].findings')", r.out), 0);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.sessions[0].findings_ignored')", r.out),
               1);
  sqlite3_close(mem);
  result_free(&r);
  page = html_of(db, 0);
  cr_expect_neq(strstr(page, "<section class=\"finding-ignored\" data-kind=\"pending-at-exit\" "
                             "data-ignored-count=\"1\">"), NULL, "%s", page);
  cr_expect_neq(strstr(page, ">ignored</span> task &#39;cleaner&#39; still pending"), NULL,
                "%s", page);
  cr_expect_eq(strstr(page, "class=\"finding\""), NULL, "%s", page);
  cr_expect_neq(strstr(page, "data-total=\"0\">No findings (and 1 ignored"), NULL, "%s", page);
  free(page);
}

Test(views, an_ignored_finding_is_never_folded_into_a_counted_one) {
  const char *db = ignored_db(true);
  sqlite3 *mem;
  result_t r = UVT("report", "--color", "never", db);
  cr_expect_eq(r.status, 1, "%s", r.err);
  cr_expect_eq(count_of(r.out, ": warning: "), 1, "%s", r.out);
  cr_expect_eq(count_of(r.out, ": note: "), 1, "%s", r.out);
  /* The counted one first. */
  cr_expect(strstr(r.out, ": warning: ") < strstr(r.out, ": note: "), "%s", r.out);
  cr_expect_neq(strstr(r.out, "\n1 finding at 1 site\n1 ignored finding at 1 site"), NULL,
                "%s", r.out);
  result_free(&r);
  r = UVT("report", "--format", "json", db);
  cr_assert_eq(sqlite3_open(":memory:", &mem), SQLITE_OK);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.total')", r.out), 1, "%s", r.out);
  cr_expect_eq(q_int(mem, "SELECT json_extract(?1, '$.ignored')", r.out), 1);
  cr_expect_eq(q_int(mem, "SELECT json_type(?1, '$.findings[0].ignored') = 'false'", r.out), 1);
  cr_expect_eq(q_int(mem, "SELECT json_type(?1, '$.findings[1].ignored') = 'true'", r.out), 1);
  sqlite3_close(mem);
  result_free(&r);
}

/* The Chrome trace flags it too: the finding's instant event says so. */
Test(views, an_ignored_finding_is_flagged_in_the_chrome_trace) {
  const char *db = ignored_db(true), *out = path_in("trace.json");
  char *trace;
  sqlite3 *mem;
  result_t r = UVT("export", "--chrome-trace", out, db);
  cr_expect_eq(r.status, 0, "%s", r.err);
  result_free(&r);
  trace = read_file(out, NULL);
  cr_assert_not_null(trace);
  cr_assert_eq(sqlite3_open(":memory:", &mem), SQLITE_OK);
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.traceEvents') WHERE "
                          "json_extract(value, '$.cat') = 'finding' AND "
                          "json_extract(value, '$.args.ignored') = 1 AND "
                          "json_extract(value, '$.args.message') LIKE '%cleaner%'", trace), 1,
               "%s", trace);
  cr_expect_eq(q_int(mem, "SELECT count(*) FROM json_each(?1, '$.traceEvents') WHERE "
                          "json_extract(value, '$.cat') = 'finding' AND "
                          "json_extract(value, '$.args.ignored') IS NULL", trace), 1, "%s",
               trace);
  sqlite3_close(mem);
  free(trace);
}

/* Under the real tracer: tracer_scenario's "ignored" leaves a task on the
 * ignore list pending at exit. */
Test(views, a_recorded_ignored_leak_is_flagged_and_the_run_is_clean) {
  const char *db = path_in("run.db");
  char want[160];
  result_t r;
  NEEDS_DEBUG_LIB();
  r = RUN("--db", db, "--", SCENARIO, "ignored");
  cr_expect_eq(r.status, 0, "%s\n%s", r.out, r.err);
  snprintf(want, sizeof(want), "tracer_scenario.c:%d: note: ", marker_line("@pending"));
  cr_expect_neq(strstr(r.out, want), NULL, "no %s in:\n%s", want, r.out);
  cr_expect_neq(strstr(r.out, "[pending-at-exit] [ignored]"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "\nno findings\n1 ignored finding at 1 site"), NULL, "%s", r.out);
  result_free(&r);
  r = UVT("report", "--fail-on", "pending-at-exit", db);
  cr_expect_eq(r.status, 0, "%s", r.out);
  result_free(&r);
}

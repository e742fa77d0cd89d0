/*
 * The report command and issue 10: a finding about several tasks (a
 * deadlock's cycle, from finding_members) shown as one finding listing
 * each member in text, JSON and HTML; pending tasks parked at different
 * lines never folded into one entry; --fail-on with the new kinds;
 * `uvtask run --stall-ms/--lock-ms`.  Databases are made by hand with the
 * schema of tracer/schema.h (the runtime's deadlock finding is another
 * helper's part).
 */
#include "report_support.h"

TestSuite(members, .init = make_dir, .fini = remove_dir, .timeout = 60);

/* A deadlock of two tasks: 'alice' holds L1 (taken at bank.c:30) and waits
 * for L2 at bank.c:31; 'bob' holds L2 (bank.c:40) and waits for L1 at
 * bank.c:41. */
static const char *deadlock_db(void) {
  const char *path = path_in("deadlock.db");
  sqlite3 *db = db_create(path, false);
  q(db, "INSERT INTO objects (session_id, id, kind, name, file, line, func, created_ns) "
        "VALUES (1, 11, 'task', 'alice', 'src/bank.c', 90, 'main_task', ?1), "
        "(1, 12, 'task', 'bob', 'src/bank.c', 91, 'main_task', ?1)", "i", T0);
  q(db, "INSERT INTO findings (id, session_id, kind, object_id, file, line, message, "
        "ts_ns) VALUES (7, 1, 'deadlock', 11, 'src/bank.c', 41, "
        "'2 tasks wait on each other: none can go on', ?1)", "i", T0);
  q(db, "INSERT INTO finding_members (session_id, finding_id, ord, object_id, name, wait, "
        "waits_on, held_by, where_file, where_line, acquire_file, acquire_line) VALUES "
        "(1, 7, 0, 11, 'alice', 'lock', NULL, 12, 'src/bank.c', 31, 'src/bank.c', 40), "
        "(1, 7, 1, 12, 'bob', 'lock', NULL, 11, 'src/bank.c', 41, 'src/bank.c', 30)", "");
  sqlite3_close(db);
  return path;
}

Test(members, a_deadlock_is_one_finding_listing_each_member_in_text) {
  result_t r = UVT("report", "--color", "never", deadlock_db());
  cr_expect_eq(r.status, 1, "%s", r.err);
  cr_expect_eq(count_of(r.out, "[deadlock]"), 1, "%s", r.out);
  cr_expect_neq(strstr(r.out, "\xc3\x97" "1\n"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "member 1    task 'alice' (created at src/bank.c:90)"), NULL,
                "%s", r.out);
  cr_expect_neq(strstr(r.out, "waits for lock held by task 'bob', taken at src/bank.c:40"),
                NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "parked at src/bank.c:31"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "member 2    task 'bob'"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "waits for lock held by task 'alice', taken at src/bank.c:30"),
                NULL, "%s", r.out);
  result_free(&r);
}

Test(members, a_deadlock_lists_its_members_in_json) {
  result_t r = UVT("report", "--format", "json", deadlock_db());
  cr_expect_eq(r.status, 1, "%s", r.err);
  cr_expect_neq(strstr(r.out, "\"members\":[{\"ord\":0,\"object\":{\"id\":11,"), NULL,
                "%s", r.out);
  cr_expect_neq(strstr(r.out, "\"held_by\":{\"id\":12,\"recorded\":true,\"kind\":\"task\","
                              "\"name\":\"bob\""), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "\"acquired_at\":{\"what\":null,\"file\":\"src/bank.c\","
                              "\"line\":30}"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "\"where\":{\"what\":null,\"file\":\"src/bank.c\",\"line\":41}"),
                NULL, "%s", r.out);
  cr_expect_eq(count_of(r.out, "\"ord\":"), 2, "%s", r.out);
  cr_expect_neq(strstr(r.out, "\"total\":1"), NULL);
  result_free(&r);
}

Test(members, a_deadlock_lists_its_members_in_html) {
  const char *html = path_in("r.html");
  result_t r = UVT("report", "--format", "html", "-o", html, deadlock_db());
  char *page;
  cr_expect_eq(r.status, 1, "%s", r.err);
  page = read_file(html, NULL);
  cr_assert_not_null(page);
  cr_expect_eq(count_of(page, "data-kind=\"deadlock\""), 1);
  cr_expect_eq(count_of(page, "<li class=\"member\">"), 2, "%s", page);
  cr_expect_neq(strstr(page, "task &#39;alice&#39; <span class=\"muted\">created at "
                             "<code>src/bank.c:90</code></span> waits for <code>lock</code> "
                             "held by task &#39;bob&#39;, taken at <code>src/bank.c:40</code>"),
                NULL, "%s", page);
  free(page);
  result_free(&r);
}

/* A cycle of 70 tasks: the report lists the first 64 members and says how
 * many the file holds, in text, JSON and HTML. */
Test(members, a_cycle_longer_than_the_listed_members_says_how_many_it_holds) {
  const char *path = path_in("ring.db"), *html = path_in("ring.html");
  sqlite3 *db = db_create(path, false);
  result_t r;
  char *page;
  int i;
  q(db, "INSERT INTO findings (id, session_id, kind, object_id, file, line, message, "
        "ts_ns) VALUES (9, 1, 'deadlock', 100, 'src/ring.c', 12, "
        "'70 tasks wait on each other', ?1)", "i", T0);
  for (i = 0; i < 70; i++) {
    q(db, "INSERT INTO objects (session_id, id, kind, name, file, line, created_ns) "
          "VALUES (1, ?1, 'task', 'ring', 'src/ring.c', 30, ?2)", "ii", (long long)(100 + i), T0);
    q(db, "INSERT INTO finding_members (session_id, finding_id, ord, object_id, name, "
          "wait, waits_on, where_file, where_line) VALUES (1, 9, ?1, ?2, 'ring', 'task', "
          "?3, 'src/ring.c', 12)", "iii", (long long)i, (long long)(100 + i),
      (long long)(100 + (i + 1) % 70));
  }
  sqlite3_close(db);
  r = UVT("report", "--color", "never", path);
  cr_expect_eq(count_of(r.out, "    member "), 64, "%s", r.out);
  cr_expect_neq(strstr(r.out, "    members     70 in all: the other 6 are in the file, not shown\n"),
                NULL, "%s", r.out);
  result_free(&r);
  r = UVT("report", "--format", "json", path);
  cr_expect_eq(count_of(r.out, "\"ord\":"), 64, "%s", r.out);
  cr_expect_neq(strstr(r.out, "\"members_total\":70"), NULL, "%s", r.out);
  result_free(&r);
  r = UVT("report", "--format", "html", "-o", html, path);
  page = read_file(html, NULL);
  cr_assert_not_null(page);
  cr_expect_eq(count_of(page, "<li class=\"member\">"), 64);
  cr_expect_neq(strstr(page, "70 in all: the other 6 are in the file, not shown"), NULL);
  free(page);
  result_free(&r);
}

/* Four workers made at one line, parked at three: three entries, and only
 * the two parked at the same line fold (issue 10's "x4" that showed one
 * line for four). */
Test(members, pending_tasks_parked_at_different_lines_are_not_folded) {
  const char *path = path_in("pending.db");
  sqlite3 *db = db_create(path, false);
  int where[4] = {120, 135, 135, 150}, i;
  result_t r;
  for (i = 0; i < 4; i++) {
    q(db, "INSERT INTO objects (session_id, id, kind, name, file, line, created_ns) "
          "VALUES (1, ?1, 'task', 'worker', 'src/pool.c', 60, ?2)", "ii", (long long)(i + 1), T0);
    q(db, "INSERT INTO findings (session_id, kind, object_id, file, line, message, "
          "where_file, where_line, where_what, ts_ns) VALUES (1, 'pending-at-exit', ?1, "
          "'src/pool.c', 60, 'task ''worker'' still pending at exit', 'src/pool.c', ?2, "
          "'uvt_queue_get', ?3)", "iii", (long long)(i + 1), (long long)where[i], T0);
  }
  sqlite3_close(db);
  r = UVT("report", "--color", "never", path);
  cr_expect_eq(r.status, 1);
  cr_expect_eq(count_of(r.out, "[pending-at-exit]"), 3, "%s", r.out);
  cr_expect_neq(strstr(r.out, "parked in   uvt_queue_get at src/pool.c:120"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "parked in   uvt_queue_get at src/pool.c:135"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "parked in   uvt_queue_get at src/pool.c:150"), NULL, "%s", r.out);
  cr_expect_eq(count_of(r.out, "\xc3\x97" "2"), 1, "%s", r.out);
  cr_expect_neq(strstr(r.out, "4 findings at 3 sites"), NULL, "%s", r.out);
  result_free(&r);
  r = UVT("report", "--format", "json", path);
  cr_expect_eq(count_of(r.out, "\"kind\":\"pending-at-exit\""), 3, "%s", r.out);
  cr_expect_neq(strstr(r.out, "\"total\":4"), NULL, "%s", r.out);
  result_free(&r);
}

Test(members, fail_on_takes_the_new_kinds) {
  const char *path = path_in("inv.db");
  sqlite3 *db = db_create(path, false);
  result_t r;
  q(db, "INSERT INTO findings (session_id, kind, file, line, message, ts_ns) VALUES "
        "(1, 'lock-order-inversion', 'src/bank.c', 41, 'two orders', ?1)", "i", T0);
  sqlite3_close(db);
  r = UVT("report", "--fail-on", "lock-order-inversion", path);
  cr_expect_eq(r.status, 1);
  cr_expect_eq(strstr(r.err, "unknown finding kind"), NULL, "%s", r.err);
  result_free(&r);
  r = UVT("report", "--fail-on", "deadlock,stall,lock-not-released,lock-held-across-await",
          path);
  cr_expect_eq(r.status, 0, "%s", r.out);
  cr_expect_eq(strstr(r.err, "unknown finding kind"), NULL, "%s", r.err);
  result_free(&r);
}

Test(members, run_passes_stall_ms_and_lock_ms_and_refuses_bad_ones) {
  const char *db = path_in("env.db");
  result_t r;
  NEEDS_DEBUG_LIB();
  r = RUN("--db", db, "--stall-ms", "0", "--", "/usr/bin/env");
  cr_expect_eq(r.status, 125, "%s", r.err);
  cr_expect_neq(strstr(r.err, "--stall-ms must be 1 to 3600000"), NULL, "%s", r.err);
  result_free(&r);
  r = RUN("--db", db, "--lock-ms", "3600001", "--", "/usr/bin/env");
  cr_expect_eq(r.status, 125, "%s", r.err);
  cr_expect_neq(strstr(r.err, "--lock-ms must be 1 to 3600000"), NULL, "%s", r.err);
  result_free(&r);
  r = RUN("--db", db, "--stall-ms", "1500", "--lock-ms", "35", "--", "/usr/bin/env");
  cr_expect_neq(strstr(r.out, "\nASYNCIODEBUG_STALL_MS=1500\n"), NULL, "%s", r.out);
  cr_expect_neq(strstr(r.out, "\nASYNCIODEBUG_LOCK_MS=35\n"), NULL, "%s", r.out);
  result_free(&r);
}

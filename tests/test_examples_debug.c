/*
 * Every example under the debug library with ASYNCIODEBUG set: the buggy
 * run records exactly its finding, at the example's own source line; the
 * fixed twin records none.  The examples are built against the release
 * library; the debug one is put in front with LD_LIBRARY_PATH.
 */
#include <sqlite3.h>

#include "e2e_support.h"

TestSuite(examples_debug, .init = e2e_make_dir, .fini = e2e_remove_dir,
          .timeout = 60);

static void run(const char *example, bool fixed) {
  char prog[512];
  snprintf(prog, sizeof(prog), "%s/examples/%s", UVT_BUILD_DIR, example);
  e2e_record(prog, fixed ? "--fixed" : NULL);
}

static long long q(const char *sql, const char *kind, int line) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long long v = -1;
  cr_assert_eq(sqlite3_open_v2(e2e_db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
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
  int line = e2e_line_of(example, needle);
  run(example, false);
  cr_expect_eq(q("SELECT count(*) FROM findings", NULL, 0), count,
               "%s: unexpected findings", example);
  cr_expect_eq(q("SELECT count(*) FROM findings WHERE kind=?1 AND line=?2 "
                 "AND file LIKE '%examples/%'", kind, line), count,
               "%s: expected %d %s at line %d", example, count, kind, line);
  remove(e2e_db);
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
 * is in the output (the example's ctest checks it).  What is recorded, in
 * both runs, is the other worker queueing for the whole WORK_MS (30 ms,
 * over ASYNCIODEBUG_LOCK_MS's 20) while the holder sleeps in its "work
 * during the lock": lock-held-across-await, at the acquire. */
Test(examples_debug, lock_release) {
  int line = e2e_line_of("lock_release", "int err = uvt_lock_acquire(&rl->lock)");
  int fixed;
  for (fixed = 0; fixed < 2; fixed++) {
    remove(e2e_db);
    run("lock_release", fixed);
    cr_expect_eq(q("SELECT count(*) FROM findings", NULL, 0), 1);
    cr_expect_eq(q("SELECT count(*) FROM findings WHERE kind=?1 AND line=?2",
                   "lock-held-across-await", line), 1);
  }
}

/* Opposite lock orders, one transfer after the other (no deadlock yet):
 * lock-order-inversion at the second acquire.  The concurrent part then
 * deadlocks until main sees it and cancels both; a deadlock finding there
 * (the runtime's wait-for graph) is the only other kind allowed.  The
 * fixed twin, which locks by account id, records nothing. */
Test(examples_debug, bank_locks) {
  int line = e2e_line_of("bank_locks", "the second lock */");
  run("bank_locks", false);
  cr_expect_eq(q("SELECT count(*) FROM findings WHERE kind=?1 AND line=?2 "
                 "AND file LIKE '%examples/bank_locks.c'", "lock-order-inversion", line), 1);
  cr_expect_eq(q("SELECT count(*) FROM findings WHERE kind NOT IN "
                 "('lock-order-inversion', 'deadlock')", NULL, 0), 0);
  remove(e2e_db);
  run("bank_locks", true);
  cr_expect_eq(q("SELECT count(*) FROM findings", NULL, 0), 0);
  cr_expect_eq(q("SELECT count(*) FROM sessions WHERE end_reason='exit'", NULL, 0), 1);
}

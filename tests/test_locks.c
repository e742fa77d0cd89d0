/*
 * The tracer's lock findings end to end: tests/progs/lock_scenario.c runs
 * with the debug library in front and ASYNCIODEBUG set; each finding must
 * be in the database, in `uvtask report` (text) and in its JSON, at the
 * scenario's own source line; the clean scenario must give none.
 */
#include <criterion/criterion.h>

#include "report_support.h"

#define LOCKS UVT_BUILD_DIR "/tests/lock_scenario"
#define LOCKS_SRC UVT_SOURCE_DIR "/tests/progs/lock_scenario.c"

TestSuite(locks, .init = make_dir, .fini = remove_dir, .timeout = 90);

static int line_of(const char *marker) { return source_line(LOCKS_SRC, marker); }

static const char *env_db(const char *db) {
  char *e = malloc(strlen(db) + 16);
  cr_assert_not_null(e);
  sprintf(e, "ASYNCIODEBUG=%s", db);
  paths[npaths++] = e; /* freed with the directory */
  return e;
}

/* Run the scenario with recording into `db`; it must exit 0. */
static void record(const char *scenario, const char *db, const char *extra) {
  const char *env[] = {env_db(db), "LD_LIBRARY_PATH=" UVT_BUILD_DIR "/debug",
                       "ASYNCIODEBUG_LOG=0", extra, NULL};
  result_t r = run_env_bounded((const char *const[]){LOCKS, scenario, NULL}, env, 60);
  cr_assert_eq(r.status, 0, "%s exited %d: %s", scenario, r.status, r.err);
  result_free(&r);
}

static sqlite3 *open_ro(const char *db) {
  sqlite3 *h;
  cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  return h;
}

/* The text report and the JSON both show `kind` at the marker's line. */
static void expect_reported(const char *db, const char *kind, const char *marker) {
  char site[128], tag[64], json_kind[96], json_line[64];
  result_t text = UVT("report", db), json = UVT("report", "--format", "json", db);
  snprintf(site, sizeof(site), "lock_scenario.c:%d: warning:", line_of(marker));
  snprintf(tag, sizeof(tag), "[%s]", kind);
  cr_expect_eq(text.status, 1, "report exit status %d", text.status);
  cr_expect_not_null(strstr(text.out, site), "no '%s' in:\n%s", site, text.out);
  cr_expect_not_null(strstr(text.out, tag), "no %s in:\n%s", tag, text.out);
  snprintf(json_kind, sizeof(json_kind), "\"kind\":\"%s\"", kind);
  snprintf(json_line, sizeof(json_line), "\"line\":%d", line_of(marker));
  cr_expect_eq(json.status, 1);
  cr_expect_not_null(strstr(json.out, json_kind), "no %s in %s", json_kind, json.out);
  cr_expect_not_null(strstr(json.out, json_line), "no %s in %s", json_line, json.out);
  result_free(&text);
  result_free(&json);
}

/* Exactly one finding, of `kind`, at `marker`; its where line at `where`
 * (NULL: not checked). */
static void expect_one(const char *db, const char *kind, const char *marker,
                       const char *where) {
  sqlite3 *h = open_ro(db);
  cr_expect_eq(q_int(h, "SELECT count(*) FROM findings", NULL), 1,
               "findings other than one %s", kind);
  cr_expect_eq(q_int(h, "SELECT line FROM findings WHERE kind=?1", kind), line_of(marker));
  cr_expect_eq(q_int(h, "SELECT file LIKE '%lock_scenario.c' FROM findings WHERE kind=?1",
                     kind), 1);
  if (where != NULL)
    cr_expect_eq(q_int(h, "SELECT where_line FROM findings WHERE kind=?1", kind),
                 line_of(where));
  /* The task it is about has a row of its own. */
  cr_expect_eq(q_int(h, "SELECT count(*) FROM findings f JOIN objects o ON "
                        "o.id=f.object_id AND o.kind='task' WHERE f.kind=?1", kind), 1);
  sqlite3_close(h);
  expect_reported(db, kind, marker);
}

Test(locks, a_task_that_returns_holding_a_lock_is_named_at_the_acquire) {
  const char *db = path_in("t.db");
  record("not-released", db, NULL);
  expect_one(db, "lock-not-released", "@not-released", "@not-released");
}

Test(locks, a_task_cancelled_holding_a_lock_is_named_at_the_acquire) {
  const char *db = path_in("t.db");
  sqlite3 *h;
  record("cancelled", db, NULL);
  expect_one(db, "lock-not-released", "@cancelled-holding", NULL);
  h = open_ro(db);
  cr_expect_eq(q_int(h, "SELECT message LIKE '%was cancelled%' FROM findings", NULL), 1);
  sqlite3_close(h);
}

Test(locks, opposite_orders_are_an_inversion_in_a_run_that_did_not_deadlock) {
  const char *db = path_in("t.db");
  sqlite3 *h;
  record("inversion", db, NULL);
  /* At the acquire that closed the cycle; `where` is the other order's. */
  expect_one(db, "lock-order-inversion", "@second-a", "@first-b");
  h = open_ro(db);
  /* Both orders' stacks. */
  cr_expect_eq(q_int(h, "SELECT stack IS NOT NULL AND stack2 IS NOT NULL FROM findings",
                     NULL), 1);
  sqlite3_close(h);
  {
    char both[96];
    snprintf(both, sizeof(both), "L2 at lock_scenario.c:%d, then L1 at lock_scenario.c:%d",
             line_of("@first-a"), line_of("@first-b"));
    h = open_ro(db);
    cr_expect_eq(q_int(h, "SELECT instr(message, ?1) > 0 FROM findings", both), 1,
                 "the message does not name the first order (%s)", both);
    sqlite3_close(h);
  }
}

Test(locks, a_cycle_through_three_locks_is_an_inversion) {
  const char *db = path_in("t.db");
  record("inversion3", db, NULL);
  expect_one(db, "lock-order-inversion", "@cycle-a", NULL);
}

/* The holder never resumes while the test looks: the finding must be in
 * the file while the program still runs. */
Test(locks, a_lock_held_across_a_long_await_is_named_while_the_program_runs) {
  const char *db = path_in("t.db"), *out = path_in("held.out");
  char *envp[256];
  int n = 0, i, st, found = 0;
  pid_t pid;
  posix_spawn_file_actions_t fa;
  struct timespec pause = {0, 20 * 1000 * 1000}, t0, now;
  char *const argv[] = {(char *)LOCKS, "held-across", NULL};
  envp[n++] = (char *)env_db(db);
  envp[n++] = "LD_LIBRARY_PATH=" UVT_BUILD_DIR "/debug";
  envp[n++] = "ASYNCIODEBUG_LOG=0";
  for (i = 0; environ[i] != NULL && n < 250; i++)
    if (strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0 &&
        strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
        strncmp(environ[i], "BXFI_", 5) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  cr_assert_eq(posix_spawn(&pid, LOCKS, &fa, NULL, argv, envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  /* Poll the database (bounded) while the process runs. */
  for (;;) {
    sqlite3 *h;
    if (access(db, R_OK) == 0 &&
        sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
      sqlite3_stmt *s;
      if (sqlite3_prepare_v2(h, "SELECT count(*) FROM findings WHERE "
                                "kind='lock-held-across-await'", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW) found = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
      }
      sqlite3_close(h);
    }
    if (found > 0) break;
    cr_assert_eq(waitpid(pid, &st, WNOHANG), 0, "the scenario ended early");
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - t0.tv_sec > 30) break;
    nanosleep(&pause, NULL);
  }
  /* Still running: the holder is parked for minutes. */
  cr_expect_eq(waitpid(pid, &st, WNOHANG), 0);
  kill(pid, SIGTERM);
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert_eq(found, 1, "no lock-held-across-await while the program ran");
  {
    sqlite3 *h = open_ro(db);
    cr_expect_eq(q_int(h, "SELECT line FROM findings WHERE kind='lock-held-across-await'",
                       NULL), line_of("@held-acquire"));
    cr_expect_eq(q_int(h, "SELECT where_line FROM findings WHERE "
                          "kind='lock-held-across-await'", NULL), line_of("@held-park"));
    cr_expect_eq(q_int(h, "SELECT message LIKE '%2 tasks waited%' FROM findings", NULL), 1);
    /* The holder's parked stack. */
    cr_expect_eq(q_int(h, "SELECT stack IS NOT NULL FROM findings", NULL), 1);
    sqlite3_close(h);
  }
  expect_reported(db, "lock-held-across-await", "@held-acquire");
}

Test(locks, short_awaits_nested_locks_in_one_order_and_short_sleeps_are_no_finding) {
  const char *db = path_in("t.db");
  sqlite3 *h;
  /* The holders park for ~1 ms; a threshold far above that keeps a loaded
   * machine from stretching a short park over it. */
  record("clean", db, "ASYNCIODEBUG_LOCK_MS=1000");
  h = open_ro(db);
  cr_expect_eq(q_int(h, "SELECT count(*) FROM findings", NULL), 0);
  cr_expect_eq(q_int(h, "SELECT count(*) FROM sessions WHERE end_reason='exit' "
                        "AND exit_status=0", NULL), 1);
  sqlite3_close(h);
}

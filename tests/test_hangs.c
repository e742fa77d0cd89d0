/*
 * Deadlocks, seen as a user sees them: tests/progs/hang_scenario.c hangs
 * (as asyncio would) and, while it still runs, its stderr names every
 * task of the cycle at its own source line, with what it waits for and
 * who holds it; the test then kills it.  Each scenario runs with the
 * release library and, when it was built, the debug one (which prints the
 * same lines).  Scenarios that only look like cycles (a time limit,
 * FIRST_COMPLETED) end by themselves with no deadlock line.
 */
#include "hang_support.h"
#include "source_line.h"

#define PROG UVT_BUILD_DIR "/tests/hang_scenario"
#define SRC UVT_SOURCE_DIR "/tests/progs/hang_scenario.c"
/* A bound on how long a scenario may take to say it, not a delay. */
#define BOUND_MS 20000

static const char *const debug_env[] = {
    "LD_LIBRARY_PATH=" UVT_BUILD_DIR "/debug", NULL};

/* Wait until stream `which` holds `needle` `n` times; if it never does,
 * kill the program before failing (a failed cr_assert would leave it
 * hung). */
static void must_see(hang_proc_t *p, int which, const char *needle, int n) {
  if (hang_wait_for(p, which, needle, n, BOUND_MS)) return;
  hang_kill(p);
  cr_assert_fail("not %d times \"%s\" on %s:\n%s", n, needle,
                 which == 0 ? "stdout" : "stderr", p->text[1]);
}

/* "hang_scenario.c:N: warning: deadlock (i/n): task 'name'" for the line
 * holding `marker`. */
static void expect_member(const char *err, const char *marker, int i, int n,
                          const char *name, const char *waits_for) {
  char want[512];
  const char *at;
  snprintf(want, sizeof(want),
           "hang_scenario.c:%d: warning: deadlock (%d/%d): task '%s' ",
           source_line(SRC, marker), i, n, name);
  at = strstr(err, want);
  cr_expect_not_null(at, "no line \"%s\" in:\n%s", want, err);
  if (at == NULL) return;
  /* The rest of that line says what it waits for. */
  {
    const char *eol = strchr(at, '\n');
    char line[1024];
    size_t len = eol != NULL ? (size_t)(eol - at) : strlen(at);
    if (len >= sizeof(line)) len = sizeof(line) - 1;
    memcpy(line, at, len);
    line[len] = '\0';
    cr_expect_not_null(strstr(line, waits_for), "'%s' not in: %s", waits_for, line);
    cr_expect_not_null(strstr(line, "[deadlock]"), "%s", line);
  }
}

/* Run `scenario` (debug library if `debug`) until its stderr holds `n`
 * deadlock lines; the program must still be running then. */
static void run_until_deadlock(hang_proc_t *p, const char *scenario, int n,
                               bool debug) {
  hang_start(p, PROG, scenario, debug ? debug_env : NULL);
  must_see(p, 0, "ready\n", 1);
  must_see(p, 1, "[deadlock]", n);
  /* Still running: hung, as asyncio would be, not aborted. */
  cr_expect_eq(waitpid(p->pid, &p->status, WNOHANG), 0);
  hang_kill(p);
  /* Once per cycle. */
  cr_expect_eq(hang_count(p->text[1], "[deadlock]"), n, "%s", p->text[1]);
}

static void two_locks(bool debug) {
  hang_proc_t p;
  run_until_deadlock(&p, "locks2", 2, debug);
  /* bob closed the cycle: bob waits for L1, held by alice since her
   * first acquire; alice waits for L2, held by bob. */
  expect_member(p.text[1], "@second-lock", 1, 2, "bob", "held by task 'alice'");
  expect_member(p.text[1], "@second-lock", 2, 2, "alice", "held by task 'bob'");
  {
    char taken[128];
    snprintf(taken, sizeof(taken), "(taken at %s:%d)", SRC,
             source_line(SRC, "@first-lock"));
    cr_expect_eq(hang_count(p.text[1], taken), 2, "%s", p.text[1]);
  }
}

Test(hangs, two_tasks_taking_two_locks_in_opposite_orders_are_a_deadlock) {
  two_locks(false);
}

Test(hangs, three_tasks_in_a_lock_cycle_are_one_deadlock_of_three) {
  hang_proc_t p;
  run_until_deadlock(&p, "locks3", 3, false);
  expect_member(p.text[1], "@second-lock", 1, 3, "carol", "held by task 'alice'");
  expect_member(p.text[1], "@second-lock", 2, 3, "alice", "held by task 'bob'");
  expect_member(p.text[1], "@second-lock", 3, 3, "bob", "held by task 'carol'");
}

Test(hangs, two_tasks_awaiting_each_other_are_a_deadlock) {
  hang_proc_t p;
  run_until_deadlock(&p, "await2", 2, false);
  expect_member(p.text[1], "@pong-awaits", 1, 2, "pong", "waiting for task 'ping' created at");
  expect_member(p.text[1], "@ping-awaits", 2, 2, "ping", "waiting for task 'pong' created at");
}

Test(hangs, a_task_awaiting_its_own_parent_chain_is_a_deadlock) {
  hang_proc_t p;
  run_until_deadlock(&p, "parent", 3, false);
  expect_member(p.text[1], "@inner-awaits-main", 1, 3, "inner", "waiting for task 'main_task'");
  expect_member(p.text[1], "@main-awaits", 2, 3, "main_task", "waiting for task 'outer'");
  expect_member(p.text[1], "@outer-awaits", 3, 3, "outer", "waiting for task 'inner'");
}

Test(hangs, a_gather_is_an_edge_to_each_task_it_needs) {
  hang_proc_t p;
  run_until_deadlock(&p, "gather", 2, false);
  expect_member(p.text[1], "@w2-awaits", 1, 2, "w2", "waiting for task 'boss'");
  expect_member(p.text[1], "@boss-gathers", 2, 2, "boss",
                "parked in uvt_gather here, waiting for task 'w2'");
}

Test(hangs, a_task_acquiring_a_lock_it_holds_is_a_deadlock_of_one) {
  hang_proc_t p;
  run_until_deadlock(&p, "relock", 1, false);
  expect_member(p.text[1], "@greedy-again", 1, 1, "greedy", "a lock it holds itself");
}

Test(hangs, wait_for_past_its_time_limit_waits_without_one) {
  hang_proc_t p;
  run_until_deadlock(&p, "waitfor", 2, false);
  expect_member(p.text[1], "@pong-wait-for", 1, 2, "pong", "waiting for task 'ping'");
}

Test(hangs, a_wait_with_a_time_limit_is_no_deadlock) {
  hang_proc_t p;
  hang_start(&p, PROG, "timeout", NULL);
  cr_assert(hang_finish(&p, BOUND_MS), "it hung: %s", p.text[1]);
  cr_expect(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "%s", p.text[1]);
  cr_expect_null(strstr(p.text[1], "deadlock"), "%s", p.text[1]);
}

Test(hangs, a_first_completed_wait_is_no_deadlock) {
  hang_proc_t p;
  hang_start(&p, PROG, "first", NULL);
  cr_assert(hang_finish(&p, BOUND_MS), "it hung: %s", p.text[1]);
  cr_expect(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "%s", p.text[1]);
  cr_expect_null(strstr(p.text[1], "deadlock"), "%s", p.text[1]);
}

#ifndef UVT_TEST_NO_DEBUG_LIB
Test(hangs, the_debug_library_prints_the_same_deadlock_lines) {
  two_locks(true);
}
#endif

/* ---- long cycles --------------------------------------------------------- */

/* Run ring scenario `scenario` of `n` tasks (no stall check: only the
 * deadlock is said) until its stderr holds the deadlock's lines: 32
 * members, one line for those in between, the last 16. */
static void long_cycle(const char *scenario, int n, const char *marker,
                       const char *waits, bool debug) {
  const char *env[3] = {"ASYNCIODEBUG_STALL_MS=0", NULL, NULL};
  char want[512];
  int lines = n > 48 ? 49 : n;
  hang_proc_t p;
  if (debug) env[1] = "LD_LIBRARY_PATH=" UVT_BUILD_DIR "/debug";
  hang_start(&p, PROG, scenario, env);
  must_see(&p, 0, "ready\n", 1);
  must_see(&p, 1, "[deadlock]", lines);
  cr_expect_eq(waitpid(p.pid, &p.status, WNOHANG), 0, "it should still run");
  hang_kill(&p);
  /* One cycle, said once. */
  cr_expect_eq(hang_count(p.text[1], "[deadlock]"), lines, "%s", p.text[1]);
  snprintf(want, sizeof(want), "(1/%d)", n);
  cr_expect_eq(hang_count(p.text[1], want), 1, "%s", p.text[1]);
  /* The last task spawned closed it: it waits for the first. */
  {
    char name[32], next[64];
    snprintf(name, sizeof(name), "ring%d", n - 1);
    snprintf(next, sizeof(next), "%s'ring0'", waits);
    expect_member(p.text[1], marker, 1, n, name, next);
    snprintf(name, sizeof(name), "ring%d", n - 2);
    snprintf(next, sizeof(next), "%s'ring%d'", waits, n - 1);
    expect_member(p.text[1], marker, n, n, name, next);
    snprintf(name, sizeof(name), "ring%d", 30);
    snprintf(next, sizeof(next), "%s'ring%d'", waits, 31);
    expect_member(p.text[1], marker, 32, n, name, next);
  }
  snprintf(want, sizeof(want),
           "hang_scenario.c:%d: warning: deadlock (33-%d/%d): %d more tasks of the "
           "cycle, each waiting for the next, not listed here [deadlock]",
           source_line(SRC, marker), n - 16, n, n - 48);
  cr_expect_not_null(strstr(p.text[1], want), "no \"%s\" in:\n%s", want, p.text[1]);
}

Test(hangs, a_ring_of_100_tasks_each_waiting_for_the_next_ones_lock_is_one_deadlock) {
  long_cycle("ring100", 100, "@ring-lock", "held by task ", false);
}

Test(hangs, a_ring_of_1000_tasks_each_waiting_for_the_next_ones_lock_is_one_deadlock) {
  long_cycle("ring1000", 1000, "@ring-lock", "held by task ", false);
}

Test(hangs, a_ring_of_1000_tasks_each_awaiting_the_next_is_one_deadlock) {
  long_cycle("aring1000", 1000, "@ring-await", "waiting for task ", false);
}

#ifndef UVT_TEST_NO_DEBUG_LIB
Test(hangs, the_debug_library_finds_the_ring_of_1000_too) {
  long_cycle("ring1000", 1000, "@ring-lock", "held by task ", true);
}
#endif

/* Past ASYNCIODEBUG_DEADLOCK_TASKS the check stops, and says so once. */
Test(hangs, a_cycle_longer_than_the_walk_may_go_is_said_to_be_unchecked) {
  const char *env[] = {"ASYNCIODEBUG_STALL_MS=0", "ASYNCIODEBUG_DEADLOCK_TASKS=100",
                       NULL};
  char want[256];
  hang_proc_t p;
  hang_start(&p, PROG, "ring1000", env);
  must_see(&p, 0, "ready\n", 1);
  must_see(&p, 1, "the deadlock check stops there", 1);
  cr_expect_eq(waitpid(p.pid, &p.status, WNOHANG), 0, "it should still run");
  hang_kill(&p);
  snprintf(want, sizeof(want),
           "hang_scenario.c:%d: task 'ring999' waits on a chain of more than 100 "
           "parked tasks;", source_line(SRC, "@ring-lock"));
  cr_expect_not_null(strstr(p.text[1], want), "no \"%s\" in:\n%s", want, p.text[1]);
  cr_expect_eq(hang_count(p.text[1], "the deadlock check stops there"), 1, "%s", p.text[1]);
  cr_expect_null(strstr(p.text[1], "[deadlock]"), "%s", p.text[1]);
}

/* ---- stalls ----------------------------------------------------------------- */

static const char *const stall_env[] = {"ASYNCIODEBUG_STALL_MS=100", NULL};
static const char *const stall_debug_env[] = {
    "ASYNCIODEBUG_STALL_MS=100", "LD_LIBRARY_PATH=" UVT_BUILD_DIR "/debug", NULL};

/* Run `scenario` until its stderr holds `n` stall lines (it must still
 * run), then kill it. */
static void run_until_stall(hang_proc_t *p, const char *scenario, int n,
                            bool debug) {
  hang_start(p, PROG, scenario, debug ? stall_debug_env : stall_env);
  must_see(p, 0, "ready\n", 1);
  must_see(p, 1, "[stall]", n);
  cr_expect_eq(waitpid(p->pid, &p->status, WNOHANG), 0);
  hang_kill(p);
  /* Once per episode. */
  cr_expect_eq(hang_count(p->text[1], "[stall]"), n, "%s", p->text[1]);
  cr_expect_eq(hang_count(p->text[1], "uvtask: stall: "), 1, "%s", p->text[1]);
}

static void expect_stall_at(const char *err, const char *marker,
                            const char *rest) {
  char want[512];
  snprintf(want, sizeof(want), "hang_scenario.c:%d: warning: stall: %s",
           source_line(SRC, marker), rest);
  cr_expect_not_null(strstr(err, want), "no \"%s\" in:\n%s", want, err);
}

Test(stall, waiting_for_an_event_nothing_will_set_is_a_stall) {
  hang_proc_t p;
  run_until_stall(&p, "event", 1, false);
  expect_stall_at(p.text[1], "@event-wait", "task 'main_task'");
  cr_expect_not_null(strstr(p.text[1], "parked in uvt_event_wait here (event)"),
                     "%s", p.text[1]);
}

Test(stall, a_lock_whose_holder_ended_is_a_stall_naming_the_holder) {
  hang_proc_t p;
  char held[256];
  run_until_stall(&p, "lockgone", 1, false);
  expect_stall_at(p.text[1], "@main-acquires", "task 'main_task'");
  snprintf(held, sizeof(held),
           "held by task 'quitter', which has ended, since %s:%d", SRC,
           source_line(SRC, "@quitter-takes"));
  cr_expect_not_null(strstr(p.text[1], held), "%s", p.text[1]);
}

Test(stall, every_parked_task_is_named) {
  hang_proc_t p;
  run_until_stall(&p, "queue", 2, false);
  expect_stall_at(p.text[1], "@consumer-gets", "task 'consumer'");
  expect_stall_at(p.text[1], "@main-awaits-consumer", "task 'main_task'");
}

#ifndef UVT_TEST_NO_DEBUG_LIB
Test(stall, the_debug_library_prints_the_same_stall_lines) {
  hang_proc_t p;
  run_until_stall(&p, "event", 1, true);
  expect_stall_at(p.text[1], "@event-wait", "task 'main_task'");
}
#endif

/* Parked tasks that something can still wake: with a threshold of 100
 * ms, each runs about ten times as long and ends by itself, silent. */
static void no_stall(const char *scenario) {
  hang_proc_t p;
  hang_start(&p, PROG, scenario, stall_env);
  cr_assert(hang_finish(&p, BOUND_MS), "%s hung: %s", scenario, p.text[1]);
  cr_expect(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "%s: %s",
            scenario, p.text[1]);
  cr_expect_null(strstr(p.text[1], "stall"), "%s: %s", scenario, p.text[1]);
  cr_expect_null(strstr(p.text[1], "deadlock"), "%s: %s", scenario, p.text[1]);
}

Test(stall, a_server_in_accept_and_read_is_no_stall) { no_stall("server"); }
Test(stall, tasks_in_long_sleeps_are_no_stall) { no_stall("sleeps"); }
Test(stall, slow_thread_pool_work_is_no_stall) { no_stall("pool"); }
Test(stall, a_queue_fed_by_the_programs_own_timer_is_no_stall) { no_stall("qtimer"); }
Test(stall, the_programs_own_signal_watcher_is_no_stall) { no_stall("signal"); }
Test(stall, a_loop_run_by_the_program_with_its_own_timer_is_no_stall) {
  no_stall("spawnon");
}

#ifndef UVT_TEST_NO_DEBUG_LIB
/* The same with the debug library recording (its own flush timer on the
 * loop): the recorder counts no finding either. */
static void no_stall_recorded(const char *scenario) {
  char dir[] = "/tmp/uvt-hangs-XXXXXX", db[128], cmd[200];
  const char *env[4];
  hang_proc_t p;
  cr_assert_not_null(mkdtemp(dir));
  snprintf(db, sizeof(db), "ASYNCIODEBUG=%s/t.db", dir);
  env[0] = db;
  env[1] = "ASYNCIODEBUG_STALL_MS=100";
  env[2] = "LD_LIBRARY_PATH=" UVT_BUILD_DIR "/debug";
  env[3] = NULL;
  hang_start(&p, PROG, scenario, env);
  cr_assert(hang_finish(&p, BOUND_MS), "%s hung: %s", scenario, p.text[1]);
  cr_expect(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "%s", p.text[1]);
  cr_expect_not_null(strstr(p.text[1], "asynciodebug: 0 findings"), "%s: %s",
                     scenario, p.text[1]);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}

Test(stall, recorded_sleeps_and_pool_work_have_no_findings) {
  no_stall_recorded("sleeps");
  no_stall_recorded("pool");
}
#endif

#ifndef UVT_TEST_NO_DEBUG_LIB
/* Recorded: `uvtask report` reads the deadlock, with its members, from
 * the database while the program still runs (polled, then killed). */
static bool report_has(const char *db, const char *format, const char *needle,
                       char *out, size_t size) {
  char *argv[] = {UVT_BUILD_DIR "/uvtask", "report", "--color", "never",
                  "--format", (char *)format, (char *)db, NULL};
  hang_proc_t r;
  hang_start_argv(&r, argv, NULL);
  hang_finish(&r, BOUND_MS);
  snprintf(out, size, "%s", r.text[0]);
  return strstr(r.text[0], needle) != NULL;
}

Test(hangs, the_recorded_deadlock_lists_its_members_in_text_and_json) {
  char dir[] = "/tmp/uvt-hangs-XXXXXX", db[128], env_db[160], cmd[200];
  static char out[65536];
  const char *env[3];
  hang_proc_t p;
  long end;
  bool text = false, json = false;
  cr_assert_not_null(mkdtemp(dir));
  snprintf(db, sizeof(db), "%s/t.db", dir);
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", db);
  env[0] = env_db;
  env[1] = "LD_LIBRARY_PATH=" UVT_BUILD_DIR "/debug";
  env[2] = NULL;
  hang_start(&p, PROG, "locks2", env);
  must_see(&p, 1, "[deadlock]", 2);
  /* The writer commits within tens of ms: poll, bounded. */
  for (end = hang_now_ms() + BOUND_MS; hang_now_ms() < end && !(text && json);) {
    text = text || report_has(db, "text", "member 2    task 'alice'", out, sizeof(out));
    json = json || report_has(db, "json", "\"held_by\"", out, sizeof(out));
    if (!(text && json)) hang_read(&p, 50);
  }
  cr_expect_eq(waitpid(p.pid, &p.status, WNOHANG), 0, "it should still run");
  hang_kill(&p);
  cr_expect(text, "no members in the text report:\n%s", out);
  cr_expect(json, "no held_by in the JSON report:\n%s", out);
  report_has(db, "text", "", out, sizeof(out));
  {
    char want[256];
    snprintf(want, sizeof(want), "hang_scenario.c:%d: warning: 2 tasks wait on each other: 'bob' -> 'alice' -> 'bob' [deadlock]",
             source_line(SRC, "@lock-spawn"));
    cr_expect_not_null(strstr(out, want), "no '%s' in:\n%s", want, out);
  }
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}
/* Every member of a recorded deadlock carries its parked stack, the task
 * whose park closed the cycle too (it is still running when the finding
 * is sent): in the text report, one "lock_taker  ...:77" frame line per
 * member under the deadlock; in JSON, one member stack per member whose
 * first frame is lock_taker. */
/* Lines of `s` that begin with `head` and end with `tail`. */
static int frame_lines(const char *s, const char *head, const char *tail) {
  int n = 0;
  size_t hl = strlen(head), tl = strlen(tail);
  while (*s != '\0') {
    const char *eol = strchr(s, '\n');
    size_t len = eol != NULL ? (size_t)(eol - s) : strlen(s);
    if (len >= hl + tl && strncmp(s, head, hl) == 0 &&
        strncmp(s + len - tl, tail, tl) == 0)
      n++;
    s += len + (eol != NULL);
  }
  return n;
}

static void recorded_members_have_stacks(const char *scenario, int n) {
  char dir[] = "/tmp/uvt-hangs-XXXXXX", db[128], env_db[160], cmd[200];
  char frame[512], json_frame[64];
  static char out[65536], json[65536];
  const char *env[4];
  hang_proc_t p;
  long end;
  int text_n = 0, json_n = 0;
  cr_assert_not_null(mkdtemp(dir));
  snprintf(db, sizeof(db), "%s/t.db", dir);
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", db);
  env[0] = env_db;
  env[1] = "LD_LIBRARY_PATH=" UVT_BUILD_DIR "/debug";
  env[2] = "ASYNCIODEBUG_STALL_MS=0"; /* only the deadlock in the file */
  env[3] = NULL;
  snprintf(frame, sizeof(frame), "hang_scenario.c:%d", source_line(SRC, "@second-lock"));
  snprintf(json_frame, sizeof(json_frame), "\"stack\":[{\"function\":\"lock_taker\"");
  hang_start(&p, PROG, scenario, env);
  must_see(&p, 1, "[deadlock]", n);
  /* The writer commits within tens of ms: poll, bounded. */
  for (end = hang_now_ms() + BOUND_MS; hang_now_ms() < end;) {
    report_has(db, "text", "", out, sizeof(out));
    report_has(db, "json", "", json, sizeof(json));
    text_n = frame_lines(out, "                lock_taker  ", frame);
    json_n = hang_count(json, json_frame);
    if (text_n >= n && json_n >= n) break;
    hang_read(&p, 50);
  }
  cr_expect_eq(waitpid(p.pid, &p.status, WNOHANG), 0, "it should still run");
  hang_kill(&p);
  cr_expect_eq(hang_count(out, "[deadlock]"), 1, "%s", out);
  cr_expect_eq(text_n, n, "%d of %d members show a parked stack in:\n%s", text_n, n, out);
  cr_expect_eq(hang_count(json, "\"ord\":"), n, "%s", json);
  cr_expect_eq(json_n, n, "%d of %d members have a stack in:\n%s", json_n, n, json);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}

Test(hangs, every_member_of_a_recorded_two_task_deadlock_has_its_parked_stack) {
  recorded_members_have_stacks("locks2", 2);
}

Test(hangs, every_member_of_a_recorded_three_task_deadlock_has_its_parked_stack) {
  recorded_members_have_stacks("locks3", 3);
}
/* A recorded ring of 1,000: one deadlock finding; the file holds every
 * member, the report lists the first 64 and says how many there are. */
Test(hangs, a_recorded_ring_of_1000_is_one_finding_holding_every_member) {
  char dir[] = "/tmp/uvt-hangs-XXXXXX", db[128], env_db[160], json_path[160], cmd[400];
  static char out[65536], json[1 << 20];
  const char *env[4];
  hang_proc_t p;
  long end;
  bool text = false, all = false;
  cr_assert_not_null(mkdtemp(dir));
  snprintf(db, sizeof(db), "%s/t.db", dir);
  snprintf(json_path, sizeof(json_path), "%s/r.json", dir);
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", db);
  env[0] = env_db;
  env[1] = "LD_LIBRARY_PATH=" UVT_BUILD_DIR "/debug";
  env[2] = "ASYNCIODEBUG_STALL_MS=0";
  env[3] = NULL;
  hang_start(&p, PROG, "ring1000", env);
  must_see(&p, 1, "[deadlock]", 49);
  for (end = hang_now_ms() + BOUND_MS; hang_now_ms() < end && !text;) {
    text = report_has(db, "text", "1000 in all: the other 936 are in the file, not shown",
                      out, sizeof(out));
    if (!text) hang_read(&p, 50);
  }
  cr_expect_eq(waitpid(p.pid, &p.status, WNOHANG), 0, "it should still run");
  hang_kill(&p);
  cr_expect(text, "no member count in:\n%s", out);
  cr_expect_eq(hang_count(out, "[deadlock]"), 1, "%s", out);
  cr_expect_not_null(strstr(out, "1000 tasks wait on each other: 'ring999' -> 'ring0' -> "
                                 "'ring1' -> 'ring2' -> ... 995 more ... -> 'ring998' -> "
                                 "'ring999' [deadlock]"), "%s", out);
  snprintf(cmd, sizeof(cmd), UVT_BUILD_DIR "/uvtask report --format json -o '%s' '%s'",
           json_path, db);
  (void)!system(cmd);
  {
    FILE *f = fopen(json_path, "r");
    size_t n = f != NULL ? fread(json, 1, sizeof(json) - 1, f) : 0;
    if (f != NULL) fclose(f);
    json[n] = '\0';
    all = strstr(json, "\"members_total\":1000") != NULL;
  }
  cr_expect(all, "no members_total 1000 in:\n%.2000s", json);
  cr_expect_eq(hang_count(json, "\"ord\":"), 64, "%.2000s", json);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}
#endif

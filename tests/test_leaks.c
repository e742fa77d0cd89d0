/*
 * Leak assertions (include/uvtask/testing.h) on tests that pass: clean
 * code reports nothing; each kind of leak is named with its creating
 * file:line in the report string; the settle (tasks that finish within
 * the settle time are not leaks, and the wait is bounded); the ignore
 * list; tasks blocked on the checking task; the after-run variant; and the
 * whole-test guard UVT_TEST passing.
 *
 * That the Criterion integration really FAILS a leaking test is proved by
 * tests/test_leaks_fail.c: ctest runs each of its tests with WILL_FAIL,
 * and the last tests here run that binary and read what it printed —
 * every test failed, each failure naming the leaked object's file:line.
 *
 * Inside task bodies only cr_expect (a failed cr_assert would longjmp off
 * the coroutine stack); results are recorded into `M` and asserted after
 * uvt_run returns.
 */
#include <criterion/criterion.h>
#include "source_line.h"
#include <uvtask/testing.h>

#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

TestSuite(leaks, .timeout = 120);

/* What the task bodies saw, checked after uvt_run returns. */
static struct {
  uvt_task_t *t;
  int spawn_line, check_line, sleep_line, n, n_after, n2;
  char *report, *text0, *text1;
  uint64_t elapsed_ms;
  bool done1, done2;
} M;

static char *dup_or_null(const char *s) { return s != NULL ? strdup(s) : NULL; }

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

/* Record one check: its count, report and first two texts. */
static void record(int n, const char *report) {
  M.n = n;
  free(M.report);
  free(M.text0);
  free(M.text1);
  M.report = dup_or_null(report);
  M.text0 = dup_or_null(uvt_leak_text(0));
  M.text1 = dup_or_null(uvt_leak_text(1));
}

static char *fmt(const char *f, ...) UVT__PRINTF(1, 2);
static char *fmt(const char *f, ...) {
  va_list ap;
  char *s = NULL;
  va_start(ap, f);
  cr_assert_geq(vasprintf(&s, f, ap), 0);
  va_end(ap);
  return s;
}

/* ---- task bodies ------------------------------------------------------------ */

static int sleeper(void *arg) {
  (void)arg;
  M.sleep_line = __LINE__; return uvt_sleep(10000);
}

static int failing(void *arg) {
  (void)arg;
  return uvt_fail(UV_ECONNRESET, "peer went away");
}

static int work(void *arg) {
  (void)arg;
  return 0;
}

static int nap(void *arg) {
  return uvt_sleep((int64_t)(intptr_t)arg);
}

static int yielder(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < 100; i++) uvt_yield();
  return 0;
}

static int poller(void *arg) {
  (void)arg;
  for (;;)
    if (uvt_sleep(10000) != 0) return 0;
}

/* Stop a leaked task on purpose so that the test itself ends clean. */
static void stop(uvt_task_t *t) {
  uvt_cancel(t);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
}

/* ---- clean code ----------------------------------------------------------------- */

static void clean_work(void) {
  uvt_task_t *ts[3];
  uvt_future_t *f;
  uvt_coro_t *c;
  int i;
  for (i = 0; i < 3; i++) ts[i] = uvt_spawn(nap, (void *)(intptr_t)5);
  cr_expect_eq(uvt_gather(ts, 3), 0);
  for (i = 0; i < 3; i++) uvt_detach(ts[i]); /* gather leaves them ours */
  cr_expect_eq(uvt_await_coro(uvt_coro(work, NULL)), 0);
  c = uvt_coro(work, NULL);
  cr_expect_eq(uvt_await(uvt_spawn_coro(c)), 0);
  f = uvt_future_new();
  cr_expect_eq(uvt_future_set_error(f, UV_EIO, "read below"), 0);
  cr_expect_eq(uvt_await_future(f), UV_EIO);
  /* A failed task whose error is read is no leak either. */
  cr_expect_eq(uvt_await(uvt_spawn(failing, NULL)), UV_ECONNRESET);
  uvt_detach(uvt_spawn(work, NULL)); /* ends fine on its own */
}

static int clean_main(void *arg) {
  const char *report = NULL;
  int n;
  (void)arg;
  clean_work();
  n = uvt_assert_no_leaks(&report);
  record(n, report);
  return 0;
}

Test(leaks, clean_code_has_no_leaks) {
  cr_assert_eq(uvt_run(NULL, clean_main, NULL), 0);
  cr_assert_eq(M.n, 0, "%s", M.report);
  cr_assert_str_eq(M.report, "");
  cr_assert_null(M.text0);
  cr_assert_eq(uvt_assert_no_leaks_after_run(NULL), 0);
}

static int clean_macro_main(void *arg) {
  (void)arg;
  clean_work();
  UVT_ASSERT_NO_LEAKS();
  return 0;
}

Test(leaks, macro_passes_on_clean_code) {
  cr_assert_eq(uvt_run(NULL, clean_macro_main, NULL), 0);
  UVT_ASSERT_NO_LEAKS(); /* outside a task: the run's own report */
}

UVT_TEST(leaks, guard_passes_on_clean_code) {
  cr_expect_str_eq(uvt_testing_name(), "leaks::guard_passes_on_clean_code");
  cr_expect_not_null(uvt_current());
  clean_work();
}

/* The guard settles too: a task still napping when the body returns, but
 * done well within the settle time, is not a leak. */
UVT_TEST(leaks, guard_settles_before_checking) {
  uvt_leaks_set_settle_ms(5000);
  uvt_detach(uvt_spawn(nap, (void *)(intptr_t)20));
  uvt_detach(uvt_spawn(yielder, NULL));
}

/* ---- each kind, named with its creating file:line -------------------------------- */

static int pending_main(void *arg) {
  const char *report;
  int n;
  (void)arg;
  uvt_leaks_set_settle_ms(20);
  M.spawn_line = __LINE__; M.t = uvt_spawn(sleeper, NULL);
  M.check_line = __LINE__; n = uvt_assert_no_leaks(&report); record(n, report);
  stop(M.t);
  M.n2 = uvt_assert_no_leaks(NULL);
  return 0;
}

Test(leaks, report_names_pending_task) {
  char *want;
  cr_assert_eq(uvt_run(NULL, pending_main, NULL), 0);
  cr_assert_eq(M.n, 1);
  want = fmt("leaked task 'sleeper' created at %s:%d (pending_main), parked "
             "in uvt_sleep at %s:%d",
             __FILE__, M.spawn_line, __FILE__, M.sleep_line);
  cr_assert_str_eq(M.text0, want);
  cr_assert_null(M.text1);
  free(want);
  want = fmt("%s:%d: leaked task 'sleeper' created at %s:%d (pending_main), "
             "parked in uvt_sleep at %s:%d\n",
             __FILE__, M.check_line, __FILE__, M.spawn_line, __FILE__,
             M.sleep_line);
  cr_assert_str_eq(M.report, want);
  free(want);
  cr_assert_eq(M.n2, 0, "a task stopped and awaited is no leak");
  cr_assert_eq(uvt_assert_no_leaks_after_run(NULL), 0);
}

static int never_started_main(void *arg) {
  const char *report;
  int n;
  (void)arg;
  uvt_leaks_set_settle_ms(0);
  M.spawn_line = __LINE__; M.t = uvt_spawn(work, NULL);
  n = uvt_assert_no_leaks(&report);
  record(n, report);
  cr_expect_eq(uvt_await(M.t), 0);
  M.n2 = uvt_assert_no_leaks(NULL);
  return 0;
}

Test(leaks, settle_zero_counts_a_task_not_yet_started) {
  char *want;
  cr_assert_eq(uvt_run(NULL, never_started_main, NULL), 0);
  cr_assert_eq(M.n, 1);
  want = fmt("leaked task 'work' created at %s:%d (never_started_main), "
             "never started", __FILE__, M.spawn_line);
  cr_assert_str_eq(M.text0, want);
  free(want);
  cr_assert_eq(M.n2, 0);
}

static int coro_main(void *arg) {
  const char *report;
  int n;
  uvt_coro_t *c;
  (void)arg;
  M.spawn_line = __LINE__; c = uvt_coro(work, NULL);
  n = uvt_assert_no_leaks(&report);
  record(n, report);
  cr_expect_eq(uvt_coro_close(c), 0);
  M.n2 = uvt_assert_no_leaks(NULL);
  return 0;
}

Test(leaks, report_names_never_awaited_coroutine) {
  char *want;
  cr_assert_eq(uvt_run(NULL, coro_main, NULL), 0);
  cr_assert_eq(M.n, 1);
  want = fmt("leaked coroutine 'work' created at %s:%d (coro_main), never "
             "awaited", __FILE__, M.spawn_line);
  cr_assert_str_eq(M.text0, want);
  free(want);
  cr_assert_eq(M.n2, 0, "a closed coroutine object is no leak");
}

static int task_error_main(void *arg) {
  const char *report;
  int n;
  uvt_task_t *t;
  (void)arg;
  M.spawn_line = __LINE__; t = uvt_spawn(failing, NULL);
  /* uvt_wait does not read errors. */
  cr_expect_eq(uvt_wait(&t, 1, UVT_ALL_COMPLETED, 5000, NULL), 0);
  n = uvt_assert_no_leaks(&report);
  record(n, report);
  cr_expect_eq(uvt_await(t), UV_ECONNRESET);
  M.n2 = uvt_assert_no_leaks(NULL);
  return 0;
}

Test(leaks, report_names_unread_task_error) {
  char *want;
  cr_assert_eq(uvt_run(NULL, task_error_main, NULL), 0);
  cr_assert_eq(M.n, 1);
  want = fmt("leaked error of task 'failing' created at %s:%d "
             "(task_error_main): failed with %d (%s) \"peer went away\"; "
             "nobody read it",
             __FILE__, M.spawn_line, UV_ECONNRESET, uvt_strerror(UV_ECONNRESET));
  cr_assert_str_eq(M.text0, want);
  free(want);
  cr_assert_eq(M.n2, 0, "an error read by uvt_await is no leak");
  cr_assert_eq(uvt_assert_no_leaks_after_run(NULL), 0);
}

static int future_error_main(void *arg) {
  const char *report;
  int n;
  uvt_future_t *f;
  (void)arg;
  M.spawn_line = __LINE__; f = uvt_future_new();
  cr_expect_eq(uvt_future_set_error(f, UV_EIO, "disk on fire"), 0);
  n = uvt_assert_no_leaks(&report);
  record(n, report);
  cr_expect_eq(uvt_await_future(f), UV_EIO);
  M.n2 = uvt_assert_no_leaks(NULL);
  return 0;
}

Test(leaks, report_names_unread_future_error) {
  char *want;
  cr_assert_eq(uvt_run(NULL, future_error_main, NULL), 0);
  cr_assert_eq(M.n, 1);
  want = fmt("leaked error of future created at %s:%d (future_error_main): "
             "failed with %d (%s) \"disk on fire\"; nobody read it",
             __FILE__, M.spawn_line, UV_EIO, uvt_strerror(UV_EIO));
  cr_assert_str_eq(M.text0, want);
  free(want);
  cr_assert_eq(M.n2, 0);
}

/* A detached task's error is reported by the runtime when the task ends
 * (its handle is released then); the check counts it from that report. */
static int detached_error_main(void *arg) {
  const char *report;
  int n;
  (void)arg;
  M.spawn_line = __LINE__; uvt_detach(uvt_spawn(failing, NULL));
  n = uvt_assert_no_leaks(&report);
  record(n, report);
  return 0;
}

Test(leaks, report_names_detached_task_error) {
  char *want;
  const char *report;
  cr_assert_eq(uvt_run(NULL, detached_error_main, NULL), 0);
  cr_assert_eq(M.n, 1, "%s", M.report);
  want = fmt("leaked error of task 'failing' created at %s:%d "
             "(detached_error_main): failed with %d (%s) \"peer went away\"; "
             "nobody read it",
             __FILE__, M.spawn_line, UV_ECONNRESET, uvt_strerror(UV_ECONNRESET));
  cr_assert_str_eq(M.text0, want);
  cr_assert_eq(uvt_assert_no_leaks_after_run(&report), 1);
  cr_assert_str_eq(uvt_leak_text(0), want);
  free(want);
}

/* ---- after uvt_run ------------------------------------------------------------------- */

static int many_leaks_main(void *arg) {
  uvt_task_t *t;
  (void)arg;
  (void)!uvt_spawn(sleeper, NULL);
  (void)!uvt_coro(work, NULL);
  t = uvt_spawn(failing, NULL);
  cr_expect_eq(uvt_wait(&t, 1, UVT_ALL_COMPLETED, 5000, NULL), 0);
  cr_expect_eq(uvt_future_set_error(uvt_future_new(), UV_EIO, "disk on fire"), 0);
  return 0;
}

Test(leaks, after_run_names_every_kind) {
  const char *report;
  char *prefix;
  int n, line;
  cr_assert_eq(uvt_run(NULL, many_leaks_main, NULL), 0);
  line = __LINE__; n = uvt_assert_no_leaks_after_run(&report);
  cr_assert_eq(n, 6, "%s", report);
  /* The two handles main kept: a C leak each (the pending task's is not
   * reported twice). */
  cr_assert_not_null(strstr(report, "leaked handle of task 'failing' created at "));
  cr_assert_not_null(strstr(report, "leaked handle of future 'future' created at "));
  cr_assert_null(strstr(report, "leaked handle of task 'sleeper'"));
  cr_assert_not_null(strstr(report, "leaked task 'sleeper' created at "));
  cr_assert_not_null(strstr(report, "(many_leaks_main), parked in uvt_sleep at "));
  cr_assert_not_null(strstr(report, "leaked coroutine 'work' created at "));
  cr_assert_not_null(strstr(report, "leaked error of task 'failing' created at "));
  cr_assert_not_null(strstr(report, "leaked error of future created at "));
  prefix = fmt("%s:%d: leaked ", __FILE__, line);
  /* Four lines, each starting with this check's file:line. */
  {
    const char *p = report;
    int lines = 0;
    while (*p != '\0') {
      cr_assert_eq(strncmp(p, prefix, strlen(prefix)), 0, "line: %s", p);
      p = strchr(p, '\n');
      cr_assert_not_null(p);
      p++;
      lines++;
    }
    cr_assert_eq(lines, 6);
  }
  free(prefix);
  cr_assert_null(uvt_leak_text(6));
}

Test(leaks, checks_outside_a_task) {
  const char *report = "x";
  cr_assert_eq(uvt_assert_no_leaks(&report), UVT_ENOTASK);
  cr_assert_str_eq(report, "");
  cr_assert_eq(uvt_leaks_settle(), UVT_ENOTASK);
  /* No uvt_run yet on this thread: nothing reported. */
  cr_assert_eq(uvt_assert_no_leaks_after_run(&report), 0);
  cr_assert_str_eq(report, "");
}

/* ---- settling ----------------------------------------------------------------------- */

static int settle_main(void *arg) {
  uvt_task_t *a, *b;
  uint64_t t0;
  (void)arg;
  uvt_leaks_set_settle_ms(5000);
  a = uvt_spawn(nap, (void *)(intptr_t)30);
  b = uvt_spawn(yielder, NULL);
  t0 = now_ms();
  M.n = uvt_assert_no_leaks(NULL);
  M.elapsed_ms = now_ms() - t0;
  M.done1 = uvt_done(a);
  M.done2 = uvt_done(b);
  uvt_detach(a);
  uvt_detach(b);
  return 0;
}

Test(leaks, settle_lets_finishing_tasks_finish) {
  cr_assert_eq(uvt_run(NULL, settle_main, NULL), 0);
  cr_assert_eq(M.n, 0);
  cr_assert(M.done1 && M.done2, "the check waited for both");
  cr_assert_geq(M.elapsed_ms, 25, "the 30 ms nap was waited for");
  cr_assert_lt(M.elapsed_ms, 4000, "and not the whole settle time");
}

static int settle_bound_main(void *arg) {
  uint64_t t0;
  (void)arg;
  uvt_leaks_set_settle_ms(50);
  M.t = uvt_spawn(sleeper, NULL);
  t0 = now_ms();
  M.n = uvt_assert_no_leaks(NULL);
  M.elapsed_ms = now_ms() - t0;
  stop(M.t);
  return 0;
}

Test(leaks, settle_is_bounded) {
  cr_assert_eq(uvt_run(NULL, settle_bound_main, NULL), 0);
  cr_assert_eq(M.n, 1);
  cr_assert_geq(M.elapsed_ms, 45, "it settled for its 50 ms");
  cr_assert_lt(M.elapsed_ms, 5000, "and then gave up on the 10 s sleeper");
}

static int settle_cancel_main(void *arg) {
  (void)arg;
  uvt_leaks_set_settle_ms(10000);
  (void)!uvt_spawn(sleeper, NULL);
  M.n = uvt_assert_no_leaks(NULL);
  /* The cancel that cut the settle short is delivered here. */
  M.n2 = uvt_sleep(10000);
  return M.n2;
}

static int cancel_after(void *arg) {
  uvt_sleep(20);
  uvt_cancel(arg);
  return 0;
}

static int settle_cancel_outer(void *arg) {
  uvt_task_t *t;
  (void)arg;
  t = uvt_spawn(settle_cancel_main, NULL);
  uvt_detach(uvt_spawn(cancel_after, t));
  M.n_after = uvt_await(t);
  return 0;
}

Test(leaks, cancel_while_settling_is_kept_for_the_task) {
  cr_assert_eq(uvt_run(NULL, settle_cancel_outer, NULL), 0);
  /* settle_cancel_outer waits for the checker: not counted; the sleeper is. */
  cr_assert_eq(M.n, 1);
  cr_assert_eq(M.n2, UVT_ECANCELED);
  cr_assert_eq(M.n_after, UVT_ECANCELED);
}

/* ---- tasks waiting for the checking task ------------------------------------------- */

static int checker(void *arg) {
  const char *report;
  int n;
  uvt_task_t *stray;
  (void)arg;
  M.n_after = uvt_assert_no_leaks(NULL); /* main and middle wait for us */
  M.spawn_line = __LINE__; stray = uvt_spawn(sleeper, NULL);
  uvt_leaks_set_settle_ms(10);
  n = uvt_assert_no_leaks(&report);
  record(n, report);
  stop(stray);
  return 0;
}

static int middle(void *arg) {
  uvt_task_t *t = uvt_spawn(checker, NULL);
  (void)arg;
  return uvt_gather(&t, 1);
}

static int waiters_main(void *arg) {
  (void)arg;
  return uvt_await(uvt_spawn(middle, NULL));
}

Test(leaks, tasks_waiting_for_the_checker_are_not_leaks) {
  char *want;
  cr_assert_eq(uvt_run(NULL, waiters_main, NULL), 0);
  cr_assert_eq(M.n_after, 0);
  cr_assert_eq(M.n, 1, "%s", M.report);
  want = fmt("leaked task 'sleeper' created at %s:%d (checker), parked in "
             "uvt_sleep at %s:%d",
             __FILE__, M.spawn_line, __FILE__, M.sleep_line);
  cr_assert_str_eq(M.text0, want);
  free(want);
}

/* ---- the ignore list ---------------------------------------------------------------------- */

static int ignore_name_main(void *arg) {
  uint64_t t0;
  (void)arg;
  uvt_leaks_set_settle_ms(5000);
  (void)!uvt_spawn(poller, NULL);
  t0 = now_ms();
  M.n = uvt_assert_no_leaks(NULL);
  M.elapsed_ms = now_ms() - t0;
  return 0; /* poller is left running: uvt_run reports and cancels it */
}

Test(leaks, ignore_by_task_name) {
  cr_assert_eq(uvt_leaks_ignore("poller"), 0);
  cr_assert_eq(uvt_run(NULL, ignore_name_main, NULL), 0);
  cr_assert_eq(M.n, 0);
  cr_assert_lt(M.elapsed_ms, 2500, "an ignored task is not waited for");
  cr_assert_eq(uvt_assert_no_leaks_after_run(NULL), 0);
  /* uvt_run did report it: emptying the list shows it. */
  uvt_leaks_ignore_clear();
  cr_assert_eq(uvt_assert_no_leaks_after_run(NULL), 1);
  cr_assert_not_null(strstr(uvt_leak_text(0), "leaked task 'poller' created at "));
}

/* Everything started here is ignored by the name of this function. */
static uvt_task_t *start_background(void) {
  uvt_coro_close(uvt_coro(work, NULL)); /* consumed: no leak */
  return uvt_spawn(sleeper, NULL);
}

static int ignore_func_main(void *arg) {
  uvt_task_t *bg;
  uvt_coro_t *c;
  (void)arg;
  uvt_leaks_set_settle_ms(10);
  bg = start_background();
  M.spawn_line = __LINE__; c = uvt_coro(work, NULL);
  record(uvt_assert_no_leaks(NULL), NULL);
  uvt_coro_close(c);
  stop(bg);
  return 0;
}

Test(leaks, ignore_by_creating_function) {
  char *want;
  cr_assert_eq(uvt_leaks_ignore("start_background"), 0);
  cr_assert_eq(uvt_run(NULL, ignore_func_main, NULL), 0);
  cr_assert_eq(M.n, 1, "only the coroutine made outside start_background");
  want = fmt("leaked coroutine 'work' created at %s:%d (ignore_func_main), "
             "never awaited", __FILE__, M.spawn_line);
  cr_assert_str_eq(M.text0, want);
  free(want);
}

Test(leaks, settings) {
  cr_assert_eq(uvt_leaks_ignore(NULL), UVT_EINVAL);
  cr_assert_eq(uvt_leaks_ignore(""), UVT_EINVAL);
  cr_assert_eq(uvt_leaks_set_settle_ms(-1), 100, "the default");
  cr_assert_eq(uvt_leaks_set_settle_ms(7), 100);
  cr_assert_eq(uvt_leaks_set_settle_ms(-1), 7);
  cr_assert_null(uvt_testing_name());
  uvt_testing_set_name("suite::a_name");
  cr_assert_str_eq(uvt_testing_name(), "suite::a_name");
  uvt_testing_set_name(NULL);
  cr_assert_null(uvt_testing_name());
}

/* ---- the failing tests really fail ------------------------------------------------------- */

#define FAIL_BIN UVT_BUILD_DIR "/tests/test_leaks_fail"
#define FAIL_SRC UVT_SOURCE_DIR "/tests/test_leaks_fail.c"

/* The line of test_leaks_fail.c that carries `marker`. */
static int marker_line(const char *marker) { return source_line(FAIL_SRC, marker); }

/* Run test_leaks_fail with two arguments; return its wait status and
 * output (stdout and stderr together, caller frees).  Criterion marks the
 * process running a test with BXFI_MAP in the environment: a Criterion
 * binary started with it inherited takes itself for a test worker and
 * aborts, so it is left out. */
static int run_fail_bin_env(const char *extra, const char *arg1, const char *arg2,
                            char **out) {
  char *argv[] = {(char *)FAIL_BIN, (char *)arg1, (char *)arg2, NULL};
  char *envp[256];
  size_t ne = 0, i;
  if (extra != NULL) envp[ne++] = (char *)extra;
  posix_spawn_file_actions_t fa;
  int pipefd[2], status;
  pid_t pid;
  size_t len = 0, cap = 4096;
  char *buf = malloc(cap);
  ssize_t r;
  cr_assert_not_null(buf);
  cr_assert_eq(access(FAIL_BIN, X_OK), 0, "%s is not built", FAIL_BIN);
  cr_assert_eq(pipe(pipefd), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  for (i = 0; environ[i] != NULL && ne < 255; i++)
    if (strncmp(environ[i], "BXFI_", 5) != 0 &&
        (extra == NULL || strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0))
      envp[ne++] = environ[i];
  envp[ne] = NULL;
  cr_assert_eq(posix_spawn(&pid, FAIL_BIN, &fa, NULL, argv, envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  while ((r = read(pipefd[0], buf + len, cap - len - 1)) > 0) {
    len += (size_t)r;
    if (cap - len < 1024) {
      cap *= 2;
      buf = realloc(buf, cap);
      cr_assert_not_null(buf);
    }
  }
  close(pipefd[0]);
  buf[len] = '\0';
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  *out = buf;
  return status;
}

static int run_fail_bin(const char *arg1, const char *arg2, char **out) {
  return run_fail_bin_env(NULL, arg1, arg2, out);
}

typedef struct {
  const char *test;
  const char *check_marker; /* the line Criterion names for the failure */
  const char *format;       /* the leak, with %s:%d for the creation site */
  const char *made_marker;
} failing_t;

#define PARKED "parked in uvt_sleep at %s:%d"
static const failing_t failing_tests[] = {
    {"macro_pending_task", "@macro-pending-check",
     "leaked task 'sleeper' created at %s:%d (macro_pending_main), " PARKED,
     "@macro-pending-spawn"},
    {"macro_never_awaited", "@macro-coro-check",
     "leaked coroutine 'work' created at %s:%d (macro_coro_main), never awaited",
     "@macro-coro-create"},
    {"macro_task_error", "@macro-error-check",
     "leaked error of task 'failing' created at %s:%d (macro_task_error_main): "
     "failed with -104 (connection reset by peer) \"peer went away\"; nobody "
     "read it",
     "@macro-error-spawn"},
    {"macro_future_error", "@macro-future-check",
     "leaked error of future created at %s:%d (macro_future_error_main): "
     "failed with -5 (i/o error) \"disk on fire\"; nobody read it",
     "@macro-future-new"},
    {"macro_after_run", "@after-run-check",
     "leaked task 'sleeper' created at %s:%d (after_run_main), " PARKED,
     "@after-run-spawn"},
    {"guard_pending_task", "UVT_TEST(leaks_fail, guard_pending_task)",
     "leaked task 'sleeper' created at %s:%d "
     "(leaks_fail::guard_pending_task), " PARKED,
     "@guard-pending-spawn"},
    {"guard_never_awaited", "UVT_TEST(leaks_fail, guard_never_awaited)",
     "leaked coroutine 'work' created at %s:%d "
     "(leaks_fail::guard_never_awaited), never awaited",
     "@guard-coro-create"},
    {"guard_task_error", "UVT_TEST(leaks_fail, guard_task_error)",
     "leaked error of task 'failing' created at %s:%d "
     "(leaks_fail::guard_task_error): failed with -104 (connection reset by "
     "peer) \"peer went away\"; nobody read it",
     "@guard-error-spawn"},
    {"guard_unreleased_handle", "UVT_TEST(leaks_fail, guard_unreleased_handle)",
     "leaked handle of task 'work' created at %s:%d "
     "(leaks_fail::guard_unreleased_handle), neither awaited nor detached",
     "@guard-unreleased-spawn"},
    {"guard_detached_error", "UVT_TEST(leaks_fail, guard_detached_error)",
     "leaked error of task 'failing' created at %s:%d "
     "(leaks_fail::guard_detached_error): failed with -104 (connection reset "
     "by peer) \"peer went away\"; nobody read it",
     "@guard-detached-spawn"},
    {"guard_future_error", "UVT_TEST(leaks_fail, guard_future_error)",
     "leaked error of future created at %s:%d "
     "(leaks_fail::guard_future_error): failed with -5 (i/o error) \"disk on "
     "fire\"; nobody read it",
     "@guard-future-new"},
    {"macro_stream", "@macro-stream-check",
     "leaked server 'echo' created at %s:%d (macro_stream_main), never closed",
     "@macro-stream-open"},
    {"guard_stream", "UVT_TEST(leaks_fail, guard_stream)",
     "leaked server 'echo' created at %s:%d (leaks_fail::guard_stream), never "
     "closed",
     "@guard-stream-open"},
};
#define NFAILING (sizeof(failing_tests) / sizeof(failing_tests[0]))

static size_t count_of(const char *hay, const char *needle) {
  size_t n = 0;
  const char *p = hay;
  while ((p = strstr(p, needle)) != NULL) {
    n++;
    p += strlen(needle);
  }
  return n;
}

/* Each test of test_leaks_fail, run alone, fails the way a user would see:
 * exit status 1, one failed assertion at the check (or UVT_TEST) line
 * naming the leaked object and where it was created. */
Test(leaks, leaking_tests_fail_naming_the_leak) {
  size_t i;
  int sleeper_line = marker_line("@sleeper-parked");
  for (i = 0; i < NFAILING; i++) {
    const failing_t *ft = &failing_tests[i];
    char filter[128], *out, *leak, *where, *verdict;
    int status;
    snprintf(filter, sizeof(filter), "leaks_fail/%s", ft->test);
    status = run_fail_bin("--filter", filter, &out);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) != 0,
              "%s: exit status %#x\n%s", ft->test, status, out);
    leak = fmt(ft->format, FAIL_SRC, marker_line(ft->made_marker), FAIL_SRC,
               sleeper_line);
    where = fmt("test_leaks_fail.c:%d: Assertion Failed",
                marker_line(ft->check_marker));
    verdict = fmt("[FAIL] leaks_fail::%s", ft->test);
    cr_expect_not_null(strstr(out, leak), "%s: no '%s' in:\n%s", ft->test,
                       leak, out);
    cr_expect_not_null(strstr(out, where), "%s: no '%s' in:\n%s", ft->test,
                       where, out);
    cr_expect_not_null(strstr(out, verdict), "%s:\n%s", ft->test, out);
    cr_expect_eq(count_of(out, "Assertion Failed"), 1, "%s:\n%s", ft->test, out);
    cr_expect_not_null(strstr(out, "Tested: 1 | Passing: 0 | Failing: 1 | Crashing: 0"),
                       "%s:\n%s", ft->test, out);
    free(leak);
    free(where);
    free(verdict);
    free(out);
  }
}

/* All of them at once with Criterion's parallel jobs: each test its own
 * process, nothing shared, every one fails. */
Test(leaks, leaking_tests_fail_in_parallel_jobs) {
  char *out, *summary;
  int status = run_fail_bin("--jobs", "2", &out);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0, "%#x\n%s", status, out);
  /* guard_await_cycle (below) is one more test, with three leaks: the
   * cycle and its two tasks. */
  summary = fmt("Tested: %zu | Passing: 0 | Failing: %zu | Crashing: 0",
                NFAILING + 1, NFAILING + 1);
  cr_assert_not_null(strstr(out, summary), "no '%s' in:\n%s", summary, out);
  cr_assert_eq(count_of(out, "Assertion Failed"), NFAILING + 3, "%s", out);
  free(summary);
  free(out);
}

/* Two tasks left parked on each other: the failure names the cycle (the
 * runtime's deadlock check), then both tasks, each with where it is
 * parked and the task it waits for, in either library. */
Test(leaks, tasks_parked_on_each_other_fail_naming_what_each_waits_for) {
  int lib;
  for (lib = 0; lib < 2; lib++) {
    char *out, *ping, *pong, *cycle;
    int status;
#ifdef UVT_TEST_NO_DEBUG_LIB
    if (lib == 1) break;
#endif
    status = run_fail_bin_env(lib == 1 ? "LD_LIBRARY_PATH=" UVT_BUILD_DIR "/debug" : NULL,
                              "--filter", "leaks_fail/guard_await_cycle", &out);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) != 0, "%#x\n%s", status, out);
    ping = fmt("leaked task 'ping' created at %s:%d (leaks_fail::guard_await_cycle), "
               "parked in uvt_await at %s:%d, waiting for task 'pong' created at %s:%d\n",
               FAIL_SRC, marker_line("@cycle-ping-spawn"), FAIL_SRC,
               marker_line("@ping-awaits"), FAIL_SRC, marker_line("@cycle-pong-spawn"));
    pong = fmt("leaked task 'pong' created at %s:%d (leaks_fail::guard_await_cycle), "
               "parked in uvt_await at %s:%d, waiting for task 'ping' created at %s:%d\n",
               FAIL_SRC, marker_line("@cycle-pong-spawn"), FAIL_SRC,
               marker_line("@pong-awaits"), FAIL_SRC, marker_line("@cycle-ping-spawn"));
    cycle = fmt("deadlock: 2 tasks wait on each other: 'pong' -> 'ping' -> 'pong'; "
                "closed by task 'pong' created at %s:%d", FAIL_SRC,
                marker_line("@cycle-pong-spawn"));
    cr_expect_not_null(strstr(out, cycle), "no '%s' in:\n%s", cycle, out);
    free(cycle);
    cr_expect_not_null(strstr(out, ping), "no '%s' in:\n%s", ping, out);
    cr_expect_not_null(strstr(out, pong), "no '%s' in:\n%s", pong, out);
    cr_expect_eq(count_of(out, "Assertion Failed"), 3, "%s", out);
    free(ping);
    free(pong);
    free(out);
  }
}

/* ---- a deadlock is named as a cycle ------------------------------------------ */

static uvt_lock_t dl_locks[2];
static int dl_taken, dl_line;

static int dl_taker(void *arg) {
  int first = *(int *)arg, st;
  uvt_lock_acquire(&dl_locks[first]);
  dl_taken++;
  uvt_yield();
  /* Cancelled by the test once the cycle is named. */
  dl_line = __LINE__; st = uvt_lock_acquire(&dl_locks[1 - first]);
  if (st == 0) uvt_lock_release(&dl_locks[1 - first]);
  uvt_lock_release(&dl_locks[first]);
  return 0;
}

static int deadlock_main(void *arg) {
  static int which[2] = {0, 1};
  uvt_task_t *t[2];
  const char *report;
  int n;
  (void)arg;
  uvt_leaks_set_settle_ms(20);
  uvt_lock_init(&dl_locks[0]);
  uvt_lock_init(&dl_locks[1]);
  t[0] = uvt_spawn(dl_taker, &which[0]);
  uvt_name(t[0], "alice");
  M.spawn_line = __LINE__; t[1] = uvt_spawn(dl_taker, &which[1]);
  uvt_name(t[1], "bob");
  M.check_line = __LINE__; n = uvt_assert_no_leaks(&report); record(n, report);
  uvt_cancel(t[0]);
  uvt_cancel(t[1]);
  uvt_gather(t, 2);
  uvt_detach(t[0]);
  uvt_detach(t[1]);
  return 0;
}

Test(leaks, tasks_that_deadlock_are_named_as_a_cycle) {
  char *want;
  cr_assert_eq(uvt_run(NULL, deadlock_main, NULL), 0);
  /* The cycle, then each of its tasks as pending. */
  cr_assert_eq(M.n, 3, "%s", M.report);
  want = fmt("deadlock: 2 tasks wait on each other: 'bob' -> 'alice' -> "
             "'bob'; closed by task 'bob' created at %s:%d (deadlock_main), "
             "parked in uvt_lock_acquire at %s:%d",
             __FILE__, M.spawn_line, __FILE__, dl_line);
  cr_assert_str_eq(M.text0, want);
  free(want);
}

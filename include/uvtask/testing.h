/*
 * uvtask/testing.h — leak assertions for test suites, as Go's goleak.
 *
 * A test leaks when, at its end, something it started is still alive: a
 * task still pending, a coroutine object never awaited, an error nobody
 * read (a task or a future that failed), a stream or server left open.
 * The checks read the runtime's own registry of live objects and the
 * findings uvt_run records, so they work in the release library as in the
 * debug one, and name each leaked object by kind, name and the file:line
 * (and function) of the call that created it; a pending task also says
 * where it is parked and what it waits for: the task it awaits, by name and
 * creation site, or the kind of object (a lock, a queue-get, ...).  Tasks
 * left parked on each other so name each other.  One leak per line:
 *
 *   tests/test_cache.c:12: leaked task 'refresher' created at src/cache.c:77 (cache_open), parked in uvt_sleep at src/cache.c:93
 *   tests/test_bank.c:30: leaked task 'ping' created at tests/test_bank.c:31 (bank::pair), parked in uvt_await at tests/test_bank.c:20, waiting for task 'pong' created at tests/test_bank.c:32
 *
 * Tasks that deadlocked (the runtime found their cycle, see README "When it
 * hangs") are named as a cycle first, then each as a pending task:
 *
 *   tests/test_bank.c:40: deadlock: 2 tasks wait on each other: 'alice' -> 'bob' -> 'alice'; closed by task 'bob' created at tests/test_bank.c:31 (pair), parked in uvt_lock_acquire at tests/test_bank.c:22
 *
 * Two layers:
 *
 *  1. Framework-independent functions, exported by libuvtask:
 *     uvt_assert_no_leaks() as the last statement of a task body (it first
 *     lets the loop settle), uvt_assert_no_leaks_after_run() after uvt_run
 *     has returned, an ignore list, the settle time.  They return the
 *     number of leaks and a report; failing the test is the caller's job.
 *
 *  2. Criterion integration, header-only (libuvtask never links Criterion):
 *     compiled when <criterion/criterion.h> was included before this header
 *     (or UVT_TESTING_CRITERION is defined, which includes it here):
 *     UVT_ASSERT_NO_LEAKS() and the whole-test guard UVT_TEST().  Criterion
 *     2.4.1 does not fail a test for an assertion that fails in a .fini
 *     fixture, so both fail the test from inside its body.
 *
 * Threads: the checks look at the loop of the calling thread only.  The
 * ignore list, the settle time and the test name are process-wide.  Nothing
 * is written to disk: Criterion's parallel jobs (each test its own process)
 * need no coordination.
 */
#ifndef UVTASK_TESTING_H
#define UVTASK_TESTING_H

#include "../uvtask.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- framework-independent checks ---------------------------------------- */

/* Check the current loop for leaks, from inside a task — normally as the
 * last statement of the test's main task.  It first lets the loop settle,
 * as goleak retries: it yields, then sleeps in 1 ms steps, until no other
 * task counted as a leak is pending, for at most the settle time (see
 * uvt_leaks_set_settle_ms; default 100 ms).  Then it counts:
 *
 *   - every other task still pending, except the loop's main task (uvt_run
 *     waits for it anyway) and the tasks waiting for the calling task,
 *     directly or through others (uvt_await, uvt_gather, uvt_wait);
 *   - every coroutine object not yet awaited, spawned or closed;
 *   - every task or future that failed (status < 0, not UVT_ECANCELED)
 *     whose error nobody read: handles still held, and handles already
 *     released whose error the runtime reported during the current uvt_run
 *     (since this thread's last uvt_run began, on a loop run by the caller);
 *   - every stream and server still open;
 *   - every deadlock found during the current uvt_run (one line naming
 *     the cycle; its tasks are also counted as pending).
 *
 * Objects whose name or creating function is on the ignore list are not
 * counted, and ignored tasks are not waited for.
 *
 * Returns the number of leaks (0: none), or UVT_ENOTASK when not called
 * from a task (use uvt_assert_no_leaks_after_run then).  If `report` is not
 * NULL, *report receives one line per leak, each "file:line: leaked ...",
 * where file:line is this call's; "" when there is none.  The string and
 * the texts of uvt_leak_text() belong to the library and stay valid until
 * the next check on the same thread.
 *
 * Nothing is cancelled or released: a test that wants to go on after a
 * failed check cleans up itself.  If the calling task is cancelled while
 * settling, settling stops and the cancellation is delivered again at its
 * next await. */
#define uvt_assert_no_leaks(report) \
  uvt_assert_no_leaks_at((report), __FILE__, __LINE__)
UVT_EXPORT int uvt_assert_no_leaks_at(const char **report, const char *file,
                                      int line);

/* The same verdict on the last uvt_run of this thread, after it returned:
 * what it reported when it ended (tasks pending when main returned,
 * coroutines never awaited, errors never read, streams never closed, task
 * and future handles never given up — unreleased-handle, counted only
 * here: inside a running task, main's own live handles are not leaks
 * yet) and,
 * during the run, errors of released handles nobody read.  Filtered by the
 * ignore list.  Nothing settles here: uvt_run gave main's stragglers no
 * time, so settle inside main first (uvt_leaks_settle) if they may still be
 * finishing — UVT_TEST does.  Valid until the next uvt_run on this thread.
 * Returns the number of leaks; `report` as for uvt_assert_no_leaks. */
#define uvt_assert_no_leaks_after_run(report) \
  uvt_assert_no_leaks_after_run_at((report), __FILE__, __LINE__)
UVT_EXPORT int uvt_assert_no_leaks_after_run_at(const char **report,
                                                const char *file, int line);

/* The i-th leak of this thread's last check, without the "file:line: "
 * prefix ("leaked task 'refresher' created at ..."); NULL when i is out of
 * range.  Owned by the library, valid until the next check. */
UVT_EXPORT const char *uvt_leak_text(size_t i);

/* Let the loop settle only: wait, as uvt_assert_no_leaks does, until no
 * other task it would count is pending, or the settle time has passed.
 * Returns how many are still pending, or UVT_ENOTASK outside a task. */
UVT_EXPORT int uvt_leaks_settle(void);

/* The longest time a check lets the loop settle, in milliseconds (0: do
 * not wait); returns the previous value.  A negative value only queries.
 * Default 100. */
UVT_EXPORT int64_t uvt_leaks_set_settle_ms(int64_t ms);

/* Do not count objects whose name or creating function is `name` (exact
 * match): a task's name (its function's unless renamed with uvt_name), a
 * coroutine's function, a stream's or server's name, or the function that
 * made the call creating any of them — as goleak's IgnoreTopFunction.
 * The string is copied.  Returns 0, UVT_EINVAL for NULL or "", UVT_ENOMEM. */
UVT_EXPORT int uvt_leaks_ignore(const char *name);

/* Empty the ignore list. */
UVT_EXPORT void uvt_leaks_ignore_clear(void);

/* The name of the test now running in this process ("suite::name"), kept
 * as a copy (at most 255 bytes; NULL clears it).  The debug library's
 * tracer is to record it in the session's row, so that `uvtask report`
 * can say which test leaked; the release library only keeps it.  UVT_TEST
 * sets it. */
UVT_EXPORT void uvt_testing_set_name(const char *name);

/* The name set last, or NULL.  Valid until the next uvt_testing_set_name. */
UVT_EXPORT const char *uvt_testing_name(void);

#ifdef __cplusplus
}
#endif

/* ---- Criterion ------------------------------------------------------------ *
 *
 * Include <criterion/criterion.h> first (or define UVT_TESTING_CRITERION):
 *
 *   #include <criterion/criterion.h>
 *   #include <uvtask/testing.h>
 *
 *   UVT_TEST(cache, refresh) {            // the body runs as uvt_run's main task
 *     cache_t *c = cache_open(...);
 *     cr_expect_eq(cache_refresh(c), 0);  // inside: cr_expect, not cr_assert
 *     cache_close(c);
 *   }                                     // then: fail for every leak
 *
 * Failures are sent with criterion_send_assert() and do not jump: a failed
 * cr_assert (or cr_fatal) longjmps, which from a task's body leaves its
 * coroutine stack behind — inside UVT_TEST bodies and other tasks use
 * cr_expect, or return early.
 */
#if defined(UVT_TESTING_CRITERION) && !defined(CRITERION_H_)
#include <criterion/criterion.h>
#endif

#ifdef CRITERION_H_
#include <stdio.h>
#include <string.h>

/* Mark the running test failed at file:line with `msg`, without jumping
 * (safe on a task's stack; --fail-fast does not abort here). */
static inline void uvt__criterion_fail(const char *file, int line,
                                       const char *msg) {
  struct criterion_assert_stats st;
  memset(&st, 0, sizeof(st));
  st.passed = false;
  st.file = file;
  st.line = (unsigned)line;
  st.message = msg;
  criterion_send_assert(&st);
}

/* Fail once per leak found by the last check. */
static inline void uvt__criterion_fail_leaks(int n, const char *file,
                                             int line) {
  char msg[128];
  int i;
  if (n < 0) {
    snprintf(msg, sizeof(msg), "leak check failed: %s", uvt_strerror(n));
    uvt__criterion_fail(file, line, msg);
    return;
  }
  for (i = 0; i < n; i++) {
    const char *text = uvt_leak_text((size_t)i);
    uvt__criterion_fail(file, line, text != NULL ? text : "leaked ?");
  }
}

static inline void uvt__criterion_assert_no_leaks(const char *file, int line) {
  int n = uvt_current() != NULL
              ? uvt_assert_no_leaks_at(NULL, file, line)
              : uvt_assert_no_leaks_after_run_at(NULL, file, line);
  uvt__criterion_fail_leaks(n, file, line);
}

/* As the last statement of a Criterion test body: fail the test once per
 * leak, each message naming the object.  Inside a task (a UVT_TEST body, a
 * main task of your own) it settles and checks the live loop; outside any
 * task (a plain Test, after uvt_run returned) it checks what the last
 * uvt_run of this thread reported. */
#define UVT_ASSERT_NO_LEAKS() uvt__criterion_assert_no_leaks(__FILE__, __LINE__)

/* Run a UVT_TEST body: name the test, run it as uvt_run's main task on a
 * private loop, then fail for every leak uvt_run found. */
static inline void uvt__criterion_run(uvt_fn task, const char *test,
                                      const char *file, int line) {
  int st;
  uvt_testing_set_name(test);
  st = uvt_run_at(NULL, task, NULL, test, file, line, test);
  if (st != 0) {
    char msg[160];
    snprintf(msg, sizeof(msg), "uvt_run failed: %d (%s)", st,
             uvt_strerror(st));
    uvt__criterion_fail(file, line, msg);
  }
  uvt__criterion_fail_leaks(uvt_assert_no_leaks_after_run_at(NULL, file, line),
                            file, line);
}

/* A Criterion test whose body runs as the main task of uvt_run(NULL, ...)
 * and which fails, once per leak, for everything still alive when the body
 * ends: after the body the loop settles (uvt_leaks_settle), then uvt_run's
 * own end-of-run report is checked (tasks still pending — which uvt_run
 * then cancels —, errors never read, coroutines never awaited, streams
 * never closed).  Takes Criterion's test options:
 * UVT_TEST(suite, name, .timeout = 10) { ... }.  The body is a void
 * function: `return;` ends it. */
#define UVT_TEST(Suite, Name, ...)                                             \
  static void uvt__test_body_##Suite##_##Name(void);                           \
  static int uvt__test_task_##Suite##_##Name(void *uvt__arg) {                 \
    (void)uvt__arg;                                                            \
    uvt__test_body_##Suite##_##Name();                                         \
    (void)uvt_leaks_settle();                                                  \
    return 0;                                                                  \
  }                                                                            \
  Test(Suite, Name, ##__VA_ARGS__) {                                           \
    uvt__criterion_run(uvt__test_task_##Suite##_##Name, #Suite "::" #Name,     \
                       __FILE__, __LINE__);                                    \
  }                                                                            \
  static void uvt__test_body_##Suite##_##Name(void)

#endif /* CRITERION_H_ */

#endif /* UVTASK_TESTING_H */

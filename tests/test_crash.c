/*
 * Crashes as findings: a program that dies of a signal inside a task
 * leaves a `crash` finding at the faulting line (unwound from the signal's
 * context), naming the task by its current name; the report exits 1, and
 * `--fail-on crash` selects it.  The crashing programs are
 * tests/progs/tracer_scenario.c's, run with the debug library in front.
 */
#include "e2e_support.h"

#include <signal.h>

#define SCENARIO UVT_BUILD_DIR "/tests/tracer_scenario"
#define SCENARIO_SRC UVT_SOURCE_DIR "/tests/progs/tracer_scenario.c"
#define UVTASK UVT_BUILD_DIR "/uvtask"

TestSuite(crash, .init = e2e_make_dir, .fini = e2e_remove_dir, .timeout = 60);

/* Run the scenario recording into e2e_db; it must die of `sig`. */
static void crash_run(const char *scenario, int sig) {
  char env_db[600], env_lib[600];
  char *argv[] = {(char *)SCENARIO, (char *)scenario, NULL};
  int status;
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", e2e_db);
  snprintf(env_lib, sizeof(env_lib), "LD_LIBRARY_PATH=%s/debug", UVT_BUILD_DIR);
  free(e2e_run(argv, env_db, env_lib, false, &status));
#if !defined(__SANITIZE_ADDRESS__)
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == sig,
            "%s: status %#x, expected death by signal %d", scenario, status, sig);
#else
  /* ASan reports a SEGV itself, after the tracer passed it on. */
  cr_assert(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0));
  (void)sig;
#endif
}

/* `uvtask report [opt] e2e_db`: its output; *status its exit status. */
static char *report(const char *opt, const char *arg, int *code) {
  char *argv[] = {(char *)UVTASK, "report", (char *)opt, (char *)arg, e2e_db, NULL};
  int status;
  char *out;
  if (opt == NULL) argv[2] = e2e_db, argv[3] = NULL;
  else if (arg == NULL) argv[3] = e2e_db, argv[4] = NULL;
  out = e2e_run(argv, NULL, NULL, false, &status);
  cr_assert(WIFEXITED(status), "uvtask report died: %#x", status);
  *code = WEXITSTATUS(status);
  return out;
}

/* The text report's diagnostic for the crash begins with the faulting
 * line: "tests/progs/tracer_scenario.c:N: warning: <text> [crash]". */
static void expect_crash_at(const char *out, const char *marker, const char *text) {
  char want[256];
  const char *at;
  snprintf(want, sizeof(want), "tracer_scenario.c:%d: warning: ",
           source_line(SCENARIO_SRC, marker));
  at = strstr(out, want);
  cr_expect_not_null(at, "no '%s' in:\n%s", want, out);
  if (at == NULL) return;
  cr_expect(strstr(at, text) != NULL && strstr(at, "[crash]") != NULL,
            "no '%s ... [crash]' after '%s' in:\n%s", text, want, out);
}

/* UBSan stops a NULL store before it faults (the sanitizer build exits
 * without a signal): the NULL-write tests run in the other builds. */
#if defined(__SANITIZE_ADDRESS__)
#define SKIP_UNDER_UBSAN() cr_skip_test("UBSan catches the NULL store first")
#else
#define SKIP_UNDER_UBSAN() (void)0
#endif

Test(crash, null_write_in_a_task_is_a_crash_finding_at_the_write) {
  int code;
  char *out;
  SKIP_UNDER_UBSAN();
  crash_run("null-write", SIGSEGV);
  out = report(NULL, NULL, &code);
  cr_expect_eq(code, 1, "report exit %d:\n%s", code, out);
  expect_crash_at(out, "@null-write */",
                  "task 'writer 7' crashed: SIGSEGV (invalid memory access) "
                  "at address 0x0");
  /* Where the task was created, as for every finding. */
  cr_expect(strstr(out, "created at") != NULL, "%s", out);
  free(out);
}

Test(crash, abort_in_a_task_is_a_crash_finding_at_the_abort_call) {
  int code;
  char *out;
  crash_run("abort", SIGABRT);
  out = report(NULL, NULL, &code);
  cr_expect_eq(code, 1, "report exit %d:\n%s", code, out);
  expect_crash_at(out, "@abort */", "crashed: SIGABRT (abort)");
  free(out);
}

Test(crash, fail_on_crash_selects_it) {
  int code;
  char *out;
  SKIP_UNDER_UBSAN();
  crash_run("null-write", SIGSEGV);
  free(report("--fail-on", "crash", &code));
  cr_expect_eq(code, 1);
  out = report("--format", "json", &code);
  cr_expect_eq(code, 1);
  cr_expect(strstr(out, "\"kind\": \"crash\"") != NULL ||
                strstr(out, "\"kind\":\"crash\"") != NULL,
            "%s", out);
  free(out);
}

Test(crash, stack_overflow_in_a_task_is_a_crash_finding_that_says_so) {
  int code;
  char *out;
  /* A fault in the guard page (SIGSEGV), or, where a kernel gives no
   * guard, the canary's abort: either way the finding names the task. */
  char env_db[600], env_lib[600];
  char *argv[] = {(char *)SCENARIO, "overflow", NULL};
  int status;
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", e2e_db);
  snprintf(env_lib, sizeof(env_lib), "LD_LIBRARY_PATH=%s/debug", UVT_BUILD_DIR);
  free(e2e_run(argv, env_db, env_lib, false, &status));
  cr_assert(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0),
            "the overflow must still kill the process: %#x", status);
  out = report(NULL, NULL, &code);
  cr_expect_eq(code, 1, "report exit %d:\n%s", code, out);
#if !defined(__SANITIZE_ADDRESS__)
  /* ASan's own stack-overflow report comes first in that build. */
  expect_crash_at(out, "@recurse */", "task 'overflows' overflowed its stack: ");
#endif
  free(out);
}

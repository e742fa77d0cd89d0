/*
 * What the recorder keeps for a failed or crashed object's report: the
 * stack where its error was raised (not uvtask's trampoline), and rows
 * for every ancestor of an object with a row (a parent chain must not end
 * in "not in the recording").  Runs tests/progs/tracer_scenario.c with the
 * debug library in front, then `uvtask report`.
 */
#include "e2e_support.h"

#define SCENARIO UVT_BUILD_DIR "/tests/tracer_scenario"
#define SCENARIO_SRC UVT_SOURCE_DIR "/tests/progs/tracer_scenario.c"
#define UVTASK UVT_BUILD_DIR "/uvtask"

TestSuite(tracer_rows, .init = e2e_make_dir, .fini = e2e_remove_dir, .timeout = 60);

/* Record the scenario (it exits 0), then return the text report. */
static char *record_and_report(const char *scenario) {
  char env_db[600], env_lib[600];
  char *run[] = {(char *)SCENARIO, (char *)scenario, NULL};
  char *rep[] = {(char *)UVTASK, "report", e2e_db, NULL};
  int status;
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", e2e_db);
  snprintf(env_lib, sizeof(env_lib), "LD_LIBRARY_PATH=%s/debug", UVT_BUILD_DIR);
  free(e2e_run(run, env_db, env_lib, false, &status));
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %#x",
            scenario, status);
  return e2e_run(rep, NULL, NULL, false, &status);
}

/* The report's frame line "FUNC  ...tracer_scenario.c:LINE" for the
 * marker's line, after the label `label`. */
static void expect_frame_after(const char *out, const char *label, const char *func,
                               const char *marker) {
  char want[256];
  const char *at = strstr(out, label);
  snprintf(want, sizeof(want), "tracer_scenario.c:%d", source_line(SCENARIO_SRC, marker));
  cr_expect_not_null(at, "no '%s' in:\n%s", label, out);
  if (at == NULL) return;
  at = strstr(at, func);
  cr_expect_not_null(at, "no frame '%s' after '%s' in:\n%s", func, label, out);
  if (at == NULL) return;
  cr_expect(strncmp(strstr(at, "tracer_scenario.c:") ? strstr(at, "tracer_scenario.c:") : "",
                    want, strlen(want)) == 0,
            "frame '%s' is not at %s in:\n%s", func, want, out);
}

Test(tracer_rows, a_returned_uvt_fail_keeps_the_failing_function_in_its_stack) {
  char *out = record_and_report("unretrieved-error");
  /* `return uvt_fail(...)` must not be compiled as a jump that leaves
   * only uvtask's frames to capture. */
  expect_frame_after(out, "raised at", "fails", "@raised */");
  free(out);
}

Test(tracer_rows, a_future_error_stack_starts_where_it_was_set) {
  char *out = record_and_report("future-error");
  expect_frame_after(out, "raised at", "fail_future", "@future-error */");
  free(out);
}

Test(tracer_rows, a_short_lived_parent_keeps_a_row_for_its_childs_chain) {
  char *out = record_and_report("orphan");
  char want[128];
  cr_expect(strstr(out, "[pending-at-exit]") != NULL, "%s", out);
  cr_expect(strstr(out, "not in the recording") == NULL, "chain cut:\n%s", out);
  cr_expect(strstr(out, "(task 'short_lived_parent' spawned at ") != NULL, "%s", out);
  snprintf(want, sizeof(want), "tracer_scenario.c:%d by task 'scenarios[i].fn')",
           source_line(SCENARIO_SRC, "@short-parent */"));
  cr_expect(strstr(out, want) != NULL, "no '%s' in:\n%s", want, out);
  free(out);
}

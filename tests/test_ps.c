/*
 * `uvtask ps`: a live recording process lists its tasks on request, each
 * at its parked line with a stack that reaches the user's function; a
 * recorded file shows its last snapshot; a process that is not recording
 * is never signalled (the signal would kill it).
 *
 * The programs are tests/progs/tracer_scenario.c's ("five": five tasks
 * parked on five different things, a sixth awaiting one), started with
 * posix_spawn (Criterion tests must not fork) and stopped by the test.
 */
#include "e2e_support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>

#define SCENARIO UVT_BUILD_DIR "/tests/tracer_scenario"
#define SCENARIO_SRC UVT_SOURCE_DIR "/tests/progs/tracer_scenario.c"
#define UVTASK UVT_BUILD_DIR "/uvtask"

TestSuite(ps, .init = e2e_make_dir, .fini = e2e_remove_dir, .timeout = 60);

/* Start the scenario, recording into e2e_db if `record`, and wait for its
 * "ready" line (all its tasks are parked then). */
static pid_t start_ready_err(const char *scenario, bool record, const char *err);

static pid_t start_ready(const char *scenario, bool record) {
  return start_ready_err(scenario, record, NULL);
}

/* As start_ready, its stderr into the file `err` (NULL: /dev/null). */
static pid_t start_ready_err(const char *scenario, bool record, const char *err) {
  char env_db[600], env_lib[600], buf[16];
  char *argv[] = {(char *)SCENARIO, (char *)scenario, NULL};
  char *envp[96];
  int n = 0, i, fd[2];
  pid_t pid;
  posix_spawn_file_actions_t fa;
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", e2e_db);
  snprintf(env_lib, sizeof(env_lib), "LD_LIBRARY_PATH=%s/debug", UVT_BUILD_DIR);
  if (record) envp[n++] = env_db;
  envp[n++] = env_lib;
  envp[n++] = "ASYNCIODEBUG_LOG=0";
  for (i = 0; environ[i] != NULL && n < 94; i++)
    if (strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0 &&
        strncmp(environ[i], "BXFI_", 5) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  cr_assert_eq(pipe(fd), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, err != NULL ? err : "/dev/null",
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  cr_assert_eq(posix_spawn(&pid, SCENARIO, &fa, NULL, argv, envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  cr_assert_gt(read(fd[0], buf, sizeof(buf)), 0, "%s never said ready", scenario);
  close(fd[0]);
  return pid;
}

static void stop(pid_t pid) {
  int status;
  kill(pid, SIGTERM);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
}

static char *ps(const char *target, int *code) {
  char *argv[] = {(char *)UVTASK, "ps", (char *)target, NULL};
  int status;
  char *out = e2e_run(argv, NULL, NULL, true, &status);
  cr_assert(WIFEXITED(status), "uvtask ps died: %#x", status);
  *code = WEXITSTATUS(status);
  return out;
}

/* The entry "task ... '<name>' parked [<call>, ..." parked at the marker's
 * line, with a stack whose first frame is <func> at that line. */
static void expect_parked(const char *out, const char *name, const char *call,
                          const char *func, const char *marker) {
  char head[128], at[128], frame[160];
  const char *e;
  int line = source_line(SCENARIO_SRC, marker);
  snprintf(head, sizeof(head), "'%s' parked [%s, ", name, call);
  snprintf(at, sizeof(at), "tracer_scenario.c:%d in %s\n", line, func);
  snprintf(frame, sizeof(frame), "    stack       %s  ", func);
  e = strstr(out, head);
  cr_expect_not_null(e, "no '%s' in:\n%s", head, out);
  if (e == NULL) return;
  e = strstr(e, "    parked at   ");
  cr_expect(e != NULL && strstr(e, at) != NULL && strstr(e, at) < strstr(e, "\n    created at"),
            "'%s' not parked at %s in:\n%s", name, at, out);
  e = e != NULL ? strstr(e, frame) : NULL;
  cr_expect_not_null(e, "no stack reaching %s for '%s' in:\n%s", func, name, out);
  if (e != NULL) {
    char want[64];
    const char *eol = strchr(e, '\n');
    snprintf(want, sizeof(want), "tracer_scenario.c:%d", line);
    cr_expect(strstr(e, want) != NULL && (eol == NULL || strstr(e, want) < eol),
              "%s's first frame is not at %s in:\n%s", name, want, out);
  }
}

static void expect_five(const char *out) {
  expect_parked(out, "on_lock", "uvt_lock_acquire", "on_lock", "@five-lock */");
  expect_parked(out, "on_event", "uvt_event_wait", "on_event", "@five-event */");
  expect_parked(out, "on_queue", "uvt_queue_get", "on_queue", "@five-queue */");
  expect_parked(out, "on_task", "uvt_await", "on_task", "@five-await */");
  expect_parked(out, "on_sleep", "uvt_sleep", "on_sleep", "@five-sleep */");
  cr_expect(strstr(out, "waits on    task #1:") != NULL, "%s", out);
  cr_expect(strstr(out, "await tree (") != NULL, "%s", out);
}

Test(ps, lists_a_live_recording_process_tasks_at_their_parked_lines) {
  pid_t pid = start_ready("five", true);
  char spid[32];
  int code;
  char *out;
  snprintf(spid, sizeof(spid), "%d", (int)pid);
  out = ps(spid, &code);
  cr_expect_eq(code, 0, "exit %d:\n%s", code, out);
  cr_expect(strstr(out, "uvtask: 7 tasks of process ") != NULL, "%s", out);
  expect_five(out);
  /* It is still running: a look does not stop it. */
  cr_expect_eq(waitpid(pid, NULL, WNOHANG), 0);
  free(out);
  stop(pid);
  /* The snapshot stays in the file. */
  out = ps(e2e_db, &code);
  cr_expect_eq(code, 0, "exit %d:\n%s", code, out);
  expect_five(out);
  free(out);
}

Test(ps, never_signals_a_process_that_is_not_recording) {
  pid_t rec = start_ready("wait-forever", true); /* makes the file */
  pid_t plain = start_ready("five", false);
  char spid[32], *argv[] = {(char *)UVTASK, "ps", "--db", e2e_db, spid, NULL};
  int status;
  char *out;
  snprintf(spid, sizeof(spid), "%d", (int)plain);
  out = ps(spid, &status);
  cr_expect_eq(status, 2, "%s", out);
  cr_expect(strstr(out, "not signalling it") != NULL, "%s", out);
  free(out);
  /* Even pointed at a recording file by hand. */
  out = e2e_run(argv, NULL, NULL, true, &status);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s", out);
  cr_expect(strstr(out, "not signalling it") != NULL, "%s", out);
  free(out);
  cr_expect_eq(waitpid(plain, NULL, WNOHANG), 0, "the plain process died");
  stop(plain);
  stop(rec);
}

Test(ps, a_file_without_snapshots_says_so) {
  pid_t rec = start_ready("wait-forever", true);
  int code;
  char *out;
  stop(rec);
  out = ps(e2e_db, &code);
  cr_expect_eq(code, 1, "%s", out);
  cr_expect(strstr(out, "holds no snapshot") != NULL, "%s", out);
  free(out);
}

Test(ps, sigquit_lists_the_tasks_on_stderr_records_a_snapshot_and_dumps_core) {
  char err_path[600], *text, *out;
  struct rlimit no_core = {0, 0};
  int status, code;
  size_t i;
  FILE *f;
  long len;
  pid_t pid;
  const char *lines[][2] = {{"@five-lock */", "on_lock"}, {"@five-event */", "on_event"},
                            {"@five-queue */", "on_queue"}, {"@five-sleep */", "on_sleep"},
                            {"@five-await */", "on_task"}};
  /* The default action dumps core: not into the build tree. */
  cr_assert_eq(setrlimit(RLIMIT_CORE, &no_core), 0);
  snprintf(err_path, sizeof(err_path), "%s/stderr.txt", e2e_dir);
  pid = start_ready_err("five", true, err_path);
  cr_assert_eq(kill(pid, SIGQUIT), 0);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGQUIT,
            "the default action must still end it: %#x", status);
  f = fopen(err_path, "r");
  cr_assert_not_null(f);
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  rewind(f);
  text = calloc(1, (size_t)len + 1);
  cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  cr_expect(strstr(text, "SIGQUIT: uvtask's tasks") != NULL, "%s", text);
  cr_expect(strstr(text, "uvtask: 7 tasks on scheduler #1") != NULL, "%s", text);
  for (i = 0; i < sizeof(lines) / sizeof(*lines); i++) {
    char want[256];
    snprintf(want, sizeof(want), "    parked at   %s:%d in %s\n", SCENARIO_SRC,
             source_line(SCENARIO_SRC, lines[i][0]), lines[i][1]);
    cr_expect(strstr(text, want) != NULL, "no '%s' in:\n%s", want, text);
  }
  free(text);
  /* The snapshot, with stacks, is in the file. */
  out = ps(e2e_db, &code);
  cr_expect_eq(code, 0, "%s", out);
  cr_expect(strstr(out, ": sigquit)") != NULL, "%s", out);
  expect_five(out);
  free(out);
  /* And the JSON report carries it. */
  {
    char *argv[] = {(char *)UVTASK, "report", "--format", "json", e2e_db, NULL};
    const char *snaps;
    int st;
    out = e2e_run(argv, NULL, NULL, false, &st);
    snaps = strstr(out, "\"snapshots\":[{");
    cr_expect_not_null(snaps, "%s", out);
    cr_expect(snaps != NULL && strstr(snaps, "\"reason\":\"sigquit\"") != NULL, "%s", out);
    cr_expect(snaps != NULL && strstr(snaps, "\"wait_what\":\"uvt_lock_acquire\"") != NULL,
              "%s", out);
    free(out);
  }
}

/* SIGQUIT's listing names each parked task's raw frames as
 * module+0xoffset, which addr2line turns into the user's function and the
 * line of its parking call; without recording too (the listing is printed
 * whenever the program left SIGQUIT at its default). */
Test(ps, sigquit_prints_frames_as_module_offset_for_addr2line) {
  char err_path[600], head[64], want_line[600], offset[32], *text, *out;
  struct rlimit no_core = {0, 0};
  const char *e;
  int status;
  size_t k;
  FILE *f;
  long len;
  pid_t pid;
  cr_assert_eq(setrlimit(RLIMIT_CORE, &no_core), 0);
  snprintf(err_path, sizeof(err_path), "%s/stderr.txt", e2e_dir);
  pid = start_ready_err("five", false, err_path);
  cr_assert_eq(kill(pid, SIGQUIT), 0);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGQUIT, "%#x", status);
  f = fopen(err_path, "r");
  cr_assert_not_null(f);
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  rewind(f);
  text = calloc(1, (size_t)len + 1);
  cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  e = strstr(text, "SIGQUIT: frames as module+offset");
  cr_assert_not_null(e, "%s", text);
  /* on_lock's entry: its first frame is in the program. */
  snprintf(head, sizeof(head), "'on_lock'\n    #0 ");
  e = strstr(e, head);
  cr_assert_not_null(e, "no frames for on_lock in:\n%s", text);
  e += strlen(head);
  cr_assert(strncmp(e, SCENARIO "+0x", strlen(SCENARIO "+0x")) == 0,
            "on_lock's frame #0 is not in %s:\n%s", SCENARIO, text);
  e += strlen(SCENARIO "+");
  for (k = 0; k < sizeof(offset) - 1 && e[k] != '\n' && e[k] != '\0'; k++) offset[k] = e[k];
  offset[k] = '\0';
  {
    char *argv[] = {"addr2line", "-f", "-e", (char *)SCENARIO, offset, NULL};
    out = e2e_run(argv, NULL, NULL, false, &status);
  }
  snprintf(want_line, sizeof(want_line), "on_lock\n%s:%d", SCENARIO_SRC,
           source_line(SCENARIO_SRC, "@five-lock */"));
  cr_expect(strstr(out, want_line) != NULL, "addr2line %s: %s, not %s", offset, out,
            want_line);
  free(out);
  free(text);
}

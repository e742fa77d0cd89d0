/*
 * Helpers shared by the end-to-end tests that run the examples and the
 * `uvtask` command as separate programs (Criterion tests must not fork:
 * they posix_spawn): a private temporary directory per test, the line of
 * an example's source that holds a given text, and running a program with
 * extra environment entries while capturing what it prints.
 *
 * Header-only, for one test file each; the functions are static.
 */
#ifndef UVT_TESTS_E2E_SUPPORT_H
#define UVT_TESTS_E2E_SUPPORT_H

#include <criterion/criterion.h>
#include "source_line.h"
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char e2e_dir[256], e2e_db[512];

/* .init / .fini of a suite: a fresh directory with e2e_db inside. */
__attribute__((unused)) static void e2e_make_dir(void) {
  snprintf(e2e_dir, sizeof(e2e_dir), "/tmp/uvt-e2e-XXXXXX");
  cr_assert_not_null(mkdtemp(e2e_dir));
  snprintf(e2e_db, sizeof(e2e_db), "%s/trace.db", e2e_dir);
}

__attribute__((unused)) static void e2e_remove_dir(void) {
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e2e_dir);
  (void)!system(cmd);
}

/* The 1-based line of examples/<example>.c holding `needle`. */
__attribute__((unused)) static int e2e_line_of(const char *example, const char *needle) {
  char path[512];
  snprintf(path, sizeof(path), "%s/examples/%s.c", UVT_SOURCE_DIR, example);
  return source_line(path, needle);
}

/* Run argv[0] (searched in PATH) with env1/env2 (may be NULL) added and
 * ASYNCIODEBUG_LOG=0, ahead of this process's environment minus the
 * variables that would change what is run (ASYNCIODEBUG*, the library
 * path, Criterion's own).  Its stdout (and stderr if `both`, else
 * /dev/null) is returned, malloc'd; *status gets its wait status. */
__attribute__((unused)) static char *e2e_run(char *const argv[], const char *env1, const char *env2,
                     bool both, int *status) {
  char *envp[96], *out = NULL;
  size_t len = 0, cap = 0;
  int n = 0, i, fd[2];
  ssize_t got;
  pid_t pid;
  posix_spawn_file_actions_t fa;
  if (env1 != NULL) envp[n++] = (char *)env1;
  if (env2 != NULL) envp[n++] = (char *)env2;
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
  if (both) posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
  else posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  cr_assert_eq(posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp), 0,
               "cannot start %s", argv[0]);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 65536;
      out = realloc(out, cap);
      cr_assert_not_null(out);
    }
    got = read(fd[0], out + len, cap - len - 1);
    if (got <= 0) break;
    len += (size_t)got;
  }
  out[len] = '\0';
  close(fd[0]);
  cr_assert_eq(waitpid(pid, status, 0), pid);
  return out;
}

/* Run build/examples/<example> [arg] with recording on into e2e_db (the
 * debug library in front) and require it to exit 0. */
__attribute__((unused)) static void e2e_record(const char *prog, const char *arg) {
  char env_db[600], env_lib[600];
  char *argv[] = {(char *)prog, (char *)arg, NULL};
  int status;
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", e2e_db);
  snprintf(env_lib, sizeof(env_lib), "LD_LIBRARY_PATH=%s/debug", UVT_BUILD_DIR);
  free(e2e_run(argv, env_db, env_lib, false, &status));
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %d",
            prog, status);
}

#endif

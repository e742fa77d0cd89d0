/*
 * Running one benchmark variant in a fresh process: the library from a
 * given directory in front, recording on or off, stdout captured.
 * Header-only, for the bench programs (bench_tracer, bench_chat).
 */
#ifndef UVT_BENCH_SPAWN_CAPTURE_H
#define UVT_BENCH_SPAWN_CAPTURE_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

extern char **environ;

/* Run argv with LD_LIBRARY_PATH=libdir and, if db is not NULL, recording
 * on into it (ASYNCIODEBUG=db, ASYNCIODEBUG_LOG=0, then the NULL-ended
 * `rec_env`, may be NULL); the caller's own ASYNCIODEBUG* and
 * LD_LIBRARY_PATH are left out.  Its stdout goes into buf (NUL-ended).  A
 * child still running after bound_s seconds (0: no bound) is killed.
 * Returns 0 if it exited 0, -2 if it was killed, else -1. */
static int spawn_capture(char *const argv[], const char *libdir, const char *db,
                         const char *const *rec_env, double bound_s, char *buf,
                         size_t cap) {
  char lib_env[4200], db_env[4200];
  char *envp[128];
  int n = 0, i, status, fd[2], killed = 0;
  size_t len = 0;
  posix_spawn_file_actions_t fa;
  pid_t pid;
  uint64_t bound = bound_s > 0 ? uv_hrtime() + (uint64_t)(bound_s * 1e9) : UINT64_MAX;
  snprintf(lib_env, sizeof(lib_env), "LD_LIBRARY_PATH=%s", libdir);
  envp[n++] = lib_env;
  if (db != NULL) {
    snprintf(db_env, sizeof(db_env), "ASYNCIODEBUG=%s", db);
    envp[n++] = db_env;
    envp[n++] = "ASYNCIODEBUG_LOG=0";
    for (i = 0; rec_env != NULL && rec_env[i] != NULL && n < 16; i++)
      envp[n++] = (char *)rec_env[i];
  }
  for (i = 0; environ[i] != NULL && n < 120; i++)
    if (strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  if (pipe(fd) != 0) return -1;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  i = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  if (i != 0) {
    close(fd[0]);
    return -1;
  }
  for (;;) {
    struct pollfd p = {fd[0], POLLIN, 0};
    uint64_t now = uv_hrtime();
    int wait_ms = -1;
    ssize_t got;
    if (now >= bound) {
      kill(pid, SIGKILL);
      killed = 1;
      break;
    }
    if (bound != UINT64_MAX) wait_ms = (int)((bound - now) / 1000000) + 1;
    if (poll(&p, 1, wait_ms) < 0 && errno != EINTR) break;
    if (p.revents == 0) continue;
    got = read(fd[0], buf + len, cap - 1 - len);
    if (got <= 0) break;
    len += (size_t)got;
    if (len + 1 >= cap) break;
  }
  buf[len] = '\0';
  close(fd[0]);
  waitpid(pid, &status, 0);
  if (killed) return -2;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

#endif

/*
 * Running a program that hangs (tests/progs/hang_scenario.c) and reading
 * what it prints while it still runs: stdout and stderr each come back
 * through a pipe, polled with a bound; the test kills the program once it
 * has seen what it waits for.  Criterion tests must not fork: posix_spawn.
 *
 * Header-only, for one test file each; the functions are static.
 */
#ifndef UVT_TESTS_HANG_SUPPORT_H
#define UVT_TESTS_HANG_SUPPORT_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct {
  pid_t pid;
  int fd[2];           /* stdout, stderr: read ends, -1 once at EOF */
  char text[2][65536]; /* what each said so far, NUL-terminated */
  size_t len[2];
  int status;          /* once it has ended (hang_finish/hang_kill) */
} hang_proc_t;

/* Start `prog` `arg` with `extra` (NULL-terminated, may be NULL) added to
 * the environment, minus what would change the library or the recording
 * (LD_*, ASYNCIODEBUG*) and Criterion's own variables (BXFI_*). */
static void hang_start_argv(hang_proc_t *p, char *const *argv,
                            const char *const *extra) {
  const char *prog = argv[0];
  char *envp[256];
  int n = 0, i, out[2], err[2];
  posix_spawn_file_actions_t fa;
  memset(p, 0, sizeof(*p));
  for (i = 0; extra != NULL && extra[i] != NULL && n < 64; i++)
    envp[n++] = (char *)extra[i];
  for (i = 0; environ[i] != NULL && n < 255; i++)
    if (strncmp(environ[i], "LD_", 3) != 0 &&
        strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "BXFI_", 5) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
  cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  cr_assert_eq(posix_spawn(&p->pid, prog, &fa, NULL, argv, envp), 0, "%s", prog);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(err[1]);
  p->fd[0] = out[0];
  p->fd[1] = err[0];
}

__attribute__((unused)) static void hang_start(hang_proc_t *p, const char *prog,
                                               const char *arg,
                                               const char *const *extra) {
  char *argv[3] = {(char *)prog, (char *)arg, NULL};
  hang_start_argv(p, argv, extra);
}

static long hang_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Read what is there, waiting at most `ms`; false once both pipes ended. */
static bool hang_read(hang_proc_t *p, int ms) {
  struct pollfd pf[2];
  int i, k = 0, idx[2];
  for (i = 0; i < 2; i++)
    if (p->fd[i] >= 0) {
      pf[k].fd = p->fd[i];
      pf[k].events = POLLIN;
      idx[k++] = i;
    }
  if (k == 0) return false;
  if (poll(pf, (nfds_t)k, ms) <= 0) return true;
  for (i = 0; i < k; i++) {
    int w = idx[i];
    size_t room = sizeof(p->text[w]) - 1 - p->len[w];
    ssize_t r;
    if (!(pf[i].revents & (POLLIN | POLLHUP))) continue;
    r = room > 0 ? read(p->fd[w], p->text[w] + p->len[w], room) : 0;
    if (r <= 0) {
      close(p->fd[w]);
      p->fd[w] = -1;
    } else {
      p->len[w] += (size_t)r;
      p->text[w][p->len[w]] = '\0';
    }
  }
  return true;
}

/* How many times `needle` occurs in `s`. */
__attribute__((unused)) static int hang_count(const char *s, const char *needle) {
  int n = 0;
  size_t len = strlen(needle);
  while ((s = strstr(s, needle)) != NULL) {
    n++;
    s += len;
  }
  return n;
}

/* Wait (at most `bound_ms`: a bound, not a delay) until stream `which`
 * (0: stdout, 1: stderr) holds `needle` `count` times; true if it does. */
__attribute__((unused)) static bool hang_wait_for(hang_proc_t *p, int which,
                                                  const char *needle, int count,
                                                  long bound_ms) {
  long end = hang_now_ms() + bound_ms;
  while (hang_count(p->text[which], needle) < count) {
    long left = end - hang_now_ms();
    if (left <= 0 || !hang_read(p, (int)(left > 200 ? 200 : left))) break;
  }
  return hang_count(p->text[which], needle) >= count;
}

/* Stop it (SIGKILL), read what is left, reap it. */
__attribute__((unused)) static void hang_kill(hang_proc_t *p) {
  kill(p->pid, SIGKILL);
  while (hang_read(p, 1000)) {
  }
  waitpid(p->pid, &p->status, 0);
}

/* Let it end by itself, within `bound_ms`; true if it did (then
 * p->status is its wait status), else it is killed. */
__attribute__((unused)) static bool hang_finish(hang_proc_t *p, long bound_ms) {
  long end = hang_now_ms() + bound_ms;
  while (hang_now_ms() < end && hang_read(p, 200)) {
  }
  if (p->fd[0] >= 0 || p->fd[1] >= 0) {
    hang_kill(p);
    return false;
  }
  waitpid(p->pid, &p->status, 0);
  return true;
}

#endif

/*
 * bench_instr: instructions per operation of the task layer's two hottest
 * paths, counted by callgrind (no timing noise; these VMs have no hardware
 * counters):
 *
 *   spawn+await+detach   spawn a trivial task, await it, detach the
 *                        handle (a no-op after the await: the same loop as
 *                        the figures recorded before the hang checks)
 *   lock                 uncontended uvt_lock_acquire + uvt_lock_release
 *   gather               per task of 10,000 spawned at once, gathered and
 *                        detached (issue 12's "100k gathered" path)
 *   group                per task of 10,000 spawned into a task group,
 *                        which is then left (issue 12: a group of 100k
 *                        within 1.2x of 100k gathered)
 *   pong                 per hand-off of two tasks taking turns with
 *                        uvt_yield (bench_tracer's ping-pong)
 *
 * Usage:
 *   bench_instr               run itself under valgrind --tool=callgrind
 *                             with N = 100,000 and 200,000 per mode and
 *                             print (count(2N) - count(N)) / N for each:
 *                             start-up and shutdown cancel out
 *   bench_instr MODE N        just run N iterations of MODE (spawn, lock,
 *                             gather, group, pong)
 *
 * Needs valgrind in PATH; the library is the one this program was linked
 * with (the build's release library).
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uvtask.h>

extern char **environ;

static long iterations;
static const char *mode;

static int child(void *arg) {
  (void)arg;
  return 0;
}

static int ponger(void *arg) {
  long i;
  (void)arg;
  /* Two of these: each yield hands off to the other, N hand-offs in all. */
  for (i = 0; i < iterations / 2; i++)
    if (uvt_yield() != 0) return -1;
  return 0;
}

static int loop_main(void *arg) {
  long i;
  (void)arg;
  if (strcmp(mode, "spawn") == 0) {
    for (i = 0; i < iterations; i++) {
      uvt_task_t *t = uvt_spawn(child, NULL);
      uvt_await(t);
      uvt_detach(t);
    }
  } else if (strcmp(mode, "gather") == 0) {
    enum { BATCH = 10000 };
    uvt_task_t **ts = malloc(BATCH * sizeof(*ts));
    long done, k;
    if (ts == NULL) return UVT_ENOMEM;
    for (done = 0; done < iterations; done += BATCH) {
      for (k = 0; k < BATCH; k++) ts[k] = uvt_spawn(child, NULL);
      (void)uvt_gather(ts, BATCH);
      for (k = 0; k < BATCH; k++) uvt_detach(ts[k]);
    }
    free(ts);
  } else if (strcmp(mode, "group") == 0) {
    enum { BATCH = 10000 };
    long done, k;
    for (done = 0; done < iterations; done += BATCH) {
      uvt_group_t g;
      int err = uvt_group_init(&g);
      for (k = 0; k < BATCH && err == 0; k++)
        if (uvt_group_spawn(&g, child, NULL) == NULL) err = UVT_ENOMEM;
      err = uvt_group_leave(&g, err);
      uvt_group_destroy(&g);
      if (err != 0) return err;
    }
  } else if (strcmp(mode, "pong") == 0) {
    uvt_task_t *ts[2];
    ts[0] = uvt_spawn(ponger, NULL);
    ts[1] = uvt_spawn(ponger, NULL);
    if (ts[0] == NULL || ts[1] == NULL) return UVT_ENOMEM;
    if (uvt_gather(ts, 2) != 0) return -1;
    uvt_detach(ts[0]);
    uvt_detach(ts[1]);
  } else {
    uvt_lock_t l;
    uvt_lock_init(&l);
    for (i = 0; i < iterations; i++) {
      uvt_lock_acquire(&l);
      uvt_lock_release(&l);
    }
    uvt_lock_destroy(&l);
  }
  return 0;
}

/* Instructions callgrind counted for `self MODE n`, or -1. */
static long long counted(const char *self, const char *m, long n) {
  char nbuf[32], out[4096];
  char *argv[] = {"valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                  (char *)self, (char *)m, nbuf, NULL};
  posix_spawn_file_actions_t fa;
  int fd[2], status;
  size_t len = 0;
  ssize_t r;
  pid_t pid;
  const char *at;
  snprintf(nbuf, sizeof(nbuf), "%ld", n);
  if (pipe(fd) != 0) return -1;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  if (posix_spawnp(&pid, "valgrind", &fa, NULL, argv, environ) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    return -1;
  }
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  while ((r = read(fd[0], out + len, sizeof(out) - 1 - len)) > 0) {
    len += (size_t)r;
    if (len == sizeof(out) - 1) {
      /* Keep the tail: the count is printed last. */
      memmove(out, out + len / 2, len - len / 2);
      len -= len / 2;
    }
  }
  out[len] = '\0';
  close(fd[0]);
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  at = strstr(out, "Collected : ");
  return at != NULL ? atoll(at + 12) : -1;
}

int main(int argc, char **argv) {
  static const struct {
    const char *mode, *label;
  } modes[] = {{"spawn", "spawn+await+detach"},
               {"lock", "lock acquire+release (uncontended)"},
               {"gather", "spawn+gather+detach, per task of 10k"},
               {"group", "group spawn+leave, per task of 10k"},
               {"pong", "yield ping-pong, per hand-off"}};
  size_t i;
  if (argc == 3) {
    mode = argv[1];
    iterations = atol(argv[2]);
    return uvt_run(NULL, loop_main, NULL) == 0 ? 0 : 1;
  }
  printf("instructions per operation (callgrind, (count(200k) - count(100k)) / 100k)\n");
  for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
    long long a = counted(argv[0], modes[i].mode, 100000);
    long long b = counted(argv[0], modes[i].mode, 200000);
    if (a < 0 || b < 0) {
      fprintf(stderr, "bench_instr: could not run valgrind --tool=callgrind\n");
      return 1;
    }
    printf("%-36s %8.1f instr\n", modes[i].label, (double)(b - a) / 100000.0);
  }
  return 0;
}

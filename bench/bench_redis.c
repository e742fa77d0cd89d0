/*
 * bench_redis — pipelined SETs per second: the uvtask Redis client
 * (examples/redisclient) against redis-benchmark, on the same private
 * redis-server, in the same run.
 *
 * Both sides do the same work: CLIENTS connections over the server's Unix
 * socket, each sending PIPELINE SETs of key "key:__rand_int__" to a
 * 3-byte value and waiting for their replies before sending the next
 * PIPELINE, TOTAL SETs in all — exactly what
 *
 *     redis-benchmark -s SOCK -t set -P PIPELINE -c CLIENTS -n TOTAL
 *
 * does (its default key and value without -r and -d).  Rounds alternate
 * between the two; the medians and their ratio are printed (target: the
 * uvtask client at >= 0.80 of redis-benchmark).
 *
 * Usage: bench_redis [-n TOTAL] [-c CLIENTS] [-P PIPELINE] [-r ROUNDS]
 *                    [--socket PATH]
 * Without --socket it starts a private redis-server (tests/redis_server.h).
 * Needs Debian's redis-server and redis-tools packages.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../examples/redisclient/redis.c"
#include "median.h"
#include "../tests/redis_server.h"

#define MAX_ROUNDS 15

typedef struct {
  const char *sock;
  long total;
  int clients;
  int pipeline;
  int rounds;
} config_t;

/* ---- redis-benchmark ----------------------------------------------------- */

/* Run redis-benchmark with --csv and return its SET requests/s (< 0 on
 * failure). */
static double run_redis_benchmark(const config_t *cfg) {
  char n[32], c[32], p[32], out[4096];
  char *argv[] = {"redis-benchmark", "-s", (char *)cfg->sock, "-t", "set",
                  "-P", p, "-c", c, "-n", n, "--csv", NULL};
  posix_spawn_file_actions_t fa;
  int pipefd[2], status;
  size_t len = 0;
  ssize_t k;
  pid_t pid;
  char *line;
  snprintf(n, sizeof n, "%ld", cfg->total);
  snprintf(c, sizeof c, "%d", cfg->clients);
  snprintf(p, sizeof p, "%d", cfg->pipeline);
  if (pipe(pipefd) != 0) return -1;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
    fprintf(stderr, "bench_redis: cannot run redis-benchmark (install "
                    "Debian's redis-tools)\n");
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[0]);
    close(pipefd[1]);
    return -1;
  }
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  while (len < sizeof out - 1 && (k = read(pipefd[0], out + len, sizeof out - 1 - len)) > 0)
    len += (size_t)k;
  out[len] = '\0';
  close(pipefd[0]);
  waitpid(pid, &status, 0);
  /* "SET","252844.50",... */
  line = strstr(out, "\"SET\",\"");
  if (line == NULL) {
    fprintf(stderr, "bench_redis: unexpected redis-benchmark output:\n%s\n", out);
    return -1;
  }
  return strtod(line + 7, NULL);
}

/* ---- the uvtask client --------------------------------------------------- */

typedef struct {
  const config_t *cfg;
  long remaining; /* SETs not yet claimed by a client */
  long done;
  int errors;
  int connected;
  uvt_event_t start;
} run_t;

static run_t RUN;

static int set_client(void *arg) {
  const config_t *cfg = RUN.cfg;
  uvt_future_t *f[256];
  redis_t *r;
  int err = redis_connect_unix(cfg->sock, &r);
  (void)arg;
  if (err != 0) {
    RUN.errors++;
    return uvt_fail(err, "connect: %s", redis_strerror(err));
  }
  RUN.connected++;
  if (uvt_event_wait(&RUN.start) == 0) {
    while (RUN.remaining > 0) {
      int batch = RUN.remaining < cfg->pipeline ? (int)RUN.remaining : cfg->pipeline;
      RUN.remaining -= batch;
      for (int i = 0; i < batch; i++) f[i] = redis_set(r, "key:__rand_int__", "xxx");
      for (int i = 0; i < batch; i++) {
        if (redis_await(r, f[i], NULL) != 0) RUN.errors++;
        else RUN.done++;
      }
    }
  }
  return redis_close(r);
}

static int uvtask_main(void *arg) {
  double *rps = arg;
  const config_t *cfg = RUN.cfg;
  uvt_task_t **t = calloc((size_t)cfg->clients, sizeof(*t));
  uint64_t t0;
  for (int i = 0; i < cfg->clients; i++) t[i] = uvt_spawn(set_client, NULL);
  while (RUN.connected + RUN.errors < cfg->clients) uvt_sleep(1);
  t0 = uv_hrtime();
  uvt_event_set(&RUN.start);
  uvt_gather(t, (size_t)cfg->clients);
  *rps = RUN.done / ((uv_hrtime() - t0) / 1e9);
  for (int i = 0; i < cfg->clients; i++) uvt_detach(t[i]);
  free(t);
  return RUN.errors == 0 && RUN.done == cfg->total ? 0 : -1;
}

static double run_uvtask(const config_t *cfg) {
  double rps = -1;
  memset(&RUN, 0, sizeof RUN);
  RUN.cfg = cfg;
  RUN.remaining = cfg->total;
  uvt_event_init(&RUN.start);
  if (uvt_run(NULL, uvtask_main, &rps) != 0) {
    fprintf(stderr, "bench_redis: uvtask client failed (%d errors, %ld done)\n",
            RUN.errors, RUN.done);
    rps = -1;
  }
  uvt_event_destroy(&RUN.start);
  return rps;
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv) {
  config_t cfg = {NULL, 200000, 50, 16, 5};
  redis_server_t server = {0};
  double ours[MAX_ROUNDS], theirs[MAX_ROUNDS], mo, mt;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) cfg.total = atol(argv[++i]);
    else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) cfg.clients = atoi(argv[++i]);
    else if (strcmp(argv[i], "-P") == 0 && i + 1 < argc) cfg.pipeline = atoi(argv[++i]);
    else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) cfg.rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) cfg.sock = argv[++i];
    else {
      fprintf(stderr, "usage: %s [-n TOTAL] [-c CLIENTS] [-P PIPELINE] "
                      "[-r ROUNDS] [--socket PATH]\n", argv[0]);
      return 2;
    }
  }
  if (cfg.total < 1 || cfg.clients < 1 || cfg.pipeline < 1 || cfg.pipeline > 256 ||
      cfg.rounds < 1 || cfg.rounds > MAX_ROUNDS) {
    fprintf(stderr, "bench_redis: bad arguments (PIPELINE 1..256, ROUNDS 1..%d)\n",
            MAX_ROUNDS);
    return 2;
  }
  if (cfg.sock == NULL) {
    if (redis_server_start(&server) != 0) return 1;
    cfg.sock = server.sock;
  }
  printf("bench_redis: %ld SETs, %d clients, pipeline %d, %d rounds, %s\n",
         cfg.total, cfg.clients, cfg.pipeline, cfg.rounds, cfg.sock);
  for (int r = 0; r < cfg.rounds; r++) {
    theirs[r] = run_redis_benchmark(&cfg);
    ours[r] = run_uvtask(&cfg);
    printf("  round %d: redis-benchmark %10.0f SET/s   uvtask client %10.0f SET/s\n",
           r + 1, theirs[r], ours[r]);
    if (theirs[r] < 0 || ours[r] < 0) {
      if (server.pid > 0) redis_server_stop(&server);
      return 1;
    }
  }
  if (server.pid > 0) redis_server_stop(&server);
  mt = median(theirs, cfg.rounds);
  mo = median(ours, cfg.rounds);
  printf("median:    redis-benchmark %10.0f SET/s   uvtask client %10.0f SET/s\n", mt, mo);
  printf("ratio uvtask / redis-benchmark: %.2f (target >= 0.80)\n", mo / mt);
  return 0;
}

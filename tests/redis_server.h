/*
 * A private redis-server for tests, examples and benchmarks.
 *
 * redis_server_start() makes a directory with mkdtemp, starts
 *
 *     redis-server --port 0 --unixsocket DIR/redis.sock --save "" \
 *                  --appendonly no --daemonize no --dir DIR \
 *                  --logfile DIR/redis.log
 *
 * with posix_spawn (never fork: a fork inside a Criterion test can hang
 * the runner), and waits until the socket answers PING.  It listens on no
 * TCP port and persists nothing; the system-wide server, if any, is never
 * touched.  redis_server_stop() sends SIGTERM, waits (SIGKILL after 5 s),
 * and removes the directory.  Where util-linux's setpriv exists the server
 * runs under `setpriv --pdeathsig KILL`, so a test process that crashes
 * does not leave it behind.
 *
 * Header-only (static inline), so each test, example and benchmark
 * includes it as it is.  Needs Debian's redis-server package.
 */
#ifndef UVT_TESTS_REDIS_SERVER_H
#define UVT_TESTS_REDIS_SERVER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct redis_server_s {
  pid_t pid;
  char dir[64];
  char sock[96]; /* fits in sockaddr_un.sun_path */
} redis_server_t;

static inline void redis_server__sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* One blocking PING over the socket: true if "+PONG" came back. */
static inline int redis_server__ping(const char *sock) {
  struct sockaddr_un a;
  char buf[16];
  ssize_t n;
  int ok = 0;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(sock) >= sizeof a.sun_path) {
    close(fd);
    return 0;
  }
  memcpy(a.sun_path, sock, strlen(sock) + 1);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      write(fd, "PING\r\n", 6) == 6 && (n = read(fd, buf, sizeof buf - 1)) > 0) {
    buf[n] = '\0';
    ok = strncmp(buf, "+PONG", 5) == 0;
  }
  close(fd);
  return ok;
}

static inline void redis_server__rmdir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  if (d != NULL) {
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* Stop the server (if running) and remove its directory. */
static inline void redis_server_stop(redis_server_t *rs) {
  int status;
  if (rs->pid > 0) {
    kill(rs->pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
      if (waitpid(rs->pid, &status, WNOHANG) == rs->pid) {
        rs->pid = 0;
        break;
      }
      redis_server__sleep_ms(10);
    }
    if (rs->pid > 0) {
      kill(rs->pid, SIGKILL);
      waitpid(rs->pid, &status, 0);
      rs->pid = 0;
    }
  }
  if (rs->dir[0] != '\0') {
    redis_server__rmdir(rs->dir);
    rs->dir[0] = '\0';
  }
}

/* Start a private server; 0, or -1 with the reason on stderr. */
static inline int redis_server_start(redis_server_t *rs) {
  char logfile[160];
  const char *setpriv = "/usr/bin/setpriv";
  char *argv[24];
  int argc = 0, err, status;
  memset(rs, 0, sizeof *rs);
  snprintf(rs->dir, sizeof rs->dir, "/tmp/uvt-redis-XXXXXX");
  if (mkdtemp(rs->dir) == NULL) {
    fprintf(stderr, "redis_server_start: mkdtemp: %s\n", strerror(errno));
    rs->dir[0] = '\0';
    return -1;
  }
  snprintf(rs->sock, sizeof rs->sock, "%s/redis.sock", rs->dir);
  snprintf(logfile, sizeof logfile, "%s/redis.log", rs->dir);
  if (access(setpriv, X_OK) == 0) {
    argv[argc++] = (char *)setpriv;
    argv[argc++] = (char *)"--pdeathsig";
    argv[argc++] = (char *)"KILL";
  }
  argv[argc++] = (char *)"redis-server";
  argv[argc++] = (char *)"--port";
  argv[argc++] = (char *)"0";
  argv[argc++] = (char *)"--unixsocket";
  argv[argc++] = rs->sock;
  argv[argc++] = (char *)"--save";
  argv[argc++] = (char *)"";
  argv[argc++] = (char *)"--appendonly";
  argv[argc++] = (char *)"no";
  argv[argc++] = (char *)"--daemonize";
  argv[argc++] = (char *)"no";
  argv[argc++] = (char *)"--dir";
  argv[argc++] = rs->dir;
  argv[argc++] = (char *)"--logfile";
  argv[argc++] = logfile;
  argv[argc] = NULL;
  err = posix_spawnp(&rs->pid, argv[0], NULL, NULL, argv, environ);
  if (err != 0) {
    fprintf(stderr,
            "redis_server_start: cannot run %s: %s (install Debian's "
            "redis-server package)\n",
            argv[0], strerror(err));
    rs->pid = 0;
    redis_server_stop(rs);
    return -1;
  }
  for (int i = 0; i < 1000; i++) { /* up to 10 s */
    if (redis_server__ping(rs->sock)) return 0;
    if (waitpid(rs->pid, &status, WNOHANG) == rs->pid) {
      fprintf(stderr,
              "redis_server_start: redis-server exited (status %d) before "
              "answering; is the redis-server package installed?\n",
              status);
      rs->pid = 0;
      redis_server_stop(rs);
      return -1;
    }
    redis_server__sleep_ms(10);
  }
  fprintf(stderr, "redis_server_start: no PONG on %s after 10 s\n", rs->sock);
  redis_server_stop(rs);
  return -1;
}

#endif

/*
 * Is the process that recorded a session still running?
 *
 * A session with no end record was either cut short (SIGKILL, the OOM
 * killer, a power cut) or belongs to a process still running.  Its pid
 * alone cannot tell: pids are reused.  The process now holding that pid
 * is the session's only if it started no later than the session did
 * (the tracer opens its session after the process starts; a reused pid
 * belongs to a process that started after the first one died).  The
 * process's start comes from /proc/PID/stat field 22 (clock ticks since
 * boot), turned into wall-clock time by the current offset between
 * CLOCK_REALTIME and CLOCK_BOOTTIME.  A small slack covers the tick and
 * clock adjustments since.  A zombie (dead, not yet reaped by its
 * parent) counts as gone.  When the session names its executable and
 * /proc/PID/exe can be read, they must agree too.
 *
 * This sees only processes of this machine and pid namespace: a file
 * recorded elsewhere may have its sessions shown as killed.
 */
#include "viewer.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define START_SLACK_NS 1000000000LL /* 1 s */
#define STAT_STARTTIME_FIELD 22

static int64_t clock_ns(clockid_t c) {
  struct timespec ts;
  if (clock_gettime(c, &ts) != 0) return 0;
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The start of process `pid` in ns since the Unix epoch, or -1. */
static int64_t process_start_ns(int64_t pid) {
  char path[64], buf[1024], *p;
  unsigned long long ticks;
  long hz = sysconf(_SC_CLK_TCK);
  FILE *f;
  size_t n;
  int field;
  snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
  f = fopen(path, "re");
  if (f == NULL) return -1;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Field 2, the command name, is in parentheses and may hold anything:
   * count fields from the last ')'. */
  p = strrchr(buf, ')');
  if (p == NULL || hz <= 0) return -1;
  /* Field 3, the state: a zombie (killed, not yet reaped) is gone. */
  if (p[1] != ' ' || p[2] == 'Z' || p[2] == 'X' || p[2] == 'x') return -1;
  for (field = 2; field < STAT_STARTTIME_FIELD - 1 && p != NULL; field++) p = strchr(p + 1, ' ');
  if (p == NULL || sscanf(p, " %llu", &ticks) != 1) return -1;
  return clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME) +
         (int64_t)(ticks / (unsigned long long)hz) * 1000000000 +
         (int64_t)(ticks % (unsigned long long)hz) * (1000000000 / hz);
}

bool uvt__session_process_alive(int64_t pid, int64_t start_ns, const char *exe) {
  int64_t started;
  char path[64], now[PATH_MAX];
  ssize_t n;
  if (pid <= 0 || pid > INT_MAX) return false;
  started = process_start_ns(pid);
  if (started < 0 || started > uvt__add_sat(start_ns, START_SLACK_NS)) return false;
  if (exe == NULL) return true;
  snprintf(path, sizeof(path), "/proc/%lld/exe", (long long)pid);
  n = readlink(path, now, sizeof(now) - 1);
  /* EACCES: another user's process, the start time must do; ENOENT: a
   * kernel thread (no executable), never a traced program. */
  if (n < 0) return errno == EACCES || errno == EPERM;
  now[n] = '\0';
  /* A binary replaced while running reads as "PATH (deleted)". */
  return strncmp(now, exe, strlen(exe)) == 0;
}

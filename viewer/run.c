/*
 * `uvtask run [--db F] [--slow-ms N] [--stall-ms N] [--lock-ms N]
 *             [report options] -- PROG ARGS`
 *
 * Runs PROG with recording on and the debug library in front, so a
 * program linked against the release library is traced without a
 * rebuild: ASYNCIODEBUG=F and LD_PRELOAD=<debug library> (LD_PRELOAD, not
 * LD_LIBRARY_PATH, because a DT_RPATH in PROG would beat the latter).
 * Then it waits, and prints the report for this run's sessions: those
 * that began after the launch (PROG's, its children's and forks').  Not
 * "those whose pid is PROG's": in a pid namespace every run of PROG gets
 * the same pid, and an earlier run's sessions would show again.
 *
 * The database defaults to ./asynciodebug.db, as ASYNCIODEBUG=1 does: a
 * run adds its sessions to what the file already holds, and the report is
 * there afterwards for `uvtask report --format html`.
 *
 * The debug library: $UVTASK_DEBUG_LIB if set; else the build tree's
 * (UVT_DEBUG_LIB_BUILD) when this is the build tree's uvtask; else the
 * installed one (UVT_DEBUG_LIB_INSTALL), falling back to the other.
 *
 * While PROG runs, SIGINT and SIGQUIT are ignored here (PROG, in the same
 * process group, gets them from the terminal and ends, as with system()),
 * so ^C stops the program and still prints the report.
 *
 * Exit status: PROG's own when it failed (128 + N when signal N killed
 * it), else the report's: 0 clean, 1 findings, 2 nothing recorded or
 * unreadable.  "Nothing recorded" includes a PROG that does not use
 * uvtask at all: the preloaded debug library still opens a session for
 * it, but with no object, finding or crash in it, and the user is told
 * plainly that PROG recorded nothing.  Failures to start PROG use 125-127 as env(1) does: 125 a
 * failure of uvtask itself (bad usage, no debug library), 126 PROG found
 * but not executable, 127 PROG not found.
 */
#include "viewer.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define EXIT_CANNOT_RUN 125
#define EXIT_NOT_EXEC 126
#define EXIT_NOT_FOUND 127

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *debug_lib(void) {
  const char *env = getenv("UVTASK_DEBUG_LIB");
  char self[PATH_MAX];
  ssize_t n;
  bool in_build = false;
  if (env != NULL && env[0] != '\0') return env;
  n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    size_t blen = strlen(UVT_BUILD_DIR);
    self[n] = '\0';
    in_build = strncmp(self, UVT_BUILD_DIR, blen) == 0 && self[blen] == '/';
  }
  if (in_build) return access(UVT_DEBUG_LIB_BUILD, R_OK) == 0 || access(UVT_DEBUG_LIB_INSTALL, R_OK) != 0
                           ? UVT_DEBUG_LIB_BUILD : UVT_DEBUG_LIB_INSTALL;
  return access(UVT_DEBUG_LIB_INSTALL, R_OK) == 0 || access(UVT_DEBUG_LIB_BUILD, R_OK) != 0
             ? UVT_DEBUG_LIB_INSTALL : UVT_DEBUG_LIB_BUILD;
}

/* An absolute path for the database: PROG may change directory. */
static char *absolute(const char *path) {
  char cwd[PATH_MAX];
  if (path[0] == '/') return uvt__xstrdup(path);
  if (getcwd(cwd, sizeof(cwd)) == NULL) return uvt__xstrdup(path);
  return uvt__xasprintf("%s/%s", cwd, path);
}

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* A sanitizer runtime (libasan, libtsan) must be the first object loaded:
 * entries of an existing LD_PRELOAD naming one stay in front of ours. */
static bool is_sanitizer_runtime(const char *entry, size_t len) {
  const char *b = entry;
  size_t i;
  for (i = 0; i < len; i++)
    if (entry[i] == '/') b = entry + i + 1;
  len -= (size_t)(b - entry);
  return (len >= 9 && strncmp(b, "libasan.s", 9) == 0) ||
         (len >= 9 && strncmp(b, "libtsan.s", 9) == 0);
}

static char *preload_value(const char *lib, const char *old) {
  size_t cap = strlen(lib) + (old != NULL ? strlen(old) : 0) + 3;
  char *front = uvt__xcalloc(1, cap), *back = uvt__xcalloc(1, cap), *v;
  const char *p = old;
  while (p != NULL && *p != '\0') {
    size_t len = strcspn(p, ": ");
    if (len > 0) {
      char *to = is_sanitizer_runtime(p, len) ? front : back;
      if (to[0] != '\0') strcat(to, ":");
      strncat(to, p, len);
    }
    p += len;
    if (*p != '\0') p++;
  }
  v = uvt__xasprintf("LD_PRELOAD=%s%s%s%s%s", front, front[0] ? ":" : "", lib,
                     back[0] ? ":" : "", back);
  free(front);
  free(back);
  return v;
}

static char **child_env(const char *db, const char *lib, const uvt__thresholds_t *th) {
  const char *const names[3] = {"ASYNCIODEBUG_SLOW_MS", "ASYNCIODEBUG_STALL_MS",
                                "ASYNCIODEBUG_LOCK_MS"};
  const char *const values[3] = {th->slow_ms, th->stall_ms, th->lock_ms};
  size_t n = 0, k = 0, i, j;
  char **env;
  while (environ[n] != NULL) n++;
  env = uvt__xcalloc(n + 6, sizeof(*env));
  for (i = 0; i < n; i++) {
    bool replaced = false;
    for (j = 0; j < 3; j++)
      if (values[j] != NULL && has_prefix(environ[i], names[j]) &&
          environ[i][strlen(names[j])] == '=')
        replaced = true;
    if (replaced || has_prefix(environ[i], "ASYNCIODEBUG=") ||
        has_prefix(environ[i], "LD_PRELOAD="))
      continue;
    env[k++] = uvt__xstrdup(environ[i]);
  }
  env[k++] = uvt__xasprintf("ASYNCIODEBUG=%s", db);
  env[k++] = preload_value(lib, getenv("LD_PRELOAD"));
  for (j = 0; j < 3; j++)
    if (values[j] != NULL) env[k++] = uvt__xasprintf("%s=%s", names[j], values[j]);
  env[k] = NULL;
  return env;
}

static void free_env(char **env) {
  size_t i;
  for (i = 0; env[i] != NULL; i++) free(env[i]);
  free(env);
}

/* Run argv with env; the child's wait status, or -1 with *err set. */
static int spawn_and_wait(char **argv, char **env, pid_t *pid_out, int *err) {
  posix_spawnattr_t attr;
  sigset_t dflt;
  struct sigaction ign, old_int, old_quit;
  pid_t pid;
  int status, rc;
  posix_spawnattr_init(&attr);
  sigemptyset(&dflt);
  sigaddset(&dflt, SIGINT);
  sigaddset(&dflt, SIGQUIT);
  posix_spawnattr_setsigdefault(&attr, &dflt);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  memset(&ign, 0, sizeof(ign));
  ign.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ign, &old_int);
  sigaction(SIGQUIT, &ign, &old_quit);
  rc = posix_spawnp(&pid, argv[0], NULL, &attr, argv, env);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    *err = rc;
    return -1;
  }
  *pid_out = pid;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGQUIT, &old_quit, NULL);
  return status;
}

int uvt__run_prog(char **argv, const char *db, const uvt__thresholds_t *th,
                  uvt__filter_t *f, const uvt__output_t *out) {
  /* Checked before anything runs: an output that is the recording. */
  const char *lib = debug_lib();
  char *dbabs = absolute(db != NULL ? db : "asynciodebug.db");
  char **env;
  const char *paths[1];
  pid_t pid = 0;
  int status, err = 0, rc;
  int64_t launch;
  paths[0] = dbabs;
  if (uvt__outfile_check(out->output, paths, 1) != 0) {
    free(dbabs);
    return EXIT_CANNOT_RUN;
  }
  if (access(lib, R_OK) != 0) {
    uvt__errorf("uvtask: the debug library %s is missing (%s); set UVTASK_DEBUG_LIB "
                "to its path", lib, strerror(errno));
    free(dbabs);
    return EXIT_CANNOT_RUN;
  }
  env = child_env(dbabs, lib, th);
  launch = now_ns();
  status = spawn_and_wait(argv, env, &pid, &err);
  free_env(env);
  if (status < 0) {
    uvt__errorf("uvtask: cannot run %s: %s", argv[0], strerror(err));
    free(dbabs);
    return err == ENOENT || err == ENOTDIR ? EXIT_NOT_FOUND : EXIT_NOT_EXEC;
  }
  f->run = true;
  f->run_start_ns = launch;
  f->run_prog = argv[0];
  if (access(dbabs, F_OK) != 0) {
    uvt__errorf("uvtask run: %s recorded nothing (%s was not created: is it "
                "linked with libuvtask?)", argv[0], dbabs);
    rc = UVT__EXIT_INPUT;
  } else {
    rc = uvt__report_main(paths, 1, f, out);
  }
  free(dbabs);
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return rc;
}

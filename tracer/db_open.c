/*
 * Opening the recording database: the only place a path from the
 * environment becomes an open file, so every refusal is made here.
 *
 * What is refused, each with one line on stderr ("...; recording off"),
 * the program then running as without recording:
 *  - a last path component that is a symlink (a planted link would send
 *    the writes elsewhere).  Links in the directory part are resolved
 *    (realpath), as any program would: Debian's /var/run is one;
 *  - anything but a regular file;
 *  - an existing file not owned by the effective user, or writable by its
 *    group or by others: a database planted in a shared directory would
 *    otherwise receive argv (passwords on command lines) and messages;
 *  - a file that is not an (empty or) asynciodebug database of this
 *    schema version.  It is inspected before anything is changed in it:
 *    another program's database keeps its journal mode and its bytes;
 *  - an open-file limit too low to spare the descriptors recording needs.
 *
 * The file is created by us, 0600 (SQLite would create 0644 and follow a
 * link).  If we created it and then refuse or fail, it is removed again.
 *
 * Several processes may open one new file at once.  Lock contention while
 * setting up (creating the schema, switching to WAL: SQLite gives
 * SQLITE_BUSY at once, without the busy handler, where waiting could
 * deadlock) is retried for at most SETUP_WAIT_MS in all: a stopped peer
 * holding the lock delays the start that long, never forever.
 */
#include "tracer.h"
#include "schema.h"
#include <uvtask.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SETUP_WAIT_MS 3000
/* Recording takes about ten descriptors (the database, its WAL and shm,
 * the writer's pipes, the watchdog); under a soft limit this low the
 * program's own would run short where the release library works: record
 * nothing rather than make it fail (libuv even aborts on some). */
#define MIN_NOFILE 64
/* Each lock wait inside SQLite (busy handler), so that the set-up bound
 * is checked between waits. */
#define SETUP_BUSY_MS 100

static const char *shown; /* the path as the user gave it, for messages */
/* The file opened last (resolved path, device and inode), for reopening
 * it after a fork. */
static char *opened;
static dev_t opened_dev;
static ino_t opened_ino;

/* One line: "asynciodebug: PATH: <what>; recording off". */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  uvt__tracer_line("asynciodebug: %s: %s; recording off", shown, what);
}

static int64_t ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_busy(int rc) {
  rc &= 0xff;
  return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

/* Wait a little before retrying: 2..9 ms, varied per process so that
 * processes started together do not retry in step. */
static void backoff(int attempt) {
  struct timespec ts = {0, (long)(2 + (getpid() + attempt) % 8) * 1000000L};
  nanosleep(&ts, NULL);
}

/* sqlite3_exec, retried while the database is busy (bounded by
 * `deadline`, CLOCK_MONOTONIC ms).  Returns the SQLite result code. */
static int exec_retry(sqlite3 *db, const char *sql, int64_t deadline) {
  int rc, attempt = 0;
  while (is_busy(rc = sqlite3_exec(db, sql, NULL, NULL, NULL)) &&
         ms_now() < deadline) {
    /* A failed BEGIN/COMMIT can leave a transaction open. */
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    backoff(attempt++);
  }
  return rc;
}

static int query_int(sqlite3 *db, const char *sql, int64_t *out) {
  sqlite3_stmt *st;
  int rc;
  if ((rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK) return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* 1: the file is ours and `format` matches; 0: it is not. */
static int has_our_format(sqlite3 *db) {
  sqlite3_stmt *st;
  int ok = 0;
  if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='format'", -1,
                         &st, NULL) != SQLITE_OK)
    return 0;
  if (sqlite3_step(st) == SQLITE_ROW) {
    const char *f = (const char *)sqlite3_column_text(st, 0);
    ok = f != NULL && strcmp(f, UVT_SCHEMA_FORMAT) == 0;
  }
  sqlite3_finalize(st);
  return ok;
}

static int create_schema(sqlite3 *db) {
  char v[64];
  sqlite3_stmt *st;
  int ok;
  if (sqlite3_exec(db, uvt_schema_sql, NULL, NULL, NULL) != SQLITE_OK) return -1;
  snprintf(v, sizeof(v), "PRAGMA user_version=%d", UVT_SCHEMA_VERSION);
  if (sqlite3_exec(db, v, NULL, NULL, NULL) != SQLITE_OK) return -1;
  if (sqlite3_prepare_v2(db, "INSERT INTO meta (key, value) VALUES "
                         "('format', ?1), ('writer', ?2)", -1, &st, NULL) != SQLITE_OK)
    return -1;
  sqlite3_bind_text(st, 1, UVT_SCHEMA_FORMAT, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, "uvtask " UVTASK_VERSION_STRING, -1, SQLITE_STATIC);
  ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  return ok ? 0 : -1;
}

/* Inspect the file, changing nothing unless it is empty (then create the
 * schema) or ours.  0 when it is ready to record into. */
static int schema_ready(sqlite3 *db, int64_t deadline) {
  int64_t version = -1, tables = 0;
  int rc, attempt = 0;
  for (;;) {
    rc = exec_retry(db, "BEGIN IMMEDIATE", deadline);
    if (rc == SQLITE_OK) {
      rc = query_int(db, "PRAGMA user_version", &version);
      if (rc == SQLITE_OK) rc = query_int(db, "SELECT count(*) FROM sqlite_master", &tables);
    }
    if (!is_busy(rc) || ms_now() >= deadline) break;
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    backoff(attempt++);
  }
  if (rc != SQLITE_OK) {
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (is_busy(rc)) say("database is locked by another process");
    else say("not a database (%s); not writing into it", sqlite3_errstr(rc));
    return -1;
  }
  if (version == 0 && tables == 0) {
    if (create_schema(db) != 0 ||
        (rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
      say("cannot create the schema: %s", sqlite3_errmsg(db));
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      return -1;
    }
    return 0;
  }
  rc = has_our_format(db);
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  if (!rc) {
    say("belongs to another program (not an asynciodebug database); "
        "not writing into it");
    return -1;
  }
  if (version != UVT_SCHEMA_VERSION) {
    say("has schema version %lld, this library writes %d; not writing into it",
        (long long)version, UVT_SCHEMA_VERSION);
    return -1;
  }
  return 0;
}

/* The path with its directory resolved (links in it followed) and its
 * last component kept as given.  NULL after a message. */
static char *resolve_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *base = slash != NULL ? slash + 1 : path;
  char *dir, *real, *full;
  size_t n;
  if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
    say("names a directory, not a file");
    return NULL;
  }
  if (slash == NULL) dir = strdup(".");
  else if (slash == path) dir = strdup("/");
  else dir = strndup(path, (size_t)(slash - path));
  if (dir == NULL) return NULL;
  real = realpath(dir, NULL);
  if (real == NULL) {
    say("directory %s: %s", dir, strerror(errno));
    free(dir);
    return NULL;
  }
  free(dir);
  n = strlen(real) + strlen(base) + 2;
  full = malloc(n);
  if (full != NULL)
    snprintf(full, n, "%s%s%s", real, strcmp(real, "/") == 0 ? "" : "/", base);
  free(real);
  return full;
}

/* Create or open the file itself; -1 after a message.  *created tells
 * whether this call created it. */
static int open_file(const char *full, bool *created) {
  struct stat st;
  int fd = open(full, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  *created = fd >= 0;
  if (fd < 0 && errno == EEXIST)
    fd = open(full, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP)
      say("the last component (%s) is a symlink; not following it",
          strrchr(full, '/') + 1);
    else
      say("cannot open %s: %s", full, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    say("%s is not a regular file", full);
    close(fd);
    return -1;
  }
  if (!*created && st.st_uid != geteuid()) {
    say("the file is owned by uid %u, not by this process's user (uid %u)",
        (unsigned)st.st_uid, (unsigned)geteuid());
    close(fd);
    return -1;
  }
  if (!*created && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    say("the file is writable by other users (mode %04o)",
        (unsigned)(st.st_mode & 07777));
    close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

static void remove_created(const char *full) {
  static const char *const suffix[] = {"-journal", "-wal", "-shm"};
  char p[PATH_MAX + 16];
  size_t i;
  unlink(full);
  for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
    snprintf(p, sizeof(p), "%s%s", full, suffix[i]);
    unlink(p);
  }
}

sqlite3 *uvt__db_open(void) {
  sqlite3 *db = NULL;
  char *full;
  bool created;
  int64_t deadline = ms_now() + SETUP_WAIT_MS;
  int rc;
  struct rlimit rl;
  shown = uvt__tcfg.path;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < MIN_NOFILE) {
    say("the open-file limit (ulimit -n %llu) is below %d, too low to record",
        (unsigned long long)rl.rlim_cur, MIN_NOFILE);
    return NULL;
  }
  if ((full = resolve_dir(uvt__tcfg.path)) == NULL) return NULL;
  if (open_file(full, &created) != 0) {
    free(full);
    return NULL;
  }
  /* NOMUTEX: one thread at a time uses the connection (this one, then
   * the writer from its creation to its join), and a serialized
   * connection's mutex cost a lock and an unlock per SQLite call: 8 % of
   * a recording's samples, on the core the loop shares with the writer. */
  rc = sqlite3_open_v2(full, &db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
                           SQLITE_OPEN_NOMUTEX,
                       NULL);
  if (rc != SQLITE_OK) {
    say("cannot open: %s", db != NULL ? sqlite3_errmsg(db) : "out of memory");
    goto fail;
  }
  sqlite3_busy_timeout(db, SETUP_BUSY_MS);
  sqlite3_extended_result_codes(db, 1);
  if (schema_ready(db, deadline) != 0) goto fail;
  /* Only now that the file is known to be ours may its mode change. */
  if ((rc = exec_retry(db, "PRAGMA journal_mode=WAL", deadline)) != SQLITE_OK ||
      (rc = exec_retry(db, "PRAGMA synchronous=NORMAL", deadline)) != SQLITE_OK) {
    say("%s", is_busy(rc) ? "database is locked by another process"
                          : sqlite3_errmsg(db));
    goto fail;
  }
  {
    struct stat st;
    if (stat(full, &st) == 0) opened_dev = st.st_dev, opened_ino = st.st_ino;
  }
  free(opened);
  opened = full;
  return db;
fail:
  sqlite3_close(db);
  if (created) remove_created(full);
  free(full);
  return NULL;
}

sqlite3 *uvt__db_reopen(void) {
  sqlite3 *db = NULL;
  struct stat st;
  /* The same file, or nothing: a path changed meanwhile is not followed. */
  if (opened == NULL || lstat(opened, &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_dev != opened_dev || st.st_ino != opened_ino)
    return NULL;
  if (sqlite3_open_v2(opened, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
                                       SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return NULL;
  }
  sqlite3_extended_result_codes(db, 1);
  return db;
}

/* Processes closing one file at the same instant can each see the other
 * still open: SQLite folds the WAL into the file (and removes -wal and
 * -shm) only for a close that gets the exclusive lock, so both would
 * leave them behind.  Closes are taken in turn under a flock(2) of the
 * database file: whoever closes last then sees nobody else and folds.
 * flock locks are apart from the fcntl locks SQLite uses (on Linux; over
 * NFS flock is emulated with fcntl locks, the wait below then times out
 * and the close goes ahead as before).  A peer stopped inside its close
 * (a debugger, ^Z) holds us up at most CLOSE_WAIT_MS. */
#define CLOSE_WAIT_MS 1000

int uvt__db_close_lock(void) {
  struct stat st;
  struct timespec pause = {0, 1000000};
  int64_t until;
  int fd;
  if (opened == NULL) return -1;
  fd = open(opened, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  /* Another file at that path now: not ours to lock. */
  if (fstat(fd, &st) != 0 || st.st_dev != opened_dev || st.st_ino != opened_ino) {
    close(fd);
    return -1;
  }
  /* A deadline, not a count of 1 ms naps: on a loaded machine each nap
   * can last much longer. */
  until = ms_now() + CLOSE_WAIT_MS;
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if ((errno != EWOULDBLOCK && errno != EINTR) || ms_now() >= until) break;
    nanosleep(&pause, NULL);
  }
  return fd;
}

void uvt__db_close_unlock(int fd) {
  /* Closing the descriptor drops the flock; it would also drop any fcntl
   * lock this process holds on the file, which is why it is closed only
   * after SQLite's connection is. */
  if (fd >= 0) close(fd);
}

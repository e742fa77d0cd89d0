/*
 * Opening an input: is this file an asynciodebug database we can read?
 *
 * Each way a file can fail gets its own one-line reason, decided before
 * SQLite is asked to do anything it could misreport: the file is missing
 * or not a regular file; it is empty; its first bytes are not SQLite's
 * magic; it is shorter than its own header says (truncated — checked only
 * when no write-ahead log is beside it, since a checkpoint in progress may
 * legitimately leave the header ahead of the file for a moment).  Then
 * SQLite opens it read-only: the meta table must have the row
 * format = UVT_SCHEMA_FORMAT (else it is another program's database), and
 * PRAGMA user_version must not exceed UVT_SCHEMA_VERSION (else a newer
 * uvtask wrote it).  Corruption SQLite finds later, while the report is
 * read, surfaces through uvt__db_why as SQLITE_CORRUPT / SQLITE_NOTADB.
 *
 * A database that a live process is still writing is in WAL mode: a
 * read-only connection reads the last commit without blocking the writer.
 * The busy timeout covers the moments the writer holds the WAL index
 * exclusively (recovery, checkpoint-truncate at its end).  Such a
 * connection creates the -wal and -shm files if they are missing, and
 * being read-only cannot remove them when it closes.  So a finished file
 * (no -wal beside it: its last writer checkpointed and removed it, and no
 * connection has it open in WAL mode) is opened immutable instead — no
 * locks, no WAL, nothing created — and reading it leaves the directory as
 * it was.  A file with a -wal is live (or its writer died): that WAL is
 * someone else's and is read, never removed.  (A writer that starts on
 * the file while an immutable read is under way appends to its own WAL
 * and leaves the pages read here alone until it checkpoints; if that
 * happens mid-read, SQLite reports the file corrupt and the command says
 * so: run it again.)
 *
 * A crafted file must not make the command hang: every object the report
 * reads must be a table (a VIEW can recurse forever), and every statement
 * runs under a budget of virtual-machine steps proportional to the file's
 * size (far above what an honest file of that size needs), past which the
 * read stops with a one-line reason.
 */
#include "viewer.h"
#include "schema.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 3000
/* The step budget: the progress handler runs every PROGRESS_OPS
 * virtual-machine instructions; an input may use BUDGET_BASE plus
 * BUDGET_PER_BYTE per byte of the file and its WAL. */
#define PROGRESS_OPS 10000
#define BUDGET_BASE 200000000LL
#define BUDGET_PER_BYTE 2000LL

/* The schema objects the command reads: each must be a table. */
static const char *const tables[] = {"meta", "sessions", "modules", "stacks",
                                     "objects", "findings", "site_stats", "steps",
                                     "snapshots", "snapshot_tasks"};

/* One budget per open connection, found by its connection (SQLite 3.40
 * has no per-connection client data); the command is single-threaded and
 * opens one input at a time, so the list is short. */
typedef struct budget_s {
  sqlite3 *db;
  int64_t left; /* in units of PROGRESS_OPS */
  bool spent;
  struct budget_s *next;
} budget_t;

static budget_t *budgets;

static budget_t *budget_of(sqlite3 *db) {
  budget_t *b;
  for (b = budgets; b != NULL; b = b->next)
    if (b->db == db) return b;
  return NULL;
}

static int fail(char *why, size_t whylen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool budget_spent(sqlite3 *db);

static int fail(char *why, size_t whylen, const char *path, const char *fmt, ...) {
  va_list ap;
  int n = snprintf(why, whylen, "%s: ", path);
  if (n < 0 || (size_t)n >= whylen) return -1;
  va_start(ap, fmt);
  vsnprintf(why + n, whylen - (size_t)n, fmt, ap);
  va_end(ap);
  return -1;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The checks that need only the file's bytes.  *bytes: the size of the
 * file and its WAL; *finished: no -wal or -journal beside it. */
static int check_file(const char *path, char *why, size_t whylen, int64_t *bytes,
                      bool *finished) {
  char journal[4200];
  struct stat jst;
  struct stat st, wst;
  unsigned char h[100];
  char wal[4200];
  ssize_t n;
  int fd;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT)
      return fail(why, whylen, path,
                  "no such file (record one with ASYNCIODEBUG=1 or `uvtask run`)");
    return fail(why, whylen, path, "cannot open: %s", strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) return fail(why, whylen, path, "is a directory");
  if (!S_ISREG(st.st_mode)) return fail(why, whylen, path, "not a regular file");
  if (st.st_size == 0)
    return fail(why, whylen, path, "empty file (no asynciodebug data in it)");
  /* Non-blocking: the file could be swapped for a FIFO since the stat. */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return fail(why, whylen, path, "cannot open: %s", strerror(errno));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return fail(why, whylen, path, "not a regular file");
  }
  n = read(fd, h, sizeof(h));
  close(fd);
  if (n < 0) return fail(why, whylen, path, "cannot read: %s", strerror(errno));
  if (n < 16 || memcmp(h, "SQLite format 3", 16) != 0) {
    if (n > 0 && memcmp(h, "SQLite format 3", (size_t)n < 16 ? (size_t)n : 16) == 0)
      return fail(why, whylen, path, "truncated (%zd bytes: not even an SQLite header)", n);
    return fail(why, whylen, path, "not an SQLite database");
  }
  if (n < 100)
    return fail(why, whylen, path, "truncated (%zd bytes: not even an SQLite header)", n);
  snprintf(wal, sizeof(wal), "%s-wal", path);
  snprintf(journal, sizeof(journal), "%s-journal", path);
  *bytes = (int64_t)st.st_size;
  *finished = lstat(wal, &wst) != 0 && errno == ENOENT && lstat(journal, &jst) != 0 &&
              errno == ENOENT;
  if (!*finished && stat(wal, &wst) == 0) *bytes += (int64_t)wst.st_size;
  if (stat(wal, &wst) != 0 || wst.st_size == 0) {
    uint32_t psz = (uint32_t)h[16] << 8 | h[17];
    uint32_t pages = be32(h + 28);
    uint64_t want;
    if (psz == 1) psz = 65536;
    want = (uint64_t)pages * psz;
    /* The in-header size is valid only when its "valid-for" counter
     * matches the change counter (SQLite file format, section 1.3.7). */
    if (pages > 0 && be32(h + 92) == be32(h + 24) && (uint64_t)st.st_size < want)
      return fail(why, whylen, path,
                  "truncated (%lld bytes, its header says %llu)",
                  (long long)st.st_size, (unsigned long long)want);
  }
  return 0;
}

void uvt__db_why(sqlite3 *db, int rc, const char *path, char *why, size_t whylen) {
  const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (db != NULL && budget_spent(db)) {
    fail(why, whylen, path, "reading it took far more work than a file of its size "
                            "needs (crafted or damaged?); gave up");
    return;
  }
  switch (rc & 0xff) {
  case SQLITE_CORRUPT:
    fail(why, whylen, path, "corrupt or truncated database (%s)", msg);
    break;
  case SQLITE_NOTADB:
    fail(why, whylen, path, "not an SQLite database (%s)", msg);
    break;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    fail(why, whylen, path, "locked by its writer for too long (%s)", msg);
    break;
  case SQLITE_NOMEM:
    fail(why, whylen, path, "out of memory");
    break;
  case SQLITE_ERROR:
    /* A statement that does not prepare: the tables are not ours. */
    fail(why, whylen, path, "unexpected database layout (%s)", msg);
    break;
  default:
    fail(why, whylen, path, "cannot read (%s)", msg);
    break;
  }
}

/* Every object the command reads is a table: not a view (which can
 * recurse without end), not missing (then the file is damaged, and a
 * statement would fail later with a vaguer reason).  Tables [from, to). */
static int check_tables(sqlite3 *db, size_t from, size_t to, const char *path, char *why,
                        size_t whylen) {
  sqlite3_stmt *st = NULL;
  size_t i;
  int rc = sqlite3_prepare_v2(db, "SELECT type FROM main.sqlite_schema WHERE name = ?1 "
                                  "COLLATE NOCASE", -1, &st, NULL);
  if (rc != SQLITE_OK) goto sqlite_failed;
  for (i = from; i < to; i++) {
    const char *type;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, tables[i], -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE && i == 0) {
      sqlite3_finalize(st);
      return fail(why, whylen, path,
                  "an SQLite database of another program (no asynciodebug meta table)");
    }
    if (rc == SQLITE_DONE) {
      sqlite3_finalize(st);
      return fail(why, whylen, path, "unexpected database layout (no table '%s')", tables[i]);
    }
    if (rc != SQLITE_ROW) goto sqlite_failed;
    type = (const char *)sqlite3_column_text(st, 0);
    if (type == NULL || strcmp(type, "table") != 0) {
      fail(why, whylen, path, "unexpected database layout ('%s' is a %.20s, not a table)",
           tables[i], type != NULL ? type : "?");
      sqlite3_finalize(st);
      return -1;
    }
  }
  sqlite3_finalize(st);
  return 0;
sqlite_failed:
  uvt__db_why(db, rc, path, why, whylen);
  sqlite3_finalize(st);
  return -1;
}

/* The meta 'format' row and the schema version. */
static int check_schema(sqlite3 *db, const char *path, char *why, size_t whylen) {
  sqlite3_stmt *st = NULL;
  int rc;
  int64_t version;
  char *format;
  if (check_tables(db, 0, 1, path, why, whylen) != 0) return -1;
  rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL);
  if (rc == SQLITE_ERROR) {
    sqlite3_finalize(st);
    return fail(why, whylen, path,
                "an SQLite database of another program (no asynciodebug meta table)");
  }
  if (rc != SQLITE_OK) goto sqlite_failed;
  sqlite3_bind_text(st, 1, "format", -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    sqlite3_finalize(st);
    return fail(why, whylen, path,
                "an SQLite database of another program (no meta 'format' row)");
  }
  if (rc != SQLITE_ROW) goto sqlite_failed;
  format = uvt__col_text(st, 0);
  sqlite3_finalize(st);
  st = NULL;
  if (format == NULL || strcmp(format, UVT_SCHEMA_FORMAT) != 0) {
    fail(why, whylen, path,
         "an SQLite database of another program (format '%.60s', not '%s')",
         format != NULL ? format : "", UVT_SCHEMA_FORMAT);
    free(format);
    return -1;
  }
  free(format);
  rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
  if (rc != SQLITE_OK) goto sqlite_failed;
  rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) goto sqlite_failed;
  version = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (version > UVT_SCHEMA_VERSION)
    return fail(why, whylen, path,
                "schema version %lld is newer than this uvtask reads (%d): "
                "upgrade uvtask",
                (long long)version, UVT_SCHEMA_VERSION);
  if (version < UVT_SCHEMA_VERSION)
    return fail(why, whylen, path,
                "schema version %lld is not one this uvtask reads (%d)",
                (long long)version, UVT_SCHEMA_VERSION);
  return check_tables(db, 1, sizeof(tables) / sizeof(tables[0]), path, why, whylen);
sqlite_failed:
  uvt__db_why(db, rc, path, why, whylen);
  sqlite3_finalize(st);
  return -1;
}

static int on_progress(void *arg) {
  budget_t *b = arg;
  if (--b->left > 0) return 0;
  b->spent = true;
  return 1;
}

/* "file:" URI of `path`, immutable: every byte that a URI would read as
 * syntax is percent-encoded. */
static char *immutable_uri(const char *path) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(path), i, o = 0;
  char *u = uvt__xmalloc(n * 3 + 32);
  memcpy(u, "file:", 5);
  o = 5;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)path[i];
    if (c == '%' || c == '?' || c == '#' || c <= 0x20 || c >= 0x7f) {
      u[o++] = '%';
      u[o++] = hex[c >> 4];
      u[o++] = hex[c & 15];
    } else {
      u[o++] = (char)c;
    }
  }
  memcpy(u + o, "?immutable=1", 13);
  return u;
}

static bool budget_spent(sqlite3 *db) {
  budget_t *b = budget_of(db);
  return b != NULL && b->spent;
}

void uvt__db_close(sqlite3 *db) {
  budget_t **p;
  for (p = &budgets; *p != NULL; p = &(*p)->next)
    if ((*p)->db == db) {
      budget_t *b = *p;
      *p = b->next;
      free(b);
      break;
    }
  sqlite3_close(db);
}

int uvt__db_open(const char *path, sqlite3 **out, char *why, size_t whylen) {
  sqlite3 *db = NULL;
  budget_t *budget;
  int64_t bytes = 0;
  bool finished = false;
  int rc;
  *out = NULL;
  if (check_file(path, why, whylen, &bytes, &finished) != 0) return -1;
  if (finished) {
    char *uri = immutable_uri(path);
    rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
  } else {
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
  }
  if (rc != SQLITE_OK) {
    uvt__db_why(db, rc, path, why, whylen);
    sqlite3_close(db);
    return -1;
  }
  budget = uvt__xcalloc(1, sizeof(*budget));
  budget->left = (BUDGET_BASE + (bytes < INT64_MAX / BUDGET_PER_BYTE / 2
                                     ? bytes * BUDGET_PER_BYTE : INT64_MAX / 2)) / PROGRESS_OPS;
  budget->db = db;
  budget->next = budgets;
  budgets = budget;
  sqlite3_progress_handler(db, PROGRESS_OPS, on_progress, budget);
  sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
  sqlite3_extended_result_codes(db, 0);
  /* The report reads the findings three times (counts, groups, durations)
   * and seeks objects by key: a page cache that holds them saves rereads;
   * GROUP BY's sorting stays in memory. */
  sqlite3_exec(db, "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
  if (check_schema(db, path, why, whylen) != 0) {
    uvt__db_close(db);
    return -1;
  }
  *out = db;
  return 0;
}

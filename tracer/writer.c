/*
 * The writer thread: the only code that touches SQLite.
 *
 * Loop threads link batches of records onto `queue` (mutex held for two
 * pointer writes) and wake the writer through a pipe.  The writer wakes on
 * the pipe or every COMMIT_MS, takes the whole queue and writes it in one
 * transaction with prepared statements, so a commit happens at least every
 * COMMIT_MS while records arrive.  WAL mode with synchronous=NORMAL: a
 * killed process loses at most what was not yet committed, never the file.
 *
 * The file is opened, checked and set up by db_open.c.
 *
 * A crash handler cannot call SQLite: it sets `crash`, wakes the writer
 * and waits (poll on a pipe, bounded) for the writer to commit the session
 * end and answer.
 */
#include "tracer.h"
#include "uvtask/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define COMMIT_MS 20
/* A lock wait inside SQLite (busy handler) lasts at most BUSY_MS; the
 * writer retries the commit after it, so a stop request is seen. */
#define BUSY_MS 100
/* At exit the last rows are tried until UVT__FINISH_IDLE_MS pass in which
 * no process commits, or UVT__FINISH_MAX_MS in all (then counted as lost
 * and said; tracer.h): a peer that holds the lock and writes nothing (one
 * stopped by a debugger or ^Z) cannot hold up the exit, while peers that
 * keep committing (200 processes ending together) are taking turns, and
 * our turn comes. */
/* The same from the crash path, within the handler's wait. */
#define CRASH_COMMIT_MS 1000
/* Inserting the session row at start: as db_open.c's set-up bound. */
#define SETUP_WAIT_MS 3000

uint64_t uvt__stat_objects, uvt__stat_findings, uvt__stat_shed;
uint64_t uvt__stat_peak_tasks;

static sqlite3 *db;
static int64_t session_id;
static pthread_t thread;
static bool running;
static int wake_fd[2] = {-1, -1};
static int ack_fd[2] = {-1, -1};
static pthread_mutex_t queue_mutex = PTHREAD_MUTEX_INITIALIZER;
static rec_t *queue_head, *queue_tail;
static int stop_requested;
static int crash_requested; /* set from a signal handler */
static session_end_t final_end;
static void *crash_state; /* recorder state of the crashed thread */
/* The recorder's: rows for that state (uvt__writer_set_crash_rows). */
static uvt__crash_rows_fn crash_rows;

void uvt__writer_set_crash_rows(uvt__crash_rows_fn fn) { crash_rows = fn; }
/* Writer thread only (see "committing"). */
static rec_t *pending_head, *pending_tail;
static uint64_t npending;
static uint64_t lost_rows;
static bool counters_dirty;
static char lost_why[128]; /* the first reason rows were lost */
static int wal_fd = -1;     /* the -wal file, to keep space reserved in it */
static int ballast_fd = -1; /* unlinked file of space kept for the loss record */
static bool loss_in_file;   /* a committed session row says lost > 0 */
/* Parking for fork (see tracer.h).  park_state moves RUNNING -> REQUESTED
 * (prepare handler) -> PARKED (writer, connection closed) -> RUNNING
 * (parent handler); the writer reopens when it sees RUNNING again. */
enum { PARK_RUNNING, PARK_REQUESTED, PARK_PARKED };
static pthread_mutex_t park_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static int park_state;
static bool db_lost; /* reopening failed: rows are counted, not written */

enum { S_OBJECT, S_STACK, S_FINDING, S_STAT, S_STEP, S_MODULE, S_SESSION, S_END,
       S_MEMBER, S_SNAPSHOT, S_SNAP_TASK, NSTMT };
static sqlite3_stmt *stmt[NSTMT];

static const char *const stmt_sql[NSTMT] = {
    "INSERT OR REPLACE INTO objects (session_id, id, kind, name, file, line, "
    "func, parent_id, create_stack, created_ns, ended_ns, status, message, "
    "fail_file, fail_line, fail_stack, retrieved_ns, steps, busy_ns, "
    "max_step_ns) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,"
    "?15,?16,?17,?18,?19,?20)",
    "INSERT OR IGNORE INTO stacks (session_id, id, pcs) VALUES (?1,?2,?3)",
    "INSERT INTO findings (session_id, kind, object_id, file, line, func, "
    "message, stack, stack2, where_file, where_line, where_what, status, "
    "duration_ns, ts_ns, ignored) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,"
    "?12,?13,?14,?15,?16)",
    "INSERT INTO site_stats (session_id, kind, name, file, line, count, "
    "steps, busy_ns, max_step_ns) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    "INSERT INTO steps (session_id, object_id, start_ns, dur_ns, slow) "
    "VALUES (?1,?2,?3,?4,?5)",
    "INSERT OR IGNORE INTO modules (session_id, path, build_id, base, lo, hi) "
    "VALUES (?1,?2,?3,?4,?5,?6)",
    "UPDATE sessions SET objects=?2, findings=?3, shed=?4, peak_tasks=?5, "
    "test_name=COALESCE(?6, test_name), lost=?7 WHERE id=?1",
    "UPDATE sessions SET end_ns=?2, end_reason=?3, exit_status=?4, "
    "signal=?5, crash_task_id=?6 WHERE id=?1",
    "INSERT OR IGNORE INTO finding_members (session_id, finding_id, ord, "
    "object_id, name, wait, waits_on, held_by, where_file, where_line, "
    "acquire_file, acquire_line, stack) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,"
    "?10,?11,?12,?13)",
    "INSERT OR REPLACE INTO snapshots (session_id, id, reason, ts_ns, ntasks) "
    "VALUES (?1,?2,?3,?4,?5)",
    "INSERT INTO snapshot_tasks (session_id, snapshot_id, task_id, name, state, "
    "wait, wait_what, wait_on_id, parked_ns, where_file, where_line, where_func, "
    "file, line, func, parent_id, stack, awaiters) VALUES (?1,?2,?3,?4,?5,?6,?7,"
    "?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)",
};
/* The row id of the last finding written: its members follow it. */
static int64_t last_finding_id;

void uvt__writer_enqueue(rec_t *head, rec_t *tail) {
  if (head == NULL) return;
  pthread_mutex_lock(&queue_mutex);
  if (queue_tail != NULL) queue_tail->next = head;
  else queue_head = head;
  queue_tail = tail;
  pthread_mutex_unlock(&queue_mutex);
}

void uvt__writer_wake(void) {
  char c = 1;
  if (wake_fd[1] >= 0) (void)!write(wake_fd[1], &c, 1);
}

/* ---- opening --------------------------------------------------------------- */

static bool is_busy(int rc) {
  rc &= 0xff;
  return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *read_cmdline(void) {
  char buf[4096];
  ssize_t n;
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  ssize_t i;
  if (fd < 0) return strdup("?");
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return strdup("?");
  if (buf[n - 1] == '\0') n--;
  for (i = 0; i < n; i++)
    if (buf[i] == '\0') buf[i] = ' ';
  buf[n] = '\0';
  return strdup(buf);
}

static int session_insert(void) {
  char test_name[256];
  sqlite3_stmt *st;
  char *argv = read_cmdline();
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  int ok;
  exe[n > 0 ? n : 0] = '\0';
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO sessions (pid, ppid, argv, exe, start_ns, "
                         "slow_ms, depth, test_name) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                         -1, &st, NULL) != SQLITE_OK) {
    free(argv);
    return -1;
  }
  sqlite3_bind_int64(st, 1, getpid());
  sqlite3_bind_int64(st, 2, getppid());
  sqlite3_bind_text(st, 3, argv != NULL ? argv : "?", -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, exe, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 5, uvt__now_ns());
  sqlite3_bind_int(st, 6, uvt__tcfg.slow_ms);
  sqlite3_bind_int(st, 7, uvt__tcfg.depth);
  if (uvt_hook_test_name(test_name, sizeof(test_name)))
    sqlite3_bind_text(st, 8, test_name, -1, SQLITE_TRANSIENT);
  {
    /* Processes starting together contend for the write lock: retry
     * (bounded), as the set-up in db_open.c does. */
    int64_t deadline = mono_ms() + SETUP_WAIT_MS;
    int rc;
    while (is_busy(rc = sqlite3_step(st)) && mono_ms() < deadline) {
      struct pollfd none = {-1, 0, 0};
      sqlite3_reset(st);
      (void)poll(&none, 0, 2 + getpid() % 8);
    }
    ok = rc == SQLITE_DONE;
  }
  sqlite3_finalize(st);
  free(argv);
  if (!ok) return -1;
  session_id = sqlite3_last_insert_rowid(db);
  return 0;
}

/* ---- writing ----------------------------------------------------------------- */

/* For write_rec only: the text (the record's, or static) outlives the
 * statement's use of it, which write_rec ends with a reset and
 * sqlite3_clear_bindings before the record can be freed; so SQLite need
 * not copy it (the copies were a quarter of the writer's instructions). */
static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s) {
  if (s != NULL) sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, i);
}

static void bind_id_or_null(sqlite3_stmt *st, int i, int64_t v) {
  if (v > 0) sqlite3_bind_int64(st, i, v);
  else sqlite3_bind_null(st, i);
}

/* Bind and step one record; the sqlite3_step result (SQLITE_DONE). */
static int write_rec(const rec_t *r) {
  sqlite3_stmt *st = NULL;
  int rc;
  switch (r->kind) {
  case REC_OBJECT:
    st = stmt[S_OBJECT];
    sqlite3_bind_int64(st, 2, (int64_t)r->id);
    sqlite3_bind_text(st, 3, r->okind, -1, SQLITE_STATIC);
    bind_text_or_null(st, 4, r->name != NULL ? r->name : r->name_static);
    bind_text_or_null(st, 5, r->file);
    sqlite3_bind_int(st, 6, r->line);
    bind_text_or_null(st, 7, r->func);
    bind_id_or_null(st, 8, (int64_t)r->parent_id);
    bind_id_or_null(st, 9, r->create_stack);
    sqlite3_bind_int64(st, 10, r->created_ns);
    if (r->ended) sqlite3_bind_int64(st, 11, r->ended_ns);
    else sqlite3_bind_null(st, 11);
    if (r->has_status) sqlite3_bind_int(st, 12, r->status);
    else sqlite3_bind_null(st, 12);
    bind_text_or_null(st, 13, r->message);
    bind_text_or_null(st, 14, r->fail_file);
    if (r->fail_file != NULL) sqlite3_bind_int(st, 15, r->fail_line);
    else sqlite3_bind_null(st, 15);
    bind_id_or_null(st, 16, r->fail_stack);
    if (r->retrieved) sqlite3_bind_int64(st, 17, r->retrieved_ns);
    else sqlite3_bind_null(st, 17);
    sqlite3_bind_int64(st, 18, (int64_t)r->steps);
    sqlite3_bind_int64(st, 19, (int64_t)r->busy_ns);
    sqlite3_bind_int64(st, 20, (int64_t)r->max_step_ns);
    break;
  case REC_STACK: {
    unsigned char *blob = malloc((size_t)r->npcs * 8);
    int i, k;
    if (blob == NULL) return SQLITE_NOMEM;
    for (i = 0; i < r->npcs; i++)
      for (k = 0; k < 8; k++) blob[i * 8 + k] = (unsigned char)(r->pcs[i] >> (8 * k));
    st = stmt[S_STACK];
    sqlite3_bind_int64(st, 2, (int64_t)r->id);
    sqlite3_bind_blob(st, 3, blob, r->npcs * 8, free);
    break;
  }
  case REC_FINDING:
    st = stmt[S_FINDING];
    sqlite3_bind_text(st, 2, r->fkind, -1, SQLITE_STATIC);
    bind_id_or_null(st, 3, (int64_t)r->object_id);
    bind_text_or_null(st, 4, r->file);
    sqlite3_bind_int(st, 5, r->line);
    bind_text_or_null(st, 6, r->func);
    sqlite3_bind_text(st, 7, r->message != NULL ? r->message : "", -1, SQLITE_TRANSIENT);
    bind_id_or_null(st, 8, r->stack);
    bind_id_or_null(st, 9, r->stack2);
    bind_text_or_null(st, 10, r->where_file);
    if (r->where_file != NULL) sqlite3_bind_int(st, 11, r->where_line);
    else sqlite3_bind_null(st, 11);
    bind_text_or_null(st, 12, r->where_what);
    if (r->has_status) sqlite3_bind_int(st, 13, r->status);
    else sqlite3_bind_null(st, 13);
    if (r->duration_ns > 0) sqlite3_bind_int64(st, 14, r->duration_ns);
    else sqlite3_bind_null(st, 14);
    sqlite3_bind_int64(st, 15, r->ts_ns);
    sqlite3_bind_int(st, 16, r->ignored);
    break;
  case REC_SITE_STAT:
    st = stmt[S_STAT];
    sqlite3_bind_text(st, 2, r->okind, -1, SQLITE_STATIC);
    bind_text_or_null(st, 3, r->name);
    bind_text_or_null(st, 4, r->file);
    sqlite3_bind_int(st, 5, r->line);
    sqlite3_bind_int64(st, 6, (int64_t)r->count);
    sqlite3_bind_int64(st, 7, (int64_t)r->steps);
    sqlite3_bind_int64(st, 8, (int64_t)r->busy_ns);
    sqlite3_bind_int64(st, 9, (int64_t)r->max_step_ns);
    break;
  case REC_STEP:
    st = stmt[S_STEP];
    sqlite3_bind_int64(st, 2, (int64_t)r->object_id);
    sqlite3_bind_int64(st, 3, r->ts_ns);
    sqlite3_bind_int64(st, 4, r->duration_ns);
    sqlite3_bind_int(st, 5, r->slow ? 1 : 0);
    break;
  case REC_MEMBER:
    if (last_finding_id <= 0) return SQLITE_DONE;
    st = stmt[S_MEMBER];
    sqlite3_bind_int64(st, 2, last_finding_id);
    sqlite3_bind_int64(st, 3, (int64_t)r->count);
    bind_id_or_null(st, 4, (int64_t)r->object_id);
    bind_text_or_null(st, 5, r->name);
    bind_text_or_null(st, 6, r->where_what);
    bind_id_or_null(st, 7, (int64_t)r->id);
    bind_id_or_null(st, 8, (int64_t)r->parent_id);
    bind_text_or_null(st, 9, r->where_file);
    if (r->where_file != NULL) sqlite3_bind_int(st, 10, r->where_line);
    else sqlite3_bind_null(st, 10);
    bind_text_or_null(st, 11, r->file);
    if (r->file != NULL) sqlite3_bind_int(st, 12, r->line);
    else sqlite3_bind_null(st, 12);
    bind_id_or_null(st, 13, r->stack);
    break;
  case REC_SNAPSHOT:
    st = stmt[S_SNAPSHOT];
    sqlite3_bind_int64(st, 2, (int64_t)r->id);
    sqlite3_bind_text(st, 3, r->fkind != NULL ? r->fkind : "request", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, r->ts_ns);
    sqlite3_bind_int64(st, 5, (int64_t)r->count);
    break;
  case REC_SNAP_TASK:
    st = stmt[S_SNAP_TASK];
    sqlite3_bind_int64(st, 2, (int64_t)r->id);
    sqlite3_bind_int64(st, 3, (int64_t)r->object_id);
    bind_text_or_null(st, 4, r->name);
    sqlite3_bind_text(st, 5, r->okind != NULL ? r->okind : "?", -1, SQLITE_STATIC);
    bind_text_or_null(st, 6, r->fkind);
    bind_text_or_null(st, 7, r->where_what);
    bind_id_or_null(st, 8, (int64_t)r->wait_on_id);
    if (r->duration_ns > 0) sqlite3_bind_int64(st, 9, r->duration_ns);
    else sqlite3_bind_null(st, 9);
    bind_text_or_null(st, 10, r->where_file);
    if (r->where_file != NULL) sqlite3_bind_int(st, 11, r->where_line);
    else sqlite3_bind_null(st, 11);
    bind_text_or_null(st, 12, r->where_func);
    bind_text_or_null(st, 13, r->file);
    sqlite3_bind_int(st, 14, r->line);
    bind_text_or_null(st, 15, r->func);
    bind_id_or_null(st, 16, (int64_t)r->parent_id);
    bind_id_or_null(st, 17, r->stack);
    bind_text_or_null(st, 18, r->message);
    break;
  case REC_MODULE:
    st = stmt[S_MODULE];
    bind_text_or_null(st, 2, r->path);
    bind_text_or_null(st, 3, r->build_id);
    sqlite3_bind_int64(st, 4, (int64_t)r->base);
    sqlite3_bind_int64(st, 5, (int64_t)r->lo);
    sqlite3_bind_int64(st, 6, (int64_t)r->hi);
    break;
  }
  sqlite3_bind_int64(st, 1, session_id);
  rc = sqlite3_step(st);
  /* Members belong to the finding just before them; none if it was refused. */
  if (r->kind == REC_FINDING)
    last_finding_id = rc == SQLITE_DONE ? sqlite3_last_insert_rowid(db) : 0;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc;
}

static int write_counters(void) {
  char test_name[256];
  int rc;
  sqlite3_stmt *st = stmt[S_SESSION];
  sqlite3_bind_int64(st, 1, session_id);
  sqlite3_bind_int64(st, 2, (int64_t)__atomic_load_n(&uvt__stat_objects, __ATOMIC_RELAXED));
  sqlite3_bind_int64(st, 3, (int64_t)__atomic_load_n(&uvt__stat_findings, __ATOMIC_RELAXED));
  sqlite3_bind_int64(st, 4, (int64_t)__atomic_load_n(&uvt__stat_shed, __ATOMIC_RELAXED));
  sqlite3_bind_int64(st, 5, (int64_t)__atomic_load_n(&uvt__stat_peak_tasks, __ATOMIC_RELAXED));
  if (uvt_hook_test_name(test_name, sizeof(test_name)))
    sqlite3_bind_text(st, 6, test_name, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, 6);
  sqlite3_bind_int64(st, 7, (int64_t)lost_rows);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc;
}

static int write_end(const session_end_t *end) {
  sqlite3_stmt *st = stmt[S_END];
  int rc;
  sqlite3_bind_int64(st, 1, session_id);
  sqlite3_bind_int64(st, 2, uvt__now_ns());
  sqlite3_bind_text(st, 3, end->reason, -1, SQLITE_STATIC);
  if (strcmp(end->reason, "exit") == 0) sqlite3_bind_int(st, 4, end->exit_status);
  else sqlite3_bind_null(st, 4);
  if (end->signal != 0) sqlite3_bind_int(st, 5, end->signal);
  else sqlite3_bind_null(st, 5);
  bind_id_or_null(st, 6, (int64_t)end->crash_task_id);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc;
}

/* ---- committing ------------------------------------------------------------- */

/* Rows taken from the queue stay on `pending` (writer thread only) until a
 * transaction holding them commits.  A commit that finds the database
 * locked by another process (a peer mid-commit, a stopped one, a reader
 * checkpointing) leaves them there for the next attempt: nothing is lost
 * to contention.  A commit that fails otherwise (disk full, I/O error)
 * cannot be helped by waiting: its rows are dropped and counted in
 * `lost_rows`, which then goes into the session row by a transaction of
 * its own, and is said on stderr at the end.  A row that alone is refused
 * (a constraint) is counted too, and the rest of its batch is kept.
 *
 * On a full disk that transaction (one page) usually fits where the failed
 * one had grown the WAL, but not when the failed one could not write a
 * single page: the commit before it ended at the disk's end (which load
 * makes likely: small commits), or a peer took the last bytes.  Then the
 * ballast (below) gives room.  And each loss record committed on a full
 * disk takes a page for good, so while the disk stays full only the first
 * loss is recorded at once; the final count goes with the session's end.
 */


/* Errors that concern one row only: the next rows may still be written. */
static bool row_error(int rc) {
  rc &= 0xff;
  return rc == SQLITE_CONSTRAINT || rc == SQLITE_TOOBIG || rc == SQLITE_MISMATCH ||
         rc == SQLITE_RANGE || rc == SQLITE_NOMEM;
}

static void take_queue(void) {
  rec_t *r, *tail;
  pthread_mutex_lock(&queue_mutex);
  r = queue_head;
  tail = queue_tail;
  queue_head = queue_tail = NULL;
  pthread_mutex_unlock(&queue_mutex);
  if (r == NULL) return;
  if (pending_tail != NULL) pending_tail->next = r;
  else pending_head = r;
  pending_tail = tail;
  for (; r != NULL; r = r->next) npending++;
}

static void note_lost(uint64_t n, const char *why) {
  if (n == 0) return;
  if (lost_rows == 0) snprintf(lost_why, sizeof(lost_why), "%s", why);
  lost_rows += n;
  counters_dirty = true;
}

static void drop_pending(const char *why) {
  rec_t *r = pending_head;
  note_lost(npending, why);
  while (r != NULL) {
    rec_t *next = r->next;
    uvt__rec_free(r);
    r = next;
  }
  pending_head = pending_tail = NULL;
  npending = 0;
}

/* Space kept allocated past the end of the WAL (fallocate KEEP_SIZE, so
 * SQLite sees no change): when the disk fills up, the failed transaction
 * is rolled back and the one that records the loss is written into this
 * space, which needs no new block.  Renewed after every commit. */
#define WAL_RESERVE (256 * 1024)

static void reserve_wal(void) {
  struct stat st;
  if (wal_fd >= 0 && fstat(wal_fd, &st) == 0)
    (void)fallocate(wal_fd, FALLOC_FL_KEEP_SIZE, st.st_size, WAL_RESERVE);
}

/* The ballast: BALLAST bytes allocated to an unlinked file in the
 * database's directory (O_TMPFILE: nothing is left behind, however the
 * process ends), given back BALLAST_STEP at a time when the loss or end
 * record finds no room (release_ballast).  The WAL's reserve above cannot
 * do this job: any commit may use it up.  Without O_TMPFILE (or with the
 * disk already full) there is none, and the reserve is all there is. */
#define BALLAST (64 * 1024)
#define BALLAST_STEP (16 * 1024)

static void open_ballast(void) {
  char dir[4200];
  const char *name = sqlite3_db_filename(db, "main");
  const char *slash = name != NULL ? strrchr(name, '/') : NULL;
  size_t n;
  if (slash == NULL) return;
  n = slash == name ? 1 : (size_t)(slash - name); /* "/x.db": the root */
  if (n >= sizeof(dir)) return;
  memcpy(dir, name, n);
  dir[n] = '\0';
  ballast_fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (ballast_fd >= 0 && fallocate(ballast_fd, 0, 0, BALLAST) != 0) {
    close(ballast_fd);
    ballast_fd = -1;
  }
}

/* Gives BALLAST_STEP bytes back to the file system; false if none are
 * left.  (ext4 and XFS make freed blocks usable at once: on ENOSPC they
 * commit the journal and retry the allocation.) */
static bool release_ballast(void) {
  struct stat st;
  if (ballast_fd < 0 || fstat(ballast_fd, &st) != 0 || st.st_size == 0) return false;
  return ftruncate(ballast_fd, st.st_size > BALLAST_STEP ? st.st_size - BALLAST_STEP : 0) == 0;
}

static void close_ballast(void) {
  if (ballast_fd >= 0) close(ballast_fd);
  ballast_fd = -1;
}

static void open_wal_reserve(void) {
  const char *name = sqlite3_db_filename(db, "main");
  char wal[4200];
  if (name == NULL || snprintf(wal, sizeof(wal), "%s-wal", name) >= (int)sizeof(wal)) return;
  /* SQLite locks the database and -shm files, never -wal: another
   * descriptor for it cannot drop SQLite's locks when closed. */
  wal_fd = open(wal, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  reserve_wal();
}

enum { COMMIT_DONE, COMMIT_BUSY, COMMIT_FAILED };

/* The result code of the last commit that failed (a ROLLBACK after it
 * resets the connection's own). */
static int failed_rc;

static int rollback_with(int rc) {
  failed_rc = rc;
  if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return is_busy(rc) ? COMMIT_BUSY : COMMIT_FAILED;
}

/* One transaction: the pending rows (if `rows`), the counters and `end`. */
static int try_commit(bool rows, const session_end_t *end) {
  uint64_t refused = 0;
  rec_t *r;
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK) return rollback_with(rc);
  for (r = rows ? pending_head : NULL; r != NULL; r = r->next) {
    rc = write_rec(r);
    if (rc == SQLITE_DONE) continue;
    if (!row_error(rc)) return rollback_with(rc);
    refused++;
  }
  if (refused > 0) note_lost(refused, sqlite3_errstr(rc));
  if ((rc = write_counters()) != SQLITE_DONE) return rollback_with(rc);
  if (end != NULL && (rc = write_end(end)) != SQLITE_DONE) return rollback_with(rc);
  if ((rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
    return rollback_with(rc);
  counters_dirty = false;
  loss_in_file = lost_rows > 0;
  if (rows) {
    pending_tail = pending_head;
    while (pending_head != NULL) {
      r = pending_head->next;
      uvt__rec_free(pending_head);
      pending_head = r;
    }
    pending_tail = NULL;
    npending = 0;
  }
  reserve_wal();
  return COMMIT_DONE;
}

/* Commit what is queued (and `end`).  True when done, false when the
 * database was busy and the rows wait on `pending` for the next call. */
static bool commit_pending(const session_end_t *end) {
  int rc;
  take_queue();
  if (db_lost) {
    drop_pending("the database could not be reopened after a fork");
    return true;
  }
  /* Counters alone are not committed once a loss is in the file: on a
   * full disk each such commit would take a page for good (see above);
   * they go with the next rows or the end. */
  if (pending_head == NULL && end == NULL && (!counters_dirty || loss_in_file)) return true;
  rc = try_commit(true, end);
  if (rc == COMMIT_DONE) return true;
  if (rc == COMMIT_BUSY) return false;
  /* Waiting will not help: drop the rows, then record that they are
   * lost (and the end) in a transaction of their own, given room from
   * the ballast if the disk has none. */
  drop_pending(sqlite3_errstr(failed_rc));
  if (loss_in_file && end == NULL) return true;
  while ((rc = try_commit(false, end)) == COMMIT_FAILED && (failed_rc & 0xff) == SQLITE_FULL &&
         release_ballast()) {
  }
  return rc != COMMIT_BUSY;
}

/* Commit until done or `deadline` (CLOCK_MONOTONIC ms); whatever is left
 * then is lost, and counted. */
/* Whether another connection committed since the last call: each commit
 * appends frames to the -wal file (or rewrites it from its start after a
 * checkpoint), which moves its size or modification time. */
static bool wal_moved(struct stat *last) {
  struct stat st;
  bool moved;
  if (wal_fd < 0 || fstat(wal_fd, &st) != 0) return false;
  moved = st.st_size != last->st_size || st.st_mtim.tv_sec != last->st_mtim.tv_sec ||
          st.st_mtim.tv_nsec != last->st_mtim.tv_nsec;
  *last = st;
  return moved;
}

/* Commit what is pending; give up (the rows counted as lost) once idle_ms
 * pass without any process committing, or max_ms in all. */
static void commit_until(const session_end_t *end, int64_t idle_ms, int64_t max_ms) {
  int64_t start = mono_ms(), idle_from = start;
  struct stat last;
  memset(&last, 0, sizeof(last));
  (void)wal_moved(&last);
  while (!commit_pending(end)) {
    struct pollfd none = {-1, 0, 0};
    int64_t now = mono_ms();
    if (wal_moved(&last)) idle_from = now;
    if (now - idle_from >= idle_ms || now - start >= max_ms) {
      take_queue();
      drop_pending("the database stayed locked by another process");
      return;
    }
    (void)poll(&none, 0, 5);
  }
}

static void close_statements(void) {
  int i;
  for (i = 0; i < NSTMT; i++) {
    sqlite3_finalize(stmt[i]);
    stmt[i] = NULL;
  }
}

/* -1 on failure, after a line on stderr if `say`. */
static int prepare_statements(bool say) {
  int i;
  for (i = 0; i < NSTMT; i++)
    if (sqlite3_prepare_v3(db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                           &stmt[i], NULL) != SQLITE_OK) {
      if (say)
        uvt__tracer_line("asynciodebug: %s: %s; recording off", uvt__tcfg.path,
                         sqlite3_errmsg(db));
      return -1;
    }
  return 0;
}

/* Asked to park (a fork is coming): close the connection, say so, wait
 * for the fork to be over, reopen.  Queued and pending rows wait. */
static void park(void) {
  close_statements();
  /* Back in a moment: no checkpoint (and WAL removal) on this close. */
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  sqlite3_close(db);
  db = NULL;
  if (wal_fd >= 0) close(wal_fd);
  wal_fd = -1;
  pthread_mutex_lock(&park_mutex);
  if (park_state == PARK_REQUESTED) {
    park_state = PARK_PARKED;
    pthread_cond_broadcast(&park_cond);
    while (park_state == PARK_PARKED) pthread_cond_wait(&park_cond, &park_mutex);
  }
  pthread_mutex_unlock(&park_mutex);
  {
    /* Reading the schema can meet a peer's lock (a child setting up):
     * retry, bounded as the set-up is. */
    int64_t deadline = mono_ms() + SETUP_WAIT_MS;
    for (;;) {
      if ((db = uvt__db_reopen()) != NULL) {
        sqlite3_busy_timeout(db, BUSY_MS);
        if (prepare_statements(false) == 0) break;
      }
      close_statements();
      sqlite3_close(db);
      db = NULL;
      if (mono_ms() >= deadline) {
        uvt__tracer_line("asynciodebug: %s: cannot reopen the database after a fork; "
                         "recording off", uvt__tcfg.path);
        db_lost = true;
        return;
      }
      {
        struct pollfd none = {-1, 0, 0};
        (void)poll(&none, 0, 5);
      }
    }
  }
  open_wal_reserve();
}

static bool park_requested(void) {
  bool r;
  pthread_mutex_lock(&park_mutex);
  r = park_state == PARK_REQUESTED;
  pthread_mutex_unlock(&park_mutex);
  return r;
}

static void *writer_main(void *arg) {
  sigset_t all;
  (void)arg;
  /* Signals are for the program's threads, not this one. */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  for (;;) {
    struct pollfd p = {wake_fd[0], POLLIN, 0};
    char buf[64];
    if (poll(&p, 1, COMMIT_MS) > 0)
      while (read(wake_fd[0], buf, sizeof(buf)) > 0) {
      }
    if (__atomic_load_n(&crash_requested, __ATOMIC_ACQUIRE)) {
      char c = 1;
      rec_t *tail = NULL, *rows = NULL;
      if (crash_rows != NULL) rows = crash_rows(crash_state, &final_end, &tail);
      uvt__writer_enqueue(rows, tail);
      commit_until(&final_end, CRASH_COMMIT_MS, CRASH_COMMIT_MS);
      (void)!write(ack_fd[1], &c, 1);
      return NULL; /* the process is about to die: leave SQLite as is */
    }
    if (__atomic_load_n(&stop_requested, __ATOMIC_ACQUIRE)) break;
    if (park_requested() && !db_lost) park();
    (void)commit_pending(NULL);
  }
  commit_until(&final_end, UVT__FINISH_IDLE_MS, UVT__FINISH_MAX_MS);
  uvt__rec_thread_exit();
  return NULL;
}

/* The session row of a start that failed after inserting it: gone, so
 * that no report shows a session that began and never ended (a crash). */
static void session_forget(void) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "DELETE FROM sessions WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
    return;
  sqlite3_bind_int64(st, 1, session_id);
  (void)sqlite3_step(st);
  sqlite3_finalize(st);
}

int uvt__writer_start(void) {
  int i, err;
  bool inserted = false;
  if ((db = uvt__db_open()) == NULL) return -1;
  sqlite3_busy_timeout(db, BUSY_MS);
  /* The pipes first: with few descriptors left they are what fails, and
   * nothing is in the file yet. */
  if (pipe2(wake_fd, O_CLOEXEC | O_NONBLOCK) != 0 ||
      pipe2(ack_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
    uvt__tracer_line("asynciodebug: %s: cannot create the writer's pipes: %s; "
                     "recording off", uvt__tcfg.path, strerror(errno));
    goto fail;
  }
  if (session_insert() != 0) {
    uvt__tracer_line("asynciodebug: %s: cannot insert the session: %s; "
            "recording off", uvt__tcfg.path, sqlite3_errmsg(db));
    goto fail;
  }
  inserted = true;
  if (prepare_statements(true) != 0) goto fail;
  open_wal_reserve();
  /* Last: with few descriptors left, the pipes matter more.  Kept across
   * a fork's park and reopen (same directory). */
  open_ballast();
  if ((err = pthread_create(&thread, NULL, writer_main, NULL)) != 0) {
    uvt__tracer_line("asynciodebug: %s: cannot start the writer thread: %s; "
                     "recording off", uvt__tcfg.path, strerror(err));
    goto fail;
  }
  running = true;
  return 0;
fail:
  close_statements();
  if (inserted) session_forget();
  for (i = 0; i < 2; i++) {
    if (wake_fd[i] >= 0) close(wake_fd[i]);
    if (ack_fd[i] >= 0) close(ack_fd[i]);
  }
  wake_fd[0] = wake_fd[1] = ack_fd[0] = ack_fd[1] = -1;
  if (wal_fd >= 0) close(wal_fd);
  wal_fd = -1;
  close_ballast();
  sqlite3_close(db);
  db = NULL;
  return -1;
}

void uvt__writer_finish(const session_end_t *end, int timeout_ms) {
  struct timespec until;
  int i;
  if (!running) return;
  final_end = *end;
  __atomic_store_n(&stop_requested, 1, __ATOMIC_RELEASE);
  uvt__writer_wake();
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
  running = false;
  if (pthread_timedjoin_np(thread, NULL, &until) != 0) {
    /* Stuck inside SQLite (a disk that does not answer): the process is
     * ending, so leave the thread and the connection as they are. */
    uvt__tracer_line("asynciodebug: %s: the writer did not finish within %d ms; "
            "the recording is incomplete", uvt__tcfg.path, timeout_ms);
    return;
  }
  if (lost_rows > 0)
    uvt__tracer_line("asynciodebug: %s: %llu row%s could not be written (%s); "
            "the recording is incomplete", uvt__tcfg.path,
            (unsigned long long)lost_rows, lost_rows == 1 ? "" : "s", lost_why);
  for (i = 0; i < NSTMT; i++) {
    sqlite3_finalize(stmt[i]);
    stmt[i] = NULL;
  }
  /* Its room may let the closing checkpoint fold the WAL in. */
  close_ballast();
  if (db == NULL) return; /* lost at a fork: nothing to close */
  /* No checkpoint of our own: the last connection to close folds the WAL
   * into the main file and deletes the WAL and shm files (so copying the
   * .db alone is enough), and a peer still recording keeps them.  A
   * TRUNCATE checkpoint here would wait for the peers' readers.  Peers
   * closing at the same instant take turns (uvt__db_close_lock), or each
   * could see the other open and none would fold the WAL in. */
  {
    int guard = uvt__db_close_lock();
    /* A connection that failed to close still holds SQLite's fcntl locks,
     * which closing the guard's descriptor would drop: keep it then. */
    if (sqlite3_close(db) == SQLITE_OK) uvt__db_close_unlock(guard);
  }
  db = NULL;
  if (wal_fd >= 0) close(wal_fd);
  wal_fd = -1;
  close(wake_fd[0]);
  close(wake_fd[1]);
  close(ack_fd[0]);
  close(ack_fd[1]);
  wake_fd[0] = wake_fd[1] = ack_fd[0] = ack_fd[1] = -1;
}

void uvt__writer_crash(const session_end_t *end, void *state, int timeout_ms) {
  struct pollfd p;
  if (!running) return;
  final_end = *end;
  crash_state = state;
  __atomic_store_n(&crash_requested, 1, __ATOMIC_RELEASE);
  uvt__writer_wake();
  p.fd = ack_fd[0];
  p.events = POLLIN;
  p.revents = 0;
  (void)poll(&p, 1, timeout_ms);
}

#if defined(__SANITIZE_ADDRESS__)
void __lsan_ignore_object(const void *p);
#endif

bool uvt__writer_park(int timeout_ms) {
  struct timespec until;
  bool parked;
  if (!running || db_lost) return false;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
  pthread_mutex_lock(&park_mutex);
  park_state = PARK_REQUESTED;
  uvt__writer_wake();
  while (park_state == PARK_REQUESTED &&
         pthread_cond_timedwait(&park_cond, &park_mutex, &until) == 0) {
  }
  parked = park_state == PARK_PARKED;
  pthread_mutex_unlock(&park_mutex);
  return parked;
}

void uvt__writer_unpark(void) {
  pthread_mutex_lock(&park_mutex);
  /* Also withdraws a request the writer did not reach in time. */
  park_state = PARK_RUNNING;
  pthread_cond_broadcast(&park_cond);
  pthread_mutex_unlock(&park_mutex);
}

bool uvt__writer_forget(void) {
  /* The writer thread does not exist in a forked child.  If it was parked
   * at the fork, the parent had no connection open and no thread was in
   * SQLite: the child may open the file afresh.  If not, a SQLite mutex
   * may be held for good and the parent's connection state is here:
   * drop all of it, untouched, and tell the caller not to record. */
  bool safe = running && park_state == PARK_PARKED && db == NULL;
#if defined(__SANITIZE_ADDRESS__)
  if (db != NULL) __lsan_ignore_object(db);
#endif
  running = false;
  db = NULL;
  db_lost = false;
  memset(stmt, 0, sizeof(stmt));
  queue_head = queue_tail = NULL;
  pending_head = pending_tail = NULL;
  npending = lost_rows = 0;
  loss_in_file = false;
  if (wal_fd >= 0) close(wal_fd);
  wal_fd = -1;
  close_ballast();
  counters_dirty = false;
  pthread_mutex_init(&queue_mutex, NULL);
  uvt__rec_forget();
  pthread_mutex_init(&park_mutex, NULL);
  pthread_cond_init(&park_cond, NULL);
  park_state = PARK_RUNNING;
  __atomic_store_n(&stop_requested, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&crash_requested, 0, __ATOMIC_RELAXED);
  for (int i = 0; i < 2; i++) {
    if (wake_fd[i] >= 0) close(wake_fd[i]);
    if (ack_fd[i] >= 0) close(ack_fd[i]);
  }
  wake_fd[0] = wake_fd[1] = ack_fd[0] = ack_fd[1] = -1;
  return safe;
}

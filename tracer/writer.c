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

enum { S_OBJECT, S_STACK, S_FINDING, S_STAT, S_STEP, S_MODULE, S_SESSION, S_END, NSTMT };
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
    "test_name=COALESCE(?6, test_name) WHERE id=?1",
    "UPDATE sessions SET end_ns=?2, end_reason=?3, exit_status=?4, "
    "signal=?5, crash_task_id=?6 WHERE id=?1",
};

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
  ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  free(argv);
  if (!ok) return -1;
  session_id = sqlite3_last_insert_rowid(db);
  return 0;
}

/* ---- writing ----------------------------------------------------------------- */

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s) {
  if (s != NULL) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(st, i);
}

static void bind_id_or_null(sqlite3_stmt *st, int i, int64_t v) {
  if (v > 0) sqlite3_bind_int64(st, i, v);
  else sqlite3_bind_null(st, i);
}

static void write_rec(const rec_t *r) {
  sqlite3_stmt *st = NULL;
  switch (r->kind) {
  case REC_OBJECT:
    st = stmt[S_OBJECT];
    sqlite3_bind_int64(st, 2, (int64_t)r->id);
    sqlite3_bind_text(st, 3, r->okind, -1, SQLITE_STATIC);
    bind_text_or_null(st, 4, r->name);
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
    if (blob == NULL) return;
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
  if (sqlite3_step(st) != SQLITE_DONE)
    fprintf(stderr, "asynciodebug: write failed: %s\n", sqlite3_errmsg(db));
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

static void write_counters(void) {
  char test_name[256];
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
  sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

static void write_end(const session_end_t *end) {
  sqlite3_stmt *st = stmt[S_END];
  sqlite3_bind_int64(st, 1, session_id);
  sqlite3_bind_int64(st, 2, uvt__now_ns());
  sqlite3_bind_text(st, 3, end->reason, -1, SQLITE_STATIC);
  if (strcmp(end->reason, "exit") == 0) sqlite3_bind_int(st, 4, end->exit_status);
  else sqlite3_bind_null(st, 4);
  if (end->signal != 0) sqlite3_bind_int(st, 5, end->signal);
  else sqlite3_bind_null(st, 5);
  bind_id_or_null(st, 6, (int64_t)end->crash_task_id);
  sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

/* One transaction with everything queued; true if anything was written. */
static bool write_queue(const session_end_t *end) {
  rec_t *r;
  pthread_mutex_lock(&queue_mutex);
  r = queue_head;
  queue_head = queue_tail = NULL;
  pthread_mutex_unlock(&queue_mutex);
  if (r == NULL && end == NULL) return false;
  sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  while (r != NULL) {
    rec_t *next = r->next;
    write_rec(r);
    uvt__rec_free(r);
    r = next;
  }
  write_counters();
  if (end != NULL) write_end(end);
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    fprintf(stderr, "asynciodebug: commit failed: %s\n", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  }
  return true;
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
      if (crash_rows != NULL) rows = crash_rows(crash_state, &tail);
      uvt__writer_enqueue(rows, tail);
      write_queue(&final_end);
      (void)!write(ack_fd[1], &c, 1);
      return NULL; /* the process is about to die: leave SQLite as is */
    }
    write_queue(NULL);
    if (__atomic_load_n(&stop_requested, __ATOMIC_ACQUIRE)) break;
  }
  write_queue(&final_end);
  uvt__rec_thread_exit();
  return NULL;
}

int uvt__writer_start(void) {
  int i;
  if ((db = uvt__db_open()) == NULL) return -1;
  if (session_insert() != 0) {
    fprintf(stderr, "asynciodebug: %s: cannot insert the session: %s; "
            "recording off\n", uvt__tcfg.path, sqlite3_errmsg(db));
    goto fail;
  }
  for (i = 0; i < NSTMT; i++)
    if (sqlite3_prepare_v3(db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                           &stmt[i], NULL) != SQLITE_OK) {
      fprintf(stderr, "asynciodebug: %s: %s; recording off\n", uvt__tcfg.path,
              sqlite3_errmsg(db));
      goto fail;
    }
  if (pipe2(wake_fd, O_CLOEXEC | O_NONBLOCK) != 0 ||
      pipe2(ack_fd, O_CLOEXEC | O_NONBLOCK) != 0)
    goto fail;
  if (pthread_create(&thread, NULL, writer_main, NULL) != 0) goto fail;
  running = true;
  return 0;
fail:
  for (i = 0; i < NSTMT; i++) {
    sqlite3_finalize(stmt[i]);
    stmt[i] = NULL;
  }
  sqlite3_close(db);
  db = NULL;
  return -1;
}

void uvt__writer_finish(const session_end_t *end, int timeout_ms) {
  int i;
  (void)timeout_ms;
  if (!running) return;
  final_end = *end;
  __atomic_store_n(&stop_requested, 1, __ATOMIC_RELEASE);
  uvt__writer_wake();
  pthread_join(thread, NULL);
  running = false;
  for (i = 0; i < NSTMT; i++) {
    sqlite3_finalize(stmt[i]);
    stmt[i] = NULL;
  }
  /* Fold the WAL into the main file: copying the .db alone is enough. */
  sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
  sqlite3_close(db);
  db = NULL;
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

void uvt__writer_forget(void) {
  /* The writer thread does not exist in a forked child, and the parent's
   * SQLite connection must not be used from it (closing it could even
   * checkpoint the parent's WAL): drop both, unclosed, on purpose. */
#if defined(__SANITIZE_ADDRESS__)
  if (db != NULL) __lsan_ignore_object(db);
#endif
  running = false;
  db = NULL;
  memset(stmt, 0, sizeof(stmt));
  queue_head = queue_tail = NULL;
  pthread_mutex_init(&queue_mutex, NULL);
  uvt__rec_forget();
  __atomic_store_n(&stop_requested, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&crash_requested, 0, __ATOMIC_RELAXED);
  for (int i = 0; i < 2; i++) {
    if (wake_fd[i] >= 0) close(wake_fd[i]);
    if (ack_fd[i] >= 0) close(ack_fd[i]);
  }
  wake_fd[0] = wake_fd[1] = ack_fd[0] = ack_fd[1] = -1;
}

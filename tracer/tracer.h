/*
 * The asynciodebug tracer: the hook subscriber that records to SQLite.
 *
 * Data flows one way:
 *
 *   loop thread(s)                      writer thread
 *   hook events -> recorder.c --records--> writer.c -> SQLite
 *
 * The loop thread decides findings and builds records (rec_t, below) in a
 * per-thread batch; it hands whole batches to the writer under a mutex
 * held only to link a pointer, and wakes it through a pipe.  It never
 * waits on SQLite or the disk.  Nothing on this path is ever dropped:
 * findings, objects and stacks always reach the writer.  Only timeline
 * steps have a budget per session; past it they are counted (sessions.shed)
 * instead of written.
 *
 * Stacks are raw return addresses (a frame-pointer walk through code
 * known to keep frame pointers, fpstack.c and fpknown.c; libunwind
 * elsewhere), interned process-wide by hash (stacks.c), and symbolised
 * later by the `uvtask` command from the module map recorded at start.
 */
#ifndef UVT_TRACER_TRACER_H
#define UVT_TRACER_TRACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uvtask/kinds.h"

/* The most frames a stored stack keeps (ASYNCIODEBUG_DEPTH's ceiling), and
 * the most the tracer ever unwinds: the stored frames plus the runtime's
 * and the tracer's own frames on top, which are dropped.  Every PC buffer
 * is UVT_TRACE_MAX_PCS long and every unwind is bounded by it. */
#define UVT_TRACE_MAX_DEPTH UVT_MAX_STACK_DEPTH /* uvtask/kinds.h: the one constant */
#define UVT_TRACE_MAX_PCS (UVT_TRACE_MAX_DEPTH + 16)

/* For a function that clears a record per event: x86-64 GCC's generic
 * tuning clears a fixed-size struct with `rep stos`, slow to start on
 * current cores; tuned for one it uses 16-byte stores.  The instruction
 * set stays plain x86-64 (see hooks/hook_points.h, UVT__HOOK_TUNE). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define UVT__TRACER_TUNE __attribute__((target("tune=skylake")))
#else
#define UVT__TRACER_TUNE
#endif

typedef struct tracer_config_s {
  bool on;             /* recording */
  char path[4096];     /* database file */
  int slow_ms;         /* ASYNCIODEBUG_SLOW_MS */
  int depth;           /* ASYNCIODEBUG_DEPTH, 1..UVT_TRACE_MAX_DEPTH */
  bool log;            /* ASYNCIODEBUG_LOG: findings on stderr */
  int lock_ms;         /* ASYNCIODEBUG_LOCK_MS: lock-held-across-await */
  /* ASYNCIODEBUG_STACKS: how stacks are taken */
  enum {
    UVT__STACKS_AUTO,   /* unset: frame pointers through code known to keep
                           them (fpknown.c), libunwind elsewhere */
    UVT__STACKS_UNWIND, /* "unwind": libunwind only */
    UVT__STACKS_FP      /* "fp": frame pointers wherever they lead */
  } stacks;
} tracer_config_t;

extern tracer_config_t uvt__tcfg;

/* One line on stderr, formatted, with the control characters of the result
 * written as \xNN (stderr_line.c); the newline is added. */
void uvt__tracer_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Read the environment; warn on stderr about bad values. */
void uvt__tracer_config_load(void);

/* ---- records handed to the writer ------------------------------------- */

typedef enum {
  REC_OBJECT = 1, /* insert or replace an objects row */
  REC_STACK,      /* a new interned stack */
  REC_FINDING,
  REC_SITE_STAT,
  REC_STEP,
  REC_MODULE,
  REC_MEMBER,     /* a finding_members row of the REC_FINDING before it */
  REC_SNAPSHOT,   /* a snapshots row (id, fkind: reason, count: tasks) */
  REC_SNAP_TASK   /* a snapshot_tasks row */
} rec_kind_t;

typedef struct rec_s {
  struct rec_s *next;
  rec_kind_t kind;
  /* objects / findings / site stats */
  uint64_t id, parent_id, object_id;
  const char *okind;  /* static: "task", ... */
  char *name;         /* owned */
  const char *name_static; /* REC_OBJECT without `name`: a creation name
                              (static, never freed) */
  const char *file;   /* static (__FILE__) */
  int line;
  const char *func;   /* static (__func__) */
  int64_t create_stack, fail_stack, stack, stack2;
  int64_t created_ns, ended_ns, retrieved_ns, ts_ns, duration_ns;
  bool ended, has_status, retrieved;
  int status;
  char *message;      /* owned */
  const char *fail_file;
  int fail_line;
  const char *fkind;  /* findings: static kind */
  const char *where_file, *where_what;
  int where_line;
  uint64_t steps, busy_ns, max_step_ns, count;
  /* stacks */
  uint64_t *pcs;      /* owned */
  int npcs;
  /* modules */
  char *path;         /* owned */
  char *build_id;     /* owned */
  uint64_t base, lo, hi;
  /* steps */
  bool slow;
  /* findings: the object is on the uvt_leaks_ignore list */
  bool ignored;
  /* members (REC_MEMBER): ord in `count`, the member in object_id, its
   * name in name, wait kind in where_what, parked site in where_*,
   * waits_on in id, held_by in parent_id, acquire site in file/line,
   * parked stack in stack.  It belongs to the last REC_FINDING written
   * before it, which the same batch carries just ahead of it. */
  /* snapshot tasks (object_id: the task; id: the snapshot; okind: its
   * state; fkind: its wait kind; where_*: parked site; message: the
   * awaiters' ids; duration_ns: parked for) */
  uint64_t wait_on_id;
  const char *where_func;
} rec_t;

/* ---- records (records.c): memory and per-thread batches ---------------- */

/* Records made on a thread and not yet handed to the writer. */
typedef struct rec_batch_s {
  rec_t *head, *tail;
  size_t n;
} rec_batch_t;

rec_t *uvt__rec_new(rec_kind_t kind);
void uvt__rec_free(rec_t *r);
/* A thread that made or freed records is exiting: give them back. */
void uvt__rec_thread_exit(void);
/* In a forked child: reset the pool's lock. */
void uvt__rec_forget(void);
/* Append to the calling thread's batch (records are owned by it now). */
void uvt__rec_push(rec_t *r);
/* The calling thread's batch (valid for the thread's life). */
rec_batch_t *uvt__rec_batch(void);
/* Empty `b`: its records, first and (in *tail) last, or NULL. */
rec_t *uvt__rec_take(rec_batch_t *b, rec_t **tail);
/* Hand the calling thread's batch to the writer and wake it (recorder.c). */
void uvt__rec_submit(void);

/* ---- writer (writer.c) ------------------------------------------------ */

typedef struct session_end_s {
  const char *reason;   /* "exit" or "signal" */
  int exit_status;
  int signal;
  uint64_t crash_task_id;
  /* A crash (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT): the stack unwound
   * from the signal's context, innermost first, the faulting frame's PC
   * stored + 1 (readers symbolise pc - 1, as for return addresses), and
   * the fault address when the signal has one. */
  const uint64_t *crash_pcs;
  int crash_npcs;
  bool crash, has_addr;
  uint64_t fault_addr;
  uint64_t overflow_task_id; /* the crash is this task's stack overflow */
  bool quit_snapshot; /* SIGQUIT: write uvt__inspect_quit_capture's */
} session_end_t;

/* Open the database named by uvt__tcfg.path for recording (db_open.c):
 * created 0600, never through a symlink in its last component, refused
 * when owned by another user, writable by others or not ours; WAL mode.
 * Returns the connection, or NULL after one line on stderr (and with a
 * file it created removed again). */
struct sqlite3;
struct sqlite3 *uvt__db_open(void);
/* Open again the file uvt__db_open opened last, if it is still the same
 * file (device and inode); NULL if not.  Checks nothing else. */
struct sqlite3 *uvt__db_reopen(void);
/* Around the final sqlite3_close of a recording: take in turn, among
 * the processes recording into the same file, the close that may fold
 * the WAL in (waits at most a second).  Returns a descriptor for
 * uvt__db_close_unlock, which must come after the connection is closed;
 * -1 (nothing held) when the file cannot be opened or is no longer the
 * one recorded into. */
int uvt__db_close_lock(void);
void uvt__db_close_unlock(int fd);

/* Open the database (created 0600, never through a symlink), check or
 * create the schema, insert this process's session row and start the
 * writer thread.  Returns 0, or -1 after a one-line message on stderr. */
int uvt__writer_start(void);
/* Link a batch (a list of records) for the writer. */
void uvt__writer_enqueue(rec_t *head, rec_t *tail);
/* Wake the writer (async-signal-safe). */
void uvt__writer_wake(void);
/* Write everything queued, end the session, checkpoint, stop the thread
 * and close the database.  Waits at most timeout_ms for the writer.  */
void uvt__writer_finish(const session_end_t *end, int timeout_ms);
/* At exit the writer tries the last rows until UVT__FINISH_IDLE_MS pass in
 * which no process commits to the file, or UVT__FINISH_MAX_MS in all. */
#define UVT__FINISH_IDLE_MS 1000
#define UVT__FINISH_MAX_MS 10000
/* From a signal handler: ask the writer to commit what it has, the rows of
 * the crashed thread's live objects (`state`: its recorder state, given to
 * the function set below) and `end`; wait for it at most timeout_ms
 * (async-signal-safe). */
void uvt__writer_crash(const session_end_t *end, void *state, int timeout_ms);
/* Rows for a crashed thread's unwritten objects, from the recorder state
 * given to uvt__writer_crash, and the `crash` finding `end` describes;
 * called on the writer thread while that thread waits.  The recorder
 * registers it: the writer never calls the recorder by name. */
typedef rec_t *(*uvt__crash_rows_fn)(void *state, const session_end_t *end,
                                     rec_t **tail);
void uvt__writer_set_crash_rows(uvt__crash_rows_fn fn);
/* fork() (pthread_atfork handlers).  SQLite state must not cross a fork:
 * a child that opens the file again would share the parent's in-memory
 * lock and shm records (SQLite keeps one per file per process) and a
 * mutex held by the writer thread at the fork would stay held for good.
 * So, before the fork, the writer parks outside SQLite with its
 * connection closed (rows stay queued); after it, the parent's writer
 * reopens and carries on, and the child starts from nothing.
 *  _park:    prepare handler; waits at most timeout_ms; true if parked.
 *  _unpark:  parent handler.
 *  _forget:  child handler: drop the parent's writer (its thread does not
 *            exist here) and its rows.  Returns true if SQLite may be used
 *            in this child, false if the writer was not parked at the fork
 *            (then the child must not record). */
bool uvt__writer_park(int timeout_ms);
void uvt__writer_unpark(void);
bool uvt__writer_forget(void);

/* Counters the writer folds into the session row. */
extern uint64_t uvt__stat_objects, uvt__stat_findings, uvt__stat_shed;
extern uint64_t uvt__stat_peak_tasks;

/* ---- stacks (stacks.c) -------------------------------------------------- */

/* Intern raw PCs (e.g. unwound from a parked task); id or 0. */
int64_t uvt__stack_intern(const uint64_t *pcs, int n);
/* Unwind from `unw_context`, a libunwind unw_context_t the caller has
 * filled in (registers of a parked task, of a blocked thread); number of
 * PCs stored, at most max. */
int uvt__unwind_from(void *unw_context, uint64_t *pcs, int max);
/* Unwind from a signal handler's context (its ucontext_t argument);
 * number of PCs stored, the interrupted one first.  Async-signal-safe
 * once libunwind has been used (warmed up) outside a handler. */
int uvt__unwind_signal(void *uctx, uint64_t *pcs, int max);
/* The address range of the loaded module that holds `addr`: 0, or -1 if
 * none does.  Not in a signal handler (dl_iterate_phdr). */
int uvt__module_range(const void *addr, uintptr_t *lo, uintptr_t *hi);
/* Unwind a suspended task from its saved registers (uvt_hook_task_frame);
 * number of PCs stored, at most max. */
struct uvt_task_frame;
int uvt__stack_of_parked(const struct uvt_task_frame *f, uint64_t *pcs,
                         int max);
/* The user's stack under the hook point under way, by frame pointers
 * (fpstack.c): return addresses, the user's call into the library first
 * (none of the library's own, [lib_lo, lib_hi)), at most max; -1 when
 * that cannot be told for sure (no hook point under way, one not inlined
 * into the function the user called, a stack whose bounds are unknown):
 * then unwind another way.  The walk ends where the chain leaves the
 * stack it runs on. */
int uvt__fp_backtrace(uint64_t *pcs, int max, uintptr_t lib_lo, uintptr_t lib_hi);
/* The default capture (fpstack.c): the same walk, but only through code
 * `known` to keep frame pointers (fpknown.h), so that it gives exactly
 * libunwind's frames (less the library's own at the bottom of a task's
 * stack); -1 to let libunwind take the stack.  A -1 with bottom->ret set
 * met a task's bottom not yet confirmed: pcs[0..*upto) are the frames
 * before it, for the caller to compare with libunwind's and, if they
 * match and libunwind's go on only through the library to the end,
 * confirm the bottom with uvt__fp_bottom_learn. */
struct uvt__fpknown_s;
typedef struct {
  uintptr_t ret;  /* the return address into the library */
  uintptr_t dist; /* the top of the task's stack minus its record's address */
} uvt__fp_bottom_t;
int uvt__fp_backtrace_known(uint64_t *pcs, int max, uintptr_t lib_lo, uintptr_t lib_hi,
                            const struct uvt__fpknown_s *known, uvt__fp_bottom_t *bottom,
                            int *upto);
void uvt__fp_bottom_learn(uvt__fp_bottom_t b);
/* After fork, in the child (uvt__stacks_forget). */
void uvt__fp_bottoms_forget(void);
/* Record the loaded modules (paths, build-ids, address ranges). */
void uvt__modules_record(void);
/* Reset after fork: stack ids restart in the child's session. */
void uvt__stacks_forget(void);

/* ---- recorder (recorder.c) ---------------------------------------------- */

/* The calling thread's recorder state (opaque), for the crash path. */
void *uvt__recorder_state(void);

/* Subscribe to the hooks. */
void uvt__recorder_start(void);
/* Emit rows for every object alive on this thread and submit. */
void uvt__recorder_flush_all(void);
/* A finding decided by the tracer: count it, print it unless silenced. */
void uvt__tracer_print(const char *file, int line, const char *text,
                       uvt_finding_kind_t kind);

/* ---- inspection (inspect.c) ---------------------------------------------- */

struct uv_loop_s;
/* The recorder saw a loop / the loop is closing (any thread). */
void uvt__inspect_loop_seen(struct uv_loop_s *loop);
void uvt__inspect_loop_gone(struct uv_loop_s *loop);
/* Ask every loop seen for a snapshot; how many were asked.
 * Async-signal-safe. */
int uvt__inspect_request_all(int reason);
/* Handle UVT_PS_SIGNAL (unless the program does); forget after fork. */
void uvt__inspect_start(void);
void uvt__inspect_forget(void);
/* SIGQUIT: walk every task into static memory (async-signal-safe; the
 * handler's thread), then, on the writer thread while the handler waits,
 * the snapshot's rows. */
void uvt__inspect_quit_capture(void);
rec_t *uvt__inspect_quit_rows(rec_t **tail);
/* Before a SIGQUIT handler is installed: what it will need ready. */
void uvt__inspect_quit_prepare(void);
/* SIGQUIT, after the capture: each parked task's frames, then those of
 * the thread the signal stopped (from `uctx`, NULL: none), as
 * module+0xoffset lines on `fd`.  Async-signal-safe. */
void uvt__inspect_quit_print(int fd, void *uctx);

/* ---- the module table for signal handlers (modtab.c) ----------------------- */

/* Walk the loaded objects again if any came or went (not in a handler). */
void uvt__modtab_refresh(void);
/* The dynamic loader's counts of objects loaded and unloaded so far
 * (dl_iterate_phdr's dlpi_adds, dlpi_subs; 0, 0 if it does not say): a
 * change means the set of modules changed.  Takes the loader's lock. */
void uvt__dl_counts(unsigned long long counts[2]);
/* The path of the module holding `pc` and pc's offset in it as an ELF
 * address (what addr2line takes), or NULL.  Async-signal-safe. */
const char *uvt__modtab_find(uintptr_t pc, uintptr_t *offset);

/* ---- clocks (tclock.c) ------------------------------------------------ */

/* The tracer's monotonic clock (ns, same origin as uv_hrtime). */
uint64_t uvt__tclock(void);
/* Choose the clock source (once, at start: calibrates for a few ms). */
void uvt__tclock_init(void);

/* Wall-clock nanoseconds. */
int64_t uvt__now_ns(void);

#endif

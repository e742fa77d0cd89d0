/*
 * The `uvtask` command: what its files share.
 *
 * The command reads asynciodebug databases (tracer/schema.h) and never
 * writes them.  Reading is done in one pass that builds a report in memory
 * (report.c): the sessions, the findings grouped by kind and creation
 * site, each group's representative finding with its symbolised stacks
 * and parent chain.  Only then does a writer (report_text.c,
 * report_json.c, report_html.c) print it, so a database that turns out to
 * be corrupt half-way gives exit status 2 and a one-line reason, never half
 * a report.
 *
 * Every string in the report is valid UTF-8 (uvt__col_text replaced bad
 * bytes when it read them); writers still escape for their own medium:
 * jansson for JSON, entities for HTML, control characters for terminals.
 */
#ifndef UVT_VIEWER_H
#define UVT_VIEWER_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses of `uvtask report` (and of `run` when the program itself
 * succeeded), as DESIGN.md "The report command" fixes them. */
#define UVT__EXIT_CLEAN 0
#define UVT__EXIT_FINDINGS 1
#define UVT__EXIT_INPUT 2

/* ---- util.c ------------------------------------------------------------- */

/* Allocation that cannot fail: out of memory ends the command with exit
 * status 2 and a message (there is nothing better to do in a reader). */
void *uvt__xmalloc(size_t n);
void *uvt__xcalloc(size_t n, size_t size);
void *uvt__xrealloc(void *p, size_t n);
char *uvt__xstrdup(const char *s); /* NULL stays NULL */
char *uvt__xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A copy of n bytes made valid UTF-8: each byte that does not start a
 * well-formed sequence (and each NUL) becomes U+FFFD. */
char *uvt__utf8_clean(const char *s, size_t n);
/* Column i of the current row as a cleaned, owned string; NULL for NULL. */
char *uvt__col_text(sqlite3_stmt *st, int i);

/* Write s (NULL: nothing) with every control character — C0 including
 * newline and tab, DEL, and C1 (U+0080..U+009F) — as \xNN or \u00NN, so
 * that bytes from a database can neither drive the terminal nor break a
 * line in two.  Every line the command writes to a terminal or stderr, and
 * the text report, goes through it. */
void uvt__put_escaped(FILE *o, const char *s);
/* One line on stderr: formatted as printf does (%m works), escaped as
 * above, then a newline. */
void uvt__errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* a + b and a - b, saturating: database values may be anything. */
int64_t uvt__add_sat(int64_t a, int64_t b);
int64_t uvt__sub_sat(int64_t a, int64_t b);
/* "1,204" */
const char *uvt__fmt_count(int64_t n, char buf[32]);
/* "312 ms", "1.2 s", "0.41 ms" */
const char *uvt__fmt_dur(int64_t ns, char buf[32]);
/* "SIGSEGV" or "signal 77" */
const char *uvt__signal_name(int sig, char buf[32]);
/* The path relative to the working directory when it lies inside it (as a
 * compiler would print it when run from there); else the path itself. */
const char *uvt__display_path(const char *path);
/* Sort rank of a finding kind: the worst first, unknown kinds last. */
int uvt__kind_rank(const char *kind);
/* True for the kinds this version knows (tracer/schema.h lists them). */
bool uvt__kind_known(const char *kind);
/* True if `word` is one of the comma-separated words in the list. */
bool uvt__in_list(const char *const *list, int n, const char *word);

/* A string-keyed hash map of pointers (keys are copied). */
typedef struct uvt__map_s uvt__map_t;
uvt__map_t *uvt__map_new(void);
void **uvt__map_slot(uvt__map_t *m, const char *key, size_t klen); /* insert NULL if absent */
void *uvt__map_get(const uvt__map_t *m, const char *key, size_t klen);
/* Call fn on every value (in no particular order). */
void uvt__map_each(uvt__map_t *m, void (*fn)(void *value));
void uvt__map_free(uvt__map_t *m);

/* ---- db.c ---------------------------------------------------------------- */

/* Open `path` read-only as an asynciodebug database of a version this
 * command reads.  Returns 0 and *out, or -1 with a one-line reason in
 * `why` (missing, empty, not SQLite, another program's, newer version,
 * truncated, corrupt, a view where a table should be).  A database still
 * being written (WAL) opens too: readers do not block its writer, and a
 * busy timeout covers checkpoints.  A finished one is read without
 * creating -wal/-shm files.  Every statement on it runs under a work
 * budget: past it, sqlite3_step fails (SQLITE_INTERRUPT) and uvt__db_why
 * says so.  Close it with uvt__db_close. */
int uvt__db_open(const char *path, sqlite3 **out, char *why, size_t whylen);
/* Close a database opened by uvt__db_open. */
void uvt__db_close(sqlite3 *db);
/* The reason for a failed sqlite3 call on an open database, one line. */
void uvt__db_why(sqlite3 *db, int rc, const char *path, char *why, size_t whylen);

/* ---- proc.c ------------------------------------------------------------ */

/* True if process `pid` of this machine is still the one that began a
 * session at `start_ns` (ns since the epoch) running `exe` (NULL: not
 * known): see proc.c. */
bool uvt__session_process_alive(int64_t pid, int64_t start_ns, const char *exe);

/* ---- ps.c --------------------------------------------------------------- */

/* `uvtask ps PID|FILE` (ps.c explains); db_path: --db, or NULL. */
int uvt__ps_main(const char *target, const char *db_path);

/* ---- symbolize.c --------------------------------------------------------- */

/* One frame of a symbolised stack.  A PC may give several frames: the
 * functions inlined at that address, innermost first, then the function
 * they were inlined into. */
typedef struct {
  uint64_t pc;        /* as first recorded (the offset identifies a frame) */
  const char *function; /* NULL: unknown */
  const char *file;   /* NULL: no line (no debug info, or not trusted) */
  int line;
  bool inlined;       /* inlined into the next frame */
  const char *module; /* path of the module; NULL: no module covers pc */
  uint64_t offset;    /* pc - module load bias: the address in the file */
  bool trusted;       /* false: module changed or gone, show module+offset */
} uvt__frame_t;

typedef struct {
  const uvt__frame_t **v; /* owned array; frames owned by the symboliser */
  int n;
} uvt__frames_t;

typedef struct uvt__sym_s uvt__sym_t;
uvt__sym_t *uvt__sym_new(void);
void uvt__sym_free(uvt__sym_t *s);
/* A new address space (one session's module map); returns its handle. */
int uvt__sym_space(uvt__sym_t *s);
void uvt__sym_add_module(uvt__sym_t *s, int space, const char *path,
                         const char *build_id, uint64_t base, uint64_t lo,
                         uint64_t hi);
/* Append the frames of return address `pc` in `space` to `out`. */
void uvt__sym_resolve(uvt__sym_t *s, int space, uint64_t pc, uvt__frames_t *out);
/* Notes to show once: modules that changed or are gone since the run. */
const char *const *uvt__sym_notes(const uvt__sym_t *s, int *n);

/* ---- report.c: the model -------------------------------------------------- */

typedef struct {
  bool found;          /* false: the row is not in the database */
  int64_t id;
  char *kind, *name, *file, *func;
  int line;
  int64_t parent_id;   /* 0: none */
} uvt__objref_t;

typedef struct {
  int64_t start_ns, dur_ns;
  bool slow;
} uvt__step_t;

/* One task row of the HTML timeline. */
typedef struct {
  uvt__objref_t obj;
  int64_t created_ns, ended_ns; /* ended_ns 0: not ended */
  bool in_finding;
  /* Where it was last seen parked (a snapshot or a finding said so), and
   * when: NULL file when nothing recorded it parked. */
  char *parked_file, *parked_what;
  int parked_line;
  int64_t parked_ns;
  uvt__step_t *steps;
  int nsteps, capsteps;
} uvt__tl_row_t;

typedef struct {
  char *kind;
  int64_t n;
} uvt__kindcount_t;

/* How a session stands.  Not a finding kind: a session that ended
 * without an end record and whose process is gone was killed (SIGKILL,
 * the OOM killer) or lost power, and such a run is never reported clean
 * (`--fail-on killed` selects it like a kind). */
typedef enum {
  UVT__SESSION_ENDED,   /* it has an end record */
  UVT__SESSION_RUNNING, /* no end record; its process is still running */
  UVT__SESSION_KILLED   /* no end record; its process is gone */
} uvt__session_state_t;

#define UVT__KILLED_WORD "killed" /* its --fail-on word and JSON state */

/* One task of a snapshot (the snapshot_tasks table). */
typedef struct {
  int64_t id, parent_id, wait_on_id, parked_ns;
  char *name, *state, *wait, *what, *where_file, *where_func, *file, *func,
      *awaiters;
  int where_line, line;
  int64_t stack_id;   /* stacks.id: alike tasks share it (grouping) */
  uvt__frames_t stack;
} uvt__snaptask_t;

/* A snapshot of a loop's tasks (`uvtask ps`, SIGQUIT, a finding's). */
typedef struct {
  int64_t id, ts_ns;
  char *reason;
  uvt__snaptask_t *tasks;
  int ntasks;
} uvt__snapshot_t;

typedef struct {
  int input;           /* index into the report's inputs */
  uvt__session_state_t state;
  int64_t id, pid, ppid;
  char *argv, *exe, *test_name, *end_reason;
  int64_t start_ns, end_ns; /* end_ns 0: never ended */
  bool has_exit, has_signal;
  int exit_status, signal;
  uvt__objref_t crash_task;
  int64_t objects, peak_tasks, findings_recorded, shed;
  int64_t lost;        /* rows the recorder could not write (disk full...) */
  int slow_ms, depth;
  uvt__kindcount_t *kinds; /* findings by kind, after the filters */
  int nkinds, capkinds;
  int64_t nfindings;   /* after the filters; ignored ones not included */
  int64_t nignored;    /* findings about objects on the uvt_leaks_ignore list */
  bool empty;          /* nothing recorded: hidden in text and HTML */
  int space;           /* symboliser address space */
  uvt__tl_row_t *rows; /* timeline (HTML only) */
  int nrows;
  int64_t ntasks;      /* task rows in the database */
  uvt__snapshot_t *snaps; /* the session's last snapshots, oldest first */
  int nsnaps;
} uvt__session_t;

/* One member of a finding about several tasks (a deadlock's cycle). */
typedef struct {
  int ord;
  uvt__objref_t obj;      /* the member (its row, or just its id) */
  char *name;             /* its name when the finding was made */
  char *wait;             /* what it waits on: a wait kind name */
  uvt__objref_t waits_on; /* the awaited task (id 0: none) */
  uvt__objref_t held_by;  /* the holder of the lock it waits for (id 0: none) */
  char *where_file;       /* where it is parked */
  int where_line;
  char *acquire_file;     /* where held_by took the lock */
  int acquire_line;
  uvt__frames_t stack;    /* its parked stack */
} uvt__member_t;

typedef struct {
  /* the group's key; pending-at-exit also parts groups by parked site
   * (where_file, where_line below), so tasks parked at different lines
   * are never folded into one */
  char *kind, *file;
  int line;
  bool ignored;        /* about objects on the uvt_leaks_ignore list: shown
                          flagged, never counted nor failing the report */
  int64_t count;
  int nsessions;
  int64_t *durs;       /* durations of the group's findings that have one */
  size_t ndurs, capdurs;
  int64_t max_ns, p50_ns;
  /* its representative finding (the longest one for slow-callback) */
  uvt__session_t *session;
  int64_t finding_id, ts_ns;
  char *func, *message;
  uvt__objref_t object;
  int64_t created_ns;
  uvt__frames_t created;   /* the object's creation stack */
  uvt__objref_t *chain;    /* parent, grandparent, ... */
  int nchain;
  bool chain_cut;          /* deeper than shown, or a loop */
  char *where_file, *where_what;
  int where_line;
  uvt__frames_t stack, stack2;
  bool has_status;
  int status;
  char *error;             /* the object's error message */
  char *fail_file;
  int fail_line;
  uvt__frames_t fail;
  int64_t duration_ns;
  uvt__member_t *members;  /* the representative's, in order */
  int nmembers;            /* loaded: at most MAX_MEMBERS (report.c) */
  int64_t members_total;   /* in the file */
} uvt__group_t;

typedef struct {
  const char *const *kinds; /* --kind */
  int nkinds;
  const int64_t *pids;      /* --pid */
  int npids;
  int64_t min_ms;           /* --min-ms; 0: none */
  const char *const *fail_on; /* --fail-on */
  int nfail_on;
  bool run;                 /* `uvtask run`: only this run's sessions */
  int64_t run_start_ns;     /* when it launched the program */
  const char *run_prog;     /* its program, for messages */
  bool timeline;            /* load the task timeline (HTML) */
} uvt__filter_t;

typedef struct {
  const char *const *inputs;
  int ninputs;
  /* Sessions with findings first, then by start time (input, id on a tie):
   * the one to look at comes first in every format. */
  uvt__session_t **sessions;
  int nsessions, capsessions, nempty;
  uvt__group_t **groups;
  int ngroups, capgroups;
  int64_t total;            /* findings after the filters, ignored ones not included */
  int64_t nignored;         /* ignored findings after the filters */
  int nignored_groups;      /* groups of them (sorted after the others) */
  int nkilled;              /* sessions in state UVT__SESSION_KILLED */
  uvt__sym_t *sym;
} uvt__report_t;

/* Read every input into `r`.  0, or -1 with a one-line reason (which
 * names the file) in `why`. */
int uvt__report_load(uvt__report_t *r, const char *const *paths, int n,
                     const uvt__filter_t *f, char *why, size_t whylen);
/* report_timeline.c: the timeline rows of input `input`'s sessions, read
 * from `db` inside the report's read transaction (temp.uvt_sel holds the
 * selected sessions).  Returns SQLITE_OK or the failing code. */
int uvt__timeline_load(sqlite3 *db, uvt__report_t *r, int input);
void uvt__report_free(uvt__report_t *r);
/* True if none of the sessions read recorded anything (no objects, no
 * findings, no crash): the program did not use uvtask. */
bool uvt__report_recorded_nothing(const uvt__report_t *r);
/* True if every frame (or none) is uvtask's own trampoline or the C
 * library's start-up: a stack that says nothing about the program. */
bool uvt__frames_only_runtime(const uvt__frames_t *fr);
/* 1 if a finding counts (--fail-on narrows which kinds do), else 0. */
int uvt__report_status(const uvt__report_t *r, const uvt__filter_t *f);
/* "task 'x'", "coroutine 'y'", "task #12", "task #1:2448" (scheduler 1's
 * object 2448: see report.c) */
char *uvt__obj_words(const uvt__objref_t *o);

/* ---- writers -------------------------------------------------------------- */

void uvt__text_write(FILE *out, const uvt__report_t *r, bool color);
/* 0, or -1 if jansson failed (out of memory). */
int uvt__json_write(FILE *out, const uvt__report_t *r);
void uvt__html_write(FILE *out, const uvt__report_t *r);
/* report_html.c, for the HTML writer's other files.  Every string from a
 * database goes through uvt__html_esc (text and attributes alike: it
 * escapes & < > " ' and control characters). */
void uvt__html_esc(FILE *o, const char *s);
void uvt__html_esc_loc(FILE *o, const char *file, int line); /* "f.c:12" */
/* A stack that expands (<details>), its summary naming the first frame;
 * nothing for an empty stack.  `label` is markup, not escaped. */
void uvt__html_stack(FILE *o, const char *label, const uvt__frames_t *fr, bool open);
/* report_html_snap.c: a session's snapshots, one <details> each, tasks
 * grouped as `uvtask ps FILE` groups them. */
void uvt__html_snapshots(FILE *o, const uvt__session_t *s);

/* `uvtask export --chrome-trace OUT FILE...`: exit status (0 written, 2
 * an input could not be read or OUT not written). */
int uvt__export_chrome(const char *const *paths, int n, const char *out_path,
                       const uvt__filter_t *f);

/* Where and how `uvtask report` writes. */
typedef struct {
  const char *format;  /* "text", "json", "html" */
  const char *output;  /* NULL: stdout */
  int color;           /* -1 auto, 0 never, 1 always */
} uvt__output_t;

/* ---- output.c ------------------------------------------------------------ */

/* An output file written whole or not at all (see output.c). */
typedef struct {
  FILE *f;          /* where to write */
  const char *path; /* NULL or "-": standard output */
  char *tmp;        /* the temporary, renamed over path at the end */
} uvt__outfile_t;

/* -1 (after a one-line message) if `path` names the same file as one of
 * the inputs (or an input's -wal), else 0. */
int uvt__outfile_check(const char *path, const char *const *inputs, int n);
/* Open a fresh temporary beside `path` (standard output for NULL or "-").
 * 0, or -1 after a one-line message. */
int uvt__outfile_open(uvt__outfile_t *o, const char *path);
/* Flush and, if `ok` and everything was written, rename into place; else
 * remove the temporary.  0, or -1 after a one-line message. */
int uvt__outfile_finish(uvt__outfile_t *o, bool ok);
/* Remove the temporary without a message (the caller has said why). */
void uvt__outfile_abandon(uvt__outfile_t *o);

/* `uvtask report` as main.c and run.c call it: load, write, and return
 * the exit status (0 clean, 1 findings, 2 unreadable input). */
int uvt__report_main(const char *const *paths, int n, const uvt__filter_t *f,
                     const uvt__output_t *o);

/* `uvtask run`: run argv (NULL-terminated) with recording on into `db`
 * (NULL: ./asynciodebug.db), then report on its sessions.  Returns the
 * exit status (see run.c). */
/* The thresholds `uvtask run` passes on (NULL: the program's own
 * environment, or the default), as decimal strings already validated. */
typedef struct {
  const char *slow_ms;  /* ASYNCIODEBUG_SLOW_MS: slow-callback */
  const char *stall_ms; /* ASYNCIODEBUG_STALL_MS: stall */
  const char *lock_ms;  /* ASYNCIODEBUG_LOCK_MS: lock-held-across-await */
} uvt__thresholds_t;

int uvt__run_prog(char **argv, const char *db, const uvt__thresholds_t *th,
                  uvt__filter_t *f, const uvt__output_t *out);

#endif

/*
 * The asynciodebug database: the one place its schema is written.
 *
 * The tracer (writer side) creates it; the `uvtask` command (reader side)
 * checks `PRAGMA user_version` == UVT_SCHEMA_VERSION and the meta row
 * format = 'uvtask-asynciodebug' before reading anything, and refuses a
 * newer version or another program's database.
 *
 * Conventions: times are nanoseconds since the Unix epoch (INTEGER); ids of
 * objects are unique within a session; a stack is a BLOB of little-endian
 * 64-bit return addresses, innermost first, as captured (not symbolised:
 * the reader symbolises them with the modules table).  Every column that a
 * finding does not have is NULL.
 */
#ifndef UVT_TRACER_SCHEMA_H
#define UVT_TRACER_SCHEMA_H

#define UVT_SCHEMA_VERSION 4 /* 3: finding_members; 4: snapshots */

/* `uvtask ps PID` asks a recording process for a snapshot with this
 * signal (tracer/inspect.c); SIGRTMIN + 7 is the watchdog's.  Only a
 * process whose session in the file is live is ever sent it. */
#define UVT_PS_SIGNAL (SIGRTMIN + 8)
#define UVT_SCHEMA_FORMAT "uvtask-asynciodebug"

static const char uvt_schema_sql[] =
    /* What wrote this file: key/value pairs, 'format' and 'writer'. */
    "CREATE TABLE IF NOT EXISTS meta (\n"
    "  key   TEXT PRIMARY KEY,  -- 'format' (= uvtask-asynciodebug), 'writer'\n"
    "  value TEXT NOT NULL\n"
    ");\n"

    /* One row per traced process (a fork gets its own). */
    "CREATE TABLE IF NOT EXISTS sessions (\n"
    "  id              INTEGER PRIMARY KEY,\n"
    "  pid             INTEGER NOT NULL,\n"
    "  ppid            INTEGER NOT NULL,\n"
    "  argv            TEXT NOT NULL,     -- arguments joined by spaces\n"
    "  exe             TEXT,              -- /proc/self/exe at start\n"
    "  test_name       TEXT,              -- set by uvt_testing_set_name\n"
    "  start_ns        INTEGER NOT NULL,\n"
    "  end_ns          INTEGER,           -- NULL while running or if killed\n"
    "  end_reason      TEXT,              -- 'exit', 'signal', NULL: never ended\n"
    "  exit_status     INTEGER,           -- with end_reason 'exit'\n"
    "  signal          INTEGER,           -- with end_reason 'signal'\n"
    "  crash_task_id   INTEGER,           -- task running when the signal hit\n"
    "  slow_ms         INTEGER NOT NULL,  -- ASYNCIODEBUG_SLOW_MS in force\n"
    "  depth           INTEGER NOT NULL,  -- ASYNCIODEBUG_DEPTH in force\n"
    "  objects         INTEGER NOT NULL DEFAULT 0, -- objects created\n"
    "  peak_tasks      INTEGER NOT NULL DEFAULT 0, -- most tasks alive at once\n"
    "  findings        INTEGER NOT NULL DEFAULT 0, -- rows in findings\n"
    "  shed            INTEGER NOT NULL DEFAULT 0, -- statistics events dropped\n"
    "  lost            INTEGER NOT NULL DEFAULT 0  -- rows that could not be\n"
    "                                              -- written (disk full, ...)\n"
    ");\n"

    /* The loaded modules, to symbolise stacks after the process is gone. */
    "CREATE TABLE IF NOT EXISTS modules (\n"
    "  session_id INTEGER NOT NULL REFERENCES sessions(id),\n"
    "  path       TEXT NOT NULL,     -- as the dynamic loader named it\n"
    "  build_id   TEXT,              -- hex of NT_GNU_BUILD_ID, if any\n"
    "  base       INTEGER NOT NULL,  -- load bias (dlpi_addr)\n"
    "  lo         INTEGER NOT NULL,  -- lowest mapped address of PT_LOAD\n"
    "  hi         INTEGER NOT NULL,  -- one past the highest\n"
    "  PRIMARY KEY (session_id, lo)\n"
    ");\n"

    /* Interned stacks: identical stacks are stored once per session. */
    "CREATE TABLE IF NOT EXISTS stacks (\n"
    "  session_id INTEGER NOT NULL REFERENCES sessions(id),\n"
    "  id         INTEGER NOT NULL,  -- the stack's number in its session\n"
    "  pcs        BLOB NOT NULL,     -- u64 LE return addresses, innermost first\n"
    "  PRIMARY KEY (session_id, id)\n"
    ");\n"

    /* Tasks, coroutine objects, futures, streams and servers that were
     * alive at a flush or involved in a finding (short-lived healthy ones
     * are counted in site_stats instead). */
    "CREATE TABLE IF NOT EXISTS objects (\n"
    "  session_id   INTEGER NOT NULL REFERENCES sessions(id),\n"
    "  id           INTEGER NOT NULL,\n"
    "  kind         TEXT NOT NULL,    -- task, coroutine, future, stream, server\n"
    "  name         TEXT,\n"
    "  file         TEXT,             -- the creating call's __FILE__\n"
    "  line         INTEGER,\n"
    "  func         TEXT,             -- the creating call's __func__\n"
    "  parent_id    INTEGER,          -- task that created it, if any\n"
    "  create_stack INTEGER,          -- stacks.id\n"
    "  created_ns   INTEGER NOT NULL,\n"
    "  ended_ns     INTEGER,          -- done / consumed / closed\n"
    "  status       INTEGER,          -- final status (0, error, cancelled)\n"
    "  message      TEXT,             -- uvt_fail / set_error message\n"
    "  fail_file    TEXT,             -- where uvt_fail raised it\n"
    "  fail_line    INTEGER,\n"
    "  fail_stack   INTEGER,          -- stacks.id at uvt_fail\n"
    "  retrieved_ns INTEGER,          -- when its status was first read\n"
    "  steps        INTEGER NOT NULL DEFAULT 0, -- times it ran\n"
    "  busy_ns      INTEGER NOT NULL DEFAULT 0, -- time spent running\n"
    "  max_step_ns  INTEGER NOT NULL DEFAULT 0, -- longest single step\n"
    "  PRIMARY KEY (session_id, id)\n"
    /* Keyed by its primary key alone: a row is one b-tree insert, not a
     * table insert plus an index insert (100k tasks alive at a flush are
     * 100k rows; the writer shares the CPU with the program). */
    ") WITHOUT ROWID;\n"

    /* The bugs.  `kind` is a name from UVT_FINDING_KIND_MAP
     * (include/uvtask/kinds.h).  An ignored one (the object was on the
     * uvt_leaks_ignore list) is kept for the record but not counted. */
    "CREATE TABLE IF NOT EXISTS findings (\n"
    "  id          INTEGER PRIMARY KEY,\n"
    "  session_id  INTEGER NOT NULL REFERENCES sessions(id),\n"
    "  kind        TEXT NOT NULL,\n"
    "  object_id   INTEGER,          -- objects.id involved\n"
    "  file        TEXT,             -- site the diagnostic points at\n"
    "  line        INTEGER,\n"
    "  func        TEXT,\n"
    "  message     TEXT NOT NULL,    -- the one-line diagnostic text\n"
    "  stack       INTEGER,          -- where: parked / blocked / awaiting\n"
    "  stack2      INTEGER,          -- no-yield: where the section began\n"
    "  where_file  TEXT,             -- parked / await site (file:line)\n"
    "  where_line  INTEGER,\n"
    "  where_what  TEXT,             -- the await call, e.g. uvt_sleep\n"
    "  status      INTEGER,          -- unretrieved-error: the error\n"
    "  duration_ns INTEGER,          -- slow-callback: how long it blocked\n"
    "  ts_ns       INTEGER NOT NULL,\n"
    "  ignored     INTEGER NOT NULL DEFAULT 0 -- 1: on the uvt_leaks_ignore list\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS findings_by_session ON findings(session_id, kind);\n"

    /* The members of a finding about several objects, one row each, as
     * the runtime's FINDING event lists them (a deadlock: the tasks of the
     * cycle, in cycle order: member `ord` waits for what member `ord` + 1
     * holds or is; a stall: the parked tasks).  Findings about one object
     * have none. */
    "CREATE TABLE IF NOT EXISTS finding_members (\n"
    "  session_id   INTEGER NOT NULL REFERENCES sessions(id),\n"
    "  finding_id   INTEGER NOT NULL REFERENCES findings(id),\n"
    "  ord          INTEGER NOT NULL, -- 0, 1, ...: its place in the group\n"
    "  object_id    INTEGER,          -- objects.id of the member (a task)\n"
    "  name         TEXT,             -- its name when the finding was made\n"
    "  wait         TEXT,             -- what it waits on: a UVT_WAIT_KIND_MAP name\n"
    "  waits_on     INTEGER,          -- objects.id of the awaited task, if one\n"
    "  held_by      INTEGER,          -- objects.id of the task holding the lock it waits for\n"
    "  where_file   TEXT,             -- where it is parked\n"
    "  where_line   INTEGER,\n"
    "  acquire_file TEXT,             -- where held_by took that lock\n"
    "  acquire_line INTEGER,\n"
    "  stack        INTEGER,          -- stacks.id: its parked stack\n"
    "  PRIMARY KEY (finding_id, ord)\n"
    ");\n"

    /* Healthy objects that ended before any flush saw them, per creation
     * site: what was aggregated instead of written row by row. */
    "CREATE TABLE IF NOT EXISTS site_stats (\n"
    "  session_id  INTEGER NOT NULL REFERENCES sessions(id),\n"
    "  kind        TEXT NOT NULL,\n"
    "  name        TEXT,\n"
    "  file        TEXT,\n"
    "  line        INTEGER,\n"
    "  count       INTEGER NOT NULL,\n"
    "  steps       INTEGER NOT NULL,\n"
    "  busy_ns     INTEGER NOT NULL,\n"
    "  max_step_ns INTEGER NOT NULL\n"
    ");\n"

    /* Snapshots of a loop's live tasks: asked for by `uvtask ps PID`, taken
     * at SIGQUIT, or attached to a finding (stall, deadlock). */
    "CREATE TABLE IF NOT EXISTS snapshots (\n"
    "  session_id INTEGER NOT NULL REFERENCES sessions(id),\n"
    "  id         INTEGER NOT NULL,  -- the snapshot's number in its session\n"
    "  reason     TEXT NOT NULL,     -- UVT_SNAPSHOT_REASON_MAP: ps, sigquit, ...\n"
    "  ts_ns      INTEGER NOT NULL,\n"
    "  ntasks     INTEGER NOT NULL,  -- rows in snapshot_tasks\n"
    "  finding_id INTEGER,           -- findings.id it belongs to, if any\n"
    "  PRIMARY KEY (session_id, id)\n"
    ");\n"
    /* One live task of a snapshot, as it was then. */
    "CREATE TABLE IF NOT EXISTS snapshot_tasks (\n"
    "  session_id  INTEGER NOT NULL REFERENCES sessions(id),\n"
    "  snapshot_id INTEGER NOT NULL, -- snapshots.id\n"
    "  task_id     INTEGER NOT NULL, -- objects.id\n"
    "  name        TEXT,             -- its name then (uvt_name's, if renamed)\n"
    "  state       TEXT NOT NULL,    -- UVT_TASK_STATE_MAP: parked, ready, ...\n"
    "  wait        TEXT,             -- UVT_WAIT_KIND_MAP: lock, task, sleep ...\n"
    "  wait_what   TEXT,             -- the awaiting call, e.g. uvt_lock_acquire\n"
    "  wait_on_id  INTEGER,          -- the awaited task/future/stream, if one\n"
    "  parked_ns   INTEGER,          -- how long it had been parked\n"
    "  where_file  TEXT,             -- where it is parked\n"
    "  where_line  INTEGER,\n"
    "  where_func  TEXT,\n"
    "  file        TEXT,             -- where it was created\n"
    "  line        INTEGER,\n"
    "  func        TEXT,\n"
    "  parent_id   INTEGER,          -- the task that created it\n"
    "  stack       INTEGER,          -- stacks.id: its parked stack (raw PCs)\n"
    "  awaiters    TEXT              -- ids of the tasks awaiting it, spaces\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS snapshot_tasks_by_snapshot ON snapshot_tasks(session_id, snapshot_id);\n"

    /* Task steps for the timeline: every step of a recorded object while
     * the per-session budget lasts (then counted in sessions.shed), and
     * every slow step always. */
    "CREATE TABLE IF NOT EXISTS steps (\n"
    "  session_id INTEGER NOT NULL REFERENCES sessions(id),\n"
    "  object_id  INTEGER NOT NULL,\n"
    "  start_ns   INTEGER NOT NULL,\n"
    "  dur_ns     INTEGER NOT NULL,\n"
    "  slow       INTEGER NOT NULL    -- 1 if over the slow threshold\n"
    ");\n";

#endif

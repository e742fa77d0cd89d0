/*
 * `uvtask export --chrome-trace OUT.json [FILE...]`: the recordings as one
 * Trace Event Format file for Perfetto (ui.perfetto.dev) and
 * chrome://tracing.
 *
 *   process  one per session (pid = the session's row id, so two runs
 *            that reused a pid stay apart, plus, for the second input on,
 *            the largest row id of the inputs before it, so sessions of
 *            several files stay apart too; named "pid N: argv", and
 *            "[FILE]" after it when there are several inputs)
 *   thread   one per task, and per other object involved in a finding
 *            (tid numbered from 1 in creation order; named "task 'x'")
 *   X        the object's life, on its own track, from created_ns to
 *            ended_ns (or to the session's end), args: file, line, status
 *   X        each recorded step, nested in the life; a slow one is named
 *            "step (slow)" and has args.slow = true and its duration in ms
 *   i        each finding, on its object's track (thread-scoped) or on the
 *            process (process-scoped) when it has no object;
 *            args: message, file, line
 *
 * Timestamps are microseconds since the earliest selected session of all
 * inputs began.  Every input is opened and checked before anything is
 * written: one that cannot be read gives exit status 2 and no output.
 *
 * A database can hold a million objects: the events are streamed, one
 * jansson object each, dumped with json_dumpf; only the separators of the
 * enclosing array are written around them.  Everything is written to a
 * fresh temporary beside OUT and renamed over OUT at the end (output.c),
 * so a failure leaves no half file under the name asked for.
 */
#include "viewer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  FILE *o;
  bool first;
  bool failed;
  int64_t t0;
  int64_t pid_base; /* added to this input's session row ids */
  const char *label; /* NULL, or the input's name when there are several */
} trace_t;

static void emit(trace_t *t, json_t *ev) {
  if (ev == NULL) {
    t->failed = true;
    return;
  }
  fputs(t->first ? "\n" : ",\n", t->o);
  t->first = false;
  if (json_dumpf(ev, t->o, JSON_COMPACT) != 0) t->failed = true;
  json_decref(ev);
}

static json_t *jstr(const char *s) { return s != NULL ? json_string(s) : json_null(); }

static double us(const trace_t *t, int64_t ns) { return ((double)ns - (double)t->t0) / 1000.0; }

static json_t *event(const char *ph, const char *name, const char *cat, int64_t pid,
                     int64_t tid) {
  json_t *e = json_object();
  json_object_set_new(e, "name", jstr(name));
  if (cat != NULL) json_object_set_new(e, "cat", json_string(cat));
  json_object_set_new(e, "ph", json_string(ph));
  json_object_set_new(e, "pid", json_integer(pid));
  if (tid >= 0) json_object_set_new(e, "tid", json_integer(tid));
  return e;
}

typedef struct {
  int64_t session, pid, start_ns, end_ns;
  int64_t next_tid;
} sess_t;

/* The trace's process id of a session row id. */
#define TRACE_PID(t, session) uvt__add_sat((t)->pid_base, (session))

static bool want_pid(const uvt__filter_t *f, int64_t pid) {
  int i;
  for (i = 0; i < f->npids; i++)
    if (f->pids[i] == pid) return true;
  return f->npids == 0;
}

static int export_db(sqlite3 *db, trace_t *t, const uvt__filter_t *f) {
  sqlite3_stmt *st = NULL;
  sess_t *ss = NULL;
  int ns = 0, capss = 0, i, rc = SQLITE_OK;
  uvt__map_t *tids = uvt__map_new(); /* session + object id -> tid */
  uvt__map_t *sessions = uvt__map_new(); /* session id -> index + 1 */

#define STEP_ROWS(st) while ((rc = sqlite3_step(st)) == SQLITE_ROW)
#define CHECK_DONE()                   \
  do {                                 \
    if (rc != SQLITE_DONE) goto out;   \
    rc = SQLITE_OK;                    \
  } while (0)
#define PREPARE(sql)                                                        \
  do {                                                                      \
    sqlite3_finalize(st);                                                   \
    st = NULL;                                                              \
    if ((rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK) goto out; \
  } while (0)

  PREPARE("SELECT id, pid, argv, start_ns, end_ns FROM sessions ORDER BY id");
  STEP_ROWS(st) {
    int64_t pid = sqlite3_column_int64(st, 1);
    char *argv, *name;
    json_t *e, *args;
    if (!want_pid(f, pid)) continue;
    if (ns == capss) {
      capss = capss ? capss * 2 : 16;
      ss = uvt__xrealloc(ss, (size_t)capss * sizeof(*ss));
    }
    ss[ns].session = sqlite3_column_int64(st, 0);
    ss[ns].pid = pid;
    ss[ns].start_ns = sqlite3_column_int64(st, 3);
    ss[ns].end_ns = sqlite3_column_int64(st, 4);
    ss[ns].next_tid = 1;
    *uvt__map_slot(sessions, (const char *)&ss[ns].session, 8) = (void *)(intptr_t)(ns + 1);
    argv = uvt__col_text(st, 2);
    name = uvt__xasprintf("pid %lld: %s%s%s%s", (long long)pid, argv != NULL ? argv : "?",
                          t->label != NULL ? " [" : "", t->label != NULL ? t->label : "",
                          t->label != NULL ? "]" : "");
    e = event("M", "process_name", NULL, TRACE_PID(t, ss[ns].session), -1);
    args = json_object();
    json_object_set_new(args, "name", jstr(name));
    json_object_set_new(e, "args", args);
    emit(t, e);
    free(argv);
    free(name);
    ns++;
  }
  CHECK_DONE();

  /* Tracks: tasks, and the objects findings are about. */
  PREPARE("SELECT id, kind, name, file, line, created_ns, ended_ns, status FROM objects "
          "WHERE session_id = ?1 AND (kind = 'task' OR id IN (SELECT object_id FROM "
          "findings WHERE session_id = ?1)) ORDER BY id");
  for (i = 0; i < ns; i++) {
    sess_t *s = &ss[i];
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, s->session);
    STEP_ROWS(st) {
      int64_t key[2] = {s->session, sqlite3_column_int64(st, 0)};
      int64_t tid = s->next_tid++, created = sqlite3_column_int64(st, 5);
      int64_t ended = sqlite3_column_type(st, 6) != SQLITE_NULL ? sqlite3_column_int64(st, 6)
                                                                : s->end_ns;
      uvt__objref_t ref = {.id = key[1]};
      char *words, *file;
      json_t *e, *args;
      ref.kind = uvt__col_text(st, 1);
      ref.name = uvt__col_text(st, 2);
      words = uvt__obj_words(&ref);
      file = uvt__col_text(st, 3);
      *uvt__map_slot(tids, (const char *)key, sizeof(key)) = (void *)(intptr_t)tid;
      e = event("M", "thread_name", NULL, TRACE_PID(t, s->session), tid);
      args = json_object();
      json_object_set_new(args, "name", jstr(words));
      json_object_set_new(e, "args", args);
      emit(t, e);
      e = event("X", words, ref.kind != NULL ? ref.kind : "object", TRACE_PID(t, s->session), tid);
      json_object_set_new(e, "ts", json_real(us(t, created)));
      json_object_set_new(e, "dur", json_real(ended > created ? ((double)ended - (double)created) / 1000.0 : 0));
      args = json_object();
      json_object_set_new(args, "file", jstr(file));
      json_object_set_new(args, "line", json_integer(sqlite3_column_int64(st, 4)));
      json_object_set_new(args, "id", json_integer(key[1]));
      if (sqlite3_column_type(st, 7) != SQLITE_NULL)
        json_object_set_new(args, "status", json_integer(sqlite3_column_int64(st, 7)));
      if (sqlite3_column_type(st, 6) == SQLITE_NULL)
        json_object_set_new(args, "ended", json_false());
      json_object_set_new(e, "args", args);
      emit(t, e);
      free(words);
      free(file);
      free(ref.kind);
      free(ref.name);
    }
    CHECK_DONE();
  }

  /* Steps, in one pass: the table has no index by session. */
  PREPARE("SELECT session_id, object_id, start_ns, dur_ns, slow FROM steps");
  STEP_ROWS(st) {
    int64_t key[2] = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
    intptr_t tid = (intptr_t)uvt__map_get(tids, (const char *)key, sizeof(key));
    bool slow = sqlite3_column_int64(st, 4) != 0;
    int64_t start = sqlite3_column_int64(st, 2), dur = sqlite3_column_int64(st, 3);
    json_t *e;
    if (tid == 0 || start <= 0) continue; /* not selected, or start unknown */
    e = event("X", slow ? "step (slow)" : "step", "step", TRACE_PID(t, key[0]), tid);
    json_object_set_new(e, "ts", json_real(us(t, start)));
    json_object_set_new(e, "dur", json_real((double)dur / 1000.0));
    if (slow) {
      json_t *args = json_object();
      json_object_set_new(args, "slow", json_true());
      json_object_set_new(args, "ms", json_real((double)dur / 1e6));
      json_object_set_new(e, "args", args);
    }
    emit(t, e);
  }
  CHECK_DONE();

  PREPARE("SELECT session_id, kind, object_id, file, line, message, ts_ns, duration_ns, "
          "ifnull(ignored, 0) FROM findings ORDER BY id");
  STEP_ROWS(st) {
    int64_t key[2] = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 2)};
    intptr_t tid = (intptr_t)uvt__map_get(tids, (const char *)key, sizeof(key));
    char *kind, *file, *msg;
    json_t *e, *args;
    if (uvt__map_get(sessions, (const char *)&key[0], 8) == NULL) continue;
    if (f->nkinds > 0 && !uvt__in_list(f->kinds, f->nkinds,
                                       (const char *)sqlite3_column_text(st, 1)))
      continue;
    kind = uvt__col_text(st, 1);
    file = uvt__col_text(st, 3);
    msg = uvt__col_text(st, 5);
    e = event("i", kind != NULL ? kind : "finding", "finding", TRACE_PID(t, key[0]),
              tid > 0 ? tid : -1);
    json_object_set_new(e, "ts", json_real(us(t, sqlite3_column_int64(st, 6))));
    json_object_set_new(e, "s", json_string(tid > 0 ? "t" : "p"));
    args = json_object();
    json_object_set_new(args, "message", jstr(msg));
    json_object_set_new(args, "file", jstr(file));
    json_object_set_new(args, "line", json_integer(sqlite3_column_int64(st, 4)));
    if (sqlite3_column_type(st, 7) != SQLITE_NULL)
      json_object_set_new(args, "duration_ms", json_real((double)sqlite3_column_int64(st, 7) / 1e6));
    /* On the uvt_leaks_ignore list: flagged, as the report flags it. */
    if (sqlite3_column_int64(st, 8) != 0) json_object_set_new(args, "ignored", json_true());
    json_object_set_new(e, "args", args);
    emit(t, e);
    free(kind);
    free(file);
    free(msg);
  }
  CHECK_DONE();
out:
  sqlite3_finalize(st);
  free(ss);
  uvt__map_free(tids);
  uvt__map_free(sessions);
  return rc;
#undef STEP_ROWS
#undef CHECK_DONE
#undef PREPARE
}

/* The start of the earliest selected session and the largest row id of
 * one input, read before anything is written. */
static int input_extent(sqlite3 *db, const uvt__filter_t *f, int64_t *t0, bool *have_t0,
                        int64_t *max_id) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "SELECT id, pid, start_ns FROM sessions", -1, &st, NULL);
  *max_id = 0;
  while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0), start = sqlite3_column_int64(st, 2);
    if (id > *max_id) *max_id = id;
    if (!want_pid(f, sqlite3_column_int64(st, 1))) continue;
    if (!*have_t0 || start < *t0) *t0 = start;
    *have_t0 = true;
  }
  if (rc == SQLITE_OK) rc = sqlite3_reset(st);
  sqlite3_finalize(st);
  return rc;
}

static void close_all(sqlite3 **dbs, int n) {
  int i;
  for (i = 0; i < n; i++)
    if (dbs[i] != NULL) uvt__db_close(dbs[i]);
  free(dbs);
}

int uvt__export_chrome(const char *const *paths, int n, const char *out_path,
                       const uvt__filter_t *f) {
  sqlite3 **dbs = uvt__xcalloc((size_t)n, sizeof(*dbs));
  int64_t *max_ids = uvt__xcalloc((size_t)n, sizeof(*max_ids));
  char why[1024];
  trace_t t = {NULL, true, false, 0, 0, NULL};
  uvt__outfile_t out;
  bool have_t0 = false;
  json_t *other;
  int rc = SQLITE_OK, i;
  if (uvt__outfile_check(out_path, paths, n) != 0) goto refused;
  for (i = 0; i < n; i++) {
    if (uvt__db_open(paths[i], &dbs[i], why, sizeof(why)) != 0) {
      uvt__errorf("uvtask: %s", why);
      goto refused;
    }
    rc = input_extent(dbs[i], f, &t.t0, &have_t0, &max_ids[i]);
    if (rc != SQLITE_OK) {
      uvt__db_why(dbs[i], rc, paths[i], why, sizeof(why));
      uvt__errorf("uvtask: %s", why);
      goto refused;
    }
  }
  if (uvt__outfile_open(&out, out_path) != 0) goto refused;
  t.o = out.f;
  fputs("{\"traceEvents\":[", t.o);
  for (i = 0; i < n && rc == SQLITE_OK; i++) {
    t.label = n > 1 ? paths[i] : NULL;
    sqlite3_exec(dbs[i], "BEGIN", NULL, NULL, NULL);
    rc = export_db(dbs[i], &t, f);
    if (rc != SQLITE_OK) uvt__db_why(dbs[i], rc, paths[i], why, sizeof(why));
    sqlite3_exec(dbs[i], "COMMIT", NULL, NULL, NULL);
    t.pid_base = uvt__add_sat(t.pid_base, max_ids[i]);
  }
  close_all(dbs, n);
  free(max_ids);
  if (rc != SQLITE_OK) {
    uvt__errorf("uvtask: %s", why);
    uvt__outfile_abandon(&out);
    return UVT__EXIT_INPUT;
  }
  fputs("\n],\"displayTimeUnit\":\"ms\",\"otherData\":", t.o);
  other = json_object();
  json_object_set_new(other, "source", json_string("uvtask export"));
  json_object_set_new(other, "t0_ns", json_integer(t.t0));
  if (json_dumpf(other, t.o, JSON_COMPACT) != 0) t.failed = true;
  json_decref(other);
  fputs("}\n", t.o);
  return uvt__outfile_finish(&out, !t.failed) == 0 ? 0 : UVT__EXIT_INPUT;
refused:
  close_all(dbs, n);
  free(max_ids);
  return UVT__EXIT_INPUT;
}

/*
 * `uvtask ps PID|FILE`: the tasks of a live recording process, or the last
 * snapshot a recorded session holds.
 *
 * PID: the process must be recording, and this is checked before anything
 * is sent to it: its environment names the database (ASYNCIODEBUG), whose
 * sessions table holds a session of that pid without an end whose process
 * is the one running now (start time, executable).  Only then is it sent
 * UVT_PS_SIGNAL (tracer/schema.h), which its tracer answers with one
 * snapshot per loop, committed at once; this reads them through the WAL,
 * polling for at most PS_WAIT_MS.  A process that is not recording would
 * be killed by that signal: it is never sent one.
 *
 * FILE: the last snapshot in the file (`uvtask ps PID` leaves one, so do
 * SIGQUIT and the stall and deadlock findings).
 *
 * The listing is uvt_dump's (runtime/dump.c): one entry per group of
 * alike tasks (state, await, parked site, creation site and stack), ids
 * as "#S:N", then the await tree; here each entry also has its parked
 * stack, symbolised.
 */
#include "viewer.h"
#include "schema.h"
#include "uvtask/kinds.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PS_WAIT_MS 5000
#define PS_POLL_MS 20
#define PS_SETTLE_MS 150 /* after the first snapshot: the other loops' */

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int64_t q_i64(sqlite3 *db, const char *sql, int64_t a, int64_t b, bool *ok) {
  sqlite3_stmt *st;
  int64_t v = 0;
  *ok = false;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
  sqlite3_bind_int64(st, 1, a);
  sqlite3_bind_int64(st, 2, b);
  if (sqlite3_step(st) == SQLITE_ROW) {
    v = sqlite3_column_int64(st, 0);
    *ok = true;
  }
  sqlite3_finalize(st);
  return v;
}

/* ---- printing one snapshot ---------------------------------------------- */

static void put_id(FILE *o, int64_t id) {
  char b[UVT_ID_FORMAT_MAX];
  fputs(uvt_id_format((unsigned long long)id, b), o);
}

static void put_site(FILE *o, const char *file, int line, const char *func) {
  uvt__put_escaped(o, file != NULL ? uvt__display_path(file) : "?");
  fprintf(o, ":%d", line);
  if (func != NULL) {
    fputs(" in ", o);
    uvt__put_escaped(o, func);
  }
}

static void put_stack(FILE *o, uvt__sym_t *sym, int space, const void *blob, int bytes) {
  const unsigned char *b = blob;
  uvt__frames_t fr = {NULL, 0};
  int n = bytes / 8, i, k, shown = 0;
  for (i = 0; b != NULL && i < n && i < 64; i++) {
    uint64_t pc = 0;
    for (k = 7; k >= 0; k--) pc = pc << 8 | b[i * 8 + k];
    uvt__sym_resolve(sym, space, pc, &fr);
  }
  for (i = 0; i < fr.n; i++) {
    const uvt__frame_t *f = fr.v[i];
    const char *base = f->module != NULL ? strrchr(f->module, '/') : NULL;
    /* uvtask's own trampoline ends every task's stack: not the user's. */
    if (base != NULL && strncmp(base + 1, "libuvtask.so", 12) == 0) continue;
    fputs(shown++ == 0 ? "    stack       " : "                ", o);
    uvt__put_escaped(o, f->trusted && f->function != NULL ? f->function : "??");
    fputs("  ", o);
    if (f->trusted && f->file != NULL) {
      uvt__put_escaped(o, uvt__display_path(f->file));
      fprintf(o, ":%d", f->line);
    } else {
      uvt__put_escaped(o, f->module != NULL ? f->module : "?");
      fprintf(o, "+0x%llx", (unsigned long long)f->offset);
    }
    fputs(f->inlined ? "  (inlined)\n" : "\n", o);
  }
  free(fr.v);
}

/* One entry per group of alike tasks, oldest group first. */
static const char group_sql[] =
    "SELECT count(*), min(t.task_id), group_concat(t.task_id || char(31) || "
    "coalesce(t.name, '?'), char(30)), t.state, min(t.wait), t.wait_what, "
    "min(t.wait_on_id), max(t.parked_ns), t.where_file, t.where_line, "
    "min(t.where_func), t.file, t.line, min(t.func), min(t.parent_id), "
    "(SELECT pcs FROM stacks s WHERE s.session_id = t.session_id AND s.id = t.stack), "
    "(SELECT name FROM snapshot_tasks w WHERE w.session_id = t.session_id AND "
    " w.snapshot_id = t.snapshot_id AND w.task_id = t.wait_on_id) "
    "FROM snapshot_tasks t WHERE t.session_id = ?1 AND t.snapshot_id = ?2 "
    "GROUP BY t.file, t.line, t.state, t.where_file, t.where_line, t.wait_what, "
    "t.stack ORDER BY min(t.task_id)";

#define GROUP_IDS_SHOWN 8

static void put_group(FILE *o, sqlite3_stmt *st, uvt__sym_t *sym, int space) {
  int64_t n = sqlite3_column_int64(st, 0);
  char *ids = uvt__col_text(st, 2), *state = uvt__col_text(st, 3);
  char *wait = uvt__col_text(st, 4), *what = uvt__col_text(st, 5);
  char *wfile = uvt__col_text(st, 8), *wfunc = uvt__col_text(st, 10);
  char *file = uvt__col_text(st, 11), *func = uvt__col_text(st, 13);
  char *on_name = uvt__col_text(st, 16);
  int64_t on_id = sqlite3_column_int64(st, 6), parked = sqlite3_column_int64(st, 7);
  int64_t parent = sqlite3_column_int64(st, 14);
  char dur[32], *p, *next;
  int shown = 0;
  if (n == 1) fputs("task ", o);
  else fprintf(o, "%lld tasks ", (long long)n);
  for (p = ids; p != NULL && n == 1; p = NULL) {
    char *sep = strchr(p, '\x1f');
    put_id(o, sqlite3_column_int64(st, 1));
    fputs(" '", o);
    uvt__put_escaped(o, sep != NULL ? sep + 1 : "?");
    fputs("' ", o);
  }
  uvt__put_escaped(o, state);
  if (state != NULL && strcmp(state, "parked") == 0) {
    fputs(" [", o);
    uvt__put_escaped(o, what != NULL ? what : "?");
    if (sqlite3_column_type(st, 7) != SQLITE_NULL)
      fprintf(o, ", %s", uvt__fmt_dur(parked, dur));
    fputs("]", o);
  }
  if (n > 1) {
    fputs(":", o);
    for (p = ids; p != NULL && *p != '\0'; p = next) {
      char *sep;
      next = strchr(p, '\x1e');
      if (next != NULL) *next++ = '\0';
      if (shown == GROUP_IDS_SHOWN) {
        fprintf(o, " and %lld more", (long long)(n - shown));
        break;
      }
      sep = strchr(p, '\x1f');
      if (sep != NULL) *sep = '\0';
      fputs(shown++ == 0 ? " " : ", ", o);
      put_id(o, strtoll(p, NULL, 10));
      fputs(" '", o);
      uvt__put_escaped(o, sep != NULL ? sep + 1 : "?");
      fputs("'", o);
    }
  }
  fputc('\n', o);
  if (wait != NULL) {
    fputs("    waits on    ", o);
    uvt__put_escaped(o, wait);
    if (on_id > 0) {
      fputc(' ', o);
      put_id(o, on_id);
      if (on_name != NULL) {
        fputs(" '", o);
        uvt__put_escaped(o, on_name);
        fputc('\'', o);
      }
    }
    fputc('\n', o);
  }
  if (wfile != NULL) {
    fputs("    parked at   ", o);
    put_site(o, wfile, (int)sqlite3_column_int64(st, 9), wfunc);
    fputc('\n', o);
  }
  fputs("    created at  ", o);
  put_site(o, file, (int)sqlite3_column_int64(st, 12), func);
  if (parent > 0) {
    fputs(", by task ", o);
    put_id(o, parent);
  }
  fputc('\n', o);
  put_stack(o, sym, space, sqlite3_column_blob(st, 15), sqlite3_column_bytes(st, 15));
  free(ids), free(state), free(wait), free(what), free(wfile), free(wfunc);
  free(file), free(func), free(on_name);
}

/* The await tree: each task above the tasks it awaits (`awaiters` of
 * the awaited task's row), roots first.  Depth-first from SQL, a task
 * shown once. */
static void put_tree_from(FILE *o, sqlite3 *db, int64_t sid, int64_t snap,
                          int64_t id, int depth, uvt__map_t *shown) {
  sqlite3_stmt *st;
  int d;
  void **seen = uvt__map_slot(shown, (const char *)&id, sizeof(id));
  fputs("  ", o);
  for (d = 0; d < depth; d++) fputs("    ", o);
  if (depth > 0) fputs("\xe2\x94\x94\xe2\x94\x80\xe2\x94\x80 ", o);
  put_id(o, id);
  if (*seen != NULL) {
    fputs(" (shown above)\n", o);
    return;
  }
  *seen = (void *)1;
  if (sqlite3_prepare_v2(db, "SELECT name, wait_what, where_file, where_line FROM "
                             "snapshot_tasks WHERE session_id=?1 AND snapshot_id=?2 "
                             "AND task_id=?3", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, snap);
    sqlite3_bind_int64(st, 3, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
      char *name = uvt__col_text(st, 0), *what = uvt__col_text(st, 1);
      char *file = uvt__col_text(st, 2);
      fputs(" '", o);
      uvt__put_escaped(o, name != NULL ? name : "?");
      fputc('\'', o);
      if (file != NULL) {
        fputc(' ', o);
        uvt__put_escaped(o, what != NULL ? what : "?");
        fputs(" at ", o);
        put_site(o, file, (int)sqlite3_column_int64(st, 3), NULL);
      }
      free(name), free(what), free(file);
    }
    sqlite3_finalize(st);
  }
  fputc('\n', o);
  if (depth >= 32) return;
  /* The tasks this one awaits: those listing it among their awaiters. */
  if (sqlite3_prepare_v2(db, "SELECT task_id FROM snapshot_tasks WHERE session_id=?1 "
                             "AND snapshot_id=?2 AND (' ' || awaiters || ' ') LIKE "
                             "('% ' || ?3 || ' %') ORDER BY task_id", -1, &st, NULL) != SQLITE_OK)
    return;
  sqlite3_bind_int64(st, 1, sid);
  sqlite3_bind_int64(st, 2, snap);
  sqlite3_bind_int64(st, 3, id);
  {
    int64_t kids[256];
    int nk = 0, i;
    while (sqlite3_step(st) == SQLITE_ROW && nk < 256) kids[nk++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    for (i = 0; i < nk; i++) put_tree_from(o, db, sid, snap, kids[i], depth + 1, shown);
  }
}

static void put_tree(FILE *o, sqlite3 *db, int64_t sid, int64_t snap) {
  sqlite3_stmt *st;
  uvt__map_t *shown = uvt__map_new();
  bool any = false;
  /* Roots: awaiting some task, awaited by none. */
  if (sqlite3_prepare_v2(db, "SELECT DISTINCT a.task_id FROM snapshot_tasks a, snapshot_tasks b "
                             "WHERE a.session_id=?1 AND a.snapshot_id=?2 AND "
                             "b.session_id=?1 AND b.snapshot_id=?2 AND (' ' || b.awaiters "
                             "|| ' ') LIKE ('% ' || a.task_id || ' %') AND a.awaiters IS NULL "
                             "ORDER BY a.task_id", -1, &st, NULL) == SQLITE_OK) {
    int64_t roots[256];
    int nr = 0, i;
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, snap);
    while (sqlite3_step(st) == SQLITE_ROW && nr < 256) roots[nr++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    for (i = 0; i < nr; i++) {
      if (!any) fputs("await tree (each task above the tasks it awaits):\n", o);
      any = true;
      put_tree_from(o, db, sid, snap, roots[i], 0, shown);
    }
  }
  if (!any) fputs("await tree: no task awaits another\n", o);
  uvt__map_free(shown);
}

static void add_modules(sqlite3 *db, int64_t sid, uvt__sym_t *sym, int space) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "SELECT path, build_id, base, lo, hi FROM modules "
                             "WHERE session_id = ?1", -1, &st, NULL) != SQLITE_OK)
    return;
  sqlite3_bind_int64(st, 1, sid);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *path = (const char *)sqlite3_column_text(st, 0);
    if (path == NULL) continue;
    uvt__sym_add_module(sym, space, path, (const char *)sqlite3_column_text(st, 1),
                        (uint64_t)sqlite3_column_int64(st, 2),
                        (uint64_t)sqlite3_column_int64(st, 3),
                        (uint64_t)sqlite3_column_int64(st, 4));
  }
  sqlite3_finalize(st);
}

static int print_snapshot(FILE *o, sqlite3 *db, int64_t sid, int64_t snap) {
  sqlite3_stmt *st;
  uvt__sym_t *sym = uvt__sym_new();
  int space = uvt__sym_space(sym);
  bool ok;
  int64_t pid = q_i64(db, "SELECT pid FROM sessions WHERE id=?1", sid, 0, &ok);
  int64_t ntasks = q_i64(db, "SELECT count(*) FROM snapshot_tasks WHERE session_id=?1 "
                             "AND snapshot_id=?2", sid, snap, &ok);
  char *reason = NULL;
  if (sqlite3_prepare_v2(db, "SELECT reason, ts_ns FROM snapshots WHERE session_id=?1 "
                             "AND id=?2", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, snap);
    if (sqlite3_step(st) == SQLITE_ROW) reason = uvt__col_text(st, 0);
    sqlite3_finalize(st);
  }
  fprintf(o, "uvtask: %lld task%s of process %lld (session %lld, snapshot %lld: ",
          (long long)ntasks, ntasks == 1 ? "" : "s", (long long)pid, (long long)sid,
          (long long)snap);
  uvt__put_escaped(o, reason != NULL ? reason : "?");
  fputs(")\n", o);
  free(reason);
  add_modules(db, sid, sym, space);
  if (sqlite3_prepare_v2(db, group_sql, -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, snap);
    while (sqlite3_step(st) == SQLITE_ROW) put_group(o, st, sym, space);
    sqlite3_finalize(st);
  }
  put_tree(o, db, sid, snap);
  uvt__sym_free(sym);
  return 0;
}

/* ---- FILE ------------------------------------------------------------------ */

static int ps_file(const char *path) {
  sqlite3 *db;
  sqlite3_stmt *st;
  char why[512];
  int64_t sid = 0, snap = 0;
  if (uvt__db_open(path, &db, why, sizeof(why)) != 0) {
    uvt__errorf("uvtask ps: %s", why);
    return UVT__EXIT_INPUT;
  }
  if (sqlite3_prepare_v2(db, "SELECT session_id, id FROM snapshots ORDER BY ts_ns DESC, "
                             "session_id DESC, id DESC LIMIT 1", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) {
      sid = sqlite3_column_int64(st, 0);
      snap = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
  }
  if (snap == 0) {
    uvt__errorf("uvtask ps: %s holds no snapshot (`uvtask ps PID` of a running "
                "program takes one)", path);
    uvt__db_close(db);
    return UVT__EXIT_FINDINGS;
  }
  print_snapshot(stdout, db, sid, snap);
  uvt__db_close(db);
  return 0;
}

/* ---- PID -------------------------------------------------------------------- */

/* The database PID records into, from its environment and working
 * directory (as the tracer resolves ASYNCIODEBUG); NULL if it has none. */
static char *db_of_process(long pid, char *why, size_t whylen) {
  char path[64], cwd[PATH_MAX], *buf = NULL, *val = NULL, *res = NULL;
  size_t len = 0, cap = 0;
  ssize_t n, c;
  int fd;
  snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
    snprintf(why, whylen, "cannot read its environment (%s)", strerror(errno));
    return NULL;
  }
  for (;;) {
    if (len + 4096 > cap) buf = uvt__xrealloc(buf, cap = cap ? cap * 2 : 16384);
    if ((n = read(fd, buf + len, cap - len - 1)) <= 0) break;
    len += (size_t)n;
  }
  close(fd);
  if (buf == NULL) return NULL;
  buf[len] = '\0';
  for (c = 0; (size_t)c < len; c += (ssize_t)strlen(buf + c) + 1)
    if (strncmp(buf + c, "ASYNCIODEBUG=", 13) == 0) val = buf + c + 13;
  if (val == NULL || *val == '\0' || strcmp(val, "0") == 0) {
    snprintf(why, whylen, "it is not recording (no ASYNCIODEBUG in its environment)");
    free(buf);
    return NULL;
  }
  if (strcmp(val, "1") == 0) val = "asynciodebug.db";
  if (val[0] == '/') {
    res = uvt__xstrdup(val);
  } else {
    snprintf(path, sizeof(path), "/proc/%ld/cwd", pid);
    n = readlink(path, cwd, sizeof(cwd) - 1);
    if (n < 0) {
      snprintf(why, whylen, "cannot read its working directory (%s)", strerror(errno));
    } else {
      cwd[n] = '\0';
      res = uvt__xasprintf("%s/%s", cwd, val);
    }
  }
  free(buf);
  return res;
}

static int ps_pid(long pid, const char *db_path) {
  sqlite3 *db;
  sqlite3_stmt *st;
  char why[512];
  char *path = db_path != NULL ? uvt__xstrdup(db_path) : db_of_process(pid, why, sizeof(why));
  int64_t sid = 0, start = 0, last, waited;
  char *exe = NULL;
  bool ok, alive = false;
  int rc = UVT__EXIT_INPUT;
  if (path == NULL) {
    uvt__errorf("uvtask ps: process %ld: %s; not signalling it", pid, why);
    return UVT__EXIT_INPUT;
  }
  if (uvt__db_open(path, &db, why, sizeof(why)) != 0) {
    uvt__errorf("uvtask ps: %s; not signalling process %ld", why, pid);
    free(path);
    return UVT__EXIT_INPUT;
  }
  if (sqlite3_prepare_v2(db, "SELECT id, start_ns, exe FROM sessions WHERE pid = ?1 AND "
                             "end_ns IS NULL ORDER BY id DESC LIMIT 1", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, pid);
    if (sqlite3_step(st) == SQLITE_ROW) {
      sid = sqlite3_column_int64(st, 0);
      start = sqlite3_column_int64(st, 1);
      exe = uvt__col_text(st, 2);
    }
    sqlite3_finalize(st);
  }
  alive = sid > 0 && uvt__session_process_alive(pid, start, exe);
  free(exe);
  if (!alive) {
    uvt__errorf("uvtask ps: %s has no live session of process %ld: it is not "
                "recording there; not signalling it", path, pid);
    goto out;
  }
  last = q_i64(db, "SELECT coalesce(max(id), 0) FROM snapshots WHERE session_id=?1",
               sid, 0, &ok);
  if (kill((pid_t)pid, UVT_PS_SIGNAL) != 0) {
    uvt__errorf("uvtask ps: cannot signal process %ld: %m", pid);
    goto out;
  }
  for (waited = 0; waited < PS_WAIT_MS; waited += PS_POLL_MS) {
    if (q_i64(db, "SELECT count(*) FROM snapshots WHERE session_id=?1 AND id>?2", sid,
              last, &ok) > 0)
      break;
    sleep_ms(PS_POLL_MS);
  }
  if (waited >= PS_WAIT_MS) {
    uvt__errorf("uvtask ps: process %ld did not answer within %d s: its loops may be "
                "blocked inside a task step (SIGQUIT prints its tasks on its stderr)",
                pid, PS_WAIT_MS / 1000);
    rc = UVT__EXIT_FINDINGS;
    goto out;
  }
  sleep_ms(PS_SETTLE_MS);
  if (sqlite3_prepare_v2(db, "SELECT id FROM snapshots WHERE session_id=?1 AND id>?2 "
                             "ORDER BY id", -1, &st, NULL) == SQLITE_OK) {
    int64_t snaps[64];
    int ns = 0, i;
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, last);
    while (sqlite3_step(st) == SQLITE_ROW && ns < 64) snaps[ns++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    for (i = 0; i < ns; i++) print_snapshot(stdout, db, sid, snaps[i]);
  }
  rc = 0;
out:
  uvt__db_close(db);
  free(path);
  return rc;
}

int uvt__ps_main(const char *target, const char *db_path) {
  const char *p;
  for (p = target; *p != '\0' && isdigit((unsigned char)*p); p++)
    ;
  /* All digits and no such file: a process id. */
  if (*target != '\0' && *p == '\0' && access(target, F_OK) != 0) {
    long pid = strtol(target, NULL, 10);
    if (pid <= 0 || pid > INT_MAX) {
      uvt__errorf("uvtask ps: %s is not a process id", target);
      return UVT__EXIT_INPUT;
    }
    return ps_pid(pid, db_path);
  }
  return ps_file(target);
}

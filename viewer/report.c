/*
 * Reading the inputs into the report model (viewer.h).
 *
 * The work is done by SQL, not by loops over rows, so that a database
 * with a million objects and 100,000 findings reads in well under a
 * second: the findings are grouped by (kind, file, line) with GROUP BY over
 * the findings_by_session index (pending-at-exit also by parked site: tasks
 * parked at different lines are different bugs), counted per session and
 * kind the same
 * way, and only each group's representative finding is then read in full
 * — its object, parents and stacks by primary key.  The objects table is
 * never scanned for the text or JSON report.  Durations (slow-callback) are
 * the one per-finding column read, to give each group its max and median.
 *
 * The selection (sessions by --pid or by `uvtask run`, kinds by --kind)
 * goes into TEMP tables, which a read-only connection may create, so that
 * every statement is a fixed text with bound parameters.  All reads of an
 * input happen inside one read transaction: a writer still appending to
 * the file cannot make the counts and the rows disagree.
 *
 * Findings about objects on the uvt_leaks_ignore list (findings.ignored)
 * are read too, into groups of their own flagged `ignored`: the writers
 * show them marked, and neither the totals nor the exit status count them.
 * Sessions are then ordered with findings first (uvt__report_t).
 *
 * Groups with the same key in several inputs are merged; the
 * representative is the first input's (the longest-blocking finding for
 * slow-callback).
 */
#include "viewer.h"
#include "uvtask/kinds.h"

#include <stdlib.h>
#include <string.h>

#define MAX_CHAIN 32
#define MAX_PCS 64
#define MAX_MEMBERS 64 /* members shown per finding (a crafted file may hold more) */

/* The rest of a group's key after kind, file, line: the parked site, for
 * the kinds that part by it (NULL for the others: then it groups as one
 * value), and whether the findings are ignored ones (objects on the
 * uvt_leaks_ignore list), which are shown flagged and apart, never mixed
 * into a counted group. */
#define WHERE_KEY                                                           \
  "CASE WHEN f.kind = 'pending-at-exit' THEN f.where_file END, "            \
  "CASE WHEN f.kind = 'pending-at-exit' THEN f.where_line END, "            \
  "ifnull(f.ignored, 0) <> 0"

/* The findings a report shows: selected sessions, kinds, durations.
 * Ignored findings are shown too (flagged: WHERE_KEY). */
#define FILTER                                                             \
  " f.session_id IN (SELECT id FROM temp.uvt_sel)"                         \
  " AND (?1 = 0 OR f.kind IN (SELECT kind FROM temp.uvt_kinds))"           \
  " AND (f.duration_ns IS NULL OR f.duration_ns >= ?2)"

typedef struct {
  uvt__report_t *r;
  const uvt__filter_t *f;
  const char *path;
  int input;
  sqlite3 *db;
  int rc; /* first SQLite failure */
  uvt__map_t *groups;   /* group key -> uvt__group_t, across inputs */
  uvt__map_t *sessions; /* session id (8 bytes) -> uvt__session_t */
  sqlite3_stmt *obj, *stack;
  uvt__group_t **mine; /* groups whose representative is in this input, */
  int64_t *mine_ids;   /* the representatives' finding ids */
  int nmine, capmine;
  uvt__map_t *mine_at; /* group pointer -> its index in mine + 1 */
  uvt__map_t *parents; /* session id + object id -> uvt__objref_t, read once */
  uvt__map_t *kind_at; /* session id + kind -> its index in the session's kinds + 1 */
} loader_t;

/* ---- statements --------------------------------------------------------------- */

static sqlite3_stmt *prepare(loader_t *L, const char *sql) {
  sqlite3_stmt *st = NULL;
  int rc;
  if (L->rc != SQLITE_OK) return NULL;
  rc = sqlite3_prepare_v2(L->db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) {
    L->rc = rc;
    sqlite3_finalize(st);
    return NULL;
  }
  return st;
}

/* Step; true while there is a row.  A failure is remembered in L->rc. */
static bool row(loader_t *L, sqlite3_stmt *st) {
  int rc;
  if (st == NULL || L->rc != SQLITE_OK) return false;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) L->rc = rc;
  return false;
}

static void exec(loader_t *L, const char *sql) {
  sqlite3_stmt *st = prepare(L, sql);
  while (row(L, st)) {
  }
  sqlite3_finalize(st);
}

static void bind_filter(const loader_t *L, sqlite3_stmt *st) {
  if (st == NULL) return;
  sqlite3_bind_int(st, 1, L->f->nkinds > 0);
  sqlite3_bind_int64(st, 2, L->f->min_ms > INT64_MAX / 1000000 ? INT64_MAX : L->f->min_ms * 1000000);
}

static int64_t col_i64(sqlite3_stmt *st, int i) { return sqlite3_column_int64(st, i); }

static int col_int(sqlite3_stmt *st, int i) {
  int64_t v = sqlite3_column_int64(st, i);
  return v > 2147483647 ? 2147483647 : v < -2147483647 ? -2147483647 : (int)v;
}

/* ---- objects and stacks ------------------------------------------------------------ */

static bool startup_frame(const uvt__frame_t *f);

/* Object ids are the scheduler's number in the top bits and a counter
 * below: "#1:2448" reads better than "#1099511630224", and says which
 * scheduler (loop) made it.  The one format of uvtask/kinds.h, which
 * uvt_dump and `uvtask ps` print too. */
char *uvt__obj_words(const uvt__objref_t *o) {
  const char *kind = o->kind != NULL ? o->kind : "object";
  char id[UVT_ID_FORMAT_MAX];
  if (o->name != NULL) return uvt__xasprintf("%s '%s'", kind, o->name);
  if (o->id > 0) return uvt__xasprintf("%s %s", kind, uvt_id_format((unsigned long long)o->id, id));
  return uvt__xasprintf("%s #%lld", kind, (long long)o->id);
}

bool uvt__frames_only_runtime(const uvt__frames_t *fr) {
  int i;
  for (i = 0; i < fr->n; i++)
    if (!startup_frame(fr->v[i])) return false;
  return true;
}

static void objref_free(uvt__objref_t *o) {
  free(o->kind);
  free(o->name);
  free(o->file);
  free(o->func);
  memset(o, 0, sizeof(*o));
}

/* Extra columns of an object row, for those who want them. */
typedef struct {
  int64_t create_stack, created_ns, ended_ns, fail_stack;
  bool ended, has_status;
  int status, fail_line;
  char *message, *fail_file;
} objmore_t;

static void load_object(loader_t *L, int64_t session, int64_t id,
                        uvt__objref_t *o, objmore_t *more) {
  sqlite3_stmt *st;
  memset(o, 0, sizeof(*o));
  if (more != NULL) memset(more, 0, sizeof(*more));
  o->id = id;
  if (L->obj == NULL)
    L->obj = prepare(L, "SELECT kind, name, file, line, func, parent_id, create_stack, "
                        "created_ns, ended_ns, status, message, fail_file, "
                        "fail_line, fail_stack FROM objects WHERE session_id = ?1 "
                        "AND id = ?2");
  st = L->obj;
  if (st == NULL) return;
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, session);
  sqlite3_bind_int64(st, 2, id);
  if (row(L, st)) {
    o->found = true;
    o->kind = uvt__col_text(st, 0);
    o->name = uvt__col_text(st, 1);
    o->file = uvt__col_text(st, 2);
    o->line = col_int(st, 3);
    o->func = uvt__col_text(st, 4);
    o->parent_id = col_i64(st, 5);
    if (more != NULL) {
      more->create_stack = col_i64(st, 6);
      more->created_ns = col_i64(st, 7);
      more->ended = sqlite3_column_type(st, 8) != SQLITE_NULL;
      more->ended_ns = col_i64(st, 8);
      more->has_status = sqlite3_column_type(st, 9) != SQLITE_NULL;
      more->status = col_int(st, 9);
      more->message = uvt__col_text(st, 10);
      more->fail_file = uvt__col_text(st, 11);
      more->fail_line = col_int(st, 12);
      more->fail_stack = col_i64(st, 13);
    }
  }
  sqlite3_reset(st);
}

/* A task's stack ends in uvtask's own trampoline (task_entry,
 * uvt__ctx_entry), the main thread's in the C library's start-up: the same
 * in every stack, and nothing to act on.  Drop those outermost frames,
 * keeping at least one. */
static bool startup_frame(const uvt__frame_t *f) {
  const char *b;
  if (f->module == NULL) return false;
  b = strrchr(f->module, '/');
  b = b != NULL ? b + 1 : f->module;
  if (strncmp(b, "libuvtask.so", 12) == 0) return true;
  return f->trusted && f->function != NULL &&
         (strcmp(f->function, "_start") == 0 ||
          strncmp(f->function, "__libc_start_", 13) == 0);
}

static void trim_trampoline(uvt__frames_t *fr) {
  while (fr->n > 1 && startup_frame(fr->v[fr->n - 1])) fr->n--;
}

static void load_stack(loader_t *L, const uvt__session_t *s, int64_t id,
                       uvt__frames_t *out) {
  sqlite3_stmt *st;
  if (id <= 0) return;
  if (L->stack == NULL)
    L->stack = prepare(L, "SELECT pcs FROM stacks WHERE session_id = ?1 AND id = ?2");
  st = L->stack;
  if (st == NULL) return;
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, s->id);
  sqlite3_bind_int64(st, 2, id);
  if (row(L, st)) {
    const unsigned char *b = sqlite3_column_blob(st, 0);
    int n = sqlite3_column_bytes(st, 0) / 8, i, k;
    if (n > MAX_PCS) n = MAX_PCS;
    for (i = 0; b != NULL && i < n; i++) {
      uint64_t pc = 0;
      for (k = 7; k >= 0; k--) pc = pc << 8 | b[i * 8 + k];
      uvt__sym_resolve(L->r->sym, s->space, pc, out);
    }
    trim_trampoline(out);
  }
  sqlite3_reset(st);
}

/* ---- sessions --------------------------------------------------------------------- */

/* `uvtask run` shows the sessions that began after it launched the
 * program: the program's own and its children's.  A pid alone does not
 * say it: in a new pid namespace every run's program has the same pid, and
 * pids are reused, so an older session with the same pid is another run's. */
static bool selected(const uvt__filter_t *f, int64_t pid, int64_t start_ns) {
  int i;
  if (f->run && start_ns < f->run_start_ns) return false;
  if (f->npids == 0) return true;
  for (i = 0; i < f->npids; i++)
    if (f->pids[i] == pid) return true;
  return false;
}

static uvt__session_t *session_of(loader_t *L, int64_t id) {
  return uvt__map_get(L->sessions, (const char *)&id, sizeof(id));
}

static void load_sessions(loader_t *L) {
  uvt__report_t *r = L->r;
  sqlite3_stmt *ins, *st;
  ins = prepare(L, "INSERT OR IGNORE INTO temp.uvt_sel (id) VALUES (?1)");
  st = prepare(L, "SELECT id, pid, ppid, argv, exe, test_name, start_ns, end_ns, "
                  "end_reason, exit_status, signal, crash_task_id, slow_ms, depth, "
                  "objects, peak_tasks, findings, shed, lost FROM sessions ORDER BY id");
  while (row(L, st)) {
    uvt__session_t *s;
    int64_t id = col_i64(st, 0);
    if (!selected(L->f, col_i64(st, 1), col_i64(st, 6))) continue;
    s = uvt__xcalloc(1, sizeof(*s));
    s->input = L->input;
    s->id = id;
    s->pid = col_i64(st, 1);
    s->ppid = col_i64(st, 2);
    s->argv = uvt__col_text(st, 3);
    s->exe = uvt__col_text(st, 4);
    s->test_name = uvt__col_text(st, 5);
    s->start_ns = col_i64(st, 6);
    s->end_ns = sqlite3_column_type(st, 7) != SQLITE_NULL ? col_i64(st, 7) : 0;
    s->end_reason = uvt__col_text(st, 8);
    s->has_exit = sqlite3_column_type(st, 9) != SQLITE_NULL;
    s->exit_status = col_int(st, 9);
    s->has_signal = sqlite3_column_type(st, 10) != SQLITE_NULL;
    s->signal = col_int(st, 10);
    s->crash_task.id = col_i64(st, 11);
    s->slow_ms = col_int(st, 12);
    s->depth = col_int(st, 13);
    s->objects = col_i64(st, 14);
    s->peak_tasks = col_i64(st, 15);
    s->findings_recorded = col_i64(st, 16);
    s->shed = col_i64(st, 17);
    s->lost = col_i64(st, 18);
    if (s->end_reason != NULL || s->end_ns > 0) s->state = UVT__SESSION_ENDED;
    else if (uvt__session_process_alive(s->pid, s->start_ns, s->exe))
      s->state = UVT__SESSION_RUNNING;
    else s->state = UVT__SESSION_KILLED;
    s->space = uvt__sym_space(r->sym);
    *uvt__map_slot(L->sessions, (const char *)&id, sizeof(id)) = s;
    if (r->nsessions == r->capsessions) {
      r->capsessions = r->capsessions ? r->capsessions * 2 : 16;
      r->sessions = uvt__xrealloc(r->sessions, (size_t)r->capsessions * sizeof(*r->sessions));
    }
    r->sessions[r->nsessions++] = s;
    if (ins != NULL) {
      sqlite3_reset(ins);
      sqlite3_bind_int64(ins, 1, id);
      while (row(L, ins)) {
      }
    }
  }
  sqlite3_finalize(st);
  sqlite3_finalize(ins);
}

static void load_modules(loader_t *L) {
  sqlite3_stmt *st = prepare(L, "SELECT session_id, path, build_id, base, lo, hi FROM "
                                "modules WHERE session_id IN (SELECT id FROM temp.uvt_sel)");
  while (row(L, st)) {
    uvt__session_t *s = session_of(L, col_i64(st, 0));
    const char *path = (const char *)sqlite3_column_text(st, 1);
    const char *bid = (const char *)sqlite3_column_text(st, 2);
    if (s == NULL || path == NULL) continue;
    uvt__sym_add_module(L->r->sym, s->space, path, bid, (uint64_t)col_i64(st, 3),
                        (uint64_t)col_i64(st, 4), (uint64_t)col_i64(st, 5));
  }
  sqlite3_finalize(st);
}

/* Count a group's findings in its session's findings by kind.  A
 * crafted file may hold any number of distinct kinds: the kind's slot is
 * found through a map keyed by (session, kind), never by scanning the
 * session's list (that made the report quadratic in the kinds). */
static void count_kind(loader_t *L, uvt__session_t *s, const char *kind, int64_t n) {
  size_t klen = strlen(kind), len = sizeof(s->id) + klen;
  char *key = uvt__xmalloc(len);
  void **slot;
  intptr_t i;
  memcpy(key, &s->id, sizeof(s->id));
  memcpy(key + sizeof(s->id), kind, klen);
  if (L->kind_at == NULL) L->kind_at = uvt__map_new();
  slot = uvt__map_slot(L->kind_at, key, len);
  free(key);
  if (*slot == NULL) {
    if (s->nkinds == s->capkinds) {
      s->capkinds = s->capkinds ? s->capkinds * 2 : 8;
      s->kinds = uvt__xrealloc(s->kinds, (size_t)s->capkinds * sizeof(*s->kinds));
    }
    s->kinds[s->nkinds].kind = uvt__xstrdup(kind);
    s->kinds[s->nkinds].n = 0;
    *slot = (void *)(intptr_t)++s->nkinds;
  }
  i = (intptr_t)*slot - 1;
  s->kinds[i].n += n;
  s->nfindings += n;
}

static int by_kind_rank(const void *a, const void *b) {
  const uvt__kindcount_t *x = a, *y = b;
  int c = uvt__kind_rank(x->kind) - uvt__kind_rank(y->kind);
  return c != 0 ? c : strcmp(x->kind, y->kind);
}

static void load_crash_tasks(loader_t *L) {
  int i;
  for (i = 0; i < L->r->nsessions; i++) {
    uvt__session_t *s = L->r->sessions[i];
    if (s->input != L->input || s->crash_task.id <= 0) continue;
    load_object(L, s->id, s->crash_task.id, &s->crash_task, NULL);
  }
}

/* ---- groups ------------------------------------------------------------------------- */

static char *group_key(const char *kind, const char *file, bool file_null, int line,
                       const char *wfile, bool wfile_null, int wline, bool ignored,
                       size_t *len) {
  char *k = uvt__xasprintf("%s%c%c%s%c%d%c%c%s%c%d%c%c", kind != NULL ? kind : "", 0,
                           file_null ? 'N' : 'F', file != NULL ? file : "", 0, line, 0,
                           wfile_null ? 'N' : 'F', wfile != NULL ? wfile : "", 0, wline,
                           0, ignored ? 'I' : 'C');
  int part;
  *len = 0;
  for (part = 0; part < 5; part++) *len += strlen(k + *len) + 1;
  *len += strlen(k + *len);
  return k;
}

/* The group of the current row: kind, file, line in columns 0-2, the
 * WHERE_KEY columns at `wcol`, `wcol` + 1, `wcol` + 2. */
static uvt__group_t *group_lookup(loader_t *L, sqlite3_stmt *st, int wcol, bool create,
                                  bool *created) {
  size_t len;
  const char *kind = (const char *)sqlite3_column_text(st, 0);
  const char *file = (const char *)sqlite3_column_text(st, 1);
  const char *wfile = (const char *)sqlite3_column_text(st, wcol);
  char *key = group_key(kind, file, sqlite3_column_type(st, 1) == SQLITE_NULL,
                        col_int(st, 2), wfile,
                        sqlite3_column_type(st, wcol) == SQLITE_NULL,
                        col_int(st, wcol + 1), col_i64(st, wcol + 2) != 0, &len);
  uvt__group_t *g, **slot;
  if (!create) {
    g = uvt__map_get(L->groups, key, len);
    free(key);
    return g;
  }
  slot = (uvt__group_t **)uvt__map_slot(L->groups, key, len);
  free(key);
  *created = *slot == NULL;
  if (*slot == NULL) {
    g = *slot = uvt__xcalloc(1, sizeof(*g));
    g->kind = uvt__col_text(st, 0);
    g->file = uvt__col_text(st, 1);
    g->line = col_int(st, 2);
    g->ignored = col_i64(st, wcol + 2) != 0;
  }
  return *slot;
}

/* One pass over the selected findings, grouped in SQL by site and
 * session: gives the groups, their counts and the sessions' counts by
 * kind at once. */
static void load_groups(loader_t *L) {
  uvt__report_t *r = L->r;
  sqlite3_stmt *st = prepare(L, "SELECT f.kind, f.file, f.line, f.session_id, count(*), "
                                "min(f.id), " WHERE_KEY " FROM findings f WHERE" FILTER
                                " GROUP BY f.kind, f.file, f.line, " WHERE_KEY
                                ", f.session_id");
  int i;
  L->mine_at = uvt__map_new();
  bind_filter(L, st);
  while (row(L, st)) {
    bool created;
    uvt__group_t *g = group_lookup(L, st, 6, true, &created);
    uvt__session_t *s = session_of(L, col_i64(st, 3));
    int64_t n = col_i64(st, 4), first = col_i64(st, 5);
    g->count += n;
    g->nsessions++;
    if (g->ignored) {
      r->nignored += n;
      if (s != NULL) s->nignored += n;
    } else {
      r->total += n;
      if (s != NULL && g->kind != NULL) count_kind(L, s, g->kind, n);
    }
    if (created) {
      if (r->ngroups == r->capgroups) {
        r->capgroups = r->capgroups ? r->capgroups * 2 : 64;
        r->groups = uvt__xrealloc(r->groups, (size_t)r->capgroups * sizeof(*r->groups));
      }
      r->groups[r->ngroups++] = g;
      if (L->nmine == L->capmine) {
        L->capmine = L->capmine ? L->capmine * 2 : 64;
        L->mine = uvt__xrealloc(L->mine, (size_t)L->capmine * sizeof(*L->mine));
        L->mine_ids = uvt__xrealloc(L->mine_ids, (size_t)L->capmine * sizeof(*L->mine_ids));
      }
      L->mine[L->nmine] = g;
      L->mine_ids[L->nmine++] = first;
      *uvt__map_slot(L->mine_at, (const char *)&g, sizeof(g)) = (void *)(intptr_t)L->nmine;
    } else {
      intptr_t k = (intptr_t)uvt__map_get(L->mine_at, (const char *)&g, sizeof(g));
      if (k > 0 && first < L->mine_ids[k - 1]) L->mine_ids[k - 1] = first; /* earliest */
    }
  }
  sqlite3_finalize(st);
  for (i = 0; i < r->nsessions; i++)
    if (r->sessions[i]->input == L->input && r->sessions[i]->nkinds > 1)
      qsort(r->sessions[i]->kinds, (size_t)r->sessions[i]->nkinds,
            sizeof(*r->sessions[i]->kinds), by_kind_rank);
}

static void load_durations(loader_t *L) {
  sqlite3_stmt *st = prepare(L, "SELECT f.kind, f.file, f.line, f.duration_ns, f.id, "
                                WHERE_KEY " FROM findings f WHERE" FILTER
                                " AND f.duration_ns IS NOT NULL");
  int64_t *best = uvt__xcalloc((size_t)L->nmine + 1, sizeof(*best));
  bind_filter(L, st);
  while (row(L, st)) {
    uvt__group_t *g = group_lookup(L, st, 5, false, NULL);
    int64_t d = col_i64(st, 3);
    intptr_t at;
    if (g == NULL) continue;
    if (g->ndurs == g->capdurs) {
      g->capdurs = g->capdurs ? g->capdurs * 2 : 16;
      g->durs = uvt__xrealloc(g->durs, g->capdurs * sizeof(*g->durs));
    }
    g->durs[g->ndurs++] = d;
    /* The longest one represents a group first seen in this input. */
    at = L->mine_at != NULL ? (intptr_t)uvt__map_get(L->mine_at, (const char *)&g, sizeof(g)) : 0;
    if (at > 0 && (best[at - 1] == 0 || d > best[at - 1])) {
      best[at - 1] = d > 0 ? d : 1;
      L->mine_ids[at - 1] = col_i64(st, 4);
    }
  }
  sqlite3_finalize(st);
  free(best);
}

static void parent_free(void *p) {
  objref_free(p);
  free(p);
}

/* A parent's row, copied into *p.  Parent chains share their ancestors
 * (every task of a server descends from its accept loop), so each is read
 * from the database once per input. */
static void parent_of(loader_t *L, int64_t session, int64_t id, uvt__objref_t *p) {
  int64_t key[2] = {session, id};
  uvt__objref_t **slot, *c;
  if (L->parents == NULL) L->parents = uvt__map_new();
  slot = (uvt__objref_t **)uvt__map_slot(L->parents, (const char *)key, sizeof(key));
  if (*slot == NULL) {
    c = *slot = uvt__xmalloc(sizeof(*c));
    load_object(L, session, id, c, NULL);
  }
  c = *slot;
  *p = *c;
  p->kind = uvt__xstrdup(c->kind);
  p->name = uvt__xstrdup(c->name);
  p->file = uvt__xstrdup(c->file);
  p->func = uvt__xstrdup(c->func);
}

/* An object named by id, or an empty reference for id 0. */
static void load_ref(loader_t *L, int64_t session, int64_t id, uvt__objref_t *o) {
  if (id > 0) load_object(L, session, id, o, NULL);
  else memset(o, 0, sizeof(*o));
}

static void load_members(loader_t *L, uvt__group_t *g, const uvt__session_t *s) {
  sqlite3_stmt *st = prepare(L, "SELECT ord, object_id, name, wait, waits_on, held_by, "
                                "where_file, where_line, acquire_file, acquire_line, "
                                "stack FROM finding_members WHERE finding_id = ?1 "
                                "ORDER BY ord LIMIT ?2");
  if (st == NULL) return;
  sqlite3_bind_int64(st, 1, g->finding_id);
  sqlite3_bind_int(st, 2, MAX_MEMBERS);
  while (row(L, st)) {
    uvt__member_t *m;
    g->members = uvt__xrealloc(g->members, (size_t)(g->nmembers + 1) * sizeof(*g->members));
    m = &g->members[g->nmembers++];
    memset(m, 0, sizeof(*m));
    m->ord = col_int(st, 0);
    load_ref(L, s->id, col_i64(st, 1), &m->obj);
    m->name = uvt__col_text(st, 2);
    m->wait = uvt__col_text(st, 3);
    load_ref(L, s->id, col_i64(st, 4), &m->waits_on);
    load_ref(L, s->id, col_i64(st, 5), &m->held_by);
    m->where_file = uvt__col_text(st, 6);
    m->where_line = col_int(st, 7);
    m->acquire_file = uvt__col_text(st, 8);
    m->acquire_line = col_int(st, 9);
    load_stack(L, s, col_i64(st, 10), &m->stack);
  }
  sqlite3_finalize(st);
  g->members_total = g->nmembers;
  /* A cycle of thousands: the others are counted, and said to be there. */
  if (g->nmembers == MAX_MEMBERS &&
      (st = prepare(L, "SELECT count(*) FROM finding_members WHERE finding_id = ?1")) != NULL) {
    sqlite3_bind_int64(st, 1, g->finding_id);
    if (row(L, st)) g->members_total = col_i64(st, 0);
    sqlite3_finalize(st);
  }
}

/* A finding the tracer could not place itself (a crash: it has only the
 * faulting stack) points at the stack's first frame with a source line
 * outside the startup code. */
static void locate_by_stack(uvt__group_t *g) {
  int i;
  for (i = 0; i < g->stack.n; i++) {
    const uvt__frame_t *f = g->stack.v[i];
    if (f->file == NULL || startup_frame(f)) continue;
    g->file = uvt__xstrdup(f->file);
    g->line = f->line;
    if (g->func == NULL && f->function != NULL) g->func = uvt__xstrdup(f->function);
    return;
  }
}

static void load_representative(loader_t *L, uvt__group_t *g, int64_t fid,
                                sqlite3_stmt *st) {
  uvt__session_t *s;
  objmore_t more;
  int64_t oid;
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, fid);
  if (!row(L, st)) return;
  s = session_of(L, col_i64(st, 0));
  if (s == NULL) return;
  g->session = s;
  g->finding_id = fid;
  oid = col_i64(st, 1);
  g->func = uvt__col_text(st, 2);
  g->message = uvt__col_text(st, 3);
  g->where_file = uvt__col_text(st, 6);
  g->where_line = col_int(st, 7);
  g->where_what = uvt__col_text(st, 8);
  g->has_status = sqlite3_column_type(st, 9) != SQLITE_NULL;
  g->status = col_int(st, 9);
  g->duration_ns = col_i64(st, 10);
  g->ts_ns = col_i64(st, 11);
  load_stack(L, s, col_i64(st, 4), &g->stack);
  load_stack(L, s, col_i64(st, 5), &g->stack2);
  load_members(L, g, s);
  if (g->file == NULL) locate_by_stack(g);
  if (oid <= 0) return;
  load_object(L, s->id, oid, &g->object, &more);
  if (!g->object.found) return;
  g->created_ns = more.created_ns;
  g->error = more.message;
  g->fail_file = more.fail_file;
  g->fail_line = more.fail_line;
  load_stack(L, s, more.create_stack, &g->created);
  load_stack(L, s, more.fail_stack, &g->fail);
  {
    int64_t seen[MAX_CHAIN + 1], pid = g->object.parent_id;
    int nseen = 0, i;
    seen[nseen++] = oid;
    while (pid > 0) {
      uvt__objref_t p;
      for (i = 0; i < nseen; i++)
        if (seen[i] == pid) break;
      if (i < nseen || g->nchain == MAX_CHAIN) {
        g->chain_cut = true;
        break;
      }
      seen[nseen++] = pid;
      parent_of(L, s->id, pid, &p);
      g->chain = uvt__xrealloc(g->chain, (size_t)(g->nchain + 1) * sizeof(*g->chain));
      g->chain[g->nchain++] = p;
      if (!p.found) break;
      pid = p.parent_id;
    }
  }
}

static void load_representatives(loader_t *L) {
  sqlite3_stmt *st = prepare(L, "SELECT session_id, object_id, func, message, stack, "
                                "stack2, where_file, where_line, where_what, status, "
                                "duration_ns, ts_ns FROM findings WHERE id = ?1");
  int i;
  for (i = 0; st != NULL && i < L->nmine; i++)
    load_representative(L, L->mine[i], L->mine_ids[i], st);
  sqlite3_finalize(st);
}

#define UVT__STR_(x) #x
#define UVT__STR(x) UVT__STR_(x)

/* ---- snapshots ---------------------------------------------------------------------- */

#define SNAPS_PER_SESSION 8   /* the last ones; `uvtask ps FILE` shows any */
#define SNAP_TASKS_MAX 10000  /* tasks read per snapshot */

static void load_snapshot_tasks(loader_t *L, uvt__session_t *s, uvt__snapshot_t *sn) {
  sqlite3_stmt *st = prepare(L, "SELECT task_id, parent_id, wait_on_id, parked_ns, name, "
                                "state, wait, wait_what, where_file, where_func, file, "
                                "func, awaiters, where_line, line, stack FROM snapshot_tasks "
                                "WHERE session_id = ?1 AND snapshot_id = ?2 ORDER BY task_id "
                                "LIMIT " UVT__STR(SNAP_TASKS_MAX));
  if (st == NULL) return;
  sqlite3_bind_int64(st, 1, s->id);
  sqlite3_bind_int64(st, 2, sn->id);
  while (row(L, st)) {
    uvt__snaptask_t *t;
    sn->tasks = uvt__xrealloc(sn->tasks, (size_t)(sn->ntasks + 1) * sizeof(*sn->tasks));
    t = &sn->tasks[sn->ntasks++];
    memset(t, 0, sizeof(*t));
    t->id = col_i64(st, 0);
    t->parent_id = col_i64(st, 1);
    t->wait_on_id = col_i64(st, 2);
    t->parked_ns = col_i64(st, 3);
    t->name = uvt__col_text(st, 4);
    t->state = uvt__col_text(st, 5);
    t->wait = uvt__col_text(st, 6);
    t->what = uvt__col_text(st, 7);
    t->where_file = uvt__col_text(st, 8);
    t->where_func = uvt__col_text(st, 9);
    t->file = uvt__col_text(st, 10);
    t->func = uvt__col_text(st, 11);
    t->awaiters = uvt__col_text(st, 12);
    t->where_line = col_int(st, 13);
    t->line = col_int(st, 14);
    t->stack_id = col_i64(st, 15);
    load_stack(L, s, t->stack_id, &t->stack);
  }
  sqlite3_finalize(st);
}

static void load_snapshots(loader_t *L) {
  int i;
  for (i = 0; i < L->r->nsessions; i++) {
    uvt__session_t *s = L->r->sessions[i];
    sqlite3_stmt *st;
    int k;
    if (s->input != L->input) continue;
    st = prepare(L, "SELECT id, ts_ns, reason FROM snapshots WHERE session_id = ?1 "
                    "ORDER BY id DESC LIMIT " UVT__STR(SNAPS_PER_SESSION));
    if (st == NULL) return;
    sqlite3_bind_int64(st, 1, s->id);
    while (row(L, st)) {
      uvt__snapshot_t *sn;
      s->snaps = uvt__xrealloc(s->snaps, (size_t)(s->nsnaps + 1) * sizeof(*s->snaps));
      sn = &s->snaps[s->nsnaps++];
      memset(sn, 0, sizeof(*sn));
      sn->id = col_i64(st, 0);
      sn->ts_ns = col_i64(st, 1);
      sn->reason = uvt__col_text(st, 2);
    }
    sqlite3_finalize(st);
    /* Oldest first. */
    for (k = 0; k < s->nsnaps / 2; k++) {
      uvt__snapshot_t tmp = s->snaps[k];
      s->snaps[k] = s->snaps[s->nsnaps - 1 - k];
      s->snaps[s->nsnaps - 1 - k] = tmp;
    }
    for (k = 0; k < s->nsnaps; k++) load_snapshot_tasks(L, s, &s->snaps[k]);
  }
}

static void snapshots_free(uvt__session_t *s) {
  int k, j;
  for (k = 0; k < s->nsnaps; k++) {
    uvt__snapshot_t *sn = &s->snaps[k];
    for (j = 0; j < sn->ntasks; j++) {
      uvt__snaptask_t *t = &sn->tasks[j];
      free(t->name), free(t->state), free(t->wait), free(t->what), free(t->where_file);
      free(t->where_func), free(t->file), free(t->func), free(t->awaiters);
      free(t->stack.v);
    }
    free(sn->tasks);
    free(sn->reason);
  }
  free(s->snaps);
}

/* ---- the whole input ---------------------------------------------------------------------- */

static int load_input(uvt__report_t *r, int input, const uvt__filter_t *f,
                      uvt__map_t *groups, char *why, size_t whylen) {
  loader_t L;
  sqlite3_stmt *st;
  int i;
  memset(&L, 0, sizeof(L));
  L.r = r;
  L.f = f;
  L.path = r->inputs[input];
  L.input = input;
  L.groups = groups;
  if (uvt__db_open(L.path, &L.db, why, whylen) != 0) return -1;
  L.sessions = uvt__map_new();
  exec(&L, "BEGIN");
  exec(&L, "CREATE TEMP TABLE uvt_sel (id INTEGER PRIMARY KEY)");
  exec(&L, "CREATE TEMP TABLE uvt_kinds (kind TEXT PRIMARY KEY)");
  st = prepare(&L, "INSERT OR IGNORE INTO temp.uvt_kinds (kind) VALUES (?1)");
  for (i = 0; st != NULL && i < f->nkinds; i++) {
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, f->kinds[i], -1, SQLITE_STATIC);
    while (row(&L, st)) {
    }
  }
  sqlite3_finalize(st);
  load_sessions(&L);
  load_modules(&L);
  load_crash_tasks(&L);
  load_groups(&L);
  load_durations(&L);
  load_representatives(&L);
  load_snapshots(&L);
  if (f->timeline && L.rc == SQLITE_OK) L.rc = uvt__timeline_load(L.db, r, input);
  sqlite3_finalize(L.obj);
  sqlite3_finalize(L.stack);
  if (L.rc != SQLITE_OK) uvt__db_why(L.db, L.rc, L.path, why, whylen);
  else exec(&L, "COMMIT");
  uvt__db_close(L.db);
  uvt__map_free(L.sessions);
  free(L.mine);
  free(L.mine_ids);
  uvt__map_free(L.mine_at);
  uvt__map_free(L.kind_at);
  uvt__map_each(L.parents, parent_free);
  uvt__map_free(L.parents);
  return L.rc == SQLITE_OK ? 0 : -1;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int strcmp_null(const char *a, const char *b) {
  if (a == NULL || b == NULL) return (a != NULL) - (b != NULL);
  return strcmp(a, b);
}

static int by_kind_site(const void *a, const void *b) {
  const uvt__group_t *x = *(uvt__group_t *const *)a, *y = *(uvt__group_t *const *)b;
  int c = (int)x->ignored - (int)y->ignored; /* counted ones first */
  if (c == 0) c = uvt__kind_rank(x->kind) - uvt__kind_rank(y->kind);
  if (c == 0) c = strcmp_null(x->kind, y->kind);
  if (c == 0) c = strcmp_null(x->file, y->file);
  if (c == 0) c = (x->line > y->line) - (x->line < y->line);
  if (c == 0) c = strcmp_null(x->where_file, y->where_file);
  if (c == 0) c = (x->where_line > y->where_line) - (x->where_line < y->where_line);
  return c;
}

/* Sessions with findings first, then the oldest; input and id make the
 * order total (qsort is not stable). */
static int by_findings_start(const void *a, const void *b) {
  const uvt__session_t *x = *(uvt__session_t *const *)a, *y = *(uvt__session_t *const *)b;
  int c = (y->nfindings > 0) - (x->nfindings > 0);
  if (c == 0) c = (x->start_ns > y->start_ns) - (x->start_ns < y->start_ns);
  if (c == 0) c = (x->input > y->input) - (x->input < y->input);
  if (c == 0) c = (x->id > y->id) - (x->id < y->id);
  return c;
}

int uvt__report_load(uvt__report_t *r, const char *const *paths, int n,
                     const uvt__filter_t *f, char *why, size_t whylen) {
  uvt__map_t *groups = uvt__map_new();
  int i;
  memset(r, 0, sizeof(*r));
  r->inputs = paths;
  r->ninputs = n;
  r->sym = uvt__sym_new();
  for (i = 0; i < n; i++)
    if (load_input(r, i, f, groups, why, whylen) != 0) {
      uvt__map_free(groups);
      return -1;
    }
  uvt__map_free(groups);
  for (i = 0; i < r->ngroups; i++) {
    uvt__group_t *g = r->groups[i];
    if (g->ndurs > 0) {
      qsort(g->durs, g->ndurs, sizeof(*g->durs), cmp_i64);
      g->p50_ns = g->durs[(g->ndurs - 1) / 2];
      g->max_ns = g->durs[g->ndurs - 1];
    }
  }
  if (r->ngroups > 1) qsort(r->groups, (size_t)r->ngroups, sizeof(*r->groups), by_kind_site);
  for (i = 0; i < r->ngroups; i++) r->nignored_groups += r->groups[i]->ignored;
  if (r->nsessions > 1)
    qsort(r->sessions, (size_t)r->nsessions, sizeof(*r->sessions), by_findings_start);
  for (i = 0; i < r->nsessions; i++) {
    uvt__session_t *s = r->sessions[i];
    /* Only a session that ended normally can have recorded nothing: one
     * cut short or still running has not written its counts yet. */
    s->empty = s->state == UVT__SESSION_ENDED && s->objects == 0 &&
               s->findings_recorded == 0 && s->nfindings == 0 && s->lost == 0 &&
               !(s->end_reason != NULL && strcmp(s->end_reason, "signal") == 0);
    if (s->empty) r->nempty++;
    if (s->state == UVT__SESSION_KILLED) r->nkilled++;
  }
  return 0;
}

bool uvt__report_recorded_nothing(const uvt__report_t *r) {
  return r->nempty == r->nsessions;
}

int uvt__report_status(const uvt__report_t *r, const uvt__filter_t *f) {
  int i;
  if (r->nkilled > 0 &&
      (f->nfail_on == 0 || uvt__in_list(f->fail_on, f->nfail_on, UVT__KILLED_WORD)))
    return UVT__EXIT_FINDINGS;
  /* Rows the recorder knew of but could not store: never a clean run. */
  for (i = 0; i < r->nsessions; i++)
    if (r->sessions[i]->lost > 0) return UVT__EXIT_FINDINGS;
  for (i = 0; i < r->ngroups; i++) {
    if (r->groups[i]->ignored) continue; /* expected to outlive the run */
    if (f->nfail_on == 0 || uvt__in_list(f->fail_on, f->nfail_on, r->groups[i]->kind))
      return UVT__EXIT_FINDINGS;
  }
  return UVT__EXIT_CLEAN;
}

static void frames_free(uvt__frames_t *fr) { free(fr->v); }

void uvt__report_free(uvt__report_t *r) {
  int i, k;
  for (i = 0; i < r->ngroups; i++) {
    uvt__group_t *g = r->groups[i];
    free(g->kind);
    free(g->file);
    free(g->durs);
    free(g->func);
    free(g->message);
    objref_free(&g->object);
    frames_free(&g->created);
    for (k = 0; k < g->nchain; k++) objref_free(&g->chain[k]);
    free(g->chain);
    free(g->where_file);
    free(g->where_what);
    frames_free(&g->stack);
    frames_free(&g->stack2);
    free(g->error);
    free(g->fail_file);
    frames_free(&g->fail);
    for (k = 0; k < g->nmembers; k++) {
      uvt__member_t *m = &g->members[k];
      objref_free(&m->obj);
      objref_free(&m->waits_on);
      objref_free(&m->held_by);
      free(m->name);
      free(m->wait);
      free(m->where_file);
      free(m->acquire_file);
      frames_free(&m->stack);
    }
    free(g->members);
    free(g);
  }
  free(r->groups);
  for (i = 0; i < r->nsessions; i++) {
    uvt__session_t *s = r->sessions[i];
    free(s->argv);
    free(s->exe);
    free(s->test_name);
    free(s->end_reason);
    objref_free(&s->crash_task);
    snapshots_free(s);
    for (k = 0; k < s->nkinds; k++) free(s->kinds[k].kind);
    free(s->kinds);
    for (k = 0; k < s->nrows; k++) {
      objref_free(&s->rows[k].obj);
      free(s->rows[k].parked_file);
      free(s->rows[k].parked_what);
      free(s->rows[k].steps);
    }
    free(s->rows);
    free(s);
  }
  free(r->sessions);
  uvt__sym_free(r->sym);
  memset(r, 0, sizeof(*r));
}

/*
 * The task timeline of the HTML report: which tasks to draw, and their
 * steps.
 *
 * A session may have a million tasks; a page can show a few hundred rows.
 * Per session we take the objects involved in findings (not ignored ones:
 * their objects were expected to outlive the run) first (at most
 * TL_FINDING_ROWS), then the oldest tasks (by id, which is creation order,
 * so the primary key serves the ORDER BY) up to TL_ROWS rows, and say how
 * many tasks there were.  The steps table has no index by object, so it is
 * read in one pass for all selected sessions and each step is matched to
 * its row through a hash map; a row keeps at most TL_STEPS steps, plus
 * every slow one.
 *
 * Each row also gets where its task was last seen parked: the latest of
 * the snapshots that list it, the multi-task findings (stall, deadlock)
 * that name it as a member, and the findings that say where their task is
 * parked (pending-at-exit, lock-held-across-await).  The steps say when a
 * task ran, not where it stopped, so a task seen by none of these has no
 * parked site.
 */
#include "viewer.h"
#include "uvtask/kinds.h"

#include <stdlib.h>
#include <string.h>

#define TL_ROWS 200         /* tasks drawn per session */
#define TL_FINDING_ROWS 100 /* of which involved in findings, at most */
#define TL_STEPS 4000       /* steps kept per task (slow ones always) */

#define OBJECT_COLUMNS \
  "SELECT id, kind, name, file, line, parent_id, created_ns, ended_ns FROM objects "

typedef struct {
  uvt__report_t *r;
  int input;
  uvt__map_t *rows;     /* session id + object id -> row index + 1 */
  uvt__map_t *sessions; /* session id -> uvt__session_t */
} tl_t;

static int col_int(sqlite3_stmt *st, int i) {
  int64_t v = sqlite3_column_int64(st, i);
  return v > 2147483647 ? 2147483647 : v < -2147483647 ? -2147483647 : (int)v;
}

static void add_row(tl_t *t, uvt__session_t *s, sqlite3_stmt *st, bool in_finding) {
  int64_t key[2] = {s->id, sqlite3_column_int64(st, 0)};
  uvt__tl_row_t *row;
  void **slot = uvt__map_slot(t->rows, (const char *)key, sizeof(key));
  if (*slot != NULL) return;
  s->rows = uvt__xrealloc(s->rows, (size_t)(s->nrows + 1) * sizeof(*s->rows));
  row = &s->rows[s->nrows++];
  memset(row, 0, sizeof(*row));
  row->in_finding = in_finding;
  row->obj.found = true;
  row->obj.id = key[1];
  row->obj.kind = uvt__col_text(st, 1);
  row->obj.name = uvt__col_text(st, 2);
  row->obj.file = uvt__col_text(st, 3);
  row->obj.line = col_int(st, 4);
  row->obj.parent_id = sqlite3_column_int64(st, 5);
  row->created_ns = sqlite3_column_int64(st, 6);
  row->ended_ns = sqlite3_column_type(st, 7) != SQLITE_NULL ? sqlite3_column_int64(st, 7) : 0;
  *slot = (void *)(intptr_t)s->nrows; /* index + 1: the array may move */
}

/* Step through st; SQLITE_ROW while rows come, else SQLITE_OK or the error. */
static int next(sqlite3_stmt *st, int *rc) {
  int r = sqlite3_step(st);
  if (r == SQLITE_ROW) return 1;
  if (r != SQLITE_DONE) *rc = r;
  return 0;
}

static int choose_rows(sqlite3 *db, tl_t *t) {
  sqlite3_stmt *count = NULL, *involved = NULL, *oldest = NULL;
  int rc = SQLITE_OK, i;
  if ((rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM objects WHERE session_id = ?1 "
                                   "AND kind = 'task'", -1, &count, NULL)) != SQLITE_OK ||
      (rc = sqlite3_prepare_v2(db, OBJECT_COLUMNS "WHERE session_id = ?1 AND id IN "
                                   "(SELECT DISTINCT object_id FROM findings WHERE "
                                   "session_id = ?1 AND object_id IS NOT NULL AND "
                                   "ifnull(ignored, 0) = 0 LIMIT ?2)",
                               -1, &involved, NULL)) != SQLITE_OK ||
      (rc = sqlite3_prepare_v2(db, OBJECT_COLUMNS "WHERE session_id = ?1 AND kind = 'task' "
                                   "ORDER BY id LIMIT ?2", -1, &oldest, NULL)) != SQLITE_OK)
    goto out;
  for (i = 0; i < t->r->nsessions && rc == SQLITE_OK; i++) {
    uvt__session_t *s = t->r->sessions[i];
    if (s->input != t->input) continue;
    *uvt__map_slot(t->sessions, (const char *)&s->id, sizeof(s->id)) = s;
    sqlite3_reset(count);
    sqlite3_bind_int64(count, 1, s->id);
    if (next(count, &rc)) s->ntasks = sqlite3_column_int64(count, 0);
    sqlite3_reset(involved);
    sqlite3_bind_int64(involved, 1, s->id);
    sqlite3_bind_int(involved, 2, TL_FINDING_ROWS);
    while (next(involved, &rc)) add_row(t, s, involved, true);
    sqlite3_reset(oldest);
    sqlite3_bind_int64(oldest, 1, s->id);
    sqlite3_bind_int(oldest, 2, TL_ROWS);
    while (s->nrows < TL_ROWS && next(oldest, &rc)) add_row(t, s, oldest, false);
  }
out:
  sqlite3_finalize(count);
  sqlite3_finalize(involved);
  sqlite3_finalize(oldest);
  return rc;
}

static int read_steps(sqlite3 *db, tl_t *t) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "SELECT session_id, object_id, start_ns, dur_ns, slow "
                                  "FROM steps WHERE session_id IN (SELECT id FROM temp.uvt_sel)",
                              -1, &st, NULL);
  while (rc == SQLITE_OK && next(st, &rc)) {
    int64_t key[2] = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
    intptr_t at = (intptr_t)uvt__map_get(t->rows, (const char *)key, sizeof(key));
    uvt__session_t *s = uvt__map_get(t->sessions, (const char *)&key[0], sizeof(key[0]));
    bool slow = sqlite3_column_int64(st, 4) != 0;
    uvt__tl_row_t *row;
    uvt__step_t *step;
    if (at == 0 || s == NULL) continue;
    row = &s->rows[at - 1];
    /* A step recorded before its object's first flush may lack its start. */
    if (sqlite3_column_int64(st, 2) <= 0 || (row->nsteps >= TL_STEPS && !slow)) continue;
    if (row->nsteps == row->capsteps) {
      row->capsteps = row->capsteps ? row->capsteps * 2 : 8;
      row->steps = uvt__xrealloc(row->steps, (size_t)row->capsteps * sizeof(*row->steps));
    }
    step = &row->steps[row->nsteps++];
    step->start_ns = sqlite3_column_int64(st, 2);
    step->dur_ns = sqlite3_column_int64(st, 3);
    step->slow = slow;
  }
  sqlite3_finalize(st);
  return rc;
}

/* Every observation of a selected session's task parked somewhere, oldest
 * first, so that the last one read for a row is the latest. */
static const char parked_sql[] =
    "SELECT session_id, task_id, file, line, what, ts FROM ("
    " SELECT t.session_id AS session_id, t.task_id AS task_id, t.where_file AS file,"
    "  t.where_line AS line, t.wait_what AS what, s.ts_ns AS ts"
    " FROM snapshot_tasks t JOIN snapshots s ON s.session_id = t.session_id"
    "  AND s.id = t.snapshot_id"
    " WHERE t.session_id IN (SELECT id FROM temp.uvt_sel) AND t.where_file IS NOT NULL"
    " UNION ALL"
    " SELECT f.session_id, m.object_id, m.where_file, m.where_line, m.wait, f.ts_ns"
    " FROM finding_members m JOIN findings f ON f.id = m.finding_id"
    " WHERE f.session_id IN (SELECT id FROM temp.uvt_sel) AND m.where_file IS NOT NULL"
    " UNION ALL"
    " SELECT f.session_id, f.object_id, f.where_file, f.where_line, f.where_what, f.ts_ns"
    " FROM findings f WHERE f.session_id IN (SELECT id FROM temp.uvt_sel)"
    "  AND f.kind IN (?1, ?2) AND f.where_file IS NOT NULL"
    ") ORDER BY ts";

static int read_parked(sqlite3 *db, tl_t *t) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, parked_sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, uvt_finding_kind_name(UVT_FINDING_PENDING_AT_EXIT), -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 2, uvt_finding_kind_name(UVT_FINDING_LOCK_HELD_ACROSS_AWAIT), -1,
                      SQLITE_STATIC);
  }
  while (rc == SQLITE_OK && next(st, &rc)) {
    int64_t key[2] = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
    intptr_t at = (intptr_t)uvt__map_get(t->rows, (const char *)key, sizeof(key));
    uvt__session_t *s = uvt__map_get(t->sessions, (const char *)&key[0], sizeof(key[0]));
    uvt__tl_row_t *row;
    if (at == 0 || s == NULL) continue;
    row = &s->rows[at - 1];
    free(row->parked_file);
    free(row->parked_what);
    row->parked_file = uvt__col_text(st, 2);
    row->parked_line = col_int(st, 3);
    row->parked_what = uvt__col_text(st, 4);
    row->parked_ns = sqlite3_column_int64(st, 5);
  }
  sqlite3_finalize(st);
  return rc;
}

static int by_created(const void *a, const void *b) {
  const uvt__tl_row_t *x = a, *y = b;
  if (x->created_ns != y->created_ns) return x->created_ns < y->created_ns ? -1 : 1;
  return x->obj.id < y->obj.id ? -1 : x->obj.id > y->obj.id;
}

int uvt__timeline_load(sqlite3 *db, uvt__report_t *r, int input) {
  tl_t t = {r, input, uvt__map_new(), uvt__map_new()};
  int rc = choose_rows(db, &t), i;
  if (rc == SQLITE_OK) rc = read_steps(db, &t);
  if (rc == SQLITE_OK) rc = read_parked(db, &t);
  for (i = 0; i < r->nsessions; i++) {
    uvt__session_t *s = r->sessions[i];
    if (s->input == input && s->nrows > 1)
      qsort(s->rows, (size_t)s->nrows, sizeof(*s->rows), by_created);
  }
  uvt__map_free(t.rows);
  uvt__map_free(t.sessions);
  return rc;
}

/*
 * The JSON report (`--format json`): every value built and escaped by
 * jansson, never by hand.  The schema is documented, field by field, in viewer/JSON.md; it
 * is stable: fields may be added, none renamed or removed, within
 * "version": 1.
 */
#include "viewer.h"
#include "uvtask/kinds.h"
#include "uvtask.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define JSON_REPORT_VERSION 1

/* Report strings are valid UTF-8 already; a NULL is JSON null. */
static json_t *jstr(const char *s) {
  json_t *j;
  if (s == NULL) return json_null();
  j = json_string(s);
  if (j == NULL) { /* cannot happen after uvt__utf8_clean, but never crash */
    char *c = uvt__utf8_clean(s, strlen(s));
    j = json_string(c);
    free(c);
  }
  return j != NULL ? j : json_null();
}

static json_t *jint_or_null(bool has, int64_t v) {
  return has ? json_integer(v) : json_null();
}

static void set(json_t *o, const char *k, json_t *v) { json_object_set_new(o, k, v); }

/* Frames are shared by every stack through the same PC, and so are their
 * JSON objects (jansson counts references): a report with thousands of
 * groups does not build the same frame thousands of times. */
static uvt__map_t *frame_cache;
static json_t **cached;
static size_t ncached, cap_cached;

static json_t *frame_json(const uvt__frame_t *f) {
  json_t **slot = (json_t **)uvt__map_slot(frame_cache, (const char *)&f, sizeof(f));
  json_t *o;
  bool known = f->trusted && f->file != NULL;
  if (*slot != NULL) return json_incref(*slot);
  o = json_object();
  set(o, "function", jstr(f->trusted ? f->function : NULL));
  set(o, "file", jstr(known ? f->file : NULL));
  set(o, "line", jint_or_null(known, f->line));
  set(o, "inlined", json_boolean(f->inlined));
  set(o, "module", jstr(f->module));
  set(o, "offset", jint_or_null(f->module != NULL, (int64_t)f->offset));
  if (f->module == NULL) set(o, "address", json_integer((json_int_t)f->pc));
  set(o, "symbolized", json_boolean(f->trusted && f->module != NULL));
  *slot = o;
  if (ncached == cap_cached) {
    cap_cached = cap_cached ? 2 * cap_cached : 256;
    cached = uvt__xrealloc(cached, cap_cached * sizeof(*cached));
  }
  cached[ncached++] = o;
  return json_incref(o);
}

static json_t *frames_json(const uvt__frames_t *fr) {
  json_t *a = json_array();
  int i;
  for (i = 0; i < fr->n; i++) json_array_append_new(a, frame_json(fr->v[i]));
  return a;
}

static void frame_cache_free(void) {
  /* Each cached object holds one reference of the cache's own. */
  while (ncached > 0) json_decref(cached[--ncached]);
  free(cached);
  cached = NULL;
  cap_cached = 0;
  uvt__map_free(frame_cache);
  frame_cache = NULL;
}

static json_t *objref_json(const uvt__objref_t *r) {
  json_t *o = json_object();
  set(o, "id", json_integer(r->id));
  set(o, "recorded", json_boolean(r->found));
  set(o, "kind", jstr(r->kind));
  set(o, "name", jstr(r->name));
  set(o, "file", jstr(r->file));
  set(o, "line", jint_or_null(r->file != NULL, r->line));
  set(o, "function", jstr(r->func));
  return o;
}

static json_t *where_json(const char *what, const char *file, int line) {
  json_t *o;
  if (what == NULL && file == NULL) return json_null();
  o = json_object();
  set(o, "what", jstr(what));
  set(o, "file", jstr(file));
  set(o, "line", jint_or_null(file != NULL, line));
  return o;
}

static json_t *site_json(const char *file, int line, const char *func) {
  json_t *o;
  if (file == NULL) return json_null();
  o = json_object();
  set(o, "file", jstr(file));
  set(o, "line", json_integer(line));
  set(o, "function", jstr(func));
  return o;
}

static json_t *snaptask_json(const uvt__snaptask_t *t) {
  json_t *o = json_object(), *aw = json_array();
  const char *p = t->awaiters;
  set(o, "id", json_integer(t->id));
  set(o, "name", jstr(t->name));
  set(o, "state", jstr(t->state));
  set(o, "wait", jstr(t->wait));
  set(o, "wait_what", jstr(t->what));
  set(o, "wait_on_id", jint_or_null(t->wait_on_id > 0, t->wait_on_id));
  set(o, "parked_ns", jint_or_null(t->parked_ns > 0, t->parked_ns));
  set(o, "parked_at", site_json(t->where_file, t->where_line, t->where_func));
  set(o, "created_at", site_json(t->file, t->line, t->func));
  set(o, "parent_id", jint_or_null(t->parent_id > 0, t->parent_id));
  set(o, "stack", frames_json(&t->stack));
  while (p != NULL && *p != '\0') {
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p) break;
    json_array_append_new(aw, json_integer(v));
    p = end;
  }
  set(o, "awaiters", aw);
  return o;
}

static json_t *snapshots_json(const uvt__session_t *s) {
  json_t *a = json_array();
  int i, k;
  for (i = 0; i < s->nsnaps; i++) {
    const uvt__snapshot_t *sn = &s->snaps[i];
    json_t *o = json_object(), *tasks = json_array();
    set(o, "id", json_integer(sn->id));
    set(o, "reason", jstr(sn->reason));
    set(o, "ts_ns", json_integer(sn->ts_ns));
    for (k = 0; k < sn->ntasks; k++) json_array_append_new(tasks, snaptask_json(&sn->tasks[k]));
    set(o, "tasks", tasks);
    json_array_append_new(a, o);
  }
  return a;
}

static json_t *session_json(const uvt__session_t *s) {
  json_t *o = json_object(), *end = json_object(), *kinds = json_object();
  char buf[32];
  int i;
  set(o, "input", json_integer(s->input));
  set(o, "id", json_integer(s->id));
  set(o, "pid", json_integer(s->pid));
  set(o, "ppid", json_integer(s->ppid));
  set(o, "argv", jstr(s->argv));
  set(o, "exe", jstr(s->exe));
  set(o, "test_name", jstr(s->test_name));
  set(o, "start_ns", json_integer(s->start_ns));
  set(o, "end_ns", jint_or_null(s->end_ns > 0, s->end_ns));
  set(o, "duration_ns", jint_or_null(s->end_ns > 0, uvt__sub_sat(s->end_ns, s->start_ns)));
  set(o, "state", json_string(s->state == UVT__SESSION_RUNNING ? "running"
                               : s->state == UVT__SESSION_KILLED ? UVT__KILLED_WORD
                                                                 : "ended"));
  set(end, "reason", jstr(s->end_reason));
  set(end, "exit_status", jint_or_null(s->has_exit, s->exit_status));
  set(end, "signal", jint_or_null(s->has_signal, s->signal));
  set(end, "signal_name", s->has_signal ? jstr(uvt__signal_name(s->signal, buf)) : json_null());
  set(end, "task", s->crash_task.id > 0 ? objref_json(&s->crash_task) : json_null());
  set(o, "end", end);
  set(o, "objects", json_integer(s->objects));
  set(o, "peak_tasks", json_integer(s->peak_tasks));
  set(o, "shed", json_integer(s->shed));
  set(o, "lost", json_integer(s->lost));
  set(o, "slow_ms", json_integer(s->slow_ms));
  set(o, "depth", json_integer(s->depth));
  set(o, "findings", json_integer(s->nfindings));
  for (i = 0; i < s->nkinds; i++)
    if (s->kinds[i].kind != NULL) set(kinds, s->kinds[i].kind, json_integer(s->kinds[i].n));
  set(o, "findings_by_kind", kinds);
  set(o, "findings_ignored", json_integer(s->nignored));
  set(o, "recorded_nothing", json_boolean(s->empty));
  set(o, "snapshots", snapshots_json(s));
  return o;
}

static json_t *ref_or_null(const uvt__objref_t *r) {
  return r->id > 0 ? objref_json(r) : json_null();
}

static json_t *members_json(const uvt__group_t *g) {
  json_t *a = json_array();
  int i;
  for (i = 0; i < g->nmembers; i++) {
    const uvt__member_t *m = &g->members[i];
    json_t *o = json_object();
    set(o, "ord", json_integer(m->ord));
    set(o, "object", ref_or_null(&m->obj));
    set(o, "name", jstr(m->name));
    set(o, "wait", jstr(m->wait));
    set(o, "waits_on", ref_or_null(&m->waits_on));
    set(o, "held_by", ref_or_null(&m->held_by));
    set(o, "acquired_at", where_json(NULL, m->acquire_file, m->acquire_line));
    set(o, "where", where_json(NULL, m->where_file, m->where_line));
    set(o, "stack", frames_json(&m->stack));
    json_array_append_new(a, o);
  }
  return a;
}

static json_t *group_json(const uvt__group_t *g) {
  json_t *o = json_object(), *parents = json_array();
  /* Dispatch on the kinds table, not on strings; an unknown kind
   * from a newer or crafted file is UVT_FINDING_NONE: shown generically. */
  uvt_finding_kind_t kid = uvt_finding_kind_parse(g->kind);
  int i;
  set(o, "kind", jstr(g->kind));
  set(o, "file", jstr(g->file));
  set(o, "line", jint_or_null(g->file != NULL, g->line));
  set(o, "function", jstr(g->func));
  set(o, "message", jstr(g->message));
  set(o, "count", json_integer(g->count));
  set(o, "ignored", json_boolean(g->ignored));
  set(o, "sessions", json_integer(g->nsessions));
  if (g->session != NULL) {
    json_t *ex = json_object();
    set(ex, "input", json_integer(g->session->input));
    set(ex, "session", json_integer(g->session->id));
    set(ex, "pid", json_integer(g->session->pid));
    set(ex, "finding_id", json_integer(g->finding_id));
    set(ex, "ts_ns", json_integer(g->ts_ns));
    set(o, "example", ex);
  } else {
    set(o, "example", json_null());
  }
  set(o, "object", g->object.found ? objref_json(&g->object) : json_null());
  set(o, "created_at", frames_json(&g->created));
  for (i = 0; i < g->nchain; i++) json_array_append_new(parents, objref_json(&g->chain[i]));
  set(o, "parents", parents);
  set(o, "parents_truncated", json_boolean(g->chain_cut));
  set(o, "where", where_json(g->where_what, g->where_file, g->where_line));
  set(o, "stack", frames_json(&g->stack));
  set(o, "stack2", frames_json(&g->stack2));
  set(o, "members", members_json(g));
  set(o, "members_total", json_integer(g->members_total));
  if (g->ndurs > 0) {
    json_t *d = json_object();
    set(d, "count", json_integer((json_int_t)g->ndurs));
    set(d, "max_ns", json_integer(g->max_ns));
    set(d, "p50_ns", json_integer(g->p50_ns));
    set(o, "durations", d);
  } else {
    set(o, "durations", json_null());
  }
  if (kid == UVT_FINDING_UNRETRIEVED_ERROR || g->error != NULL) {
    json_t *e = json_object();
    set(e, "status", jint_or_null(g->has_status, g->status));
    set(e, "status_name", g->has_status ? jstr(uvt_strerror(g->status)) : json_null());
    set(e, "message", jstr(g->error));
    set(e, "file", jstr(g->fail_file));
    set(e, "line", jint_or_null(g->fail_file != NULL, g->fail_line));
    set(e, "stack", frames_json(g->fail.n > 0 ? &g->fail : &g->stack));
    set(o, "error", e);
  } else {
    set(o, "error", json_null());
  }
  return o;
}

/* The report is written as it is built, one finding group at a time: a
 * whole tree for 100,000 groups held half a gigabyte of jansson objects
 * before the first byte went out.  Every value still goes through
 * jansson; only the fixed punctuation and ASCII keys of the outer object
 * are written here.  Output is gathered into 64 KiB writes: jansson hands
 * its dump over token by token. */
typedef struct {
  FILE *out;
  size_t n;
  bool failed;
  char buf[1 << 16];
} sink_t;

static void sink_flush(sink_t *k) {
  if (k->n > 0 && fwrite(k->buf, 1, k->n, k->out) != k->n) k->failed = true;
  k->n = 0;
}

static int sink_put(const char *p, size_t size, void *data) {
  sink_t *k = data;
  if (size > sizeof(k->buf) - k->n) {
    sink_flush(k);
    if (size > sizeof(k->buf)) {
      if (fwrite(p, 1, size, k->out) != size) k->failed = true;
      return k->failed ? -1 : 0;
    }
  }
  memcpy(k->buf + k->n, p, size);
  k->n += size;
  return 0;
}

static void sink_raw(sink_t *k, const char *s) { sink_put(s, strlen(s), k); }

/* Write `v` and drop the caller's reference to it. */
static void sink_value(sink_t *k, json_t *v) {
  if (v == NULL ||
      json_dump_callback(v, sink_put, k,
                         JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) != 0)
    k->failed = true;
  json_decref(v);
}

int uvt__json_write(FILE *out, const uvt__report_t *r) {
  sink_t *k = uvt__xmalloc(sizeof(*k));
  json_t *inputs = json_array(), *sessions = json_array(), *notes = json_array();
  const char *const *nv;
  int i, nn, rc;
  k->out = out;
  k->n = 0;
  k->failed = false;
  frame_cache = uvt__map_new();
  for (i = 0; i < r->ninputs; i++) {
    char *c = uvt__utf8_clean(r->inputs[i], strlen(r->inputs[i]));
    json_array_append_new(inputs, jstr(c));
    free(c);
  }
  for (i = 0; i < r->nsessions; i++)
    json_array_append_new(sessions, session_json(r->sessions[i]));
  /* Compact: a report with many groups runs to hundreds of megabytes
   * indented; `jq .` indents it for a person. */
  sink_raw(k, "{\"format\":");
  sink_value(k, json_string("uvtask-report"));
  sink_raw(k, ",\"version\":");
  sink_value(k, json_integer(JSON_REPORT_VERSION));
  sink_raw(k, ",\"inputs\":");
  sink_value(k, inputs);
  sink_raw(k, ",\"sessions\":");
  sink_value(k, sessions);
  sink_raw(k, ",\"findings\":[");
  for (i = 0; i < r->ngroups && !k->failed; i++) {
    if (i > 0) sink_raw(k, ",");
    sink_value(k, group_json(r->groups[i]));
  }
  sink_raw(k, "],\"total\":");
  sink_value(k, json_integer(r->total));
  sink_raw(k, ",\"ignored\":");
  sink_value(k, json_integer(r->nignored));
  nv = uvt__sym_notes(r->sym, &nn);
  for (i = 0; i < nn; i++) json_array_append_new(notes, jstr(nv[i]));
  sink_raw(k, ",\"notes\":");
  sink_value(k, notes);
  sink_raw(k, "}\n");
  sink_flush(k);
  rc = k->failed ? -1 : 0;
  free(k);
  frame_cache_free();
  return rc;
}

/*
 * The snapshots of a session in the HTML report: each one (`uvtask ps`,
 * SIGQUIT, a stall or deadlock finding) is a <details class="snapshot"
 * data-reason=".." data-tasks="N">, its tasks listed as `uvtask ps FILE`
 * lists them: alike tasks (same creation site, state, parked site, await
 * and parked stack) are one <div class="sgroup" data-tasks="N"> with
 * their ids and names, what they wait on and for how long, where they
 * were created and are parked, and the parked stack, symbolised; then the
 * await tree.  The last snapshot is open, the older ones folded.
 *
 * Ids are written as uvt_dump and `uvtask ps` write them ("#1:4"); every
 * string from the database goes through uvt__html_esc.
 */
#include "viewer.h"
#include "uvtask/kinds.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDS_SHOWN 8 /* ids listed per group, then "and N more" */

/* Tasks of one snapshot, grouped.  Members of a group are chained
 * through `next` in task order (the loader reads them by id). */
typedef struct {
  int *first, *last, *count, *next; /* per group; next per task */
  int ngroups;
} groups_t;

/* A key part: NULL and "" must differ, and no part may run into the next. */
static void key_str(char **k, size_t *n, size_t *cap, const char *s) {
  size_t len = s != NULL ? strlen(s) : 0;
  if (*n + len + 2 > *cap) {
    *cap = (*n + len + 2) * 2;
    *k = uvt__xrealloc(*k, *cap);
  }
  (*k)[(*n)++] = s != NULL ? 'S' : 'N';
  if (len > 0) memcpy(*k + *n, s, len);
  *n += len;
  (*k)[(*n)++] = '\0';
}

static void key_int(char **k, size_t *n, size_t *cap, int64_t v) {
  char b[32];
  snprintf(b, sizeof(b), "%lld", (long long)v);
  key_str(k, n, cap, b);
}

static void group_tasks(const uvt__snapshot_t *sn, groups_t *g) {
  uvt__map_t *at = uvt__map_new();
  char *k = NULL;
  size_t cap = 0;
  int i, n = sn->ntasks > 0 ? sn->ntasks : 1;
  g->first = uvt__xmalloc((size_t)n * sizeof(int));
  g->last = uvt__xmalloc((size_t)n * sizeof(int));
  g->count = uvt__xmalloc((size_t)n * sizeof(int));
  g->next = uvt__xmalloc((size_t)n * sizeof(int));
  g->ngroups = 0;
  for (i = 0; i < sn->ntasks; i++) {
    const uvt__snaptask_t *t = &sn->tasks[i];
    size_t len = 0;
    void **slot;
    intptr_t gi;
    key_str(&k, &len, &cap, t->file);
    key_int(&k, &len, &cap, t->line);
    key_str(&k, &len, &cap, t->state);
    key_str(&k, &len, &cap, t->where_file);
    key_int(&k, &len, &cap, t->where_line);
    key_str(&k, &len, &cap, t->what);
    key_int(&k, &len, &cap, t->stack_id);
    slot = uvt__map_slot(at, k, len);
    g->next[i] = -1;
    if (*slot == NULL) {
      gi = g->ngroups++;
      g->first[gi] = g->last[gi] = i;
      g->count[gi] = 1;
      *slot = (void *)(gi + 1);
    } else {
      gi = (intptr_t)*slot - 1;
      g->next[g->last[gi]] = i;
      g->last[gi] = i;
      g->count[gi]++;
    }
  }
  free(k);
  uvt__map_free(at);
}

static void groups_free(groups_t *g) {
  free(g->first);
  free(g->last);
  free(g->count);
  free(g->next);
}

static void put_id(FILE *o, int64_t id) {
  char b[UVT_ID_FORMAT_MAX];
  fputs("<code>", o);
  fputs(uvt_id_format((unsigned long long)id, b), o);
  fputs("</code>", o);
}

static void put_task(FILE *o, const uvt__snaptask_t *t) {
  put_id(o, t->id);
  fputs(" '", o);
  uvt__html_esc(o, t->name != NULL ? t->name : "?");
  fputc('\'', o);
}

/* "<div>label f.c:12 in fn", the <div> left open for the caller to add
 * to and close. */
static void put_site(FILE *o, const char *label, const char *file, int line, const char *func) {
  fprintf(o, "<div class=\"facts\">%s <code>", label);
  uvt__html_esc_loc(o, file != NULL ? file : "?", line);
  fputs("</code>", o);
  if (func != NULL) {
    fputs(" in <code>", o);
    uvt__html_esc(o, func);
    fputs("</code>", o);
  }
}

/* The task named `id` in this snapshot, or NULL. */
static const uvt__snaptask_t *task_of(const uvt__snapshot_t *sn, uvt__map_t *by_id, int64_t id) {
  intptr_t i = (intptr_t)uvt__map_get(by_id, (const char *)&id, sizeof(id));
  return i > 0 ? &sn->tasks[i - 1] : NULL;
}

static void group_html(FILE *o, const uvt__snapshot_t *sn, uvt__map_t *by_id,
                       const groups_t *g, int gi) {
  const uvt__snaptask_t *t = &sn->tasks[g->first[gi]], *on;
  int64_t longest = 0;
  int i, shown = 0;
  char dur[32];
  for (i = g->first[gi]; i >= 0; i = g->next[i])
    if (sn->tasks[i].parked_ns > longest) longest = sn->tasks[i].parked_ns;
  fprintf(o, "<div class=\"sgroup\" data-tasks=\"%d\"><div>", g->count[gi]);
  if (g->count[gi] == 1) {
    fputs("task ", o);
    put_task(o, t);
    fputc(' ', o);
  } else {
    fprintf(o, "%d tasks ", g->count[gi]);
  }
  uvt__html_esc(o, t->state != NULL ? t->state : "?");
  if (t->state != NULL && strcmp(t->state, "parked") == 0) {
    fputs(" [", o);
    uvt__html_esc(o, t->what != NULL ? t->what : "?");
    if (longest > 0) fprintf(o, ", %s", uvt__fmt_dur(longest, dur));
    fputc(']', o);
  }
  if (g->count[gi] > 1) {
    fputc(':', o);
    for (i = g->first[gi]; i >= 0; i = g->next[i]) {
      if (shown == IDS_SHOWN) {
        fprintf(o, " and %d more", g->count[gi] - shown);
        break;
      }
      fputs(shown++ == 0 ? " " : ", ", o);
      put_task(o, &sn->tasks[i]);
    }
  }
  fputs("</div>\n", o);
  if (t->wait != NULL) {
    fputs("<div class=\"facts\">waits on <code>", o);
    uvt__html_esc(o, t->wait);
    fputs("</code>", o);
    if (t->wait_on_id > 0) {
      fputc(' ', o);
      put_id(o, t->wait_on_id);
      on = task_of(sn, by_id, t->wait_on_id);
      if (on != NULL && on->name != NULL) {
        fputs(" '", o);
        uvt__html_esc(o, on->name);
        fputc('\'', o);
      }
    }
    fputs("</div>\n", o);
  }
  if (t->where_file != NULL) {
    put_site(o, "parked at", t->where_file, t->where_line, t->where_func);
    fputs("</div>\n", o);
  }
  put_site(o, "created at", t->file, t->line, t->func);
  if (t->parent_id > 0) {
    fputs(", by task ", o);
    put_id(o, t->parent_id);
  }
  fputs("</div>\n", o);
  uvt__html_stack(o, "parked stack:", &t->stack, false);
  fputs("</div>\n", o);
}

/* ---- the await tree -------------------------------------------------------------- */

#define TREE_DEPTH_MAX 32

/* Who awaits whom, from each task's `awaiters` (the ids of the tasks
 * awaiting it): kids[first[i] .. first[i + 1]) are the tasks task i
 * awaits, in task order. */
typedef struct {
  int *first, *kids;
  bool *awaited_by_some, *awaits_some;
} tree_t;

static void tree_build(const uvt__snapshot_t *sn, uvt__map_t *by_id, tree_t *tr) {
  int n = sn->ntasks, i, nedges = 0, pass, *fill;
  int *count = uvt__xcalloc((size_t)n + 1, sizeof(int));
  tr->first = uvt__xcalloc((size_t)n + 1, sizeof(int));
  tr->awaited_by_some = uvt__xcalloc((size_t)n + 1, sizeof(bool));
  tr->awaits_some = uvt__xcalloc((size_t)n + 1, sizeof(bool));
  tr->kids = NULL;
  fill = uvt__xcalloc((size_t)n + 1, sizeof(int));
  /* Two passes over the edges: count per awaiter, then place. */
  for (pass = 0; pass < 2; pass++) {
    for (i = 0; i < n; i++) {
      const char *p = sn->tasks[i].awaiters;
      while (p != NULL && *p != '\0') {
        char *end;
        int64_t id = strtoll(p, &end, 10);
        intptr_t a;
        if (end == p) break;
        p = end;
        a = (intptr_t)uvt__map_get(by_id, (const char *)&id, sizeof(int64_t));
        if (a <= 0) continue; /* an awaiter outside the snapshot */
        if (pass == 0) {
          count[a - 1]++;
          nedges++;
          tr->awaited_by_some[i] = true;
          tr->awaits_some[a - 1] = true;
        } else {
          tr->kids[tr->first[a - 1] + fill[a - 1]++] = i;
        }
      }
    }
    if (pass == 0) {
      for (i = 0; i < n; i++) tr->first[i + 1] = tr->first[i] + count[i];
      tr->kids = uvt__xmalloc(((size_t)nedges + 1) * sizeof(int));
    }
  }
  free(count);
  free(fill);
}

static void tree_free(tree_t *tr) {
  free(tr->first);
  free(tr->kids);
  free(tr->awaited_by_some);
  free(tr->awaits_some);
}

static void tree_node(FILE *o, const uvt__snapshot_t *sn, const tree_t *tr, int i, int depth,
                      bool *shown) {
  const uvt__snaptask_t *t = &sn->tasks[i];
  int k;
  fputs("<li>", o);
  put_task(o, t);
  if (shown[i]) {
    fputs(" <span class=\"muted\">(shown above)</span></li>\n", o);
    return;
  }
  shown[i] = true;
  if (t->where_file != NULL) {
    fputs(" <code>", o);
    uvt__html_esc(o, t->what != NULL ? t->what : "?");
    fputs("</code> at <code>", o);
    uvt__html_esc_loc(o, t->where_file, t->where_line);
    fputs("</code>", o);
  }
  if (tr->first[i + 1] > tr->first[i] && depth < TREE_DEPTH_MAX) {
    fputs("\n<ul>", o);
    for (k = tr->first[i]; k < tr->first[i + 1]; k++)
      tree_node(o, sn, tr, tr->kids[k], depth + 1, shown);
    fputs("</ul>", o);
  }
  fputs("</li>\n", o);
}

/* As `uvtask ps` prints it: each task above the tasks it awaits, from the
 * roots (tasks that await one and are awaited by none). */
static void tree_html(FILE *o, const uvt__snapshot_t *sn, uvt__map_t *by_id) {
  tree_t tr;
  bool *shown = uvt__xcalloc((size_t)sn->ntasks + 1, sizeof(bool)), any = false;
  int i;
  tree_build(sn, by_id, &tr);
  /* The roots first; then, for tasks awaiting each other in a cycle (no
   * root), from the first of them. */
  for (i = 0; i < 2 * sn->ntasks; i++) {
    int t = i % sn->ntasks;
    if (!tr.awaits_some[t] || shown[t] || (i < sn->ntasks && tr.awaited_by_some[t])) continue;
    if (!any)
      fputs("<div class=\"await\">await tree (each task above the tasks it awaits):"
            "<ul class=\"await-tree\">\n", o);
    any = true;
    tree_node(o, sn, &tr, t, 0, shown);
  }
  if (any) fputs("</ul></div>\n", o);
  else if (sn->ntasks > 0) fputs("<div class=\"await muted\">no task awaits another</div>\n", o);
  tree_free(&tr);
  free(shown);
}

/* "uvtask ps" for the reason word the recorder wrote; NULL if unknown. */
static const char *reason_words(const char *reason) {
  static const char *const words[][2] = {
      {"ps", "asked for by uvtask ps"},
      {"sigquit", "taken at SIGQUIT"},
      {"stall", "taken with a stall finding"},
      {"deadlock", "taken with a deadlock finding"},
      {"request", "asked for by a subscriber"},
  };
  size_t i;
  for (i = 0; reason != NULL && i < sizeof(words) / sizeof(words[0]); i++)
    if (strcmp(reason, words[i][0]) == 0) return words[i][1];
  return NULL;
}

static void snapshot_html(FILE *o, const uvt__session_t *s, const uvt__snapshot_t *sn,
                          bool open) {
  uvt__map_t *by_id = uvt__map_new();
  groups_t g;
  char when[64], b1[32];
  time_t sec = (time_t)(sn->ts_ns / 1000000000);
  struct tm tm;
  const char *words = reason_words(sn->reason);
  int i;
  for (i = 0; i < sn->ntasks; i++)
    *uvt__map_slot(by_id, (const char *)&sn->tasks[i].id, sizeof(sn->tasks[i].id)) =
        (void *)(intptr_t)(i + 1);
  group_tasks(sn, &g);
  fprintf(o, "<details class=\"snapshot\"%s data-reason=\"", open ? " open" : "");
  uvt__html_esc(o, sn->reason);
  fprintf(o, "\" data-tasks=\"%d\"><summary>snapshot %lld <code>", sn->ntasks,
          (long long)sn->id);
  uvt__html_esc(o, sn->reason != NULL ? sn->reason : "?");
  fputs("</code>", o);
  if (words != NULL) fprintf(o, " (%s)", words);
  if (localtime_r(&sec, &tm) != NULL && strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) > 0)
    fprintf(o, " at %s", when);
  if (sn->ts_ns >= s->start_ns && s->start_ns > 0)
    fprintf(o, ", %s into the session", uvt__fmt_dur(uvt__sub_sat(sn->ts_ns, s->start_ns), b1));
  fprintf(o, ": %d task%s", sn->ntasks, sn->ntasks == 1 ? "" : "s");
  if (g.ngroups != sn->ntasks)
    fprintf(o, " in %d group%s of alike tasks", g.ngroups, g.ngroups == 1 ? "" : "s");
  fputs("</summary>\n", o);
  if (sn->ntasks == 0) fputs("<div class=\"sgroup muted\">no live task</div>\n", o);
  for (i = 0; i < g.ngroups; i++) group_html(o, sn, by_id, &g, i);
  tree_html(o, sn, by_id);
  fputs("</details>\n", o);
  groups_free(&g);
  uvt__map_free(by_id);
}

void uvt__html_snapshots(FILE *o, const uvt__session_t *s) {
  int i;
  if (s->nsnaps == 0) return;
  fprintf(o, "<div class=\"snapshots\"><div>%d snapshot%s of the tasks%s:</div>\n", s->nsnaps,
          s->nsnaps == 1 ? "" : "s", s->nsnaps > 1 ? ", oldest first" : "");
  for (i = 0; i < s->nsnaps; i++) snapshot_html(o, s, &s->snaps[i], i == s->nsnaps - 1);
  fputs("</div>\n", o);
}

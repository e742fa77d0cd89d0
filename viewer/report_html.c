/*
 * The HTML report (`--format html -o report.html`): one self-contained
 * page to attach to a bug report.  No script, no network: the styles are
 * inline, stacks expand with <details>, and the timeline of each session
 * is an inline SVG (one row per task: its life as a thin bar, its steps
 * as blocks, slow steps in red with their duration as a tooltip, a green
 * mark where the task was last seen parked, with the site as a tooltip),
 * with a legend of those marks under it; then the session's snapshots of
 * its tasks (report_html_snap.c).  Sessions with findings come first.  A
 * Content-Security-Policy forbids scripts and remote loads outright, as a
 * second line behind the escaping: every string that came from the
 * database goes through uvt__html_esc(), in text and in attributes alike.
 *
 * The DOM for machines: each group of findings is a
 * <section class="finding" data-kind=".." data-count="N">, so the number
 * of findings on the page is the sum of data-count, as "total" in JSON.
 * A group of ignored findings (objects on the uvt_leaks_ignore list) is a
 * <section class="finding-ignored" data-kind=".." data-ignored-count="N">,
 * labelled "ignored": shown, but outside that sum, as outside "total".
 */
#include "viewer.h"
#include "uvtask/kinds.h"
#include "uvtask.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SVG_W 1100
#define LABEL_W 240
#define ROW_H 16

static const char style[] =
    "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}"
    "h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}"
    "code,.diag,table.stack{font-family:ui-monospace,monospace;font-size:13px}"
    ".session{margin:1em 0;padding:.5em 1em;background:#f7f7f7;border-radius:4px}"
    ".finding{margin:1em 0;padding:.5em 1em;border-left:4px solid #b0b;background:#fcf8fc}"
    ".loc{font-weight:bold}.warn{color:#a0a;font-weight:bold}.count{font-weight:bold}"
    ".kind{color:#666}.muted{color:#777}"
    "table.stack{border-collapse:collapse;margin:.2em 0 .2em 1.5em}"
    "table.stack td{padding:0 1em 0 0;vertical-align:top}"
    "summary{cursor:pointer}.facts{margin:.2em 0 .2em 1.5em}"
    "svg text{font:11px ui-monospace,monospace}"
    ".life{fill:#cfd8e3}.open{fill:#f3c98b}.step{fill:#3b6ea8}.slow{fill:#d62728}"
    ".frow{fill:#b00;font-weight:bold}.axis{stroke:#999}.park{fill:#2a9d3a}"
    ".legend{margin:.3em 0;color:#444}.legend .key{white-space:nowrap}"
    ".legend svg{vertical-align:middle;margin:0 .3em 0 1em}"
    ".finding-ignored{margin:1em 0;padding:.5em 1em;border-left:4px solid #999;"
    "background:#f6f6f6;color:#555}"
    ".ignored{background:#999;color:#fff;border-radius:3px;padding:0 .4em;font-size:12px}"
    ".snapshot{margin:.5em 0}.sgroup,.await{margin:.4em 0 .4em 1.5em}";

static void fact(FILE *o, const char *label, const char *what, const char *file, int line) {
  fprintf(o, "<div class=\"facts\">%s ", label);
  if (what != NULL) {
    fputs("<code>", o);
    uvt__html_esc(o, what);
    fputs("</code>", o);
  }
  if (file != NULL) {
    fputs(what != NULL ? " at <code>" : "<code>", o);
    uvt__html_esc_loc(o, file, line);
    fputs("</code>", o);
  }
  fputs("</div>\n", o);
}

static void chain(FILE *o, const uvt__group_t *g) {
  int i;
  for (i = 0; i < g->nchain; i++) {
    const uvt__objref_t *p = &g->chain[i];
    char *w = uvt__obj_words(p);
    fputs("<div class=\"facts muted\">", o);
    uvt__html_esc(o, w);
    free(w);
    if (!p->found) {
      fputs(": not in the recording: it ended before the recorder kept a row for "
            "it</div>\n", o);
      break;
    }
    fputs(p->kind != NULL && strcmp(p->kind, "task") == 0 ? " spawned at <code>"
                                                          : " created at <code>", o);
    uvt__html_esc_loc(o, p->file, p->line);
    fputs("</code>", o);
    if (p->parent_id > 0 && i + 1 < g->nchain) {
      char *pw = uvt__obj_words(&g->chain[i + 1]);
      fputs(" by ", o);
      uvt__html_esc(o, pw);
      free(pw);
    } else if (p->parent_id <= 0) {
      fputs(" outside any task", o);
    }
    fputs("</div>\n", o);
  }
}

static void ref_html(FILE *o, const uvt__objref_t *r, const char *name) {
  char *w;
  if (!r->found && name != NULL) {
    fputs("task '", o);
    uvt__html_esc(o, name);
    fputs("'", o);
    return;
  }
  w = uvt__obj_words(r);
  uvt__html_esc(o, w);
  free(w);
}

/* A finding about several tasks (a deadlock's cycle), one item each. */
static void members_html(FILE *o, const uvt__group_t *g) {
  int i;
  if (g->nmembers == 0) return;
  fputs("<ol class=\"members facts\">\n", o);
  for (i = 0; i < g->nmembers; i++) {
    const uvt__member_t *m = &g->members[i];
    fputs("<li class=\"member\">", o);
    ref_html(o, &m->obj, m->name);
    if (m->obj.found && m->obj.file != NULL) {
      fputs(" <span class=\"muted\">created at <code>", o);
      uvt__html_esc_loc(o, m->obj.file, m->obj.line);
      fputs("</code></span>", o);
    }
    fputs(" waits for <code>", o);
    uvt__html_esc(o, m->wait != NULL ? m->wait : "?");
    fputs("</code>", o);
    if (m->waits_on.id > 0) {
      fputc(' ', o);
      ref_html(o, &m->waits_on, NULL);
    }
    if (m->held_by.id > 0) {
      fputs(" held by ", o);
      ref_html(o, &m->held_by, NULL);
      if (m->acquire_file != NULL) {
        fputs(", taken at <code>", o);
        uvt__html_esc_loc(o, m->acquire_file, m->acquire_line);
        fputs("</code>", o);
      }
    }
    if (m->where_file != NULL) {
      fputs("; parked at <code>", o);
      uvt__html_esc_loc(o, m->where_file, m->where_line);
      fputs("</code>", o);
    }
    uvt__html_stack(o, "parked stack:", &m->stack, false);
    fputs("</li>\n", o);
  }
  if (g->members_total > g->nmembers)
    fprintf(o, "<li class=\"muted\">%lld in all: the other %lld are in the file, "
               "not shown</li>\n",
            (long long)g->members_total, (long long)(g->members_total - g->nmembers));
  fputs("</ol>\n", o);
}

static void group_html(FILE *o, const uvt__group_t *g) {
  char b1[32], b2[32], b3[32];
  const char *k = g->kind != NULL ? g->kind : "?";
  /* Dispatch on the kinds table, not on strings; an unknown kind
   * from a newer or crafted file is UVT_FINDING_NONE: shown generically. */
  uvt_finding_kind_t kid = uvt_finding_kind_parse(g->kind);
  /* An ignored group is another class, and its count another attribute,
   * so that the sum of data-count over .finding stays the JSON "total". */
  fputs(g->ignored ? "<section class=\"finding-ignored\" data-kind=\""
                   : "<section class=\"finding\" data-kind=\"", o);
  uvt__html_esc(o, k);
  fprintf(o, "\" %s=\"%lld\">\n<p class=\"diag\"><span class=\"loc\">",
          g->ignored ? "data-ignored-count" : "data-count", (long long)g->count);
  if (g->file != NULL) uvt__html_esc_loc(o, g->file, g->line);
  else fputs("uvtask", o);
  fputs(g->ignored ? ":</span> <span class=\"ignored\" title=\"on the uvt_leaks_ignore "
                     "list: not counted\">ignored</span> "
                   : ":</span> <span class=\"warn\">warning:</span> ", o);
  uvt__html_esc(o, g->message != NULL ? g->message : k);
  fputs(" <span class=\"kind\">[", o);
  uvt__html_esc(o, k);
  fprintf(o, "]</span> <span class=\"count\">\xc3\x97%s</span>", uvt__fmt_count(g->count, b1));
  if (g->nsessions > 1) fprintf(o, " in %d sessions", g->nsessions);
  fputs("</p>\n", o);
  if (g->created.n > 0) uvt__html_stack(o, "created at", &g->created, true);
  chain(o, g);
  if (kid == UVT_FINDING_PENDING_AT_EXIT) {
    if (g->where_what != NULL || g->where_file != NULL)
      fact(o, "parked in", g->where_what, g->where_file, g->where_line);
    else fact(o, "never started", NULL, NULL, 0);
    uvt__html_stack(o, "parked stack:", &g->stack, false);
  } else if (kid == UVT_FINDING_SLOW_CALLBACK) {
    fprintf(o, "<div class=\"facts\">blocked the loop %s time%s, max %s, p50 %s</div>\n",
            uvt__fmt_count((int64_t)g->ndurs, b1), g->ndurs == 1 ? "" : "s",
            uvt__fmt_dur(g->max_ns, b2), uvt__fmt_dur(g->p50_ns, b3));
    uvt__html_stack(o, "blocked in", &g->stack, true);
    if (g->where_what != NULL || g->where_file != NULL)
      fact(o, "until", g->where_what, g->where_file, g->where_line);
  } else if (kid == UVT_FINDING_UNRETRIEVED_ERROR) {
    fputs("<div class=\"facts\">error ", o);
    if (g->has_status) {
      fprintf(o, "<code>%d</code> (", g->status);
      uvt__html_esc(o, uvt_strerror(g->status));
      fputs(")", o);
    }
    if (g->error != NULL) {
      fputs(": <code>", o);
      uvt__html_esc(o, g->error);
      fputs("</code>", o);
    }
    fputs("</div>\n", o);
    if (g->fail_file != NULL) fact(o, "raised at", NULL, g->fail_file, g->fail_line);
    uvt__html_stack(o, "raised in", g->fail.n > 0 ? &g->fail : &g->stack, false);
  } else if (kid == UVT_FINDING_LOCK_ORDER_INVERSION) {
    uvt__html_stack(o, "this order:", &g->stack, true);
    if (g->where_file != NULL) fact(o, "the other order took the held lock at", NULL,
                                    g->where_file, g->where_line);
    uvt__html_stack(o, "other order:", &g->stack2, false);
  } else if (kid == UVT_FINDING_LOCK_HELD_ACROSS_AWAIT) {
    if (g->where_what != NULL || g->where_file != NULL)
      fact(o, "parked in", g->where_what, g->where_file, g->where_line);
    uvt__html_stack(o, "parked stack:", &g->stack, false);
  } else if (kid == UVT_FINDING_YIELD_IN_CRITICAL_SECTION) {
    uvt__html_stack(o, "awaits in", &g->stack, true);
    if (g->where_file != NULL) fact(o, "section begun at", NULL, g->where_file, g->where_line);
    uvt__html_stack(o, "section begun in", &g->stack2, false);
  } else {
    if (g->where_what != NULL || g->where_file != NULL)
      fact(o, "at", g->where_what, g->where_file, g->where_line);
    uvt__html_stack(o, "stack:", &g->stack, false);
    uvt__html_stack(o, "also:", &g->stack2, false);
  }
  members_html(o, g);
  fputs("</section>\n", o);
}

/* ---- timeline ------------------------------------------------------------------ */

static int by_start(const void *a, const void *b) {
  const uvt__step_t *x = a, *y = b;
  return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

static double xpos(int64_t t, int64_t t0, int64_t t1) {
  double f = t1 > t0 ? ((double)t - (double)t0) / ((double)t1 - (double)t0) : 0;
  if (f < 0) f = 0;
  if (f > 1) f = 1;
  return LABEL_W + f * (SVG_W - LABEL_W - 10);
}

/* ", last seen parked at f.c:12 in uvt_sleep" for a tooltip. */
static void parked_words(FILE *o, const uvt__tl_row_t *r) {
  if (r->parked_file == NULL) return;
  fputs(", last seen parked at ", o);
  uvt__html_esc_loc(o, r->parked_file, r->parked_line);
  if (r->parked_what != NULL) {
    fputs(" in ", o);
    uvt__html_esc(o, r->parked_what);
  }
}

/* What each mark of the timeline means, each beside a copy of the mark
 * (class "lg" too: a count of a mark's class counts the drawn ones). */
static void legend(FILE *o, const uvt__session_t *s) {
  static const struct {
    const char *mark, *words;
  } keys[] = {
      {"<rect class=\"life lg\" x=\"0\" y=\"5\" width=\"24\" height=\"4\"/>",
       "a task's life, from its creation to its end"},
      {"<rect class=\"open lg\" x=\"0\" y=\"5\" width=\"24\" height=\"4\"/>",
       "a task still alive when the session ended"},
      {"<rect class=\"step lg\" x=\"6\" y=\"2\" width=\"12\" height=\"10\"/>",
       "a step: the task ran"},
      {"<rect class=\"slow lg\" x=\"6\" y=\"1\" width=\"12\" height=\"12\"/>",
       "a slow step: it blocked the loop"},
      {"<path class=\"park lg\" d=\"M12 1l4 6l-4 6l-4 -6z\"/>",
       "where the task was last seen parked (a snapshot or a finding)"},
      {"<text class=\"frow lg\" x=\"0\" y=\"11\">task</text>",
       "a task involved in a finding"},
  };
  size_t i;
  fputs("<div class=\"legend\">", o);
  for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    fprintf(o, "<span class=\"key\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"26\" "
               "height=\"14\" aria-hidden=\"true\">%s</svg>%s",
            keys[i].mark, keys[i].words);
    if (strstr(keys[i].mark, "slow") != NULL && s->slow_ms > 0)
      fprintf(o, " for over %d ms", s->slow_ms);
    fputs("</span>", o);
  }
  fputs(" <span class=\"muted\">(point at a mark for its times and sites)</span></div>\n", o);
}

static void timeline(FILE *o, const uvt__session_t *s) {
  int64_t t0 = s->start_ns, t1 = s->end_ns;
  int i, k, h;
  char b1[32];
  if (s->nrows == 0) return;
  for (i = 0; i < s->nrows; i++) {
    uvt__tl_row_t *r = &s->rows[i];
    if (t0 <= 0 || (r->created_ns > 0 && r->created_ns < t0)) t0 = r->created_ns;
    if (r->ended_ns > t1) t1 = r->ended_ns;
    for (k = 0; k < r->nsteps; k++)
      if (uvt__add_sat(r->steps[k].start_ns, r->steps[k].dur_ns) > t1)
        t1 = uvt__add_sat(r->steps[k].start_ns, r->steps[k].dur_ns);
  }
  if (t1 <= t0) {
    if (t0 < INT64_MAX) t1 = t0 + 1;
    else t0 = INT64_MAX - 1, t1 = INT64_MAX;
  }
  h = (s->nrows + 1) * ROW_H + 8;
  fprintf(o, "<details open><summary>timeline: %d task%s", s->nrows, s->nrows == 1 ? "" : "s");
  if (s->ntasks > s->nrows)
    fprintf(o, " of %s recorded (those in findings first, then the oldest)",
            uvt__fmt_count(s->ntasks, b1));
  fprintf(o, ", %s</summary>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
             "height=\"%d\" role=\"img\">\n",
          uvt__fmt_dur(uvt__sub_sat(t1, t0), b1), SVG_W, h);
  for (k = 0; k <= 4; k++) {
    double x = LABEL_W + k * (SVG_W - LABEL_W - 10) / 4.0;
    fprintf(o, "<line class=\"axis\" x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" y2=\"%d\"/>"
               "<text x=\"%.1f\" y=\"%d\"%s>+%s</text>\n",
            x, x, h - 12, k < 4 ? x + 2 : x - 2, h - 2, k < 4 ? "" : " text-anchor=\"end\"",
            uvt__fmt_dur(uvt__sub_sat(t1, t0) / 4 * k, b1));
  }
  for (i = 0; i < s->nrows; i++) {
    uvt__tl_row_t *r = &s->rows[i];
    double y = i * ROW_H + 2, x0 = xpos(r->created_ns, t0, t1);
    double px = xpos(r->parked_ns, t0, t1);
    double x1 = xpos(r->ended_ns > 0 ? r->ended_ns : t1, t0, t1), last = -1;
    char *w = uvt__obj_words(&r->obj);
    fprintf(o, "<g><text x=\"2\" y=\"%.1f\"%s>", y + 11, r->in_finding ? " class=\"frow\"" : "");
    uvt__html_esc(o, w);
    fputs("</text><rect class=\"", o);
    fputs(r->ended_ns > 0 ? "life" : "open", o);
    fprintf(o, "\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"4\"><title>", x0, y + 5,
            x1 - x0 > 0.5 ? x1 - x0 : 0.5);
    uvt__html_esc(o, w);
    fputs(" created at ", o);
    uvt__html_esc_loc(o, r->obj.file, r->obj.line);
    fputs(r->ended_ns > 0 ? "" : ", still alive at the end", o);
    parked_words(o, r);
    fputs("</title></rect>", o);
    if (r->nsteps > 1) qsort(r->steps, (size_t)r->nsteps, sizeof(*r->steps), by_start);
    for (k = 0; k < r->nsteps; k++) {
      const uvt__step_t *st = &r->steps[k];
      double a = xpos(st->start_ns, t0, t1), b = xpos(uvt__add_sat(st->start_ns, st->dur_ns), t0, t1);
      if (b - a < 1) b = a + 1;
      if (st->slow) {
        fprintf(o, "<rect class=\"slow\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"12\">"
                   "<title>slow step: %s</title></rect>",
                a, y + 1, b - a, uvt__fmt_dur(st->dur_ns, b1));
      } else if (a >= last) { /* one block per pixel is enough */
        fprintf(o, "<rect class=\"step\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"10\"/>",
                a, y + 2, b - a);
        last = b;
      }
    }
    if (r->parked_file != NULL) {
      fprintf(o, "<path class=\"park\" d=\"M%.1f %.1fl4 6l-4 6l-4 -6z\"><title>", px, y + 1);
      uvt__html_esc(o, w);
      parked_words(o, r);
      fputs("</title></path>", o);
    }
    free(w);
    fputs("</g>\n", o);
  }
  fputs("</svg>\n", o);
  legend(o, s);
  fputs("</details>\n", o);
}

static void session_html(FILE *o, const uvt__report_t *r, const uvt__session_t *s) {
  char b1[32], b2[32], when[64];
  time_t sec = (time_t)(s->start_ns / 1000000000);
  struct tm tm;
  int i;
  fprintf(o, "<section class=\"session\"><h3>session %lld <code>", (long long)s->pid);
  uvt__html_esc(o, s->argv);
  fputs("</code></h3>\n<div>", o);
  if (localtime_r(&sec, &tm) != NULL && strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) > 0)
    fprintf(o, "started %s", when);
  if (s->end_ns > 0) fprintf(o, ", ran %s", uvt__fmt_dur(uvt__sub_sat(s->end_ns, s->start_ns), b1));
  if (s->state == UVT__SESSION_RUNNING) fputs(", still running", o);
  else if (s->state == UVT__SESSION_KILLED)
    fputs(", <strong>ended without an end record: killed or lost power?</strong>", o);
  else if (s->end_reason == NULL) fputs(", ended", o);
  else if (strcmp(s->end_reason, "signal") == 0) {
    fprintf(o, ", ended by %s", uvt__signal_name(s->signal, b1));
    if (s->crash_task.id > 0) {
      char *w = uvt__obj_words(&s->crash_task);
      fputs(" in ", o);
      uvt__html_esc(o, w);
      free(w);
      if (s->crash_task.file != NULL) {
        fputs(" (<code>", o);
        uvt__html_esc_loc(o, s->crash_task.file, s->crash_task.line);
        fputs("</code>)", o);
      }
    }
  } else if (strcmp(s->end_reason, "exit") == 0) {
    fprintf(o, ", exited with status %d", s->exit_status);
  }
  if (r->ninputs > 1) {
    fputs(" \xc2\xb7 <code>", o);
    uvt__html_esc(o, r->inputs[s->input]);
    fputs("</code>", o);
  }
  if (s->test_name != NULL) {
    fputs(" \xc2\xb7 test <code>", o);
    uvt__html_esc(o, s->test_name);
    fputs("</code>", o);
  }
  fprintf(o, "</div>\n<div>%s objects created, %s peak live tasks \xc2\xb7 ",
          uvt__fmt_count(s->objects, b1), uvt__fmt_count(s->peak_tasks, b2));
  if (s->nkinds == 0) fputs("no findings", o);
  for (i = 0; i < s->nkinds; i++) {
    fprintf(o, "%s%s ", i > 0 ? ", " : "findings: ", uvt__fmt_count(s->kinds[i].n, b1));
    uvt__html_esc(o, s->kinds[i].kind);
  }
  if (s->nignored > 0)
    fprintf(o, " \xc2\xb7 %s ignored", uvt__fmt_count(s->nignored, b1));
  if (s->shed > 0) fprintf(o, " \xc2\xb7 %s timeline events shed", uvt__fmt_count(s->shed, b1));
  if (s->lost > 0)
    fprintf(o, " \xc2\xb7 %s rows lost (not written: the recording is incomplete)",
            uvt__fmt_count(s->lost, b1));
  fputs("</div>\n", o);
  timeline(o, s);
  uvt__html_snapshots(o, s);
  fputs("</section>\n", o);
}

void uvt__html_write(FILE *o, const uvt__report_t *r) {
  const char *const *notes;
  char b1[32];
  int i, nnotes, sites = r->ngroups - r->nignored_groups;
  fprintf(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
             "style-src 'unsafe-inline'\">\n<title>uvtask report</title>\n<style>%s</style>"
             "</head>\n<body>\n<h1>uvtask report</h1>\n<p id=\"total\" data-total=\"%lld\">",
          style, (long long)r->total);
  if (r->total == 0) fputs("No findings", o);
  else
    fprintf(o, "%s finding%s at %d site%s", uvt__fmt_count(r->total, b1),
            r->total == 1 ? "" : "s", sites, sites == 1 ? "" : "s");
  if (r->nignored > 0)
    fprintf(o, " (and %s ignored: objects on the uvt_leaks_ignore list, not counted)",
            uvt__fmt_count(r->nignored, b1));
  fputs(" in <code>", o);
  for (i = 0; i < r->ninputs; i++) {
    if (i > 0) fputs("</code>, <code>", o);
    uvt__html_esc(o, r->inputs[i]);
  }
  fputs("</code>.</p>\n<h2>Findings</h2>\n", o);
  for (i = 0; i < r->ngroups; i++) group_html(o, r->groups[i]);
  if (r->ngroups == 0) fputs("<p>None.</p>\n", o);
  notes = uvt__sym_notes(r->sym, &nnotes);
  for (i = 0; i < nnotes; i++) {
    fputs("<p class=\"muted\">note: ", o);
    uvt__html_esc(o, notes[i]);
    fputs("</p>\n", o);
  }
  fputs("<h2>Sessions</h2>\n", o);
  for (i = 0; i < r->nsessions; i++)
    if (!r->sessions[i]->empty) session_html(o, r, r->sessions[i]);
  if (r->nempty > 0)
    fprintf(o, "<p class=\"muted\">%d more session%s recorded nothing.</p>\n", r->nempty,
            r->nempty == 1 ? "" : "s");
  fprintf(o, "<p class=\"muted\">uvtask %s</p>\n</body></html>\n", UVTASK_VERSION_STRING);
}

/*
 * The text report: session summaries, then one compiler-style diagnostic
 * per group of findings, so editors and CI annotate the lines:
 *
 *   examples/forgot_await.c:53: warning: coroutine 'save_draft' was never awaited [never-awaited]  ×1
 *       created at  edit        examples/forgot_await.c:53
 *                   (task 'edit' created at examples/forgot_await.c:66 outside any task)
 *
 * Sessions with findings come first.  A group of findings about objects on
 * the uvt_leaks_ignore list is a "note:" tagged "[ignored]", counted apart
 * at the end, and never makes the exit status 1.
 *
 * Strings from the database may hold anything: control characters
 * (a terminal escape in a task name) are written as \xNN.
 */
#include "viewer.h"
#include "uvtask/kinds.h"
#include "uvtask.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LABEL_W 12
#define FUNC_W_MAX 28

typedef struct {
  FILE *o;
  bool color;
} out_t;

static const char *C_BOLD = "\033[1m", *C_WARN = "\033[1;35m", *C_NOTE = "\033[1;36m",
                  *C_DIM = "\033[2m", *C_OFF = "\033[0m";

static void on(const out_t *t, const char *c) {
  if (t->color) fputs(c, t->o);
}

/* Write a string from the database: controls become \xNN. */
static void put(const out_t *t, const char *s) { uvt__put_escaped(t->o, s); }

/* n spaces (a report prints millions of padded labels: no printf). */
static void pad(const out_t *t, int n) {
  static const char spaces[] = "                                ";
  while (n > 0) {
    int k = n < (int)sizeof(spaces) - 1 ? n : (int)sizeof(spaces) - 1;
    fwrite(spaces, 1, (size_t)k, t->o);
    n -= k;
  }
}

static void put_loc(const out_t *t, const char *file, int line) {
  char num[16];
  int n;
  put(t, uvt__display_path(file));
  if (line > 0) {
    n = snprintf(num, sizeof(num), ":%d", line);
    fwrite(num, 1, (size_t)n, t->o);
  }
}

static int utf8_len(const char *s) {
  int n = 0;
  for (; s != NULL && *s != '\0'; s++)
    if (((unsigned char)*s & 0xc0) != 0x80) n++;
  return n;
}

static void label(const out_t *t, const char *l) {
  size_t n = l != NULL ? strlen(l) : 0;
  fputs("    ", t->o);
  if (n > 0) fwrite(l, 1, n, t->o);
  pad(t, LABEL_W - (int)n);
}

static const char *basename_of(const char *path) {
  const char *b = path != NULL ? strrchr(path, '/') : NULL;
  return b != NULL ? b + 1 : path;
}

static void put_frame_loc(const out_t *t, const uvt__frame_t *f) {
  if (f->trusted && f->file != NULL) put_loc(t, f->file, f->line);
  else if (f->module != NULL) {
    put(t, basename_of(f->module));
    fprintf(t->o, "+0x%llx", (unsigned long long)f->offset);
  } else {
    fprintf(t->o, "0x%llx (no module)", (unsigned long long)f->pc);
  }
}

/* A stack under a label; further frames line up under the first. */
static void put_frames(const out_t *t, const char *l, const uvt__frames_t *fr) {
  int i, w = 0;
  for (i = 0; i < fr->n; i++) {
    const uvt__frame_t *f = fr->v[i];
    int n = f->trusted && f->function != NULL ? utf8_len(f->function) : 2;
    if (n > w) w = n;
  }
  if (w > FUNC_W_MAX) w = FUNC_W_MAX;
  for (i = 0; i < fr->n; i++) {
    const uvt__frame_t *f = fr->v[i];
    const char *fn = f->trusted && f->function != NULL ? f->function : "??";
    label(t, i == 0 ? l : NULL);
    put(t, fn);
    pad(t, (w - utf8_len(fn) > 0 ? w - utf8_len(fn) : 0) + 2);
    put_frame_loc(t, f);
    if (f->inlined) {
      on(t, C_DIM);
      fputs("  (inlined)", t->o);
      on(t, C_OFF);
    }
    fputc('\n', t->o);
  }
}

/* "(task 'x' spawned at f.c:52 by task 'serve')", one per ancestor. */
static void put_chain(const out_t *t, const uvt__group_t *g) {
  int i;
  for (i = 0; i < g->nchain; i++) {
    const uvt__objref_t *p = &g->chain[i];
    char *w = uvt__obj_words(p);
    label(t, NULL);
    on(t, C_DIM);
    fputc('(', t->o);
    put(t, w);
    free(w);
    if (!p->found) {
      /* The recorder keeps a row only for objects alive at a flush or
       * involved in a finding; a short-lived healthy one is only counted
       * at its creation site. */
      fputs(": not in the recording: it ended before the recorder kept a row "
            "for it)\n", t->o);
      on(t, C_OFF);
      break;
    }
    fputs(p->kind != NULL && strcmp(p->kind, "task") == 0 ? " spawned at " : " created at ",
          t->o);
    put_loc(t, p->file, p->line);
    if (p->parent_id > 0 && i + 1 < g->nchain) {
      char *pw = uvt__obj_words(&g->chain[i + 1]);
      fputs(" by ", t->o);
      put(t, pw);
      free(pw);
    } else if (p->parent_id <= 0) {
      fputs(" outside any task", t->o);
    }
    fputs(")", t->o);
    on(t, C_OFF);
    fputc('\n', t->o);
  }
  if (g->chain_cut) {
    label(t, NULL);
    fputs("(...)\n", t->o);
  }
}

static void put_where(const out_t *t, const char *l, const char *what, const char *file,
                      int line) {
  label(t, l);
  if (what != NULL) put(t, what);
  if (file != NULL) {
    fputs(what != NULL ? " at " : "", t->o);
    put_loc(t, file, line);
  }
  fputc('\n', t->o);
}

/* "task 'x'" for a member's reference, or its recorded name. */
static void put_ref(const out_t *t, const uvt__objref_t *o, const char *name) {
  char *w;
  if (!o->found && name != NULL) {
    fputs("task '", t->o);
    put(t, name);
    fputs("'", t->o);
    return;
  }
  w = uvt__obj_words(o);
  put(t, w);
  free(w);
}

/* A finding about several tasks (a deadlock's cycle): each member, what it
 * waits for and who holds that, where it is parked, its stack. */
static void put_members(const out_t *t, const uvt__group_t *g) {
  int i;
  for (i = 0; i < g->nmembers; i++) {
    const uvt__member_t *m = &g->members[i];
    char l[32];
    snprintf(l, sizeof(l), "member %d", i + 1);
    label(t, l);
    put_ref(t, &m->obj, m->name);
    if (m->obj.found && m->obj.file != NULL) {
      fputs(" (created at ", t->o);
      put_loc(t, m->obj.file, m->obj.line);
      fputs(")", t->o);
    }
    fputc('\n', t->o);
    label(t, NULL);
    fputs("waits for ", t->o);
    put(t, m->wait != NULL ? m->wait : "?");
    if (m->waits_on.id > 0) {
      fputc(' ', t->o);
      put_ref(t, &m->waits_on, NULL);
    }
    if (m->held_by.id > 0) {
      fputs(" held by ", t->o);
      put_ref(t, &m->held_by, NULL);
      if (m->acquire_file != NULL) {
        fputs(", taken at ", t->o);
        put_loc(t, m->acquire_file, m->acquire_line);
      }
    }
    fputc('\n', t->o);
    if (m->where_file != NULL) put_where(t, NULL, "parked", m->where_file, m->where_line);
    put_frames(t, NULL, &m->stack);
  }
  if (g->members_total > g->nmembers) {
    label(t, "members");
    fprintf(t->o, "%lld in all: the other %lld are in the file, not shown\n",
            (long long)g->members_total, (long long)(g->members_total - g->nmembers));
  }
}

static void put_group(const out_t *t, const uvt__group_t *g) {
  char b1[32], b2[32], b3[32];
  const char *k = g->kind != NULL ? g->kind : "?";
  /* Dispatch on the kinds table, not on strings; an unknown kind
   * from a newer or crafted file is UVT_FINDING_NONE: shown generically. */
  uvt_finding_kind_t kid = uvt_finding_kind_parse(g->kind);
  on(t, C_BOLD);
  if (g->file != NULL) put_loc(t, g->file, g->line);
  else fputs("uvtask", t->o);
  fputs(":", t->o);
  on(t, C_OFF);
  fputc(' ', t->o);
  /* An ignored one is a note, not a warning: editors and CI that pick up
   * "warning:" lines leave it alone, as the exit status does. */
  on(t, g->ignored ? C_NOTE : C_WARN);
  fputs(g->ignored ? "note:" : "warning:", t->o);
  on(t, C_OFF);
  fputc(' ', t->o);
  put(t, g->message != NULL ? g->message : k);
  fputs(" [", t->o);
  put(t, k);
  fputs(g->ignored ? "] [ignored]  " : "]  ", t->o);
  on(t, C_BOLD);
  fprintf(t->o, "\xc3\x97%s", uvt__fmt_count(g->count, b1));
  on(t, C_OFF);
  if (g->nsessions > 1) fprintf(t->o, " in %d sessions", g->nsessions);
  fputc('\n', t->o);

  if (g->created.n > 0) put_frames(t, "created at", &g->created);
  else if (g->object.found && g->object.file != NULL)
    put_where(t, "created at", g->object.func, g->object.file, g->object.line);
  put_chain(t, g);

  if (kid == UVT_FINDING_PENDING_AT_EXIT) {
    if (g->where_what != NULL || g->where_file != NULL)
      put_where(t, "parked in", g->where_what, g->where_file, g->where_line);
    else put_where(t, "parked in", "(never started)", NULL, 0);
    put_frames(t, NULL, &g->stack);
  } else if (kid == UVT_FINDING_SLOW_CALLBACK) {
    label(t, "blocked");
    fprintf(t->o, "%s time%s, max %s, p50 %s", uvt__fmt_count((int64_t)g->ndurs, b1),
            g->ndurs == 1 ? "" : "s", uvt__fmt_dur(g->max_ns, b2),
            uvt__fmt_dur(g->p50_ns, b3));
    if (g->session != NULL && g->session->slow_ms > 0)
      fprintf(t->o, " (threshold %d ms)", g->session->slow_ms);
    fputc('\n', t->o);
    if (g->stack.n > 0) put_frames(t, "blocked in", &g->stack);
    else put_where(t, "blocked in", "(no sample of the loop thread)", NULL, 0);
    if (g->where_what != NULL || g->where_file != NULL)
      put_where(t, "until", g->where_what, g->where_file, g->where_line);
  } else if (kid == UVT_FINDING_UNRETRIEVED_ERROR) {
    label(t, "error");
    if (g->has_status) fprintf(t->o, "%d (%s)", g->status, uvt_strerror(g->status));
    if (g->error != NULL) {
      fputs(g->has_status ? ": " : "", t->o);
      put(t, g->error);
    }
    fputc('\n', t->o);
    /* Where uvt_fail was called, as JSON and HTML give it; a stack only
     * when it shows more than uvtask's own trampoline (a task's error is
     * captured as it finishes, when only task_entry is left). */
    if (g->fail_file != NULL || g->where_file != NULL)
      put_where(t, "raised at", NULL, g->fail_file != NULL ? g->fail_file : g->where_file,
                g->fail_file != NULL ? g->fail_line : g->where_line);
    if (!uvt__frames_only_runtime(g->fail.n > 0 ? &g->fail : &g->stack))
      put_frames(t, g->fail_file != NULL || g->where_file != NULL ? "stack" : "raised at",
                 g->fail.n > 0 ? &g->fail : &g->stack);
  } else if (kid == UVT_FINDING_LOCK_ORDER_INVERSION) {
    put_frames(t, "this order", &g->stack);
    if (g->where_file != NULL)
      put_where(t, "other order", NULL, g->where_file, g->where_line);
    put_frames(t, g->where_file != NULL ? NULL : "other order", &g->stack2);
  } else if (kid == UVT_FINDING_LOCK_HELD_ACROSS_AWAIT) {
    if (g->where_what != NULL || g->where_file != NULL)
      put_where(t, "parked in", g->where_what, g->where_file, g->where_line);
    put_frames(t, NULL, &g->stack);
  } else if (kid == UVT_FINDING_LOCK_NOT_RELEASED) {
    if (g->where_file != NULL) put_where(t, "taken at", g->where_what, g->where_file, g->where_line);
  } else if (kid == UVT_FINDING_YIELD_IN_CRITICAL_SECTION) {
    put_frames(t, "awaits at", &g->stack);
    if (g->where_file != NULL)
      put_where(t, "section", "begun", g->where_file, g->where_line);
    put_frames(t, g->where_file != NULL ? NULL : "section", &g->stack2);
  } else {
    if (g->where_what != NULL || g->where_file != NULL)
      put_where(t, "where", g->where_what, g->where_file, g->where_line);
    put_frames(t, "stack", &g->stack);
    put_frames(t, "also", &g->stack2);
  }
  put_members(t, g);
  fputc('\n', t->o);
}

static void put_session(const out_t *t, const uvt__report_t *r, const uvt__session_t *s) {
  char b1[32], b2[32], when[64];
  time_t sec = (time_t)(s->start_ns / 1000000000);
  struct tm tm;
  int i;
  on(t, C_BOLD);
  fprintf(t->o, "session %lld", (long long)s->pid);
  on(t, C_OFF);
  fputs("  ", t->o);
  put(t, s->argv);
  if (localtime_r(&sec, &tm) != NULL && strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) > 0)
    fprintf(t->o, "  %s", when);
  if (s->end_ns > 0) fprintf(t->o, ", %s", uvt__fmt_dur(uvt__sub_sat(s->end_ns, s->start_ns), b1));
  if (s->state == UVT__SESSION_RUNNING) {
    fputs(", still running", t->o);
  } else if (s->state == UVT__SESSION_KILLED) {
    fputs(", ", t->o);
    on(t, C_WARN);
    fputs("ended without an end record: killed or lost power?", t->o);
    on(t, C_OFF);
  } else if (s->end_reason == NULL) {
    fputs(", ended", t->o);
  } else if (strcmp(s->end_reason, "signal") == 0) {
    fprintf(t->o, ", ended by %s", uvt__signal_name(s->signal, b2));
    if (s->crash_task.id > 0) {
      char *w = uvt__obj_words(&s->crash_task);
      fputs(" in ", t->o);
      put(t, w);
      free(w);
      if (s->crash_task.file != NULL) {
        fputs(" (", t->o);
        put_loc(t, s->crash_task.file, s->crash_task.line);
        fputs(")", t->o);
      }
    }
  } else if (strcmp(s->end_reason, "exit") == 0) {
    fprintf(t->o, ", exited with status %d", s->exit_status);
  } else {
    fputs(", ended: ", t->o);
    put(t, s->end_reason);
  }
  if (r->ninputs > 1) {
    fputs("  [", t->o);
    put(t, r->inputs[s->input]);
    fputs("]", t->o);
  }
  fputc('\n', t->o);
  fputs("  ", t->o);
  if (s->test_name != NULL) {
    fputs("test ", t->o);
    put(t, s->test_name);
    fputs(" \xc2\xb7 ", t->o);
  }
  fprintf(t->o, "%s object%s created, %s peak live task%s \xc2\xb7 ",
          uvt__fmt_count(s->objects, b1), s->objects == 1 ? "" : "s",
          uvt__fmt_count(s->peak_tasks, b2), s->peak_tasks == 1 ? "" : "s");
  if (s->nkinds == 0) fputs("no findings", t->o);
  else fputs("findings: ", t->o);
  for (i = 0; i < s->nkinds; i++) {
    fprintf(t->o, "%s%s ", i > 0 ? ", " : "", uvt__fmt_count(s->kinds[i].n, b1));
    put(t, s->kinds[i].kind);
  }
  if (s->nignored > 0)
    fprintf(t->o, " \xc2\xb7 %s ignored", uvt__fmt_count(s->nignored, b1));
  if (s->shed > 0)
    fprintf(t->o, " \xc2\xb7 %s timeline event%s shed", uvt__fmt_count(s->shed, b1),
            s->shed == 1 ? "" : "s");
  if (s->lost > 0)
    fprintf(t->o, " \xc2\xb7 %s row%s lost (not written: the recording is incomplete)",
            uvt__fmt_count(s->lost, b1), s->lost == 1 ? "" : "s");
  fputc('\n', t->o);
}

void uvt__text_write(FILE *o, const uvt__report_t *r, bool color) {
  out_t t = {o, color};
  char b1[32];
  const char *const *notes;
  int i, nnotes, shown = 0, sites = r->ngroups - r->nignored_groups;
  for (i = 0; i < r->nsessions; i++) {
    if (r->sessions[i]->empty) continue;
    put_session(&t, r, r->sessions[i]);
    shown++;
  }
  if (r->nempty > 0)
    fprintf(o, "(%d more session%s recorded nothing: processes that loaded the "
               "debug library without using uvtask)\n",
            r->nempty, r->nempty == 1 ? "" : "s");
  if (r->nsessions == 0) fputs("no sessions recorded\n", o);
  if (shown > 0 || r->nempty > 0 || r->nsessions == 0) fputc('\n', o);
  for (i = 0; i < r->ngroups; i++) put_group(&t, r->groups[i]);
  notes = uvt__sym_notes(r->sym, &nnotes);
  for (i = 0; i < nnotes; i++) {
    on(&t, C_NOTE);
    fputs("note:", o);
    on(&t, C_OFF);
    fputc(' ', o);
    put(&t, notes[i]);
    fputc('\n', o);
  }
  if (r->nkilled > 0)
    fprintf(o, "%d session%s ended without an end record (killed or lost power?): "
               "what they recorded last may be missing\n",
            r->nkilled, r->nkilled == 1 ? "" : "s");
  if (r->total == 0) fputs("no findings\n", o);
  else
    fprintf(o, "%s finding%s at %d site%s\n", uvt__fmt_count(r->total, b1),
            r->total == 1 ? "" : "s", sites, sites == 1 ? "" : "s");
  if (r->nignored > 0)
    fprintf(o, "%s ignored finding%s at %d site%s (objects on the uvt_leaks_ignore "
               "list): shown, not counted\n",
            uvt__fmt_count(r->nignored, b1), r->nignored == 1 ? "" : "s",
            r->nignored_groups, r->nignored_groups == 1 ? "" : "s");
}

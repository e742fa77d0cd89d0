/*
 * Findings the runtime decides itself; see findings.h.
 */
#include "findings.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

int uvt__findings_quiet;

/* Tell the hook subscribers (a recorder adds its stacks). */
static void finding_hook(uvt_finding_kind_t kind, const uvt__obj_t *o,
                         const char *where_file, int where_line,
                         const char *what, int status, const char *text) {
  bool ignored = uvt__leaks_ignored(o->name, o->func);
  UVT__HOOK(.kind = UVT_HOOK_FINDING, .object_kind = (uvt_object_kind_t)o->kind,
            .id = o->id, .name = o->name, .file = o->file, .line = o->line,
            .func = o->func, .where_file = where_file,
            .where_line = where_line, .what = what, .status = status,
            .message = text, .finding = kind, .object = o,
            .ignored = ignored);
  (void)ignored, (void)kind, (void)o, (void)where_file, (void)where_line, (void)what,
      (void)status, (void)text;
}

static _Thread_local uvt__finding_t *found;
static _Thread_local size_t nfound, capfound;

/* The compiler-style line, as asyncio logs as it goes. */
static void report_line(const uvt__obj_t *o, const char *text,
                        uvt_finding_kind_t kind) {
  char line[2048];
  /* Objects on the ignore list are expected to outlive the run. */
  if (uvt__findings_quiet || uvt__leaks_ignored(o->name, o->func)) return;
  snprintf(line, sizeof(line), "%s:%d: warning: %s [%s]", o->file, o->line, text,
           uvt_finding_kind_name(kind));
  uvt__stderr_line("", line);
}

static char *dup_or_null(const char *s) {
  return s != NULL ? strdup(s) : NULL;
}

/* The list outlives uvt_run (testing.h reads it) but not its thread: a
 * thread that ran a loop and exits frees it. */
static pthread_key_t found_key;
static pthread_once_t found_once = PTHREAD_ONCE_INIT;

static void found_release(void *unused) {
  (void)unused;
  uvt__findings_reset();
}

static void found_key_init(void) {
  if (pthread_key_create(&found_key, found_release) != 0)
    uvt__panic("cannot create the findings key");
}

static uvt__finding_t *finding_add(uvt_finding_kind_t kind, const char *what,
                                   const uvt__obj_t *o) {
  uvt__finding_t *f;
  if (found == NULL) {
    pthread_once(&found_once, found_key_init);
    pthread_setspecific(found_key, (void *)1);
  }
  if (nfound == capfound) {
    size_t cap = capfound ? capfound * 2 : 16;
    uvt__finding_t *nf = realloc(found, cap * sizeof(*nf));
    if (nf == NULL) return NULL; /* still printed, just not kept */
    found = nf;
    capfound = cap;
  }
  f = &found[nfound++];
  memset(f, 0, sizeof(*f));
  f->kind = kind;
  f->what = what;
  f->name = dup_or_null(o->name);
  f->file = o->file;
  f->line = o->line;
  f->func = o->func;
  return f;
}

void uvt__findings_reset(void) {
  size_t i;
  for (i = 0; i < nfound; i++) {
    free(found[i].name);
    free(found[i].waits_for);
    free(found[i].message);
  }
  free(found);
  found = NULL;
  nfound = capfound = 0;
}

const uvt__finding_t *uvt__findings(size_t *n) {
  *n = nfound;
  return found;
}

void uvt__finding_pending(uvt_task_t *t, const char *when) {
  uvt__finding_t *f;
  if (t->obj.reported & UVT__REPORTED_PENDING) return;
  t->obj.reported |= UVT__REPORTED_PENDING;
  char text[1024];
  if (t->state == UVT_TASK_CREATED)
    snprintf(text, sizeof(text), "task '%s' still pending %s, never started",
             t->obj.name, when);
  else
    snprintf(text, sizeof(text),
             "task '%s' still pending %s, parked in %s at %s:%d", t->obj.name,
             when, t->parked_at.what ? t->parked_at.what : "?",
             t->parked_at.file ? t->parked_at.file : "?", t->parked_at.line);
  report_line(&t->obj, text, UVT_FINDING_PENDING_AT_EXIT);
  finding_hook(UVT_FINDING_PENDING_AT_EXIT, &t->obj,
               t->state == UVT_TASK_CREATED ? NULL : t->parked_at.file,
               t->parked_at.line,
               t->state == UVT_TASK_CREATED ? NULL : t->parked_at.what, 0,
               text);
  f = finding_add(UVT_FINDING_PENDING_AT_EXIT, "task", &t->obj);
  if (f != NULL && t->state != UVT_TASK_CREATED) {
    f->parked_what = t->parked_at.what;
    f->parked_file = t->parked_at.file;
    f->parked_line = t->parked_at.line;
    f->parked_wait = t->parked_at.wait;
    if (t->parked_at.wait == UVT_WAIT_TASK && t->parked_at.on != NULL) {
      const uvt__obj_t *w = t->parked_at.on;
      f->waits_for = dup_or_null(w->name);
      f->waits_for_file = w->file;
      f->waits_for_line = w->line;
    }
  }
}

void uvt__finding_unretrieved(uvt__obj_t *o, uvt__outcome_t *out) {
  const char *what = o->kind == UVT_OBJECT_TASK ? "task" : "future";
  char text[1024];
  uvt__finding_t *f;
  if (o->reported & UVT__REPORTED_UNRETRIEVED) return;
  if (!out->done || out->retrieved || out->status >= 0 ||
      out->status == UVT_ECANCELED)
    return;
  o->reported |= UVT__REPORTED_UNRETRIEVED;
  snprintf(text, sizeof(text),
           "%s '%s' failed with %d (%s)%s%s%s; nobody read the error", what,
           o->name, out->status, uvt_strerror(out->status),
           out->message ? " \"" : "", out->message ? out->message : "",
           out->message ? "\"" : "");
  report_line(o, text, UVT_FINDING_UNRETRIEVED_ERROR);
  finding_hook(UVT_FINDING_UNRETRIEVED_ERROR, o, out->fail_file, out->fail_line, NULL,
               out->status, text);
  f = finding_add(UVT_FINDING_UNRETRIEVED_ERROR, what, o);
  if (f != NULL) {
    f->status = out->status;
    f->message = dup_or_null(out->message);
  }
}

void uvt__finding_never_awaited(uvt_coro_t *c) {
  if (c->obj.reported & UVT__REPORTED_NEVER_AWAITED) return;
  char text[512];
  c->obj.reported |= UVT__REPORTED_NEVER_AWAITED;
  snprintf(text, sizeof(text), "coroutine '%s' was never awaited",
           c->obj.name);
  report_line(&c->obj, text, UVT_FINDING_NEVER_AWAITED);
  finding_hook(UVT_FINDING_NEVER_AWAITED, &c->obj, NULL, 0, NULL, 0, text);
  finding_add(UVT_FINDING_NEVER_AWAITED, "coroutine", &c->obj);
}

void uvt__finding_unreleased(uvt__obj_t *o, int refs) {
  const char *what = o->kind == UVT_OBJECT_TASK ? "task" : "future";
  char text[512];
  if (o->reported & UVT__REPORTED_UNRELEASED) return;
  o->reported |= UVT__REPORTED_UNRELEASED;
  snprintf(text, sizeof(text),
           "%s '%s': %d handle reference%s never given up (neither awaited "
           "nor detached)",
           what, o->name, refs, refs == 1 ? "" : "s");
  report_line(o, text, UVT_FINDING_UNRELEASED_HANDLE);
  finding_hook(UVT_FINDING_UNRELEASED_HANDLE, o, NULL, 0, NULL, 0, text);
  finding_add(UVT_FINDING_UNRELEASED_HANDLE, what, o);
}

void uvt__finding_unclosed(uvt__obj_t *o, const char *what) {
  if (o->reported & UVT__REPORTED_UNCLOSED) return;
  char text[512];
  o->reported |= UVT__REPORTED_UNCLOSED;
  snprintf(text, sizeof(text), "%s '%s' was never closed", what, o->name);
  report_line(o, text, UVT_FINDING_UNCLOSED_STREAM);
  finding_hook(UVT_FINDING_UNCLOSED_STREAM, o, NULL, 0, NULL, 0, text);
  finding_add(UVT_FINDING_UNCLOSED_STREAM, what, o);
}

void uvt__finding_deadlock(uvt_task_t *t, const uvt__site_t *where,
                           const char *summary) {
  uvt__finding_t *f = finding_add(UVT_FINDING_DEADLOCK, "task", &t->obj);
  if (f == NULL) return;
  f->parked_what = where->what;
  f->parked_file = where->file;
  f->parked_line = where->line;
  f->message = dup_or_null(summary);
}

void uvt__finding_stall(uvt_task_t *t, const char *summary) {
  uvt__finding_t *f = finding_add(UVT_FINDING_STALL, "task", &t->obj);
  if (f == NULL) return;
  if (t->state == UVT_TASK_PARKED) {
    f->parked_what = t->parked_at.what;
    f->parked_file = t->parked_at.file;
    f->parked_line = t->parked_at.line;
  }
  f->message = dup_or_null(summary);
}

void uvt__finding_yield_in_section(uvt_task_t *t, const char *what,
                                   const char *file, int line,
                                   const char *func) {
  char text[768], out[1024];
  bool ignored = uvt__leaks_ignored(t->obj.name, t->obj.func);
  snprintf(text, sizeof(text),
           "task '%s' calls %s, which may yield, inside a no-yield section "
           "begun at %s:%d",
           t->obj.name, what, t->no_yield_file ? t->no_yield_file : "?",
           t->no_yield_line);
  if (!uvt__findings_quiet && !ignored) {
    snprintf(out, sizeof(out), "%s:%d: warning: %s [%s]", file ? file : "?",
             line, text,
             uvt_finding_kind_name(UVT_FINDING_YIELD_IN_CRITICAL_SECTION));
    uvt__stderr_line("", out);
  }
  UVT__HOOK(.kind = UVT_HOOK_FINDING, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .task_id = t->obj.id, .name = t->obj.name,
            .file = t->obj.file, .line = t->obj.line, .func = t->obj.func,
            .where_file = file, .where_line = line, .where_func = func,
            .what = what, .message = text,
            .finding = UVT_FINDING_YIELD_IN_CRITICAL_SECTION,
            .no_yield_depth = t->no_yield_depth, .loop = t->sched->loop,
            .object = t, .ignored = ignored);
  (void)func;
}

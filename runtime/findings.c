/*
 * Findings the runtime decides itself; see findings.h.
 */
#include "findings.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local uvt__finding_t *found;
static _Thread_local size_t nfound, capfound;

static char *dup_or_null(const char *s) {
  return s != NULL ? strdup(s) : NULL;
}

static uvt__finding_t *finding_add(const char *kind, const char *what,
                                   const uvt__obj_t *o) {
  uvt__finding_t *f;
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
  if (t->state == UVT__TASK_CREATED)
    fprintf(stderr,
            "%s:%d: warning: task '%s' still pending %s, never started "
            "[pending-at-exit]\n",
            t->obj.file, t->obj.line, t->obj.name, when);
  else
    fprintf(stderr,
            "%s:%d: warning: task '%s' still pending %s, parked in %s at "
            "%s:%d [pending-at-exit]\n",
            t->obj.file, t->obj.line, t->obj.name, when,
            t->parked_at.what ? t->parked_at.what : "?",
            t->parked_at.file ? t->parked_at.file : "?", t->parked_at.line);
  f = finding_add("pending-at-exit", "task", &t->obj);
  if (f != NULL && t->state != UVT__TASK_CREATED) {
    f->parked_what = t->parked_at.what;
    f->parked_file = t->parked_at.file;
    f->parked_line = t->parked_at.line;
  }
}

void uvt__finding_unretrieved(uvt__obj_t *o, uvt__outcome_t *out) {
  const char *what = o->kind == UVT__OBJ_TASK ? "task" : "future";
  uvt__finding_t *f;
  if (o->reported & UVT__REPORTED_UNRETRIEVED) return;
  if (!out->done || out->retrieved || out->status >= 0 ||
      out->status == UVT_ECANCELED)
    return;
  o->reported |= UVT__REPORTED_UNRETRIEVED;
  fprintf(stderr,
          "%s:%d: warning: %s '%s' failed with %d (%s)%s%s%s; nobody read "
          "the error [unretrieved-error]\n",
          o->file, o->line, what, o->name, out->status,
          uvt_strerror(out->status), out->message ? " \"" : "",
          out->message ? out->message : "", out->message ? "\"" : "");
  f = finding_add("unretrieved-error", what, o);
  if (f != NULL) {
    f->status = out->status;
    f->message = dup_or_null(out->message);
  }
}

void uvt__finding_never_awaited(uvt_coro_t *c) {
  if (c->obj.reported & UVT__REPORTED_NEVER_AWAITED) return;
  c->obj.reported |= UVT__REPORTED_NEVER_AWAITED;
  fprintf(stderr,
          "%s:%d: warning: coroutine '%s' was never awaited [never-awaited]\n",
          c->obj.file, c->obj.line, c->obj.name);
  finding_add("never-awaited", "coroutine", &c->obj);
}

void uvt__finding_unclosed(uvt__obj_t *o, const char *what) {
  if (o->reported & UVT__REPORTED_UNCLOSED) return;
  o->reported |= UVT__REPORTED_UNCLOSED;
  fprintf(stderr,
          "%s:%d: warning: %s '%s' was never closed [unclosed-stream]\n",
          o->file, o->line, what, o->name);
  finding_add("unclosed-stream", what, o);
}

/*
 * The per-task stack of open structured scopes (task groups, timeout
 * scopes): each starts with a uvt__scope_t linked to the task's
 * next-outer one, so that a leave out of order is refused and a task
 * ending with scopes open is noticed (uvt__scopes_abandon).
 */
#ifndef UVT_RUNTIME_SCOPE_H
#define UVT_RUNTIME_SCOPE_H

#include "internal.h"

#define UVT__SCOPE_MAGIC 0x75767453u /* "uvtS" */

enum { UVT__SCOPE_GROUP = 1, UVT__SCOPE_TIMEOUT = 2 };

static inline void uvt__scope_push(uvt_task_t *t, uvt__scope_t *sc, int kind) {
  sc->outer = t->scopes;
  sc->kind = kind;
  sc->magic = UVT__SCOPE_MAGIC;
  sc->task = t;
  t->scopes = sc;
}

/* The scope is open, of `kind`, and the current task's innermost: the
 * only one it may leave. */
static inline bool uvt__scope_leavable(const uvt__scope_t *sc, int kind,
                                       const uvt_task_t *self) {
  return sc->magic == UVT__SCOPE_MAGIC && sc->kind == kind &&
         sc->task == self && self->scopes == sc;
}

static inline void uvt__scope_pop(uvt__scope_t *sc) {
  sc->task->scopes = sc->outer;
  sc->outer = NULL;
  sc->magic = 0;
}

/* Take one cancel request back (asyncio 3.13's uncancel): at 0, a cancel
 * not yet delivered is dropped.  Returns the count left. */
int uvt__uncancel(uvt_task_t *t);

#endif

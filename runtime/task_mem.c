/*
 * The memory of released objects: the quarantine ring that keeps a
 * released handle readable (dead magic) for a while, and the recycled
 * task structs.  Calls nothing above the outcome helpers: the scheduler
 * frees what is left here when it goes (uvt__objects_free).
 */
#include "internal.h"

#include <stdlib.h>

/* Task structs kept for reuse, at most. */
#define FREE_TASKS_KEEP 16384

/* Free a released object's memory for real. */
static void obj_free(uvt__sched_t *s, uvt__obj_t *o) {
  if (o->name_owned != NULL) {
    free(o->name_owned);
    o->name_owned = NULL;
  }
  switch (o->kind) {
  case UVT_OBJECT_TASK: {
    uvt_task_t *t = (uvt_task_t *)o;
    if (t->out.message != NULL) uvt__outcome_free(&t->out);
    if (s != NULL && s->free_task_count < FREE_TASKS_KEEP) {
      t->ready_next = s->free_tasks;
      s->free_tasks = t;
      s->free_task_count++;
    } else {
      free(t);
    }
    break;
  }
  case UVT_OBJECT_FUTURE:
    uvt__outcome_free(&((uvt_future_t *)o)->out);
    free(o);
    break;
  default:
    free(o);
    break;
  }
}

void uvt__quarantine(uvt__sched_t *s, uvt__obj_t *o) {
  uvt__obj_t *old = s->quarantine[s->quarantine_next];
  s->quarantine[s->quarantine_next] = o;
  s->quarantine_next = (s->quarantine_next + 1) % UVT__QUARANTINE;
  if (old != NULL) obj_free(s, old);
}

/* Zero a recycled task with plain vector stores: for a memset of this
 * size gcc emits `rep stos`, whose start-up cost ~4 ns per spawn here.
 * Unrolled, the loop is not turned back into that memset. */
static inline void
zero_task(uvt_task_t *t) {
  typedef uint64_t v2u64 __attribute__((vector_size(16), may_alias, aligned(8)));
  v2u64 *p = (v2u64 *)(void *)t, zero = {0, 0};
  size_t i;
  _Static_assert(sizeof(uvt_task_t) % 16 == 0, "task size is 16-byte units");
#pragma GCC unroll 32
  for (i = 0; i < sizeof(uvt_task_t) / 16; i++) p[i] = zero;
}

uvt_task_t *uvt__task_alloc(uvt__sched_t *s) {
  uvt_task_t *t = s->free_tasks;
  if (t != NULL) {
    s->free_tasks = t->ready_next;
    s->free_task_count--;
    zero_task(t);
    return t;
  }
  return calloc(1, sizeof(*t));
}

void uvt__objects_free(uvt__sched_t *s) {
  size_t i;
  for (i = 0; i < UVT__QUARANTINE; i++)
    if (s->quarantine[i] != NULL) obj_free(NULL, s->quarantine[i]);
  while (s->free_tasks != NULL) {
    uvt_task_t *t = s->free_tasks;
    s->free_tasks = t->ready_next;
    free(t);
  }
}

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

/* Put a task struct on the recycled list; false if the list is full. */
static inline bool task_keep(uvt__sched_t *s, uvt_task_t *t) {
  if (s->free_task_count >= FREE_TASKS_KEEP) return false;
  t->ready_next = s->free_tasks;
  s->free_tasks = t;
  s->free_task_count++;
  return true;
}

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
    if (s == NULL || !task_keep(s, t)) free(t);
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
  if (old == NULL) return;
  /* The common case inline: a task that owns no name nor message goes
   * back on the recycled list (obj_free's call was 28 instructions of a
   * gathered task's cost). */
  if (old->kind == UVT_OBJECT_TASK && old->name_owned == NULL &&
      ((uvt_task_t *)old)->out.message == NULL &&
      task_keep(s, (uvt_task_t *)old))
    return;
  obj_free(s, old);
}

/* Zero the bytes [from, to) of a recycled task with plain vector stores:
 * for a memset of this size gcc emits `rep stos`, whose start-up cost ~4
 * ns per spawn here.  Unrolled, the loop is not turned back into that
 * memset.  Both bounds are multiples of 16 (asserted by the caller). */
static inline __attribute__((always_inline)) void
zero_task_range(uvt_task_t *t, size_t from, size_t to) {
  typedef uint64_t v2u64 __attribute__((vector_size(16), may_alias, aligned(8)));
  v2u64 *p = (v2u64 *)(void *)((char *)t + from), zero = {0, 0};
  size_t i;
#pragma GCC unroll 32
  for (i = 0; i < (to - from) / 16; i++) p[i] = zero;
}

/* The fields a spawn sets whatever they held (uvt__spawn and
 * uvt__obj_register), and those read only once set, are not zeroed:
 *   [0, obj.id)            the registry links, names and creation site
 *   [parent, ready_next)   parent, parent_id, fn, arg
 *   [OUTER, stack_size)    most of outer_await: read only while
 *                          await_nest > 0, which sets it first (coro.c)
 * Everything else is zeroed.  These bounds hold on every LP64 target
 * (x86_64, aarch64); a field moved across one fails the build here. */
#define TASK_OFF(f) offsetof(uvt_task_t, f)
#define OUTER ((TASK_OFF(outer_await) + 15) / 16 * 16)
_Static_assert(TASK_OFF(obj.id) % 16 == 0 && TASK_OFF(obj) == 0 &&
                   TASK_OFF(obj.prev) < TASK_OFF(obj.id) &&
                   TASK_OFF(obj.next) < TASK_OFF(obj.id) &&
                   TASK_OFF(obj.name) < TASK_OFF(obj.id) &&
                   TASK_OFF(obj.name_owned) < TASK_OFF(obj.id) &&
                   TASK_OFF(obj.file) < TASK_OFF(obj.id) &&
                   TASK_OFF(obj.func) < TASK_OFF(obj.id) &&
                   TASK_OFF(obj.on_shutdown) > TASK_OFF(obj.id) &&
                   TASK_OFF(obj.hook_slot) > TASK_OFF(obj.id),
               "the task's first 16-byte units hold only what register sets");
_Static_assert(TASK_OFF(parent) % 16 == 0 && TASK_OFF(ready_next) % 16 == 0 &&
                   TASK_OFF(ready_next) - TASK_OFF(parent) ==
                       sizeof(void *) * 2 + sizeof(uint64_t) + sizeof(uvt_fn) &&
                   TASK_OFF(parent_id) > TASK_OFF(parent) &&
                   TASK_OFF(fn) > TASK_OFF(parent) && TASK_OFF(arg) > TASK_OFF(parent),
               "parent .. arg are whole 16-byte units, set by every spawn");
_Static_assert(TASK_OFF(stack_size) % 16 == 0 &&
                   TASK_OFF(stack_size) ==
                       TASK_OFF(outer_await) + sizeof(uvt__site_t) &&
                   OUTER > TASK_OFF(await_nest) && OUTER < TASK_OFF(stack_size),
               "outer_await's tail ends at a 16-byte unit");
_Static_assert(sizeof(uvt_task_t) % 16 == 0, "task size is 16-byte units");

static inline void zero_task(uvt_task_t *t) {
  zero_task_range(t, TASK_OFF(obj.id), TASK_OFF(parent));
  zero_task_range(t, TASK_OFF(ready_next), OUTER);
  zero_task_range(t, TASK_OFF(stack_size), sizeof(uvt_task_t));
}

uvt_task_t *uvt__task_take(uvt__sched_t *s) {
  uvt_task_t *t = s->free_tasks;
  s->free_tasks = t->ready_next;
  s->free_task_count--;
  zero_task(t);
  return t;
}

uvt_task_t *uvt__task_fresh(void) {
  /* malloc and the stores, not calloc: calloc's call to memset cost more
   * than the struct's 30 stores (a gather of 100k tasks takes most of
   * them fresh: the recycled list keeps FREE_TASKS_KEEP). */
  uvt_task_t *t = malloc(sizeof(*t));
  if (t != NULL) zero_task_range(t, 0, sizeof(*t));
  return t;
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

/*
 * What a lock keeps of a task that ended holding it: a small record (id,
 * name, creation site) instead of the task's own struct, so that the task
 * is freed as any other while the stall and deadlock checks can still
 * name the holder.  The lock owns the record; a release by another task
 * or uvt_lock_destroy frees it (uvt__lock_ended_free).  Every record is
 * also on one list, so leak checkers can reach it.  This file calls
 * nothing above it (the stall check reads it; sync_lock.c links to it).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct ended_s {
  struct ended_s *prev, *next; /* all records: kept reachable (leak checks) */
  uint64_t id;
  const char *file;            /* its creation site */
  int line;
  char name[];
} ended_t;

uvt_task_t uvt__ended_holder = {.state = UVT_TASK_DONE,
                                  .obj = {.name = "(ended)", .file = "?"}};

static uv_mutex_t ended_mutex;
static uv_once_t ended_once = UV_ONCE_INIT;
static ended_t *ended_head;

static void ended_init(void) {
  if (uv_mutex_init(&ended_mutex) != 0)
    uvt__panic("cannot initialise the ended-holders mutex");
}

void uvt__lock_ended_free(uvt_lock_t *l) {
  ended_t *e = l->ended;
  l->ended = NULL;
  if (e == NULL) return;
  uv_mutex_lock(&ended_mutex);
  if (e->prev != NULL) e->prev->next = e->next;
  else ended_head = e->next;
  if (e->next != NULL) e->next->prev = e->prev;
  uv_mutex_unlock(&ended_mutex);
  free(e);
}

void uvt__lock_holder_ended(uvt_task_t *t) {
  uvt_lock_t *l = t->held_locks, *next;
  uv_once(&ended_once, ended_init);
  t->held_locks = NULL;
  for (; l != NULL; l = next) {
    size_t len = strlen(t->obj.name);
    ended_t *e;
    next = l->next_held;
    l->next_held = NULL;
    /* (Locks on the task's own stack were taken off the list before:
     * task.c, forget_own_stack_locks.) */
    e = malloc(sizeof(*e) + len + 1);
    l->holder = &uvt__ended_holder;
    /* Taken without a wait and never released: bind it now, while its
     * loop is known (the thread check of a later release needs it). */
    if (l->loop == NULL) l->loop = t->sched->loop;
    /* Out of memory: the lock stays held by "(ended)". */
    if ((l->ended = e) == NULL) continue;
    e->id = t->obj.id;
    e->file = t->obj.file;
    e->line = t->obj.line;
    memcpy(e->name, t->obj.name, len + 1);
    uv_mutex_lock(&ended_mutex);
    e->prev = NULL;
    e->next = ended_head;
    if (ended_head != NULL) ended_head->prev = e;
    ended_head = e;
    uv_mutex_unlock(&ended_mutex);
  }
}

const char *uvt__lock_holder_name(const uvt_lock_t *l, bool *ended) {
  *ended = l->holder == &uvt__ended_holder;
  if (*ended) return l->ended != NULL ? ((const ended_t *)l->ended)->name : "?";
  return l->holder != NULL ? l->holder->obj.name : "?";
}

/*
 * The registry of live objects, waiter lists and outcomes.
 *
 * Each scheduler keeps every live task, coroutine object and future (and,
 * later, stream) in one circular doubly linked list through its
 * uvt__obj_t, headed by a sentinel in the scheduler.  Unregistering marks
 * the object dead; the memory itself is freed by its owner (see the
 * quarantine in sched.c).  uvt_run's shutdown and the leak assertions
 * walk this list, so it is kept in both variants: it costs two pointer
 * writes per object.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

UVT__HOOK_TUNE void uvt__hook_create(uvt__sched_t *s, uvt__obj_t *o) {
  UVT__HOOK(.kind = UVT_HOOK_CREATE, .object_kind = (uvt_object_kind_t)o->kind,
            .id = o->id,
            .parent_id = uvt__spawn_parent(s) != NULL ? uvt__spawn_parent(s)->obj.id : 0,
            .task_id = s->current != NULL ? s->current->obj.id : 0,
            .name = o->name, .file = o->file, .line = o->line, .func = o->func,
            .loop = s->loop, .object = o);
  (void)s, (void)o;
}

UVT__HOOK_FN hook_retrieved(uvt__obj_t *o, uvt__outcome_t *out) {
#ifdef ASYNCIODEBUG
  if (UVT__HOOK_LIFE_TAKEN(UVT_HOOK_RETRIEVED, o, out->status, NULL)) return;
#endif
  UVT__HOOK_NOENTRY(.kind = UVT_HOOK_RETRIEVED, .object_kind = (uvt_object_kind_t)o->kind,
            .id = o->id, .name = o->name, .status = out->status, .object = o);
  (void)o, (void)out;
}

UVT__HOOK_TUNE void uvt__hook_destroy(uvt__obj_t *o) {
#ifdef ASYNCIODEBUG
  if (UVT__HOOK_LIFE_TAKEN(UVT_HOOK_DESTROY, o, 0, NULL)) return;
#endif
  UVT__HOOK_NOENTRY(.kind = UVT_HOOK_DESTROY, .object_kind = (uvt_object_kind_t)o->kind,
            .id = o->id, .name = o->name, .object = o);
  (void)o;
}

void uvt__obj_register(uvt__sched_t *s, uvt__obj_t *o, uvt_object_kind_t kind,
                       const char *name, const char *file, int line,
                       const char *func) {
  uvt__obj_link(s, o, kind, name, file, line, func);
  UVT__HOOK_AT(uvt__hook_create, s, o);
}

void uvt__outcome_retrieve(uvt__obj_t *o, uvt__outcome_t *out) {
  (void)o;
  if (out->retrieved) return;
  out->retrieved = true;
  UVT__HOOK_AT_NOENTRY(hook_retrieved, o, out);
}

void uvt__wrong_thread(const uvt__obj_t *o, const char *call, const char *file,
                       int line) {
  UVT__HOOK(.kind = UVT_HOOK_WRONG_THREAD,
            .object_kind = o != NULL ? (uvt_object_kind_t)o->kind : 0,
            .id = o != NULL ? o->id : 0, .name = o != NULL ? o->name : NULL,
            .file = o != NULL ? o->file : NULL, .line = o != NULL ? o->line : 0,
            .func = o != NULL ? o->func : NULL, .where_file = file,
            .where_line = line, .what = call, .object = o);
  (void)o, (void)call, (void)file, (void)line;
}

void uvt__obj_unregister(uvt__obj_t *o) {
  uvt__obj_unlink(o);
  UVT__HOOK_AT_NOENTRY(uvt__hook_destroy, o);
}

void uvt__waiters_push(uvt__waiters_t *l, uvt__waiter_t *w) {
  w->next = NULL;
  w->prev = l->tail;
  if (l->tail != NULL) l->tail->next = w;
  else l->head = w;
  l->tail = w;
  w->linked = true;
}

void uvt__waiters_remove(uvt__waiters_t *l, uvt__waiter_t *w) {
  if (!w->linked) return;
  if (w->prev != NULL) w->prev->next = w->next;
  else l->head = w->next;
  if (w->next != NULL) w->next->prev = w->prev;
  else l->tail = w->prev;
  w->prev = w->next = NULL;
  w->linked = false;
}

void uvt__waiters_fire_all(uvt__waiters_t *l) {
  uvt__waiter_t *w;
  /* Each node is the head when it is taken: unlinked by moving the head
   * (its own links are stale once `linked` is false; nothing reads them). */
  while ((w = l->head) != NULL) {
    uvt__waiter_t *next = w->next;
    l->head = next;
    if (next != NULL) next->prev = NULL;
    else l->tail = NULL;
    w->linked = false;
    w->fire(w);
  }
}

void uvt__outcome_complete(uvt__outcome_t *o, int status) {
  o->status = status;
  o->done = true;
  uvt__waiters_fire_all(&o->waiters);
}

void uvt__outcome_hand_over(const uvt__outcome_t *o, bool ok, void **result,
                            char **message) {
  if (result != NULL) *result = ok ? o->result : NULL;
  if (message != NULL)
    *message = ok && o->status < 0 && o->message != NULL ? strdup(o->message)
                                                        : NULL;
}

void uvt__outcome_free(uvt__outcome_t *o) {
  free(o->message);
  o->message = NULL;
}

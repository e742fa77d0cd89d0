/*
 * Cancel counting (asyncio's cancelling()/uncancel()) and the clean-up of
 * scopes a task left open when it ended.
 */
#include "scope.h"

#include <stddef.h>

int uvt__uncancel(uvt_task_t *t) {
  if (t->cancel_requests > 0) t->cancel_requests--;
  if (t->cancel_requests == 0) t->cancel_pending = false;
  return t->cancel_requests;
}

int uvt_cancelling(const uvt_task_t *t) {
  if (t == NULL) t = uvt__task_current();
  if (t == NULL || t->obj.magic != UVT__MAGIC_LIVE) return 0;
  return t->cancel_requests;
}

int uvt_uncancel(uvt_task_t *t) {
  if (t == NULL) t = uvt__task_current();
  if (t == NULL) return UVT_EINVAL;
  if (t->obj.magic != UVT__MAGIC_LIVE) return UVT_ERELEASED;
  return uvt__uncancel(t);
}

/* Runs on the ending task's stack, while the scopes' memory (often on
 * that stack) is still there: after this nothing points into it. */
void uvt__scopes_abandon(uvt_task_t *t) {
  while (t->scopes != NULL) {
    uvt__scope_t *sc = t->scopes;
    if (sc->kind == UVT__SCOPE_GROUP)
      uvt__group_abandon((uvt_group_t *)(void *)((char *)sc - offsetof(uvt_group_t, scope)));
    else
      uvt__timeout_abandon((uvt_timeout_t *)(void *)((char *)sc - offsetof(uvt_timeout_t, scope)));
    uvt__scope_pop(sc);
  }
}

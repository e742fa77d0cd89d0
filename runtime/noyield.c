/*
 * No-yield sections (UVT_NO_YIELD_BEGIN/END).  The release library keeps
 * only the per-task depth; every park's AWAIT event (sched.c) carries it,
 * so that a subscriber sees an await made inside a section.
 */
#include "internal.h"

void uvt_no_yield_begin_at(const char *file, int line, const char *func) {
  uvt_task_t *t = uvt__task_current();
  (void)file, (void)line, (void)func;
  if (t == NULL) return;
  t->no_yield_depth++;
  UVT__HOOK(.kind = UVT_HOOK_NO_YIELD_BEGIN, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .task_id = t->obj.id, .name = t->obj.name,
            .where_file = file, .where_line = line, .where_func = func,
            .no_yield_depth = t->no_yield_depth, .object = t);
}

void uvt_no_yield_end_at(const char *file, int line, const char *func) {
  uvt_task_t *t = uvt__task_current();
  if (t == NULL) return;
  if (t->no_yield_depth == 0) {
    uvt__warn("%s:%d: %s: UVT_NO_YIELD_END without a matching BEGIN", file,
              line, func);
    return;
  }
  t->no_yield_depth--;
  UVT__HOOK(.kind = UVT_HOOK_NO_YIELD_END, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .task_id = t->obj.id, .name = t->obj.name,
            .where_file = file, .where_line = line, .where_func = func,
            .no_yield_depth = t->no_yield_depth, .object = t);
}

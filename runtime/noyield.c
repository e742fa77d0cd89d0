/*
 * No-yield sections (UVT_NO_YIELD_BEGIN/END): the per-task depth, and
 * where the outermost section began.  Every call that may suspend checks
 * the depth first (UVT__YIELD_POINT, checks.c); every park's AWAIT event
 * (sched.c) carries it too.
 */
#include "internal.h"

void uvt_no_yield_begin_at(const char *file, int line, const char *func) {
  uvt_task_t *t = uvt__task_current();
  (void)file, (void)line, (void)func;
  if (t == NULL) return;
#ifdef ASYNCIODEBUG
  /* From now on the yield points look at task depths (hook_points.h). */
  if (!(UVT__GATE_READ() & UVT__GATE_NO_YIELD))
    __atomic_or_fetch(&uvt__gate, UVT__GATE_NO_YIELD, __ATOMIC_RELAXED);
#endif
  if (t->no_yield_depth++ == 0) {
    t->no_yield_reported = false;
    t->no_yield_file = file;
    t->no_yield_line = line;
  }
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

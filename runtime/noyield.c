/*
 * No-yield sections (UVT_NO_YIELD_BEGIN/END).  The release library keeps
 * only the per-task depth; the debug library's tracer hooks
 * uvt__noyield_check to record an await made inside a section.
 */
#include "internal.h"

void uvt_no_yield_begin_at(const char *file, int line, const char *func) {
  uvt_task_t *t = uvt__task_current();
  (void)file, (void)line, (void)func;
  if (t != NULL) t->no_yield_depth++;
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
}

void uvt__noyield_check(uvt_task_t *t, const uvt__site_t *where) {
  (void)t, (void)where;
}

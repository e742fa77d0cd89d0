/*
 * No-yield sections (UVT_NO_YIELD_BEGIN/END).  The release library keeps
 * only the per-task depth; the debug library's tracer hooks
 * uvt__noyield_check to record an await made inside a section.
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

UVT__HOOK_FN hook_await(uvt_task_t *t, const uvt__site_t *where) {
  const uvt__site_t *w = t->await_nest > 0 ? &t->outer_await : where;
  UVT__HOOK(.kind = UVT_HOOK_AWAIT, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .task_id = t->obj.id, .name = t->obj.name,
            .file = t->obj.file, .line = t->obj.line, .func = t->obj.func,
            .where_file = w->file, .where_line = w->line,
            .where_func = w->func, .what = w->what,
            .no_yield_depth = t->no_yield_depth, .object = t,
            .wait = (uvt_wait_kind_t)where->wait, .wait_on = where->on,
            .wait_on_id = UVT__SITE_ON_ID(where),
            .wait_timeout = where->timeout);
  /* Loop time (ms), not a clock read: precise enough to see a hang. */
  t->parked_ns = uv_now(t->sched->loop) * 1000000u;
  (void)w;
}

/* Every park passes here.  The await reported is the outermost inline
 * one (uvt_await_coro) if any: that is the line in the section's own code
 * that led to the suspension; what it waits on is the park's own. */
void uvt__noyield_check(uvt_task_t *t, const uvt__site_t *where) {
  UVT__HOOK_AT(hook_await, t, where);
  (void)t, (void)where;
}

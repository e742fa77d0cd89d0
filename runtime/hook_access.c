/*
 * What hook subscribers may ask the runtime besides the events
 * (include/uvtask/hooks.h); the frame accessor is task_frame.c, the
 * snapshot request threadsafe.c.
 */
#include "internal.h"
#include "findings.h"

uint64_t uvt_hook_current_task(void) {
  uvt_task_t *t = uvt__task_current();
  return t != NULL ? t->obj.id : 0;
}

int uvt_hook_current_stack(const void **lo, const void **hi) {
  uvt_task_t *t = uvt__task_current();
  if (t == NULL || t->stack.lo == NULL) return UVT_ENOTASK;
  *lo = t->stack.lo;
  *hi = (const char *)t->stack.lo + t->stack.size;
  return 0;
}

uint64_t uvt_hook_stack_overflow(const void *siginfo, const void *ucontext) {
  return uvt__stack_overflow_id(siginfo, ucontext);
}

void uvt_hook_scan_at_exit(void) { uvt__scan_at_exit(); }

void uvt_hook_stderr_line(const char *prefix, const char *text) {
  uvt__stderr_line(prefix != NULL ? prefix : "", text != NULL ? text : "");
}

void uvt_hook_set_findings_log(int on) { uvt__findings_quiet = !on; }

int uvt_hook_test_name(char *buf, size_t size) {
  if (buf == NULL || size == 0) return 0;
  return uvt__testing_name_copy(buf, size) ? 1 : 0;
}

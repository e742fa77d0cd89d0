/*
 * uvt_hook_task_frame: a suspended task's saved registers for unwinders
 * (hooks.h).  The per-architecture reading of the saved frame is
 * uvt__ctx_frame, next to the switch code (context.c).
 */
#include "internal.h"

#include <string.h>

int uvt_hook_task_frame(const void *object, uvt_task_frame_t *out) {
  const uvt__obj_t *o = object;
  const uvt_task_t *t;
  uvt__ctx_frame_t f;
  if (o == NULL || out == NULL || o->magic != UVT__MAGIC_LIVE ||
      o->kind != UVT_OBJECT_TASK)
    return UVT_EINVAL;
  t = (const uvt_task_t *)o;
  /* Only a suspended task has a saved frame: not one running, nor one
   * that never ran (no stack yet) or ended (stack given back). */
  if (t->stack.lo == NULL ||
      (t->state != UVT_TASK_PARKED && t->state != UVT_TASK_READY) ||
      t == uvt__task_current())
    return UVT_EINVAL;
  if (uvt__ctx_frame(&t->ctx, &f) != 0) return UV_ENOTSUP;
  memset(out, 0, sizeof(*out));
  out->pc = f.pc;
  out->sp = f.sp;
  out->fp = f.fp;
  memcpy(out->regs, f.regs, sizeof(out->regs));
  out->nregs = f.nregs;
  out->stack_lo = t->stack.lo;
  out->stack_hi = (const char *)t->stack.lo + t->stack.size;
  return 0;
}

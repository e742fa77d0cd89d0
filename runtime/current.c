/*
 * This thread's scheduler and running task: the bottom of the runtime's
 * layers.  Every file may ask who runs; this file calls nothing, so that
 * the lowest layers (stack.c, the checks) can ask without depending on
 * the scheduler that sets it.
 */
#include "internal.h"

/* initial-exec: a plain load, instead of a __tls_get_addr call per access
 * from a shared library. */
_Thread_local uvt__sched_t *uvt__tls_sched
    __attribute__((tls_model("initial-exec")));
_Thread_local uv_loop_t *uvt__tls_loop
    __attribute__((tls_model("initial-exec"))) = UVT__NO_LOOP;

uvt__sched_t *uvt__sched_current(void) { return uvt__tls_sched; }

/* The one way to change this thread's scheduler: its loop goes with it
 * (the loop-thread check compares against it, internal.h). */
void uvt__sched_set_current(uvt__sched_t *s) {
  uvt__tls_sched = s;
  uvt__tls_loop = s != NULL ? s->loop : UVT__NO_LOOP;
}

uvt_task_t *uvt__task_current(void) {
  uvt__sched_t *s = uvt__tls_sched;
  return s != NULL ? s->current : NULL;
}

/*
 * The slow halves of the checks every public call makes first (see
 * internal.h): which thread may touch an object, and calls that may
 * suspend inside a no-yield section.
 *
 * The fast halves are inline in internal.h and cost one thread-local load
 * and a compare; what is here runs only when that compare fails: on
 * another thread than the loop's (a bug, or a plain libuv callback on the
 * loop thread of a program that runs its own uv_run), or for an object
 * not yet bound to a loop.
 */
#include "internal.h"
#include "findings.h"

/* Whether the calling thread runs `s`'s loop. */
static bool runs_sched(const uvt__sched_t *s) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &s->owner);
}

static int refuse(const uvt__obj_t *o, const char *call, const char *file,
                  int line) {
  uvt__wrong_thread(o, call, file, line);
  if (file != NULL)
    uvt__warn("%s:%d: %s: called from a thread that does not run its loop "
              "(use uvt_call_threadsafe); refused", file, line, call);
  else
    uvt__warn("%s: called from a thread that does not run its loop (use "
              "uvt_call_threadsafe); refused", call);
  return UVT_EWRONGTHREAD;
}

int uvt__loop_check_slow(uv_loop_t **bound, const char *call, const char *file,
                         int line) {
  uvt__sched_t *s;
  if (*bound == NULL) {
    /* First use: bind it to this thread's loop, if the thread has one. */
    if (uvt__tls_loop != UVT__NO_LOOP) *bound = uvt__tls_loop;
    return 0;
  }
  /* Under the list's mutex, so a loop closing meanwhile is not a race. */
  s = uvt__sched_for_loop(*bound, NULL);
  if (s == NULL || runs_sched(s)) return 0;
  return refuse(NULL, call, file, line);
}

int uvt__sched_check_slow(uvt__sched_t *s, const uvt__obj_t *o,
                          const char *call, const char *file, int line) {
  if (runs_sched(s)) return 0;
  return refuse(o, call, file, line);
}

bool uvt__off_loop_thread(const char *call, const char *file, int line) {
  if (!uvt__sched_any()) return false;
  refuse(NULL, call, file, line);
  return true;
}

void uvt__yield_in_section(uvt_task_t *t, const char *what, const char *file,
                           int line, const char *func) {
  if (t->no_yield_reported) return;
  t->no_yield_reported = true;
  uvt__finding_yield_in_section(t, what, file, line, func);
}

int uvt__not_in_task(uvt__sched_t *s, const uvt__obj_t *o, const char *call,
                     const char *file, int line) {
  if (s != NULL && o != NULL && o->magic == UVT__MAGIC_LIVE &&
      uvt__sched_check(s, o, call, file, line) != 0)
    return UVT_EWRONGTHREAD;
  return UVT_ENOTASK;
}

int uvt__no_task_call(const char *call, const char *file, int line) {
  if (!uvt__sched_any() || uvt__sched_owned_here()) return UVT_ENOTASK;
  return refuse(NULL, call, file, line);
}

int uvt__no_task_here(uv_loop_t **bound, const char *call, const char *file,
                      int line) {
  uvt__sched_t *s;
  if (*bound == NULL) return UVT_ENOTASK;
  s = uvt__sched_for_loop(*bound, NULL);
  if (s == NULL || runs_sched(s)) return UVT_ENOTASK;
  return refuse(NULL, call, file, line);
}

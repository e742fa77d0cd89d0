/*
 * uvtask/hooks.h — instrumentation points of the task runtime.
 *
 * The debug library (built with ASYNCIODEBUG) calls every subscriber at
 * each point below, synchronously, on the thread where it happens (the
 * loop's thread, except UVT_HOOK_WRONG_THREAD).  The tracer that records
 * into SQLite is one subscriber; a test or a tool may add others.  The
 * release library has no hook points: uvt_hook_add returns UV_ENOTSUP
 * there, and the symbols exist so that both libraries export the same.
 *
 * A subscriber must be quick and must not call back into uvtask (no spawn,
 * no await) except the accessors documented for the event.  Pointers in an
 * event are valid only during the call.
 */
#ifndef UVTASK_HOOKS_H
#define UVTASK_HOOKS_H

#include "../uvtask.h"
#include "kinds.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum uvt_hook_kind {
  UVT_HOOK_CREATE = 1,     /* an object was created (object kind below) */
  UVT_HOOK_RESUME,         /* a task is about to run a step */
  UVT_HOOK_SUSPEND,        /* its step ended: parked at `where`, or done */
  UVT_HOOK_DONE,           /* a task or future completed: status, message */
  UVT_HOOK_RETRIEVED,      /* its status was read (await, gather) */
  UVT_HOOK_DETACH,         /* the handle was given up */
  UVT_HOOK_DESTROY,        /* the object is gone (coroutine: consumed) */
  UVT_HOOK_CALLBACK_BEGIN, /* a libuv callback into the runtime begins */
  UVT_HOOK_CALLBACK_END,
  UVT_HOOK_NO_YIELD_BEGIN, /* UVT_NO_YIELD_BEGIN at `where` */
  UVT_HOOK_NO_YIELD_END,
  UVT_HOOK_AWAIT,          /* a task is about to park at `where` */
  UVT_HOOK_FAIL,           /* uvt_fail recorded a message at `where` */
  UVT_HOOK_FINDING,        /* the runtime decided a finding (`finding`) */
  UVT_HOOK_WRONG_THREAD,   /* a loop-thread call made from another thread */
  UVT_HOOK_LOOP_CLOSE,     /* uvtask is about to detach from a loop */
  UVT_HOOK_KIND_MAX
} uvt_hook_kind_t;

typedef struct uvt_hook_event {
  uvt_hook_kind_t kind;
  uvt_object_kind_t object_kind;
  uint64_t id;          /* the object's id, unique in the process */
  uint64_t parent_id;   /* CREATE: the task that created it (0: none) */
  uint64_t task_id;     /* the task running now (0: none) */
  const char *name;     /* the object's name */
  const char *file;     /* CREATE: the creating call's site */
  int line;
  const char *func;
  const char *where_file; /* SUSPEND, AWAIT, NO_YIELD, FAIL: the call site */
  int where_line;
  const char *where_func;
  const char *what;     /* AWAIT/SUSPEND: the call ("uvt_sleep"); CALLBACK:
                           the callback ("timer", "async", "work") */
  int status;           /* DONE: the status; FINDING: the error, if any */
  const char *message;  /* DONE/FAIL: the message; FINDING: the text */
  uvt_finding_kind_t finding; /* FINDING: its kind (uvtask/kinds.h) */
  int no_yield_depth;   /* AWAIT: the task's no-yield depth */
  uv_loop_t *loop;
  const void *object;   /* opaque identity of the object */
} uvt_hook_event_t;

typedef void (*uvt_hook_fn)(const uvt_hook_event_t *ev, void *data);

/* Subscribe fn(ev, data) to every hook point.  Returns 0, UV_ENOTSUP in
 * the release library, UVT_ENOMEM, or UVT_EINVAL (NULL fn; at most 8
 * subscribers).  Call it before the loop runs tasks; it is not synchronised
 * with hook points running on other threads. */
UVT_EXPORT int uvt_hook_add(uvt_hook_fn fn, void *data);
/* Unsubscribe; 0 or UVT_EINVAL if it was not subscribed. */
UVT_EXPORT int uvt_hook_remove(uvt_hook_fn fn, void *data);

/* 1 in the debug library, 0 in the release one. */
UVT_EXPORT int uvt_debug_build(void);

#ifdef __cplusplus
}
#endif
#endif

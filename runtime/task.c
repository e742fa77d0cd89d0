/*
 * Tasks: spawning, awaiting, detaching, cancelling, and their outcome.
 *
 * Ownership is counted (out.refs, see internal.h): spawn gives the caller
 * one reference; uvt_task_ref adds one; uvt_await, uvt_wait_for and
 * uvt_detach each give one up; gather and wait hold one each for as long
 * as they wait.  The struct lives until (a) the task has ended, (b) no
 * reference is left and (c) its stack is back in the pool: the pass that
 * sees a task end gives its stack back (a task cannot free the stack it
 * runs on).  An await keeps its reference until it has read the outcome,
 * so nothing it reads can be freed under it.
 */
#include "internal.h"
#include "findings.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The scheduler a call from this thread should use, or NULL. */
static uvt__sched_t *sched_here(void) { return uvt__sched_current(); }

static bool on_owner_thread(const uvt__sched_t *s) {
  uv_thread_t self;
  /* The scheduler running on this thread is, by definition, on it. */
  if (uvt__sched_current() == s) return true;
  self = uv_thread_self();
  return uv_thread_equal(&self, &s->owner);
}

/* A handle check shared by the calls taking a task. */
static int task_check(const uvt_task_t *t) {
  if (t == NULL) return UVT_EINVAL;
  if (t->obj.magic != UVT__MAGIC_LIVE) return UVT_ERELEASED;
  return 0;
}

/* Flattened, as uvt_await_at: uvt__spawn and the object's registration
 * inline here (21 instructions fewer per spawn+await), and the creation
 * hook point then lies in the function the user called, where
 * ASYNCIODEBUG_STACKS=fp starts its walk (hooks/hook_points.h). */
__attribute__((flatten)) uvt_task_t *uvt_spawn_at(uvt_fn fn, void *arg, size_t stack_size,
                         const char *name, const char *file, int line,
                         const char *func) {
  uvt__sched_t *s = sched_here();
  uvt_task_t *t;
  if (fn == NULL) {
    uvt__warn("%s:%d: uvt_spawn(NULL): no function to run", file, line);
    return NULL;
  }
  if (stack_size > UVT__STACK_MAX) {
    uvt__warn("%s:%d: uvt_spawn_stack(%s): stack size %zu is more than the "
              "maximum (%zu bytes)", file, line, name, stack_size,
              UVT__STACK_MAX);
    return NULL;
  }
  if (s == NULL && uvt__off_loop_thread("uvt_spawn", file, line)) return NULL;
  if (s == NULL) {
    uvt__warn("%s:%d: uvt_spawn(%s): no uvtask loop runs on this thread "
              "(use uvt_run, uvt_spawn_on or uvt_call_threadsafe)",
              file, line, name);
    return NULL;
  }
  t = uvt__spawn(s, fn, arg, stack_size, name, file, line, func);
  if (t == NULL)
    uvt__warn("%s:%d: uvt_spawn(%s): out of memory", file, line, name);
  return t;
}

uvt_task_t *uvt_spawn_on_at(uv_loop_t *loop, uvt_fn fn, void *arg,
                            const char *name, const char *file, int line,
                            const char *func) {
  uvt__sched_t *s;
  uvt_task_t *t;
  if (loop == NULL || fn == NULL) {
    uvt__warn("%s:%d: uvt_spawn_on(%s): loop and function are required",
              file, line, name);
    return NULL;
  }
  s = uvt__sched_for_loop(loop, &uvt__task_ops);
  if (s == NULL) {
    uvt__warn("%s:%d: uvt_spawn_on(%s): out of memory", file, line, name);
    return NULL;
  }
  if (!on_owner_thread(s)) {
    uvt__wrong_thread(NULL, "uvt_spawn_on", file, line);
    uvt__warn("%s:%d: uvt_spawn_on(%s): called from a thread that does not "
              "run the loop; use uvt_call_threadsafe",
              file, line, name);
    return NULL;
  }
  t = uvt__spawn(s, fn, arg, 0, name, file, line, func);
  if (t == NULL)
    uvt__warn("%s:%d: uvt_spawn_on(%s): out of memory", file, line, name);
  return t;
}

UVT__HOOK_FN hook_done(uvt_task_t *t, int status) {
#ifdef ASYNCIODEBUG
  if (UVT__HOOK_LIFE_TAKEN(UVT_HOOK_DONE, &t->obj, status, t->out.message)) return;
#endif
  UVT__HOOK_NOENTRY(.kind = UVT_HOOK_DONE, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .task_id = t->obj.id, .name = t->obj.name,
            .status = status, .message = t->out.message, .loop = t->sched->loop,
            .object = t);
  (void)t, (void)status;
}

UVT__HOOK_FN hook_detach(uvt_task_t *t) {
  UVT__HOOK(.kind = UVT_HOOK_DETACH, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .name = t->obj.name, .object = t);
  (void)t;
}

/* Locks still held when the task's function returned, less those that
 * lived on its own stack: they died with the frame that declared them.
 * Inlined and calling nothing, so that no frame of ours is pushed over
 * the dead stack while the list runs through it (a callee's frame would
 * overwrite the very locks it reads). */
static inline __attribute__((always_inline)) void
forget_own_stack_locks(uvt_task_t *t) {
  uvt_lock_t *l = t->held_locks, **keep = &t->held_locks;
  uintptr_t lo = (uintptr_t)t->stack.lo;
  while (l != NULL) {
    uvt_lock_t *next = l->next_held;
    if ((uintptr_t)l - lo < t->stack.size) *keep = next;
    else keep = &l->next_held;
    l = next;
  }
}

/* Inlined into task_entry, the one hot caller.  `hooks` (a constant):
 * whether to look at the hook flag for the DONE event. */
static inline __attribute__((always_inline)) void
task_complete(uvt_task_t *t, int status, bool hooks) {
  /* Ended holding locks: they name a record of it from now on.  First,
   * before any call lays a frame over the stack the task's function
   * left. */
  if (UVT__UNLIKELY(t->held_locks != NULL)) {
    forget_own_stack_locks(t);
    if (t->held_locks != NULL) uvt__lock_holder_ended(t);
  }
  /* A cancel the task never observed (requested while it ran, or while it
   * was ready to run and it then returned without awaiting) wins, as in
   * asyncio (test_tasks test_cancel_at_end). */
  if (UVT__UNLIKELY(t->cancel_pending)) {
    t->cancel_pending = false;
    status = UVT_ECANCELED;
  }
  if (UVT__UNLIKELY(t->scopes != NULL)) uvt__scopes_abandon(t);
  uvt__task_set_state(t, UVT_TASK_DONE);
  t->no_yield_depth = 0;
  if (t->is_main) uv_stop(t->sched->loop);
  if (hooks) UVT__HOOK_AT_NOENTRY(hook_done, t, status);
  uvt__outcome_complete(&t->out, status);
  if (UVT__UNLIKELY(t->group != NULL)) uvt__group_child_done(t);
}

void uvt__task_complete(uvt_task_t *t, int status) { task_complete(t, status, true); }

/* The first frame of every task, called by the context trampoline.  The
 * end is in two copies, with and without hook points: one test of the
 * hook flag for the DONE event and the last switch's, not one each.  The
 * two copies make the debug library's inliner give up on the end's calls
 * (uvt__sched_task_end, the awaiters' wake-up: 15 instructions a task
 * more), so it is told to inline them; the release library has one copy
 * and inlines them by itself (flattened, it comes out 5 worse).  The
 * hooked copy is inlined too, for the reason sched.c's uvt__park
 * gives. */
static inline __attribute__((always_inline, noreturn, unused)) void
task_end_hooked(uvt_task_t *t, int status) {
  task_complete(t, status, true);
  uvt__sched_task_end(t, true);
}

#ifdef ASYNCIODEBUG
#define TASK_ENTRY_ATTR __attribute__((flatten))
#else
#define TASK_ENTRY_ATTR
#endif
static TASK_ENTRY_ATTR void task_entry(void *arg) {
  uvt_task_t *t = arg;
  int status;
  uvt__sched_task_begin(t);
  status = t->fn(t->arg);
  if (UVT__HOOKS_ACTIVE()) task_end_hooked(t, status);
  task_complete(t, status, false);
  uvt__sched_task_end(t, false);
}

const uvt__task_ops_t uvt__task_ops = {task_entry, uvt__task_complete,
                                       uvt__task_release};

uvt_task_t *uvt_task_ref(uvt_task_t *t) {
  if (task_check(t) != 0) return NULL;
  if (uvt__sched_check(t->sched, &t->obj, "uvt_task_ref", NULL, 0)) return NULL;
  t->out.refs++;
  return t;
}

/* ---- await ---------------------------------------------------------------- */

typedef struct {
  uvt__waiter_t w;
  uvt_task_t *target;
  bool cancelled;
} await_t;

static void await_fire(uvt__waiter_t *w) { uvt__wake(w->task, 0); }

/* Cancelling the awaiter cancels what it awaits (as asyncio does); the
 * awaiter stays parked until the target has finished. */
static void await_on_cancel(uvt_task_t *self, void *data) {
  await_t *a = data;
  (void)self;
  a->cancelled = true;
  uvt__task_cancel(a->target);
}

/* Park the current task until `t` is done.  Returns true if the waiting
 * task was cancelled meanwhile. */
static inline __attribute__((always_inline)) bool
await_done(uvt_task_t *self, uvt_task_t *t, const uvt__site_t *site,
           bool cancelled) {
  await_t a;
  memset(&a, 0, sizeof(a));
  a.target = t;
  a.cancelled = cancelled;
  a.w.fire = await_fire;
  a.w.task = self;
  uvt__waiters_push(&t->out.waiters, &a.w);
  /* Only a target parked itself can close a cycle (waitfor.c). */
  if (UVT__UNLIKELY(t->state == UVT_TASK_PARKED) && !site->timeout)
    uvt__deadlock_check(a.w.task, site);
  while (!t->out.done) {
    int st = uvt__park_revocable(site, await_on_cancel, &a);
    if (st == UVT_ECANCELED && !a.cancelled) {
      /* A cancel that arrived before the park, or after `t` finished but
       * before we ran again (it wins, as in asyncio): deliver it the same
       * way. */
      a.cancelled = true;
      if (!t->out.done) uvt__task_cancel(t);
    }
  }
  uvt__waiters_remove(&t->out.waiters, &a.w);
  return a.cancelled;
}

bool uvt__await_done(uvt_task_t *t, const uvt__site_t *site, bool cancelled) {
  return await_done(uvt__task_current(), t, site, cancelled);
}

/* What an await that got to the end does: read the status, hand the
 * result over, give the caller's reference up.  In two copies (`hooks`,
 * a constant): one test of the hook flag for RETRIEVED and DESTROY. */
static inline __attribute__((always_inline)) int
await_end(uvt_task_t *t, bool cancelled, void **result, char **message,
          bool hooks) {
  int err;
  if (UVT__LIKELY(!cancelled)) {
    if (hooks) uvt__outcome_retrieve(&t->obj, &t->out);
    else uvt__outcome_retrieve_quiet(&t->out);
    err = t->out.status;
  } else {
    err = UVT_ECANCELED;
  }
  if (result != NULL || message != NULL)
    uvt__outcome_hand_over(&t->out, !cancelled, result, message);
  if (hooks) uvt__task_unref(t);
  else uvt__task_unref_quiet(t);
  return err;
}

/* Flattened: park and the switch inlined here leave fewer returns
 * between the switch and the caller, and each return after a switch is
 * one the CPU may mispredict (5-6 % of a spawn+await). */
__attribute__((flatten)) int uvt_await_at(uvt_task_t *t, void **result,
                                          char **message, const char *file,
                                          int line, const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt__site_t site = UVT__SITE_ON("uvt_await", UVT_WAIT_TASK, t, false);
  bool cancelled = false;
  int err;
  if (self == NULL)
    return uvt__not_in_task(UVT__TASK_SCHED(t), UVT__TASK_OBJ(t), "uvt_await", file, line);
  if ((err = task_check(t)) != 0) return err;
  if (t == self) return UVT_ESELF;
  if (t->sched != self->sched) return UVT_EWRONGTHREAD;
  UVT__YIELD_POINT(self, "uvt_await");
  /* The caller's reference, given up below, keeps `t` while parked. */
  if (!t->out.done) cancelled = await_done(self, t, &site, false);
  /* Both copies inlined, as in sched.c's uvt__park. */
  if (UVT__HOOKS_ACTIVE()) return await_end(t, cancelled, result, message, true);
  return await_end(t, cancelled, result, message, false);
}

/* ---- detach / cancel -------------------------------------------------------- */

/* Off the loop's pass (the thread check) or with a hook subscriber: out
 * of line, so that the common detach keeps no register across a call. */
static __attribute__((noinline, cold)) void
detach_slow(uvt_task_t *t, const char *file, int line) {
  if (!on_owner_thread(t->sched)) {
    uvt__wrong_thread(&t->obj, "uvt_detach", file, line);
    uvt__warn("uvt_detach('%s'): called from a thread that does not run "
              "its loop; ignored",
              t->obj.name);
    return;
  }
  UVT__HOOK_AT(hook_detach, t);
  uvt__task_unref(t);
}

void uvt_detach_at(uvt_task_t *t, const char *file, int line,
                   const char *func) {
  (void)func;
  if (task_check(t) != 0 || t->out.refs <= 0) return;
  /* The pass under way on this thread is the task's own: on its thread. */
  if (UVT__UNLIKELY(t->sched != uvt__tls_sched) || UVT__HOOKS_ACTIVE()) {
    detach_slow(t, file, line);
    return;
  }
  uvt__task_unref_quiet(t);
}

int uvt_cancel_at(uvt_task_t *t, const char *file, int line,
                  const char *func) {
  int err = task_check(t);
  (void)func;
  if (err != 0) return err;
  if (!on_owner_thread(t->sched)) {
    uvt__wrong_thread(&t->obj, "uvt_cancel", file, line);
    uvt__warn("%s:%d: uvt_cancel('%s'): called from a thread that does not "
              "run its loop; use uvt_call_threadsafe",
              file, line, t->obj.name);
    return UVT_EWRONGTHREAD;
  }
  return uvt__task_cancel(t);
}

/* ---- accessors ---------------------------------------------------------------- */

bool uvt_done(const uvt_task_t *t) {
  return task_check(t) == 0 && t->out.done;
}

void *uvt_result(const uvt_task_t *t) {
  return task_check(t) == 0 && t->out.done ? t->out.result : NULL;
}

const char *uvt_error_message(const uvt_task_t *t) {
  if (task_check(t) != 0 || !t->out.done || t->out.status >= 0) return NULL;
  return t->out.message;
}

const char *uvt_task_name(const uvt_task_t *t) {
  return task_check(t) == 0 ? t->obj.name : NULL;
}

uvt_task_t *uvt_current(void) { return uvt__task_current(); }

uv_loop_t *uvt_loop(void) {
  uvt_task_t *t = uvt__task_current();
  return t != NULL ? t->sched->loop : NULL;
}

void uvt_name(uvt_task_t *t, const char *fmt, ...) {
  va_list ap;
  char *name = NULL;
  if (t == NULL) t = uvt__task_current();
  if (task_check(t) != 0 || fmt == NULL) return;
  if (uvt__sched_check(t->sched, &t->obj, "uvt_name", NULL, 0)) return;
  va_start(ap, fmt);
  if (vasprintf(&name, fmt, ap) < 0) name = NULL;
  va_end(ap);
  if (name == NULL) return;
  free(t->obj.name_owned);
  t->obj.name_owned = name;
  t->obj.name = name;
  UVT__HOOK(.kind = UVT_HOOK_RENAME, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id,
            .task_id = uvt__task_current() ? uvt__task_current()->obj.id : 0,
            .name = name,
            .loop = t->sched->loop, .object = t);
}

void uvt_set_result(void *result) {
  uvt_task_t *t = uvt__task_current();
  if (t != NULL) t->out.result = result;
}

int uvt_fail_at(const char *file, int line, const char *func, int code,
                const char *fmt, ...) {
  uvt_task_t *t = uvt__task_current();
  va_list ap;
  char *msg = NULL;
  (void)func;
  if (t == NULL || fmt == NULL) return code;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  va_end(ap);
  free(t->out.message);
  t->out.message = msg;
  t->out.fail_file = file;
  t->out.fail_line = line;
  UVT__HOOK(.kind = UVT_HOOK_FAIL, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .task_id = t->obj.id, .name = t->obj.name,
            .where_file = file, .where_line = line, .where_func = func,
            .status = code, .message = msg, .object = t);
  return code;
}

/* The plain symbol of 0.2.0, for programs built before the header's macro
 * passed the caller's location. */
void (uvt_detach)(uvt_task_t *t) { uvt_detach_at(t, NULL, 0, NULL); }

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
 * no await) except the accessors below.  Pointers in an event are valid
 * only during the call.
 *
 * Rules of the boundary:
 *  - `object` is an opaque identity: compare it, pass it to an accessor,
 *    never dereference it or cast it to a runtime type.
 *  - Per-object state belongs in the object's subscriber word (`slot`),
 *    which one subscriber claims (uvt_hook_add_slot).
 *  - Kinds (findings, objects, task states, waits) are the enums of
 *    uvtask/kinds.h, never strings to compare.
 *  - Events are sent only while someone subscribes; a subscriber added
 *    while tasks run sees each object from its next event on (CREATE may
 *    have been missed: `slot` is then NULL until DESTROY).
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
  UVT_HOOK_AWAIT,          /* a task is about to park at `where` on `wait` */
  UVT_HOOK_FAIL,           /* uvt_fail recorded a message at `where` */
  UVT_HOOK_FINDING,        /* the runtime decided a finding (`finding`) */
  UVT_HOOK_WRONG_THREAD,   /* a loop-thread call made from another thread */
  UVT_HOOK_LOOP_CLOSE,     /* uvtask is about to detach from a loop */
  UVT_HOOK_RENAME,         /* uvt_name gave the object `name` */
  UVT_HOOK_LOCK_ACQUIRED,  /* the task (object, task_id) holds the lock
                              `wait_on` now; `where`: its acquire call */
  UVT_HOOK_LOCK_RELEASED,  /* the task released the lock `wait_on` */
  UVT_HOOK_SNAPSHOT_BEGIN, /* a snapshot asked for with `status` = reason */
  UVT_HOOK_SNAPSHOT_TASK,  /* one live task of the loop (see below) */
  UVT_HOOK_SNAPSHOT_END,
  UVT_HOOK_KIND_MAX
} uvt_hook_kind_t;

/* One member of a group an event names.  FINDING deadlock: the tasks of
 * the cycle, in order (member i waits for what member i + 1 is or holds;
 * the last for the first's), `wait_on` being that task or lock (through a
 * gather: the one task of the set that is in the cycle).  FINDING stall:
 * every parked task of the loop (at most 64).  SNAPSHOT_TASK: the tasks
 * awaiting this one.  `slot` goes to the claiming subscriber only, as the
 * event's own. */
typedef struct uvt_hook_member {
  uint64_t id;          /* the member's object id */
  const void *object;   /* its identity, as `object` in its own events */
  void **slot;          /* its subscriber word (see `slot` below) */
  const char *name;
  uvt_wait_kind_t wait; /* what it waits on, and which object */
  const void *wait_on;
  const char *where_file; /* where it is parked */
  int where_line;
} uvt_hook_member_t;

typedef struct uvt_hook_event {
  uvt_hook_kind_t kind;
  uvt_object_kind_t object_kind;
  uint64_t id;          /* the object's id, unique in the process */
  uint64_t parent_id;   /* CREATE, SNAPSHOT_TASK: the task that created it */
  uint64_t task_id;     /* the task running now (0: none); LOCK_*: the
                           task that holds or released the lock */
  const char *name;     /* the object's name (RENAME: the new one) */
  const char *file;     /* CREATE, SNAPSHOT_TASK: the creating call's site */
  int line;
  const char *func;
  const char *where_file; /* SUSPEND, AWAIT, NO_YIELD, FAIL, LOCK_*,
                             SNAPSHOT_TASK (parked): the call site */
  int where_line;
  const char *where_func;
  const char *what;     /* AWAIT/SUSPEND: the call ("uvt_sleep"); CALLBACK:
                           the callback ("timer", "async", "work") */
  int status;           /* DONE: the status; FINDING: the error, if any;
                           SNAPSHOT_*: the reason given to the request */
  const char *message;  /* DONE/FAIL: the message; FINDING: the text */
  uvt_finding_kind_t finding; /* FINDING: its kind (uvtask/kinds.h) */
  int no_yield_depth;   /* AWAIT: the task's no-yield depth */
  uv_loop_t *loop;
  const void *object;   /* opaque identity of the object: compare it, pass
                           it to the accessors below, never dereference */
  /* The object's subscriber word, like uv_handle_t.data: NULL at the
   * object's CREATE, kept by the runtime until its DESTROY, and handed only
   * to the subscriber that claimed it (uvt_hook_add_slot); every other
   * subscriber sees NULL here.  Set on every event about an object. */
  void **slot;
  /* AWAIT, SUSPEND (parked), SNAPSHOT_TASK: what the task waits on, the
   * awaited object's identity (a task, future, lock, stream... or NULL:
   * a sleep, several tasks) and its id if it is a task, future or stream
   * (0 for locks, semaphores, events, queues), and whether the wait ends
   * by itself at a deadline (a sleep, a timeout). */
  uvt_wait_kind_t wait;
  const void *wait_on;
  uint64_t wait_on_id;
  int wait_timeout;
  /* SNAPSHOT_TASK: the task's state and since when it is parked (ns,
   * uv_hrtime's clock, at loop-time resolution; 0 if not parked). */
  uvt_task_state_t state;
  uint64_t parked_ns;
  /* FINDING: the other objects involved (deadlock: the cycle, its
   * closing task first; stall: the parked tasks; none for the other
   * kinds); SNAPSHOT_TASK: its awaiters.  FINDING deadlock and stall are
   * sent by the runtime itself while the program runs (README "When it
   * hangs"): `object` is the task whose park closed the cycle, or the
   * task parked longest. */
  const uvt_hook_member_t *members;
  int nmembers;
  /* FINDING: the object is on the uvt_leaks_ignore list: the runtime
   * neither prints nor counts it; a recorder keeps it, marked. */
  int ignored;
  /* Added within ABI 0.2, at the end (a subscriber built before never
   * reads them).  SUSPEND, for a subscriber that asked for combined
   * switches (uvt_hook_combine_switches): the task that runs next, at the
   * same instant, when one task hands the CPU straight to another (or a
   * yield carries on: `next` is then `object`).  The event then stands for
   * that task's RESUME too: no RESUME of its own follows.  NULL when the
   * loop runs next (a RESUME follows later as ever).  `next_slot` is its
   * subscriber word, the claimer's only, as `slot`. */
  const void *next;
  void **next_slot;
  uint64_t next_id;
  const char *next_name;
} uvt_hook_event_t;

typedef void (*uvt_hook_fn)(const uvt_hook_event_t *ev, void *data);

/* Subscribe fn(ev, data) to every hook point.  Returns 0, UV_ENOTSUP in
 * the release library, UVT_ENOMEM, or UVT_EINVAL (NULL fn; at most 8
 * subscribers).  Call it before the loop runs tasks; it is not synchronised
 * with hook points running on other threads. */
UVT_EXPORT int uvt_hook_add(uvt_hook_fn fn, void *data);
/* uvt_hook_add, and claim the objects' subscriber word (`slot` in the
 * events): only this subscriber sees it.  There is one word per object,
 * so one claimer per process: a second claim is UV_EBUSY, and the claim
 * outlives uvt_hook_remove (live objects may still hold the first
 * claimer's values). */
UVT_EXPORT int uvt_hook_add_slot(uvt_hook_fn fn, void *data);
/* Unsubscribe; 0 or UVT_EINVAL if it was not subscribed. */
UVT_EXPORT int uvt_hook_remove(uvt_hook_fn fn, void *data);
/* The subscriber (fn, data) needs AWAIT only where a misuse checker can
 * use it: a park inside a no-yield section, a wait for a uvt_lock_t, or a
 * park of a task that holds one.  AWAIT is one of the three events of
 * every task step; leaving the others out makes a recorded step about a
 * quarter cheaper.  It takes effect while every subscriber asked for it
 * (one that did not still gets every AWAIT); SUSPEND keeps carrying each
 * park's site and wait.  0, UVT_EINVAL (not subscribed) or UV_ENOTSUP in
 * the release library. */
UVT_EXPORT int uvt_hook_filter_awaits(uvt_hook_fn fn, void *data);
/* The subscriber (fn, data) takes a direct switch between two tasks as
 * one event: the SUSPEND of the task that stops, naming in `next` the
 * task whose step begins (see `next` above), instead of SUSPEND then
 * RESUME.  A switch is two of the events of every task step; one event
 * instead of two is one dispatch and one clock read less for a recorder.
 * It takes effect while every subscriber asked for it (while one did not,
 * everyone gets SUSPEND and RESUME apart).  0, UVT_EINVAL (not
 * subscribed) or UV_ENOTSUP in the release library. */
UVT_EXPORT int uvt_hook_combine_switches(uvt_hook_fn fn, void *data);

/* Added within ABI 0.2.  A direct switch without an event: the previous
 * task `prev` (whose step ends), the next task `next` (whose step
 * begins), each with its subscriber word as the claimer sees it (`slot`
 * above), and `data`.  Returns 0 when it took the switch, or nonzero to
 * have the combined SUSPEND event (uvt_hook_combine_switches) sent for it
 * after all; it must then leave its own state as if it had not been
 * called.  Runs on the loop thread, between the two tasks' steps, on
 * either task's stack: it may not switch tasks or call into uvtask. */
typedef int (*uvt_hook_switch_fn)(const void *prev, void **prev_slot,
                                  const void *next, void **next_slot,
                                  void *data);
/* The subscriber (fn, data) takes direct switches through sw first: an
 * event is built and dispatched only for those sw declines.  A switch is
 * two of the events of every task step and the only ones of a yield; most
 * need nothing but two slot words and a clock.  It takes effect while
 * (fn, data) is the only subscriber, has claimed the objects' word
 * (uvt_hook_add_slot) and asked for combined switches; otherwise every
 * switch is an event as before.  sw NULL takes it back.  0, UVT_EINVAL
 * (not subscribed) or UV_ENOTSUP in the release library. */
UVT_EXPORT int uvt_hook_switch_callback(uvt_hook_fn fn, void *data,
                                        uvt_hook_switch_fn sw);

/* Added within ABI 0.2.  The end of an object's life without events: a
 * task's DONE (`status`, `message`), RETRIEVED (`status`) and DESTROY,
 * as `kind`, with the object's identity, its subscriber word as the
 * claimer sees it (`slot` above) and `data`.  Returns 0 when it took the
 * event, or nonzero to have the event sent after all; it must then leave
 * its own state as if it had not been called.  Runs where the event
 * would; it may not call into uvtask.  A future's DONE is always an
 * event. */
typedef int (*uvt_hook_life_fn)(uvt_hook_kind_t kind, const void *object,
                                void **slot, int status, const char *message,
                                void *data);
/* The subscriber (fn, data) takes those three kinds through life first:
 * an event is built and dispatched only for those it declines.  Three of
 * the four events of every task that ends, and all they carry is a word
 * and a status.  It takes effect while (fn, data) is the only subscriber
 * and has claimed the objects' word (uvt_hook_add_slot); otherwise they
 * are events as before.  life NULL takes it back.  0, UVT_EINVAL (not
 * subscribed) or UV_ENOTSUP in the release library. */
UVT_EXPORT int uvt_hook_life_callback(uvt_hook_fn fn, void *data,
                                      uvt_hook_life_fn life);

/* ---- accessors: what a subscriber may ask, besides the events ---------- */

/* A suspended task's saved registers, as the context switch left them
 * (runtime/context_<arch>.S documents each layout): enough for an
 * unwinder to walk the task's stack from where it will resume. */
typedef struct uvt_task_frame {
  uintptr_t pc;        /* where the task resumes */
  uintptr_t sp;        /* its stack pointer there */
  uintptr_t fp;        /* frame pointer: rbp (x86_64), x29 (aarch64) */
  /* The other callee-saved integer registers, in this order:
   * x86_64: rbx, r12, r13, r14, r15; aarch64: x19 ... x28. */
  uintptr_t regs[10];
  int nregs;
  const void *stack_lo; /* the task's stack: [stack_lo, stack_hi) */
  const void *stack_hi;
} uvt_task_frame_t;

/* Fill `out` for the task `object` (an event's object of kind TASK),
 * which must be suspended: parked, or ready after a yield.  Returns 0;
 * UVT_EINVAL if it is not a live task, is running, or never ran (no
 * stack yet); UV_ENOTSUP where the context layout is unknown.  Call it on
 * the task's loop thread (from an event there). */
UVT_EXPORT int uvt_hook_task_frame(const void *object, uvt_task_frame_t *out);

/* The stack of the task running on the calling thread: [*lo, *hi).
 * Returns 0, or UVT_ENOTASK when no task runs on this thread (the caller
 * is then on the thread's own stack).  A subscriber that walks its own
 * frames checks that they lie inside these bounds (a hook raised from
 * the scheduler between two steps may run on the thread's stack while a
 * task is current: check which one holds the frame).  Async-signal-safe. */
UVT_EXPORT int uvt_hook_current_stack(const void **lo, const void **hi);

/* Inside a subscriber: where the program called into the library for the
 * event under way.  *ra is the return address of the library function
 * that holds the event's hook point and *cfa its caller's stack pointer
 * at the call (the frame records of the caller's frames lie at or above
 * it); 0 and UVT_EINVAL when no event is under way on this thread, and
 * UV_ENOTSUP in a build that cannot tell.  *ra inside the library means
 * that function is the library's own, not the one the program called.
 * Outside a subscriber of the library's own (the recorder), *ra is 0: a
 * subscriber of the program's is itself a caller of the library.
 * RETRIEVED, DESTROY and a task's DONE carry no entry point (UVT_EINVAL
 * when no other event is under way): they come from the library's own
 * bookkeeping, where no subscriber of its takes a stack, and recording it
 * would cost every recorded task. */
UVT_EXPORT int uvt_hook_entry_point(uintptr_t *ra, uintptr_t *cfa);

/* The id of the task running on the calling thread, 0 if none.
 * Async-signal-safe (a crash handler may ask which task crashed). */
UVT_EXPORT uint64_t uvt_hook_current_task(void);

/* For a crash handler: the id of the task whose stack overflowed, or 0.
 * Pass a SIGSEGV/SIGBUS handler's siginfo_t and ucontext_t (a fault in
 * the running task's guard page, or its stack pointer at the bottom of
 * its stack), or NULLs in a SIGABRT handler (the runtime aborts when a
 * task's stack canary is found overwritten, and remembers which task).
 * Async-signal-safe. */
UVT_EXPORT uint64_t uvt_hook_stack_overflow(const void *siginfo,
                                            const void *ucontext);

/* Ask for a snapshot of `loop`'s tasks: the loop's thread then sends
 * SNAPSHOT_BEGIN, one SNAPSHOT_TASK per live task and SNAPSHOT_END, each
 * with `status` = reason (> 0).  Async-signal-safe and callable from any
 * thread (an atomic store and uv_async_send); requests made before the
 * loop thread gets to it are merged (the last reason wins).  Returns 0,
 * UVT_EINVAL (reason <= 0), UVT_ENOLOOP (no uvtask scheduler on `loop`).
 * Must not race with uvt_loop_close of the same loop. */
UVT_EXPORT int uvt_hook_request_snapshot(uv_loop_t *loop, int reason);

/* Walk every live task of every loop now, on the calling thread, and give
 * fn (not the subscribers) the snapshot events: SNAPSHOT_BEGIN, one
 * SNAPSHOT_TASK per task (awaiters: at most 64; `slot` NULL) and
 * SNAPSHOT_END per loop, `status` = reason.  For a signal handler
 * (SIGQUIT): it allocates nothing and takes no lock, so it is
 * async-signal-safe if fn is; a loop running on another thread meanwhile
 * may be seen half-way through a change (best effort, as any dump of a
 * running process).  Both libraries.  Returns how many loops, or
 * UVT_EINVAL (NULL fn, reason <= 0). */
UVT_EXPORT int uvt_hook_snapshot_now(int reason, uvt_hook_fn fn, void *data);

/* Print uvt_dump's listing of every loop's tasks to the descriptor fd,
 * with write(2) only (no grouping, no tree): for a signal handler, with
 * the same caveat as uvt_hook_snapshot_now.  Returns how many tasks. */
UVT_EXPORT int uvt_hook_dump_fd(int fd);

/* Report, as FINDING events (and the runtime's own stderr lines), what is
 * still alive on the calling thread's loops, without cancelling anything:
 * for a subscriber's process-exit handler. */
UVT_EXPORT void uvt_hook_scan_at_exit(void);

/* Whether the runtime prints its findings on stderr itself (1, the
 * default) or leaves that to a subscriber (0). */
UVT_EXPORT void uvt_hook_set_findings_log(int on);

/* Copy the name given to uvt_testing_set_name into buf (size bytes);
 * 1 if there was one, else 0.  Any thread. */
UVT_EXPORT int uvt_hook_test_name(char *buf, size_t size);

/* Write prefix and text to stderr as one line, control characters
 * (C0, DEL, C1) shown as \xNN so that task names, messages and paths
 * cannot drive the terminal; at most about 4 KiB.  Any thread; the
 * runtime's own warnings go through it too. */
UVT_EXPORT void uvt_hook_stderr_line(const char *prefix, const char *text);

/* 1 in the debug library, 0 in the release one. */
UVT_EXPORT int uvt_debug_build(void);

#ifdef __cplusplus
}
#endif
#endif

/*
 * The runtime's internal contract: the scheduler, task and object structs
 * and the one primitive every awaiting call is built on, park/wake.
 *
 * Threading: every function here runs on the thread that runs the loop.
 *
 * Awaiting.  A call that waits (sleep, lock, future, ...) does:
 *
 *     int st = uvt__park(&site, on_cancel, data);
 *
 * which suspends the current task until someone calls uvt__wake(task, st).
 * The first wake wins; later wakes of an already-woken task are ignored, so
 * a timer and a completion may both try.  After park returns, the caller
 * undoes its own bookkeeping (unlinks its waiter node, stops its timer):
 * wakers only wake.  If the task is cancelled while parked, `on_cancel`
 * runs once (from uvt_cancel, on the loop thread) and must arrange for a
 * wake — now, or later (to_thread waits for its thread).  on_cancel NULL
 * means "wake now with UVT_ECANCELED".  A cancel that arrives while the
 * task is not parked is delivered by its next park, which then returns
 * UVT_ECANCELED at once without suspending.
 */
#ifndef UVT_RUNTIME_INTERNAL_H
#define UVT_RUNTIME_INTERNAL_H

#include "uvtask.h"
#include "context.h"
#include "stack.h"
#include "timer.h"
#include "hook_points.h"

#include <stdio.h>

#define UVT__LIKELY(x) __builtin_expect(!!(x), 1)
#define UVT__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Where a public call was made, from the caller's macro, and what a park
 * made there waits on (hooks.h: AWAIT, SUSPEND, SNAPSHOT_TASK): the edge
 * of the wait-for graph that the deadlock check walks (waitfor.c), kept
 * by both libraries. */
typedef struct uvt__site_s {
  const char *file;
  int line;
  uint8_t wait;     /* uvt_wait_kind_t */
  bool timeout;     /* the wait ends by itself at a deadline */
  const char *func;
  const char *what; /* the public call: "uvt_sleep", "uvt_await", ... */
  /* The awaited object (task, lock, stream...), or NULL.  GATHER and
   * WAIT_SET: the uvt__taskset_t of the tasks waited for (shown to hook
   * subscribers as NULL: several tasks). */
  const void *on;
} uvt__site_t;

/* The tasks a gather or a wait is parked on (the head of its state, on
 * the waiting task's stack).  `all`: it needs every one of them (gather,
 * ALL_COMPLETED): then each is an edge of the wait-for graph. */
typedef struct uvt__taskset_s {
  uvt_task_t **tasks;
  size_t n;
  bool all;
} uvt__taskset_t;

#define UVT__SITE(what_) \
  ((uvt__site_t){.file = file, .line = line, .func = func, .what = (what_)})
#define UVT__SITE_ON(what_, wait_, on_, timeout_)                            \
  ((uvt__site_t){.file = file, .line = line, .func = func, .what = (what_),  \
                 .wait = (uint8_t)(wait_), .timeout = (timeout_), .on = (on_)})

/* The awaited object as hook subscribers see it: NULL for several tasks. */
#define UVT__SITE_ON_PUBLIC(s)                                              \
  ((s)->wait == UVT_WAIT_GATHER || (s)->wait == UVT_WAIT_WAIT_SET ? NULL    \
                                                                  : (s)->on)

/* The id of the object a site waits on, if it is one of the registry's
 * (tasks, futures, streams, servers); 0 for locks, queues and the rest. */
#define UVT__SITE_ON_ID(s)                                                  \
  ((s)->on != NULL && ((s)->wait == UVT_WAIT_TASK ||                        \
                       (s)->wait == UVT_WAIT_FUTURE ||                      \
                       (s)->wait == UVT_WAIT_STREAM_READ ||                 \
                       (s)->wait == UVT_WAIT_STREAM_WRITE ||                \
                       (s)->wait == UVT_WAIT_STREAM_CLOSE)                  \
       ? ((const uvt__obj_t *)(s)->on)->id                                  \
       : 0)

/* Every object the runtime tracks: its registry links and creation site.
 * The registry is a doubly linked list per scheduler. */
typedef struct uvt__obj_s {
  struct uvt__obj_s *prev, *next;
  const char *name;   /* static string or name_owned */
  char *name_owned;   /* malloc'd name from uvt_name, or NULL */
  const char *file;
  const char *func;
  uint64_t id;
  /* Streams and servers: called by the shutdown of uvt_run or
   * uvt_loop_close for an object still open.  It must uv_close its libuv
   * handle, increment sched->pending_callbacks, and in the close callback
   * unregister, free, and decrement pending_callbacks. */
  void (*on_shutdown)(struct uvt__obj_s *o);
  void *hook_slot; /* the word of the subscriber that claimed it (hooks.h) */
  /* The small fields last, together: no padding between them. */
  uint32_t magic; /* UVT__MAGIC_LIVE while live, UVT__MAGIC_DEAD after */
  int line;
  uint8_t kind;   /* uvt_object_kind_t (uvtask/kinds.h) */
  uint8_t reported; /* findings already reported: UVT__REPORTED_* bits */
} uvt__obj_t;

#define UVT__REPORTED_PENDING 1u
#define UVT__REPORTED_UNRETRIEVED 2u
#define UVT__REPORTED_NEVER_AWAITED 4u
#define UVT__REPORTED_UNCLOSED 8u
#define UVT__REPORTED_UNRELEASED 16u

#define UVT__MAGIC_LIVE 0x75767431u /* "uvt1" */
#define UVT__MAGIC_DEAD 0xdeadbeefu

struct uvt__sched_s;
typedef struct uvt__sched_s uvt__sched_t;

/* A task or a future may be waited on by several parties; each registers a
 * node.  `fire` runs (on the loop thread) when the object completes; the
 * node is unlinked before it fires. */
typedef struct uvt__waiter_s {
  struct uvt__waiter_s *prev, *next;
  void (*fire)(struct uvt__waiter_s *w);
  uvt_task_t *task; /* the waiting task */
  uvt_task_t *target; /* gather/wait: the task waited on */
  void *data;
  bool linked;
} uvt__waiter_t;

typedef struct uvt__waiters_s {
  uvt__waiter_t *head, *tail;
} uvt__waiters_t;

void uvt__waiters_push(uvt__waiters_t *l, uvt__waiter_t *w);
void uvt__waiters_remove(uvt__waiters_t *l, uvt__waiter_t *w);
/* Unlink every node and fire it, in order. */
void uvt__waiters_fire_all(uvt__waiters_t *l);

/* What tasks and futures share: the outcome and who waits for it. */
typedef struct uvt__outcome_s {
  int status;
  void *result;
  char *message;     /* malloc'd, or NULL */
  const char *fail_file; /* where uvt_fail recorded the message */
  int fail_line;
  uvt__waiters_t waiters;
  bool done;
  bool retrieved;    /* someone read the status (await, gather) */
  /* References: the handles the program holds (one from the creating
   * call, one per uvt_task_ref/uvt_future_ref, each given up by an await
   * or a detach) plus one per gather/wait in progress over it.  The
   * struct is freed once the object is done, no reference is left and
   * (a task) its stack is back in the pool. */
  int refs;
} uvt__outcome_t;

struct uvt_task_s {
  uvt__obj_t obj;
  uvt__outcome_t out;
  uvt__sched_t *sched;
  uvt_task_t *parent;     /* the task that spawned it, if still known */
  uint64_t parent_id;
  uvt_fn fn;
  void *arg;
  uvt_task_t *ready_next;
  uvt_task_state_t state; /* changed only by uvt__task_set_state */
  bool cancel_pending;    /* deliver UVT_ECANCELED at the next park */
  bool cancelled;         /* a cancel was ever requested */
  bool is_main;
  bool threadsafe;        /* spawned by uvt_call_threadsafe */
  bool in_pool;           /* parked on thread-pool work on its stack */
  bool hook_step;         /* hooks were told this step began */
  bool no_yield_reported; /* this no-yield section has had its finding */
  int wake_status;
  int cancel_requests;    /* asyncio's cancelling() count (scope.c) */
  void (*on_cancel)(uvt_task_t *t, void *data);
  void *on_cancel_data;
  uvt__site_t parked_at;  /* valid while PARKED */
  uint64_t parked_ns;     /* when it last parked (ns, loop time) */
  int no_yield_depth;
  int no_yield_line;      /* where the outermost section began */
  const char *no_yield_file;
  int await_nest;         /* uvt_await_coro calls running inline */
  uvt__site_t outer_await; /* the outermost of them */
  size_t stack_size;
  uvt__stack_t stack;
  uvt__ctx_t ctx;
  uvt__timer_t timer;     /* for sleep and timeouts */
  void *tsan_fiber;
  /* Structured concurrency (group.c, timeout.c). */
  uvt__scope_t *scopes;   /* innermost open group or timeout scope */
  uvt_group_t *group;     /* the group it is a child of, or NULL */
  uvt_task_t *group_prev, *group_next; /* its group's live / failed list */
  /* The locks (uvt_lock_t) it holds now, linked through their next_held,
   * the last taken first: one it still holds when it ends is handed to a
   * small record of it (sync_lock.c), so that its struct can go. */
  struct uvt_lock_s *held_locks;
};

struct uvt_coro_s {
  uvt__obj_t obj;
  uvt__sched_t *sched;
  uvt_fn fn;
  void *arg;
};

struct uvt_future_s {
  uvt__obj_t obj;
  uvt__outcome_t out;
  uvt__sched_t *sched;
};

#define UVT__QUARANTINE 256

/* What the scheduler calls in the task layer above it: given when the
 * scheduler is created (uvt__sched_for_loop), so that the scheduler
 * depends on nothing above it. */
typedef struct uvt__task_ops_s {
  /* A task's first frame, called on its fresh stack with the task: it
   * calls uvt__sched_task_begin, the task's function, then
   * uvt__sched_task_end, which does not return. */
  void (*entry)(void *task);
  /* A task's function returned `status` (on its stack), or a task that
   * never ran ends (cancelled first, no stack): uvt__task_complete. */
  void (*complete)(uvt_task_t *t, int status);
  /* A task is freeable (uvt__task_freeable): uvt__task_release. */
  void (*release)(uvt_task_t *t);
} uvt__task_ops_t;
/* The task layer's (task.c). */
extern const uvt__task_ops_t uvt__task_ops;
/* The scheduler's side of a task's first frame (see `entry`): finish
 * the switch into it; switch away from it for good once it ended. */
void uvt__sched_task_begin(uvt_task_t *t);
/* `hooks` false: the caller found the hook flag clear (the DONE event
 * it just skipped), so the last switch sends no events either. */
void uvt__sched_task_end(uvt_task_t *t, bool hooks) __attribute__((noreturn));

/* One scheduler per loop that uvtask runs on. */
struct uvt__sched_s {
  const uvt__task_ops_t *tasks;
  uv_loop_t *loop;
  uv_thread_t owner;
  uv_prepare_t prepare;   /* runs passes before the poll */
  uv_check_t check;       /* runs passes after the poll */
  uv_idle_t idle;         /* active while tasks are ready: poll won't block */
  uv_async_t async;       /* uvt_call_threadsafe */
  uv_timer_t uvtimer;     /* drives the timer heap */
  int handles_open;
  uvt__ctx_t ctx;         /* the loop thread's own context */
  void *asan_stack_lo;    /* the loop thread's stack, for ASan fibers */
  size_t asan_stack_size;
  void *tsan_fiber;
  uvt_task_t *current;
  uvt_task_t *ready_head, *ready_tail; /* ready for the next pass */
  uvt_task_t *run_head;   /* what is left of the pass under way */
  bool in_pass;
  int passes;             /* passes begun by this run_passes call */
  int steps;              /* task steps since the clock was last read */
  uint64_t pass_start;    /* when the call began (uv_hrtime) */
  /* The task that just switched away: whoever runs next checks its
   * stack and, if it ended, retires it (it could not free the stack it
   * was running on). */
  uvt_task_t *switched_from;
  bool asan_from_loop;    /* the coming switch leaves the loop's stack */
  uvt__obj_t registry;    /* sentinel of the live-object list */
  size_t live_tasks;
  uint64_t next_id;
  uvt__stack_pool_t stacks;
  uvt__timer_heap_t timers;
  /* Released task handles stay here, marked dead, so that a use of one
   * is caught (UVT_ERELEASED) instead of touching freed memory. */
  uvt__obj_t *quarantine[UVT__QUARANTINE];
  size_t quarantine_next;
  /* ThreadSanitizer builds: fibers of ended tasks, for the next ones (a
   * fresh TSan fiber costs milliseconds). */
  void *tsan_spare[64];
  int tsan_nspare;
  uvt_task_t *free_tasks; /* recycled task structs */
  size_t free_task_count;
  uv_mutex_t ts_mutex;    /* guards ts_head/ts_tail (other threads) */
  struct uvt__ts_call_s *ts_head, *ts_tail;
  uvt_task_t *main;
  uvt_task_t *spawn_parent; /* a group's owner, while a group spawns */
  bool closing;
  bool shutdown_expired;
  /* libuv callbacks the shutdown must wait for before the loop can go:
   * handles closing (streams), requests whose memory is ours (lookups). */
  int pending_callbacks;
  uvt__timer_t shutdown_timer;
  int snapshot_reason;    /* uvt_hook_request_snapshot's, until sent */
  void *walk;             /* the deadlock check's state (waitfor.c), or NULL */
  struct uvt__stall_s *stall; /* the stall check's (stall.c), or NULL */
  struct uvt__sched_s *list_next; /* global loop -> scheduler list */
};

/* The scheduler of the task running on this thread, or of the uvt_run in
 * progress; NULL when there is none. */
uvt__sched_t *uvt__sched_current(void);
/* The scheduler attached to `loop`; if there is none and `create` is not
 * NULL, one created with these task operations (&uvt__task_ops). */
uvt__sched_t *uvt__sched_for_loop(uv_loop_t *loop,
                                  const uvt__task_ops_t *create);
void uvt__sched_destroy(uvt__sched_t *s);
/* The scheduler of `loop` without taking the list's mutex (from a signal
 * handler): must not race with the scheduler's destruction. */
uvt__sched_t *uvt__sched_find_signal_safe(uv_loop_t *loop);
/* The first scheduler of the process-wide list (then s->list_next, read
 * atomically), without the list's mutex: for signal handlers. */
uvt__sched_t *uvt__sched_list_signal_safe(void);
/* On the loop thread: send the snapshot asked for since the last call. */
void uvt__snapshot_if_asked(uvt__sched_t *s);
/* Give fn the snapshot events of s's tasks (BEGIN, TASK..., END), with
 * `status` = reason; allocates nothing (inspect.c: from signal handlers). */
void uvt__snapshot_sched(const uvt__sched_t *s, int reason, uvt_hook_fn fn,
                         void *data);

/* A call posted from another thread (threadsafe.c): `run` runs it on the
 * loop thread, which then frees the struct (malloc'd by the poster). */
struct uvt__ts_call_s {
  struct uvt__ts_call_s *next;
  void (*run)(uvt__sched_t *s, struct uvt__ts_call_s *c);
  uvt_fn fn;
  void *arg;
  const char *name, *file, *func;
  int line;
};
/* Queue `c` for the loop's thread and wake it: 0, UVT_ENOLOOP (no
 * scheduler on `loop`: `c` stays the caller's), or uv_async_send's
 * error.  Any thread. */
int uvt__sched_post(uv_loop_t *loop, struct uvt__ts_call_s *c);

void uvt__sched_set_current(uvt__sched_t *s);
void uvt__ready_push(uvt__sched_t *s, uvt_task_t *t);
/* Keep a released object (dead magic) for a while, then free it. */
void uvt__quarantine(uvt__sched_t *s, uvt__obj_t *o);
/* A task struct from the recycled list, zeroed where a spawn does not
 * set it (uvt__spawn's job): the list must not be empty. */
uvt_task_t *uvt__task_take(uvt__sched_t *s);
/* A fresh zeroed task struct, or NULL when out of memory. */
uvt_task_t *uvt__task_fresh(void);
/* Free what the quarantine and the recycled tasks of `s` hold (the
 * scheduler going away). */
void uvt__objects_free(uvt__sched_t *s);

/* Arm `t` to call cb in `ms` milliseconds; 0 or UVT_ENOMEM. */
int uvt__timer_start(uvt__sched_t *s, uvt__timer_t *t, uint64_t ms,
                     void (*cb)(uvt__timer_t *));
void uvt__timer_stop(uvt__sched_t *s, uvt__timer_t *t);

/* Create a task on `s` (no thread check).  NULL when out of memory. */
uvt_task_t *uvt__spawn(uvt__sched_t *s, uvt_fn fn, void *arg,
                       size_t stack_size, const char *name, const char *file,
                       int line, const char *func);
/* Record the task's status and fire its waiters (on its own stack). */
void uvt__task_complete(uvt_task_t *t, int status);
/* After a task ended: return its stack; free it if no reference is left. */
void uvt__task_retire(uvt_task_t *t);
/* A pending cancel, consumed: true if there was one. */
bool uvt__take_pending_cancel(uvt_task_t *t);

/* The running task, or NULL. */
uvt_task_t *uvt__task_current(void);

/* Suspend the current task (see the comment on top).  The caller must be
 * a task; returns the status given to uvt__wake. */
int uvt__park(const uvt__site_t *where, void (*on_cancel)(uvt_task_t *, void *),
              void *data);
/* ---- invariants ---------------------------------------------------------
 * Checked in debug builds (no NDEBUG, like assert) and with -DUVT_CHECKS=ON
 * in any build; the RelWithDebInfo libraries, release and asynciodebug,
 * leave them out of the hot path. */

#if !defined(NDEBUG) || defined(UVT_CHECKS)
#define UVT__CHECKS 1
#endif

/* A broken task invariant: say which task and what, then abort. */
void uvt__task_broken(const uvt_task_t *t, const char *what)
    __attribute__((noreturn, cold));

/* Every change of a task's state after its spawn.  The machine (see
 * UVT_TASK_STATE_MAP): CREATED -> RUNNING, or DONE without running
 * (cancelled first, or no stack); READY -> RUNNING; RUNNING -> PARKED,
 * READY (yield) or DONE; PARKED -> READY (wake).  DONE is final.
 * uvt__task_abandon is the one way out of this table. */
#define UVT__FROM(s) (1u << UVT_TASK_##s)
/* The table, by target: the states each one may be entered from.  `to`
 * is a constant at every call, so the check is a test of one bit. */
#define UVT__TASK_ENTERED_FROM(to)                                    \
  ((to) == UVT_TASK_RUNNING ? UVT__FROM(CREATED) | UVT__FROM(READY)    \
   : (to) == UVT_TASK_PARKED ? UVT__FROM(RUNNING)                      \
   : (to) == UVT_TASK_READY  ? UVT__FROM(RUNNING) | UVT__FROM(PARKED)  \
   : (to) == UVT_TASK_DONE   ? UVT__FROM(CREATED) | UVT__FROM(RUNNING) \
                             : 0u)
static inline __attribute__((always_inline)) void
uvt__task_set_state(uvt_task_t *t, uvt_task_state_t to) {
#ifdef UVT__CHECKS
  /* A state outside the enum shifts its bit out of the mask: caught too. */
  if (UVT__UNLIKELY(!(UVT__TASK_ENTERED_FROM(to) >> (t->state & 31u) & 1u)))
    uvt__task_broken(t, uvt_task_state_name(to));
#endif
  t->state = to;
}

/* The shutdown gives up on a task that ignored its cancellation: DONE
 * from any state, outside the machine above. */
static inline void uvt__task_abandon(uvt_task_t *t) { t->state = UVT_TASK_DONE; }

/* The one condition for freeing a task struct: it ended and gave its
 * stack back, no reference is left (handles given up, no await or wait
 * still reading it), and it was not freed already. */
static inline __attribute__((always_inline)) bool
uvt__task_freeable(const uvt_task_t *t) {
  /* Most often false for a reference still held: tested first. */
  return t->out.refs == 0 && t->out.done && t->stack.lo == NULL &&
         t->obj.magic == UVT__MAGIC_LIVE;
}

/* As uvt__park, for waits whose caller can undo what a wake gave it: a
 * cancel requested after the wake but before the task ran again wins
 * (asyncio's rule) and is returned as UVT_ECANCELED; the caller then
 * passes on what it was granted.  With uvt__park such a cancel is
 * delivered by the next await instead. */
int uvt__park_revocable(const uvt__site_t *where,
                        void (*on_cancel)(uvt_task_t *, void *), void *data);
/* The deadlock check (waitfor.c), before the current task `self` parks
 * at `where` on a task, a lock or a set of tasks: if the edge closes a
 * cycle of the wait-for graph, report it (stderr, findings list, FINDING
 * event).  Call it only when the park would wait on something not done or
 * held: never on the uncontended path. */
void uvt__deadlock_check(uvt_task_t *self, const uvt__site_t *where)
    __attribute__((noinline)); /* its walk state stays out of await's frame */
/* The stall check's start (stall.c): arm its unref'd timer on `s`. */
void uvt__stall_init(uvt__sched_t *s);
void uvt__stall_close(uvt__sched_t *s);

/* Make a parked task ready with `status`; ignored unless it is parked. */
void uvt__wake(uvt_task_t *t, int status);
/* Put the current task at the back of the ready queue and switch away. */
int uvt__yield(const uvt__site_t *where);
/* The same for a caller that found uvt__gate clear: no hook points. */
#ifdef ASYNCIODEBUG
int uvt__yield_quiet(const uvt__site_t *where);
#else
#define uvt__yield_quiet uvt__yield
#endif

/* Object registry.  `o` must be zeroed memory (calloc, or a task struct
 * from uvt__task_take or uvt__task_fresh, whose zeroing leaves out only
 * fields this sets): the subscriber word starts NULL without a store. */
void uvt__obj_register(uvt__sched_t *s, uvt__obj_t *o, uvt_object_kind_t kind,
                       const char *name, const char *file, int line,
                       const char *func);
/* uvt__obj_register is these two: into the registry, then the CREATE
 * event (UVT__HOOK_AT).  Apart for the spawn, which the debug library's
 * inliner would otherwise leave a call (38 instructions a task). */
static inline __attribute__((always_inline)) void
uvt__obj_link(uvt__sched_t *s, uvt__obj_t *o, uvt_object_kind_t kind,
              const char *name, const char *file, int line, const char *func) {
  uvt__obj_t *head = &s->registry;
  o->magic = UVT__MAGIC_LIVE;
  o->kind = (uint8_t)kind;
  o->name = name != NULL ? name : "?";
  o->name_owned = NULL;
  o->file = file != NULL ? file : "?";
  o->line = line;
  o->func = func != NULL ? func : "?";
  o->id = ++s->next_id;
  o->reported = 0;
  /* hook_slot: NULL, as every object is zeroed when it is allocated. */
  o->next = head;
  o->prev = head->prev;
  head->prev->next = o;
  head->prev = o;
}
void uvt__hook_create(uvt__sched_t *s, uvt__obj_t *o) __attribute__((noinline));
void uvt__obj_unregister(uvt__obj_t *o);
/* uvt__obj_unregister is these two: out of the registry, then the
 * DESTROY event (hook flag tested by the caller: UVT__HOOK_AT).  Apart
 * for paths that test the flag once for several events. */
static inline __attribute__((always_inline)) void uvt__obj_unlink(uvt__obj_t *o) {
  if (o->next != NULL) {
    o->prev->next = o->next;
    o->next->prev = o->prev;
    o->next = o->prev = NULL;
  }
  o->magic = UVT__MAGIC_DEAD;
}
void uvt__hook_destroy(uvt__obj_t *o) __attribute__((noinline));

/* Outcome helpers shared by tasks and futures.  complete() stores the
 * status and fires the waiters. */
void uvt__outcome_complete(uvt__outcome_t *o, int status);
void uvt__outcome_free(uvt__outcome_t *o);
/* Mark the outcome's status as read (await, gather, wait_for). */
void uvt__outcome_retrieve(uvt__obj_t *o, uvt__outcome_t *out);
/* The same for a caller that found the hook flag clear: no RETRIEVED. */
static inline void uvt__outcome_retrieve_quiet(uvt__outcome_t *out) {
  out->retrieved = true;
}
/* Tell the hooks a loop-thread call came from another thread. */
void uvt__wrong_thread(const uvt__obj_t *o, const char *call, const char *file,
                       int line);

/* ---- the checks at the top of public calls (checks.c) -------------------
 *
 * Thread.  A loop-only call made on a thread that does not run the
 * object's loop is refused: a WRONG_THREAD hook event (the debug
 * library's recorder makes it a finding at the call site), one line on
 * stderr, then UVT_EWRONGTHREAD (or nothing done, for a void call).  On
 * the loop thread the test is one thread-local load and one compare:
 * this thread's loop (the loop of the uvt_run in progress or of the pass
 * under way) against the object's.  Everything else takes the slow path,
 * which compares thread ids: a plain libuv callback of a program running
 * its own uv_run, an object not yet bound to a loop (bound here when the
 * thread has one), a loop uvtask has left (allowed: nothing runs there to
 * race with).
 *
 * Yield points.  Every call that may suspend calls UVT__YIELD_POINT
 * first: inside a no-yield section it is a yield-in-critical-section
 * finding, once per section, whether or not the call then suspends. */
extern _Thread_local uvt__sched_t *uvt__tls_sched
    __attribute__((visibility("hidden"), tls_model("initial-exec")));
/* This thread's loop, or UVT__NO_LOOP on a thread that runs none: never
 * NULL, so that an object not yet bound to a loop (loop field NULL) never
 * passes a thread check by comparing equal to it. */
extern _Thread_local uv_loop_t *uvt__tls_loop
    __attribute__((visibility("hidden"), tls_model("initial-exec")));
#define UVT__NO_LOOP ((uv_loop_t *)(uintptr_t)1)

int uvt__loop_check_slow(uv_loop_t **bound, const char *call, const char *file,
                         int line) __attribute__((noinline, cold));
int uvt__sched_check_slow(uvt__sched_t *s, const uvt__obj_t *o,
                          const char *call, const char *file, int line)
    __attribute__((noinline, cold));

/* A sync object's call (its `loop` field: bound at first use): 0 or
 * UVT_EWRONGTHREAD (reported). */
static inline int uvt__loop_check(uv_loop_t **bound, const char *call,
                                  const char *file, int line) {
  if (UVT__LIKELY(*bound == uvt__tls_loop)) return 0;
  return uvt__loop_check_slow(bound, call, file, line);
}

/* A call on a task, future, stream or server of scheduler `s`. */
static inline int uvt__sched_check(uvt__sched_t *s, const uvt__obj_t *o,
                                   const char *call, const char *file,
                                   int line) {
  if (UVT__LIKELY(s == uvt__tls_sched)) return 0;
  return uvt__sched_check_slow(s, o, call, file, line);
}

/* A creating call (spawn, coro, future) found no loop on this thread:
 * true, after reporting wrong-thread, if loops run on other threads. */
bool uvt__off_loop_thread(const char *call, const char *file, int line)
    __attribute__((noinline, cold));
/* Whether uvtask runs any loop in the process (sched.c). */
bool uvt__sched_any(void);
/* Whether this thread runs one of uvtask's loops (sched.c; takes the
 * schedulers' list mutex: for slow paths only). */
bool uvt__sched_owned_here(void);
/* An awaiting call that takes no object found no current task: if this
 * thread runs none of uvtask's loops while another thread does, report
 * wrong-thread and return UVT_EWRONGTHREAD (both libraries), else
 * UVT_ENOTASK (main before uvt_run, a plain callback on a loop thread). */
int uvt__no_task_call(const char *call, const char *file, int line)
    __attribute__((noinline, cold));

/* An awaiting call found no current task: UVT_EWRONGTHREAD (reported)
 * if the object it was given (`s`, `o`: may be NULL) belongs to a loop
 * another thread runs, else UVT_ENOTASK. */
int uvt__not_in_task(uvt__sched_t *s, const uvt__obj_t *o, const char *call,
                     const char *file, int line);
/* The same for a sync object (its `loop` field). */
int uvt__no_task_here(uv_loop_t **bound, const char *call, const char *file,
                      int line);
#define UVT__TASK_SCHED(t) ((t) != NULL ? (t)->sched : NULL)
#define UVT__TASK_OBJ(t) ((t) != NULL ? &(t)->obj : NULL)

void uvt__yield_in_section(uvt_task_t *t, const char *what, const char *file,
                           int line, const char *func)
    __attribute__((noinline, cold));
/* `file`, `line` and `func` are the public call's parameters.  The
 * debug library only: in the release one this check cost 1 % of a
 * spawn+await and 12 % of an uncontended lock acquire+release (callgrind
 * instructions: the cold call makes the fast path save registers). */
#ifdef ASYNCIODEBUG
/* The depth is read only once some section was ever opened (uvt__gate):
 * the test is then one compare with memory and a branch. */
#define UVT__YIELD_POINT(t, what)                                          \
  do {                                                                     \
    if (UVT__UNLIKELY(UVT__GATE_READ() & UVT__GATE_NO_YIELD) &&                   \
        (t)->no_yield_depth > 0)                                           \
      uvt__yield_in_section((t), (what), file, line, func);                \
  } while (0)
#else
#define UVT__YIELD_POINT(t, what) ((void)(t), (void)func)
#endif




/* uvt_cancel without the checks: 1 requested, 0 already done. */
int uvt__task_cancel(uvt_task_t *t);
/* A task ends holding locks (t->held_locks): each then names a small
 * record of it (id, name, creation site) instead of the task, whose struct
 * can go (lock_ended.c). */
void uvt__lock_holder_ended(uvt_task_t *t);
/* The placeholder holder of a lock whose task ended holding it, and the
 * release of that lock's record (lock_ended.c). */
extern uvt_task_t uvt__ended_holder;
void uvt__lock_ended_free(uvt_lock_t *l);
/* The name of the task holding `l` (which is locked), even one that has
 * ended; *ended says which. */
const char *uvt__lock_holder_name(const uvt_lock_t *l, bool *ended);
/* Structured concurrency, from uvt__task_complete: a group child ended;
 * a task ended with scopes still open (a bug: see structured.h). */
void uvt__group_child_done(uvt_task_t *t);
void uvt__scopes_abandon(uvt_task_t *t);
/* The parent a spawn made now records: the spawning task, or the owner
 * of the group spawning it. */
static inline uvt_task_t *uvt__spawn_parent(const uvt__sched_t *s) {
  return s->spawn_parent != NULL ? s->spawn_parent : s->current;
}

/* Free a task struct whose handle was released and which is done. */
void uvt__task_release(uvt_task_t *t);
void uvt__future_release(uvt_future_t *f);
/* Give up one reference; the last one of a finished object frees it. */
void uvt__task_unref(uvt_task_t *t);
/* The same for a caller that found the hook flag clear: no DESTROY. */
void uvt__task_unref_quiet(uvt_task_t *t);
void uvt__future_unref(uvt_future_t *f);
/* A handle's outcome handed to the awaiter (uvt_await_result): result
 * and a malloc'd copy of the message, each out pointer may be NULL. */
void uvt__outcome_hand_over(const uvt__outcome_t *o, bool ok, void **result,
                            char **message);

/* The name given to uvt_testing_set_name, copied; false if none. */
bool uvt__testing_name_copy(char *buf, size_t size);

/* Report what is still alive on this thread's loops (process exit). */
void uvt__scan_at_exit(void);

/* One-line diagnostic on stderr: "uvtask: <message>", control characters
 * escaped (see uvt__stderr_line). */
void uvt__warn(const char *fmt, ...) UVT__PRINTF(1, 2);

/* Write `prefix` then `text` and a newline to stderr in one write.  Bytes
 * of `text` that a terminal would act on (C0 controls, DEL, and the C1
 * controls U+0080..U+009F) are written as \xNN, so that a task name or a
 * uvt_fail message cannot move the cursor, retitle the window or hide a
 * line.  Text beyond about 4 KiB is cut. */
void uvt__stderr_line(const char *prefix, const char *text)
    __attribute__((noinline, cold)); /* its 4 KiB buffer stays its own */

/* A broken invariant: say which, then abort. */
void uvt__panic(const char *fmt, ...) UVT__PRINTF(1, 2) __attribute__((noreturn));

#endif

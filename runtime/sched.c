/*
 * The scheduler: one per loop, it runs tasks on the loop's thread.
 *
 * Ready tasks wait in one FIFO list.  A pass takes the whole list as it
 * is when the pass begins and runs each task until it parks, yields or
 * ends; tasks made ready during a pass (spawned, woken, yielding) go to a
 * fresh list and run in the next pass.  Passes run from three libuv
 * handles: the idle handle (active only while tasks are ready, which also
 * makes the poll return at once), the prepare handle (before the poll:
 * tasks woken by timers and earlier callbacks) and the check handle (after
 * the poll: tasks woken by I/O).  One call runs at most MAX_PASSES passes
 * or PASS_BUDGET_NS of work, whichever ends first, then returns to libuv,
 * so I/O is polled at least that often and never starved, while a spawn
 * or a wake costs a list append, not a libuv iteration.
 *
 * Switching: the loop thread's own stack is the scheduler's context.  A
 * task that parks, yields or ends switches straight to the next task of
 * the pass (or of a new pass, within the budget), and back to the loop's
 * stack only when the call is over.  A spawn+await is then two switches,
 * not four, and no return to libuv.  The hooks' resume and suspend
 * events are sent by whichever side makes the switch.
 * A task switching away first checks its own stack for an overrun (see
 * stack.h); whoever runs after it (the next task, or the loop's side)
 * gives its stack back to the pool if it ended: a task cannot free the
 * stack it still runs on.  Each switch is announced to ASan and TSan
 * (fiber annotations) so sanitizer builds see one stack at a time.
 *
 * Layering: this file calls nothing above it.  The task layer's two
 * calls it needs (a task ended; a task may be freed) come through the
 * operations given at creation (s->tasks); this thread's scheduler and
 * running task live in current.c, the memory of released objects in
 * task_mem.c.
 */
#include "internal.h"
#include "findings.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define UVT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UVT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define UVT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UVT_TSAN 1
#endif
#endif

#ifdef UVT_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                    size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
                                     const void **bottom_old, size_t *size_old);
#endif
#ifdef UVT_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

/* Between two polls: at most MAX_PASSES passes, and no new pass once
 * PASS_BUDGET_NS have gone by.  The clock is read at a pass boundary once
 * CLOCK_STEPS task steps have run since the last read, not at every
 * boundary: on these virtual machines a clock read costs more than a
 * switch, and a pass may hold a single step. */
#define MAX_PASSES 1024
#define CLOCK_STEPS 64
#define PASS_BUDGET_NS 50000

#define tls_sched uvt__tls_sched
#define tls_set uvt__sched_set_current

static uint64_t sched_count;
static uv_once_t list_once = UV_ONCE_INIT;
static uv_mutex_t list_mutex;
static uvt__sched_t *list_head;
/* The root tools outside the process start from (debug_offsets.c): the
 * address of the scheduler list's head. */
UVT_EXPORT uvt__sched_t *const *const uvt_debug_root = &list_head;

static void list_init(void) {
  if (uv_mutex_init(&list_mutex) != 0)
    uvt__panic("cannot initialise the scheduler list mutex");
}

/* ---- ready queue ---------------------------------------------------------- */

static void idle_cb(uv_idle_t *h);

void uvt__task_broken(const uvt_task_t *t, const char *what) {
  uvt__panic("task '%s' (created at %s:%d): broken invariant: %s (state %s)",
             t->obj.name, t->obj.file, t->obj.line, what,
             uvt_task_state_name(t->state));
}

void uvt__ready_push(uvt__sched_t *s, uvt_task_t *t) {
#ifdef UVT__CHECKS
  /* Only a task that is to run goes in (CREATED or READY), not twice in
   * a row, and only at the end of the list. */
  if (UVT__UNLIKELY((unsigned)t->state > UVT_TASK_READY || s->ready_tail == t ||
                    (s->ready_tail != NULL && s->ready_tail->ready_next != NULL)))
    uvt__task_broken(t, "ready-queue push");
#endif
  t->ready_next = NULL;
  if (s->ready_tail != NULL) s->ready_tail->ready_next = t;
  else s->ready_head = t;
  s->ready_tail = t;
  /* Outside a pass, keep the poll from blocking until the task runs. */
  if (!s->in_pass) uv_idle_start(&s->idle, idle_cb);
}

/* ---- choosing the next task ------------------------------------------------- */

/* The next task of this run_passes call, off the lists: the rest of the
 * pass under way, else the first of a new pass if the call's budget
 * allows one.  NULL: the call is over, back to libuv. */
static inline __attribute__((always_inline)) uvt_task_t *
take_next(uvt__sched_t *s) {
  uvt_task_t *t = s->run_head;
  if (t == NULL) {
    if (s->ready_head == NULL || s->passes >= MAX_PASSES) return NULL;
    if (s->steps >= CLOCK_STEPS) {
      s->steps = 0;
      if (uv_hrtime() - s->pass_start > PASS_BUDGET_NS) {
        s->passes = MAX_PASSES;
        return NULL;
      }
    }
    t = s->ready_head;
    s->ready_head = s->ready_tail = NULL;
    s->passes++;
  }
  s->steps++;
#ifdef UVT__CHECKS
  if (UVT__UNLIKELY((unsigned)t->state > UVT_TASK_READY))
    uvt__task_broken(t, "taken from the ready queue");
#endif
  s->run_head = t->ready_next;
  t->ready_next = NULL;
  return t;
}

/* Give a task that never ran its stack and first frame: 0 or UVT_ENOMEM.
 * `direct`: made on another task's stack, while the loop's side is
 * suspended in s->ctx. */
static inline __attribute__((always_inline)) int
start_task(uvt__sched_t *s, uvt_task_t *t, bool direct) {
  int err = uvt__stack_take(&s->stacks, t->stack_size, &t->stack);
  if (err != 0) return err;
  uvt__ctx_make(&t->ctx, t->stack.lo, t->stack.size, s->tasks->entry, t);
#ifdef UVT__CTX_HAS_COPY_MODES
  if (direct) uvt__ctx_copy_modes(&t->ctx, &s->ctx);
#else
  (void)direct;
#endif
#ifdef UVT_TSAN
  t->tsan_fiber = s->tsan_nspare > 0 ? s->tsan_spare[--s->tsan_nspare]
                                     : __tsan_create_fiber(0);
#endif
  return 0;
}

/* The task a task giving up the CPU can switch to directly, without a
 * round trip through the loop's stack, or NULL.
 * A task that never ran but must end without running (cancelled, or no
 * stack to be had) goes back to the head of the pass for the loop's side
 * to end: ending it fires waiters and may print findings.  So does every
 * task that never ran under ucontext, where a fresh context would take
 * the current task's floating-point modes instead of the loop's. */
static inline __attribute__((always_inline)) uvt_task_t *
take_direct(uvt__sched_t *s) {
  uvt_task_t *n = take_next(s);
  if (n == NULL || n->state != UVT_TASK_CREATED) return n;
#ifdef UVT__CTX_HAS_COPY_MODES
  if (!n->cancel_pending && start_task(s, n, true) == 0) return n;
#endif
  n->ready_next = s->run_head;
  s->run_head = n;
  return NULL;
}

/* Give back what a finished task no longer needs: its stack, and the
 * whole struct if its handle was already released. */
void uvt__task_retire(uvt_task_t *t) {
  uvt__sched_t *s = t->sched;
  if (t->stack.lo != NULL) {
    uvt__stack_give(&s->stacks, &t->stack);
    t->stack.lo = NULL;
  }
#ifdef UVT_TSAN
  if (t->tsan_fiber != NULL) {
    /* A fiber's history joins the next task's: harmless, as switches on
     * the loop's thread already order every task after the last. */
    if (s->tsan_nspare < (int)(sizeof(s->tsan_spare) / sizeof(void *)))
      s->tsan_spare[s->tsan_nspare++] = t->tsan_fiber;
    else
      __tsan_destroy_fiber(t->tsan_fiber);
    t->tsan_fiber = NULL;
  }
#endif
  s->live_tasks--;
  if (uvt__task_freeable(t)) s->tasks->release(t);
}

/* On whichever side was just switched to: retire the task that switched
 * away if it ended. */
static inline __attribute__((always_inline)) void
took_over(uvt__sched_t *s, uvt_task_t *p) {
  s->switched_from = NULL;
  if (p->state == UVT_TASK_DONE) uvt__task_retire(p);
}

/* ---- step events ------------------------------------------------------------ */

/* A step begins and ends wherever the switch is made: on the loop's
 * stack, or on the task's that hands the CPU on (a subscriber's work runs
 * there, as it already does for events raised inside a task, such as a
 * spawn's stack capture).  A suspend is sent only for a step whose resume
 * was: a subscriber added while a step runs sees that step from the next
 * one on. */
UVT__HOOK_FN hook_resume(uvt__sched_t *s, uvt_task_t *t) {
  (void)s;
  t->hook_step = true;
  UVT__HOOK(.kind = UVT_HOOK_RESUME, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .task_id = t->obj.id, .name = t->obj.name,
            .loop = s->loop, .object = t);
}

UVT__HOOK_FN hook_suspend(uvt__sched_t *s, uvt_task_t *p) {
  (void)s;
  if (!p->hook_step) return;
  p->hook_step = false;
  UVT__HOOK(.kind = UVT_HOOK_SUSPEND, .object_kind = UVT_OBJECT_TASK,
            .id = p->obj.id, .task_id = p->obj.id, .name = p->obj.name,
            .file = p->obj.file, .line = p->obj.line, .func = p->obj.func,
            .where_file = p->state == UVT_TASK_DONE ? NULL : p->parked_at.file,
            .where_line = p->parked_at.line,
            .what = p->state == UVT_TASK_DONE ? NULL : p->parked_at.what,
            .status = p->state == UVT_TASK_DONE ? p->out.status : 0,
            .loop = s->loop, .object = p,
            .wait = p->state == UVT_TASK_DONE ? UVT_WAIT_NONE
                                               : (uvt_wait_kind_t)p->parked_at.wait,
            .wait_on = p->state == UVT_TASK_DONE ? NULL : UVT__SITE_ON_PUBLIC(&p->parked_at),
            .wait_on_id = p->state == UVT_TASK_DONE ? 0 : UVT__SITE_ON_ID(&p->parked_at),
            .wait_timeout = p->state == UVT_TASK_DONE ? 0 : p->parked_at.timeout);
}

/* A direct switch from `p` to `t` as one event, for subscribers that all
 * asked (uvt_hook_combine_switches): p's SUSPEND naming t as `next`.
 * The event lives per thread and only the fields a SUSPEND carries are
 * written, each time: clearing a whole event was half of this function's
 * instructions, at every task switch.  Subscribers may not switch tasks
 * from an event, so one event per thread is never in use twice. */
#ifdef ASYNCIODEBUG
static _Thread_local uvt_hook_event_t switch_ev __attribute__((tls_model("initial-exec")));
#endif

UVT__HOOK_FN hook_switch(uvt__sched_t *s, uvt_task_t *p, uvt_task_t *t) {
  (void)s;
  p->hook_step = false;
  t->hook_step = true;
#ifdef ASYNCIODEBUG
  if (UVT__HOOKS_ACTIVE()) {
    uvt_hook_event_t *ev = &switch_ev;
    bool done = p->state == UVT_TASK_DONE;
    ev->kind = UVT_HOOK_SUSPEND;
    ev->object_kind = UVT_OBJECT_TASK;
    ev->id = ev->task_id = p->obj.id;
    ev->name = p->obj.name;
    ev->file = p->obj.file;
    ev->line = p->obj.line;
    ev->func = p->obj.func;
    ev->where_file = done ? NULL : p->parked_at.file;
    ev->where_line = p->parked_at.line;
    ev->what = done ? NULL : p->parked_at.what;
    ev->status = done ? p->out.status : 0;
    ev->loop = s->loop;
    ev->object = p;
    ev->slot = NULL;
    ev->wait = done ? UVT_WAIT_NONE : (uvt_wait_kind_t)p->parked_at.wait;
    ev->wait_on = done ? NULL : UVT__SITE_ON_PUBLIC(&p->parked_at);
    ev->wait_on_id = done ? 0 : UVT__SITE_ON_ID(&p->parked_at);
    ev->wait_timeout = done ? 0 : p->parked_at.timeout;
    ev->next = t;
    ev->next_slot = NULL;
    ev->next_id = t->obj.id;
    ev->next_name = t->obj.name;
    UVT__HOOK_ENTERED_INLINE(uvt__hook_dispatch(ev));
  }
#endif
}

/* ---- switching -------------------------------------------------------------- */

/* A task's side of a switch it made, once it is resumed: tell ASan where
 * it came from (the loop's stack bounds are learnt here, as the loop side
 * cannot name its own), then finish with the task that ran before. */
static inline __attribute__((always_inline)) void
resumed(uvt__sched_t *s, void *asan_fake) {
#ifdef UVT_ASAN
  const void *lo;
  size_t size;
  __sanitizer_finish_switch_fiber(asan_fake, &lo, &size);
  if (s->asan_from_loop) {
    s->asan_stack_lo = (void *)lo;
    s->asan_stack_size = size;
    s->asan_from_loop = false;
  }
#endif
  (void)asan_fake;
  if (s->switched_from != NULL) took_over(s, s->switched_from);
}

/* From the loop's stack into `t`; returns when a task switches back. */
static void switch_into(uvt__sched_t *s, uvt_task_t *t) {
#ifdef UVT_ASAN
  void *fake = NULL;
  s->asan_from_loop = true;
  __sanitizer_start_switch_fiber(&fake, t->stack.lo, t->stack.size);
#endif
#ifdef UVT_TSAN
  __tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
  uvt__ctx_switch(&s->ctx, &t->ctx);
#ifdef UVT_ASAN
  __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

/* The step of `from` ends and `to`'s begins (`to` may be `from`: a yield
 * that carries on).  One test of the hook flag for both events: in the
 * debug library each test is a load, a test and a branch on every
 * switch.  `hooks` (a constant): false when the caller found the flag
 * clear on its way here, with nothing in between that could have set it
 * but another thread's subscribe, which then counts from the next step. */
static inline __attribute__((always_inline)) void
step_to(uvt__sched_t *s, uvt_task_t *from, uvt_task_t *to, bool hooks) {
  if (hooks && UVT__HOOKS_ACTIVE()) {
#ifdef ASYNCIODEBUG
    /* Only a step the subscribers saw begin ends in a combined event
     * (one added mid-step gets the next task's RESUME as usual). */
    if (uvt__hooks_combine && from->hook_step) {
      uvt_hook_switch_fn sw = uvt__hook_switch_fn;
      /* The lone subscriber's own switch path first: most switches need
       * no event at all (uvt_hook_switch_callback). */
      if (sw != NULL && sw(from, &from->obj.hook_slot, to, &to->obj.hook_slot,
                           uvt__hook_switch_data) == 0) {
        from->hook_step = false;
        to->hook_step = true;
      } else {
        hook_switch(s, from, to);
      }
      uvt__task_set_state(to, UVT_TASK_RUNNING);
      s->current = to;
      return;
    }
#endif
    hook_suspend(s, from);
    uvt__task_set_state(to, UVT_TASK_RUNNING);
    s->current = to;
    hook_resume(s, to);
    return;
  }
  uvt__task_set_state(to, UVT_TASK_RUNNING);
  s->current = to;
}

/* The running task `t` gives up the CPU (it parked, yielded or ended):
 * run the next task of the pass directly if there is one, else go back
 * to the loop's stack.  Returns when `t` is resumed.  `exiting`: `t`
 * will never run again, so ASan may drop its fake stack. */
static inline __attribute__((always_inline)) void
switch_out(uvt__sched_t *s, uvt_task_t *t, bool exiting, bool hooks) {
  uvt_task_t *n;
  void *fake = NULL;
  /* Before anything else runs: an overrun may have trampled the frames
   * of the task that would run next. */
  if (UVT__UNLIKELY(!uvt__stack_intact(&t->stack, uvt__stack_here())))
    uvt__stack_overflow_abort(t);
  n = take_direct(s);
  if (n == t) {
    /* A yield that began a pass of its own: carry on. */
    step_to(s, t, t, hooks);
    return;
  }
  s->switched_from = t;
  if (n != NULL) {
    step_to(s, t, n, hooks);
#ifdef UVT_ASAN
    __sanitizer_start_switch_fiber(exiting ? NULL : &fake, n->stack.lo,
                                   n->stack.size);
#endif
#ifdef UVT_TSAN
    __tsan_switch_to_fiber(n->tsan_fiber, 0);
#endif
    uvt__ctx_switch(&t->ctx, &n->ctx);
  } else {
#ifdef UVT_ASAN
    __sanitizer_start_switch_fiber(exiting ? NULL : &fake, s->asan_stack_lo,
                                   s->asan_stack_size);
#endif
#ifdef UVT_TSAN
    __tsan_switch_to_fiber(s->tsan_fiber, 0);
#endif
    uvt__ctx_switch(&t->ctx, &s->ctx);
  }
  (void)exiting;
  resumed(s, fake);
}

/* A task's first frame (the task layer's entry, s->tasks->entry) begins
 * and ends with these two.  Both are inlined there in the release build
 * (LTO): the hot spawn path stays one frame deep. */
void uvt__sched_task_begin(uvt_task_t *t) { resumed(t->sched, NULL); }

void uvt__sched_task_end(uvt_task_t *t, bool hooks) {
  switch_out(t->sched, t, true, hooks);
  uvt__panic("task '%s' was resumed after it ended", t->obj.name);
}

/* Run `t` from the loop's stack (it and whatever tasks it hands the CPU
 * to) until a task switches back.  Inlined into run_passes: in the debug
 * library its hook points would otherwise make it a call per task step. */
static inline __attribute__((always_inline)) void run_task(uvt__sched_t *s,
                                                         uvt_task_t *t) {
  uvt_task_t *p;
  if (t->state == UVT_TASK_CREATED) {
    int err = UVT_ECANCELED;
    /* Cancelled before it started: its body never runs. */
    if (t->cancel_pending) t->cancel_pending = false;
    else err = start_task(s, t, false);
    if (err != 0) {
      s->tasks->complete(t, err);
      uvt__task_retire(t);
      return;
    }
  }
  uvt__task_set_state(t, UVT_TASK_RUNNING);
  s->current = t;
  UVT__HOOK_AT(hook_resume, s, t);
  switch_into(s, t);
  s->current = NULL;
  /* t, or the last of the tasks it handed the CPU on to. */
  p = s->switched_from;
  UVT__HOOK_AT(hook_suspend, s, p);
  took_over(s, p);
}

static void run_passes(uvt__sched_t *s) {
  uvt__sched_t *prev = tls_sched;
  uvt_task_t *t;
  if (s->in_pass || s->ready_head == NULL) {
    if (s->ready_head == NULL) uv_idle_stop(&s->idle);
    return;
  }
  s->in_pass = true;
  tls_set(s);
#ifdef UVT_TSAN
  s->tsan_fiber = __tsan_get_current_fiber();
#endif
  s->passes = 0;
  s->steps = 0;
  s->pass_start = uv_hrtime();
  while ((t = take_next(s)) != NULL) run_task(s, t);
  s->in_pass = false;
  tls_set(prev);
  if (s->ready_head != NULL) uv_idle_start(&s->idle, idle_cb);
  else uv_idle_stop(&s->idle);
}

static void idle_cb(uv_idle_t *h) { run_passes(h->data); }
static void prepare_cb(uv_prepare_t *h) { run_passes(h->data); }
static void check_cb(uv_check_t *h) { run_passes(h->data); }
/* ---- park / wake -------------------------------------------------------------- */

/* Every park and yield sends AWAIT.  The await reported is the outermost
 * inline one (uvt_await_coro) if any: that is the line in the task's own
 * code that led to the suspension (and, inside a no-yield section, the
 * one to blame); what it waits on is the park's own. */
UVT__HOOK_FN hook_await(uvt_task_t *t, const uvt__site_t *where) {
  const uvt__site_t *w = t->await_nest > 0 ? &t->outer_await : where;
#ifdef ASYNCIODEBUG
  /* Every subscriber asked for the awaits that can be misuse only. */
  if (!uvt__hooks_all_awaits && t->no_yield_depth == 0 &&
      t->held_locks == NULL && where->wait != UVT_WAIT_LOCK)
    return;
#endif
  UVT__HOOK(.kind = UVT_HOOK_AWAIT, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .task_id = t->obj.id, .name = t->obj.name,
            .file = t->obj.file, .line = t->obj.line, .func = t->obj.func,
            .where_file = w->file, .where_line = w->line,
            .where_func = w->func, .what = w->what,
            .no_yield_depth = t->no_yield_depth, .object = t,
            .wait = (uvt_wait_kind_t)where->wait,
            .wait_on = UVT__SITE_ON_PUBLIC(where),
            .wait_on_id = UVT__SITE_ON_ID(where),
            .wait_timeout = where->timeout);
  (void)w;
}


/* hook_await's filter, at the call site: a park or yield that no
 * subscriber wants as AWAIT (the usual one, with a recorder) costs no
 * call. */
#ifdef ASYNCIODEBUG
#define HOOK_AWAIT(t, where)                                                 \
  do {                                                                       \
    if (UVT__HOOKS_ACTIVE() &&                                               \
        (uvt__hooks_all_awaits || (t)->no_yield_depth != 0 ||                \
         (t)->held_locks != NULL || (where)->wait == UVT_WAIT_LOCK))         \
      UVT__HOOK_ENTERED(hook_await(t, where));                               \
  } while (0)
#else
#define HOOK_AWAIT(t, where) UVT__HOOK_AT(hook_await, t, where)
#endif

static void cancel_wake_now(uvt_task_t *t, void *data) {
  (void)data;
  uvt__wake(t, UVT_ECANCELED);
}

bool uvt__take_pending_cancel(uvt_task_t *t) {
  if (!t->cancel_pending) return false;
  t->cancel_pending = false;
  return true;
}

/* `hooks` (a constant): whether to look at the hook flag at all.  The
 * callers test it once and run one of two copies, where each of the
 * AWAIT and the switch's events would test it in turn (two instructions
 * each, on every park of the debug library). */
static inline __attribute__((always_inline)) int
park_now(const uvt__site_t *where, void (*on_cancel)(uvt_task_t *, void *),
         void *data, bool hooks) {
  uvt__sched_t *s = tls_sched;
  uvt_task_t *t = s->current;
  if (uvt__take_pending_cancel(t)) return UVT_ECANCELED;
  if (hooks) HOOK_AWAIT(t, where);
  t->parked_at = *where;
  /* Since when (dumps, snapshots, the stall and lock checks): the clock
   * read that began this run of passes, not a read per park.  As stale
   * as the loop's own time (uv_now) at worst, and on the same clock as
   * uv_hrtime, which the readers compare it with. */
  t->parked_ns = s->pass_start;
  t->on_cancel = on_cancel != NULL ? on_cancel : cancel_wake_now;
  t->on_cancel_data = data;
  t->wake_status = 0;
  uvt__task_set_state(t, UVT_TASK_PARKED);
  switch_out(s, t, false, hooks);
  return t->wake_status;
}

/* Both copies are inlined here, the hooked one too: as a function of its
 * own, the task switched away one call deeper and returned through it
 * when resumed, and the returns after a switch are mispredicted (the
 * return stack holds the other task's calls).  With the task end and
 * the await end (task.c) done the same way, ~27 ns of a recorded
 * spawn+await of ~135 (bench_tracer --worker 0.5 seq, fp, pinned), for
 * 4-6 instructions more with recording off (bench_instr spawn+await+detach
 * 605.8 -> 611.8 against release 597.4). */
int uvt__park(const uvt__site_t *where,
              void (*on_cancel)(uvt_task_t *, void *), void *data) {
  if (UVT__HOOKS_ACTIVE()) return park_now(where, on_cancel, data, true);
  return park_now(where, on_cancel, data, false);
}

int uvt__park_revocable(const uvt__site_t *where,
                        void (*on_cancel)(uvt_task_t *, void *), void *data) {
  int st = uvt__park(where, on_cancel, data);
  uvt_task_t *t = tls_sched->current;
  if (UVT__UNLIKELY(t->cancel_pending) && st != UVT_ECANCELED) {
    t->cancel_pending = false;
    st = UVT_ECANCELED;
  }
  return st;
}

void uvt__wake(uvt_task_t *t, int status) {
  if (t->state != UVT_TASK_PARKED) return;
  t->on_cancel = NULL;
  t->wake_status = status;
  uvt__task_set_state(t, UVT_TASK_READY);
  uvt__ready_push(t->sched, t);
}

/* As park_now. */
static inline __attribute__((always_inline)) int
yield_now(const uvt__site_t *where, bool hooks) {
  uvt__sched_t *s = tls_sched;
  uvt_task_t *t = s->current;
  if (uvt__take_pending_cancel(t)) return UVT_ECANCELED;
  if (hooks) HOOK_AWAIT(t, where);
  t->parked_at = *where;
  t->wake_status = 0;
  uvt__task_set_state(t, UVT_TASK_READY);
  uvt__ready_push(s, t);
  switch_out(s, t, false, hooks);
  return uvt__take_pending_cancel(t) ? UVT_ECANCELED : 0;
}

/* Both copies inlined, as in uvt__park. */
int uvt__yield(const uvt__site_t *where) {
  if (UVT__HOOKS_ACTIVE()) return yield_now(where, true);
  return yield_now(where, false);
}

#ifdef ASYNCIODEBUG
int uvt__yield_quiet(const uvt__site_t *where) { return yield_now(where, false); }
#endif

/* ---- timers ----------------------------------------------------------------- */

static void uvtimer_cb(uv_timer_t *h);

static void timers_rearm(uvt__sched_t *s) {
  uvt__timer_t *top = uvt__heap_top(&s->timers);
  uint64_t now;
  if (top == NULL) {
    uv_timer_stop(&s->uvtimer);
    return;
  }
  now = uv_now(s->loop);
  uv_timer_start(&s->uvtimer, uvtimer_cb,
                 top->due_ms > now ? top->due_ms - now : 0, 0);
}

static void uvtimer_cb(uv_timer_t *h) {
  uvt__sched_t *s = h->data;
  uint64_t now = uv_now(s->loop);
  uvt__timer_t *top;
  UVT__HOOK(.kind = UVT_HOOK_CALLBACK_BEGIN, .what = "timer", .loop = s->loop);
  while ((top = uvt__heap_top(&s->timers)) != NULL && top->due_ms <= now) {
    uvt__heap_remove(&s->timers, top);
    top->cb(top);
  }
  timers_rearm(s);
  UVT__HOOK(.kind = UVT_HOOK_CALLBACK_END, .what = "timer", .loop = s->loop);
}

int uvt__timer_start(uvt__sched_t *s, uvt__timer_t *t, uint64_t ms,
                     void (*cb)(uvt__timer_t *)) {
  uvt__timer_t *top_before = uvt__heap_top(&s->timers);
  int err;
  uv_update_time(s->loop);
  t->due_ms = uv_now(s->loop) + ms;
  t->cb = cb;
  err = uvt__heap_push(&s->timers, t);
  if (err == 0 && uvt__heap_top(&s->timers) != top_before) timers_rearm(s);
  return err;
}

void uvt__timer_stop(uvt__sched_t *s, uvt__timer_t *t) {
  bool was_top;
  if (!uvt__timer_armed(t)) return;
  was_top = uvt__heap_top(&s->timers) == t;
  uvt__heap_remove(&s->timers, t);
  if (was_top) timers_rearm(s);
}

/* ---- calls from other threads -------------------------------------------------- */

/* On the loop thread, woken by uvt__sched_post or a snapshot request:
 * run what other threads posted (threadsafe.c). */
static void async_cb(uv_async_t *h) {
  uvt__sched_t *s = h->data;
  struct uvt__ts_call_s *c;
  uvt__sched_t *prev = tls_sched;
  UVT__HOOK(.kind = UVT_HOOK_CALLBACK_BEGIN, .what = "async", .loop = s->loop);
  uvt__snapshot_if_asked(s);
  uv_mutex_lock(&s->ts_mutex);
  c = s->ts_head;
  s->ts_head = s->ts_tail = NULL;
  uv_mutex_unlock(&s->ts_mutex);
  tls_set(s);
  while (c != NULL) {
    struct uvt__ts_call_s *next = c->next;
    c->run(s, c);
    free(c);
    c = next;
  }
  tls_set(prev);
  UVT__HOOK(.kind = UVT_HOOK_CALLBACK_END, .what = "async", .loop = s->loop);
}

int uvt__sched_post(uv_loop_t *loop, struct uvt__ts_call_s *c) {
  uvt__sched_t *s;
  int err;
  c->next = NULL;
  uv_once(&list_once, list_init);
  /* The list mutex keeps the scheduler alive until the send is done. */
  uv_mutex_lock(&list_mutex);
  for (s = list_head; s != NULL; s = s->list_next)
    if (s->loop == loop && !s->closing) break;
  if (s == NULL) {
    err = UVT_ENOLOOP;
  } else {
    uv_mutex_lock(&s->ts_mutex);
    if (s->ts_tail != NULL) s->ts_tail->next = c;
    else s->ts_head = c;
    s->ts_tail = c;
    uv_mutex_unlock(&s->ts_mutex);
    err = uv_async_send(&s->async);
  }
  uv_mutex_unlock(&list_mutex);
  return err;
}

uvt__sched_t *uvt__sched_list_signal_safe(void) {
  return __atomic_load_n(&list_head, __ATOMIC_ACQUIRE);
}

bool uvt__sched_any(void) {
  return __atomic_load_n(&list_head, __ATOMIC_ACQUIRE) != NULL;
}

bool uvt__sched_owned_here(void) {
  uv_thread_t self = uv_thread_self();
  uvt__sched_t *s;
  bool found = false;
  uv_once(&list_once, list_init);
  uv_mutex_lock(&list_mutex);
  for (s = list_head; s != NULL && !found; s = s->list_next)
    found = !s->closing && uv_thread_equal(&self, &s->owner);
  uv_mutex_unlock(&list_mutex);
  return found;
}

uvt__sched_t *uvt__sched_find_signal_safe(uv_loop_t *loop) {
  uvt__sched_t *s;
  for (s = __atomic_load_n(&list_head, __ATOMIC_ACQUIRE); s != NULL;
       s = __atomic_load_n(&s->list_next, __ATOMIC_ACQUIRE))
    if (s->loop == loop && !__atomic_load_n(&s->closing, __ATOMIC_RELAXED))
      return s;
  return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------- */

static uvt__sched_t *sched_create(uv_loop_t *loop,
                                  const uvt__task_ops_t *tasks) {
  uvt__sched_t *s = calloc(1, sizeof(*s));
  if (s == NULL) return NULL;
  s->tasks = tasks;
  if (uv_mutex_init(&s->ts_mutex) != 0) {
    free(s);
    return NULL;
  }
  s->loop = loop;
  s->owner = uv_thread_self();
  /* Object ids are unique in the process: the scheduler's number in the
   * top bits, a counter below. */
  s->next_id = (uint64_t)__atomic_add_fetch(&sched_count, 1, __ATOMIC_RELAXED)
               << UVT_ID_SCHED_SHIFT;
  s->registry.next = s->registry.prev = &s->registry;
  uvt__stack_pool_init(&s->stacks);
  uv_prepare_init(loop, &s->prepare);
  uv_check_init(loop, &s->check);
  uv_idle_init(loop, &s->idle);
  uv_async_init(loop, &s->async, async_cb);
  uv_timer_init(loop, &s->uvtimer);
  s->prepare.data = s->check.data = s->idle.data = s;
  s->async.data = s->uvtimer.data = s;
  s->handles_open = 5;
  uv_prepare_start(&s->prepare, prepare_cb);
  uv_check_start(&s->check, check_cb);
  /* Only tasks keep a loop alive: the ready queue (idle), timers and
   * whatever I/O they wait for.  uvt_run refs the async handle while main
   * runs, as asyncio.run blocks while main is pending. */
  uv_unref((uv_handle_t *)&s->prepare);
  uv_unref((uv_handle_t *)&s->check);
  uv_unref((uv_handle_t *)&s->async);
  uvt__stall_init(s);
  return s;
}

uvt__sched_t *uvt__sched_for_loop(uv_loop_t *loop,
                                  const uvt__task_ops_t *create) {
  uvt__sched_t *s;
  uv_once(&list_once, list_init);
  uv_mutex_lock(&list_mutex);
  for (s = list_head; s != NULL; s = s->list_next)
    if (s->loop == loop && !s->closing) break;
  if (s == NULL && create != NULL) {
    s = sched_create(loop, create);
    if (s != NULL) {
      s->list_next = list_head;
      /* Published with a release store: uvt__sched_find_signal_safe
       * walks the list without the mutex. */
      __atomic_store_n(&list_head, s, __ATOMIC_RELEASE);
    }
  }
  uv_mutex_unlock(&list_mutex);
  return s;
}

static void handle_closed(uv_handle_t *h) {
  uvt__sched_t *s = h->data;
  s->handles_open--;
}

void uvt__sched_destroy(uvt__sched_t *s) {
  uvt__sched_t **pp;
  struct uvt__ts_call_s *c;
  uv_once(&list_once, list_init);
  uv_mutex_lock(&list_mutex);
  s->closing = true;
  for (pp = &list_head; *pp != NULL; pp = &(*pp)->list_next)
    if (*pp == s) {
      *pp = s->list_next;
      break;
    }
  uv_mutex_unlock(&list_mutex);
  UVT__HOOK(.kind = UVT_HOOK_LOOP_CLOSE, .loop = s->loop);

  uv_close((uv_handle_t *)&s->prepare, handle_closed);
  uv_close((uv_handle_t *)&s->check, handle_closed);
  uv_close((uv_handle_t *)&s->idle, handle_closed);
  uv_close((uv_handle_t *)&s->async, handle_closed);
  uv_close((uv_handle_t *)&s->uvtimer, handle_closed);
  uvt__stall_close(s);
  while (s->handles_open > 0) uv_run(s->loop, UV_RUN_NOWAIT);

  for (c = s->ts_head; c != NULL;) {
    struct uvt__ts_call_s *next = c->next;
    uvt__warn("%s:%d: uvt_call_threadsafe(%s) arrived after the loop's "
              "tasks were shut down; it was not run",
              c->file, c->line, c->name);
    free(c);
    c = next;
  }
  uvt__objects_free(s);
#ifdef UVT_TSAN
  while (s->tsan_nspare > 0) __tsan_destroy_fiber(s->tsan_spare[--s->tsan_nspare]);
#endif
  uvt__heap_free(&s->timers);
  free(s->walk);
  uvt__stack_pool_destroy(&s->stacks);
  uv_mutex_destroy(&s->ts_mutex);
  if (tls_sched == s) tls_set(NULL);
  free(s);
}

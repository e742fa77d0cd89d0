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
 * Switching: the loop thread's own stack is the scheduler's context; a
 * task switches to it to park and is switched back in by a pass.  Each
 * switch is announced to ASan and TSan (fiber annotations) so sanitizer
 * builds see one stack at a time.  When a task ends, the pass (back on the
 * loop thread's stack) returns its stack to the pool: a task cannot free
 * the stack it still runs on.
 *
 * Handles released by their owner are unregistered, marked dead and kept
 * in a small quarantine ring before their memory is reused, so that a
 * later use of a released handle reads a dead magic (UVT_ERELEASED)
 * instead of freed memory.
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
 * PASS_BUDGET_NS have gone by.  The clock is read every CLOCK_EVERY passes
 * only: on these virtual machines a clock read costs as much as a switch. */
#define MAX_PASSES 256
#define CLOCK_EVERY 8
#define PASS_BUDGET_NS 50000
#define FREE_TASKS_KEEP 16384

struct uvt__ts_call_s {
  struct uvt__ts_call_s *next;
  uvt_fn fn;
  void *arg;
  const char *name, *file, *func;
  int line;
};

/* initial-exec: a plain load, instead of a __tls_get_addr call per access
 * from a shared library. */
static _Thread_local uvt__sched_t *tls_sched
    __attribute__((tls_model("initial-exec")));

static uint64_t sched_count;
static uv_once_t list_once = UV_ONCE_INIT;
static uv_mutex_t list_mutex;
static uvt__sched_t *list_head;

static void list_init(void) {
  if (uv_mutex_init(&list_mutex) != 0)
    uvt__panic("cannot initialise the scheduler list mutex");
}

uvt__sched_t *uvt__sched_current(void) { return tls_sched; }

void uvt__sched_set_current(uvt__sched_t *s) { tls_sched = s; }

uvt_task_t *uvt__task_current(void) {
  uvt__sched_t *s = tls_sched;
  return s != NULL ? s->current : NULL;
}

/* ---- ready queue ---------------------------------------------------------- */

static void idle_cb(uv_idle_t *h);

void uvt__ready_push(uvt__sched_t *s, uvt_task_t *t) {
  t->ready_next = NULL;
  if (s->ready_tail != NULL) s->ready_tail->ready_next = t;
  else s->ready_head = t;
  s->ready_tail = t;
  /* Outside a pass, keep the poll from blocking until the task runs. */
  if (!s->in_pass) uv_idle_start(&s->idle, idle_cb);
}

/* ---- switching -------------------------------------------------------------- */

static void switch_into(uvt__sched_t *s, uvt_task_t *t) {
#ifdef UVT_ASAN
  void *fake = NULL;
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

/* From a task back to the loop thread's stack.  `exiting`: the task will
 * never run again, so ASan may drop its fake stack. */
static void switch_out(uvt__sched_t *s, uvt_task_t *t, bool exiting) {
#ifdef UVT_ASAN
  void *fake = NULL;
  __sanitizer_start_switch_fiber(exiting ? NULL : &fake, s->asan_stack_lo,
                                 s->asan_stack_size);
#endif
#ifdef UVT_TSAN
  __tsan_switch_to_fiber(s->tsan_fiber, 0);
#endif
  (void)exiting;
  uvt__ctx_switch(&t->ctx, &s->ctx);
#ifdef UVT_ASAN
  __sanitizer_finish_switch_fiber(fake, (const void **)&s->asan_stack_lo,
                                  &s->asan_stack_size);
#endif
}

/* The first frame of every task, called by the context trampoline. */
static void task_entry(void *arg) {
  uvt_task_t *t = arg;
  uvt__sched_t *s = t->sched;
  int status;
#ifdef UVT_ASAN
  __sanitizer_finish_switch_fiber(NULL, (const void **)&s->asan_stack_lo,
                                  &s->asan_stack_size);
#endif
  status = t->fn(t->arg);
  uvt__task_complete(t, status);
  switch_out(s, t, true);
  uvt__panic("task '%s' was resumed after it ended", t->obj.name);
}

/* Inlined into run_passes: in the debug library its hook points would
 * otherwise make it a call per task step. */
static inline __attribute__((always_inline)) void run_task(uvt__sched_t *s,
                                                         uvt_task_t *t) {
  if (t->state == UVT__TASK_CREATED) {
    int err;
    if (t->cancel_pending) {
      /* Cancelled before it started: its body never runs. */
      t->cancel_pending = false;
      uvt__task_complete(t, UVT_ECANCELED);
      uvt__task_retire(t);
      return;
    }
    err = uvt__stack_take(&s->stacks, t->stack_size, &t->stack);
    if (err != 0) {
      uvt__task_complete(t, err);
      uvt__task_retire(t);
      return;
    }
    uvt__ctx_make(&t->ctx, t->stack.lo, t->stack.size, task_entry, t);
#ifdef UVT_TSAN
    t->tsan_fiber = __tsan_create_fiber(0);
#endif
  }
  t->state = UVT__TASK_RUNNING;
  s->current = t;
  UVT__HOOK(.kind = UVT_HOOK_RESUME, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .task_id = t->obj.id, .name = t->obj.name,
            .loop = s->loop, .object = t);
  switch_into(s, t);
  s->current = NULL;
  UVT__HOOK(.kind = UVT_HOOK_SUSPEND, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .task_id = t->obj.id, .name = t->obj.name,
            .file = t->obj.file, .line = t->obj.line, .func = t->obj.func,
            .where_file = t->state == UVT__TASK_DONE ? NULL : t->parked_at.file,
            .where_line = t->parked_at.line,
            .what = t->state == UVT__TASK_DONE ? NULL : t->parked_at.what,
            .status = t->state == UVT__TASK_DONE ? t->out.status : 0,
            .loop = s->loop, .object = t);
  if (UVT__UNLIKELY(!uvt__stack_intact(&t->stack, uvt__ctx_sp(&t->ctx),
                                        t->state == UVT__TASK_DONE)))
    uvt__panic("stack overflow in task '%s' (created at %s:%d): its %zu-byte "
               "stack was overrun; give it more with uvt_spawn_stack() or "
               "uvt_set_default_stack_size()",
               t->obj.name, t->obj.file, t->obj.line, t->stack.size);
  if (t->state == UVT__TASK_DONE) uvt__task_retire(t);
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
    __tsan_destroy_fiber(t->tsan_fiber);
    t->tsan_fiber = NULL;
  }
#endif
  s->live_tasks--;
  if (t->out.detached && t->out.pins == 0) uvt__task_release(t);
}

static void run_passes(uvt__sched_t *s) {
  uvt__sched_t *prev = tls_sched;
  uint64_t start;
  int pass;
  if (s->in_pass || s->ready_head == NULL) {
    if (s->ready_head == NULL) uv_idle_stop(&s->idle);
    return;
  }
  s->in_pass = true;
  tls_sched = s;
#ifdef UVT_TSAN
  s->tsan_fiber = __tsan_get_current_fiber();
#endif
  start = uv_hrtime();
  for (pass = 0; pass < MAX_PASSES && s->ready_head != NULL; pass++) {
    uvt_task_t *t = s->ready_head;
    s->ready_head = s->ready_tail = NULL;
    while (t != NULL) {
      uvt_task_t *next = t->ready_next;
      t->ready_next = NULL;
      run_task(s, t);
      t = next;
    }
    if ((pass + 1) % CLOCK_EVERY == 0 && uv_hrtime() - start > PASS_BUDGET_NS)
      break;
  }
  s->in_pass = false;
  tls_sched = prev;
  if (s->ready_head != NULL) uv_idle_start(&s->idle, idle_cb);
  else uv_idle_stop(&s->idle);
}

static void idle_cb(uv_idle_t *h) { run_passes(h->data); }
static void prepare_cb(uv_prepare_t *h) { run_passes(h->data); }
static void check_cb(uv_check_t *h) { run_passes(h->data); }

/* ---- park / wake -------------------------------------------------------------- */

static void cancel_wake_now(uvt_task_t *t, void *data) {
  (void)data;
  uvt__wake(t, UVT_ECANCELED);
}

bool uvt__take_pending_cancel(uvt_task_t *t) {
  if (!t->cancel_pending) return false;
  t->cancel_pending = false;
  return true;
}

int uvt__park(const uvt__site_t *where,
              void (*on_cancel)(uvt_task_t *, void *), void *data) {
  uvt__sched_t *s = tls_sched;
  uvt_task_t *t = s->current;
  if (uvt__take_pending_cancel(t)) return UVT_ECANCELED;
  uvt__noyield_check(t, where);
  t->parked_at = *where;
  t->on_cancel = on_cancel != NULL ? on_cancel : cancel_wake_now;
  t->on_cancel_data = data;
  t->wake_status = 0;
  t->state = UVT__TASK_PARKED;
  switch_out(s, t, false);
  return t->wake_status;
}

void uvt__wake(uvt_task_t *t, int status) {
  if (t->state != UVT__TASK_PARKED) return;
  t->on_cancel = NULL;
  t->wake_status = status;
  t->state = UVT__TASK_READY;
  uvt__ready_push(t->sched, t);
}

int uvt__yield(const uvt__site_t *where) {
  uvt__sched_t *s = tls_sched;
  uvt_task_t *t = s->current;
  if (uvt__take_pending_cancel(t)) return UVT_ECANCELED;
  uvt__noyield_check(t, where);
  t->parked_at = *where;
  t->wake_status = 0;
  t->state = UVT__TASK_READY;
  uvt__ready_push(s, t);
  switch_out(s, t, false);
  return uvt__take_pending_cancel(t) ? UVT_ECANCELED : 0;
}

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

static void async_cb(uv_async_t *h) {
  uvt__sched_t *s = h->data;
  struct uvt__ts_call_s *c;
  uvt__sched_t *prev = tls_sched;
  UVT__HOOK(.kind = UVT_HOOK_CALLBACK_BEGIN, .what = "async", .loop = s->loop);
  uv_mutex_lock(&s->ts_mutex);
  c = s->ts_head;
  s->ts_head = s->ts_tail = NULL;
  uv_mutex_unlock(&s->ts_mutex);
  tls_sched = s;
  while (c != NULL) {
    struct uvt__ts_call_s *next = c->next;
    uvt_task_t *t = uvt__spawn(s, c->fn, c->arg, 0, c->name, c->file, c->line,
                               c->func);
    if (t != NULL) {
      t->threadsafe = true;
      uvt_detach(t);
    }
    free(c);
    c = next;
  }
  tls_sched = prev;
  UVT__HOOK(.kind = UVT_HOOK_CALLBACK_END, .what = "async", .loop = s->loop);
}

int uvt_call_threadsafe_at(uv_loop_t *loop, uvt_fn fn, void *arg,
                           const char *name, const char *file, int line,
                           const char *func) {
  struct uvt__ts_call_s *c;
  uvt__sched_t *s;
  int err = 0;
  if (loop == NULL || fn == NULL) return UVT_EINVAL;
  c = malloc(sizeof(*c));
  if (c == NULL) return UVT_ENOMEM;
  c->next = NULL;
  c->fn = fn;
  c->arg = arg;
  c->name = name;
  c->file = file;
  c->line = line;
  c->func = func;
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
  if (s == NULL) free(c);
  return err;
}

/* ---- lifecycle ------------------------------------------------------------------- */

static uvt__sched_t *sched_create(uv_loop_t *loop) {
  uvt__sched_t *s = calloc(1, sizeof(*s));
  if (s == NULL) return NULL;
  if (uv_mutex_init(&s->ts_mutex) != 0) {
    free(s);
    return NULL;
  }
  s->loop = loop;
  s->owner = uv_thread_self();
  /* Object ids are unique in the process: the scheduler's number in the
   * top bits, a counter below. */
  s->next_id = (uint64_t)__atomic_add_fetch(&sched_count, 1, __ATOMIC_RELAXED)
               << 40;
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
  return s;
}

uvt__sched_t *uvt__sched_for_loop(uv_loop_t *loop, bool create) {
  uvt__sched_t *s;
  uv_once(&list_once, list_init);
  uv_mutex_lock(&list_mutex);
  for (s = list_head; s != NULL; s = s->list_next)
    if (s->loop == loop && !s->closing) break;
  if (s == NULL && create) {
    s = sched_create(loop);
    if (s != NULL) {
      s->list_next = list_head;
      list_head = s;
    }
  }
  uv_mutex_unlock(&list_mutex);
  return s;
}

static void handle_closed(uv_handle_t *h) {
  uvt__sched_t *s = h->data;
  s->handles_open--;
}

/* Free a released object's memory for real. */
static void obj_free(uvt__sched_t *s, uvt__obj_t *o) {
  free(o->name_owned);
  o->name_owned = NULL;
  switch (o->kind) {
  case UVT__OBJ_TASK: {
    uvt_task_t *t = (uvt_task_t *)o;
    uvt__outcome_free(&t->out);
    if (s != NULL && s->free_task_count < FREE_TASKS_KEEP) {
      t->ready_next = s->free_tasks;
      s->free_tasks = t;
      s->free_task_count++;
    } else {
      free(t);
    }
    break;
  }
  case UVT__OBJ_FUTURE:
    uvt__outcome_free(&((uvt_future_t *)o)->out);
    free(o);
    break;
  default:
    free(o);
    break;
  }
}

void uvt__quarantine(uvt__sched_t *s, uvt__obj_t *o) {
  uvt__obj_t *old = s->quarantine[s->quarantine_next];
  s->quarantine[s->quarantine_next] = o;
  s->quarantine_next = (s->quarantine_next + 1) % UVT__QUARANTINE;
  if (old != NULL) obj_free(s, old);
}

uvt_task_t *uvt__task_alloc(uvt__sched_t *s) {
  uvt_task_t *t = s->free_tasks;
  if (t != NULL) {
    s->free_tasks = t->ready_next;
    s->free_task_count--;
    memset(t, 0, sizeof(*t));
    return t;
  }
  return calloc(1, sizeof(*t));
}

void uvt__sched_destroy(uvt__sched_t *s) {
  uvt__sched_t **pp;
  struct uvt__ts_call_s *c;
  size_t i;
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
  while (s->handles_open > 0) uv_run(s->loop, UV_RUN_NOWAIT);

  for (c = s->ts_head; c != NULL;) {
    struct uvt__ts_call_s *next = c->next;
    uvt__warn("%s:%d: uvt_call_threadsafe(%s) arrived after the loop's "
              "tasks were shut down; it was not run",
              c->file, c->line, c->name);
    free(c);
    c = next;
  }
  for (i = 0; i < UVT__QUARANTINE; i++)
    if (s->quarantine[i] != NULL) obj_free(NULL, s->quarantine[i]);
  while (s->free_tasks != NULL) {
    uvt_task_t *t = s->free_tasks;
    s->free_tasks = t->ready_next;
    free(t);
  }
  uvt__heap_free(&s->timers);
  uvt__stack_pool_destroy(&s->stacks);
  uv_mutex_destroy(&s->ts_mutex);
  if (tls_sched == s) tls_sched = NULL;
  free(s);
}

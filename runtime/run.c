/*
 * uvt_run (asyncio.run) and the shutdown it shares with uvt_loop_close.
 *
 * Shutdown, in order:
 *   1. every task still pending is reported (pending-at-exit), before
 *      anything is cancelled, so the report shows where each was parked;
 *   2. each is cancelled, and the loop runs until they have all ended or
 *      SHUTDOWN_MS have passed;
 *   3. a task that ignored its cancellation is abandoned: unlinked from
 *      what it waits on, never resumed, and its stack and handle freed.
 *      Only work running on the thread pool is waited for without limit,
 *      since its request lives on the task's stack;
 *   4. every handle still held is released: a task or future handle
 *      still referenced is reported (unreleased-handle; not for a task
 *      already reported pending: that finding names it), an error nobody
 *      read is reported (unretrieved-error), a coroutine object never
 *      consumed is reported (never-awaited).
 */
#include "internal.h"
#include "findings.h"

#include <stdlib.h>
#include <string.h>

#define SHUTDOWN_MS 1000

static _Thread_local bool in_run;

static void shutdown_fire(uvt__timer_t *tm) {
  uvt__sched_t *s =
      (uvt__sched_t *)((char *)tm - offsetof(uvt__sched_t, shutdown_timer));
  s->shutdown_expired = true;
}

static bool has_pending(uvt__sched_t *s) { return s->live_tasks > 0; }

static bool pending_in_thread_pool(uvt__sched_t *s) {
  uvt__obj_t *o;
  for (o = s->registry.next; o != &s->registry; o = o->next) {
    uvt_task_t *t = (uvt_task_t *)o;
    if (o->kind == UVT_OBJECT_TASK && t->state == UVT_TASK_PARKED && t->in_pool)
      return true;
  }
  return false;
}

static void abandon(uvt__sched_t *s) {
  uvt__obj_t *o, *next;
  /* Unlink the stragglers from whatever they wait on. */
  for (o = s->registry.next; o != &s->registry; o = o->next) {
    uvt_task_t *t = (uvt_task_t *)o;
    if (o->kind != UVT_OBJECT_TASK || t->out.done) continue;
    uvt__warn("%s:%d: task '%s' did not finish within %d ms of being "
              "cancelled; abandoning it",
              o->file, o->line, o->name, SHUTDOWN_MS);
    uvt__timer_stop(s, &t->timer);
    if (t->state == UVT_TASK_PARKED && t->on_cancel != NULL) {
      void (*cb)(uvt_task_t *, void *) = t->on_cancel;
      t->on_cancel = NULL;
      cb(t, t->on_cancel_data);
    }
  }
  s->ready_head = s->ready_tail = NULL;
  for (o = s->registry.next; o != &s->registry; o = next) {
    uvt_task_t *t = (uvt_task_t *)o;
    next = o->next;
    if (o->kind != UVT_OBJECT_TASK || t->out.done) continue;
    uvt__task_abandon(t);
    t->out.done = true;
    t->out.status = UVT_ECANCELED;
    t->out.waiters.head = t->out.waiters.tail = NULL;
    uvt__task_retire(t);
  }
}

static void sched_shutdown(uvt__sched_t *s, const char *when) {
  uvt__obj_t *o, *next;
  size_t npending = 0, nshown = 0;

  for (o = s->registry.next; o != &s->registry; o = o->next) {
    uvt_task_t *t = (uvt_task_t *)o;
    if (o->kind == UVT_OBJECT_TASK && !t->out.done) {
      uvt__finding_pending(t, when);
      npending++;
      /* Tasks on the ignore list are expected to outlive the run: they
       * are cancelled like the others, but not announced. */
      if (!uvt__leaks_ignored(o->name, o->func)) nshown++;
    }
  }
  if (npending > 0) {
    if (nshown > 0)
      uvt__warn("%zu task%s still pending %s; cancelling %s", nshown,
                nshown == 1 ? "" : "s", when, nshown == 1 ? "it" : "them");
    for (o = s->registry.next; o != &s->registry; o = o->next) {
      uvt_task_t *t = (uvt_task_t *)o;
      if (o->kind == UVT_OBJECT_TASK && !t->out.done) uvt__task_cancel(t);
    }
    s->shutdown_expired = false;
    uvt__timer_init(&s->shutdown_timer);
    uvt__timer_start(s, &s->shutdown_timer, SHUTDOWN_MS, shutdown_fire);
    while (has_pending(s) && !s->shutdown_expired)
      uv_run(s->loop, UV_RUN_ONCE);
    uvt__timer_stop(s, &s->shutdown_timer);
    while (has_pending(s) && pending_in_thread_pool(s))
      uv_run(s->loop, UV_RUN_ONCE);
    if (has_pending(s)) abandon(s);
  }

  /* Release every handle still held. */
  for (o = s->registry.next; o != &s->registry; o = next) {
    next = o->next;
    switch (o->kind) {
    case UVT_OBJECT_TASK: {
      uvt_task_t *t = (uvt_task_t *)o;
      /* uvt_run's own reference to main is not the program's leak. */
      if (t->out.refs > 0 && t != s->main &&
          !(o->reported & UVT__REPORTED_PENDING))
        uvt__finding_unreleased(o, t->out.refs);
      t->out.refs = 0;
      uvt__task_release(t);
      break;
    }
    case UVT_OBJECT_FUTURE: {
      uvt_future_t *f = (uvt_future_t *)o;
      if (f->out.refs > 0) uvt__finding_unreleased(o, f->out.refs);
      f->out.refs = 0;
      uvt__future_release(f);
      break;
    }
    case UVT_OBJECT_CORO:
      uvt__finding_never_awaited((uvt_coro_t *)o);
      uvt_coro_close((uvt_coro_t *)o);
      break;
    case UVT_OBJECT_STREAM:
    case UVT_OBJECT_SERVER:
      uvt__finding_unclosed(o, o->kind == UVT_OBJECT_STREAM ? "stream" : "server");
      if (o->on_shutdown != NULL) o->on_shutdown(o);
      break;
    default:
      break;
    }
  }
  while (s->pending_callbacks > 0) uv_run(s->loop, UV_RUN_ONCE);
}

static void close_leftover(uv_handle_t *h, void *arg) {
  int *n = arg;
  if (uv_is_closing(h)) return;
  (*n)++;
  uv_close(h, NULL);
}

int uvt_run_at(uv_loop_t *loop, uvt_fn main, void *arg, const char *name,
               const char *file, int line, const char *func) {
  uv_loop_t *own = NULL;
  uvt__sched_t *s, *prev;
  uvt_task_t *t;
  char when[512];
  int status, err;

  if (main == NULL) return UVT_EINVAL;
  if (in_run) {
    uvt__warn("%s:%d: uvt_run(%s) inside uvt_run on the same thread", file,
              line, name);
    return UVT_ENESTED;
  }
  if (loop == NULL) {
    own = malloc(sizeof(*own));
    if (own == NULL) return UVT_ENOMEM;
    if ((err = uv_loop_init(own)) != 0) {
      free(own);
      return err;
    }
    loop = own;
  }
  s = uvt__sched_for_loop(loop, &uvt__task_ops);
  if (s == NULL || s->main != NULL) {
    if (own != NULL) {
      uv_loop_close(own);
      free(own);
    }
    return s == NULL ? UVT_ENOMEM : UVT_ENESTED;
  }
  uvt__findings_reset();
  in_run = true;
  prev = uvt__sched_current();
  uvt__sched_set_current(s);
  uv_ref((uv_handle_t *)&s->async);

  t = uvt__spawn(s, main, arg, 0, name, file, line, func);
  if (t == NULL) {
    status = UVT_ENOMEM;
  } else {
    t->is_main = true;
    s->main = t;
    while (!t->out.done) uv_run(loop, UV_RUN_DEFAULT);
    status = t->out.status;
    uvt__outcome_retrieve(&t->obj, &t->out);
  }
  uv_unref((uv_handle_t *)&s->async);

  snprintf(when, sizeof(when), "when main task '%s' returned",
           t != NULL ? t->obj.name : name);

  sched_shutdown(s, when);
  uvt__sched_destroy(s);

  if (own != NULL) {
    int leftover = 0;
    uv_walk(own, close_leftover, &leftover);
    if (leftover > 0) {
      uvt__warn("uvt_run(%s): closed %d libuv handle%s left open on its "
                "private loop",
                name, leftover, leftover == 1 ? "" : "s");
      uv_run(own, UV_RUN_DEFAULT);
    }
    if ((err = uv_loop_close(own)) != 0)
      uvt__panic("uvt_run(%s): private loop did not close: %s", name,
                 uv_strerror(err));
    free(own);
  }
  uvt__sched_set_current(prev);
  in_run = false;
  return status;
}

int uvt_loop_close(uv_loop_t *loop) {
  uvt__sched_t *s, *prev;
  if (loop == NULL) return UVT_EINVAL;
  s = uvt__sched_for_loop(loop, NULL);
  if (s == NULL) return UVT_ENOLOOP;
  if (s->main != NULL) return UVT_ENESTED;
  prev = uvt__sched_current();
  uvt__sched_set_current(s);
  sched_shutdown(s, "when uvt_loop_close was called");
  uvt__sched_destroy(s);
  uvt__sched_set_current(prev == s ? NULL : prev);
  return 0;
}

/* At process exit (uvt_hook_scan_at_exit, from a subscriber's exit
 * handler): report what is still alive on this thread's loops — pending tasks, coroutine objects never
 * awaited, unread errors, open streams — without cancelling anything. */
void uvt__scan_at_exit(void) {
  uvt__sched_t *s = uvt__sched_current();
  uvt__obj_t *o;
  if (s == NULL) return;
  for (o = s->registry.next; o != &s->registry; o = o->next) {
    switch (o->kind) {
    case UVT_OBJECT_TASK:
      /* The task calling exit() is not left pending by anyone. */
      if ((uvt_task_t *)o == s->current) break;
      if (!((uvt_task_t *)o)->out.done)
        uvt__finding_pending((uvt_task_t *)o, "when the process exited");
      else
        uvt__finding_unretrieved(o, &((uvt_task_t *)o)->out);
      break;
    case UVT_OBJECT_FUTURE:
      uvt__finding_unretrieved(o, &((uvt_future_t *)o)->out);
      break;
    case UVT_OBJECT_CORO:
      uvt__finding_never_awaited((uvt_coro_t *)o);
      break;
    case UVT_OBJECT_STREAM:
    case UVT_OBJECT_SERVER:
      uvt__finding_unclosed(o, o->kind == UVT_OBJECT_STREAM ? "stream" : "server");
      break;
    default:
      break;
    }
  }
}

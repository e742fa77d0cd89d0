/*
 * The stall check: tasks are parked and nothing left in the process can
 * wake them (asyncio hangs there silently; Go's runtime stops with "all
 * goroutines are asleep").
 *
 * A loop is stalled when, all at once:
 *   - no task is ready or running, and at least one is parked;
 *   - no uvtask timer is armed (no sleep, no time limit);
 *   - no libuv request is in flight (thread-pool work, connect, write,
 *     name lookup: loop->active_reqs), no uvtask close is pending and no
 *     call from another thread is queued;
 *   - no handle on the loop is active other than uvtask's own scheduler
 *     handles: a stream reading, a server listening, a signal watcher, a
 *     timer or any other handle of the program's own keeps it alive, so a
 *     loop driven by the program's own uv_run (uvt_spawn_on) is never
 *     stalled while its handles live.
 * Another thread may still call uvt_call_threadsafe, which nothing here
 * can see: hence the stall is reported only once it has lasted
 * ASYNCIODEBUG_STALL_MS (default 1000; 0: never), once per episode (it
 * ends when any of the above changes), with every parked task's site.
 *
 * The check runs from a repeating timer of its own, unreferenced (it
 * never keeps a loop alive), every quarter of the threshold (at most 250
 * ms): never per task step.  Both libraries print the stall on stderr
 * (one line, then one per parked task); the debug one also sends a
 * FINDING event of kind stall whose members are the parked tasks, so a
 * recorder keeps their stacks.
 */
#include "internal.h"
#include "findings.h"

#include <stdlib.h>
#include <string.h>

#define STALL_DEFAULT_MS 1000
#define STALL_MAX_MEMBERS 64
#define STALL_MAX_LINES 32

struct uvt__stall_s {
  uv_timer_t timer;
  uvt__sched_t *sched;
  uint64_t since;   /* loop time the episode began; 0: not stalled */
  bool reported;    /* this episode's report is out */
};

static uv_once_t config_once = UV_ONCE_INIT;
static uint64_t stall_ms = STALL_DEFAULT_MS;

static void config_read(void) {
  const char *v = getenv("ASYNCIODEBUG_STALL_MS");
  char *end;
  unsigned long long ms;
  if (v == NULL || *v == '\0') return;
  ms = strtoull(v, &end, 10);
  if (*end != '\0' || ms > 24ull * 3600 * 1000) {
    uvt__warn("ASYNCIODEBUG_STALL_MS=%s is not a number of milliseconds; "
              "using %d", v, STALL_DEFAULT_MS);
    return;
  }
  stall_ms = ms;
}

typedef struct {
  const uvt__sched_t *s;
  const uv_timer_t *own;
  bool busy;
} walk_handles_t;

static void count_handle(uv_handle_t *h, void *arg) {
  walk_handles_t *w = arg;
  const uvt__sched_t *s = w->s;
  if (!uv_is_active(h) || uv_is_closing(h)) return;
  if (h == (uv_handle_t *)&s->prepare || h == (uv_handle_t *)&s->check ||
      h == (uv_handle_t *)&s->idle || h == (uv_handle_t *)&s->async ||
      h == (uv_handle_t *)w->own)
    return;
  /* Anything else: uvtask's timer heap, a stream, a server, or the
   * program's own handle; each may wake a task. */
  w->busy = true;
}

static bool stalled(uvt__sched_t *s, const uv_timer_t *own) {
  walk_handles_t w = {s, own, false};
  bool queued;
  if (s->live_tasks == 0 || s->ready_head != NULL || s->in_pass ||
      s->current != NULL || s->pending_callbacks > 0 ||
      s->loop->active_reqs.count > 0)
    return false;
  uv_mutex_lock(&s->ts_mutex);
  queued = s->ts_head != NULL;
  uv_mutex_unlock(&s->ts_mutex);
  if (queued) return false;
  uv_walk(s->loop, count_handle, &w);
  return !w.busy;
}

UVT__HOOK_FN hook_stall(uvt__sched_t *s, uvt_task_t *first, const char *text) {
  uvt_hook_member_t *m = calloc(STALL_MAX_MEMBERS, sizeof(*m));
  uvt__obj_t *o;
  int n = 0;
  for (o = s->registry.next; m != NULL && o != &s->registry && n < STALL_MAX_MEMBERS;
       o = o->next) {
    const uvt_task_t *t = (const uvt_task_t *)o;
    if (o->kind != UVT_OBJECT_TASK || t->state != UVT_TASK_PARKED) continue;
    m[n].id = o->id;
    m[n].object = t;
    m[n].name = o->name;
    m[n].wait = (uvt_wait_kind_t)t->parked_at.wait;
    m[n].wait_on = UVT__SITE_ON_PUBLIC(&t->parked_at);
    m[n].where_file = t->parked_at.file;
    m[n].where_line = t->parked_at.line;
    n++;
  }
  UVT__HOOK(.kind = UVT_HOOK_FINDING, .object_kind = UVT_OBJECT_TASK,
            .id = first->obj.id, .name = first->obj.name,
            .file = first->obj.file, .line = first->obj.line,
            .func = first->obj.func, .where_file = first->parked_at.file,
            .where_line = first->parked_at.line,
            .where_func = first->parked_at.func, .what = first->parked_at.what,
            .message = text, .finding = UVT_FINDING_STALL, .loop = s->loop,
            .object = first, .members = m, .nmembers = n);
  free(m);
  (void)first, (void)text;
}

static void report(uvt__sched_t *s, uint64_t lasted) {
  char text[512], line[2048];
  uvt__obj_t *o;
  uvt_task_t *first = NULL;
  size_t parked = 0, shown = 0;
  for (o = s->registry.next; o != &s->registry; o = o->next) {
    const uvt_task_t *t = (const uvt_task_t *)o;
    if (o->kind != UVT_OBJECT_TASK || t->state != UVT_TASK_PARKED) continue;
    /* The one parked longest names the finding. */
    if (first == NULL || t->parked_ns < first->parked_ns) first = (uvt_task_t *)t;
    parked++;
  }
  if (first == NULL) return;
  snprintf(text, sizeof(text),
           "%zu task%s parked for %llu ms and nothing left can wake them: no "
           "task ready, no timer, I/O or thread-pool work, no handle of the "
           "program's own",
           parked, parked == 1 ? "" : "s", (unsigned long long)lasted);
  if (!uvt__findings_quiet) {
    uvt__warn("stall: %s; each parked task follows", text);
    for (o = s->registry.next; o != &s->registry && shown < STALL_MAX_LINES;
         o = o->next) {
      const uvt_task_t *t = (const uvt_task_t *)o;
      if (o->kind != UVT_OBJECT_TASK || t->state != UVT_TASK_PARKED) continue;
      char holder[512] = "";
      const uvt_lock_t *l = t->parked_at.on;
      /* A holder that ended is named by the lock's record (sync_lock.c). */
      bool ended = false;
      const char *name;
      if (t->parked_at.wait == UVT_WAIT_LOCK && l != NULL && l->holder != NULL &&
          (name = uvt__lock_holder_name(l, &ended)) != NULL)
        snprintf(holder, sizeof(holder), ", held by task '%s'%s since %s:%d",
                 name, ended ? ", which has ended," : "",
                 l->acquired_file != NULL ? l->acquired_file : "?",
                 l->acquired_line);
      snprintf(line, sizeof(line),
               "%s:%d: warning: stall: task '%s' created at %s:%d is parked "
               "in %s here (%s%s) [stall]",
               t->parked_at.file, t->parked_at.line, o->name, o->file, o->line,
               t->parked_at.what,
               uvt_wait_kind_name((uvt_wait_kind_t)t->parked_at.wait), holder);
      uvt__stderr_line("", line);
      shown++;
    }
    if (parked > shown)
      uvt__warn("stall: and %zu more parked tasks", parked - shown);
  }
  uvt__finding_stall(first, text);
  UVT__HOOK_AT(hook_stall, s, first, text);
}

static void tick(uv_timer_t *h) {
  struct uvt__stall_s *st = h->data;
  uvt__sched_t *s = st->sched;
  uint64_t now = uv_now(s->loop);
  if (!stalled(s, h)) {
    st->since = 0;
    st->reported = false;
    return;
  }
  if (st->since == 0) st->since = now;
  if (!st->reported && now - st->since >= stall_ms) {
    st->reported = true;
    report(s, now - st->since);
  }
}

void uvt__stall_init(uvt__sched_t *s) {
  struct uvt__stall_s *st;
  uint64_t period;
  uv_once(&config_once, config_read);
  if (stall_ms == 0 || (st = calloc(1, sizeof(*st))) == NULL) return;
  st->sched = s;
  uv_timer_init(s->loop, &st->timer);
  st->timer.data = st;
  /* A quarter of the threshold: reported between 1 and 1.25 times it. */
  period = stall_ms / 4;
  if (period < 1) period = 1;
  if (period > 250) period = 250;
  uv_timer_start(&st->timer, tick, period, period);
  uv_unref((uv_handle_t *)&st->timer);
  s->stall = st;
  s->handles_open++;
}

static void stall_closed(uv_handle_t *h) {
  struct uvt__stall_s *st = h->data;
  st->sched->handles_open--;
  free(st);
}

void uvt__stall_close(uvt__sched_t *s) {
  if (s->stall == NULL) return;
  uv_close((uv_handle_t *)&s->stall->timer, stall_closed);
  s->stall = NULL;
}

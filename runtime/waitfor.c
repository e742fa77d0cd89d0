/*
 * The deadlock check: cycles in the wait-for graph, found when the edge
 * that closes one is added.
 *
 * The graph is not a structure of its own: it is the pointers already in
 * hand.  A parked task's edges come from its park site (parked_at: the
 * wait kind and the object, kept by both libraries):
 *
 *   - awaiting a task with no time limit (uvt_await, uvt_wait_for -1):
 *     an edge to that task;
 *   - acquiring a held lock: an edge to the lock's holder (the lock
 *     names it, and where it was taken);
 *   - a gather, or uvt_wait(ALL_COMPLETED) with no time limit: an edge to
 *     each task not done (it needs all of them, so a cycle through any
 *     one is a deadlock).
 *
 * Waits with a time limit and FIRST_COMPLETED / FIRST_EXCEPTION waits end
 * by themselves or by any of several tasks: not edges.  Semaphores,
 * events, queues, futures, conditions and barriers have no owner: what
 * nothing can wake there is the stall check's (stall.c).
 *
 * Edges leave only parked tasks, and a task's edges change only when it
 * parks (a lock handed on goes to a waiter that is then ready, not
 * parked).  So a new cycle always goes through the task parking now:
 * before it parks, a depth-first walk from its new edges looks for a way
 * back to it.  Each cycle is thus found once, by the park that closed it,
 * while its tasks stay parked (the program goes on, hung, as asyncio's
 * would).  The walk runs only when a task parks on a task that is itself
 * parked, on a gather or on a held lock: never on the uncontended path.
 *
 * The walk is iterative (an explicit path, grown on the heap), so a cycle
 * of any length is found: a ring of thousands of tasks each waiting on the
 * next is one deadlock.  A task or lock wait has one edge, so along such
 * chains the walk is linear; only gather/ALL sets branch, and a set of
 * tasks already seen is not walked twice.  Its cost is bounded by the
 * number of distinct tasks it looks at: beyond ASYNCIODEBUG_DEADLOCK_TASKS
 * (default 65536) it stops and says so on stderr, once per loop (a cycle
 * through more tasks than that goes unreported).
 *
 * A cycle is reported on stderr at once, one line per member (both
 * libraries; past 64 members the middle ones are folded into one line),
 * kept in the thread's findings (testing.h names it), and sent as a
 * FINDING event of kind deadlock with all its members, in cycle order:
 * member i waits for what member i + 1 is or holds.
 */
#include "internal.h"
#include "findings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WALK_TASKS_DEFAULT 65536
/* Members printed on stderr in full, at the head and the tail of a longer
 * cycle; those in between are counted on one line. */
#define PRINT_HEAD 32
#define PRINT_TAIL 16

/* A task on the walk's path and the edge it is following now. */
typedef struct {
  uvt_task_t *task;
  const uvt__site_t *site; /* where it is parked (path[0]: parking now) */
  const void *via;         /* what it waits on along the path: task or lock */
  size_t next;             /* in a set: the first task not tried yet */
} step_t;

/* A slot of the seen set: valid in the walk numbered `epoch` only, so that
 * a walk starts with an empty set without clearing it. */
typedef struct {
  const uvt_task_t *task;
  uint32_t epoch;
} seen_t;

/* The scheduler's (sched->walk, freed with free()): one block holding the
 * path and an open-addressing set of the tasks seen, grown together. */
typedef struct {
  uvt_task_t *self;
  size_t depth;          /* steps on the path */
  size_t cap;            /* path capacity; the seen set has 2 * cap slots */
  size_t nseen;          /* tasks in the set, this walk */
  uint32_t epoch;        /* this walk's number */
  size_t limit;          /* most tasks seen by one walk */
  bool gave_up_said;     /* the "stopped after N tasks" line was printed */
  step_t *path;
  seen_t *seen;
} walk_t;

static size_t walk_limit(void) {
  const char *v = getenv("ASYNCIODEBUG_DEADLOCK_TASKS");
  char *end;
  unsigned long n;
  if (v == NULL || *v == '\0') return WALK_TASKS_DEFAULT;
  errno = 0;
  n = strtoul(v, &end, 10);
  if (errno != 0 || *end != '\0' || n < 1 || n > 100000000ul) {
    uvt__warn("ASYNCIODEBUG_DEADLOCK_TASKS=%s is not a number of tasks from 1 "
              "to 100000000; using %d", v, WALK_TASKS_DEFAULT);
    return WALK_TASKS_DEFAULT;
  }
  return (size_t)n;
}

static size_t seen_slot(const walk_t *w, const uvt_task_t *t) {
  uintptr_t h = (uintptr_t)t;
  h ^= h >> 17;
  h *= (uintptr_t)0x9e3779b97f4a7c15ull;
  return (size_t)(h >> 7) & (2 * w->cap - 1);
}

/* Room for `cap` steps (a power of two): the block is made anew and the
 * seen set rehashed.  False if out of memory (the walk then stops). */
static bool walk_grow(uvt__sched_t *s, size_t cap) {
  walk_t *old = s->walk, *w;
  size_t i;
  w = calloc(1, sizeof(*w) + cap * sizeof(step_t) + 2 * cap * sizeof(seen_t));
  if (w == NULL) return false;
  w->path = (step_t *)(w + 1);
  w->seen = (seen_t *)(w->path + cap);
  w->cap = cap;
  w->epoch = 1;
  if (old != NULL) {
    w->self = old->self;
    w->depth = old->depth;
    w->limit = old->limit;
    w->gave_up_said = old->gave_up_said;
    memcpy(w->path, old->path, old->depth * sizeof(step_t));
    for (i = 0; i < 2 * old->cap; i++)
      if (old->seen[i].epoch == old->epoch) {
        size_t k = seen_slot(w, old->seen[i].task);
        while (w->seen[k].epoch == w->epoch) k = (k + 1) & (2 * cap - 1);
        w->seen[k] = (seen_t){old->seen[i].task, w->epoch};
        w->nseen++;
      }
    free(old);
  } else {
    w->limit = walk_limit();
  }
  s->walk = w;
  return true;
}

/* Adds `t` to the seen set; true if it was there already. */
static bool seen_before(walk_t *w, const uvt_task_t *t) {
  size_t k = seen_slot(w, t);
  while (w->seen[k].epoch == w->epoch) {
    if (w->seen[k].task == t) return true;
    k = (k + 1) & (2 * w->cap - 1);
  }
  w->seen[k] = (seen_t){t, w->epoch};
  w->nseen++;
  return false;
}

/* The next task the top of the path waits on (setting its `via`), or NULL
 * once it has no edge left to try. */
static uvt_task_t *next_edge(step_t *st) {
  const uvt__site_t *s = st->site;
  if (s->timeout || s->on == NULL) return NULL;
  switch (s->wait) {
  case UVT_WAIT_TASK:
    if (st->next++ != 0) return NULL;
    st->via = s->on;
    return (uvt_task_t *)(uintptr_t)s->on;
  case UVT_WAIT_LOCK: {
    const uvt_lock_t *l = s->on;
    if (st->next++ != 0 || l->holder == NULL) return NULL;
    st->via = l;
    return l->holder;
  }
  case UVT_WAIT_GATHER:
  case UVT_WAIT_WAIT_SET: {
    const uvt__taskset_t *g = s->on;
    if (!g->all) return NULL;
    while (st->next < g->n) {
      uvt_task_t *t = g->tasks[st->next++];
      /* Through a set: the one task of it that is in the cycle. */
      if (!t->out.done) {
        st->via = t;
        return t;
      }
    }
    return NULL;
  }
  default:
    return NULL;
  }
}

/* Walks from path[0]; true if it came back to it (the path is then the
 * cycle), false if not or if it gave up (*gave_up). */
static bool walk(uvt__sched_t *s, bool *gave_up) {
  walk_t *w = s->walk;
  while (w->depth > 0) {
    step_t *top = &w->path[w->depth - 1];
    uvt_task_t *next = next_edge(top);
    if (next == NULL) {
      w->depth--;
      continue;
    }
    if (next == w->self) return true;
    if (next->state != UVT_TASK_PARKED) continue;
    if (w->nseen >= w->limit) {
      *gave_up = true;
      return false;
    }
    if (w->nseen + 1 >= w->cap && !walk_grow(s, 2 * w->cap)) {
      *gave_up = true;
      return false;
    }
    w = s->walk;
    if (seen_before(w, next)) continue;
    w->path[w->depth++] = (step_t){next, &next->parked_at, NULL, 0};
  }
  return false;
}

/* ---- the report --------------------------------------------------------- */

/* What member i waits for, in words: "task 'b' created at f.c:12", "a
 * lock held by task 'b' (taken at f.c:20)". */
static void waits_for_text(const walk_t *w, size_t i, char *buf, size_t size) {
  const step_t *st = &w->path[i];
  const uvt_task_t *next = w->path[(i + 1) % w->depth].task;
  if (st->site->wait == UVT_WAIT_LOCK) {
    const uvt_lock_t *l = st->via;
    if (next == st->task)
      snprintf(buf, size, "a lock it holds itself (taken at %s:%d)",
               l->acquired_file != NULL ? l->acquired_file : "?",
               l->acquired_line);
    else
      snprintf(buf, size, "a lock held by task '%s' (taken at %s:%d)",
               next->obj.name, l->acquired_file != NULL ? l->acquired_file : "?",
               l->acquired_line);
  } else {
    snprintf(buf, size, "task '%s' created at %s:%d", next->obj.name,
             next->obj.file, next->obj.line);
  }
}

UVT__HOOK_FN hook_deadlock(const walk_t *w, const char *text) {
  /* Every member, however long the cycle: the recorder keeps them all. */
  uvt_hook_member_t *m = calloc(w->depth, sizeof(*m));
  const uvt_task_t *t = w->self;
  const uvt__site_t *at = w->path[0].site;
  size_t i;
  if (m == NULL) return;
  for (i = 0; i < w->depth; i++) {
    const step_t *st = &w->path[i];
    m[i].id = st->task->obj.id;
    m[i].object = st->task;
    m[i].name = st->task->obj.name;
    m[i].wait = (uvt_wait_kind_t)st->site->wait;
    m[i].wait_on = st->via;
    m[i].where_file = st->site->file;
    m[i].where_line = st->site->line;
  }
  UVT__HOOK(.kind = UVT_HOOK_FINDING, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .task_id = t->obj.id, .name = t->obj.name,
            .file = t->obj.file, .line = t->obj.line, .func = t->obj.func,
            .where_file = at->file, .where_line = at->line,
            .where_func = at->func, .what = at->what,
            .message = text, .finding = UVT_FINDING_DEADLOCK,
            .loop = t->sched->loop, .object = t, .members = m,
            .nmembers = (int)w->depth);
  free(m);
  (void)t, (void)text, (void)at;
}

/* "N tasks wait on each other: 'a' -> 'b' -> 'a'"; a long cycle names its
 * first members, then how many more, then the last and the first again. */
static void summary_text(const walk_t *w, char *buf, size_t size) {
  size_t len, i, n = w->depth;
  len = (size_t)snprintf(buf, size, "%zu task%s wait on each other: ", n,
                         n == 1 ? "" : "s");
  for (i = 0; i <= n && len < size; i++) {
    if (n > 8 && i == 4) {
      len += (size_t)snprintf(buf + len, size - len, " -> ... %zu more ...", n - 5);
      i = n - 1;
    }
    len += (size_t)snprintf(buf + len, size - len, "%s'%s'", i == 0 ? "" : " -> ",
                            w->path[i % n].task->obj.name);
  }
}

static void report(walk_t *w) {
  char summary[1024], line[2048], waits[512];
  size_t i, n = w->depth;
  summary_text(w, summary, sizeof(summary));
  for (i = 0; i < n && !uvt__findings_quiet; i++) {
    const step_t *st = &w->path[i];
    if (n > PRINT_HEAD + PRINT_TAIL && i == PRINT_HEAD) {
      /* Said on the line of the first member not printed. */
      snprintf(line, sizeof(line),
               "%s:%d: warning: deadlock (%zu-%zu/%zu): %zu more tasks of the "
               "cycle, each waiting for the next, not listed here [deadlock]",
               st->site->file, st->site->line, i + 1, n - PRINT_TAIL, n,
               n - PRINT_HEAD - PRINT_TAIL);
      uvt__stderr_line("", line);
      i = n - PRINT_TAIL - 1;
      continue;
    }
    waits_for_text(w, i, waits, sizeof(waits));
    snprintf(line, sizeof(line),
             "%s:%d: warning: deadlock (%zu/%zu): task '%s' created at %s:%d is "
             "parked in %s here, waiting for %s [deadlock]",
             st->site->file, st->site->line, i + 1, n, st->task->obj.name,
             st->task->obj.file, st->task->obj.line, st->site->what, waits);
    uvt__stderr_line("", line);
  }
  uvt__finding_deadlock(w->self, w->path[0].site, summary);
  UVT__HOOK_AT(hook_deadlock, w, summary);
}

/* The walk stopped before it could tell: said once per loop. */
static void report_gave_up(walk_t *w, const uvt__site_t *where) {
  if (w->gave_up_said) return;
  w->gave_up_said = true;
  uvt__warn("%s:%d: task '%s' waits on a chain of more than %zu parked tasks; "
            "the deadlock check stops there (ASYNCIODEBUG_DEADLOCK_TASKS), so a "
            "cycle through more tasks goes unreported on this loop",
            where->file, where->line, w->self->obj.name, w->limit);
}

/* A cycle through `self` needs a parked task with an edge to it: one that
 * awaits it or gathers it (both are on its waiters), or one queued on a
 * lock it holds; or `where` is a lock it holds itself.  Without any, the
 * walk is skipped: a task joining the end of a long chain of awaits (each
 * awaiting the one before) then costs nothing, where a walk would go down
 * the whole chain at each park. */
static bool may_close_a_cycle(const uvt_task_t *self, const uvt__site_t *where) {
  const uvt_lock_t *l;
  if (self->out.waiters.head != NULL) return true;
  if (where->wait == UVT_WAIT_LOCK && (l = where->on) != NULL && l->holder == self)
    return true;
  for (l = self->held_locks; l != NULL; l = l->next_held)
    if (l->waiters.head != NULL) return true;
  return false;
}

void uvt__deadlock_check(uvt_task_t *self, const uvt__site_t *where) {
  /* The scheduler's, made at its first walk: one walk runs at a time on a
   * loop. */
  uvt__sched_t *s = self->sched;
  walk_t *w;
  bool gave_up = false;
  if (!may_close_a_cycle(self, where)) return;
  if (s->walk == NULL && !walk_grow(s, 64)) return;
  w = s->walk;
  w->self = self;
  w->path[0] = (step_t){self, where, NULL, 0};
  w->depth = 1;
  w->nseen = 0;
  if (++w->epoch == 0) {
    /* Wrapped: slots of four billion walks ago would look current. */
    memset(w->seen, 0, 2 * w->cap * sizeof(*w->seen));
    w->epoch = 1;
  }
  if (walk(s, &gave_up)) report(s->walk);
  else if (gave_up) report_gave_up(s->walk, where);
}

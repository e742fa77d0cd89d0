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
 * before it parks, a bounded depth-first walk from its new edges looks
 * for a way back to it.  Each cycle is thus found once, by the park that
 * closed it, while its tasks stay parked (the program goes on, hung, as
 * asyncio's would).  The walk runs only when a task parks on a task that
 * is itself parked, on a gather or on a held lock: never on the
 * uncontended path.  It gives up beyond WALK_DEPTH tasks in the chain or
 * WALK_VISITS tasks seen (a cycle that long goes unreported).
 *
 * A cycle is reported on stderr at once, one line per member (both
 * libraries), kept in the thread's findings (testing.h names it), and
 * sent as a FINDING event of kind deadlock with its members, in cycle
 * order: member i waits for what member i + 1 is or holds.
 */
#include "internal.h"
#include "findings.h"

#include <stdlib.h>
#include <string.h>

#define WALK_DEPTH 64
#define WALK_VISITS 512

typedef struct {
  uvt_task_t *self;
  int depth;                       /* tasks on the path */
  uvt_task_t *path[WALK_DEPTH];    /* path[0]: the task parking now */
  const uvt__site_t *site[WALK_DEPTH];
  const void *via[WALK_DEPTH];     /* path[i] waits on via[i]: a task or lock */
  int nseen;
  const uvt_task_t *seen[WALK_VISITS];
} walk_t;

static bool walk_site(walk_t *w, const uvt__site_t *s);

static bool seen_before(walk_t *w, const uvt_task_t *t) {
  int i;
  for (i = 0; i < w->nseen; i++)
    if (w->seen[i] == t) return true;
  if (w->nseen < WALK_VISITS) w->seen[w->nseen++] = t;
  return false;
}

/* The last task of the path waits on `via`, which `next` is or holds. */
static bool walk_edge(walk_t *w, const void *via, uvt_task_t *next) {
  w->via[w->depth - 1] = via;
  if (next == NULL) return false;
  if (next == w->self) return true;
  if (next->state != UVT_TASK_PARKED || w->depth == WALK_DEPTH ||
      w->nseen == WALK_VISITS || seen_before(w, next))
    return false;
  w->path[w->depth] = next;
  w->site[w->depth] = &next->parked_at;
  w->depth++;
  if (walk_site(w, &next->parked_at)) return true;
  w->depth--;
  return false;
}

static bool walk_site(walk_t *w, const uvt__site_t *s) {
  size_t i;
  if (s->timeout || s->on == NULL) return false;
  switch (s->wait) {
  case UVT_WAIT_TASK:
    return walk_edge(w, s->on, (uvt_task_t *)(uintptr_t)s->on);
  case UVT_WAIT_LOCK: {
    const uvt_lock_t *l = s->on;
    return l->locked && walk_edge(w, l, l->holder);
  }
  case UVT_WAIT_GATHER:
  case UVT_WAIT_WAIT_SET: {
    const uvt__taskset_t *g = s->on;
    if (!g->all) return false;
    for (i = 0; i < g->n; i++)
      if (!g->tasks[i]->out.done && walk_edge(w, g->tasks[i], g->tasks[i]))
        return true;
    return false;
  }
  default:
    return false;
  }
}

/* ---- the report --------------------------------------------------------- */

/* What member i waits for, in words: "task 'b' created at f.c:12", "a
 * lock held by task 'b' (taken at f.c:20)". */
static void waits_for_text(const walk_t *w, int i, char *buf, size_t size) {
  const uvt__site_t *s = w->site[i];
  const uvt_task_t *next = w->path[(i + 1) % w->depth];
  if (s->wait == UVT_WAIT_LOCK) {
    const uvt_lock_t *l = w->via[i];
    if (next == w->path[i])
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
  uvt_hook_member_t m[WALK_DEPTH];
  const uvt_task_t *t = w->self;
  int i;
  memset(m, 0, sizeof(m));
  for (i = 0; i < w->depth; i++) {
    const uvt_task_t *p = w->path[i];
    m[i].id = p->obj.id;
    m[i].object = p;
    m[i].name = p->obj.name;
    m[i].wait = (uvt_wait_kind_t)w->site[i]->wait;
    /* Through a gather: the one task of the set that is in the cycle. */
    m[i].wait_on = w->via[i];
    m[i].where_file = w->site[i]->file;
    m[i].where_line = w->site[i]->line;
  }
  UVT__HOOK(.kind = UVT_HOOK_FINDING, .object_kind = UVT_OBJECT_TASK,
            .id = t->obj.id, .task_id = t->obj.id, .name = t->obj.name,
            .file = t->obj.file, .line = t->obj.line, .func = t->obj.func,
            .where_file = w->site[0]->file, .where_line = w->site[0]->line,
            .where_func = w->site[0]->func, .what = w->site[0]->what,
            .message = text, .finding = UVT_FINDING_DEADLOCK,
            .loop = t->sched->loop, .object = t, .members = m,
            .nmembers = w->depth);
  (void)m, (void)t, (void)text;
}

static void report(walk_t *w) {
  char summary[1024], line[2048], waits[512];
  size_t len = 0;
  int i;
  len = (size_t)snprintf(summary, sizeof(summary), "%d task%s wait on each other: ",
                         w->depth, w->depth == 1 ? "" : "s");
  for (i = 0; i <= w->depth && len < sizeof(summary); i++)
    len += (size_t)snprintf(summary + len, sizeof(summary) - len, "%s'%s'",
                            i == 0 ? "" : " -> ", w->path[i % w->depth]->obj.name);
  for (i = 0; i < w->depth && !uvt__findings_quiet; i++) {
    const uvt_task_t *p = w->path[i];
    waits_for_text(w, i, waits, sizeof(waits));
    snprintf(line, sizeof(line),
             "%s:%d: warning: deadlock (%d/%d): task '%s' created at %s:%d is "
             "parked in %s here, waiting for %s [deadlock]",
             w->site[i]->file, w->site[i]->line, i + 1, w->depth, p->obj.name,
             p->obj.file, p->obj.line, w->site[i]->what, waits);
    uvt__stderr_line("", line);
  }
  uvt__finding_deadlock(w->self, w->site[0], summary);
  UVT__HOOK_AT(hook_deadlock, w, summary);
}

void uvt__deadlock_check(uvt_task_t *self, const uvt__site_t *where) {
  /* The scheduler's, made at its first walk: too big for a small task
   * stack, and one walk runs at a time on a loop. */
  walk_t *w = self->sched->walk;
  if (w == NULL && (w = self->sched->walk = malloc(sizeof(*w))) == NULL) return;
  w->self = self;
  w->path[0] = self;
  w->site[0] = where;
  w->depth = 1;
  w->nseen = 0;
  if (walk_site(w, where)) report(w);
}

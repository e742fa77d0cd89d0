/*
 * Who holds which uvt_lock_t, who waits for it, and the two lints that
 * follow from that (see locks.h): lock-not-released and
 * lock-held-across-await.  Lock orders go to lockdep.c.
 *
 * State, all on the loop thread that raised the events (per thread, no
 * locking), and only for tasks that touched a lock:
 *  - per task (task_t, in the recorder record's lock word): the locks it
 *    holds, in the order taken, with their acquire sites (at most
 *    MAX_HELD; deeper ones are counted and not tracked), whether it is
 *    parked and where, and the lock it is queued on, if any;
 *  - per lock (lock_t, in a hash table keyed by the lock's address): its
 *    holder as the events tell it, how many tasks are queued on it now,
 *    and since when "holder parked elsewhere while others queue" has held.
 *    An entry lives while the lock is held or waited for; nothing is kept
 *    for an idle lock (the runtime sends no event when one is destroyed).
 *
 * A lock is held from LOCK_ACQUIRED until LOCK_RELEASED by any task (a
 * release hands it to the first waiter, whose ACQUIRED follows when it
 * resumes).  A waiter is queued from its AWAIT on the lock to its next
 * RESUME (granted, cancelled or the lock destroyed).
 *
 * Where the time check of lock-held-across-await runs: a timer on the
 * loop (unref'd: it never keeps a loop alive), armed for the moment the
 * condition will have lasted ASYNCIODEBUG_LOCK_MS.  It fires while the
 * holder is still parked, so the finding appears while the program runs
 * even if the holder never resumes; it runs on the loop thread, where the
 * facts are, so nothing here is shared with another thread (the watchdog
 * thread would have to read this state under a lock on every event).
 * A timer per loop is started only when a lock is contended while its
 * holder is parked.
 *
 * Each lint is reported once per acquire site (a lock taken at one line
 * by a thousand tasks that all forget to release it is one bug).
 */
#include "locks.h"
#include "tracer.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HELD 16
#define REPORTED_MAX 1024 /* acquire sites already reported, per lint */

typedef struct lock_s lock_t;

typedef struct task_s {
  void *owner;             /* the recorder's record */
  uvt__lock_site_t held[MAX_HELD];
  int nheld, untracked;    /* untracked: held beyond MAX_HELD */
  lock_t *queued;          /* the lock it is queued on, or NULL */
  bool parked;             /* parked on something other than a lock */
  uint64_t parked_ns;
  const void *object;      /* the event's object, for its parked stack */
  const char *park_file, *park_what;
  int park_line;
} task_t;

struct lock_s {
  lock_t *next;            /* hash chain */
  const void *lock;
  task_t *holder;          /* NULL: free, handed over, or its holder ended */
  int queued;              /* tasks parked in its acquire now */
  int waited;              /* tasks that queued during this hold */
  uint64_t contended_ns;   /* holder parked elsewhere and queued > 0 since; 0: not */
  uv_loop_t *loop;
};

typedef struct ltimer_s {
  struct ltimer_s *next;
  uv_loop_t *loop;
  uv_timer_t timer;
} ltimer_t;

typedef struct {
  lock_t **buckets;
  size_t nbuckets, count;
  ltimer_t *timers;
  /* Entries of locks let go, for the next ones: an uncontended lock gets
   * an entry at each acquire and loses it at each release, and malloc and
   * free were half the cost of that. */
  lock_t *spare;
  size_t nspare;
} lstate_t;

#define SPARE_KEEP 256

typedef struct {
  const char *file;
  int line;
} site_t;

static uvt__lock_ops_t ops;
static _Thread_local lstate_t ls __attribute__((tls_model("initial-exec")));
static pthread_mutex_t reported_mutex = PTHREAD_MUTEX_INITIALIZER;
static site_t reported[2][REPORTED_MAX];
static int nreported[2];

void uvt__locks_start(const uvt__lock_ops_t *o) { ops = *o; }

/* First report of this lint at this site?  (Bounded: past REPORTED_MAX
 * sites, every site counts as first.) */
static bool first_at_site(int lint, const char *file, int line) {
  int i;
  bool first = true;
  pthread_mutex_lock(&reported_mutex);
  for (i = 0; i < nreported[lint]; i++)
    if (reported[lint][i].line == line &&
        (reported[lint][i].file == file ||
         (file != NULL && reported[lint][i].file != NULL &&
          strcmp(reported[lint][i].file, file) == 0)))
      first = false;
  if (first && nreported[lint] < REPORTED_MAX)
    reported[lint][nreported[lint]++] = (site_t){file, line};
  pthread_mutex_unlock(&reported_mutex);
  return first;
}

/* ---- the lock table ------------------------------------------------------ */

static size_t bucket_of(const void *lock, size_t n) {
  uint64_t x = (uint64_t)(uintptr_t)lock;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 32;
  return (size_t)x & (n - 1);
}

static lock_t *lock_find(const void *lock) {
  lock_t *l;
  if (ls.nbuckets == 0) return NULL;
  for (l = ls.buckets[bucket_of(lock, ls.nbuckets)]; l != NULL; l = l->next)
    if (l->lock == lock) return l;
  return NULL;
}

static void table_grow(void) {
  size_t n = ls.nbuckets == 0 ? 64 : ls.nbuckets * 2, i;
  lock_t **b = calloc(n, sizeof(*b));
  if (b == NULL) return; /* longer chains, still correct */
  for (i = 0; i < ls.nbuckets; i++) {
    lock_t *l = ls.buckets[i];
    while (l != NULL) {
      lock_t *next = l->next;
      size_t k = bucket_of(l->lock, n);
      l->next = b[k];
      b[k] = l;
      l = next;
    }
  }
  free(ls.buckets);
  ls.buckets = b;
  ls.nbuckets = n;
}

static lock_t *lock_get(const void *lock, uv_loop_t *loop) {
  lock_t *l = lock_find(lock);
  size_t k;
  if (l != NULL) return l;
  if (ls.count >= ls.nbuckets) table_grow();
  if (ls.nbuckets == 0) return NULL;
  if (ls.spare != NULL) {
    l = ls.spare;
    ls.spare = l->next;
    ls.nspare--;
    memset(l, 0, sizeof(*l));
  } else if ((l = calloc(1, sizeof(*l))) == NULL) {
    return NULL;
  }
  l->lock = lock;
  l->loop = loop;
  k = bucket_of(lock, ls.nbuckets);
  l->next = ls.buckets[k];
  ls.buckets[k] = l;
  ls.count++;
  return l;
}

/* Drop the entry of a lock nobody holds or waits for. */
static void lock_maybe_drop(lock_t *l) {
  lock_t **pp;
  if (l->holder != NULL || l->queued > 0) return;
  for (pp = &ls.buckets[bucket_of(l->lock, ls.nbuckets)]; *pp != NULL; pp = &(*pp)->next)
    if (*pp == l) {
      *pp = l->next;
      ls.count--;
      if (ls.nspare < SPARE_KEEP) {
        l->next = ls.spare;
        ls.spare = l;
        ls.nspare++;
      } else {
        free(l);
      }
      return;
    }
}

/* ---- lock-held-across-await ------------------------------------------------ */

static void timer_cb(uv_timer_t *h);

static ltimer_t *timer_of(uv_loop_t *loop) {
  ltimer_t *t;
  for (t = ls.timers; t != NULL; t = t->next)
    if (t->loop == loop) return t;
  if (loop == NULL || (t = calloc(1, sizeof(*t))) == NULL) return NULL;
  t->loop = loop;
  uv_timer_init(loop, &t->timer);
  uv_unref((uv_handle_t *)&t->timer);
  t->next = ls.timers;
  ls.timers = t;
  return t;
}

/* Have `loop`'s timer fire by `due_ns` (uvt__tclock's clock). */
static void arm(uv_loop_t *loop, uint64_t due_ns) {
  ltimer_t *t = timer_of(loop);
  uint64_t now = uvt__tclock(), ms;
  if (t == NULL) return;
  ms = due_ns > now ? (due_ns - now + 999999) / 1000000 : 0;
  if (uv_is_active((uv_handle_t *)&t->timer) &&
      uv_timer_get_due_in(&t->timer) <= ms)
    return;
  uv_timer_start(&t->timer, timer_cb, ms, 0);
}

static uint64_t threshold_ns(void) { return (uint64_t)uvt__tcfg.lock_ms * 1000000u; }

/* Recompute whether `l` is contended while its holder is parked, and if
 * that just began, when to look again. */
static void contention_update(lock_t *l, uint64_t now) {
  bool on = l->holder != NULL && l->holder->parked && l->queued > 0;
  if (!on) {
    l->contended_ns = 0;
    return;
  }
  if (l->contended_ns != 0) return;
  l->contended_ns = now;
  arm(l->loop, now + threshold_ns());
}

static void held_across_await(lock_t *l, uint64_t now) {
  task_t *h = l->holder;
  const uvt__lock_site_t *site = NULL;
  char text[768];
  uvt__lock_finding_t f;
  int i;
  for (i = 0; i < h->nheld; i++)
    if (h->held[i].lock == l->lock) site = &h->held[i];
  if (site == NULL || !first_at_site(1, site->file, site->line)) return;
  snprintf(text, sizeof(text),
           "task '%s' holds a lock taken at %s:%d while parked for %llu ms "
           "in %s at %s:%d; %d task%s waited for the lock",
           ops.name(h->owner), uvt__base_name(site->file), site->line,
           (unsigned long long)((now - h->parked_ns) / 1000000),
           h->park_what ? h->park_what : "an await",
           uvt__base_name(h->park_file), h->park_line, l->waited,
           l->waited == 1 ? "" : "s");
  memset(&f, 0, sizeof(f));
  f.kind = UVT_FINDING_LOCK_HELD_ACROSS_AWAIT;
  f.owner = h->owner;
  f.file = site->file;
  f.line = site->line;
  f.func = site->func;
  f.text = text;
  f.stack = ops.parked_stack(h->object);
  f.where_file = h->park_file;
  f.where_line = h->park_line;
  f.where_what = h->park_what;
  f.duration_ns = (int64_t)(now - l->contended_ns);
  ops.report(&f);
}

static void timer_cb(uv_timer_t *h) {
  uint64_t now = uvt__tclock(), next = 0, limit = threshold_ns();
  ltimer_t *t = (ltimer_t *)((char *)h - offsetof(ltimer_t, timer));
  size_t i;
  lock_t *l;
  for (i = 0; i < ls.nbuckets; i++)
    for (l = ls.buckets[i]; l != NULL; l = l->next) {
      if (l->loop != t->loop || l->contended_ns == 0) continue;
      if (now - l->contended_ns >= limit) {
        held_across_await(l, now);
        /* Once per contention: not again until it ends and begins anew. */
        l->contended_ns = UINT64_MAX;
      } else if (l->contended_ns != UINT64_MAX &&
                 (next == 0 || l->contended_ns + limit < next)) {
        next = l->contended_ns + limit;
      }
    }
  if (next != 0) arm(t->loop, next);
}

static void ltimer_closed(uv_handle_t *h) {
  free((ltimer_t *)((char *)h - offsetof(ltimer_t, timer)));
}

void uvt__locks_loop_close(uv_loop_t *loop) {
  ltimer_t **pp;
  for (pp = &ls.timers; *pp != NULL; pp = &(*pp)->next)
    if ((*pp)->loop == loop) {
      ltimer_t *t = *pp;
      *pp = t->next;
      uv_close((uv_handle_t *)&t->timer, ltimer_closed);
      return;
    }
}

int uvt__locks_holder(const void *lock, uint64_t *holder_id, const char **file,
                      int *line) {
  lock_t *l = lock_find(lock);
  int i;
  if (l == NULL || l->holder == NULL) return 0;
  *holder_id = ops.id(l->holder->owner);
  for (i = 0; i < l->holder->nheld; i++)
    if (l->holder->held[i].lock == lock) {
      *file = l->holder->held[i].file;
      *line = l->holder->held[i].line;
    }
  return 1;
}

/* ---- events ---------------------------------------------------------------- */

static void on_acquired(task_t *t, const uvt_hook_event_t *ev) {
  uvt__lock_site_t site = {ev->wait_on, ev->where_file, ev->where_line, ev->where_func};
  lock_t *l;
  if (t->nheld > 0) uvt__lockdep_acquire(t->owner, t->held, t->nheld, &site, &ops);
  if (t->nheld == MAX_HELD) {
    /* Not tracked: no entry names this task, which may end any time. */
    t->untracked++;
    return;
  }
  t->held[t->nheld++] = site;
  if ((l = lock_get(ev->wait_on, ev->loop)) == NULL) return;
  if (l->loop == NULL) l->loop = ev->loop;
  l->holder = t;
  l->waited = l->queued;
  l->contended_ns = 0;
}

static void forget_held(task_t *t, const void *lock) {
  int i;
  for (i = t->nheld - 1; i >= 0; i--)
    if (t->held[i].lock == lock) {
      memmove(&t->held[i], &t->held[i + 1], (size_t)(t->nheld - i - 1) * sizeof(t->held[0]));
      t->nheld--;
      return;
    }
  if (t->untracked > 0) t->untracked--;
}

static void on_released(const uvt_hook_event_t *ev) {
  lock_t *l = lock_find(ev->wait_on);
  if (l == NULL || l->holder == NULL) return;
  forget_held(l->holder, l->lock);
  l->holder = NULL;
  l->contended_ns = 0;
  lock_maybe_drop(l);
}

static void on_await(task_t *t, const uvt_hook_event_t *ev) {
  uint64_t now;
  int i;
  if (ev->wait == UVT_WAIT_LOCK) {
    lock_t *l = lock_get(ev->wait_on, ev->loop);
    if (l == NULL) return;
    t->queued = l;
    l->queued++;
    l->waited++;
    if (l->holder != NULL && l->holder->parked) contention_update(l, uvt__tclock());
    return;
  }
  /* A yield is not a park: the task is ready again at once. */
  if (t->nheld == 0 || ev->wait == UVT_WAIT_YIELD) return;
  now = uvt__tclock();
  t->parked = true;
  t->parked_ns = now;
  t->object = ev->object;
  t->park_file = ev->where_file;
  t->park_line = ev->where_line;
  t->park_what = ev->what;
  for (i = 0; i < t->nheld; i++) {
    lock_t *l = lock_find(t->held[i].lock);
    if (l != NULL && l->holder == t) contention_update(l, now);
  }
}

static void on_resume(task_t *t) {
  int i;
  if (t->queued != NULL) {
    lock_t *l = t->queued;
    t->queued = NULL;
    l->queued--;
    contention_update(l, 0);
    lock_maybe_drop(l);
  }
  if (!t->parked) return;
  t->parked = false;
  for (i = 0; i < t->nheld; i++) {
    lock_t *l = lock_find(t->held[i].lock);
    if (l != NULL && l->holder == t) contention_update(l, 0);
  }
}

static void not_released(task_t *t, const uvt_hook_event_t *ev) {
  int i;
  for (i = 0; i < t->nheld; i++) {
    const uvt__lock_site_t *s = &t->held[i];
    lock_t *l = lock_find(s->lock);
    if (l != NULL && l->holder == t) {
      /* The lock stays taken in the runtime; nobody holds it here. */
      l->holder = NULL;
      l->contended_ns = 0;
      lock_maybe_drop(l);
    }
    if (first_at_site(0, s->file, s->line)) {
      char text[512];
      uvt__lock_finding_t f;
      snprintf(text, sizeof(text),
               "task '%s' %s holding the lock it took here: the lock stays "
               "taken, and its next user waits forever",
               ops.name(t->owner),
               ev->status == UVT_ECANCELED ? "was cancelled"
               : ev->status != 0           ? "failed"
                                           : "returned");
      memset(&f, 0, sizeof(f));
      f.kind = UVT_FINDING_LOCK_NOT_RELEASED;
      f.owner = t->owner;
      f.file = s->file;
      f.line = s->line;
      f.func = s->func;
      f.text = text;
      f.where_file = s->file;
      f.where_line = s->line;
      f.where_what = "uvt_lock_acquire";
      ops.report(&f);
    }
  }
  t->nheld = 0;
  t->untracked = 0;
}

void uvt__locks_event(const uvt_hook_event_t *ev, void *owner, void **state) {
  task_t *t = *state;
  if (t == NULL) {
    if (ev->kind != UVT_HOOK_LOCK_ACQUIRED && ev->kind != UVT_HOOK_AWAIT) {
      if (ev->kind == UVT_HOOK_LOCK_RELEASED) on_released(ev);
      return;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL) return;
    t->owner = owner;
    *state = t;
  }
  switch (ev->kind) {
  case UVT_HOOK_LOCK_ACQUIRED:
    on_acquired(t, ev);
    break;
  case UVT_HOOK_LOCK_RELEASED:
    on_released(ev);
    break;
  case UVT_HOOK_AWAIT:
    on_await(t, ev);
    break;
  case UVT_HOOK_RESUME:
    on_resume(t);
    break;
  case UVT_HOOK_DONE:
    on_resume(t);
    if (t->nheld > 0) not_released(t, ev);
    break;
  case UVT_HOOK_DESTROY:
    on_resume(t);
    if (t->nheld > 0) not_released(t, ev);
    free(t);
    *state = NULL;
    break;
  default:
    break;
  }
}

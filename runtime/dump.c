/*
 * uvt_dump: every live task of a loop, as Go prints its goroutines.
 *
 * What it prints, per group of alike tasks:
 *
 *     task #1:4 'worker 2' parked [uvt_lock_acquire, 5s]
 *         parked at   app.c:40 in worker
 *         created at  app.c:71 in main_task, by task #1:1
 *
 * then the await tree (who awaits whom), roots first.  Everything comes
 * from the registry and the call sites the public macros pass, so both
 * libraries print the same; the debug one adds what the task waits on
 * (its wait kind and object) and since when.
 *
 * Output goes through a small buffer with its own number formatting and
 * no allocation, so that the same writer serves a signal handler (SIGQUIT)
 * writing to a file descriptor; only grouping and the tree allocate, and
 * they are skipped when that is not allowed.
 */
#include "internal.h"
#include "dump.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- output ------------------------------------------------------------- */

static void sink_flush(uvt__dump_sink_t *o) {
  size_t done = 0;
  if (o->file != NULL) {
    if (o->n > 0) fwrite(o->buf, 1, o->n, o->file);
  } else {
    while (done < o->n) {
      ssize_t w = write(o->fd, o->buf + done, o->n - done);
      if (w <= 0) break;
      done += (size_t)w;
    }
  }
  o->n = 0;
}

static void put(uvt__dump_sink_t *o, const char *s) {
  if (s == NULL) s = "?";
  for (; *s != '\0'; s++) {
    if (o->n == sizeof(o->buf)) sink_flush(o);
    o->buf[o->n++] = *s;
  }
}

/* The user's text (a name): control characters would break the one-line
 * entries, and a terminal would act on them. */
static void put_text(uvt__dump_sink_t *o, const char *s) {
  if (s == NULL) s = "?";
  for (; *s != '\0'; s++) {
    if (o->n == sizeof(o->buf)) sink_flush(o);
    o->buf[o->n++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
  }
}

static void put_u64(uvt__dump_sink_t *o, unsigned long long v) {
  char tmp[24];
  int k = 0;
  do tmp[k++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (k > 0) {
    char c[2] = {tmp[--k], '\0'};
    put(o, c);
  }
}

static void put_id(uvt__dump_sink_t *o, uint64_t id) {
  char buf[UVT_ID_FORMAT_MAX];
  put(o, uvt_id_format((unsigned long long)id, buf));
}

static void put_site(uvt__dump_sink_t *o, const char *file, int line,
                     const char *func) {
  put(o, file);
  put(o, ":");
  put_u64(o, line > 0 ? (unsigned long long)line : 0);
  if (func != NULL && func[0] != '\0' && func[0] != '?') {
    put(o, " in ");
    put(o, func);
  }
}

#ifdef ASYNCIODEBUG
/* Go's style: "5s", "3 minutes"; loop time has millisecond resolution. */
static void put_duration(uvt__dump_sink_t *o, uint64_t ms) {
  if (ms < 1000) {
    put_u64(o, ms);
    put(o, "ms");
  } else if (ms < 120000) {
    put_u64(o, ms / 1000);
    put(o, "s");
  } else {
    put_u64(o, ms / 60000);
    put(o, " minutes");
  }
}
#endif

/* ---- one task ---------------------------------------------------------- */

static bool parked_somewhere(const uvt_task_t *t) {
  /* A yield leaves the task ready with its site recorded: show it too. */
  return (t->state == UVT_TASK_PARKED || t->state == UVT_TASK_READY) &&
         t->parked_at.file != NULL;
}

static void put_header(uvt__dump_sink_t *o, const uvt_task_t *t) {
  put(o, uvt_task_state_name(t->state));
  if (t->state == UVT_TASK_PARKED) {
    put(o, " [");
    put(o, t->parked_at.what != NULL ? t->parked_at.what : "?");
#ifdef ASYNCIODEBUG
    if (t->parked_ns != 0) {
      /* Not uv_now: the loop's cached time stands still while it polls. */
      uint64_t now = uv_hrtime() / 1000000u;
      uint64_t since = t->parked_ns / 1000000u;
      put(o, ", ");
      put_duration(o, now > since ? now - since : 0);
    }
#endif
    put(o, "]");
  }
}

/* The debug library knows the awaited object: name it. */
static void put_waits_on(uvt__dump_sink_t *o, const uvt_task_t *t) {
#ifdef ASYNCIODEBUG
  if (t->state != UVT_TASK_PARKED || t->parked_at.wait == UVT_WAIT_NONE)
    return;
  put(o, "\n    waits on    ");
  put(o, uvt_wait_kind_name((uvt_wait_kind_t)t->parked_at.wait));
  if (UVT__SITE_ON_ID(&t->parked_at) != 0) {
    const uvt__obj_t *on = t->parked_at.on;
    put(o, " ");
    put_id(o, on->id);
    put(o, " '");
    put_text(o, on->name);
    put(o, "'");
  }
  if (t->parked_at.timeout) put(o, " (with a timeout)");
#else
  (void)o, (void)t;
#endif
}

static void put_sites(uvt__dump_sink_t *o, const uvt_task_t *t) {
  put_waits_on(o, t);
  if (parked_somewhere(t)) {
    put(o, "\n    parked at   ");
    put_site(o, t->parked_at.file, t->parked_at.line, t->parked_at.func);
  }
  put(o, "\n    created at  ");
  put_site(o, t->obj.file, t->obj.line, t->obj.func);
  if (t->parent_id != 0) {
    put(o, ", by task ");
    put_id(o, t->parent_id);
  }
  put(o, "\n");
}

static void put_task(uvt__dump_sink_t *o, const uvt_task_t *t) {
  put(o, "task ");
  put_id(o, t->obj.id);
  put(o, " '");
  put_text(o, t->obj.name);
  put(o, "' ");
  put_header(o, t);
  put_sites(o, t);
}

/* ---- groups -------------------------------------------------------------- */

static int strcmp_null(const char *a, const char *b) {
  if (a == NULL || b == NULL) return (a != NULL) - (b != NULL);
  return strcmp(a, b);
}

/* Alike: the same state, wait, parked site and creation site (names and
 * ids may differ).  The order also sorts groups by creation site. */
static int task_cmp(const void *pa, const void *pb) {
  const uvt_task_t *a = *(const uvt_task_t *const *)pa;
  const uvt_task_t *b = *(const uvt_task_t *const *)pb;
  int c;
  bool pa_ = parked_somewhere(a), pb_ = parked_somewhere(b);
  if ((c = strcmp_null(a->obj.file, b->obj.file)) != 0) return c;
  if (a->obj.line != b->obj.line) return a->obj.line < b->obj.line ? -1 : 1;
  if (a->state != b->state) return a->state < b->state ? -1 : 1;
  if (pa_ != pb_) return pa_ ? 1 : -1;
  if (pa_) {
    if ((c = strcmp_null(a->parked_at.file, b->parked_at.file)) != 0) return c;
    if (a->parked_at.line != b->parked_at.line)
      return a->parked_at.line < b->parked_at.line ? -1 : 1;
    if ((c = strcmp_null(a->parked_at.what, b->parked_at.what)) != 0) return c;
  }
  if (a->obj.id != b->obj.id) return a->obj.id < b->obj.id ? -1 : 1;
  return 0;
}

static bool alike(const uvt_task_t *a, const uvt_task_t *b) {
  bool pa = parked_somewhere(a);
  if (strcmp_null(a->obj.file, b->obj.file) != 0 || a->obj.line != b->obj.line ||
      a->state != b->state || pa != parked_somewhere(b))
    return false;
  return !pa || (strcmp_null(a->parked_at.file, b->parked_at.file) == 0 &&
                 a->parked_at.line == b->parked_at.line &&
                 strcmp_null(a->parked_at.what, b->parked_at.what) == 0);
}

#define GROUP_IDS_SHOWN 8

static void put_group(uvt__dump_sink_t *o, uvt_task_t **v, size_t n) {
  size_t i;
  const uvt_task_t *longest = v[0];
#ifdef ASYNCIODEBUG
  for (i = 1; i < n; i++)
    if (v[i]->parked_ns != 0 && v[i]->parked_ns < longest->parked_ns)
      longest = v[i];
#endif
  if (n == 1) {
    put_task(o, v[0]);
    return;
  }
  put_u64(o, n);
  put(o, " tasks ");
  put_header(o, longest);
  put(o, ":");
  for (i = 0; i < n && i < GROUP_IDS_SHOWN; i++) {
    put(o, i == 0 ? " " : ", ");
    put_id(o, v[i]->obj.id);
    put(o, " '");
    put_text(o, v[i]->obj.name);
    put(o, "'");
  }
  if (n > GROUP_IDS_SHOWN) {
    put(o, " and ");
    put_u64(o, n - GROUP_IDS_SHOWN);
    put(o, " more");
  }
  put_sites(o, v[0]);
}

/* ---- the await tree ------------------------------------------------------ */

typedef struct {
  uvt_task_t **v; /* the tasks, sorted by address (for lookups) */
  size_t n;
  size_t *first;  /* per task: its first edge in `to`, edges by awaiter */
  size_t *to;     /* awaited task's index, grouped by awaiter */
  size_t nedges;
  bool *awaited, *shown;
} tree_t;

static int ptr_cmp(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
  return x < y ? -1 : x > y;
}

static long index_of(const tree_t *tr, const uvt_task_t *t) {
  const uvt_task_t *key = t;
  uvt_task_t **hit = bsearch(&key, tr->v, tr->n, sizeof(*tr->v), ptr_cmp);
  return hit != NULL ? (long)(hit - tr->v) : -1;
}

/* An edge A -> T for every task A in T's waiters (A awaits T). */
static int tree_build(tree_t *tr) {
  size_t i, k, e = 0;
  size_t *count = calloc(tr->n + 1, sizeof(size_t));
  tr->first = calloc(tr->n + 1, sizeof(size_t));
  tr->awaited = calloc(tr->n, sizeof(bool));
  tr->shown = calloc(tr->n, sizeof(bool));
  if (count == NULL || tr->first == NULL || tr->awaited == NULL ||
      tr->shown == NULL) {
    free(count);
    return -1;
  }
  qsort(tr->v, tr->n, sizeof(*tr->v), ptr_cmp);
  for (i = 0; i < tr->n; i++) {
    const uvt__waiter_t *w;
    for (w = tr->v[i]->out.waiters.head; w != NULL; w = w->next) {
      long a = w->task != NULL ? index_of(tr, w->task) : -1;
      if (a >= 0) count[a]++, e++;
    }
  }
  tr->to = calloc(e + 1, sizeof(size_t));
  if (tr->to == NULL) {
    free(count);
    return -1;
  }
  for (i = 0, k = 0; i < tr->n; i++) {
    tr->first[i] = k;
    k += count[i];
    count[i] = tr->first[i];
  }
  tr->first[tr->n] = k;
  for (i = 0; i < tr->n; i++) {
    const uvt__waiter_t *w;
    for (w = tr->v[i]->out.waiters.head; w != NULL; w = w->next) {
      long a = w->task != NULL ? index_of(tr, w->task) : -1;
      if (a < 0) continue;
      tr->to[count[a]++] = i;
      tr->awaited[i] = true;
    }
  }
  tr->nedges = e;
  free(count);
  return 0;
}

static void tree_free(tree_t *tr) {
  free(tr->first);
  free(tr->to);
  free(tr->awaited);
  free(tr->shown);
}

#define TREE_MAX_DEPTH 64

static void tree_put(uvt__dump_sink_t *o, tree_t *tr, size_t i, int depth) {
  size_t e;
  int d;
  const uvt_task_t *t = tr->v[i];
  put(o, "  ");
  for (d = 0; d < depth; d++) put(o, "    ");
  if (depth > 0) put(o, "└── ");
  put_id(o, t->obj.id);
  put(o, " '");
  put_text(o, t->obj.name);
  put(o, "'");
  if (tr->shown[i]) {
    put(o, " (shown above)\n");
    return;
  }
  tr->shown[i] = true;
  if (parked_somewhere(t)) {
    put(o, " ");
    put(o, t->parked_at.what);
    put(o, " at ");
    put_site(o, t->parked_at.file, t->parked_at.line, NULL);
  }
  put(o, "\n");
  if (depth >= TREE_MAX_DEPTH) return;
  for (e = tr->first[i]; e < tr->first[i + 1]; e++)
    tree_put(o, tr, tr->to[e], depth + 1);
}

static void put_tree(uvt__dump_sink_t *o, uvt_task_t **v, size_t n) {
  tree_t tr;
  size_t i;
  memset(&tr, 0, sizeof(tr));
  tr.v = v;
  tr.n = n;
  if (tree_build(&tr) != 0) {
    tree_free(&tr);
    put(o, "await tree: out of memory\n");
    return;
  }
  if (tr.nedges == 0) {
    put(o, "await tree: no task awaits another\n");
  } else {
    put(o, "await tree (each task above the tasks it awaits):\n");
    /* Roots: awaiting, not awaited.  Then whatever is left: cycles. */
    for (i = 0; i < n; i++)
      if (!tr.awaited[i] && tr.first[i] < tr.first[i + 1]) tree_put(o, &tr, i, 0);
    for (i = 0; i < n; i++)
      if (!tr.shown[i] && tr.first[i] < tr.first[i + 1]) {
        put(o, "  (a cycle: these tasks await each other)\n");
        tree_put(o, &tr, i, 0);
      }
  }
  tree_free(&tr);
}

/* ---- the listing ---------------------------------------------------------- */

static size_t count_tasks(const uvt__sched_t *s) {
  const uvt__obj_t *ob;
  size_t n = 0;
  for (ob = s->registry.next; ob != &s->registry; ob = ob->next)
    if (ob->kind == UVT_OBJECT_TASK) n++;
  return n;
}

typedef struct {
  uint64_t first_id; /* the group's lowest id (task_cmp sorts ids last) */
  size_t at, n;
} group_t;

static int group_cmp(const void *pa, const void *pb) {
  const group_t *a = pa, *b = pb;
  return a->first_id < b->first_id ? -1 : a->first_id > b->first_id;
}

size_t uvt__dump_sched(const uvt__sched_t *s, uvt__dump_sink_t *o,
                       bool may_allocate) {
  const uvt__obj_t *ob;
  group_t *groups;
  size_t n = count_tasks(s), i, j, ng;
  uvt_task_t **v = may_allocate && n > 0 ? malloc(n * sizeof(*v)) : NULL;
  put(o, "uvtask: ");
  put_u64(o, n);
  put(o, n == 1 ? " task" : " tasks");
  put(o, " on scheduler #");
  put_u64(o, s->next_id >> UVT_ID_SCHED_SHIFT);
  put(o, "\n");
  if (v == NULL) {
    /* No grouping without memory: one entry per task, registry order. */
    for (ob = s->registry.next; ob != &s->registry; ob = ob->next)
      if (ob->kind == UVT_OBJECT_TASK) put_task(o, (const uvt_task_t *)ob);
    sink_flush(o);
    return n;
  }
  for (ob = s->registry.next, i = 0; ob != &s->registry; ob = ob->next)
    if (ob->kind == UVT_OBJECT_TASK) v[i++] = (uvt_task_t *)ob;
  qsort(v, n, sizeof(*v), task_cmp);
  groups = malloc(n * sizeof(*groups));
  for (i = 0, ng = 0; i < n; i = j) {
    for (j = i + 1; j < n && alike(v[i], v[j]); j++)
      ;
    if (groups != NULL) groups[ng++] = (group_t){v[i]->obj.id, i, j - i};
    else put_group(o, v + i, j - i);
  }
  if (groups != NULL) {
    /* Oldest first: main, then in order of creation. */
    qsort(groups, ng, sizeof(*groups), group_cmp);
    for (i = 0; i < ng; i++) put_group(o, v + groups[i].at, groups[i].n);
    free(groups);
  }
  put_tree(o, v, n);
  sink_flush(o);
  free(v);
  return n;
}

int uvt_dump_loop(uv_loop_t *loop, FILE *out) {
  uvt__sched_t *s;
  uvt__dump_sink_t o;
  size_t n;
  if (out == NULL) return UVT_EINVAL;
  s = loop != NULL ? uvt__sched_for_loop(loop, NULL) : uvt__sched_current();
  if (s == NULL) return UVT_ENOLOOP;
  if (!uv_thread_equal(&s->owner, &(uv_thread_t){uv_thread_self()}))
    return UVT_EWRONGTHREAD;
  memset(&o, 0, sizeof(o));
  o.file = out;
  n = uvt__dump_sched(s, &o, true);
  fflush(out);
  return n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
}


/*
 * The lock-order graph (Linux's lockdep, for tasks): catches two locks
 * taken in opposite orders the first time both orders are seen, in a run
 * that did not deadlock.
 *
 * A node is a lock; an edge A -> B says "some task took B while it held
 * A", with the two acquire sites, the task's name and its stack when the
 * edge was first seen.  A new edge A -> B closes a cycle when B already
 * reaches A: some task(s) took the same locks the other way round, and two
 * tasks doing both at once would deadlock.  That is reported once (each
 * edge is new once), at the acquire that closed it, with both orders'
 * sites and stacks.
 *
 * Why a node is a lock and not its acquire site: with site classes the
 * classic bug has no cycle.  transfer(from, to) takes from->lock at line
 * L1 and to->lock at line L2 whichever accounts it is given; the sites
 * only ever go L1 -> L2, while transfer(a, b) and transfer(b, a) take the
 * two account locks in opposite orders.  Linux's class is the lock's
 * init-time key, which would see one class nested in itself and flag the
 * fixed version (ordered by account id) as well.  A uvt_lock_t is
 * initialised without a site, so the lock itself (its address) is the
 * class here; the sites are kept on the edges to say where.  The price: a
 * lock whose memory is reused for another lock (one on a task's stack)
 * inherits the first one's orders.
 *
 * Bounded memory: at most MAX_NODES locks and MAX_EDGES orders are kept
 * (arrays grown by doubling up to that); past it no new order is learned
 * or checked, which is said once on stderr.  Cost: nothing while a task
 * holds no lock (the caller does not call in); with k locks held, k hash
 * look-ups under one process-wide mutex; a graph walk only for an order
 * never seen before.
 */
#include "locks.h"
#include "tracer.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES 4096
#define MAX_EDGES 16384
#define NODE_BUCKETS 4096 /* powers of two */
#define EDGE_BUCKETS 16384
#define TASK_NAME_MAX 48

typedef struct {
  const void *lock;
  int first_out;   /* edges from this node: index + 1, 0 ends */
  int next_hash;   /* index + 1 */
  uint32_t mark;   /* walk generation that reached it */
  int via;         /* the edge that reached it in that walk */
} node_t;

typedef struct {
  int from, to;    /* node indices */
  int next_out, next_hash; /* index + 1 */
  uvt__lock_site_t held, taken;
  char task[TASK_NAME_MAX];
  int64_t stack;   /* the taking task's stack when first seen */
} edge_t;

static pthread_mutex_t graph_mutex = PTHREAD_MUTEX_INITIALIZER;
static node_t *nodes;
static edge_t *edges;
static int nnodes, nedges, cap_nodes, cap_edges;
static int node_heads[NODE_BUCKETS], edge_heads[EDGE_BUCKETS];
static uint32_t walk_gen;
static int *walk_stack;
static bool full_said;

static uint32_t hash_ptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return (uint32_t)x;
}

static void say_full(void) {
  if (full_said) return;
  full_said = true;
  fprintf(stderr, "asynciodebug: the lock-order graph is full (%d locks, %d "
                  "orders): orders seen from now on are not checked\n",
          nnodes, nedges);
}

/* The node of `lock`, added if new; -1 when full (or out of memory). */
static int node_of(const void *lock, bool add) {
  uint32_t b = hash_ptr(lock) & (NODE_BUCKETS - 1);
  int i;
  for (i = node_heads[b]; i != 0; i = nodes[i - 1].next_hash)
    if (nodes[i - 1].lock == lock) return i - 1;
  if (!add) return -1;
  if (nnodes == cap_nodes) {
    int cap = cap_nodes == 0 ? 64 : cap_nodes * 2;
    node_t *n;
    int *st;
    if (cap_nodes >= MAX_NODES) return say_full(), -1;
    if ((n = realloc(nodes, (size_t)cap * sizeof(*n))) == NULL) return -1;
    nodes = n;
    if ((st = realloc(walk_stack, (size_t)cap * sizeof(*st))) == NULL) return -1;
    walk_stack = st;
    cap_nodes = cap;
  }
  i = nnodes++;
  memset(&nodes[i], 0, sizeof(nodes[i]));
  nodes[i].lock = lock;
  nodes[i].next_hash = node_heads[b];
  node_heads[b] = i + 1;
  return i;
}

static uint32_t edge_bucket(int from, int to) {
  return (hash_ptr((const void *)(uintptr_t)(((uint64_t)(uint32_t)from << 32) | (uint32_t)to))) &
         (EDGE_BUCKETS - 1);
}

static bool edge_known(int from, int to) {
  int i;
  for (i = edge_heads[edge_bucket(from, to)]; i != 0; i = edges[i - 1].next_hash)
    if (edges[i - 1].from == from && edges[i - 1].to == to) return true;
  return false;
}

static int edge_add(int from, int to) {
  uint32_t b = edge_bucket(from, to);
  int i;
  if (nedges == cap_edges) {
    int cap = cap_edges == 0 ? 64 : cap_edges * 2;
    edge_t *e;
    if (cap_edges >= MAX_EDGES) return say_full(), -1;
    if ((e = realloc(edges, (size_t)cap * sizeof(*e))) == NULL) return -1;
    edges = e;
    cap_edges = cap;
  }
  i = nedges++;
  memset(&edges[i], 0, sizeof(edges[i]));
  edges[i].from = from;
  edges[i].to = to;
  edges[i].next_hash = edge_heads[b];
  edge_heads[b] = i + 1;
  edges[i].next_out = nodes[from].first_out;
  nodes[from].first_out = i + 1;
  return i;
}

/* Does `start` reach `goal`?  Depth-first over the known orders; on yes,
 * nodes[].via holds the path (each reached node's incoming edge).  Every
 * node is visited at most once per walk. */
static bool reaches(int start, int goal) {
  int sp = 0, i;
  if (++walk_gen == 0) {
    for (i = 0; i < nnodes; i++) nodes[i].mark = 0;
    walk_gen = 1;
  }
  nodes[start].mark = walk_gen;
  nodes[start].via = -1;
  walk_stack[sp++] = start;
  while (sp > 0) {
    int n = walk_stack[--sp];
    if (n == goal) return true;
    for (i = nodes[n].first_out; i != 0; i = edges[i - 1].next_out) {
      int to = edges[i - 1].to;
      if (nodes[to].mark == walk_gen) continue;
      nodes[to].mark = walk_gen;
      nodes[to].via = i - 1;
      walk_stack[sp++] = to;
    }
  }
  return false;
}

const char *uvt__base_name(const char *path) {
  const char *s = path != NULL ? strrchr(path, '/') : NULL;
  return s != NULL ? s + 1 : path != NULL ? path : "?";
}

/* The message and sites of an inversion: held -> taken is new, and the
 * path from taken back to held exists (nodes[].via). */
static void describe(int from, int to, const uvt__lock_site_t *held,
                     const uvt__lock_site_t *taken, const char *task,
                     uvt__lock_finding_t *f, char *text, size_t size,
                     int64_t *other_stack) {
  const edge_t *first = NULL, *last = &edges[nodes[from].via];
  int hops = 0, e;
  /* Walk back from `from` to `to`: the path's first edge leaves `to`. */
  for (e = nodes[from].via; e >= 0; e = nodes[edges[e].from].via) {
    first = &edges[e];
    hops++;
    if (edges[e].from == to) break;
  }
  /* L1: the lock held now, L2: the one being taken (an inversion is
   * often one acquire site taking different locks, so sites alone would
   * not tell the two apart). */
  if (hops == 1)
    snprintf(text, size,
             "task '%s' holds L1 (taken at %s:%d) and takes L2 at %s:%d; task "
             "'%s' took them the other way round: L2 at %s:%d, then L1 at %s:%d",
             task, uvt__base_name(held->file), held->line,
             uvt__base_name(taken->file), taken->line, first->task,
             uvt__base_name(first->held.file), first->held.line,
             uvt__base_name(first->taken.file), first->taken.line);
  else
    snprintf(text, size,
             "task '%s' holds L1 (taken at %s:%d) and takes L2 at %s:%d; orders "
             "seen before lead from L2 back to L1 through %d other lock%s (task "
             "'%s' took L2 at %s:%d, then another at %s:%d)",
             task, uvt__base_name(held->file), held->line,
             uvt__base_name(taken->file), taken->line, hops - 1,
             hops == 2 ? "" : "s", first->task, uvt__base_name(first->held.file),
             first->held.line, uvt__base_name(first->taken.file), first->taken.line);
  f->kind = UVT_FINDING_LOCK_ORDER_INVERSION;
  f->file = taken->file;
  f->line = taken->line;
  f->func = taken->func;
  f->text = text;
  /* The other order's closing acquire: where it took the lock held now. */
  f->where_file = last->taken.file;
  f->where_line = last->taken.line;
  f->where_what = "uvt_lock_acquire";
  *other_stack = last->stack;
}

void uvt__lockdep_acquire(void *owner, const uvt__lock_site_t *held, int nheld,
                          const uvt__lock_site_t *taken,
                          const uvt__lock_ops_t *ops) {
  int i;
  const char *task = ops->name(owner);
  for (i = 0; i < nheld; i++) {
    uvt__lock_finding_t f;
    char text[1024];
    int from, to, e;
    bool cycle;
    int64_t other = 0, stack;
    if (held[i].lock == taken->lock) continue;
    pthread_mutex_lock(&graph_mutex);
    if ((from = node_of(held[i].lock, true)) < 0 ||
        (to = node_of(taken->lock, true)) < 0 || edge_known(from, to)) {
      pthread_mutex_unlock(&graph_mutex);
      continue;
    }
    cycle = reaches(to, from);
    memset(&f, 0, sizeof(f));
    if (cycle) describe(from, to, &held[i], taken, task, &f, text, sizeof(text), &other);
    pthread_mutex_unlock(&graph_mutex);
    /* A new order: its stack, taken outside the graph's lock. */
    stack = ops->capture();
    pthread_mutex_lock(&graph_mutex);
    if (!edge_known(from, to) && (e = edge_add(from, to)) >= 0) {
      edges[e].held = held[i];
      edges[e].taken = *taken;
      edges[e].stack = stack;
      snprintf(edges[e].task, sizeof(edges[e].task), "%s", task);
    }
    pthread_mutex_unlock(&graph_mutex);
    if (cycle) {
      f.owner = owner;
      f.stack = stack;
      f.stack2 = other;
      ops->report(&f);
    }
  }
}

void uvt__lockdep_forget(void) { pthread_mutex_init(&graph_mutex, NULL); }

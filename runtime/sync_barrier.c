/*
 * asyncio.Barrier.
 *
 * `count` tasks wait on `waiters` in the cycle being filled.  The one that
 * makes `count` reach `parties` does not wait: it wakes every waiter
 * granted (each node carries its arrival index in `item`) and starts the
 * next cycle at count 0.  A waiter cancelled while the cycle fills leaves
 * it (count goes down); one released and cancelled before it runs keeps
 * its success (the cycle cannot be undone) and sees the cancel at its
 * next await.  abort sets `broken`: waiters wake with UVT_EBROKEN and
 * later waits fail with it until reset.
 */
#include "internal.h"
#include "waitq.h"

#include <stdint.h>
#include <string.h>

static bool barrier_valid(const uvt_barrier_t *b) {
  return b != NULL && b->magic == UVT__MAGIC_LIVE;
}

int uvt_barrier_init(uvt_barrier_t *b, unsigned parties) {
  if (b == NULL || parties == 0) return UVT_EINVAL;
  memset(b, 0, sizeof(*b));
  uvt__waitq_init(&b->waiters);
  b->parties = parties;
  b->magic = UVT__MAGIC_LIVE;
  return 0;
}

/* A released waiter cannot give its release back. */
static bool barrier_revoke(uvt__wq_node_t *n) {
  (void)n;
  return false;
}

int uvt_barrier_wait_at(uvt_barrier_t *b, unsigned *index, const char *file,
                        int line, const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_barrier_wait", UVT_WAIT_BARRIER, b, false);
  uvt__wq_node_t node = {0};
  uvt__wq_node_t *n;
  uvt_task_t *self;
  unsigned mine;
  int st;

  if (!barrier_valid(b)) return UVT_EINVAL;
  if ((self = uvt__task_current()) == NULL)
    return uvt__no_task_here(&b->loop, "uvt_barrier_wait", file, line);
  if (b->loop == NULL) b->loop = self->sched->loop;
  UVT__YIELD_POINT(self, "uvt_barrier_wait");
  if (b->broken) return UVT_EBROKEN;
  mine = b->count++;
  if (b->count == b->parties) {
    /* The last one in: release the cycle, without yielding. */
    b->count = 0;
    while ((n = uvt__waitq_pop(&b->waiters)) != NULL) {
      n->granted = 1;
      uvt__wake(n->task, 0);
    }
    if (index != NULL) *index = mine;
    return 0;
  }
  node.item = (void *)(uintptr_t)mine;
  node.revoke = barrier_revoke;
  node.obj = b;
  st = uvt__waitq_wait(&b->waiters, &node, self, &site);
  if (st == 0) {
    if (index != NULL) *index = (unsigned)(uintptr_t)node.item;
  } else if (st == UVT_ECANCELED) {
    b->count--; /* left the cycle before it completed */
  }
  return st;
}

void uvt_barrier_abort_at(uvt_barrier_t *b,
                          const char *file, int line, const char *func) {
  (void)func;
  if (!barrier_valid(b) || uvt__loop_check(&b->loop, "uvt_barrier_abort", file, line)) return;
  b->broken = 1;
  b->count = 0;
  uvt__waitq_wake_all(&b->waiters, UVT_EBROKEN);
}

void uvt_barrier_reset_at(uvt_barrier_t *b,
                          const char *file, int line, const char *func) {
  (void)func;
  if (!barrier_valid(b) || uvt__loop_check(&b->loop, "uvt_barrier_reset", file, line)) return;
  /* asyncio's reset breaks the waiters of the cycle under way. */
  uvt__waitq_wake_all(&b->waiters, UVT_EBROKEN);
  b->count = 0;
  b->broken = 0;
}

void uvt_barrier_destroy_at(uvt_barrier_t *b,
                            const char *file, int line, const char *func) {
  (void)func;
  if (!barrier_valid(b) || uvt__loop_check(&b->loop, "uvt_barrier_destroy", file, line)) return;
  uvt__waitq_wake_all(&b->waiters, UVT_ECLOSED);
  b->magic = UVT__MAGIC_DEAD;
}

/* The plain symbols of 0.2.0, for programs built before the header's
 * macros passed the caller's location (reported as unknown). */
void (uvt_barrier_abort)(uvt_barrier_t *b) {
  uvt_barrier_abort_at(b, NULL, 0, NULL);
}
void (uvt_barrier_reset)(uvt_barrier_t *b) {
  uvt_barrier_reset_at(b, NULL, 0, NULL);
}
void (uvt_barrier_destroy)(uvt_barrier_t *b) {
  uvt_barrier_destroy_at(b, NULL, 0, NULL);
}

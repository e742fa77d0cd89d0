/*
 * asyncio.Semaphore.
 *
 * `value` counts the free permits; `waiters` the tasks parked in acquire.
 * Release with waiters hands its permit straight to the first waiter
 * instead of incrementing, so permits are served first come first served
 * and a newcomer cannot take one ahead of the queue.  Invariant:
 *
 *     value > 0  =>  waiters is empty
 */
#include "internal.h"
#include "waitq.h"

#include <limits.h>
#include <string.h>

static bool sem_valid(const uvt_sem_t *s) {
  return s != NULL && s->magic == UVT__MAGIC_LIVE;
}

int uvt_sem_init_bounded(uvt_sem_t *s, unsigned n) {
  int err = uvt_sem_init(s, n);
  if (err == 0) s->bound = n;
  return err;
}

int uvt_sem_init(uvt_sem_t *s, unsigned n) {
  if (s == NULL) return UVT_EINVAL;
  memset(s, 0, sizeof(*s));
  uvt__waitq_init(&s->waiters);
  s->value = n;
  s->magic = UVT__MAGIC_LIVE;
  return 0;
}

/* A waiter handed a permit and cancelled before it ran gives it on. */
static bool sem_revoke(uvt__wq_node_t *n) {
  uvt_sem_t *s = n->obj;
  if (!uvt__waitq_grant_first(&s->waiters, NULL)) s->value++;
  return true;
}

int uvt_sem_acquire_at(uvt_sem_t *s, const char *file, int line,
                       const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_sem_acquire", UVT_WAIT_SEMAPHORE, s, false);
  uvt__wq_node_t node = {0};
  uvt_task_t *self;

  if (!sem_valid(s)) return UVT_EINVAL;
  self = uvt__task_current();
  if (self == NULL) return uvt__no_task_here(&s->loop, "uvt_sem_acquire", file, line);
  if (s->loop == NULL) s->loop = self->sched->loop;
  UVT__YIELD_POINT(self, "uvt_sem_acquire");
  if (s->value > 0) {
    s->value--;
    return 0;
  }
  node.revoke = sem_revoke;
  node.obj = s;
  return uvt__waitq_wait(&s->waiters, &node, self, &site);
}

/* UVT_EINVAL also when the count would overflow (more releases than
 * acquires, UINT_MAX times). */
int uvt_sem_release_at(uvt_sem_t *s,
                       const char *file, int line, const char *func) {
  int err;
  if (!sem_valid(s)) return UVT_EINVAL;
  (void)func;
  if ((err = uvt__loop_check(&s->loop, "uvt_sem_release", file, line))) return err;
  if (uvt__waitq_grant_first(&s->waiters, NULL)) return 0;
  if (s->value == UINT_MAX) return UVT_EINVAL;
  if (s->bound != 0 && s->value >= s->bound) return UVT_EINVAL;
  s->value++;
  return 0;
}

void uvt_sem_destroy_at(uvt_sem_t *s,
                        const char *file, int line, const char *func) {
  (void)func;
  if (!sem_valid(s) || uvt__loop_check(&s->loop, "uvt_sem_destroy", file, line)) return;
  uvt__waitq_wake_all(&s->waiters, UVT_ECLOSED);
  s->value = 0;
  s->magic = UVT__MAGIC_DEAD;
}

/* The plain symbols of 0.2.0, for programs built before the header's
 * macros passed the caller's location (reported as unknown). */
int (uvt_sem_release)(uvt_sem_t *s) {
  return uvt_sem_release_at(s, NULL, 0, NULL);
}
void (uvt_sem_destroy)(uvt_sem_t *s) { uvt_sem_destroy_at(s, NULL, 0, NULL); }

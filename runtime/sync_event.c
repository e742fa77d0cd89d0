/*
 * asyncio.Event.
 *
 * `is_set` is the flag; `waiters` the tasks parked in wait.  set wakes
 * every task waiting at that moment (each already counts as having seen
 * the event, so a clear before it runs does not send it back to sleep)
 * and leaves the flag up, so later waits return at once.  Invariant:
 *
 *     is_set  =>  waiters is empty
 */
#include "internal.h"
#include "waitq.h"

#include <string.h>

static bool event_valid(const uvt_event_t *e) {
  return e != NULL && e->magic == UVT__MAGIC_LIVE;
}

int uvt_event_init(uvt_event_t *e) {
  if (e == NULL) return UVT_EINVAL;
  memset(e, 0, sizeof(*e));
  uvt__waitq_init(&e->waiters);
  e->magic = UVT__MAGIC_LIVE;
  return 0;
}

void uvt_event_set_at(uvt_event_t *e,
                      const char *file, int line, const char *func) {
  (void)func;
  if (!event_valid(e) || uvt__loop_check(&e->loop, "uvt_event_set", file, line)) return;
  if (e->is_set) return;
  e->is_set = 1;
  uvt__waitq_wake_all(&e->waiters, 0);
}

void uvt_event_clear_at(uvt_event_t *e,
                        const char *file, int line, const char *func) {
  (void)func;
  if (!event_valid(e) || uvt__loop_check(&e->loop, "uvt_event_clear", file, line)) return;
  e->is_set = 0;
}

bool uvt_event_is_set(const uvt_event_t *e) {
  return event_valid(e) && e->is_set != 0;
}

int uvt_event_wait_at(uvt_event_t *e, const char *file, int line,
                      const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_event_wait", UVT_WAIT_EVENT, e, false);
  uvt__wq_node_t node = {0};
  uvt_task_t *self;

  if (!event_valid(e)) return UVT_EINVAL;
  self = uvt__task_current();
  if (self == NULL) return uvt__no_task_here(&e->loop, "uvt_event_wait", file, line);
  if (e->loop == NULL) e->loop = self->sched->loop;
  UVT__YIELD_POINT(self, "uvt_event_wait");
  if (e->is_set) return 0;
  return uvt__waitq_wait(&e->waiters, &node, self, &site);
}

void uvt_event_destroy_at(uvt_event_t *e,
                          const char *file, int line, const char *func) {
  (void)func;
  if (!event_valid(e) || uvt__loop_check(&e->loop, "uvt_event_destroy", file, line)) return;
  uvt__waitq_wake_all(&e->waiters, UVT_ECLOSED);
  e->is_set = 0;
  e->magic = UVT__MAGIC_DEAD;
}

/* The plain symbols of 0.2.0, for programs built before the header's
 * macros passed the caller's location (reported as unknown). */
void (uvt_event_set)(uvt_event_t *e) { uvt_event_set_at(e, NULL, 0, NULL); }
void (uvt_event_clear)(uvt_event_t *e) { uvt_event_clear_at(e, NULL, 0, NULL); }
void (uvt_event_destroy)(uvt_event_t *e) {
  uvt_event_destroy_at(e, NULL, 0, NULL);
}

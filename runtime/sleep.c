/*
 * uvt_sleep and uvt_yield.
 */
#include "internal.h"

static void sleep_fire(uvt__timer_t *tm) {
  uvt_task_t *t = (uvt_task_t *)((char *)tm - offsetof(uvt_task_t, timer));
  uvt__wake(t, 0);
}

int uvt_sleep_at(int64_t ms, const char *file, int line, const char *func) {
  uvt_task_t *self = uvt__task_current();
  uvt__site_t site = UVT__SITE_ON("uvt_sleep", UVT_WAIT_SLEEP, NULL, true);
  int st;
  if (self == NULL) return uvt__no_task_call("uvt_sleep", file, line);
  if (ms < 0) return UVT_EINVAL;
  UVT__YIELD_POINT(self, "uvt_sleep");
  if (ms == 0) return uvt__yield(&site);
  if (uvt__take_pending_cancel(self)) return UVT_ECANCELED;
  st = uvt__timer_start(self->sched, &self->timer, (uint64_t)ms, sleep_fire);
  if (st != 0) return st;
  st = uvt__park_revocable(&site, NULL, NULL);
  uvt__timer_stop(self->sched, &self->timer);
  return st;
}

/* Debug library, once a no-yield section was opened or with a hook
 * subscriber: the checks and the yield with its events. */
static __attribute__((noinline, unused)) int
yield_watched(const uvt__site_t *site, const char *file, int line,
              const char *func) {
  uvt_task_t *self = uvt__task_current();
  if (self == NULL) return uvt__no_task_call("uvt_yield", file, line);
  UVT__YIELD_POINT(self, "uvt_yield");
  return uvt__yield(site);
}

int uvt_yield_at(const char *file, int line, const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_yield", UVT_WAIT_YIELD, NULL, false);
  (void)func;
  /* One test of uvt__gate for the yield point and the hook points (the
   * debug library's whole cost of a plain uvt_yield). */
  if (UVT__UNLIKELY(UVT__GATE())) return yield_watched(&site, file, line, func);
  if (uvt__task_current() == NULL) return uvt__no_task_call("uvt_yield", file, line);
  return uvt__yield_quiet(&site);
}

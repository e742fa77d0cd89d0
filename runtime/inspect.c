/*
 * Every loop's tasks at once, for signal handlers (hooks.h:
 * uvt_hook_snapshot_now, uvt_hook_dump_fd): the process-wide list of
 * schedulers, walked without its mutex, each handed to the snapshot
 * (snapshot.c) or the listing (dump.c).  Nothing here allocates.
 */
#include "internal.h"
#include "dump.h"

#include <string.h>

/* The next live scheduler from `s` on (NULL: the list's head). */
static const uvt__sched_t *next_live(const uvt__sched_t *s) {
  s = s == NULL ? uvt__sched_list_signal_safe()
                : __atomic_load_n(&s->list_next, __ATOMIC_ACQUIRE);
  while (s != NULL && __atomic_load_n(&s->closing, __ATOMIC_RELAXED))
    s = __atomic_load_n(&s->list_next, __ATOMIC_ACQUIRE);
  return s;
}

int uvt_hook_snapshot_now(int reason, uvt_hook_fn fn, void *data) {
  const uvt__sched_t *s;
  int n = 0;
  if (fn == NULL || reason <= 0) return UVT_EINVAL;
  for (s = next_live(NULL); s != NULL; s = next_live(s), n++)
    uvt__snapshot_sched(s, reason, fn, data);
  return n;
}

int uvt_hook_dump_fd(int fd) {
  const uvt__sched_t *s;
  uvt__dump_sink_t o;
  size_t n = 0;
  for (s = next_live(NULL); s != NULL; s = next_live(s)) {
    memset(&o, 0, sizeof(o));
    o.fd = fd;
    n += uvt__dump_sched(s, &o, false);
  }
  return n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
}

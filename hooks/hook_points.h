/*
 * Hook points inside the runtime (see include/uvtask/hooks.h).
 *
 * Without ASYNCIODEBUG, UVT__HOOK(...) expands to nothing: the release
 * library has no trace of them.  With it, each point costs one load and
 * one predictable branch while nobody subscribes; the event struct is
 * built only when someone does.
 */
#ifndef UVT_HOOKS_HOOK_POINTS_H
#define UVT_HOOKS_HOOK_POINTS_H

#include "uvtask/hooks.h"

#ifdef ASYNCIODEBUG
/* Hidden: read with one RIP-relative load, not through the GOT. */
extern int uvt__hooks_on __attribute__((visibility("hidden")));
void uvt__hook_dispatch(const uvt_hook_event_t *ev);
#define UVT__HOOK(...)                                \
  do {                                                \
    if (__builtin_expect(uvt__hooks_on, 0)) {         \
      uvt_hook_event_t uvt__ev = {__VA_ARGS__};       \
      uvt__hook_dispatch(&uvt__ev);                   \
    }                                                 \
  } while (0)
#define UVT__HOOKS_ACTIVE() __builtin_expect(uvt__hooks_on, 0)
#else
#define UVT__HOOK(...) do { } while (0)
#define UVT__HOOKS_ACTIVE() 0
#endif

#endif

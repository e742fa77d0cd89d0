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
/* Hidden: read RIP-relative, not through the GOT.  A byte: the test is
 * then one compare with memory (cmpb $0, sym(%rip)) and the branch, where
 * an int is loaded, tested and branched on (x86-64 gcc); three instead of
 * two instructions at each of the eight points of a spawn+await. */
extern unsigned char uvt__hooks_on __attribute__((visibility("hidden")));
/* Some subscriber wants every AWAIT, not only those a misuse checker
 * uses (uvt_hook_filter_awaits). */
extern unsigned char uvt__hooks_all_awaits __attribute__((visibility("hidden")));
/* Sets ev->slot per subscriber (hooks.h), so the event is not const. */
void uvt__hook_dispatch(uvt_hook_event_t *ev);
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

/* A hook point on the spawn/await path: the event is built in `fn`, a
 * cold function of its own declared with UVT__HOOK_FN, so that the
 * caller stays small enough to be inlined.  An event struct built in
 * place makes each such function too big to inline, which cost the debug
 * library 12 % more instructions per spawn+await than the release one. */
#define UVT__HOOK_FN static __attribute__((noinline, cold, unused)) void
#define UVT__HOOK_AT(fn, ...)                 \
  do {                                        \
    if (UVT__HOOKS_ACTIVE()) fn(__VA_ARGS__); \
  } while (0)

#endif

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

#include <stdint.h>

#ifdef ASYNCIODEBUG
/* Hidden: read RIP-relative, not through the GOT.  A byte: the test is
 * then one compare with memory (cmpb $0, sym(%rip)) and the branch, where
 * an int is loaded, tested and branched on (x86-64 gcc); three instead of
 * two instructions at each of the eight points of a spawn+await. */
extern unsigned char uvt__hooks_on __attribute__((visibility("hidden")));
/* What a yield point must look at, one byte for the debug library's
 * fast paths: UVT__GATE_HOOKS while uvt__hooks_on is set, and
 * UVT__GATE_NO_YIELD from the first UVT_NO_YIELD_BEGIN of the process
 * on (it stays: clearing it would need a count of open sections that
 * every task's end keeps).  A program that never opens a section pays
 * one compare and a branch per yield point; one that does, a load of
 * the task's depth more.  An uncontended lock acquire needs either (the
 * depth, or its ACQUIRED event), so it tests the whole byte once. */
extern unsigned char uvt__gate __attribute__((visibility("hidden")));
#define UVT__GATE_HOOKS 1u
#define UVT__GATE_NO_YIELD 2u
/* Read plainly, as uvt__hooks_on is: a relaxed atomic load is one more
 * instruction (gcc does not fold it into the compare), and a stale read
 * only moves the moment a subscriber or the first section counts from.
 * The ThreadSanitizer build reads it atomically, so that this known race
 * hides no other. */
#ifdef UVT_TSAN
#define UVT__GATE_READ() __atomic_load_n(&uvt__gate, __ATOMIC_RELAXED)
#else
#define UVT__GATE_READ() uvt__gate
#endif
#define UVT__GATE() __builtin_expect(UVT__GATE_READ(), 0)
/* Some subscriber wants every AWAIT, not only those a misuse checker
 * uses (uvt_hook_filter_awaits). */
extern unsigned char uvt__hooks_all_awaits __attribute__((visibility("hidden")));
/* Every subscriber takes a direct switch as one event
 * (uvt_hook_combine_switches). */
extern unsigned char uvt__hooks_combine __attribute__((visibility("hidden")));
/* The lone subscriber's switch callback (uvt_hook_switch_callback) while
 * it applies, else NULL; and its data. */
extern uvt_hook_switch_fn uvt__hook_switch_fn __attribute__((visibility("hidden")));
extern void *uvt__hook_switch_data __attribute__((visibility("hidden")));
/* The same for uvt_hook_life_callback. */
extern uvt_hook_life_fn uvt__hook_life_fn __attribute__((visibility("hidden")));
extern void *uvt__hook_life_data __attribute__((visibility("hidden")));
/* A life event (DONE, RETRIEVED, DESTROY) of `o` through the lone
 * subscriber's callback: true if it took it (no event to build). */
#define UVT__HOOK_LIFE_TAKEN(kind, o, status, message)                       \
  (uvt__hook_life_fn != NULL &&                                             \
   uvt__hook_life_fn((kind), (o), &(o)->hook_slot, (status), (message),     \
                     uvt__hook_life_data) == 0)
/* Sets ev->slot per subscriber (hooks.h), so the event is not const. */
void uvt__hook_dispatch(uvt_hook_event_t *ev);

/* Where this thread entered the library, for ASYNCIODEBUG_STACKS=fp
 * (tracer/fpstack.c): the return address and the CFA (the caller's stack
 * pointer at the call) of the function holding the outermost hook point
 * under way, or ra 0.  A hook point that finds ra 0 sets it before its
 * event and clears it after; the hook points it leads to keep it.  When
 * that function was called from outside the library, its return address
 * is the user's call site and its caller's frame is next on the stack,
 * whatever frames the library has between: the walk needs no frame
 * pointer in the library's own functions.  Set only while a subscriber
 * listens: nothing on the path of a program that records nothing. */
typedef struct {
  uintptr_t ra, cfa;
} uvt__hook_entry_t;
extern _Thread_local uvt__hook_entry_t uvt__hook_entry
    __attribute__((visibility("hidden"), tls_model("initial-exec")));

/* __builtin_return_address(0) and the CFA are those of the function the
 * macro's code ends up in after inlining: the outermost hook point of an
 * entry point (uvt_spawn_at, uvt_await_at, ...) whose hook was inlined
 * into it gives the user's call site; one in a function of the library's
 * own gives a library address, which the walk declines (libunwind then). */
#if defined(__GNUC__) && !defined(__clang__)
#define UVT__HOOK_CFA() ((uintptr_t)__builtin_dwarf_cfa())
#else
#define UVT__HOOK_CFA() ((uintptr_t)0) /* unknown: the walk declines */
#endif
/* Out of line, so that a hook point stays small enough for its function
 * to be inlined where it was: set the entry if none is (returns whether
 * it did), and clear it again. */
int uvt__hook_enter(uintptr_t ra, uintptr_t cfa);
void uvt__hook_leave(void);
#define UVT__HOOK_ENTERED(call)                                             \
  do {                                                                      \
    const int uvt__he_mine = uvt__hook_enter(                               \
        (uintptr_t)__builtin_return_address(0), UVT__HOOK_CFA());           \
    call;                                                                   \
    if (uvt__he_mine) uvt__hook_leave();                                    \
  } while (0)

/* The same in place, for the hook points that build their event in place
 * (most in the cold functions of UVT__HOOK_FN): no calls. */
#define UVT__HOOK_ENTERED_INLINE(call)                                  \
  do {                                                                  \
    uvt__hook_entry_t *uvt__he = &uvt__hook_entry;                      \
    const int uvt__he_mine = uvt__he->ra == 0;                          \
    if (uvt__he_mine) {                                                 \
      uvt__he->ra = (uintptr_t)__builtin_return_address(0);             \
      uvt__he->cfa = UVT__HOOK_CFA();                                   \
    }                                                                   \
    call;                                                               \
    if (uvt__he_mine) uvt__he->ra = 0;                                  \
  } while (0)

#define UVT__HOOK(...)                                          \
  do {                                                          \
    if (__builtin_expect(uvt__hooks_on, 0)) {                   \
      uvt_hook_event_t uvt__ev = {__VA_ARGS__};                 \
      UVT__HOOK_ENTERED_INLINE(uvt__hook_dispatch(&uvt__ev));   \
    }                                                           \
  } while (0)
#define UVT__HOOKS_ACTIVE() __builtin_expect(uvt__hooks_on, 0)
/* A hook point that records no entry point: for the events whose
 * subscribers take no stack of the caller (RETRIEVED, DESTROY, a task's
 * DONE at its end).  The entry's set and clear are two calls and ~13
 * instructions an event: a tenth of what a recorded spawn+await pays for
 * its three such events.  A subscriber that asks anyway finds no entry
 * (uvt_hook_entry_point: UVT_EINVAL), and a stack it takes comes from
 * libunwind. */
#define UVT__HOOK_NOENTRY(...)                                  \
  do {                                                          \
    if (__builtin_expect(uvt__hooks_on, 0)) {                   \
      uvt_hook_event_t uvt__ev = {__VA_ARGS__};                 \
      uvt__hook_dispatch(&uvt__ev);                             \
    }                                                           \
  } while (0)
#else
#define UVT__HOOK(...) do { } while (0)
#define UVT__HOOK_NOENTRY(...) do { } while (0)
#define UVT__HOOKS_ACTIVE() 0
#define UVT__GATE() 0
#define UVT__HOOK_ENTERED(call) call
#endif

/* A hook point on the spawn/await path: the event is built in `fn`, a
 * cold function of its own declared with UVT__HOOK_FN, so that the
 * caller stays small enough to be inlined.  An event struct built in
 * place makes each such function too big to inline, which cost the debug
 * library 12 % more instructions per spawn+await than the release one. */
/* x86-64 GCC clears the rest of an event ({designated initializer}, ~250
 * bytes) with `rep stos` under its generic tuning and in cold (size-
 * optimised) code: ~35 cycles to start on current cores, and 60 of the
 * ~110 instructions of a switch's event under callgrind.  Not cold, and
 * tuned for a current core, it uses 16-byte stores instead.  `tune=`
 * picks among instruction sequences, never the instruction set: the code
 * runs on any x86-64. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define UVT__HOOK_TUNE __attribute__((target("tune=skylake")))
#else
#define UVT__HOOK_TUNE
#endif
#define UVT__HOOK_FN static __attribute__((noinline, unused)) UVT__HOOK_TUNE void
#define UVT__HOOK_AT(fn, ...)                                   \
  do {                                                          \
    if (UVT__HOOKS_ACTIVE()) UVT__HOOK_ENTERED(fn(__VA_ARGS__)); \
  } while (0)
/* The same for a `fn` whose event uses UVT__HOOK_NOENTRY. */
#define UVT__HOOK_AT_NOENTRY(fn, ...)                           \
  do {                                                          \
    if (UVT__HOOKS_ACTIVE()) fn(__VA_ARGS__);                   \
  } while (0)

#endif

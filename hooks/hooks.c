/*
 * The hook registry: a fixed array of subscribers, called in order.
 * Subscribing is rare and happens before tasks run, so the array is not
 * locked; uvt__hooks_on is what the hook points test.
 */
#include "hook_points.h"
#include "internal.h"

#include <dlfcn.h>

#define MAX_SUBSCRIBERS 8

#ifdef ASYNCIODEBUG
unsigned char uvt__hooks_on;
unsigned char uvt__gate;
_Thread_local uvt__hook_entry_t uvt__hook_entry __attribute__((tls_model("initial-exec")));
/* Some subscriber wants every AWAIT (uvt_hook_filter_awaits). */
unsigned char uvt__hooks_all_awaits;
/* Every subscriber takes a direct switch as one event
 * (uvt_hook_combine_switches). */
unsigned char uvt__hooks_combine;

static struct {
  uvt_hook_fn fn;
  void *data;
  bool filter_awaits;
  bool foreign; /* fn is not the library's own (the recorder's) */
  bool combine;
  uvt_hook_switch_fn switch_fn; /* uvt_hook_switch_callback */
  uvt_hook_life_fn life_fn;     /* uvt_hook_life_callback */
} subs[MAX_SUBSCRIBERS];

static int nsubs;
static void count_flags(void) {
  int i;
  unsigned char all = 0, combine = nsubs > 0;
  for (i = 0; i < nsubs; i++) {
    if (!subs[i].filter_awaits) all = 1;
    if (!subs[i].combine) combine = 0;
  }
  __atomic_store_n(&uvt__hooks_all_awaits, all, __ATOMIC_RELEASE);
  __atomic_store_n(&uvt__hooks_combine, combine, __ATOMIC_RELEASE);
}
/* The subscriber that claimed the objects' word (uvt_hook_add_slot). */
static struct {
  uvt_hook_fn fn;
  void *data;
  bool claimed;
} slot_owner;

__attribute__((noinline, cold)) int uvt__hook_enter(uintptr_t ra, uintptr_t cfa) {
  if (uvt__hook_entry.ra != 0) return 0;
  uvt__hook_entry.ra = ra;
  uvt__hook_entry.cfa = cfa;
  return 1;
}

__attribute__((noinline, cold)) void uvt__hook_leave(void) { uvt__hook_entry.ra = 0; }

int uvt_hook_entry_point(uintptr_t *ra, uintptr_t *cfa) {
  *ra = uvt__hook_entry.ra;
  *cfa = uvt__hook_entry.cfa;
  if (*ra == 0) return UVT_EINVAL;
  return *cfa != 0 ? 0 : UV_ENOTSUP;
}

/* A subscriber of the program's own may call the library back (spawn
 * from a hook): those calls are entries of their own, so the entry of
 * the event under way (hook_points.h) is not theirs.  Hidden from them. */
static __attribute__((noinline)) void call_foreign(int i, uvt_hook_event_t *ev) {
  uvt__hook_entry_t saved = uvt__hook_entry;
  uvt__hook_entry.ra = 0;
  subs[i].fn(ev, subs[i].data);
  uvt__hook_entry = saved;
}

static inline void call_sub(int i, uvt_hook_event_t *ev) {
  if (subs[i].foreign) call_foreign(i, ev);
  else subs[i].fn(ev, subs[i].data);
}

/* The usual case, one subscriber that claimed the word (a recorder
 * alone): it, else NULL.  Kept by set_fast() on every change. */
static uvt_hook_fn fast_fn;
static void *fast_data;
uvt_hook_switch_fn uvt__hook_switch_fn;
void *uvt__hook_switch_data;
uvt_hook_life_fn uvt__hook_life_fn;
void *uvt__hook_life_data;

static void set_fast(void) {
  /* The one subscriber, which claimed the objects' word. */
  bool lone = nsubs == 1 && slot_owner.claimed && subs[0].fn == slot_owner.fn &&
              subs[0].data == slot_owner.data;
  bool fast = lone && !subs[0].foreign;
  /* The callbacks see the claimer's words, so only for the claimer alone;
   * the switch callback only where switches are combined at all.  A
   * program's own subscriber may have them too: no hook entry is under
   * way at a switch or an object's end, so there is none to hide. */
  bool sw = lone && subs[0].combine && subs[0].switch_fn != NULL;
  bool life = lone && subs[0].life_fn != NULL;
  fast_fn = fast ? subs[0].fn : NULL;
  fast_data = fast ? subs[0].data : NULL;
  uvt__hook_switch_fn = sw ? subs[0].switch_fn : NULL;
  uvt__hook_switch_data = sw ? subs[0].data : NULL;
  uvt__hook_life_fn = life ? subs[0].life_fn : NULL;
  uvt__hook_life_data = life ? subs[0].data : NULL;
}

/* Every event's `object` is a uvt__obj_t (or NULL): its word goes to the
 * claimer only; the others get the same event with `slot` NULL.  The
 * event is the hook point's own, on its stack: set in place, not copied. */
/* Every subscriber, in order (the general case: several, or members). */
static __attribute__((noinline)) void dispatch_all(uvt_hook_event_t *ev, void **word) {
  int i;
  for (i = 0; i < nsubs; i++) {
    bool owner = slot_owner.claimed && subs[i].fn == slot_owner.fn &&
                 subs[i].data == slot_owner.data;
    int k;
    ev->slot = word != NULL && owner ? word : NULL;
    ev->next_slot = ev->next != NULL && owner
                        ? &((uvt__obj_t *)(uintptr_t)ev->next)->hook_slot
                        : NULL;
    /* Members (a deadlock's tasks) are the hook point's own array, made
     * for this event: their words go to the claimer only, as above. */
    for (k = 0; k < ev->nmembers; k++) {
      uvt_hook_member_t *m = (uvt_hook_member_t *)(uintptr_t)&ev->members[k];
      m->slot = owner && m->object != NULL
                    ? &((uvt__obj_t *)(uintptr_t)m->object)->hook_slot
                    : NULL;
    }
    call_sub(i, ev);
  }
}

void uvt__hook_dispatch(uvt_hook_event_t *ev) {
  void **word = NULL;
  /* A recorder alone: 12 instructions to its call instead of 25 (each
   * task step raises three to six events). */
  if (fast_fn != NULL && ev->nmembers == 0) {
    if (ev->object != NULL)
      ev->slot = &((uvt__obj_t *)(uintptr_t)ev->object)->hook_slot;
    if (ev->next != NULL)
      ev->next_slot = &((uvt__obj_t *)(uintptr_t)ev->next)->hook_slot;
    fast_fn(ev, fast_data);
    return;
  }
  if (ev->object != NULL && slot_owner.claimed)
    word = &((uvt__obj_t *)(uintptr_t)ev->object)->hook_slot;
  /* The usual case, a recorder alone, is a tail call without the general
   * loop: this function was 54 of the ~400 instructions a recorded event
   * cost the loop thread (callgrind, bench_tracer's worker). */
  if (nsubs == 1 && ev->nmembers == 0) {
    bool owner = slot_owner.claimed && subs[0].fn == slot_owner.fn &&
                 subs[0].data == slot_owner.data;
    ev->slot = owner ? word : NULL;
    if (ev->next != NULL)
      ev->next_slot =
          owner ? &((uvt__obj_t *)(uintptr_t)ev->next)->hook_slot : NULL;
    call_sub(0, ev);
    return;
  }
  dispatch_all(ev, word);
}

/* Whether code at `p` is this library's (the object uvt_hook_add is in);
 * unknown counts as foreign, the safe side. */
static bool same_object(void *p) {
  Dl_info a, b;
  if (dladdr(p, &a) == 0 || dladdr((void *)(uintptr_t)&uvt_hook_add, &b) == 0)
    return false;
  return a.dli_fbase == b.dli_fbase;
}

int uvt_hook_add(uvt_hook_fn fn, void *data) {
  if (fn == NULL || nsubs == MAX_SUBSCRIBERS) return UVT_EINVAL;
  subs[nsubs].fn = fn;
  subs[nsubs].data = data;
  subs[nsubs].filter_awaits = false;
  subs[nsubs].foreign = !same_object((void *)(uintptr_t)fn);
  subs[nsubs].combine = false;
  subs[nsubs].switch_fn = NULL;
  subs[nsubs].life_fn = NULL;
  nsubs++;
  count_flags();
  set_fast();
  __atomic_store_n(&uvt__hooks_on, 1, __ATOMIC_RELEASE);
  __atomic_or_fetch(&uvt__gate, UVT__GATE_HOOKS, __ATOMIC_RELEASE);
  return 0;
}

int uvt_hook_add_slot(uvt_hook_fn fn, void *data) {
  int err;
  if (fn == NULL) return UVT_EINVAL;
  if (slot_owner.claimed) return UV_EBUSY;
  if ((err = uvt_hook_add(fn, data)) != 0) return err;
  slot_owner.fn = fn;
  slot_owner.data = data;
  slot_owner.claimed = true;
  set_fast();
  return 0;
}

/* The index of the subscriber (fn, data), or -1. */
static int sub_index(uvt_hook_fn fn, void *data) {
  int i;
  for (i = 0; i < nsubs; i++)
    if (subs[i].fn == fn && subs[i].data == data) return i;
  return -1;
}

int uvt_hook_remove(uvt_hook_fn fn, void *data) {
  int i = sub_index(fn, data);
  if (i < 0) return UVT_EINVAL;
  for (; i + 1 < nsubs; i++) subs[i] = subs[i + 1];
  nsubs--;
  count_flags();
  set_fast();
  if (nsubs == 0) {
    __atomic_store_n(&uvt__hooks_on, 0, __ATOMIC_RELEASE);
    __atomic_and_fetch(&uvt__gate, (unsigned char)~UVT__GATE_HOOKS, __ATOMIC_RELEASE);
  }
  return 0;
}

int uvt_hook_filter_awaits(uvt_hook_fn fn, void *data) {
  int i = sub_index(fn, data);
  if (i < 0) return UVT_EINVAL;
  subs[i].filter_awaits = true;
  count_flags();
  return 0;
}

int uvt_hook_combine_switches(uvt_hook_fn fn, void *data) {
  int i = sub_index(fn, data);
  if (i < 0) return UVT_EINVAL;
  subs[i].combine = true;
  count_flags();
  set_fast();
  return 0;
}

int uvt_hook_switch_callback(uvt_hook_fn fn, void *data, uvt_hook_switch_fn sw) {
  int i = sub_index(fn, data);
  if (i < 0) return UVT_EINVAL;
  subs[i].switch_fn = sw;
  set_fast();
  return 0;
}

int uvt_hook_life_callback(uvt_hook_fn fn, void *data, uvt_hook_life_fn life) {
  int i = sub_index(fn, data);
  if (i < 0) return UVT_EINVAL;
  subs[i].life_fn = life;
  set_fast();
  return 0;
}

int uvt_debug_build(void) { return 1; }

#else

int uvt_hook_add(uvt_hook_fn fn, void *data) {
  (void)fn, (void)data;
  return UV_ENOTSUP;
}

int uvt_hook_entry_point(uintptr_t *ra, uintptr_t *cfa) {
  *ra = 0;
  *cfa = 0;
  return UV_ENOTSUP;
}

int uvt_hook_add_slot(uvt_hook_fn fn, void *data) {
  (void)fn, (void)data;
  return UV_ENOTSUP;
}

int uvt_hook_remove(uvt_hook_fn fn, void *data) {
  (void)fn, (void)data;
  return UVT_EINVAL;
}

int uvt_hook_filter_awaits(uvt_hook_fn fn, void *data) {
  (void)fn, (void)data;
  return UV_ENOTSUP;
}

int uvt_hook_combine_switches(uvt_hook_fn fn, void *data) {
  (void)fn, (void)data;
  return UV_ENOTSUP;
}

int uvt_hook_switch_callback(uvt_hook_fn fn, void *data, uvt_hook_switch_fn sw) {
  (void)fn, (void)data, (void)sw;
  return UV_ENOTSUP;
}

int uvt_hook_life_callback(uvt_hook_fn fn, void *data, uvt_hook_life_fn life) {
  (void)fn, (void)data, (void)life;
  return UV_ENOTSUP;
}

int uvt_debug_build(void) { return 0; }

#endif


/*
 * Frame-pointer stack capture (ASYNCIODEBUG_STACKS=fp).
 *
 * With frame pointers every frame starts with a record {caller's frame
 * pointer, return address}, so a stack is a walk along a linked list: a
 * few loads per frame instead of libunwind's table lookups.  The walk
 * trusts nothing it reads: every frame pointer must lie inside the stack
 * the walk started on (a task's, from the runtime; the thread's, from
 * pthread_getattr_np), be aligned as the ABI aligns frame records, and be
 * above the previous one (stacks grow down).  A chain that leaves the
 * stack — a frame of code built without frame pointers that used the
 * register for something else, the zeroed frame pointer of a task's entry
 * or of the thread's start — ends the walk; what was found before stays.
 *
 * What it cannot see: a function built without frame pointers that left
 * the register alone has no record; its caller's frame is then missing
 * from the stack (the README says so).  Hence opt-in.
 */
#include "tracer.h"
#include "uvtask/hooks.h"

#include "fpknown.h"

#include <pthread.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__aarch64__)
#define FRAME_ALIGN 16u /* rbp / x29 point at a 16-byte aligned record */
#else
#define FRAME_ALIGN (2u * sizeof(void *))
#endif

/* The calling thread's own stack, found once per thread. */
static _Thread_local uintptr_t thread_lo, thread_hi;
static _Thread_local int thread_known; /* 0: not asked; 1: known; -1: unknown */

static int thread_stack(uintptr_t *lo, uintptr_t *hi) {
  if (thread_known == 0) {
    pthread_attr_t attr;
    void *addr;
    size_t size;
    thread_known = -1;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      if (pthread_attr_getstack(&attr, &addr, &size) == 0 && size > 0) {
        thread_lo = (uintptr_t)addr;
        thread_hi = (uintptr_t)addr + size;
        thread_known = 1;
      }
      pthread_attr_destroy(&attr);
    }
  }
  if (thread_known != 1) return -1;
  *lo = thread_lo;
  *hi = thread_hi;
  return 0;
}

/* The bounds of the stack that holds `fp`: 1 for the running task's, 0
 * for the thread's; -1 if neither holds it (a stack nobody told us
 * about).  Not inlined into the walks: they are not instrumented by ASan
 * and this is (its locals' scopes would be poisoned and never unpoisoned:
 * a false stack-use-after-scope). */
static int bounds_of(uintptr_t fp, uintptr_t *lo, uintptr_t *hi) {
  const void *tlo, *thi;
  if (uvt_hook_current_stack(&tlo, &thi) == 0 && fp >= (uintptr_t)tlo &&
      fp < (uintptr_t)thi) {
    *lo = (uintptr_t)tlo;
    *hi = (uintptr_t)thi;
    return 1;
  }
  if (thread_stack(lo, hi) == 0 && fp >= *lo && fp < *hi) return 0;
  return -1;
}

static int in_lib(uintptr_t pc, uintptr_t lib_lo, uintptr_t lib_hi) {
  return pc >= lib_lo && pc < lib_hi;
}

/* The walk starts at the caller of the library, not at this frame: the
 * hook point under way recorded the return address and CFA of the
 * function that holds it (uvt_hook_entry_point).  When
 * that function was called from outside the library, its return address
 * is the user's call site and the frame records at or above its CFA are
 * the user's.  The library's own functions need no frame pointers: built
 * with the register reserved (-ffixed-rbp, CMakeLists.txt) they leave it
 * holding the user's frame pointer, and those that do keep a frame (this
 * one) chain to it.  So the frame records below the CFA must all be the
 * library's (or the entry function's own, returning to the call site);
 * anything else means the chain is not what this assumes, and the
 * capture declines (-1: the caller unwinds with libunwind instead). */
/* Where a walk from the frame record at fp (the walker's own) starts:
 * the entry point of the hook point under way (*entry, *cfa) and the
 * bounds of the stack (*lo, *hi); 1 on a task's stack, 0 on the thread's,
 * -1 when the walk cannot start (no entry point, an unknown stack, a CFA
 * outside it or below the walker). */
static inline __attribute__((always_inline, no_sanitize_address)) int
walk_start(uintptr_t fp, uintptr_t *entry, uintptr_t *cfa, uintptr_t *lo, uintptr_t *hi) {
  int where;
  if (uvt_hook_entry_point(entry, cfa) != 0) return -1;
  where = bounds_of(fp, lo, hi);
  if (where < 0 || *cfa <= fp || *cfa > *hi) return -1;
#if defined(__x86_64__)
  /* The call pushed the return address just below the caller's stack
   * pointer: an entry that is not the live one (a bug) shows here. */
  if (*(const uintptr_t *)(*cfa - sizeof(uintptr_t)) != *entry) return -1;
#endif
  return where;
}

__attribute__((noinline, no_sanitize_address)) int
uvt__fp_backtrace(uint64_t *pcs, int max, uintptr_t lib_lo, uintptr_t lib_hi) {
  uintptr_t fp = (uintptr_t)__builtin_frame_address(0), lo, hi;
  uintptr_t entry, cfa;
  int n = 0;
  if (max <= 0 || walk_start(fp, &entry, &cfa, &lo, &hi) < 0 ||
      in_lib(entry, lib_lo, lib_hi))
    return -1;
  pcs[n++] = (uint64_t)entry;
  while (n < max) {
    const uintptr_t *rec;
    uintptr_t next, ret;
    if (fp < lo || fp > hi - 2 * sizeof(uintptr_t) || fp % FRAME_ALIGN != 0) break;
    rec = (const uintptr_t *)fp;
    next = rec[0];
    ret = rec[1];
    if (ret == 0) break;
    if (fp < cfa) {
      /* The library's frames, above the entry: none is shown. */
      if (!in_lib(ret, lib_lo, lib_hi) && ret != entry) return -1;
    } else {
      pcs[n++] = (uint64_t)ret;
    }
    if (next <= fp) break;
    fp = next;
  }
  return n;
}

/* ---- the walk where code is known to keep frame pointers ------------------ */

/* Task bottoms confirmed by libunwind (uvt__fp_bottom_learn): few, since
 * a task's stack always starts the same way.  Entries are written before
 * the count that publishes them and never change. */
#define BOTTOMS_MAX 4
static uvt__fp_bottom_t bottoms[BOTTOMS_MAX];
static int nbottoms;
static pthread_mutex_t bottoms_mutex = PTHREAD_MUTEX_INITIALIZER;

static bool is_bottom(uintptr_t ret, uintptr_t dist) {
  int i, n = __atomic_load_n(&nbottoms, __ATOMIC_ACQUIRE);
  for (i = 0; i < n; i++)
    if (bottoms[i].ret == ret && bottoms[i].dist == dist) return true;
  return false;
}

void uvt__fp_bottoms_forget(void) {
  /* After fork, in the child: the bottoms learnt stay right (same code,
   * same stacks); the lock a thread of the parent held does not. */
  pthread_mutex_init(&bottoms_mutex, NULL);
}

void uvt__fp_bottom_learn(uvt__fp_bottom_t b) {
  pthread_mutex_lock(&bottoms_mutex);
  if (!is_bottom(b.ret, b.dist) && nbottoms < BOTTOMS_MAX) {
    bottoms[nbottoms] = b;
    __atomic_store_n(&nbottoms, nbottoms + 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&bottoms_mutex);
}

/* Whether the records from fp on lead through the library's frames only to
 * the zeroed frame pointer of a task's entry (the context trampoline
 * zeroes it).  Built with the register reserved, the library keeps no
 * records, and the first one's link is that zero; built with frame
 * pointers (sanitizers, aarch64), its records come first. */
__attribute__((no_sanitize_address)) static bool
lib_to_the_end(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t lib_lo, uintptr_t lib_hi) {
  int k;
  for (k = 0; k < UVT_TRACE_MAX_PCS; k++) {
    const uintptr_t *rec = (const uintptr_t *)fp;
    if (fp < lo || fp > hi - 2 * sizeof(uintptr_t) || fp % FRAME_ALIGN != 0 ||
        !in_lib(rec[1], lib_lo, lib_hi))
      return false;
    if (rec[0] == 0) return true;
    if (rec[0] <= fp) return false;
    fp = rec[0];
  }
  return false;
}

/* As uvt__fp_backtrace, but a record is followed only out of code known
 * to keep frame pointers: the record at or above the CFA belongs to the
 * user's function that holds `entry` (known, or decline), and each record
 * after it to the function its predecessor returns into, which must be
 * known in turn.  So every frame is the one libunwind would find, and so
 * is every frame left out: none, up to `max` or to the bottom of a task's
 * stack, where a return into the library's task entry (whose caller is
 * the context trampoline, which zeroed the register) ends the chain.  A
 * bottom is taken as such only where the records go on through the
 * library alone to that zero, and only at a return address and distance
 * from the top of the stack that libunwind was seen to end at (the same
 * call at the same depth: the same frames above); an unseen one is left
 * in *bottom, with the frames before it in *upto, and the walk declines.
 * Anything else out of the ordinary declines too: the chain leaving the
 * stack, a frame pointer that does not grow, a return into code not
 * known. */
__attribute__((noinline, no_sanitize_address)) int
uvt__fp_backtrace_known(uint64_t *pcs, int max, uintptr_t lib_lo, uintptr_t lib_hi,
                        const uvt__fpknown_t *known, uvt__fp_bottom_t *bottom,
                        int *upto) {
  uintptr_t fp = (uintptr_t)__builtin_frame_address(0), lo, hi;
  uintptr_t entry, cfa;
  int n = 0, where;
  bottom->ret = 0;
  if (max <= 0 || (where = walk_start(fp, &entry, &cfa, &lo, &hi)) < 0 ||
      !uvt__fpknown_has(known, entry))
    return -1;
  pcs[n++] = (uint64_t)entry;
  while (n < max) {
    const uintptr_t *rec;
    uintptr_t next, ret;
    if (fp < lo || fp > hi - 2 * sizeof(uintptr_t) || fp % FRAME_ALIGN != 0) return -1;
    rec = (const uintptr_t *)fp;
    next = rec[0];
    ret = rec[1];
    if (fp < cfa) {
      if (!in_lib(ret, lib_lo, lib_hi) && ret != entry) return -1;
    } else if (n + 1 == max) {
      pcs[n++] = (uint64_t)ret; /* right whatever its code: its caller is not asked */
      break;
    } else if (in_lib(ret, lib_lo, lib_hi)) { /* never known (fpknown.c) */
      if (where == 1 && lib_to_the_end(fp, lo, hi, lib_lo, lib_hi)) {
        if (is_bottom(ret, hi - fp)) break;
        bottom->ret = ret;
        bottom->dist = hi - fp;
        *upto = n;
      }
      return -1;
    } else if (uvt__fpknown_has(known, ret)) {
      pcs[n++] = (uint64_t)ret;
    } else {
      return -1;
    }
    if (next <= fp) return -1;
    fp = next;
  }
  return n;
}

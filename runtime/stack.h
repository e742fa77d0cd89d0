/*
 * Task stacks and the per-scheduler pool they are recycled through.
 *
 * A stack is [lo, lo + size) in an anonymous mapping.  Overflow detection,
 * from the cheapest and surest down:
 *
 *  - pooled stacks get mappings of their own while a budget lasts
 *    (vm.max_map_count / 8, 65530 here, shared by every pool in the
 *    process), then are carved from slabs, one mapping per 64 stacks.
 *  - a guard page just below lo on every stack where the kernel has guard
 *    regions (madvise MADV_GUARD_INSTALL, Linux 6.13): a PTE marker that
 *    faults on any access and, unlike mprotect, does not split the
 *    mapping, so it costs no entry of vm.max_map_count.  Stacks are then
 *    guarded however many there are, slab stacks included (a page of
 *    address space between them).
 *  - on older kernels (or UVTASK_NO_GUARD_REGIONS=1), stacks within the
 *    budget have a PROT_NONE page made with mprotect (two mappings each,
 *    hence the budget: a quarter of the cap), and slab stacks are
 *    unguarded: the lowest UVT__CANARY_BYTES of each must stay zero (a
 *    fresh mapping is zero: nothing is written, no page is touched).
 *  - at every switch away from a task, before the next side runs (so a
 *    neighbour whose frames an overflow trampled is never resumed first):
 *    the task's stack pointer must lie inside its stack, and an unguarded
 *    stack's canary must be zero (both variants).  A failed check stops
 *    the process (abort) after one line naming the task, its creation
 *    site and its stack size.
 *  - a fault in a guard page, or with the running task's stack pointer at
 *    or below its stack's bottom: a SIGSEGV handler (installed only where
 *    the disposition was SIG_DFL, running on an alternate signal stack)
 *    writes one line naming the task, then the default action goes on.
 *
 * What is caught: by a guard page, any overflow that touches it
 * (recursion, frames smaller than a page, a big array written end to
 * end), at once; by the canary, an overrun that wrote any of the lowest
 * UVT__CANARY_BYTES, at the task's next switch; by the stack pointer
 * check, a task switching away while its frames are below its stack.
 * What is not: one frame bigger than the guard page whose writes all land
 * below it (in a neighbouring stack or another mapping) and miss the
 * canary, made and returned from between two switches; on a kernel
 * without guard regions, an overrun into a slab stack of another loop's
 * thread, whose task may run before this one switches; a guard page hit
 * on a thread with no alternate signal stack (the kernel kills the
 * process with a bare SIGSEGV), or while the program's own SIGSEGV
 * handler is installed (it decides).
 *
 * Stacks go back to the pool when their task ends (not when its handle is
 * dropped) and are reused last-in first-out, so their top pages are warm.
 * Each pool keeps at most UVT__POOL_KEEP free stacks of its size warm;
 * beyond that a stack in a mapping of its own is unmapped, and a slab
 * whose stacks are all free has its pages given back with one madvise
 * (guard regions survive it).  A task asking for another size
 * (uvt_spawn_stack, or a default changed after the pool was made) gets a
 * mapping of its own, unmapped when it ends.
 */
#ifndef UVT_RUNTIME_STACK_H
#define UVT_RUNTIME_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 512 bytes: a frame that jumps over the bottom of its stack is caught
 * if any word it writes lands in them, not only one. */
#define UVT__CANARY_BYTES 512
#define UVT__POOL_KEEP 1024

typedef struct uvt__stack_s {
  void *lo;
  size_t size;
  unsigned char guarded;  /* a guard page just below lo */
  unsigned char slab;     /* carved from a slab: never unmapped alone */
  unsigned char budget;   /* holds a unit of the mprotect guard budget */
  unsigned valgrind_id;
  struct uvt__slab_s *from; /* the slab it was carved from */
} uvt__stack_t;

/* One mapping holding UVT__SLAB_STACKS stacks.  Its pages go back to the
 * system in one madvise when all its stacks are free and the pool already
 * keeps enough: one call per 64 stacks, not one per stack. */
#define UVT__SLAB_STACKS 64
typedef struct uvt__slab_s {
  struct uvt__slab_s *next;
  void *base;
  size_t len;
  unsigned nfree;          /* its stacks now in the free list */
} uvt__slab_t;

typedef struct uvt__stack_pool_s {
  size_t default_size;     /* pooled size, fixed when the pool is made */
  uvt__stack_t *free;      /* free stacks of default_size, LIFO */
  size_t nfree, cap;
  uvt__slab_t *slabs;
  char *slab_cursor;       /* next unused stack in slabs->base */
  char *slab_end;
  size_t guard_len;        /* bytes of guard region below each slab stack */
  size_t out;              /* stacks taken and not given back */
} uvt__stack_pool_t;

/* The largest stack a task may ask for: 1 GiB (address space only, with
 * MAP_NORESERVE; a bigger request is almost surely a bug, such as a
 * negative size cast to size_t). */
#define UVT__STACK_MAX ((size_t)1 << 30)

/* Bytes in a page, and the process-wide default stack size. */
size_t uvt__page_size(void);
size_t uvt__stack_default_size(void);
/* `size` rounded up to pages and to at least 16 KiB; 0 if it exceeds
 * UVT__STACK_MAX (the rounding would overflow for sizes near SIZE_MAX). */
size_t uvt__stack_round(size_t size);

void uvt__stack_pool_init(uvt__stack_pool_t *p);
/* Unmap everything the pool holds.  Stacks still out are the caller's. */
void uvt__stack_pool_destroy(uvt__stack_pool_t *p);
/* Take a stack of `size` bytes (0: the process default now).  Returns 0
 * or UVT_ENOMEM. */
int uvt__stack_take(uvt__stack_pool_t *p, size_t size, uvt__stack_t *out);
void uvt__stack_give(uvt__stack_pool_t *p, uvt__stack_t *st);
/* The current stack pointer (near enough: within the caller's frame). */
static inline __attribute__((always_inline)) void *uvt__stack_here(void) {
  void *sp;
#if defined(__x86_64__)
  __asm__ volatile("movq %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
  __asm__ volatile("mov %0, sp" : "=r"(sp));
#else
  sp = __builtin_frame_address(0);
#endif
  return sp;
}

bool uvt__stack_canary_intact(const uvt__stack_t *st);

/* False if the task running on `st`, about to switch away with its stack
 * pointer at `sp`, overran it: `sp` outside the stack, or (unguarded
 * stacks) the canary written.  Inline: for a guarded stack this is a
 * subtraction and two compares on every switch. */
static inline __attribute__((always_inline)) bool
uvt__stack_intact(const uvt__stack_t *st, const void *sp) {
  if ((uintptr_t)sp - (uintptr_t)st->lo >= st->size) return false;
  if (st->guarded) return true;
  return uvt__stack_canary_intact(st);
}

/* Write the line naming the task that overran its stack `t` (name,
 * creation site, stack size) and abort: a broken invariant, as going on
 * after a stack was overrun is not safe. */
void uvt__stack_overflow_abort(const struct uvt_task_s *t)
    __attribute__((noreturn));

/* Set up overflow reporting for this thread: the SIGSEGV handler (once per
 * process, only if SIGSEGV is at SIG_DFL then) and an alternate signal
 * stack for this thread if it has none (freed when the thread exits).
 * Called when a scheduler is made, on the thread that makes it. */
void uvt__stack_thread_init(void);

/* If the fault described by `si` and `uctx` (a SIGSEGV handler's
 * arguments) is the running task's stack overflow, that task; else NULL.
 * Async-signal-safe: for crash handlers (the tracer's) that want to say
 * so. */
struct uvt_task_s *uvt__stack_overflowed(const void *si, const void *uctx);

/* The id of the task whose stack overflowed, for a crash handler: the
 * running task's if the fault (`si`, `uctx`: a SIGSEGV or SIGBUS
 * handler's arguments, NULL for others) hit its guard or it ran out of
 * stack, or the task whose broken canary made the runtime abort; else 0.
 * Async-signal-safe. */
uint64_t uvt__stack_overflow_id(const void *si, const void *uctx);

#endif

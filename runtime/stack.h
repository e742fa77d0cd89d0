/*
 * Task stacks and the per-scheduler pool they are recycled through.
 *
 * A stack is an anonymous mapping [lo, lo + size).  Overflow detection:
 *
 *  - guarded stacks have a PROT_NONE page just below lo, so an overflow
 *    faults at once.  Each costs two memory mappings, and the kernel caps
 *    a process at vm.max_map_count (65530 here), so only a budget of them
 *    (a quarter of the cap, shared by every pool in the process) is
 *    guarded;
 *  - past the budget, stacks are carved from unguarded slabs (one mapping
 *    for many stacks) and the lowest UVT__CANARY_BYTES of each must stay
 *    zero (a fresh mapping is zero: nothing is written).  The scheduler
 *    checks them when the task ends, and at a switch when the task's
 *    stack pointer is within UVT__CANARY_ZONE of the bottom, and stops the
 *    process, naming the task, if they changed.  Not at every switch:
 *    reading the canary maps its page, which counts in RSS here even when
 *    only read, and 100,000 suspended tasks would pay a page each.
 *
 * Stacks go back to the pool when their task ends (not when its handle is
 * dropped) and are reused last-in first-out, so their top pages are warm.
 * Each pool keeps at most UVT__POOL_KEEP free stacks of its size warm;
 * beyond that a guarded stack is unmapped, and a slab whose stacks are all
 * free has its pages given back with one madvise.  A task asking for
 * another size (uvt_spawn_stack, or a default changed after the pool was
 * made) gets a mapping of its own, unmapped when it ends.
 */
#ifndef UVT_RUNTIME_STACK_H
#define UVT_RUNTIME_STACK_H

#include <stdbool.h>
#include <stddef.h>

#define UVT__CANARY_BYTES 64
#define UVT__CANARY_ZONE (16 * 1024)
#define UVT__POOL_KEEP 1024

typedef struct uvt__stack_s {
  void *lo;
  size_t size;
  unsigned char guarded;  /* own mapping with a guard page below lo */
  unsigned char slab;     /* carved from a slab: never unmapped alone */
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
/* False if an unguarded stack's canary was overwritten.  `sp` is the
 * task's saved stack pointer (NULL: unknown); `ending`: the task ended. */
bool uvt__stack_intact(const uvt__stack_t *st, const void *sp, bool ending);

#endif

/*
 * Task stacks; the design is in stack.h.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UVT_HAVE_VALGRIND 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define UVT_STACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UVT_STACK_ASAN 1
#endif
#endif
/* Under ASan, a free stack's top is poisoned (where frames live); the
 * whole stack would cost a shadow memset of size/8 on every task end. */
#define POISON_TOP (64 * 1024)

#ifdef UVT_STACK_ASAN
/* A free stack is poisoned: a write into a finished task's stack (through
 * a pointer that outlived it) is reported, not silently accepted. */
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
static void poison_top(const uvt__stack_t *st, int on) {
  size_t n = st->size < POISON_TOP ? st->size : POISON_TOP;
  char *top = (char *)st->lo + st->size - n;
  if (on) __asan_poison_memory_region(top, n);
  else __asan_unpoison_memory_region(top, n);
}
#define POISON(st) poison_top((st), 1)
#define UNPOISON(st) poison_top((st), 0)
#else
#define POISON(st) ((void)(st))
#define UNPOISON(st) ((void)(st))
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UVT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UVT_SANITIZED 1
#endif
#endif

/* Sanitizers grow frames several times over: give tasks more room. */
#ifdef UVT_SANITIZED
#define DEFAULT_STACK (512 * 1024)
#else
#define DEFAULT_STACK (128 * 1024)
#endif
#define MIN_STACK (16 * 1024)
#define SLAB_STACKS UVT__SLAB_STACKS

static atomic_size_t default_size = DEFAULT_STACK;
static atomic_long guard_budget = -1; /* guarded stacks still allowed */

size_t uvt__page_size(void) {
  static size_t page;
  if (page == 0) page = (size_t)sysconf(_SC_PAGESIZE);
  return page;
}

size_t uvt__stack_round(size_t size) {
  size_t page = uvt__page_size();
  /* Checked before rounding: size + page - 1 wraps for sizes near
   * SIZE_MAX, which gave a 0-byte stack. */
  if (size > UVT__STACK_MAX) return 0;
  if (size < MIN_STACK) size = MIN_STACK;
  return (size + page - 1) & ~(page - 1);
}

size_t uvt__stack_default_size(void) { return atomic_load(&default_size); }

size_t uvt_set_default_stack_size(size_t size) {
  size_t rounded;
  if (size == 0) return atomic_load(&default_size);
  rounded = uvt__stack_round(size);
  if (rounded == 0) {
    uvt__warn("uvt_set_default_stack_size(%zu): more than the maximum stack "
              "size (%zu bytes); the default stays %zu",
              size, UVT__STACK_MAX, atomic_load(&default_size));
    return 0;
  }
  return atomic_exchange(&default_size, rounded);
}

/* A quarter of vm.max_map_count, two mappings per guarded stack: leaves
 * three quarters of the mappings to malloc, libraries and the program. */
static void guard_budget_init(void) {
  long expected = -1, cap = 65530;
  FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
  if (f != NULL) {
    if (fscanf(f, "%ld", &cap) != 1) cap = 65530;
    fclose(f);
  }
  atomic_compare_exchange_strong(&guard_budget, &expected, cap / 4 / 2);
}

static bool guard_budget_take(void) {
  long v;
  if (atomic_load(&guard_budget) < 0) guard_budget_init();
  v = atomic_load(&guard_budget);
  while (v > 0)
    if (atomic_compare_exchange_weak(&guard_budget, &v, v - 1)) return true;
  return false;
}

static void stack_register(uvt__stack_t *st) {
#ifdef UVT_HAVE_VALGRIND
  st->valgrind_id =
      VALGRIND_STACK_REGISTER(st->lo, (char *)st->lo + st->size);
#else
  (void)st;
#endif
}

static void stack_deregister(uvt__stack_t *st) {
#ifdef UVT_HAVE_VALGRIND
  VALGRIND_STACK_DEREGISTER(st->valgrind_id);
#else
  (void)st;
#endif
}

/* A stack in a mapping of its own, with a guard page if `guard` (a unit
 * of the budget already taken). */
static int stack_map(size_t size, bool guard, uvt__stack_t *out) {
  size_t page = uvt__page_size();
  size_t len = size + (guard ? page : 0);
  char *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    if (guard) atomic_fetch_add(&guard_budget, 1);
    return UVT_ENOMEM;
  }
  if (guard && mprotect(base, page, PROT_NONE) != 0) {
    munmap(base, len);
    atomic_fetch_add(&guard_budget, 1);
    return UVT_ENOMEM;
  }
  out->lo = base + (guard ? page : 0);
  out->size = size;
  out->guarded = guard;
  out->slab = 0;
  out->from = NULL;
  stack_register(out);
  return 0;
}

static void stack_unmap(uvt__stack_t *st) {
  size_t page = uvt__page_size();
  stack_deregister(st);
  if (st->guarded) {
    munmap((char *)st->lo - page, st->size + page);
    atomic_fetch_add(&guard_budget, 1);
  } else {
    munmap(st->lo, st->size);
  }
}

static int stack_from_slab(uvt__stack_pool_t *p, uvt__stack_t *out) {
  if (p->slab_cursor == NULL || p->slab_cursor >= p->slab_end) {
    uvt__slab_t *slab = malloc(sizeof(*slab));
    size_t len = p->default_size * SLAB_STACKS;
    void *base;
    if (slab == NULL) return UVT_ENOMEM;
    base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
      free(slab);
      return UVT_ENOMEM;
    }
    slab->base = base;
    slab->len = len;
    slab->nfree = 0;
    slab->next = p->slabs;
    p->slabs = slab;
    p->slab_cursor = base;
    p->slab_end = (char *)base + len;
  }
  out->lo = p->slab_cursor;
  out->size = p->default_size;
  out->guarded = 0;
  out->slab = 1;
  out->from = p->slabs;
  p->slab_cursor += p->default_size;
  stack_register(out);
  return 0;
}

void uvt__stack_pool_init(uvt__stack_pool_t *p) {
  memset(p, 0, sizeof(*p));
  p->default_size = uvt__stack_default_size();
}

int uvt__stack_take(uvt__stack_pool_t *p, size_t size, uvt__stack_t *out) {
  int err;
  if (size == 0) size = uvt__stack_default_size(); /* already rounded */
  else size = uvt__stack_round(size);
  if (size == 0) return UVT_EINVAL; /* over UVT__STACK_MAX */
  if (size != p->default_size)
    return stack_map(size, guard_budget_take(), out) == 0 ? (p->out++, 0)
                                                          : UVT_ENOMEM;
  if (p->nfree > 0) {
    *out = p->free[--p->nfree];
    if (out->from != NULL) out->from->nfree--;
    UNPOISON(out);
    p->out++;
    return 0;
  }
  /* Guard pages while the budget lasts; then slabs, which cost one
   * mapping per 64 stacks. */
  if (guard_budget_take()) {
    err = stack_map(size, true, out);
    if (err != 0) err = stack_from_slab(p, out);
  } else {
    err = stack_from_slab(p, out);
  }
  if (err == 0) p->out++;
  return err;
}

void uvt__stack_give(uvt__stack_pool_t *p, uvt__stack_t *st) {
  p->out--;
  if (st->size != p->default_size) {
    stack_unmap(st);
    return;
  }
  if (p->nfree >= UVT__POOL_KEEP && !st->slab) {
    stack_unmap(st);
    return;
  }
  if (p->nfree == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 64;
    uvt__stack_t *nf = realloc(p->free, cap * sizeof(*nf));
    if (nf == NULL) {
      /* A slab stack cannot be unmapped alone: it is lost until the pool
       * goes, which is what being out of memory costs here. */
      if (!st->slab) stack_unmap(st);
      return;
    }
    p->free = nf;
    p->cap = cap;
  }
  POISON(st);
  p->free[p->nfree++] = *st;
  if (st->from != NULL && ++st->from->nfree == SLAB_STACKS &&
      p->nfree > UVT__POOL_KEEP)
    madvise(st->from->base, st->from->len, MADV_DONTNEED);
}

void uvt__stack_pool_destroy(uvt__stack_pool_t *p) {
  size_t i;
  for (i = 0; i < p->nfree; i++) {
    UNPOISON(&p->free[i]);
    if (p->free[i].slab) stack_deregister(&p->free[i]);
    else stack_unmap(&p->free[i]);
  }
  free(p->free);
  while (p->slabs != NULL) {
    uvt__slab_t *s = p->slabs;
    p->slabs = s->next;
    munmap(s->base, s->len);
    free(s);
  }
  memset(p, 0, sizeof(*p));
}

bool uvt__stack_intact(const uvt__stack_t *st, const void *sp, bool ending) {
  const uint64_t *w = st->lo;
  uint64_t acc = 0;
  size_t i;
  if (st->guarded) return true;
  /* Reading the canary maps its page, and on this kernel even a page only
   * read counts in RSS: a suspended task far from its bottom is not
   * checked (it cannot be overrunning now); every task is at its end. */
  if (!ending && sp != NULL && (const char *)sp > (const char *)st->lo + UVT__CANARY_ZONE)
    return true;
  for (i = 0; i < UVT__CANARY_BYTES / sizeof(uint64_t); i++) acc |= w[i];
  return acc == 0;
}

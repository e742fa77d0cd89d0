/*
 * The per-thread cache of interned stacks (stacks.c), looked up inline on
 * the capture path: the common case, the same creation site again, is a
 * hash and a compare, without a call.
 *
 * Each thread remembers the stacks it interned last.  An entry points at
 * the table's own copy of the PCs, which lives until uvt__stacks_forget;
 * that bumps the generation, which empties every cache.
 */
#ifndef UVT_TRACER_INTERN_H
#define UVT_TRACER_INTERN_H

#include <stdbool.h>
#include <stdint.h>

#include "tracer.h"

#define UVT__STACK_CACHE_SLOTS 64

typedef struct {
  uint64_t hash;
  unsigned gen;
  int n;
  const uint64_t *pcs;
  int64_t id;
} uvt__stack_cache_t;

extern _Thread_local uvt__stack_cache_t uvt__stack_cache[UVT__STACK_CACHE_SLOTS]
    __attribute__((tls_model("initial-exec")));
extern unsigned uvt__stack_gen;

/* FNV-1a of the PCs; never 0 (0 marks a free slot of the table). */
static inline uint64_t uvt__stack_hash(const uint64_t *pcs, int n) {
  uint64_t h = 1469598103934665603ull;
  int i;
  for (i = 0; i < n; i++) {
    h ^= pcs[i];
    h *= 1099511628211ull;
  }
  return h != 0 ? h : 1;
}

/* memcmp's call costs more than the compare of the few PCs of a stack. */
static inline bool uvt__same_pcs(const uint64_t *a, const uint64_t *b, int n) {
  int i;
  for (i = 0; i < n; i++)
    if (a[i] != b[i]) return false;
  return true;
}

/* The calling thread's cache entry for pcs (hash h), or NULL. */
static inline const uvt__stack_cache_t *uvt__stack_cached(const uint64_t *pcs, int n,
                                                          uint64_t h) {
  const uvt__stack_cache_t *c = &uvt__stack_cache[h & (UVT__STACK_CACHE_SLOTS - 1)];
  if (c->gen == __atomic_load_n(&uvt__stack_gen, __ATOMIC_ACQUIRE) && c->hash == h &&
      c->n == n && uvt__same_pcs(c->pcs, pcs, n))
    return c;
  return NULL;
}

/* uvt__stack_intern, its cache looked up inline. */
static inline int64_t uvt__stack_intern_fast(const uint64_t *pcs, int n) {
  if (n > 0) {
    const uvt__stack_cache_t *c = uvt__stack_cached(pcs, n, uvt__stack_hash(pcs, n));
    if (c != NULL) return c->id;
  }
  return uvt__stack_intern(pcs, n);
}

#endif

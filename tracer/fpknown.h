/*
 * Code known to keep frame pointers (fpknown.c): the address ranges, in
 * this process, of every compile unit whose compiler recorded (DWARF
 * DW_AT_producer) that it kept frame pointers.  The frame-pointer walk may
 * trust a frame record only in such code; anywhere else it declines.
 *
 * A table is published once, whole, and never changed or freed while the
 * process records: readers take no lock.
 */
#ifndef UVT_TRACER_FPKNOWN_H
#define UVT_TRACER_FPKNOWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uintptr_t lo, hi; /* [lo, hi), absolute addresses */
} uvt__code_range_t;

typedef struct uvt__fpknown_s {
  struct uvt__fpknown_s *older; /* the table this one replaced (kept) */
  size_t n;                     /* ranges, sorted, disjoint, not adjacent */
  uvt__code_range_t r[];
} uvt__fpknown_t;

/* The table in force; NULL before the first refresh or if no loaded code is
 * known (then every walk declines). */
extern uvt__fpknown_t *uvt__fpknown_published;
static inline const uvt__fpknown_t *uvt__fpknown_table(void) {
  return __atomic_load_n(&uvt__fpknown_published, __ATOMIC_ACQUIRE);
}

/* Read the DWARF of every loaded module but the one holding [skip_lo,
 * skip_hi) (the library itself) and publish the table, if modules were
 * loaded or unloaded since the last call.  Not async-signal-safe; opens
 * files.  A module is read only if its file on disk still has the build-id
 * of the loaded copy: code whose file changed is never known. */
void uvt__fpknown_refresh(uintptr_t skip_lo, uintptr_t skip_hi);

/* After fork, in the child: the refresh lock starts free. */
void uvt__fpknown_forget(void);

/* Whether `producer` (a compile unit's DW_AT_producer) says every function
 * of the unit keeps a frame record: GCC's C or C++ at -O0 or with
 * -fno-omit-frame-pointer (the last of the two spellings wins), and
 * without -momit-leaf-frame-pointer.  Anything else, including a producer
 * that does not list its switches (clang without -grecord-command-line),
 * is not known. */
bool uvt__producer_keeps_fp(const char *producer);

/* Whether pc lies in code of table t known to keep frame pointers. */
static inline bool uvt__fpknown_has(const uvt__fpknown_t *t, uintptr_t pc) {
  const uvt__code_range_t *r;
  size_t n;
  if (t == NULL || t->n == 0) return false;
  r = t->r;
  n = t->n;
  while (n > 1) { /* keep r at the last range that starts at or below pc */
    size_t half = n / 2;
    if (r[half].lo <= pc) r += half;
    n -= half;
  }
  return r->lo <= pc && pc < r->hi;
}

#endif

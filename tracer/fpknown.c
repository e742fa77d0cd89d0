/*
 * Which loaded code is known to keep frame pointers.
 *
 * GCC records its command line in each compile unit's DW_AT_producer
 * (-grecord-gcc-switches is its default with -g): "GNU C17 12.2.0
 * -mtune=generic -march=x86-64 -g -O2 -fno-omit-frame-pointer".  A unit
 * compiled at -O0 or with -fno-omit-frame-pointer keeps a frame record in
 * every function, so a return address inside it belongs to a function
 * whose record the frame-pointer walk can follow to its caller.  That is
 * what "known" means here, per address range, not per module: code of a
 * module that no unit describes (C start-up files, a static library built
 * without -g), a unit built otherwise, an LTO unit ("GNU GIMPLE", whose
 * recorded switches are the link's) or one by a compiler that does not
 * list its switches is not known, and the walk declines to libunwind
 * where it meets it.  What a unit's command line cannot tell: a function
 * in it that does without a frame record on its own (an optimize
 * attribute or pragma, a naked function, top-level asm); the README
 * says so.
 *
 * The modules' files are read at start and again whenever a loop appears
 * after the set of loaded modules changed (libdw: one pass over the unit
 * headers, no line tables), each only if the file still has the build-id
 * of the loaded copy; one without a build-id is not read.
 * A library with known code is pinned (see pinned()).
 * The ranges are merged into one sorted table, published with one atomic
 * store.  A table replaced by a later refresh (dlopen) is kept, linked
 * from its successor, because a walk on another thread may be reading it.
 */
#include "fpknown.h"
#include "tracer.h"
#include "build_id.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uvt__fpknown_t *uvt__fpknown_published;

static pthread_mutex_t refresh_mutex = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long seen_adds, seen_subs;
static bool refreshed;

/* ---- what a producer string says ------------------------------------------ */

bool uvt__producer_keeps_fp(const char *p) {
  bool omit = false; /* GCC's default without -O: -O0, which keeps them */
  int forced = -1;   /* -f[no-]omit-frame-pointer: wins over -O */
  if (p == NULL || strncmp(p, "GNU C", 5) != 0) return false;
  while (*p != '\0') {
    size_t len;
    while (*p == ' ') p++;
    len = strcspn(p, " ");
    if (len >= 2 && p[0] == '-' && p[1] == 'O')
      omit = !(len == 3 && p[2] == '0');
    else if (len == 20 && strncmp(p, "-fomit-frame-pointer", len) == 0)
      forced = 1;
    else if (len == 23 && strncmp(p, "-fno-omit-frame-pointer", len) == 0)
      forced = 0;
    else if (len == 25 && strncmp(p, "-momit-leaf-frame-pointer", len) == 0)
      return false;
    p += len;
  }
  return forced >= 0 ? forced == 0 : !omit;
}

/* ---- collecting ranges ------------------------------------------------------ */

typedef struct {
  uvt__code_range_t *v;
  size_t n, cap;
} ranges_t;

static int ranges_push(ranges_t *rs, uintptr_t lo, uintptr_t hi) {
  if (rs->n == rs->cap) {
    size_t cap = rs->cap ? rs->cap * 2 : 64;
    uvt__code_range_t *v = realloc(rs->v, cap * sizeof(*v));
    if (v == NULL) return -1;
    rs->v = v;
    rs->cap = cap;
  }
  rs->v[rs->n++] = (uvt__code_range_t){lo, hi};
  return 0;
}

static int by_lo(const void *a, const void *b) {
  const uvt__code_range_t *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sort and merge overlapping or touching ranges, in place. */
static void ranges_merge(ranges_t *rs) {
  size_t i, k = 0;
  if (rs->n == 0) return;
  qsort(rs->v, rs->n, sizeof(*rs->v), by_lo);
  for (i = 1; i < rs->n; i++) {
    if (rs->v[i].lo <= rs->v[k].hi) {
      if (rs->v[i].hi > rs->v[k].hi) rs->v[k].hi = rs->v[i].hi;
    } else {
      rs->v[++k] = rs->v[i];
    }
  }
  rs->n = k + 1;
}

/* Whether [lo, hi) meets a range of merged `bad`. */
static bool overlaps(const ranges_t *bad, uintptr_t lo, uintptr_t hi) {
  size_t a = 0, b = bad->n;
  while (a < b) { /* the first bad range that ends above lo */
    size_t m = a + (b - a) / 2;
    if (bad->v[m].hi <= lo) a = m + 1;
    else b = m;
  }
  return a < bad->n && bad->v[a].lo < hi;
}

typedef struct {
  ranges_t good, bad;
  bool failed; /* out of memory: publish nothing */
} collect_t;

static bool same_build_id(Elf *elf, const char *want) {
  const void *id;
  ssize_t n = dwelf_elf_gnu_build_id(elf, &id);
  char hex[2 * 64 + 1];
  ssize_t i;
  if (want == NULL || n <= 0 || n > 64 || strlen(want) != (size_t)n * 2) return false;
  for (i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", ((const unsigned char *)id)[i]);
  return memcmp(hex, want, (size_t)n * 2) == 0;
}

static void read_units(Dwarf *dw, uintptr_t bias, collect_t *c) {
  Dwarf_CU *cu = NULL, *next;
  Dwarf_Half version;
  uint8_t type;
  Dwarf_Die cudie, sub;
  while (!c->failed &&
         dwarf_get_units(dw, cu, &next, &version, &type, &cudie, &sub) == 0) {
    Dwarf_Addr base, start, end;
    Dwarf_Attribute attr;
    ptrdiff_t off = 0;
    /* libdw takes a NULL attribute (no producer) and gives NULL. */
    bool good = type == DW_UT_compile &&
                uvt__producer_keeps_fp(
                    dwarf_formstring(dwarf_attr(&cudie, DW_AT_producer, &attr)));
    cu = next;
    while ((off = dwarf_ranges(&cudie, off, &base, &start, &end)) > 0)
      if (end > start &&
          ranges_push(good ? &c->good : &c->bad, (uintptr_t)start + bias,
                      (uintptr_t)end + bias) != 0)
        c->failed = true;
  }
}

static void read_module(const char *path, uintptr_t bias, const char *build_id,
                        collect_t *c) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  Elf *elf;
  if (fd < 0) return;
  elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
  if (elf != NULL && same_build_id(elf, build_id)) {
    Dwarf *dw = dwarf_begin_elf(elf, DWARF_C_READ, NULL);
    if (dw != NULL) {
      read_units(dw, bias, c);
      dwarf_end(dw);
    }
  }
  if (elf != NULL) elf_end(elf);
  close(fd);
}

/* The modules to read, listed under the loader's lock and read after. */
typedef struct {
  char *path, *build_id;
  uintptr_t bias;
  bool program; /* the executable, which is never unloaded */
} module_t;

typedef struct {
  module_t *v;
  size_t n, cap;
  uintptr_t skip_lo, skip_hi;
  unsigned long long adds, subs;
} modules_t;

static int list_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  modules_t *ms = arg;
  const char *path = info->dlpi_name;
  char exe[4096];
  int i;
  if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
    ms->adds = info->dlpi_adds;
    ms->subs = info->dlpi_subs;
  }
  for (i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && ms->skip_lo >= a && ms->skip_lo < a + ph->p_memsz)
      return 0; /* the library itself */
  }
  bool program = path == NULL || path[0] == '\0';
  if (program) {
    ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (k <= 0) return 0;
    exe[k] = '\0';
    path = exe;
  }
  if (path[0] != '/') return 0; /* linux-vdso.so.1: no file */
  if (ms->n == ms->cap) {
    size_t cap = ms->cap ? ms->cap * 2 : 32;
    module_t *v = realloc(ms->v, cap * sizeof(*v));
    if (v == NULL) return 1;
    ms->v = v;
    ms->cap = cap;
  }
  ms->v[ms->n].build_id = uvt__build_id_hex(info);
  ms->v[ms->n].path = strdup(path);
  ms->v[ms->n].bias = info->dlpi_addr;
  ms->v[ms->n].program = program;
  if (ms->v[ms->n].path == NULL) {
    free(ms->v[ms->n].build_id);
    return 1;
  }
  ms->n++;
  return 0;
}

/* A library whose code is known must stay where it is: unloaded, its
 * addresses could come to hold other code that the table would still call
 * known.  So it is made never to unload (RTLD_NODELETE; a plugin the
 * program dlcloses stays mapped while it records: the README says so),
 * and kept only if the copy pinned is the one read (same load bias).
 * Libraries without such code (the system's: no DWARF) are left alone. */
static bool pinned(const module_t *m) {
  void *h = dlopen(m->path, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
  struct link_map *lm = NULL;
  bool same;
  if (h == NULL) return false;
  same = dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm != NULL && lm->l_addr == m->bias;
  dlclose(h); /* the reference just taken; the library stays (NODELETE) */
  return same;
}

/* The table of `good` minus whatever meets `bad`, or NULL. */
static uvt__fpknown_t *table_of(collect_t *c) {
  uvt__fpknown_t *t;
  size_t i, k = 0;
  ranges_merge(&c->good);
  ranges_merge(&c->bad);
  t = malloc(sizeof(*t) + c->good.n * sizeof(t->r[0]));
  if (t == NULL) return NULL;
  for (i = 0; i < c->good.n; i++)
    if (!overlaps(&c->bad, c->good.v[i].lo, c->good.v[i].hi)) t->r[k++] = c->good.v[i];
  t->n = k;
  return t;
}

void uvt__fpknown_refresh(uintptr_t skip_lo, uintptr_t skip_hi) {
  unsigned long long counts[2];
  modules_t ms = {NULL, 0, 0, skip_lo, skip_hi, 0, 0};
  collect_t c = {{NULL, 0, 0}, {NULL, 0, 0}, false};
  uvt__fpknown_t *t;
  size_t i;
  pthread_mutex_lock(&refresh_mutex);
  uvt__dl_counts(counts);
  if (refreshed && counts[0] == seen_adds && counts[1] == seen_subs) goto out;
  elf_version(EV_CURRENT);
  dl_iterate_phdr(list_cb, &ms);
  for (i = 0; i < ms.n && !c.failed; i++) {
    size_t before = c.good.n;
    read_module(ms.v[i].path, ms.v[i].bias, ms.v[i].build_id, &c);
    if (c.good.n > before && !ms.v[i].program && !pinned(&ms.v[i])) c.good.n = before;
  }
  t = c.failed ? NULL : table_of(&c);
  if (t != NULL && t->n == 0 && uvt__fpknown_published == NULL) {
    free(t); /* nothing known: no walk is tried */
    t = NULL;
    refreshed = true;
    seen_adds = ms.adds;
    seen_subs = ms.subs;
  }
  if (t != NULL) {
    t->older = uvt__fpknown_published;
    __atomic_store_n(&uvt__fpknown_published, t, __ATOMIC_RELEASE);
    refreshed = true;
    seen_adds = ms.adds;
    seen_subs = ms.subs;
  }
out:
  pthread_mutex_unlock(&refresh_mutex);
  for (i = 0; i < ms.n; i++) {
    free(ms.v[i].path);
    free(ms.v[i].build_id);
  }
  free(ms.v);
  free(c.good.v);
  free(c.bad.v);
}

void uvt__fpknown_forget(void) {
  /* The child of a fork: another thread may have held the lock at the
   * fork, and is not there to release it.  The table published stays
   * right (same address space). */
  pthread_mutex_init(&refresh_mutex, NULL);
}

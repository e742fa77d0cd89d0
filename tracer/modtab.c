/*
 * The module table a signal handler can read: each loaded object's path
 * and address range, so that SIGQUIT's listing can print a raw frame as
 * `module+0xoffset` (what `addr2line -e module offset` takes) without
 * calling dladdr or dl_iterate_phdr, which take the loader's lock.
 *
 * uvt__modtab_refresh (never in a handler) walks dl_iterate_phdr into the
 * buffer not in use and then publishes it with one atomic store; it does
 * nothing when the loader's counts of loaded and unloaded objects have not
 * changed since the last walk.  A handler reads whichever buffer was
 * published last.  Two refreshes during one handler would overwrite the
 * buffer it reads: refreshes happen at start and when a loop appears, far
 * apart, and a wrong name is all it would cost.
 */
#include "tracer.h"

#include <link.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define MODTAB_MAX 256
#define MODTAB_POOL (64 * 1024)

typedef struct {
  uintptr_t lo, hi, bias; /* bias: dlpi_addr, what an ELF address is off by */
  unsigned path;          /* offset in pool */
} mod_t;

typedef struct {
  int n;
  unsigned used;
  mod_t mods[MODTAB_MAX];
  char pool[MODTAB_POOL];
} modtab_t;

static modtab_t tabs[2];
static modtab_t *published;
static unsigned long long seen_adds, seen_subs;
static pthread_mutex_t refresh_mutex = PTHREAD_MUTEX_INITIALIZER;

static int count_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  unsigned long long *c = arg;
  if (size < offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
    return 1;
  c[0] = info->dlpi_adds;
  c[1] = info->dlpi_subs;
  return 1; /* the counts are the same in every entry */
}

static int fill_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  modtab_t *t = arg;
  mod_t *m;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  char exe[4096];
  const char *path = info->dlpi_name;
  size_t len;
  int i;
  (void)size;
  if (t->n == MODTAB_MAX) return 1;
  for (i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    if (info->dlpi_addr + ph->p_vaddr < lo) lo = info->dlpi_addr + ph->p_vaddr;
    if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
      hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
  }
  if (hi == 0) return 0;
  if (path == NULL || path[0] == '\0') { /* the program itself */
    ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (k <= 0) return 0;
    exe[k] = '\0';
    path = exe;
  }
  len = strlen(path) + 1;
  if (t->used + len > MODTAB_POOL) return 1;
  m = &t->mods[t->n++];
  m->lo = lo;
  m->hi = hi;
  m->bias = info->dlpi_addr;
  m->path = t->used;
  memcpy(t->pool + t->used, path, len);
  t->used += (unsigned)len;
  return 0;
}

void uvt__dl_counts(unsigned long long counts[2]) {
  counts[0] = counts[1] = 0;
  dl_iterate_phdr(count_cb, counts);
}

void uvt__modtab_refresh(void) {
  unsigned long long c[2];
  modtab_t *t;
  pthread_mutex_lock(&refresh_mutex);
  uvt__dl_counts(c);
  t = __atomic_load_n(&published, __ATOMIC_ACQUIRE);
  if (t == NULL || c[0] != seen_adds || c[1] != seen_subs) {
    t = t == &tabs[0] ? &tabs[1] : &tabs[0];
    t->n = 0;
    t->used = 0;
    dl_iterate_phdr(fill_cb, t);
    __atomic_store_n(&published, t, __ATOMIC_RELEASE);
    seen_adds = c[0];
    seen_subs = c[1];
  }
  pthread_mutex_unlock(&refresh_mutex);
}

const char *uvt__modtab_find(uintptr_t pc, uintptr_t *offset) {
  const modtab_t *t = __atomic_load_n(&published, __ATOMIC_ACQUIRE);
  int i;
  if (t == NULL) return NULL;
  for (i = 0; i < t->n; i++)
    if (pc >= t->mods[i].lo && pc < t->mods[i].hi) {
      *offset = pc - t->mods[i].bias;
      return t->pool + t->mods[i].path;
    }
  return NULL;
}

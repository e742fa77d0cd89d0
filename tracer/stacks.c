/*
 * Stack capture, interning and the module map.
 *
 * A stack is captured as raw return addresses, by libunwind
 * (unw_backtrace: ~120 ns for 15 frames here) or by a frame-pointer walk
 * (fpstack.c), and never symbolised in the traced process.  Identical stacks — the same spawn site reached the same
 * way — are stored once: a process-wide open-addressing table maps the
 * FNV-1a hash of the addresses to a stack id; a new stack is handed to the
 * writer as a REC_STACK record the first time it is seen.  The table is
 * guarded by one mutex, held for a lookup only.
 *
 * The module map (path, build-id, address range of each loaded object) is
 * what lets the report command symbolise those addresses after the
 * process is gone, and notice when a binary changed since.
 */
#define UNW_LOCAL_ONLY
#include "tracer.h"
#include "uvtask/hooks.h"
#include "build_id.h"
#include "fpknown.h"
#include "intern.h"

#include <elf.h>
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  uint64_t hash;
  int64_t id;
  int n;
  uint64_t *pcs;
} slot_t;

static pthread_mutex_t intern_mutex = PTHREAD_MUTEX_INITIALIZER;
static slot_t *slots;
static size_t nslots, used;
static int64_t next_stack_id;

/* The per-thread cache (intern.h); the generation starts at 1, so that a
 * zeroed entry matches nothing. */
unsigned uvt__stack_gen = 1;
_Thread_local uvt__stack_cache_t uvt__stack_cache[UVT__STACK_CACHE_SLOTS]
    __attribute__((tls_model("initial-exec")));

static int grow(void) {
  size_t cap = nslots ? nslots * 2 : 4096, i;
  slot_t *ns = calloc(cap, sizeof(*ns));
  if (ns == NULL) return -1;
  for (i = 0; i < nslots; i++) {
    size_t j;
    if (slots[i].hash == 0) continue;
    for (j = slots[i].hash & (cap - 1); ns[j].hash != 0; j = (j + 1) & (cap - 1))
      ;
    ns[j] = slots[i];
  }
  free(slots);
  slots = ns;
  nslots = cap;
  return 0;
}

int64_t uvt__stack_intern(const uint64_t *pcs, int n) {
  uint64_t h;
  size_t j;
  int64_t id = 0;
  rec_t *r = NULL;
  const uvt__stack_cache_t *hit;
  uvt__stack_cache_t *c;
  unsigned gen;
  if (n <= 0) return 0;
  h = uvt__stack_hash(pcs, n);
  if ((hit = uvt__stack_cached(pcs, n, h)) != NULL) return hit->id;
  gen = __atomic_load_n(&uvt__stack_gen, __ATOMIC_ACQUIRE);
  c = &uvt__stack_cache[h & (UVT__STACK_CACHE_SLOTS - 1)];
  pthread_mutex_lock(&intern_mutex);
  if ((used + 1) * 2 > nslots && grow() != 0) goto out;
  for (j = h & (nslots - 1); slots[j].hash != 0; j = (j + 1) & (nslots - 1)) {
    if (slots[j].hash == h && slots[j].n == n &&
        memcmp(slots[j].pcs, pcs, (size_t)n * sizeof(*pcs)) == 0) {
      id = slots[j].id;
      *c = (uvt__stack_cache_t){h, gen, n, slots[j].pcs, id};
      goto out;
    }
  }
  slots[j].pcs = malloc((size_t)n * sizeof(*pcs));
  r = uvt__rec_new(REC_STACK);
  if (slots[j].pcs == NULL || r == NULL ||
      (r->pcs = malloc((size_t)n * sizeof(*pcs))) == NULL) {
    free(slots[j].pcs);
    slots[j].pcs = NULL;
    if (r != NULL) uvt__rec_free(r);
    r = NULL;
    goto out;
  }
  memcpy(slots[j].pcs, pcs, (size_t)n * sizeof(*pcs));
  memcpy(r->pcs, pcs, (size_t)n * sizeof(*pcs));
  slots[j].hash = h;
  slots[j].n = n;
  slots[j].id = id = ++next_stack_id;
  used++;
  *c = (uvt__stack_cache_t){h, gen, n, slots[j].pcs, id};
  r->id = (uint64_t)id;
  r->npcs = n;
out:
  pthread_mutex_unlock(&intern_mutex);
  if (r != NULL) uvt__rec_push(r);
  return id;
}

int uvt__unwind_from(void *unw_context, uint64_t *pcs, int max) {
  unw_cursor_t cur;
  int n = 0;
  if (unw_init_local(&cur, unw_context) != 0) return 0;
  do {
    unw_word_t ip;
    if (unw_get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0) break;
    pcs[n++] = (uint64_t)ip;
  } while (n < max && unw_step(&cur) > 0);
  return n;
}

/* A signal handler's third argument is a ucontext_t, which is what
 * libunwind's local context is on Linux; the flag tells it that the first
 * frame is the interrupted instruction, not a return address.  libunwind
 * was warmed up at start (watchdog.c), so this takes no loader lock. */
int uvt__unwind_signal(void *uctx, uint64_t *pcs, int max) {
  unw_cursor_t cur;
  int n = 0;
  if (uctx == NULL || max <= 0 ||
      unw_init_local2(&cur, (unw_context_t *)uctx, UNW_INIT_SIGNAL_FRAME) != 0)
    return 0;
  do {
    unw_word_t ip;
    if (unw_get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0) break;
    pcs[n++] = (uint64_t)ip;
  } while (n < max && unw_step(&cur) > 0);
  return n;
}

typedef struct {
  uintptr_t addr, lo, hi;
} range_t;

static int range_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  range_t *r = arg;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  int i;
  (void)size;
  for (i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t a, b;
    if (ph->p_type != PT_LOAD) continue;
    a = info->dlpi_addr + ph->p_vaddr;
    b = a + ph->p_memsz;
    if (a < lo) lo = a;
    if (b > hi) hi = b;
  }
  if (r->addr >= lo && r->addr < hi) {
    r->lo = lo;
    r->hi = hi;
    return 1;
  }
  return 0;
}

int uvt__module_range(const void *addr, uintptr_t *lo, uintptr_t *hi) {
  range_t r = {(uintptr_t)addr, 0, 0};
  if (dl_iterate_phdr(range_cb, &r) == 0) return -1;
  *lo = r.lo;
  *hi = r.hi;
  return 0;
}

/* The unwinder starts from the registers the switch saved, as if the
 * task had just returned from it. */
int uvt__stack_of_parked(const uvt_task_frame_t *f, uint64_t *pcs, int max) {
  unw_context_t uc;
  if (unw_getcontext(&uc) != 0) return 0;
#if defined(__x86_64__)
  if (f->nregs != 5) return 0;
  uc.uc_mcontext.gregs[REG_RBX] = (greg_t)f->regs[0];
  uc.uc_mcontext.gregs[REG_R12] = (greg_t)f->regs[1];
  uc.uc_mcontext.gregs[REG_R13] = (greg_t)f->regs[2];
  uc.uc_mcontext.gregs[REG_R14] = (greg_t)f->regs[3];
  uc.uc_mcontext.gregs[REG_R15] = (greg_t)f->regs[4];
  uc.uc_mcontext.gregs[REG_RBP] = (greg_t)f->fp;
  uc.uc_mcontext.gregs[REG_RIP] = (greg_t)f->pc;
  uc.uc_mcontext.gregs[REG_RSP] = (greg_t)f->sp;
#elif defined(__aarch64__)
  {
    int i;
    if (f->nregs != 10) return 0;
    for (i = 0; i < 10; i++) uc.uc_mcontext.regs[19 + i] = f->regs[i];
    uc.uc_mcontext.regs[29] = f->fp;
    uc.uc_mcontext.regs[30] = f->pc;
    uc.uc_mcontext.sp = f->sp;
    uc.uc_mcontext.pc = f->pc;
  }
#else
  (void)f, (void)pcs, (void)max;
  return 0;
#endif
  return uvt__unwind_from(&uc, pcs, max);
}

void uvt__stacks_forget(void) {
  size_t i;
  /* The child keeps the parent's table memory but not its ids: a new
   * session starts numbering again, and must re-emit every stack. */
  pthread_mutex_init(&intern_mutex, NULL);
  uvt__fpknown_forget();
  uvt__fp_bottoms_forget();
  __atomic_add_fetch(&uvt__stack_gen, 1, __ATOMIC_RELEASE);
  for (i = 0; i < nslots; i++) free(slots[i].pcs);
  free(slots);
  slots = NULL;
  nslots = used = 0;
  next_stack_id = 0;
}

/* ---- module map ---------------------------------------------------------- */

static int module_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  rec_t *r;
  uint64_t lo = UINT64_MAX, hi = 0;
  char exe[4096];
  const char *path = info->dlpi_name;
  int i;
  (void)size, (void)arg;
  for (i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uint64_t a, b;
    if (ph->p_type != PT_LOAD) continue;
    a = info->dlpi_addr + ph->p_vaddr;
    b = a + ph->p_memsz;
    if (a < lo) lo = a;
    if (b > hi) hi = b;
  }
  if (hi == 0) return 0;
  if (path == NULL || path[0] == '\0') {
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) return 0;
    exe[n] = '\0';
    path = exe;
  }
  if (strncmp(path, "linux-vdso", 10) == 0) return 0;
  r = uvt__rec_new(REC_MODULE);
  if (r == NULL) return 0;
  r->path = strdup(path);
  r->build_id = uvt__build_id_hex(info);
  r->base = info->dlpi_addr;
  r->lo = lo;
  r->hi = hi;
  uvt__rec_push(r);
  return 0;
}

void uvt__modules_record(void) { dl_iterate_phdr(module_cb, NULL); }

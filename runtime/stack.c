/*
 * Task stacks; the design is in stack.h.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; older headers lack it */
#endif

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
/* Pooled stacks that may still get a mapping of their own. */
static atomic_long guard_budget = -1;

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

/* A quarter of vm.max_map_count, two mappings per mprotect-guarded stack:
 * leaves three quarters of the mappings to malloc, libraries and the
 * program. */
static void guard_budget_init(void) {
  long expected = -1, cap = 65530;
  FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
  if (f != NULL) {
    if (fscanf(f, "%ld", &cap) != 1) cap = 65530;
    fclose(f);
  }
  atomic_compare_exchange_strong(&guard_budget, &expected, cap / 4 / 2);
}

/* Guard regions (MADV_GUARD_INSTALL) work here: found out once, on a
 * scratch mapping, when the first pool is made.  UVTASK_NO_GUARD_REGIONS=1
 * turns them off (to test the canaries, or as a way out should a kernel's
 * guard regions misbehave). */
static bool guard_regions;
static pthread_once_t guard_regions_once = PTHREAD_ONCE_INIT;

static void guard_regions_probe(void) {
  size_t page = uvt__page_size();
  const char *off = secure_getenv("UVTASK_NO_GUARD_REGIONS");
  void *p;
  if (off != NULL && *off != '\0' && strcmp(off, "0") != 0) return;
  p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return;
  guard_regions = madvise(p, page, MADV_GUARD_INSTALL) == 0;
  munmap(p, 2 * page);
}

static bool guard_regions_usable(void) {
  pthread_once(&guard_regions_once, guard_regions_probe);
  return guard_regions;
}

/* Make [addr, addr + len) a guard region; false if that failed. */
static bool guard_install(void *addr, size_t len) {
  return guard_regions_usable() && madvise(addr, len, MADV_GUARD_INSTALL) == 0;
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

/* A stack in a mapping of its own, always with a page below it for a
 * guard: a guard region if the kernel has them, else a PROT_NONE page if
 * `budget` (a unit of the budget already taken, held until the unmap:
 * pooled stacks in mappings of their own are bounded by it either way),
 * else nothing (that page is then never touched: address space only). */
static int stack_map(size_t size, bool budget, uvt__stack_t *out) {
  size_t page = uvt__page_size();
  size_t len = size + page;
  bool guard;
  char *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    if (budget) atomic_fetch_add(&guard_budget, 1);
    return UVT_ENOMEM;
  }
  guard = guard_install(base, page);
  if (!guard && budget) {
    if (mprotect(base, page, PROT_NONE) != 0) {
      munmap(base, len);
      atomic_fetch_add(&guard_budget, 1);
      return UVT_ENOMEM;
    }
    guard = true;
  }
  out->lo = base + page;
  out->size = size;
  out->guarded = guard;
  out->budget = budget;
  out->slab = 0;
  out->from = NULL;
  stack_register(out);
  return 0;
}

static void stack_unmap(uvt__stack_t *st) {
  size_t page = uvt__page_size();
  stack_deregister(st);
  munmap((char *)st->lo - page, st->size + page);
  if (st->budget) atomic_fetch_add(&guard_budget, 1);
}

/* Where the kernel has guard regions, each slab stack has one page of
 * guard below it (p->guard_len), installed when it is carved. */
static int stack_from_slab(uvt__stack_pool_t *p, uvt__stack_t *out) {
  size_t slot = p->guard_len + p->default_size;
  if (p->slab_cursor == NULL || p->slab_cursor >= p->slab_end) {
    uvt__slab_t *slab = malloc(sizeof(*slab));
    size_t len = slot * SLAB_STACKS;
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
  out->lo = p->slab_cursor + p->guard_len;
  out->size = p->default_size;
  out->guarded = p->guard_len > 0 && guard_install(p->slab_cursor, p->guard_len);
  out->budget = 0;
  out->slab = 1;
  out->from = p->slabs;
  p->slab_cursor += slot;
  stack_register(out);
  return 0;
}

void uvt__stack_pool_init(uvt__stack_pool_t *p) {
  memset(p, 0, sizeof(*p));
  p->default_size = uvt__stack_default_size();
  p->guard_len = guard_regions_usable() ? uvt__page_size() : 0;
  uvt__stack_thread_init();
}

/* uvt__stack_take past its common case: another size, or an empty pool. */
static __attribute__((noinline)) int
stack_take_slow(uvt__stack_pool_t *p, size_t size, uvt__stack_t *out) {
  int err;
  if (size == 0) size = uvt__stack_default_size(); /* already rounded */
  else size = uvt__stack_round(size);
  if (size == 0) return UVT_EINVAL; /* over UVT__STACK_MAX */
  if (size != p->default_size)
    return stack_map(size, !guard_regions_usable() && guard_budget_take(),
                     out) == 0
               ? (p->out++, 0)
               : UVT_ENOMEM;
  if (p->nfree > 0) {
    *out = p->free[--p->nfree];
    if (out->from != NULL) out->from->nfree--;
    UNPOISON(out);
    p->out++;
    return 0;
  }
  /* Mappings of their own while the budget lasts; then slabs, which cost
   * one mapping per 64 stacks (guarded too where the kernel has guard
   * regions, else canaried). */
  if (guard_budget_take()) {
    err = stack_map(size, true, out);
    if (err != 0) err = stack_from_slab(p, out);
  } else {
    err = stack_from_slab(p, out);
  }
  if (err == 0) p->out++;
  return err;
}

/* The common cases of take and give make no call (the slow paths are
 * tail calls), so that the scheduler's callers save no registers for
 * them: a spawned task's start and end are on every spawn's path. */
int uvt__stack_take(uvt__stack_pool_t *p, size_t size, uvt__stack_t *out) {
  if (UVT__LIKELY(size == 0 && p->nfree > 0 &&
                  atomic_load_explicit(&default_size, memory_order_relaxed) ==
                      p->default_size)) {
    *out = p->free[--p->nfree];
    if (out->from != NULL) out->from->nfree--;
    UNPOISON(out);
    p->out++;
    return 0;
  }
  return stack_take_slow(p, size, out);
}

/* uvt__stack_give past its common case (p->out already counted down). */
static __attribute__((noinline)) void
stack_give_slow(uvt__stack_pool_t *p, uvt__stack_t *st) {
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

void uvt__stack_give(uvt__stack_pool_t *p, uvt__stack_t *st) {
  p->out--;
  /* The common case: a pooled stack onto a free list with room, not the
   * last of its slab to come back. */
  if (UVT__LIKELY(st->size == p->default_size && p->nfree < p->cap &&
                  (p->nfree < UVT__POOL_KEEP || st->slab) &&
                  (st->from == NULL || st->from->nfree + 1 < SLAB_STACKS))) {
    POISON(st);
    p->free[p->nfree++] = *st;
    if (st->from != NULL) st->from->nfree++;
    return;
  }
  stack_give_slow(p, st);
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

/* Read at every switch, wherever the stack pointer is: a frame bigger than
 * the stack may have come and gone since the last one.  Reading an
 * untouched canary maps the shared zero page, which on Linux 6.18 adds
 * nothing to RSS (100,000 suspended tasks: 439 MiB either way). */
bool uvt__stack_canary_intact(const uvt__stack_t *st) {
  const uint64_t *w = st->lo;
  uint64_t acc = 0;
  size_t i;
  for (i = 0; i < UVT__CANARY_BYTES / sizeof(uint64_t); i++) acc |= w[i];
  return acc == 0;
}

/* ---- naming the task that overflowed --------------------------------------- */

/* Appends for a line built without malloc or stdio (a signal handler's):
 * control characters become '?', so a task name cannot forge a line. */
typedef struct {
  char buf[768];
  size_t len;
} line_t;

static void put_str(line_t *l, const char *s) {
  for (; s != NULL && *s != '\0' && l->len < sizeof(l->buf) - 1; s++)
    l->buf[l->len++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
}

static void put_num(line_t *l, unsigned long long n) {
  char digits[24];
  size_t i = sizeof(digits);
  digits[--i] = '\0';
  do digits[--i] = (char)('0' + n % 10);
  while ((n /= 10) != 0 && i > 0);
  put_str(l, digits + i);
}

/* As uvt__panic writes it: the signal handler cannot call it. */
#define LINE_PREFIX "uvtask: fatal: "

/* The line that names the task that overran its stack. */
static void overflow_line(line_t *l, const uvt_task_t *t) {
  l->len = 0;
  put_str(l, LINE_PREFIX "stack overflow in task '");
  put_str(l, t->obj.name);
  put_str(l, "' (created at ");
  put_str(l, t->obj.file);
  put_str(l, ":");
  put_num(l, (unsigned long long)(t->obj.line > 0 ? t->obj.line : 0));
  put_str(l, "): its ");
  put_num(l, t->stack.size);
  put_str(l, "-byte stack was overrun; give it more with uvt_spawn_stack() "
             "or uvt_set_default_stack_size()");
  l->buf[l->len++] = '\n';
}

/* The task whose overrun a canary caught, for crash handlers that run in
 * the abort that follows (uvt__stack_overflow_id). */
static uint64_t canary_overflow_id;

uint64_t uvt__stack_overflow_id(const void *si, const void *uctx) {
  uvt_task_t *t = uvt__stack_overflowed(si, uctx);
  if (t != NULL) return t->obj.id;
  return __atomic_load_n(&canary_overflow_id, __ATOMIC_ACQUIRE);
}

void uvt__stack_overflow_abort(const uvt_task_t *t) {
  line_t l;
  __atomic_store_n(&canary_overflow_id, t->obj.id, __ATOMIC_RELEASE);
  overflow_line(&l, t);
  l.buf[l.len - 1] = '\0'; /* the newline: uvt__panic adds its own */
  uvt__panic("%s", l.buf + strlen(LINE_PREFIX));
}

/* ---- SIGSEGV: a fault in a guard page ----------------------------------------- */

#define ALTSTACK_SIZE (64 * 1024)
/* A stack pointer this close above the bottom of the stack, at a fault,
 * is an overflow too: a push or call faults before it moves below. */
#define SP_SLACK 256

static uintptr_t context_sp(const void *uctx) {
  const ucontext_t *uc = uctx;
  if (uc == NULL) return 0;
#if defined(__x86_64__)
  return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
  return (uintptr_t)uc->uc_mcontext.sp;
#else
  return 0;
#endif
}

uvt_task_t *uvt__stack_overflowed(const void *si_, const void *uctx) {
  const siginfo_t *si = si_;
  uvt_task_t *t = uvt__task_current();
  uintptr_t lo, sp;
  if (t == NULL || t->stack.lo == NULL) return NULL;
  lo = (uintptr_t)t->stack.lo;
  /* si_addr is the faulting address only for a fault the kernel raised
   * (si_code > 0), not for a SIGSEGV sent again by another handler. */
  if (si != NULL && si->si_code > 0 && t->stack.guarded) {
    uintptr_t addr = (uintptr_t)si->si_addr;
    if (addr < lo && addr >= lo - uvt__page_size()) return t;
  }
  sp = context_sp(uctx);
  if (sp != 0 && sp < lo + SP_SLACK && sp + t->stack.size > lo) return t;
  return NULL;
}

static void on_segv(int sig, siginfo_t *si, void *uctx) {
  uvt_task_t *t = uvt__stack_overflowed(si, uctx);
  struct sigaction dfl;
  int saved = errno;
  if (t != NULL) {
    line_t l;
    overflow_line(&l, t);
    if (write(STDERR_FILENO, l.buf, l.len) < 0) {
      /* nothing more to say it with */
    }
  }
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  /* A fault happens again when the faulting access is retried on return,
   * now with the default action (a core dump of the real fault); a
   * SIGSEGV that was sent must be sent again. */
  if (si == NULL || si->si_code <= 0) raise(sig);
  errno = saved;
}

/* At load, before the program's main and before the debug tracer's own
 * crash handler (which then passes the signal on to this one): only if
 * SIGSEGV is at its default action; a handler the program installs later
 * replaces this one. */
__attribute__((constructor(200))) static void segv_install(void) {
  struct sigaction old, sa;
  if (sigaction(SIGSEGV, NULL, &old) != 0) return;
  if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) return;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, NULL);
}

static pthread_key_t altstack_key;
static bool altstack_key_ok;
static pthread_once_t altstack_once = PTHREAD_ONCE_INIT;
static _Thread_local bool thread_ready;

static void altstack_free(void *mem) {
  stack_t ss;
  if (sigaltstack(NULL, &ss) == 0 && ss.ss_sp == mem &&
      !(ss.ss_flags & SS_ONSTACK)) {
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
  }
  munmap(mem, ALTSTACK_SIZE);
}

static void altstack_key_init(void) {
  altstack_key_ok = pthread_key_create(&altstack_key, altstack_free) == 0;
}

/* A handler needs a stack to run on, and an overflow leaves none: give
 * this thread an alternate signal stack unless it has one (a sanitizer's,
 * the tracer's, the program's). */
void uvt__stack_thread_init(void) {
  stack_t ss, cur;
  void *mem;
  if (thread_ready) return;
  thread_ready = true;
  (void)uvt__page_size();
  if (sigaltstack(NULL, &cur) != 0 || !(cur.ss_flags & SS_DISABLE)) return;
  pthread_once(&altstack_once, altstack_key_init);
  if (!altstack_key_ok) return;
  mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;
  ss.ss_sp = mem;
  ss.ss_size = ALTSTACK_SIZE;
  ss.ss_flags = 0;
  /* The key first: the destructor frees the stack at the thread's exit. */
  if (pthread_setspecific(altstack_key, mem) != 0) {
    munmap(mem, ALTSTACK_SIZE);
  } else if (sigaltstack(&ss, NULL) != 0) {
    pthread_setspecific(altstack_key, NULL);
    munmap(mem, ALTSTACK_SIZE);
  }
}

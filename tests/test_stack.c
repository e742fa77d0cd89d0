/*
 * Task stacks: a big stack on request, the default size, sizes too big to
 * be stacks, reuse across many sequential tasks, 100,000 tasks suspended
 * at once (past the budget of stacks with mappings of their own, so on
 * slab stacks), and overflow: a guarded stack faults (SIGSEGV), an
 * unguarded one is caught by its canary when the task switches away
 * (SIGABRT, "stack overflow"), and either way one line names the task
 * that overflowed (tests/progs/stack_overflow.c, run as a process of its
 * own since it dies).
 *
 * Stack sizes are read from /proc/self/maps: a guarded stack is a mapping
 * of its own, so the mapping holding a task's local is at least the size
 * the task was given.  Criterion runs each test in its own process, so the
 * tests that end in a signal, and the guard budget they exhaust, touch no
 * other test.
 *
 * Checks inside task bodies use cr_expect or record into a struct that is
 * checked with cr_assert after uvt_run returns.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "source_line.h"
#include "uvtask.h"

#if defined(__SANITIZE_ADDRESS__)
/* Let the overflow tests die of the raw signal (ASan would turn a SIGSEGV
 * into exit(1)), and keep locals on the real stack (no fake stacks), so
 * the deep recursions really use the task's stack. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  return "handle_segv=0:detect_stack_use_after_return=0";
}
#endif

#define KEEP_FRAME __attribute__((noinline, noclone))

/* ---- helpers ------------------------------------------------------------------ */

/* The size of the mapping that holds `addr`, from /proc/self/maps. */
static size_t mapping_size(const void *addr) {
  FILE *f = fopen("/proc/self/maps", "re");
  char line[512];
  size_t size = 0;
  uintptr_t a = (uintptr_t)addr;
  if (f == NULL) return 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi) {
      size = hi - lo;
      break;
    }
  }
  fclose(f);
  return size;
}

static size_t count_mappings(void) {
  FILE *f = fopen("/proc/self/maps", "re");
  char line[512];
  size_t n = 0;
  if (f == NULL) return 0;
  while (fgets(line, sizeof line, f) != NULL) n++;
  fclose(f);
  return n;
}

/* VmRSS in KiB, or -1. */
static long vm_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "re");
  char line[256];
  long kib = -1;
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

/* Recurse until a local array lies `want` bytes or more below `top`,
 * writing every byte of each frame's array on the way; returns the lowest
 * array address reached (0 if an array was found changed on the way
 * back). */
static KEEP_FRAME uintptr_t use_stack(uintptr_t top, size_t want, int depth) {
  volatile char buf[8000];
  uintptr_t deepest;
  memset((char *)buf, depth & 0x7f, sizeof buf);
  if (top - (uintptr_t)buf < want)
    deepest = use_stack(top, want, depth + 1);
  else
    deepest = (uintptr_t)buf;
  /* Read the array back after the call: no tail call, no dead store. */
  if (buf[depth % sizeof buf] != (char)(depth & 0x7f)) deepest = 0;
  return deepest;
}

/* ---- a big stack on request ------------------------------------------------------ */

struct big {
  size_t want;
  uintptr_t top, deepest;
  size_t mapping;
};

static KEEP_FRAME int big_user(void *arg) {
  struct big *b = arg;
  char here;
  b->top = (uintptr_t)&here;
  b->mapping = mapping_size(&here);
  b->deepest = use_stack(b->top, b->want, 1);
  return 0;
}

static int big_main(void *arg) {
  uvt_task_t *t = uvt_spawn_stack(big_user, arg, 1 << 20);
  cr_expect_not_null(t);
  cr_expect_eq(uvt_await(t), 0);
  return 0;
}

Test(stack, spawn_stack_gives_a_task_a_megabyte) {
  struct big b;
  memset(&b, 0, sizeof b);
  b.want = 800 * 1000;
  cr_assert_eq(uvt_run(NULL, big_main, &b), 0);
  cr_assert_neq(b.deepest, 0, "the local arrays were not intact on the way back");
  cr_assert_geq(b.top - b.deepest, b.want, "used only %zu bytes",
                (size_t)(b.top - b.deepest));
  cr_assert_geq(b.mapping, (size_t)1 << 20, "the task's stack is %zu bytes",
                b.mapping);
}

/* ---- the default size -------------------------------------------------------------- */

Test(stack, set_default_stack_size_returns_the_previous_one) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t orig = uvt_set_default_stack_size(0);
  cr_assert_geq(orig, 16 * 1024);
  cr_assert_eq(uvt_set_default_stack_size(0), orig, "0 only queries");
  cr_assert_eq(uvt_set_default_stack_size(300000), orig);
  cr_assert_eq(uvt_set_default_stack_size(0), (300000 + page - 1) / page * page,
               "not rounded up to pages");
  uvt_set_default_stack_size(1);
  cr_assert_eq(uvt_set_default_stack_size(0), 16 * 1024, "not at least 16 KiB");
  uvt_set_default_stack_size(orig);
  cr_assert_eq(uvt_set_default_stack_size(0), orig);
}

struct deflt {
  size_t mapping;
  uintptr_t top, deepest;
  size_t want;
};

static KEEP_FRAME int default_user(void *arg) {
  struct deflt *d = arg;
  char here;
  d->top = (uintptr_t)&here;
  d->mapping = mapping_size(&here);
  d->deepest = use_stack(d->top, d->want, 1);
  return 0;
}

static int default_main(void *arg) {
  uvt_task_t *t = uvt_spawn(default_user, arg);
  cr_expect_eq(uvt_await(t), 0);
  return 0;
}

Test(stack, a_new_default_applies_to_tasks_spawned_later) {
  struct deflt d;
  memset(&d, 0, sizeof d);
  d.want = 1500 * 1000;
  uvt_set_default_stack_size(2 << 20);
  cr_assert_eq(uvt_run(NULL, default_main, &d), 0);
  cr_assert_geq(d.mapping, (size_t)2 << 20, "the task's stack is %zu bytes",
                d.mapping);
  cr_assert_neq(d.deepest, 0);
  cr_assert_geq(d.top - d.deepest, d.want);
}

/* The header says the default is for new tasks: one spawned after the
 * change, inside a uvt_run already going, gets the new size (a mapping of
 * its own, since the pool keeps the size it was made with). */
static int change_inside_main(void *arg) {
  struct deflt *d = arg;
  size_t prev = uvt_set_default_stack_size(2 << 20);
  uvt_task_t *t = uvt_spawn(default_user, d);
  cr_expect_eq(uvt_await(t), 0);
  uvt_set_default_stack_size(prev);
  return 0;
}

Test(stack, a_new_default_set_inside_uvt_run_applies_to_tasks_spawned_later) {
  struct deflt d;
  memset(&d, 0, sizeof d);
  d.want = 0; /* only read the size: a deep recursion would overflow */
  cr_assert_eq(uvt_run(NULL, change_inside_main, &d), 0);
  cr_assert_geq(d.mapping, (size_t)2 << 20, "the task's stack is %zu bytes",
                d.mapping);
}

/* ---- sizes that are not stacks ----------------------------------------------------- */

/* Runs with stderr going to a temporary file; what was written is then
 * in `out`. */
struct captured {
  int fd, saved;
  char out[4096];
};

static void capture_start(struct captured *c) {
  char path[] = "/tmp/uvt_test_stack_XXXXXX";
  fflush(stderr);
  c->fd = mkstemp(path);
  cr_assert(c->fd >= 0);
  unlink(path);
  c->saved = dup(STDERR_FILENO);
  dup2(c->fd, STDERR_FILENO);
}

static void capture_end(struct captured *c) {
  ssize_t n;
  fflush(stderr);
  dup2(c->saved, STDERR_FILENO);
  close(c->saved);
  lseek(c->fd, 0, SEEK_SET);
  n = read(c->fd, c->out, sizeof c->out - 1);
  c->out[n > 0 ? n : 0] = '\0';
  close(c->fd);
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s != '\0'; s++) n += *s == '\n';
  return n;
}

struct huge {
  uvt_task_t *max, *over_max;
  int ran;
};

static int never_runs(void *arg) {
  ((struct huge *)arg)->ran++;
  return 0;
}

static int huge_main(void *arg) {
  struct huge *h = arg;
  h->max = uvt_spawn_stack(never_runs, h, SIZE_MAX);
  h->over_max = uvt_spawn_stack(never_runs, h, ((size_t)1 << 30) + 1);
  /* Let a wrongly made task run, as it would have. */
  cr_expect_eq(uvt_yield(), 0);
  if (h->max != NULL) uvt_detach(h->max);
  if (h->over_max != NULL) uvt_detach(h->over_max);
  return 0;
}

/* ---- what an await needs of the awaiting task's stack -------------------------- */

/* (Not under ASan: its redzones make every frame bigger than it is.) */
#if !defined(__SANITIZE_ADDRESS__)
/* The first address of the mapping that holds `addr`, or 0. */
static uintptr_t mapping_start(const void *addr) {
  FILE *f = fopen("/proc/self/maps", "re");
  char line[512];
  uintptr_t start = 0, a = (uintptr_t)addr;
  if (f == NULL) return 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi) {
      start = lo;
      break;
    }
  }
  fclose(f);
  return start;
}

/* An await parks, switches, starts the awaited task and frees it on the
 * awaiting task's stack: that must fit in a few KiB, or a task on the
 * smallest stack (16 KiB) cannot await once its own frames have used most
 * of it.  The stack's lowest address is its mapping's (a guarded stack:
 * the guard page below it is a mapping of its own).  A 6 KiB budget: uvt_await's frame alone took 8 KiB once (cold
 * report buffers inlined into it), and the guard page below the stack
 * turned the await into a SIGSEGV. */
#define AWAIT_ROOM 6144

struct lean {
  uintptr_t lo;
  size_t mapping;
  int child_status, status;
};

static int lean_child(void *arg) {
  (void)arg;
  return 7;
}

/* Use the stack down to AWAIT_ROOM bytes above its lowest address, then
 * await a task that has not run yet. */
static KEEP_FRAME int await_near_the_bottom(struct lean *l, uvt_task_t *child) {
  char here;
  size_t above = (uintptr_t)&here - l->lo;
  size_t take = above > AWAIT_ROOM + 512 ? above - AWAIT_ROOM : 1;
  volatile char pad[take];
  size_t i;
  int st;
  /* A loop, not memset: no first call through the PLT down here. */
  for (i = 0; i < take; i += 64) pad[i] = 1;
  pad[take - 1] = 1;
  st = uvt_await(child);
  /* Read the array after the await: it stays live across it. */
  return pad[take - 1] == 1 ? st : -1;
}

static KEEP_FRAME int lean_user(void *arg) {
  struct lean *l = arg;
  char here;
  uvt_task_t *child;
  /* Once with room to spare: the first call of each libc function through
   * the PLT runs the dynamic linker's resolver, which saves the vector
   * registers on the stack (several KiB), once per process. */
  if (uvt_await(uvt_spawn(lean_child, NULL)) != 7) return -1;
  child = uvt_spawn(lean_child, NULL);
  l->lo = mapping_start(&here);
  l->mapping = mapping_size(&here);
  if (child == NULL || l->lo == 0) return -1;
  l->child_status = await_near_the_bottom(l, child);
  return 0;
}

static int lean_main(void *arg) {
  struct lean *l = arg;
  uvt_task_t *t = uvt_spawn_stack(lean_user, l, 16384);
  if (t == NULL) return -1;
  l->status = uvt_await(t);
  return 0;
}

Test(stack, an_await_fits_in_the_last_6_kib_of_a_16_kib_stack) {
  struct lean l = {0};
  cr_assert_eq(uvt_run(NULL, lean_main, &l), 0);
  /* Guarded: the stack starts its mapping (which may go on above it). */
  cr_assert_geq(l.mapping, 16384);
  cr_assert_eq(l.status, 0);
  cr_assert_eq(l.child_status, 7);
}
#endif

Test(stack, a_stack_size_over_the_maximum_spawns_nothing_and_says_why) {
  struct huge h;
  struct captured c;
  memset(&h, 0, sizeof h);
  capture_start(&c);
  int st = uvt_run(NULL, huge_main, &h);
  capture_end(&c);
  cr_assert_eq(st, 0);
  cr_assert_null(h.max, "uvt_spawn_stack(SIZE_MAX) made a task");
  cr_assert_null(h.over_max, "uvt_spawn_stack(1 GiB + 1) made a task");
  cr_assert_eq(h.ran, 0);
  cr_assert_eq(count_lines(c.out), 2, "stderr: %s", c.out);
  cr_assert_not_null(strstr(c.out, "uvt_spawn_stack(never_runs): stack size "
                                   "18446744073709551615 is more than the "
                                   "maximum (1073741824 bytes)"),
                     "stderr: %s", c.out);
}

Test(stack, a_default_stack_size_over_the_maximum_is_refused) {
  struct captured c;
  size_t orig = uvt_set_default_stack_size(0);
  capture_start(&c);
  size_t r1 = uvt_set_default_stack_size(SIZE_MAX - 1);
  size_t r2 = uvt_set_default_stack_size(SIZE_MAX);
  size_t r3 = uvt_set_default_stack_size(((size_t)1 << 30) + 1);
  capture_end(&c);
  cr_assert_eq(r1, 0, "SIZE_MAX - 1 accepted (returned %zu)", r1);
  cr_assert_eq(r2, 0);
  cr_assert_eq(r3, 0);
  cr_assert_eq(uvt_set_default_stack_size(0), orig,
               "the default changed to %zu", uvt_set_default_stack_size(0));
  cr_assert_eq(count_lines(c.out), 3, "stderr: %s", c.out);
  cr_assert_not_null(strstr(c.out, "uvt_set_default_stack_size(18446744073709551614): "
                                   "more than the maximum stack size"),
                     "stderr: %s", c.out);
  /* The largest size allowed is taken as it is. */
  cr_assert_eq(uvt_set_default_stack_size((size_t)1 << 30), orig);
  cr_assert_eq(uvt_set_default_stack_size(orig), (size_t)1 << 30);
}

/* ---- reuse ----------------------------------------------------------------------- */

#define SEQUENTIAL 10000
#define MAX_DISTINCT 8

struct reuse {
  uintptr_t stacks[MAX_DISTINCT];
  int ndistinct;
  int overflowed;
  int finished;
  size_t maps_before, maps_after;
};

static int note_stack(void *arg) {
  struct reuse *r = arg;
  char here;
  uintptr_t top = (uintptr_t)&here >> 12;
  int i;
  for (i = 0; i < r->ndistinct; i++)
    if (r->stacks[i] == top) break;
  if (i == r->ndistinct) {
    if (r->ndistinct < MAX_DISTINCT) r->stacks[r->ndistinct++] = top;
    else r->overflowed++;
  }
  r->finished++;
  return 0;
}

static int reuse_main(void *arg) {
  struct reuse *r = arg;
  for (int i = 0; i < SEQUENTIAL; i++) {
    uvt_task_t *t = uvt_spawn(note_stack, r);
    cr_expect_eq(uvt_await(t), 0); /* gives the handle up */
    if (i == 100) r->maps_before = count_mappings();
  }
  r->maps_after = count_mappings();
  return 0;
}

Test(stack, sequential_tasks_reuse_their_stacks) {
  struct reuse r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, reuse_main, &r), 0);
  cr_assert_eq(r.finished, SEQUENTIAL);
  cr_assert_eq(r.overflowed, 0, "more than %d different stacks for one task at "
               "a time", MAX_DISTINCT);
  cr_assert_leq(r.ndistinct, 2, "%d different stacks", r.ndistinct);
  cr_assert_leq(r.maps_after, r.maps_before + 4, "mappings grew from %zu to %zu",
                r.maps_before, r.maps_after);
}

/* ---- 100,000 suspended tasks ------------------------------------------------------- */

#define MANY 100000

struct many {
  uvt_event_t ev;
  uvt_future_t *f;
  int started, ok, bad;
  long rss_kib;
};

/* Parks in one of three ways by its index; returns 0 if woken as expected. */
static int parked(void *arg) {
  struct many *m = arg;
  int kind = m->started++ % 3;
  int st;
  switch (kind) {
  case 0: st = uvt_event_wait(&m->ev); break;
  case 1: st = uvt_await_future(m->f); break;
  default: st = uvt_sleep(24 * 3600 * 1000) == UVT_ECANCELED ? 0 : -1; break;
  }
  if (st == 0) m->ok++;
  else m->bad++;
  return st;
}

static int many_main(void *arg) {
  struct many *m = arg;
  uvt_task_t **t = calloc(MANY, sizeof *t);
  int spawned = 0;
  cr_expect_not_null(t);
  if (t == NULL) return UVT_ENOMEM;
  cr_expect_eq(uvt_event_init(&m->ev), 0);
  m->f = uvt_future_new();
  for (int i = 0; i < MANY; i++) {
    t[i] = uvt_spawn(parked, m);
    spawned += t[i] != NULL;
  }
  cr_expect_eq(spawned, MANY);
  while (m->started < spawned) cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_yield(), 0);
  m->rss_kib = vm_rss_kib();
  cr_expect_eq(m->ok + m->bad, 0, "a task returned before it was woken");
  /* Wake them: set the event and the future, cancel the sleepers. */
  uvt_event_set(&m->ev);
  cr_expect_eq(uvt_future_set_result(m->f, NULL), 0);
  for (int i = 2; i < MANY; i += 3) cr_expect_eq(uvt_cancel(t[i]), 1);
  cr_expect_eq(uvt_gather(t, (size_t)spawned), 0);
  for (int i = 0; i < MANY; i++) uvt_detach(t[i]);
  free(t);
  uvt_event_destroy(&m->ev);
  return 0;
}

Test(stack, a_hundred_thousand_suspended_tasks_all_complete) {
  struct many m;
  memset(&m, 0, sizeof m);
  cr_assert_eq(uvt_run(NULL, many_main, &m), 0);
  fprintf(stderr, "stack: %d suspended tasks: VmRSS %ld MiB\n", MANY,
          m.rss_kib / 1024);
  cr_assert_eq(m.started, MANY);
  cr_assert_eq(m.ok, MANY, "%d tasks woke wrongly", m.bad);
  cr_assert_gt(m.rss_kib, 0);
  cr_assert_lt(m.rss_kib, 2L * 1024 * 1024, "VmRSS %ld KiB", m.rss_kib);
}

/* ---- overflow --------------------------------------------------------------------- */

/* Recurses without end: on a guarded stack it faults in the guard page.
 * Frames are smaller than a page so the guard cannot be stepped over. */
static volatile int keep_recursing = 1;

static KEEP_FRAME int recurse_forever(int depth) {
  volatile char buf[512];
  int r = 0;
  memset((char *)buf, depth & 0x7f, sizeof buf);
  if (keep_recursing) r = recurse_forever(depth + 1);
  return r + buf[depth % sizeof buf];
}

static int overflow_forever(void *arg) {
  (void)arg;
  return recurse_forever(0);
}

static int guarded_main(void *arg) {
  (void)arg;
  /* The second stack of the process: well within the guard budget. */
  uvt_task_t *t = uvt_spawn(overflow_forever, NULL);
  return uvt_await(t);
}

Test(stack, overflow_of_a_guarded_stack_faults, .signal = SIGSEGV) {
  uvt_run(NULL, guarded_main, NULL);
}

/* The canary path: its message is checked from a SIGABRT handler that
 * reads what was written to stderr. */
static int stderr_copy = -1, saved_stderr = -1;

static void on_abort(int sig) {
  static char buf[8192];
  ssize_t n;
  (void)sig;
  lseek(stderr_copy, 0, SEEK_SET);
  n = read(stderr_copy, buf, sizeof buf - 1);
  if (n < 0) n = 0;
  buf[n] = '\0';
  if (saved_stderr >= 0) {
    ssize_t w = write(saved_stderr, buf, (size_t)n);
    (void)w;
  }
  if (strstr(buf, "stack overflow") == NULL) _exit(42); /* fails the test */
  signal(SIGABRT, SIG_DFL); /* abort() then ends the process with SIGABRT */
}

struct canary {
  uvt_event_t ev;
  size_t stack_size;
  int parked;
  int after_overflow;
};

static int park_on_event(void *arg) {
  struct canary *c = arg;
  c->parked++;
  return uvt_event_wait(&c->ev);
}

/* As use_stack, but invisible to ASan: under ASan the writes past the
 * stack would be reported by ASan itself (into the neighbouring stack's
 * poisoned frames), and the canary path would go untested. */
#if defined(__SANITIZE_ADDRESS__)
#define NO_ASAN __attribute__((no_sanitize_address))
#else
#define NO_ASAN
#endif

static NO_ASAN KEEP_FRAME uintptr_t overrun_stack(uintptr_t top, size_t want,
                                                 int depth) {
  volatile char buf[2000];
  uintptr_t deepest;
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(depth | 1);
  if (top - (uintptr_t)buf < want)
    deepest = overrun_stack(top, want, depth + 1);
  else
    deepest = (uintptr_t)buf;
  if (buf[depth % sizeof buf] != (char)(depth | 1)) deepest = 0;
  return deepest;
}

/* Overruns its stack by a few KiB, returns from the recursion, and
 * switches away: the check on the way out must stop the process. */
static KEEP_FRAME int overrun(void *arg) {
  struct canary *c = arg;
  char here;
  uintptr_t top = (uintptr_t)&here;
  overrun_stack(top, c->stack_size + 4096, 1);
  (void)uvt_yield();
  c->after_overflow = 1;
  return 0;
}

static int canary_main(void *arg) {
  struct canary *c = arg;
  FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
  long cap = 65530, budget;
  uvt_task_t *t;
  if (f != NULL) {
    if (fscanf(f, "%ld", &cap) != 1) cap = 65530;
    fclose(f);
  }
  /* The runtime guards cap / 8 stacks; park a few more tasks than that,
   * so that the next stack is unguarded and not the first of its slab. */
  budget = cap / 8 + 4;
  uvt_event_init(&c->ev);
  for (long i = 0; i < budget; i++) uvt_detach(uvt_spawn(park_on_event, c));
  while (c->parked < budget) cr_expect_eq(uvt_yield(), 0);
  t = uvt_spawn(overrun, c);
  (void)uvt_await(t);
  return 0;
}

Test(stack, overflow_of_an_unguarded_stack_is_caught_by_its_canary,
     .signal = SIGABRT) {
  static struct canary c;
  char path[] = "/tmp/uvt_test_stack_XXXXXX";
  /* Slab stacks have guard regions where the kernel allows: turn them
   * off, as on a kernel before 6.13. */
  setenv("UVTASK_NO_GUARD_REGIONS", "1", 1);
  memset(&c, 0, sizeof c);
  c.stack_size = uvt_set_default_stack_size(0);
  stderr_copy = mkstemp(path);
  cr_assert(stderr_copy >= 0);
  unlink(path);
  saved_stderr = dup(STDERR_FILENO);
  dup2(stderr_copy, STDERR_FILENO);
  signal(SIGABRT, on_abort);
  uvt_run(NULL, canary_main, &c);
  /* Not reached if the overflow was caught. */
  dup2(saved_stderr, STDERR_FILENO);
  cr_assert_fail("the overflow went unnoticed (after_overflow = %d)",
                 c.after_overflow);
}

/* ---- the overflowing task is named ---------------------------------------------- */

#define OVERFLOW_PROG UVT_BUILD_DIR "/tests/stack_overflow"
#define OVERFLOW_SRC UVT_SOURCE_DIR "/tests/progs/stack_overflow.c"

extern char **environ;

/* Run stack_overflow SCENARIO with `extra` added to the environment (and
 * no inherited UVTASK_*, ASYNCIODEBUG* or LD_* variables); its stdout and
 * stderr go to `out`.  Returns its wait status. */
static int run_overflow(const char *scenario, char *const *extra, char *out,
                        size_t size) {
  char *argv[] = {(char *)OVERFLOW_PROG, (char *)scenario, NULL};
  char *envp[128];
  char path[] = "/tmp/uvt_test_stack_XXXXXX";
  posix_spawn_file_actions_t fa;
  int n = 0, fd, status;
  ssize_t got;
  pid_t pid;
  for (int i = 0; extra != NULL && extra[i] != NULL; i++) envp[n++] = extra[i];
  for (int i = 0; environ[i] != NULL && n < 126; i++)
    if (strncmp(environ[i], "UVTASK_", 7) != 0 &&
        strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "LD_", 3) != 0 &&
        strncmp(environ[i], "BXFI_", 5) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  fd = mkstemp(path);
  cr_assert(fd >= 0);
  unlink(path);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd, 1);
  posix_spawn_file_actions_adddup2(&fa, fd, 2);
  cr_assert_eq(posix_spawn(&pid, OVERFLOW_PROG, &fa, NULL, argv, envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  lseek(fd, 0, SEEK_SET);
  got = read(fd, out, size - 1);
  out[got > 0 ? got : 0] = '\0';
  close(fd);
  return status;
}

/* The line the runtime writes for task `name` spawned at `marker`. */
static void expect_named(const char *out, const char *name, const char *marker) {
  char want[512];
  snprintf(want, sizeof want,
           "uvtask: fatal: stack overflow in task '%s' (created at %s:%d): "
           "its 131072-byte stack was overrun",
           name, OVERFLOW_SRC, source_line(OVERFLOW_SRC, marker));
  cr_assert_not_null(strstr(out, want), "wanted: %s\ngot: %s", want, out);
  cr_assert_null(strstr(out, "survived"), "%s", out);
  cr_assert_null(strstr(out, "in task 'neighbour'"), "%s", out);
}

static void expect_signal(int status, int sig, const char *out) {
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == sig,
            "wanted death by signal %d, got status 0x%x; output: %s", sig,
            status, out);
}

TestSuite(overflow, .timeout = 120);

/* A guard page hit: the SIGSEGV handler names the task (by the name it
 * has now), then the process dies of the SIGSEGV. */
Test(overflow, recursion_on_a_guarded_stack_names_the_task) {
  static char out[16384];
  int status = run_overflow("recursion", NULL, out, sizeof out);
  expect_signal(status, SIGSEGV, out);
  expect_named(out, "runaway-7", "@runaway");
}

#ifndef UVT_TEST_NO_DEBUG_LIB
/* The same under the debug library, recording: its own crash handler
 * runs first (it records the crash), then passes the signal on. */
Test(overflow, recursion_names_the_task_under_the_recording_debug_library) {
  static char out[16384];
  char dir[] = "/tmp/uvt_test_stack_XXXXXX";
  char db[128], cmd[192];
  char *extra[4];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(db, sizeof db, "ASYNCIODEBUG=%s/trace.db", dir);
  extra[0] = db;
  extra[1] = "LD_LIBRARY_PATH=" UVT_BUILD_DIR "/debug";
  extra[2] = "ASYNCIODEBUG_LOG=0";
  extra[3] = NULL;
  int status = run_overflow("recursion", extra, out, sizeof out);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  (void)!system(cmd);
  expect_signal(status, SIGSEGV, out);
  expect_named(out, "runaway-7", "@runaway");
}
#endif

/* Whether this kernel has guard regions (Linux 6.13). */
static bool kernel_has_guard_regions(void) {
  long page = sysconf(_SC_PAGESIZE);
  void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  bool yes;
  cr_assert_neq(p, MAP_FAILED);
  yes = madvise(p, (size_t)page, 102 /* MADV_GUARD_INSTALL */) == 0;
  munmap(p, (size_t)page);
  return yes;
}

/* Past the budget of stacks with mappings of their own: slab stacks have
 * guard regions too (Linux 6.13 and later): the 200 KB frame is caught
 * as it crosses the guard (SIGSEGV), not when its neighbour next runs.
 * On an older kernel the canary catches it (the next test). */
Test(overflow, a_big_frame_on_a_slab_stack_names_its_task_not_the_neighbour) {
  static char out[16384];
  int status = run_overflow("big-frame", NULL, out, sizeof out);
  expect_signal(status, kernel_has_guard_regions() ? SIGSEGV : SIGABRT, out);
  expect_named(out, "big_frame", "@big-frame");
}

/* As on a kernel without guard regions: the canary and the stack pointer,
 * checked as the task switches away, before the trampled neighbour is
 * resumed. */
Test(overflow, a_big_frame_on_a_canaried_slab_stack_names_its_task_not_the_neighbour) {
  static char out[16384];
  char *extra[] = {"UVTASK_NO_GUARD_REGIONS=1", NULL};
  int status = run_overflow("big-frame", extra, out, sizeof out);
  expect_signal(status, SIGABRT, out);
  expect_named(out, "big_frame", "@big-frame");
}

/*
 * The context switch as an unwinder and a compiler see it: a stack walk
 * from inside a task ends cleanly at the entry trampoline (no bogus frame,
 * no walk into garbage), locals and callee-saved registers survive
 * thousands of switches between tasks, and each task keeps its own
 * floating-point rounding mode.
 *
 * Checks inside task bodies use cr_expect or record into a struct that is
 * checked with cr_assert after uvt_run returns.
 */
#define UNW_LOCAL_ONLY
#include <criterion/criterion.h>
#include <libunwind.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "uvtask.h"

#define MAX_FRAMES 64

struct walk {
  int nframes;
  int last_step;        /* what the final unw_step returned */
  char names[MAX_FRAMES][64];
  int named[MAX_FRAMES];
  int ran;
};

/* Keep the compiler from inlining or tail-calling the frames under test. */
#define KEEP_FRAME __attribute__((noinline, noclone))

static KEEP_FRAME void walk_here(struct walk *w) {
  unw_context_t ctx;
  unw_cursor_t cur;
  int st;
  w->ran = 1;
  if (unw_getcontext(&ctx) != 0 || unw_init_local(&cur, &ctx) != 0) {
    w->last_step = -1000;
    return;
  }
  do {
    unw_word_t off;
    int i = w->nframes++;
    w->named[i] =
        unw_get_proc_name(&cur, w->names[i], sizeof w->names[i], &off) == 0;
    if (!w->named[i]) w->names[i][0] = '\0';
    st = unw_step(&cur);
  } while (st > 0 && w->nframes < MAX_FRAMES);
  w->last_step = st;
  __asm__ volatile("" ::: "memory");
}

static KEEP_FRAME int level2(struct walk *w) {
  walk_here(w);
  __asm__ volatile("" ::: "memory");
  return w->nframes > 0 ? 0 : -1;
}

static KEEP_FRAME int level1(struct walk *w) {
  int st = level2(w);
  __asm__ volatile("" ::: "memory");
  return st + 0 * w->nframes;
}

static KEEP_FRAME int walking_task(void *arg) {
  int st = level1(arg);
  __asm__ volatile("" ::: "memory");
  return st;
}

/* The frame of function `name`; a local function may carry a suffix from
 * link-time optimisation or cloning ("task_entry.lto_priv.0"). */
static int index_of(const struct walk *w, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < w->nframes; i++)
    if (w->named[i] && strncmp(w->names[i], name, n) == 0 &&
        (w->names[i][n] == '\0' || w->names[i][n] == '.'))
      return i;
  return -1;
}

static int last_named(const struct walk *w) {
  for (int i = w->nframes - 1; i >= 0; i--)
    if (w->named[i]) return i;
  return -1;
}

static void print_walk(const char *what, const struct walk *w) {
  fprintf(stderr, "%s: %d frames, last unw_step %d:", what, w->nframes,
          w->last_step);
  for (int i = 0; i < w->nframes; i++)
    fprintf(stderr, " %s", w->named[i] ? w->names[i] : "?");
  fprintf(stderr, "\n");
}

static void check_walk(const struct walk *w) {
  int last, entry;
  cr_assert_eq(w->ran, 1);
  cr_assert_eq(w->last_step, 0,
               "the walk ended with unw_step() = %d, not a clean 0",
               w->last_step);
  cr_assert_lt(w->nframes, 20, "%d frames: walked past the task's stack",
               w->nframes);
  cr_assert_geq(index_of(w, "walk_here"), 0);
  cr_assert_gt(index_of(w, "level2"), index_of(w, "walk_here"));
  cr_assert_gt(index_of(w, "level1"), index_of(w, "level2"));
  cr_assert_gt(index_of(w, "walking_task"), index_of(w, "level1"));
  last = last_named(w);
#ifdef UVT_TEST_UCONTEXT
  /* Built with -DUVT_UCONTEXT=ON: the trampoline is the C function that
   * makecontext starts (not glibc's own, which must not be walked into). */
  entry = index_of(w, "ucontext_entry");
  cr_assert_eq(index_of(w, "task_entry"), w->nframes - 2,
               "task_entry is not just inside the trampoline");
#else
  entry = index_of(w, "uvt__ctx_entry");
#endif
  cr_assert(entry == last ||
                (last > 0 && index_of(w, "task_entry") == last - 1),
            "the outermost frame is %s, not the entry trampoline",
            last >= 0 ? w->names[last] : "(none)");
  cr_assert_eq(entry, w->nframes - 1, "frames past the trampoline");
}

/* ---- a walk from a spawned task and from main ------------------------------- */

struct walks {
  struct walk spawned, main;
};

static int walks_main(void *arg) {
  struct walks *r = arg;
  uvt_task_t *t = uvt_spawn(walking_task, &r->spawned);
  cr_expect_eq(uvt_await(t), 0);
  /* main is a task too, on a stack of its own. */
  cr_expect_eq(walking_task(&r->main), 0);
  return 0;
}

Test(context, a_stack_walk_in_a_task_ends_at_the_entry_trampoline) {
  struct walks r;
  memset(&r, 0, sizeof r);
  cr_assert_eq(uvt_run(NULL, walks_main, &r), 0);
  print_walk("spawned", &r.spawned);
  print_walk("main", &r.main);
  check_walk(&r.spawned);
  check_walk(&r.main);
}

/* After some switches the walk still ends cleanly (a resumed task's frames
 * were laid down by the switch, not by the fresh-context set-up). */
static KEEP_FRAME int walk_after_yields(void *arg) {
  for (int i = 0; i < 10; i++) cr_expect_eq(uvt_yield(), 0);
  int st;
  cr_expect_eq(uvt_sleep(1), 0);
  st = walking_task(arg);
  __asm__ volatile("" ::: "memory"); /* not a tail call */
  return st;
}

static int noise(void *arg) {
  (void)arg;
  for (int i = 0; i < 10; i++) cr_expect_eq(uvt_yield(), 0);
  return 0;
}

static int resumed_main(void *arg) {
  uvt_task_t *t[2];
  t[0] = uvt_spawn(walk_after_yields, arg);
  t[1] = uvt_spawn(noise, NULL);
  cr_expect_eq(uvt_gather(t, 2), 0);
  return 0;
}

Test(context, a_stack_walk_after_switches_still_ends_cleanly) {
  struct walk w;
  memset(&w, 0, sizeof w);
  cr_assert_eq(uvt_run(NULL, resumed_main, &w), 0);
  print_walk("resumed", &w);
  check_walk(&w);
  cr_assert_geq(index_of(&w, "walk_after_yields"), 0);
}

/* ---- locals survive switches ------------------------------------------------ */

#define ROUNDS 1000
#define NCRUNCH 4

struct crunch {
  int id;
  int64_t isum;
  double dsum;
  int64_t vsum;
  double vdsum;
  int yields_failed;
};

/* Many live values across every switch: some in callee-saved registers,
 * some spilled, some volatile (always in memory). */
static KEEP_FRAME int cruncher(void *arg) {
  struct crunch *c = arg;
  int64_t a = c->id, b = 3 * c->id + 1, d = 7, e = -5, f = c->id * 11;
  uint64_t g = 13;
  int64_t h = 17 + c->id;
  double x = 0.5 * c->id, y = 1.25, z = -2.0 + c->id, u = 3.75;
  volatile int64_t va = c->id;
  volatile double vx = 0.125 * c->id;
  for (int i = 0; i < ROUNDS; i++) {
    a += i;
    b ^= (int64_t)i << 3;
    d += a & 7;
    e -= b & 3;
    f += d * 2;
    g = g * 31 + i;
    h += (int64_t)(g & 15);
    x += 0.5;
    y *= 1.0001;
    z -= 0.25;
    u += x * 0.001;
    va += i;
    vx += 0.5;
    if (uvt_yield() != 0) c->yields_failed++;
  }
  c->isum = a + b + d + e + f + (int64_t)(g >> 1) + h;
  c->dsum = x + y + z + u;
  c->vsum = va;
  c->vdsum = vx;
  return 0;
}

/* The same computation without switches. */
static void crunch_reference(int id, struct crunch *c) {
  int64_t a = id, b = 3 * id + 1, d = 7, e = -5, f = id * 11;
  uint64_t g = 13;
  int64_t h = 17 + id;
  double x = 0.5 * id, y = 1.25, z = -2.0 + id, u = 3.75;
  int64_t va = id;
  double vx = 0.125 * id;
  for (int i = 0; i < ROUNDS; i++) {
    a += i;
    b ^= (int64_t)i << 3;
    d += a & 7;
    e -= b & 3;
    f += d * 2;
    g = g * 31 + i;
    h += (int64_t)(g & 15);
    x += 0.5;
    y *= 1.0001;
    z -= 0.25;
    u += x * 0.001;
    va += i;
    vx += 0.5;
  }
  c->isum = a + b + d + e + f + (int64_t)(g >> 1) + h;
  c->dsum = x + y + z + u;
  c->vsum = va;
  c->vdsum = vx;
}

static int crunch_main(void *arg) {
  struct crunch *c = arg;
  uvt_task_t *t[NCRUNCH];
  for (int i = 0; i < NCRUNCH; i++) t[i] = uvt_spawn(cruncher, &c[i]);
  cr_expect_eq(uvt_gather(t, NCRUNCH), 0);
  return 0;
}

Test(context, locals_and_registers_survive_a_thousand_switches) {
  struct crunch c[NCRUNCH];
  memset(c, 0, sizeof c);
  for (int i = 0; i < NCRUNCH; i++) c[i].id = i + 1;
  cr_assert_eq(uvt_run(NULL, crunch_main, c), 0);
  for (int i = 0; i < NCRUNCH; i++) {
    struct crunch ref;
    crunch_reference(c[i].id, &ref);
    cr_assert_eq(c[i].yields_failed, 0);
    cr_assert_eq(c[i].isum, ref.isum, "task %d: integer locals corrupted", i);
    cr_assert_eq(c[i].dsum, ref.dsum, "task %d: double locals corrupted", i);
    cr_assert_eq(c[i].vsum, ref.vsum, "task %d: volatile locals corrupted", i);
    cr_assert_eq(c[i].vdsum, ref.vdsum, "task %d: volatile doubles corrupted", i);
  }
}

/* ---- the rounding mode is per task ------------------------------------------- */

struct rounding {
  int a_after_yield;
  int b_sees;
  double a_third, b_third;
};

/* fesetround lives in libm, which the tests do not link: set and read the
 * SSE/x87 (x86_64) or FPCR (aarch64) rounding bits directly. */
enum { ROUND_NEAREST = 0, ROUND_UP = 1, ROUND_OTHER = 2 };

#if defined(__x86_64__)
static void set_round_up(void) {
  uint32_t mxcsr;
  uint16_t cw;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  mxcsr = (mxcsr & ~0x6000u) | 0x4000u; /* RC = 10: toward +inf */
  __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
  __asm__ volatile("fnstcw %0" : "=m"(cw));
  cw = (uint16_t)((cw & ~0x0c00u) | 0x0800u);
  __asm__ volatile("fldcw %0" : : "m"(cw));
}

static int get_round(void) {
  uint32_t mxcsr;
  uint16_t cw;
  unsigned sse, x87;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  __asm__ volatile("fnstcw %0" : "=m"(cw));
  sse = (mxcsr >> 13) & 3;
  x87 = (cw >> 10) & 3;
  if (sse != x87) return ROUND_OTHER;
  return sse == 0 ? ROUND_NEAREST : sse == 2 ? ROUND_UP : ROUND_OTHER;
}
#elif defined(__aarch64__)
static void set_round_up(void) {
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  fpcr = (fpcr & ~(3ull << 22)) | (1ull << 22); /* RP: toward +inf */
  __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
}

static int get_round(void) {
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  switch ((fpcr >> 22) & 3) {
  case 0: return ROUND_NEAREST;
  case 1: return ROUND_UP;
  default: return ROUND_OTHER;
  }
}
#else
#define NO_ROUNDING_CONTROL 1
static void set_round_up(void) {}
static int get_round(void) { return ROUND_NEAREST; }
#endif

static double third(void) {
  volatile double one = 1.0, three = 3.0;
  return one / three;
}

static int round_up_task(void *arg) {
  struct rounding *r = arg;
  set_round_up();
  cr_expect_eq(get_round(), ROUND_UP);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_yield(), 0);
  r->a_after_yield = get_round();
  r->a_third = third();
  return 0;
}

static int default_round_task(void *arg) {
  struct rounding *r = arg;
  cr_expect_eq(uvt_yield(), 0); /* round_up_task has set its mode by now */
  r->b_sees = get_round();
  r->b_third = third();
  return 0;
}

static int rounding_main(void *arg) {
  uvt_task_t *t[2];
  t[0] = uvt_spawn(round_up_task, arg);
  t[1] = uvt_spawn(default_round_task, arg);
  cr_expect_eq(uvt_gather(t, 2), 0);
  return 0;
}

Test(context, each_task_keeps_its_own_rounding_mode) {
  struct rounding r;
#ifdef NO_ROUNDING_CONTROL
  cr_skip_test("no rounding-mode control for this target");
#endif
  memset(&r, 0, sizeof r);
  cr_assert_eq(get_round(), ROUND_NEAREST);
  cr_assert_eq(uvt_run(NULL, rounding_main, &r), 0);
  cr_assert_eq(r.a_after_yield, ROUND_UP, "a task lost its mode across a switch");
  cr_assert_eq(r.b_sees, ROUND_NEAREST, "another task's mode leaked into this one");
  cr_assert_gt(r.a_third, r.b_third, "SSE arithmetic did not follow the mode");
  cr_assert_eq(get_round(), ROUND_NEAREST, "a task's mode leaked into the caller");
}

/*
 * ctx_selftest: the context switch alone, without libuv, so that the
 * assembly for another architecture can be checked under qemu-user:
 *
 *   aarch64-linux-gnu-gcc -O2 -static -I runtime tests/arch/ctx_selftest.c \
 *       runtime/context.c runtime/context_aarch64.S -o /tmp/ctx_a64
 *   qemu-aarch64 /tmp/ctx_a64
 *
 * Two coroutines and the main side ping-pong; callee-saved integer and
 * floating-point values must survive every switch, and the stack must be
 * 16-byte aligned on entry.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "context.h"

static uvt__ctx_t main_ctx, co_ctx[2];
static int rounds[2];
static int bad;
static uintptr_t co_fp[2]; /* each coroutine's frame pointer */

static void co_entry(void *arg) {
  int id = (int)(intptr_t)arg;
  volatile double d = 1.5 * (id + 1);
  long a = 11 * (id + 1), b = 13 * (id + 1), c = 17 * (id + 1);
  double e = 2.25 * (id + 1);
  co_fp[id] = (uintptr_t)__builtin_frame_address(0);
  if ((co_fp[id] & 15) != 0) bad |= 4;
  for (;;) {
    rounds[id]++;
    a += 1, b += 2, c += 3, e += 0.5, d += 0.25;
    uvt__ctx_switch(&co_ctx[id], &main_ctx);
    if (a != 11 * (id + 1) + rounds[id] || b != 13 * (id + 1) + 2 * rounds[id] ||
        c != 17 * (id + 1) + 3 * rounds[id] ||
        e != 2.25 * (id + 1) + 0.5 * rounds[id] ||
        d != 1.5 * (id + 1) + 0.25 * rounds[id])
      bad |= 1 << id;
  }
}

#ifndef UVT_USE_UCONTEXT
void uvt__ctx_entry(void);

/* uvt__ctx_frame reads the layout the switch leaves: a fresh context
 * resumes in the trampoline with entry and arg in the registers the
 * assembly documents (x86_64: r12 = arg, r13 = entry; aarch64: x19 = arg,
 * x20 = entry), on its own stack. */
static int check_fresh_frame(char *lo, size_t size) {
  uvt__ctx_t c;
  uvt__ctx_frame_t f;
  uintptr_t arg = 0x1234;
  uvt__ctx_make(&c, lo, size, co_entry, (void *)arg);
  if (uvt__ctx_frame(&c, &f) != 0) return 32;
  if (f.pc != (uintptr_t)uvt__ctx_entry) return 64;
  if (f.sp <= (uintptr_t)lo || f.sp > (uintptr_t)lo + size) return 128;
#if defined(__x86_64__)
  if (f.nregs != 5 || f.regs[1] != arg || f.regs[2] != (uintptr_t)co_entry)
    return 256;
#elif defined(__aarch64__)
  if (f.nregs != 10 || f.regs[0] != arg || f.regs[1] != (uintptr_t)co_entry)
    return 256;
#endif
  return 0;
}
#endif

/* A coroutine switched away from resumes on its own stack, in co_entry
 * (the switch is inlined there), with co_entry's frame pointer: this
 * checks the offsets in context.h (which gdb gets through
 * uvt_debug_offsets) against what the assembly really saves. */
static int check_parked_frame(const uvt__ctx_t *c, int id, char *lo,
                              size_t size) {
  uvt__ctx_frame_t f;
  if (uvt__ctx_frame(c, &f) != 0) return 512;
  if (f.pc == 0 || f.sp <= (uintptr_t)lo || f.sp > (uintptr_t)lo + size)
    return 1024;
#ifndef UVT_USE_UCONTEXT
  if (f.pc <= (uintptr_t)co_entry || f.pc > (uintptr_t)co_entry + 4096)
    return 2048;
  if (f.fp != co_fp[id]) return 4096;
#else
  (void)id;
#endif
  return 0;
}

int main(void) {
  size_t size = 64 * 1024;
  char *stacks = aligned_alloc(16, 2 * size);
  long x = 5, y = 7;
  double z = 0.125;
  int i;
  uvt__ctx_make(&co_ctx[0], stacks, size, co_entry, (void *)0);
  uvt__ctx_make(&co_ctx[1], stacks + size, size, co_entry, (void *)1);
  for (i = 0; i < 1000; i++) {
    uvt__ctx_switch(&main_ctx, &co_ctx[i & 1]);
    x += 1, y += 1, z += 1;
  }
  if (x != 1005 || y != 1007 || z != 1000.125) bad |= 8;
  if (rounds[0] != 500 || rounds[1] != 500) bad |= 16;
  bad |= check_parked_frame(&co_ctx[1], 1, stacks + size, size);
#ifndef UVT_USE_UCONTEXT
  bad |= check_fresh_frame(stacks, size);
#endif
  printf("ctx_selftest: %s (rounds %d/%d, flags %d)\n", bad ? "FAIL" : "ok",
         rounds[0], rounds[1], bad);
  free(stacks);
  return bad ? 1 : 0;
}

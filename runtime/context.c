/*
 * Building a fresh context; see context.h for the frame layouts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* REG_* names of the ucontext registers */
#endif
#include "context.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef UVT_USE_UCONTEXT

/* makecontext passes only ints: split the two pointers.
 *
 * This is a task's outermost frame, as uvt__ctx_entry is with the
 * hand-written switch: its return address is marked undefined, or
 * unwinders would go on into the C library's makecontext trampoline (so
 * every recorded stack would end in task_entry and an unnamed libc frame,
 * which the report, trimming only uvtask's own frames, would show), and it
 * starts with a zero frame pointer (uvt__ctx_make), or a frame-pointer
 * walk would go on into the stale frame getcontext saw.  Hence entry() is
 * called, not jumped to. */
static void ucontext_entry(unsigned e_hi, unsigned e_lo, unsigned a_hi,
                           unsigned a_lo) {
  void (*entry)(void *) =
      (void (*)(void *))(((uintptr_t)e_hi << 32) | (uintptr_t)e_lo);
  void *arg = (void *)(((uintptr_t)a_hi << 32) | (uintptr_t)a_lo);
#if defined(__x86_64__)
  __asm__ volatile(".cfi_undefined rip");
#elif defined(__aarch64__)
  __asm__ volatile(".cfi_undefined x30");
#endif
  entry(arg);
  /* Returning would end the process quietly (uc_link is NULL: exit). */
  fputs("uvtask: broken invariant: a task's entry function returned "
        "(runtime/context.c)\n", stderr);
  abort();
}

void uvt__ctx_make(uvt__ctx_t *c, void *lo, size_t size,
                   void (*entry)(void *), void *arg) {
  uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;
  getcontext(&c->uc);
  c->uc.uc_stack.ss_sp = lo;
  c->uc.uc_stack.ss_size = size;
  c->uc.uc_link = NULL;
  makecontext(&c->uc, (void (*)(void))ucontext_entry, 4,
              (unsigned)(e >> 32), (unsigned)e, (unsigned)(a >> 32),
              (unsigned)a);
  /* setcontext loads these: the frame-pointer chain ends in ucontext_entry. */
#if defined(__x86_64__)
  c->uc.uc_mcontext.gregs[REG_RBP] = 0;
#elif defined(__aarch64__)
  c->uc.uc_mcontext.regs[29] = 0;
#endif
}

void uvt__ctx_switch(uvt__ctx_t *from, uvt__ctx_t *to) {
  swapcontext(&from->uc, &to->uc);
}

/* swapcontext saved the caller's registers in the ucontext: pc is its
 * return address, sp the caller's stack pointer after that return. */
int uvt__ctx_frame(const uvt__ctx_t *c, uvt__ctx_frame_t *f) {
  const mcontext_t *m = &c->uc.uc_mcontext;
  memset(f, 0, sizeof(*f));
#if defined(__x86_64__)
  f->pc = (uintptr_t)m->gregs[REG_RIP];
  f->sp = (uintptr_t)m->gregs[REG_RSP];
  f->fp = (uintptr_t)m->gregs[REG_RBP];
  f->regs[0] = (uintptr_t)m->gregs[REG_RBX];
  f->regs[1] = (uintptr_t)m->gregs[REG_R12];
  f->regs[2] = (uintptr_t)m->gregs[REG_R13];
  f->regs[3] = (uintptr_t)m->gregs[REG_R14];
  f->regs[4] = (uintptr_t)m->gregs[REG_R15];
  f->nregs = 5;
  return 0;
#elif defined(__aarch64__)
  int i;
  f->pc = (uintptr_t)m->pc;
  f->sp = (uintptr_t)m->sp;
  f->fp = (uintptr_t)m->regs[29];
  for (i = 0; i < 10; i++) f->regs[i] = (uintptr_t)m->regs[19 + i];
  f->nregs = 10;
  return 0;
#else
  (void)m;
  return -1;
#endif
}

#else

void uvt__ctx_entry(void);

#if defined(__x86_64__)
void uvt__ctx_make(uvt__ctx_t *c, void *lo, size_t size,
                   void (*entry)(void *), void *arg) {
  uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
  /* After `ret` pops the return slot, rsp must be 16-byte aligned (the
   * trampoline's call then leaves entry the usual rsp % 16 == 8), so the
   * return slot sits at top - 24; the two words above it are padding. */
  uint64_t *sp = (uint64_t *)(top - 24);
  uint32_t mxcsr;
  uint16_t fpucw;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  __asm__ volatile("fnstcw %0" : "=m"(fpucw));
  sp[1] = sp[2] = 0;                     /* padding */
  sp[0] = (uint64_t)(uintptr_t)uvt__ctx_entry;
  *--sp = 0;                             /* rbp */
  *--sp = 0;                             /* rbx */
  *--sp = (uint64_t)(uintptr_t)arg;      /* r12 */
  *--sp = (uint64_t)(uintptr_t)entry;    /* r13 */
  *--sp = 0;                             /* r14 */
  *--sp = 0;                             /* r15 */
  *--sp = 0;
  memcpy(sp, &mxcsr, 4);
  memcpy((char *)sp + 4, &fpucw, 2);
  c->sp = sp;
}

/* MXCSR and the x87 control word are the first 8 bytes of a frame. */
void uvt__ctx_copy_modes(uvt__ctx_t *c, const uvt__ctx_t *from) {
  memcpy(c->sp, from->sp, 8);
}

#elif defined(__aarch64__)
void uvt__ctx_make(uvt__ctx_t *c, void *lo, size_t size,
                   void (*entry)(void *), void *arg) {
  uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
  uint64_t *sp = (uint64_t *)(top - 176);
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  memset(sp, 0, 176);
  sp[0] = (uint64_t)(uintptr_t)arg;             /* x19 */
  sp[1] = (uint64_t)(uintptr_t)entry;           /* x20 */
  sp[11] = (uint64_t)(uintptr_t)uvt__ctx_entry; /* x30 */
  sp[20] = fpcr;
  c->sp = sp;
}

/* FPCR is the word at byte 160 of a frame. */
void uvt__ctx_copy_modes(uvt__ctx_t *c, const uvt__ctx_t *from) {
  ((uint64_t *)c->sp)[20] = ((const uint64_t *)from->sp)[20];
}

#else
#error "no hand-written context switch for this target: build with -DUVT_UCONTEXT=ON"
#endif

/* The frame context_<arch>.S leaves (the offsets in context.h): the
 * switch returns to the saved pc with the stack pointer past the frame. */
int uvt__ctx_frame(const uvt__ctx_t *c, uvt__ctx_frame_t *f) {
  const char *w = c->sp;
  int i;
  memset(f, 0, sizeof(*f));
  if (w == NULL) return -1;
  memcpy(&f->pc, w + UVT__CTX_PC, sizeof(f->pc));
  memcpy(&f->fp, w + UVT__CTX_FP, sizeof(f->fp));
  f->sp = (uintptr_t)(w + UVT__CTX_FRAME_SIZE);
  for (i = 0; i < UVT__CTX_NREGS; i++)
    memcpy(&f->regs[i], w + UVT__CTX_REG(i), sizeof(f->regs[i]));
  f->nregs = UVT__CTX_NREGS;
  return 0;
}

#endif

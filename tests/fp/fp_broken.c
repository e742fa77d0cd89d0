/*
 * Built with -fomit-frame-pointer -mno-red-zone: a function as code
 * without frame pointers leaves the register, holding something that is
 * not a frame record, to the functions it calls.  A frame-pointer walk
 * from inside fn must end here without reading through the junk.
 */
#include "fp_broken.h"

#include <stdint.h>

/* A frame record that is not one: followed, it would add a frame at a
 * junk address. */
static uintptr_t below[4] __attribute__((aligned(16))) = {0, 0x1000, 0, 0};

__attribute__((noinline)) void fp_broken_call(void (*fn)(void), int high) {
#if defined(__x86_64__)
  /* Static data lies below the stacks: "low" fails the walk's
   * increasing check; all ones fails the bounds check. */
  uintptr_t junk = high ? ~(uintptr_t)15 : (uintptr_t)below;
  /* rsp is saved in r12 and realigned for the call; rbp is saved on the
   * stack, loaded with the junk, and restored after. */
  __asm__ volatile("mov %%rsp, %%r12\n\t"
                   "and $-16, %%rsp\n\t"
                   "push %%rbp\n\t"
                   "push %%rbp\n\t"
                   "mov %[junk], %%rbp\n\t"
                   "call *%[fn]\n\t"
                   "pop %%rbp\n\t"
                   "pop %%rbp\n\t"
                   "mov %%r12, %%rsp\n\t"
                   : [fn] "+b"(fn), [junk] "+d"(junk)
                   :
                   : "rax", "rcx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
                     "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
                     "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
                     "xmm13", "xmm14", "xmm15");
#else
  (void)high;
  fn();
#endif
}

/*
 * Context switch between the loop thread's own stack and task stacks.
 *
 * A context is the saved stack pointer of a suspended side.  Switching
 * pushes the callee-saved registers (and the FPU control words, which the
 * ABI also makes callee-saved) onto the current stack, stores the stack
 * pointer in `from`, loads `to`'s and pops the same registers.  A fresh
 * context is a stack laid out as if it had been switched away from just
 * before entering uvt__ctx_entry, the trampoline that calls entry(arg).
 * The trampoline is the outermost frame: its CFI marks the return address
 * undefined and it zeroes the frame pointer, so gdb and unwinders stop
 * there cleanly instead of walking into garbage.  entry() must never
 * return; a task's last act is to switch away for good.
 *
 * x86_64 and aarch64 have hand-written switches (context_<arch>.S); other
 * targets, or -DUVT_UCONTEXT=ON, use ucontext (slower: swapcontext makes a
 * sigprocmask system call).
 */
#ifndef UVT_RUNTIME_CONTEXT_H
#define UVT_RUNTIME_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#ifdef UVT_USE_UCONTEXT
#include <ucontext.h>
typedef struct uvt__ctx_s {
  ucontext_t uc;
} uvt__ctx_t;
#else
typedef struct uvt__ctx_s {
  void *sp;
} uvt__ctx_t;
#endif

/* Prepare `c` to run entry(arg) on the stack [lo, lo + size). */
void uvt__ctx_make(uvt__ctx_t *c, void *lo, size_t size,
                   void (*entry)(void *), void *arg);

/* The saved stack pointer of a suspended context, or NULL if unknown. */
#ifdef UVT_USE_UCONTEXT
static inline void *uvt__ctx_sp(const uvt__ctx_t *c) {
  (void)c;
  return NULL;
}
#else
static inline void *uvt__ctx_sp(const uvt__ctx_t *c) { return c->sp; }
#endif

/* The registers a suspended context resumes with, read from where its
 * switch saved them, for an unwinder: pc, sp, frame pointer, and the
 * other callee-saved integer registers (x86_64: rbx, r12-r15; aarch64:
 * x19-x28).  The public uvt_task_frame_t has the same meaning. */
typedef struct uvt__ctx_frame_s {
  uintptr_t pc, sp, fp;
  uintptr_t regs[10];
  int nregs;
} uvt__ctx_frame_t;

/* Fill `f` from `c`, a context that was switched away from (or made and
 * not yet run).  0, or -1 on a target whose layout is not known. */
int uvt__ctx_frame(const uvt__ctx_t *c, uvt__ctx_frame_t *f);

#ifndef UVT_USE_UCONTEXT
/* Where the hand-written switch (context_<arch>.S) saves each register,
 * in bytes from the saved stack pointer; it returns with the stack
 * pointer UVT__CTX_FRAME_SIZE above that.  uvt__ctx_frame reads these,
 * and debug_offsets.c exports them so that gdb can unwind a parked task
 * without the library's debug info.  UVT__CTX_REG(i) is the i-th of the
 * other callee-saved integer registers, in uvt__ctx_frame_t's order. */
#if defined(__x86_64__)
#define UVT__CTX_ARCH 62 /* ELF EM_X86_64 */
#define UVT__CTX_FRAME_SIZE 64
#define UVT__CTX_PC 56 /* the return address */
#define UVT__CTX_FP 48 /* rbp */
#define UVT__CTX_NREGS 5
#define UVT__CTX_REG(i) (40 - 8 * (i)) /* rbx, r12, r13, r14, r15 */
#elif defined(__aarch64__)
#define UVT__CTX_ARCH 183 /* ELF EM_AARCH64 */
#define UVT__CTX_FRAME_SIZE 176
#define UVT__CTX_PC 88 /* x30, where `ret` goes */
#define UVT__CTX_FP 80 /* x29 */
#define UVT__CTX_NREGS 10
#define UVT__CTX_REG(i) (8 * (i)) /* x19 ... x28 */
#endif
#endif

#ifndef UVT_USE_UCONTEXT
/* Give the fresh context `c` the floating-point control modes (rounding,
 * exception masks: callee-saved in both ABIs) saved in the suspended
 * context `from`.  A fresh context otherwise starts in the modes of the
 * code that made it, which is another task when one task starts the
 * next directly; new tasks start in the loop thread's modes. */
void uvt__ctx_copy_modes(uvt__ctx_t *c, const uvt__ctx_t *from);
#define UVT__CTX_HAS_COPY_MODES 1
#endif

/* Save the current side in `from` and resume `to`.  Inline where the
 * switch is hand-written: each call level around a switch is a return
 * the CPU mispredicts on the other side. */
#ifdef UVT_USE_UCONTEXT
void uvt__ctx_switch(uvt__ctx_t *from, uvt__ctx_t *to);
#else
void uvt__ctx_switch_asm(void **from_sp, void *to_sp);
static inline void uvt__ctx_switch(uvt__ctx_t *from, uvt__ctx_t *to) {
  uvt__ctx_switch_asm(&from->sp, to->sp);
}
#endif

#endif

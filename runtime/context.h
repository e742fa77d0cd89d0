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

/* Save the current side in `from` and resume `to`. */
void uvt__ctx_switch(uvt__ctx_t *from, uvt__ctx_t *to);

#endif

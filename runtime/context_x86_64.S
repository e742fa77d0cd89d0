/*
 * x86_64 System V context switch; see context.h.
 *
 * Saved frame, from the saved stack pointer upwards:
 *   [sp+0]  MXCSR (4 bytes) and x87 control word (2 bytes)
 *   [sp+8]  r15, r14, r13, r12, rbx, rbp
 *   [sp+56] return address
 * A fresh context has r12 = arg, r13 = entry and returns into
 * uvt__ctx_entry with a 16-byte aligned stack.
 */
        .text

        .globl  uvt__ctx_switch_asm
        .hidden uvt__ctx_switch_asm
        .type   uvt__ctx_switch_asm, @function
        /* void uvt__ctx_switch_asm(void **from_sp, void *to_sp) */
uvt__ctx_switch_asm:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .cfi_endproc
        .size   uvt__ctx_switch_asm, .-uvt__ctx_switch_asm

        .globl  uvt__ctx_entry
        .hidden uvt__ctx_entry
        .type   uvt__ctx_entry, @function
uvt__ctx_entry:
        .cfi_startproc
        .cfi_undefined rip
        xorl    %ebp, %ebp
        movq    %r12, %rdi
        /* A call, spelt push + jmp: the stack is the same (unwinders see
         * this frame as entry's caller), but the CPU's return-address
         * predictor gets no entry for a call that never returns.  With
         * one, every return made after the task's last switch would be
         * predicted one frame off, in whichever task runs next. */
        leaq    1f(%rip), %rax
        pushq   %rax
        .cfi_adjust_cfa_offset 8
        jmpq    *%r13
1:      ud2
        .cfi_endproc
        .size   uvt__ctx_entry, .-uvt__ctx_entry

        .section .note.GNU-stack,"",@progbits

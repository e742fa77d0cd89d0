/*
 * AArch64 (AAPCS64) context switch; see context.h.
 *
 * Saved frame, 176 bytes from the saved stack pointer:
 *   [0]   x19 x20  [16] x21 x22  [32] x23 x24  [48] x25 x26
 *   [64]  x27 x28  [80] x29 x30  [96] d8 d9  [112] d10 d11
 *   [128] d12 d13  [144] d14 d15 [160] fpcr, pad
 * A fresh context has x19 = arg, x20 = entry, x30 = uvt__ctx_entry.
 */
        .text

        .globl  uvt__ctx_switch_asm
        .hidden uvt__ctx_switch_asm
        .type   uvt__ctx_switch_asm, %function
uvt__ctx_switch_asm:
        .cfi_startproc
        sub     sp, sp, #176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]
        mov     x9, sp
        str     x9, [x0]
        mov     sp, x1
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        ldr     x9, [sp, #160]
        msr     fpcr, x9
        add     sp, sp, #176
        ret
        .cfi_endproc
        .size   uvt__ctx_switch_asm, .-uvt__ctx_switch_asm

        .globl  uvt__ctx_entry
        .hidden uvt__ctx_entry
        .type   uvt__ctx_entry, %function
uvt__ctx_entry:
        .cfi_startproc
        .cfi_undefined x30
        mov     x29, #0
        mov     x0, x19
        /* A call without the return-address stack push of blr (see the
         * x86_64 trampoline): x30 still names this frame to unwinders.
         * Through x16, which a `bti c` landing pad accepts from br. */
        adr     x30, 1f
        mov     x16, x20
        br      x16
1:      brk     #0
        .cfi_endproc
        .size   uvt__ctx_entry, .-uvt__ctx_entry

        .section .note.GNU-stack,"",%progbits

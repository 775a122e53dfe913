/*
 * AArch64 (AAPCS64) context switch.
 *
 *   struct task *sy__arch_switch(struct arch_ctx *from,   // x0
 *                                const struct arch_ctx *to, // x1
 *                                struct task *last);       // x2
 *
 * Saves what a call must preserve into *from, loads *to, and "returns"
 * `last` (x0) in the context that resumes: Linux's switch_to(prev, next,
 * last).
 *
 * Saved frame (struct arch_ctx, offsets in arch.h):
 *   0x00 sp   0x08 pc (= lr, the resume address)
 *   0x10 x19 .. 0x58 x28   0x60 x29 (fp)
 *   0x68 d8 .. 0xa0 d15    0xa8 fpcr
 *
 * Resume is a `ret` to the saved lr.  There is one call site of this
 * function (sched.c: context_switch), so that lr is the address the return
 * predictor just saw pushed by this very call: predicted, and the return
 * stack stays balanced for the callers above (see the x86-64 file for the
 * measurements).  A new task's lr is its entry stub, reached once.
 * FPCR is read on every switch and written only when `to` needs another
 * value (writes are serialising).  No BTI landing pads are needed: `ret`
 * is not checked by BTI.
 */
#include "../arch.h"

    .text

    .globl  sy__arch_switch
    .hidden sy__arch_switch
    .type   sy__arch_switch, %function
    .p2align 4
sy__arch_switch:
    .cfi_startproc
    mov     x9, sp
    stp     x9,  x30, [x0, #CTX_SP]
    stp     x19, x20, [x0, #CTX_X19 + 0x00]
    stp     x21, x22, [x0, #CTX_X19 + 0x10]
    stp     x23, x24, [x0, #CTX_X19 + 0x20]
    stp     x25, x26, [x0, #CTX_X19 + 0x30]
    stp     x27, x28, [x0, #CTX_X19 + 0x40]
    str     x29,      [x0, #CTX_X29]
    stp     d8,  d9,  [x0, #CTX_D8 + 0x00]
    stp     d10, d11, [x0, #CTX_D8 + 0x10]
    stp     d12, d13, [x0, #CTX_D8 + 0x20]
    stp     d14, d15, [x0, #CTX_D8 + 0x30]
    mrs     x10, fpcr
    str     x10,      [x0, #CTX_FPCR]

    ldr     x11,      [x1, #CTX_FPCR]
    cmp     x10, x11
    b.ne    .Lload_fp
.Lload:
    ldp     x9,  x30, [x1, #CTX_SP]
    mov     sp, x9
    ldp     x19, x20, [x1, #CTX_X19 + 0x00]
    ldp     x21, x22, [x1, #CTX_X19 + 0x10]
    ldp     x23, x24, [x1, #CTX_X19 + 0x20]
    ldp     x25, x26, [x1, #CTX_X19 + 0x30]
    ldp     x27, x28, [x1, #CTX_X19 + 0x40]
    ldr     x29,      [x1, #CTX_X29]
    ldp     d8,  d9,  [x1, #CTX_D8 + 0x00]
    ldp     d10, d11, [x1, #CTX_D8 + 0x10]
    ldp     d12, d13, [x1, #CTX_D8 + 0x20]
    ldp     d14, d15, [x1, #CTX_D8 + 0x30]
    mov     x0, x2                  /* `last` for the side that resumes */
    ret
.Lload_fp:
    msr     fpcr, x11
    b       .Lload
    .cfi_endproc
    .size   sy__arch_switch, .-sy__arch_switch

/*
 * First resume address of a task.  `last` is in x0; the stack is empty and
 * 16-byte aligned.  lr and fp are zeroed and the CFI marks the return
 * address undefined, so unwinders stop at the task's first frame.
 */
    .globl  sy__arch_task_entry
    .hidden sy__arch_task_entry
    .type   sy__arch_task_entry, %function
    .p2align 4
sy__arch_task_entry:
    .cfi_startproc
    .cfi_undefined x30
    mov     x29, #0
    mov     x30, #0
    bl      sy__task_start          /* never returns */
    brk     #0
    .cfi_endproc
    .size   sy__arch_task_entry, .-sy__arch_task_entry

    .section .note.GNU-stack, "", %progbits

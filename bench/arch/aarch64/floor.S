/* floor_switch(void **save_sp, void *load_sp): AArch64 reference switch,
 * callee-saved registers through the stack, no FPCR. */
.macro SAVE_CALLEE /* x19-x30, d8-d15, to the stack frame */
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
.endm
.macro LOAD_CALLEE
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
.endm

    .text
    .globl floor_switch
    .type floor_switch, %function
    .p2align 4
floor_switch:
    sub sp, sp, #160
    SAVE_CALLEE
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    LOAD_CALLEE
    add sp, sp, #160
    br x30
    .size floor_switch, .-floor_switch

/* floor_fp_switch: the same plus FPCR, the FP control state the ABI asks a
 * switch to keep (read on the way out, written only when it differs on the
 * way in): the least an ABI-correct switch does, the raw switch's
 * reference.  FPCR at [sp, #160]. */
    .globl floor_fp_switch
    .type floor_fp_switch, %function
    .p2align 4
floor_fp_switch:
    sub sp, sp, #176
    SAVE_CALLEE
    mrs x10, fpcr
    str x10, [sp, #160]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldr x11, [sp, #160]
    cmp x10, x11
    b.eq 1f
    msr fpcr, x11
1:  LOAD_CALLEE
    add sp, sp, #176
    br x30
    .size floor_fp_switch, .-floor_fp_switch
    .section .note.GNU-stack, "", %progbits

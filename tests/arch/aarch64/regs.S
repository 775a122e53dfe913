/*
 * regs_switch(from, to, last, seed, last_out) - for t_switch.c, AArch64.
 * Fills x19-x29 and d8-d15 with patterns from `seed`, switches with
 * sy__arch_switch(from, to, last), checks them on resume.  Returns a mask
 * of wrong registers: bits 0-10 x19..x29, bits 11-18 d8..d15.
 */
    .text
    .globl regs_switch
    .type regs_switch, %function
regs_switch:
    stp x29, x30, [sp, #-176]!
    stp x19, x20, [sp, #16]
    stp x21, x22, [sp, #32]
    stp x23, x24, [sp, #48]
    stp x25, x26, [sp, #64]
    stp x27, x28, [sp, #80]
    stp d8,  d9,  [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    stp x3,  x4,  [sp, #160]   /* seed, last_out */
    /* pattern for register i: seed + i * 0x1111111111111111 */
    movz x9, #0x1111
    movk x9, #0x1111, lsl #16
    movk x9, #0x1111, lsl #32
    movk x9, #0x1111, lsl #48
    add x19, x3, x9
    add x20, x19, x9
    add x21, x20, x9
    add x22, x21, x9
    add x23, x22, x9
    add x24, x23, x9
    add x25, x24, x9
    add x26, x25, x9
    add x27, x26, x9
    add x28, x27, x9
    add x29, x28, x9
    add x10, x29, x9
    fmov d8, x10
    add x10, x10, x9
    fmov d9, x10
    add x10, x10, x9
    fmov d10, x10
    add x10, x10, x9
    fmov d11, x10
    add x10, x10, x9
    fmov d12, x10
    add x10, x10, x9
    fmov d13, x10
    add x10, x10, x9
    fmov d14, x10
    add x10, x10, x9
    fmov d15, x10
    bl sy__arch_switch
    ldp x3, x4, [sp, #160]
    cbz x4, 1f
    str x0, [x4]
1:  movz x9, #0x1111
    movk x9, #0x1111, lsl #16
    movk x9, #0x1111, lsl #32
    movk x9, #0x1111, lsl #48
    mov x0, #0
    mov x11, #1                 /* current mask bit */
    add x10, x3, x9             /* expected */
    .irp r, x19, x20, x21, x22, x23, x24, x25, x26, x27, x28, x29
    cmp \r, x10
    b.eq 2f
    orr x0, x0, x11
2:  lsl x11, x11, #1
    add x10, x10, x9
    .endr
    .irp r, d8, d9, d10, d11, d12, d13, d14, d15
    fmov x12, \r
    cmp x12, x10
    b.eq 3f
    orr x0, x0, x11
3:  lsl x11, x11, #1
    add x10, x10, x9
    .endr
    ldp x19, x20, [sp, #16]
    ldp x21, x22, [sp, #32]
    ldp x23, x24, [sp, #48]
    ldp x25, x26, [sp, #64]
    ldp x27, x28, [sp, #80]
    ldp d8,  d9,  [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    ldp x29, x30, [sp], #176
    ret
    .size regs_switch, .-regs_switch
    .section .note.GNU-stack, "", %progbits

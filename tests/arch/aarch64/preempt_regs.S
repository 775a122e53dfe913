/*
 * void regs_spin(const struct regset *in, struct regset *out,
 *                uint64_t loops, int level);                  for t_preempt.c
 * AArch64: loads x0-x16, x18-x30 (x17 counts the loop), NZCV, FPSR and
 * v0-v31 from *in, spins on sub/cbnz (which change no flag), stores them
 * all into *out.  `level` is ignored.
 * struct regset: 0 x[31] (x0..x30, the x17 slot unused), 248 nzcv,
 * 256 fpsr, 264 pad, 272 v[32][16].
 */
#define X 0
#define NZCV 248
#define FPSR 256
#define V 272

    .text
    .globl regs_spin
    .type regs_spin, %function
regs_spin:
    stp x29, x30, [sp, #-112]!
    stp x19, x20, [sp, #16]
    stp x21, x22, [sp, #32]
    stp x23, x24, [sp, #48]
    stp x25, x26, [sp, #64]
    stp x27, x28, [sp, #80]
    stp x1, x2, [sp, #96]           /* out, loops */
    stp d8, d9, [sp, #-64]!
    stp d10, d11, [sp, #16]
    stp d12, d13, [sp, #32]
    stp d14, d15, [sp, #48]

    mov x17, x0                     /* in */
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ldr q\i, [x17, #V+\i*16]
    .endr
    ldr x16, [x17, #NZCV]
    msr nzcv, x16
    ldr x16, [x17, #FPSR]
    msr fpsr, x16
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,18,19,20,21,22,23,24,25,26,27,28,29,30
    ldr x\i, [x17, #X+\i*8]
    .endr
    ldr x17, [sp, #64+104]          /* loops */
1:  sub x17, x17, #1
    cbnz x17, 1b

    ldr x17, [sp, #64+96]           /* out */
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,18,19,20,21,22,23,24,25,26,27,28,29,30
    str x\i, [x17, #X+\i*8]
    .endr
    mrs x16, nzcv
    str x16, [x17, #NZCV]
    mrs x16, fpsr
    str x16, [x17, #FPSR]
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    str q\i, [x17, #V+\i*16]
    .endr

    ldp d10, d11, [sp, #16]
    ldp d12, d13, [sp, #32]
    ldp d14, d15, [sp, #48]
    ldp d8, d9, [sp], #64
    ldp x19, x20, [sp, #16]
    ldp x21, x22, [sp, #32]
    ldp x23, x24, [sp, #48]
    ldp x25, x26, [sp, #64]
    ldp x27, x28, [sp, #80]
    ldp x29, x30, [sp], #112
    ret
    .size regs_spin, .-regs_spin
    .section .note.GNU-stack, "", %progbits

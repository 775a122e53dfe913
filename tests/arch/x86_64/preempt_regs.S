/*
 * void regs_spin(const struct regset *in, struct regset *out,
 *                uint64_t loops, int level);                  for t_preempt.c
 * Loads every general register but rsp (rcx counts the loop), the flags
 * (arithmetic flags and DF) and the vector registers from *in, spins `loops`
 * times on `loop` (which changes no flag), then stores them all into *out.
 * The tick preempts it thousands of times meanwhile.
 *   level 0: xmm0-15;  1: ymm0-15 (AVX);  2: zmm0-31 and k0-k7 (AVX-512F)
 * struct regset: 0 gpr[14] (rax rbx rdx rsi rdi rbp r8 .. r15), 112 flags,
 * 128 vec[32][64], 2176 k[8].
 */
#define GPR 0
#define FLAGS 112
#define VEC 128
#define KREG 2176

    .text
    .globl regs_spin
    .type regs_spin, @function
regs_spin:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    push %rsi                   /* 16(%rsp): out */
    push %rdx                   /*  8(%rsp): loops */
    push %rcx                   /*  0(%rsp): level */
    mov %rdi, %r11              /* in */

    cmpl $1, (%rsp)
    jb 1f
    je 2f
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    vmovdqu64 VEC+\i*64(%r11), %zmm\i
    .endr
    .irp i, 0,1,2,3,4,5,6,7
    kmovq KREG+\i*8(%r11), %k\i
    .endr
    jmp 3f
2:  .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    vmovdqu VEC+\i*64(%r11), %ymm\i
    .endr
    jmp 3f
1:  .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    movdqu VEC+\i*64(%r11), %xmm\i
    .endr
3:
    pushq FLAGS(%r11)
    popfq                       /* from here on, only moves and `loop` */
    mov 8(%rsp), %rcx
    mov GPR+0(%r11), %rax
    mov GPR+8(%r11), %rbx
    mov GPR+16(%r11), %rdx
    mov GPR+24(%r11), %rsi
    mov GPR+32(%r11), %rdi
    mov GPR+40(%r11), %rbp
    mov GPR+48(%r11), %r8
    mov GPR+56(%r11), %r9
    mov GPR+64(%r11), %r10
    mov GPR+80(%r11), %r12
    mov GPR+88(%r11), %r13
    mov GPR+96(%r11), %r14
    mov GPR+104(%r11), %r15
    mov GPR+72(%r11), %r11
4:  loop 4b

    mov 16(%rsp), %rcx          /* out */
    mov %rax, GPR+0(%rcx)
    mov %rbx, GPR+8(%rcx)
    mov %rdx, GPR+16(%rcx)
    mov %rsi, GPR+24(%rcx)
    mov %rdi, GPR+32(%rcx)
    mov %rbp, GPR+40(%rcx)
    mov %r8, GPR+48(%rcx)
    mov %r9, GPR+56(%rcx)
    mov %r10, GPR+64(%rcx)
    mov %r11, GPR+72(%rcx)
    mov %r12, GPR+80(%rcx)
    mov %r13, GPR+88(%rcx)
    mov %r14, GPR+96(%rcx)
    mov %r15, GPR+104(%rcx)
    pushfq
    pop %rax
    mov %rax, FLAGS(%rcx)
    cld

    cmpl $1, (%rsp)
    jb 5f
    je 6f
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    vmovdqu64 %zmm\i, VEC+\i*64(%rcx)
    .endr
    .irp i, 0,1,2,3,4,5,6,7
    kmovq %k\i, KREG+\i*8(%rcx)
    .endr
    vzeroupper
    jmp 7f
6:  .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    vmovdqu %ymm\i, VEC+\i*64(%rcx)
    .endr
    vzeroupper
    jmp 7f
5:  .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    movdqu %xmm\i, VEC+\i*64(%rcx)
    .endr
7:  add $24, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret
    .size regs_spin, .-regs_spin
    .section .note.GNU-stack, "", @progbits

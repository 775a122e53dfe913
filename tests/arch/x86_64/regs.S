/*
 * regs_switch(from, to, last, seed) - for t_switch.c.
 * Fills every callee-saved register with a pattern derived from `seed`,
 * switches with sy__arch_switch(from, to, last), and on resume checks each
 * register against its pattern.  Returns a bitmask of the registers that
 * came back wrong (0: all kept), with the value of `last` the switch
 * returned in *(void **)last_out... kept simple: returns mask, and stores
 * the switch's return value at 0(%r8) when r8 (5th arg) is not NULL.
 *
 *   uint64_t regs_switch(void *from, void *to, void *last, uint64_t seed,
 *                        void **last_out);
 * mask bits: 0 rbx, 1 rbp, 2 r12, 3 r13, 4 r14, 5 r15
 */
    .text
    .globl regs_switch
    .type regs_switch, @function
regs_switch:
    pushq %rbx
    pushq %rbp
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    pushq %r8               /* last_out */
    pushq %rcx              /* seed */
    /* patterns: seed * k for k = 3, 5, 7, 11, 13, 17 */
    imulq $3,  %rcx, %rbx
    imulq $5,  %rcx, %rbp
    imulq $7,  %rcx, %r12
    imulq $11, %rcx, %r13
    imulq $13, %rcx, %r14
    imulq $17, %rcx, %r15
    /* clobber every caller-saved register too: the switch owes them nothing */
    movq $-1, %rax
    movq $-1, %rcx
    movq $-1, %r8
    movq $-1, %r9
    movq $-1, %r10
    movq $-1, %r11
    call sy__arch_switch
    movq 8(%rsp), %r8       /* last_out */
    testq %r8, %r8
    jz 1f
    movq %rax, (%r8)
1:  movq (%rsp), %rcx       /* seed */
    xorl %eax, %eax
    imulq $3,  %rcx, %rdx
    cmpq %rdx, %rbx
    je 2f
    orq $1, %rax
2:  imulq $5,  %rcx, %rdx
    cmpq %rdx, %rbp
    je 3f
    orq $2, %rax
3:  imulq $7,  %rcx, %rdx
    cmpq %rdx, %r12
    je 4f
    orq $4, %rax
4:  imulq $11, %rcx, %rdx
    cmpq %rdx, %r13
    je 5f
    orq $8, %rax
5:  imulq $13, %rcx, %rdx
    cmpq %rdx, %r14
    je 6f
    orq $16, %rax
6:  imulq $17, %rcx, %rdx
    cmpq %rdx, %r15
    je 7f
    orq $32, %rax
7:  addq $16, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbp
    popq %rbx
    ret
    .size regs_switch, .-regs_switch
    .section .note.GNU-stack, "", @progbits

/*
 * floor_switch(void **save_sp, void *load_sp) - the reference for the raw
 * switch benchmark: the least a user-space switch can do on x86-64 SysV
 * (six callee-saved registers through the stack, then jump to the resume
 * address).  It keeps no FP control state, which the ABI requires and
 * Switchyard's switch does keep; the gap between the two is that cost.
 * Stack at a switch-out: [r12 r13 r14 r15 rbx rbp pad resume] (low to high).
 */
    .text
    .globl floor_switch
    .type floor_switch, @function
    .p2align 4
floor_switch:
    subq $0x38, %rsp
    movq %r12, 0x00(%rsp)
    movq %r13, 0x08(%rsp)
    movq %r14, 0x10(%rsp)
    movq %r15, 0x18(%rsp)
    movq %rbx, 0x20(%rsp)
    movq %rbp, 0x28(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    movq 0x38(%rsp), %rax       /* resume address */
    movq 0x00(%rsp), %r12
    movq 0x08(%rsp), %r13
    movq 0x10(%rsp), %r14
    movq 0x18(%rsp), %r15
    movq 0x20(%rsp), %rbx
    movq 0x28(%rsp), %rbp
    addq $0x40, %rsp
    jmp *%rax
    .size floor_switch, .-floor_switch
    .section .note.GNU-stack, "", @progbits

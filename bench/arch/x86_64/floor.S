/*
 * floor_switch(void **save_sp, void *load_sp) - the reference for the raw
 * switch benchmark: the least a user-space switch can do on x86-64 SysV
 * (six callee-saved registers through the stack, then jump to the resume
 * address).  It keeps no FP control state, which the ABI requires and
 * Switchyard's switch does keep; the gap between the two is that cost.
 * Stack at a switch-out: [r12 r13 r14 r15 rbx rbp pad resume] (low to high).
 */
.macro SAVE6 /* the six callee-saved registers, to the stack frame */
    movq %r12, 0x00(%rsp)
    movq %r13, 0x08(%rsp)
    movq %r14, 0x10(%rsp)
    movq %r15, 0x18(%rsp)
    movq %rbx, 0x20(%rsp)
    movq %rbp, 0x28(%rsp)
.endm
.macro LOAD6
    movq 0x00(%rsp), %r12
    movq 0x08(%rsp), %r13
    movq 0x10(%rsp), %r14
    movq 0x18(%rsp), %r15
    movq 0x20(%rsp), %rbx
    movq 0x28(%rsp), %rbp
.endm

    .text
    .globl floor_switch
    .type floor_switch, @function
    .p2align 4
floor_switch:
    subq $0x38, %rsp
    SAVE6
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    movq 0x38(%rsp), %rax       /* resume address */
    LOAD6
    addq $0x40, %rsp
    jmp *%rax
    .size floor_switch, .-floor_switch

/*
 * floor_fp_switch(void **save_sp, void *load_sp) - the same plus the FP
 * control state the ABI asks a switch to keep: MXCSR and the x87 control
 * word stored on the way out, MXCSR loaded always and the control word only
 * when it differs on the way in.  The least an ABI-correct switch does: the
 * reference the raw switch is held to (the peers' limit_fp, measured the
 * same way).  Stack: [r12 r13 r14 r15 rbx rbp mxcsr:fcw resume].
 */
    .globl floor_fp_switch
    .type floor_fp_switch, @function
    .p2align 4
floor_fp_switch:
    subq $0x38, %rsp
    SAVE6
    stmxcsr 0x30(%rsp)
    fnstcw 0x34(%rsp)
    movzwl 0x34(%rsp), %ecx
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr 0x30(%rsp)
    cmpw 0x34(%rsp), %cx
    jne 2f
1:  movq 0x38(%rsp), %rax       /* resume address */
    LOAD6
    addq $0x40, %rsp
    jmp *%rax
2:  fldcw 0x34(%rsp)
    jmp 1b
    .size floor_fp_switch, .-floor_fp_switch
    .section .note.GNU-stack, "", @progbits

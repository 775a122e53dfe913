/*
 * x86-64 SysV context switch.
 *
 *   struct task *sy__arch_switch(struct arch_ctx *from,   // %rdi
 *                                const struct arch_ctx *to, // %rsi
 *                                struct task *last);       // %rdx
 *
 * Saves what a call must preserve into *from, loads *to, and "returns"
 * `last` (%rax) in the context that resumes: Linux's switch_to(prev, next,
 * last).  The resumed side learns which task ran before it, so it can finish
 * the switch for that task (sched.c: finish_task_switch).
 *
 * Saved frame (struct arch_ctx, offsets in arch.h):
 *   0x00 sp     caller's stack pointer after the return
 *   0x08 pc     resume address (the return address of this call)
 *   0x10 rbx  0x18 rbp  0x20 r12  0x28 r13  0x30 r14  0x38 r15
 *   0x40 mxcsr (32 bits)  0x44 x87 control word (16 bits)
 *
 * Resume is a jump to the saved address, not a `ret`: the return-address
 * predictor never saw the call that pushed it, so a `ret` would mispredict
 * on every switch (10.4 ns against 3.7 ns on this machine).
 *
 * FP control (lazy FPU, as in the seeds): a call must preserve the MXCSR
 * control bits and the x87 control word.  Both are stored on every switch
 * (cheap), but loaded only when `to` differs from the running values,
 * because ldmxcsr/fldcw cost several ns.  MXCSR status flags (bits 0-5) are
 * caller-saved in the ABI and are ignored by the comparison.
 *
 * Nothing is pushed on either stack: a new task's stack is untouched until
 * it runs, and the only memory the switch touches is the two contexts.
 */
#include "../arch.h"

    .text

    .globl  sy__arch_switch
    .hidden sy__arch_switch
    .type   sy__arch_switch, @function
    .p2align 4
sy__arch_switch:
    .cfi_startproc
    endbr64
    movq    (%rsp), %r8             /* resume address of `from` */
    leaq    8(%rsp), %rcx           /* its stack pointer after the return */
    movq    %rcx, CTX_SP(%rdi)
    movq    %r8,  CTX_PC(%rdi)
    movq    %rbx, CTX_RBX(%rdi)
    movq    %rbp, CTX_RBP(%rdi)
    movq    %r12, CTX_R12(%rdi)
    movq    %r13, CTX_R13(%rdi)
    movq    %r14, CTX_R14(%rdi)
    movq    %r15, CTX_R15(%rdi)
    stmxcsr CTX_MXCSR(%rdi)
    fnstcw  CTX_FCW(%rdi)

    /* Does `to` need other FP control values than the ones running now? */
    movl    CTX_MXCSR(%rdi), %eax
    xorl    CTX_MXCSR(%rsi), %eax
    movzwl  CTX_FCW(%rdi), %ecx
    xorw    CTX_FCW(%rsi), %cx
    andl    $0xffc0, %eax           /* MXCSR control bits 6-15 only */
    orl     %ecx, %eax
    jnz     .Lload_fp
.Lload:
    movq    CTX_SP(%rsi), %rsp      /* now on the stack of `to` */
    .cfi_def_cfa_offset 0
    movq    CTX_RBX(%rsi), %rbx
    movq    CTX_RBP(%rsi), %rbp
    movq    CTX_R12(%rsi), %r12
    movq    CTX_R13(%rsi), %r13
    movq    CTX_R14(%rsi), %r14
    movq    CTX_R15(%rsi), %r15
    movq    %rdx, %rax              /* `last` for the side that resumes */
    notrack jmp *CTX_PC(%rsi)       /* a return address: no endbr64 there */
.Lload_fp:
    ldmxcsr CTX_MXCSR(%rsi)
    fldcw   CTX_FCW(%rsi)
    jmp     .Lload
    .cfi_endproc
    .size   sy__arch_switch, .-sy__arch_switch

/*
 * First resume address of a task (arch_ctx_init puts it in ctx.pc).  The
 * switch jumped here on an empty stack with %rsp % 16 == 0 and `last` in
 * %rax.  The CFI marks the return address undefined, so gdb and backtrace()
 * stop at the task's first frame instead of walking into garbage.
 */
    .globl  sy__arch_task_entry
    .hidden sy__arch_task_entry
    .type   sy__arch_task_entry, @function
    .p2align 4
sy__arch_task_entry:
    .cfi_startproc
    .cfi_undefined rip
    endbr64
    xorl    %ebp, %ebp              /* end of the frame-pointer chain */
    movq    %rax, %rdi              /* sy__task_start(last) */
    call    sy__task_start          /* never returns */
    ud2
    .cfi_endproc
    .size   sy__arch_task_entry, .-sy__arch_task_entry

/* Non-executable stack. */
    .section .note.GNU-stack, "", @progbits

/* CET: this file is IBT-ready (endbr64 at every indirect-branch target;
 * the resume jump is notrack).  It does not claim SHSTK: switching stacks
 * without switching shadow stacks would break a shadow-stack process, so a
 * binary linked with this file is, correctly, not marked SHSTK-compatible. */
    .section .note.gnu.property, "a"
    .p2align 3
    .long   4                       /* n_namesz */
    .long   16                      /* n_descsz */
    .long   5                       /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   0xc0000002              /* GNU_PROPERTY_X86_FEATURE_1_AND */
    .long   4                       /* pr_datasz */
    .long   1                       /* GNU_PROPERTY_X86_FEATURE_1_IBT */
    .p2align 3

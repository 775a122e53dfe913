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
 *   0x00 sp     stack pointer; it points at the return address of the call
 *   0x08 pc     0 once the task has run; before that, its entry point
 *   0x10 rbx  0x18 rbp  0x20 r12  0x28 r13  0x30 r14  0x38 r15
 *   0x40 mxcsr (32 bits)  0x44 x87 control word (16 bits)
 *
 * How it resumes, and why: the processor predicts each `ret` from a stack of
 * the return addresses its `call`s pushed.  A switch that resumes with a
 * jump leaves the entry pushed by `call sy__arch_switch` unpopped, so every
 * `ret` the resumed task then makes up its call chain is predicted one
 * level off and mispredicts: two mispredicts per yield, 19 ns against 11 ns
 * in a test with two callers above the switch.  Here there is exactly ONE
 * call site of this function (sched.c: context_switch, kept noinline), so
 * the return address every waiting task resumes at is the very address the
 * predictor just saw pushed: `ret` is predicted, and the return stack stays
 * balanced for the callers above.  (A `ret` to an address the predictor did
 * NOT see - a switch called from several places - is the slow `limit_ret`
 * row of the peers' table.)  A task that never ran has no return address
 * on its stack: it is entered with a jump to ctx.pc, once.
 *
 * FP control: a call must preserve the MXCSR control bits and the x87
 * control word, and any task may change them (fesetround, _mm_setcsr), so
 * both are read on every switch.  Loading is where the seeds' lazy-FPU idea
 * would skip work, and it does for the x87 control word: fnstcw's value
 * forwards to the compare at no cost, and fldcw runs only when `to` needs
 * another value.  For MXCSR it does not pay on this machine (AMD EPYC):
 * reading back what stmxcsr stored stalls the compare, so compare-then-load
 * costs more than the load.  sy_yield, one way, median of 10 runs of
 * `b_core yield 10M` on one core:
 *     compare both, load when different   9.0 ns
 *     load both always                     7.8 ns
 *     MXCSR always, x87 CW on difference   7.5 ns   <- this file
 *     (keep no FP control at all           6.2 ns: not ABI-correct)
 * The MXCSR status flags (bits 0-5, caller-saved in the ABI) travel with
 * the control bits: each task sees its own sticky exception flags.
 *
 * Nothing is written to either stack: a new task's stack is untouched until
 * it runs, and the only memory the switch writes is `from`.
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
    movq    %rsp, CTX_SP(%rdi)      /* -> our return address */
    movq    %rbx, CTX_RBX(%rdi)
    movq    %rbp, CTX_RBP(%rdi)
    movq    %r12, CTX_R12(%rdi)
    movq    %r13, CTX_R13(%rdi)
    movq    %r14, CTX_R14(%rdi)
    movq    %r15, CTX_R15(%rdi)
    stmxcsr CTX_MXCSR(%rdi)
    fnstcw  CTX_FCW(%rdi)

    /* MXCSR: always loaded (see the header); x87 control word: only when
     * `to` needs another value than the one running now. */
    movzwl  CTX_FCW(%rdi), %ecx
    ldmxcsr CTX_MXCSR(%rsi)
    cmpw    CTX_FCW(%rsi), %cx
    jne     .Lload_fcw
.Lload:
    movq    CTX_SP(%rsi), %rsp      /* now on the stack of `to` */
    movq    CTX_RBX(%rsi), %rbx
    movq    CTX_RBP(%rsi), %rbp
    movq    CTX_R12(%rsi), %r12
    movq    CTX_R13(%rsi), %r13
    movq    CTX_R14(%rsi), %r14
    movq    CTX_R15(%rsi), %r15
    movq    %rdx, %rax              /* `last` for the side that resumes */
    cmpq    $0, CTX_PC(%rsi)
    jne     .Lfirst
    ret                             /* to the one call site: predicted */
.Lfirst:                            /* a task that never ran */
    movq    CTX_PC(%rsi), %rcx
    movq    $0, CTX_PC(%rsi)
    jmp     *%rcx
.Lload_fcw:
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

/* CET: this file is IBT-ready (endbr64 at every indirect-branch target:
 * the functions, and a new task's entry).  It does not claim SHSTK: switching stacks
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

/*
 * arch.h - what the generic code needs from an architecture:
 *
 *   struct arch_ctx     the saved context of a task that is not running: the
 *                       callee-saved registers, stack pointer, resume address
 *                       and FP control state.  switch.S reads and writes it
 *                       at the offsets below, which "must match" the struct
 *                       (checked with _Static_assert).
 *   sy__arch_switch()   the switch itself (switch.S).
 *   sy__arch_task_entry the first resume address of a new task (switch.S).
 *   arch_ctx_init()     lay out a new task's context without touching its
 *                       stack (a new task's stack is first written when it
 *                       first runs, so spawn costs no page fault).
 *   arch_this_cpu()     read the per-host-thread CPU pointer, never cached.
 */
#ifndef SY_ARCH_H
#define SY_ARCH_H

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

struct task;
struct cpu;
#endif

#if defined(__x86_64__)

/* x86-64 SysV: a call preserves rbx, rbp, r12-r15, rsp, the MXCSR control
 * bits and the x87 control word.  Offsets used by switch.S.  sp points at the
 * return address of the task's call into the switch; pc is non-zero only
 * for a task that never ran (its entry point). */
#define CTX_SP 0x00
#define CTX_PC 0x08
#define CTX_RBX 0x10
#define CTX_RBP 0x18
#define CTX_R12 0x20
#define CTX_R13 0x28
#define CTX_R14 0x30
#define CTX_R15 0x38
#define CTX_MXCSR 0x40
#define CTX_FCW 0x44
#define CTX_SIZE 0x48

#ifndef __ASSEMBLER__
struct arch_ctx {
    uint64_t sp, pc;
    uint64_t rbx, rbp, r12, r13, r14, r15;
    uint32_t mxcsr; /* status bits (0-5) are not preserved, as in the ABI */
    uint16_t fcw;
    uint16_t pad;
};
_Static_assert(offsetof(struct arch_ctx, sp) == CTX_SP, "switch.S layout");
_Static_assert(offsetof(struct arch_ctx, pc) == CTX_PC, "switch.S layout");
_Static_assert(offsetof(struct arch_ctx, rbx) == CTX_RBX, "switch.S layout");
_Static_assert(offsetof(struct arch_ctx, rbp) == CTX_RBP, "switch.S layout");
_Static_assert(offsetof(struct arch_ctx, r12) == CTX_R12, "switch.S layout");
_Static_assert(offsetof(struct arch_ctx, r15) == CTX_R15, "switch.S layout");
_Static_assert(offsetof(struct arch_ctx, mxcsr) == CTX_MXCSR, "switch.S layout");
_Static_assert(offsetof(struct arch_ctx, fcw) == CTX_FCW, "switch.S layout");
_Static_assert(sizeof(struct arch_ctx) == CTX_SIZE, "switch.S layout");

/* The FP control state of the running thread, for a new task to inherit. */
static inline void arch_fpctl_read(struct arch_ctx *c)
{
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(c->mxcsr), "=m"(c->fcw));
}

/* The per-host-thread CPU pointer.  Read with an asm that the compiler must
 * re-execute after every call (memory clobber) and that addresses the TLS
 * slot through %fs each time: after a switch the task may be on another host
 * thread, and a cached thread-pointer would name the old one. */
#define ARCH_THIS_CPU_DEFINED 1
static inline struct cpu *arch_this_cpu(void)
{
    struct cpu *c;
    __asm__ volatile("movq sy__cpu_tls@gottpoff(%%rip), %0\n\t"
                     "movq %%fs:(%0), %0"
                     : "=r"(c)
                     :
                     : "memory");
    return c;
}
#endif /* !__ASSEMBLER__ */

#elif defined(__aarch64__)

/* AArch64 AAPCS64: a call preserves x19-x29, lr (x30), sp, d8-d15 and FPCR. */
#define CTX_SP 0x00
#define CTX_PC 0x08
#define CTX_X19 0x10 /* x19..x28 at 0x10..0x58 */
#define CTX_X29 0x60
#define CTX_D8 0x68 /* d8..d15 at 0x68..0xa0 */
#define CTX_FPCR 0xa8
#define CTX_SIZE 0xb0

#ifndef __ASSEMBLER__
struct arch_ctx {
    uint64_t sp, pc;
    uint64_t x19_28[10];
    uint64_t x29;
    uint64_t d8_15[8];
    uint64_t fpcr;
};
_Static_assert(offsetof(struct arch_ctx, sp) == CTX_SP, "switch.S layout");
_Static_assert(offsetof(struct arch_ctx, pc) == CTX_PC, "switch.S layout");
_Static_assert(offsetof(struct arch_ctx, x19_28) == CTX_X19, "switch.S layout");
_Static_assert(offsetof(struct arch_ctx, x29) == CTX_X29, "switch.S layout");
_Static_assert(offsetof(struct arch_ctx, d8_15) == CTX_D8, "switch.S layout");
_Static_assert(offsetof(struct arch_ctx, fpcr) == CTX_FPCR, "switch.S layout");
_Static_assert(sizeof(struct arch_ctx) == CTX_SIZE, "switch.S layout");

static inline void arch_fpctl_read(struct arch_ctx *c)
{
    uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    c->fpcr = v;
}

#define ARCH_THIS_CPU_DEFINED 1
static inline struct cpu *arch_this_cpu(void)
{
    struct cpu *c;
    uint64_t tp;
    __asm__ volatile("adrp %0, :gottprel:sy__cpu_tls\n\t"
                     "ldr %0, [%0, #:gottprel_lo12:sy__cpu_tls]\n\t"
                     "mrs %1, tpidr_el0\n\t"
                     "ldr %0, [%1, %0]"
                     : "=&r"(c), "=&r"(tp)
                     :
                     : "memory");
    return c;
}
#endif /* !__ASSEMBLER__ */

#else
#error "Switchyard: no context switch for this architecture (x86_64, aarch64)"
#endif

#ifndef __ASSEMBLER__
/* Save the caller's context into *from, load *to, and return `last` in the
 * resumed context: the task that ran just before the resumed one, Linux's
 * switch_to(prev, next, last).  Defined in arch/<isa>/switch.S. */
struct task *sy__arch_switch(struct arch_ctx *from, const struct arch_ctx *to,
                             struct task *last);

/* First resume address of every task: calls sy__task_start(last). */
void sy__arch_task_entry(void);

/* Lay out the context of a task that has never run: it resumes in
 * sy__arch_task_entry on an empty stack whose top is `stack_top`, with the
 * FP control state `fp`.  Nothing is written to the stack. */
static inline void arch_ctx_init(struct arch_ctx *c, void *stack_top,
                                 const struct arch_ctx *fp)
{
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
    *c = (struct arch_ctx){0};
    c->sp = top; /* the entry stub calls with sp % 16 == 0, as the ABI wants */
    c->pc = (uint64_t)(uintptr_t)sy__arch_task_entry; /* first entry */
#if defined(__x86_64__)
    c->mxcsr = fp->mxcsr;
    c->fcw = fp->fcw;
#else
    c->fpcr = fp->fpcr;
#endif
}

/* The interrupted PC in a signal handler's ucontext. */
#include <ucontext.h>
static inline uintptr_t arch_uc_pc(void *uc)
{
#if defined(__x86_64__)
    return (uintptr_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
#else
    return (uintptr_t)((ucontext_t *)uc)->uc_mcontext.pc;
#endif
}

/* Has this context never run? */
static inline int arch_ctx_fresh(const struct arch_ctx *c)
{
#if defined(__x86_64__)
    return c->pc != 0;
#else
    return c->pc == (uint64_t)(uintptr_t)sy__arch_task_entry;
#endif
}

/* Give a context that never ran another (empty) stack. */
static inline void arch_ctx_set_stack(struct arch_ctx *c, void *stack_top)
{
    c->sp = (uintptr_t)stack_top & ~(uintptr_t)15;
}
#endif

#endif /* SY_ARCH_H */

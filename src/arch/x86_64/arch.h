/*
 * arch/x86_64/arch.h - the x86-64 half of arch.h (included by it only):
 * the context layout switch.S uses, and the few ISA-specific helpers the
 * generic code calls (arch.h lists them).
 */
#ifndef SY_ARCH_X86_64_H
#define SY_ARCH_X86_64_H

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
/* A spin-wait hint. */
static inline void arch_cpu_relax(void)
{
    __builtin_ia32_pause();
}

/* A new task inherits the FP control state saved in *fp. */
static inline void arch_ctx_fp_inherit(struct arch_ctx *c, const struct arch_ctx *fp)
{
    c->mxcsr = fp->mxcsr;
    c->fcw = fp->fcw;
}

/* The interrupted PC in a signal handler's ucontext. */
static inline uintptr_t arch_uc_pc(void *uc)
{
    return (uintptr_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
}

/* Has this context never run?  (Only a fresh context has a pc.) */
static inline int arch_ctx_fresh(const struct arch_ctx *c)
{
    return c->pc != 0;
}
#endif /* !__ASSEMBLER__ */

#endif /* SY_ARCH_X86_64_H */

/*
 * arch/aarch64/arch.h - the AArch64 half of arch.h (included by it only):
 * the context layout switch.S uses, and the few ISA-specific helpers the
 * generic code calls (arch.h lists them).
 */
#ifndef SY_ARCH_AARCH64_H
#define SY_ARCH_AARCH64_H

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
/* A spin-wait hint. */
static inline void arch_cpu_relax(void)
{
    __asm__ volatile("yield" ::: "memory");
}

/* A new task inherits the FP control state saved in *fp. */
static inline void arch_ctx_fp_inherit(struct arch_ctx *c, const struct arch_ctx *fp)
{
    c->fpcr = fp->fpcr;
}

/* The interrupted PC in a signal handler's ucontext. */
static inline uintptr_t arch_uc_pc(void *uc)
{
    return (uintptr_t)((ucontext_t *)uc)->uc_mcontext.pc;
}

void sy__arch_task_entry(void);

/* Has this context never run?  (It still resumes at the entry stub.) */
static inline int arch_ctx_fresh(const struct arch_ctx *c)
{
    return c->pc == (uint64_t)(uintptr_t)sy__arch_task_entry;
}
#endif /* !__ASSEMBLER__ */

#endif /* SY_ARCH_AARCH64_H */

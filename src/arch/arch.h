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
 *   arch_cpu_relax()    the spin-wait hint (pause, yield).
 *   arch_uc_pc()        the interrupted PC in a signal handler's ucontext.
 *   arch_ctx_fresh()    has this context never run?
 *
 * Each ISA has its half in arch/<isa>/arch.h: the layout and the helpers,
 * with no #if on the ISA anywhere else.
 */
#ifndef SY_ARCH_H
#define SY_ARCH_H

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

#include <ucontext.h>

struct task;
struct cpu;
#endif

#if defined(__x86_64__)
#include "x86_64/arch.h"
#elif defined(__aarch64__)
#include "aarch64/arch.h"
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
    arch_ctx_fp_inherit(c, fp);
}

/* Give a context that never ran another (empty) stack. */
static inline void arch_ctx_set_stack(struct arch_ctx *c, void *stack_top)
{
    c->sp = (uintptr_t)stack_top & ~(uintptr_t)15;
}
#endif

#endif /* SY_ARCH_H */

/*
 * san.h - hooks that tell sanitizers and valgrind about stack switches.
 *
 * Each hook is an empty inline function unless the library is built with the
 * matching option (make SAN=asan, make VALGRIND=1), so the generic code calls
 * them unconditionally, as Linux's arch hooks default to no-ops.
 *
 *   san_switch_begin(prev, next, dying)  before the switch, on prev's stack
 *   san_switch_end(self, last)           after it, on the stack of `self`
 *   san_task_first(self, last)           a new task's first instructions
 *   san_task_new(t) / san_task_dead(t)   a task is spawned / has left its
 *                                        stack for good (TSan fibers)
 *   san_cpu_enter(c)                     a host thread becomes a CPU
 *   san_stack_register / unregister      a stack is created / destroyed
 *   san_stack_release(lo, size)          a dead task's stack goes back to the
 *                                        pool: its frames never returned, so
 *                                        ASan's redzones for them are cleared
 */
#ifndef SY_SAN_H
#define SY_SAN_H

#include "internal.h"

#if defined(SY_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>

static inline void san_switch_begin(struct task *prev, struct task *next, bool dying)
{
    /* A dying task's fake stack is destroyed (NULL save slot). */
    __sanitizer_start_switch_fiber(dying ? NULL : &prev->asan_fake_stack,
                                   next->stack_lo, next->stack_size);
}

static inline void san_record_idle_stack(struct task *last, const void *bottom, size_t size)
{
    /* The idle task runs on the host thread's own stack, whose bounds ASan
     * tells us the first time we leave it. */
    if (last && last->pid == 0 && !last->stack_lo) {
        last->stack_lo = (char *)bottom;
        last->stack_size = size;
    }
}

static inline void san_switch_end(struct task *self, struct task *last)
{
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(self->asan_fake_stack, &bottom, &size);
    san_record_idle_stack(last, bottom, size);
}

static inline void san_task_first(struct task *self, struct task *last)
{
    const void *bottom;
    size_t size;
    (void)self;
    __sanitizer_finish_switch_fiber(NULL, &bottom, &size);
    san_record_idle_stack(last, bottom, size);
}
static inline void san_stack_release(char *lo, size_t size)
{
    __asan_unpoison_memory_region(lo, size);
}
#else
static inline void san_stack_release(char *lo, size_t size)
{
    (void)lo, (void)size;
}
static inline void san_switch_begin(struct task *prev, struct task *next, bool dying)
{
    (void)prev, (void)next, (void)dying;
}
static inline void san_switch_end(struct task *self, struct task *last)
{
    (void)self, (void)last;
}
static inline void san_task_first(struct task *self, struct task *last)
{
    (void)self, (void)last;
}
#endif

#if defined(SY_TSAN)
#include <sanitizer/tsan_interface.h>
/* Each task is a TSan fiber; the idle task is the host thread's own.  The
 * switch synchronises the leaving fiber with the arriving one (flags 0), as
 * the runtime's own locks and queues do. */
static inline void san_task_new(struct task *t)
{
    t->tsan_fiber = __tsan_create_fiber(0);
}
static inline void san_task_dead(struct task *t)
{
    __tsan_destroy_fiber(t->tsan_fiber);
    t->tsan_fiber = NULL;
}
static inline void san_cpu_enter(struct cpu *c)
{
    c->idle.tsan_fiber = __tsan_get_current_fiber();
}
static inline void san_tsan_switch(struct task *next)
{
    __tsan_switch_to_fiber(next->tsan_fiber, 0);
}
#else
static inline void san_task_new(struct task *t)
{
    (void)t;
}
static inline void san_task_dead(struct task *t)
{
    (void)t;
}
static inline void san_cpu_enter(struct cpu *c)
{
    (void)c;
}
static inline void san_tsan_switch(struct task *next)
{
    (void)next;
}
#endif

#if defined(SY_VALGRIND)
#include <valgrind/valgrind.h>
static inline unsigned san_stack_register(char *lo, size_t size)
{
    return VALGRIND_STACK_REGISTER(lo, lo + size);
}
static inline void san_stack_unregister(unsigned id)
{
    VALGRIND_STACK_DEREGISTER(id);
}
#else
static inline unsigned san_stack_register(char *lo, size_t size)
{
    (void)lo, (void)size;
    return 0;
}
static inline void san_stack_unregister(unsigned id)
{
    (void)id;
}
#endif

#endif /* SY_SAN_H */

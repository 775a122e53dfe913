/* The switch: it keeps every callee-saved register (an assembly helper fills
 * them with patterns on both sides), returns `last`, and keeps each task's
 * FP control state (rounding mode, x87 precision) while others change
 * theirs. */
#include "test.h"

#include <fenv.h>
#include <stdint.h>

#include "internal.h"

uint64_t regs_switch(void *from, void *to, void *last, uint64_t seed, void **last_out);

static struct arch_ctx main_ctx, peer_ctx;
static uint64_t peer_mask;
static long peer_rounds;

static void peer_entry(void)
{
    for (uint64_t i = 1;; i++) {
        peer_mask |= regs_switch(&peer_ctx, &main_ctx, (void *)2, 0x9e3779b97f4a7c15ull * i,
                                 NULL);
        peer_rounds++;
    }
}

static void test_callee_saved(void)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    struct arch_ctx fp;
    arch_fpctl_read(&fp);
    arch_ctx_init(&peer_ctx, stack + sizeof stack, &fp);
    peer_ctx.pc = (uint64_t)(uintptr_t)peer_entry;
#if defined(__x86_64__)
    peer_ctx.sp -= 8; /* enter as if called: rsp % 16 == 8 */
#endif
    uint64_t mask = 0;
    for (uint64_t i = 1; i <= 100000; i++) {
        void *last = NULL;
        mask |= regs_switch(&main_ctx, &peer_ctx, (void *)1, 0xdeadbeefcafef00dull ^ (i << 7),
                            &last);
        CHECK(last == (void *)2); /* the peer passed 2 as its `last` */
    }
    CHECK_EQ(mask, 0);
    CHECK_EQ(peer_mask, 0);
    CHECK_EQ(peer_rounds, 100000 - 1);
}

/* ----- FP control state through the runtime: each task its own ----- */

#if defined(__x86_64__)
static unsigned get_fcw(void)
{
    unsigned short cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return cw;
}
static __attribute__((unused)) void set_fcw(unsigned cw)
{
    unsigned short v = (unsigned short)cw;
    __asm__ volatile("fldcw %0" ::"m"(v));
}
static unsigned get_mxcsr(void)
{
    unsigned v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v;
}
#endif

static const int modes[] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
static int fp_errors;

/* 1/3 rounds differently under each mode: a real computation, not just the
 * control register. */
static double third(void)
{
    volatile double one = 1.0, three = 3.0;
    return one / three;
}

static int fp_task(void *arg)
{
    int m = modes[(long)arg % 4];
    CHECK_EQ(fesetround(m), 0);
#if defined(__x86_64__)
    unsigned cw = get_fcw();
#if !defined(SY_VALGRIND) /* valgrind does not model x87 precision control */
    cw = (cw & ~0x300u) | ((unsigned)((long)arg % 3) << 8);
    set_fcw(cw);
#endif
#endif
    double want = third();
    for (int i = 0; i < 2000; i++) {
        sy_yield();
        if (fegetround() != m || third() != want)
            fp_errors++;
#if defined(__x86_64__)
        if (get_fcw() != cw || ((get_mxcsr() >> 13) & 3) != ((unsigned)m >> 10 & 3))
            fp_errors++;
#endif
    }
    return 0;
}

static int init_fp(void *arg)
{
    (void)arg;
    int before = fegetround();
    for (long i = 0; i < 8; i++)
        CHECK(sy_spawn(fp_task, (void *)i, NULL) > 0);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    CHECK_EQ(fegetround(), before); /* init never changed its own */
    return 0;
}

static void test_fp_control_per_task(void)
{
    fp_errors = 0;
    run_init(init_fp, NULL, 0);
    CHECK_EQ(fp_errors, 0);
    CHECK_EQ(fegetround(), FE_TONEAREST); /* the booting thread's is untouched */
}

/* a child inherits its parent's FP control state at spawn */
static int report_round(void *arg)
{
    (void)arg;
    return fegetround() == FE_UPWARD ? 1 : 2;
}

static int init_inherit(void *arg)
{
    (void)arg;
    fesetround(FE_UPWARD);
    int c = sy_spawn(report_round, NULL, NULL);
    fesetround(FE_TONEAREST);
    int st = 0;
    CHECK_EQ(sy_wait(c, &st, 0), c);
    return st;
}

static void test_fp_inherit(void)
{
    run_init(init_inherit, NULL, 1);
}

int main(void)
{
    RUN(test_callee_saved);
    RUN(test_fp_control_per_task);
    RUN(test_fp_inherit);
    return 0;
}

/* errno belongs to the task: saved and restored across every switch, and the
 * booting thread's own errno survives sy_run. */
#include "test.h"

#include <errno.h>

static int bad;
static int chan;

static int errno_task(void *arg)
{
    int mine = (int)(long)arg;
    errno = mine;
    for (int i = 0; i < 1000; i++) {
        sy_yield();
        if (errno != mine)
            bad++;
        errno = mine; /* sy_yield may not touch it, but be strict */
    }
    errno = mine;
    sy_spin_lock(&(sy_spinlock){0}); /* a lock of its own, nobody else's */
    if ((long)arg % 2) {
        sy_wakeup(&chan);
    } else {
        sy_sleep(&chan, NULL); /* woken by an odd task, or by init */
        if (errno != mine)
            bad++;
    }
    return 0;
}

static int init_errno(void *arg)
{
    (void)arg;
    for (long i = 1; i <= 16; i++)
        sy_spawn(errno_task, (void *)(i * 3), NULL);
    errno = 1234;
    sy_yield();
    CHECK_EQ(errno, 1234);
    while (sy_wait(-1, NULL, SY_WNOHANG) >= 0) {
        sy_wakeup(&chan);
        sy_yield();
        if (errno != 1234)
            bad++;
    }
    return 0;
}

static void test_errno_per_task(void)
{
    bad = 0;
    errno = 77;
    run_init(init_errno, NULL, 0);
    CHECK_EQ(errno, 77);
    CHECK_EQ(bad, 0);
}

int main(void)
{
    RUN(test_errno_per_task);
    return 0;
}

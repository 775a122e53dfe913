/* 100,000 tasks alive at once, all asleep; the memory map stays small
 * (guard regions: one VMA per slab of stacks, not two per stack). */
#include "test.h"

#include <errno.h>

#include "internal.h"

#define N TASKS(100000)

static int chan, woke;

static int sleeper(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_sleep(&chan, NULL), 0);
    woke++;
    return 1;
}

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static int init_many(void *arg)
{
    (void)arg;
    int maps0 = count_maps();
    for (int i = 0; i < N; i++)
        CHECK(sy_spawn(sleeper, NULL, NULL) > 0);
    sy_yield(); /* every one of them runs and falls asleep */
    CHECK_EQ(sy_ps(NULL, 0), N + 1);
    int maps = count_maps() - maps0;
    bool regions;
    sy__stacks_mapped(&regions);
    fprintf(stderr, "[%d new mappings for %d stacks, guard %s] ", maps, N,
            regions ? "regions" : "pages");
#if !defined(__SANITIZE_THREAD__) /* TSan maps memory for each fiber */
    if (regions)
        CHECK(maps < N / 20);
#endif
    CHECK_EQ(sy_wakeup(&chan), N);
    int st, n = 0;
    long sum = 0;
    while (sy_wait(-1, &st, 0) > 0) {
        n++;
        sum += st;
    }
    CHECK_EQ(n, N);
    CHECK_EQ(sum, N);
    CHECK_EQ(woke, N);
    return 0;
}

static void test_100k_asleep(void)
{
    run_init(init_many, NULL, 0);
}

int main(void)
{
    RUN(test_100k_asleep);
    return 0;
}

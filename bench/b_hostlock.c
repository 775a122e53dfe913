/* b_hostlock - what counting host locks in tasks costs (src/hostlock.c).
 *
 *   MutexTask     an uncontended pthread_mutex_lock + unlock inside a task,
 *                 through the runtime's wrappers (counted), ns per pair
 *   MutexThread   the same on a plain thread outside any runtime, through
 *                 the same wrappers (forwarded untouched): the reference
 *   MutexLibc     the same calling the C library's functions directly
 *                 (found with dlsym(RTLD_NEXT)): no wrapper at all
 *
 * One CPU; the three are measured in turn in each repetition.  The notes
 * give the medians' ratios: task / thread is the price of the count,
 * thread / libc that of the wrapper outside the runtime.
 *
 *   b_hostlock mutex|all [N]      (N pairs per measurement, default 20M) */
#include "bench.h"

#include <dlfcn.h>
#include <pthread.h>

static int reps;
static long pairs;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static int (*libc_lock)(pthread_mutex_t *);
static int (*libc_unlock)(pthread_mutex_t *);

static double wrapped_ns(void)
{
    for (long i = 0; i < 1000; i++) { /* warm */
        pthread_mutex_lock(&mutex);
        pthread_mutex_unlock(&mutex);
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < pairs; i++) {
        pthread_mutex_lock(&mutex);
        pthread_mutex_unlock(&mutex);
    }
    return (double)(now_ns() - t0) / (double)pairs;
}

static double libc_ns(void)
{
    for (long i = 0; i < 1000; i++) {
        libc_lock(&mutex);
        libc_unlock(&mutex);
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < pairs; i++) {
        libc_lock(&mutex);
        libc_unlock(&mutex);
    }
    return (double)(now_ns() - t0) / (double)pairs;
}

static double task_result;

static int in_task(void *arg)
{
    (void)arg;
    task_result = wrapped_ns();
    return 0;
}

static void bench_mutex(long n)
{
    double task[64], thread[64], libc[64];
    pairs = n;
    libc_lock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
    libc_unlock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_unlock");
    if (!libc_lock || !libc_unlock) {
        fprintf(stderr, "b_hostlock: no pthread_mutex_lock after the runtime's\n");
        exit(1);
    }
    sy_config cfg = {.ncpu = 1};
    for (int i = 0; i < reps; i++) { /* interleaved: same conditions */
        libc[i] = libc_ns();
        thread[i] = wrapped_ns(); /* the booting thread, before sy_run: no runtime */
        if (sy_run(&cfg, in_task, NULL) != 0) {
            fprintf(stderr, "b_hostlock: sy_run failed\n");
            exit(1);
        }
        task[i] = task_result;
    }
    report("MutexLibc", "switchyard_mutex_libc", "lock_unlock", n, libc, reps, "ns/op", 0);
    report("MutexThread", "switchyard_mutex_thread", "lock_unlock", n, thread, reps, "ns/op", 0);
    report("MutexTask", "switchyard_mutex_task", "lock_unlock", n, task, reps, "ns/op", 0);
    note("mutex lock+unlock in a task / on a plain thread = %.3f (median %.2f / %.2f ns)",
         median(task, reps) / median(thread, reps), median(task, reps), median(thread, reps));
    note("plain thread through the wrappers / the C library's own = %.3f (median %.2f / %.2f ns)",
         median(thread, reps) / median(libc, reps), median(thread, reps), median(libc, reps));
}

int main(int argc, char **argv)
{
    int a = bench_args(argc, argv, "mutex|all [N]");
    reps = bench_reps();
    const char *what = argv[a], *cnt = a + 1 < argc ? argv[a + 1] : NULL;
    if (strcmp(what, "mutex") && strcmp(what, "all")) {
        fprintf(stderr, "%s: unknown benchmark '%s'\n", argv[0], what);
        return 2;
    }
    bench_mutex(bench_count(cnt, 20000000));
    return 0;
}

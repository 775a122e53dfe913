/* test.h - tiny assertion helpers for the test programs.
 *
 * CHECK(cond)           fail with file:line and the condition
 * CHECK_EQ(a, b)        fail showing both values (as long long)
 * Failures print and exit(1); each program is one topic, its exit status is
 * what tests/run.sh counts. */
#ifndef SY_TEST_H
#define SY_TEST_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "switchyard.h"

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

#define CHECK_EQ(a, b)                                                                   \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ != b_) {                                                                  \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", __FILE__, \
                    __LINE__, #a, a_, #b, b_);                                           \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* Run one case: print its name, run it.  SY_TEST_ONLY=name runs only the
 * cases whose name contains `name`.
 * Under ThreadSanitizer each case runs in a child process of its own, its
 * failure (exit status, signal) the program's, so that one case's aftermath
 * does not slow the next: with GCC 12's runtime it did, five to eight times.
 * Each task is a TSan fiber, and once a case has had thousands alive at
 * once, every synchronisation for the rest of the process walks vector
 * clocks that large (t_smp's pingpong went from 2 s to 14 s after
 * test_tree, and a loaded machine took t_smp and t_sleep to their 60 s).
 * (Not under ASan: there, the CPU threads of a forked child die with a
 * stack-use-after-scope report inside ASan's own sigaltstack call at thread
 * exit, every time in t_stress; not understood.)  A test program must be
 * single-threaded between its cases: TSan refuses to start threads in the
 * child of a multi-threaded fork. */
static inline void run_apart_(void (*fn)(void), const char *name)
{
#if !defined(__SANITIZE_THREAD__)
    (void)name;
    fn();
    return;
#endif
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        fn();
        fflush(NULL);
        exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "%s: killed by signal %d\n", name, WTERMSIG(st));
        exit(128 + WTERMSIG(st));
    }
    if (WEXITSTATUS(st) != 0)
        exit(WEXITSTATUS(st));
}

#define RUN(fn)                                                        \
    do {                                                               \
        const char *only_ = getenv("SY_TEST_ONLY");                    \
        if (!only_ || strstr(#fn, only_)) {                            \
            fprintf(stderr, "  %-40s", #fn);                           \
            run_apart_(fn, #fn);                                       \
            fprintf(stderr, " ok\n");                                  \
        }                                                              \
    } while (0)

static inline uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A watchdog for programs whose cases may hang (a lost wakeup, a task
 * that blocks its CPU): a case between case_begin and case_end that runs
 * longer than `limit_s` fails with its name and `hint`.  One thread for
 * the program, started by the first case_begin (so that the program stays
 * single-threaded before: RUN may fork). */
static uint64_t case_deadline_; /* 0: no case running (atomic) */
static const char *case_name_, *case_hint_;
static int case_limit_s_;

static inline void *case_watchdog_(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
        uint64_t d = __atomic_load_n(&case_deadline_, __ATOMIC_ACQUIRE);
        if (d && mono_ns() > d) {
            fprintf(stderr, "\nwatchdog: %s still running after %d s (%s)\n", case_name_,
                    case_limit_s_, case_hint_);
            _exit(1);
        }
    }
    return NULL;
}

static inline void case_begin(const char *name, int limit_s, const char *hint)
{
    static int started;
    if (!started) {
        pthread_t wd;
        if (pthread_create(&wd, NULL, case_watchdog_, NULL) != 0) {
            fprintf(stderr, "case_begin: no watchdog thread\n");
            exit(1);
        }
        pthread_detach(wd);
        started = 1;
    }
    case_name_ = name;
    case_hint_ = hint;
    case_limit_s_ = limit_s;
    __atomic_store_n(&case_deadline_, mono_ns() + (uint64_t)limit_s * 1000000000ull,
                     __ATOMIC_RELEASE);
}

static inline void case_end(void)
{
    __atomic_store_n(&case_deadline_, 0, __ATOMIC_RELEASE);
}

/* Compute for `ns` of wall time without calling the runtime. */
static inline void busy_ns(uint64_t ns)
{
    uint64_t until = mono_ns() + ns;
    while (mono_ns() < until)
        ;
}

/* The ps entry of the task `pid` (which must exist). */
static inline sy_task_info task_info(int pid)
{
    sy_task_info v[64];
    int n = sy_ps(v, 64);
    for (int i = 0; i < n && i < 64; i++)
        if (v[i].pid == pid)
            return v[i];
    fprintf(stderr, "task_info: no task %d\n", pid);
    exit(1);
}

/* Boot a runtime with `ncpu` CPUs for one case and check init's status. */
static inline void run_init_cpus(sy_fn init, void *arg, int want, int ncpu)
{
    sy_config c = {.ncpu = ncpu};
    int st = sy_run(&c, init, arg);
    if (st != want) {
        fprintf(stderr, "sy_run (%d CPUs) returned %d (%s), want %d\n", ncpu, st,
                st < 0 ? sy_strerror(st) : "status", want);
        exit(1);
    }
}

/* One CPU: cases that rely on its deterministic round-robin order. */
static inline void run_init(sy_fn init, void *arg, int want)
{
    run_init_cpus(init, arg, want, 1);
}

/* How many tasks a case may keep alive at once: ThreadSanitizer makes each
 * task a fiber and stops at 8128 of them, so cases scale down under it. */
#if defined(__SANITIZE_THREAD__)
#define TASKS(n) ((n) > 4000 ? 4000 : (n))
#define TREE_DEPTH(d) ((d) > 10 ? 10 : (d)) /* 2^(d+1) tasks */
#else
#define TASKS(n) (n)
#define TREE_DEPTH(d) (d)
#endif

/* CPUs for the multi-CPU cases: SY_TEST_CPUS, or 4 (more than this machine
 * has cores is fine: CPUs are threads, and oversubscription finds races). */
static inline int test_cpus(void)
{
    const char *s = getenv("SY_TEST_CPUS");
    int n = s ? atoi(s) : 4;
    return n > 0 ? n : 4;
}

#endif

/*
 * cpu.c - booting the runtime: sy_run() validates the configuration, makes
 * the calling thread CPU 0 (its own context becomes CPU 0's idle task),
 * spawns init as pid 1, runs the idle loop until no task is left, and takes
 * everything down again.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct runtime sy__rt;

static int running; /* one runtime per process at a time */

uint64_t sy__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Fill in defaults and check every field; 0 or -EINVAL. */
static int config_load(const sy_config *cfg)
{
    sy_config c = {0};
    if (cfg)
        c = *cfg;
    if (c.ncpu < 0 || c.ncpu > 1) /* several CPUs: not yet */
        return -EINVAL;
    if (c.max_tasks < 0 || c.max_tasks > MAX_TASKS_LIMIT)
        return -EINVAL;
    if (c.stack_size && (c.stack_size < SY_STACK_MIN || c.stack_size > SY_STACK_MAX))
        return -EINVAL;
    if (c.flags & ~SY_ACCT_PRECISE)
        return -EINVAL;
    if (c.tick_us > 1000000)
        return -EINVAL;
    size_t pg = sy__page_size();
    rt.ncpu = c.ncpu ? c.ncpu : 1;
    rt.max_tasks = c.max_tasks ? (uint32_t)c.max_tasks : MAX_TASKS_LIMIT;
    rt.stack_size = ((c.stack_size ? c.stack_size : SY_STACK_DEFAULT) + pg - 1) & ~(pg - 1);
    rt.flags = c.flags;
    rt.tick_ns = (uint64_t)(c.tick_us ? c.tick_us : 4000) * 1000;
    return 0;
}

static void cpu_init(struct cpu *c, int id)
{
    c->id = id;
    c->errno_ptr = &errno;
    c->idle.state = SY_RUNNING;
    c->idle.pid = 0;
    c->idle.cpu = c;
    strcpy(c->idle.name, "idle");
    c->curr = &c->idle;
    c->switch_ns = sy__now_ns();
}

int sy_run(const sy_config *cfg, sy_fn init, void *arg)
{
    if (!init)
        return -EINVAL;
    if (__atomic_exchange_n(&running, 1, __ATOMIC_ACQUIRE))
        return -EBUSY;
    int caller_errno = errno; /* the booting thread's errno is its own */

    memset(&rt, 0, sizeof rt);
    int err = config_load(cfg);
    if (err)
        goto out;
    rt.cpus = calloc((size_t)rt.ncpu, sizeof *rt.cpus);
    if (!rt.cpus) {
        err = -ENOMEM;
        goto out;
    }
    if ((err = sy__tasks_init()) != 0)
        goto out_cpus;
    sy__stacks_init();
    rt.coarse_ns = sy__now_ns();

    struct cpu *c0 = &rt.cpus[0];
    cpu_init(c0, 0);
    sy__cpu_tls = c0;
    if ((err = sy__overflow_handler_install(c0)) != 0)
        goto out_tls;
    if ((err = sy__tick_start(c0)) != 0)
        goto out_overflow;

    sy_attr a = {.name = "init"};
    int pid;
    err = sy__spawn(NULL, init, arg, &a, &pid);
    if (err)
        goto out_tick;
    rt.init = sy__task_lookup(pid); /* pid 1: slot 0 of a new table */

    sy__idle_loop(c0);
    err = rt.deadlocked ? -EDEADLK : rt.init_status;

out_tick:
    sy__tick_stop(c0);
out_overflow:
    sy__overflow_handler_remove(c0);
out_tls:
    sy__cpu_tls = NULL;
    sy__stacks_fini();
    sy__tasks_fini();
out_cpus:
    free(rt.cpus);
    rt.cpus = NULL;
out:
    errno = caller_errno;
    __atomic_store_n(&running, 0, __ATOMIC_RELEASE);
    return err;
}

/*
 * ps.c - introspection: the ps table, state names and error strings.
 * (The accounting tick is in preempt.c: the same signal is the trap.)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "runq.h"
#include "wait.h"

/* ----------------------------------------------------------------- ps */

static void info_of(const struct task *t, sy_task_info *i)
{
    i->pid = t->pid;
    i->ppid = t->parent ? t->parent->pid : 0;
    i->state = READ_ONCE(t->state);
    struct cpu *c = READ_ONCE(t->cpu);
    i->cpu = c ? READ_ONCE(c->slot) : 0;
    uint64_t since = __atomic_load_n(&t->long_since, __ATOMIC_RELAXED), now = sy__now_ns();
    i->long_call_ns = since && now > since ? now - since : 0;
    i->nmigrations = READ_ONCE(t->nmigrations);
    memcpy(i->name, t->name, SY_NAME_MAX);
    i->nvcsw = READ_ONCE(t->nvcsw);
    i->nivcsw = READ_ONCE(t->nivcsw);
    i->cpu_ns = (rt.flags & SY_ACCT_PRECISE) ? READ_ONCE(t->cpu_ns)
                                             : READ_ONCE(t->ticks) * rt.tick_ns;
    i->wait_ns = READ_ONCE(t->wait_ns);
    i->stack_size = t->stack_size;
    static const char *const kinds[] = {
        [WK_NONE] = "",        [WK_SLEEP] = "sleep",   [WK_WAIT] = "wait",
        [WK_MUTEX] = "mutex",  [WK_COND] = "cond",     [WK_SEM] = "sem",
        [WK_RWLOCK] = "rwlock", [WK_WAITGROUP] = "waitgroup", [WK_ONCE] = "once",
        [WK_CHAN] = "chan",    [WK_SELECT] = "select", [WK_IO] = "io", [WK_PTHREAD] = "pthread"};
    int k = READ_ONCE(t->wait_kind);
    bool asleep = i->state == SY_SLEEPING && k > WK_NONE && k <= WK_PTHREAD;
    i->wait_kind = asleep ? kinds[k] : "";
    i->wchan = asleep ? READ_ONCE(t->wchan) : NULL;
    i->mutexes = READ_ONCE(t->mutexes);
}

int sy_ps(sy_task_info *buf, int max)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    if (max < 0 || (max > 0 && !buf))
        return -EINVAL;
    int n = 0;
    /* the caller's own accounting is brought up to date first */
    if (rt.flags & SY_ACCT_PRECISE) {
        uint64_t now = sy__now_ns();
        WRITE_ONCE(c->curr->cpu_ns, c->curr->cpu_ns + now - c->switch_ns); /* ps reads it */
        c->switch_ns = now;
    }
    rt_lock(&rt.tree_lock);
    for (uint32_t s = 0; s < rt.nslots; s++) {
        const struct task *t = &rt.chunks[s / TASK_CHUNK][s % TASK_CHUNK];
        if (READ_ONCE(t->state) == SY_UNUSED)
            continue;
        if (n < max)
            info_of(t, &buf[n]);
        n++;
    }
    rt_unlock(&rt.tree_lock);
    return n;
}

int sy_ps_print(int fd)
{
    if (!this_cpu())
        return -EPERM;
    /* a bad fd was a silent 0 (and glibc's dprintf leaks its buffer on one) */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    int n = sy_ps(NULL, 0);
    if (n < 0)
        return n;
    int cap = n + 16;
    sy_task_info *v = malloc((size_t)cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    n = sy_ps(v, cap);
    if (n > cap)
        n = cap;
    if (dprintf(fd, "%7s %7s %-9s %3s %6s %8s %8s %10s %10s %3s %-28s %s\n", "PID", "PPID",
                "STATE", "CPU", "MIGR", "NVCSW", "NIVCSW", "CPU(us)", "WAIT(us)", "MTX",
                "WCHAN", "NAME") < 0) {
        int e = errno;
        free(v);
        return e ? -e : -EIO;
    }
    for (int i = 0; i < n; i++) {
        char wchan[32] = "-"; /* what it waits on: "mutex 0x55..." */
        if (v[i].wait_kind[0])
            snprintf(wchan, sizeof wchan, "%s %p", v[i].wait_kind, v[i].wchan);
        else if (v[i].long_call_ns)
            snprintf(wchan, sizeof wchan, "long call %llu ms",
                     (unsigned long long)(v[i].long_call_ns / 1000000));
        dprintf(fd, "%7d %7d %-9s %3d %6llu %8llu %8llu %10llu %10llu %3d %-28s %s\n", v[i].pid,
                v[i].ppid, v[i].long_call_ns ? "LONGCALL" : sy_state_name(v[i].state), v[i].cpu,
                (unsigned long long)v[i].nmigrations, (unsigned long long)v[i].nvcsw,
                (unsigned long long)v[i].nivcsw, (unsigned long long)(v[i].cpu_ns / 1000),
                (unsigned long long)(v[i].wait_ns / 1000), v[i].mutexes, wchan, v[i].name);
    }
    unsigned long ung = sy__stacks_unguarded();
    if (ung)
        dprintf(fd, "(%lu stacks without a guard page: vm.max_map_count reached)\n", ung);
    free(v);
    return 0;
}

const char *sy_state_name(int state)
{
    switch (state) {
    case SY_UNUSED: return "UNUSED";
    case SY_EMBRYO: return "EMBRYO";
    case SY_RUNNABLE: return "RUNNABLE";
    case SY_RUNNING: return "RUNNING";
    case SY_SLEEPING: return "SLEEPING";
    case SY_ZOMBIE: return "ZOMBIE";
    default: return "?";
    }
}

const char *sy_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case -EPERM: return "not called from a Switchyard task";
    case -EINVAL: return "invalid argument";
    case -ENOMEM: return "out of memory";
    case -EAGAIN: return "task limit reached";
    case -ECHILD: return "no such child";
    case -ESRCH: return "no such task";
    case -EINTR: return "interrupted: the task was killed";
    case -EBUSY: return "a runtime is already running in this process";
    case -EDEADLK: return "deadlock: every task was asleep with nobody to wake it";
    case -ETIMEDOUT: return "timed out";
    case -ENOSPC: return "no room for another declaration";
    case -EBADF: return "bad file descriptor";
    default: return "unknown error";
    }
}

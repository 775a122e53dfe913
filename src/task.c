/*
 * task.c - the task table and the life of a task: spawn, exit, wait, kill,
 * and the hand-over of orphans to init.  xv6's proc.c without its O(NPROC)
 * scans: pids index the table directly, each task keeps a list of its
 * children with the zombies at the front, so sy_wait(-1) and exit are O(1)
 * apart from handing children over.
 *
 * rt.tree_lock (xv6's wait_lock) protects the table and every parent/child
 * link.  An exiting task drops it before its last switch; its `dying` flag
 * stays set until the next task on its CPU has released its stack
 * (sy__task_dead), and nobody frees a task before that (off_stack), so a
 * parent never reaps a child whose stack is still in use.  (It used to be
 * held across the switch, and so across the scheduler's event handling,
 * which on two CPUs kept the spawner and the reaper waiting for it.)
 *
 * Pids: pid = (generation << SLOT_BITS | slot) + 1.  init takes slot 0
 * first, so it is pid 1.  A slot's generation changes each time it is
 * reused, so a stale pid names no task (until 512 generations wrap).
 */
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "runq.h"
#include "san.h"

#define GEN_MASK ((1u << (31 - SLOT_BITS)) - 1)

/* t->dying: 0, or the task exited and its stack is still in use */
#define DYING_CHILD 1  /* it has a parent: it clears the flag, the parent reaps */
#define DYING_ORPHAN 2 /* no parent: sy__task_dead frees it */

/* A slot is cleared in two parts, each where its cache lines are touched
 * anyway: reaping clears from rq_next up to the accounting (the lines it
 * reads and unlinks), the next spawn of the slot the rest (accounting,
 * name), and the context is rebuilt by arch_ctx_init.  With a million
 * tasks alive none of these lines is in the cache any more; clearing the
 * whole task at reap cost three more lines per task (x86-64: 6 lines of 64
 * bytes), 1-CPU spawn+wait of 1 M tasks about 8 ns a task. */
#define CLEAR_REAP_FROM offsetof(struct task, rq_next)
#define CLEAR_SPAWN_FROM offsetof(struct task, nvcsw)
_Static_assert(offsetof(struct task, ctx) == 0 && CLEAR_REAP_FROM >= sizeof(struct arch_ctx) &&
                   CLEAR_REAP_FROM < sizeof(struct arch_ctx) + sizeof(void *),
               "the two clears and the context cover the whole task");
_Static_assert(offsetof(struct task, gen) >= CLEAR_SPAWN_FROM &&
                   offsetof(struct task, slot) >= CLEAR_SPAWN_FROM,
               "spawn's clear keeps gen and slot");

static inline int make_pid(uint32_t gen, uint32_t slot)
{
    SY_ASSERT(((gen & GEN_MASK) << SLOT_BITS | slot) < INT32_MAX, NULL, "pid past INT_MAX");
    return (int)(((gen & GEN_MASK) << SLOT_BITS | slot) + 1);
}

static inline struct task *slot_task(uint32_t slot)
{
    return &rt.chunks[slot / TASK_CHUNK][slot % TASK_CHUNK];
}

int sy__tasks_init(void)
{
    size_t nchunks = (rt.max_tasks + TASK_CHUNK - 1) / TASK_CHUNK;
    rt.chunks = calloc(nchunks, sizeof *rt.chunks);
    if (!rt.chunks)
        return -ENOMEM;
    rt.nslots = 0;
    rt.free_tasks = NULL;
    rt.ntasks = rt.nlive = 0;
    return 0;
}

void sy__tasks_fini(void)
{
    size_t nchunks = (rt.max_tasks + TASK_CHUNK - 1) / TASK_CHUNK;
    for (size_t i = 0; i < nchunks && rt.chunks[i]; i++)
        munmap(rt.chunks[i], TASK_CHUNK * sizeof(struct task));
    free(rt.chunks);
    rt.chunks = NULL;
}

/* An UNUSED slot, or NULL when max_tasks are in use (-EAGAIN) or a chunk
 * cannot be mapped (-ENOMEM, in *err).  tree_lock held. */
static struct task *task_alloc(int *err)
{
    assert_held(&rt.tree_lock);
    struct task *t = rt.free_tasks;
    if (t) {
        rt.free_tasks = t->rq_next;
        t->rq_next = NULL;
        /* the part reaping left; a new generation, so old pids miss */
        uint32_t gen = t->gen + 1, slot = t->slot;
        /* the last slot's last generation would make pid 2^31, past int:
         * that one slot skips it (its pids come back after 511 reuses) */
        if (slot == MAX_TASKS_LIMIT - 1 && (gen & GEN_MASK) == GEN_MASK)
            gen++;
        memset((char *)t + CLEAR_SPAWN_FROM, 0, sizeof *t - CLEAR_SPAWN_FROM);
        t->gen = gen;
        t->slot = slot;
    } else {
        if (rt.nslots >= rt.max_tasks) {
            *err = -EAGAIN;
            return NULL;
        }
        uint32_t slot = rt.nslots;
        struct task **chunk = &rt.chunks[slot / TASK_CHUNK];
        if (!*chunk) {
            /* mmap'd, so untouched tasks cost no memory */
            void *m = mmap(NULL, TASK_CHUNK * sizeof(struct task), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) {
                *err = -ENOMEM;
                return NULL;
            }
            *chunk = m;
        }
        rt.nslots++;
        t = slot_task(slot);
        t->slot = slot;
        t->gen = 0;
    }
    rt.ntasks++;
    return t;
}

/* Return a slot to the table.  tree_lock held; t is a ZOMBIE off its stack
 * (reaped, or freed by sy__task_dead).  Clears the middle part (state =
 * SY_UNUSED); task_alloc clears the rest and starts a new generation. */
void sy__task_free(struct task *t)
{
    assert_held(&rt.tree_lock);
    /* a reaped child is off its stack (dying clear); an orphan is freed by
     * the task that released its stack (sy__task_dead) */
    SY_ASSERT(READ_ONCE(t->state) == SY_ZOMBIE &&
                  __atomic_load_n(&t->dying, __ATOMIC_RELAXED) != DYING_CHILD,
              t, "freeing a task that is not a ZOMBIE off its stack");
    memset((char *)t + CLEAR_REAP_FROM, 0, CLEAR_SPAWN_FROM - CLEAR_REAP_FROM);
    t->rq_next = rt.free_tasks;
    rt.free_tasks = t;
    rt.ntasks--;
}

/* The live or zombie task with this pid, or NULL.  tree_lock held. */
struct task *sy__task_lookup(int pid)
{
    assert_held(&rt.tree_lock);
    if (pid <= 0)
        return NULL;
    uint32_t slot = (uint32_t)(pid - 1) & (MAX_TASKS_LIMIT - 1);
    if (slot >= rt.nslots)
        return NULL;
    struct task *t = slot_task(slot);
    if (t->pid != pid || READ_ONCE(t->state) == SY_UNUSED)
        return NULL;
    return t;
}

/* Wait until exited task t is off its stack (t->dying clear): the next
 * task on its CPU is about to release it (finish_slow), a few dozen
 * instructions after t's last switch, unless that host thread was just
 * descheduled.  tree_lock may be held: clearing the flag takes no lock. */
static void off_stack(struct task *t)
{
    for (unsigned n = 0; __atomic_load_n(&t->dying, __ATOMIC_ACQUIRE); n++) {
        if (n < 128)
            cpu_relax();
        else
            sched_yield();
    }
}

/* finish_slow, on t's CPU, after releasing the stack of t, which exited:
 * its parent may reap it from now on; a task without one is freed here. */
void sy__task_dead(struct task *t)
{
    if (__atomic_load_n(&t->dying, __ATOMIC_RELAXED) == DYING_ORPHAN) {
        rt_lock(&rt.tree_lock); /* nobody else can reach it: only the table */
        sy__task_free(t);
        rt_unlock(&rt.tree_lock);
    } else {
        __atomic_store_n(&t->dying, 0, __ATOMIC_RELEASE);
    }
}

/* ------------------------------------------------------- children lists */

/* A parent keeps two lists, linked through sib_next/sib_prev: live children
 * (`children`) and exited ones not yet reaped (`zombies`).  A task is on the
 * list that matches its state.  tree_lock held for all of these. */
static inline struct task **family_list(struct task *parent, const struct task *c)
{
    return READ_ONCE(c->state) == SY_ZOMBIE ? &parent->zombies : &parent->children;
}

static void child_link(struct task *parent, struct task *c)
{
    assert_held(&rt.tree_lock);
    struct task **head = family_list(parent, c);
    c->parent = parent;
    c->sib_prev = NULL;
    c->sib_next = *head;
    if (*head)
        (*head)->sib_prev = c;
    *head = c;
}

static void child_unlink(struct task *c)
{
    assert_held(&rt.tree_lock);
    if (c->sib_prev)
        c->sib_prev->sib_next = c->sib_next;
    else
        *family_list(c->parent, c) = c->sib_next;
    if (c->sib_next)
        c->sib_next->sib_prev = c->sib_prev;
    c->sib_next = c->sib_prev = NULL;
}

/* ----------------------------------------------------------------- spawn */

static bool attr_ok(const sy_attr *attr)
{
    if (!attr)
        return true;
    if (attr->stack_size && (attr->stack_size < SY_STACK_MIN || attr->stack_size > SY_STACK_MAX))
        return false;
    if (attr->flags & ~(SY_ATTR_PIN | SY_ATTR_NOPREEMPT))
        return false;
    if ((attr->flags & SY_ATTR_PIN) && (attr->cpu < 0 || attr->cpu >= rt.ncpu))
        return false;
    return true;
}

/* Spawn a child of `parent`.  Returns 0 and the pid in *pidp, or -errno. */
int sy__spawn(struct task *parent, sy_fn fn, void *arg, const sy_attr *attr, int *pidp)
{
    if (!fn || !attr_ok(attr))
        return -EINVAL;
    size_t size = rt.stack_size;
    if (attr && attr->stack_size) {
        size_t pg = sy__page_size();
        size = (attr->stack_size + pg - 1) & ~(pg - 1);
    }

    /* The stack first, outside tree_lock (it may mmap). */
    char *lo;
    int err = sy__stack_alloc(size, &lo);
    if (err)
        return err;

    /* The child inherits the FP control state (rounding, exception masks),
     * as a forked process does. */
    struct arch_ctx fp;
    arch_fpctl_read(&fp);

    rt_lock(&rt.tree_lock);
    struct task *t = task_alloc(&err);
    if (!t) {
        rt_unlock(&rt.tree_lock);
        sy__stack_free(lo, size);
        return err;
    }
    int pid = make_pid(t->gen, t->slot);
    t->pid = pid; /* first: task_set_state exempts pid 0, the idle tasks */
    task_set_state(t, SY_EMBRYO);
    t->fn = fn;
    t->arg = arg;
    t->stack_lo = lo;
    t->stack_size = size;
    const char *name = attr && attr->name ? attr->name : "task";
    strncpy(t->name, name, SY_NAME_MAX - 1);
    t->name[SY_NAME_MAX - 1] = '\0';
    t->pin = attr && (attr->flags & SY_ATTR_PIN) ? attr->cpu : -1;
    t->nopreempt = attr && (attr->flags & SY_ATTR_NOPREEMPT);
    t->tm_index = -1;
    if (parent)
        child_link(parent, t);
    __atomic_store_n(&rt.nlive, rt.nlive + 1, __ATOMIC_RELAXED);

    /* Its stack is not written until it runs. */
    arch_ctx_init(&t->ctx, lo + size, &fp);
    t->saved_errno = 0;
    san_task_new(t);

    /* EMBRYO -> RUNNABLE.  Once it is on a run queue it may run, exit and be
     * reaped on another CPU: `pid` was saved before (xv6's question: "why
     * save pid in a temp variable?"). */
    sy__make_runnable(t);
    rt_unlock(&rt.tree_lock);
    *pidp = pid;
    return 0;
}

int sy_spawn(sy_fn fn, void *arg, const sy_attr *attr)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    struct task *self = c->curr;
    if (__atomic_load_n(&self->killed, __ATOMIC_RELAXED))
        sy__task_exit(c, SY_EXIT_KILLED);
    int pid, err = sy__spawn(self, fn, arg, attr, &pid);
    /* A spawner may spawn for long without giving up its CPU: answer
     * requests for work here, and tell an idle CPU there is some. */
    if (rt.ncpu > 1)
        before_switch(c, EV_LOCKFREE, false); /* the step before a switch (runq.h),
                                                 without the switch */
    resched_point(c);
    return err ? err : pid;
}

/* ------------------------------------------------------------------ exit */

/* Hand the children of p (live and zombie) to init, or, if init is gone
 * (or is p), leave them parentless: a parentless zombie is freed at once, a
 * live one when it exits.  tree_lock held.  Returns whether init was given
 * a zombie to reap. */
static bool reparent_list(struct task *p, struct task *c)
{
    struct task *init = rt.init != p ? rt.init : NULL;
    bool zombies = false;
    while (c) {
        struct task *next = c->sib_next;
        if (init) {
            child_link(init, c);
            zombies |= READ_ONCE(c->state) == SY_ZOMBIE;
        } else {
            c->parent = NULL;
            c->sib_next = c->sib_prev = NULL;
            if (READ_ONCE(c->state) == SY_ZOMBIE) {
                off_stack(c); /* it may have exited just now */
                sy__task_free(c);
            }
        }
        c = next;
    }
    return zombies;
}

static bool reparent(struct task *p)
{
    bool live = reparent_list(p, p->children); /* both lists, always */
    bool zombies = reparent_list(p, p->zombies);
    bool z = live || zombies;
    p->children = p->zombies = NULL;
    return z;
}

/* A task exits holding sy_mutexes: whoever waits for them waits forever
 * (until killed, or the deadlock report).  Say so, with the pid that
 * sy_mutex_owner() and sy_ps_print()'s MTX column show. */
static __attribute__((noinline, cold)) void report_mutexes(struct task *p)
{
    char buf[200];
    int n = snprintf(buf, sizeof buf,
                     "switchyard: task %d (%s) exited holding %d sy_mutex%s; tasks that lock %s "
                     "will wait for ever\n",
                     p->pid, p->name, p->mutexes, p->mutexes == 1 ? "" : "es",
                     p->mutexes == 1 ? "it" : "them");
    ssize_t r = write(2, buf, n > 0 && n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
    (void)r;
}

void sy__task_exit(struct cpu *c, int status)
{
    struct task *p = c->curr;

    /* init is pid 1 (slot 0, generation 0): other tasks need not read
     * rt.init, whose cache line the idle CPUs' counters keep busy.  (Slot 0
     * names pid 1 again after 512 reuses; only init itself clears rt.init,
     * so this read needs no lock.) */
    if (unlikely(p->mutexes))
        report_mutexes(p);
    if (unlikely(p->once_top))
        sy__once_abandon(p); /* exiting inside an initialiser: not run */
    bool is_init = p->pid == 1 && p == READ_ONCE(rt.init);
    if (is_init)
        sy__kill_all(); /* init's death takes everyone with it */

    rt_lock(&rt.tree_lock);
    struct task *init = NULL;
    bool wake_init = false;
    if (p->children || p->zombies) {
        init = rt.init;
        wake_init = reparent(p);
    }
    p->exit_status = status;
    __atomic_store_n(&rt.nlive, rt.nlive - 1, __ATOMIC_RELEASE);
    if (rt.nlive == 0)
        sy__stop_all(); /* the last task: every CPU may leave its idle loop */
    if (is_init) {
        rt.init_status = status;
        WRITE_ONCE(rt.init, NULL);
    }
    struct task *parent = p->parent;
    bool wake_parent = false;
    if (parent)
        child_unlink(p); /* from the parent's live list ... */
    /* Until the next task on this CPU has released our stack, nobody may
     * free us (off_stack); a parentless task is freed by that task. */
    __atomic_store_n(&p->dying, parent ? DYING_CHILD : DYING_ORPHAN, __ATOMIC_RELAXED);
    task_set_state(p, SY_ZOMBIE);
    if (parent) {
        child_link(parent, p); /* ... to its zombies */
        /* Only a parent asleep in sy_wait needs a wakeup: it sleeps on
         * itself, and sy__sleep publishes that before it drops tree_lock. */
        wake_parent = READ_ONCE(parent->state) == SY_SLEEPING && READ_ONCE(parent->chan) == parent;
    }
    rt_unlock(&rt.tree_lock);

    /* The wakeups after the lock (they may kick a parked CPU): whoever we
     * found asleep on its channel stays asleep on it until woken, and a
     * wakeup that comes late only makes sy_wait look again.  The channels
     * are addresses: waking one touches no task that may be gone. */
    if (wake_init)
        sy__wakeup(init, -1);
    if (wake_parent)
        sy__wakeup(parent, -1);

    /* The next task releases our stack (finish_slow), then clears `dying`. */
    c->finish |= FINISH_DEAD;
    sy__schedule(c, p);
    __builtin_unreachable();
}

int sy_exit(int status)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    sy__task_exit(c, status);
}

/* ------------------------------------------------------------------ wait */

/* Reap zombie child z: collect its status and free its slot.  tree_lock held. */
static int reap(struct task *z, int *status)
{
    assert_held(&rt.tree_lock);
    off_stack(z); /* it may have exited just now, on another CPU */
    int pid = z->pid;
    if (status)
        *status = z->exit_status;
    child_unlink(z);
    sy__task_free(z);
    return pid;
}

int sy_wait(int pid, int *status, int flags)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    if (pid == 0 || pid < -1 || (flags & ~SY_WNOHANG))
        return -EINVAL;
    struct task *self = c->curr;
    if (__atomic_load_n(&self->killed, __ATOMIC_RELAXED))
        sy__task_exit(c, SY_EXIT_KILLED);

    rt_lock(&rt.tree_lock);
    for (;;) {
        struct task *z;
        if (pid == -1) {
            if (!self->children && !self->zombies) {
                rt_unlock(&rt.tree_lock);
                return -ECHILD;
            }
            z = self->zombies;
        } else {
            struct task *t = sy__task_lookup(pid);
            if (!t || t->parent != self) {
                rt_unlock(&rt.tree_lock);
                return -ECHILD;
            }
            z = READ_ONCE(t->state) == SY_ZOMBIE ? t : NULL;
        }
        if (z) {
            int r = reap(z, status);
            rt_unlock(&rt.tree_lock);
            return r;
        }
        if (flags & SY_WNOHANG) {
            rt_unlock(&rt.tree_lock);
            return 0;
        }
        /* xv6: sleep(p, &wait_lock).  sy__sleep makes us SLEEPING on
         * channel `self` before it drops tree_lock; an exiting child links
         * itself to our zombies under tree_lock, and then wakes `self` if
         * it saw us so: its wakeup cannot be lost. */
        c = this_cpu(); /* we may have moved since the last sleep */
        if (sy__sleep(c, self, &rt.tree_lock, 0) == -EINTR) {
            rt_unlock(&rt.tree_lock);
            return -EINTR;
        }
    }
}

/* ------------------------------------------------------------------ kill */

/* Mark t killed and wake it if it sleeps.  tree_lock held. */
static void kill_task(struct task *t)
{
    assert_held(&rt.tree_lock);
    __atomic_store_n(&t->killed, 1, __ATOMIC_SEQ_CST); /* then read chan: see sy__sleep */
    sy__wake_sleeper(t, ANY_SLEEP, -EINTR);
}

int sy_kill(int pid)
{
    if (!this_cpu())
        return -EPERM;
    rt_lock(&rt.tree_lock);
    struct task *t = sy__task_lookup(pid);
    if (!t || READ_ONCE(t->state) == SY_ZOMBIE) {
        rt_unlock(&rt.tree_lock);
        return -ESRCH;
    }
    kill_task(t);
    rt_unlock(&rt.tree_lock);
    return 0;
}

/* Kill every live task but the caller (init's exit, deadlock). */
void sy__kill_all(void)
{
    struct cpu *c = this_cpu();
    rt_lock(&rt.tree_lock);
    for (uint32_t s = 0; s < rt.nslots; s++) {
        struct task *t = slot_task(s);
        int st = READ_ONCE(t->state);
        if (t != c->curr && st != SY_UNUSED && st != SY_ZOMBIE)
            kill_task(t);
    }
    rt_unlock(&rt.tree_lock);
}

int sy_killed(void)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    return __atomic_load_n(&c->curr->killed, __ATOMIC_RELAXED) != 0;
}

int sy_self(void)
{
    struct cpu *c = this_cpu();
    return c ? c->curr->pid : -EPERM;
}

int sy_parent(void)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    rt_lock(&rt.tree_lock);
    struct task *p = c->curr->parent;
    int ppid = p ? p->pid : 0;
    rt_unlock(&rt.tree_lock);
    return ppid;
}

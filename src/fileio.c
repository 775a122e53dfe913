/*
 * fileio.c - file I/O off the CPUs: a small pool of worker threads runs the
 * system calls that epoll cannot wait for (regular files, fsync, open),
 * while the calling task sleeps and its CPU runs others.
 *
 * A task puts a job (on its stack) on the pool's queue, wakes a worker and
 * sleeps on the job.  The worker makes the call, then hands the finished
 * job to the CPU the task submitted from (that CPU's done list, EV_FILE):
 * only CPU threads run runtime code, so the wake itself happens there, as
 * any other (wait.h), under the job's lock.  The task sleeps until its job
 * is done, whatever wakes it: the worker uses the task's buffer until then,
 * so a kill takes effect only after the call (it is not a kill point).
 *
 * Workers start on demand, at most FILE_WORKERS of them, block every
 * signal, sleep on a futex when the queue is empty, and stop with the
 * runtime.  Tasks waiting for jobs count as waiting on I/O (io.c): not a
 * deadlock.  On the io_uring backend, the ring does all this instead
 * (uring.c), with the kernel's workers.
 */
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io.h"
#include "runq.h"
#include "wait.h"

#define FILE_WORKERS 4

enum fop { F_READ, F_WRITE, F_PREAD, F_PWRITE, F_FSYNC, F_FDATASYNC, F_OPENAT };

struct job {
    enum fop op;
    int fd;
    void *buf;
    const void *cbuf;
    size_t n;
    off_t off;
    const char *path;
    int flags;
    mode_t mode;
    ssize_t result;         /* written by the worker */
    struct job *next;       /* the pool's queue, then the CPU's done list */
    struct cpu *cpu;        /* where to hand it back */
    sy_spinlock lock;       /* LOCK_OBJ: done and the record */
    int done;
    waiter_t w;
};

static struct {
    sy_spinlock lock;       /* the queue and the counts: a raw spinlock,
                               taken by workers too (not a runtime lock) */
    struct job *head, *tail;
    int pending;            /* futex word: jobs queued */
    int nworkers, idle;     /* workers started (or being started), idle */
    int stop;
    bool live[FILE_WORKERS];/* slots with a started worker, to join */
    pthread_t threads[FILE_WORKERS];
} pool;

static long futex(int *uaddr, int op, int val)
{
    return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static ssize_t run_job(struct job *j)
{
    ssize_t r;
    switch (j->op) {
    case F_READ: r = read(j->fd, j->buf, j->n); break;
    case F_WRITE: r = write(j->fd, j->cbuf, j->n); break;
    case F_PREAD: r = pread(j->fd, j->buf, j->n, j->off); break;
    case F_PWRITE: r = pwrite(j->fd, j->cbuf, j->n, j->off); break;
    case F_FSYNC: r = fsync(j->fd); break;
    case F_FDATASYNC: r = fdatasync(j->fd); break;
    case F_OPENAT: r = openat(j->fd, j->path, j->flags, j->mode); break;
    default: r = -1; errno = EINVAL;
    }
    return r < 0 ? -errno : r;
}

/* Hand a finished job back to its CPU (lock-free push, then EV_FILE). */
static void job_finished(struct job *j)
{
    struct cpu *c = j->cpu;
    struct job *head = __atomic_load_n((struct job **)&c->file_done, __ATOMIC_RELAXED);
    do
        j->next = head;
    while (!__atomic_compare_exchange_n((struct job **)&c->file_done, &head, j, true,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    sy__post(c, EV_FILE);
}

/* The finished jobs of `from`, a detached CPU (handoff.c), to `to`. */
void sy__file_forward(struct cpu *from, struct cpu *to)
{
    struct job *j = __atomic_exchange_n((struct job **)&from->file_done, NULL, __ATOMIC_ACQ_REL);
    while (j) {
        struct job *next = j->next;
        j->cpu = to;
        job_finished(j);
        j = next;
    }
}

static void *worker(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        spin_lock(&pool.lock);
        while (!pool.head && !pool.stop) {
            pool.idle++;
            spin_unlock(&pool.lock);
            futex(&pool.pending, FUTEX_WAIT_PRIVATE, 0);
            spin_lock(&pool.lock);
            pool.idle--;
        }
        if (!pool.head) { /* stop, and nothing left */
            spin_unlock(&pool.lock);
            return NULL;
        }
        struct job *j = pool.head;
        pool.head = j->next;
        if (!pool.head)
            pool.tail = NULL;
        __atomic_store_n(&pool.pending, pool.pending - 1, __ATOMIC_RELAXED);
        spin_unlock(&pool.lock);
        j->result = run_job(j);
        job_finished(j);
    }
}

/* Queue a job; start a worker if none is idle and there is room for one.
 * 0, or -EAGAIN when no worker could be started and none runs. */
static int submit(struct job *j)
{
    spin_lock(&pool.lock);
    j->next = NULL;
    if (pool.tail)
        pool.tail->next = j;
    else
        pool.head = j;
    pool.tail = j;
    __atomic_store_n(&pool.pending, pool.pending + 1, __ATOMIC_RELAXED);
    int idx = -1;
    if (pool.idle == 0 && pool.nworkers < FILE_WORKERS)
        for (int i = 0; i < FILE_WORKERS && idx < 0; i++)
            if (!pool.live[i])
                idx = i; /* a free slot, reserved under the lock */
    if (idx >= 0) {
        pool.live[idx] = true;
        pool.nworkers++;
    }
    bool wake = pool.idle > 0;
    spin_unlock(&pool.lock);
    if (wake)
        futex(&pool.pending, FUTEX_WAKE_PRIVATE, 1);
    if (idx >= 0 && pthread_create(&pool.threads[idx], NULL, worker, NULL) != 0) {
        spin_lock(&pool.lock);
        pool.live[idx] = false; /* (a later submit may try again) */
        pool.nworkers--;
        bool none = pool.nworkers == 0;
        if (none) { /* nobody will ever run it: take it back */
            struct job **pp = &pool.head, *prev = NULL;
            while (*pp && *pp != j)
                prev = *pp, pp = &(*pp)->next;
            if (*pp) {
                *pp = j->next;
                if (pool.tail == j)
                    pool.tail = prev;
                __atomic_store_n(&pool.pending, pool.pending - 1, __ATOMIC_RELAXED);
            }
        }
        spin_unlock(&pool.lock);
        if (none)
            return -EAGAIN;
    }
    return 0;
}

/* EV_FILE, on the CPU the jobs were submitted from: wake their tasks. */
void sy__file_done(struct cpu *c)
{
    struct job *j = __atomic_exchange_n((struct job **)&c->file_done, NULL, __ATOMIC_ACQUIRE);
    while (j) {
        struct job *next = j->next; /* j may be gone once its task runs */
        obj_lock(&j->lock, LOCK_OBJ);
        __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
        struct task *t = wait_fire(&j->w, 0) ? j->w.task : NULL;
        obj_unlock(&j->lock);
        if (t)
            sy__wait_wake(t);
        j = next;
    }
}

/* Run a job on the pool and sleep until it is done. */
static ssize_t file_op_wait(struct cpu *c, struct job *j);

/* A pread of pages the page cache has is done at once, in the task
 * (preadv2 with RWF_NOWAIT: what the kernel can answer without blocking),
 * as io_uring itself does first, inline: no worker, no ring, no sleep (4
 * KiB from a cached file: 0.58 us of CPU through the ring, 2.5 through the
 * workers, 0.42 as a plain pread; bench/b_io pread).  What is not cached
 * (EAGAIN), or the rest of a read cut short at the first page that is not,
 * goes the slow way. */
static ssize_t file_op(struct job *j)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    if (j->op != F_PREAD || j->off < 0 || j->n == 0)
        return file_op_wait(c, j);
    struct iovec v = {.iov_base = j->buf, .iov_len = j->n};
    ssize_t r = preadv2(j->fd, &v, 1, j->off, RWF_NOWAIT);
    if (r == 0 || (r > 0 && (size_t)r == j->n))
        return r;
    if (r < 0) /* (EAGAIN, EOPNOTSUPP: a file that cannot say; other errors
                  the slow way reports the same) */
        return file_op_wait(c, j);
    struct job rest = *j;
    rest.buf = (char *)j->buf + r;
    rest.n = j->n - (size_t)r;
    rest.off = j->off + r;
    ssize_t more = file_op_wait(this_cpu(), &rest);
    return more > 0 ? r + more : r; /* (an error after a part: the part) */
}

/* The operation on the ring, or on a worker: the task sleeps meanwhile. */
static ssize_t file_op_wait(struct cpu *c, struct job *j)
{
    if (sy__io_backend(c) == SY_IO_URING) { /* the ring's own workers instead */
        static const enum io_op ops[] = {
            [F_READ] = OP_READ,         [F_WRITE] = OP_WRITE,   [F_PREAD] = OP_PREAD,
            [F_PWRITE] = OP_PWRITE,     [F_FSYNC] = OP_FSYNC,   [F_FDATASYNC] = OP_FDATASYNC,
            [F_OPENAT] = OP_OPENAT,
        };
        struct io_args a = {.buf = j->buf, .cbuf = j->cbuf, .n = j->n, .off = j->off,
                            .path = j->path, .flags = j->flags, .mode = j->mode};
        return sy__uring_op(c, ops[j->op], j->fd, &a, SY_FOREVER);
    }
    struct task *p = c->curr;
    j->cpu = c;
    j->done = 0;
    j->lock = (sy_spinlock)SY_SPINLOCK_INIT;
    waiter_init(&j->w, p);
    int err = submit(j);
    if (err)
        return err;
    sy__io_wait_begin(c);
    obj_lock(&j->lock, LOCK_OBJ);
    while (!__atomic_load_n(&j->done, __ATOMIC_ACQUIRE)) {
        /* not killable: the worker uses our buffer until it is done (a
         * kill or a spurious wake just makes us look again) */
        waiter_init(&j->w, p);
        sy_spinlock *lk = &j->lock;
        sy__wait(c, &lk, 1, SY_FOREVER, j, WK_IO, 0);
        c = this_cpu();
        obj_lock(&j->lock, LOCK_OBJ);
    }
    obj_unlock(&j->lock);
    sy__io_wait_end();
    return j->result;
}

/* io.c: read/write of an fd epoll cannot wait for (a regular file). */
ssize_t sy__file_rw(int fd, void *buf, const void *cbuf, size_t n, bool write)
{
    struct job j = {.op = write ? F_WRITE : F_READ, .fd = fd, .buf = buf, .cbuf = cbuf, .n = n};
    return file_op(&j);
}

void sy__file_fini(void)
{
    spin_lock(&pool.lock);
    pool.stop = 1;
    spin_unlock(&pool.lock);
    __atomic_store_n(&pool.pending, pool.pending + 1, __ATOMIC_RELAXED); /* not 0: no re-wait */
    futex(&pool.pending, FUTEX_WAKE_PRIVATE, FILE_WORKERS);
    for (int i = 0; i < FILE_WORKERS; i++)
        if (pool.live[i]) {
            pthread_join(pool.threads[i], NULL);
            pool.live[i] = false;
        }
    pool.head = pool.tail = NULL;
    pool.pending = pool.nworkers = pool.idle = pool.stop = 0;
}

/* ------------------------------------------------------------- public */

ssize_t sy_pread(int fd, void *buf, size_t n, off_t off)
{
    struct job j = {.op = F_PREAD, .fd = fd, .buf = buf, .n = n, .off = off};
    return file_op(&j);
}

ssize_t sy_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    struct job j = {.op = F_PWRITE, .fd = fd, .cbuf = buf, .n = n, .off = off};
    return file_op(&j);
}

int sy_fsync(int fd)
{
    struct job j = {.op = F_FSYNC, .fd = fd};
    return (int)file_op(&j);
}

int sy_fdatasync(int fd)
{
    struct job j = {.op = F_FDATASYNC, .fd = fd};
    return (int)file_op(&j);
}

int sy_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    if (!path)
        return this_cpu() ? -EFAULT : -EPERM;
    struct job j = {.op = F_OPENAT, .fd = dirfd, .path = path, .flags = flags, .mode = mode};
    return (int)file_op(&j);
}

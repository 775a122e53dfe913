/*
 * uring.c - the io_uring backend (through liburing): one ring per CPU.
 *
 * The model.  A task's I/O call prepares its request in its CPU's ring (no
 * system call), puts its waiter record on the fd's queue (io.h: struct
 * fdesc, as the epoll backend does, so that sy_close finds it) and sleeps.
 * The CPU submits what its tasks prepared in batches: when it runs out of
 * tasks (the idle loop), when RING_BATCH requests wait, or at its next
 * schedule point outside the tick once a tick has passed (EV_IO).  It reaps
 * completions at the same points, without a system call when the kernel
 * has none for it (the IORING_SQ_TASKRUN flag says when it has), and wakes
 * their tasks through the usual wake (wait.h), so they may run elsewhere.
 * Writes and sends are tried once without blocking first: a socket's room
 * is nearly always there, and the task then neither sleeps nor waits.
 *
 * Rings are created by their CPU's own thread, on its first I/O call, with
 * SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them (6.1), else
 * COOP_TASKRUN, else neither: only the owner ever submits to or reaps a
 * ring, and only outside the tick's signal handler (a ring is never touched
 * from it: sy__uring_events defers when the tick is masked, and liburing is
 * linked as a shared library, where the tick never preempts).  The kernel's
 * worker threads for blocking work (regular files) are capped per ring.
 *
 * Parking.  A CPU with nothing to run and requests in flight sleeps in its
 * ring (io_uring_submit_and_wait_timeout) until its next timer instead of on
 * its futex (cpu.c: park, through io.c's hooks).  Another CPU wakes it at
 * once, unchanged: its kick is the futex wake of `parked`, and a futex wait
 * on that word, armed in the ring (IORING_OP_FUTEX_WAIT, kernel 6.7),
 * completes.  On older kernels an eventfd read is armed instead and the
 * kick writes the eventfd (cpu->polling, as for the epoll poller).  Tasks
 * that wait in sy_poll (which uses the epoll) are watched by a poll of the
 * epoll fd armed in the parked ring.  Requests in flight count as I/O for
 * the deadlock detector: a program whose every task waits on a socket is not
 * deadlocked.
 *
 * Cancellation.  A kill, a deadline or a sy_close (which fires the record
 * with -EBADF) may end a task's wait before its request completes.  The
 * kernel may still write the task's buffer then, so the task cancels the
 * request (IORING_OP_ASYNC_CANCEL, on the ring the request is on: if that is
 * another CPU's, through that ring's cancel list and a kick) and sleeps,
 * not killable, until the request's own completion, and until the owner has
 * taken the cancel off its list (so no stale cancel can outlive the
 * request).  Only then does the call return: the error if the request was
 * cancelled; what it transferred if it completed anyway (no data lost); an
 * accept or openat that completed anyway has its new fd closed.
 *
 * The hand-off (handoff.c).  A request stays on the ring it was submitted
 * on.  When that CPU is handed off, its completions and cancels wait for
 * the stuck thread to come back from its long call and into the runtime;
 * the detached bundle then serves and parks in its ring until it is empty
 * before it retires to the spare pool (sy__uring_detached_serve).
 *
 * Locks: a request's record, `done` and `cq` are under its fd's lock (or
 * its own, for an openat); a ring's cancel list under a raw spinlock taken
 * alone.  Everything else in struct ring is its owner's.
 */
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io.h"
#include "runq.h"
#include "wait.h"
#if defined(SY_VALGRIND)
#include <valgrind/memcheck.h>
#endif

#define RING_ENTRIES 256
#define RING_CQ_ENTRIES 4096 /* completions: one per connection at a burst, or the
                                kernel keeps the rest back (overflow) */
#define RING_BATCH 32   /* a busy CPU submits once this many requests wait */
#define RING_WORKERS 4  /* the kernel's workers per ring, bounded and unbounded */
#define RW_MAX 0x7ffff000u /* Linux's MAX_RW_COUNT: no transfer is longer */

#ifndef IORING_OP_FUTEX_WAIT
#define IORING_OP_FUTEX_WAIT 51 /* kernel 6.7; liburing 2.3 predates it */
#endif
#define FUTEX2_SIZE_U32_ 0x02u
#define FUTEX2_PRIVATE_ 128u

/* user_data of the ring's own requests (a task's is its struct ureq *) */
#define TAG_NONE 0u  /* a request taken back (a NOP), a cancel */
#define TAG_WAKE 1u  /* the futex wait, or eventfd read, a park arms */
#define TAG_EPOLL 2u /* a poll of the epoll fd: tasks wait in sy_poll */

struct ureq {
    waiter_t w;             /* the task's record: on its fd's queue meanwhile */
    sy_spinlock own;        /* the lock of a request on no fd (openat) */
    sy_spinlock *lk;        /* &d->lock or &own: done, cq, the record */
    sy_waitq_ *q;           /* the fd's queue the record is on (NULL: none) */
    struct cpu *cpu;        /* whose ring it is on */
    struct ureq *cnext;     /* on that ring's cancel list */
    enum io_op op;
    const struct io_args *a;
    int res;                /* the completion's result */
    int done;               /* the completion was reaped */
    int cq;                 /* a cancel of it waits on cpu's cancel list */
};

struct ring {
    struct io_uring u;
    long inflight;          /* its requests not reaped yet (owner; the tick reads) */
    int prepared;           /* requests prepared and not submitted (idem) */
    bool wake_armed;        /* the park's futex wait / eventfd read is in flight */
    bool epoll_armed;       /* a poll of the epoll fd is in flight */
    int evfd;               /* -1 unless the kernel lacks futex waits in rings */
    uint64_t evbuf;
    uint64_t served_ns;     /* when its owner last served it (the tick reads) */
    sy_spinlock clock;      /* raw: cancels */
    struct ureq *cancels;   /* requests other CPUs want cancelled */
};

static long ring_inflight;     /* requests in flight on all rings (atomic) */
static int wake_evfd = -1;     /* parks wake through: -1 not probed, 0 futex, 1 eventfd */

static inline struct ring *ring_of(const struct cpu *c)
{
    return __atomic_load_n((struct ring **)&c->ring, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------ the ring */

/* How parks are woken: a futex wait in the ring if the kernel has it
 * (SY_IO_WAKE=eventfd forces the older way, for tests). */
static void probe_wake(struct io_uring *u)
{
    if (__atomic_load_n(&wake_evfd, __ATOMIC_ACQUIRE) >= 0)
        return;
    const char *e = getenv("SY_IO_WAKE");
    struct io_uring_probe *p = io_uring_get_probe_ring(u);
    int futex = p && io_uring_opcode_supported(p, IORING_OP_FUTEX_WAIT);
    if (p)
        io_uring_free_probe(p);
    if (e && strcmp(e, "eventfd") == 0)
        futex = 0;
#if defined(SY_VALGRIND)
    futex = 0; /* (see sy__uring_park) */
#endif
    __atomic_store_n(&wake_evfd, !futex, __ATOMIC_RELEASE);
}

/* Create CPU c's ring, on c's own thread; 0 or -errno (EPERM, ENOSYS:
 * io_uring disabled, filtered or missing - io.c then falls back to epoll). */
int sy__uring_setup(struct cpu *c)
{
    if (ring_of(c))
        return 0;
    struct ring *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    static const unsigned flavours[] = {
#if !defined(SY_VALGRIND) /* (see sy__uring_park: a ppoll on a DEFER_TASKRUN
                             ring's fd missed the kernel workers' completions) */
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
            IORING_SETUP_TASKRUN_FLAG,
#endif
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int err = -EINVAL;
    for (unsigned i = 0; i < sizeof flavours / sizeof *flavours && err == -EINVAL; i++) {
        struct io_uring_params p = {.flags = flavours[i] | IORING_SETUP_CQSIZE,
                                    .cq_entries = RING_CQ_ENTRIES};
        err = io_uring_queue_init_params(RING_ENTRIES, &g->u, &p);
    }
    if (err) {
        free(g);
        return err;
    }
    unsigned workers[2] = {RING_WORKERS, RING_WORKERS};
    (void)io_uring_register_iowq_max_workers(&g->u, workers); /* (5.15: else uncapped) */
    probe_wake(&g->u);
    g->evfd = -1;
    if (__atomic_load_n(&wake_evfd, __ATOMIC_ACQUIRE) == 1 &&
        (g->evfd = eventfd(0, EFD_CLOEXEC)) < 0) { /* blocking: the ring waits on it */
        err = -errno;
        io_uring_queue_exit(&g->u);
        free(g);
        return err;
    }
    g->clock = (sy_spinlock)SY_SPINLOCK_INIT;
    __atomic_store_n((struct ring **)&c->ring, g, __ATOMIC_RELEASE);
    return 0;
}

static void ring_submit(struct ring *g)
{
    if (io_uring_sq_ready(&g->u) == 0)
        return;
    (void)io_uring_submit(&g->u); /* (a failure leaves them for the next try) */
    __atomic_store_n(&g->prepared, (int)io_uring_sq_ready(&g->u), __ATOMIC_RELAXED);
}

static int ring_reap(struct ring *g, bool enter);

/* A free submission entry, submitting (and reaping, to make room) when the
 * queue is full; NULL if there is still none. */
static struct io_uring_sqe *sqe_get(struct ring *g)
{
    struct io_uring_sqe *sqe;
    for (int i = 0; i < 3; i++) {
        if ((sqe = io_uring_get_sqe(&g->u)) != NULL) {
            __atomic_store_n(&g->prepared, g->prepared + 1, __ATOMIC_RELAXED);
            return sqe;
        }
        if (i)
            ring_reap(g, true);
        ring_submit(g);
    }
    return NULL;
}

/* Valgrind cannot see the kernel write a request's buffers. */
static void mark_written(const struct ureq *r, int res)
{
#if defined(SY_VALGRIND)
    const struct io_args *a = r->a;
    if (res < 0 || !a)
        return;
    switch (r->op) {
    case OP_READ:
    case OP_RECV:
    case OP_PREAD: VALGRIND_MAKE_MEM_DEFINED(a->buf, (size_t)res); break;
    case OP_READV:
        for (int i = 0; i < a->iovcnt && res > 0; i++) {
            size_t k = a->iov[i].iov_len < (size_t)res ? a->iov[i].iov_len : (size_t)res;
            VALGRIND_MAKE_MEM_DEFINED(a->iov[i].iov_base, k);
            res -= (int)k;
        }
        break;
    case OP_RECVMSG:
        for (size_t i = 0; i < a->msg->msg_iovlen && res > 0; i++) {
            size_t k = a->msg->msg_iov[i].iov_len < (size_t)res ? a->msg->msg_iov[i].iov_len
                                                               : (size_t)res;
            VALGRIND_MAKE_MEM_DEFINED(a->msg->msg_iov[i].iov_base, k);
            res -= (int)k;
        }
        if (a->msg->msg_name)
            VALGRIND_MAKE_MEM_DEFINED(a->msg->msg_name, a->msg->msg_namelen);
        if (a->msg->msg_control)
            VALGRIND_MAKE_MEM_DEFINED(a->msg->msg_control, a->msg->msg_controllen);
        break;
    case OP_ACCEPT:
        if (a->addrlen) {
            VALGRIND_MAKE_MEM_DEFINED(a->addrlen, sizeof *a->addrlen);
            if (a->addr)
                VALGRIND_MAKE_MEM_DEFINED(a->addr, *a->addrlen);
        }
        break;
    default: break;
    }
#else
    (void)r, (void)res;
#endif
}

/* Hand out the completions on g (the owner's): record each request's
 * result and wake its task.  No system call unless `enter` and the kernel
 * has completions to post (IORING_SQ_TASKRUN: DEFER_TASKRUN's work) or kept
 * some back (overflow).  Returns how many requests of tasks completed. */
static int ring_reap(struct ring *g, bool enter)
{
    unsigned kf = IO_URING_READ_ONCE(*g->u.sq.kflags);
    if (enter && (kf & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
        (void)io_uring_get_events(&g->u);
    struct task *chain = NULL, **tail = &chain;
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    int done = 0;
    bool epoll_ready = false;
    io_uring_for_each_cqe(&g->u, head, cqe) {
        n++;
        uint64_t tag = cqe->user_data;
        if (tag == TAG_NONE)
            continue;
        if (tag == TAG_WAKE) {
            g->wake_armed = false;
            continue;
        }
        if (tag == TAG_EPOLL) {
            g->epoll_armed = false;
            epoll_ready = true;
            continue;
        }
        struct ureq *r = (struct ureq *)(uintptr_t)tag;
        mark_written(r, cqe->res);
        obj_lock(r->lk, LOCK_OBJ);
        r->res = cqe->res;
        r->done = 1;
        if (r->w.queued)
            wq_del(r->q, &r->w);
        if (!r->cq && wait_fire(&r->w, 0)) {
            struct task *t = r->w.task;
            t->rq_next = NULL;
            *tail = t;
            tail = &t->rq_next;
        }
        obj_unlock(r->lk); /* (r is the task's again: not touched below) */
        done++;
    }
    io_uring_cq_advance(&g->u, n);
    if (done) {
        __atomic_store_n(&g->inflight, g->inflight - done, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&ring_inflight, done, __ATOMIC_SEQ_CST);
    }
    wake_chain(chain);
    if (epoll_ready)
        sy__io_epoll_poll();
    return done;
}

/* A cancel of r, on r's ring g (its owner's). */
static void prep_cancel(struct ring *g, const struct ureq *r)
{
    struct io_uring_sqe *sqe;
    while (!(sqe = sqe_get(g)))
        cpu_relax(); /* (the queue is full and would not submit: again) */
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)r, 0);
    io_uring_sqe_set_data64(sqe, TAG_NONE);
}

/* Cancel the requests other CPUs asked us to (owner), and let their tasks
 * go once their requests are done. */
static void ring_cancels(struct ring *g)
{
    if (!__atomic_load_n(&g->cancels, __ATOMIC_ACQUIRE))
        return;
    spin_lock(&g->clock);
    struct ureq *list = g->cancels;
    g->cancels = NULL;
    spin_unlock(&g->clock);
    for (struct ureq *r = list; r; r = r->cnext)
        prep_cancel(g, r);
    ring_submit(g); /* the cancels run in the submit: none is stale after it */
    while (list) {
        struct ureq *r = list, *next = r->cnext;
        obj_lock(r->lk, LOCK_OBJ);
        r->cq = 0;
        struct task *t = r->done && wait_fire(&r->w, 0) ? r->w.task : NULL;
        obj_unlock(r->lk);
        if (t)
            sy__wait_wake(t);
        list = next;
    }
}

/* Serve c's ring (its owner, outside the tick): cancels, submit (unless
 * !submit: the caller will, with a wait), reap.  True if it woke a task. */
static bool ring_serve(struct ring *g, bool submit)
{
    __atomic_store_n(&g->served_ns, READ_ONCE(rt.coarse_ns), __ATOMIC_RELAXED);
    ring_cancels(g);
    if (submit)
        ring_submit(g);
    return ring_reap(g, true) > 0;
}

/* ---------------------------------------------------------- requests */

/* (sock: a read or write of a socket, as a recv or send: io.h, SK_SOCK) */
static void prep(struct io_uring_sqe *sqe, enum io_op op, int fd, const struct io_args *a,
                 bool sock)
{
    unsigned n = a->n > RW_MAX ? RW_MAX : (unsigned)a->n;
    switch (op) {
    case OP_READ:
        if (sock)
            io_uring_prep_recv(sqe, fd, a->buf, n, 0);
        else
            io_uring_prep_read(sqe, fd, a->buf, n, (uint64_t)-1);
        break;
    case OP_WRITE:
        if (sock)
            io_uring_prep_send(sqe, fd, a->cbuf, n, 0);
        else
            io_uring_prep_write(sqe, fd, a->cbuf, n, (uint64_t)-1);
        break;
    case OP_READV: io_uring_prep_readv(sqe, fd, a->iov, (unsigned)a->iovcnt, (uint64_t)-1); break;
    case OP_WRITEV: io_uring_prep_writev(sqe, fd, a->iov, (unsigned)a->iovcnt, (uint64_t)-1); break;
    case OP_RECV: io_uring_prep_recv(sqe, fd, a->buf, n, a->flags); break;
    case OP_SEND: io_uring_prep_send(sqe, fd, a->cbuf, n, a->flags | MSG_NOSIGNAL); break;
    case OP_RECVMSG: io_uring_prep_recvmsg(sqe, fd, a->msg, (unsigned)a->flags); break;
    case OP_SENDMSG:
        io_uring_prep_sendmsg(sqe, fd, a->msg, (unsigned)a->flags | MSG_NOSIGNAL);
        break;
    case OP_ACCEPT: io_uring_prep_accept(sqe, fd, a->addr, a->addrlen, a->flags); break;
    case OP_CONNECT: io_uring_prep_connect(sqe, fd, a->caddr, a->caddrlen); break;
    case OP_POLL: io_uring_prep_poll_add(sqe, fd, (unsigned)a->flags); break;
    case OP_PREAD: io_uring_prep_read(sqe, fd, a->buf, n, (uint64_t)a->off); break;
    case OP_PWRITE: io_uring_prep_write(sqe, fd, a->cbuf, n, (uint64_t)a->off); break;
    case OP_FSYNC: io_uring_prep_fsync(sqe, fd, 0); break;
    case OP_FDATASYNC: io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC); break;
    case OP_OPENAT: io_uring_prep_openat(sqe, fd, a->path, a->flags, a->mode); break;
    }
}

/* The task's wait ended before r completed (err: -EINTR, -ETIMEDOUT, or
 * -EBADF from sy_close): cancel r, wait for its own completion, and
 * return what the call returns. */
static int cancel_and_wait(struct cpu *c, struct ureq *r, int err)
{
    struct task *p = c->curr;
    obj_lock(r->lk, LOCK_OBJ);
    if (r->w.queued)
        wq_del(r->q, &r->w);
    bool done = r->done, local = r->cpu == c;
    if (!done && !local)
        r->cq = 1;
    obj_unlock(r->lk);
    if (!done) {
        if (local) {
            struct ring *g = ring_of(c);
            prep_cancel(g, r);
            ring_submit(g); /* (r's own request first, if it was still waiting) */
        } else {
            struct ring *g = ring_of(r->cpu);
            spin_lock(&g->clock);
            r->cnext = g->cancels;
            __atomic_store_n(&g->cancels, r, __ATOMIC_RELEASE);
            spin_unlock(&g->clock);
            sy__post(r->cpu, EV_IO); /* served at its next schedule point, or now
                                        if it is parked */
        }
        /* not killable: the kernel may use the buffer until the completion */
        obj_lock(r->lk, LOCK_OBJ);
        while (!(r->done && !r->cq)) {
            waiter_init(&r->w, p);
            sy_spinlock *lk = r->lk;
            sy__wait(c, &lk, 1, SY_FOREVER, r, WK_IO, false);
            c = this_cpu();
            obj_lock(r->lk, LOCK_OBJ);
        }
        obj_unlock(r->lk);
    }
    if (r->res >= 0 && (r->op == OP_ACCEPT || r->op == OP_OPENAT)) {
        syscall(SYS_close, r->res); /* completed anyway: nobody will have it */
        return err;
    }
    return r->res >= 0 && r->op != OP_POLL ? r->res : err;
}

/* One request on this CPU's ring: prepare it, sleep until its completion
 * (or the deadline, a kill if killable, a sy_close of fd), return its
 * result or -errno. */
static int ring_call(struct cpu *c, enum io_op op, int fd, const struct io_args *a,
                     int64_t deadline, bool killable)
{
    int err = sy__uring_setup(c); /* (the task may have moved since its last call) */
    if (err)
        return err;
    struct ring *g = ring_of(c);
    struct task *p = c->curr;
    struct ureq r = {.op = op, .a = a, .cpu = c};
    struct fdesc *d = NULL;
    uint32_t gen = 0;
    if (op != OP_OPENAT) {
        if (!(d = sy__fdesc_get(fd, &err)))
            return err;
        gen = __atomic_load_n(&d->gen, __ATOMIC_ACQUIRE);
        r.lk = &d->lock;
        r.q = op_writes(op) ? &d->wq : &d->rq;
    } else {
        r.own = (sy_spinlock)SY_SPINLOCK_INIT;
        r.lk = &r.own;
    }
    if (g->prepared >= RING_BATCH)
        ring_submit(g);
    ring_reap(g, false); /* (what is there; the kernel's work waits for the batch) */
    struct io_uring_sqe *sqe = sqe_get(g);
    if (!sqe)
        return -EAGAIN;
    bool sock = d && (op == OP_READ || op == OP_WRITE) && a->n && fd_sock(d) == SK_SOCK;
    prep(sqe, op, fd, a, sock);
    io_uring_sqe_set_data(sqe, &r);
    obj_lock(r.lk, LOCK_OBJ);
    int late = sy__deadline_check(deadline);
    if (d && __atomic_load_n(&d->gen, __ATOMIC_RELAXED) != gen)
        err = -EBADF; /* closed by sy_close since we looked */
    else if (killable && __atomic_load_n(&p->killed, __ATOMIC_RELAXED))
        err = -EINTR;
    else if (late == -EINVAL)
        err = late;
    if (err) {
        obj_unlock(r.lk);
        io_uring_prep_nop(sqe); /* not submitted yet: take it back */
        io_uring_sqe_set_data64(sqe, TAG_NONE);
        return err;
    }
    if (d && __atomic_load_n(&d->state, __ATOMIC_RELAXED) == FD_NEW)
        __atomic_store_n(&d->state, FD_RING, __ATOMIC_RELAXED); /* sy_close: look here */
    waiter_init(&r.w, p);
    if (r.q)
        wq_push(r.q, &r.w);
    __atomic_store_n(&g->inflight, g->inflight + 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&ring_inflight, 1, __ATOMIC_SEQ_CST);
    if (late) { /* a deadline already past: try once (submit, cancel) */
        obj_unlock(r.lk);
        ring_submit(g);
        return cancel_and_wait(c, &r, late);
    }
    sy_spinlock *lk = r.lk;
    err = sy__wait(c, &lk, 1, deadline, d ? (const void *)d : (const void *)&r, WK_IO, killable);
    if (p->wait_fired == &r.w && r.w.result == 0) {
        if (sock && r.res == -ENOTSOCK)
            fd_set_sock(d, SK_OTHER); /* a stale guess: the caller tries again */
        return r.res; /* completed (the reaper took the record off) */
    }
    if (p->wait_fired == &r.w)
        err = r.w.result; /* -EBADF: sy_close */
    return cancel_and_wait(this_cpu(), &r, err);
}

/* A write or send tried once without blocking (RWF_NOWAIT, MSG_DONTWAIT),
 * before the ring: a socket's or a pipe's room is there nearly always, and
 * then the task neither sleeps nor waits for a batch.  -EAGAIN (or
 * -EOPNOTSUPP: a file that cannot say) sends it to the ring. */
static ssize_t try_write(struct fdesc *d, enum io_op op, int fd, const struct io_args *a)
{
    struct iovec v = {.iov_base = (void *)a->cbuf, .iov_len = a->n};
    ssize_t r;
    switch (op) {
    case OP_WRITE:
        if (fd_as_send(d, fd, a->cbuf, a->n, MSG_DONTWAIT, &r))
            return r;
        r = pwritev2(fd, &v, 1, -1, RWF_NOWAIT);
        break;
    case OP_WRITEV: r = pwritev2(fd, a->iov, a->iovcnt, -1, RWF_NOWAIT); break;
    case OP_SEND: r = send(fd, a->cbuf, a->n, a->flags | MSG_DONTWAIT | MSG_NOSIGNAL); break;
    case OP_SENDMSG: r = sendmsg(fd, a->msg, a->flags | MSG_DONTWAIT | MSG_NOSIGNAL); break;
    default: return -EAGAIN;
    }
    return r < 0 ? (errno == EOPNOTSUPP ? -EAGAIN : -errno) : r;
}

/* io.c, fileio.c: an operation on the ring, whole: sy_write and sy_send
 * write everything (as the blocking calls do); a non-blocking fd that is
 * not ready (-EAGAIN) is polled in the ring and tried again; a non-blocking
 * connect (-EINPROGRESS) is waited for.  Files (pread, pwrite, fsync,
 * openat) run to completion, as on the epoll backend's workers. */
ssize_t sy__uring_op(struct cpu *c, enum io_op op, int fd, const struct io_args *a,
                     int64_t deadline)
{
    int err = sy__uring_setup(c);
    if (err)
        return err;
    if ((op == OP_PREAD || op == OP_PWRITE) && a->off < 0)
        return -EINVAL; /* (the ring takes -1 for the file position) */
    if ((op == OP_READV || op == OP_WRITEV) && a->iovcnt < 0)
        return -EINVAL;
    bool file = op >= OP_PREAD, whole = op == OP_WRITE || op == OP_SEND;
    if (file)
        deadline = SY_FOREVER;
    struct io_args rest = *a;
    size_t done = 0;
    bool tried = file;
    for (;;) {
        ssize_t r = -EAGAIN;
        if (!tried) {
            tried = true;
            struct fdesc *d = sy__fdesc_get(fd, &err);
            if (!d)
                return err;
            r = try_write(d, op, fd, &rest);
        }
        if (r == -EAGAIN)
            r = ring_call(c, op, fd, &rest, deadline, !file);
        c = this_cpu();
        if (r == -ENOTSOCK && (op == OP_READ || op == OP_WRITE))
            continue; /* a recv or send of an fd that is not a socket after all
                         (ring_call marked it): as a read or a write */
        if ((r == -EAGAIN && !file) || (op == OP_CONNECT && r == -EINPROGRESS)) {
            /* a non-blocking fd of the caller's (or one the epoll backend
             * made so): wait until it is ready, then try again */
            struct io_args pa = {.flags = op_writes(op) ? POLLOUT : POLLIN};
            ssize_t pr = ring_call(c, OP_POLL, fd, &pa, deadline, true);
            c = this_cpu();
            if (pr < 0)
                return done ? (ssize_t)done : pr;
            if (op != OP_CONNECT)
                continue;
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
                return -errno;
            return -soerr;
        }
        if (whole && r > 0 && (size_t)r < rest.n) {
            done += (size_t)r;
            rest.cbuf = (const char *)rest.cbuf + r;
            rest.n -= (size_t)r;
            continue;
        }
        return r >= 0 ? r + (ssize_t)done : done ? (ssize_t)done : r;
    }
}

/* ------------------------------------------------------ the CPU's side */

/* io.c: requests in flight anywhere (not a deadlock). */
bool sy__uring_inflight(void)
{
    return __atomic_load_n(&ring_inflight, __ATOMIC_SEQ_CST) > 0;
}

/* cpu.c (io.c), park: does c sleep in its ring (requests in flight)? */
bool sy__uring_claim(struct cpu *c)
{
    struct ring *g = ring_of(c);
    if (!g || !(g->inflight || g->prepared || __atomic_load_n(&g->cancels, __ATOMIC_ACQUIRE)))
        return false;
    if (g->evfd >= 0) /* before `parked` is published: a kick writes the eventfd */
        __atomic_store_n(&c->polling, 1, __ATOMIC_SEQ_CST);
    return true;
}

void sy__uring_unclaim(struct cpu *c)
{
    __atomic_store_n(&c->polling, 0, __ATOMIC_SEQ_CST);
}

/* ... then sleep in the ring until `deadline` (UINT64_MAX: none), a
 * completion or a kick; reap.  A deadline already past: submit, reap. */
void sy__uring_park(struct cpu *c, uint64_t deadline)
{
    struct ring *g = ring_of(c);
    ring_cancels(g);
    uint64_t now = sy__now_ns();
    bool wait = deadline > now;
    struct io_uring_sqe *sqe;
#if defined(SY_VALGRIND)
    /* valgrind (3.19) takes io_uring_enter for a call that never blocks
     * and keeps every other thread stopped while it waits: a CPU asleep in
     * its ring then waited for ever for a kick from one of them.  Under
     * valgrind a park waits in ppoll on the ring's fd (readable when it has
     * completions, or work to run for them) and on the eventfd kicks write */
    __atomic_store_n(&g->served_ns, now, __ATOMIC_RELAXED);
    ring_submit(g);
    if (wait) {
        struct pollfd pf[2] = {{.fd = g->u.ring_fd, .events = POLLIN},
                               {.fd = g->evfd, .events = POLLIN}};
        struct timespec ts, *tsp = NULL;
        if (deadline != UINT64_MAX) {
            ts.tv_sec = (time_t)((deadline - now) / 1000000000u);
            ts.tv_nsec = (long)((deadline - now) % 1000000000u);
            tsp = &ts;
        }
        if (ppoll(pf, 2, tsp, NULL) > 0 && (pf[1].revents & POLLIN) &&
            read(g->evfd, &g->evbuf, sizeof g->evbuf) < 0) { /* (drained) */
        }
    }
    ring_reap(g, true);
    __atomic_store_n(&c->polling, 0, __ATOMIC_SEQ_CST);
    return;
#endif
    if (wait && !g->wake_armed && (sqe = sqe_get(g)) != NULL) {
        if (g->evfd >= 0) {
            io_uring_prep_read(sqe, g->evfd, &g->evbuf, sizeof g->evbuf, 0);
        } else {
            /* wait while parked keeps the value we saw; a kick stores 0
             * first, so a kick before the wait is armed fails it at once */
            int v = __atomic_load_n(&c->parked, __ATOMIC_SEQ_CST);
            io_uring_prep_rw(IORING_OP_FUTEX_WAIT, sqe, (int)(FUTEX2_SIZE_U32_ | FUTEX2_PRIVATE_),
                             &c->parked, 0, (uint64_t)(unsigned)v);
            sqe->addr3 = 0xffffffffu; /* FUTEX_BITSET_MATCH_ANY */
            if (v == 0)
                wait = false; /* kicked already (the wait fails at once anyway) */
        }
        io_uring_sqe_set_data64(sqe, TAG_WAKE);
        g->wake_armed = true;
    }
    int epfd = sy__io_epoll_fd();
    if (wait && epfd >= 0 && !g->epoll_armed && (sqe = sqe_get(g)) != NULL) {
        io_uring_prep_poll_add(sqe, epfd, POLLIN);
        io_uring_sqe_set_data64(sqe, TAG_EPOLL);
        g->epoll_armed = true;
    }
    __atomic_store_n(&g->served_ns, now, __ATOMIC_RELAXED);
    if (wait) {
        struct __kernel_timespec ts, *tsp = NULL;
        if (deadline != UINT64_MAX) {
            uint64_t left = deadline - now;
            ts.tv_sec = (long long)(left / 1000000000u);
            ts.tv_nsec = (long long)(left % 1000000000u);
            tsp = &ts;
        }
        struct io_uring_cqe *cqe;
        (void)io_uring_submit_and_wait_timeout(&g->u, &cqe, 1, tsp, NULL);
        __atomic_store_n(&g->prepared, (int)io_uring_sq_ready(&g->u), __ATOMIC_RELAXED);
    } else {
        ring_submit(g);
    }
    ring_reap(g, true);
    __atomic_store_n(&c->polling, 0, __ATOMIC_SEQ_CST);
}

/*
 * cpu.c, the idle loop of a detached bundle (handoff.c) whose task has left
 * it: requests still in flight on its ring, or cancels other CPUs asked of
 * it, can be served by this thread alone (SINGLE_ISSUER, DEFER_TASKRUN).
 * Before this, it retired into the spare pool with them, where nothing
 * entered its ring again: their tasks waited for ever (a recv whose data
 * came while the bundle's task was in a long call; a cancel after a kill).
 * So it stays out of the pool while its ring is busy: serve it, then park
 * in it as an idle CPU does (a completion ends the wait; a cancel's post
 * kicks it through `parked`, as any CPU's), until nothing is left.  True
 * if it parked (the caller looks again), false if the ring is empty: retire.
 * Tasks its completions wake go to active CPUs (sched.c: sy__enqueue).
 */
bool sy__uring_detached_serve(struct cpu *c)
{
    struct ring *g = ring_of(c);
    if (!g)
        return false;
    ring_serve(g, true);
    if (!sy__uring_claim(c))
        return false;
    /* the Dekker pair with sy__post: we publish `parked`, then look at
     * `events`; a poster sets `events`, then looks at `parked` (and kicks) */
    __atomic_store_n(&c->parked, PARKED_TIMED, __ATOMIC_SEQ_CST);
    sy__tick_park(c, true);
    bool posted = __atomic_exchange_n(&c->events, 0, __ATOMIC_SEQ_CST) != 0;
    sy__uring_park(c, posted ? sy__now_ns() : UINT64_MAX);
    __atomic_store_n(&c->parked, 0, __ATOMIC_SEQ_CST);
    sy__tick_park(c, false);
    return true;
}

/* cpu.c, idle: serve the ring without sleeping; true if it woke a task.
 * With one CPU the park that follows submits, in the same system call as
 * its wait; with more, the CPU spins first: submit now. */
bool sy__uring_poll_now(struct cpu *c)
{
    struct ring *g = ring_of(c);
    return g && ring_serve(g, rt.ncpu > 1);
}

/* cpu.c, the idle spin: has the kernel completions for c's ring? */
bool sy__uring_ready(struct cpu *c)
{
    struct ring *g = ring_of(c);
    return g && g->inflight &&
           ((IO_URING_READ_ONCE(*g->u.sq.kflags) & IORING_SQ_TASKRUN) ||
            io_uring_cq_ready(&g->u));
}

/* The tick (its signal handler: looks at our counters, never at the ring):
 * should c serve its ring at its next schedule point (EV_IO)? */
bool sy__uring_due(struct cpu *c, uint64_t now)
{
    struct ring *g = ring_of(c);
    return g &&
           (__atomic_load_n(&g->prepared, __ATOMIC_RELAXED) ||
            __atomic_load_n(&g->inflight, __ATOMIC_RELAXED) ||
            __atomic_load_n(&g->cancels, __ATOMIC_RELAXED)) &&
           now - __atomic_load_n(&g->served_ns, __ATOMIC_RELAXED) >= rt.tick_ns;
}

/* EV_IO at a schedule point: serve the ring - unless this is the tick's
 * handler (the tick is masked there): then at the next point. */
void sy__uring_events(struct cpu *c)
{
    struct ring *g = ring_of(c);
    if (!g)
        return;
    if (c->tick_masked) {
        __atomic_fetch_or(&c->events, EV_IO, __ATOMIC_RELAXED);
        return;
    }
    ring_serve(g, true);
}

/* io.c: kick a CPU parked in its ring on an eventfd (old kernels); false
 * if it has none. */
bool sy__uring_kick(struct cpu *c)
{
    struct ring *g = ring_of(c);
    uint64_t one = 1;
    if (!g || g->evfd < 0)
        return false;
    if (write(g->evfd, &one, sizeof one) < 0) { /* (cannot fill up) */
    }
    return true;
}

/* sy_run's end, after the CPUs stopped: the rings go (the kernel cancels
 * whatever is left: nothing, since no task is). */
void sy__uring_fini(void)
{
    for (int i = 0; i < rt.nbundles; i++) { /* the spares' rings too */
        struct ring *g = ring_of(&rt.bundles[i]);
        if (!g)
            continue;
        io_uring_queue_exit(&g->u);
        if (g->evfd >= 0)
            syscall(SYS_close, g->evfd);
        free(g);
        rt.bundles[i].ring = NULL;
    }
    __atomic_store_n(&ring_inflight, 0, __ATOMIC_RELAXED);
}

/*
 * epoll.c - the epoll backend of the I/O calls (io.h): one edge-triggered
 * epoll for the runtime, Go's netpoller; chosen when the ring cannot be set
 * up or with SY_IO=epoll, and used by sy_poll on both backends.
 *
 * The model.  A task tries its operation without blocking (the fd is made
 * O_NONBLOCK).  If the fd is not ready (EAGAIN), it sleeps on the fd's read
 * or write queue - waiter records, as any object's (wait.h) - until the
 * poller sees the fd become ready, and tries again.  The fd is registered
 * with the epoll once, edge-triggered, for both directions.
 *
 * No lost readiness: each fd counts the readiness events the poller has
 * seen per direction (rseq, wseq).  A task reads the count before its try;
 * after EAGAIN it takes the fd's lock and sleeps only if the count has not
 * moved (an event between its try and its sleep makes it try again), and
 * the poller bumps the count and wakes the queue under that lock.  Likewise
 * `gen` counts sy_close()s: a task whose fd was closed since its try gets
 * -EBADF instead of sleeping on the fd's next incarnation, and the poller
 * drops events tagged with an older generation.
 *
 * Who polls.  An idle CPU about to park, while tasks wait on fds, becomes the
 * poller (rt-wide, one at a time: `poller`) and sleeps in epoll_wait until
 * its next timer, instead of on its futex; sy__kick wakes it through an
 * eventfd in the same epoll.  An idle CPU that does not become the poller
 * polls once without waiting, then parks as usual.  Busy CPUs poll without
 * waiting when their tick finds tasks waiting on fds and nobody polling
 * (EV_IO, handled at the next schedule point).  A task that starts waiting
 * while nobody polls kicks a parked CPU to take the job.  Tasks waiting on
 * fds are not a deadlock: the poller does not count as parked (cpu.c).
 *
 * Locks: an fd's lock is an object lock (LOCK_OBJ); the poller takes one at
 * a time and wakes tasks after dropping it.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io.h"
#include "runq.h"
#include "wait.h"

#define EVFD_TAG UINT64_MAX

static int epfd = -1, evfd = -1;
static int io_state;              /* 0 none, 1 being set up, 2 ready, 3 failed */
static int io_waiting;            /* tasks asleep on an fd (atomic) */
static struct cpu *poller;        /* the CPU asleep in epoll_wait (atomic) */
static uint64_t last_poll_ns;     /* when some CPU last polled (atomic) */

/* The epoll and its eventfd, made by the first task that waits on an fd. */
static int io_setup(void)
{
    for (;;) {
        int s = __atomic_load_n(&io_state, __ATOMIC_ACQUIRE);
        if (s == 2)
            return 0;
        if (s == 3)
            return -ENOSYS;
        int zero = 0;
        if (s == 0 && __atomic_compare_exchange_n(&io_state, &zero, 1, false, __ATOMIC_ACQ_REL,
                                                  __ATOMIC_ACQUIRE))
            break;
        cpu_relax(); /* another CPU is setting it up */
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = EVFD_TAG};
    if (epfd < 0 || evfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev) != 0) {
        int e = errno;
        if (epfd >= 0)
            close(epfd);
        if (evfd >= 0)
            close(evfd);
        epfd = evfd = -1;
        __atomic_store_n(&io_state, 3, __ATOMIC_RELEASE);
        return -e;
    }
    __atomic_store_n(&io_state, 2, __ATOMIC_RELEASE);
    return 0;
}

/* Make fd non-blocking and put it in the epoll, once.  fd's lock held.
 * 0, or -errno (EBADF: not an open fd). */
static int fd_register(struct fdesc *d, int fd)
{
    if (fd_state(d) != FD_NEW)
        return 0;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -errno;
    uint32_t gen = __atomic_load_n(&d->gen, __ATOMIC_RELAXED);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = (uint64_t)gen << 32 | (uint32_t)fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ||
        (errno == EEXIST && epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0)) {
        __atomic_store_n(&d->state, FD_POLLED, __ATOMIC_RELAXED); /* (EEXIST: in it already - a dup? - with our tag now) */
    } else if (errno == EPERM) {
        __atomic_store_n(&d->state, FD_UNPOLLABLE, __ATOMIC_RELAXED); /* a regular file or a directory: always ready */
    } else {
        return -errno;
    }
    return 0;
}

/* The epoll, and fd in it, non-blocking: 0 or -errno. */
static int first_contact(struct fdesc *d, int fd)
{
    obj_lock(&d->lock, LOCK_OBJ);
    int err = io_setup();
    if (!err)
        err = fd_register(d, fd);
    obj_unlock(&d->lock);
    return err;
}

/* ------------------------------------------------------------ the poller */

static void kick_a_parked_cpu(struct cpu *c);

/* Poll the epoll, waiting up to timeout_ms (-1: no limit), and wake the
 * tasks whose fds became ready.  Returns how many events it handled. */
static int netpoll(int timeout_ms, bool is_poller)
{
    struct epoll_event evs[32]; /* (the tick polls on a task's stack: small) */
    int n = epoll_wait(epfd, evs, 32, timeout_ms);
    __atomic_store_n(&last_poll_ns, sy__now_ns(), __ATOMIC_RELAXED);
    if (n <= 0)
        return 0;
    struct task *chain = NULL, **tail = &chain;
    for (int i = 0; i < n; i++) {
        uint64_t tag = evs[i].data.u64;
        if (tag == EVFD_TAG) {
            uint64_t v;
            if (read(evfd, &v, sizeof v) < 0) { /* drained: a kick */
            }
            /* A kick is for the poller; a CPU polling without waiting may
             * have taken it from under it (one shared epoll, edge-
             * triggered: each event goes to one epoll_wait): pass it on. */
            if (!is_poller && __atomic_load_n(&poller, __ATOMIC_SEQ_CST))
                sy__epoll_kick();
            continue;
        }
        int err;
        struct fdesc *d = sy__fdesc_get((int)(uint32_t)tag, &err);
        if (!d)
            continue;
        uint32_t e = evs[i].events;
        obj_lock(&d->lock, LOCK_OBJ);
        if (__atomic_load_n(&d->gen, __ATOMIC_RELAXED) == (uint32_t)(tag >> 32)) {
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                __atomic_store_n(&d->rseq, d->rseq + 1, __ATOMIC_RELEASE);
                wq_fire_all(&d->rq, 0, &tail);
            }
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
                __atomic_store_n(&d->wseq, d->wseq + 1, __ATOMIC_RELEASE);
                wq_fire_all(&d->wq, 0, &tail);
            }
        }
        obj_unlock(&d->lock);
    }
    wake_chain(chain);
    return n;
}

/* io.c: tasks asleep on fds or file jobs (then a parking CPU polls)? */
bool sy__epoll_waiting(void)
{
    return __atomic_load_n(&io_waiting, __ATOMIC_RELAXED) > 0;
}

/* Poll once without waiting unless the poller is on it; true if that woke
 * anything.  Also uring.c's, when a poll of the epoll fd armed in a parked
 * ring completes. */
bool sy__io_epoll_poll(void)
{
    if (__atomic_load_n(&io_state, __ATOMIC_ACQUIRE) != 2 ||
        __atomic_load_n(&poller, __ATOMIC_RELAXED))
        return false; /* the poller is on it */
    return netpoll(0, false) > 0;
}

/* uring.c: the epoll fd, for a parked ring to watch while tasks wait in it
 * (sy_poll); -1 if none do. */
int sy__io_epoll_fd(void)
{
    return __atomic_load_n(&io_state, __ATOMIC_ACQUIRE) == 2 &&
                   __atomic_load_n(&io_waiting, __ATOMIC_RELAXED) > 0
               ? epfd
               : -1;
}

bool sy__epoll_is_poller(const struct cpu *c)
{
    return __atomic_load_n(&poller, __ATOMIC_SEQ_CST) == c;
}

/* cpu.c (io.c), park: become the poller, before publishing `parked` (so
 * that a kick knows to write the eventfd).  False if another CPU polls. */
bool sy__epoll_claim(struct cpu *c)
{
    if (__atomic_load_n(&io_state, __ATOMIC_ACQUIRE) != 2)
        return false;
    struct cpu *none = NULL;
    if (!__atomic_compare_exchange_n(&poller, &none, c, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST))
        return false;
    __atomic_store_n(&c->polling, 1, __ATOMIC_SEQ_CST);
    return true;
}

/* ... or give the claim back without polling (cpu.c: a deadlock). */
void sy__epoll_unclaim(struct cpu *c)
{
    __atomic_store_n(&c->polling, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&poller, NULL, __ATOMIC_SEQ_CST);
}

/* ... then sleep in epoll_wait until `deadline` (UINT64_MAX: none) or a
 * kick, and give the job back. */
void sy__epoll_park(struct cpu *c, uint64_t deadline)
{
    int ms = -1;
    if (deadline != UINT64_MAX) {
        uint64_t now = sy__now_ns();
        uint64_t left = deadline > now ? deadline - now : 0;
        ms = left > (uint64_t)INT32_MAX * 1000000 ? INT32_MAX
                                                  : (int)((left + 999999) / 1000000);
    }
    netpoll(ms, true); /* round up: never early */
    __atomic_store_n(&c->polling, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&poller, NULL, __ATOMIC_SEQ_CST);
    /* we leave the job to run tasks: if fds are still waited on, a parked
     * CPU takes it over (Go's wakep), or nobody would poll until a tick -
     * never, for a task that cannot be preempted */
    if (__atomic_load_n(&io_waiting, __ATOMIC_SEQ_CST) > 0)
        kick_a_parked_cpu(c);
}

/* Wake the poller out of epoll_wait. */
void sy__epoll_kick(void)
{
    uint64_t one = 1;
    if (write(evfd, &one, sizeof one) < 0) { /* full: a kick is pending anyway */
    }
}

/* The tick: busy CPUs poll when tasks wait on fds and nobody has for a
 * while (at the next schedule point: EV_IO). */
bool sy__epoll_poll_due(uint64_t now)
{
    return __atomic_load_n(&io_waiting, __ATOMIC_RELAXED) > 0 &&
           !__atomic_load_n(&poller, __ATOMIC_RELAXED) &&
           now - __atomic_load_n(&last_poll_ns, __ATOMIC_RELAXED) >= rt.tick_ns;
}

/* EV_IO */
void sy__epoll_events(void)
{
    if (__atomic_load_n(&io_state, __ATOMIC_ACQUIRE) == 2 && !__atomic_load_n(&poller, __ATOMIC_RELAXED))
        netpoll(0, false);
}

void sy__epoll_fini(void)
{
    if (epfd >= 0)
        close(epfd);
    if (evfd >= 0)
        close(evfd);
    epfd = evfd = -1;
    __atomic_store_n(&io_state, 0, __ATOMIC_RELEASE);
}

/* ---------------------------------------------------------------- waiting */

/* A task is about to sleep on fds: count it, and if nobody polls while
 * every other CPU may be parked, kick one to take the job (its park makes
 * it the poller). */
static void kick_a_parked_cpu(struct cpu *c)
{
    if (rt.ncpu > 1 && !__atomic_load_n(&poller, __ATOMIC_SEQ_CST))
        for (int i = 0; i < rt.ncpu; i++)
            if (cpu_slot(i) != c && __atomic_load_n(&cpu_slot(i)->parked, __ATOMIC_SEQ_CST)) {
                sy__kick(cpu_slot(i));
                break;
            }
}

static void io_sleep_begin(struct cpu *c)
{
    __atomic_add_fetch(&io_waiting, 1, __ATOMIC_SEQ_CST);
    kick_a_parked_cpu(c);
}

/* A try of fd's operation found it not ready (EAGAIN): sleep until the
 * direction's readiness count moves past `seq` (or the fd is closed: gen
 * moves past `gen`), the deadline passes or the task is killed.
 * 0: try again; -EBADF, -ETIMEDOUT, -EINTR, -ENOMEM. */
static int io_wait(struct cpu *c, int fd, struct fdesc *d, bool write, uint32_t seq,
                   uint32_t gen, int64_t deadline)
{
    struct task *p = c->curr;
    int err = io_setup();
    if (err)
        return err;
    obj_lock(&d->lock, LOCK_OBJ);
    if (__atomic_load_n(&d->gen, __ATOMIC_RELAXED) != gen) {
        obj_unlock(&d->lock);
        return -EBADF; /* closed by sy_close since the try */
    }
    err = fd_register(d, fd);
    if (!err && fd_state(d) == FD_UNPOLLABLE) {
        obj_unlock(&d->lock);
        return 0; /* always ready: the try blocks, or fails for real */
    }
    if (!err && (write ? d->wseq : d->rseq) != seq) {
        obj_unlock(&d->lock);
        return 0; /* ready since the try */
    }
    if (!err)
        err = __atomic_load_n(&p->killed, __ATOMIC_RELAXED) ? -EINTR
                                                           : sy__deadline_check(deadline);
    if (err) {
        obj_unlock(&d->lock);
        return err;
    }
    waiter_t w;
    waiter_init(&w, p);
    sy_waitq_ *q = write ? &d->wq : &d->rq;
    wq_push(q, &w);
    io_sleep_begin(c);
    sy_spinlock *lk = &d->lock;
    err = sy__wait(c, &lk, 1, deadline, d, WK_IO, true);
    __atomic_sub_fetch(&io_waiting, 1, __ATOMIC_SEQ_CST);
    if (p->wait_fired == &w)
        return w.result; /* 0: try again; -EBADF: closed */
    obj_lock(&d->lock, LOCK_OBJ);
    if (w.queued)
        wq_del(q, &w);
    obj_unlock(&d->lock);
    return err;
}

/* fileio.c: a task sleeps on a file job (count it, as a task asleep on an
 * fd: not a deadlock), and is done. */
void sy__io_wait_begin(struct cpu *c)
{
    (void)c; /* (no kick: the worker posts to the task's CPU itself) */
    __atomic_add_fetch(&io_waiting, 1, __ATOMIC_SEQ_CST);
}

void sy__io_wait_end(void)
{
    __atomic_sub_fetch(&io_waiting, 1, __ATOMIC_SEQ_CST);
}

/* The snapshot a try is made against. */
static inline struct fdesc *io_begin(int fd, bool write, uint32_t *seq, uint32_t *gen, int *err)
{
    struct fdesc *d = sy__fdesc_get(fd, err);
    if (d) {
        *gen = __atomic_load_n(&d->gen, __ATOMIC_ACQUIRE);
        *seq = __atomic_load_n(write ? &d->wseq : &d->rseq, __ATOMIC_ACQUIRE);
    }
    return d;
}

/* The operations (io.h), as one try each: the result, or -errno. */
static ssize_t try_op(struct fdesc *d, enum io_op op, int fd, const struct io_args *a)
{
    ssize_t r;
    switch (op) {
    case OP_READ:
        if (fd_as_recv(d, fd, a->buf, a->n, &r))
            return r;
        r = read(fd, a->buf, a->n);
        break;
    case OP_WRITE:
        if (fd_as_send(d, fd, a->cbuf, a->n, 0, &r))
            return r;
        r = write(fd, a->cbuf, a->n);
        break;
    case OP_READV: r = readv(fd, a->iov, a->iovcnt); break;
    case OP_WRITEV: r = writev(fd, a->iov, a->iovcnt); break;
    case OP_RECV: r = recv(fd, a->buf, a->n, a->flags); break;
    case OP_SEND: r = send(fd, a->cbuf, a->n, a->flags | MSG_NOSIGNAL); break;
    case OP_RECVMSG: r = recvmsg(fd, a->msg, a->flags); break;
    case OP_SENDMSG: r = sendmsg(fd, a->msg, a->flags | MSG_NOSIGNAL); break;
    case OP_ACCEPT: r = accept4(fd, a->addr, a->addrlen, a->flags); break;
    default: r = -1; errno = EINVAL;
    }
    return r < 0 ? -errno : r;
}

/* io.c: an operation on the epoll backend, whole (as the blocking call). */
ssize_t sy__epoll_op(struct cpu *c, enum io_op op, int fd, const struct io_args *a,
                     int64_t deadline)
{
    bool write = op == OP_WRITE || op == OP_WRITEV || op == OP_SEND || op == OP_SENDMSG;
    int err = 0;
    uint32_t seq, gen;
    struct fdesc *d = io_begin(fd, write, &seq, &gen, &err);
    if (!d)
        return err;
    if (fd_state(d) == FD_NEW) {
        /* first contact: non-blocking from now on, so a try cannot block */
        if ((err = first_contact(d, fd)) != 0)
            return err;
        d = io_begin(fd, write, &seq, &gen, &err);
    }
    if (fd_state(d) == FD_UNPOLLABLE && (op == OP_READ || op == OP_WRITE))
        return sy__file_rw(fd, a->buf, a->cbuf, a->n, write); /* a regular file:
                                                                 the workers */
    /* write and send finish the whole buffer, as the blocking calls do (a
     * deadline or a kill after part of it returns that part) */
    bool whole = op == OP_WRITE || op == OP_SEND;
    struct io_args rest = *a;
    size_t done = 0;
    for (;;) {
        ssize_t r = try_op(d, op, fd, &rest);
        if (whole && r > 0 && (size_t)r < rest.n) {
            done += (size_t)r;
            rest.cbuf = (const char *)rest.cbuf + r;
            rest.n -= (size_t)r;
            r = -EAGAIN; /* the rest when there is room */
        } else if (r != -EAGAIN && r != -EINTR) {
            return r >= 0 ? r + (ssize_t)done : done ? (ssize_t)done : r;
        }
        if (r == -EAGAIN) {
            c = this_cpu();
            err = io_wait(c, fd, d, write, seq, gen, deadline);
            if (err)
                return done ? (ssize_t)done : err;
        }
        d = io_begin(fd, write, &seq, &gen, &err);
    }
}

/* io.c: connect on the epoll backend. */
int sy__epoll_connect(struct cpu *c, int fd, const struct sockaddr *addr, socklen_t addrlen,
                      int64_t deadline)
{
    (void)c;
    int err = 0;
    uint32_t seq, gen;
    struct fdesc *d = io_begin(fd, true, &seq, &gen, &err);
    if (!d)
        return err;
    if ((err = first_contact(d, fd)) != 0)
        return err;
    d = io_begin(fd, true, &seq, &gen, &err);
    if (connect(fd, addr, addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -errno;
    /* in progress: writable once it is done, then SO_ERROR says how */
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        if (poll(&pf, 1, 0) == 1)
            break;
        err = io_wait(this_cpu(), fd, d, true, seq, gen, deadline);
        if (err)
            return err;
        d = io_begin(fd, true, &seq, &gen, &err);
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        return -errno;
    return -soerr;
}

/* ------------------------------------------------------------------ poll */

static int fdesc_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (struct fdesc *const *)a, y = (uintptr_t) * (struct fdesc *const *)b;
    return x < y ? -1 : x > y;
}

/* Lock the fds' locks in address order (select's way: only the first is
 * tracked by lockdep). */
static void lock_fds(sy_spinlock **locks, int n)
{
    if (n == 0)
        return;
    obj_lock(locks[0], LOCK_OBJ);
    if (rt.smp)
        for (int i = 1; i < n; i++)
            spin_lock(locks[i]);
}

static void unlock_fds(sy_spinlock **locks, int n)
{
    if (n == 0)
        return;
    if (rt.smp)
        for (int i = n - 1; i >= 1; i--)
            spin_unlock(locks[i]);
    obj_unlock(locks[0]);
}

/* io.c: sy_poll, on both backends. */
int sy__epoll_poll_fds(struct cpu *c, struct pollfd *fds, nfds_t n, int64_t deadline)
{
    struct rlimit rl;
    if ((n > 0 && !fds) || (getrlimit(RLIMIT_NOFILE, &rl) == 0 && n > rl.rlim_cur))
        return -EINVAL;
    int err = io_setup();
    if (err)
        return err;
    /* per fd: its descriptor (polled ones only), and two records (read and
     * write), as select has one per case */
    size_t bytes = n * (sizeof(struct fdesc *) * 2 + sizeof(sy_spinlock *) + 2 * sizeof(waiter_t) +
                        2 * sizeof(uint32_t));
    char stackbuf[512];
    char *mem = bytes <= sizeof stackbuf ? stackbuf : malloc(bytes);
    if (!mem)
        return -ENOMEM;
    waiter_t *ws = (waiter_t *)mem;
    struct fdesc **ds = (struct fdesc **)(ws + 2 * n);
    struct fdesc **sorted = ds + n;
    sy_spinlock **locks = (sy_spinlock **)(sorted + n);
    uint32_t *seqs = (uint32_t *)(locks + n);
    struct task *p = c->curr;
    int ret;
    for (;;) {
        /* register the fds, and snapshot their counts before looking */
        int nd = 0;
        for (nfds_t i = 0; i < n; i++) {
            struct fdesc *d = fds[i].fd >= 0 ? sy__fdesc_get(fds[i].fd, &err) : NULL;
            if (d && fd_state(d) == FD_NEW) {
                obj_lock(&d->lock, LOCK_OBJ);
                if (fd_state(d) == FD_NEW)
                    (void)fd_register(d, fds[i].fd); /* failed (not open): poll(2)
                                                        reports POLLNVAL itself */
                obj_unlock(&d->lock);
            }
            ds[i] = d && fd_state(d) == FD_POLLED ? d : NULL;
            seqs[2 * i] = ds[i] ? __atomic_load_n(&d->rseq, __ATOMIC_ACQUIRE) : 0;
            seqs[2 * i + 1] = ds[i] ? __atomic_load_n(&d->wseq, __ATOMIC_ACQUIRE) : 0;
            if (ds[i])
                sorted[nd++] = ds[i];
        }
        ret = poll(fds, n, 0);
        if (ret != 0) {
            ret = ret < 0 ? -errno : ret;
            break;
        }
        ret = __atomic_load_n(&p->killed, __ATOMIC_RELAXED) ? -EINTR
                                                           : sy__deadline_check(deadline);
        if (ret)
            break;
        qsort(sorted, (size_t)nd, sizeof *sorted, fdesc_cmp);
        int nlocks = 0;
        for (int i = 0; i < nd; i++)
            if (i == 0 || sorted[i] != sorted[i - 1])
                locks[nlocks++] = &sorted[i]->lock;
        /* under every lock: nothing moved since the snapshot?  Then queue a
         * record per fd and direction, and sleep */
        lock_fds(locks, nlocks);
        bool moved = false;
        for (nfds_t i = 0; i < n && !moved; i++)
            moved = ds[i] && (ds[i]->rseq != seqs[2 * i] || ds[i]->wseq != seqs[2 * i + 1]);
        if (moved) {
            unlock_fds(locks, nlocks);
            continue;
        }
        int nw = 0;
        for (nfds_t i = 0; i < n; i++) {
            if (!ds[i])
                continue;
            /* POLLHUP and POLLERR are reported whatever was asked: wait
             * on the read queue, which their events fire, unless the write
             * queue is waited on */
            if ((fds[i].events & (POLLIN | POLLPRI | POLLRDHUP)) || !(fds[i].events & POLLOUT)) {
                waiter_init(&ws[nw], p);
                ws[nw].index = (int)i;
                wq_push(&ds[i]->rq, &ws[nw++]);
            }
            if (fds[i].events & POLLOUT) {
                waiter_init(&ws[nw], p);
                ws[nw].index = (int)i;
                ws[nw].data = 1;
                wq_push(&ds[i]->wq, &ws[nw++]);
            }
        }
        if (nlocks) /* (with no fd to wait on, only the deadline ends it) */
            io_sleep_begin(c);
        ret = sy__wait(c, locks, nlocks, deadline, fds, WK_IO, true);
        if (nlocks)
            __atomic_sub_fetch(&io_waiting, 1, __ATOMIC_SEQ_CST);
        c = this_cpu();
        lock_fds(locks, nlocks);
        for (int k = 0; k < nw; k++)
            if (ws[k].queued)
                wq_del(ws[k].data ? &ds[ws[k].index]->wq : &ds[ws[k].index]->rq, &ws[k]);
        unlock_fds(locks, nlocks);
        if (ret)
            break;
        /* a record fired: look again */
    }
    if (mem != stackbuf)
        free(mem);
    return ret == -ETIMEDOUT ? 0 : ret; /* the deadline: as poll's timeout */
}

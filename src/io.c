/*
 * io.c - blocking I/O that sleeps the task: the sy_read/sy_write/... calls,
 * the fd table both backends share (io.h), the choice of backend, and the
 * hooks through which the CPUs poll and park (cpu.c, runq.c, preempt.c),
 * each handed to the backend concerned: io_uring (uring.c) or epoll
 * (epoll.c).
 *
 * Locks: an fd's lock is an object lock (LOCK_OBJ).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io.h"
#include "runq.h"
#include "wait.h"

#define FD_CHUNK 1024
#define FD_CHUNKS 4096 /* fds below 4M */

static struct fdesc *chunks[FD_CHUNKS];

/* ------------------------------------------------------------- the table */

/* The fd's descriptor, allocated on first use; NULL for a negative fd or
 * one past the table (-EBADF), or no memory (*err). */
struct fdesc *sy__fdesc_get(int fd, int *err)
{
    if (fd < 0 || fd >= FD_CHUNK * FD_CHUNKS) {
        *err = -EBADF;
        return NULL;
    }
    struct fdesc **slot = &chunks[fd / FD_CHUNK];
    struct fdesc *ch = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!ch) {
        struct fdesc *fresh = calloc(FD_CHUNK, sizeof *fresh);
        if (!fresh) {
            *err = -ENOMEM;
            return NULL;
        }
        if (__atomic_compare_exchange_n(slot, &ch, fresh, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            ch = fresh;
        else
            free(fresh); /* another CPU installed one first */
    }
    return &ch[fd % FD_CHUNK];
}

/* ------------------------------------------------- the CPUs' hooks */

/* cpu.c: are tasks waiting on I/O (then a parking CPU polls; and no
 * deadlock)? */
bool sy__io_waiting(void)
{
    return sy__epoll_waiting() || sy__uring_inflight();
}

/* cpu.c, idle: poll once without waiting; true if that woke anything here
 * or elsewhere (the caller looks at its queue again). */
bool sy__io_poll_now(void)
{
    bool ring = sy__uring_poll_now(this_cpu());
    return sy__io_epoll_poll() || ring;
}

/* cpu.c, the idle spin: completions waiting for this CPU's ring? */
bool sy__io_ready(struct cpu *c)
{
    return sy__uring_ready(c);
}

/* cpu.c, park: sleep in its ring (requests in flight there), or become the
 * epoll's poller; decided before `parked` is published (a kick must know
 * how to reach it).  False: park on the futex. */
bool sy__io_claim(struct cpu *c)
{
    return sy__uring_claim(c) || sy__epoll_claim(c);
}

/* ... or give the claim back without polling (cpu.c: a deadlock). */
void sy__io_unclaim(struct cpu *c)
{
    if (sy__epoll_is_poller(c))
        sy__epoll_unclaim(c);
    else
        sy__uring_unclaim(c);
}

/* ... then sleep until `deadline` (UINT64_MAX: none), an event or a kick. */
void sy__io_park(struct cpu *c, uint64_t deadline)
{
    if (sy__epoll_is_poller(c))
        sy__epoll_park(c, deadline);
    else
        sy__uring_park(c, deadline); /* claimed for its ring */
}

/* cpu.c, the idle loop of a detached bundle before it retires: serve, and
 * park in, its ring while requests (or cancels) are in flight there, which
 * only its thread may reap (uring.c); true if it did.  The epoll backend has
 * nothing of a CPU's own to serve: its poller duty is any parked CPU's. */
bool sy__io_detached_serve(struct cpu *c)
{
    return sy__uring_detached_serve(c);
}

/* runq.c: kick CPU c, asleep in epoll_wait or (on old kernels) in its
 * ring on an eventfd. */
void sy__io_kick(struct cpu *c)
{
    if (sy__epoll_is_poller(c) || !sy__uring_kick(c))
        sy__epoll_kick();
}

/* The tick (its signal handler): should this CPU poll, or serve its ring,
 * at its next schedule point (EV_IO)? */
bool sy__io_poll_due(uint64_t now)
{
    return sy__epoll_poll_due(now) || sy__uring_due(this_cpu(), now);
}

/* runq.c: EV_IO */
void sy__io_events(void)
{
    sy__epoll_events();
    sy__uring_events(this_cpu());
}

/* The backend, chosen by the first call that needs one: the ring unless
 * SY_IO=epoll or this CPU's ring cannot be made (io.h).  A CPU whose ring
 * cannot be made later (out of memory, of fds) uses the epoll for that
 * call: the two can serve one runtime side by side. */
static int backend; /* SY_IO_NONE until chosen (atomic) */

int sy__io_backend(struct cpu *c)
{
    int b = __atomic_load_n(&backend, __ATOMIC_ACQUIRE);
    if (b == SY_IO_NONE) {
        const char *e = getenv("SY_IO");
        int want = (e && strcmp(e, "epoll") == 0) || sy__uring_setup(c) != 0 ? SY_IO_EPOLL
                                                                               : SY_IO_URING;
        b = SY_IO_NONE;
        if (__atomic_compare_exchange_n(&backend, &b, want, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            b = want;
    }
    if (b == SY_IO_URING && sy__uring_setup(c) != 0)
        return SY_IO_EPOLL;
    return b;
}

const char *sy_io_backend(void)
{
    struct cpu *c = this_cpu();
    if (!c)
        return NULL;
    return sy__io_backend(c) == SY_IO_URING ? "io_uring" : "epoll";
}

void sy__io_fini(void)
{
    sy__uring_fini();
    __atomic_store_n(&backend, SY_IO_NONE, __ATOMIC_RELEASE);
    sy__epoll_fini();
    /* The table stays (a plain thread's close() may be reading it as the
     * runtime ends: freeing it was a use after free, t_hostlib's thread
     * found it); its fds start afresh, as the rings and epoll they were in
     * are gone.  No task is left, so no queue has a record. */
    for (int i = 0; i < FD_CHUNKS; i++) {
        struct fdesc *ch = __atomic_load_n(&chunks[i], __ATOMIC_ACQUIRE);
        for (int j = 0; ch && j < FD_CHUNK; j++) {
            __atomic_add_fetch(&ch[j].gen, 1, __ATOMIC_RELEASE);
            __atomic_store_n(&ch[j].state, FD_NEW, __ATOMIC_RELEASE);
        }
    }
}

/* An operation on the backend of this run. */
static ssize_t io_op(enum io_op op, int fd, const struct io_args *a, int64_t deadline)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    if (sy__io_backend(c) == SY_IO_URING)
        return sy__uring_op(c, op, fd, a, deadline);
    return sy__epoll_op(c, op, fd, a, deadline);
}

/* ------------------------------------------------------------- public */

ssize_t sy_read_until(int fd, void *buf, size_t n, int64_t deadline)
{
    struct io_args a = {.buf = buf, .n = n};
    return io_op(OP_READ, fd, &a, deadline);
}

ssize_t sy_read(int fd, void *buf, size_t n)
{
    return sy_read_until(fd, buf, n, SY_FOREVER);
}

ssize_t sy_write_until(int fd, const void *buf, size_t n, int64_t deadline)
{
    struct io_args a = {.cbuf = buf, .n = n};
    return io_op(OP_WRITE, fd, &a, deadline);
}

ssize_t sy_write(int fd, const void *buf, size_t n)
{
    return sy_write_until(fd, buf, n, SY_FOREVER);
}

ssize_t sy_readv_until(int fd, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    struct io_args a = {.iov = iov, .iovcnt = iovcnt};
    return io_op(OP_READV, fd, &a, deadline);
}

ssize_t sy_readv(int fd, const struct iovec *iov, int iovcnt)
{
    return sy_readv_until(fd, iov, iovcnt, SY_FOREVER);
}

ssize_t sy_writev_until(int fd, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    struct io_args a = {.iov = iov, .iovcnt = iovcnt};
    return io_op(OP_WRITEV, fd, &a, deadline);
}

ssize_t sy_writev(int fd, const struct iovec *iov, int iovcnt)
{
    return sy_writev_until(fd, iov, iovcnt, SY_FOREVER);
}

ssize_t sy_recv_until(int fd, void *buf, size_t n, int flags, int64_t deadline)
{
    struct io_args a = {.buf = buf, .n = n, .flags = flags};
    return io_op(OP_RECV, fd, &a, deadline);
}

ssize_t sy_recv(int fd, void *buf, size_t n, int flags)
{
    return sy_recv_until(fd, buf, n, flags, SY_FOREVER);
}

ssize_t sy_send_until(int fd, const void *buf, size_t n, int flags, int64_t deadline)
{
    struct io_args a = {.cbuf = buf, .n = n, .flags = flags};
    return io_op(OP_SEND, fd, &a, deadline);
}

ssize_t sy_send(int fd, const void *buf, size_t n, int flags)
{
    return sy_send_until(fd, buf, n, flags, SY_FOREVER);
}

ssize_t sy_recvmsg_until(int fd, struct msghdr *msg, int flags, int64_t deadline)
{
    struct io_args a = {.msg = msg, .flags = flags};
    return io_op(OP_RECVMSG, fd, &a, deadline);
}

ssize_t sy_recvmsg(int fd, struct msghdr *msg, int flags)
{
    return sy_recvmsg_until(fd, msg, flags, SY_FOREVER);
}

ssize_t sy_sendmsg_until(int fd, const struct msghdr *msg, int flags, int64_t deadline)
{
    struct io_args a = {.msg = (struct msghdr *)msg, .flags = flags};
    return io_op(OP_SENDMSG, fd, &a, deadline);
}

ssize_t sy_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return sy_sendmsg_until(fd, msg, flags, SY_FOREVER);
}

int sy_accept_until(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
                    int64_t deadline)
{
    struct io_args a = {.addr = addr, .addrlen = addrlen, .flags = flags};
    int nfd = (int)io_op(OP_ACCEPT, fd, &a, deadline), err;
    struct fdesc *d = nfd >= 0 ? sy__fdesc_get(nfd, &err) : NULL;
    if (d)
        fd_set_sock(d, SK_SOCK); /* (io.h: its reads and writes are recv and send) */
    return nfd;
}

int sy_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
    return sy_accept_until(fd, addr, addrlen, flags, SY_FOREVER);
}

int sy_connect_until(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    if (sy__io_backend(c) == SY_IO_URING) {
        struct io_args a = {.caddr = addr, .caddrlen = addrlen};
        return (int)sy__uring_op(c, OP_CONNECT, fd, &a, deadline);
    }
    return sy__epoll_connect(c, fd, addr, addrlen, deadline);
}

int sy_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    return sy_connect_until(fd, addr, addrlen, SY_FOREVER);
}

int sy_shutdown(int fd, int how)
{
    if (!this_cpu())
        return -EPERM;
    return shutdown(fd, how) == 0 ? 0 : -errno;
}

/* Close fd: under the fd's lock, bump its generation, forget its state
 * (the next fd with that number starts afresh), close it, and wake the
 * tasks waiting on it with -EBADF; closing under the lock means no woken
 * task can register the old file again.  From a thread that is not a CPU
 * (outside tasks), only the state is reset, atomically: waiters, if any,
 * stay asleep until their deadline or a kill. */
static int io_close(int fd)
{
    struct fdesc *d = NULL;
    if (fd >= 0 && fd < FD_CHUNK * FD_CHUNKS) {
        struct fdesc *ch = __atomic_load_n(&chunks[fd / FD_CHUNK], __ATOMIC_ACQUIRE);
        d = ch ? &ch[fd % FD_CHUNK] : NULL;
    }
    if (d)
        fd_set_sock(d, SK_UNKNOWN);
    if (!d || fd_state(d) == FD_NEW) /* (a task waits only on a registered fd) */
        return syscall(SYS_close, fd) == 0 ? 0 : -errno;
    if (!this_cpu()) {
        __atomic_add_fetch(&d->gen, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&d->state, FD_NEW, __ATOMIC_RELEASE);
        return syscall(SYS_close, fd) == 0 ? 0 : -errno;
    }
    struct task *chain = NULL, **tail = &chain;
    obj_lock(&d->lock, LOCK_OBJ);
    __atomic_store_n(&d->gen, d->gen + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&d->state, FD_NEW, __ATOMIC_RELAXED); /* closing leaves the epoll */
    int r = syscall(SYS_close, fd) == 0 ? 0 : -errno;
    wq_fire_all(&d->rq, -EBADF, &tail);
    wq_fire_all(&d->wq, -EBADF, &tail);
    obj_unlock(&d->lock);
    wake_chain(chain);
    return r;
}

int sy_close(int fd)
{
    if (!this_cpu())
        return -EPERM;
    return io_close(fd);
}

/* close(2), interposed: a plain close() of an fd tasks used must forget it
 * too, or the number's next life would be taken for registered and
 * non-blocking (accept reuses numbers at once).  (A close inside the C
 * library, fclose's, is not seen: close such fds' tasks' waits with
 * sy_close.)  The system call itself, so that static programs need no
 * dlsym. */
SY_API int close(int fd)
{
    int r = io_close(fd);
    if (r < 0) {
        errno = -r;
        return -1;
    }
    return 0;
}

int sy_poll(struct pollfd *fds, nfds_t n, int64_t deadline)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    return sy__epoll_poll_fds(c, fds, n, deadline); /* (on both backends) */
}

/*
 * io.h - what the I/O calls (io.c, fileio.c) and the io_uring backend
 * (uring.c) share: the fd table, the operations, and the backend's interface.
 *
 * Two backends, chosen once per runtime by the first task that does I/O
 * (io.c: sy__io_backend): io_uring (uring.c), one ring per CPU, unless
 * SY_IO=epoll or the ring cannot be set up (no io_uring in the kernel or the
 * build, io_uring_disabled, a seccomp filter: EPERM, ENOSYS, EINVAL); else
 * epoll (io.c's netpoller, fileio.c's workers for files).
 */
#ifndef SY_IO_H
#define SY_IO_H

#include <sys/socket.h>
#include <sys/uio.h>

#include "internal.h"

enum { FD_NEW, FD_POLLED, FD_UNPOLLABLE, FD_RING };

/* What an fd is, for sy_read and sy_write (struct fdesc's `sock`): a
 * socket's are done as recv and send, which skip the VFS's read and write
 * layers, and in a ring the generic read path (5 to 15 % of the server's
 * CPU per request of bench/b_io's echo rows).  Learned from a send (its
 * ENOTSOCK, or its success) and from sy_accept, forgotten by sy_close and
 * close().  A guess gone stale (a socket closed behind our back, by
 * fclose's close inside the C library or a dup2 over it, and its number
 * reused for a pipe) costs one ENOTSOCK, and is corrected. */
enum { SK_UNKNOWN, SK_SOCK, SK_OTHER };

/* One fd's state.  Tasks wait on its queues: on the epoll backend for
 * readiness, on the ring for their requests' completions (so that
 * sy_close finds and wakes them either way). */
struct fdesc {
    sy_spinlock lock;   /* LOCK_OBJ: the queues, state, and the counts' writes */
    uint32_t gen;       /* sy_close()s of this fd number (atomic) */
    uint32_t rseq, wseq;/* readiness events seen (atomic; epoll) */
    int state;          /* FD_NEW; FD_POLLED (in the epoll), FD_UNPOLLABLE;
                           FD_RING (requests on a ring have waited on it) */
    int sock;           /* SK_* (atomic, relaxed: a hint) */
    sy_waitq_ rq, wq;   /* tasks waiting to read, to write */
};

HIDDEN struct fdesc *sy__fdesc_get(int fd, int *err);

/* An fd's state is written under its lock (or atomically by a close from a
 * thread that is not a CPU) and read without it on the try's fast path. */
static inline int fd_state(const struct fdesc *d)
{
    return __atomic_load_n(&d->state, __ATOMIC_RELAXED);
}

static inline int fd_sock(const struct fdesc *d)
{
    return __atomic_load_n(&d->sock, __ATOMIC_RELAXED);
}

static inline void fd_set_sock(struct fdesc *d, int k)
{
    if (fd_sock(d) != k)
        __atomic_store_n(&d->sock, k, __ATOMIC_RELAXED);
}

/* write(2) of buf as send(2) (flags: MSG_DONTWAIT or 0), unless fd is known
 * not to be a socket: true, and the result or -errno in *res; false if fd
 * is not a socket (or n is 0, where the two calls differ): write it. */
static inline bool fd_as_send(struct fdesc *d, int fd, const void *buf, size_t n, int flags,
                              ssize_t *res)
{
    if (n == 0 || fd_sock(d) == SK_OTHER)
        return false;
    ssize_t r = send(fd, buf, n, flags);
    if (r < 0 && errno == ENOTSOCK) {
        fd_set_sock(d, SK_OTHER);
        return false;
    }
    if (r >= 0 || errno == EAGAIN)
        fd_set_sock(d, SK_SOCK);
    *res = r < 0 ? -errno : r;
    return true;
}

/* read(2) into buf as recv(2), if fd is known to be a socket: true, and
 * the result or -errno in *res; false otherwise: read it. */
static inline bool fd_as_recv(struct fdesc *d, int fd, void *buf, size_t n, ssize_t *res)
{
    if (n == 0 || fd_sock(d) != SK_SOCK)
        return false;
    ssize_t r = recv(fd, buf, n, 0);
    if (r < 0 && errno == ENOTSOCK) {
        fd_set_sock(d, SK_OTHER);
        return false;
    }
    *res = r < 0 ? -errno : r;
    return true;
}

/* The operations, with their arguments. */
enum io_op { OP_READ, OP_WRITE, OP_READV, OP_WRITEV, OP_RECV, OP_SEND, OP_RECVMSG, OP_SENDMSG,
             OP_ACCEPT, OP_CONNECT, OP_POLL, OP_PREAD, OP_PWRITE, OP_FSYNC, OP_FDATASYNC,
             OP_OPENAT };

struct io_args {
    void *buf;
    const void *cbuf;
    size_t n;
    const struct iovec *iov;
    int iovcnt;
    int flags;              /* recv/send/accept4 flags; openat's; poll's events */
    struct msghdr *msg;
    struct sockaddr *addr;
    socklen_t *addrlen;
    const struct sockaddr *caddr; /* connect */
    socklen_t caddrlen;
    off_t off;
    const char *path;
    mode_t mode;
};

static inline bool op_writes(enum io_op op)
{
    return op == OP_WRITE || op == OP_WRITEV || op == OP_SEND || op == OP_SENDMSG ||
           op == OP_CONNECT || op == OP_PWRITE;
}

/* io.c: the backend, chosen by the first call (SY_IO_EPOLL, SY_IO_URING). */
enum { SY_IO_NONE, SY_IO_EPOLL, SY_IO_URING };
HIDDEN int sy__io_backend(struct cpu *c);

/* epoll.c */
HIDDEN ssize_t sy__epoll_op(struct cpu *c, enum io_op op, int fd, const struct io_args *a,
                            int64_t deadline);
HIDDEN int sy__epoll_connect(struct cpu *c, int fd, const struct sockaddr *addr,
                             socklen_t addrlen, int64_t deadline);
struct pollfd;
HIDDEN int sy__epoll_poll_fds(struct cpu *c, struct pollfd *fds, unsigned long n,
                              int64_t deadline);
HIDDEN bool sy__epoll_waiting(void);
HIDDEN int sy__io_epoll_fd(void);
HIDDEN bool sy__io_epoll_poll(void);
HIDDEN bool sy__epoll_is_poller(const struct cpu *c);
HIDDEN bool sy__epoll_claim(struct cpu *c);
HIDDEN void sy__epoll_unclaim(struct cpu *c);
HIDDEN void sy__epoll_park(struct cpu *c, uint64_t deadline);
HIDDEN void sy__epoll_kick(void);
HIDDEN bool sy__epoll_poll_due(uint64_t now);
HIDDEN void sy__epoll_events(void);
HIDDEN void sy__epoll_fini(void);

#if defined(SY_URING)
/* uring.c */
HIDDEN int sy__uring_setup(struct cpu *c);
HIDDEN ssize_t sy__uring_op(struct cpu *c, enum io_op op, int fd, const struct io_args *a,
                            int64_t deadline);
HIDDEN bool sy__uring_inflight(void);
HIDDEN bool sy__uring_claim(struct cpu *c);
HIDDEN void sy__uring_park(struct cpu *c, uint64_t deadline);
HIDDEN void sy__uring_unclaim(struct cpu *c);
HIDDEN bool sy__uring_poll_now(struct cpu *c);
HIDDEN bool sy__uring_ready(struct cpu *c);
HIDDEN bool sy__uring_due(struct cpu *c, uint64_t now);
HIDDEN void sy__uring_events(struct cpu *c);
HIDDEN bool sy__uring_kick(struct cpu *c);
HIDDEN bool sy__uring_detached_serve(struct cpu *c);
HIDDEN void sy__uring_fini(void);
#else
static inline int sy__uring_setup(struct cpu *c)
{
    (void)c;
    return -ENOSYS;
}
static inline ssize_t sy__uring_op(struct cpu *c, enum io_op op, int fd,
                                   const struct io_args *a, int64_t deadline)
{
    (void)c, (void)op, (void)fd, (void)a, (void)deadline;
    return -ENOSYS;
}
static inline bool sy__uring_inflight(void) { return false; }
static inline bool sy__uring_claim(struct cpu *c) { (void)c; return false; }
static inline void sy__uring_park(struct cpu *c, uint64_t deadline) { (void)c, (void)deadline; }
static inline void sy__uring_unclaim(struct cpu *c) { (void)c; }
static inline bool sy__uring_poll_now(struct cpu *c) { (void)c; return false; }
static inline bool sy__uring_ready(struct cpu *c) { (void)c; return false; }
static inline bool sy__uring_due(struct cpu *c, uint64_t now) { (void)c, (void)now; return false; }
static inline void sy__uring_events(struct cpu *c) { (void)c; }
static inline bool sy__uring_kick(struct cpu *c) { (void)c; return false; }
static inline bool sy__uring_detached_serve(struct cpu *c) { (void)c; return false; }
static inline void sy__uring_fini(void) {}
#endif

#endif

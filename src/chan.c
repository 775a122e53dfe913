/*
 * chan.c - channels and select (Go's chan.go and select.go, on waiter
 * records: wait.h).
 *
 * A channel is a ring buffer of `cap` elements (none for an unbuffered
 * one) and two queues of waiter records, senders' and receivers', under the
 * channel's lock.  A sender that finds a receiver waiting copies its
 * element straight into the receiver's destination (the record's elem, on
 * the receiver's stack) and wakes it: an unbuffered round trip is two
 * wakeups and two switches, no buffer.  A receiver that finds the buffer
 * full and a sender waiting takes the head of the buffer and moves the
 * sender's element to its tail, so order is kept.
 *
 * select locks every channel of its cases in address order, looks for a
 * ready case starting at a random one (fairness), and otherwise puts one
 * record on each case's queue and waits (wait.h: the first to fire wins the
 * task's token; the others are taken off when it wakes).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "wait.h"

#define CHAN_MAGIC 0x6368616eu /* "chan" */
#define CHAN_DEAD 0x64656164u
#define CHAN_MAX_ELEM 65536u
#define CHAN_MAX_CAP (1u << 24)

struct sy_chan {
    sy_spinlock lock;
    uint32_t magic;
    bool closed;
    uint32_t esize;
    uint32_t cap;
    uint32_t head;  /* index of the oldest element in buf */
    uint32_t count; /* elements in buf */
    int waits;      /* waits in progress (wait.h: waits_add) */
    sy_waitq_ sendq, recvq;
    _Alignas(16) char buf[];
};

static inline void elem_copy(void *dst, const void *src, uint32_t n)
{
    if (n == 8)
        memcpy(dst, src, 8); /* the common case, one move */
    else
        memcpy(dst, src, n);
}

static inline char *slot(sy_chan *ch, uint32_t i)
{
    uint32_t k = ch->head + i;
    if (k >= ch->cap)
        k -= ch->cap;
    return ch->buf + (size_t)k * ch->esize;
}

static inline bool chan_ok(const sy_chan *ch)
{
    return ch && __atomic_load_n(&ch->magic, __ATOMIC_RELAXED) == CHAN_MAGIC;
}

int sy_chan_create(sy_chan **chp, size_t elem_size, size_t capacity)
{
    if (!this_cpu())
        return -EPERM;
    if (!chp || elem_size == 0 || elem_size > CHAN_MAX_ELEM || capacity > CHAN_MAX_CAP)
        return -EINVAL;
    sy_chan *ch = aligned_alloc(64, (sizeof *ch + elem_size * capacity + 63) & ~(size_t)63);
    if (!ch)
        return -ENOMEM;
    memset(ch, 0, sizeof *ch);
    ch->magic = CHAN_MAGIC;
    ch->esize = (uint32_t)elem_size;
    ch->cap = (uint32_t)capacity;
    *chp = ch;
    return 0;
}

int sy_chan_destroy(sy_chan *ch)
{
    if (!this_cpu())
        return -EPERM;
    if (!chan_ok(ch))
        return -EINVAL;
    obj_lock(&ch->lock, LOCK_OBJ);
    bool busy = !wq_empty(&ch->sendq) || !wq_empty(&ch->recvq) || !waits_none(&ch->waits);
    if (!busy)
        __atomic_store_n(&ch->magic, CHAN_DEAD, __ATOMIC_RELAXED); /* checked unlocked */
    obj_unlock(&ch->lock);
    if (busy)
        return -EBUSY;
    free(ch);
    return 0;
}

/* ------------------------------------------------- the ready operations */

/* Send if it can proceed now: 1 done (*wake: a receiver to wake, or NULL),
 * 0 it would wait, -EPIPE closed.  Lock held. */
static int send_locked(sy_chan *ch, const void *elem, struct task **wake)
{
    if (ch->closed)
        return -EPIPE;
    waiter_t *w;
    while ((w = ch->recvq.head_) != NULL) {
        wq_del(&ch->recvq, w);
        if (wait_fire(w, 0)) {
            if (w->elem)
                elem_copy(w->elem, elem, ch->esize);
            *wake = w->task;
            return 1;
        }
    }
    if (ch->count < ch->cap) {
        elem_copy(slot(ch, ch->count), elem, ch->esize);
        ch->count++;
        *wake = NULL;
        return 1;
    }
    return 0;
}

/* Receive if it can proceed now: 1 done (*wake: a sender to wake, or
 * NULL), 0 it would wait, -EPIPE closed and drained.  Lock held. */
static int recv_locked(sy_chan *ch, void *elem, struct task **wake)
{
    waiter_t *w;
    *wake = NULL;
    if (ch->count) {
        if (elem)
            elem_copy(elem, slot(ch, 0), ch->esize);
        /* a sender waits only when the buffer is full: its element takes
         * the slot just freed, at the tail */
        while ((w = ch->sendq.head_) != NULL) {
            wq_del(&ch->sendq, w);
            if (wait_fire(w, 0)) {
                elem_copy(slot(ch, 0), w->elem, ch->esize);
                *wake = w->task;
                break;
            }
        }
        if (*wake) {
            ch->head = ch->head + 1 == ch->cap ? 0 : ch->head + 1; /* that slot is now the tail */
        } else {
            ch->head = ch->head + 1 == ch->cap ? 0 : ch->head + 1;
            ch->count--;
        }
        return 1;
    }
    while ((w = ch->sendq.head_) != NULL) {
        wq_del(&ch->sendq, w);
        if (wait_fire(w, 0)) {
            if (elem)
                elem_copy(elem, w->elem, ch->esize);
            *wake = w->task;
            return 1;
        }
    }
    return ch->closed ? -EPIPE : 0;
}

/* --------------------------------------------------------- send, recv */

static int chan_wait_one(struct cpu *c, sy_chan *ch, sy_waitq_ *q, void *elem,
                         int64_t deadline)
{
    struct task *p = c->curr;
    int err = __atomic_load_n(&p->killed, __ATOMIC_RELAXED) ? -EINTR
                                                            : sy__deadline_check(deadline);
    if (err) {
        obj_unlock(&ch->lock);
        return err;
    }
    waiter_t w;
    waiter_init(&w, p);
    w.elem = elem;
    wq_push(q, &w);
    waits_add(&ch->waits, 1);
    sy_spinlock *lk = &ch->lock;
    err = sy__wait(c, &lk, 1, deadline, ch, WK_CHAN, WAIT_KILLABLE);
    if (p->wait_fired == &w) {
        waits_add(&ch->waits, -1);
        return w.result; /* done by the other side: 0, or -EPIPE (closed) */
    }
    obj_lock(&ch->lock, LOCK_OBJ);
    if (w.queued)
        wq_del(q, &w);
    waits_add(&ch->waits, -1);
    obj_unlock(&ch->lock);
    return err;
}

static inline int chan_send(sy_chan *ch, const void *elem, int64_t deadline, bool try)
{
    struct cpu *c = this_cpu();
    if (unlikely(!c))
        return -EPERM;
    if (unlikely(!chan_ok(ch) || !elem))
        return -EINVAL;
    struct task *wake;
    obj_lock(&ch->lock, LOCK_OBJ);
    int r = send_locked(ch, elem, &wake);
    if (r) {
        obj_unlock(&ch->lock);
        if (r > 0 && wake)
            sy__wait_wake(wake);
        return r < 0 ? r : 0;
    }
    if (try) {
        obj_unlock(&ch->lock);
        return -EAGAIN;
    }
    return chan_wait_one(c, ch, &ch->sendq, (void *)elem, deadline);
}

static inline int chan_recv(sy_chan *ch, void *elem, int64_t deadline, bool try)
{
    struct cpu *c = this_cpu();
    if (unlikely(!c))
        return -EPERM;
    if (unlikely(!chan_ok(ch)))
        return -EINVAL;
    struct task *wake;
    obj_lock(&ch->lock, LOCK_OBJ);
    int r = recv_locked(ch, elem, &wake);
    if (r) {
        obj_unlock(&ch->lock);
        if (r > 0 && wake)
            sy__wait_wake(wake);
        return r < 0 ? r : 0;
    }
    if (try) {
        obj_unlock(&ch->lock);
        return -EAGAIN;
    }
    return chan_wait_one(c, ch, &ch->recvq, elem, deadline);
}

int sy_chan_send(sy_chan *ch, const void *elem)
{
    return chan_send(ch, elem, SY_FOREVER, false);
}

int sy_chan_send_until(sy_chan *ch, const void *elem, int64_t deadline)
{
    return chan_send(ch, elem, deadline, false);
}

int sy_chan_trysend(sy_chan *ch, const void *elem)
{
    return chan_send(ch, elem, SY_FOREVER, true);
}

int sy_chan_recv(sy_chan *ch, void *elem)
{
    return chan_recv(ch, elem, SY_FOREVER, false);
}

int sy_chan_recv_until(sy_chan *ch, void *elem, int64_t deadline)
{
    return chan_recv(ch, elem, deadline, false);
}

int sy_chan_tryrecv(sy_chan *ch, void *elem)
{
    return chan_recv(ch, elem, SY_FOREVER, true);
}

int sy_chan_close(sy_chan *ch)
{
    if (!this_cpu())
        return -EPERM;
    if (!chan_ok(ch))
        return -EINVAL;
    struct task *chain = NULL, **tail = &chain;
    obj_lock(&ch->lock, LOCK_OBJ);
    if (ch->closed) {
        obj_unlock(&ch->lock);
        return -EPIPE;
    }
    ch->closed = true;
    /* every waiter learns it: receivers (the buffer is empty if they wait)
     * and senders (their elements were not sent) */
    sy_waitq_ *qs[2] = {&ch->recvq, &ch->sendq};
    for (int i = 0; i < 2; i++)
        wq_fire_all(qs[i], -EPIPE, &tail);
    obj_unlock(&ch->lock);
    wake_chain(chain);
    return 0;
}

int sy_chan_len(const sy_chan *ch)
{
    if (!this_cpu())
        return -EPERM;
    if (!chan_ok(ch))
        return -EINVAL;
    sy_chan *c = (sy_chan *)ch; /* its lock: the count is written under it */
    obj_lock(&c->lock, LOCK_OBJ);
    int n = (int)c->count;
    obj_unlock(&c->lock);
    return n;
}

/* ------------------------------------------------------------- select */

#define SELECT_STACK 16 /* cases whose records fit on the stack */

/* A cheap per-CPU random number (xorshift) for the first case to look at. */
static __thread uint64_t select_rand_state;

static uint32_t select_rand(uint32_t n)
{
    uint64_t x = select_rand_state;
    if (!x)
        x = sy__now_ns() | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    select_rand_state = x;
    return (uint32_t)(((x >> 32) * n) >> 32);
}

static int chan_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (sy_chan *const *)a, y = (uintptr_t) * (sy_chan *const *)b;
    return x < y ? -1 : x > y;
}

/* Lock the distinct channels of `order` (sorted), the first through
 * lockdep, the others behind it (spinlock.c: only the first is tracked). */
static void lock_all(sy_spinlock **locks, int n)
{
    obj_lock(locks[0], LOCK_OBJ);
    if (rt.smp)
        for (int i = 1; i < n; i++)
            spin_lock(locks[i]);
}

static void unlock_all(sy_spinlock **locks, int n)
{
    if (rt.smp)
        for (int i = n - 1; i >= 1; i--)
            spin_unlock(locks[i]);
    obj_unlock(locks[0]);
}

int sy_select(sy_select_case *cases, int ncases, int64_t deadline)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    if (ncases < 0 || ncases > SY_SELECT_MAX || (ncases > 0 && !cases))
        return -EINVAL;
    int nchan = 0;
    for (int i = 0; i < ncases; i++) {
        if (!cases[i].chan)
            continue;
        if (!chan_ok(cases[i].chan) || (cases[i].op != SY_SEND && cases[i].op != SY_RECV) ||
            (cases[i].op == SY_SEND && !cases[i].elem))
            return -EINVAL;
        nchan++;
    }
    struct task *p = c->curr;
    if (nchan == 0) { /* nothing can ever be ready: wait for the deadline */
        int err = __atomic_load_n(&p->killed, __ATOMIC_RELAXED) ? -EINTR
                                                                : sy__deadline_check(deadline);
        if (err)
            return err;
        return sy_sleep_until(&p->wait_token, NULL, deadline) == -EINTR ? -EINTR : -ETIMEDOUT;
    }

    waiter_t wstack[SELECT_STACK];
    sy_spinlock *lstack[SELECT_STACK];
    sy_chan *ostack[SELECT_STACK];
    waiter_t *ws = wstack;
    sy_spinlock **locks = lstack;
    sy_chan **order = ostack;
    void *heap = NULL;
    if (nchan > SELECT_STACK) {
        heap = malloc((size_t)nchan * (sizeof *ws + sizeof *locks + sizeof *order));
        if (!heap)
            return -ENOMEM;
        ws = heap;
        locks = (sy_spinlock **)(ws + nchan);
        order = (sy_chan **)(locks + nchan);
    }
    int n = 0;
    for (int i = 0; i < ncases; i++)
        if (cases[i].chan)
            order[n++] = cases[i].chan;
    qsort(order, (size_t)n, sizeof *order, chan_cmp);
    int nlocks = 0;
    for (int i = 0; i < n; i++)
        if (i == 0 || order[i] != order[i - 1])
            locks[nlocks++] = &order[i]->lock;

    /* Pass 1: a ready case, looking from a random one. */
    int ret;
    struct task *wake = NULL;
    uint32_t start = select_rand((uint32_t)ncases);
    lock_all(locks, nlocks);
    for (int k = 0; k < ncases; k++) {
        int i = (int)((start + (uint32_t)k) % (uint32_t)ncases);
        sy_select_case *sc = &cases[i];
        if (!sc->chan)
            continue;
        int r = sc->op == SY_SEND ? send_locked(sc->chan, sc->elem, &wake)
                                  : recv_locked(sc->chan, sc->elem, &wake);
        if (r) {
            sc->err = r < 0 ? r : 0;
            unlock_all(locks, nlocks);
            if (wake)
                sy__wait_wake(wake);
            ret = i;
            goto out;
        }
    }

    /* Pass 2: a record on every case's queue, and wait. */
    ret = __atomic_load_n(&p->killed, __ATOMIC_RELAXED) ? -EINTR : sy__deadline_check(deadline);
    if (ret) {
        unlock_all(locks, nlocks);
        goto out;
    }
    n = 0;
    for (int i = 0; i < ncases; i++) {
        sy_select_case *sc = &cases[i];
        if (!sc->chan)
            continue;
        waiter_t *w = &ws[n++];
        waiter_init(w, p);
        w->index = i;
        w->elem = sc->elem;
        wq_push(sc->op == SY_SEND ? &sc->chan->sendq : &sc->chan->recvq, w);
        waits_add(&sc->chan->waits, 1); /* its cleanup below locks it again */
    }
    ret = sy__wait(c, locks, nlocks, deadline, cases, WK_SELECT, WAIT_KILLABLE);
    waiter_t *fired = p->wait_fired;
    /* take the records that did not fire off their queues */
    lock_all(locks, nlocks);
    for (int k = 0; k < n; k++) {
        waiter_t *w = &ws[k];
        sy_select_case *sc = &cases[w->index];
        if (w->queued)
            wq_del(sc->op == SY_SEND ? &sc->chan->sendq : &sc->chan->recvq, w);
        waits_add(&sc->chan->waits, -1);
    }
    unlock_all(locks, nlocks);
    if (fired) {
        cases[fired->index].err = fired->result;
        ret = fired->index;
    }
out:
    free(heap);
    return ret;
}

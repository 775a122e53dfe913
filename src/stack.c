/*
 * stack.c - task stacks: mmap'd, a guard page below each, committed lazily,
 * pooled, and an overflow report from a SIGSEGV handler.
 *
 * Layout: stacks of the default size are carved out of slabs, one mmap of
 * up to SLAB_BYTES holding [guard][stack][guard][stack]...  A guard page
 * made with mprotect(PROT_NONE) splits the mapping, so one stack costs two
 * VMAs and vm.max_map_count (65530) stops a process at about 32,000 tasks,
 * the wall peers' users keep hitting.  Linux 6.13 added guard regions,
 * madvise(MADV_GUARD_INSTALL): page-table markers that fault like PROT_NONE
 * but leave the VMA whole.  With them a slab of 64 stacks is one VMA, and
 * a million tasks need about 16,000.  Where the kernel lacks them (detected
 * once, by asking the kernel to copy from a guarded page) the guards fall
 * back to mprotect, within a budget that keeps the process clear of
 * vm.max_map_count: (max_map_count - 8192) / 2 guarded stacks, about 28,000
 * by default.  Stacks beyond the budget have no guard; they are counted, and
 * sy_ps_print says so.  Spawn never fails for want of a guard.
 *
 * Memory is MAP_NORESERVE and touched only when a task runs, so an idle
 * task costs one page of stack.  A dead task's stack goes back to a pool
 * (first a per-CPU cache, then a global list) with its pages still
 * committed, so spawn does not reach mmap or take a page fault in steady
 * state.  Stacks of other sizes are mapped one by one and unmapped on free.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "san.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define SLAB_BYTES (4u << 20)
#define SLAB_MAX_STACKS 64

enum guard_mode { GUARD_UNKNOWN, GUARD_MADVISE, GUARD_MPROTECT };

struct slab {
    struct slab *next;
    char *base;
    size_t len;
    unsigned nstacks;
#if defined(SY_VALGRIND)
    unsigned vg_id[SLAB_MAX_STACKS];
#endif
};

static struct {
    size_t page;
    enum guard_mode guard;
    int pidfd;            /* for process_madvise: all guards of a slab in one call */
    sy_spinlock lock;     /* protects the fields below */
    struct slab *slabs;
    char **free;          /* pooled default-size stacks (their lo) */
    size_t nfree, capfree;
    unsigned long unguarded;
    unsigned long mapped; /* default-size stacks carved so far */
    unsigned long guards; /* mprotect guards made (GUARD_MPROTECT) */
    unsigned long guard_budget;
} pool;

size_t sy__page_size(void)
{
    if (!pool.page)
        pool.page = (size_t)sysconf(_SC_PAGESIZE);
    return pool.page;
}

/* Can this kernel install guard regions?  Install one on a scratch page and
 * see whether the kernel refuses to copy from it. */
static enum guard_mode probe_guard_mode(void)
{
    size_t pg = sy__page_size();
    enum guard_mode mode = GUARD_MPROTECT;
    char *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return mode;
    int fds[2];
    if (madvise(p, pg, MADV_GUARD_INSTALL) == 0 && pipe(fds) == 0) {
        if (write(fds[1], p, 1) < 0 && errno == EFAULT)
            mode = GUARD_MADVISE;
        close(fds[0]);
        close(fds[1]);
    }
    munmap(p, pg);
    return mode;
}

/* How many mprotect guards the process can afford (two VMAs each). */
static unsigned long mprotect_guard_budget(void)
{
    long max = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &max) != 1)
            max = 65530;
        fclose(f);
    }
    return max > 16384 ? (unsigned long)(max - 8192) / 2 : (unsigned long)max / 4;
}

int sy__stacks_init(void)
{
    sy__page_size();
    if (pool.guard == GUARD_UNKNOWN) {
        pool.guard = probe_guard_mode();
        if (pool.guard == GUARD_MPROTECT)
            pool.guard_budget = mprotect_guard_budget();
        pool.pidfd = -1;
#if defined(SYS_pidfd_open) && !defined(SY_VALGRIND) /* valgrind 3.19 lacks the call */
        if (pool.guard == GUARD_MADVISE)
            pool.pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
#endif
    }
    pool.guards = 0;
    pool.slabs = NULL;
    pool.free = NULL;
    pool.nfree = pool.capfree = 0;
    pool.unguarded = pool.mapped = 0;
    return 0;
}

static void slab_unmap(struct slab *s)
{
#if defined(SY_VALGRIND)
    for (unsigned i = 0; i < s->nstacks; i++)
        san_stack_unregister(s->vg_id[i]);
#endif
    munmap(s->base, s->len);
    free(s);
}

void sy__stacks_fini(void)
{
    for (struct slab *s = pool.slabs, *n; s; s = n) {
        n = s->next;
        slab_unmap(s);
    }
    pool.slabs = NULL;
    free(pool.free);
    pool.free = NULL;
    pool.nfree = pool.capfree = 0;
    for (int i = 0; i < rt.nbundles; i++)
        rt.bundles[i].nstack_cache = 0;
}

/* Make the page at g a guard.  Returns false if it was left unguarded. */
static bool guard(char *g, size_t len)
{
    if (pool.guard == GUARD_MADVISE)
        return madvise(g, len, MADV_GUARD_INSTALL) == 0;
    if (__atomic_load_n(&pool.guards, __ATOMIC_RELAXED) >= pool.guard_budget)
        return false;
    if (mprotect(g, len, PROT_NONE) != 0)
        return false;
    __atomic_fetch_add(&pool.guards, 1, __ATOMIC_RELAXED);
    return true;
}

/* Guard regions for the n stacks of a slab in one system call; returns how
 * many leading guards it installed (0 where process_madvise is missing or
 * refuses guard advice, and guard() does them one by one). */
static unsigned guard_batch(char *base, size_t stride, unsigned n)
{
#if defined(SYS_process_madvise)
    if (pool.guard != GUARD_MADVISE || pool.pidfd < 0)
        return 0;
    struct iovec iov[SLAB_MAX_STACKS];
    for (unsigned i = 0; i < n; i++) {
        iov[i].iov_base = base + (size_t)i * stride;
        iov[i].iov_len = pool.page;
    }
    long r = syscall(SYS_process_madvise, pool.pidfd, iov, (size_t)n, MADV_GUARD_INSTALL, 0u);
    return r > 0 ? (unsigned)((size_t)r / pool.page) : 0;
#else
    (void)base, (void)stride, (void)n;
    return 0;
#endif
}

static void *map_stack_area(size_t len)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

/* Map a slab of default-size stacks; push all but one on the pool and
 * return that one.  pool.lock NOT held. */
static char *slab_new(void)
{
    size_t guard_sz = pool.page, size = rt.stack_size, stride = guard_sz + size;
    unsigned n = (unsigned)(SLAB_BYTES / stride);
    if (n < 1)
        n = 1;
    if (n > SLAB_MAX_STACKS)
        n = SLAB_MAX_STACKS;
    struct slab *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    s->len = (size_t)n * stride;
    s->base = map_stack_area(s->len);
    if (!s->base) {
        free(s);
        return NULL;
    }
    s->nstacks = n;
    unsigned long unguarded = 0;
    unsigned done = guard_batch(s->base, stride, n);
    for (unsigned i = 0; i < n; i++) {
        char *g = s->base + (size_t)i * stride;
        if (i >= done && !guard(g, guard_sz))
            unguarded++;
#if defined(SY_VALGRIND)
        s->vg_id[i] = san_stack_register(g + guard_sz, size);
#endif
    }

    /* The pool can always hold every default-size stack ever carved, so
     * returning one to it never needs memory. */
    rt_lock(&pool.lock);
    if (pool.mapped + n > pool.capfree) {
        size_t cap = pool.capfree ? pool.capfree * 2 : 256;
        while (cap < pool.mapped + n)
            cap *= 2;
        char **f = realloc(pool.free, cap * sizeof *f);
        if (!f) {
            rt_unlock(&pool.lock);
            slab_unmap(s);
            return NULL;
        }
        pool.free = f;
        pool.capfree = cap;
    }
    s->next = pool.slabs;
    pool.slabs = s;
    pool.unguarded += unguarded;
    pool.mapped += n;
    /* stack 0 is returned; 1 .. n-1 go on the pool, 1 on top */
    for (unsigned i = n - 1; i >= 1; i--)
        pool.free[pool.nfree++] = s->base + (size_t)i * stride + guard_sz;
    rt_unlock(&pool.lock);
    return s->base + guard_sz;
}

/* Move up to `want` stacks from the global pool into cpu c's cache. */
static void cache_refill(struct cpu *c, unsigned want)
{
    rt_lock(&pool.lock);
    while (want-- && pool.nfree && c->nstack_cache < STACK_CACHE)
        c->stack_cache[c->nstack_cache++] = pool.free[--pool.nfree];
    rt_unlock(&pool.lock);
}

static void cache_drain(struct cpu *c, unsigned n)
{
    rt_lock(&pool.lock);
    while (n-- && c->nstack_cache)
        pool.free[pool.nfree++] = c->stack_cache[--c->nstack_cache];
    rt_unlock(&pool.lock);
}

/* Valgrind must know every stack a task switches to (slab stacks are
 * registered with their slab): stacks of another size than the default,
 * mapped one by one, too, with their registration ids kept here to
 * deregister them (without it, valgrind took a switch between two such
 * stacks for a huge stack move: uninitialised values, then SIGSEGV). */
#if defined(SY_VALGRIND)
#define VG_OWN_MAX 4096
static struct {
    char *lo;
    unsigned id;
} vg_own[VG_OWN_MAX];

static void vg_own_register(char *lo, size_t size)
{
    unsigned id = san_stack_register(lo, size);
    rt_lock(&pool.lock);
    for (int i = 0; i < VG_OWN_MAX; i++)
        if (!vg_own[i].lo) {
            vg_own[i].lo = lo;
            vg_own[i].id = id;
            break;
        }
    rt_unlock(&pool.lock);
}

static void vg_own_unregister(char *lo)
{
    rt_lock(&pool.lock);
    for (int i = 0; i < VG_OWN_MAX; i++)
        if (vg_own[i].lo == lo) {
            san_stack_unregister(vg_own[i].id);
            vg_own[i].lo = NULL;
            break;
        }
    rt_unlock(&pool.lock);
}
#else
static inline void vg_own_register(char *lo, size_t size)
{
    (void)lo, (void)size;
}

static inline void vg_own_unregister(char *lo)
{
    (void)lo;
}
#endif

int sy__stack_alloc(size_t size, char **lo)
{
    if (size == rt.stack_size) {
        struct cpu *c = this_cpu();
        if (!c->nstack_cache)
            cache_refill(c, STACK_CACHE / 2);
        if (c->nstack_cache) {
            *lo = c->stack_cache[--c->nstack_cache];
            return 0;
        }
        char *s = slab_new();
        if (!s)
            return -ENOMEM;
        *lo = s;
        return 0;
    }
    /* another size: a mapping of its own */
    size_t guard_sz = pool.page;
    char *m = map_stack_area(guard_sz + size);
    if (!m)
        return -ENOMEM;
    if (!guard(m, guard_sz)) {
        rt_lock(&pool.lock);
        pool.unguarded++;
        rt_unlock(&pool.lock);
    }
    *lo = m + guard_sz;
    vg_own_register(*lo, size);
    return 0;
}

void sy__stack_free(char *lo, size_t size)
{
    san_stack_release(lo, size);
    if (size == rt.stack_size) {
        struct cpu *c = this_cpu();
        if (c->nstack_cache == STACK_CACHE)
            cache_drain(c, STACK_CACHE / 2);
        c->stack_cache[c->nstack_cache++] = lo;
        return;
    }
    vg_own_unregister(lo);
    munmap(lo - pool.page, pool.page + size);
}

unsigned long sy__stacks_unguarded(void)
{
    return pool.unguarded;
}

/* For tests and benchmarks: stacks carved so far, and whether guards are
 * guard regions (true) or mprotect'd pages (false). */
unsigned long sy__stacks_mapped(bool *guard_regions)
{
    if (guard_regions)
        *guard_regions = pool.guard == GUARD_MADVISE;
    return pool.mapped;
}

/* ------------------------------------------------------ overflow report */

static struct sigaction old_segv, old_bus;

static void put_str(char *buf, size_t *n, size_t cap, const char *s)
{
    while (*s && *n < cap)
        buf[(*n)++] = *s++;
}

/* Decimal, async-signal-safe. */
static void fmt_u64(char *buf, size_t n, uint64_t v)
{
    char tmp[24];
    size_t i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t j = 0;
    while (i && j + 1 < n)
        buf[j++] = tmp[--i];
    buf[j] = 0;
}

static void put_u64(char *buf, size_t *n, size_t cap, uint64_t v)
{
    char d[24];
    fmt_u64(d, sizeof d, v);
    put_str(buf, n, cap, d);
}

static void put_hex(char *buf, size_t *n, size_t cap, uintptr_t v)
{
    char d[19] = "0x";
    int i = 2;
    for (int sh = 60; sh >= 0; sh -= 4) {
        unsigned x = (v >> sh) & 15;
        if (x || i > 2 || sh == 0)
            d[i++] = (char)(x < 10 ? '0' + x : 'a' + x - 10);
    }
    d[i] = 0;
    put_str(buf, n, cap, d);
}

/* The SIGSEGV handler, on the CPU's alternate stack.  A fault in the guard
 * below the running task's stack is an overflow: name the task, abort.
 * Anything else goes to the handler that was there before us. */
static void overflow_handler(int sig, siginfo_t *si, void *uc)
{
    struct cpu *c = this_cpu();
    struct task *t = c ? c->curr : NULL;
    char *addr = si->si_addr;
    if (t && t->stack_lo && addr < t->stack_lo && addr >= t->stack_lo - pool.page) {
        char msg[256];
        size_t n = 0;
        put_str(msg, &n, sizeof msg, "switchyard: stack overflow in task ");
        put_u64(msg, &n, sizeof msg, (uint64_t)t->pid);
        put_str(msg, &n, sizeof msg, " (");
        put_str(msg, &n, sizeof msg, t->name);
        put_str(msg, &n, sizeof msg, "): stack of ");
        put_u64(msg, &n, sizeof msg, t->stack_size);
        put_str(msg, &n, sizeof msg, " bytes, fault at ");
        put_hex(msg, &n, sizeof msg, (uintptr_t)addr);
        put_str(msg, &n, sizeof msg, " in its guard page\n");
        ssize_t r = write(2, msg, n);
        (void)r;
        abort(); /* SIGABRT: a core dump stays possible */
    }
    struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
    if (old->sa_flags & SA_SIGINFO) {
        old->sa_sigaction(sig, si, uc);
    } else if (old->sa_handler == SIG_IGN || old->sa_handler == SIG_DFL) {
        /* re-raise with the default action when the instruction re-runs */
        signal(sig, SIG_DFL);
    } else {
        old->sa_handler(sig);
    }
}

/* Alternate signal stack for this CPU's thread, and (once, for CPU 0) the
 * handler itself. */
int sy__overflow_handler_install(struct cpu *c)
{
    size_t sz = 64 * 1024, min = getauxval(AT_MINSIGSTKSZ);
    if (sz < 4 * min)
        sz = 4 * min;
    c->altstack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c->altstack == MAP_FAILED) {
        c->altstack = NULL;
        return -ENOMEM;
    }
    c->altstack_size = sz;
    stack_t ss = {.ss_sp = c->altstack, .ss_size = sz, .ss_flags = 0};
    if (sigaltstack(&ss, &c->old_altstack) != 0)
        return -errno;
    if (c->id == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = overflow_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &old_segv);
        sigaction(SIGBUS, &sa, &old_bus);
    }
    return 0;
}

void sy__overflow_handler_remove(struct cpu *c)
{
    if (c->id == 0) {
        sigaction(SIGSEGV, &old_segv, NULL);
        sigaction(SIGBUS, &old_bus, NULL);
    }
    if (c->altstack) {
        sigaltstack(&c->old_altstack, NULL);
        munmap(c->altstack, c->altstack_size);
        c->altstack = NULL;
    }
}

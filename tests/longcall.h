/*
 * longcall.h - the long library call of the hand-off tests (t_handoff.c,
 * t_iohandoff.c): zlib's compress2 at level 9 on text-like data, loaded
 * with dlopen, else qsort of 16-byte strings; calibrate(ms) sizes it so that
 * one call takes about `ms` of this machine's time, now.  Include after
 * test.h.
 */
#ifndef SY_TEST_LONGCALL_H
#define SY_TEST_LONGCALL_H

#include <dlfcn.h>
#include <string.h>

typedef int (*compress2_fn)(unsigned char *, unsigned long *, const unsigned char *,
                            unsigned long, int);
static compress2_fn zcompress2;
static size_t call_size; /* bytes (zlib) or strings (qsort) per call */

struct buf {
    unsigned char *src, *dst;
    size_t cap;
};

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    /* text-like: compressible, so that level 9 searches hard */
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (unsigned char)('a' + (seed >> 16) % 12);
    }
}

static void buf_init(struct buf *b, size_t n)
{
    size_t sz = zcompress2 ? n : n * 16;
    b->cap = sz + sz / 100 + 1024;
    b->src = malloc(sz);
    b->dst = malloc(b->cap);
    CHECK(b->src && b->dst);
    fill(b->src, sz, 7);
}

static void buf_free(struct buf *b)
{
    free(b->src);
    free(b->dst);
}

/* One long call into a shared library; returns a checksum of its output. */
static unsigned long long_call(struct buf *b, size_t n)
{
    if (zcompress2) {
        unsigned long dl = b->cap;
        CHECK_EQ(zcompress2(b->dst, &dl, b->src, n, 9), 0);
        return dl;
    }
    memcpy(b->dst, b->src, n * 16);
    for (size_t i = 0; i < n; i++)
        b->dst[i * 16 + 15] = 0;
    qsort(b->dst, n, 16, (int (*)(const void *, const void *))strcmp);
    return b->dst[0] + b->dst[(n - 1) * 16];
}

/* Size the call so that it takes about `ms` here, now. */
static void calibrate(unsigned ms)
{
    void *z = dlopen("libz.so.1", RTLD_NOW);
    if (z)
        zcompress2 = (compress2_fn)dlsym(z, "compress2");
    size_t n = zcompress2 ? 1 << 16 : 1 << 12;
    for (;;) {
        struct buf b;
        buf_init(&b, n);
        uint64_t t0 = mono_ns();
        long_call(&b, n);
        uint64_t dt = mono_ns() - t0;
        buf_free(&b);
        if (dt >= ms * 1000000ull / 8 || n >= (64u << 20) / (zcompress2 ? 1 : 16)) {
            double f = (double)ms * 1e6 / (double)(dt ? dt : 1);
            call_size = (size_t)((double)n * (f > 1 ? f : 1));
            size_t max = (64u << 20) / (zcompress2 ? 1 : 16);
            if (call_size > max)
                call_size = max;
            break;
        }
        n *= 4;
    }
}

#endif

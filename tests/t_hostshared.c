/* The host's threading calls with the shared library: a program linked
 * with libswitchyard.so (not the static archive the other tests link) gets
 * the task-aware calls too - the library comes before the C library in
 * the search order (src/hostlock.c).  One case: a task holds a recursive
 * mutex while it sleeps; another task on the same CPU (the same host
 * thread) must not get in (glibc's own would let it: same thread, so a
 * recursion), and the mutex's owner field names the task, as
 * src/hostsync.c stores it.  (No misuse here: with a sanitizer, its
 * interceptors come first and would report one.) */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <switchyard.h>

#define CHECK(c)                                                                 \
    do {                                                                         \
        if (!(c)) {                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);  \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

static pthread_mutex_t m = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static int holding; /* atomic */

static int holder(void *arg)
{
    (void)arg;
    CHECK(pthread_mutex_lock(&m) == 0);
    CHECK(m.__data.__owner == -sy_self()); /* the task owns it */
    __atomic_store_n(&holding, 1, __ATOMIC_SEQ_CST);
    sy_nanosleep(20000000);
    CHECK(pthread_mutex_unlock(&m) == 0);
    return 0;
}

static int other(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&holding, __ATOMIC_SEQ_CST))
        sy_yield();
    CHECK(pthread_mutex_trylock(&m) == EBUSY); /* same host thread, other task */
    CHECK(pthread_mutex_lock(&m) == 0);        /* sleeps until the holder is done */
    CHECK(pthread_mutex_unlock(&m) == 0);
    return 0;
}

static int init(void *arg)
{
    (void)arg;
    sy_attr pin = {.flags = SY_ATTR_PIN, .cpu = 0};
    int a = sy_spawn(holder, NULL, &pin), b = sy_spawn(other, NULL, &pin);
    CHECK(a > 0 && b > 0);
    int sa = -1, sb = -1;
    CHECK(sy_wait(a, &sa, 0) == a && sy_wait(b, &sb, 0) == b);
    CHECK(sa == 0 && sb == 0);
    return 0;
}

int main(void)
{
    for (int ncpu = 1; ncpu <= 2; ncpu++) {
        __atomic_store_n(&holding, 0, __ATOMIC_SEQ_CST);
        sy_config c = {.ncpu = ncpu};
        CHECK(sy_run(&c, init, NULL) == 0);
    }
    fprintf(stderr, "  shared library: task-aware host calls ok\n");
    return 0;
}

/* I/O meets the hand-off: a task waits in sy_read/sy_recv while another task
 * of its CPU is stuck in a long library call (zlib's compress2, else qsort:
 * as in t_handoff.c) and the CPU's run queue is handed to a spare thread.
 *
 * On the io_uring backend the request waits in the ring of the CPU it was
 * submitted on, which only that CPU's own thread may reap (SINGLE_ISSUER,
 * DEFER_TASKRUN): the stuck, then detached, bundle.  Its completion (and a
 * cancel of it, after a kill) must still be served once that thread is back
 * in the runtime - before the fix the detached bundle retired to the spare
 * pool with the request in flight and nobody ever reaped it: the reader
 * hung.  On the epoll backend (make test runs this file again with
 * SY_IO=epoll) the same cases must pass too.
 *
 * Every bound is a multiple of one long call, measured beside it; a
 * watchdog thread ends the program (exit 2) with a diagnosis instead of a
 * hang. */
#include "test.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LONG_CALL_MS 300

#include "longcall.h"

/* ------------------------------------------------------------ one case */

enum how {
    ONE_CALL,   /* the worker makes one long call, then only runtime calls */
    CALL_LOOP,  /* LOOP_CALLS long calls, a sy_yield between two */
    KILL,       /* one long call; the reader is killed meanwhile */
};
#define LOOP_CALLS 6

static int sv[2];            /* the reader's end, the writer's end */
static bool use_recv;
static enum how how;
static atomic_int case_done, reader_waiting, worker_in_call;
static _Atomic uint64_t t_write, t_got, longest_call, loop_end;
static _Atomic long reader_res;
static int reader_pid;

static int reader(void *arg)
{
    (void)arg;
    char ch = 0;
    atomic_store(&reader_waiting, 1);
    ssize_t r = use_recv ? sy_recv(sv[0], &ch, 1, 0) : sy_read(sv[0], &ch, 1);
    atomic_store(&t_got, mono_ns());
    atomic_store(&reader_res, r == 1 ? ch : r);
    return 0;
}

static int worker(void *arg)
{
    (void)arg;
    struct buf b;
    buf_init(&b, call_size);
    int calls = how == CALL_LOOP ? LOOP_CALLS : 1;
    for (int i = 0; i < calls; i++) {
        atomic_store(&worker_in_call, 1);
        uint64_t t0 = mono_ns();
        long_call(&b, call_size); /* no runtime call in there */
        uint64_t dt = mono_ns() - t0;
        if (dt > atomic_load(&longest_call))
            atomic_store(&longest_call, dt);
        if (i + 1 < calls)
            sy_yield(); /* back in the runtime: the detached bundle's task rejoins */
    }
    atomic_store(&loop_end, mono_ns());
    buf_free(&b);
    /* from here on only runtime calls: nothing gets the CPU stuck again */
    while (!atomic_load(&case_done) && atomic_load(&t_got) == 0)
        sy_nanosleep(1000000);
    return 0;
}

static void *writer(void *arg)
{
    (void)arg;
    while (!atomic_load(&worker_in_call))
        usleep(1000);
    usleep(200000); /* the worker's CPU is stuck (and handed off) by now */
    if (how != KILL) {
        atomic_store(&t_write, mono_ns());
        CHECK_EQ(write(sv[1], "d", 1), 1);
    }
    return NULL;
}

static void *watchdog(void *arg)
{
    uint64_t limit = (uint64_t)(long)arg * 1000000ull, t0 = mono_ns();
    while (!atomic_load(&case_done)) {
        if (mono_ns() - t0 > limit) {
            fprintf(stderr,
                    "\nwatchdog: case (%s, %s) still running after %.1f s: reader %s "
                    "(wrote %s), the worker's loop %s; a long call %.0f ms\n",
                    use_recv ? "recv" : "read",
                    how == ONE_CALL ? "one call" : how == CALL_LOOP ? "loop" : "kill",
                    limit / 1e9, atomic_load(&t_got) ? "done" : "still waiting",
                    atomic_load(&t_write) ? "yes" : "no",
                    atomic_load(&loop_end) ? "over" : "not over",
                    atomic_load(&longest_call) / 1e6);
            sy_ps_print(2);
            _exit(2);
        }
        usleep(10000);
    }
    return NULL;
}

static int init_case(void *arg)
{
    (void)arg;
    static bool told;
    if (!told) {
        told = true;
        fprintf(stderr, "  (backend: %s) ", sy_io_backend());
    }
    sy_attr cpu0 = {.flags = SY_ATTR_PIN, .cpu = 0};
    reader_pid = sy_spawn(reader, NULL, &cpu0);
    CHECK(reader_pid > 0);
    while (!atomic_load(&reader_waiting))
        sy_nanosleep(1000000);
    sy_nanosleep(5000000); /* its request is submitted, on CPU 0's ring */
    int w = sy_spawn(worker, NULL, &cpu0);
    CHECK(w > 0);
    if (how == KILL) {
        /* once CPU 0 has been handed off (the worker shows in a long call) */
        uint64_t until = mono_ns() + LONG_CALL_MS * 20 * 1000000ull;
        while (task_info(w).long_call_ns == 0 && atomic_load(&loop_end) == 0) {
            CHECK(mono_ns() < until);
            sy_nanosleep(1000000);
        }
        CHECK_EQ(sy_kill(reader_pid), 0);
    }
    int st;
    CHECK_EQ(sy_wait(reader_pid, &st, 0), reader_pid);
    if (how == KILL)
        CHECK(st == 0 || st == SY_EXIT_KILLED);
    else
        CHECK_EQ(st, 0);
    CHECK_EQ(sy_wait(w, &st, 0), w);
    CHECK_EQ(st, 0);
    return 0;
}

static void run_case(int ncpu, bool recv_, enum how h)
{
    use_recv = recv_;
    how = h;
    if (recv_)
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    else
        CHECK_EQ(pipe(sv), 0);
    atomic_store(&case_done, 0);
    atomic_store(&reader_waiting, 0);
    atomic_store(&worker_in_call, 0);
    atomic_store(&t_write, 0);
    atomic_store(&t_got, 0);
    atomic_store(&longest_call, 0);
    atomic_store(&loop_end, 0);
    atomic_store(&reader_res, -1000);
    pthread_t wt, dog;
    /* far beyond any answer: the loop's calls, each slow under load */
    long limit_ms = LONG_CALL_MS * (LOOP_CALLS + 2) * 10L;
    CHECK_EQ(pthread_create(&dog, NULL, watchdog, (void *)limit_ms), 0);
    CHECK_EQ(pthread_create(&wt, NULL, writer, NULL), 0);
    sy_config c = {.ncpu = ncpu};
    CHECK_EQ(sy_run(&c, init_case, NULL), 0);
    atomic_store(&case_done, 1);
    pthread_join(wt, NULL);
    pthread_join(dog, NULL);
    uint64_t call = atomic_load(&longest_call);
    if (h == KILL) {
        /* the read ended with -EINTR and took nothing: the data written
         * afterwards is still there */
        CHECK_EQ(atomic_load(&reader_res), -EINTR);
        CHECK_EQ(write(sv[1], "k", 1), 1);
        char ch = 0;
        CHECK_EQ(read(sv[0], &ch, 1), 1);
        CHECK_EQ(ch, 'k');
    } else {
        CHECK_EQ(atomic_load(&reader_res), 'd');
        uint64_t lat = atomic_load(&t_got) - atomic_load(&t_write);
        if (h == CALL_LOOP) {
            /* served once the first call has returned, long before the
             * loop is over (the loop is LOOP_CALLS calls) */
            if (lat > 3 * call)
                fprintf(stderr, "\n%d CPUs, %s: data after %.0f ms, a long call %.0f ms\n",
                        ncpu, recv_ ? "recv" : "read", lat / 1e6, call / 1e6);
            CHECK(lat <= 3 * call);
            CHECK(atomic_load(&t_got) < atomic_load(&loop_end));
        }
    }
    close(sv[0]);
    close(sv[1]);
}

static void test_read_one_call_1cpu(void) { run_case(1, false, ONE_CALL); }
static void test_recv_one_call_2cpu(void) { run_case(2, true, ONE_CALL); }
static void test_recv_loop_1cpu(void) { run_case(1, true, CALL_LOOP); }
static void test_read_loop_2cpu(void) { run_case(2, false, CALL_LOOP); }
static void test_kill_1cpu(void) { run_case(1, false, KILL); }
static void test_kill_2cpu(void) { run_case(2, true, KILL); }

int main(void)
{
    calibrate(LONG_CALL_MS);
    fprintf(stderr, "  (long call: %s of %zu %s)\n", zcompress2 ? "compress2" : "qsort", call_size, zcompress2 ? "bytes" : "strings");
    RUN(test_read_one_call_1cpu);
    RUN(test_recv_one_call_2cpu);
    RUN(test_recv_loop_1cpu);
    RUN(test_read_loop_2cpu);
    RUN(test_kill_1cpu);
    RUN(test_kill_2cpu);
    return 0;
}

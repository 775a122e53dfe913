/* One real library that takes its own pthread locks, linked statically,
 * driven from many tasks at once (issue 10): SQLite (Debian's
 * libsqlite3.a) in serialized mode, where every call on a connection takes
 * the connection's recursive pthread mutex.
 *
 * 16 tasks share ONE connection (in memory, or a file in /tmp), at a
 * 100 us quantum, on 1 CPU, on 2 and on test_cpus(); a plain thread
 * (pthread_create) runs the same statements on the same connection at the
 * same time.  Each does, again and again:
 *   - an INSERT whose value goes through pause(), an SQL function of ours
 *     that yields or sleeps the task (sched_yield / nanosleep on the
 *     thread) while SQLite holds the connection's mutex: a host lock held
 *     across a yield and a sleep, which another task on the same CPU then
 *     waits for;
 *   - UPDATE counter SET n = n + pause(1): a read-modify-write inside
 *     SQLite; two statements inside the connection at once would lose
 *     updates;
 *   - a SELECT through sqlite3_exec whose row callback yields or sleeps
 *     (sqlite3_exec holds the connection's mutex throughout);
 *   - every fourth turn, a transaction (BEGIN .. COMMIT) with a yield and a
 *     sleep inside, the application's own pthread_mutex_t held around it
 *     (transactions are per connection).
 * and checks at the end: exact row counts and sums, every row once (a
 * UNIQUE key), the counters exact, no error from any call (SQLITE_MISUSE,
 * SQLITE_CORRUPT, ...), PRAGMA integrity_check = ok.
 *
 * With SY_HOST_SYNC=off (glibc's own locks: two tasks on one host thread
 * are one owner of the recursive mutex) this fails on 1 CPU: counts go
 * wrong, SQLite reports errors, or a task blocks its CPU for ever on the
 * application's mutex; a watchdog then ends the program (exit 1) rather
 * than leaving it to the runner's timeout.
 * Under ThreadSanitizer and valgrind the work is scaled down. */
#include "test.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>

#if defined(__SANITIZE_THREAD__) || defined(SY_VALGRIND)
#define SLOW 1
#else
#define SLOW 0
#endif

#define NTASKS 16
#if defined(SY_VALGRIND)
#define ITERS 12 /* turns of each task, and of the plain thread */
#elif SLOW
#define ITERS 40
#else
#define ITERS 120
#endif
#define THREAD_ITERS ITERS
#define THREAD_WHO 1000                /* the thread's id in the log */
#define TX_BASE 1000000                /* log.i of a transaction's row */
/* A case that takes this long has hung (it takes well under a second) */
#if defined(SY_VALGRIND)
#define WATCHDOG_S 400
#else
#define WATCHDOG_S 40
#endif

/* ------------------------------------------------------------- helpers */

static sqlite3 *db;
static pthread_mutex_t txlock = PTHREAD_MUTEX_INITIALIZER; /* the application's */
static int go;                /* the thread may start (atomic) */
static int thread_turns;      /* the thread's turns done (atomic) */
static int thread_done;       /* the thread is through with SQLite (atomic) */
static const char *case_name; /* for messages */
static int tx_every;          /* a transaction every this many turns; 0: none */

static void die_sql(int rc, const char *what, int line)
{
    fprintf(stderr, "t_hostlib.c:%d: %s (%s): %s: %s\n", line, what, case_name,
            sqlite3_errstr(rc), db ? sqlite3_errmsg(db) : "");
    exit(1);
}
#define SQL_OK(call, want)                  \
    do {                                    \
        int rc_ = (call);                   \
        if (rc_ != (want))                  \
            die_sql(rc_, #call, __LINE__);  \
    } while (0)

static int in_task(void)
{
    return sy_self() > 0;
}

/* Give the CPU away: yield or sleep (a task), the same for a thread. */
static void pause_here(unsigned how)
{
    if (in_task()) {
        if (how % 2)
            CHECK_EQ(sy_nanosleep(20000), 0);
        else
            CHECK_EQ(sy_yield(), 0);
    } else if (how % 2) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    } else {
        sched_yield();
    }
}

/* pause(x): x, after giving the CPU away; SQLite holds the connection's
 * mutex while it runs. */
static unsigned pause_calls; /* (atomic) */
static void fn_pause(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    CHECK_EQ(argc, 1);
    pause_here(__atomic_fetch_add(&pause_calls, 1, __ATOMIC_RELAXED));
    sqlite3_result_value(cx, argv[0]);
}

static long long sql_int(const char *sql)
{
    sqlite3_stmt *st;
    SQL_OK(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    SQL_OK(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    SQL_OK(sqlite3_step(st), SQLITE_DONE);
    SQL_OK(sqlite3_finalize(st), SQLITE_OK);
    return v;
}

/* sqlite3_exec's row callback: gives the CPU away while sqlite3_exec
 * holds the connection's mutex. */
static int on_row(void *arg, int n, char **vals, char **names)
{
    (void)names;
    unsigned *k = arg;
    CHECK_EQ(n, 1);
    CHECK(vals[0] && atoll(vals[0]) >= 0);
    pause_here(++*k);
    return 0;
}

/* One participant's work: turns from .. to-1 as `who`. */
static void work(int who, int from, int to)
{
    sqlite3_stmt *ins, *upd;
    SQL_OK(sqlite3_prepare_v2(db, "INSERT INTO log(who, i, v) VALUES (?1, ?2, pause(?2))", -1,
                              &ins, NULL),
           SQLITE_OK);
    SQL_OK(sqlite3_prepare_v2(db, "UPDATE counter SET n = n + pause(1) WHERE id = 1", -1, &upd,
                              NULL),
           SQLITE_OK);
    unsigned k = (unsigned)who;
    for (int i = from; i < to; i++) {
        SQL_OK(sqlite3_bind_int(ins, 1, who), SQLITE_OK);
        SQL_OK(sqlite3_bind_int(ins, 2, i), SQLITE_OK);
        SQL_OK(sqlite3_step(ins), SQLITE_DONE);
        SQL_OK(sqlite3_reset(ins), SQLITE_OK);
        pause_here(++k);

        SQL_OK(sqlite3_step(upd), SQLITE_DONE);
        SQL_OK(sqlite3_reset(upd), SQLITE_OK);

        SQL_OK(sqlite3_exec(db, "SELECT n FROM counter WHERE id = 1", on_row, &k, NULL),
               SQLITE_OK);

        if (tx_every && i % tx_every == 0) {
            char sql[128];
            CHECK_EQ(pthread_mutex_lock(&txlock), 0);
            SQL_OK(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
            SQL_OK(sqlite3_exec(db, "UPDATE counter SET n = n + 1 WHERE id = 2", NULL, NULL,
                                NULL),
                   SQLITE_OK);
            pause_here(0); /* yield, holding txlock */
            snprintf(sql, sizeof sql, "INSERT INTO log(who, i, v) VALUES (%d, %d, %d)", who,
                     TX_BASE + i, i);
            SQL_OK(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
            pause_here(1); /* sleep, holding txlock */
            SQL_OK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
            CHECK_EQ(pthread_mutex_unlock(&txlock), 0);
        }
    }
    SQL_OK(sqlite3_finalize(ins), SQLITE_OK);
    SQL_OK(sqlite3_finalize(upd), SQLITE_OK);
}

/* ----------------------------------------------- tasks, thread, watchdog */

static int worker(void *arg)
{
    int who = (int)(long)arg;
    work(who, 0, ITERS / 2);
    /* the second half only once the thread has started: its statements
     * and the tasks' overlap */
    while (!__atomic_load_n(&thread_turns, __ATOMIC_ACQUIRE))
        CHECK_EQ(sy_nanosleep(100000), 0);
    work(who, ITERS / 2, ITERS);
    return 0;
}

static int init(void *arg)
{
    (void)arg;
    for (int k = 0; k < NTASKS; k++)
        CHECK(sy_spawn(worker, (void *)(long)(k + 1), &(sy_attr){.name = "sql"}) > 0);
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    int st, n = 0;
    while (sy_wait(-1, &st, 0) > 0) {
        CHECK_EQ(st, 0);
        n++;
    }
    CHECK_EQ(n, NTASKS);
    /* the runtime ends only after the thread: a plain thread's close()
     * racing sy_run's end is another matter (src/io.c) */
    while (!__atomic_load_n(&thread_done, __ATOMIC_ACQUIRE))
        CHECK_EQ(sy_nanosleep(200000), 0);
    return 0;
}

/* The plain thread: the same work on the same connection, from when the
 * tasks run. */
static void *sql_thread(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE)) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < THREAD_ITERS; i++) {
        work(THREAD_WHO, i, i + 1);
        __atomic_store_n(&thread_turns, i + 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&thread_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int watch_fds[2];

/* Ends the program if the case has not finished in WATCHDOG_S seconds: a
 * task blocked its CPU's host thread (or lost a wakeup). */
static void *watchdog(void *arg)
{
    (void)arg;
    struct pollfd p = {.fd = watch_fds[0], .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, WATCHDOG_S * 1000);
    while (r < 0 && errno == EINTR);
    if (r == 0) {
        fprintf(stderr, "\nt_hostlib: %s: no end after %d s: hung (a task blocked its "
                        "CPU?)\n", case_name, WATCHDOG_S);
        _exit(1);
    }
    return NULL;
}

/* ------------------------------------------------------------- the case */

/* A case: `ncpu` CPUs; a file at `path` or in memory; a transaction every
 * `txe` turns (0: none: only SQLite's own locks then). */
static void run_case(const char *name, const char *path, int ncpu, int txe)
{
    case_name = name;
    tx_every = txe;
    __atomic_store_n(&go, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&thread_turns, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&thread_done, 0, __ATOMIC_RELAXED);
    pthread_t wd, th;
    CHECK_EQ(pipe(watch_fds), 0);
    CHECK_EQ(pthread_create(&wd, NULL, watchdog, NULL), 0);

    if (path)
        unlink(path);
    SQL_OK(sqlite3_open_v2(path ? path : ":memory:", &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           NULL),
           SQLITE_OK);
    CHECK(sqlite3_db_mutex(db) != NULL); /* serialized: a mutex per connection */
    SQL_OK(sqlite3_create_function(db, "pause", 1, SQLITE_UTF8, NULL, fn_pause, NULL, NULL),
           SQLITE_OK);
    if (path)
        SQL_OK(sqlite3_exec(db, "PRAGMA synchronous = OFF", NULL, NULL, NULL), SQLITE_OK);
    SQL_OK(sqlite3_exec(db,
                        "CREATE TABLE log(who INTEGER, i INTEGER, v INTEGER, UNIQUE(who, i));"
                        "CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER);"
                        "INSERT INTO counter VALUES (1, 0), (2, 0);",
                        NULL, NULL, NULL),
           SQLITE_OK);

    /* the thread runs beside the runtime; the connection was made and
     * used outside tasks first */
    CHECK_EQ(pthread_create(&th, NULL, sql_thread, NULL), 0);
    /* SQLite's frames are large: 512 KiB stacks, as the runtime's default
     * size (under valgrind, a stack of another size given to sy_spawn
     * crashed valgrind itself: those are not registered with it) */
    sy_config c = {.ncpu = ncpu, .quantum_us = 100, .tick_us = 100, .stack_size = 512 * 1024};
    int st = sy_run(&c, init, NULL);
    if (st != 0) {
        fprintf(stderr, "sy_run (%d CPUs, quantum 100 us) returned %d (%s), want 0\n", ncpu, st,
                st < 0 ? sy_strerror(st) : "status");
        exit(1);
    }
    CHECK_EQ(pthread_join(th, NULL), 0);

#define TXS(n) (txe ? ((long long)(n) + txe - 1) / txe : 0)
#define TRI(n) ((long long)(n) * ((n) - 1) / 2)
    long long plain = (long long)NTASKS * ITERS + THREAD_ITERS;
    long long tx = NTASKS * TXS(ITERS) + TXS(THREAD_ITERS);
    CHECK_EQ(sql_int("SELECT count(*) FROM log"), plain + tx);
    CHECK_EQ(sql_int("SELECT count(*) FROM log WHERE i >= 1000000"), tx);
    CHECK_EQ(sql_int("SELECT count(*) FROM log WHERE who = 1000"),
             THREAD_ITERS + TXS(THREAD_ITERS));
    CHECK_EQ(sql_int("SELECT count(DISTINCT who) FROM log"), NTASKS + 1);
    CHECK_EQ(sql_int("SELECT count(*) FROM log WHERE i < 1000000 AND v != i"), 0);
    CHECK_EQ(sql_int("SELECT count(*) FROM log WHERE i >= 1000000 AND v != i - 1000000"), 0);
    CHECK_EQ(sql_int("SELECT sum(v) FROM log WHERE i < 1000000"),
             NTASKS * TRI(ITERS) + TRI(THREAD_ITERS));
    CHECK_EQ(sql_int("SELECT n FROM counter WHERE id = 1"), plain);
    CHECK_EQ(sql_int("SELECT n FROM counter WHERE id = 2"), tx);
    CHECK(__atomic_load_n(&pause_calls, __ATOMIC_RELAXED) > 0);

    sqlite3_stmt *ic;
    SQL_OK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &ic, NULL), SQLITE_OK);
    SQL_OK(sqlite3_step(ic), SQLITE_ROW);
    const char *verdict = (const char *)sqlite3_column_text(ic, 0);
    if (!verdict || strcmp(verdict, "ok")) {
        fprintf(stderr, "%s: integrity_check: %s\n", name, verdict ? verdict : "(null)");
        exit(1);
    }
    SQL_OK(sqlite3_finalize(ic), SQLITE_OK);
    SQL_OK(sqlite3_close(db), SQLITE_OK);
    db = NULL;
    if (path)
        unlink(path);

    CHECK_EQ(write(watch_fds[1], "x", 1), 1);
    CHECK_EQ(pthread_join(wd, NULL), 0);
    close(watch_fds[0]);
    close(watch_fds[1]);
}

static char file_path[64];

/* Statements only: the connection's mutex is the only lock. */
static void test_statements_1cpu(void)
{
    run_case("statements_1cpu", NULL, 1, 0);
}

static void test_memdb_1cpu(void)
{
    run_case("memdb_1cpu", NULL, 1, 4);
}

static void test_memdb_2cpu(void)
{
    run_case("memdb_2cpu", NULL, 2, 4);
}

static void test_memdb_ncpu(void)
{
    run_case("memdb_ncpu", NULL, test_cpus(), 4);
}

static void test_filedb_1cpu(void)
{
    run_case("filedb_1cpu", file_path, 1, 4);
}

static void test_filedb_2cpu(void)
{
    run_case("filedb_2cpu", file_path, 2, 4);
}

int main(void)
{
    snprintf(file_path, sizeof file_path, "/tmp/t_hostlib.%d.db", (int)getpid());
    CHECK(sqlite3_threadsafe() != 0);
    SQL_OK(sqlite3_config(SQLITE_CONFIG_SERIALIZED), SQLITE_OK);
    SQL_OK(sqlite3_initialize(), SQLITE_OK);
    RUN(test_statements_1cpu);
    RUN(test_memdb_1cpu);
    RUN(test_memdb_2cpu);
    RUN(test_memdb_ncpu);
    RUN(test_filedb_1cpu);
    RUN(test_filedb_2cpu);
    SQL_OK(sqlite3_shutdown(), SQLITE_OK);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/bench.h - helpers shared by every C benchmark program:
 * options, pinning, clocks, measurement loops and JSON output.
 *
 * Every program is invoked by run.py as
 *
 *     bench-<impl> ROW [key=value ...]
 *
 * and prints exactly one JSON object on stdout.  Keys understood by all:
 *   cpu=N    CPU for the loop thread (the thread that dispatches)
 *   cpu2=N   CPU for the other thread (requester / peer loop), if any
 *   quick=1  few iterations (smoke run)
 * Rows and their extra keys are described in tests/bench/README.md.
 *
 * Header-only on purpose: each program is one .c file plus this header,
 * built by run.py with one cc command.
 */
#ifndef AIOLAB_BENCH_H
#define AIOLAB_BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NOINLINE __attribute__((noinline))
#define barrier() __asm__ __volatile__("" ::: "memory")

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause" ::: "memory");
#else
    barrier();
#endif
}

/* ---------------------------------------------------------------------
 * Options: argv[1] is the row, then key=value pairs.
 * --------------------------------------------------------------------- */

static int bench_argc;
static char **bench_argv;

static inline void bench_init(int argc, char **argv)
{
    bench_argc = argc;
    bench_argv = argv;
    if (argc < 2) {
        fprintf(stderr, "usage: %s ROW [key=value ...]\n", argv[0]);
        exit(2);
    }
}

static inline const char *bench_row(void)
{
    return bench_argv[1];
}

static inline const char *opt_str(const char *key, const char *def)
{
    size_t len = strlen(key);

    for (int i = 2; i < bench_argc; i++) {
        if (!strncmp(bench_argv[i], key, len) && bench_argv[i][len] == '=') {
            return bench_argv[i] + len + 1;
        }
    }
    return def;
}

static inline long long opt_int(const char *key, long long def)
{
    const char *s = opt_str(key, NULL);

    return s ? strtoll(s, NULL, 0) : def;
}

static inline bool bench_quick(void)
{
    return opt_int("quick", 0) != 0;
}

static inline void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* The rows a program measures: { "bh", row_bh }, ..., { NULL, NULL }. */
typedef struct BenchRow {
    const char *name;
    void (*run)(void);
} BenchRow;

/* Run the row argv[1] names (after bench_init()); an unknown one dies. */
static inline void bench_run_row(const BenchRow *rows)
{
    for (; rows->name; rows++) {
        if (!strcmp(bench_row(), rows->name)) {
            rows->run();
            return;
        }
    }
    die("unknown row %s", bench_row());
}

/* The rows every event-loop program measures, with its own row_bh(),
 * row_wakeup(), ...: the start of its BenchRow table. */
#define BENCH_LOOP_ROWS                                                   \
    { "bh", row_bh }, { "wakeup", row_wakeup },                           \
    { "pingpong", row_pingpong }, { "timer", row_timer }, { "fd", row_fd }

/* ---------------------------------------------------------------------
 * Pinning.  Threads are pinned with sched_setaffinity(); a tid of 0 is
 * the calling thread.  Each thread also checks where it runs.
 * --------------------------------------------------------------------- */

static inline int bench_gettid(void)
{
    return (int)syscall(SYS_gettid);
}

static inline void pin_tid(int tid, int cpu)
{
    cpu_set_t set;

    if (cpu < 0) {
        return;
    }
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(tid, sizeof(set), &set) < 0) {
        die("sched_setaffinity(%d, cpu %d): %s", tid, cpu, strerror(errno));
    }
}

static inline void pin_self(int cpu)
{
    pin_tid(0, cpu);
}

static inline int opt_cpu(void)
{
    return (int)opt_int("cpu", 1);
}

static inline int opt_cpu2(void)
{
    return (int)opt_int("cpu2", 0);
}

/* ---------------------------------------------------------------------
 * Clocks
 * --------------------------------------------------------------------- */

static inline int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---------------------------------------------------------------------
 * Futex (the floor of every cross-thread wake-up)
 * --------------------------------------------------------------------- */

static inline void futex_wait(int *addr, int val)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static inline void futex_wake(int *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---------------------------------------------------------------------
 * Statistics and output
 * --------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* @v must be sorted. */
static inline double pct_i64(const int64_t *v, size_t n, double p)
{
    double pos = p / 100.0 * (double)(n - 1);
    size_t i = (size_t)pos;
    double frac = pos - (double)i;

    if (i + 1 >= n) {
        return (double)v[n - 1];
    }
    return (double)v[i] * (1 - frac) + (double)v[i + 1] * frac;
}

static inline double median_dbl(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static inline void json_begin(const char *impl)
{
    printf("{\"row\": \"%s\", \"impl\": \"%s\"", bench_row(), impl);
}

static inline void json_num(const char *key, double v)
{
    printf(", \"%s\": %.3f", key, v);
}

static inline void json_str(const char *key, const char *v)
{
    printf(", \"%s\": \"%s\"", key, v);
}

static inline void json_end(void)
{
    printf("}\n");
    fflush(stdout);
}

/*
 * Latency samples (ns): prints p50, p99, p99.9, min, max, mean and the
 * 0..100 percentiles (for CDF plots).  Sorts @v.
 */
static inline void json_latency(int64_t *v, size_t n)
{
    double sum = 0;

    if (n == 0) {
        die("no samples");
    }
    qsort(v, n, sizeof(*v), cmp_i64);
    for (size_t i = 0; i < n; i++) {
        sum += (double)v[i];
    }
    json_num("value", pct_i64(v, n, 50));
    json_num("p50", pct_i64(v, n, 50));
    json_num("p99", pct_i64(v, n, 99));
    json_num("p999", pct_i64(v, n, 99.9));
    json_num("min", (double)v[0]);
    json_num("max", (double)v[n - 1]);
    json_num("mean", sum / (double)n);
    json_num("n", (double)n);
    printf(", \"quantiles\": [");
    for (int p = 0; p <= 100; p++) {
        printf("%s%.1f", p ? ", " : "", pct_i64(v, n, p));
    }
    printf("]");
}

/*
 * Throughput: @fn(@arg, n) performs n operations.  Calibrates n so that
 * one batch takes about @batch_ns, warms up, runs @nbatch batches and
 * prints value = the median ns per operation (and every batch).
 */
typedef void BenchBatchFn(void *arg, uint64_t n);

static inline void json_throughput(BenchBatchFn *fn, void *arg,
                                   double ops_per_call)
{
    int nbatch = bench_quick() ? 3 : 9;
    int64_t batch_ns = bench_quick() ? 5000000 : 30000000;
    uint64_t n = 64;
    double per[16];
    int64_t t0, dt;

    /* Calibrate (also the warm-up). */
    for (;;) {
        t0 = now_ns();
        fn(arg, n);
        dt = now_ns() - t0;
        if (dt >= batch_ns / 4) {
            break;
        }
        n *= 2;
    }
    n = (uint64_t)((double)n * (double)batch_ns / (double)(dt ? dt : 1));
    if (n < 16) {
        n = 16;
    }
    fn(arg, n / 4);
    for (int i = 0; i < nbatch; i++) {
        t0 = now_ns();
        fn(arg, n);
        dt = now_ns() - t0;
        per[i] = (double)dt / ((double)n * ops_per_call);
    }
    printf(", \"batches\": [");
    for (int i = 0; i < nbatch; i++) {
        printf("%s%.3f", i ? ", " : "", per[i]);
    }
    printf("]");
    json_num("ops_per_batch", (double)n);
    json_num("value", median_dbl(per, nbatch));
}

/*
 * The wake-up rows: back to back (gap 0: the loop may still be awake when
 * the next request comes), or gap_ns=N apart, so that the loop has gone
 * to sleep.  The requester spins through the gap on its own CPU.
 */
static inline size_t wakeup_samples(int64_t gap)
{
    if (gap) {
        return bench_quick() ? 500 : 5000;
    }
    return bench_quick() ? 2000 : 20000;
}

static inline void gap_wait(int64_t gap)
{
    int64_t end = now_ns() + gap;

    while (gap && now_ns() < end) {
        cpu_relax();
    }
}

/*
 * Row 5, fd: an eventfd the loop watches, written once per operation
 * (bench_eventfd_write()) and read by the loop's handler
 * (bench_eventfd_read(): true if there was something to read).
 */
static inline int bench_eventfd(void)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (fd < 0) {
        die("eventfd: %s", strerror(errno));
    }
    return fd;
}

static inline void bench_eventfd_write(int fd)
{
    uint64_t one = 1;

    if (write(fd, &one, sizeof(one)) != sizeof(one)) {
        die("write");
    }
}

static inline bool bench_eventfd_read(int fd)
{
    uint64_t val;

    return read(fd, &val, sizeof(val)) == sizeof(val);
}

/* After a throughput row: its loop's callback (@what) ran @calls times,
 * which must not be none. */
static inline void bench_check_ran(uint64_t calls, const char *what)
{
    if (calls == 0) {
        die("%s never ran", what);
    }
}

/* Samples for latency rows. */
static inline int64_t *samples_alloc(size_t n)
{
    int64_t *v = calloc(n, sizeof(*v));

    if (!v) {
        die("out of memory");
    }
    return v;
}

/*
 * Row 3, pingpong: two loops bounce an event back and forth; the "ping"
 * side's callback calls pingpong_ping(), which records one round trip
 * per bounce (after n / 10 warm-up ones) and wakes pingpong_wait() after
 * the last, returning false: bounce again only while it returns true.
 */
typedef struct BenchPingPong {
    int64_t *v;                 /* n round trips, ns */
    size_t n, warm, i;
    int64_t last;
    sem_t done;
} BenchPingPong;

static inline void pingpong_init(BenchPingPong *p)
{
    p->n = bench_quick() ? 2000 : 20000;
    p->warm = p->n / 10;
    p->v = samples_alloc(p->n);
    p->i = 0;
    sem_init(&p->done, 0, 0);
}

static inline bool pingpong_ping(BenchPingPong *p)
{
    int64_t t = now_ns();

    if (p->i > p->warm) {
        p->v[p->i - p->warm - 1] = t - p->last;
    }
    p->last = t;
    if (p->i++ == p->n + p->warm) {
        sem_post(&p->done);
        return false;
    }
    return true;
}

static inline void pingpong_wait(BenchPingPong *p)
{
    sem_wait(&p->done);
}

#endif

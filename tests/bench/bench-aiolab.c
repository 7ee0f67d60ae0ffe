/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/bench-aiolab.c - the aiolab side of every row, written
 * against the public API only.  Built by run.py (from the repository root):
 *
 *     cc -O2 -g -pthread tests/bench/bench-aiolab.c -o bench-aiolab \
 *        -Ic/include -Lbuild/release -laiolab \
 *        -Wl,-rpath,$PWD/build/release
 *
 * Usage: bench-aiolab ROW [trace=on|off] [cpu=N] [cpu2=N] [quick=1] ...
 *   bh                     qemu_bh_schedule + aio_poll(ctx, false) on a
 *                          fresh aio_context_new() with nothing else in it
 *   wakeup [poll_max_ns=N] requester (cpu2) schedules a BH into an
 *                          IOThread (cpu) whose callback sets a flag
 *   pingpong               two IOThreads with poll-max-ns 0, both on cpu,
 *                          each BH scheduling the other's
 *   timer [poll_max_ns=N]  aio_timer_new on an IOThread's context, 1 ms,
 *                          re-armed from its callback
 *   fd fdmon=epoll|poll    eventfd write + aio_poll(ctx, false); the fd
 *                          handler (no io_poll) reads it
 *   coroutine              qemu_coroutine_enter + qemu_coroutine_yield
 *   trace                  aiolab_trace_mark() loop minus the empty loop
 * trace=off calls aiolab_trace_set_enabled(false) before anything else.
 */
#include "bench.h"

#include <sys/eventfd.h>
#include <aiolab/aiolab.h>

static volatile uint64_t counter;
static bool trace_on;

static void json_begin_aiolab(void)
{
    json_begin(trace_on ? "aiolab" : "aiolab (trace off)");
    json_str("trace", trace_on ? "on" : "off");
    json_num("checks", aiolab_checks_enabled());
}

/* Main loop + BQL: iothread_create() and friends are global-state code. */
static void init_main_loop(void)
{
    qemu_init_main_loop(&error_abort);
    bql_lock();
}

static IOThread *start_iothread(const char *id, int cpu, long long max_ns)
{
    IOThread *it = iothread_create(id, &error_abort);

    if (max_ns >= 0) {
        iothread_set_poll_params(it, max_ns, 0, 0, &error_abort);
    }
    pin_tid(iothread_get_thread_id(it), cpu);
    return it;
}

static int64_t iothread_param(IOThread *it, const char *name)
{
    int64_t v = -1;

    aiolab_iothread_get_param(it, name, &v);
    return v;
}

/* ---- bh ---------------------------------------------------------------- */

static void count_cb(void *opaque)
{
    counter++;
}

struct bh {
    AioContext *ctx;
    QEMUBH *bh;
};

static void bh_batch(void *arg, uint64_t n)
{
    struct bh *b = arg;

    for (uint64_t i = 0; i < n; i++) {
        qemu_bh_schedule(b->bh);
        aio_poll(b->ctx, false);
    }
}

static void row_bh(void)
{
    struct bh b;
    uint64_t before;

    pin_self(opt_cpu());
    b.ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(b.ctx);
    b.bh = aio_bh_new(b.ctx, count_cb, NULL);
    json_begin_aiolab();
    json_str("fdmon", aiolab_aio_context_fdmon_name(b.ctx));
    json_throughput(bh_batch, &b, 1);
    before = counter;
    bh_batch(&b, 1000);
    json_num("calls_per_op", (double)(counter - before) / 1000);
    json_end();
    qemu_bh_delete(b.bh);
    aio_poll(b.ctx, false);
    aio_context_unref(b.ctx);
}

/* ---- wakeup ---------------------------------------------------------------- */

static int done_flag;

static void wake_cb(void *opaque)
{
    __atomic_store_n(&done_flag, 1, __ATOMIC_RELEASE);
}

static void row_wakeup(void)
{
    int64_t gap = opt_int("gap_ns", 0);
    size_t n = wakeup_samples(gap), warm = n / 10;
    int64_t *v = samples_alloc(n);
    long long max_ns = opt_int("poll_max_ns", -1);
    IOThread *it;
    QEMUBH *bh;

    pin_self(opt_cpu2());
    init_main_loop();
    it = start_iothread("bench", opt_cpu(), max_ns);
    bh = aio_bh_new(iothread_get_aio_context(it), wake_cb, NULL);
    usleep(10000);
    for (size_t i = 0; i < n + warm; i++) {
        int64_t t0 = now_ns();

        __atomic_store_n(&done_flag, 0, __ATOMIC_RELAXED);
        qemu_bh_schedule(bh);
        while (!__atomic_load_n(&done_flag, __ATOMIC_ACQUIRE)) {
            cpu_relax();
        }
        if (i >= warm) {
            v[i - warm] = now_ns() - t0;
        }
        gap_wait(gap);
    }
    json_begin_aiolab();
    json_num("poll_max_ns", (double)iothread_param(it, "poll-max-ns"));
    json_num("poll_ns_at_end",
             (double)aiolab_aio_context_get_poll_ns(iothread_get_aio_context(it)));
    json_latency(v, n);
    json_end();
    qemu_bh_delete(bh);
    iothread_destroy(it);
}

/* ---- pingpong ------------------------------------------------------------ */

static QEMUBH *pp_bh[2];
static BenchPingPong rtt;

static void ping_cb(void *opaque)
{
    if (pingpong_ping(&rtt)) {
        qemu_bh_schedule(pp_bh[1]);
    }
}

static void pong_cb(void *opaque)
{
    qemu_bh_schedule(pp_bh[0]);
}

static void row_pingpong(void)
{
    long long max_ns = opt_int("poll_max_ns", 0);
    IOThread *a, *b;

    pingpong_init(&rtt);
    pin_self(opt_cpu2());
    init_main_loop();
    a = start_iothread("ping", opt_cpu(), max_ns);
    b = start_iothread("pong", opt_cpu(), max_ns);
    pp_bh[0] = aio_bh_new(iothread_get_aio_context(a), ping_cb, NULL);
    pp_bh[1] = aio_bh_new(iothread_get_aio_context(b), pong_cb, NULL);
    usleep(10000);
    qemu_bh_schedule(pp_bh[0]);
    pingpong_wait(&rtt);
    json_begin_aiolab();
    json_num("poll_max_ns", (double)iothread_param(a, "poll-max-ns"));
    json_latency(rtt.v, rtt.n);
    json_end();
    iothread_stop(a);
    iothread_stop(b);
    qemu_bh_delete(pp_bh[0]);
    qemu_bh_delete(pp_bh[1]);
    iothread_destroy(a);
    iothread_destroy(b);
}

/* ---- timer ------------------------------------------------------------------ */

static QEMUTimer *tm;
static int64_t tm_deadline;
static int64_t *tm_v;
static size_t tm_n, tm_warm = 5, tm_i;
static sem_t tm_done;

static void tm_arm(void)
{
    tm_deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + 1000000;
    timer_mod_ns(tm, tm_deadline);
}

static void tm_cb(void *opaque)
{
    int64_t late = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - tm_deadline;

    if (tm_i >= tm_warm) {
        tm_v[tm_i - tm_warm] = late;
    }
    if (++tm_i < tm_n + tm_warm) {
        tm_arm();
    } else {
        sem_post(&tm_done);
    }
}

static void row_timer(void)
{
    long long max_ns = opt_int("poll_max_ns", -1);
    int64_t skew = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - now_ns();
    IOThread *it;

    tm_n = bench_quick() ? 100 : 1000;
    tm_v = samples_alloc(tm_n);
    sem_init(&tm_done, 0, 0);
    pin_self(opt_cpu2());
    init_main_loop();
    it = start_iothread("timer", opt_cpu(), max_ns);
    tm = aio_timer_new(iothread_get_aio_context(it), QEMU_CLOCK_REALTIME,
                       SCALE_NS, tm_cb, NULL);
    tm_arm();
    sem_wait(&tm_done);
    iothread_stop(it);
    json_begin_aiolab();
    json_num("poll_max_ns", (double)iothread_param(it, "poll-max-ns"));
    json_num("realtime_minus_monotonic_ns", (double)skew);
    json_latency(tm_v, tm_n);
    json_end();
    timer_free(tm);
    iothread_destroy(it);
}

/* ---- fd ------------------------------------------------------------------ */

struct fdb {
    AioContext *ctx;
    int efd;
};

static void fd_read(void *opaque)
{
    struct fdb *f = opaque;
    if (bench_eventfd_read(f->efd)) {
        counter++;
    }
}

static void fd_batch(void *arg, uint64_t n)
{
    struct fdb *f = arg;

    for (uint64_t i = 0; i < n; i++) {
        bench_eventfd_write(f->efd);
        aio_poll(f->ctx, false);
    }
}

static void row_fd(void)
{
    const char *fdmon = opt_str("fdmon", "epoll");
    struct fdb f;
    Error *err = NULL;
    uint64_t before;

    pin_self(opt_cpu());
    f.ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(f.ctx);
    if (!aiolab_aio_context_set_fdmon(f.ctx, fdmon, &err)) {
        die("set_fdmon(%s): %s", fdmon, error_get_pretty(err));
    }
    f.efd = bench_eventfd();
    aio_set_fd_handler(f.ctx, f.efd, fd_read, NULL, NULL, NULL, &f);
    json_begin_aiolab();
    json_str("fdmon", aiolab_aio_context_fdmon_name(f.ctx));
    json_throughput(fd_batch, &f, 1);
    before = counter;
    fd_batch(&f, 1000);
    /* 1.0 if every aio_poll(ctx, false) dispatched the handler */
    json_num("calls_per_op", (double)(counter - before) / 1000);
    json_end();
    aio_set_fd_handler(f.ctx, f.efd, NULL, NULL, NULL, NULL, NULL);
    aio_context_unref(f.ctx);
    close(f.efd);
}

/* ---- coroutine ----------------------------------------------------------- */

static volatile bool co_stop;

static void coroutine_fn co_entry(void *opaque)
{
    while (!co_stop) {
        qemu_coroutine_yield();
    }
}

static void co_batch(void *arg, uint64_t n)
{
    Coroutine *co = arg;

    for (uint64_t i = 0; i < n; i++) {
        qemu_coroutine_enter(co);
    }
}

static void row_coroutine(void)
{
    AioContext *ctx;
    Coroutine *co;

    pin_self(opt_cpu());
    ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(ctx);
    co = qemu_coroutine_create(co_entry, NULL);
    json_begin_aiolab();
    /* one enter + one yield per operation: 2 switches */
    json_throughput(co_batch, co, 2);
    json_end();
    co_stop = true;
    qemu_coroutine_enter(co);
    aio_context_unref(ctx);
}

/* ---- trace ---------------------------------------------------------------- */

static void empty_batch(void *arg, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        barrier();
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static volatile uint64_t tsc_sink;

/* The time stamp alone, for comparison (as bench-floor's trace row). */
static void rdtsc_batch(void *arg, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        tsc_sink = __rdtsc();
    }
}
#else
static void rdtsc_batch(void *arg, uint64_t n)
{
    empty_batch(arg, n);
}
#endif

static void mark_batch(void *arg, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        aiolab_trace_mark("bench", (int64_t)i);
    }
}

/*
 * Both loops are timed in this process, alternately, and the cost of one
 * event is the difference of the medians.  json_throughput() prints one
 * value; this row prints its own fields.
 */
static void row_trace(void)
{
    int nb = bench_quick() ? 3 : 9;
    uint64_t n = bench_quick() ? 200000 : 2000000;
    double e[16], m[16], r[16];

    pin_self(opt_cpu());
    mark_batch(NULL, n);                 /* warm up, allocate the ring */
    for (int i = 0; i < nb; i++) {
        int64_t t0 = now_ns();

        empty_batch(NULL, n);
        int64_t t1 = now_ns();
        mark_batch(NULL, n);
        int64_t t2 = now_ns();
        rdtsc_batch(NULL, n);
        int64_t t3 = now_ns();
        e[i] = (double)(t1 - t0) / (double)n;
        m[i] = (double)(t2 - t1) / (double)n;
        r[i] = (double)(t3 - t2) / (double)n;
    }
    double me = median_dbl(e, nb), mm = median_dbl(m, nb);
    double mr = median_dbl(r, nb);

    json_begin_aiolab();
    json_num("empty_loop_ns", me);
    json_num("mark_loop_ns", mm);
    /* same process, same moment: how much of an event is the rdtsc */
    json_num("rdtsc_same_process_ns", mr - me);
    json_num("value", mm - me);
    json_end();
}

static const BenchRow rows[] = {
    BENCH_LOOP_ROWS,
    { "coroutine", row_coroutine },
    { "trace", row_trace },
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    bench_init(argc, argv);
    trace_on = strcmp(opt_str("trace", "on"), "off") != 0;
    if (!trace_on) {
        aiolab_trace_set_enabled(false);
    }
    if (aiolab_trace_get_enabled() != trace_on) {
        die("tracing is %s, expected %s (AIOLAB_TRACE in the environment?)",
            aiolab_trace_get_enabled() ? "on" : "off", trace_on ? "on" : "off");
    }
    bench_run_row(rows);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/bench-floor.c - the floors: what each row costs with no
 * event loop at all (a function pointer, a futex, clock_nanosleep, a raw
 * epoll_wait, swapcontext, a plain call).  Built by run.py:
 *
 *     cc -O2 -g -pthread tests/bench/bench-floor.c -o bench-floor
 *
 * Usage: bench-floor ROW [variant=...] [cpu=N] [cpu2=N] [quick=1]
 *   bh                      flag + indirect call (schedule + dispatch)
 *   wakeup variant=futex    server sleeps in FUTEX_WAIT, requester wakes it
 *   wakeup variant=spin     server busy-polls a flag (cache-line round trip)
 *   pingpong                two threads, each sleeping in FUTEX_WAIT
 *   timer variant=slack1    clock_nanosleep(ABSTIME) with PR_SET_TIMERSLACK 1
 *   timer variant=default   the same with the default 50 us timer slack
 *   fd                      eventfd write + epoll_wait(0) + read
 *   coroutine variant=swapcontext | sigsetjmp | builtin_setjmp | call
 *                           a coroutine that yields in a loop, entered in a
 *                           loop (per switch = round trip / 2); sigsetjmp is
 *                           QEMU's coroutine-ucontext switch without the rest
 *   trace                   the empty loop
 *   trace variant=rdtsc     one rdtsc (a trace time stamp) minus the empty loop
 */
/* siglongjmp between stacks trips _FORTIFY_SOURCE's check (QEMU undefines
 * it for its coroutine backend too). */
#undef _FORTIFY_SOURCE
#include "bench.h"

#include <setjmp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <ucontext.h>

/* ---- bh: the floor of "schedule a callback, run it" ------------------ */

typedef void Fn(void *);
static volatile uint64_t counter;
static BENCH_NOINLINE void count_cb(void *opaque)
{
    counter++;
}

struct deferred {
    Fn *volatile fn;
    void *volatile opaque;
    volatile int pending;
};

static void bh_batch(void *arg, uint64_t n)
{
    struct deferred *d = arg;

    for (uint64_t i = 0; i < n; i++) {
        d->fn = count_cb;          /* schedule */
        d->opaque = NULL;
        d->pending = 1;
        if (d->pending) {          /* dispatch */
            d->pending = 0;
            d->fn(d->opaque);
        }
    }
}

static void row_bh(void)
{
    struct deferred d = { 0 };

    pin_self(opt_cpu());
    json_begin("floor (flag + indirect call)");
    json_throughput(bh_batch, &d, 1);
    json_end();
}

/* ---- wakeup ---------------------------------------------------------- */

static int wake_word;              /* futex: requester -> server */
static int spin_req;               /* spin: requester -> server */
static int done_flag;              /* server -> requester */
static int stop_flag;
static bool use_futex;

static void *wake_server(void *arg)
{
    pin_self(opt_cpu());
    for (;;) {
        if (use_futex) {
            while (__atomic_load_n(&wake_word, __ATOMIC_ACQUIRE) == 0) {
                futex_wait(&wake_word, 0);
            }
            __atomic_store_n(&wake_word, 0, __ATOMIC_RELAXED);
        } else {
            while (__atomic_load_n(&spin_req, __ATOMIC_ACQUIRE) == 0) {
                cpu_relax();
            }
            __atomic_store_n(&spin_req, 0, __ATOMIC_RELAXED);
        }
        if (__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
            return NULL;
        }
        __atomic_store_n(&done_flag, 1, __ATOMIC_RELEASE);
    }
}

static void wake_request(void)
{
    if (use_futex) {
        __atomic_store_n(&wake_word, 1, __ATOMIC_RELEASE);
        futex_wake(&wake_word);
    } else {
        __atomic_store_n(&spin_req, 1, __ATOMIC_RELEASE);
    }
}

static void row_wakeup(void)
{
    const char *variant = opt_str("variant", "futex");
    int64_t gap = opt_int("gap_ns", 0);
    size_t n = wakeup_samples(gap), warm = n / 10;
    int64_t *v = samples_alloc(n);
    pthread_t th;

    use_futex = !strcmp(variant, "futex");
    pin_self(opt_cpu2());
    pthread_create(&th, NULL, wake_server, NULL);
    usleep(10000);
    for (size_t i = 0; i < n + warm; i++) {
        int64_t t0 = now_ns();

        __atomic_store_n(&done_flag, 0, __ATOMIC_RELAXED);
        wake_request();
        while (!__atomic_load_n(&done_flag, __ATOMIC_ACQUIRE)) {
            cpu_relax();
        }
        if (i >= warm) {
            v[i - warm] = now_ns() - t0;
        }
        gap_wait(gap);
    }
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
    wake_request();
    pthread_join(th, NULL);
    json_begin(use_futex ? "floor (futex)" : "floor (spin)");
    json_latency(v, n);
    json_end();
}

/* ---- pingpong ---------------------------------------------------------- */

static int pp_word[2];
static int64_t *pp_v;
static size_t pp_n, pp_warm;

static void pp_send(int to)
{
    __atomic_store_n(&pp_word[to], 1, __ATOMIC_RELEASE);
    futex_wake(&pp_word[to]);
}

static void pp_wait(int me)
{
    while (__atomic_load_n(&pp_word[me], __ATOMIC_ACQUIRE) == 0) {
        futex_wait(&pp_word[me], 0);
    }
    __atomic_store_n(&pp_word[me], 0, __ATOMIC_RELAXED);
}

static void *pp_b(void *arg)
{
    pin_self(opt_cpu());
    for (;;) {
        pp_wait(1);
        if (__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
            return NULL;
        }
        pp_send(0);
    }
}

static void *pp_a(void *arg)
{
    int64_t last = 0;

    pin_self(opt_cpu());
    for (size_t i = 0; i < pp_n + pp_warm; i++) {
        int64_t t = now_ns();

        if (i > pp_warm) {
            pp_v[i - pp_warm - 1] = t - last;
        }
        last = t;
        pp_send(1);
        pp_wait(0);
    }
    pp_v[pp_n - 1] = now_ns() - last;
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
    pp_send(1);
    return NULL;
}

static void row_pingpong(void)
{
    pthread_t a, b;

    pp_n = bench_quick() ? 2000 : 20000;
    pp_warm = pp_n / 10;
    pp_v = samples_alloc(pp_n);
    pin_self(opt_cpu2());
    pthread_create(&b, NULL, pp_b, NULL);
    pthread_create(&a, NULL, pp_a, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    json_begin("floor (futex)");
    json_latency(pp_v, pp_n);
    json_end();
}

/* ---- timer ------------------------------------------------------------- */

static void row_timer(void)
{
    const char *variant = opt_str("variant", "slack1");
    size_t n = bench_quick() ? 100 : 1000, warm = 5;
    int64_t *v = samples_alloc(n);
    bool slack1 = !strcmp(variant, "slack1");

    pin_self(opt_cpu());
    if (slack1) {
        prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);
    }
    for (size_t i = 0; i < n + warm; i++) {
        int64_t deadline = now_ns() + 1000000;
        struct timespec ts = { deadline / 1000000000, deadline % 1000000000 };
        int64_t late;

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) {
            /* EINTR: sleep again */
        }
        late = now_ns() - deadline;
        if (i >= warm) {
            v[i - warm] = late;
        }
    }
    json_begin(slack1 ? "floor (clock_nanosleep, slack 1 ns)"
                      : "floor (clock_nanosleep, default slack)");
    json_num("timerslack_ns", (double)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
    json_latency(v, n);
    json_end();
}

/* ---- fd ---------------------------------------------------------------- */

struct fdbench {
    int efd, epfd;
};

static void fd_batch(void *arg, uint64_t n)
{
    struct fdbench *f = arg;
    struct epoll_event evs[8];
    uint64_t val;

    for (uint64_t i = 0; i < n; i++) {
        bench_eventfd_write(f->efd);
        int r = epoll_wait(f->epfd, evs, 8, 0);
        for (int k = 0; k < r; k++) {
            if (read(evs[k].data.fd, &val, sizeof(val)) != sizeof(val)) {
                die("read");
            }
            counter++;
        }
    }
}

static void row_fd(void)
{
    struct fdbench f;
    struct epoll_event ev = { .events = EPOLLIN };

    pin_self(opt_cpu());
    f.efd = bench_eventfd();
    f.epfd = epoll_create1(EPOLL_CLOEXEC);
    ev.data.fd = f.efd;
    epoll_ctl(f.epfd, EPOLL_CTL_ADD, f.efd, &ev);
    json_begin("floor (write + epoll_wait + read)");
    json_throughput(fd_batch, &f, 1);
    json_end();
    bench_check_ran(counter, "handler");
}

/* ---- coroutine ----------------------------------------------------------- */

static ucontext_t uc_main, uc_co;
static volatile bool co_stop;

static void co_entry(void)
{
    while (!co_stop) {
        swapcontext(&uc_co, &uc_main);     /* yield */
    }
}

static void swap_batch(void *arg, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        swapcontext(&uc_main, &uc_co);     /* enter */
    }
}

/*
 * QEMU's coroutine-ucontext trick, bare: makecontext/swapcontext only to
 * start the stack, then every switch is a sigsetjmp/siglongjmp pair (or,
 * in variant=builtin_setjmp, GCC's __builtin_setjmp/__builtin_longjmp,
 * which save only the frame and stack pointers and skip glibc).
 */
static sigjmp_buf sj_main, sj_co;
static void *bj_main[5], *bj_co[5];
static bool use_builtin;

static BENCH_NOINLINE void sj_switch(sigjmp_buf from, sigjmp_buf to)
{
    if (!sigsetjmp(from, 0)) {
        siglongjmp(to, 1);
    }
}

static BENCH_NOINLINE void bj_jump(void **to)
{
    __builtin_longjmp(to, 1);
}

static BENCH_NOINLINE void bj_switch(void **from, void **to)
{
    if (!__builtin_setjmp(from)) {
        bj_jump(to);
    }
}

static void sj_entry(void)
{
    if (use_builtin) {
        if (!__builtin_setjmp(bj_co)) {
            bj_jump(bj_main);                  /* started: back to main */
        }
        for (;;) {
            counter++;
            bj_switch(bj_co, bj_main);         /* yield */
        }
    }
    if (!sigsetjmp(sj_co, 0)) {
        siglongjmp(sj_main, 1);
    }
    for (;;) {
        counter++;
        sj_switch(sj_co, sj_main);
    }
}

static void sj_batch(void *arg, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        sj_switch(sj_main, sj_co);             /* enter */
    }
}

static void bj_batch(void *arg, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        bj_switch(bj_main, bj_co);
    }
}

static BENCH_NOINLINE void sj_start(void)
{
    static char stack[256 * 1024];

    getcontext(&uc_co);
    uc_co.uc_stack.ss_sp = stack;
    uc_co.uc_stack.ss_size = sizeof(stack);
    uc_co.uc_link = NULL;
    makecontext(&uc_co, sj_entry, 0);
    if (use_builtin) {
        if (!__builtin_setjmp(bj_main)) {
            swapcontext(&uc_main, &uc_co);
        }
    } else if (!sigsetjmp(sj_main, 0)) {
        swapcontext(&uc_main, &uc_co);
    }
}

static Fn *volatile call_fn = count_cb;

static void call_batch(void *arg, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        call_fn(NULL);
    }
}

static void row_coroutine(void)
{
    const char *variant = opt_str("variant", "swapcontext");

    pin_self(opt_cpu());
    if (!strcmp(variant, "swapcontext")) {
        static char stack[256 * 1024];

        getcontext(&uc_co);
        uc_co.uc_stack.ss_sp = stack;
        uc_co.uc_stack.ss_size = sizeof(stack);
        uc_co.uc_link = &uc_main;
        makecontext(&uc_co, co_entry, 0);
        json_begin("swapcontext");
        /* one enter + one yield per operation: 2 switches */
        json_throughput(swap_batch, NULL, 2);
        co_stop = true;
        swapcontext(&uc_main, &uc_co);
    } else if (!strcmp(variant, "sigsetjmp") ||
               !strcmp(variant, "builtin_setjmp")) {
        use_builtin = !strcmp(variant, "builtin_setjmp");
        sj_start();
        json_begin(use_builtin ? "__builtin_setjmp/__builtin_longjmp"
                               : "sigsetjmp/siglongjmp");
        json_throughput(use_builtin ? bj_batch : sj_batch, NULL, 2);
        /* The coroutine's stack is simply abandoned. */
    } else {
        json_begin("function call (indirect)");
        json_throughput(call_batch, NULL, 1);
    }
    json_end();
}

/* ---- trace: the empty loop ----------------------------------------------- */

static void empty_batch(void *arg, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        barrier();
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static volatile uint64_t tsc_sink;

static void rdtsc_batch(void *arg, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        tsc_sink = __rdtsc();
    }
}

/* rdtsc, as a trace event's time stamp: like row_trace in bench-aiolab.c,
 * alternate loops in one process and subtract the empty one. */
static void row_rdtsc(void)
{
    int nb = bench_quick() ? 3 : 9;
    uint64_t n = bench_quick() ? 200000 : 2000000;
    double e[16], m[16];

    pin_self(opt_cpu());
    rdtsc_batch(NULL, n);
    for (int i = 0; i < nb; i++) {
        int64_t t0 = now_ns();

        empty_batch(NULL, n);
        int64_t t1 = now_ns();
        rdtsc_batch(NULL, n);
        int64_t t2 = now_ns();
        e[i] = (double)(t1 - t0) / (double)n;
        m[i] = (double)(t2 - t1) / (double)n;
    }
    double me = median_dbl(e, nb), mm = median_dbl(m, nb);

    json_begin("rdtsc");
    json_num("empty_loop_ns", me);
    json_num("rdtsc_loop_ns", mm);
    json_num("value", mm - me);
    json_end();
}
#else
static void row_rdtsc(void)
{
    die("rdtsc: not an x86 machine");
}
#endif

static void row_trace(void)
{
    if (!strcmp(opt_str("variant", "empty"), "rdtsc")) {
        row_rdtsc();
        return;
    }
    pin_self(opt_cpu());
    json_begin("empty loop");
    json_throughput(empty_batch, NULL, 1);
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
    bench_run_row(rows);
    return 0;
}

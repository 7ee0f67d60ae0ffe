/* cc -Ic/include tutorial/ch03-iothreads/adaptive-polling.c -o build/adaptive-polling -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch03-iothreads/adaptive-polling.c - wake-up latency against CPU time as
 * poll-max-ns varies.
 *
 * The main thread wakes an IOThread ROUNDS times (it schedules a BH), with
 * a pause of `gap` between wake-ups, and measures how long each BH took to
 * run.  The IOThread, before it sleeps, busy-polls for poll_ns, which it
 * adapts: it grows while wake-ups come sooner than poll-max-ns, and drops
 * to 0 when one comes later.  Timings are printed, not checked.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

#define ROUNDS 1000

typedef struct {
    AioContext *ctx;
    int64_t max_ns;             /* poll-max-ns of this row */
    int64_t sent_ns;            /* atomic: when the BH was scheduled */
    int runs;                   /* atomic: BH runs so far */
    int64_t latency_ns[ROUNDS];
    int64_t cpu0_ns, wall0_ns;  /* IOThread CPU and wall time, first run */
    int64_t cpu1_ns, wall1_ns;  /* ... and last run */
    int64_t max_poll_ns;        /* the largest poll_ns seen */
    int odd_poll_ns;            /* poll_ns values the rules cannot give */
} Row;

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* 0, 4000 * 2^k below the maximum, or the maximum itself. */
static bool poll_ns_possible(int64_t ns, int64_t max_ns)
{
    int64_t v;

    for (v = 4000; v < max_ns; v *= 2) {
        if (ns == v) {
            return true;
        }
    }
    return ns == 0 || ns == max_ns;
}

/* [region: probe] */
/* Runs in the IOThread, once per wake-up. */
static void probe_bh(void *opaque)
{
    Row *r = opaque;
    int64_t now = tut_now_ns();
    int64_t poll_ns = aiolab_aio_context_get_poll_ns(r->ctx);
    int n = r->runs;

    r->latency_ns[n] = now - __atomic_load_n(&r->sent_ns, __ATOMIC_ACQUIRE);
    r->max_poll_ns = poll_ns > r->max_poll_ns ? poll_ns : r->max_poll_ns;
    r->odd_poll_ns += !poll_ns_possible(poll_ns, r->max_ns);
    if (n == 0) {
        r->cpu0_ns = thread_cpu_ns();
        r->wall0_ns = now;
    }
    r->cpu1_ns = thread_cpu_ns();
    r->wall1_ns = now;
    __atomic_store_n(&r->runs, n + 1, __ATOMIC_RELEASE);
}
/* [endregion] */

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static void run_row(IOThread *it, Row *r, int64_t gap_ns)
{
    QEMUBH *bh = aio_bh_new(r->ctx, probe_bh, r);
    int i;

    iothread_set_poll_params(it, r->max_ns, 0, 0, &error_abort);
    /* [region: wake] */
    for (i = 0; i < ROUNDS; i++) {
        int64_t t0 = tut_now_ns();

        __atomic_store_n(&r->sent_ns, t0, __ATOMIC_RELEASE);
        qemu_bh_schedule(bh);                   /* wake the IOThread */
        while (__atomic_load_n(&r->runs, __ATOMIC_ACQUIRE) == i) {
            /* spin: we measure the IOThread, not our own wake-up */
        }
        while (tut_now_ns() - t0 < gap_ns) {
            /* the gap until the next wake-up */
        }
    }
    /* [endregion] */
    qemu_bh_delete(bh);
    qsort(r->latency_ns, ROUNDS, sizeof(int64_t), cmp64);
    printf("%11lld %8lld us %10.1f us %8.1f us %8.0f %% %9lld\n",
           (long long)r->max_ns, (long long)(gap_ns / 1000),
           r->latency_ns[ROUNDS / 2] / 1e3,
           r->latency_ns[ROUNDS * 99 / 100] / 1e3,
           100.0 * (r->cpu1_ns - r->cpu0_ns) / (r->wall1_ns - r->wall0_ns),
           (long long)r->max_poll_ns);
}

int main(void)
{
    static Row rows[4];
    static const struct { int64_t max_ns, gap_ns; } plan[4] = {
        { 0, 20000 },           /* polling off, quick wake-ups */
        { 32768, 20000 },       /* the default, quick wake-ups */
        { 32768, 200000 },      /* the default, slow wake-ups */
        { 262144, 200000 },     /* a long poll, slow wake-ups */
    };
    IOThread *it;
    int i;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    aiolab_trace_set_enabled(false);    /* measure without tracing */
    it = iothread_create("io0", &error_abort);
    printf("poll-max-ns      gap    median wake      p99    IOThread  "
           "max poll_ns\n");
    printf("                          -up latency            CPU\n");
    for (i = 0; i < 4; i++) {
        rows[i].ctx = iothread_get_aio_context(it);
        rows[i].max_ns = plan[i].max_ns;
        run_row(it, &rows[i], plan[i].gap_ns);
    }

    for (i = 0; i < 4; i++) {
        CHECK_EQ("every wake-up ran its BH", rows[i].runs, ROUNDS);
    }
    CHECK_EQ("with poll-max-ns 0, poll_ns stays 0", rows[0].max_poll_ns, 0);
    CHECK("under quick wake-ups, poll_ns grew to a nonzero value",
          rows[1].max_poll_ns > 0);
    CHECK("poll_ns only ever was 0, 4000 * 2^k, or poll-max-ns",
          rows[0].odd_poll_ns + rows[1].odd_poll_ns + rows[2].odd_poll_ns +
          rows[3].odd_poll_ns == 0);
    iothread_destroy(it);
    bql_unlock();
    return 0;
}

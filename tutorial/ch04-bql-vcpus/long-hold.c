/* cc -Ic/include tutorial/ch04-bql-vcpus/long-hold.c -o build/long-hold -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch04-bql-vcpus/long-hold.c - what a long BQL hold does to the main loop.
 *
 * The main loop has a heartbeat: a timer every millisecond, like the
 * machine's own timers in QEMU.  A vCPU emulates a slow device: every 2H
 * it exits and holds the BQL for H (sleeping, as a device model blocked
 * on a slow backend would).  For H = 100 us, 1 ms and 4 ms we look at the
 * main loop's waits for the BQL (from the trace) and at how late its
 * heartbeat ran.
 */
#include "../tutorial.h"
#include "../toy.h"

#define PERIOD_NS 1000000           /* the heartbeat */

static QEMUTimer *heartbeat;
static int64_t deadline;

typedef struct Beats {
    int n, wrong_thread;
    int64_t late_ns[512];
} Beats;

static Beats beats;

/* [region: heartbeat] */
/* The main loop's heartbeat: a timer in the main context. */
static void heartbeat_cb(void *opaque)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    if (beats.n < 512) {
        beats.late_ns[beats.n] = now - deadline;
    }
    beats.n++;
    beats.wrong_thread += tut_gettid() != getpid() || !bql_locked();
    aiolab_trace_mark("heartbeat", now - deadline);
    deadline = now + PERIOD_NS;
    timer_mod_ns(heartbeat, deadline);
}
/* [endregion] */

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

typedef struct Run {
    int hold_us;
    uint64_t exits;
    size_t slow, long_holds;    /* slow exits in the trace; those in a
                                 * BQL hold of at least hold_us */
    size_t waits, wait_hist[4]; /* main's waits: <10us <100us <1ms >=1ms */
    int64_t wait_max_ns;
    size_t beats_during_holds;
    Beats beats;
} Run;

static void analyse(Run *r, const ToyTrace *t, int vcpu)
{
    size_t n, n_held, i;
    ToySlice *held = toy_slices(t, "bql_held", vcpu, &n_held);
    ToySlice *s = toy_slices(t, "mmio exit (slow device, BQL held)", vcpu,
                             &n);

    r->slow = n;
    for (i = 0; i < n; i++) {                   /* the hold around it */
        const ToySlice *h = toy_inside(held, n_held, s[i].begin_ns);

        r->long_holds += h && h->end_ns - h->begin_ns >= r->hold_us * 1000LL;
    }
    free(held);
    free(s);
    s = toy_slices(t, "bql_lock_wait", getpid(), &n);
    r->waits = n;
    for (i = 0; i < n; i++) {
        int64_t w = s[i].end_ns - s[i].begin_ns;

        r->wait_hist[(w >= 10000) + (w >= 100000) + (w >= 1000000)]++;
        r->wait_max_ns = w > r->wait_max_ns ? w : r->wait_max_ns;
    }
    free(s);
    s = toy_slices(t, "mmio exit (slow device, BQL held)", vcpu, &n);
    for (i = 0; i < t->n; i++) {
        r->beats_during_holds += !strcmp(t->r[i].name, "heartbeat") &&
                                 toy_inside(s, n, t->r[i].ts_ns);
    }
    free(s);
}

static Run run(int hold_us)
{
    AiolabMachine *m = toy_machine(1);
    int64_t t0 = aiolab_trace_now_ns();
    Run r = { .hold_us = hold_us };
    ToyTrace t;

    memset(&beats, 0, sizeof(beats));
    /* [region: hold] */
    toy_workload(m, "vcpu=0,mmio-hold=%d,mmio-period=%d,runtime=0.1",
                 hold_us, 2 * hold_us);
    deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + PERIOD_NS;
    timer_mod_ns(heartbeat, deadline);
    toy_run(m);
    timer_del(heartbeat);
    /* [endregion] */
    r.exits = toy_stats(m, 0).mmio_exits;
    r.beats = beats;
    t = toy_trace_since(t0);
    analyse(&r, &t, aiolab_machine_get_vcpu_thread_id(m, 0));
    toy_trace_free(&t);
    aiolab_machine_free(m);
    return r;
}

static void print_run(Run *r)
{
    int n = r->beats.n < 512 ? r->beats.n : 512;

    qsort(r->beats.late_ns, n, sizeof(int64_t), cmp64);
    printf("%6d us %6llu %7zu   %5zu %5zu %5zu %5zu  %7.0f us   %5d  "
           "%6.0f %7.0f us\n", r->hold_us, (unsigned long long)r->exits,
           r->waits, r->wait_hist[0], r->wait_hist[1], r->wait_hist[2],
           r->wait_hist[3], toy_us(r->wait_max_ns), r->beats.n,
           toy_us(r->beats.late_ns[n / 2]), toy_us(r->beats.late_ns[n - 1]));
}

int main(void)
{
    static const int holds[] = { 100, 1000, 4000 };
    Run r[3];
    int i;

    toy_init();
    heartbeat = aio_timer_new(qemu_get_aio_context(), QEMU_CLOCK_REALTIME,
                              SCALE_NS, heartbeat_cb, NULL);
    for (i = 0; i < 3; i++) {
        r[i] = run(holds[i]);
    }
    printf("  vCPU hold  exits   main loop waits for the BQL       longest"
           "   heartbeats (every 1 ms)\n"
           "                      all  <10us <0.1ms <1ms >=1ms    wait"
           "      ran   late: p50     max\n");
    for (i = 0; i < 3; i++) {
        print_run(&r[i]);
    }

    for (i = 0; i < 3; i++) {
        char claim[3][128];

        snprintf(claim[0], sizeof(claim[0]), "H = %d us: the vCPU held the "
                 "BQL at least H once per slow exit", holds[i]);
        snprintf(claim[1], sizeof(claim[1]), "H = %d us: every heartbeat "
                 "ran in the main thread, holding the BQL", holds[i]);
        snprintf(claim[2], sizeof(claim[2]), "H = %d us: no heartbeat ran "
                 "while the vCPU held the BQL", holds[i]);
        CHECK(claim[0], r[i].exits > 0 && r[i].slow == r[i].exits &&
              r[i].long_holds == r[i].slow);
        CHECK(claim[1], r[i].beats.n > 0 && r[i].beats.wrong_thread == 0);
        CHECK_EQ(claim[2], r[i].beats_during_holds, 0);
    }
    /* A large, injected effect: the main loop wakes every millisecond,
     * and a wake-up during a 4 ms hold waits for the rest of it. */
    CHECK("with 4 ms holds, the main loop once waited 1 ms or more for "
          "the BQL", r[2].wait_hist[3] > 0);
    timer_free(heartbeat);
    bql_unlock();
    return 0;
}

/* cc -Ic/include tutorial/ch06-virtio-blk/qd1.c -o build/qd1 -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch06-virtio-blk/qd1.c - one request at a time: who sleeps, who wakes.
 *
 * At queue depth 1 every request is a round trip between two threads on
 * two CPUs: the guest kicks IOThread io0, io0 runs the request and
 * interrupts the guest.  The device here is null-co with a fixed 100 us
 * latency (a fast SSD).  With QEMU's defaults, poll-max-ns (32768) is
 * shorter than that latency, so io0 stops polling and sleeps, and the
 * guest halts: every request wakes a sleeping thread twice.  Tuned, io0
 * polls longer than the device takes (poll-max-ns=1 ms) and the guest
 * polls for its completion (poll=1000): nobody needs waking, as long as
 * each polling thread has a CPU of its own.  We count the sleeps per
 * request; the timings are printed, not checked.
 */
#include "../tutorial.h"
#include "../toy.h"

#define REQUESTS 400

typedef struct Run {
    const char *name;
    AiolabWorkloadStats st;
    size_t guest_halts, io_sleeps;  /* from the trace */
    int64_t max_poll_ns;            /* the IOThread's longest poll_ns */
    int64_t vcpu_cpu_ns, io_cpu_ns;
} Run;

static Run run(const char *name, const char *iothread, int guest_poll_us)
{
    AiolabMachine *m = toy_machine(1);
    int64_t t0 = aiolab_trace_now_ns();
    int io_tid = iothread_get_thread_id(iothread_by_id(iothread));
    Run r = { .name = name };
    VirtIOBlkConf conf;
    ToyTrace t;
    size_t i;
    int vcpu;

    /* [region: run] */
    virtio_blk_conf_init(&conf);
    conf.iothread = iothread;
    aiolab_machine_add_virtio_blk(m, &conf, "fast-ssd", &error_abort);
    toy_workload(m, "vcpu=0,rw=randread,iodepth=1,count=%d,poll=%d",
                 REQUESTS, guest_poll_us);
    toy_run(m);
    /* [endregion] */

    vcpu = aiolab_machine_get_vcpu_thread_id(m, 0);
    r.st = toy_stats(m, 0);
    r.vcpu_cpu_ns = toy_cpu_ns(m, vcpu);
    r.io_cpu_ns = toy_cpu_ns(m, io_tid);
    t = toy_trace_since(t0);
    r.guest_halts = toy_trace_count(&t, "guest halt", 'B', vcpu);
    r.io_sleeps = toy_trace_count(&t, "fdmon_wait", 'B', io_tid);
    for (i = 0; i < t.n; i++) {
        if (t.r[i].tid == io_tid && !strcmp(t.r[i].name, "poll_grow") &&
            t.r[i].arg > r.max_poll_ns) {
            r.max_poll_ns = t.r[i].arg;
        }
    }
    toy_trace_free(&t);
    aiolab_machine_free(m);
    return r;
}

static void print_run(const Run *r)
{
    double per = r->st.reads ? 1.0 / r->st.reads : 0;

    printf("%-24s %7.0f %6.0fus %6.0fus %9.2f %9.2f %7lld %5.0f%% %5.0f%%\n",
           r->name, r->st.reads * 1e9 / r->st.elapsed_ns,
           toy_us(aiolab_latency_hist_percentile(&r->st.lat_read, 0.5)),
           toy_us(aiolab_latency_hist_percentile(&r->st.lat_read, 0.99)),
           r->guest_halts * per, r->io_sleeps * per,
           (long long)r->max_poll_ns / 1000,
           100.0 * r->vcpu_cpu_ns / r->st.elapsed_ns,
           100.0 * r->io_cpu_ns / r->st.elapsed_ns);
}

int main(void)
{
    IOThread *tuned;
    Run def, pol;

    toy_init();
    /* [region: setup] */
    bdrv_open(NULL, NULL, "driver=null-co,size=1G,latency-ns=100000,"
              "node-name=fast-ssd", BDRV_O_RDWR, &error_abort);
    iothread_create("io0", &error_abort);       /* poll-max-ns=32768 */
    tuned = iothread_create("io1", &error_abort);
    iothread_set_poll_params(tuned, 1000000, 0, 0, &error_abort);
    /* [endregion] */

    def = run("default: io0, poll=0", "io0", 0);
    pol = run("tuned: io1, poll=1000", "io1", 1000);
    printf("%-24s %7s %8s %8s %9s %9s %7s %6s %6s\n", "", "IOPS", "p50",
           "p99", "guest", "IOThread", "max", "vCPU", "IOThr");
    printf("%-24s %7s %8s %8s %9s %9s %7s %6s %6s\n", "", "", "", "",
           "halts/req", "sleeps/req", "poll us", "CPU", "CPU");
    print_run(&def);
    print_run(&pol);

    CHECK("both read 400 blocks and lost none",
          def.st.reads == REQUESTS && pol.st.reads == REQUESTS &&
          def.st.lost + pol.st.lost == 0);
    /* [region: checks] */
    CHECK("default: the guest halted for at least every other request",
          def.guest_halts * 2 >= REQUESTS);
    CHECK("default: the IOThread slept at least once per two requests",
          def.io_sleeps * 2 >= REQUESTS);
    CHECK("default: the IOThread never polled longer than 32768 ns",
          def.max_poll_ns <= 32768);
    CHECK("tuned: the IOThread polled longer than the default allows",
          pol.max_poll_ns > 32768);
    CHECK("tuned: the guest found some completions by polling, without "
          "halting", pol.guest_halts < REQUESTS);
    /* [endregion] */
    bql_unlock();
    return 0;
}

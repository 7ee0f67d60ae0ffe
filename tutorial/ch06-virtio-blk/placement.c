/* cc -Ic/include tutorial/ch06-virtio-blk/placement.c -o build/placement -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch06-virtio-blk/placement.c - the same guest workload in QEMU's three
 * placements of a virtio-blk disk, under BQL contention.
 *
 * vCPU 0 reads the disk (random 4 KiB reads, 4 in flight); vCPU 1
 * emulates a slow device, holding the BQL 1 ms of every 2 ms.  The disk
 * is handled in vCPU 0's own exits (ioeventfd=off), by the main loop
 * (the default), or by IOThread io0 (iothread=io0).  We print the latency
 * distribution of each, and check who handled the queue, how the guest
 * was interrupted, and whether requests completed during the holds.
 */
#include "../tutorial.h"
#include "../toy.h"

typedef struct Run {
    const char *name;
    AiolabWorkloadStats st;
    AiolabVirtQueueStats vq;
    int handler_tid;            /* who ran virtio_blk_handle_vq (-1: many) */
    int vcpu0, io0;             /* thread ids */
    size_t completed_in_holds;  /* completions inside vCPU 1's holds */
    uint64_t io0_bql;           /* io0's BQL acquisitions */
} Run;

static void analyse(Run *r, const ToyTrace *t, int vcpu1)
{
    size_t n, n_holds, i;
    ToySlice *vq = toy_slices(t, "virtio_blk_handle_vq", 0, &n);
    ToySlice *holds = toy_slices(t, "mmio exit (slow device, BQL held)",
                                 vcpu1, &n_holds);

    r->handler_tid = n ? vq[0].tid : 0;
    for (i = 0; i < n; i++) {
        r->handler_tid = vq[i].tid == r->handler_tid ? r->handler_tid : -1;
    }
    for (i = 0; i < t->n; i++) {
        r->completed_in_holds +=
            !strcmp(t->r[i].name, "virtio_blk_req_complete") &&
            toy_inside(holds, n_holds, t->r[i].ts_ns);
    }
    free(vq);
    free(holds);
}

static Run run(const char *name, bool ioeventfd, const char *iothread)
{
    AiolabMachine *m = toy_machine(2);
    int64_t t0 = aiolab_trace_now_ns();
    Run r = { .name = name };
    VirtIOBlkConf conf;
    VirtIOBlock *s;
    ToyTrace t;

    /* [region: placement] */
    virtio_blk_conf_init(&conf);
    conf.ioeventfd = ioeventfd;     /* ioeventfd=on|off */
    conf.iothread = iothread;       /* iothread=io0, or NULL */
    s = aiolab_machine_add_virtio_blk(m, &conf, "disk0", &error_abort);
    toy_workload(m, "vcpu=0,rw=randread,bs=4096,iodepth=4,runtime=0.1");
    toy_workload(m, "vcpu=1,mmio-hold=1000,mmio-period=2000");
    toy_run(m);
    /* [endregion] */

    r.st = toy_stats(m, 0);
    r.vq = toy_queue_stats(s, 0);
    r.vcpu0 = aiolab_machine_get_vcpu_thread_id(m, 0);
    r.io0 = iothread_get_thread_id(iothread_by_id("io0"));
    r.io0_bql = toy_bql(r.io0).acquisitions;
    t = toy_trace_since(t0);
    analyse(&r, &t, aiolab_machine_get_vcpu_thread_id(m, 1));
    toy_trace_free(&t);
    aiolab_machine_free(m);
    return r;
}

/* The fraction of requests that took at most @ns (from the histogram). */
static double cdf_at(const AiolabLatencyHist *h, int64_t ns)
{
    uint64_t below = 0;
    int i;

    for (i = 0; i < AIOLAB_LAT_BUCKETS; i++) {
        if (h->buckets[i] && aiolab_latency_hist_bucket_value(i) <= ns) {
            below += h->buckets[i];
        }
    }
    return h->count ? (double)below / h->count : 0;
}

static void print_runs(const Run *r, int n)
{
    static const int us[] = { 25, 50, 100, 200, 500, 1000, 2000 };
    int i, k;

    printf("%-26s %8s %7s %7s %7s %7s\n", "", "IOPS", "p50", "p99",
           "p99.9", "max");
    for (i = 0; i < n; i++) {
        const AiolabLatencyHist *h = &r[i].st.lat_read;

        printf("%-26s %8.0f %5.0fus %5.0fus %5.0fus %5.0fus\n", r[i].name,
               r[i].st.reads * 1e9 / r[i].st.elapsed_ns,
               toy_us(aiolab_latency_hist_percentile(h, 0.5)),
               toy_us(aiolab_latency_hist_percentile(h, 0.99)),
               toy_us(aiolab_latency_hist_percentile(h, 0.999)),
               toy_us(h->max_ns));
    }
    printf("\nlatency CDF: the fraction of requests done within\n%-26s",
           "");
    for (k = 0; k < 7; k++) {
        printf(" %5dus", us[k]);
    }
    printf("\n");
    for (i = 0; i < n; i++) {
        printf("%-26s", r[i].name);
        for (k = 0; k < 7; k++) {
            printf(" %7.3f", cdf_at(&r[i].st.lat_read, us[k] * 1000LL));
        }
        printf("\n");
    }
    printf("\n");
}

int main(void)
{
    Run r[3];
    int i;

    toy_init();
    iothread_create("io0", &error_abort);
    toy_disk("disk0", 64);
    r[0] = run("ioeventfd=off (vCPU)", false, NULL);
    r[1] = run("main loop (default)", true, NULL);
    r[2] = run("iothread=io0", true, "io0");
    print_runs(r, 3);
    for (i = 0; i < 3; i++) {
        printf("%-22s queue handled by %-10s virtio_notify %5llu, irqfd "
               "%5llu; %4zu completions during vCPU 1's holds\n", r[i].name,
               r[i].handler_tid > 0 ? toy_thread_name(r[i].handler_tid) : "?",
               (unsigned long long)r[i].vq.notifies,
               (unsigned long long)r[i].vq.irqfd_notifies,
               r[i].completed_in_holds);
    }

    CHECK("each placement completed reads for 100 ms and lost none",
          r[0].st.reads > 0 && r[1].st.reads > 0 && r[2].st.reads > 0 &&
          r[0].st.lost + r[1].st.lost + r[2].st.lost == 0);
    CHECK("ioeventfd=off: vCPU 0 handled the queue, in its exits",
          r[0].handler_tid == r[0].vcpu0);
    CHECK("main loop: the main thread handled the queue",
          r[1].handler_tid == getpid());
    CHECK("iothread=io0: io0 handled the queue, and never took the BQL",
          r[2].handler_tid == r[2].io0 && r[2].io0_bql == 0);
    /* [region: notify] */
    CHECK("ioeventfd=off and main loop: interrupts by virtio_notify() "
          "under the BQL, none through the irqfd",
          r[0].vq.notifies > 0 && r[0].vq.irqfd_notifies == 0 &&
          r[1].vq.notifies > 0 && r[1].vq.irqfd_notifies == 0);
    CHECK("iothread=io0: every interrupt through the irqfd",
          r[2].vq.irqfd_notifies > 0 && r[2].vq.notifies == 0);
    /* [endregion] */
    CHECK("ioeventfd=off and main loop: no request completed while vCPU 1 "
          "held the BQL", r[0].completed_in_holds == 0 &&
          r[1].completed_in_holds == 0);
    CHECK("iothread=io0: requests completed while vCPU 1 held the BQL",
          r[2].completed_in_holds > 0);
    /* A large, injected effect: requests that meet a 1 ms hold wait for
     * it, and more than 1% of them do. */
    CHECK("main loop: p99 latency is at least half a hold (500 us)",
          aiolab_latency_hist_percentile(&r[1].st.lat_read, 0.99) >= 500000);
    bql_unlock();
    return 0;
}

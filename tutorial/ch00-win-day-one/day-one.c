/* cc -Ic/include tutorial/ch00-win-day-one/day-one.c -o build/day-one -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch00-win-day-one/day-one.c - `make demo` in one C file.
 *
 * A toy VM with two vCPUs and a virtio-blk disk.  vCPU 0 reads the disk
 * (random 4 KiB reads, 4 in flight); vCPU 1 emulates a slow device: every
 * 2 ms it exits to the device model and holds the BQL for 1 ms.  We run
 * it twice, with the disk handled by the main loop and then by an
 * IOThread, and check in the statistics and the trace what the demo
 * shows: who ran the disk, who took the BQL, and who held it.
 */
#include "../tutorial.h"
#include "../toy.h"

#define REQUESTS 2000

typedef struct Run {
    const char *name;
    AiolabWorkloadStats io, hold;   /* vCPU 0's reads, vCPU 1's exits */
    AiolabBqlStats main_bql, io_bql;
    int vcpu1;                      /* vCPU 1's thread id */
    ToyTrace trace;
} Run;

static void run(Run *r, const char *iothread, const char *trace_file)
{
    AiolabMachine *m = toy_machine(2);
    int64_t t0 = aiolab_trace_now_ns();
    VirtIOBlkConf conf;

    /* [region: machine] */
    virtio_blk_conf_init(&conf);    /* -device virtio-blk,drive=disk0 */
    conf.iothread = iothread;       /*        ,iothread=io0 (or NULL) */
    aiolab_machine_add_virtio_blk(m, &conf, "disk0", &error_abort);
    toy_workload(m, "vcpu=0,rw=randread,bs=4096,iodepth=4,count=%d",
                 REQUESTS);
    toy_workload(m, "vcpu=1,mmio-hold=1000,mmio-period=2000");
    toy_run(m);                     /* until the guest is done */
    /* [endregion] */

    r->io = toy_stats(m, 0);
    r->hold = toy_stats(m, 1);
    r->main_bql = toy_bql(getpid());    /* the main thread's tid */
    r->io_bql = toy_bql(iothread_get_thread_id(iothread_by_id("io0")));
    r->vcpu1 = aiolab_machine_get_vcpu_thread_id(m, 1);
    r->trace = toy_trace_since(t0);
    aiolab_trace_write_json(trace_file, t0, &error_abort);
    aiolab_machine_free(m);
}

static void print_side_by_side(const Run *a, const Run *b)
{
    const Run *runs[2] = { a, b };
    int i;

    printf("\n%-34s %16s %16s\n", "", a->name, b->name);
    printf("%-34s", "guest IOPS (vCPU 0, randread QD4)");
    for (i = 0; i < 2; i++) {
        printf(" %16.0f", runs[i]->io.reads * 1e9 / runs[i]->io.elapsed_ns);
    }
    printf("\n%-34s", "latency p50 / p99 (us)");
    for (i = 0; i < 2; i++) {
        const AiolabLatencyHist *h = &runs[i]->io.lat_read;

        printf("      %5.0f /%5.0f",
               toy_us(aiolab_latency_hist_percentile(h, 0.5)),
               toy_us(aiolab_latency_hist_percentile(h, 0.99)));
    }
    printf("\n%-34s", "main loop: BQL taken / waited for");
    for (i = 0; i < 2; i++) {
        printf("  %6llu / %5llu",
               (unsigned long long)runs[i]->main_bql.acquisitions,
               (unsigned long long)runs[i]->main_bql.contended);
    }
    printf("\n%-34s", "IOThread io0: BQL taken");
    for (i = 0; i < 2; i++) {
        printf(" %16llu", (unsigned long long)runs[i]->io_bql.acquisitions);
    }
    printf("\n%-34s", "vCPU 1: slow exits, BQL held (ms)");
    for (i = 0; i < 2; i++) {
        printf("  %6llu / %5.1f",
               (unsigned long long)runs[i]->hold.mmio_exits,
               runs[i]->hold.mmio_hold_ns / 1e6);
    }
    printf("\n\n");
}

/* [region: completions] */
/* How many requests completed while vCPU 1 was in a slow exit, holding
 * the BQL; *@where gets the thread that completed the last one. */
static size_t completed_during_holds(const Run *r, int *where)
{
    size_t n_holds, i, n = 0;
    ToySlice *holds = toy_slices(&r->trace, "mmio exit (slow device, "
                                 "BQL held)", r->vcpu1, &n_holds);

    for (i = 0; i < r->trace.n; i++) {
        const AiolabTraceRecord *e = &r->trace.r[i];

        if (!strcmp(e->name, "virtio_blk_req_complete") &&
            toy_inside(holds, n_holds, e->ts_ns)) {
            *where = e->tid;
            n++;
        }
    }
    free(holds);
    return n;
}
/* [endregion] */

/* The first of the @n slices @s that thread @tid has, or NULL. */
static const ToySlice *first_on(const ToySlice *s, size_t n, int tid)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i].tid == tid) {
            return &s[i];
        }
    }
    return NULL;
}

/*
 * How many queue handler runs the trace shows, and which thread ran them:
 * *@tid, or -1 if several did.  *@under_bql: how many of them ran while
 * their thread held the BQL.  A thread's ring keeps only its newest
 * events, so a hold that began before them is not in the trace: the runs
 * before the thread's first recorded hold are left out, not counted as
 * runs without the BQL.
 */
static size_t handlers(const Run *r, int *tid, size_t *under_bql)
{
    size_t n, n_held, i, judged = 0;
    ToySlice *vq = toy_slices(&r->trace, "virtio_blk_handle_vq", 0, &n);
    ToySlice *held = toy_slices(&r->trace, "bql_held", 0, &n_held);

    *tid = n ? vq[0].tid : 0;
    *under_bql = 0;
    for (i = 0; i < n; i++) {
        const ToySlice *first = first_on(held, n_held, vq[i].tid);
        *tid = vq[i].tid == *tid ? *tid : -1;
        if (first && vq[i].begin_ns < first->begin_ns) {
            continue;
        }
        judged++;
        *under_bql += toy_inside_on(held, n_held, vq[i].begin_ns, vq[i].tid) !=
                      NULL;
    }
    free(vq);
    free(held);
    return judged;
}

int main(void)
{
    Run ml = { .name = "disk in main loop" }, io = { .name = "disk in io0" };
    size_t n_vq, under_bql, n_holds, n_slow, long_holds = 0, during, i;
    int tid, where = 0;
    ToySlice *holds, *slow;

    toy_init();
    iothread_create("io0", &error_abort);   /* -object iothread,id=io0 */
    toy_disk("disk0", 64);                  /* -blockdev driver=file,... */
    run(&ml, NULL, "ch00-main-loop.json");
    run(&io, "io0", "ch00-iothread.json");
    print_side_by_side(&ml, &io);

    CHECK("the guest read 2000 blocks in each run, and lost none",
          ml.io.reads == REQUESTS && io.io.reads == REQUESTS &&
          ml.io.lost == 0 && io.io.lost == 0);

    n_vq = handlers(&ml, &tid, &under_bql);
    printf("main loop run: %zu virtio_blk_handle_vq in thread '%s', "
           "%zu of them holding the BQL\n", n_vq, toy_thread_name(tid),
           under_bql);
    CHECK("disk in the main loop: every kick was handled by the main "
          "thread, holding the BQL", n_vq > 0 && tid == getpid() &&
          under_bql == n_vq);
    CHECK("... and the main loop waited for the BQL",
          ml.main_bql.contended > 0);

    n_vq = handlers(&io, &tid, &under_bql);
    printf("IOThread run: %zu virtio_blk_handle_vq in thread '%s', "
           "%zu of them holding the BQL\n", n_vq, toy_thread_name(tid),
           under_bql);
    CHECK("disk in io0: every kick was handled by IOThread io0, without "
          "the BQL", n_vq > 0 && tid == io.io_bql.tid && under_bql == 0);
    CHECK_EQ("... and io0 never took the BQL", io.io_bql.acquisitions, 0);

    /* [region: holder] */
    holds = toy_slices(&ml.trace, "bql_held", ml.vcpu1, &n_holds);
    slow = toy_slices(&ml.trace, "mmio exit (slow device, BQL held)",
                      ml.vcpu1, &n_slow);
    for (i = 0; i < n_slow; i++) {          /* the hold around each one */
        const ToySlice *h = toy_inside(holds, n_holds, slow[i].begin_ns);

        long_holds += h && h->end_ns - h->begin_ns >= 1000000;
    }
    printf("vCPU 1 ('%s'): %zu BQL holds; %zu slow exits, %zu of them in "
           "a hold of 1 ms or more\n", toy_thread_name(ml.vcpu1), n_holds,
           n_slow, long_holds);
    /* [endregion] */
    free(holds);
    free(slow);
    CHECK("the BQL holder: vCPU 1 held it for 1 ms or more in each slow "
          "exit", n_slow > 0 && n_slow == ml.hold.mmio_exits &&
          long_holds == n_slow);

    during = completed_during_holds(&ml, &where);
    printf("main loop run: %zu requests completed while vCPU 1 held the "
           "BQL\n", during);
    CHECK_EQ("disk in the main loop: no request completed while vCPU 1 "
             "held the BQL", during, 0);
    during = completed_during_holds(&io, &where);
    printf("IOThread run: %zu requests completed while vCPU 1 held the "
           "BQL (the last in '%s')\n", during, toy_thread_name(where));
    CHECK("disk in io0: requests kept completing while vCPU 1 held the "
          "BQL, in io0", during > 0 && where == io.io_bql.tid);

    printf("open ch00-main-loop.json and ch00-iothread.json in "
           "https://ui.perfetto.dev\n");
    toy_trace_free(&ml.trace);
    toy_trace_free(&io.trace);
    bql_unlock();
    return 0;
}

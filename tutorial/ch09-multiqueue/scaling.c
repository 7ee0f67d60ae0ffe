/* cc -Ic/include tutorial/ch09-multiqueue/scaling.c -o build/scaling -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch09-multiqueue/scaling.c - more queues, more IOThreads: more IOPS?
 *
 * Each vCPU reads a null-co disk (no data, no latency: the cost is all
 * CPU) with 8 requests in flight on its own queue, and the queues are
 * spread round-robin over M IOThreads.  We grow vCPUs and IOThreads and
 * print the IOPS and how many CPUs' worth of time the threads used.  On
 * a machine with 2 CPUs the answer is in that last column.
 */
#include "../tutorial.h"
#include "../toy.h"

typedef struct Config {
    int vcpus, iothreads;       /* num-queues = vcpus */
} Config;

typedef struct Result {
    double iops, cpus_vcpu, cpus_io, wakeups_per_kreq;
    uint64_t reads, lost;
    int misplaced;              /* handler runs outside the queue's IOThread */
} Result;

static const char *const ids[] = { "io0", "io1", "io2", "io3" };

static Result run(Config c)
{
    IOThreadVirtQueueMapping map[4];
    AiolabMachine *m = toy_machine(c.vcpus);
    int64_t t0 = aiolab_trace_now_ns(), elapsed = 0;
    Result r = { 0 };
    size_t n, i, sleeps = 0;
    VirtIOBlkConf conf;
    ToySlice *vq;
    ToyTrace t;
    int k;

    /* [region: config] */
    for (k = 0; k < c.iothreads; k++) {     /* round-robin */
        map[k] = (IOThreadVirtQueueMapping){ .iothread = ids[k] };
    }
    virtio_blk_conf_init(&conf);
    conf.num_queues = c.vcpus;
    conf.iothread_vq_mapping = map;
    conf.iothread_vq_mapping_len = c.iothreads;
    aiolab_machine_add_virtio_blk(m, &conf, "null0", &error_abort);
    for (k = 0; k < c.vcpus; k++) {
        toy_workload(m, "vcpu=%d,rw=randread,iodepth=8,runtime=0.1", k);
    }
    toy_run(m);
    /* [endregion] */

    for (k = 0; k < c.vcpus; k++) {
        AiolabWorkloadStats st = toy_stats(m, k);

        r.reads += st.reads;
        r.lost += st.lost;
        elapsed = st.elapsed_ns > elapsed ? st.elapsed_ns : elapsed;
        r.cpus_vcpu += toy_cpu_ns(m, aiolab_machine_get_vcpu_thread_id(m, k));
    }
    t = toy_trace_since(t0);
    for (k = 0; k < c.iothreads; k++) {
        int tid = iothread_get_thread_id(iothread_by_id(ids[k]));

        r.cpus_io += toy_cpu_ns(m, tid);
        sleeps += toy_trace_count(&t, "fdmon_wait", 'B', tid);
    }
    vq = toy_slices(&t, "virtio_blk_handle_vq", 0, &n);
    for (i = 0; i < n; i++) {
        const char *want = ids[vq[i].arg % c.iothreads];

        r.misplaced += vq[i].tid !=
                       iothread_get_thread_id(iothread_by_id(want));
    }
    free(vq);
    toy_trace_free(&t);
    r.iops = r.reads * 1e9 / elapsed;
    r.cpus_vcpu /= elapsed;
    r.cpus_io /= elapsed;
    r.wakeups_per_kreq = 1000.0 * sleeps / (r.reads ? r.reads : 1);
    aiolab_machine_free(m);
    return r;
}

int main(void)
{
    static const Config configs[] = {
        { 1, 1 }, { 2, 1 }, { 2, 2 }, { 4, 2 }, { 4, 4 },
    };
    Result r[5];
    int i, ok_lost = 0, ok_placed = 0;

    toy_init();
    for (i = 0; i < 4; i++) {
        iothread_create(ids[i], &error_abort);
    }
    bdrv_open(NULL, NULL, "driver=null-co,size=1G,node-name=null0",
              BDRV_O_RDWR, &error_abort);
    printf("%ld CPUs online\n", sysconf(_SC_NPROCESSORS_ONLN));
    printf("vCPUs=queues IOThreads     IOPS   CPUs used: vCPUs IOThreads "
           "total   IOThread sleeps per 1000 requests\n");
    for (i = 0; i < 5; i++) {
        r[i] = run(configs[i]);
        printf("%12d %9d %9.0f %16.2f %9.2f %5.2f %10.0f\n",
               configs[i].vcpus, configs[i].iothreads, r[i].iops,
               r[i].cpus_vcpu, r[i].cpus_io, r[i].cpus_vcpu + r[i].cpus_io,
               r[i].wakeups_per_kreq);
        ok_lost += r[i].reads > 0 && r[i].lost == 0;
        ok_placed += r[i].misplaced == 0;
    }
    CHECK_EQ("every configuration completed reads and lost none", ok_lost,
             5);
    CHECK_EQ("in every configuration, queue q ran only in IOThread "
             "q mod M (round-robin)", ok_placed, 5);
    bql_unlock();
    return 0;
}

/* cc -Ic/include tutorial/ch09-multiqueue/solution/exercise-own-iothread.c -o build/exercise-own-iothread-solution -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch09-multiqueue/solution/exercise-own-iothread.c - SOLUTION: an IOThread
 * of its own for the busy queue.
 *
 * Four vCPUs, four queues, two IOThreads.  vCPU 0 is a database with 16
 * requests in flight on queue 0; vCPUs 1-3 trickle one request at a time
 * on queues 1-3.  Write the iothread-vq-mapping that gives queue 0
 * IOThread io0 to itself and puts queues 1, 2 and 3 on io1.
 *
 * The answer: an explicit mapping.  Round-robin cannot express it (it
 * deals queue i to entry i mod 2), and explicit entries must list every
 * queue, each once.
 */
#include "../../tutorial.h"
#include "../../toy.h"

/* [region: solution] */
/* -device '{"driver": "virtio-blk", "num-queues": 4,
 *           "iothread-vq-mapping": [{"iothread": "io0", "vqs": [0]},
 *                                   {"iothread": "io1",
 *                                    "vqs": [1, 2, 3]}]}' */
static const uint16_t io0_vqs[] = { 0 }, io1_vqs[] = { 1, 2, 3 };
static const IOThreadVirtQueueMapping mapping[] = {
    { .iothread = "io0", .vqs = io0_vqs, .n_vqs = 1 },
    { .iothread = "io1", .vqs = io1_vqs, .n_vqs = 3 },
};
/* [endregion] */

/* Bit q of the result: some run of queue q's handler was in thread @tid. */
static unsigned queues_run_by(const ToyTrace *t, int tid)
{
    size_t n, i;
    ToySlice *vq = toy_slices(t, "virtio_blk_handle_vq", tid, &n);
    unsigned bits = 0;

    for (i = 0; i < n; i++) {
        bits |= 1u << vq[i].arg;
    }
    free(vq);
    return bits;
}

int main(void)
{
    AiolabMachine *m;
    VirtIOBlkConf conf;
    Error *err = NULL;
    unsigned io0, io1;
    ToyTrace t;
    int64_t t0;
    int q;

    toy_init();
    iothread_create("io0", &error_abort);
    iothread_create("io1", &error_abort);
    bdrv_open(NULL, NULL, "driver=null-co,size=1G,node-name=null0",
              BDRV_O_RDWR, &error_abort);
    m = toy_machine(4);
    virtio_blk_conf_init(&conf);
    conf.num_queues = 4;
    conf.iothread_vq_mapping = mapping;
    conf.iothread_vq_mapping_len = sizeof(mapping) / sizeof(mapping[0]);
    if (!aiolab_machine_add_virtio_blk(m, &conf, "null0", &err)) {
        printf("-device virtio-blk: %s\n", error_get_pretty(err));
        CHECK_HINT("the device was created", false, "read QEMU's error "
                   "above");
    }
    toy_workload(m, "vcpu=0,rw=randread,iodepth=16,count=2000");
    for (q = 1; q < 4; q++) {
        toy_workload(m, "vcpu=%d,rw=randread,iodepth=1,count=200", q);
    }
    t0 = aiolab_trace_now_ns();
    toy_run(m);
    t = toy_trace_since(t0);
    io0 = queues_run_by(&t, iothread_get_thread_id(iothread_by_id("io0")));
    io1 = queues_run_by(&t, iothread_get_thread_id(iothread_by_id("io1")));
    printf("io0 ran queues:%s%s%s%s; io1 ran queues:%s%s%s%s\n",
           io0 & 1 ? " 0" : "", io0 & 2 ? " 1" : "", io0 & 4 ? " 2" : "",
           io0 & 8 ? " 3" : "", io1 & 1 ? " 0" : "", io1 & 2 ? " 1" : "",
           io1 & 4 ? " 2" : "", io1 & 8 ? " 3" : "");
    CHECK("every vCPU read its blocks and lost none",
          toy_stats(m, 0).reads == 2000 && toy_stats(m, 3).reads == 200 &&
          toy_stats(m, 0).lost + toy_stats(m, 1).lost +
          toy_stats(m, 2).lost + toy_stats(m, 3).lost == 0);
    CHECK_HINT("io0 ran queue 0 and nothing else", io0 == 1,
               "round-robin gives io0 queues 0 and 2: list the vqs of "
               "each IOThread (.vqs and .n_vqs)");
    CHECK_EQ("io1 ran queues 1, 2 and 3", io1, 0xe);
    toy_trace_free(&t);
    aiolab_machine_free(m);
    bql_unlock();
    return 0;
}

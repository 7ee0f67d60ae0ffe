/* cc -Ic/include tutorial/ch09-multiqueue/vq-mapping.c -o build/vq-mapping -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch09-multiqueue/vq-mapping.c - N queues over M IOThreads.
 *
 * A disk with 4 queues and a guest with 4 vCPUs: vCPU i uses queue i.
 * iothread-vq-mapping spreads the queues over IOThreads io0 and io1,
 * first round-robin (entries without "vqs"), then explicitly.  We check
 * which AioContext each queue got, and in the trace which thread
 * actually ran each queue's handler.
 */
#include "../tutorial.h"
#include "../toy.h"

#define QUEUES 4

/* For each queue, the thread that ran its handler (-1: several), and
 * whether any handler run held the BQL. */
static void handlers(const ToyTrace *t, int tid[QUEUES], bool *under_bql)
{
    size_t n, n_held, i;
    ToySlice *vq = toy_slices(t, "virtio_blk_handle_vq", 0, &n);
    ToySlice *held = toy_slices(t, "bql_held", 0, &n_held);

    memset(tid, 0, QUEUES * sizeof(int));
    *under_bql = false;
    for (i = 0; i < n; i++) {
        int q = (int)vq[i].arg; /* the queue's index */
        if (q >= 0 && q < QUEUES) {
            tid[q] = !tid[q] || tid[q] == vq[i].tid ? vq[i].tid : -1;
        }
        *under_bql |= toy_inside_on(held, n_held, vq[i].begin_ns, vq[i].tid) !=
                      NULL;
    }
    free(vq);
    free(held);
}

static void run(const char *what, const IOThreadVirtQueueMapping *map,
                size_t n_map, const char *const expect[QUEUES])
{
    AiolabMachine *m = toy_machine(4);
    int64_t t0 = aiolab_trace_now_ns();
    int tid[QUEUES], q, lost = 0, own_queue = 0, ctx_ok = 0, ran_ok = 0;
    VirtIOBlkConf conf;
    VirtIOBlock *s;
    bool under_bql;
    ToyTrace t;
    char claim[160];

    /* [region: device] */
    virtio_blk_conf_init(&conf);
    conf.num_queues = QUEUES;               /* "num-queues": 4 */
    conf.iothread_vq_mapping = map;         /* "iothread-vq-mapping" */
    conf.iothread_vq_mapping_len = n_map;
    s = aiolab_machine_add_virtio_blk(m, &conf, "disk0", &error_abort);
    for (q = 0; q < QUEUES; q++) {          /* vCPU q uses queue q */
        toy_workload(m, "vcpu=%d,rw=randread,iodepth=2,count=300", q);
    }
    toy_run(m);
    /* [endregion] */

    t = toy_trace_since(t0);
    handlers(&t, tid, &under_bql);
    printf("%s:\n", what);
    for (q = 0; q < QUEUES; q++) {
        IOThread *it = iothread_by_id(expect[q]);
        AiolabWorkloadStats st = toy_stats(m, q);

        printf("  queue %d: AioContext '%s', handler ran in '%s'; vCPU %d "
               "used queue %d, %llu reads\n", q,
               aiolab_aio_context_get_name(
                   aiolab_virtio_blk_get_vq_aio_context(s, q)),
               tid[q] > 0 ? toy_thread_name(tid[q]) : "?", q, st.queue,
               (unsigned long long)st.reads);
        lost += st.lost != 0 || st.reads != 300;
        own_queue += st.queue == q;
        ctx_ok += aiolab_virtio_blk_get_vq_aio_context(s, q) ==
                  iothread_get_aio_context(it);
        ran_ok += tid[q] == iothread_get_thread_id(it);
    }
    snprintf(claim, sizeof(claim), "%s: every vCPU read 300 blocks on its "
             "own queue, and lost none", what);
    CHECK(claim, lost == 0 && own_queue == QUEUES);
    snprintf(claim, sizeof(claim), "%s: queues 0-3 are in %s, %s, %s, %s",
             what, expect[0], expect[1], expect[2], expect[3]);
    CHECK(claim, ctx_ok == QUEUES);
    snprintf(claim, sizeof(claim), "%s: each queue's handler ran only in "
             "its IOThread, never with the BQL", what);
    CHECK(claim, ran_ok == QUEUES && !under_bql);
    toy_trace_free(&t);
    aiolab_machine_free(m);
}

int main(void)
{
    /* [region: mappings] */
    /* [{"iothread": "io0"}, {"iothread": "io1"}] */
    static const IOThreadVirtQueueMapping round_robin[] = {
        { .iothread = "io0" }, { .iothread = "io1" },
    };
    static const char *const rr_expect[] = { "io0", "io1", "io0", "io1" };
    /* [{"iothread": "io0", "vqs": [0, 1, 2]},
     *  {"iothread": "io1", "vqs": [3]}] */
    static const uint16_t vqs0[] = { 0, 1, 2 }, vqs1[] = { 3 };
    static const IOThreadVirtQueueMapping explicit[] = {
        { "io0", vqs0, 3 }, { "io1", vqs1, 1 },
    };
    static const char *const ex_expect[] = { "io0", "io0", "io0", "io1" };
    /* [endregion] */

    toy_init();
    iothread_create("io0", &error_abort);
    iothread_create("io1", &error_abort);
    toy_disk("disk0", 64);
    run("round-robin", round_robin, 2, rr_expect);
    run("explicit", explicit, 2, ex_expect);
    CHECK("the IOThreads never took the BQL",
          toy_bql(iothread_get_thread_id(iothread_by_id("io0")))
          .acquisitions == 0 &&
          toy_bql(iothread_get_thread_id(iothread_by_id("io1")))
          .acquisitions == 0);
    bql_unlock();
    return 0;
}

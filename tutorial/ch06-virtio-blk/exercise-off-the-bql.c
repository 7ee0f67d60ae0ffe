/* cc -Ic/include tutorial/ch06-virtio-blk/exercise-off-the-bql.c -o build/exercise-off-the-bql -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch06-virtio-blk/exercise-off-the-bql.c - EXERCISE: take the disk off
 * the BQL.
 *
 * vCPU 0 reads the disk while vCPU 1 holds the BQL 1 ms of every 2 ms.
 * The disk is set up by place_disk(), whose first version sends every
 * kick through an MMIO exit.  Change place_disk() so that no thread takes
 * the BQL to handle the queue or to complete a request, and requests
 * keep completing while vCPU 1 holds the BQL.  IOThread io0 exists.
 *
 *     /usr/bin/python3 tutorial/check.py -k exercise-off-the-bql -v
 */
#include "../tutorial.h"
#include "../toy.h"

/* [region: starter] */
/* The disk's properties (-device virtio-blk,drive=disk0,...). */
static void place_disk(VirtIOBlkConf *conf)
{
    conf->ioeventfd = false;    /* every kick is an MMIO exit */
}
/* [endregion] */

/* How many events @name happened while their thread held the BQL. */
static size_t under_bql(const ToyTrace *t, const char *name, char phase)
{
    size_t n_held, i, k = 0;
    ToySlice *held = toy_slices(t, "bql_held", 0, &n_held);

    for (i = 0; i < t->n; i++) {
        if (t->r[i].phase != phase || strcmp(t->r[i].name, name)) {
            continue;
        }
        k += toy_inside_on(held, n_held, t->r[i].ts_ns, t->r[i].tid) != NULL;
    }
    free(held);
    return k;
}

int main(void)
{
    AiolabMachine *m;
    VirtIOBlkConf conf;
    Error *err = NULL;
    size_t n_holds, i, during = 0;
    ToySlice *holds;
    ToyTrace t;
    int64_t t0;

    toy_init();
    iothread_create("io0", &error_abort);
    toy_disk("disk0", 64);
    m = toy_machine(2);
    virtio_blk_conf_init(&conf);
    place_disk(&conf);
    if (!aiolab_machine_add_virtio_blk(m, &conf, "disk0", &err)) {
        printf("-device virtio-blk: %s\n", error_get_pretty(err));
        CHECK_HINT("the device was created", false, "read the error "
                   "above: it is QEMU's");
    }
    toy_workload(m, "vcpu=0,rw=randread,iodepth=4,runtime=0.05");
    toy_workload(m, "vcpu=1,mmio-hold=1000,mmio-period=2000");
    t0 = aiolab_trace_now_ns();
    toy_run(m);
    t = toy_trace_since(t0);

    printf("%zu of %zu queue handler runs held the BQL; %zu of %zu "
           "completions\n", under_bql(&t, "virtio_blk_handle_vq", 'B'),
           toy_trace_count(&t, "virtio_blk_handle_vq", 'B', 0),
           under_bql(&t, "virtio_blk_req_complete", 'i'),
           toy_trace_count(&t, "virtio_blk_req_complete", 'i', 0));
    CHECK("the guest read its disk and lost nothing",
          toy_stats(m, 0).reads > 0 && toy_stats(m, 0).lost == 0);
    CHECK_HINT("no queue handler ran with the BQL held",
               under_bql(&t, "virtio_blk_handle_vq", 'B') == 0,
               "which thread handles a kick with ioeventfd=off? which "
               "one with the default? which one never takes the BQL?");
    CHECK_EQ("no request completed with the BQL held",
             under_bql(&t, "virtio_blk_req_complete", 'i'), 0);
    holds = toy_slices(&t, "mmio exit (slow device, BQL held)",
                       aiolab_machine_get_vcpu_thread_id(m, 1), &n_holds);
    for (i = 0; i < t.n; i++) {
        during += !strcmp(t.r[i].name, "virtio_blk_req_complete") &&
                  toy_inside(holds, n_holds, t.r[i].ts_ns);
    }
    free(holds);
    CHECK("requests completed while vCPU 1 held the BQL", during > 0);
    toy_trace_free(&t);
    aiolab_machine_free(m);
    bql_unlock();
    return 0;
}

/* cc -Ic/include tutorial/ch00-win-day-one/solution/exercise-holder.c -o build/exercise-holder-solution -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch00-win-day-one/solution/exercise-holder.c - SOLUTION: find the BQL
 * holder.
 *
 * The demo's first run again: the disk in the main loop, vCPU 0 reading
 * it, vCPU 1 holding the BQL 1 ms of every 2 ms.  The main loop waits for
 * the BQL again and again.  Who makes it wait?  Answer from the trace
 * alone: write who_made_main_wait().
 *
 * The answer: the thread that released the BQL last before each of the
 * main loop's waits ended is the one it waited for.  Add up the waits
 * per releaser.  (Counting acquisitions finds the main loop itself: it
 * takes the BQL on every iteration, but holds it briefly.)
 */
#include "../../tutorial.h"
#include "../../toy.h"

/* [region: solution] */
/*
 * Which thread made the main loop (thread @main_tid) wait for the BQL
 * the longest, in total, in trace @t?  Returns its thread id.
 */
static int who_made_main_wait(const ToyTrace *t, int main_tid)
{
    int tids[64] = { 0 }, n = 0, best = 0, i;
    int64_t waited[64] = { 0 };
    size_t n_waits, w, k = 0;
    ToySlice *waits = toy_slices(t, "bql_lock_wait", main_tid, &n_waits);
    int releaser = 0;

    /* Walk the trace once; the waits are in order of their ends too
     * (one thread's waits do not overlap). */
    for (w = 0; w < n_waits; w++) {
        for (; k < t->n && t->r[k].ts_ns <= waits[w].end_ns; k++) {
            if (t->r[k].phase == 'E' && t->r[k].tid != main_tid &&
                !strcmp(t->r[k].name, "bql_held")) {
                releaser = t->r[k].tid;     /* the last to let go */
            }
        }
        for (i = 0; i < n && tids[i] != releaser; i++) {
            /* find its total */
        }
        if (i == n) {
            if (n == 64) {
                continue;
            }
            tids[n++] = releaser;
        }
        waited[i] += waits[w].end_ns - waits[w].begin_ns;
        if (waited[i] > waited[best]) {
            best = i;
        }
    }
    free(waits);
    return tids[best];
}
/* [endregion] */

int main(void)
{
    AiolabMachine *m;
    VirtIOBlkConf conf;
    ToyTrace t;
    int64_t t0;
    int vcpu1, found;

    toy_init();
    toy_disk("disk0", 64);
    m = toy_machine(2);
    t0 = aiolab_trace_now_ns();
    virtio_blk_conf_init(&conf);                /* in the main loop */
    aiolab_machine_add_virtio_blk(m, &conf, "disk0", &error_abort);
    toy_workload(m, "vcpu=0,rw=randread,iodepth=4,count=2000");
    toy_workload(m, "vcpu=1,mmio-hold=1000,mmio-period=2000");
    toy_run(m);
    vcpu1 = aiolab_machine_get_vcpu_thread_id(m, 1);
    t = toy_trace_since(t0);
    CHECK("the main loop waited for the BQL",
          toy_trace_count(&t, "bql_lock_wait", 'B', getpid()) > 0);

    found = who_made_main_wait(&t, getpid());
    printf("who_made_main_wait() says: '%s' (thread %d)\n",
           toy_thread_name(found), found);
    CHECK_HINT("the main loop waited for vCPU 1 ('CPU 1/toy')",
               found == vcpu1, "the thread that takes the BQL most often "
               "is not the one that makes the others wait: for each of the "
               "main thread's bql_lock_wait slices, find the thread that "
               "released the BQL (ended a bql_held slice) last before the "
               "wait ended, and add the wait to that thread's total");
    toy_trace_free(&t);
    aiolab_machine_free(m);
    bql_unlock();
    return 0;
}

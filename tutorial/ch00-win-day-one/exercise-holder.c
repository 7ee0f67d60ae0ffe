/* cc -Ic/include tutorial/ch00-win-day-one/exercise-holder.c -o build/exercise-holder -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch00-win-day-one/exercise-holder.c - EXERCISE: find the BQL holder.
 *
 * The demo's first run again: the disk in the main loop, vCPU 0 reading
 * it, vCPU 1 holding the BQL 1 ms of every 2 ms.  The main loop waits for
 * the BQL again and again.  Who makes it wait?  Answer from the trace
 * alone: write who_made_main_wait().
 *
 *     /usr/bin/python3 tutorial/check.py -k exercise-holder -v
 */
#include "../tutorial.h"
#include "../toy.h"

/* [region: starter] */
/*
 * Which thread made the main loop (thread @main_tid) wait for the BQL
 * the longest, in total, in trace @t?  Returns its thread id.
 *
 * The trace has, per thread, "bql_held" slices (from bql_lock() to
 * bql_unlock()) and "bql_lock_wait" slices (bql_lock() found the BQL
 * taken and waited).  See toy.h: toy_slices().
 */
static int who_made_main_wait(const ToyTrace *t, int main_tid)
{
    /* A first guess: the thread that took the BQL most often. */
    int tids[64] = { 0 }, counts[64] = { 0 }, n = 0, best = 0, i;
    size_t k;

    for (k = 0; k < t->n; k++) {
        if (t->r[k].phase != 'B' || strcmp(t->r[k].name, "bql_held")) {
            continue;
        }
        for (i = 0; i < n && tids[i] != t->r[k].tid; i++) {
            /* find its counter */
        }
        if (i == n) {
            if (n == 64) {
                continue;
            }
            tids[n++] = t->r[k].tid;
        }
        if (++counts[i] > counts[best]) {
            best = i;
        }
    }
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

/* cc -Ic/include tutorial/ch04-bql-vcpus/solution/exercise-drop-bql.c -o build/exercise-drop-bql-solution -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch04-bql-vcpus/solution/exercise-drop-bql.c - SOLUTION: do not sleep
 * with the BQL.
 *
 * A vCPU thread of our own runs "guest code" (it sleeps a little) and
 * exits to a slow device 20 times.  The device's registers are global
 * state, protected by the BQL; but each request also needs 2 ms of slow
 * backend work that touches no device state.  handle_exit() holds the
 * BQL throughout, and the main loop's heartbeat, every half millisecond,
 * cannot run while it does.  Make handle_exit() hold the BQL only while
 * it touches the device.
 *
 * The answer: two short critical sections around the slow part.  Each
 * leaves the device consistent (busy == requests != completed), so
 * whatever the main loop sees between them is a state the device can
 * really be in.
 */
#include "../../tutorial.h"
#include <pthread.h>
#include <aiolab/aiolab.h>

#define EXITS 20

/* The slow device's registers: global state, BQL. */
static struct {
    unsigned requests, completed;
    bool busy;                  /* busy == (requests != completed) */
} dev;

static int slow_with_bql;       /* slow_backend_work() calls with the BQL */

/* 2 ms of work that needs no device state: a slow backend. */
static void slow_backend_work(void)
{
    slow_with_bql += bql_locked();
    usleep(2000);
}

/* [region: solution] */
/* The vCPU thread exits to the device; it arrives without the BQL. */
static void handle_exit(void)
{
    bql_lock();                 /* the registers: under the BQL */
    dev.requests++;
    dev.busy = true;
    bql_unlock();

    slow_backend_work();        /* no device state: no BQL */

    bql_lock();                 /* the registers again */
    dev.completed++;
    dev.busy = false;
    bql_unlock();
}
/* [endregion] */

static bool vcpu_done;          /* atomic */

static void *vcpu_thread(void *opaque)
{
    int i;

    aiolab_thread_set_name("CPU 0/mine");
    for (i = 0; i < EXITS; i++) {
        usleep(500);            /* guest code: no BQL */
        handle_exit();
    }
    __atomic_store_n(&vcpu_done, true, __ATOMIC_RELEASE);
    qemu_notify_event();        /* wake the main loop */
    return NULL;
}

static QEMUTimer *heartbeat;
static int beats, beats_busy, beats_inconsistent;

/* The main loop's heartbeat looks at the device, with the BQL held. */
static void heartbeat_cb(void *opaque)
{
    beats++;
    beats_busy += dev.busy;
    beats_inconsistent += dev.busy != (dev.requests != dev.completed);
    timer_mod_ns(heartbeat, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + 500000);
}

int main(void)
{
    AiolabBqlStats st[16];
    size_t n, i;
    pthread_t vcpu;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    heartbeat = aio_timer_new(qemu_get_aio_context(), QEMU_CLOCK_REALTIME,
                              SCALE_NS, heartbeat_cb, NULL);
    timer_mod_ns(heartbeat, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + 500000);
    aiolab_bql_reset_stats();
    pthread_create(&vcpu, NULL, vcpu_thread, NULL);
    while (!__atomic_load_n(&vcpu_done, __ATOMIC_ACQUIRE)) {
        main_loop_wait(false);  /* the BQL is dropped only while asleep */
    }
    pthread_join(vcpu, NULL);
    timer_free(heartbeat);

    n = aiolab_bql_get_stats(st, 16);
    for (i = 0; i < n && i < 16; i++) {
        printf("%-12s took the BQL %4llu times, waited %6.2f ms (longest "
               "%5.2f ms), held it %6.2f ms\n", st[i].thread_name,
               (unsigned long long)st[i].acquisitions,
               st[i].wait_ns_total / 1e6, st[i].wait_ns_max / 1e6,
               st[i].hold_ns_total / 1e6);
    }
    printf("heartbeats: %d, %d of them saw the device busy\n", beats,
           beats_busy);
    CHECK_EQ("every exit was handled", dev.completed, EXITS);
    CHECK_EQ("every heartbeat saw a consistent device", beats_inconsistent,
             0);
    CHECK_EQ_HINT("the slow backend work ran without the BQL", slow_with_bql,
                  0, "drop the BQL around slow_backend_work() (and take "
                  "it again for the device's registers)");
    CHECK_HINT("the main loop ran while the device was busy", beats_busy > 0,
               "a heartbeat can only run while nobody holds the BQL");
    bql_unlock();
    return 0;
}

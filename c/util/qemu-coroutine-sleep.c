/* SPDX-License-Identifier: MIT */
/*
 * util/qemu-coroutine-sleep.c - qemu_co_sleep_ns(): a timer that wakes
 * the coroutine, and a yield.
 *
 *   qemu_co_sleep_ns                        aio_poll (same thread, later)
 *   ----------------                        -----------------------------
 *   scheduled = "qemu_co_sleep_ns"
 *   timer_mod(now + ns)
 *   yield  ---> the context keeps running   timer expires: co_sleep_cb
 *                                             scheduled = NULL
 *   <------------------------------------    aio_co_wake(co)
 *   timer_free
 *
 * While asleep, co->scheduled names this function, so that anybody who
 * enters or schedules the sleeper (a classic bug: waking a coroutine that
 * is also waiting on a timer) aborts with "already scheduled in
 * 'qemu_co_sleep_ns'" instead of resuming it twice.
 *
 * Where QEMU differs: QEMU also has qemu_co_sleep_ns_wakeable() and a
 * QemuCoSleep handle that lets another party cut the sleep short.  aiolab
 * has only the plain sleep.
 */
#include "util/atomic.h"
#include "util/check.h"
#include "util/coroutine-int.h"

static const char sleep_tag[] = "qemu_co_sleep_ns";

static void co_sleep_cb(void *opaque)
{
    Coroutine *co = opaque;
    const char *was;

    /* The CAS is a full barrier: it pairs with the one in
     * qemu_co_sleep_ns() (and with aio_co_schedule's, which would have
     * failed on our tag). */
    was = qatomic_cmpxchg(&co->scheduled, sleep_tag, NULL);
    AIOLAB_ASSERT(was == sleep_tag, "sleeping coroutine was scheduled by "
                  "'%s'", was ? was : "(nobody)");
    aio_co_wake(co);
}

void coroutine_fn qemu_co_sleep_ns(QEMUClockType type, int64_t ns)
{
    AioContext *ctx = qemu_get_current_aio_context();
    Coroutine *self = qemu_coroutine_self();
    QEMUTimer *ts;
    const char *was;

    AIOLAB_REQUIRE(qemu_in_coroutine(),
                   "called outside a coroutine " RULE_CO);
    AIOLAB_REQUIRE(ctx != NULL, "called in a thread without an AioContext");

    was = qatomic_cmpxchg(&self->scheduled, NULL, sleep_tag);
    if (was) {
        aiolab_die(__func__, "Co-routine was already scheduled in '%s'", was);
    }
    ts = aio_timer_new(ctx, type, SCALE_NS, co_sleep_cb, self);
    timer_mod(ts, qemu_clock_get_ns(type) + ns);
    qemu_coroutine_yield();
    /* The timer has fired (nothing else may wake us): just free it. */
    timer_free(ts);
}

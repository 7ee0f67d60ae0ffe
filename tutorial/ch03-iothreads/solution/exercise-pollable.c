/* cc -Ic/include tutorial/ch03-iothreads/solution/exercise-pollable.c -o build/exercise-pollable-solution -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch03-iothreads/solution/exercise-pollable.c - SOLUTION: let the
 * IOThread busy-poll your event notifier.
 *
 * The main thread sends ROUNDS requests to an IOThread through an event
 * notifier, 20 us apart: quick enough that the IOThread's busy-polling
 * should catch them without going to sleep.  But a handler without an
 * io_poll callback is never polled, and with the poll(2) and epoll fd
 * monitors (poll is the default) a context busy-polls only if *every*
 * handler can be polled: they cannot see an fd become readable without a
 * system call.  This handler has no io_poll.
 *
 * The answer: request_poll() and request_poll_ready(), passed to
 * aio_set_event_notifier().
 */
#include "../../tutorial.h"
#include <aiolab/aiolab.h>

#define ROUNDS 2000

static EventNotifier req;
static bool pending;                /* atomic: a request is waiting */
static int handled;                 /* atomic: requests handled */
static int by_fd, by_poll;          /* how they were found (IOThread) */

/* Claim the pending request, if there is one. */
static bool take_request(void)
{
    return __atomic_exchange_n(&pending, false, __ATOMIC_ACQ_REL);
}

/* The fd monitor found the eventfd readable. */
static void on_request(EventNotifier *e)
{
    event_notifier_test_and_clear(e);
    if (take_request()) {
        by_fd++;
        __atomic_fetch_add(&handled, 1, __ATOMIC_RELEASE);
    }
}

/* Busy-polling asks this, over and over: is there work? */
static bool request_poll(void *opaque)
{
    return __atomic_load_n(&pending, __ATOMIC_ACQUIRE);
}

/* request_poll() said yes: handle it, as if the fd had said so. */
static void request_poll_ready(EventNotifier *e)
{
    event_notifier_test_and_clear(e);   /* the eventfd was written too */
    if (take_request()) {
        by_poll++;
        __atomic_fetch_add(&handled, 1, __ATOMIC_RELEASE);
    }
}

int main(void)
{
    AioContext *ctx;
    IOThread *it;
    int i;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    it = iothread_create("io0", &error_abort);
    ctx = iothread_get_aio_context(it);
    if (strcmp(aiolab_aio_context_fdmon_name(ctx), "io_uring") == 0) {
        /* There every fd event re-arms an io_uring submission, and a
         * pending submission sends aio_poll() to the kernel at once. */
        printf("skip: AIOLAB_FDMON=io_uring: an fd that fires on every "
               "request keeps busy-polling off there\n");
        iothread_destroy(it);
        bql_unlock();
        return 77;
    }
    /* A generous poll window (10 ms; the default is 32768 ns), so that a
     * busy machine does not change the outcome. */
    iothread_set_poll_params(it, 10000000, 0, 0, &error_abort);

    event_notifier_init(&req, 0);
    aio_set_event_notifier(ctx, &req, on_request, request_poll,
                           request_poll_ready);

    for (i = 0; i < ROUNDS; i++) {
        int64_t t0 = tut_now_ns();

        __atomic_store_n(&pending, true, __ATOMIC_RELEASE);
        event_notifier_set(&req);
        while (__atomic_load_n(&handled, __ATOMIC_ACQUIRE) == i) {
            /* wait until the IOThread has taken it */
        }
        while (tut_now_ns() - t0 < 20000) {
            /* 20 us between requests */
        }
    }
    printf("requests found through the fd: %d, by busy-polling: %d\n",
           by_fd, by_poll);

    CHECK_EQ("every request was handled exactly once",
             by_fd + by_poll, ROUNDS);
    CHECK_HINT("some requests were found by busy-polling", by_poll > 0,
               "a handler without io_poll is never polled, and turns "
               "busy-polling off for its whole context; pass an io_poll "
               "and an io_poll_ready to aio_set_event_notifier()");

    aio_set_event_notifier(ctx, &req, NULL, NULL, NULL);
    iothread_destroy(it);
    event_notifier_cleanup(&req);
    bql_unlock();
    return 0;
}

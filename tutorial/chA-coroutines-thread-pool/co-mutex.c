/* cc -Ic/include tutorial/chA-coroutines-thread-pool/co-mutex.c -o build/co-mutex -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chA-coroutines-thread-pool/co-mutex.c - coroutines of one thread still
 * need locks: a CoMutex.
 *
 * Coroutines never run at the same time, but one may yield in the middle
 * of an update (waiting for I/O), and another may then run the same code.
 * Three coroutines add 10 each to a counter, yielding between the read
 * and the write: first without a lock, then with a CoMutex.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

static int counter;
static int finished;
static bool use_lock;
static CoMutex lock;

/* Stands for anything that yields: I/O, a sleep, a CoQueue. */
static void coroutine_fn yield_a_moment(void)
{
    aio_co_schedule(qemu_get_current_aio_context(), qemu_coroutine_self());
    qemu_coroutine_yield();             /* the scheduled BH re-enters us */
}

/* [region: adder] */
static void coroutine_fn adder_co(void *opaque)
{
    int i, value;

    for (i = 0; i < 10; i++) {
        if (use_lock) {
            qemu_co_mutex_lock(&lock);  /* yields while another holds it */
        }
        value = counter;                /* read ... */
        yield_a_moment();               /* ... wait for something ... */
        counter = value + 1;            /* ... write */
        if (use_lock) {
            qemu_co_mutex_unlock(&lock);
        }
    }
    finished++;
}
/* [endregion] */

static int run(AioContext *ctx, bool locked)
{
    int i;

    counter = 0;
    finished = 0;
    use_lock = locked;
    qemu_co_mutex_init(&lock);
    for (i = 0; i < 3; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(adder_co, NULL));
    }
    while (finished < 3) {
        aio_poll(ctx, true);
    }
    return counter;
}

int main(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    int without, with;

    qemu_set_current_aio_context(ctx);
    without = run(ctx, false);
    with = run(ctx, true);
    printf("3 coroutines x 10 increments: %d without a lock, %d with a "
           "CoMutex\n", without, with);
    CHECK_EQ("without a lock, each round of three updates kept only one",
             without, 10);
    CHECK_EQ("with a CoMutex, no update was lost", with, 30);
    aio_context_unref(ctx);
    return 0;
}

/* cc -Ic/include tutorial/chA-coroutines-thread-pool/solution/exercise-offload.c -o build/exercise-offload-solution -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chA-coroutines-thread-pool/solution/exercise-offload.c - SOLUTION: a
 * coroutine that does blocking work without blocking its loop.
 *
 * checksum_co() needs slow_checksum(), which blocks, as a read(2) from a
 * slow disk would.  Called directly, it blocks the thread that runs the
 * coroutine, and with it the whole event loop: the heartbeat timer stops.
 * Here slow_checksum() even needs the heartbeat (it waits for three
 * beats), so called directly it can only time out.
 *
 * The answer: thread_pool_submit_co(slow_checksum, job).
 */
#include "../../tutorial.h"
#include <errno.h>
#include <semaphore.h>
#include <aiolab/aiolab.h>

static sem_t beats;             /* posted by the heartbeat */
static int heartbeats;
static QEMUTimer *heart;

typedef struct {
    const char *data;           /* what to checksum */
    int ret;                    /* the checksum, or -errno */
    bool done;
} Work;

/* Blocks until three heartbeats (or 1 s), then sums the bytes. */
static int slow_checksum(void *opaque)
{
    Work *job = opaque;
    struct timespec deadline;
    int i, sum = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 1;
    for (i = 0; i < 3; i++) {
        if (sem_timedwait(&beats, &deadline) < 0) {
            return -ETIMEDOUT;
        }
    }
    for (i = 0; job->data[i]; i++) {
        sum += (unsigned char)job->data[i];
    }
    return sum;
}

static void coroutine_fn checksum_co(void *opaque)
{
    Work *job = opaque;

    /*
     * A worker thread runs it; this coroutine yields meanwhile, so the
     * loop goes on (and beats).  The completion wakes the coroutine in
     * its own context with the function's return value.
     */
    job->ret = thread_pool_submit_co(slow_checksum, job);
    job->done = true;
}

static void heartbeat_cb(void *opaque)
{
    heartbeats++;
    sem_post(&beats);
    timer_mod(heart, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10);
}

int main(void)
{
    Work job = { .data = "aiolab" };
    AioContext *ctx;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    ctx = qemu_get_aio_context();
    sem_init(&beats, 0, 0);
    heart = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, heartbeat_cb,
                          NULL);
    timer_mod(heart, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10);

    qemu_coroutine_enter(qemu_coroutine_create(checksum_co, &job));
    while (!job.done) {
        aio_poll(ctx, true);
    }
    printf("checksum_co() got %d; the loop beat %d times meanwhile\n",
           job.ret, heartbeats);

    CHECK_EQ_HINT("the coroutine got the checksum of \"aiolab\"", job.ret,
                  'a' + 'i' + 'o' + 'l' + 'a' + 'b',
                  "-110 is -ETIMEDOUT: the heartbeat never came, because "
                  "the loop was stuck inside slow_checksum(); a coroutine "
                  "can run a blocking function with thread_pool_submit_co()");
    CHECK("the loop kept beating while the work was done",
          heartbeats >= 3);

    timer_free(heart);
    bql_unlock();
    return 0;
}

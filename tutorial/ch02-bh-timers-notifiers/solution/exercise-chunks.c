/* cc -Ic/include tutorial/ch02-bh-timers-notifiers/solution/exercise-chunks.c -o build/exercise-chunks-solution -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch02-bh-timers-notifiers/solution/exercise-chunks.c - SOLUTION: a long
 * job that lets the rest of the loop run.
 *
 * A BH must process 1000 items.  While a callback runs, nothing else in
 * its context can: no fd handler, no timer, no other BH.  A request
 * arrives on a pipe just as the job starts, and it must be answered while
 * the job is still in progress, not after all 1000 items.
 *
 * The answer: process_bh() does CHUNK items, then reschedules itself.
 */
#include "../../tutorial.h"
#include <aiolab/aiolab.h>

#define ITEMS 1000
#define CHUNK 100

typedef struct {
    QEMUBH *bh;
    int fd;             /* the pipe's read end: requests */
    int items_done;
    int bh_calls;
    int answered_at;    /* items_done when the request was answered */
    bool answered;
} Work;

static void process_bh(void *opaque)
{
    Work *job = opaque;
    int i;

    job->bh_calls++;
    for (i = 0; i < CHUNK && job->items_done < ITEMS; i++) {
        job->items_done++;
    }
    if (job->items_done < ITEMS) {
        /*
         * Not done: come back in the next aio_poll().  A BH scheduled
         * while BHs run waits for the next iteration, so fd handlers and
         * timers get their turn first.
         */
        qemu_bh_schedule(job->bh);
    }
}

static void on_request(void *opaque)
{
    Work *job = opaque;
    char c;

    if (read(job->fd, &c, 1) == 1) {
        job->answered = true;
        job->answered_at = job->items_done;
    }
}

int main(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    Work job = { 0 };
    int fds[2];

    qemu_set_current_aio_context(ctx);
    if (pipe(fds) < 0) {
        return 1;
    }
    job.fd = fds[0];
    job.bh = aio_bh_new(ctx, process_bh, &job);
    aio_set_fd_handler(ctx, job.fd, on_request, NULL, NULL, NULL, &job);

    /* The job starts; a request is already waiting. */
    if (write(fds[1], "?", 1) != 1) {
        return 1;
    }
    qemu_bh_schedule(job.bh);
    while (job.items_done < ITEMS || !job.answered) {
        aio_poll(ctx, true);
    }
    printf("the request was answered after %d of %d items; the BH ran %d "
           "time(s)\n", job.answered_at, ITEMS, job.bh_calls);

    CHECK_EQ("all items were processed", job.items_done, ITEMS);
    CHECK_HINT("the request was answered while the job was in progress",
               job.answered_at < ITEMS,
               "a BH that runs for long blocks its whole context; do CHUNK "
               "items, then qemu_bh_schedule(job->bh) and return: the fd "
               "handler runs in the same aio_poll(), the rest of the job "
               "in the next ones");
    CHECK_EQ("the BH ran once per chunk", job.bh_calls, ITEMS / CHUNK);

    aio_set_fd_handler(ctx, job.fd, NULL, NULL, NULL, NULL, NULL);
    qemu_bh_delete(job.bh);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
    return 0;
}

/* cc -Ic/include tutorial/ch02-bh-timers-notifiers/bottom-halves.c -o build/bottom-halves -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch02-bh-timers-notifiers/bottom-halves.c - bottom halves: scheduled,
 * rescheduled, one-shot and idle.
 *
 * A bottom half (BH) is a callback that runs once, soon, in the context's
 * home thread.  Any thread may schedule one; aio_poll() runs it.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

typedef struct {
    QEMUBH *bh;
    int runs;
} Ticker;

/* [region: reschedule] */
static void ticker_bh(void *opaque)
{
    Ticker *t = opaque;

    t->runs++;
    qemu_bh_schedule(t->bh);    /* again: it runs in the *next* aio_poll() */
}
/* [endregion] */

static void count_bh(void *opaque)
{
    (*(int *)opaque)++;
}

static char order[8];

static void log_bh(void *opaque)
{
    strncat(order, opaque, 1);
}

int main(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    Ticker t = { 0 };
    QEMUBH *a, *b, *c, *idle;
    int i, n = 0, idle_runs = 0;
    bool all_progress = true;
    int64_t t0;

    qemu_set_current_aio_context(ctx);

    /* [region: five-polls] */
    t.bh = aio_bh_new(ctx, ticker_bh, &t);
    qemu_bh_schedule(t.bh);
    for (i = 0; i < 5; i++) {
        all_progress &= aio_poll(ctx, false);
    }
    /* [endregion] */
    CHECK_EQ("a BH that reschedules itself runs once per aio_poll()",
             t.runs, 5);
    CHECK("each of those five aio_poll() calls made progress", all_progress);
    qemu_bh_delete(t.bh);
    CHECK("a deleted BH never runs again, even though it was scheduled",
          !aio_poll(ctx, false) && t.runs == 5);

    a = aio_bh_new(ctx, count_bh, &n);
    qemu_bh_schedule(a);
    qemu_bh_schedule(a);
    qemu_bh_schedule(a);
    aio_poll(ctx, false);
    CHECK_EQ("a BH scheduled three times before it runs runs once", n, 1);
    qemu_bh_schedule(a);
    qemu_bh_cancel(a);
    CHECK("a cancelled BH does not run", !aio_poll(ctx, false) && n == 1);
    qemu_bh_delete(a);

    /* [region: order] */
    a = aio_bh_new(ctx, log_bh, "A");
    b = aio_bh_new(ctx, log_bh, "B");
    c = aio_bh_new(ctx, log_bh, "C");
    qemu_bh_schedule(a);
    qemu_bh_schedule(b);
    qemu_bh_schedule(c);
    aio_poll(ctx, false);
    /* [endregion] */
    printf("scheduled A, B, C; they ran in the order %s\n", order);
    CHECK("BHs of one aio_poll() run in reverse scheduling order",
          strcmp(order, "CBA") == 0);
    qemu_bh_delete(a);
    qemu_bh_delete(b);
    qemu_bh_delete(c);

    n = 0;
    aio_bh_schedule_oneshot(ctx, count_bh, &n);
    CHECK("a one-shot BH runs once and frees itself",
          aio_poll(ctx, false) && n == 1 && !aio_poll(ctx, false));

    /* [region: idle] */
    idle = aio_bh_new(ctx, count_bh, &idle_runs);
    qemu_bh_schedule_idle(idle);
    printf("with an idle BH scheduled, a blocking poll waits at most %lld ns\n",
           (long long)aiolab_aio_context_compute_timeout(ctx));
    /* [endregion] */
    CHECK_EQ("an idle BH caps the poll timeout at 10 ms",
             aiolab_aio_context_compute_timeout(ctx), 10 * SCALE_MS);
    CHECK("an idle BH runs, but aio_poll() does not count it as progress",
          !aio_poll(ctx, false) && idle_runs == 1);
    qemu_bh_schedule_idle(idle);
    t0 = tut_now_ns();
    CHECK("a blocking aio_poll() runs an idle BH, and still returns false",
          !aio_poll(ctx, true) && idle_runs == 2);
    printf("(it slept %.1f ms: scheduling the BH had notified the context)\n",
           (tut_now_ns() - t0) / 1e6);
    CHECK_EQ("with nothing scheduled, the timeout is -1 (sleep forever)",
             aiolab_aio_context_compute_timeout(ctx), -1);
    qemu_bh_schedule(idle);
    CHECK_EQ("a scheduled (non-idle) BH makes the timeout 0",
             aiolab_aio_context_compute_timeout(ctx), 0);
    aio_poll(ctx, false);
    qemu_bh_delete(idle);

    aio_poll(ctx, false);       /* frees the deleted BHs */
    aio_context_unref(ctx);     /* a BH left undeleted would abort here */
    return 0;
}

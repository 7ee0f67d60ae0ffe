/* cc -Ic/include tutorial/ch02-bh-timers-notifiers/timers.c -o build/timers -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch02-bh-timers-notifiers/timers.c - timers, and their deadlines as the
 * timeout of a blocking aio_poll().
 *
 * Each AioContext keeps one sorted list of timers per clock.  A blocking
 * aio_poll() sleeps until the soonest deadline (or forever, if there is
 * none), then runs the expired timers last, after BHs and fd handlers.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

typedef struct {
    const char *name;
    int64_t deadline_ns;        /* what we armed it for */
    int64_t fired_ns;           /* when it ran, 0 if not yet */
} Alarm;

static char log_buf[64];

static void alarm_cb(void *opaque)
{
    Alarm *a = opaque;

    a->fired_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    strcat(log_buf, a->name);
    strcat(log_buf, " ");
}

static void bh_cb(void *opaque)
{
    strcat(log_buf, "bh ");
}

int main(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    Alarm late = { .name = "late" }, soon = { .name = "soon" };
    Alarm virt = { .name = "virtual" };
    QEMUTimer *t_late, *t_soon, *t_virt;
    int64_t now, timeout;
    int polls = 0;

    qemu_set_current_aio_context(ctx);
    CHECK_EQ("with no timer and no BH, the poll timeout is -1 (forever)",
             aiolab_aio_context_compute_timeout(ctx), -1);

    /* [region: arm] */
    t_late = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, alarm_cb, &late);
    t_soon = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, alarm_cb, &soon);
    now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    late.deadline_ns = (now + 100) * SCALE_MS;
    soon.deadline_ns = (now + 50) * SCALE_MS;
    timer_mod(t_late, now + 100);       /* in the timer's scale: ms */
    timer_mod(t_soon, now + 50);
    timeout = aiolab_aio_context_compute_timeout(ctx);
    /* [endregion] */
    printf("the soonest deadline is %.1f ms away\n", timeout / 1e6);
    CHECK("the soonest timer bounds the poll timeout (0 <= it <= 50 ms)",
          timeout >= 0 && timeout <= 50 * SCALE_MS);

    /* [region: wait] */
    while (!late.fired_ns) {
        aio_poll(ctx, true);            /* sleeps until a deadline */
        polls++;
    }
    /* [endregion] */
    printf("%d blocking aio_poll() call(s); 'soon' ran %.3f ms after its "
           "deadline, 'late' %.3f ms\n", polls,
           (soon.fired_ns - soon.deadline_ns) / 1e6,
           (late.fired_ns - late.deadline_ns) / 1e6);
    CHECK("timers fire in deadline order", strcmp(log_buf, "soon late ") == 0);
    CHECK("a timer never fires before its deadline",
          soon.fired_ns >= soon.deadline_ns &&
          late.fired_ns >= late.deadline_ns);
    CHECK("a timer that has fired is no longer pending",
          !timer_pending(t_soon) && !timer_pending(t_late));

    /* [region: order] */
    log_buf[0] = '\0';
    timer_mod(t_soon, 0);               /* a deadline in the past */
    aio_bh_schedule_oneshot(ctx, bh_cb, NULL);
    aio_poll(ctx, false);
    /* [endregion] */
    CHECK("in one aio_poll(), BHs run before expired timers",
          strcmp(log_buf, "bh soon ") == 0);

    timer_mod(t_late, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1000);
    timer_del(t_late);
    CHECK("timer_del() disarms: the timeout is -1 again",
          !timer_pending(t_late) &&
          aiolab_aio_context_compute_timeout(ctx) == -1);

    /* [region: virtual] */
    t_virt = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS, alarm_cb, &virt);
    timer_mod(t_virt, 0);
    /* [endregion] */
    CHECK("a QEMU_CLOCK_VIRTUAL timer never fires while no machine runs",
          aiolab_aio_context_compute_timeout(ctx) == -1 &&
          !aio_poll(ctx, false) && !virt.fired_ns);

    timer_free(t_late);
    timer_free(t_soon);
    timer_free(t_virt);
    aio_context_unref(ctx);
    return 0;
}

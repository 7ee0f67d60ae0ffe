/* cc -Ic/include tutorial/ch01-event-loop/progress.c -o build/progress -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch01-event-loop/progress.c - what aio_poll()'s return value means.
 *
 * aio_poll() returns true if it ran a callback ("progress"), false if it
 * only woke up.  aio_notify() wakes a poll without giving it anything to
 * run, so a false return never means "what I wait for will not come".
 */
#include "../tutorial.h"
#include <pthread.h>
#include <aiolab/aiolab.h>

typedef struct {
    AioContext *ctx;
    int fds[2];
    int bytes;              /* read by on_readable() */
    int woken_for_nothing;  /* atomic: aio_poll() returns that were false */
} Demo;

static void on_readable(void *opaque)
{
    Demo *d = opaque;
    char c;

    if (read(d->fds[0], &c, 1) == 1) {
        d->bytes++;
    }
}

/* Another thread: a bare aio_notify(), and only later the real reply. */
static void *notifier_then_writer(void *opaque)
{
    Demo *d = opaque;

    aio_notify(d->ctx);
    while (__atomic_load_n(&d->woken_for_nothing, __ATOMIC_SEQ_CST) == 0) {
        usleep(1000);
    }
    if (write(d->fds[1], "R", 1) != 1) {
        abort();
    }
    return NULL;
}

int main(void)
{
    Demo d = { .ctx = aio_context_new(&error_abort) };
    AioContext *ctx = d.ctx;
    pthread_t th;
    int64_t t0;
    int n;

    qemu_set_current_aio_context(ctx);
    if (pipe(d.fds) < 0) {
        return 1;
    }
    aio_set_fd_handler(ctx, d.fds[0], on_readable, NULL, NULL, NULL, &d);
    while (aio_poll(ctx, false)) {
        /* settle: registering a handler notifies the context */
    }

    /* [region: notify] */
    aio_notify(ctx);
    t0 = tut_now_ns();
    CHECK("after aio_notify(), aio_poll(ctx, true) returns false",
          !aio_poll(ctx, true));
    /* [endregion] */
    printf("... and it returned after %.1f us: it did not sleep\n",
           (tut_now_ns() - t0) / 1e3);

    /* [region: drain] */
    /* Run everything that is ready, without sleeping. */
    if (write(d.fds[1], "abc", 3) != 3) {
        return 1;
    }
    n = 0;
    while (aio_poll(ctx, false)) {
        n++;
    }
    /* [endregion] */
    CHECK_EQ("'while (aio_poll(ctx, false))' made progress once per byte",
             n, 3);
    CHECK_EQ("the handler read the three bytes", d.bytes, 3);

    /* [region: wait] */
    /* Wait for the reply: loop on the condition, not on the return value. */
    pthread_create(&th, NULL, notifier_then_writer, &d);
    while (d.bytes < 4) {
        if (!aio_poll(ctx, true)) {
            __atomic_fetch_add(&d.woken_for_nothing, 1, __ATOMIC_SEQ_CST);
        }
    }
    /* [endregion] */
    pthread_join(th, NULL);
    printf("aio_poll(ctx, true) returned false %d time(s) before the reply\n",
           d.woken_for_nothing);
    CHECK("a wake-up by aio_notify() alone returned false while waiting",
          d.woken_for_nothing >= 1);
    CHECK_EQ("the loop still waited until the reply arrived", d.bytes, 4);

    aio_set_fd_handler(ctx, d.fds[0], NULL, NULL, NULL, NULL, NULL);
    close(d.fds[0]);
    close(d.fds[1]);
    aio_context_unref(ctx);
    return 0;
}

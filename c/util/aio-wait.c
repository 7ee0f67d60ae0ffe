/* SPDX-License-Identifier: MIT */
/*
 * util/aio-wait.c - AIO_WAIT_WHILE's bookkeeping, aio_wait_kick() and
 * aio_wait_bh_oneshot().
 *
 * The pair that must not lose a wake-up:
 *
 *   waiter (AIO_WAIT_WHILE)          kicker (any thread)
 *   num_waiters++        (RMW)       make cond false (the caller's write)
 *   evaluate cond                    read num_waiters     (RMW)
 *   aio_poll(main, blocking)         if > 0: schedule a dummy BH on main
 *
 * Both sides use seq_cst read-modify-writes, so either the waiter sees the
 * condition already false, or the kicker sees a waiter and its BH wakes
 * the blocked aio_poll (which then re-evaluates cond).
 */
#include <stdio.h>
#include <stdlib.h>
#include <aiolab/aiolab.h>
#include "util/aio-internal.h"
#include "util/check.h"
#include "util/thread.h"
#include "util/trace-internal.h"

static unsigned num_waiters;

static void dummy_bh_cb(void *opaque)
{
    /* Its only job is to make the waiter's aio_poll() return. */
}

void aio_wait_kick(void)
{
    /* Pairs with the increment in aiolab_aio_wait_begin(). */
    if (qatomic_fetch_add(&num_waiters, 0) > 0) {
        AioContext *main_ctx = qemu_get_aio_context();
        if (main_ctx) {
            aio_bh_schedule_oneshot(main_ctx, dummy_bh_cb, NULL);
        }
    }
}

AioContext *aiolab_aio_wait_begin(AioContext *ctx, const char *func,
                                  const char *file, int line,
                                  const char *cond)
{
    AioContext *main_ctx = qemu_get_aio_context();
    AiolabThread *self = aiolab_thread_self();
    AioContext *poll_ctx;

    qatomic_inc(&num_waiters);
    /* Pairs with the read of num_waiters in aio_wait_kick(). */
    smp_mb__after_rmw();

    if (ctx && in_aio_context_home_thread(ctx)) {
        poll_ctx = ctx;
    } else {
        char buf[512];

        if (unlikely(!aiolab_aio_wait_allowed(ctx, func, buf, sizeof(buf)))) {
            fprintf(stderr, "%s\n  (waiting for '%s' at %s:%d)\n", buf, cond,
                    file, line);
            fflush(stderr);
            abort();
        }
        poll_ctx = main_ctx;
    }
    /*
     * The dump and the trace keep these pointers after we return: intern
     * them (C passes literals, which the intern cache answers at once;
     * bindings pass temporary strings).
     */
    func = aiolab_intern(func ? func : "?");
    qatomic_set(&self->wait_func, func);
    qatomic_set(&self->wait_file, aiolab_intern(file ? file : "?"));
    qatomic_set(&self->wait_line, line);
    qatomic_set(&self->wait_cond, aiolab_intern(cond ? cond : "?"));
    qatomic_set(&self->wait_ctx, poll_ctx);
    trace_begin(TE_AIO_WAIT, func, line);
    return poll_ctx;
}

void aiolab_aio_wait_end(void)
{
    AiolabThread *self = aiolab_thread_self();

    trace_end(TE_AIO_WAIT, NULL, 0);
    qatomic_set(&self->wait_cond, NULL);
    qatomic_set(&self->wait_ctx, NULL);
    qatomic_dec(&num_waiters);
}

unsigned aiolab_aio_wait_num_waiters(void)
{
    return qatomic_read(&num_waiters);
}

typedef struct {
    bool done;                  /* atomic */
    QEMUBHFunc *cb;
    void *opaque;
} AioWaitBHData;

static void aio_wait_bh(void *opaque)
{
    AioWaitBHData *data = opaque;

    data->cb(data->opaque);
    qatomic_store_sc(&data->done, true);
    aio_wait_kick();
}

void aio_wait_bh_oneshot(AioContext *ctx, QEMUBHFunc *cb, void *opaque)
{
    AioWaitBHData data = { .cb = cb, .opaque = opaque };

    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    AIOLAB_REQUIRE(qemu_get_current_aio_context() == qemu_get_aio_context(),
                   "must be called from the main loop " RULE_GS);
    aio_bh_schedule_oneshot(ctx, aio_wait_bh, &data);
    AIO_WAIT_WHILE(ctx, !qatomic_load_sc(&data.done));
}

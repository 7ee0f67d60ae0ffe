/* cc -Ic/include tutorial/chA-coroutines-thread-pool/co-wake-threads.c -o build/co-wake-threads -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chA-coroutines-thread-pool/co-wake-threads.c - a coroutine waits for an
 * IOThread, and is woken from there; then it moves itself over and back.
 *
 * aio_co_wake(co) resumes @co in the context where it last ran, whatever
 * thread calls it: from another thread it schedules @co there (a BH), so
 * the coroutine never runs in the waker's thread.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

typedef struct {
    Coroutine *co;          /* the coroutine waiting for the answer */
    int answer;
    int served_in;          /* thread that computed it */
} Request;

typedef struct {
    AioContext *main_ctx, *io_ctx;
    int before, after;      /* threads the coroutine ran in, in order */
    int moved, back;
    int answer;
    int served_in;          /* thread that computed the answer */
    bool done;
} Client;

/* [region: serve] */
/* Runs in the IOThread. */
static void serve_bh(void *opaque)
{
    Request *req = opaque;

    req->answer = 42;
    req->served_in = tut_gettid();
    aio_co_wake(req->co);               /* from another thread: a BH in */
}                                       /* the coroutine's own context */
/* [endregion] */

/* [region: client] */
static void coroutine_fn client_co(void *opaque)
{
    Client *c = opaque;
    Request req = { .co = qemu_coroutine_self() };

    c->before = tut_gettid();
    aio_bh_schedule_oneshot(c->io_ctx, serve_bh, &req);
    qemu_coroutine_yield();             /* until serve_bh() wakes us */
    c->after = tut_gettid();
    c->answer = req.answer;
    c->served_in = req.served_in;

    aio_co_reschedule_self(c->io_ctx);  /* continue in the IOThread */
    c->moved = tut_gettid();
    aio_co_reschedule_self(c->main_ctx);        /* and come back */
    c->back = tut_gettid();
    c->done = true;
}
/* [endregion] */

int main(void)
{
    Client c = { 0 };
    IOThread *it;
    int main_tid = tut_gettid();

    qemu_init_main_loop(&error_abort);
    bql_lock();
    it = iothread_create("io0", &error_abort);
    c.main_ctx = qemu_get_aio_context();
    c.io_ctx = iothread_get_aio_context(it);

    /* [region: run] */
    qemu_coroutine_enter(qemu_coroutine_create(client_co, &c));
    while (!c.done) {
        aio_poll(c.main_ctx, true);
    }
    /* [endregion] */
    printf("main thread %d, IOThread %d; the coroutine ran in %d, %d, "
           "%d, %d\n", main_tid, iothread_get_thread_id(it), c.before,
           c.after, c.moved, c.back);
    CHECK_EQ("the coroutine got the IOThread's answer", c.answer, 42);
    CHECK_EQ("the answer was computed in the IOThread", c.served_in,
             iothread_get_thread_id(it));
    CHECK_EQ("the coroutine started in the main thread", c.before, main_tid);
    CHECK_EQ("woken from the IOThread, it resumed in the main thread",
             c.after, main_tid);
    CHECK_EQ("aio_co_reschedule_self() moved it into the IOThread",
             c.moved, iothread_get_thread_id(it));
    CHECK_EQ("a second aio_co_reschedule_self() brought it back", c.back,
             main_tid);

    iothread_destroy(it);
    bql_unlock();
    return 0;
}

/* cc -Ic/include tutorial/ch03-iothreads/iothread-basics.c -o build/iothread-basics -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch03-iothreads/iothread-basics.c - start an IOThread, send it work,
 * get the answer back in the main loop, stop it.
 *
 * An IOThread is a thread whose whole life is
 *     while (running) aio_poll(ctx, true);
 * on an AioContext of its own.  Work goes in through the context's doors
 * (here a one-shot BH); the answer comes back through a door of the main
 * context (here an event notifier).
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

typedef struct {
    int n;                  /* input: sum 1..n */
    long sum;               /* output, written in the IOThread */
    int tid;                /* where work_bh() ran, and what it saw there */
    AioContext *current;
    bool in_iothread;
    bool bql_held;
    EventNotifier reply;    /* set by the IOThread when done */
    bool replied;           /* set by on_reply(), in the main loop */
    int reply_tid;
} Work;

/* [region: work] */
/* Runs in the IOThread: its aio_poll() found this one-shot BH. */
static void work_bh(void *opaque)
{
    Work *w = opaque;
    long sum = 0;
    int i;

    for (i = 1; i <= w->n; i++) {
        sum += i;
    }
    w->sum = sum;
    w->tid = tut_gettid();
    w->current = qemu_get_current_aio_context();
    w->in_iothread = qemu_in_iothread();
    w->bql_held = bql_locked();
    event_notifier_set(&w->reply);      /* a door into the main loop */
}

/* Runs in the main loop, which polls the main context. */
static void on_reply(EventNotifier *e)
{
    Work *w = container_of(e, Work, reply);

    event_notifier_test_and_clear(e);
    w->replied = true;
    w->reply_tid = tut_gettid();
}
/* [endregion] */

int main(void)
{
    Work w = { .n = 1000 };
    AioContext *main_ctx, *io_ctx;
    IOThread *it;
    int64_t v;
    char *id;

    qemu_init_main_loop(&error_abort);  /* this thread: the main loop */
    bql_lock();                         /* as QEMU's qemu_init() does */
    main_ctx = qemu_get_aio_context();

    /* [region: create] */
    it = iothread_create("io0", &error_abort);
    io_ctx = iothread_get_aio_context(it);
    /* [endregion] */
    id = iothread_get_id(it);
    printf("IOThread '%s' runs as thread %d; its context is '%s'\n", id,
           iothread_get_thread_id(it), aiolab_aio_context_get_name(io_ctx));
    free(id);
    aiolab_iothread_get_param(it, "poll-max-ns", &v);
    CHECK_EQ("a new IOThread busy-polls for up to 32768 ns (poll-max-ns)",
             v, 32768);
    CHECK("the main thread is not the IOThread context's home thread",
          !in_aio_context_home_thread(io_ctx));

    /* [region: round-trip] */
    event_notifier_init(&w.reply, 0);
    aio_set_event_notifier(main_ctx, &w.reply, on_reply, NULL, NULL);
    aio_bh_schedule_oneshot(io_ctx, work_bh, &w);
    while (!w.replied) {
        aio_poll(main_ctx, true);   /* main thread, BQL held: its home */
    }
    /* [endregion] */
    CHECK_EQ("the work ran in the IOThread's own thread", w.tid,
             iothread_get_thread_id(it));
    CHECK("in work_bh(), the current context is the IOThread's",
          w.current == io_ctx);
    CHECK("in work_bh(), qemu_in_iothread() is true, the BQL not held",
          w.in_iothread && !w.bql_held);
    CHECK_EQ("the answer came back correct", w.sum, 500500);
    CHECK_EQ("the reply ran in the main loop's thread", w.reply_tid,
             tut_gettid());

    /* [region: stop] */
    iothread_stop(it);          /* a BH that ends its loop; then join */
    iothread_stop(it);          /* idempotent */
    iothread_destroy(it);       /* frees it and its context */
    /* [endregion] */
    CHECK("a destroyed IOThread is gone", iothread_by_id("io0") == NULL);

    /* Open it in https://ui.perfetto.dev: one track per thread. */
    CHECK("the Perfetto trace ch03-iothread-basics.json was written",
          aiolab_trace_write_json("ch03-iothread-basics.json", 0,
                                  &error_abort));
    aio_set_event_notifier(main_ctx, &w.reply, NULL, NULL, NULL);
    event_notifier_cleanup(&w.reply);
    bql_unlock();
    return 0;
}

/* cc -Ic/include tutorial/ch08-changing-aiocontexts/solution/exercise-follow.c -o build/exercise-follow-solution -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch08-changing-aiocontexts/solution/exercise-follow.c - SOLUTION: make
 * an export follow its node.
 *
 * A toy export serves node "disk" to a client.  The client's "socket" is
 * an EventNotifier: the client sets it to send a request, and the
 * export's handler, registered in the node's AioContext, reads a block
 * for it.  The main loop moves the node to io0, then io1, then back to
 * the main loop.  As given, the handler stays in the main loop: the
 * export serves a node that lives in another thread from the wrong one.
 *
 * Write export_detach() and export_attached(), the AioContext notifier
 * the export registered on its BlockBackend.
 */
#include "../../tutorial.h"
#include <aiolab/aiolab.h>

typedef struct Export {
    BlockBackend *blk;
    AioContext *ctx;                /* where the handler is registered */
    EventNotifier req;              /* the client's "socket" */
    char buf[512];
    QEMUIOVector qiov;
    AioContext *served_in;          /* atomic: the last request's context */
    int served;                     /* atomic */
} Export;

static void export_read_done(void *opaque, int ret)
{
    Export *e = opaque;

    __atomic_store_n(&e->served_in, qemu_get_current_aio_context(),
                     __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&e->served, 1, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

/* A request from the client, in the export's context. */
static void export_request(EventNotifier *n)
{
    Export *e = container_of(n, Export, req);

    if (event_notifier_test_and_clear(n)) {
        blk_aio_preadv(e->blk, 0, &e->qiov, 0, export_read_done, e);
    }
}

/*
 * Main loop, the node drained: it is leaving e->ctx.  The drain has
 * waited for the export's reads; the client sends nothing meanwhile (a
 * real export also stops its client coroutines: drained_begin/poll, as
 * follow.c's generator does).  Removing a handler from another thread's
 * context is allowed: aio_set_event_notifier() may be called anywhere.
 */
static void export_detach(void *opaque)
{
    Export *e = opaque;

    aio_set_event_notifier(e->ctx, &e->req, NULL, NULL, NULL);
    e->ctx = NULL;
}

/* Main loop, the node drained: it now lives in @new_ctx.  (QEMU's NBD
 * server does the same in nbd/server.c: blk_aio_attached().) */
static void export_attached(AioContext *new_ctx, void *opaque)
{
    Export *e = opaque;

    e->ctx = new_ctx;
    aio_set_event_notifier(new_ctx, &e->req, export_request, NULL, NULL);
}

/* --- the test rig below: no need to change it --------------------------- */

static int get(int *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

/* The client sends @n requests, one at a time; returns how many were
 * served in @where. */
static int client(Export *e, int n, AioContext *where)
{
    int in_place = 0;

    for (int i = 0; i < n; i++) {
        int before = get(&e->served);

        event_notifier_set(&e->req);
        AIO_WAIT_WHILE(NULL, get(&e->served) == before);
        in_place += __atomic_load_n(&e->served_in, __ATOMIC_SEQ_CST) ==
                    where;
    }
    return in_place;
}

int main(void)
{
    const char *names[3] = { "io0", "io1", "main loop" };
    AioContext *to[3];
    BlockDriverState *bs;
    IOThread *io0, *io1;
    Export e = { 0 };

    qemu_init_main_loop(&error_abort);
    bql_lock();
    io0 = iothread_create("io0", &error_abort);
    io1 = iothread_create("io1", &error_abort);
    to[0] = iothread_get_aio_context(io0);
    to[1] = iothread_get_aio_context(io1);
    to[2] = qemu_get_aio_context();
    bs = bdrv_open(NULL, NULL, "driver=null-co,size=1M,node-name=disk",
                   BDRV_O_RDWR, &error_abort);

    e.blk = blk_new(qemu_get_aio_context());
    blk_insert_bs(e.blk, bs, &error_abort);
    blk_set_allow_aio_context_change(e.blk, true);
    blk_add_aio_context_notifier(e.blk, export_attached, export_detach, &e);
    qemu_iovec_init_buf(&e.qiov, e.buf, sizeof(e.buf));
    event_notifier_init(&e.req, false);
    e.ctx = qemu_get_aio_context();
    aio_set_event_notifier(e.ctx, &e.req, export_request, NULL, NULL);
    CHECK_EQ("in the main loop, the export serves there", client(&e, 5,
             qemu_get_aio_context()), 5);

    for (int i = 0; i < 3; i++) {
        char claim[96];

        bdrv_try_change_aio_context(bs, to[i], NULL, &error_abort);
        snprintf(claim, sizeof(claim), "node moved to %s: every request is "
                 "served there", names[i]);
        CHECK_EQ_HINT(claim, client(&e, 5, to[i]), 5,
                      "the export's handler must follow the node: detach "
                      "it from the old context, register it in the new "
                      "one (aio_set_event_notifier)");
    }

    blk_remove_aio_context_notifier(e.blk, export_attached, export_detach,
                                    &e);
    aio_set_event_notifier(e.ctx, &e.req, NULL, NULL, NULL);
    blk_unref(e.blk);
    event_notifier_cleanup(&e.req);
    bdrv_unref(bs);
    iothread_destroy(io0);
    iothread_destroy(io1);
    bql_unlock();
    return 0;
}

/* cc -Ic/include tutorial/ch08-changing-aiocontexts/follow.c -o build/follow -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch08-changing-aiocontexts/follow.c - an I/O generator follows its node.
 *
 * The generator stands in for a block export (NBD, vhost-user-blk): it
 * has a BlockBackend of its own on node "disk" and an event source (a
 * timer, where an export has its client's socket) in the node's
 * AioContext, which sends a read every millisecond.  The main loop moves
 * the node main loop -> io0 -> io1 -> main loop with
 * bdrv_try_change_aio_context(); the generator follows through the
 * AioContext notifiers of its BlockBackend.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

typedef struct Gen {
    BlockBackend *blk;
    AioContext *ctx;            /* where its timer lives */
    QEMUTimer *timer;
    bool quiesced, idle;        /* atomic: see drained_begin/poll */
    int in_flight, done;        /* atomic */
    int done_in[3];             /* atomic: completions per context */
    int elsewhere;              /* atomic: completions not in ctx */
    char log[64];               /* main loop: "d" detach, "a" attach */
    int busy_at_detach;         /* requests in flight at a detach */
    char buf[512];
    QEMUIOVector qiov;
} Gen;

static AioContext *ctxs[3];     /* main loop, io0, io1 */

static void read_done(void *opaque, int ret)
{
    Gen *g = opaque;
    AioContext *here = qemu_get_current_aio_context();

    for (int i = 0; i < 3; i++) {
        if (here == ctxs[i]) {
            __atomic_fetch_add(&g->done_in[i], 1, __ATOMIC_SEQ_CST);
        }
    }
    if (here != __atomic_load_n(&g->ctx, __ATOMIC_SEQ_CST)) {
        __atomic_fetch_add(&g->elsewhere, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_fetch_sub(&g->in_flight, 1, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&g->done, 1, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

/* Every millisecond, in the generator's context: one read. */
static void tick(void *opaque)
{
    Gen *g = opaque;

    if (__atomic_load_n(&g->quiesced, __ATOMIC_SEQ_CST)) {
        __atomic_store_n(&g->idle, true, __ATOMIC_SEQ_CST);
        aio_wait_kick();                /* the drain polls for this */
        return;                         /* not re-armed */
    }
    __atomic_fetch_add(&g->in_flight, 1, __ATOMIC_SEQ_CST);
    blk_aio_preadv(g->blk, 0, &g->qiov, 0, read_done, g);
    timer_mod(g->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1);
}

/* --- quiescing: BlockDevOps, as QEMU's exports have them ----------------- */

static void gen_drained_begin(void *opaque)
{
    Gen *g = opaque;

    __atomic_store_n(&g->idle, false, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g->quiesced, true, __ATOMIC_SEQ_CST);
}

/* Busy until its tick has stopped and its reads have completed. */
static bool gen_drained_poll(void *opaque)
{
    Gen *g = opaque;

    return !__atomic_load_n(&g->idle, __ATOMIC_SEQ_CST) ||
           __atomic_load_n(&g->in_flight, __ATOMIC_SEQ_CST) > 0;
}

static void gen_drained_end(void *opaque)
{
    Gen *g = opaque;

    __atomic_store_n(&g->quiesced, false, __ATOMIC_SEQ_CST);
    timer_mod(g->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1);
}

static const BlockDevOps gen_ops = {
    .drained_begin = gen_drained_begin,
    .drained_poll = gen_drained_poll,
    .drained_end = gen_drained_end,
};

/* --- following the node: AioContext notifiers ----------------------------- */

/* [region: notifiers] */
/* Main loop, the node drained: leave the old context. */
static void gen_detach(void *opaque)
{
    Gen *g = opaque;

    strcat(g->log, "d");
    g->busy_at_detach += __atomic_load_n(&g->in_flight, __ATOMIC_SEQ_CST);
    timer_free(g->timer);               /* idle: it cannot be running */
    g->timer = NULL;
}

/* Main loop, the node drained: settle in the new one. */
static void gen_attached(AioContext *new_ctx, void *opaque)
{
    Gen *g = opaque;

    strcat(g->log, "a");
    __atomic_store_n(&g->ctx, new_ctx, __ATOMIC_SEQ_CST);
    g->timer = aio_timer_new(new_ctx, QEMU_CLOCK_REALTIME, SCALE_MS, tick,
                             g);        /* armed by drained_end */
}
/* [endregion] */

static void gen_start(Gen *g, BlockDriverState *bs)
{
    memset(g, 0, sizeof(*g));
    qemu_iovec_init_buf(&g->qiov, g->buf, sizeof(g->buf));
    /* [region: start] */
    g->blk = blk_new(bdrv_get_aio_context(bs));
    blk_insert_bs(g->blk, bs, &error_abort);
    blk_set_disable_request_queuing(g->blk, true);
    blk_set_allow_aio_context_change(g->blk, true);
    blk_set_dev_ops(g->blk, &gen_ops, g);
    blk_add_aio_context_notifier(g->blk, gen_attached, gen_detach, g);
    g->ctx = bdrv_get_aio_context(bs);
    g->timer = aio_timer_new(g->ctx, QEMU_CLOCK_REALTIME, SCALE_MS, tick,
                             g);
    timer_mod(g->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1);
    /* [endregion] */
}

static int get(int *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

/* Let the generator send @n more reads (the main loop keeps running). */
static void gen_wait(Gen *g, int n)
{
    int target = get(&g->done) + n;

    AIO_WAIT_WHILE(NULL, get(&g->done) < target);
}

int main(void)
{
    const char *names[3] = { "main loop", "io0", "io1" };
    int route[4] = { 1, 2, 0 }, before[3], moves = 0;
    IOThread *io0, *io1;
    BlockDriverState *bs;
    Gen g;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    io0 = iothread_create("io0", &error_abort);
    io1 = iothread_create("io1", &error_abort);
    ctxs[0] = qemu_get_aio_context();
    ctxs[1] = iothread_get_aio_context(io0);
    ctxs[2] = iothread_get_aio_context(io1);
    bs = bdrv_open(NULL, NULL, "driver=null-co,size=1M,latency-ns=200000,"
                   "node-name=disk", BDRV_O_RDWR, &error_abort);
    gen_start(&g, bs);
    gen_wait(&g, 20);
    CHECK("the generator runs in the node's context, the main loop's",
          get(&g.done_in[0]) >= 20 && get(&g.elsewhere) == 0);

    for (int i = 0; i < 3; i++) {
        int to = route[i];

        memcpy(before, g.done_in, sizeof(before));
        /* [region: move] */
        bdrv_try_change_aio_context(bs, ctxs[to], NULL, &error_abort);
        /* [endregion] */
        moves++;
        printf("moved to %-9s: node, BlockBackend and generator there: "
               "%d, %d, %d; notifier log \"%s\"\n", names[to],
               bdrv_get_aio_context(bs) == ctxs[to],
               blk_get_aio_context(g.blk) == ctxs[to], g.ctx == ctxs[to],
               g.log);
        CHECK("node, BlockBackend and generator all moved",
              bdrv_get_aio_context(bs) == ctxs[to] &&
              blk_get_aio_context(g.blk) == ctxs[to] && g.ctx == ctxs[to]);
        gen_wait(&g, 20);
        CHECK("the reads go on, now completing in the new context only",
              get(&g.done_in[to]) - before[to] >= 20 &&
              get(&g.elsewhere) == 0);
    }
    printf("completions: main loop %d, io0 %d, io1 %d\n", get(&g.done_in[0]),
           get(&g.done_in[1]), get(&g.done_in[2]));
    CHECK("each move called detach, then attached, once: \"dadada\"",
          strcmp(g.log, "dadada") == 0 && moves == 3);
    CHECK_EQ("at every detach the generator had nothing in flight (the "
             "move drained it)", g.busy_at_detach, 0);

    blk_remove_aio_context_notifier(g.blk, gen_attached, gen_detach, &g);
    blk_drain(g.blk);                   /* quiesces: the tick stops */
    timer_free(g.timer);
    blk_set_dev_ops(g.blk, NULL, NULL);
    blk_unref(g.blk);
    CHECK_EQ("no read was lost", get(&g.in_flight), 0);
    bdrv_unref(bs);
    iothread_destroy(io0);
    iothread_destroy(io1);
    bql_unlock();
    return 0;
}

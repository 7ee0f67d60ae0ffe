/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-export.c - the block export framework (aiolab/export.h):
 * add, lookup, options and their errors, the IOThread an export runs in
 * (fixed-iothread), following the node between contexts, drained
 * sections reaching the driver, references that outlive the shutdown
 * request, flush at deletion.  The protocol drivers have their own tests
 * (tests/clients for NBD); here a small "test" export driver registered
 * with blk_exp_driver_register() stands in for them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <aiolab/aiolab.h>
#include "harness.h"

static AioContext *main_ctx;

static void setup(void)
{
    qemu_init_main_loop(&error_abort);
    bql_lock();
    main_ctx = qemu_get_aio_context();
}

/* --- a test export driver ---------------------------------------------- */

typedef struct TestExport {
    BlockExport common;
    char *label;                /* its own option: label= */
    int64_t conns;              /* connections= : extra references */
    int drained_begins, drained_ends, detaches, attaches;
    AioContext *attached_ctx;
    bool shutdown_requested;
} TestExport;

static int test_exp_created, test_exp_deleted;
static bool test_exp_fail_create;

static const char *const test_exp_options[] = { "label", "connections",
                                                NULL };

static int test_exp_create(BlockExport *exp, BlockExportOptions *opts,
                           Error **errp)
{
    TestExport *t = (TestExport *)exp;
    const char *label = blk_exp_opt_get(opts, "label");
    int64_t i;

    if (!blk_exp_opt_get_int(opts, "connections", 0, 8, &t->conns, errp)) {
        return -EINVAL;
    }
    if (test_exp_fail_create) {
        error_setg(errp, "test driver refuses");
        return -EINVAL;
    }
    t->label = strdup(label ? label : "");
    for (i = 0; i < t->conns; i++) {
        blk_exp_ref(exp);       /* as a connection holds one */
    }
    test_exp_created++;
    return 0;
}

static void test_exp_delete(BlockExport *exp)
{
    TestExport *t = (TestExport *)exp;

    free(t->label);
    test_exp_deleted++;
}

/* A connection goes away later, in a BH, as a real disconnect would. */
static void test_exp_disconnect_bh(void *opaque)
{
    blk_exp_unref(opaque);
}

static void test_exp_request_shutdown(BlockExport *exp)
{
    TestExport *t = (TestExport *)exp;

    t->shutdown_requested = true;
    for (; t->conns > 0; t->conns--) {
        aio_bh_schedule_oneshot(main_ctx, test_exp_disconnect_bh, exp);
    }
}

static void test_exp_drained_begin(BlockExport *exp)
{
    ((TestExport *)exp)->drained_begins++;
}

static void test_exp_drained_end(BlockExport *exp)
{
    ((TestExport *)exp)->drained_ends++;
}

static void test_exp_detach(BlockExport *exp)
{
    ((TestExport *)exp)->detaches++;
}

static void test_exp_attach(BlockExport *exp, AioContext *ctx)
{
    TestExport *t = (TestExport *)exp;

    t->attaches++;
    t->attached_ctx = ctx;
}

static const BlockExportDriver test_exp_driver = {
    .type = "test",
    .instance_size = sizeof(TestExport),
    .options = test_exp_options,
    .create = test_exp_create,
    .delete = test_exp_delete,
    .request_shutdown = test_exp_request_shutdown,
    .drained_begin = test_exp_drained_begin,
    .drained_end = test_exp_drained_end,
    .detach_aio_context = test_exp_detach,
    .attach_aio_context = test_exp_attach,
};

static void setup_driver(void)
{
    setup();
    blk_exp_driver_register(&test_exp_driver);
}

static BlockDriverState *null_node(const char *name, bool read_only)
{
    char opts[128];

    snprintf(opts, sizeof(opts), "driver=null-co,size=1M,node-name=%s",
             name);
    return bdrv_open(NULL, NULL, opts, read_only ? 0 : BDRV_O_RDWR,
                     &error_abort);
}

static char *deleted_ids[8];
static int n_deleted_ids;

static void on_deleted(const char *id, void *opaque)
{
    deleted_ids[n_deleted_ids++] = strdup(id);
}

/* --- cases ---------------------------------------------------------------- */

static void test_add_find_shutdown(void)
{
    BlockDriverState *bs;
    BlockExport *exp, *exp2;

    setup_driver();
    blk_exp_set_deleted_listener(on_deleted, NULL);
    bs = null_node("n0", false);
    ASSERT_PTR_EQ(blk_exp_next(NULL), NULL);
    exp = blk_exp_add("type=test,id=e0,node-name=n0,writable=on,label=a,,b",
                      &error_abort);
    ASSERT_EQ(test_exp_created, 1);
    ASSERT_STR_EQ(((TestExport *)exp)->label, "a,b");
    ASSERT_STR_EQ(exp->id, "e0");
    ASSERT_STR_EQ(exp->drv->type, "test");
    ASSERT_TRUE(exp->writable);
    ASSERT_FALSE(exp->writethrough);
    ASSERT_TRUE(exp->user_owned);
    ASSERT_EQ(exp->refcount, 1);
    ASSERT_PTR_EQ(exp->ctx, main_ctx);
    ASSERT_PTR_EQ(blk_bs(exp->blk), bs);
    ASSERT_PTR_EQ(blk_exp_find("e0"), exp);
    ASSERT_PTR_EQ(blk_exp_find("e1"), NULL);
    /* the node gained the BlockBackend as a parent */
    ASSERT_EQ(aiolab_bdrv_parent_count(bs), 1);

    exp2 = blk_exp_add("type=test,id=e1,node-name=n0", &error_abort);
    ASSERT_FALSE(exp2->writable);
    ASSERT_PTR_EQ(blk_exp_next(NULL), exp2);    /* newest first */
    ASSERT_PTR_EQ(blk_exp_next(exp2), exp);
    ASSERT_PTR_EQ(blk_exp_next(exp), NULL);

    blk_exp_request_shutdown(exp);
    ASSERT_TRUE(((TestExport *)exp)->shutdown_requested);
    ASSERT_FALSE(exp->user_owned);
    ASSERT_EQ(exp->refcount, 0);
    /* Deleted in a main-loop BH, not inside the call. */
    ASSERT_PTR_EQ(blk_exp_find("e0"), exp);
    ASSERT_EQ(test_exp_deleted, 0);
    blk_exp_request_shutdown(exp);      /* a second request: nothing */
    while (aio_poll(main_ctx, false)) {
    }
    ASSERT_EQ(test_exp_deleted, 1);
    ASSERT_PTR_EQ(blk_exp_find("e0"), NULL);
    ASSERT_EQ(n_deleted_ids, 1);
    ASSERT_STR_EQ(deleted_ids[0], "e0");
    ASSERT_EQ(aiolab_bdrv_parent_count(bs), 1);

    blk_exp_close_all();
    ASSERT_EQ(test_exp_deleted, 2);
    ASSERT_PTR_EQ(blk_exp_next(NULL), NULL);
    ASSERT_STR_EQ(deleted_ids[1], "e1");
    ASSERT_EQ(aiolab_bdrv_parent_count(bs), 0);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(bs), 1);
    bdrv_unref(bs);
}

static void expect_error(const char *options, const char *msg)
{
    Error *err = NULL;

    ASSERT_PTR_EQ(blk_exp_add(options, &err), NULL);
    if (!err) {
        harness_fail(__FILE__, __LINE__, "no error for '%s'", options);
    }
    ASSERT_STR_EQ(error_get_pretty(err), msg);
    error_free(err);
}

static void test_errors(void)
{
    BlockDriverState *bs, *ro;

    setup_driver();
    bs = null_node("n0", false);
    ro = null_node("ro0", true);
    blk_exp_add("type=test,id=e0,node-name=n0", &error_abort);
    expect_error("id=x,node-name=n0", "Parameter 'type' is missing");
    expect_error("type=fuse,id=x,node-name=n0",
                 "export type 'fuse' is not available");
    expect_error("type=floppy,id=x,node-name=n0",
                 "Parameter 'type' does not accept value 'floppy'");
    expect_error("type=test,node-name=n0", "Parameter 'id' is missing");
    expect_error("type=test,id=x", "Parameter 'node-name' is missing");
    expect_error("type=test,id=0x,node-name=n0", "Invalid block export id");
    expect_error("type=test,id=a b,node-name=n0", "Invalid block export id");
    expect_error("type=test,id=e0,node-name=n0",
                 "Block export id 'e0' is already in use");
    expect_error("type=test,id=x,node-name=nope",
                 "Cannot find device='' nor node-name='nope'");
    expect_error("type=test,id=x,node-name=n0,lable=a",
                 "Parameter 'lable' is unexpected");
    expect_error("type=test,id=x,node-name=n0,writable=maybe",
                 "Parameter 'writable' expects 'on' or 'off'");
    expect_error("type=test,id=x,node-name=ro0,writable=on",
                 "Cannot export read-only node as writable");
    expect_error("type=test,id=x,node-name=n0,iothread=io9",
                 "iothread \"io9\" not found");
    expect_error("type=test,id=x,node-name=n0,connections=9",
                 "Parameter 'connections' expects an integer in [0, 8] "
                 "(got '9')");
    expect_error("type=test,id=x,node-name=n0,id=y",
                 "Invalid option string 'type=test,id=x,node-name=n0,id=y': "
                 "'id' given twice");
    test_exp_fail_create = true;
    expect_error("type=test,id=x,node-name=n0", "test driver refuses");
    test_exp_fail_create = false;
    /* Nothing was left behind by the failures. */
    ASSERT_EQ(test_exp_created, 1);
    ASSERT_PTR_EQ(blk_exp_find("x"), NULL);
    ASSERT_EQ(aiolab_bdrv_parent_count(bs), 1);
    ASSERT_EQ(aiolab_bdrv_parent_count(ro), 0);
    /* A read-only export of a read-only node is fine. */
    blk_exp_add("type=test,id=r,node-name=ro0", &error_abort);
    blk_exp_close_all();
    ASSERT_EQ(test_exp_deleted, 2);
    bdrv_unref(bs);
    bdrv_unref(ro);
}

static void test_iothread(void)
{
    IOThread *io0 = NULL, *io1 = NULL;
    BlockDriverState *bs;
    BlockExport *exp;
    TestExport *t;
    AioContext *ctx0, *ctx1;

    setup_driver();
    io0 = iothread_create("io0", &error_abort);
    io1 = iothread_create("io1", &error_abort);
    ctx0 = iothread_get_aio_context(io0);
    ctx1 = iothread_get_aio_context(io1);
    bs = null_node("n0", false);
    exp = blk_exp_add("type=test,id=e0,node-name=n0,iothread=io0",
                      &error_abort);
    t = (TestExport *)exp;
    ASSERT_PTR_EQ(exp->ctx, ctx0);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), ctx0);
    ASSERT_PTR_EQ(blk_get_aio_context(exp->blk), ctx0);

    /* Without fixed-iothread the export follows its node. */
    bdrv_try_change_aio_context(bs, ctx1, NULL, &error_abort);
    ASSERT_EQ(t->detaches, 1);
    ASSERT_EQ(t->attaches, 1);
    ASSERT_PTR_EQ(t->attached_ctx, ctx1);
    ASSERT_PTR_EQ(exp->ctx, ctx1);
    ASSERT_PTR_EQ(blk_get_aio_context(exp->blk), ctx1);
    blk_exp_close_all();
    bdrv_try_change_aio_context(bs, main_ctx, NULL, &error_abort);

    /* fixed-iothread=on: the export holds its node in place. */
    exp = blk_exp_add("type=test,id=e1,node-name=n0,iothread=io0,"
                      "fixed-iothread=on", &error_abort);
    t = (TestExport *)exp;
    ASSERT_PTR_EQ(exp->ctx, ctx0);
    {
        Error *err = NULL;

        ASSERT_EQ(bdrv_try_change_aio_context(bs, ctx1, NULL, &err),
                  -EPERM);
        ASSERT_STR_EQ(error_get_pretty(err),
                      "Cannot change iothread of active block backend");
        error_free(err);
    }
    ASSERT_EQ(t->attaches, 0);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), ctx0);

    /* A second export on the same node and another IOThread: the move
     * is refused; fixed-iothread=on fails, off stays in io0. */
    {
        Error *err = NULL;

        ASSERT_PTR_EQ(blk_exp_add("type=test,id=e2,node-name=n0,"
                                  "iothread=io1,fixed-iothread=on", &err),
                      NULL);
        ASSERT_STR_EQ(error_get_pretty(err),
                      "Cannot change iothread of active block backend");
        error_free(err);
    }
    exp = blk_exp_add("type=test,id=e3,node-name=n0,iothread=io1",
                      &error_abort);
    ASSERT_PTR_EQ(exp->ctx, ctx0);
    blk_exp_close_all();
    ASSERT_EQ(test_exp_deleted, 3);
    bdrv_try_change_aio_context(bs, main_ctx, NULL, &error_abort);
    bdrv_unref(bs);
    iothread_destroy(io0);
    iothread_destroy(io1);
}

static void test_drained(void)
{
    BlockDriverState *bs;
    BlockExport *exp;
    TestExport *t;

    setup_driver();
    bs = null_node("n0", false);
    exp = blk_exp_add("type=test,id=e0,node-name=n0", &error_abort);
    t = (TestExport *)exp;
    bdrv_drained_begin(bs);
    ASSERT_EQ(t->drained_begins, 1);
    bdrv_drained_begin(bs);             /* nested: no second call */
    ASSERT_EQ(t->drained_begins, 1);
    bdrv_drained_end(bs);
    ASSERT_EQ(t->drained_ends, 0);
    bdrv_drained_end(bs);
    ASSERT_EQ(t->drained_ends, 1);
    /* An export added inside a drained section starts drained. */
    bdrv_drained_begin(bs);
    t = (TestExport *)blk_exp_add("type=test,id=e1,node-name=n0",
                                  &error_abort);
    ASSERT_EQ(t->drained_begins, 1);
    bdrv_drained_end(bs);
    ASSERT_EQ(t->drained_ends, 1);
    blk_exp_close_all();
    bdrv_unref(bs);
}

static void test_connections_outlive_shutdown(void)
{
    BlockDriverState *bs;
    BlockExport *exp;

    setup_driver();
    bs = null_node("n0", false);
    exp = blk_exp_add("type=test,id=e0,node-name=n0,connections=3",
                      &error_abort);
    ASSERT_EQ(exp->refcount, 4);
    blk_exp_request_shutdown(exp);
    ASSERT_EQ(exp->refcount, 3);
    ASSERT_FALSE(exp->user_owned);
    ASSERT_EQ(test_exp_deleted, 0);
    /* close_all waits for the disconnects (BHs) and the deletion. */
    blk_exp_close_all();
    ASSERT_EQ(test_exp_deleted, 1);
    ASSERT_PTR_EQ(blk_exp_find("e0"), NULL);
    bdrv_unref(bs);
}

static void test_flush_at_delete(void)
{
    BlockDriverState *bs;
    AiolabTestDriverStats st;

    setup_driver();
    bs = bdrv_open(NULL, NULL, "driver=aiolab-test,size=1M,node-name=t0",
                   BDRV_O_RDWR, &error_abort);
    blk_exp_add("type=test,id=ro,node-name=t0", &error_abort);
    blk_exp_close_all();
    ASSERT_TRUE(aiolab_test_driver_get_stats(bs, &st));
    ASSERT_EQ(st.flushes, 0);          /* read-only: nothing to flush */
    blk_exp_add("type=test,id=rw,node-name=t0,writable=on", &error_abort);
    blk_exp_close_all();
    ASSERT_TRUE(aiolab_test_driver_get_stats(bs, &st));
    ASSERT_EQ(st.flushes, 1);
    bdrv_unref(bs);
}

static void death_unref_twice(void)
{
    BlockExport *exp;

    setup_driver();
    null_node("n0", false);
    exp = blk_exp_add("type=test,id=e0,node-name=n0", &error_abort);
    blk_exp_unref(exp);
    blk_exp_unref(exp);
}

static void death_register_twice(void)
{
    setup_driver();
    blk_exp_driver_register(&test_exp_driver);
}

static void death_add_without_bql(void)
{
    qemu_init_main_loop(&error_abort);
    blk_exp_add("type=test,id=e0,node-name=n0", NULL);
}

static const TestCase tests[] = {
    { "/export/add-find-shutdown", test_add_find_shutdown },
    { "/export/errors", test_errors },
    { "/export/iothread", test_iothread },
    { "/export/drained", test_drained },
    { "/export/connections-outlive-shutdown",
      test_connections_outlive_shutdown },
    { "/export/flush-at-delete", test_flush_at_delete },
    { "/export/death/unref-twice", death_unref_twice,
      .death = "export 'e0' unreferenced more often than referenced" },
    { "/export/death/register-twice", death_register_twice,
      .death = "export type 'test' registered twice" },
    { "/export/death/no-bql", death_add_without_bql,
      .death = "blk_exp_add() requires the BQL" },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}

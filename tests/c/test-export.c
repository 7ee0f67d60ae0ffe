/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-export.c - the block export framework (aiolab/export.h):
 * add, lookup, options and their errors, the IOThread an export runs in
 * (fixed-iothread), following the node between contexts, drained
 * sections reaching the driver, references that outlive the shutdown
 * request, flush at deletion.  The protocol drivers have their own tests
 * (tests/nbd, tests/vhost); here a small "test" export driver registered
 * with blk_exp_driver_register() stands in for them.  One case drives
 * the vhost-user-blk export from a small C front-end in a thread, for a
 * teardown race no outside client can time: a queue's IOThread between
 * its last completion and the deferred interrupt (call fd) write, while
 * the main loop deletes the export or handles the front-end's hang-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
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

/* --- vhost-user-blk: teardown while an IOThread finishes a completion --- */

/*
 * A minimal vhost-user front-end (docs/interop/vhost-user.rst; the
 * Python one is tests/vhost/vuclient.py): one split ring of 64 in a 2 MiB
 * memfd, one virtio-blk read.  Runs in its own thread with blocking
 * socket I/O while the test's main thread runs the main loop.
 */
enum {
    VU_GET_FEATURES = 1, VU_SET_FEATURES = 2, VU_SET_OWNER = 3,
    VU_SET_MEM_TABLE = 5, VU_SET_VRING_NUM = 8, VU_SET_VRING_ADDR = 9,
    VU_SET_VRING_BASE = 10, VU_SET_VRING_KICK = 12, VU_SET_VRING_CALL = 13,
    VU_GET_PROTOCOL_FEATURES = 15, VU_SET_PROTOCOL_FEATURES = 16,
    VU_SET_VRING_ENABLE = 18,
};
#define VU_VERSION      0x1
#define VU_REPLY        0x4
#define VU_NEED_REPLY   0x8
#define VU_PF_REPLY_ACK (1ull << 3)
#define VU_F_PROTOCOL   (1ull << 30)
#define VU_F_VERSION_1  (1ull << 32)
#define RAM_SIZE        (2 << 20)
/* Flags shared between the threads (sequentially consistent). */
#define qatomic_set(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define qatomic_read(p)   __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define RING_BASE       0x40000
#define RING_NUM        64

typedef struct VuFront {
    const char *path;
    int sock, kick, call;
    uint8_t *ram;
    int ram_fd;
    bool ready;             /* set up, the request kicked */
    bool failed;
    char why[160];
} VuFront;

static bool vu_front_send(VuFront *f, uint32_t req, uint32_t flags,
                          const void *payload, uint32_t size, int fd)
{
    uint8_t buf[12 + 64];
    struct iovec iov = { buf, 12 + size };
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } cm;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    memcpy(buf, &req, 4);
    memcpy(buf + 4, &flags, 4);
    memcpy(buf + 8, &size, 4);
    if (size) {
        memcpy(buf + 12, payload, size);
    }
    if (fd >= 0) {
        memset(&cm, 0, sizeof(cm));
        mh.msg_control = cm.b;
        mh.msg_controllen = sizeof(cm.b);
        cm.h.cmsg_level = SOL_SOCKET;
        cm.h.cmsg_type = SCM_RIGHTS;
        cm.h.cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(&cm.h), &fd, sizeof(int));
    }
    return sendmsg(f->sock, &mh, MSG_NOSIGNAL) == (ssize_t)(12 + size);
}

/* The u64 reply (or ack) to @req. */
static bool vu_front_reply(VuFront *f, uint32_t req, uint64_t *v)
{
    uint8_t buf[20];
    size_t have = 0;
    uint32_t r, flags, size;

    while (have < sizeof(buf)) {
        ssize_t n = recv(f->sock, buf + have, sizeof(buf) - have, 0);

        if (n <= 0) {
            return false;
        }
        have += n;
    }
    memcpy(&r, buf, 4);
    memcpy(&flags, buf + 4, 4);
    memcpy(&size, buf + 8, 4);
    memcpy(v, buf + 12, 8);
    return r == req && (flags & VU_REPLY) && size == 8;
}

static bool vu_front_u64(VuFront *f, uint32_t req, uint64_t v, int fd,
                         bool ack)
{
    uint64_t r;

    if (!vu_front_send(f, req, VU_VERSION | (ack ? VU_NEED_REPLY : 0), &v,
                       8, fd)) {
        return false;
    }
    return !ack || (vu_front_reply(f, req, &r) && r == 0);
}

static bool vu_front_state(VuFront *f, uint32_t req, uint32_t num,
                           bool ack)
{
    uint32_t st[2] = { 0, num };
    uint64_t r;

    if (!vu_front_send(f, req, VU_VERSION | (ack ? VU_NEED_REPLY : 0), st,
                       8, -1)) {
        return false;
    }
    return !ack || (vu_front_reply(f, req, &r) && r == 0);
}

#define FRONT_FAIL(f, step) do {                                          \
        snprintf((f)->why, sizeof((f)->why), "front-end: %s failed (%s)", \
                 step, strerror(errno));                                  \
        qatomic_set(&(f)->failed, true);                                  \
        return NULL;                                                      \
    } while (0)

static void *vu_front_thread(void *opaque)
{
    VuFront *f = opaque;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    uint64_t offered, pf, cnt;
    uintptr_t u = (uintptr_t)f->ram;
    uint64_t addr[5];
    uint32_t idx_flags[2] = { 0, 0 };
    uint8_t *desc = f->ram + RING_BASE, *avail = desc + 0x1000;
    uint8_t *hdr = desc + 0x3000;
    uint64_t data = RING_BASE + 0x10000;
    uint16_t one = 1;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
    f->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(f->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        FRONT_FAIL(f, "connect");
    }
    if (!vu_front_send(f, VU_GET_FEATURES, VU_VERSION, NULL, 0, -1) ||
        !vu_front_reply(f, VU_GET_FEATURES, &offered) ||
        !(offered & VU_F_PROTOCOL)) {
        FRONT_FAIL(f, "GET_FEATURES");
    }
    if (!vu_front_send(f, VU_GET_PROTOCOL_FEATURES, VU_VERSION, NULL, 0,
                       -1) ||
        !vu_front_reply(f, VU_GET_PROTOCOL_FEATURES, &pf) ||
        !(pf & VU_PF_REPLY_ACK)) {
        FRONT_FAIL(f, "GET_PROTOCOL_FEATURES");
    }
    if (!vu_front_u64(f, VU_SET_PROTOCOL_FEATURES, VU_PF_REPLY_ACK, -1,
                      false) ||
        !vu_front_send(f, VU_SET_OWNER, VU_VERSION, NULL, 0, -1) ||
        !vu_front_u64(f, VU_SET_FEATURES,
                      (offered & VU_F_VERSION_1) | VU_F_PROTOCOL, -1, true)) {
        FRONT_FAIL(f, "SET_FEATURES");
    }
    /* SET_MEM_TABLE: u32 nregions, u32 padding, one region. */
    {
        uint8_t p[8 + 32];
        uint32_t n = 1, pad = 0;
        uint64_t reg[4] = { 0, RAM_SIZE, u, 0 };
        uint64_t r;

        memcpy(p, &n, 4);
        memcpy(p + 4, &pad, 4);
        memcpy(p + 8, reg, 32);
        if (!vu_front_send(f, VU_SET_MEM_TABLE, VU_VERSION | VU_NEED_REPLY,
                           p, sizeof(p), f->ram_fd) ||
            !vu_front_reply(f, VU_SET_MEM_TABLE, &r) || r != 0) {
            FRONT_FAIL(f, "SET_MEM_TABLE");
        }
    }
    memcpy(addr, idx_flags, 8);         /* index 0, flags 0 */
    addr[1] = u + RING_BASE;            /* desc */
    addr[2] = u + RING_BASE + 0x2000;   /* used */
    addr[3] = u + RING_BASE + 0x1000;   /* avail */
    addr[4] = 0;                        /* log */
    if (!vu_front_state(f, VU_SET_VRING_NUM, RING_NUM, true) ||
        !vu_front_state(f, VU_SET_VRING_BASE, 0, true) ||
        !vu_front_send(f, VU_SET_VRING_ADDR, VU_VERSION, addr, 40, -1) ||
        !vu_front_u64(f, VU_SET_VRING_CALL, 0, f->call, true) ||
        !vu_front_u64(f, VU_SET_VRING_KICK, 0, f->kick, true) ||
        !vu_front_state(f, VU_SET_VRING_ENABLE, 1, true)) {
        FRONT_FAIL(f, "the ring's set-up");
    }
    /* The interrupt a ring coming on sends once (vu_apply_enable). */
    while (read(f->call, &cnt, 8) == 8) {
    }
    /* One read of sector 0: header, 4 KiB buffer, status. */
    {
        uint32_t type = 0, prio = 0;
        uint64_t sector = 0;
        uint64_t d[3][2] = {
            { RING_BASE + 0x3000, 16 | (1ull << 32) },          /* NEXT */
            { data, 4096 | (3ull << 32) },                      /* NEXT|W */
            { RING_BASE + 0x3010, 1 | (2ull << 32) },           /* W */
        };

        memcpy(hdr, &type, 4);
        memcpy(hdr + 4, &prio, 4);
        memcpy(hdr + 8, &sector, 8);
        hdr[16] = 0xff;
        for (int i = 0; i < 3; i++) {
            uint16_t next = i + 1;

            memcpy(desc + 16 * i, &d[i][0], 8);
            memcpy(desc + 16 * i + 8, &d[i][1], 6);
            memcpy(desc + 16 * i + 14, &next, 2);
        }
        memset(avail + 4, 0, 2);                /* ring[0] = head 0 */
        __atomic_store_n((uint16_t *)(avail + 2), one, __ATOMIC_RELEASE);
        cnt = 1;
        if (write(f->kick, &cnt, 8) != 8) {
            FRONT_FAIL(f, "the kick");
        }
    }
    qatomic_set(&f->ready, true);
    return NULL;
}

static IOThread *race_io;
static VuFront race_front;
static bool hold_started, hold_done, torn_down, torn_down_during_hold;

static uint16_t race_used_idx(void)
{
    return __atomic_load_n((uint16_t *)(race_front.ram + RING_BASE + 0x2002),
                           __ATOMIC_ACQUIRE);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * In the export's IOThread: a defer_call section (what a thread-pool or
 * io_uring completion handler opens) around the request's completion,
 * then held open.  The completion drops the BlockBackend's in-flight
 * count - a drain in the main loop may end - but its interrupt, deferred
 * to the section's end, is still to be written to the call fd.
 */
static void hold_section_bh(void *opaque)
{
    AioContext *ctx = iothread_get_aio_context(race_io);
    int64_t until;

    defer_call_begin();
    qatomic_set(&hold_started, true);
    while (race_used_idx() == 0) {
        aio_poll(ctx, true);
    }
    /* Completed: hold until the main loop tore the export down, or long
     * enough for a main loop that waits for this context to be sure. */
    until = now_ms() + 400;
    while (!qatomic_read(&torn_down) && now_ms() < until) {
        usleep(1000);
    }
    qatomic_set(&torn_down_during_hold, qatomic_read(&torn_down));
    qatomic_set(&hold_done, true);
    defer_call_end();           /* the deferred call fd write */
}

static void run_main_loop_until(bool *flag, int64_t ms, const char *what)
{
    int64_t deadline = now_ms() + ms;

    while (!qatomic_read(flag)) {
        if (qatomic_read(&race_front.failed)) {
            harness_fail(__FILE__, __LINE__, "%s", race_front.why);
        }
        if (now_ms() > deadline) {
            harness_fail(__FILE__, __LINE__, "%s: not after %lld ms", what,
                         (long long)ms);
        }
        main_loop_wait(true);
        usleep(200);
    }
}

static bool race_deleted;

static void race_on_deleted(const char *id, void *opaque)
{
    qatomic_set(&race_deleted, true);
}

/* A second front-end: connects, asks GET_FEATURES, has its answer.  The
 * export serves one front-end at a time, so the answer means the
 * previous one's disconnect was handled completely. */
static void *vu_probe_thread(void *opaque)
{
    VuFront *f = opaque;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    uint64_t offered;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
    f->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(f->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        FRONT_FAIL(f, "the second connect");
    }
    if (!vu_front_send(f, VU_GET_FEATURES, VU_VERSION, NULL, 0, -1) ||
        !vu_front_reply(f, VU_GET_FEATURES, &offered)) {
        FRONT_FAIL(f, "the second front-end's GET_FEATURES");
    }
    qatomic_set(&f->ready, true);
    return NULL;
}

/*
 * The export (queue in IOThread io0, a node that holds each request
 * 50 ms) loses its device while its one request is in flight: the
 * export is deleted (@disconnect false) or the front-end hangs up.
 * Either stops the device: detach the queue in io0, drain.  The request
 * completes in io0 inside a held defer_call section (hold_section_bh),
 * so the drain ends while io0 has yet to write the completion's
 * interrupt to the call fd.  The device's stop must wait for io0 before
 * the export closes its copy of the call fd (disconnect) or frees the
 * queues (deletion): the teardown ends only after the section did, and
 * the interrupt reaches the front-end.  Without that wait the teardown
 * ended during the hold, and io0 then wrote through a closed fd or a
 * freed queue (ASan: heap-use-after-free).
 */
/*
 * The set-up both scenarios share: IOThread io0, node t0 (aiolab-test,
 * @node_opts appended), export vu0 on it with its queue in io0 (without
 * fixed-iothread: the node may move), and race_front connected, its ring
 * set up and one read kicked.  @kick_flags: the front-end's kick eventfd
 * flags (EFD_NONBLOCK as QEMU's, or not).
 */
static BlockDriverState *vu_export_start(char *dir, char *path, size_t size,
                                         const char *node_opts,
                                         int kick_flags)
{
    char opts[320];
    BlockDriverState *bs;
    pthread_t th;

    setup();
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, size, "%s/vu.sock", dir);
    race_io = iothread_create("io0", &error_abort);
    snprintf(opts, sizeof(opts), "driver=aiolab-test,node-name=t0,size=1M%s",
             node_opts);
    bs = bdrv_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
    snprintf(opts, sizeof(opts), "type=vhost-user-blk,id=vu0,node-name=t0,"
             "addr.type=unix,addr.path=%s,writable=on,iothread=io0", path);
    ASSERT_TRUE(blk_exp_add(opts, &error_abort) != NULL);
    blk_exp_set_deleted_listener(race_on_deleted, NULL);

    race_front.path = path;
    race_front.ram_fd = memfd_create("test-export-ram", MFD_CLOEXEC);
    ASSERT_EQ(ftruncate(race_front.ram_fd, RAM_SIZE), 0);
    race_front.ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
                          MAP_SHARED, race_front.ram_fd, 0);
    ASSERT_TRUE(race_front.ram != MAP_FAILED);
    race_front.kick = eventfd(0, EFD_CLOEXEC | kick_flags);
    race_front.call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_create(&th, NULL, vu_front_thread, &race_front);
    run_main_loop_until(&race_front.ready, 10000, "front-end set-up");
    pthread_join(th, NULL);
    return bs;
}

/* race_front hangs up; returns once a second front-end (@probe) has the
 * answer to its GET_FEATURES, i.e. the disconnect was handled. */
static void vu_export_disconnect(VuFront *probe, const char *path)
{
    pthread_t th;

    close(race_front.sock);
    probe->path = path;
    pthread_create(&th, NULL, vu_probe_thread, probe);
    run_main_loop_until(&probe->ready, 5000, "the next front-end");
    pthread_join(th, NULL);
}

/* Delete vu0 (if still there), free what vu_export_start made. */
static void vu_export_finish(BlockDriverState *bs, char *dir)
{
    if (!qatomic_read(&race_deleted)) {
        blk_exp_request_shutdown(blk_exp_find("vu0"));
        run_main_loop_until(&race_deleted, 5000, "export deletion");
    }
    blk_exp_set_deleted_listener(NULL, NULL);
    close(race_front.kick);
    close(race_front.call);
    munmap(race_front.ram, RAM_SIZE);
    close(race_front.ram_fd);
    bdrv_unref(bs);
    iothread_destroy(race_io);
    rmdir(dir);
}

static void race_run(bool disconnect)
{
    char dir[] = "/tmp/aiolab-test-export-XXXXXX", path[128];
    static VuFront probe;
    BlockDriverState *bs;
    uint64_t cnt = 0;
    uint8_t status;

    bs = vu_export_start(dir, path, sizeof(path), ",latency-ns=50000000",
                         EFD_NONBLOCK);
    aio_bh_schedule_oneshot(iothread_get_aio_context(race_io),
                            hold_section_bh, NULL);
    run_main_loop_until(&hold_started, 5000, "io0 opens its section");
    if (disconnect) {
        vu_export_disconnect(&probe, path);
    } else {
        blk_exp_request_shutdown(blk_exp_find("vu0"));
        run_main_loop_until(&race_deleted, 5000, "export deletion");
    }
    /* The check: the teardown ended only after io0's section did. */
    if (!qatomic_read(&hold_done)) {
        qatomic_set(&torn_down, true);
        harness_fail(__FILE__, __LINE__, "%s while io0 was still inside "
                     "the section of the request's completion, its call "
                     "fd write still to come: the device's stop did not "
                     "wait for the queue's IOThread", disconnect ?
                     "the front-end's disconnect was handled" :
                     "the export was deleted");
    }
    qatomic_set(&torn_down, true);
    ASSERT_FALSE(qatomic_read(&torn_down_during_hold));
    ASSERT_EQ(race_used_idx(), 1);
    status = race_front.ram[RING_BASE + 0x3010];
    ASSERT_EQ(status, 0);                       /* VIRTIO_BLK_S_OK */
    /* The completion's interrupt reached the front-end's call fd. */
    ASSERT_EQ(read(race_front.call, &cnt, 8), 8);
    ASSERT_EQ(cnt, 1);

    if (disconnect) {
        close(probe.sock);
    } else {
        close(race_front.sock);
    }
    vu_export_finish(bs, dir);
}

/*
 * One read completes (io0 read the kick: its count is 0), then the
 * front-end hangs up, which stops the device: a last look at the kick fd
 * in io0, a drain.  Then the node's AioContext is checked.
 */
static void stop_after_one_read(int kick_flags)
{
    char dir[] = "/tmp/aiolab-test-export-XXXXXX", path[128];
    static VuFront probe;
    AioContext *io0_ctx;
    BlockDriverState *bs;
    int64_t deadline;

    bs = vu_export_start(dir, path, sizeof(path), "", kick_flags);
    io0_ctx = iothread_get_aio_context(race_io);
    deadline = now_ms() + 5000;
    while (race_used_idx() != 1) {
        if (now_ms() > deadline) {
            harness_fail(__FILE__, __LINE__, "the read never completed");
        }
        main_loop_wait(true);
        usleep(200);
    }
    ASSERT_EQ(race_front.ram[RING_BASE + 0x3010], 0);   /* S_OK */
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), io0_ctx);

    vu_export_disconnect(&probe, path);
    /* QEMU's export keeps its AioContext while front-ends come and go. */
    if (bdrv_get_aio_context(bs) != io0_ctx) {
        harness_fail(__FILE__, __LINE__, "after the front-end's "
                     "disconnect node t0 left io0 (for the %s): any other "
                     "export of it in io0 now runs in the main loop",
                     bdrv_get_aio_context(bs) == main_ctx ? "main loop" :
                     "another context");
    }
    close(probe.sock);
    vu_export_finish(bs, dir);
}

/*
 * A front-end that passes a blocking kick eventfd (QEMU's are
 * non-blocking; vhost-user.rst does not say they must be).  The stop's
 * last read of the kick fd, with nothing pending, never returned: io0
 * hung, and the main loop waiting for it (the harness's timeout ends the
 * test).  The export makes received kick fds non-blocking - on the file
 * description it shares with the front-end, which the front-end sees.
 */
static void test_vhost_user_blocking_kick(void)
{
    stop_after_one_read(0);
    ASSERT_TRUE(fcntl(race_front.kick, F_GETFL) & O_NONBLOCK);
}

/*
 * The device's stop at a disconnect moved its BlockBackend - and the node
 * with every other export of it, an NBD one in io0 say - to the main
 * loop, until the next front-end started the device (QEMU 9.0's
 * virtio-blk device does that at every stop; its export does not).
 */
static void test_vhost_user_disconnect_keeps_iothread(void)
{
    stop_after_one_read(EFD_NONBLOCK);
}

static void test_vhost_user_delete_waits_for_iothread(void)
{
    race_run(false);
}

static void test_vhost_user_disconnect_waits_for_iothread(void)
{
    race_run(true);
}

static const TestCase tests[] = {
    { "/export/add-find-shutdown", test_add_find_shutdown },
    { "/export/errors", test_errors },
    { "/export/iothread", test_iothread },
    { "/export/drained", test_drained },
    { "/export/connections-outlive-shutdown",
      test_connections_outlive_shutdown },
    { "/export/flush-at-delete", test_flush_at_delete },
    { "/export/vhost-user/delete-waits-for-iothread",
      test_vhost_user_delete_waits_for_iothread },
    { "/export/vhost-user/disconnect-waits-for-iothread",
      test_vhost_user_disconnect_waits_for_iothread },
    { "/export/vhost-user/blocking-kick-fd",
      test_vhost_user_blocking_kick, .timeout = 10 },
    { "/export/vhost-user/disconnect-keeps-iothread",
      test_vhost_user_disconnect_keeps_iothread },
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

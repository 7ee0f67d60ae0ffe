/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-nbd.c - the NBD server: its message checks (the pure
 * functions of c/export/nbd-proto.c, compiled into this test since the
 * library keeps them hidden), the server's and the export's management
 * errors, and drained sections of an exported node while a client in
 * another thread keeps writing: no request reaches the node inside the
 * section, the ones read before it complete, none is lost.  The real
 * clients' tests are tests/nbd (Python, with Debian's NBD tools).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <aiolab/aiolab.h>
#include "export/nbd-proto.c"
#include "harness.h"

#define MiB (1 << 20)

static const NBDExportLimits rw = { 8 * MiB, true, false, NBD_MAX_BUFFER_SIZE };
static const NBDExportLimits ro = { 8 * MiB, false, true, NBD_MAX_BUFFER_SIZE };

static void put_request(uint8_t *b, uint16_t flags, uint16_t type,
                        uint64_t cookie, uint64_t from, uint32_t len)
{
    nbd_st32(b, NBD_REQUEST_MAGIC);
    nbd_st16(b + 4, flags);
    nbd_st16(b + 6, type);
    nbd_st64(b + 8, cookie);
    nbd_st64(b + 16, from);
    nbd_st32(b + 24, len);
}

static void test_parse_request(void)
{
    uint8_t b[NBD_REQUEST_SIZE];
    NBDRequest r;

    put_request(b, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 0x0102030405060708ULL,
                0x1122334455667788ULL, 0xdeadbeef);
    ASSERT_TRUE(nbd_parse_request(b, &r));
    ASSERT_EQ(r.flags, NBD_CMD_FLAG_FUA);
    ASSERT_EQ(r.type, NBD_CMD_WRITE);
    ASSERT_EQ(r.cookie, 0x0102030405060708ULL);
    ASSERT_EQ(r.from, 0x1122334455667788ULL);
    ASSERT_EQ(r.len, 0xdeadbeef);
    b[0] ^= 1;
    ASSERT_FALSE(nbd_parse_request(b, &r));
}

typedef struct CheckCase {
    uint16_t type, flags;
    uint64_t from;
    uint32_t len;
    const NBDExportLimits *lim;
    NBDRequestVerdict verdict;
    uint32_t error, payload;
} CheckCase;

static void test_check_request(void)
{
    static const CheckCase cases[] = {
        { NBD_CMD_READ, 0, 0, 4096, &rw, NBD_REQ_SERVE, 0, 0 },
        { NBD_CMD_READ, NBD_CMD_FLAG_FUA, 0, 0, &rw, NBD_REQ_SERVE, 0, 0 },
        { NBD_CMD_READ, 0, 8 * MiB - 1, 1, &rw, NBD_REQ_SERVE, 0, 0 },
        { NBD_CMD_READ, 0, 8 * MiB, 0, &rw, NBD_REQ_SERVE, 0, 0 },
        { NBD_CMD_READ, 0, 8 * MiB - 1, 2, &rw, NBD_REQ_ERROR, NBD_EINVAL, 0 },
        { NBD_CMD_READ, 0, UINT64_MAX, 2, &rw, NBD_REQ_ERROR, NBD_EINVAL, 0 },
        { NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 512, &rw, NBD_REQ_ERROR, NBD_EINVAL,
          0 }, /* DF needs structured replies */
        { NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 512, &ro, NBD_REQ_SERVE, 0, 0 },
        { NBD_CMD_READ, NBD_CMD_FLAG_NO_HOLE, 0, 512, &rw, NBD_REQ_ERROR,
          NBD_EINVAL, 0 },
        { NBD_CMD_READ, 0, 0, NBD_MAX_BUFFER_SIZE + 1, &rw, NBD_REQ_ERROR,
          NBD_EINVAL, 0 },
        { NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 4096, 4096, &rw, NBD_REQ_SERVE, 0,
          4096 },
        { NBD_CMD_WRITE, 0, 8 * MiB - 1, 2, &rw, NBD_REQ_ERROR, NBD_ENOSPC,
          2 }, /* refused, but its data is read */
        { NBD_CMD_WRITE, 0, 0, 512, &ro, NBD_REQ_ERROR, NBD_EPERM, 512 },
        { NBD_CMD_WRITE, NBD_CMD_FLAG_FAST_ZERO, 0, 512, &rw, NBD_REQ_ERROR,
          NBD_EINVAL, 512 },
        { NBD_CMD_WRITE, 0, 0, NBD_MAX_BUFFER_SIZE + 1, &rw, NBD_REQ_DROP, 0,
          0 },
        { NBD_CMD_FLUSH, 0, 12345, 678, &rw, NBD_REQ_SERVE, 0, 0 },
        { NBD_CMD_FLUSH, 0, 0, 0, &ro, NBD_REQ_SERVE, 0, 0 },
        { NBD_CMD_TRIM, 0, 0, 8 * MiB, &rw, NBD_REQ_SERVE, 0, 0 },
        { NBD_CMD_TRIM, 0, 0, 512, &ro, NBD_REQ_ERROR, NBD_EPERM, 0 },
        { NBD_CMD_TRIM, 0, 8 * MiB, 1, &rw, NBD_REQ_ERROR, NBD_EINVAL, 0 },
        { NBD_CMD_WRITE_ZEROES,
          NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO | NBD_CMD_FLAG_FUA, 0,
          4096, &rw, NBD_REQ_SERVE, 0, 0 },
        { NBD_CMD_WRITE_ZEROES, 0, 8 * MiB, 1, &rw, NBD_REQ_ERROR, NBD_ENOSPC,
          0 },
        { NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_DF, 0, 1, &rw, NBD_REQ_ERROR,
          NBD_EINVAL, 0 },
        { NBD_CMD_DISC, 0, 0, 0, &rw, NBD_REQ_DISCONNECT, 0, 0 },
        { NBD_CMD_CACHE, 0, 0, 512, &rw, NBD_REQ_ERROR, NBD_EINVAL, 0 },
        { NBD_CMD_BLOCK_STATUS, 0, 0, 512, &rw, NBD_REQ_ERROR, NBD_EINVAL, 0 },
        { 999, 0, 0, 0, &rw, NBD_REQ_ERROR, NBD_EINVAL, 0 },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const CheckCase *t = &cases[i];
        NBDRequest r = { t->flags, t->type, 1, t->from, t->len };
        uint32_t payload = 77, error = 77;
        const char *why = NULL;
        NBDRequestVerdict v = nbd_check_request(&r, t->lim, &payload, &error,
                                                &why);

        printf("# case %zu: %s flags 0x%x %llu+%u -> %d (%s)\n", i,
               nbd_cmd_name(t->type), t->flags, (unsigned long long)t->from,
               t->len, v, why ? why : "");
        ASSERT_EQ(v, t->verdict);
        ASSERT_EQ(payload, t->payload);
        if (v == NBD_REQ_ERROR) {
            ASSERT_EQ(error, t->error);
        }
        ASSERT_TRUE((why != NULL) == (v == NBD_REQ_ERROR || v == NBD_REQ_DROP));
    }
}

static uint32_t info_opt(uint8_t *b, const char *name, int n,
                         const uint16_t *reqs)
{
    uint32_t len = strlen(name);
    int i;

    nbd_st32(b, len);
    memcpy(b + 4, name, len);
    nbd_st16(b + 4 + len, n);
    for (i = 0; i < n; i++) {
        nbd_st16(b + 6 + len + 2 * i, reqs[i]);
    }
    return 6 + len + 2 * n;
}

static void test_parse_info(void)
{
    static const uint16_t reqs[] = { NBD_INFO_BLOCK_SIZE, 77, NBD_INFO_NAME };
    uint8_t b[8192];
    NBDInfoOpt o;
    const char *why = NULL;
    uint32_t len = info_opt(b, "disk", 3, reqs);

    ASSERT_TRUE(nbd_parse_info_opt(b, len, &o, &why));
    ASSERT_EQ(o.name_len, 4);
    ASSERT_TRUE(!memcmp(o.name, "disk", 4));
    ASSERT_EQ(o.n_requests, 3);
    ASSERT_TRUE(o.want_block_size && o.want_name && !o.want_description);
    ASSERT_FALSE(nbd_parse_info_opt(b, len - 1, &o, &why));
    ASSERT_STR_CONTAINS(why, "does not match");
    ASSERT_FALSE(nbd_parse_info_opt(b, len + 1, &o, &why));
    ASSERT_FALSE(nbd_parse_info_opt(b, 5, &o, &why));
    ASSERT_STR_CONTAINS(why, "shorter");
    nbd_st32(b, 1000);
    ASSERT_FALSE(nbd_parse_info_opt(b, len, &o, &why));
    ASSERT_STR_CONTAINS(why, "longer than the option data");
    len = info_opt(b, "di", 0, NULL);
    b[5] = 0;
    ASSERT_FALSE(nbd_parse_info_opt(b, len, &o, &why));
    ASSERT_STR_CONTAINS(why, "NUL");
    memset(b + 4, 'x', 4097);
    nbd_st32(b, 4097);
    nbd_st16(b + 4 + 4097, 0);
    ASSERT_FALSE(nbd_parse_info_opt(b, 4097 + 6, &o, &why));
    ASSERT_STR_CONTAINS(why, "4096");
    len = info_opt(b, "", 0, NULL); /* the default export */
    ASSERT_TRUE(nbd_parse_info_opt(b, len, &o, &why));
    ASSERT_EQ(o.name_len, 0);
}

static void test_errno(void)
{
    ASSERT_EQ(nbd_errno(0), NBD_SUCCESS);
    ASSERT_EQ(nbd_errno(-EPERM), NBD_EPERM);
    ASSERT_EQ(nbd_errno(-EROFS), NBD_EPERM);
    ASSERT_EQ(nbd_errno(-EIO), NBD_EIO);
    ASSERT_EQ(nbd_errno(-EFBIG), NBD_ENOSPC);
    ASSERT_EQ(nbd_errno(-EDQUOT), NBD_ENOSPC);
    ASSERT_EQ(nbd_errno(-ENOTSUP), NBD_ENOTSUP);
    ASSERT_EQ(nbd_errno(-ESHUTDOWN), NBD_ESHUTDOWN);
    ASSERT_EQ(nbd_errno(-ENOMEDIUM), NBD_EINVAL);
    ASSERT_STR_EQ(nbd_opt_name(NBD_OPT_GO), "GO");
    ASSERT_STR_EQ(nbd_opt_name(0), "unknown");
    ASSERT_STR_EQ(nbd_cmd_name(NBD_CMD_WRITE_ZEROES), "WRITE_ZEROES");
}

/* --- the server, in process ------------------------------------------------ */

static char sock_path[108];

static void start_server(void)
{
    char opts[200];

    snprintf(sock_path, sizeof(sock_path), "/tmp/aiolab-test-nbd-%d.sock",
             (int)getpid());
    snprintf(opts, sizeof(opts), "addr.type=unix,addr.path=%s", sock_path);
    nbd_server_start(opts, &error_abort);
}

/*
 * Each call runs in its own statement before its error is looked at: as
 * one argument next to &err, C leaves the order of the two unspecified
 * (gcc reads err first).
 */
static void expect_error(bool ok, Error **errp, const char *msg)
{
    ASSERT_FALSE(ok);
    ASSERT_TRUE(*errp != NULL);
    ASSERT_STR_EQ(error_get_pretty(*errp), msg);
    error_free(*errp);
    *errp = NULL;
}

static void test_server_errors(void)
{
    Error *err = NULL;
    BlockDriverState *bs;
    bool ok;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    bs = bdrv_open(NULL, NULL, "driver=null-co,size=1M,node-name=n0",
                   BDRV_O_RDWR, &error_abort);
    ok = blk_exp_add("type=nbd,id=e0,node-name=n0", &err) != NULL;
    expect_error(ok, &err, "NBD server not running");
    ok = nbd_server_stop(&err);
    expect_error(ok, &err, "NBD server not running");
    ok = nbd_server_start("addr.type=unix", &err);
    expect_error(ok, &err, "Parameter 'addr.path' is missing");
    ok = nbd_server_start("addr.type=unix,addr.path=/x,tls-creds=a", &err);
    expect_error(ok, &err, "Parameter 'tls-creds' is unexpected");
    ok = nbd_server_start("addr.type=unix,addr.path=/nonexistent/s", &err);
    expect_error(ok, &err,
                 "Failed to bind socket to /nonexistent/s: "
                 "No such file or directory");
    ASSERT_FALSE(nbd_server_is_running());
    start_server();
    ok = nbd_server_start("addr.type=unix,addr.path=/tmp/x", &err);
    expect_error(ok, &err, "NBD server already running");
    blk_exp_add("type=nbd,id=e0,node-name=n0", &error_abort);
    ok = blk_exp_add("type=nbd,id=e1,node-name=n0", &err) != NULL;
    expect_error(ok, &err, "NBD server already has export named 'n0'");
    ok = blk_exp_add("type=nbd,id=e1,node-name=n0,name=b,multi-conn=maybe",
                     &err) != NULL;
    expect_error(ok, &err, "Parameter 'multi-conn' expects 'on' or 'off'");
    ASSERT_TRUE(access(sock_path, F_OK) == 0);
    nbd_server_stop(&error_abort); /* closes the export too */
    ASSERT_PTR_EQ(blk_exp_find("e0"), NULL);
    ASSERT_TRUE(access(sock_path, F_OK) < 0);
    bdrv_unref(bs);
}

/* --- drained sections with a client writing ------------------------------ */

typedef struct Writer {
    pthread_t thread;
    int fd;
    bool stop; /* atomic */
    bool done; /* atomic: disconnected */
    int64_t sent, answered, errors;
} Writer;

static void xwrite(int fd, const void *buf, size_t len)
{
    ASSERT_EQ(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void xread(int fd, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, (uint8_t *)buf + got, len - got);

        ASSERT_GT(n, 0);
        got += n;
    }
}

static int client_connect(const char *name)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    uint8_t b[64];
    uint32_t len = strlen(name), type;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    strcpy(sa.sun_path, sock_path);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    xread(fd, b, 18);
    ASSERT_EQ(nbd_ld64(b), NBD_INIT_MAGIC);
    nbd_st32(b, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    nbd_st64(b + 4, NBD_OPTS_MAGIC);
    nbd_st32(b + 12, NBD_OPT_GO);
    nbd_st32(b + 16, 6 + len);
    nbd_st32(b + 20, len);
    memcpy(b + 24, name, len);
    nbd_st16(b + 24 + len, 0);
    xwrite(fd, b, 26 + len);
    do { /* REP_INFO..., then REP_ACK */
        xread(fd, b, NBD_OPT_REPLY_HDR_SIZE);
        type = nbd_ld32(b + 12);
        ASSERT_TRUE(type == NBD_REP_INFO || type == NBD_REP_ACK);
        ASSERT_LE(nbd_ld32(b + 16), sizeof(b));
        xread(fd, b, nbd_ld32(b + 16));
    } while (type != NBD_REP_ACK);
    return fd;
}

static void writer_send(Writer *w)
{
    uint8_t b[NBD_REQUEST_SIZE + 4096];

    put_request(b, 0, NBD_CMD_WRITE, w->sent, (w->sent % 1024) * 4096, 4096);
    memset(b + NBD_REQUEST_SIZE, (int)(w->sent & 0xff), 4096);
    xwrite(w->fd, b, sizeof(b));
    w->sent++;
}

/*
 * Connects (the handshake needs the main loop, which the main thread
 * polls meanwhile), then keeps four writes in flight, each reply answered
 * by a new write.
 */
static void *writer_thread(void *opaque)
{
    Writer *w = opaque;
    uint8_t r[NBD_SIMPLE_REPLY_SIZE], disc[NBD_REQUEST_SIZE];

    w->fd = client_connect("disk");
    while (w->sent < 4) {
        writer_send(w);
    }
    while (w->answered < w->sent) {
        xread(w->fd, r, sizeof(r));
        ASSERT_EQ(nbd_ld32(r), NBD_SIMPLE_REPLY_MAGIC);
        w->errors += nbd_ld32(r + 4) != 0;
        w->answered++;
        if (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
            writer_send(w);
        }
    }
    put_request(disc, 0, NBD_CMD_DISC, 0, 0, 0);
    xwrite(w->fd, disc, sizeof(disc));
    close(w->fd);
    __atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
    return NULL;
}

static int64_t node_writes(BlockDriverState *bs)
{
    AiolabTestDriverStats st;

    ASSERT_TRUE(aiolab_test_driver_get_stats(bs, &st));
    return st.writes;
}

/*
 * Run the main loop until the node has seen more than @n writes: the
 * listener and the handshakes are iohandlers, which main_loop_wait()
 * dispatches and aio_poll() never does.
 */
static void wait_writes(BlockDriverState *bs, int64_t n)
{
    int i;

    for (i = 0; node_writes(bs) <= n; i++) {
        ASSERT_LT(i, 20000);
        main_loop_wait(true);
        usleep(500);
    }
}

static void test_drained_while_writing(void)
{
    BlockDriverState *bs;
    IOThread *io0;
    AioContext *ctxs[2];
    Writer w = { 0 };
    int i, rounds = harness_scale(100);

    qemu_init_main_loop(&error_abort);
    bql_lock();
    io0 = iothread_create("io0", &error_abort);
    ctxs[0] = iothread_get_aio_context(io0);
    ctxs[1] = qemu_get_aio_context();
    bs = bdrv_open(NULL, NULL,
                   "driver=aiolab-test,size=4M,node-name=t0,"
                   "latency-ns=50000",
                   BDRV_O_RDWR, &error_abort);
    start_server();
    blk_exp_add("type=nbd,id=e0,node-name=t0,name=disk,writable=on,"
                "iothread=io0",
                &error_abort);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), ctxs[0]);
    ASSERT_EQ(pthread_create(&w.thread, NULL, writer_thread, &w), 0);
    wait_writes(bs, 20);
    for (i = 0; i < rounds; i++) {
        int64_t n;

        bdrv_drained_begin(bs);
        /* Quiesced: nothing in flight, and nothing new gets in. */
        n = node_writes(bs);
        ASSERT_EQ(bdrv_get_in_flight(bs), 0);
        usleep(2000);
        ASSERT_EQ(node_writes(bs), n);
        /* Every other round the node (and the export) changes thread. */
        if (i % 2) {
            bdrv_try_change_aio_context(bs, ctxs[(i / 2) % 2], NULL,
                                        &error_abort);
        }
        bdrv_drained_end(bs);
        wait_writes(bs, n); /* the client's writes flow again */
    }
    __atomic_store_n(&w.stop, true, __ATOMIC_RELEASE);
    /* The last rounds may have left the node in the main loop. */
    for (i = 0; !__atomic_load_n(&w.done, __ATOMIC_ACQUIRE); i++) {
        ASSERT_LT(i, 20000);
        main_loop_wait(true);
        usleep(500);
    }
    pthread_join(w.thread, NULL);
    ASSERT_EQ(w.errors, 0);
    ASSERT_EQ(w.answered, w.sent);
    ASSERT_EQ(node_writes(bs), w.sent);
    nbd_server_stop(&error_abort);
    bdrv_try_change_aio_context(bs, qemu_get_aio_context(), NULL, &error_abort);
    bdrv_unref(bs);
    iothread_destroy(io0);
}

static const TestCase tests[] = { { "/nbd/parse/request", test_parse_request },
                                  { "/nbd/check/request", test_check_request },
                                  { "/nbd/parse/info", test_parse_info },
                                  { "/nbd/errno", test_errno },
                                  { "/nbd/server/errors", test_server_errors },
                                  { "/nbd/drained-while-writing",
                                    test_drained_while_writing },
                                  { NULL } };

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}

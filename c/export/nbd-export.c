/* SPDX-License-Identifier: MIT */
/*
 * export/nbd-export.c - the "nbd" export driver and the transmission
 * phase (QEMU's nbd/server.c: nbd_export_create, nbd_trip,
 * nbd_drained_begin/end/poll, blk_aio_attached/detach).
 *
 * A connection in transmission runs in its export's AioContext:
 *
 *   receive loop (one coroutine)            request coroutines (<= 32)
 *   nb_requests++                              |
 *   read header [+ payload] --- aio_co_enter --> blk_co_* (yields for I/O)
 *   check it (nbd_check_request)               take send_lock, reply
 *   loop; park when drained or full            nb_requests--, kick
 *   in flight, end on EOF/DISC/error           wake the parked loop
 *
 * Drained sections (the export's BlockBackend, like any device's):
 *
 *   drained_begin (main loop)  quiescing := 1 on every client, and a BH
 *                              in its context interrupts a receive loop
 *                              that waits for a new request: it parks
 *   drained_poll               busy while a client has requests read and
 *                              not answered (the loop mid-request counts)
 *                              or one of those BHs has not run yet
 *   drained_end                quiescing := 0, a BH restarts the loop
 *
 * Requests bypass the BlockBackend's queue (request queuing disabled, as
 * QEMU's NBD server does): a request read before the drain must finish
 * for the drain to end, so it must not park in the block layer.  A
 * client that stops in the middle of a request holds the drain up until
 * it sends the rest or goes away (QEMU's too).
 *
 * An AioContext change happens inside a drained section, with every
 * receive loop parked and no request left: the attach hook just points
 * each connection at the new context, and drained_end restarts the loops
 * there.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <aiolab/nbd.h>
#include "export/nbd-int.h"
#include "util/mem.h"

typedef struct NBDRequestData {
    NBDClient *c;
    NBDRequest req;
    uint8_t *data;          /* a write's payload, a read's buffer */
    uint32_t buffered;      /* bytes of data buffer counted in flight */
    uint32_t error;         /* NBD_E*: refused when received, or failed */
    const char *why;        /* the refusal's reason */
} NBDRequestData;

static void coroutine_fn nbd_co_recv_loop(void *opaque);

NBDExport *nbd_export_find(const uint8_t *name, size_t len)
{
    BlockExport *e;

    for (e = blk_exp_next(NULL); e; e = blk_exp_next(e)) {
        NBDExport *exp = (NBDExport *)e;

        if (e->drv == &blk_exp_nbd && e->user_owned &&
            strlen(exp->name) == len && !memcmp(exp->name, name, len)) {
            return exp;
        }
    }
    return NULL;
}

uint16_t nbd_export_tx_flags(NBDExport *exp, bool structured)
{
    uint16_t flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
                     NBD_FLAG_SEND_FUA;

    if (exp->common.writable) {
        flags |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
                 NBD_FLAG_SEND_FAST_ZERO;
    } else {
        flags |= NBD_FLAG_READ_ONLY;
    }
    if (exp->multi_conn) {
        flags |= NBD_FLAG_CAN_MULTI_CONN;
    }
    if (structured) {
        flags |= NBD_FLAG_SEND_DF;
    }
    return flags;
}

/* --- the receive loop's life ---------------------------------------------- */

/*
 * Start (or restart) the receive loop in c->ctx, unless it runs, the
 * connection closes, the export is drained or the client has its fill.
 * @self: 1 if the caller is a request still counted in nb_requests.
 * The loop counts in nb_requests from here on, so a drain that begins
 * now waits for it to park.  Home thread of c->ctx (the only thread
 * that raises nb_requests).
 */
static void nbd_client_start_recv(NBDClient *c, int self)
{
    Coroutine *co;

    if (c->recv_co || c->closing || qatomic_read(&c->quiescing) ||
        qatomic_read(&c->nb_requests) - self >= NBD_MAX_REQUESTS ||
        c->inflight_bytes >= NBD_MAX_INFLIGHT_BYTES) {
        return;
    }
    qatomic_inc(&c->nb_requests);
    nbd_client_ref(c);
    co = qemu_coroutine_create(nbd_co_recv_loop, c);
    c->recv_co = co;
    nbd_client_set_read_handler(c, true);
    if (qemu_in_coroutine()) {
        aio_co_enter(c->ctx, co);   /* queued: runs when the caller yields */
    } else {
        qemu_aio_coroutine_enter(c->ctx, co);
    }
}

/* A closing connection with nothing left running leaves the export's
 * list (in the main loop).  @self as above.  Home thread of c->ctx. */
static void nbd_client_maybe_unlist(NBDClient *c, int self)
{
    if (c->closing && !c->recv_co &&
        qatomic_read(&c->nb_requests) == self) {
        nbd_client_schedule_unlist(c);
    }
}

static void nbd_client_unlist_bh(void *opaque)
{
    NBDClient *c = opaque, **p;

    for (p = &c->exp->clients; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            c->listed = false;
            break;
        }
    }
    nbd_server_client_gone(c);
    nbd_client_unref(c);            /* the list's */
    nbd_client_unref(c);            /* this BH's */
}

void nbd_client_schedule_unlist(NBDClient *c)
{
    if (!c->unlist_scheduled) {
        c->unlist_scheduled = true;
        nbd_client_ref(c);
        aio_bh_schedule_oneshot(qemu_get_aio_context(), nbd_client_unlist_bh,
                                c);
    }
}

/* A request is answered: the receive loop may have room again.  The
 * count drops last: from then on a drain may move the connection to
 * another context, so nothing here may touch it after that. */
static void nbd_client_request_done(NBDClient *c)
{
    nbd_client_start_recv(c, 1);
    nbd_client_maybe_unlist(c, 1);
    qatomic_dec(&c->nb_requests);
    aio_wait_kick();
}

/* --- replies -------------------------------------------------------------- */

static int coroutine_fn nbd_co_send_reply(NBDClient *c, NBDRequestData *rd)
{
    const NBDRequest *req = &rd->req;
    uint8_t hdr[NBD_CHUNK_HDR_SIZE + 8 + 6 + 128];
    struct iovec iov[2] = { { hdr, 0 }, { rd->data, 0 } };
    bool has_data = req->type == NBD_CMD_READ && !rd->error && req->len;
    int ret;

    if (c->structured && (req->type == NBD_CMD_READ || rd->error)) {
        uint32_t plen = 0;
        uint16_t type = NBD_REPLY_TYPE_NONE;

        if (rd->error) {
            const char *msg = rd->why ? rd->why : strerror(EIO);
            uint16_t mlen = MIN(strlen(msg), 128);

            type = NBD_REPLY_TYPE_ERROR;
            plen = 6 + mlen;
            nbd_st32(hdr + NBD_CHUNK_HDR_SIZE, rd->error);
            nbd_st16(hdr + NBD_CHUNK_HDR_SIZE + 4, mlen);
            memcpy(hdr + NBD_CHUNK_HDR_SIZE + 6, msg, mlen);
        } else if (has_data) {
            type = NBD_REPLY_TYPE_OFFSET_DATA;
            plen = 8 + req->len;
            nbd_st64(hdr + NBD_CHUNK_HDR_SIZE, req->from);
            iov[1].iov_len = req->len;
        }
        nbd_st32(hdr, NBD_STRUCTURED_REPLY_MAGIC);
        nbd_st16(hdr + 4, NBD_REPLY_FLAG_DONE);
        nbd_st16(hdr + 6, type);
        nbd_st64(hdr + 8, req->cookie);
        nbd_st32(hdr + 16, plen);
        iov[0].iov_len = NBD_CHUNK_HDR_SIZE + plen - iov[1].iov_len;
    } else {
        nbd_st32(hdr, NBD_SIMPLE_REPLY_MAGIC);
        nbd_st32(hdr + 4, rd->error);
        nbd_st64(hdr + 8, req->cookie);
        iov[0].iov_len = NBD_SIMPLE_REPLY_SIZE;
        iov[1].iov_len = has_data ? req->len : 0;
    }
    qemu_co_mutex_lock(&c->send_lock);
    ret = nbd_co_writev(c, iov, iov[1].iov_len ? 2 : 1);
    qemu_co_mutex_unlock(&c->send_lock);
    return ret;
}

/* --- requests ------------------------------------------------------------- */

static int coroutine_fn nbd_do_request(NBDClient *c, NBDRequestData *rd)
{
    BlockExport *exp = &c->exp->common;
    const NBDRequest *req = &rd->req;
    BdrvRequestFlags flags = 0;
    int ret;

    if (req->flags & NBD_CMD_FLAG_FUA || exp->writethrough) {
        flags |= BDRV_REQ_FUA;
    }
    switch (req->type) {
    case NBD_CMD_READ:
        return req->len ? blk_co_pread(exp->blk, req->from, req->len,
                                       rd->data, 0) : 0;
    case NBD_CMD_WRITE:
        return req->len ? blk_co_pwrite(exp->blk, req->from, req->len,
                                        rd->data, flags) : 0;
    case NBD_CMD_FLUSH:
        return blk_co_flush(exp->blk);
    case NBD_CMD_TRIM:
        ret = req->len ? blk_co_pdiscard(exp->blk, req->from, req->len) : 0;
        if (ret == 0 && req->flags & NBD_CMD_FLAG_FUA) {
            ret = blk_co_flush(exp->blk);
        }
        return ret;
    case NBD_CMD_WRITE_ZEROES:
        if (!(req->flags & NBD_CMD_FLAG_NO_HOLE)) {
            flags |= BDRV_REQ_MAY_UNMAP;
        }
        if (req->flags & NBD_CMD_FLAG_FAST_ZERO) {
            flags |= BDRV_REQ_NO_FALLBACK;
        }
        return req->len ? blk_co_pwrite_zeroes(exp->blk, req->from, req->len,
                                               flags) : 0;
    default:
        return -EINVAL;     /* nbd_check_request() refused it already */
    }
}

static void coroutine_fn nbd_co_request(void *opaque)
{
    NBDRequestData *rd = opaque;
    NBDClient *c = rd->c;
    int ret;

    if (!rd->error) {
        if (rd->req.type == NBD_CMD_READ && rd->req.len) {
            rd->data = qemu_try_blockalign(blk_bs(c->exp->common.blk),
                                           rd->req.len);
        }
        ret = rd->req.type == NBD_CMD_READ && rd->req.len && !rd->data ?
              -ENOMEM : nbd_do_request(c, rd);
        if (ret < 0) {
            rd->error = nbd_errno(ret);
            rd->why = strerror(-ret);
            nbd_log("NBD client %u: %s of %u bytes at %llu failed: %s",
                    c->id, nbd_cmd_name(rd->req.type), rd->req.len,
                    (unsigned long long)rd->req.from, strerror(-ret));
        }
    }
    if (nbd_co_send_reply(c, rd) < 0 && !c->closing) {
        nbd_log("NBD client %u: cannot send a reply, disconnecting",
                c->id);
        nbd_client_shutdown(c, SHUT_RDWR);
    }
    c->inflight_bytes -= rd->buffered;
    free(rd->data);
    free(rd);
    nbd_client_request_done(c);
    nbd_client_unref(c);
}

/*
 * Read one request (and a write's data) and start its coroutine.
 * Returns: 0; -EAGAIN (interrupted before it began: drained or closing);
 * -ESHUTDOWN (NBD_CMD_DISC); -EIO (the connection is to be dropped, and
 * was logged) or -EPIPE (the client hung up between requests).
 */
static int coroutine_fn nbd_co_receive_one(NBDClient *c,
                                           const NBDExportLimits *lim)
{
    uint8_t hdr[NBD_REQUEST_SIZE];
    NBDRequestData *rd;
    NBDRequestVerdict v;
    uint32_t payload;
    int ret = nbd_co_read(c, hdr, sizeof(hdr), true);

    if (ret == -EIO) {
        nbd_log("NBD client %u: connection lost in the middle of a "
                "request header", c->id);
    }
    if (ret < 0) {
        return ret;
    }
    rd = aiolab_xcalloc(1, sizeof(*rd));
    rd->c = c;
    if (!nbd_parse_request(hdr, &rd->req)) {
        nbd_log("NBD client %u: bad request magic 0x%08x, "
                "disconnecting", c->id, nbd_ld32(hdr));
        free(rd);
        return -EIO;
    }
    v = nbd_check_request(&rd->req, lim, &payload, &rd->error, &rd->why);
    if (v == NBD_REQ_DISCONNECT || v == NBD_REQ_DROP) {
        if (v == NBD_REQ_DROP) {
            nbd_log("NBD client %u: %s (%u bytes, at most %u), "
                    "disconnecting", c->id, rd->why, rd->req.len,
                    lim->max_payload);
        }
        free(rd);
        return v == NBD_REQ_DROP ? -EIO : -ESHUTDOWN;
    }
    if (v == NBD_REQ_ERROR) {
        nbd_log("NBD client %u: %s of %u bytes at %llu refused: %s",
                c->id, nbd_cmd_name(rd->req.type), rd->req.len,
                (unsigned long long)rd->req.from, rd->why);
        ret = payload ? nbd_co_skip(c, payload) : 0;
    } else if (payload) {
        /* the client's size: no memory fails this request, not the daemon */
        rd->data = qemu_try_blockalign(blk_bs(c->exp->common.blk), payload);
        if (rd->data) {
            ret = nbd_co_read(c, rd->data, payload, false);
        } else {
            v = NBD_REQ_ERROR;
            rd->error = NBD_ENOMEM;
            rd->why = "out of memory";
            nbd_log("NBD client %u: no memory for the %u bytes of a %s "
                    "request, refused", c->id, payload,
                    nbd_cmd_name(rd->req.type));
            ret = nbd_co_skip(c, payload);
        }
    }
    if (ret < 0) {
        nbd_log("NBD client %u: connection lost in the middle of the "
                "data of a %s request", c->id,
                nbd_cmd_name(rd->req.type));
        free(rd->data);
        free(rd);
        return -EIO;
    }
    if (v == NBD_REQ_SERVE && (rd->req.type == NBD_CMD_READ ||
                               rd->req.type == NBD_CMD_WRITE)) {
        rd->buffered = rd->req.len;
        c->inflight_bytes += rd->buffered;
    }
    qatomic_inc(&c->nb_requests);   /* until its reply is sent */
    nbd_client_ref(c);              /* the request's */
    aio_co_enter(c->ctx, qemu_coroutine_create(nbd_co_request, rd));
    return 0;
}

static void coroutine_fn nbd_co_recv_loop(void *opaque)
{
    NBDClient *c = opaque;
    NBDExportLimits lim = {
        .size = c->exp->size, .writable = c->exp->common.writable,
        .structured = c->structured, .max_payload = NBD_MAX_BUFFER_SIZE,
    };
    int ret = 0;

    /* nb_requests counts this loop (nbd_client_start_recv) besides the
     * requests it started. */
    while (!c->closing && !qatomic_read(&c->quiescing) &&
           qatomic_read(&c->nb_requests) - 1 < NBD_MAX_REQUESTS &&
           c->inflight_bytes < NBD_MAX_INFLIGHT_BYTES) {
        ret = nbd_co_receive_one(c, &lim);
        if (ret == -EIO) {
            nbd_client_shutdown(c, SHUT_RDWR);      /* hard disconnect */
        } else if (ret == -ESHUTDOWN || ret == -EPIPE) {
            c->closing = true;      /* answer what is in flight, then go */
        }
    }
    /* Parked (drained, closing, or its fill of requests in flight): stop
     * reading until nbd_client_start_recv(). */
    c->recv_co = NULL;
    nbd_client_set_read_handler(c, false);
    nbd_client_maybe_unlist(c, 1);
    qatomic_dec(&c->nb_requests);   /* last: a drain may go on now */
    aio_wait_kick();
    nbd_client_unref(c);
}

/* --- attaching a connection to its export (main loop) --------------------- */

static void nbd_client_start_bh(void *opaque)
{
    NBDClient *c = opaque;

    nbd_client_start_recv(c, 0);
    nbd_client_maybe_unlist(c, 0);
    qatomic_dec(&c->bh_pending);
    aio_wait_kick();
    nbd_client_unref(c);
}

/* Run @fn(@c) in c->ctx with a reference, counted in bh_pending so that
 * a drain waits for it (and no context change overtakes it). */
static void nbd_client_bh(NBDClient *c, QEMUBHFunc *fn)
{
    nbd_client_ref(c);
    qatomic_inc(&c->bh_pending);
    aio_bh_schedule_oneshot(c->ctx, fn, c);
}

void nbd_client_attach(NBDClient *c, NBDExport *exp)
{
    GLOBAL_STATE_CODE();
    blk_exp_ref(&exp->common);
    c->exp = exp;
    c->ctx = exp->common.ctx;
    qatomic_set(&c->quiescing, exp->quiescing);
    c->next = exp->clients;
    c->listed = true;
    exp->clients = c;
    nbd_client_bh(c, nbd_client_start_bh);
}

/* --- the driver ----------------------------------------------------------- */

static void nbd_client_kick_bh(void *opaque)
{
    NBDClient *c = opaque;

    nbd_client_interrupt(c);
    qatomic_dec(&c->bh_pending);
    aio_wait_kick();
    nbd_client_unref(c);
}

static void nbd_client_close_bh(void *opaque)
{
    NBDClient *c = opaque;

    nbd_client_shutdown(c, SHUT_RDWR);
    nbd_client_maybe_unlist(c, 0);
    qatomic_dec(&c->bh_pending);
    aio_wait_kick();
    nbd_client_unref(c);
}

static void nbd_drained_begin(BlockExport *e)
{
    NBDExport *exp = (NBDExport *)e;
    NBDClient *c;

    exp->quiescing = true;
    for (c = exp->clients; c; c = c->next) {
        qatomic_set(&c->quiescing, true);
        nbd_client_bh(c, nbd_client_kick_bh);
    }
}

static bool nbd_drained_poll(BlockExport *e)
{
    NBDExport *exp = (NBDExport *)e;
    NBDClient *c;

    for (c = exp->clients; c; c = c->next) {
        /* Acquire: pairs with the decrements, the last thing a receive
         * loop, a request or a BH does to the connection. */
        if (qatomic_load_acquire(&c->nb_requests) ||
            qatomic_load_acquire(&c->bh_pending)) {
            return true;
        }
    }
    return false;
}

static void nbd_drained_end(BlockExport *e)
{
    NBDExport *exp = (NBDExport *)e;
    NBDClient *c;

    exp->quiescing = false;
    for (c = exp->clients; c; c = c->next) {
        qatomic_set(&c->quiescing, false);
        nbd_client_bh(c, nbd_client_start_bh);
    }
}

static void nbd_attach_aio_context(BlockExport *e, AioContext *new_ctx)
{
    NBDExport *exp = (NBDExport *)e;
    NBDClient *c;

    for (c = exp->clients; c; c = c->next) {
        AIOLAB_ASSERT(!c->recv_co && !qatomic_read(&c->nb_requests) &&
                      !qatomic_read(&c->bh_pending), "NBD client %u still "
                      "active when its export changes AioContext", c->id);
        c->ctx = new_ctx;
    }
}

static void nbd_request_shutdown(BlockExport *e)
{
    NBDExport *exp = (NBDExport *)e;
    NBDClient *c;

    for (c = exp->clients; c; c = c->next) {
        nbd_client_bh(c, nbd_client_close_bh);
    }
}

static const char *const nbd_options[] = {
    "name", "description", "multi-conn", NULL
};

static int nbd_export_create(BlockExport *e, BlockExportOptions *opts,
                             Error **errp)
{
    NBDExport *exp = (NBDExport *)e;
    const char *name = blk_exp_opt_get(opts, "name");
    const char *desc = blk_exp_opt_get(opts, "description");
    bool multi_conn = !e->writable;
    int64_t size;

    if (!nbd_server_is_running()) {
        error_setg(errp, "NBD server not running");
        return -EINVAL;
    }
    if (!blk_exp_opt_get_bool(opts, "multi-conn", &multi_conn, errp)) {
        return -EINVAL;
    }
    if (!name) {
        name = bdrv_get_node_name(blk_bs(e->blk));
    }
    if (strlen(name) > NBD_MAX_STRING_SIZE ||
        (desc && strlen(desc) > NBD_MAX_STRING_SIZE)) {
        error_setg(errp, "export %s '%.32s...' too long", desc &&
                   strlen(desc) > NBD_MAX_STRING_SIZE ? "description"
                                                      : "name",
                   strlen(name) > NBD_MAX_STRING_SIZE ? name : desc);
        return -EINVAL;
    }
    if (nbd_export_find((const uint8_t *)name, strlen(name))) {
        error_setg(errp, "NBD server already has export named '%s'", name);
        return -EEXIST;
    }
    size = blk_getlength(e->blk);
    if (size < 0) {
        error_setg_errno(errp, -size, "Failed to determine the NBD export's "
                         "length");
        return size;
    }
    exp->name = aiolab_xstrdup(name);
    exp->description = desc ? aiolab_xstrdup(desc) : NULL;
    exp->size = size;
    exp->min_block = aiolab_bdrv_get_request_alignment(blk_bs(e->blk));
    exp->multi_conn = multi_conn;
    /* Requests read before a drain must complete inside it. */
    blk_set_disable_request_queuing(e->blk, true);
    return 0;
}

static void nbd_export_delete(BlockExport *e)
{
    NBDExport *exp = (NBDExport *)e;

    AIOLAB_ASSERT(!exp->clients, "NBD export '%s' deleted with clients",
                  e->id);
    free(exp->name);
    free(exp->description);
}

const BlockExportDriver blk_exp_nbd = {
    .type = "nbd",
    .instance_size = sizeof(NBDExport),
    .options = nbd_options,
    .create = nbd_export_create,
    .delete = nbd_export_delete,
    .request_shutdown = nbd_request_shutdown,
    .drained_begin = nbd_drained_begin,
    .drained_end = nbd_drained_end,
    .drained_poll = nbd_drained_poll,
    .attach_aio_context = nbd_attach_aio_context,
};

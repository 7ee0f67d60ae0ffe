/* SPDX-License-Identifier: MIT */
/*
 * export/nbd-server.c - the NBD server (QEMU's blockdev-nbd.c and the
 * negotiation half of nbd/server.c): one listening unix socket, and for
 * each connection the fixed-newstyle handshake in a coroutine of the
 * main loop's iohandler context.
 *
 * The handshake, in the order a client drives it:
 *
 *   S: NBDMAGIC IHAVEOPT flags=FIXED_NEWSTYLE|NO_ZEROES
 *   C: client flags (unknown bits: hard disconnect)
 *   C/S: options until one enters transmission:
 *     EXPORT_NAME  -> size, flags [, 124 zeroes]          (no errors)
 *     GO / INFO    -> REP_INFO (EXPORT, NAME, DESCRIPTION, BLOCK_SIZE),
 *                     REP_ACK; GO then enters transmission
 *     LIST         -> REP_SERVER per export, REP_ACK
 *     STRUCTURED_REPLY -> REP_ACK (reads get structured replies)
 *     ABORT        -> REP_ACK, close
 *     STARTTLS     -> ERR_POLICY (no TLS here)
 *     anything else (META_CONTEXT, EXTENDED_HEADERS...) -> ERR_UNSUP
 *
 * A client that breaks the protocol (bad magic, unknown client flags,
 * an option too long to be one) is logged and dropped; the others, and
 * the connections already serving exports, go on.
 *
 * Where QEMU differs: QEMU negotiates in a coroutine of the main
 * AioContext, so a handshake step may run inside a drain's nested
 * aio_poll(); aiolab's runs in the iohandler context (like the monitor),
 * only from main_loop_wait(), so the list of exports never changes under
 * it.  No TLS, no TCP (addr.type=unix only), no metadata contexts
 * (base:allocation), no NBD_CMD_CACHE, no extended headers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <aiolab/nbd.h>
#include "export/nbd-int.h"
#include "util/mem.h"

/* --- Main loop, BQL held -------------------------------------------------- */
static struct {
    bool running;
    int listen_fd;
    char *path;
    int64_t max_connections;    /* 0: unlimited */
    int64_t connections;        /* accepted and not yet gone */
    bool accepting;             /* the listener's handler is installed */
    NBDClient *handshaking;     /* clients still negotiating */
} server = { .listen_fd = -1 };

static void nbd_server_accept(void *opaque);

static void nbd_server_update_accept(void)
{
    bool on = server.running && (!server.max_connections ||
                                 server.connections < server.max_connections);

    if (on != server.accepting) {
        server.accepting = on;
        qemu_set_fd_handler(server.listen_fd, on ? nbd_server_accept : NULL,
                            NULL, NULL);
    }
}

void nbd_server_client_gone(NBDClient *c)
{
    server.connections--;
    if (server.running) {
        nbd_server_update_accept();
    }
}

static void nbd_server_unlist(NBDClient *c)
{
    NBDClient **p;

    for (p = &server.handshaking; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            c->listed = false;
            return;
        }
    }
}

/* --- option replies ------------------------------------------------------- */

static int coroutine_fn nbd_opt_reply(NBDClient *c, uint32_t opt,
                                      uint32_t type, const void *data,
                                      uint32_t len)
{
    uint8_t hdr[NBD_OPT_REPLY_HDR_SIZE];
    struct iovec iov[2] = {
        { hdr, sizeof(hdr) }, { (void *)data, len },
    };

    nbd_st64(hdr, NBD_REP_MAGIC);
    nbd_st32(hdr + 8, opt);
    nbd_st32(hdr + 12, type);
    nbd_st32(hdr + 16, len);
    return nbd_co_writev(c, iov, len ? 2 : 1);
}

/* An error reply with a message for the user. */
static int coroutine_fn AIOLAB_PRINTF(4, 5)
nbd_opt_error(NBDClient *c, uint32_t opt, uint32_t type, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return nbd_opt_reply(c, opt, type, msg, strlen(msg));
}

static int coroutine_fn nbd_opt_info_item(NBDClient *c, uint32_t opt,
                                          uint16_t info, const void *data,
                                          uint32_t len)
{
    uint8_t buf[2 + NBD_MAX_STRING_SIZE];

    nbd_st16(buf, info);
    memcpy(buf + 2, data, len);
    return nbd_opt_reply(c, opt, NBD_REP_INFO, buf, 2 + len);
}

/* --- options ------------------------------------------------------------- */

static int coroutine_fn nbd_handle_list(NBDClient *c, uint32_t len)
{
    BlockExport *e;
    int ret;

    if (len) {
        return nbd_opt_error(c, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
                             "NBD_OPT_LIST takes no data");
    }
    for (e = blk_exp_next(NULL); e; e = blk_exp_next(e)) {
        NBDExport *exp = (NBDExport *)e;
        uint8_t buf[4 + 2 * NBD_MAX_STRING_SIZE];
        size_t n = strlen(exp->name);
        size_t d = exp->description ? strlen(exp->description) : 0;

        if (e->drv != &blk_exp_nbd || !e->user_owned) {
            continue;
        }
        nbd_st32(buf, n);
        memcpy(buf + 4, exp->name, n);
        if (d) {
            memcpy(buf + 4 + n, exp->description, d);
        }
        ret = nbd_opt_reply(c, NBD_OPT_LIST, NBD_REP_SERVER, buf, 4 + n + d);
        if (ret < 0) {
            return ret;
        }
    }
    return nbd_opt_reply(c, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

/*
 * NBD_OPT_INFO and NBD_OPT_GO.  Returns 1 when GO succeeded (enter
 * transmission with *@expp), 0 to go on haggling, -errno to close.
 */
static int coroutine_fn nbd_handle_info(NBDClient *c, uint32_t opt,
                                        const uint8_t *data, uint32_t len,
                                        NBDExport **expp)
{
    NBDInfoOpt info;
    const char *why;
    NBDExport *exp;
    uint8_t buf[12];
    uint32_t min;
    int ret;

    if (!nbd_parse_info_opt(data, len, &info, &why)) {
        return nbd_opt_error(c, opt, NBD_REP_ERR_INVALID, "%s", why);
    }
    exp = nbd_export_find(info.name, info.name_len);
    if (!exp) {
        return nbd_opt_error(c, opt, NBD_REP_ERR_UNKNOWN,
                             "export '%.*s' not present",
                             (int)info.name_len, info.name);
    }
    nbd_st64(buf, exp->size);
    nbd_st16(buf + 8, nbd_export_tx_flags(exp, c->structured));
    ret = nbd_opt_info_item(c, opt, NBD_INFO_EXPORT, buf, 10);
    if (ret == 0 && info.want_name) {
        ret = nbd_opt_info_item(c, opt, NBD_INFO_NAME, exp->name,
                                strlen(exp->name));
    }
    if (ret == 0 && info.want_description && exp->description) {
        ret = nbd_opt_info_item(c, opt, NBD_INFO_DESCRIPTION,
                                exp->description, strlen(exp->description));
    }
    if (ret == 0) {
        /* The block layer pads unaligned requests, so a client that did
         * not ask for constraints may use any alignment (QEMU's rule). */
        min = opt == NBD_OPT_INFO || info.want_block_size ? exp->min_block
                                                           : 1;
        nbd_st32(buf, min);
        nbd_st32(buf + 4, MAX(4096, min));
        nbd_st32(buf + 8, NBD_MAX_BUFFER_SIZE);
        ret = nbd_opt_info_item(c, opt, NBD_INFO_BLOCK_SIZE, buf, 12);
    }
    if (ret == 0) {
        ret = nbd_opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
    }
    if (ret == 0 && opt == NBD_OPT_GO) {
        *expp = exp;
        return 1;
    }
    return ret;
}

/* NBD_OPT_EXPORT_NAME: no way to report an error but hanging up. */
static int coroutine_fn nbd_handle_export_name(NBDClient *c,
                                               const uint8_t *data,
                                               uint32_t len, bool no_zeroes,
                                               NBDExport **expp)
{
    NBDExport *exp = nbd_export_find(data, len);
    uint8_t buf[8 + 2 + 124] = { 0 };
    struct iovec iov = { buf, no_zeroes ? 10 : sizeof(buf) };

    if (!exp) {
        nbd_log("NBD client %u: export '%.*s' not present "
                "(NBD_OPT_EXPORT_NAME), disconnecting", c->id,
                (int)MIN(len, 256), data);
        return -ENOENT;
    }
    nbd_st64(buf, exp->size);
    nbd_st16(buf + 8, nbd_export_tx_flags(exp, c->structured));
    if (nbd_co_writev(c, &iov, 1) < 0) {
        return -EIO;
    }
    *expp = exp;
    return 1;
}

static int coroutine_fn nbd_handle_option(NBDClient *c, uint32_t opt,
                                          const uint8_t *data, uint32_t len,
                                          bool no_zeroes, NBDExport **expp)
{
    switch (opt) {
    case NBD_OPT_EXPORT_NAME:
        return nbd_handle_export_name(c, data, len, no_zeroes, expp);
    case NBD_OPT_ABORT:
        nbd_opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
        return -ECONNRESET;
    case NBD_OPT_LIST:
        return nbd_handle_list(c, len);
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        return nbd_handle_info(c, opt, data, len, expp);
    case NBD_OPT_STARTTLS:
        return nbd_opt_error(c, opt, NBD_REP_ERR_POLICY,
                             "TLS not configured");
    case NBD_OPT_STRUCTURED_REPLY:
        if (len) {
            return nbd_opt_error(c, opt, NBD_REP_ERR_INVALID,
                                 "NBD_OPT_STRUCTURED_REPLY takes no data");
        }
        if (c->structured) {
            return nbd_opt_error(c, opt, NBD_REP_ERR_INVALID,
                                 "structured reply already negotiated");
        }
        c->structured = true;
        return nbd_opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
    default:
        return nbd_opt_error(c, opt, NBD_REP_ERR_UNSUP,
                             "option %u (%s) not supported", opt,
                             nbd_opt_name(opt));
    }
}

/* --- the handshake -------------------------------------------------------- */

/* Returns: the export chosen, or NULL (the connection is to be closed;
 * anything worth a log line was logged). */
static NBDExport *coroutine_fn nbd_co_negotiate(NBDClient *c)
{
    uint8_t hello[18], buf[NBD_OPTION_HDR_SIZE];
    struct iovec iov = { hello, sizeof(hello) };
    NBDExport *exp = NULL;
    uint32_t flags, opt, len;
    bool fixed, no_zeroes;
    uint8_t *data;
    int ret;

    nbd_st64(hello, NBD_INIT_MAGIC);
    nbd_st64(hello + 8, NBD_OPTS_MAGIC);
    nbd_st16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    if (nbd_co_writev(c, &iov, 1) < 0 || nbd_co_read(c, buf, 4, false) < 0) {
        return NULL;                /* gone before saying anything */
    }
    flags = nbd_ld32(buf);
    if (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
        nbd_log("NBD client %u: unsupported client flags 0x%x, "
                "disconnecting", c->id, flags);
        return NULL;
    }
    fixed = flags & NBD_FLAG_C_FIXED_NEWSTYLE;
    no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
    for (;;) {
        ret = nbd_co_read(c, buf, sizeof(buf), false);
        if (ret < 0) {
            nbd_log("NBD client %u: connection lost during the "
                    "handshake", c->id);
            return NULL;
        }
        opt = nbd_ld32(buf + 8);
        len = nbd_ld32(buf + 12);
        if (nbd_ld64(buf) != NBD_OPTS_MAGIC) {
            nbd_log("NBD client %u: bad option magic 0x%016llx, "
                    "disconnecting", c->id,
                    (unsigned long long)nbd_ld64(buf));
            return NULL;
        }
        if (len > NBD_MAX_OPTION_SIZE) {
            nbd_log("NBD client %u: option %u (%s) of %u bytes is "
                    "longer than any valid option, disconnecting",
                    c->id, opt, nbd_opt_name(opt), len);
            return NULL;
        }
        if (!fixed && opt != NBD_OPT_EXPORT_NAME) {
            nbd_log("NBD client %u: option %u (%s) without fixed "
                    "newstyle negotiation, disconnecting", c->id, opt,
                    nbd_opt_name(opt));
            return NULL;
        }
        data = aiolab_xmalloc(len ? len : 1);
        ret = nbd_co_read(c, data, len, false);
        if (ret < 0) {
            nbd_log("NBD client %u: connection lost in the middle of "
                    "option %s", c->id, nbd_opt_name(opt));
        } else {
            ret = nbd_handle_option(c, opt, data, len, no_zeroes, &exp);
        }
        free(data);
        if (ret != 0) {
            return ret > 0 ? exp : NULL;
        }
    }
}

static void coroutine_fn nbd_co_client_start(void *opaque)
{
    NBDClient *c = opaque;
    NBDExport *exp = nbd_co_negotiate(c);

    /* Still in the iohandler context, main thread, BQL held. */
    nbd_client_set_read_handler(c, false);
    nbd_server_unlist(c);
    if (exp && exp->common.user_owned && !c->closing) {
        nbd_client_attach(c, exp);
    } else {
        nbd_server_client_gone(c);
        nbd_client_unref(c);        /* the list's reference */
    }
    nbd_client_unref(c);            /* this coroutine's */
}

void nbd_server_add_client(int fd)
{
    NBDClient *c = nbd_client_new(fd, iohandler_get_aio_context());

    c->next = server.handshaking;
    c->listed = true;
    server.handshaking = c;
    server.connections++;
    nbd_server_update_accept();
    nbd_client_ref(c);              /* for the handshake coroutine */
    qemu_aio_coroutine_enter(c->ctx,
                             qemu_coroutine_create(nbd_co_client_start, c));
}

static void nbd_server_accept(void *opaque)
{
    int fd = accept4(server.listen_fd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            nbd_log("NBD server: accept: %s", strerror(errno));
        }
        return;
    }
    nbd_server_add_client(fd);
}

/* --- start and stop ------------------------------------------------------- */

bool nbd_server_is_running(void)
{
    GLOBAL_STATE_CODE();
    return server.running;
}

static int nbd_listen_unix(const char *path, Error **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        error_setg(errp, "UNIX socket path '%s' is too long", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Failed to create socket");
        return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 16) < 0) {
        error_setg_errno(errp, errno, "Failed to bind socket to %s", path);
        close(fd);
        return -1;
    }
    return fd;
}

bool nbd_server_start(const char *options, Error **errp)
{
    BlockOpts opts = { NULL, 0 };
    const char *type, *path, *unused;
    int64_t max_conn = 0;
    bool ok = false;

    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(options);
    if (server.running) {
        error_setg(errp, "NBD server already running");
        return false;
    }
    if (!block_opts_parse(&opts, options, errp) ||
        !block_opts_get_int(&opts, "max-connections", 0, UINT32_MAX,
                            &max_conn, errp)) {
        goto out;
    }
    type = block_opts_get(&opts, "addr.type");
    path = block_opts_get(&opts, "addr.path");
    if ((unused = block_opts_first_unused(&opts))) {
        error_setg(errp, "Parameter '%s' is unexpected", unused);
        goto out;
    }
    if (!type || !path) {
        error_setg(errp, "Parameter 'addr.%s' is missing",
                   type ? "path" : "type");
        goto out;
    }
    if (strcmp(type, "unix")) {
        error_setg(errp, "addr.type '%s' is not supported (only unix)",
                   type);
        goto out;
    }
    server.listen_fd = nbd_listen_unix(path, errp);
    if (server.listen_fd < 0) {
        goto out;
    }
    server.path = aiolab_xstrdup(path);
    server.max_connections = max_conn;
    server.running = true;
    nbd_server_update_accept();
    ok = true;
out:
    block_opts_free(&opts);
    return ok;
}

bool nbd_server_stop(Error **errp)
{
    GLOBAL_STATE_CODE();
    AIOLAB_REQUIRE(!qemu_in_coroutine(), "called from a coroutine "
                   RULE_NOCO);
    if (!server.running) {
        error_setg(errp, "NBD server not running");
        return false;
    }
    server.running = false;
    nbd_server_update_accept();
    close(server.listen_fd);
    server.listen_fd = -1;
    unlink(server.path);
    free(server.path);
    server.path = NULL;
    /* Clients still negotiating: hang up; their coroutines run to their
     * end inside nbd_client_shutdown() (this is their thread) and unlist
     * themselves. */
    while (server.handshaking) {
        NBDClient *c = server.handshaking;

        nbd_client_shutdown(c, SHUT_RDWR);
        AIOLAB_ASSERT(server.handshaking != c, "NBD client %u did not end "
                      "its handshake when its socket was shut down", c->id);
    }
    blk_exp_close_all_type("nbd");
    return true;
}

/* SPDX-License-Identifier: MIT */
/*
 * export/nbd-proto.c - the NBD server's message checks, kept free of
 * sockets and coroutines so that unit tests and the fuzz target can call
 * them directly (nbd-proto.h describes the wire format).
 *
 * Where QEMU differs: QEMU (nbd/server.c: nbd_co_receive_request) reads a
 * refused write's data only up to its buffer limit and otherwise
 * disconnects; aiolab does the same, with the limit checked before a
 * byte of data is read.
 */
#include <errno.h>
#include <string.h>
#include "export/nbd-proto.h"

bool nbd_parse_request(const uint8_t *buf, NBDRequest *req)
{
    if (nbd_ld32(buf) != NBD_REQUEST_MAGIC) {
        return false;
    }
    req->flags = nbd_ld16(buf + 4);
    req->type = nbd_ld16(buf + 6);
    req->cookie = nbd_ld64(buf + 8);
    req->from = nbd_ld64(buf + 16);
    req->len = nbd_ld32(buf + 24);
    return true;
}

static NBDRequestVerdict refuse(uint32_t *error, uint32_t nbd_err,
                                const char **why, const char *msg)
{
    *error = nbd_err;
    *why = msg;
    return NBD_REQ_ERROR;
}

NBDRequestVerdict nbd_check_request(const NBDRequest *req,
                                    const NBDExportLimits *lim,
                                    uint32_t *payload, uint32_t *error,
                                    const char **why)
{
    uint16_t valid = NBD_CMD_FLAG_FUA;
    bool ranged = true, writes = true;

    *payload = 0;
    *error = NBD_SUCCESS;
    *why = NULL;
    switch (req->type) {
    case NBD_CMD_DISC:
        return NBD_REQ_DISCONNECT;
    case NBD_CMD_READ:
        writes = false;
        if (lim->structured) {
            valid |= NBD_CMD_FLAG_DF;
        }
        if (req->len > lim->max_payload) {
            return refuse(error, NBD_EINVAL, why,
                          "read longer than the maximum payload");
        }
        break;
    case NBD_CMD_WRITE:
        if (req->len > lim->max_payload) {
            *why = "write longer than the maximum payload";
            return NBD_REQ_DROP;
        }
        *payload = req->len;
        break;
    case NBD_CMD_FLUSH:
        ranged = writes = false;
        break;
    case NBD_CMD_TRIM:
        break;
    case NBD_CMD_WRITE_ZEROES:
        valid |= NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
        break;
    default:
        /* CACHE and BLOCK_STATUS included: neither is advertised. */
        return refuse(error, NBD_EINVAL, why, "unsupported command");
    }
    if (req->flags & ~valid) {
        return refuse(error, NBD_EINVAL, why,
                      "unsupported flags for the command");
    }
    if (writes && !lim->writable) {
        return refuse(error, NBD_EPERM, why, "write to a read-only export");
    }
    if (ranged && (req->from > lim->size ||
                   req->len > lim->size - req->from)) {
        /* The protocol asks for ENOSPC on writes past the end. */
        return refuse(error, req->type == NBD_CMD_WRITE ||
                      req->type == NBD_CMD_WRITE_ZEROES ? NBD_ENOSPC
                                                        : NBD_EINVAL,
                      why, "request beyond the end of the export");
    }
    return NBD_REQ_SERVE;
}

bool nbd_parse_info_opt(const uint8_t *data, uint32_t len, NBDInfoOpt *opt,
                        const char **why)
{
    uint32_t i;

    memset(opt, 0, sizeof(*opt));
    if (len < 6) {
        *why = "option data shorter than its fixed fields";
        return false;
    }
    opt->name_len = nbd_ld32(data);
    if (opt->name_len > len - 6) {
        *why = "export name longer than the option data";
        return false;
    }
    if (opt->name_len > NBD_MAX_STRING_SIZE) {
        *why = "export name longer than 4096 bytes";
        return false;
    }
    opt->name = data + 4;
    if (memchr(opt->name, 0, opt->name_len)) {
        *why = "export name contains a NUL byte";
        return false;
    }
    opt->n_requests = nbd_ld16(data + 4 + opt->name_len);
    if (len != 4 + opt->name_len + 2 + 2 * (uint32_t)opt->n_requests) {
        *why = "information request count does not match the data length";
        return false;
    }
    for (i = 0; i < opt->n_requests; i++) {
        switch (nbd_ld16(data + 6 + opt->name_len + 2 * i)) {
        case NBD_INFO_NAME:
            opt->want_name = true;
            break;
        case NBD_INFO_DESCRIPTION:
            opt->want_description = true;
            break;
        case NBD_INFO_BLOCK_SIZE:
            opt->want_block_size = true;
            break;
        default:
            break;      /* NBD_INFO_EXPORT is always sent; others ignored */
        }
    }
    return true;
}

uint32_t nbd_errno(int err)
{
    switch (err < 0 ? -err : err) {
    case 0:
        return NBD_SUCCESS;
    case EPERM:
    case EROFS:
        return NBD_EPERM;
    case EIO:
        return NBD_EIO;
    case ENOMEM:
        return NBD_ENOMEM;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return NBD_ENOSPC;
    case EOVERFLOW:
        return NBD_EOVERFLOW;
    case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
        return NBD_ENOTSUP;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    default:
        return NBD_EINVAL;
    }
}

const char *nbd_cmd_name(uint16_t type)
{
    static const char *const names[] = {
        "READ", "WRITE", "DISC", "FLUSH", "TRIM", "CACHE", "WRITE_ZEROES",
        "BLOCK_STATUS",
    };

    return type < sizeof(names) / sizeof(names[0]) ? names[type] : "unknown";
}

const char *nbd_opt_name(uint32_t opt)
{
    static const char *const names[] = {
        NULL, "EXPORT_NAME", "ABORT", "LIST", "PEEK_EXPORT", "STARTTLS",
        "INFO", "GO", "STRUCTURED_REPLY", "LIST_META_CONTEXT",
        "SET_META_CONTEXT", "EXTENDED_HEADERS",
    };

    return opt >= 1 && opt < sizeof(names) / sizeof(names[0]) ? names[opt]
                                                              : "unknown";
}

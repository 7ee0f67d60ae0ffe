/* SPDX-License-Identifier: MIT */
/*
 * export/nbd-proto.h - the NBD protocol on the wire (the NBD project's
 * doc/proto.md; QEMU's include/block/nbd.h) and the server's pure
 * message checks, shared by the server (nbd-server.c, nbd-export.c), the
 * C unit tests and the fuzz target.  Not a public header.
 *
 * Everything on the wire is big-endian.  A connection goes:
 *
 *   S: "NBDMAGIC" "IHAVEOPT" handshake-flags(16)     fixed newstyle
 *   C: client-flags(32)
 *   C: "IHAVEOPT" option(32) length(32) data       } repeated: option
 *   S: REP_MAGIC option(32) type(32) length(32) data } haggling
 *      ... until NBD_OPT_GO is answered NBD_REP_ACK (or EXPORT_NAME)
 *   C: REQUEST_MAGIC flags(16) type(16) cookie(64) offset(64) length(32)
 *      [length bytes for WRITE]                     transmission
 *   S: SIMPLE_REPLY_MAGIC error(32) cookie(64) [data for READ], or
 *      STRUCTURED_REPLY_MAGIC flags(16) type(16) cookie(64) length(32)
 *      payload   (chunks; the last one has NBD_REPLY_FLAG_DONE)
 */
#ifndef AIOLAB_NBD_PROTO_H
#define AIOLAB_NBD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- magic numbers --------------------------------------------------- */
#define NBD_INIT_MAGIC              0x4e42444d41474943ULL /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC              0x49484156454f5054ULL /* "IHAVEOPT" */
#define NBD_REP_MAGIC               0x0003e889045565a9ULL
#define NBD_REQUEST_MAGIC           0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC      0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC  0x668e33efu

/* --- handshake ------------------------------------------------------- */
#define NBD_FLAG_FIXED_NEWSTYLE     (1 << 0)    /* handshake flags */
#define NBD_FLAG_NO_ZEROES          (1 << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE   (1 << 0)    /* client flags */
#define NBD_FLAG_C_NO_ZEROES        (1 << 1)

/* Transmission flags (16 bits, in NBD_INFO_EXPORT / EXPORT_NAME). */
#define NBD_FLAG_HAS_FLAGS          (1 << 0)
#define NBD_FLAG_READ_ONLY          (1 << 1)
#define NBD_FLAG_SEND_FLUSH         (1 << 2)
#define NBD_FLAG_SEND_FUA           (1 << 3)
#define NBD_FLAG_ROTATIONAL         (1 << 4)
#define NBD_FLAG_SEND_TRIM          (1 << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES  (1 << 6)
#define NBD_FLAG_SEND_DF            (1 << 7)
#define NBD_FLAG_CAN_MULTI_CONN     (1 << 8)
#define NBD_FLAG_SEND_RESIZE        (1 << 9)
#define NBD_FLAG_SEND_CACHE         (1 << 10)
#define NBD_FLAG_SEND_FAST_ZERO     (1 << 11)

/* Options. */
#define NBD_OPT_EXPORT_NAME         1
#define NBD_OPT_ABORT               2
#define NBD_OPT_LIST                3
#define NBD_OPT_PEEK_EXPORT         4
#define NBD_OPT_STARTTLS            5
#define NBD_OPT_INFO                6
#define NBD_OPT_GO                  7
#define NBD_OPT_STRUCTURED_REPLY    8
#define NBD_OPT_LIST_META_CONTEXT   9
#define NBD_OPT_SET_META_CONTEXT    10
#define NBD_OPT_EXTENDED_HEADERS    11

/* Option replies; errors have bit 31 set. */
#define NBD_REP_ACK                 1u
#define NBD_REP_SERVER              2u
#define NBD_REP_INFO                3u
#define NBD_REP_META_CONTEXT        4u
#define NBD_REP_ERR(n)              ((1u << 31) | (n))
#define NBD_REP_ERR_UNSUP           NBD_REP_ERR(1)
#define NBD_REP_ERR_POLICY          NBD_REP_ERR(2)
#define NBD_REP_ERR_INVALID         NBD_REP_ERR(3)
#define NBD_REP_ERR_PLATFORM        NBD_REP_ERR(4)
#define NBD_REP_ERR_TLS_REQD        NBD_REP_ERR(5)
#define NBD_REP_ERR_UNKNOWN         NBD_REP_ERR(6)
#define NBD_REP_ERR_SHUTDOWN        NBD_REP_ERR(7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR(8)
#define NBD_REP_ERR_TOO_BIG         NBD_REP_ERR(9)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT             0
#define NBD_INFO_NAME               1
#define NBD_INFO_DESCRIPTION        2
#define NBD_INFO_BLOCK_SIZE         3

/* --- transmission ---------------------------------------------------- */
#define NBD_CMD_READ                0
#define NBD_CMD_WRITE               1
#define NBD_CMD_DISC                2
#define NBD_CMD_FLUSH               3
#define NBD_CMD_TRIM                4
#define NBD_CMD_CACHE               5
#define NBD_CMD_WRITE_ZEROES        6
#define NBD_CMD_BLOCK_STATUS        7

#define NBD_CMD_FLAG_FUA            (1 << 0)
#define NBD_CMD_FLAG_NO_HOLE        (1 << 1)
#define NBD_CMD_FLAG_DF             (1 << 2)
#define NBD_CMD_FLAG_REQ_ONE        (1 << 3)
#define NBD_CMD_FLAG_FAST_ZERO      (1 << 4)

#define NBD_REPLY_FLAG_DONE         (1 << 0)
#define NBD_REPLY_TYPE_NONE         0
#define NBD_REPLY_TYPE_OFFSET_DATA  1
#define NBD_REPLY_TYPE_OFFSET_HOLE  2
#define NBD_REPLY_TYPE_ERROR        ((1 << 15) + 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET ((1 << 15) + 2)

/* Error values of replies (the protocol's own numbering). */
#define NBD_SUCCESS                 0
#define NBD_EPERM                   1
#define NBD_EIO                     5
#define NBD_ENOMEM                  12
#define NBD_EINVAL                  22
#define NBD_ENOSPC                  28
#define NBD_EOVERFLOW               75
#define NBD_ENOTSUP                 95
#define NBD_ESHUTDOWN               108

/* --- sizes ----------------------------------------------------------- */
#define NBD_OPTION_HDR_SIZE         16  /* magic, option, length */
#define NBD_OPT_REPLY_HDR_SIZE      20  /* magic, option, type, length */
#define NBD_REQUEST_SIZE            28
#define NBD_SIMPLE_REPLY_SIZE       16
#define NBD_CHUNK_HDR_SIZE          20
#define NBD_MAX_STRING_SIZE         4096
/* Largest READ/WRITE payload, advertised as the maximum (QEMU's
 * NBD_MAX_BUFFER_SIZE, and the protocol's "never a DoS" bound). */
#define NBD_MAX_BUFFER_SIZE         (32 * 1024 * 1024)
/* Largest option payload the server reads (an INFO/GO with a 4096-byte
 * name and every information request fits); longer: a hard disconnect. */
#define NBD_MAX_OPTION_SIZE         (4 + NBD_MAX_STRING_SIZE + 2 + 65535 * 2)

/* --- byte order ------------------------------------------------------ */
static inline uint16_t nbd_ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t nbd_ld32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t nbd_ld64(const uint8_t *p)
{
    return (uint64_t)nbd_ld32(p) << 32 | nbd_ld32(p + 4);
}

static inline void nbd_st16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = v;
}

static inline void nbd_st32(uint8_t *p, uint32_t v)
{
    nbd_st16(p, v >> 16);
    nbd_st16(p + 2, v);
}

static inline void nbd_st64(uint8_t *p, uint64_t v)
{
    nbd_st32(p, v >> 32);
    nbd_st32(p + 4, v);
}

/* --- the server's checks (nbd-proto.c): pure functions ------------------ */

/* A request header, decoded. */
typedef struct NBDRequest {
    uint16_t flags;
    uint16_t type;
    uint64_t cookie;            /* the client's handle, echoed in replies */
    uint64_t from;
    uint32_t len;
} NBDRequest;

/* What the server tells a connection it may do (from the handshake). */
typedef struct NBDExportLimits {
    uint64_t size;              /* export size in bytes */
    bool writable;
    bool structured;            /* NBD_OPT_STRUCTURED_REPLY negotiated */
    uint32_t max_payload;       /* NBD_MAX_BUFFER_SIZE */
} NBDExportLimits;

/* nbd_check_request()'s verdict. */
typedef enum NBDRequestVerdict {
    NBD_REQ_SERVE,              /* do it */
    NBD_REQ_ERROR,              /* reply *@error without doing it */
    NBD_REQ_DISCONNECT,         /* NBD_CMD_DISC: finish, then close */
    NBD_REQ_DROP,               /* a protocol violation: hard disconnect */
} NBDRequestVerdict;

/*
 * nbd_parse_request: decode a 28-byte request header.
 * Returns: false if the magic is wrong (a hard disconnect).
 */
bool nbd_parse_request(const uint8_t *buf, NBDRequest *req);

/*
 * nbd_check_request: decide what to do with @req (QEMU's
 * nbd_co_receive_request checks): unknown commands and flags, ranges
 * beyond the export, writes to a read-only export and oversized reads
 * are errors the client gets in a reply; a write longer than the
 * largest payload is a hard disconnect (its data cannot be skipped
 * safely).  *@payload is set to the bytes that follow the header (a
 * write's data, read and dropped even when the write is refused);
 * *@error to an NBD_E* value for NBD_REQ_ERROR; *@why to a message for
 * the log (static string).
 */
NBDRequestVerdict nbd_check_request(const NBDRequest *req,
                                    const NBDExportLimits *lim,
                                    uint32_t *payload, uint32_t *error,
                                    const char **why);

/* The data of NBD_OPT_INFO / NBD_OPT_GO, decoded. */
typedef struct NBDInfoOpt {
    const uint8_t *name;        /* not NUL-terminated: @name_len bytes */
    uint32_t name_len;
    uint16_t n_requests;
    bool want_name, want_description, want_block_size;
} NBDInfoOpt;

/*
 * nbd_parse_info_opt: decode INFO/GO data (name length, name, count,
 * requests); the lengths must add up exactly, the name be at most
 * NBD_MAX_STRING_SIZE bytes without a NUL.  Unknown requests are
 * ignored, as the protocol asks.
 * Returns: false with *@why set (reply NBD_REP_ERR_INVALID).
 */
bool nbd_parse_info_opt(const uint8_t *data, uint32_t len, NBDInfoOpt *opt,
                        const char **why);

/* nbd_errno: the NBD error value for a -errno from the block layer. */
uint32_t nbd_errno(int err);

/* nbd_cmd_name / nbd_opt_name: for log messages ("unknown" if so). */
const char *nbd_cmd_name(uint16_t type);
const char *nbd_opt_name(uint32_t opt);

#endif

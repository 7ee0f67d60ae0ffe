/* SPDX-License-Identifier: MIT */
/*
 * export/nbd-int.h - what the NBD server's files share: a connection
 * (NBDClient), an NBD export (NBDExport), the socket helpers that yield
 * their coroutine instead of blocking, and the hand-over from the
 * handshake to the transmission phase.  Not a public header.
 *
 * Files:
 *   nbd-proto.c   the wire format's checks (pure functions)
 *   nbd-conn.c    a connection: its buffer, reads and writes in
 *                 coroutines, references, closing
 *   nbd-server.c  nbd-server-start/stop: the listening socket and the
 *                 handshake (option haggling), in the iohandler context
 *   nbd-export.c  the "nbd" export driver and the transmission phase:
 *                 requests as coroutines in the export's AioContext,
 *                 drained sections, AioContext changes
 *
 * A connection's threads:
 *
 *   main thread, iohandler context   accept, handshake, (error) close
 *        | NBD_OPT_GO: nbd_client_attach() (main loop, BQL held)
 *        v
 *   the export's AioContext          the receive loop and one coroutine
 *   (main loop or an IOThread)       per request; reply sending
 *        | EOF, error, NBD_CMD_DISC, shutdown
 *        v
 *   main loop BH                      unlisted from the export; the last
 *                                     reference closes the socket and
 *                                     drops the export's reference
 */
#ifndef AIOLAB_NBD_INT_H
#define AIOLAB_NBD_INT_H

#include <sys/uio.h>
#include "block/block_int.h"
#include "export/export-int.h"
#include "export/nbd-proto.h"

/*
 * Requests a connection may have read but not answered, and their data
 * buffers' total: the receive loop stops reading at either limit.
 * Where QEMU differs: QEMU's MAX_NBD_REQUESTS is 16, with no byte limit
 * (16 x 32 MiB); at 16 a client at queue depth 32 made the loop park and
 * restart (remove and re-add its fd handler: two epoll_ctl calls) once
 * per request.  32 requests and 64 MiB of buffers keep a QD32 client
 * streaming and bound a client's memory lower than QEMU does.
 */
#define NBD_MAX_REQUESTS        32
#define NBD_MAX_INFLIGHT_BYTES  (64 * 1024 * 1024)
/* The receive buffer: several small requests per read(2) at depth. */
#define NBD_INBUF_SIZE      (64 * 1024)

typedef struct NBDClient NBDClient;
typedef struct NBDExport NBDExport;

struct NBDExport {
    BlockExport common;

    /* --- Set at create, then read-only --------------------------------- */
    char *name;                 /* what clients ask for (default: node) */
    char *description;          /* NBD_INFO_DESCRIPTION, or NULL */
    uint64_t size;              /* bytes, fixed at create */
    uint32_t min_block;         /* the node's request alignment */
    bool multi_conn;            /* NBD_FLAG_CAN_MULTI_CONN */

    /* --- Main loop, BQL held ---------------------------------------------- */
    bool quiescing;             /* inside a drained section of the node */
    NBDClient *clients;         /* connections in the transmission phase */
};

struct NBDClient {
    unsigned id;                /* for log messages: "NBD client 3" */
    int fd;

    /* --- Atomic -------------------------------------------------------- */
    int refcount;               /* the connection + each coroutine + BH */
    int nb_requests;            /* read (or being read) and not answered;
                                 * the main loop's drained_poll reads it */
    int bh_pending;             /* kick/resume/close BHs not yet run */
    bool quiescing;             /* drained: read no new request */

    /* --- Main loop, BQL held ------------------------------------------- */
    NBDExport *exp;             /* set by nbd_client_attach() */
    NBDClient *next;            /* in the server's or the export's list */
    bool listed;                /* in one of those lists */
    /* Where the connection's handlers and coroutines run: the iohandler
     * context during the handshake, then the export's.  Changes only
     * while no coroutine of the connection exists (a drained section). */
    AioContext *ctx;

    /* --- Home thread of @ctx ------------------------------------------- */
    uint8_t *inbuf;             /* bytes read but not yet consumed */
    size_t in_pos, in_end;
    Coroutine *reader;          /* waiting until the socket is readable */
    Coroutine *writer;          /* waiting until it is writable */
    bool read_handler;          /* a read handler is installed */
    bool interruptible;         /* @reader waits for a request's first
                                 * byte: a drain may interrupt it */
    Coroutine *recv_co;         /* the receive loop, NULL when parked */
    CoMutex send_lock;          /* one reply on the wire at a time */
    bool structured;            /* NBD_OPT_STRUCTURED_REPLY negotiated */
    bool closing;               /* no new request will be read */
    uint64_t inflight_bytes;    /* data buffers of requests in flight */
    bool unlist_scheduled;      /* the unlisting BH is on its way */
};

/* --- nbd-conn.c ------------------------------------------------------- */

/* Set by the fuzz target: no log lines about clients (FUZZ_VERBOSE=1
 * turns them back on there). */
extern bool nbd_quiet;
/* error_report() about a client (a dropped connection, a refused or
 * failed request), unless nbd_quiet.  Any thread. */
void nbd_log(const char *fmt, ...) AIOLAB_PRINTF(1, 2);

/* A new connection on @fd (made non-blocking), refcount 1 (the list's),
 * handlers in @ctx.  Main loop, BQL held. */
NBDClient *nbd_client_new(int fd, AioContext *ctx);
void nbd_client_ref(NBDClient *c);
/* The last reference closes the socket and drops the export's
 * reference.  Any thread, with no handler of the client installed. */
void nbd_client_unref(NBDClient *c);

/*
 * nbd_co_read: read exactly @len bytes (buffered).  With @first set, the
 * caller waits for a new request: a drain or a close may interrupt the
 * wait before a byte has arrived, and then -EAGAIN is returned.
 * Returns: 0; -EAGAIN (interrupted); -EPIPE (the peer closed the
 * connection before the first byte of a message: a clean end when
 * @first); -EIO (closed midway, an error, or the connection closing).
 * Context: coroutine_fn in @c->ctx.
 */
int coroutine_fn nbd_co_read(NBDClient *c, void *buf, size_t len,
                             bool first);
/* nbd_co_skip: read and drop @len bytes.  Returns as nbd_co_read(). */
int coroutine_fn nbd_co_skip(NBDClient *c, uint64_t len);
/*
 * nbd_co_writev: write everything in @iov (the vector is consumed),
 * yielding while the socket is full.  Callers serialise with
 * @c->send_lock in the transmission phase.
 * Returns: 0 or -EIO.  Context: coroutine_fn in @c->ctx.
 */
int coroutine_fn nbd_co_writev(NBDClient *c, struct iovec *iov, int niov);

/* Install or remove the read handler (the receive loop keeps it while it
 * runs).  Home thread of @c->ctx. */
void nbd_client_set_read_handler(NBDClient *c, bool on);
/* Mark the connection closing and shut its socket down (@how: SHUT_RD
 * when the peer is gone, SHUT_RDWR to drop it); wake a coroutine waiting
 * on it.  Home thread of @c->ctx. */
void nbd_client_shutdown(NBDClient *c, int how);
/* Wake the reader if it waits for a request's first byte (a drain began,
 * or the connection closes).  Home thread of @c->ctx. */
void nbd_client_interrupt(NBDClient *c);

/* --- nbd-server.c ----------------------------------------------------- */

/* The NBD export named @name that may take new clients, or NULL.
 * Main loop, BQL held.  (nbd-export.c) */
NBDExport *nbd_export_find(const uint8_t *name, size_t len);
/* A connection leaves the server's count (main loop).  */
void nbd_server_client_gone(NBDClient *c);
/* Serve a connected socket (accepted, or one end of a socketpair for
 * the fuzz target): start its handshake.  Main loop, BQL held. */
void nbd_server_add_client(int fd);

/* --- nbd-export.c ----------------------------------------------------- */

/* The transmission flags of @exp for a client (with @structured). */
uint16_t nbd_export_tx_flags(NBDExport *exp, bool structured);

/* The handshake chose @exp: move @c to the export, start its receive
 * loop (in a BH of the export's context).  Main loop, BQL held. */
void nbd_client_attach(NBDClient *c, NBDExport *exp);
/* Remove @c from its export's list (main loop) once its receive loop
 * has ended; called through a BH from the connection's context. */
void nbd_client_schedule_unlist(NBDClient *c);

#endif

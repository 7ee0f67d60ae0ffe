/* SPDX-License-Identifier: MIT */
/*
 * aiolab/export.h - block exports: a node of the graph served to clients
 * outside the process (NBD, vhost-user-blk), QEMU's include/block/export.h
 * and block/export/export.c.
 *
 * An export is a BlockBackend on a node plus a driver that speaks some
 * protocol to clients.  The framework does the part every protocol
 * shares:
 *
 *   blk_exp_add("type=nbd,id=exp0,node-name=disk0,writable=on,name=d0")
 *     - finds the driver for type=, checks the id is new and well formed
 *     - finds the node; writable=on on a read-only node is refused
 *     - iothread=ID: moves the node to that IOThread's AioContext; if the
 *       move is refused, fixed-iothread=on fails the add, otherwise the
 *       export stays in the node's context (QEMU's fixed-iothread)
 *     - opens a BlockBackend on the node in that context, writable only
 *       with writable=on; without fixed-iothread=on it may follow the
 *       node when the node moves later (blk_set_allow_aio_context_change)
 *     - attaches BlockDevOps (drained_begin/end/poll) and an AioContext
 *       notifier that forward to the driver's optional hooks below and
 *       keep exp->ctx up to date
 *     - refuses any key no one reads (a typo never goes unnoticed)
 *     - calls the driver's create(), which starts serving
 *
 * Life of an export (refcount: the user's reference plus one per
 * connection or in-flight piece of work the driver chooses to count):
 *
 *   blk_exp_add ----> [user_owned, refcount >= 1]
 *     blk_exp_request_shutdown (QMP block-export-del, quit, SIGTERM):
 *       driver's request_shutdown() (close listeners, disconnect clients)
 *       user_owned = false, drop the user's reference
 *   [shutting down: refcount > 0 while connections drain]
 *     last blk_exp_unref (any thread) --> a main-loop BH deletes it:
 *       driver's delete(), BlockDevOps and notifier removed, BlockBackend
 *       drained and flushed (if writable), then unref'd; freed
 *
 * Options are one -blockdev style string ("key=value,key=value", ",," a
 * literal comma; QMP's nested "addr": {"type": ...} arrives flattened as
 * addr.type=...).  The framework reads type, id, node-name, writable,
 * writethrough, iothread and fixed-iothread; each driver reads its own
 * keys with blk_exp_opt_get*() and lists them in its @options table.
 *
 * How a driver registers: define a `const BlockExportDriver` in
 * c/export/<name>.c with instance_size covering a struct whose first
 * member is a BlockExport, declare it in c/export/export-int.h and add it
 * to blk_exp_drivers[] in c/export/export.c (the built-in table, as
 * QEMU's).  Code outside the library (a test) may call
 * blk_exp_driver_register() instead.
 *
 * Where QEMU differs: no QAPI BlockExportOptions (a flat option string,
 * checked against the driver's key table), no permissions (writable=off
 * is enforced by the drivers refusing writes, and a read-only node cannot
 * be exported writable), no BLOCK_EXPORT_DELETED QAPI event (a deleted
 * listener instead, see blk_exp_set_deleted_listener()), writethrough=on
 * makes each write FUA instead of disabling the BlockBackend's write
 * cache, and the framework (not each driver) attaches the BlockDevOps and
 * AioContext notifier.
 */
#ifndef AIOLAB_EXPORT_H
#define AIOLAB_EXPORT_H

#include <aiolab/block-backend.h>

typedef struct BlockExport BlockExport;
typedef struct BlockExportDriver BlockExportDriver;
typedef struct BlockExportOptions BlockExportOptions;

struct BlockExportDriver {
    /* The export type ("nbd", "vhost-user-blk"): the type= value. */
    const char *type;
    /* Size of the driver's state; a BlockExport must be its first member. */
    size_t instance_size;
    /* The keys create() may read (NULL-terminated); any other key besides
     * the framework's is refused before anything is created. */
    const char *const *options;

    /*
     * create: start serving.  exp->drv, id, refcount (1), user_owned,
     * blk, ctx and writable are set.  Read options with blk_exp_opt_get*().
     * Returns: 0, or -errno with @errp set (then delete() is not called:
     * undo what was done).  Main loop, BQL held.
     */
    int (*create)(BlockExport *exp, BlockExportOptions *opts, Error **errp);
    /*
     * delete: free the driver's resources; the refcount reached 0, so no
     * connection and no request is left.  Main loop, BQL held.
     */
    void (*delete)(BlockExport *exp);
    /*
     * request_shutdown: stop accepting clients and disconnect the ones
     * there are; each connection drops its reference when it is gone.
     * Main loop, BQL held.
     */
    void (*request_shutdown)(BlockExport *exp);

    /* --- Optional hooks (NULL: nothing to do) --------------------------
     * drained_begin/end: the node's first drain begins / last one ends:
     * stop and restart reading new requests.  drained_poll: still busy
     * (a request read but not yet submitted)?  Whoever makes it false from
     * another thread calls aio_wait_kick().  Main loop, BQL held. */
    void (*drained_begin)(BlockExport *exp);
    void (*drained_end)(BlockExport *exp);
    bool (*drained_poll)(BlockExport *exp);
    /* The node is leaving exp->ctx / has arrived in @new_ctx (exp->ctx is
     * already @new_ctx when attach runs).  Main loop, BQL held, the node
     * drained: move fd handlers and host notifiers. */
    void (*detach_aio_context)(BlockExport *exp);
    void (*attach_aio_context)(BlockExport *exp, AioContext *new_ctx);
};

/*
 * BlockExport: the part of every export the framework owns.  The driver's
 * state embeds it first.
 */
struct BlockExport {
    /* --- Set by blk_exp_add(), then read-only ---------------------------- */
    const BlockExportDriver *drv;
    char *id;
    BlockBackend *blk;          /* the export's BlockBackend */
    bool writable;              /* writable=on */
    bool writethrough;          /* writethrough=on: writes are FUA */

    /* --- Atomic ---------------------------------------------------------- */
    int refcount;               /* the user's + the driver's references */

    /* --- Main loop, BQL held --------------------------------------------- */
    bool user_owned;            /* false once shutdown was requested */
    AioContext *ctx;            /* where the export's handlers run; changes
                                 * only with the node drained */
    BlockExport *next;          /* all exports, newest first */
};

/* ---------------------------------------------------------------------
 * Global state: main loop, BQL held
 * --------------------------------------------------------------------- */

/**
 * blk_exp_add: create and start an export.
 * @options: "type=nbd,id=exp0,node-name=disk0[,writable=on][,
 *   writethrough=on][,iothread=ID][,fixed-iothread=on]" plus the driver's
 *   own keys (nbd: name, description; vhost-user-blk: addr.type,
 *   addr.path, num-queues, logical-block-size, ...).
 *
 * Errors (QEMU's wording where QEMU has one): "Parameter 'type' is
 * missing", "export type 'X' is not available", "Invalid block export
 * id", "Block export id 'X' is already in use", "Cannot find device=''
 * nor node-name='X'", "Cannot export read-only node as writable",
 * "iothread \"X\" not found", a refused move with fixed-iothread=on,
 * "Parameter 'X' is unexpected", and the driver's own.
 * Returns: the export (owned by the user: blk_exp_request_shutdown()
 * ends it), or NULL with @errp set and nothing changed but a node move
 * that fixed-iothread=off allowed.
 * Context: main loop, BQL held.
 */
AIOLAB_API BlockExport *blk_exp_add(const char *options, Error **errp);

/**
 * blk_exp_find: the export called @id, or NULL (also while it shuts down,
 * until it is deleted).  Context: main loop, BQL held.
 */
AIOLAB_API BlockExport *blk_exp_find(const char *id);

/**
 * blk_exp_next: iterate over the exports: blk_exp_next(NULL) is the
 * first, NULL after the last.  Context: main loop, BQL held.
 */
AIOLAB_API BlockExport *blk_exp_next(BlockExport *exp);

/**
 * blk_exp_request_shutdown: drop the user's reference and ask the driver
 * to disconnect its clients.  The export may live on until its
 * connections are gone; a second call does nothing.
 * Context: main loop, BQL held.
 */
AIOLAB_API void blk_exp_request_shutdown(BlockExport *exp);

/**
 * blk_exp_close_all_type: request shutdown of every export of @type (NULL:
 * every export), then poll until they are all deleted (each BlockBackend
 * drained and flushed).
 * Context: main loop, BQL held; not from a coroutine.
 */
AIOLAB_API void blk_exp_close_all_type(const char *type);

/**
 * blk_exp_close_all: blk_exp_close_all_type(NULL), as qemu-storage-daemon
 * does at exit.  Context: main loop, BQL held; not from a coroutine.
 */
AIOLAB_API void blk_exp_close_all(void);

/**
 * blk_exp_set_deleted_listener: call @fn(@id, @opaque) whenever an export
 * has been deleted (QEMU's BLOCK_EXPORT_DELETED event).  One listener;
 * NULL removes it.  Context: main loop, BQL held.
 */
AIOLAB_API void blk_exp_set_deleted_listener(void (*fn)(const char *id,
                                                        void *opaque),
                                             void *opaque);

/**
 * blk_exp_driver_register: add @drv to the drivers blk_exp_add() knows,
 * for code outside the library (tests); the built-in drivers are in
 * export.c's table.  A type registered twice aborts.
 * Context: main loop, BQL held.
 */
AIOLAB_API void blk_exp_driver_register(const BlockExportDriver *drv);

/**
 * blk_exp_driver_available: is there a driver for @type?
 * Context: main loop, BQL held.
 */
AIOLAB_API bool blk_exp_driver_available(const char *type);

/* ---------------------------------------------------------------------
 * Any thread
 * --------------------------------------------------------------------- */

/**
 * blk_exp_ref: take a reference (a driver does, per connection).
 * Context: any thread, holding a reference already.
 */
AIOLAB_API void blk_exp_ref(BlockExport *exp);

/**
 * blk_exp_unref: drop a reference; the last one schedules the deletion in
 * a main-loop BH (never inside this call).
 * Context: any thread.
 */
AIOLAB_API void blk_exp_unref(BlockExport *exp);

/* ---------------------------------------------------------------------
 * For drivers, inside create(): the option list
 * --------------------------------------------------------------------- */

/**
 * blk_exp_opt_get: the value of @key (which must be in the driver's
 * options table), or NULL if absent.  Context: main loop, BQL held.
 */
AIOLAB_API const char *blk_exp_opt_get(BlockExportOptions *opts,
                                       const char *key);

/**
 * blk_exp_opt_get_bool: on/off (also true/false, yes/no) into *@out, which
 * is left alone when @key is absent.
 * Returns: false with @errp set ("Parameter 'X' expects 'on' or 'off'").
 * Context: main loop, BQL held.
 */
AIOLAB_API bool blk_exp_opt_get_bool(BlockExportOptions *opts,
                                     const char *key, bool *out,
                                     Error **errp);

/**
 * blk_exp_opt_get_int: an integer in [@min, @max] into *@out, which is
 * left alone when @key is absent.
 * Returns: false with @errp set.  Context: main loop, BQL held.
 */
AIOLAB_API bool blk_exp_opt_get_int(BlockExportOptions *opts,
                                    const char *key, int64_t min,
                                    int64_t max, int64_t *out, Error **errp);

#endif

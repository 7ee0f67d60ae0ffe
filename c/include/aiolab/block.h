/* SPDX-License-Identifier: MIT */
/*
 * aiolab/block.h - block nodes (BlockDriverState), the graph they form,
 * in-flight accounting, drained sections and AioContext changes
 * (QEMU's include/block/block-global-state.h and block-io.h).
 *
 * A node is an instance of a driver ("file", "null-co", "blkdebug", ...)
 * with a node name.  Nodes are connected by edges (BdrvChild): a filter
 * node is the parent of its "image"/"file" child; a BlockBackend (see
 * block-backend.h) is the parent of its root node.
 *
 *     BlockBackend (a device's view)
 *          | root
 *     [dbg0: blkdebug]   <- parents are "above"
 *          | image
 *     [disk0: file]      <- children are "below"
 *
 * Two counters per node carry the concurrency lesson:
 *   in_flight        requests inside the node now (any thread adds them)
 *   quiesce_counter  how many drained sections cover the node (main loop)
 *
 * bdrv_drained_begin(bs) stops the parents of @bs from issuing new
 * requests and waits until @bs and its parents have none in flight;
 * between begin and end the main loop may change the graph safely.
 *
 * Header sections follow QEMU's split by calling context.
 *
 * Where QEMU differs: no permission system (BLK_PERM_*), no block graph
 * lock, no format probing (a filename alone opens the "file" driver
 * raw), no QDict options: options are one -blockdev style string, and a
 * child is given by node name ("image=disk0"), never nested options.
 */
#ifndef AIOLAB_BLOCK_H
#define AIOLAB_BLOCK_H

#include <aiolab/aio.h>
#include <aiolab/iov.h>
#include <aiolab/thread-pool.h>

typedef struct BlockDriverState BlockDriverState;
typedef struct BlockBackend BlockBackend;
typedef struct BdrvChild BdrvChild;

/* Request flags, with QEMU's values. */
typedef enum {
    BDRV_REQ_ZERO_WRITE = 0x2,      /* write zeroes (no data buffer) */
    BDRV_REQ_MAY_UNMAP = 0x4,       /* zeroes may be a hole (discard) */
    BDRV_REQ_FUA = 0x10,            /* force unit access: flush after */
    BDRV_REQ_NO_FALLBACK = 0x100,   /* no slow emulation of write zeroes */
} BdrvRequestFlags;

/* Open flags, with QEMU's values. */
#define BDRV_O_RDWR    0x0002       /* writable; without it: read-only */
#define BDRV_O_NOCACHE 0x0020       /* O_DIRECT (as cache.direct=on) */
#define BDRV_O_UNMAP   0x4000       /* honour discards (as discard=unmap) */

/* What to do when a request fails (QAPI BlockdevOnError), QEMU's order:
 * a block job's on-source-error/on-target-error (aiolab/blockjob.h) and
 * a virtio-blk device's -drive rerror=/werror= (aiolab/hw/virtio-blk.h). */
typedef enum BlockdevOnError {
    BLOCKDEV_ON_ERROR_REPORT,   /* job: fail with the errno; device:
                                 * complete the request with IOERR */
    BLOCKDEV_ON_ERROR_IGNORE,   /* job: retry later, carry on; device:
                                 * pretend it worked, status OK */
    BLOCKDEV_ON_ERROR_ENOSPC,   /* stop on ENOSPC, report the rest */
    BLOCKDEV_ON_ERROR_STOP,     /* job: pause (user-paused); device:
                                 * park the request and stop the VM */
    BLOCKDEV_ON_ERROR_AUTO,     /* device: the backend's choice, report;
                                 * jobs: report */
} BlockdevOnError;

/* What was done about one error (QAPI BlockErrorAction), QEMU's order. */
typedef enum BlockErrorAction {
    BLOCK_ERROR_ACTION_IGNORE,
    BLOCK_ERROR_ACTION_REPORT,
    BLOCK_ERROR_ACTION_STOP,
} BlockErrorAction;

/* ---------------------------------------------------------------------
 * Global state: main loop, BQL held (QEMU's GLOBAL_STATE_CODE)
 * --------------------------------------------------------------------- */

/**
 * bdrv_open: open a node.
 * @filename: a file to open with the "file" driver, or NULL.
 * @reference: the node name of an existing node to return with a new
 *             reference (then @filename and @options must be NULL), or
 *             NULL.
 * @options: a -blockdev style string, e.g.
 *   "driver=file,filename=disk.img,aio=io_uring,cache.direct=on,node-name=disk0"
 *   "driver=null-co,size=1G,latency-ns=100000,read-zeroes=on"
 *   "driver=blkdebug,image=disk0,node-name=dbg0,latency-ns=1000000"
 *   Generic keys: driver, node-name, read-only, cache.direct, discard
 *   (unmap|ignore, default ignore as in QEMU).  A literal comma in a
 *   value is written ",,".  aio=io_uring falls back to aio=threads, with
 *   a warning, where the kernel refuses io_uring, and always in a
 *   ThreadSanitizer build (TSan cannot see the kernel's writes into the
 *   rings).
 * @flags: BDRV_O_* (without BDRV_O_RDWR the node is read-only, as in QEMU;
 *         a read-only=on|off option overrides it).
 *
 * A node without a node-name gets "#blockN".  A new node lives in the
 * main context, or in its first child's context (see block.c).  A node
 * opened inside bdrv_drain_all_begin/end starts drained.
 *
 * Returns: the node with one reference, or NULL with @errp set (unknown
 * driver or option, bad value, missing file, duplicate node name...).
 * Context: main loop, BQL held.
 */
AIOLAB_API BlockDriverState *bdrv_open(const char *filename,
                                       const char *reference,
                                       const char *options, int flags,
                                       Error **errp);

/** bdrv_ref: take a reference.  Context: main loop, BQL held. */
AIOLAB_API void bdrv_ref(BlockDriverState *bs);

/**
 * bdrv_unref: drop a reference; the last one closes the node (after
 * draining it) and detaches its children.  NULL is allowed.
 * Context: main loop, BQL held.
 */
AIOLAB_API void bdrv_unref(BlockDriverState *bs);

/**
 * bdrv_find_node: the node named @node_name, or NULL.  No new reference.
 * Context: main loop, BQL held.
 */
AIOLAB_API BlockDriverState *bdrv_find_node(const char *node_name);

/**
 * bdrv_replace_node: make every parent of @from (BlockBackends and parent
 * nodes) point to @to instead, inside a drained section of both.  Edges
 * whose parent is @to itself or below it are left alone (no cycles).
 * Returns: 0, or -errno with @errp set (different AioContexts).
 * Context: main loop, BQL held.
 */
AIOLAB_API int bdrv_replace_node(BlockDriverState *from, BlockDriverState *to,
                                 Error **errp);

/**
 * bdrv_try_change_aio_context: move @bs and everything connected to it
 * (parents and children, transitively) to @ctx, all or nothing.
 * @ignore_child: an edge not to follow (NULL for none).
 *
 * Each visited parent is asked first; a BlockBackend with a device
 * attached refuses ("Cannot change iothread of active block backend").
 * Then every node is drained, every node's AioContext notifiers get
 * detach_aio_context(), the node switches, attached_aio_context(new)
 * runs, and finally all the drains end.
 * Returns: 0 (also when @bs is already in @ctx), or -EPERM with @errp set
 * and nothing changed.
 * Context: main loop, BQL held; may be called inside a drained section.
 */
AIOLAB_API int bdrv_try_change_aio_context(BlockDriverState *bs,
                                           AioContext *ctx,
                                           BdrvChild *ignore_child,
                                           Error **errp);

/**
 * bdrv_add_aio_context_notifier: call @detach_aio_context(@opaque) before
 * @bs leaves its AioContext and @attached_aio_context(new, @opaque) after
 * it arrives in a new one (both in the main loop, with @bs drained).
 * This is how a user of a node (an export, a job) follows it between
 * threads.  Context: main loop, BQL held.
 */
AIOLAB_API void bdrv_add_aio_context_notifier(BlockDriverState *bs,
        void (*attached_aio_context)(AioContext *new_context, void *opaque),
        void (*detach_aio_context)(void *opaque), void *opaque);

/**
 * bdrv_remove_aio_context_notifier: remove a notifier added with exactly
 * these three values.  Removing one that was never added aborts.
 * Context: main loop, BQL held (also from inside a notifier).
 */
AIOLAB_API void bdrv_remove_aio_context_notifier(BlockDriverState *bs,
        void (*attached_aio_context)(AioContext *, void *),
        void (*detach_aio_context)(void *), void *opaque);

/**
 * bdrv_drained_begin: begin a drained section of @bs.
 *
 * The node and all its parents (transitively: BlockBackends, filters
 * above it; never its children) are quiesced: on a node's first drain
 * (quiesce_counter 0 -> 1) each parent edge's drained_begin runs, parent
 * before child, so no parent issues new requests; then the driver's
 * drain_begin.  Only this top-level call polls, once, until @bs and its
 * parents have nothing in flight (and every BlockBackend's device reports
 * idle).  Sections nest.
 *
 * Called from a coroutine (in any thread), it hands the work to the main
 * loop through a BH and yields until it is done.
 * Context: main loop, BQL held; or coroutine_fn in any thread.
 */
AIOLAB_API void bdrv_drained_begin(BlockDriverState *bs);

/**
 * bdrv_drained_end: end a drained section.  On the last end (1 -> 0) the
 * driver's drain_end runs, then each parent's drained_end (child before
 * parent); parked requests resume.  Never polls: whatever restarts runs
 * later in the event loops.  An end without a begin aborts.
 * Context: as bdrv_drained_begin().
 */
AIOLAB_API void bdrv_drained_end(BlockDriverState *bs);

/**
 * bdrv_drain: a drained section with nothing in it (begin, then end).
 * Context: as bdrv_drained_begin().
 */
AIOLAB_API void bdrv_drain(BlockDriverState *bs);

/**
 * bdrv_drain_all_begin: drain every node, each one individually (so a node
 * with a drained child is quiesced twice), then poll once until none has
 * requests in flight.  Nodes opened before the matching end start drained.
 * Context: main loop, BQL held; or coroutine_fn (bounces to the main loop).
 */
AIOLAB_API void bdrv_drain_all_begin(void);

/** bdrv_drain_all_end: end bdrv_drain_all_begin().  Context: as begin. */
AIOLAB_API void bdrv_drain_all_end(void);

/**
 * bdrv_drain_all: bdrv_drain_all_begin() then _end().
 * Context: as bdrv_drain_all_begin().
 */
AIOLAB_API void bdrv_drain_all(void);

/**
 * bdrv_unref_child: detach the edge @child of @parent and drop the child's
 * reference.  If the child node has no parent left, it moves back to the
 * main context.  Context: main loop, BQL held.
 */
AIOLAB_API void bdrv_unref_child(BlockDriverState *parent, BdrvChild *child);

/* ---------------------------------------------------------------------
 * Any thread (I/O code)
 * --------------------------------------------------------------------- */

/**
 * bdrv_get_node_name: the node name (never NULL).
 * Context: any thread.
 */
AIOLAB_API const char *bdrv_get_node_name(const BlockDriverState *bs);

/**
 * bdrv_get_format_name: the driver's name ("file", "null-co"...).
 * Context: any thread.
 */
AIOLAB_API const char *bdrv_get_format_name(BlockDriverState *bs);

/**
 * bdrv_getlength: the size in bytes, or -errno.
 * Where QEMU differs: QEMU rounds the size up to 512-byte sectors;
 * aiolab reports the exact byte length.
 * Context: any thread.
 */
AIOLAB_API int64_t bdrv_getlength(BlockDriverState *bs);

/**
 * bdrv_get_aio_context: the node's home context (its notifiers and
 * drivers' event sources live there).  Requests may be submitted from any
 * context: they run in the submitter's.  Context: any thread.
 */
AIOLAB_API AioContext *bdrv_get_aio_context(BlockDriverState *bs);

/**
 * bdrv_is_read_only: opened without write access?
 * Context: any thread.
 */
AIOLAB_API bool bdrv_is_read_only(BlockDriverState *bs);

/**
 * bdrv_inc_in_flight / bdrv_dec_in_flight: count something as a request
 * in @bs, so that a drain waits for it.  The decrement calls
 * aio_wait_kick(), waking a main loop that waits in a drain.
 * Context: any thread.
 */
AIOLAB_API void bdrv_inc_in_flight(BlockDriverState *bs);
AIOLAB_API void bdrv_dec_in_flight(BlockDriverState *bs);

/**
 * bdrv_flush: write the node's and its children's caches to stable
 * storage (read-only nodes: nothing to do, 0).  Synchronous: from outside
 * a coroutine it runs a coroutine in the current context and polls it
 * (AIO_WAIT_WHILE).  Returns: 0 or -errno.
 * Context: any thread with an AioContext (its home thread), or the main
 * loop; also from a coroutine.
 */
AIOLAB_API int bdrv_flush(BlockDriverState *bs);

/*
 * aiolab: read-only accessors for teaching and tests (QEMU reads the
 * fields).  Racy snapshots when other threads run requests.
 */
/**
 * bdrv_get_in_flight: requests in the node now.
 * Context: any thread (a snapshot).
 */
AIOLAB_API int bdrv_get_in_flight(BlockDriverState *bs);
/**
 * bdrv_get_quiesce_counter: drained sections covering the node.
 * Context: any thread (a snapshot; the main loop changes it).
 */
AIOLAB_API int bdrv_get_quiesce_counter(BlockDriverState *bs);
/**
 * aiolab_bdrv_get_refcnt: references held.
 * Context: main loop, BQL held.
 */
AIOLAB_API int aiolab_bdrv_get_refcnt(BlockDriverState *bs);
/**
 * aiolab_bdrv_get_request_alignment: the granularity requests reach the
 * driver with (512 or 4096 for O_DIRECT files, else 1); the generic layer
 * pads other requests (read-modify-write for writes).
 * Context: any thread.
 */
AIOLAB_API uint32_t aiolab_bdrv_get_request_alignment(BlockDriverState *bs);
/**
 * aiolab_bdrv_list: up to @max nodes into @out (no references), oldest
 * first.
 * Returns: how many exist.
 * Context: main loop, BQL held.
 */
AIOLAB_API size_t aiolab_bdrv_list(BlockDriverState **out, size_t max);

/*
 * Edges, for tests and the tutorial.
 */
/**
 * aiolab_bdrv_attach_child: make @child_bs the child @child_name of
 * @parent_bs (a BDS-to-BDS edge, QEMU's child_of_bds), taking a reference
 * to @child_bs.  The contexts are reconciled as QEMU does: first the
 * child's side moves to the parent's context, else the parent's side to
 * the child's.  A parent attached to a drained child becomes quiesced.
 * Returns: the edge, or NULL with @errp set.
 * Context: main loop, BQL held.
 */
AIOLAB_API BdrvChild *aiolab_bdrv_attach_child(BlockDriverState *parent_bs,
                                               BlockDriverState *child_bs,
                                               const char *child_name,
                                               Error **errp);
/**
 * aiolab_bdrv_find_child: @bs's child edge named @name, or NULL.
 * Context: main loop, BQL held.
 */
AIOLAB_API BdrvChild *aiolab_bdrv_find_child(BlockDriverState *bs,
                                             const char *name);
/**
 * aiolab_bdrv_child_bs: the node below an edge.
 * Context: main loop, BQL held.
 */
AIOLAB_API BlockDriverState *aiolab_bdrv_child_bs(BdrvChild *child);
/**
 * aiolab_bdrv_child_quiesced_parent: does this edge hold its parent
 * quiesced now (QEMU's BdrvChild::quiesced_parent)?
 * Context: main loop, BQL held.
 */
AIOLAB_API bool aiolab_bdrv_child_quiesced_parent(BdrvChild *child);
/**
 * aiolab_bdrv_parent_count: how many edges point at @bs.
 * Context: main loop, BQL held.
 */
AIOLAB_API int aiolab_bdrv_parent_count(BlockDriverState *bs);

/* ---------------------------------------------------------------------
 * The blkdebug injector (block/blkdebug.c).  @bs may be the blkdebug
 * node or any filter above it.
 *
 * Events ("points") a request of a blkdebug node reaches, in order:
 *   "read-aio", "write-aio", "pwritev-zero", "discard", "flush-to-disk"
 * (QEMU's spelling with underscores, "read_aio", is accepted too).
 * A breakpoint on a point suspends the next request that reaches it
 * until bdrv_debug_resume(tag); the breakpoint is used up by that
 * request (set it again to catch the next one).
 * --------------------------------------------------------------------- */

/**
 * bdrv_debug_breakpoint: suspend the next request reaching @event, and
 * label it @tag.  Returns: 0, -ENOTSUP (no blkdebug node), -EINVAL
 * (unknown event).  Context: any thread.
 */
AIOLAB_API int bdrv_debug_breakpoint(BlockDriverState *bs, const char *event,
                                     const char *tag);
/**
 * bdrv_debug_remove_breakpoint: remove the breakpoints labelled @tag and
 * resume the requests suspended with it.
 * Returns: 0 or -ENOENT.
 * Context: any thread.
 */
AIOLAB_API int bdrv_debug_remove_breakpoint(BlockDriverState *bs,
                                            const char *tag);
/**
 * bdrv_debug_resume: resume the request suspended with @tag (it continues
 * in its own context, through aio_co_wake).  Returns: 0 or -ENOENT.
 * Context: any thread.
 */
AIOLAB_API int bdrv_debug_resume(BlockDriverState *bs, const char *tag);
/**
 * bdrv_debug_is_suspended: is a request suspended with @tag now?  A
 * request that suspends calls aio_wait_kick(), so the main loop can wait
 * with AIO_WAIT_WHILE(NULL, !bdrv_debug_is_suspended(bs, tag)).
 * Context: any thread.
 */
AIOLAB_API bool bdrv_debug_is_suspended(BlockDriverState *bs,
                                        const char *tag);

/**
 * aiolab_blkdebug_break: bdrv_debug_breakpoint(), bdrv_debug_resume() and
 * bdrv_debug_is_suspended() under the names the tutorial uses for the
 * injector.
 * Context: any thread.
 */
AIOLAB_API int aiolab_blkdebug_break(BlockDriverState *bs, const char *event,
                                     const char *tag);
AIOLAB_API int aiolab_blkdebug_resume(BlockDriverState *bs, const char *tag);
AIOLAB_API bool aiolab_blkdebug_is_suspended(BlockDriverState *bs,
                                             const char *tag);

/**
 * aiolab_blkdebug_inject_error: make requests of @iotype ("read",
 * "write", "write-zeroes", "discard", "flush") that overlap [@offset,
 * @offset + @length) fail with -@error (@length 0: any offset) - only the
 * first such request if @once.  Options may do the same at open:
 * "inject-error.0.iotype=write,inject-error.0.errno=28,inject-error.0.once=on".
 * Returns: 0 or -errno.  Context: any thread.
 */
AIOLAB_API int aiolab_blkdebug_inject_error(BlockDriverState *bs,
                                            const char *iotype, int error,
                                            int64_t offset, int64_t length,
                                            bool once);
/**
 * aiolab_blkdebug_clear_errors: drop every injected error rule.
 * Returns: 0, or -ENOTSUP without a blkdebug node.
 * Context: any thread.
 */
AIOLAB_API int aiolab_blkdebug_clear_errors(BlockDriverState *bs);
/**
 * aiolab_blkdebug_set_latency_ns: every request sleeps @ns (on the
 * submitting context's timer) before going down (option latency-ns).
 * Returns: 0, -EINVAL (negative) or -ENOTSUP (no blkdebug node).
 * Context: any thread.
 */
AIOLAB_API int aiolab_blkdebug_set_latency_ns(BlockDriverState *bs,
                                              int64_t ns);

/* ---------------------------------------------------------------------
 * The "aiolab-test" driver (block/aiolab-test.c): QEMU's unit tests'
 * bdrv_test, as a driver anyone can open:
 *   "driver=aiolab-test,size=64M,latency-ns=100000,file=<node>,
 *    backing=<node>,sleep-in-drain-begin=on,bh-indirection=<iothread id>"
 * Requests sleep latency-ns, then go to the "file" child if there is one
 * (else reads return zeroes).  drain_begin/drain_end count in drain_count.
 * --------------------------------------------------------------------- */

typedef struct AiolabTestDriverStats {
    int drain_count;       /* drain_begin minus drain_end calls */
    int64_t reads;         /* requests served, by kind */
    int64_t writes;
    int64_t flushes;
    int64_t other;         /* write zeroes, discards, truncates */
    int64_t drain_begins;  /* drain_begin calls ever */
    int64_t drain_ends;    /* drain_end calls ever */
} AiolabTestDriverStats;

/**
 * aiolab_test_driver_get_stats: counters of an aiolab-test node.
 * Returns: false if @bs is not one.
 * Context: any thread (a snapshot).
 */
AIOLAB_API bool aiolab_test_driver_get_stats(BlockDriverState *bs,
                                             AiolabTestDriverStats *stats);
/**
 * aiolab_test_driver_get_drain_count: its drain_count, -1 if not one.
 * Context: any thread (a snapshot).
 */
AIOLAB_API int aiolab_test_driver_get_drain_count(BlockDriverState *bs);

/**
 * aiolab_test_driver_set_drain_begin_hook: TEST ONLY.  From now on the
 * driver's drain_begin (the node's quiesce counter going 0 -> 1) calls
 * @hook(@bs, @opaque) after counting in drain_count and before
 * sleep-in-drain-begin's coroutine starts; NULL removes it.  The hook
 * runs inside a drain's callback walk, where nothing may poll or change
 * the graph: it may take in-flight counts and schedule a BH that does,
 * which the drain's single top-level poll then runs (QEMU's
 * test-bdrv-drain detach/driver_cb; tests/c/test-bdrv-drain.c).
 * Returns: false if @bs is not an aiolab-test node.
 * Context: main loop, BQL held; the hook runs there too.
 */
typedef void AiolabTestDrainHook(BlockDriverState *bs, void *opaque);
AIOLAB_API bool aiolab_test_driver_set_drain_begin_hook(
    BlockDriverState *bs, AiolabTestDrainHook *hook, void *opaque);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * block/block_int.h - the insides of the block layer, shared by block.c,
 * io.c, drain.c, block-backend.c and the drivers (QEMU's
 * include/block/block_int-common.h).  Not a public header.
 */
#ifndef AIOLAB_BLOCK_INT_H
#define AIOLAB_BLOCK_INT_H

#include <pthread.h>
#include <aiolab/aiolab.h>
#include "util/atomic.h"
#include "util/check.h"
#include "util/queue.h"

#define BDS_MAGIC 0x42445321u       /* "BDS!" */
#define BLK_MAGIC 0x424c4b21u       /* "BLK!" */

/* Largest request: QEMU's BDRV_MAX_LENGTH (aligned down to 2^63 - 2^30). */
#define BDRV_MAX_LENGTH (INT64_MAX - (1LL << 30))
#define BDRV_REQUEST_MAX_BYTES (1LL << 31)   /* one driver call, at most */

/* Rule texts of the block layer's aborts. */
#define RULE_DRAIN_BALANCE \
    "(drained sections nest: every bdrv_drained_end matches a begin)"
#define RULE_NOTIFIER \
    "(an AioContext notifier is removed with the values it was added with)"

/* --- options: the -blockdev style string, parsed -------------------- */

typedef struct BlockOpt {
    char *key;
    char *value;
    bool used;               /* a driver or the generic layer took it */
} BlockOpt;

typedef struct BlockOpts {
    BlockOpt *v;
    int n;
} BlockOpts;

bool block_opts_parse(BlockOpts *opts, const char *str, Error **errp);
void block_opts_add(BlockOpts *opts, const char *key, const char *value);
void block_opts_free(BlockOpts *opts);
/* The value of @key (marking it used), or NULL. */
const char *block_opts_get(BlockOpts *opts, const char *key);
/* Typed getters: return false with @errp set on a bad value; leave *out
 * alone when the key is absent. */
bool block_opts_get_bool(BlockOpts *opts, const char *key, bool *out,
                         Error **errp);
bool block_opts_get_size(BlockOpts *opts, const char *key, int64_t *out,
                         Error **errp);
bool block_opts_get_int(BlockOpts *opts, const char *key, int64_t min,
                        int64_t max, int64_t *out, Error **errp);
/* The first key not used, or NULL. */
const char *block_opts_first_unused(BlockOpts *opts);

/* --- drivers -------------------------------------------------------- */

typedef struct BlockDriver {
    const char *format_name;
    size_t instance_size;       /* bs->opaque */
    bool is_protocol;           /* for the "unsupported option" message */
    bool is_filter;             /* requests go to bs->file unchanged */

    /* Open: take options from @opts (unused ones make the open fail). */
    int (*bdrv_open)(BlockDriverState *bs, BlockOpts *opts, int flags,
                     Error **errp);
    void (*bdrv_close)(BlockDriverState *bs);
    int64_t (*bdrv_getlength)(BlockDriverState *bs);
    /* Set bs->bl (alignment) after open and after a child changes. */
    void (*bdrv_refresh_limits)(BlockDriverState *bs);

    /* Requests: coroutine_fn, in the submitter's context; -errno. */
    int coroutine_fn (*bdrv_co_preadv)(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, QEMUIOVector *qiov,
                                       BdrvRequestFlags flags);
    int coroutine_fn (*bdrv_co_pwritev)(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes, QEMUIOVector *qiov,
                                        BdrvRequestFlags flags);
    int coroutine_fn (*bdrv_co_pwrite_zeroes)(BlockDriverState *bs,
                                              int64_t offset, int64_t bytes,
                                              BdrvRequestFlags flags);
    int coroutine_fn (*bdrv_co_pdiscard)(BlockDriverState *bs,
                                         int64_t offset, int64_t bytes);
    int coroutine_fn (*bdrv_co_flush_to_disk)(BlockDriverState *bs);
    int coroutine_fn (*bdrv_co_truncate)(BlockDriverState *bs, int64_t offset,
                                         bool exact, int prealloc,
                                         BdrvRequestFlags flags,
                                         Error **errp);

    /* Drained sections: stop (and restart) the driver's own request
     * sources.  Main loop; must not poll. */
    void (*bdrv_drain_begin)(BlockDriverState *bs);
    void (*bdrv_drain_end)(BlockDriverState *bs);

    /* AioContext changes: the node is drained.  Main loop. */
    void (*bdrv_detach_aio_context)(BlockDriverState *bs);
    void (*bdrv_attach_aio_context)(BlockDriverState *bs,
                                    AioContext *new_context);

    /* blkdebug only */
    int (*bdrv_debug_breakpoint)(BlockDriverState *bs, const char *event,
                                 const char *tag);
    int (*bdrv_debug_remove_breakpoint)(BlockDriverState *bs,
                                        const char *tag);
    int (*bdrv_debug_resume)(BlockDriverState *bs, const char *tag);
    bool (*bdrv_debug_is_suspended)(BlockDriverState *bs, const char *tag);
} BlockDriver;

extern const BlockDriver bdrv_file;
extern const BlockDriver bdrv_null_co;
extern const BlockDriver bdrv_blkdebug;
extern const BlockDriver bdrv_aiolab_test;

/* --- edges ---------------------------------------------------------- */

typedef struct Transaction Transaction;
typedef struct BdrvVisited BdrvVisited;

/*
 * BdrvChildClass: the parent's side of an edge.  A node parent
 * (child_of_bds) and a BlockBackend (child_root) implement it.
 */
typedef struct BdrvChildClass {
    bool parent_is_bds;
    /* Drained sections (main loop; must not poll or change the graph). */
    void (*drained_begin)(BdrvChild *c);
    void (*drained_end)(BdrvChild *c);
    bool (*drained_poll)(BdrvChild *c);   /* parent still busy on it? */
    /* The edge was attached to / is being detached from c->bs. */
    void (*attach)(BdrvChild *c);
    void (*detach)(BdrvChild *c);
    /* c->bs changed size. */
    void (*resize)(BdrvChild *c);
    /* AioContext changes: may the parent follow to @ctx?  Recurse, and
     * add the parent's own switch to @tran. */
    bool (*change_aio_ctx)(BdrvChild *c, AioContext *ctx,
                           BdrvVisited *visited, Transaction *tran,
                           Error **errp);
    AioContext *(*get_parent_aio_context)(BdrvChild *c);
} BdrvChildClass;

extern const BdrvChildClass child_of_bds;

struct BdrvChild {
    BlockDriverState *bs;           /* the child node (main loop writes) */
    char *name;                     /* "file", "image", "backing", "root" */
    const BdrvChildClass *klass;
    void *opaque;                   /* the parent: a BDS or a BlockBackend */
    /* Does this edge currently hold its parent quiesced?  Main loop. */
    bool quiesced_parent;
    QLIST_ENTRY(BdrvChild) next;         /* in the parent's children */
    QLIST_ENTRY(BdrvChild) next_parent;  /* in bs->parents */
};

/* --- nodes ---------------------------------------------------------- */

typedef struct BlockLimits {
    uint32_t request_alignment;     /* requests reach the driver aligned */
    size_t min_mem_alignment;       /* buffers must be aligned (O_DIRECT) */
} BlockLimits;

typedef struct BdrvAioNotifier {
    void (*attached_aio_context)(AioContext *new_context, void *opaque);
    void (*detach_aio_context)(void *opaque);
    void *opaque;
    bool deleted;                   /* removed during a walk */
    QLIST_ENTRY(BdrvAioNotifier) list;
} BdrvAioNotifier;

typedef struct BdrvTrackedRequest BdrvTrackedRequest;

struct BlockDriverState {
    unsigned magic;
    char node_name[32];
    const char *trace_name;         /* node_name, interned for traces */

    /* --- Set at open, then read-only --------------------------------- */
    const BlockDriver *drv;         /* NULL once closed */
    void *opaque;                   /* the driver's state */
    int open_flags;                 /* BDRV_O_* */
    bool read_only;
    BlockLimits bl;

    /* --- Main loop, BQL held ----------------------------------------- */
    int refcnt;
    QLIST_HEAD(, BdrvChild) children;
    QLIST_HEAD(, BdrvChild) parents;
    BdrvChild *file;                /* the primary child, if any */
    QLIST_HEAD(, BdrvAioNotifier) aio_notifiers;
    bool walking_aio_notifiers;
    bool opening;                   /* inside bdrv_open (adopts child ctx) */
    QTAILQ_ENTRY(BlockDriverState) bs_list;   /* all nodes */

    /* --- Atomic ------------------------------------------------------ */
    AioContext *aio_context;        /* written in the main loop, drained */
    int64_t total_bytes;            /* size, refreshed at truncate */
    int in_flight;                  /* requests inside; dec kicks waiters */
    int quiesce_counter;            /* written in the main loop only */

    /* --- Tracked requests (only when bl.request_alignment > 1) --------
     * Protected by reqs_lock, taken by request coroutines of any thread. */
    CoMutex reqs_lock;
    QLIST_HEAD(, BdrvTrackedRequest) tracked_requests;
    int serialising_in_flight;      /* how many of them are serialising */
};

/* block.c */
BlockDriverState *bdrv_new(void);
BlockDriverState *bdrv_new_open_driver(const BlockDriver *drv,
                                       const char *options, int flags,
                                       Error **errp);
BdrvChild *bdrv_attach_child_common(BlockDriverState *child_bs,
                                    const char *child_name,
                                    const BdrvChildClass *klass,
                                    void *opaque, Error **errp);
BdrvChild *bdrv_open_child_ref(BlockDriverState *parent, BlockOpts *opts,
                               const char *key, bool required, Error **errp);
void bdrv_root_unref_child(BdrvChild *child);
void bdrv_replace_child_noperm(BdrvChild *child, BlockDriverState *new_bs);
BlockDriverState *bdrv_next_all_states(BlockDriverState *bs);
void bdrv_parent_cb_resize(BlockDriverState *bs);
void bdrv_refresh_limits(BlockDriverState *bs);
bool bdrv_refresh_total_bytes(BlockDriverState *bs);
BlockDriverState *bdrv_skip_to_driver(BlockDriverState *bs,
                                      const BlockDriver *drv);

/* block-aio-context.c */
struct BdrvVisited {
    BdrvChild **v;
    int n, cap;
    /* Nodes the walk quiesced (with a reference): polled once, after it. */
    BlockDriverState **drained;
    int n_drained, cap_drained;
};
bool bdrv_visited_add(BdrvVisited *visited, BdrvChild *c);
bool bdrv_change_aio_context(BlockDriverState *bs, AioContext *ctx,
                             BdrvVisited *visited, Transaction *tran,
                             Error **errp);
int bdrv_child_try_change_aio_context_for_attach(BdrvChild *new_child,
                                                 BlockDriverState *child_bs,
                                                 Error **errp);
void bdrv_free_aio_notifiers(BlockDriverState *bs);

/* A tiny version of QEMU's util/transactions.c: actions run LIFO. */
typedef struct TransactionActionDrv {
    void (*commit)(void *opaque);
    void (*abort)(void *opaque);
    void (*clean)(void *opaque);
} TransactionActionDrv;
Transaction *tran_new(void);
void tran_add(Transaction *tran, const TransactionActionDrv *drv,
              void *opaque);
void tran_commit(Transaction *tran);
void tran_abort(Transaction *tran);

/* drain.c */
extern int bdrv_drain_all_count;
bool bdrv_drain_poll(BlockDriverState *bs, BdrvChild *ignore_parent,
                     bool ignore_bds_parents);
void bdrv_parent_drained_begin_single(BdrvChild *c);
void bdrv_parent_drained_end_single(BdrvChild *c);
void bdrv_do_drained_begin_quiesce(BlockDriverState *bs, BdrvChild *parent);
void bdrv_drain_all_end_quiesce(BlockDriverState *bs);

/* io.c: requests on an edge (coroutine_fn, in the submitter's context) */
int coroutine_fn bdrv_co_preadv(BdrvChild *child, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pwritev(BdrvChild *child, int64_t offset,
                                 int64_t bytes, QEMUIOVector *qiov,
                                 BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pwrite_zeroes(BdrvChild *child, int64_t offset,
                                       int64_t bytes, BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pdiscard(BdrvChild *child, int64_t offset,
                                  int64_t bytes);
int coroutine_fn bdrv_co_flush(BlockDriverState *bs);
int coroutine_fn bdrv_co_truncate(BdrvChild *child, int64_t offset,
                                  bool exact, int prealloc,
                                  BdrvRequestFlags flags, Error **errp);
int bdrv_check_request(int64_t offset, int64_t bytes);
bool bdrv_qiov_is_aligned(QEMUIOVector *qiov, size_t addr_align,
                          size_t len_align);
/* A buffer aligned for @bs's I/O; aborts when memory runs out. */
void *qemu_blockalign(BlockDriverState *bs, size_t size);
/* The same, or NULL: for sizes a client or a guest chose. */
void *qemu_try_blockalign(BlockDriverState *bs, size_t size);

/*
 * Running a coroutine_fn synchronously (QEMU's generated co_wrapper):
 * from a coroutine, call it; otherwise create a coroutine, enter it in
 * the current context and AIO_WAIT_WHILE it is in progress.
 */
typedef struct BdrvPollCo {
    AioContext *ctx;
    Coroutine *co;
    bool in_progress;               /* atomic: cleared, then a kick */
} BdrvPollCo;
void bdrv_poll_co(BdrvPollCo *s);
void bdrv_poll_co_done(BdrvPollCo *s);

/* block-backend.c: the request path, for block-backend-io.c */
enum BlkReqType {
    BLK_REQ_READ, BLK_REQ_WRITE, BLK_REQ_FLUSH, BLK_REQ_DISCARD,
};
void blk_inc_in_flight(BlockBackend *blk);
void blk_dec_in_flight(BlockBackend *blk);
/* With the BlockBackend's in_flight raised by the caller. */
int coroutine_fn blk_co_do_request(BlockBackend *blk, int type,
                                   int64_t offset, int64_t bytes,
                                   QEMUIOVector *qiov, BdrvRequestFlags flags);
/* The same, raising and dropping in_flight itself. */
int coroutine_fn blk_co_request(BlockBackend *blk, int type, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags);
BdrvChild *blk_root(BlockBackend *blk);

/* file-io_uring.c (the file driver's io_uring engine) */
typedef struct LuringState LuringState;
LuringState *aio_get_linux_io_uring(AioContext *ctx, Error **errp);
int coroutine_fn luring_co_submit(LuringState *s, int fd, int64_t offset,
                                  QEMUIOVector *qiov, int type);
enum { QEMU_AIO_READ = 1, QEMU_AIO_WRITE = 2 };

#endif

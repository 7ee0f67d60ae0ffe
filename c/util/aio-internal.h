/* SPDX-License-Identifier: MIT */
/*
 * util/aio-internal.h - the insides of an AioContext, shared by async.c
 * (BHs, notify, lifetime), aio-posix.c (aio_poll, fd handlers) and the fd
 * monitors (fdmon-*.c).  Not a public header.
 */
#ifndef AIOLAB_UTIL_AIO_INTERNAL_H
#define AIOLAB_UTIL_AIO_INTERNAL_H

#include <poll.h>
#include <aiolab/aio.h>
#include <aiolab/timer.h>
#include "util/atomic.h"
#include "util/queue.h"
#include "util/lockcnt.h"
#include "util/timer-internal.h"
#include "util/coroutine-int.h"

#define AIO_CONTEXT_MAGIC 0x41696f43u   /* "AioC" */
#define QEMU_BH_MAGIC     0x42484248u   /* "BHBH" */

typedef struct AioHandler AioHandler;
typedef QLIST_HEAD(, AioHandler) AioHandlerList;

struct AioHandler {
    struct pollfd pfd;          /* fd, events wanted, revents seen */
    IOHandler *io_read;
    IOHandler *io_write;
    AioPollFn *io_poll;
    IOHandler *io_poll_ready;
    IOHandler *io_poll_begin;
    IOHandler *io_poll_end;
    void *opaque;
    QLIST_ENTRY(AioHandler) node;          /* ctx->aio_handlers */
    QLIST_ENTRY(AioHandler) node_ready;    /* a ready list (one at a time) */
    QLIST_ENTRY(AioHandler) node_deleted;  /* ctx->deleted_aio_handlers */
    QLIST_ENTRY(AioHandler) node_poll;     /* ctx->poll_aio_handlers */
    bool deleted;              /* atomic: never dispatch again */
    bool poll_ready;           /* io_poll returned true this iteration */
    int64_t poll_idle_timeout; /* when to stop polling it (io_uring) */
    unsigned iou_flags;        /* fdmon-io_uring bookkeeping (atomic) */
    QSLIST_ENTRY(AioHandler) node_submitted;  /* fdmon-io_uring */
};

/*
 * FDMonOps: how a context waits for its fds (QEMU's util/aio-posix.h).
 *   update:    a handler was added (@new), replaced, or removed (@old);
 *              called with list_lock's mutex held, from any thread.
 *   wait:      sleep up to @timeout ns (-1 forever), then put ready
 *              handlers on @ready_list with revents set.  Home thread.
 *   need_wait: must aio_poll() call wait() even with a zero timeout?  For
 *              poll and epoll: yes unless every handler can be busy-polled
 *              (they cannot see fd readiness without a system call).
 *   destroy:   free the monitor's resources.
 */
typedef struct FDMonOps {
    const char *name;
    void (*update)(AioContext *ctx, AioHandler *old_node,
                   AioHandler *new_node);
    int (*wait)(AioContext *ctx, AioHandlerList *ready_list, int64_t timeout);
    bool (*need_wait)(AioContext *ctx);
    void (*destroy)(AioContext *ctx);
} FDMonOps;

/* BH flags (atomic), as in QEMU's util/async.c:
 *
 *   (none) --schedule--> PENDING|SCHEDULED --aio_bh_poll--> run --> (none)
 *      |                    |  cancel: SCHEDULED cleared, stays queued,
 *      |                    |          popped later without running
 *      +--delete--> PENDING|DELETED --aio_bh_poll--> freed (never run)
 *   oneshot: PENDING|SCHEDULED|ONESHOT --> run, then freed
 */
enum {
    BH_PENDING   = (1 << 0),   /* on a list, waiting for aio_bh_poll */
    BH_SCHEDULED = (1 << 1),   /* run the callback when popped */
    BH_DELETED   = (1 << 2),   /* free when popped, do not run */
    BH_ONESHOT   = (1 << 3),   /* free after running */
    BH_IDLE      = (1 << 4),   /* not progress; may wait up to 10 ms */
};

typedef QSLIST_HEAD(, QEMUBH) BHList;

struct QEMUBH {
    AioContext *ctx;
    const char *name;
    QEMUBHFunc *cb;
    void *opaque;
    QSLIST_ENTRY(QEMUBH) next;
    unsigned flags;             /* atomic */
    MemReentrancyGuard *reentrancy_guard;
    unsigned magic;
    /* Every non-oneshot BH is on ctx->all_bhs until freed, so that one
     * never scheduled is still caught as leaked at finalize. */
    QLIST_ENTRY(QEMUBH) all;
};

/* A batch of BHs taken from ctx->bh_list by one aio_bh_poll() call. */
typedef struct BHListSlice {
    BHList bh_list;
    QSIMPLEQ_ENTRY(BHListSlice) next;
} BHListSlice;
typedef QSIMPLEQ_HEAD(, BHListSlice) BHListSliceHead;

struct ThreadPool;

struct AioContext {
    unsigned magic;
    int refcnt;                 /* atomic */
    const char *name;           /* interned: traces keep pointers */

    /* --- Any thread (atomics) --------------------------------------- */

    /*
     * notify_me: bits 1.. count aio_poll() calls about to sleep (+2 each);
     * bit 0 is set by aio_context_prepare() and cleared by check.  Written
     * by the home thread only, read by aio_notify() in any thread.
     */
    unsigned notify_me;
    /* notified: aio_notify() was called since the last accept.  Lets a
     * poller skip a sleep (and the eventfd read) cheaply. */
    bool notified;
    /* The eventfd aio_notify() writes when somebody sleeps. */
    EventNotifier notifier;

    /* Scheduled BHs: pushed atomically by any thread, taken whole by
     * aio_bh_poll().  LIFO. */
    BHList bh_list;

    /* Coroutines pushed by aio_co_schedule() from any thread. */
    QSLIST_HEAD(, Coroutine) scheduled_coroutines;

    /* Every live non-oneshot BH (protected by all_bhs_lock). */
    pthread_mutex_t all_bhs_lock;
    QLIST_HEAD(, QEMUBH) all_bhs;
    QEMUBH *co_schedule_bh;

    /* --- Protected by list_lock ------------------------------------- */

    /* list_lock's count: threads walking aio_handlers; its mutex:
     * writers (aio_set_fd_handler) and freeing of deleted nodes. */
    QemuLockCnt list_lock;
    AioHandlerList aio_handlers;          /* insert: mutex; walk: count */
    AioHandlerList deleted_aio_handlers;  /* freed by the last walker */
    /* Handlers without io_poll: while non-zero, busy-polling cannot see
     * every event, so the fd monitor must be consulted. */
    int poll_disable_cnt;                  /* atomic */

    /* --- Home thread only ------------------------------------------- */

    /* Slices being run by (possibly nested) aio_bh_poll() calls. */
    BHListSliceHead bh_slice_list;
    /* Handlers that are busy-polled (joined on their first event). */
    AioHandlerList poll_aio_handlers;
    bool poll_started;          /* io_poll_begin called, no end yet */
    /* Ready list collected by aio_context_check() for dispatch. */
    AioHandlerList embed_ready_list;

    /* Adaptive polling: parameters set from any thread and poll_ns
     * adapted by the home thread, all with relaxed atomics (a stale value
     * only costs a little polling). */
    int64_t poll_ns;            /* current busy-poll time */
    int64_t poll_max_ns;
    int64_t poll_grow;
    int64_t poll_shrink;
    int64_t aio_max_batch;

    /* fd monitor */
    const FDMonOps *fdmon_ops;
    int epollfd;                /* fdmon-epoll, -1 when unused */
    bool fdmon_locked_epoll;    /* embedded: stay on epoll */
    void *io_uring;             /* fdmon-io_uring state */

    /* The file driver's io_uring for block requests submitted in this
     * context (block/file-io_uring.c); freed with the context. */
    void *linux_io_uring;

    /* Timers: one list per clock. */
    QEMUTimerListGroup tlg;

    /* Thread pool (created lazily by aio_get_thread_pool()) */
    struct ThreadPool *thread_pool;
    int64_t thread_pool_min;
    int64_t thread_pool_max;

    /* Home thread, for the dump and for diagnostics (tid, 0 if none). */
    int home_tid;

    QLIST_ENTRY(AioContext) registry;  /* all contexts, for the dump */
};

/* async.c */
int aio_bh_poll(AioContext *ctx);
void aio_bh_call(QEMUBH *bh);
int64_t aio_compute_timeout(AioContext *ctx);
void aio_notify_accept(AioContext *ctx);
struct ThreadPool *aio_get_thread_pool(AioContext *ctx);
void aio_context_registry_foreach(void (*fn)(AioContext *ctx, void *opaque),
                                  void *opaque);
bool aio_bh_has_pending(AioContext *ctx);

/* aio-posix.c */
void aio_context_setup(AioContext *ctx, const char *fdmon);

/* aio_context_new() on a given fd monitor ("poll", "epoll", "io_uring" or
 * NULL for poll), whatever AIOLAB_FDMON says. */
AioContext *aio_context_new_fdmon(const char *fdmon, Error **errp);
void aio_context_destroy(AioContext *ctx);
void aio_add_ready_handler(AioHandlerList *ready_list, AioHandler *node,
                           int revents);
bool aio_poll_disabled(AioContext *ctx);
bool aio_dispatch_ready_handlers(AioContext *ctx, AioHandlerList *ready_list);
void aio_free_deleted_handlers(AioContext *ctx);
bool aio_handler_is_deleted(AioHandler *node);
void aio_context_use_embedded_mode(AioContext *ctx);
void aio_context_free_handlers(AioContext *ctx);

/* fdmon-*.c */
extern const FDMonOps fdmon_poll_ops;
extern const FDMonOps fdmon_epoll_ops;
extern const FDMonOps fdmon_io_uring_ops;
bool fdmon_epoll_try_upgrade(AioContext *ctx, unsigned npfd);
bool fdmon_epoll_setup_locked(AioContext *ctx);   /* list_lock mutex held */
void fdmon_epoll_disable(AioContext *ctx);
bool fdmon_io_uring_setup_locked(AioContext *ctx); /* list_lock mutex held */

/* thread-pool.c */
struct ThreadPool *thread_pool_new(AioContext *ctx);
void thread_pool_free(struct ThreadPool *pool);
void thread_pool_update_params(struct ThreadPool *pool, AioContext *ctx);

/* block/file-io_uring.c: free ctx->linux_io_uring (QEMU's
 * luring_cleanup, called from aio_ctx_finalize). */
void luring_cleanup(AioContext *ctx);

/* iothread.c / main-loop.c: the current context of this thread. */
AioContext *aiolab_get_my_aiocontext(void);

#endif

/* cdefs for aiolab/aio.h.  C-only: aio_co_schedule, aio_co_wake,
 * aio_co_enter (they take a C Coroutine; Python tasks are the image). */
typedef struct AioContext AioContext;
typedef struct QEMUBH QEMUBH;
typedef void QEMUBHFunc(void *opaque);
typedef void IOHandler(void *opaque);
typedef bool AioPollFn(void *opaque);
typedef struct {
    bool engaged_in_io;
} MemReentrancyGuard;

AioContext *aio_context_new(Error **errp);
void aio_context_ref(AioContext *ctx);
void aio_context_unref(AioContext *ctx);
void aio_context_set_poll_params(AioContext *ctx, int64_t max_ns,
                                 int64_t grow, int64_t shrink, Error **errp);
void aio_context_set_aio_params(AioContext *ctx, int64_t max_batch);
void aio_context_set_thread_pool_params(AioContext *ctx, int64_t min,
                                        int64_t max, Error **errp);
bool aio_poll(AioContext *ctx, bool blocking);
void qemu_set_current_aio_context(AioContext *ctx);
void aiolab_clear_current_aio_context(AioContext *ctx);
int aio_context_get_fd(AioContext *ctx);
int64_t aio_context_prepare(AioContext *ctx);
bool aio_context_check(AioContext *ctx);
void aio_context_dispatch(AioContext *ctx);
void aio_notify(AioContext *ctx);
void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                        IOHandler *io_write, AioPollFn *io_poll,
                        IOHandler *io_poll_ready, void *opaque);
void aio_set_event_notifier(AioContext *ctx, EventNotifier *e,
                            EventNotifierHandler *io_read, AioPollFn *io_poll,
                            EventNotifierHandler *io_poll_ready);
void aio_set_event_notifier_poll(AioContext *ctx, EventNotifier *e,
                                 EventNotifierHandler *io_poll_begin,
                                 EventNotifierHandler *io_poll_end);
QEMUBH *aio_bh_new_full(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
                        const char *name, MemReentrancyGuard *guard);
QEMUBH *aio_bh_new(AioContext *ctx, QEMUBHFunc *cb, void *opaque);
QEMUBH *aio_bh_new_guarded(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
                           MemReentrancyGuard *guard);
void aio_bh_schedule_oneshot_full(AioContext *ctx, QEMUBHFunc *cb,
                                  void *opaque, const char *name);
void aio_bh_schedule_oneshot(AioContext *ctx, QEMUBHFunc *cb, void *opaque);
void qemu_bh_schedule(QEMUBH *bh);
void qemu_bh_schedule_idle(QEMUBH *bh);
void qemu_bh_cancel(QEMUBH *bh);
void qemu_bh_delete(QEMUBH *bh);
AioContext *qemu_get_current_aio_context(void);
bool in_aio_context_home_thread(AioContext *ctx);
int64_t aiolab_aio_context_get_poll_ns(AioContext *ctx);
void aiolab_aio_context_get_poll_params(AioContext *ctx, int64_t *max_ns,
                                        int64_t *grow, int64_t *shrink);
int64_t aiolab_aio_context_get_aio_max_batch(AioContext *ctx);
int64_t aiolab_aio_context_compute_timeout(AioContext *ctx);
int aiolab_aio_poll_ready(AioContext *ctx);
void aiolab_aio_context_set_name(AioContext *ctx, const char *name);
const char *aiolab_aio_context_get_name(AioContext *ctx);
const char *aiolab_aio_context_fdmon_name(AioContext *ctx);
bool aiolab_aio_context_set_fdmon(AioContext *ctx, const char *name,
                                  Error **errp);

/* cdefs for aiolab/thread-pool.h.  C-only: thread_pool_submit_co. */
typedef struct BlockAIOCB BlockAIOCB;
typedef int ThreadPoolFunc(void *opaque);
typedef void BlockCompletionFunc(void *opaque, int ret);
BlockAIOCB *thread_pool_submit_aio(ThreadPoolFunc *func, void *arg,
                                   BlockCompletionFunc *cb, void *opaque);
void thread_pool_submit(ThreadPoolFunc *func, void *arg);
void bdrv_aio_cancel(BlockAIOCB *acb);
void bdrv_aio_cancel_async(BlockAIOCB *acb);
typedef struct AiolabThreadPoolStats {
    int cur_threads;
    int idle_threads;
    int max_threads;
    int min_threads;
    int queued;
    int64_t completed;
    int64_t threads_created;
} AiolabThreadPoolStats;
bool aiolab_thread_pool_get_stats(AioContext *ctx,
                                  AiolabThreadPoolStats *stats);
void aiolab_thread_pool_set_idle_timeout_ns(int64_t ns);

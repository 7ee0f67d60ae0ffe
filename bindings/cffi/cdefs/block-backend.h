/* cdefs for aiolab/block-backend.h.  C-only: the blk_co_* coroutine_fns. */
typedef struct BlockDevOps {
    void (*drained_begin)(void *opaque);
    void (*drained_end)(void *opaque);
    bool (*drained_poll)(void *opaque);
    void (*resize_cb)(void *opaque);
} BlockDevOps;
BlockBackend *blk_new(AioContext *ctx);
BlockBackend *blk_new_open(const char *filename, const char *reference,
                           const char *options, int flags, Error **errp);
void blk_unref(BlockBackend *blk);
void blk_ref(BlockBackend *blk);
int blk_insert_bs(BlockBackend *blk, BlockDriverState *bs, Error **errp);
void blk_remove_bs(BlockBackend *blk);
void blk_set_dev_ops(BlockBackend *blk, const BlockDevOps *ops, void *opaque);
void blk_set_allow_aio_context_change(BlockBackend *blk, bool allow);
void blk_set_disable_request_queuing(BlockBackend *blk, bool disable);
int blk_set_aio_context(BlockBackend *blk, AioContext *new_context,
                        Error **errp);
void blk_add_aio_context_notifier(BlockBackend *blk,
                                  AioContextAttachedFn *attached_aio_context,
                                  AioContextDetachFn *detach_aio_context,
                                  void *opaque);
void blk_remove_aio_context_notifier(BlockBackend *blk,
                                     AioContextAttachedFn *attached_aio_context,
                                     AioContextDetachFn *detach_aio_context,
                                     void *opaque);
void blk_drain(BlockBackend *blk);
void blk_drain_all(void);
bool blk_in_drain(BlockBackend *blk);
int blk_truncate(BlockBackend *blk, int64_t offset, bool exact, int prealloc,
                 BdrvRequestFlags flags, Error **errp);
BlockDriverState *blk_bs(BlockBackend *blk);
AioContext *blk_get_aio_context(BlockBackend *blk);
int64_t blk_getlength(BlockBackend *blk);
void blk_inc_in_flight(BlockBackend *blk);
void blk_dec_in_flight(BlockBackend *blk);
int blk_get_in_flight(BlockBackend *blk);
int blk_pread(BlockBackend *blk, int64_t offset, int64_t bytes, void *buf,
              BdrvRequestFlags flags);
int blk_pwrite(BlockBackend *blk, int64_t offset, int64_t bytes,
               const void *buf, BdrvRequestFlags flags);
int blk_preadv(BlockBackend *blk, int64_t offset, int64_t bytes,
               QEMUIOVector *qiov, BdrvRequestFlags flags);
int blk_pwritev(BlockBackend *blk, int64_t offset, int64_t bytes,
                QEMUIOVector *qiov, BdrvRequestFlags flags);
int blk_flush(BlockBackend *blk);
int blk_pwrite_zeroes(BlockBackend *blk, int64_t offset, int64_t bytes,
                      BdrvRequestFlags flags);
int blk_pdiscard(BlockBackend *blk, int64_t offset, int64_t bytes);
BlockAIOCB *blk_aio_preadv(BlockBackend *blk, int64_t offset,
                           QEMUIOVector *qiov, BdrvRequestFlags flags,
                           BlockCompletionFunc *cb, void *opaque);
BlockAIOCB *blk_aio_pwritev(BlockBackend *blk, int64_t offset,
                            QEMUIOVector *qiov, BdrvRequestFlags flags,
                            BlockCompletionFunc *cb, void *opaque);
BlockAIOCB *blk_aio_flush(BlockBackend *blk, BlockCompletionFunc *cb,
                          void *opaque);
BlockAIOCB *blk_aio_pwrite_zeroes(BlockBackend *blk, int64_t offset,
                                  int64_t bytes, BdrvRequestFlags flags,
                                  BlockCompletionFunc *cb, void *opaque);
BlockAIOCB *blk_aio_pdiscard(BlockBackend *blk, int64_t offset,
                             int64_t bytes, BlockCompletionFunc *cb,
                             void *opaque);

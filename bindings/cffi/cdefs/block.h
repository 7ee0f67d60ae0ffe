/* cdefs for aiolab/block.h */
typedef struct BlockDriverState BlockDriverState;
typedef struct BlockBackend BlockBackend;
typedef struct BdrvChild BdrvChild;
typedef enum {
    BDRV_REQ_ZERO_WRITE = 0x2,
    BDRV_REQ_MAY_UNMAP = 0x4,
    BDRV_REQ_FUA = 0x10,
    BDRV_REQ_NO_FALLBACK = 0x100,
} BdrvRequestFlags;
typedef enum BlockdevOnError {
    BLOCKDEV_ON_ERROR_REPORT,
    BLOCKDEV_ON_ERROR_IGNORE,
    BLOCKDEV_ON_ERROR_ENOSPC,
    BLOCKDEV_ON_ERROR_STOP,
    BLOCKDEV_ON_ERROR_AUTO,
} BlockdevOnError;
typedef enum BlockErrorAction {
    BLOCK_ERROR_ACTION_IGNORE,
    BLOCK_ERROR_ACTION_REPORT,
    BLOCK_ERROR_ACTION_STOP,
} BlockErrorAction;
#define BDRV_O_RDWR 2
#define BDRV_O_NOCACHE 32
#define BDRV_O_UNMAP 16384
/* An AioContext notifier's two callbacks (block.h takes them unnamed). */
typedef void AioContextAttachedFn(AioContext *new_context, void *opaque);
typedef void AioContextDetachFn(void *opaque);

BlockDriverState *bdrv_open(const char *filename, const char *reference,
                            const char *options, int flags, Error **errp);
void bdrv_ref(BlockDriverState *bs);
void bdrv_unref(BlockDriverState *bs);
BlockDriverState *bdrv_find_node(const char *node_name);
int bdrv_replace_node(BlockDriverState *from, BlockDriverState *to,
                      Error **errp);
int bdrv_try_change_aio_context(BlockDriverState *bs, AioContext *ctx,
                                BdrvChild *ignore_child, Error **errp);
void bdrv_add_aio_context_notifier(BlockDriverState *bs,
                                   AioContextAttachedFn *attached_aio_context,
                                   AioContextDetachFn *detach_aio_context,
                                   void *opaque);
void bdrv_remove_aio_context_notifier(BlockDriverState *bs,
                                      AioContextAttachedFn *attached_aio_context,
                                      AioContextDetachFn *detach_aio_context,
                                      void *opaque);
void bdrv_drained_begin(BlockDriverState *bs);
void bdrv_drained_end(BlockDriverState *bs);
void bdrv_drain(BlockDriverState *bs);
void bdrv_drain_all_begin(void);
void bdrv_drain_all_end(void);
void bdrv_drain_all(void);
void bdrv_unref_child(BlockDriverState *parent, BdrvChild *child);
const char *bdrv_get_node_name(const BlockDriverState *bs);
const char *bdrv_get_format_name(BlockDriverState *bs);
int64_t bdrv_getlength(BlockDriverState *bs);
AioContext *bdrv_get_aio_context(BlockDriverState *bs);
bool bdrv_is_read_only(BlockDriverState *bs);
void bdrv_inc_in_flight(BlockDriverState *bs);
void bdrv_dec_in_flight(BlockDriverState *bs);
int bdrv_flush(BlockDriverState *bs);
int bdrv_get_in_flight(BlockDriverState *bs);
int bdrv_get_quiesce_counter(BlockDriverState *bs);
int aiolab_bdrv_get_refcnt(BlockDriverState *bs);
uint32_t aiolab_bdrv_get_request_alignment(BlockDriverState *bs);
size_t aiolab_bdrv_list(BlockDriverState **out, size_t max);
BdrvChild *aiolab_bdrv_attach_child(BlockDriverState *parent_bs,
                                    BlockDriverState *child_bs,
                                    const char *child_name, Error **errp);
BdrvChild *aiolab_bdrv_find_child(BlockDriverState *bs, const char *name);
BlockDriverState *aiolab_bdrv_child_bs(BdrvChild *child);
bool aiolab_bdrv_child_quiesced_parent(BdrvChild *child);
int aiolab_bdrv_parent_count(BlockDriverState *bs);
int bdrv_debug_breakpoint(BlockDriverState *bs, const char *event,
                          const char *tag);
int bdrv_debug_remove_breakpoint(BlockDriverState *bs, const char *tag);
int bdrv_debug_resume(BlockDriverState *bs, const char *tag);
bool bdrv_debug_is_suspended(BlockDriverState *bs, const char *tag);
int aiolab_blkdebug_break(BlockDriverState *bs, const char *event,
                          const char *tag);
int aiolab_blkdebug_resume(BlockDriverState *bs, const char *tag);
bool aiolab_blkdebug_is_suspended(BlockDriverState *bs, const char *tag);
int aiolab_blkdebug_inject_error(BlockDriverState *bs, const char *iotype,
                                 int error, int64_t offset, int64_t length,
                                 bool once);
int aiolab_blkdebug_clear_errors(BlockDriverState *bs);
int aiolab_blkdebug_set_latency_ns(BlockDriverState *bs, int64_t ns);
typedef struct AiolabTestDriverStats {
    int drain_count;
    int64_t reads;
    int64_t writes;
    int64_t flushes;
    int64_t other;
    int64_t drain_begins;
    int64_t drain_ends;
} AiolabTestDriverStats;
bool aiolab_test_driver_get_stats(BlockDriverState *bs,
                                  AiolabTestDriverStats *stats);
int aiolab_test_driver_get_drain_count(BlockDriverState *bs);

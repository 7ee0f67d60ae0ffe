/* cdefs for aiolab/hw/virtio-blk.h and aiolab/hw/virtio_blk_wire.h.
 * BlockdevOnError and BlockErrorAction are in cdefs/block.h, as in C. */
typedef struct VirtIOBlock VirtIOBlock;
typedef struct IOThreadVirtQueueMapping {
    const char *iothread;
    const uint16_t *vqs;
    size_t n_vqs;
} IOThreadVirtQueueMapping;
typedef struct VirtIOBlkConf {
    const char *id;
    BlockBackend *blk;
    const char *iothread;
    const IOThreadVirtQueueMapping *iothread_vq_mapping;
    size_t iothread_vq_mapping_len;
    uint16_t num_queues;
    uint16_t queue_size;
    uint32_t logical_block_size;
    uint32_t physical_block_size;
    bool request_merging;
    bool config_wce;
    bool write_cache;
    bool discard;
    bool write_zeroes;
    uint32_t max_discard_sectors;
    uint32_t max_write_zeroes_sectors;
    const char *serial;
    bool ioeventfd;
    bool keep_aio_context;
    BlockdevOnError rerror;
    BlockdevOnError werror;
    void (*block_io_error)(void *opaque, BlockErrorAction action,
                           bool is_read, int error);
    void *opaque;
} VirtIOBlkConf;
#define VIRTIO_BLK_AUTO_NUM_QUEUES 65535
#define VIRTIO_BLK_MAX_MERGE_REQS 32
#define BDRV_REQUEST_MAX_SECTORS 4194303
typedef struct AiolabVirtIOBlkStats {
    uint64_t reads, writes, flushes, get_ids, discards, write_zeroes;
    uint64_t unsupported;
    uint64_t ioerrors;
    uint64_t submits_rw;
    uint64_t merged;
    uint64_t parked;
} AiolabVirtIOBlkStats;
#define AIOLAB_VIRTIO_BLK_IOEVENTFD_STARTED 1
#define AIOLAB_VIRTIO_BLK_IOEVENTFD_STARTING 2
#define AIOLAB_VIRTIO_BLK_IOEVENTFD_STOPPING 4
#define AIOLAB_VIRTIO_BLK_IOEVENTFD_DISABLED 8
void virtio_blk_conf_init(VirtIOBlkConf *conf);
VirtIOBlock *virtio_blk_new(const VirtIOBlkConf *conf, GuestMemory *mem,
                            const VirtioBusOps *bus, void *bus_opaque,
                            Error **errp);
void virtio_blk_free(VirtIOBlock *s);
VirtIODevice *aiolab_virtio_blk_get_vdev(VirtIOBlock *s);
void virtio_blk_handle_vq(VirtIOBlock *s, VirtQueue *vq);
void virtio_blk_dma_restart_cb(void *opaque, bool running, int state);
AioContext *aiolab_virtio_blk_get_vq_aio_context(VirtIOBlock *s, int n);
unsigned int aiolab_virtio_blk_ioeventfd_state(VirtIOBlock *s);
void aiolab_virtio_blk_get_stats(VirtIOBlock *s, AiolabVirtIOBlkStats *stats);

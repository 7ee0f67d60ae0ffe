/* cdefs for aiolab/hw/virtio.h and aiolab/hw/virtio_wire.h.
 * C-only: virtio_error (printf-style), aiolab_virtio_queue_set_inflight_ops
 * (an ops struct for a C transport's in-flight log). */
typedef struct VirtIODevice VirtIODevice;
typedef struct VirtQueue VirtQueue;
typedef struct VirtQueueElement {
    unsigned int index;
    unsigned int len;
    unsigned int ndescs;
    unsigned int out_num;
    unsigned int in_num;
    uint64_t *in_addr;
    uint64_t *out_addr;
    struct iovec *in_sg;
    struct iovec *out_sg;
} VirtQueueElement;
typedef struct VirtioBusOps {
    void (*notify)(void *opaque, int n);
    int (*set_host_notifier)(void *opaque, int n, EventNotifier *e,
                             bool assign);
    bool no_notifiers;
} VirtioBusOps;
typedef struct AiolabVirtQueueStats {
    uint64_t pops;
    uint64_t pushes;
    uint64_t notifies;
    uint64_t irqfd_notifies;
    uint64_t suppressed;
    uint64_t kicks;
} AiolabVirtQueueStats;
#define VIRTIO_CONFIG_S_ACKNOWLEDGE 1
#define VIRTIO_CONFIG_S_DRIVER 2
#define VIRTIO_CONFIG_S_DRIVER_OK 4
#define VIRTIO_CONFIG_S_FEATURES_OK 8
#define VIRTIO_CONFIG_S_NEEDS_RESET 64
#define VIRTIO_CONFIG_S_FAILED 128
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_USED_F_NO_NOTIFY 1
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VIRTQUEUE_MAX_SIZE 1024

/* The queue's home thread: popping and pushing */
void *virtqueue_pop(VirtQueue *vq, size_t sz);
void virtqueue_push(VirtQueue *vq, const VirtQueueElement *elem,
                    unsigned int len);
void virtqueue_fill(VirtQueue *vq, const VirtQueueElement *elem,
                    unsigned int len, unsigned int idx);
void virtqueue_flush(VirtQueue *vq, unsigned int count);
void virtqueue_detach_element(VirtQueue *vq, const VirtQueueElement *elem,
                              unsigned int len);
void virtqueue_unpop(VirtQueue *vq, const VirtQueueElement *elem,
                     unsigned int len);
int virtio_queue_empty(VirtQueue *vq);
int virtio_queue_ready(VirtQueue *vq);
void virtio_queue_set_notification(VirtQueue *vq, int enable);
int virtio_queue_get_notification(VirtQueue *vq);
bool virtio_should_notify(VirtIODevice *vdev, VirtQueue *vq);
void virtio_notify(VirtIODevice *vdev, VirtQueue *vq);
void virtio_notify_irqfd(VirtIODevice *vdev, VirtQueue *vq);
void *aiolab_virtqueue_pop_head(VirtQueue *vq, unsigned int head, size_t sz);

/* Host notifiers (ioeventfd) in an AioContext */
void virtio_queue_aio_attach_host_notifier(VirtQueue *vq, AioContext *ctx);
void virtio_queue_aio_attach_host_notifier_no_poll(VirtQueue *vq,
                                                   AioContext *ctx);
void virtio_queue_aio_detach_host_notifier(VirtQueue *vq, AioContext *ctx);
void virtio_queue_host_notifier_read(EventNotifier *n);
EventNotifier *virtio_queue_get_host_notifier(VirtQueue *vq);
EventNotifier *virtio_queue_get_guest_notifier(VirtQueue *vq);
int aiolab_virtio_queue_set_guest_notifier_fd(VirtQueue *vq, int fd);
void virtio_queue_notify(VirtIODevice *vdev, int n);
void aiolab_virtio_guest_kick(VirtIODevice *vdev, int n);
int virtio_bus_set_host_notifier(VirtIODevice *vdev, int n, bool assign);
bool virtio_bus_cleanup_host_notifier(VirtIODevice *vdev, int n);
int virtio_device_start_ioeventfd(VirtIODevice *vdev);
void virtio_device_stop_ioeventfd(VirtIODevice *vdev);
bool virtio_device_ioeventfd_enabled(VirtIODevice *vdev);

/* Queue setup */
int virtio_get_num_queues(VirtIODevice *vdev);
VirtQueue *virtio_get_queue(VirtIODevice *vdev, int n);
int virtio_get_queue_index(VirtQueue *vq);
VirtIODevice *aiolab_virtio_queue_get_device(VirtQueue *vq);
void virtio_queue_set_num(VirtIODevice *vdev, int n, int num);
int virtio_queue_get_num(VirtIODevice *vdev, int n);
int virtio_queue_get_max_num(VirtIODevice *vdev, int n);
int virtio_queue_set_rings(VirtIODevice *vdev, int n, uint64_t desc,
                           uint64_t avail, uint64_t used);
void virtio_queue_set_last_avail_idx(VirtIODevice *vdev, int n,
                                     unsigned int idx);
unsigned int virtio_queue_get_last_avail_idx(VirtIODevice *vdev, int n);
void virtio_queue_update_used_idx(VirtIODevice *vdev, int n);
unsigned int aiolab_virtio_queue_get_used_idx(VirtIODevice *vdev, int n);
unsigned int aiolab_virtio_queue_get_inuse(VirtIODevice *vdev, int n);
void aiolab_virtio_queue_set_enabled(VirtIODevice *vdev, int n, bool enabled);
bool aiolab_virtio_queue_is_enabled(VirtIODevice *vdev, int n);
void aiolab_virtio_queue_get_stats(VirtQueue *vq,
                                   AiolabVirtQueueStats *stats);

/* The device: features, status, config space, errors */
const char *aiolab_virtio_device_get_name(VirtIODevice *vdev);
uint64_t aiolab_virtio_get_host_features(VirtIODevice *vdev);
uint64_t aiolab_virtio_get_guest_features(VirtIODevice *vdev);
bool virtio_vdev_has_feature(VirtIODevice *vdev, unsigned int fbit);
int virtio_set_features(VirtIODevice *vdev, uint64_t val);
int virtio_set_status(VirtIODevice *vdev, uint8_t val);
uint8_t aiolab_virtio_get_status(VirtIODevice *vdev);
int aiolab_virtio_bus_set_status(VirtIODevice *vdev, uint8_t val);
void aiolab_virtio_vmstate_change(VirtIODevice *vdev, bool running);
void virtio_reset(VirtIODevice *vdev);
bool aiolab_virtio_device_is_broken(VirtIODevice *vdev);
size_t aiolab_virtio_device_get_last_error(VirtIODevice *vdev, char *buf,
                                           size_t len);
void virtio_notify_config(VirtIODevice *vdev);
EventNotifier *aiolab_virtio_get_config_notifier(VirtIODevice *vdev);
uint8_t aiolab_virtio_isr_read(VirtIODevice *vdev);
uint32_t aiolab_virtio_get_config_len(VirtIODevice *vdev);
size_t aiolab_virtio_config_read(VirtIODevice *vdev, uint32_t offset,
                                 void *buf, size_t len);
size_t aiolab_virtio_config_write(VirtIODevice *vdev, uint32_t offset,
                                  const void *buf, size_t len);
uint32_t aiolab_virtio_get_config_generation(VirtIODevice *vdev);
GuestMemory *aiolab_virtio_get_guest_memory(VirtIODevice *vdev);

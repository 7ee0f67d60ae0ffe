/* SPDX-License-Identifier: MIT */
/*
 * export/vhost-user-server.h - the back-end side of the vhost-user
 * protocol (QEMU's util/vhost-user-server.c and subprojects/libvhost-user,
 * docs/interop/vhost-user.rst), serving one virtio device of aiolab's
 * virtio core to one front-end (a QEMU) at a time.  Not a public header.
 *
 * What vhost-user moves out of QEMU: the device's data plane.  QEMU keeps
 * the PCI device, the guest's config space accesses and the interrupt
 * controller; the back-end (this process) gets the guest's RAM (memfds
 * passed with SCM_RIGHTS and mmapped here), the rings' addresses in it,
 * one eventfd per queue that the guest's notify writes kick (ioeventfd,
 * in QEMU's kernel-side KVM or TCG) and one eventfd per queue to signal
 * completions (irqfd).  After set-up, requests and completions never go
 * through QEMU at all.
 *
 *   front-end (QEMU)               unix socket            back-end (here)
 *   ----------------               -----------            ---------------
 *   GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES,
 *   GET_QUEUE_NUM, GET_MAX_MEM_SLOTS, SET_OWNER, GET_CONFIG     (connect)
 *   guest sets DRIVER_OK:
 *     SET_FEATURES, SET_MEM_TABLE or ADD_MEM_REG x N  --> mmap the memfds
 *     GET_INFLIGHT_FD (or SET_INFLIGHT_FD after a reconnect)
 *     per queue: SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ADDR,
 *                SET_VRING_KICK  ------------------------> ring started
 *                SET_VRING_CALL, SET_VRING_ENABLE
 *   guest resets the device: per queue GET_VRING_BASE ----> ring stopped
 *
 * A ring is stopped, started (a kick fd arrived: SET_VRING_KICK) and
 * disabled, or started and enabled (SET_VRING_ENABLE 1; without
 * VHOST_USER_F_PROTOCOL_FEATURES rings start enabled).  GET_VRING_BASE
 * stops it and answers where the next pop would be.
 *
 * How it maps onto aiolab's virtio core: the device runs (DRIVER_OK,
 * ioeventfd started: each queue's kick fd is its host notifier in its
 * AioContext) while at least one ring is started.  Any change the core
 * cannot take on the fly (a ring started or stopped, a new kick fd, a
 * memory table change) stops the device (which drains it), re-applies
 * every ring's state and starts it again; a new call fd or an enable
 * change is applied in the queue's own thread, on the fly.
 *
 * Threads: the socket and every message are handled in the main loop
 * with the BQL held, on the iohandler context (so a nested aio_poll in
 * a drain never reads the next message half-way through this one).  The
 * rings run in their AioContexts (main loop or IOThreads).
 *
 * Where QEMU differs: QEMU's server (libvhost-user inside a coroutine)
 * handles the socket in the export's AioContext and runs its own
 * virtqueue code; aiolab handles messages under the BQL in the main loop
 * and reuses the device model and virtqueues of the toy machine, so a
 * control message is a management operation here, like a PCI config
 * write in QEMU.  No IOMMU, no dirty logging (migration), no postcopy, no
 * back-end channel (SLAVE_REQ), no packed rings, no in-band
 * notifications, no STATUS.
 */
#ifndef AIOLAB_EXPORT_VHOST_USER_SERVER_H
#define AIOLAB_EXPORT_VHOST_USER_SERVER_H

#include <aiolab/aiolab.h>

/* --- The wire protocol (docs/interop/vhost-user.rst) ------------------- */

/* Front-end requests (the header's request field). */
typedef enum VhostUserRequest {
    VHOST_USER_NONE = 0,
    VHOST_USER_GET_FEATURES = 1,
    VHOST_USER_SET_FEATURES = 2,
    VHOST_USER_SET_OWNER = 3,
    VHOST_USER_RESET_OWNER = 4,
    VHOST_USER_SET_MEM_TABLE = 5,
    VHOST_USER_SET_LOG_BASE = 6,
    VHOST_USER_SET_LOG_FD = 7,
    VHOST_USER_SET_VRING_NUM = 8,
    VHOST_USER_SET_VRING_ADDR = 9,
    VHOST_USER_SET_VRING_BASE = 10,
    VHOST_USER_GET_VRING_BASE = 11,
    VHOST_USER_SET_VRING_KICK = 12,
    VHOST_USER_SET_VRING_CALL = 13,
    VHOST_USER_SET_VRING_ERR = 14,
    VHOST_USER_GET_PROTOCOL_FEATURES = 15,
    VHOST_USER_SET_PROTOCOL_FEATURES = 16,
    VHOST_USER_GET_QUEUE_NUM = 17,
    VHOST_USER_SET_VRING_ENABLE = 18,
    VHOST_USER_GET_CONFIG = 24,
    VHOST_USER_SET_CONFIG = 25,
    VHOST_USER_GET_INFLIGHT_FD = 31,
    VHOST_USER_SET_INFLIGHT_FD = 32,
    VHOST_USER_RESET_DEVICE = 34,
    VHOST_USER_GET_MAX_MEM_SLOTS = 36,
    VHOST_USER_ADD_MEM_REG = 37,
    VHOST_USER_REM_MEM_REG = 38,
    VHOST_USER_MAX = 41,             /* requests are below this */
} VhostUserRequest;

/* Header flags: version in bits 0-1, reply, need_reply (REPLY_ACK). */
#define VHOST_USER_VERSION            0x1
#define VHOST_USER_VERSION_MASK       0x3
#define VHOST_USER_REPLY_MASK         (1u << 2)
#define VHOST_USER_NEED_REPLY_MASK    (1u << 3)

/* A virtio feature bit the protocol borrows: "I speak protocol features". */
#define VHOST_USER_F_PROTOCOL_FEATURES 30
/* vhost's "log all writes" (migration): never offered here. */
#define VHOST_F_LOG_ALL               26

/* Protocol feature bits (GET/SET_PROTOCOL_FEATURES). */
#define VHOST_USER_PROTOCOL_F_MQ                   0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD            1
#define VHOST_USER_PROTOCOL_F_REPLY_ACK            3
#define VHOST_USER_PROTOCOL_F_CONFIG               9
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD       12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE         13
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS  15

/* SET_VRING_KICK/CALL/ERR payload: queue index in bits 0-7, bit 8 set
 * when no fd is attached (poll instead). */
#define VHOST_USER_VRING_IDX_MASK     0xffu
#define VHOST_USER_VRING_NOFD_MASK    (1u << 8)

#define VHOST_USER_MAX_FDS            8    /* fds per message */
#define VHOST_USER_MEM_REGIONS        8    /* regions in SET_MEM_TABLE */
#define VHOST_USER_MAX_CONFIG_SIZE    256
#define VHOST_USER_HDR_SIZE           12
/* The largest payload any request here has (SET_MEM_TABLE: 8 + 8 * 32). */
#define VHOST_USER_PAYLOAD_MAX        (12 + VHOST_USER_MAX_CONFIG_SIZE)

typedef struct VhostUserHeader {
    uint32_t request;
    uint32_t flags;
    uint32_t size;                   /* payload bytes after the header */
} VhostUserHeader;

typedef struct VhostUserVringState {
    uint32_t index;
    uint32_t num;
} VhostUserVringState;

/* struct vhost_vring_addr: the rings as the front-end's user addresses. */
typedef struct VhostUserVringAddr {
    uint32_t index;
    uint32_t flags;                  /* VHOST_VRING_F_LOG: ignored */
    uint64_t desc_user_addr;
    uint64_t used_user_addr;
    uint64_t avail_user_addr;
    uint64_t log_guest_addr;
} VhostUserVringAddr;

typedef struct VhostUserMemRegion {
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    uint64_t mmap_offset;
} VhostUserMemRegion;

typedef struct VhostUserMemory {
    uint32_t nregions;
    uint32_t padding;
    VhostUserMemRegion regions[VHOST_USER_MEM_REGIONS];
} VhostUserMemory;

typedef struct VhostUserMemRegMsg {  /* ADD_MEM_REG, REM_MEM_REG */
    uint64_t padding;
    VhostUserMemRegion region;
} VhostUserMemRegMsg;

typedef struct VhostUserConfig {
    uint32_t offset;
    uint32_t size;
    uint32_t flags;
    uint8_t region[VHOST_USER_MAX_CONFIG_SIZE];
} VhostUserConfig;
#define VHOST_USER_CONFIG_HDR_SIZE    12

typedef struct VhostUserInflight {
    uint64_t mmap_size;
    uint64_t mmap_offset;
    uint16_t num_queues;
    uint16_t queue_size;
} VhostUserInflight;                 /* 24 bytes on the wire (padded) */
#define VHOST_USER_INFLIGHT_MIN_SIZE  20

/** One message as read from the socket: header, payload, fds. */
typedef struct VhostUserMsg {
    VhostUserHeader hdr;
    union {
        uint64_t u64;
        VhostUserVringState state;
        VhostUserVringAddr addr;
        VhostUserMemory memory;
        VhostUserMemRegMsg memreg;
        VhostUserConfig config;
        VhostUserInflight inflight;
        uint8_t bytes[VHOST_USER_PAYLOAD_MAX];
    } payload;
    int fds[VHOST_USER_MAX_FDS];
    unsigned int nfds;
} VhostUserMsg;

/**
 * vu_request_name: "GET_FEATURES" etc., or "unknown".
 * Context: any thread (pure).
 */
const char *vu_request_name(uint32_t request);

/* --- The server ---------------------------------------------------------- */

typedef struct VuServer VuServer;

/** What the device behind the server does for it. */
typedef struct VuDevOps {
    /* The AioContext queue @n runs in once started. */
    AioContext *(*queue_ctx)(void *opaque, int n);
    /* Resubmit the chains at @heads of @vq (popped by a previous back-end
     * and never completed, from the in-flight log), in the queue's home
     * thread, the device running.  NULL: none are resubmitted. */
    void (*resubmit)(void *opaque, VirtQueue *vq, const uint16_t *heads,
                     unsigned int n);
    /* Extra virtio feature bits to offer (e.g. VIRTIO_BLK_F_RO for a
     * read-only export), ORed into the device's. */
    uint64_t extra_features;
} VuDevOps;

/**
 * vu_server_new: listen on the unix socket @path (an existing socket
 * file there is replaced, as QEMU does) for the device @vdev, whose guest
 * memory @mem the server fills from the front-end's memory table.
 * @vdev must have been created with vu_server_bus_ops() and the server as
 * its bus opaque: create the server with @vdev NULL, then the device,
 * then vu_server_set_device(), then vu_server_start().
 * @name: for messages ("vhost-user-blk export 'exp0'").
 * Returns: the server, or NULL with @errp set.
 * Context: main loop, BQL held.
 */
VuServer *vu_server_new(const char *name, const char *path, GuestMemory *mem,
                        Error **errp);

/** vu_server_bus_ops: the VirtioBusOps for the device behind a server. */
const VirtioBusOps *vu_server_bus_ops(void);

/**
 * vu_server_set_device: the device and its callbacks.
 * Context: main loop, BQL held, before vu_server_start().
 */
void vu_server_set_device(VuServer *s, VirtIODevice *vdev,
                          const VuDevOps *ops, void *opaque);

/**
 * vu_server_start: accept front-ends (one at a time; the next one waits
 * in the listen backlog until the current one is gone).
 * Context: main loop, BQL held.
 */
void vu_server_start(VuServer *s);

/**
 * vu_server_stop: close the listening socket (and unlink it), disconnect
 * the front-end if there is one (the device is stopped and drained, its
 * memory unmapped).  Idempotent.
 * Context: main loop, BQL held.
 */
void vu_server_stop(VuServer *s);

/**
 * vu_server_free: stop and free.  The device must be freed before (it
 * calls the bus ops) or after stopping; NULL is allowed.
 * Context: main loop, BQL held.
 */
void vu_server_free(VuServer *s);

/**
 * vu_server_has_client: is a front-end connected?
 * Context: main loop, BQL held.
 */
bool vu_server_has_client(VuServer *s);

/**
 * vu_server_connect_fd: serve the already connected socket @fd (the
 * server owns it from now on), as if accepted.  For tests and fuzzing.
 * Returns: false if a front-end is connected already (@fd is closed).
 * Context: main loop, BQL held.
 */
bool vu_server_connect_fd(VuServer *s, int fd);

/**
 * vu_server_process: handle one whole message (the server owns its fds,
 * closing any it does not keep).  Replies go to the connection.
 * Returns: false when the front-end must be dropped (the reason was
 * logged); the caller disconnects it.
 * Context: main loop, BQL held, a front-end connected.
 */
bool vu_server_process(VuServer *s, VhostUserMsg *msg);

/**
 * vu_server_disconnect: drop the front-end (device stopped, drained and
 * reset, memory unmapped, fds closed) and listen again.
 * Context: main loop, BQL held.
 */
void vu_server_disconnect(VuServer *s);

/* Quiet mode for the fuzzer: errors are not printed. */
extern bool vu_server_quiet;

#endif

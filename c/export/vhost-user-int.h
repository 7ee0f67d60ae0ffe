/* SPDX-License-Identifier: MIT */
/*
 * export/vhost-user-int.h - the insides of VuServer, shared by
 * vhost-user-server.c (socket, messages, replies), vhost-user-vring.c
 * (memory table, rings, device start/stop) and vhost-user-inflight.c
 * (the in-flight log).  Not a public header.
 */
#ifndef AIOLAB_EXPORT_VHOST_USER_INT_H
#define AIOLAB_EXPORT_VHOST_USER_INT_H

#include "export/vhost-user-server.h"
#include <inttypes.h>
#include "util/atomic.h"
#include "util/check.h"

/*
 * The in-flight log (INFLIGHT_SHMFD), per queue, in a memfd the
 * front-end keeps across back-end restarts (layout: vhost-user.rst,
 * "Inflight I/O tracking", split rings):
 *
 *   queue region:  features u64 | version u16 | desc_num u16 |
 *                  last_batch_head u16 | used_idx u16 | desc[desc_num]
 *   desc[i]:       inflight u8 | pad[5] | next u16 | counter u64
 *
 *   pop of head i:   desc[i].counter = ++counter; desc[i].inflight = 1
 *   fill of head i:  desc[i].next = last_batch_head; last_batch_head = i
 *   flush to idx:    used.idx = idx (the ring); then the batch's entries
 *                    inflight = 0; used_idx = idx (the log)
 *   reconnect:       log used_idx != ring used.idx?  The back-end died
 *                    between the two: clear the last batch.  Then every
 *                    entry still in flight is resubmitted, oldest first,
 *                    and popping resumes at used.idx + their number.
 */
typedef struct VuDescStateSplit {
    uint8_t inflight;
    uint8_t padding[5];
    uint16_t next;
    uint64_t counter;
} VuDescStateSplit;

typedef struct VuQueueRegionSplit {
    uint64_t features;
    uint16_t version;
    uint16_t desc_num;
    uint16_t last_batch_head;
    uint16_t used_idx;
    VuDescStateSplit desc[];
} VuQueueRegionSplit;

#define VU_INFLIGHT_VERSION    1
#define VU_INFLIGHT_ALIGN      64

typedef struct VuInflight {
    int fd;                         /* -1: none */
    void *base;                     /* the mapping of [0, offset + size) */
    uint64_t map_len;
    uint64_t size, offset;          /* as the front-end knows them */
    uint16_t num_queues, queue_size;
} VuInflight;

/* One ring as the front-end set it up (main loop, BQL held). */
typedef struct VuVring {
    VuServer *server;
    int index;
    unsigned int num;               /* SET_VRING_NUM; 0: not set */
    bool addr_set;
    uint64_t desc_uaddr, avail_uaddr, used_uaddr;
    unsigned int base;              /* SET_VRING_BASE, or the last stop's */
    int kick_fd, call_fd, err_fd;   /* owned; -1: none */
    bool started;                   /* kick fd given, no GET_VRING_BASE since */
    bool enabled;                   /* SET_VRING_ENABLE */
    /* The in-flight log of this ring (inside server->inflight), and the
     * pop counter: the queue's home thread while the device runs. */
    VuQueueRegionSplit *log;
    uint64_t counter;
    uint16_t *resubmit;             /* heads to resubmit at start */
    unsigned int n_resubmit;
} VuVring;

struct VuServer {
    char *name;                     /* for messages */
    char *path;                     /* the socket file, NULL once unlinked */
    int listen_fd;                  /* -1 once stopped */
    GuestMemory *mem;               /* the device's; regions are ours */
    VirtIODevice *vdev;
    const VuDevOps *ops;
    void *opaque;
    QEMUBH *broken_bh;              /* iohandler context: a broken device */

    /* --- The connection (main loop, BQL held) ----------------------- */
    int conn_fd;                    /* -1: none */
    VhostUserMsg rmsg;              /* being read */
    size_t rhave;                   /* bytes of header + payload read */
    uint64_t features;              /* SET_FEATURES (vhost bits included) */
    bool features_set;
    uint64_t protocol_features;     /* SET_PROTOCOL_FEATURES */
    bool owner;
    VuInflight inflight;
    int nvrings;
    VuVring *vrings;
    bool running;                   /* the device is started */
    uint64_t messages;              /* handled since the connection */
    /* The configuration space as the front-end knows it: what GET_CONFIG
     * answered, with what SET_CONFIG wrote on top (QEMU caches it and
     * its guest reads the cache).  Written back to the device at every
     * start, so the device's writable fields (virtio-blk's wce) are what
     * the driver of this session saw, not what an earlier session of
     * the same connection left (see vu_device_apply). */
    uint8_t fe_config[VHOST_USER_MAX_CONFIG_SIZE];
    uint32_t fe_config_len;         /* bytes of it known; 0: none */
};

/* The virtio feature bits the protocol owns (never the device's). */
#define VHOST_USER_OWN_FEATURES (1ull << VHOST_USER_F_PROTOCOL_FEATURES)

/* vhost-user-server.c */
bool vu_send_reply(VuServer *s, VhostUserMsg *m, uint32_t size, int fd,
                   Error **errp);
void vu_log_error(VuServer *s, const char *fmt, ...) AIOLAB_PRINTF(2, 3);
void vu_log_info(VuServer *s, const char *fmt, ...) AIOLAB_PRINTF(2, 3);
bool vu_has_protocol_feature(VuServer *s, unsigned int bit);

/* vhost-user-vring.c: the handlers of the memory and ring messages (false
 * with @errp set: drop the front-end), and the device's start/stop. */
bool vu_set_mem_table(VuServer *s, VhostUserMsg *m, Error **errp);
bool vu_add_mem_reg(VuServer *s, VhostUserMsg *m, Error **errp);
bool vu_rem_mem_reg(VuServer *s, VhostUserMsg *m, Error **errp);
bool vu_set_vring_num(VuServer *s, VhostUserMsg *m, Error **errp);
bool vu_set_vring_addr(VuServer *s, VhostUserMsg *m, Error **errp);
bool vu_set_vring_base(VuServer *s, VhostUserMsg *m, Error **errp);
bool vu_get_vring_base(VuServer *s, VhostUserMsg *m, Error **errp);
bool vu_set_vring_fd(VuServer *s, VhostUserMsg *m, Error **errp);
bool vu_set_vring_enable(VuServer *s, VhostUserMsg *m, Error **errp);
bool vu_set_inflight_fd(VuServer *s, VhostUserMsg *m, Error **errp);
bool vu_get_inflight_fd(VuServer *s, VhostUserMsg *m, Error **errp);
bool vu_device_apply(VuServer *s, Error **errp);
void vu_device_stop(VuServer *s);
void vu_vrings_reset(VuServer *s);
void vu_mem_clear(VuServer *s);

/* vhost-user-inflight.c */
uint64_t vu_inflight_queue_size(uint16_t queue_size);
bool vu_inflight_new(VuInflight *inf, uint16_t num_queues,
                     uint16_t queue_size, Error **errp);
bool vu_inflight_map(VuInflight *inf, int fd, const VhostUserInflight *req,
                     Error **errp);
void vu_inflight_free(VuInflight *inf);
bool vu_inflight_recover(VuVring *vr, uint16_t used_idx, Error **errp);
extern const AiolabVirtQueueInflightOps vu_inflight_ops;

#endif

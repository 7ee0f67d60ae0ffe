/* SPDX-License-Identifier: MIT */
/*
 * chD-real-clients/vu-wire.h - the few vhost-user messages this chapter's
 * front-ends send, as QEMU's hw/virtio/vhost-user.c puts them on the
 * socket: a 12-byte header { request, flags, size }, the payload, and up
 * to one fd beside it (SCM_RIGHTS).  Shared by vhost-user-by-hand.c and
 * the restart exercise.
 */
#ifndef CHD_VU_WIRE_H
#define CHD_VU_WIRE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <aiolab/aiolab.h>      /* ldq_le_p() */

/* vhost-user's numbers (docs/interop/vhost-user.rst). */
enum {
    GET_FEATURES = 1, SET_FEATURES = 2, SET_OWNER = 3, SET_MEM_TABLE = 5,
    SET_VRING_NUM = 8, SET_VRING_ADDR = 9, SET_VRING_BASE = 10,
    GET_VRING_BASE = 11, SET_VRING_KICK = 12, SET_VRING_CALL = 13,
    GET_PROTOCOL_FEATURES = 15, SET_PROTOCOL_FEATURES = 16,
    SET_VRING_ENABLE = 18,
};
#define VERSION          1
#define NEED_REPLY       8
#define F_PROTOCOL_FEATURES (1ull << 30)
#define PF_REPLY_ACK     (1ull << 3)

/* One message: header, payload, up to one fd. */
static inline void send_msg(int sock, uint32_t req, uint32_t flags,
                            const void *payload, uint32_t size, int fd)
{
    uint32_t hdr[3] = { req, flags, size };
    struct iovec iov[2] = { { hdr, 12 }, { (void *)payload, size } };
    char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };

    if (fd >= 0) {
        struct cmsghdr *c;

        mh.msg_control = ctl;
        mh.msg_controllen = sizeof(ctl);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    if (sendmsg(sock, &mh, 0) != 12 + (ssize_t)size) {
        perror("sendmsg");
        exit(1);
    }
}

/* A reply: 12 bytes of header and 8 of payload. */
static inline uint64_t recv_u64(int sock)
{
    uint8_t buf[20];

    if (recv(sock, buf, sizeof(buf), MSG_WAITALL) != sizeof(buf)) {
        perror("recv");
        exit(1);
    }
    return ldq_le_p(buf + 12);
}

static inline void send_u64(int sock, uint32_t req, uint64_t v, int fd)
{
    send_msg(sock, req, VERSION, &v, sizeof(v), fd);
}

static inline void send_state(int sock, uint32_t req, uint32_t flags,
                              uint32_t index, uint32_t num)
{
    uint32_t st[2] = { index, num };

    send_msg(sock, req, flags, st, sizeof(st), -1);
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * export/vhost-user-server.c - the vhost-user socket: listening, reading
 * messages with the fds that travel beside them (SCM_RIGHTS), checking
 * them, dispatching them, replying (QEMU's util/vhost-user-server.c and
 * libvhost-user's vu_dispatch).  The memory table and the rings are in
 * vhost-user-vring.c, the in-flight log in vhost-user-inflight.c.
 *
 * Reading one message (a state machine fed by a non-blocking socket, so
 * a front-end that sends half a message never blocks the main loop):
 *
 *   rhave < 12:  recvmsg into the header (the fds come with its bytes)
 *                complete: version 1?  no reply flag?  size <= the
 *                largest payload any request has?  else drop the client
 *   rhave < 12 + size: recvmsg into the payload (fds may come here too)
 *   complete:    vu_server_process(); start over
 *
 * Each recvmsg asks for exactly the bytes still missing, so it never
 * consumes the next message's bytes or fds.  More than 8 fds, or fds cut
 * off (MSG_CTRUNC), drop the client.  EOF or an error drops it too: its
 * device is stopped and drained, the guest memory unmapped, and the
 * listener accepts the next front-end (QEMU's reconnect=1 comes back).
 *
 * Trust: every field of every message is checked before use: sizes per
 * request, vring indices, fd counts, memory regions (against the size of
 * the file behind them), ring addresses (inside the mapped memory).  The
 * guest behind the front-end is held off by the virtio core as it is in
 * the toy machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "export/vhost-user-int.h"
#include "util/mem.h"

bool vu_server_quiet;

/* What this back-end speaks (see the header comment for what it does not). */
#define VU_PROTOCOL_FEATURES                                              \
    ((1ull << VHOST_USER_PROTOCOL_F_MQ) |                                 \
     (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |                          \
     (1ull << VHOST_USER_PROTOCOL_F_CONFIG) |                             \
     (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |                     \
     (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE) |                       \
     (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

/* A front-end that floods us gets this many messages per main-loop turn. */
#define VU_MESSAGES_PER_WAKEUP 64

static void vu_accept(void *opaque);
static void vu_read(void *opaque);

const char *vu_request_name(uint32_t request)
{
    static const char *const names[VHOST_USER_MAX] = {
        [VHOST_USER_GET_FEATURES] = "GET_FEATURES",
        [VHOST_USER_SET_FEATURES] = "SET_FEATURES",
        [VHOST_USER_SET_OWNER] = "SET_OWNER",
        [VHOST_USER_RESET_OWNER] = "RESET_OWNER",
        [VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
        [VHOST_USER_SET_LOG_BASE] = "SET_LOG_BASE",
        [VHOST_USER_SET_LOG_FD] = "SET_LOG_FD",
        [VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
        [VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
        [VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
        [VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
        [VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
        [VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
        [VHOST_USER_SET_VRING_ERR] = "SET_VRING_ERR",
        [VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
        [VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
        [VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
        [VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
        [VHOST_USER_GET_CONFIG] = "GET_CONFIG",
        [VHOST_USER_SET_CONFIG] = "SET_CONFIG",
        [VHOST_USER_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
        [VHOST_USER_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
        [VHOST_USER_RESET_DEVICE] = "RESET_DEVICE",
        [VHOST_USER_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
        [VHOST_USER_ADD_MEM_REG] = "ADD_MEM_REG",
        [VHOST_USER_REM_MEM_REG] = "REM_MEM_REG",
    };

    return request < VHOST_USER_MAX && names[request] ? names[request]
                                                      : "unknown";
}

static void vu_log(VuServer *s, bool error, const char *fmt, va_list ap)
{
    char *msg;

    if (vu_server_quiet) {
        return;
    }
    if (vasprintf(&msg, fmt, ap) < 0) {
        msg = NULL;
    }
    if (error) {
        error_report("%s: %s", s->name, msg ? msg : fmt);
    } else {
        fprintf(stderr, "aiolab: %s: %s\n", s->name, msg ? msg : fmt);
    }
    free(msg);
}

void vu_log_error(VuServer *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vu_log(s, true, fmt, ap);
    va_end(ap);
}

void vu_log_info(VuServer *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vu_log(s, false, fmt, ap);
    va_end(ap);
}

bool vu_has_protocol_feature(VuServer *s, unsigned int bit)
{
    return (s->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) &&
           (s->protocol_features >> bit) & 1;
}

/* --- the listening socket ------------------------------------------------ */

static int vu_listen(const char *path, Error **errp)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        error_setg(errp, "UNIX socket path '%s' is too long", path);
        return -1;
    }
    strcpy(addr.sun_path, path);
    /* A socket left by a previous run is replaced (QEMU unlinks it too);
     * anything else at that path is not ours to delete. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            error_setg(errp, "Failed to bind socket to %s: File exists",
                       path);
            return -1;
        }
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Failed to create socket");
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        error_setg_errno(errp, errno, "Failed to bind socket to %s", path);
        close(fd);
        return -1;
    }
    if (listen(fd, 1) < 0) {
        error_setg_errno(errp, errno, "Failed to listen on socket");
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

static void vu_broken_bh(void *opaque);

VuServer *vu_server_new(const char *name, const char *path, GuestMemory *mem,
                        Error **errp)
{
    VuServer *s;
    int fd;

    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(path);
    REQUIRE_NONNULL(mem);
    fd = vu_listen(path, errp);
    if (fd < 0) {
        return NULL;
    }
    s = aiolab_xcalloc(1, sizeof(*s));
    s->name = aiolab_xstrdup(name);
    s->path = aiolab_xstrdup(path);
    s->listen_fd = fd;
    s->conn_fd = -1;
    s->mem = mem;
    s->inflight.fd = -1;
    /* The iohandler context: never dispatched by a nested aio_poll. */
    s->broken_bh = aio_bh_new(iohandler_get_aio_context(), vu_broken_bh, s);
    return s;
}

void vu_server_set_device(VuServer *s, VirtIODevice *vdev,
                          const VuDevOps *ops, void *opaque)
{
    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(s);
    REQUIRE_NONNULL(ops);
    AIOLAB_REQUIRE(!s->vdev, "called twice");
    s->vdev = vdev;
    s->ops = ops;
    s->opaque = opaque;
    s->nvrings = virtio_get_num_queues(vdev);
    s->vrings = aiolab_xcalloc(s->nvrings, sizeof(*s->vrings));
    for (int i = 0; i < s->nvrings; i++) {
        s->vrings[i] = (VuVring) { .server = s, .index = i, .kick_fd = -1,
                                   .call_fd = -1, .err_fd = -1 };
    }
}

void vu_server_start(VuServer *s)
{
    GLOBAL_STATE_CODE();
    AIOLAB_REQUIRE(s->vdev, "before vu_server_set_device()");
    if (s->listen_fd >= 0 && s->conn_fd < 0) {
        aio_set_fd_handler(iohandler_get_aio_context(), s->listen_fd,
                           vu_accept, NULL, NULL, NULL, s);
    }
}

bool vu_server_has_client(VuServer *s)
{
    return s->conn_fd >= 0;
}

bool vu_server_connect_fd(VuServer *s, int fd)
{
    GLOBAL_STATE_CODE();
    if (s->conn_fd >= 0) {
        close(fd);
        return false;
    }
    s->conn_fd = fd;
    s->rhave = 0;
    s->rmsg.nfds = 0;
    s->messages = 0;
    s->fe_config_len = 0;
    if (s->listen_fd >= 0) {
        /* One front-end at a time: the next waits in the backlog. */
        aio_set_fd_handler(iohandler_get_aio_context(), s->listen_fd, NULL,
                           NULL, NULL, NULL, NULL);
    }
    aio_set_fd_handler(iohandler_get_aio_context(), fd, vu_read, NULL, NULL,
                       NULL, s);
    aiolab_trace_mark("vhost_user_connect", fd);
    return true;
}

static void vu_accept(void *opaque)
{
    VuServer *s = opaque;
    int fd = accept4(s->listen_fd, NULL, NULL,
                     SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            vu_log_error(s, "accept: %s", strerror(errno));
        }
        return;
    }
    vu_server_connect_fd(s, fd);
}

static void vu_close_msg_fds(VhostUserMsg *m)
{
    for (unsigned i = 0; i < m->nfds; i++) {
        if (m->fds[i] >= 0) {
            close(m->fds[i]);
        }
    }
    m->nfds = 0;
}

void vu_server_disconnect(VuServer *s)
{
    GLOBAL_STATE_CODE();
    if (s->conn_fd < 0) {
        return;
    }
    aiolab_trace_mark("vhost_user_disconnect", s->conn_fd);
    aio_set_fd_handler(iohandler_get_aio_context(), s->conn_fd, NULL, NULL,
                       NULL, NULL, NULL);
    close(s->conn_fd);
    s->conn_fd = -1;
    vu_close_msg_fds(&s->rmsg);
    s->rhave = 0;
    /* Stop and drain the device before its memory goes away. */
    vu_device_stop(s);
    virtio_reset(s->vdev);
    vu_vrings_reset(s);
    vu_mem_clear(s);
    vu_inflight_free(&s->inflight);
    s->features = s->protocol_features = 0;
    s->features_set = s->owner = false;
    vu_server_start(s);
}

void vu_server_stop(VuServer *s)
{
    GLOBAL_STATE_CODE();
    if (!s) {
        return;
    }
    if (s->listen_fd >= 0) {
        aio_set_fd_handler(iohandler_get_aio_context(), s->listen_fd, NULL,
                           NULL, NULL, NULL, NULL);
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    if (s->path) {
        unlink(s->path);
        free(s->path);
        s->path = NULL;
    }
    vu_server_disconnect(s);
}

void vu_server_free(VuServer *s)
{
    if (!s) {
        return;
    }
    GLOBAL_STATE_CODE();
    vu_server_stop(s);
    qemu_bh_delete(s->broken_bh);
    free(s->vrings);
    free(s->name);
    free(s);
}

/* --- replies --------------------------------------------------------------- */

/* Send @size payload bytes of @m (with @fd attached if >= 0) as the reply
 * to @m's request.  A front-end that does not read its replies is
 * dropped: the reply is small, so EAGAIN means it stopped reading. */
bool vu_send_reply(VuServer *s, VhostUserMsg *m, uint32_t size, int fd,
                   Error **errp)
{
    VhostUserHeader hdr = {
        .request = m->hdr.request,
        .flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK,
        .size = size,
    };
    struct iovec iov[2] = {
        { .iov_base = &hdr, .iov_len = sizeof(hdr) },
        { .iov_base = &m->payload, .iov_len = size },
    };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
    ssize_t n;

    if (fd >= 0) {
        struct cmsghdr *c;

        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    do {
        n = sendmsg(s->conn_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)(sizeof(hdr) + size)) {
        error_setg(errp, "cannot send the reply to %s: %s",
                   vu_request_name(m->hdr.request),
                   n < 0 ? strerror(errno) : "short write");
        return false;
    }
    return true;
}

static bool vu_reply_u64(VuServer *s, VhostUserMsg *m, uint64_t v,
                         Error **errp)
{
    m->payload.u64 = v;
    return vu_send_reply(s, m, sizeof(uint64_t), -1, errp);
}

/* --- checking a message ------------------------------------------------------ */

/* The payload size each request must have: exact, or at least @min when
 * @exact is false (then the handler checks the rest). */
static bool vu_check_size(VhostUserMsg *m, Error **errp)
{
    uint32_t req = m->hdr.request, size = m->hdr.size, want = 0;
    bool exact = true;

    switch (req) {
    case VHOST_USER_GET_FEATURES:
    case VHOST_USER_GET_PROTOCOL_FEATURES:
    case VHOST_USER_SET_OWNER:
    case VHOST_USER_RESET_OWNER:
    case VHOST_USER_GET_QUEUE_NUM:
    case VHOST_USER_GET_MAX_MEM_SLOTS:
    case VHOST_USER_RESET_DEVICE:
        want = 0;
        break;
    case VHOST_USER_SET_FEATURES:
    case VHOST_USER_SET_PROTOCOL_FEATURES:
    case VHOST_USER_SET_VRING_KICK:
    case VHOST_USER_SET_VRING_CALL:
    case VHOST_USER_SET_VRING_ERR:
        want = sizeof(uint64_t);
        break;
    case VHOST_USER_SET_VRING_NUM:
    case VHOST_USER_SET_VRING_BASE:
    case VHOST_USER_GET_VRING_BASE:
    case VHOST_USER_SET_VRING_ENABLE:
        want = sizeof(VhostUserVringState);
        break;
    case VHOST_USER_SET_VRING_ADDR:
        want = sizeof(VhostUserVringAddr);
        break;
    case VHOST_USER_SET_MEM_TABLE:
        want = 8;               /* nregions, padding; the regions: later */
        exact = false;
        break;
    case VHOST_USER_ADD_MEM_REG:
    case VHOST_USER_REM_MEM_REG:
        want = sizeof(VhostUserMemRegMsg);
        break;
    case VHOST_USER_GET_CONFIG:
    case VHOST_USER_SET_CONFIG:
        want = VHOST_USER_CONFIG_HDR_SIZE;
        exact = false;
        break;
    case VHOST_USER_GET_INFLIGHT_FD:
    case VHOST_USER_SET_INFLIGHT_FD:
        want = VHOST_USER_INFLIGHT_MIN_SIZE;
        exact = false;
        break;
    default:
        error_setg(errp, "request %u (%s) is not supported", req,
                   vu_request_name(req));
        return false;
    }
    if (exact ? size != want : size < want) {
        error_setg(errp, "%s with a %u-byte payload (expected %s%u)",
                   vu_request_name(req), size, exact ? "" : "at least ",
                   want);
        return false;
    }
    if (req == VHOST_USER_SET_MEM_TABLE) {
        uint32_t n = m->payload.memory.nregions;

        if (n == 0 || n > VHOST_USER_MEM_REGIONS ||
            size != 8 + n * sizeof(VhostUserMemRegion)) {
            error_setg(errp, "SET_MEM_TABLE with %u regions in %u bytes "
                       "(1 to %d regions of %zu bytes each)", n, size,
                       VHOST_USER_MEM_REGIONS, sizeof(VhostUserMemRegion));
            return false;
        }
    }
    return true;
}

/* How many fds @m may carry: SET_MEM_TABLE one per region, the fd
 * messages one (none with the no-fd flag), REM_MEM_REG one at most (the
 * spec lets back-ends accept and close it), the rest none. */
static bool vu_check_fds(VhostUserMsg *m, Error **errp)
{
    unsigned int want = 0, n = m->nfds;
    bool at_most = false;

    switch (m->hdr.request) {
    case VHOST_USER_SET_MEM_TABLE:
        want = m->payload.memory.nregions;
        break;
    case VHOST_USER_ADD_MEM_REG:
    case VHOST_USER_SET_INFLIGHT_FD:
        want = 1;
        break;
    case VHOST_USER_REM_MEM_REG:
        want = 1;
        at_most = true;
        break;
    case VHOST_USER_SET_VRING_KICK:
    case VHOST_USER_SET_VRING_CALL:
    case VHOST_USER_SET_VRING_ERR:
        want = (m->payload.u64 & VHOST_USER_VRING_NOFD_MASK) ? 0 : 1;
        break;
    }
    if (at_most ? n > want : n != want) {
        error_setg(errp, "%s came with %u file descriptor%s (expected %s%u)",
                   vu_request_name(m->hdr.request), n, n == 1 ? "" : "s",
                   at_most ? "at most " : "", want);
        return false;
    }
    return true;
}

/* --- the simple requests ------------------------------------------------------- */

static bool vu_set_features(VuServer *s, VhostUserMsg *m, Error **errp)
{
    uint64_t offered = aiolab_virtio_get_host_features(s->vdev) |
                       s->ops->extra_features | VHOST_USER_OWN_FEATURES;
    uint64_t f = m->payload.u64;

    if (f & ~offered) {
        error_setg(errp, "SET_FEATURES 0x%" PRIx64 " has bits that were not "
                   "offered (0x%" PRIx64 ")", f, f & ~offered);
        return false;
    }
    /* Features are the device's: a running device takes them at its
     * next start, so stop it and start it again. */
    vu_device_stop(s);
    s->features = f;
    s->features_set = true;
    return vu_device_apply(s, errp);
}

static bool vu_set_protocol_features(VuServer *s, VhostUserMsg *m,
                                     Error **errp)
{
    uint64_t f = m->payload.u64;

    if (f & ~VU_PROTOCOL_FEATURES) {
        error_setg(errp, "SET_PROTOCOL_FEATURES 0x%" PRIx64 " has bits "
                   "that were not offered (0x%" PRIx64 ")", f,
                   f & ~(uint64_t)VU_PROTOCOL_FEATURES);
        return false;
    }
    s->protocol_features = f;
    return true;
}

/* Remember @c's bytes as the front-end's view of the config space (a
 * gap before them is read from the device, as GET_CONFIG would). */
static void vu_note_config(VuServer *s, const VhostUserConfig *c)
{
    uint32_t end = c->offset + c->size;

    if (c->offset > s->fe_config_len) {
        aiolab_virtio_config_read(s->vdev, s->fe_config_len,
                                  s->fe_config + s->fe_config_len,
                                  c->offset - s->fe_config_len);
    }
    memcpy(s->fe_config + c->offset, c->region, c->size);
    if (end > s->fe_config_len) {
        s->fe_config_len = end;
    }
}

static bool vu_config(VuServer *s, VhostUserMsg *m, Error **errp)
{
    VhostUserConfig *c = &m->payload.config;
    bool get = m->hdr.request == VHOST_USER_GET_CONFIG;

    if (c->size > VHOST_USER_MAX_CONFIG_SIZE ||
        c->offset > VHOST_USER_MAX_CONFIG_SIZE - c->size ||
        m->hdr.size != VHOST_USER_CONFIG_HDR_SIZE + c->size) {
        error_setg(errp, "%s of %u bytes at offset %u in a %u-byte message",
                   vu_request_name(m->hdr.request), c->size, c->offset,
                   m->hdr.size);
        return false;
    }
    if (get) {
        /* The front-end asks for its idea of the config size; the bytes
         * past the device's config read as zero. */
        memset(c->region, 0, c->size);
        aiolab_virtio_config_read(s->vdev, c->offset, c->region, c->size);
        vu_note_config(s, c);
        return vu_send_reply(s, m, m->hdr.size, -1, errp);
    }
    /* The guest wrote a writable field (virtio-blk: wce); the device
     * ignores writes to the others. */
    aiolab_virtio_config_write(s->vdev, c->offset, c->region, c->size);
    vu_note_config(s, c);
    return true;
}

static bool vu_reset_owner(VuServer *s, Error **errp)
{
    /* Every ring stopped and forgotten, the device reset; the memory
     * table stays (RESET_DEVICE's "ready to be reinitialized"). */
    vu_device_stop(s);
    virtio_reset(s->vdev);
    vu_vrings_reset(s);
    s->features = 0;
    s->features_set = false;
    return true;
}

/* --- dispatch ----------------------------------------------------------------- */

/* Returns false with @errp set when the front-end must go.  *@replied
 * says whether the request's own reply was sent (else REPLY_ACK may). */
static bool vu_dispatch(VuServer *s, VhostUserMsg *m, bool *replied,
                        Error **errp)
{
    *replied = true;
    switch (m->hdr.request) {
    case VHOST_USER_GET_FEATURES:
        return vu_reply_u64(s, m, aiolab_virtio_get_host_features(s->vdev) |
                            s->ops->extra_features | VHOST_USER_OWN_FEATURES,
                            errp);
    case VHOST_USER_GET_PROTOCOL_FEATURES:
        return vu_reply_u64(s, m, VU_PROTOCOL_FEATURES, errp);
    case VHOST_USER_GET_QUEUE_NUM:
        return vu_reply_u64(s, m, s->nvrings, errp);
    case VHOST_USER_GET_MAX_MEM_SLOTS:
        return vu_reply_u64(s, m, AIOLAB_GUEST_MEM_MAX_REGIONS, errp);
    case VHOST_USER_GET_VRING_BASE:
        return vu_get_vring_base(s, m, errp);
    case VHOST_USER_GET_CONFIG:
        return vu_config(s, m, errp);
    case VHOST_USER_GET_INFLIGHT_FD:
        return vu_get_inflight_fd(s, m, errp);
    }
    *replied = false;
    switch (m->hdr.request) {
    case VHOST_USER_SET_FEATURES:
        return vu_set_features(s, m, errp);
    case VHOST_USER_SET_PROTOCOL_FEATURES:
        return vu_set_protocol_features(s, m, errp);
    case VHOST_USER_SET_OWNER:
        s->owner = true;
        return true;
    case VHOST_USER_RESET_OWNER:
    case VHOST_USER_RESET_DEVICE:
        return vu_reset_owner(s, errp);
    case VHOST_USER_SET_MEM_TABLE:
        return vu_set_mem_table(s, m, errp);
    case VHOST_USER_ADD_MEM_REG:
        return vu_add_mem_reg(s, m, errp);
    case VHOST_USER_REM_MEM_REG:
        return vu_rem_mem_reg(s, m, errp);
    case VHOST_USER_SET_VRING_NUM:
        return vu_set_vring_num(s, m, errp);
    case VHOST_USER_SET_VRING_ADDR:
        return vu_set_vring_addr(s, m, errp);
    case VHOST_USER_SET_VRING_BASE:
        return vu_set_vring_base(s, m, errp);
    case VHOST_USER_SET_VRING_KICK:
    case VHOST_USER_SET_VRING_CALL:
    case VHOST_USER_SET_VRING_ERR:
        return vu_set_vring_fd(s, m, errp);
    case VHOST_USER_SET_VRING_ENABLE:
        return vu_set_vring_enable(s, m, errp);
    case VHOST_USER_SET_CONFIG:
        return vu_config(s, m, errp);
    case VHOST_USER_SET_INFLIGHT_FD:
        return vu_set_inflight_fd(s, m, errp);
    }
    error_setg(errp, "request %u is not supported", m->hdr.request);
    return false;
}

bool vu_server_process(VuServer *s, VhostUserMsg *m)
{
    Error *err = NULL;
    bool replied = false, ok;

    GLOBAL_STATE_CODE();
    AIOLAB_REQUIRE(s->conn_fd >= 0, "without a front-end connected");
    aiolab_trace_begin("vhost_user_msg", m->hdr.request);
    s->messages++;
    ok = vu_check_size(m, &err) && vu_check_fds(m, &err) &&
         vu_dispatch(s, m, &replied, &err);
    /* Whatever a handler did not take is closed (it set taken fds -1). */
    vu_close_msg_fds(m);
    /* REPLY_ACK: 0 for success, non-zero for failure, when asked. */
    if (!replied && s->conn_fd >= 0 &&
        (m->hdr.flags & VHOST_USER_NEED_REPLY_MASK) &&
        vu_has_protocol_feature(s, VHOST_USER_PROTOCOL_F_REPLY_ACK)) {
        Error *reply_err = NULL;

        if (!vu_reply_u64(s, m, ok ? 0 : 1, ok ? &reply_err : NULL)) {
            ok = false;
            err = reply_err;
        }
    }
    if (!ok) {
        vu_log_error(s, "%s: %s; dropping the front-end",
                     vu_request_name(m->hdr.request),
                     err ? error_get_pretty(err) : "failed");
        error_free(err);
    }
    aiolab_trace_end("vhost_user_msg", m->hdr.request);
    return ok;
}

/* --- reading --------------------------------------------------------------------- */

/* Take the fds of every SCM_RIGHTS message in @mh into @m; false if there
 * were more than fit in one message. */
static bool vu_take_fds(VhostUserMsg *m, struct msghdr *mh)
{
    bool ok = !(mh->msg_flags & MSG_CTRUNC);

    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        size_t n;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (m->nfds < VHOST_USER_MAX_FDS) {
                m->fds[m->nfds++] = fd;
            } else {
                close(fd);
                ok = false;
            }
        }
    }
    return ok;
}

/* Read what is missing of the current message.  Returns 1 when it is
 * complete, 2 after a read that left it incomplete, 0 when the socket has
 * nothing for now, -1 on EOF or error (with @errp set, or not for a clean
 * EOF at a message boundary). */
static int vu_read_some(VuServer *s, Error **errp)
{
    VhostUserMsg *m = &s->rmsg;
    size_t total = VHOST_USER_HDR_SIZE +
                   (s->rhave >= VHOST_USER_HDR_SIZE ? m->hdr.size : 0);
    union {
        char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf) };
    ssize_t n;

    if (s->rhave < VHOST_USER_HDR_SIZE) {
        iov.iov_base = (uint8_t *)&m->hdr + s->rhave;
        iov.iov_len = VHOST_USER_HDR_SIZE - s->rhave;
    } else {
        iov.iov_base = m->payload.bytes + (s->rhave - VHOST_USER_HDR_SIZE);
        iov.iov_len = total - s->rhave;
    }
    if (iov.iov_len) {
        do {
            n = recvmsg(s->conn_fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "reading the socket");
            return -1;
        }
        if (!vu_take_fds(m, &mh)) {
            error_setg(errp, "a message came with more than %d file "
                       "descriptors", VHOST_USER_MAX_FDS);
            return -1;
        }
        if (n == 0) {
            if (s->rhave || m->nfds) {
                error_setg(errp, "the front-end closed the connection in "
                           "the middle of a message (%zu bytes of it)",
                           s->rhave);
            }
            return -1;
        }
        s->rhave += n;
    }
    if (s->rhave == VHOST_USER_HDR_SIZE && iov.iov_len) {
        if ((m->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
            (m->hdr.flags & VHOST_USER_REPLY_MASK)) {
            error_setg(errp, "bad message header (request %u, flags 0x%x): "
                       "not a version 1 request", m->hdr.request,
                       m->hdr.flags);
            return -1;
        }
        if (m->hdr.size > VHOST_USER_PAYLOAD_MAX) {
            error_setg(errp, "%s with a %u-byte payload: too large",
                       vu_request_name(m->hdr.request), m->hdr.size);
            return -1;
        }
        total = VHOST_USER_HDR_SIZE + m->hdr.size;
    }
    return s->rhave >= VHOST_USER_HDR_SIZE && s->rhave == total ? 1 : 2;
}

static void vu_read(void *opaque)
{
    VuServer *s = opaque;

    for (int i = 0; i < VU_MESSAGES_PER_WAKEUP && s->conn_fd >= 0;) {
        Error *err = NULL;
        int r = vu_read_some(s, &err);

        if (r == 0) {
            return;
        }
        if (r == 2) {
            continue;           /* e.g. stopped at the fds of the payload */
        }
        if (r < 0) {
            if (err) {
                vu_log_error(s, "%s; dropping the front-end",
                             error_get_pretty(err));
                error_free(err);
            }
            vu_server_disconnect(s);
            return;
        }
        /* Complete: handle it and start the next one. */
        s->rhave = 0;
        if (!vu_server_process(s, &s->rmsg)) {
            vu_server_disconnect(s);
            return;
        }
        memset(&s->rmsg.hdr, 0, sizeof(s->rmsg.hdr));
        i++;
    }
}

/* --- the device broke (a bad ring or chain from the guest) -------------------------- */

static void vu_bus_notify(void *opaque, int n)
{
    VuServer *s = opaque;
    VirtQueue *vq;

    if (n != VIRTIO_CONFIG_IRQ_IDX) {
        vq = virtio_get_queue(s->vdev, n);
        event_notifier_set(virtio_queue_get_guest_notifier(vq));
        return;
    }
    /* Any thread (virtio_error in an IOThread): look in the main loop. */
    qemu_bh_schedule(s->broken_bh);
}

/* A configuration interrupt: the device broke (virtio_error set
 * NEEDS_RESET), or its configuration changed (a resize), which a
 * front-end without a back-end channel cannot be told about. */
static void vu_broken_bh(void *opaque)
{
    VuServer *s = opaque;
    char msg[256];

    if (s->conn_fd < 0 || !s->vdev) {
        return;
    }
    if (!aiolab_virtio_device_is_broken(s->vdev)) {
        warn_report("%s: the device's configuration changed; the front-end "
                    "sees it at its next GET_CONFIG", s->name);
        return;
    }
    aiolab_virtio_device_get_last_error(s->vdev, msg, sizeof(msg));
    vu_log_error(s, "the device is broken (%s); dropping the front-end",
                 msg);
    for (int i = 0; i < s->nvrings; i++) {
        if (s->vrings[i].err_fd >= 0) {
            uint64_t one = 1;

            if (write(s->vrings[i].err_fd, &one, sizeof(one)) < 0) {
                /* The front-end learns it from the disconnect anyway. */
            }
        }
    }
    vu_server_disconnect(s);
}

static int vu_bus_set_host_notifier(void *opaque, int n, EventNotifier *e,
                                    bool assign)
{
    VuServer *s = opaque;
    int fd;

    if (!assign) {
        return 0;               /* the core closes its copy */
    }
    if (n >= s->nvrings || s->vrings[n].kick_fd < 0) {
        /* A ring the front-end does not use: a kick that never comes. */
        return event_notifier_init(e, 0);
    }
    fd = fcntl(s->vrings[n].kick_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    event_notifier_init_fd(e, fd);
    return 0;
}

static const VirtioBusOps vu_bus_ops = {
    .notify = vu_bus_notify,
    .set_host_notifier = vu_bus_set_host_notifier,
};

const VirtioBusOps *vu_server_bus_ops(void)
{
    return &vu_bus_ops;
}

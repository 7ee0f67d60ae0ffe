/* SPDX-License-Identifier: MIT */
/*
 * export/vhost-user-vring.c - the guest's memory and the rings as the
 * front-end describes them, and how they become a running device of
 * aiolab's virtio core (libvhost-user's vu_set_mem_table_exec,
 * vu_set_vring_*_exec, and the start/stop of QEMU's vhost-user-blk-server,
 * reduced to one rule).
 *
 * The rule: the front-end's description of each ring (VuVring) is kept
 * here, and the device is a function of it.  The device runs iff some
 * ring is started; every change the core cannot take while queues run
 * goes
 *
 *   vu_device_stop()   ioeventfd stopped: every queue detached in its
 *                      AioContext, a last look at its kick, the block
 *                      layer drained; each started ring's base := where
 *                      its queue would pop next (nothing is in flight)
 *   change the description (a kick fd, a ring stopped, a memory region)
 *   vu_device_apply()  status 0; features; FEATURES_OK; per queue: size,
 *                      rings (user addresses -> guest physical, checked
 *                      inside the mapped memory), base (or, with an
 *                      in-flight log, used.idx + what is in flight), used
 *                      index re-read, enabled, call fd; DRIVER_OK and
 *                      ioeventfd started (each kick fd a host notifier in
 *                      its queue's AioContext); in-flight heads resubmitted
 *
 * while a new call fd or an enable flag is handed to the queue's own
 * thread on the fly (QEMU re-sends the call fd whenever the guest masks
 * or unmasks the queue's MSI-X vector, with requests in flight).
 *
 * Memory: a region comes as an fd, an offset in it, a size, a guest
 * physical and a front-end virtual address.  The fd must be a file at
 * least offset + size long (a shorter one would SIGBUS this process on
 * first touch), the region must not overlap another.  Regions change only
 * with the device stopped (guest-memory.h's rule).
 *
 * Where QEMU differs: libvhost-user stops and starts single rings; the
 * virtio core here starts a device, so a ring starting or stopping
 * restarts the others (a drain in between; rings start and stop only
 * around guest resets).  A front-end that shrinks a memfd it sent (QEMU
 * seals its memfds against that by default) would still SIGBUS us, as it
 * would libvhost-user.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "export/vhost-user-int.h"

/* --- memory ---------------------------------------------------------------- */

void vu_mem_clear(VuServer *s)
{
    GuestMemRegion r[AIOLAB_GUEST_MEM_MAX_REGIONS];
    size_t n = aiolab_guest_mem_get_regions(s->mem, r, ARRAY_SIZE(r));

    AIOLAB_ASSERT(!s->running, "memory cleared under a running device");
    for (size_t i = 0; i < n; i++) {
        aiolab_guest_mem_remove(s->mem, r[i].gpa, r[i].size, &error_abort);
    }
}

/* Map one region; on success the memory owns *@fd (set to -1). */
static bool vu_add_region(VuServer *s, const VhostUserMemRegion *r, int *fd,
                          Error **errp)
{
    struct stat st;

    if (r->memory_size == 0 || r->userspace_addr == 0) {
        error_setg(errp, "memory region at 0x%" PRIx64 " with size 0x%"
                   PRIx64 " and user address 0x%" PRIx64 ": none may be 0",
                   r->guest_phys_addr, r->memory_size, r->userspace_addr);
        return false;
    }
    if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        error_setg(errp, "memory region at 0x%" PRIx64 ": its fd is not a "
                   "memory file", r->guest_phys_addr);
        return false;
    }
    if (r->mmap_offset > (uint64_t)st.st_size ||
        r->memory_size > (uint64_t)st.st_size - r->mmap_offset) {
        error_setg(errp, "memory region at 0x%" PRIx64 " of 0x%" PRIx64
                   " bytes at offset 0x%" PRIx64 " goes past the end of its "
                   "file (0x%" PRIx64 " bytes)", r->guest_phys_addr,
                   r->memory_size, r->mmap_offset, (uint64_t)st.st_size);
        return false;
    }
    if (!aiolab_guest_mem_add_fd(s->mem, r->guest_phys_addr, r->memory_size,
                                 *fd, r->mmap_offset, r->userspace_addr,
                                 errp)) {
        return false;
    }
    *fd = -1;
    return true;
}

bool vu_set_mem_table(VuServer *s, VhostUserMsg *m, Error **errp)
{
    VhostUserMemory *mt = &m->payload.memory;   /* its size was checked */

    vu_device_stop(s);
    vu_mem_clear(s);
    for (uint32_t i = 0; i < mt->nregions; i++) {
        if (!vu_add_region(s, &mt->regions[i], &m->fds[i], errp)) {
            vu_mem_clear(s);
            return false;
        }
    }
    return vu_device_apply(s, errp);
}

bool vu_add_mem_reg(VuServer *s, VhostUserMsg *m, Error **errp)
{
    vu_device_stop(s);
    return vu_add_region(s, &m->payload.memreg.region, &m->fds[0], errp) &&
           vu_device_apply(s, errp);
}

bool vu_rem_mem_reg(VuServer *s, VhostUserMsg *m, Error **errp)
{
    const VhostUserMemRegion *r = &m->payload.memreg.region;
    GuestMemRegion have[AIOLAB_GUEST_MEM_MAX_REGIONS];
    size_t n = aiolab_guest_mem_get_regions(s->mem, have, ARRAY_SIZE(have));

    /* Identified by guest address, user address and size. */
    for (size_t i = 0; i < n; i++) {
        if (have[i].gpa == r->guest_phys_addr &&
            have[i].size == r->memory_size &&
            have[i].uaddr == r->userspace_addr) {
            vu_device_stop(s);
            aiolab_guest_mem_remove(s->mem, have[i].gpa, have[i].size,
                                    &error_abort);
            return vu_device_apply(s, errp);
        }
    }
    error_setg(errp, "REM_MEM_REG of a region that is not there (0x%" PRIx64
               ", size 0x%" PRIx64 ", user address 0x%" PRIx64 ")",
               r->guest_phys_addr, r->memory_size, r->userspace_addr);
    return false;
}

/* --- ring descriptions ------------------------------------------------------- */

static VuVring *vu_vring(VuServer *s, uint32_t index, const char *req,
                         Error **errp)
{
    if (index >= (uint32_t)s->nvrings) {
        error_setg(errp, "%s for vring %u, but the device has %d", req,
                   index, s->nvrings);
        return NULL;
    }
    return &s->vrings[index];
}

static void vu_close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

void vu_vrings_reset(VuServer *s)
{
    AIOLAB_ASSERT(!s->running, "rings reset under a running device");
    for (int i = 0; i < s->nvrings; i++) {
        VuVring *vr = &s->vrings[i];

        vu_close_fd(&vr->kick_fd);
        vu_close_fd(&vr->call_fd);
        vu_close_fd(&vr->err_fd);
        free(vr->resubmit);
        aiolab_virtio_queue_set_inflight_ops(virtio_get_queue(s->vdev, i),
                                             NULL, NULL);
        aiolab_virtio_queue_set_guest_notifier_fd(
            virtio_get_queue(s->vdev, i), -1);
        *vr = (VuVring) { .server = s, .index = i, .kick_fd = -1,
                          .call_fd = -1, .err_fd = -1 };
    }
}

bool vu_set_vring_num(VuServer *s, VhostUserMsg *m, Error **errp)
{
    VuVring *vr = vu_vring(s, m->payload.state.index, "SET_VRING_NUM", errp);
    unsigned int num = m->payload.state.num;
    int max;

    if (!vr) {
        return false;
    }
    max = virtio_queue_get_max_num(s->vdev, vr->index);
    if (num == 0 || num > (unsigned)max || (num & (num - 1))) {
        error_setg(errp, "vring %d: size %u is not a power of 2 up to %d",
                   vr->index, num, max);
        return false;
    }
    vu_device_stop(s);
    vr->num = num;
    return vu_device_apply(s, errp);
}

static unsigned int vu_vring_num(VuVring *vr)
{
    return vr->num ? vr->num
                   : (unsigned)virtio_queue_get_max_num(vr->server->vdev,
                                                        vr->index);
}

/* The three areas of @vr as guest physical addresses, each wholly in
 * the mapped memory. */
static bool vu_vring_gpas(VuVring *vr, uint64_t *desc, uint64_t *avail,
                          uint64_t *used, Error **errp)
{
    GuestMemory *mem = vr->server->mem;
    unsigned int num = vu_vring_num(vr);

    if (!aiolab_guest_mem_uaddr_to_gpa(mem, vr->desc_uaddr,
                                       vring_desc_size(num), desc)) {
        error_setg(errp, "vring %d: the descriptor table at user address "
                   "0x%" PRIx64 " (%u entries) is not inside the guest's "
                   "memory", vr->index, vr->desc_uaddr, num);
        return false;
    }
    if (!aiolab_guest_mem_uaddr_to_gpa(mem, vr->avail_uaddr,
                                       vring_avail_size(num), avail)) {
        error_setg(errp, "vring %d: the available ring at user address "
                   "0x%" PRIx64 " is not inside the guest's memory",
                   vr->index, vr->avail_uaddr);
        return false;
    }
    if (!aiolab_guest_mem_uaddr_to_gpa(mem, vr->used_uaddr,
                                       vring_used_size(num), used)) {
        error_setg(errp, "vring %d: the used ring at user address 0x%"
                   PRIx64 " is not inside the guest's memory", vr->index,
                   vr->used_uaddr);
        return false;
    }
    return true;
}

bool vu_set_vring_addr(VuServer *s, VhostUserMsg *m, Error **errp)
{
    VhostUserVringAddr *a = &m->payload.addr;
    VuVring *vr = vu_vring(s, a->index, "SET_VRING_ADDR", errp);
    uint64_t d, av, u;

    if (!vr) {
        return false;
    }
    vu_device_stop(s);
    vr->desc_uaddr = a->desc_user_addr;
    vr->avail_uaddr = a->avail_user_addr;
    vr->used_uaddr = a->used_user_addr;
    vr->addr_set = true;
    /* Checked now if the memory is there (it is, from QEMU), so the error
     * names the message that was wrong; checked again at every start. */
    if (aiolab_guest_mem_get_regions(s->mem, NULL, 0) &&
        !vu_vring_gpas(vr, &d, &av, &u, errp)) {
        return false;
    }
    return vu_device_apply(s, errp);
}

bool vu_set_vring_base(VuServer *s, VhostUserMsg *m, Error **errp)
{
    VuVring *vr = vu_vring(s, m->payload.state.index, "SET_VRING_BASE",
                           errp);

    if (!vr) {
        return false;
    }
    if (m->payload.state.num > 0xffff) {
        error_setg(errp, "vring %d: base %u is not a 16-bit ring index",
                   vr->index, m->payload.state.num);
        return false;
    }
    vu_device_stop(s);
    vr->base = m->payload.state.num;
    return vu_device_apply(s, errp);
}

bool vu_get_vring_base(VuServer *s, VhostUserMsg *m, Error **errp)
{
    VuVring *vr = vu_vring(s, m->payload.state.index, "GET_VRING_BASE",
                           errp);

    if (!vr) {
        return false;
    }
    /* Stopping drains: the answer is where popping resumes, with nothing
     * popped and not completed behind it. */
    vu_device_stop(s);
    vr->started = false;
    vu_close_fd(&vr->kick_fd);
    vu_close_fd(&vr->call_fd);
    vu_close_fd(&vr->err_fd);
    m->payload.state.num = vr->base;
    if (!vu_device_apply(s, errp)) {
        return false;
    }
    return vu_send_reply(s, m, sizeof(VhostUserVringState), -1, errp);
}

/* Run @fn(@vr) in @vr's queue's home thread if the device runs, else
 * here (nothing handles the queue). */
static void vu_in_queue_thread(VuVring *vr, QEMUBHFunc *fn)
{
    VuServer *s = vr->server;

    if (s->running) {
        aio_wait_bh_oneshot(s->ops->queue_ctx(s->opaque, vr->index), fn, vr);
    } else {
        fn(vr);
    }
}

/* In the queue's home thread: the call fd (a dup: the core owns it). */
static void vu_apply_call_fd(void *opaque)
{
    VuVring *vr = opaque;
    VirtQueue *vq = virtio_get_queue(vr->server->vdev, vr->index);
    int fd = vr->call_fd >= 0 ? fcntl(vr->call_fd, F_DUPFD_CLOEXEC, 0) : -1;

    if (aiolab_virtio_queue_set_guest_notifier_fd(vq, fd) < 0 && fd >= 0) {
        close(fd);
    }
}

/*
 * In the queue's home thread (or with the device stopped): enabled iff
 * started and enabled.  A queue that comes on in a running device first
 * resubmits what the in-flight log says a previous back-end left undone
 * (pops of a disabled queue return nothing, so not before), then looks
 * at its ring (requests may be waiting without a kick), and interrupts
 * the guest once: a back-end that died between publishing completions
 * and signalling them left the guest waiting for an interrupt (a
 * spurious one costs the guest a look at its used ring).
 */
static void vu_apply_enable(void *opaque)
{
    VuVring *vr = opaque;
    VuServer *s = vr->server;
    VirtQueue *vq = virtio_get_queue(s->vdev, vr->index);
    bool on = vr->started && vr->enabled;

    aiolab_virtio_queue_set_enabled(s->vdev, vr->index, on);
    if (!on || !s->running) {
        return;
    }
    if (vr->n_resubmit && s->ops->resubmit) {
        aiolab_trace_mark("vhost_user_resubmit", vr->n_resubmit);
        s->ops->resubmit(s->opaque, vq, vr->resubmit, vr->n_resubmit);
    }
    free(vr->resubmit);
    vr->resubmit = NULL;
    vr->n_resubmit = 0;
    event_notifier_set(virtio_queue_get_host_notifier(vq));
    event_notifier_set(virtio_queue_get_guest_notifier(vq));
}

/* Kick, call and err fds are eventfds: the kick one goes into an
 * AioContext's fd monitor (epoll refuses a regular file, and aiolab
 * aborts on that), the others are written 8 bytes at a time. */
static bool vu_is_eventfd(int fd)
{
    char path[32], link[64];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, link, sizeof(link) - 1);
    if (n < 0) {
        return false;
    }
    link[n] = 0;
    return strcmp(link, "anon_inode:[eventfd]") == 0;
}

bool vu_set_vring_fd(VuServer *s, VhostUserMsg *m, Error **errp)
{
    uint32_t req = m->hdr.request;
    VuVring *vr = vu_vring(s, m->payload.u64 & VHOST_USER_VRING_IDX_MASK,
                           vu_request_name(req), errp);
    int fd = m->nfds ? m->fds[0] : -1;

    if (!vr) {
        return false;
    }
    if (m->payload.u64 & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK |
                                     VHOST_USER_VRING_NOFD_MASK)) {
        error_setg(errp, "%s with unknown flags in 0x%" PRIx64,
                   vu_request_name(req), m->payload.u64);
        return false;
    }
    if (fd >= 0 && !vu_is_eventfd(fd)) {
        error_setg(errp, "vring %d: the fd of %s is not an eventfd",
                   vr->index, vu_request_name(req));
        return false;
    }
    m->nfds = 0;                    /* ours from here on */
    if (req == VHOST_USER_SET_VRING_ERR) {
        vu_close_fd(&vr->err_fd);
        vr->err_fd = fd;
        return true;
    }
    if (req == VHOST_USER_SET_VRING_CALL) {
        vu_close_fd(&vr->call_fd);
        vr->call_fd = fd;
        vu_in_queue_thread(vr, vu_apply_call_fd);
        return true;
    }
    if (fd < 0) {
        error_setg(errp, "vring %d: no kick fd (polling the ring instead is "
                   "not supported)", vr->index);
        return false;
    }
    /*
     * The kick fd is read by us only, and read when nothing may be
     * pending: a ring's stop takes a last look at it in the queue's
     * IOThread (ioeventfd_stop_vq_bh), and on a blocking eventfd with a
     * zero count that read never returns - the IOThread hangs, and the
     * main loop waiting for it.  QEMU passes non-blocking eventfds; a
     * front-end need not.  O_NONBLOCK is a flag of the open file
     * description, which the front-end shares, so setting it changes the
     * front-end's fd too: for the kick fd that is harmless - the
     * front-end (or KVM's ioeventfd) only writes it, and a write blocks
     * only at a count of 2^64 - 2 - and it is what QEMU's own export does
     * (its vhost-user server makes every received fd non-blocking).  A
     * poll before each read instead would leave the front-end's fd alone
     * but hang just the same if anyone else read the fd in between.  The
     * call and err fds are left as they came: we only write them, and a
     * front-end may well wait for its interrupts with a blocking read.
     */
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        error_setg_errno(errp, errno, "vring %d: cannot make the kick fd "
                         "non-blocking", vr->index);
        close(fd);
        return false;
    }
    /* A kick fd starts the ring (vhost-user.rst, "Ring states"). */
    vu_device_stop(s);
    vu_close_fd(&vr->kick_fd);
    vr->kick_fd = fd;
    vr->started = true;
    if (!(s->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))) {
        vr->enabled = true;         /* no SET_VRING_ENABLE will come */
    }
    return vu_device_apply(s, errp);
}

bool vu_set_vring_enable(VuServer *s, VhostUserMsg *m, Error **errp)
{
    VuVring *vr = vu_vring(s, m->payload.state.index, "SET_VRING_ENABLE",
                           errp);

    if (!vr) {
        return false;
    }
    if (m->payload.state.num > 1) {
        error_setg(errp, "SET_VRING_ENABLE %u for vring %d (0 or 1)",
                   m->payload.state.num, vr->index);
        return false;
    }
    vr->enabled = m->payload.state.num;
    vu_in_queue_thread(vr, vu_apply_enable);
    return true;
}

/* --- the in-flight log messages -------------------------------------------------- */

bool vu_get_inflight_fd(VuServer *s, VhostUserMsg *m, Error **errp)
{
    VhostUserInflight *in = &m->payload.inflight;

    if (in->num_queues == 0 || in->num_queues > s->nvrings) {
        error_setg(errp, "GET_INFLIGHT_FD for %u queues (the device has %d)",
                   in->num_queues, s->nvrings);
        return false;
    }
    vu_device_stop(s);
    vu_inflight_free(&s->inflight);
    if (!vu_inflight_new(&s->inflight, in->num_queues, in->queue_size,
                         errp)) {
        return false;
    }
    in->mmap_size = s->inflight.size;
    in->mmap_offset = 0;
    if (!vu_device_apply(s, errp)) {
        return false;
    }
    return vu_send_reply(s, m, sizeof(VhostUserInflight), s->inflight.fd,
                         errp);
}

bool vu_set_inflight_fd(VuServer *s, VhostUserMsg *m, Error **errp)
{
    VhostUserInflight *in = &m->payload.inflight;

    if (in->num_queues == 0 || in->num_queues > s->nvrings) {
        error_setg(errp, "SET_INFLIGHT_FD for %u queues (the device has %d)",
                   in->num_queues, s->nvrings);
        return false;
    }
    vu_device_stop(s);
    vu_inflight_free(&s->inflight);
    if (!vu_inflight_map(&s->inflight, m->fds[0], in, errp)) {
        return false;
    }
    m->fds[0] = -1;                 /* the log owns it */
    return vu_device_apply(s, errp);
}

/* --- the device ---------------------------------------------------------------------- */

void vu_device_stop(VuServer *s)
{
    GLOBAL_STATE_CODE();
    if (!s->running) {
        return;
    }
    aiolab_trace_begin("vhost_user_device_stop", 0);
    /* Detach in each queue's context, a last look at each kick, drain. */
    virtio_device_stop_ioeventfd(s->vdev);
    for (int i = 0; i < s->nvrings; i++) {
        /* Not resubmitted yet (the ring never came on): the log still
         * has them, the next start finds them again. */
        free(s->vrings[i].resubmit);
        s->vrings[i].resubmit = NULL;
        s->vrings[i].n_resubmit = 0;
        if (s->vrings[i].started) {
            s->vrings[i].base = virtio_queue_get_last_avail_idx(s->vdev, i);
            AIOLAB_ASSERT(aiolab_virtio_queue_get_inuse(s->vdev, i) == 0,
                          "vring %d has requests in flight after the drain",
                          i);
        }
    }
    s->running = false;
    aiolab_trace_end("vhost_user_device_stop", 0);
}

/* Set up queue @vr in the core (the device stopped). */
static bool vu_queue_setup(VuServer *s, VuVring *vr, Error **errp)
{
    VirtIODevice *vdev = s->vdev;
    VirtQueue *vq = virtio_get_queue(vdev, vr->index);
    uint64_t desc, avail, used;
    unsigned int base = vr->base;

    aiolab_virtio_queue_set_inflight_ops(vq, NULL, NULL);
    vr->log = NULL;
    if (!vr->started) {
        aiolab_virtio_queue_set_enabled(vdev, vr->index, false);
        virtio_queue_set_rings(vdev, vr->index, 0, 0, 0);
        return true;
    }
    if (!vr->addr_set) {
        error_setg(errp, "vring %d was started without SET_VRING_ADDR",
                   vr->index);
        return false;
    }
    /* Rings first torn down: a size change must not map stale ones. */
    virtio_queue_set_rings(vdev, vr->index, 0, 0, 0);
    virtio_queue_set_num(vdev, vr->index, vu_vring_num(vr));
    if (!vu_vring_gpas(vr, &desc, &avail, &used, errp)) {
        return false;
    }
    if (virtio_queue_set_rings(vdev, vr->index, desc, avail, used) < 0) {
        error_setg(errp, "vring %d: misaligned rings (desc 0x%" PRIx64
                   ", avail 0x%" PRIx64 ", used 0x%" PRIx64 ")", vr->index,
                   desc, avail, used);
        return false;
    }
    virtio_queue_set_last_avail_idx(vdev, vr->index, base);
    virtio_queue_update_used_idx(vdev, vr->index);
    if (s->inflight.base && vr->index < s->inflight.num_queues) {
        uint16_t used_idx = aiolab_virtio_queue_get_used_idx(vdev,
                                                             vr->index);

        if (!vu_inflight_recover(vr, used_idx, errp)) {
            return false;
        }
        if (vr->n_resubmit) {
            vu_log_info(s, "vring %d: %u request%s in flight in the log "
                        "(a previous back-end's), resubmitted when the ring "
                        "is enabled", vr->index, vr->n_resubmit,
                        vr->n_resubmit == 1 ? "" : "s");
        }
        /* Popping resumes after what the log says is in flight. */
        virtio_queue_set_last_avail_idx(vdev, vr->index,
                                        (uint16_t)(used_idx +
                                                   vr->n_resubmit));
        aiolab_virtio_queue_set_inflight_ops(vq, &vu_inflight_ops, vr);
    }
    /* Enabled once the device runs (vu_apply_enable). */
    aiolab_virtio_queue_set_enabled(vdev, vr->index, false);
    vu_apply_call_fd(vr);
    return true;
}

bool vu_device_apply(VuServer *s, Error **errp)
{
    VirtIODevice *vdev = s->vdev;
    uint8_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
    bool any = false;

    GLOBAL_STATE_CODE();
    AIOLAB_ASSERT(!s->running, "applied to a running device");
    for (int i = 0; i < s->nvrings; i++) {
        any |= s->vrings[i].started;
    }
    if (!any) {
        return true;
    }
    if (!s->features_set) {
        error_setg(errp, "a vring was started before SET_FEATURES");
        return false;
    }
    /* Status 0 unfreezes the features (the queues keep their state). */
    virtio_set_status(vdev, 0);
    /*
     * The front-end resets the device between its drivers (SeaBIOS, then
     * Linux) by stopping the rings: no reset reaches the device.  Its
     * writable config fields would keep what the previous driver's
     * session made of them - virtio-blk's wce is 0 after a driver
     * without FLUSH (SeaBIOS), so a Linux driver that negotiates
     * CONFIG_WCE and read wce=1 from QEMU's cached config got a
     * write-through device: a flush after every write.  Write the
     * front-end's view back first; DRIVER_OK below then applies the
     * device's own rule (wce follows FLUSH without CONFIG_WCE).
     */
    if (s->fe_config_len) {
        aiolab_virtio_config_write(vdev, 0, s->fe_config, s->fe_config_len);
    }
    virtio_set_features(vdev, s->features & ~VHOST_USER_OWN_FEATURES);
    if (virtio_set_status(vdev, st | VIRTIO_CONFIG_S_FEATURES_OK) < 0) {
        error_setg(errp, "the front-end did not negotiate VIRTIO_F_VERSION_1 "
                   "(legacy virtio is not supported)");
        return false;
    }
    for (int i = 0; i < s->nvrings; i++) {
        if (!vu_queue_setup(s, &s->vrings[i], errp)) {
            return false;
        }
    }
    virtio_set_status(vdev, st | VIRTIO_CONFIG_S_FEATURES_OK |
                      VIRTIO_CONFIG_S_DRIVER_OK);
    if (virtio_device_start_ioeventfd(vdev) < 0) {
        error_setg(errp, "cannot start the device's host notifiers");
        return false;
    }
    s->running = true;
    aiolab_trace_mark("vhost_user_device_start", 0);
    for (int i = 0; i < s->nvrings; i++) {
        if (s->vrings[i].started) {
            vu_in_queue_thread(&s->vrings[i], vu_apply_enable);
        }
    }
    return true;
}

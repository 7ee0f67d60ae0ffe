/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz-common.h - what both libFuzzer targets share: the
 * input layout, guest RAM, and a driver that sets a queue up from the
 * input.  The targets are compiled together with the library's sources
 * (see run.py), so they may use internal headers.
 *
 * Input layout (little-endian):
 *
 *   0      flags: bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 NO_INTERRUPT,
 *          bit 3 a second kick/pass, bits 4-7 target-specific
 *   1      queue size: 1 << (byte % 7), so 1..64
 *   2-3    last_avail_idx to start from (vhost-user SET_VRING_BASE)
 *   4-7    descriptor table gpa
 *   8-11   avail ring gpa
 *   12-15  used ring gpa
 *   16-31  target parameters
 *   32-    guest RAM image, copied to gpa 0 (at most 128 KiB)
 *
 * Guest RAM: region A [0, 64K) and B [64K, 128K) are adjacent (buffers
 * may span them), region C [1M, 1M + 4K) sits after a hole.  Everything
 * else is outside guest RAM; every region has guard pages around it, so
 * a stray access faults under ASan.
 */
#ifndef AIOLAB_FUZZ_COMMON_H
#define AIOLAB_FUZZ_COMMON_H

#include <stdlib.h>
#include <string.h>
#include <aiolab/aiolab.h>
#include "hw/virtio-internal.h"

#define FUZZ_HDR        32
#define FUZZ_REGION     0x10000
#define FUZZ_C_GPA      0x100000
#define FUZZ_C_SIZE     0x1000

typedef struct FuzzInput {
    uint8_t flags;
    unsigned num;
    uint16_t last_avail;
    uint32_t desc, avail, used;
    const uint8_t *param;           /* 16 bytes */
    const uint8_t *image;
    size_t image_len;
} FuzzInput;

static GuestMemory *fuzz_mem;
static uint8_t *fuzz_ram[3];

static bool fuzz_parse(const uint8_t *data, size_t size, FuzzInput *in)
{
    if (size < FUZZ_HDR) {
        return false;
    }
    in->flags = data[0];
    in->num = 1u << (data[1] % 7);
    in->last_avail = lduw_le_p(data + 2);
    in->desc = ldl_le_p(data + 4);
    in->avail = ldl_le_p(data + 8);
    in->used = ldl_le_p(data + 12);
    in->param = data + 16;
    in->image = data + FUZZ_HDR;
    in->image_len = MIN(size - FUZZ_HDR, 2 * FUZZ_REGION);
    return true;
}

/* Once per process: the main loop (this thread, BQL held) and RAM. */
static void fuzz_global_init(void)
{
    qemu_init_main_loop(&error_abort);
    bql_lock();
    aiolab_trace_set_enabled(false);
    aiolab_virtio_error_quiet = true;
    fuzz_mem = aiolab_guest_mem_new();
    fuzz_ram[0] = aiolab_guest_mem_add_ram(fuzz_mem, 0, FUZZ_REGION, "a",
                                           &error_abort);
    fuzz_ram[1] = aiolab_guest_mem_add_ram(fuzz_mem, FUZZ_REGION, FUZZ_REGION,
                                           "b", &error_abort);
    fuzz_ram[2] = aiolab_guest_mem_add_ram(fuzz_mem, FUZZ_C_GPA, FUZZ_C_SIZE,
                                           "c", &error_abort);
}

static void fuzz_load_image(const FuzzInput *in)
{
    size_t a = MIN(in->image_len, (size_t)FUZZ_REGION);

    memset(fuzz_ram[0], 0, FUZZ_REGION);
    memset(fuzz_ram[1], 0, FUZZ_REGION);
    memset(fuzz_ram[2], 0, FUZZ_C_SIZE);
    memcpy(fuzz_ram[0], in->image, a);
    memcpy(fuzz_ram[1], in->image + a, in->image_len - a);
}

/* The driver's start-up, with whatever addresses the input names. */
static void fuzz_driver_setup(VirtIODevice *vdev, const FuzzInput *in)
{
    uint64_t f = aiolab_virtio_get_host_features(vdev) &
                 ~((1ull << VIRTIO_RING_F_EVENT_IDX) |
                   (1ull << VIRTIO_RING_F_INDIRECT_DESC));
    uint8_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                 VIRTIO_CONFIG_S_FEATURES_OK;

    if (in->flags & 1) {
        f |= 1ull << VIRTIO_RING_F_EVENT_IDX;
    }
    if (in->flags & 2) {
        f |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
    }
    virtio_set_features(vdev, f);
    aiolab_virtio_bus_set_status(vdev, st);
    virtio_queue_set_num(vdev, 0, in->num);
    virtio_queue_set_rings(vdev, 0, in->desc, in->avail, in->used);
    virtio_queue_set_last_avail_idx(vdev, 0, in->last_avail);
    virtio_queue_update_used_idx(vdev, 0);
    aiolab_virtio_bus_set_status(vdev, st | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* Every buffer of @elem lies in guest RAM, where the translation says. */
static void fuzz_check_elem(const VirtQueueElement *elem)
{
    for (unsigned i = 0; i < elem->out_num; i++) {
        if (aiolab_guest_mem_translate(fuzz_mem, elem->out_addr[i],
                                       elem->out_sg[i].iov_len) !=
            elem->out_sg[i].iov_base) {
            abort();
        }
    }
    for (unsigned i = 0; i < elem->in_num; i++) {
        if (aiolab_guest_mem_translate(fuzz_mem, elem->in_addr[i],
                                       elem->in_sg[i].iov_len) !=
            elem->in_sg[i].iov_base) {
            abort();
        }
    }
    if (elem->out_num + elem->in_num > VIRTQUEUE_MAX_SIZE ||
        elem->ndescs != 1) {
        abort();
    }
}

#endif

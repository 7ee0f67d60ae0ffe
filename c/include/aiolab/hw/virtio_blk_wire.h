/* SPDX-License-Identifier: MIT */
/*
 * aiolab/hw/virtio_blk_wire.h - the virtio-blk request format, status
 * codes, feature bits and configuration space, written from the virtio
 * 1.x specification (section 5.2).  QEMU takes the same definitions from
 * Linux's include/uapi/linux/virtio_blk.h.  All fields little-endian.
 *
 * A request is one descriptor chain:
 *
 *   device-readable (out)                 device-writable (in)
 *   +---------------------+-----------+   +-----------+--------+
 *   | virtio_blk_outhdr   | data for  |   | data for  | status |
 *   | type ioprio sector  | OUT, or a |   | IN or     | 1 byte |
 *   | (16 bytes)          | discard / |   | GET_ID    |        |
 *   |                     | wz segment|   |           |        |
 *   +---------------------+-----------+   +-----------+--------+
 *
 * The header is the first 16 bytes of the readable buffers, however the
 * driver splits them into descriptors; the status is the last byte of the
 * last writable descriptor.  `sector` counts 512-byte units whatever the
 * logical block size.
 */
#ifndef AIOLAB_HW_VIRTIO_BLK_WIRE_H
#define AIOLAB_HW_VIRTIO_BLK_WIRE_H

#include <aiolab/compiler.h>

/* Request types (virtio_blk_outhdr.type) */
#define VIRTIO_BLK_T_IN               0
#define VIRTIO_BLK_T_OUT              1
#define VIRTIO_BLK_T_SCSI_CMD         2    /* legacy; UNSUPP */
#define VIRTIO_BLK_T_FLUSH            4
#define VIRTIO_BLK_T_GET_ID           8
#define VIRTIO_BLK_T_DISCARD          11
#define VIRTIO_BLK_T_WRITE_ZEROES     13
#define VIRTIO_BLK_T_SECURE_ERASE     14   /* UNSUPP in aiolab */
#define VIRTIO_BLK_T_ZONE_APPEND      15   /* zoned: UNSUPP in aiolab */
#define VIRTIO_BLK_T_ZONE_REPORT      16
#define VIRTIO_BLK_T_ZONE_OPEN        18
#define VIRTIO_BLK_T_ZONE_CLOSE       20
#define VIRTIO_BLK_T_ZONE_FINISH      22
#define VIRTIO_BLK_T_ZONE_RESET       24
#define VIRTIO_BLK_T_ZONE_RESET_ALL   26
#define VIRTIO_BLK_T_BARRIER          0x80000000u  /* legacy flag, ignored */

/* Status codes (the last in byte) */
#define VIRTIO_BLK_S_OK               0
#define VIRTIO_BLK_S_IOERR            1
#define VIRTIO_BLK_S_UNSUPP           2
#define VIRTIO_BLK_S_ZONE_INVALID_CMD 3
#define VIRTIO_BLK_S_ZONE_UNALIGNED_WP 4
#define VIRTIO_BLK_S_ZONE_OPEN_RESOURCE 5
#define VIRTIO_BLK_S_ZONE_ACTIVE_RESOURCE 6

/* Feature bits */
#define VIRTIO_BLK_F_BARRIER          0    /* legacy */
#define VIRTIO_BLK_F_SIZE_MAX         1
#define VIRTIO_BLK_F_SEG_MAX          2
#define VIRTIO_BLK_F_GEOMETRY         4
#define VIRTIO_BLK_F_RO               5
#define VIRTIO_BLK_F_BLK_SIZE         6
#define VIRTIO_BLK_F_SCSI             7    /* legacy */
#define VIRTIO_BLK_F_FLUSH            9    /* a.k.a. WCE */
#define VIRTIO_BLK_F_WCE              9
#define VIRTIO_BLK_F_TOPOLOGY         10
#define VIRTIO_BLK_F_CONFIG_WCE       11
#define VIRTIO_BLK_F_MQ               12
#define VIRTIO_BLK_F_DISCARD          13
#define VIRTIO_BLK_F_WRITE_ZEROES     14
#define VIRTIO_BLK_F_SECURE_ERASE     16
#define VIRTIO_BLK_F_ZONED            17

#define VIRTIO_BLK_ID_BYTES           20   /* GET_ID answer, NUL-padded */
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u
#define VIRTIO_BLK_SECTOR_BITS        9
#define VIRTIO_BLK_SECTOR_SIZE        512

struct virtio_blk_outhdr {            /* 16 bytes, device-readable */
    uint32_t type;                    /* le32 VIRTIO_BLK_T_* */
    uint32_t ioprio;                  /* le32, ignored */
    uint64_t sector;                  /* le64, 512-byte units */
};

struct virtio_blk_inhdr {             /* 1 byte, device-writable, last */
    uint8_t status;                   /* VIRTIO_BLK_S_* */
};

struct virtio_blk_discard_write_zeroes {  /* 16 bytes, device-readable */
    uint64_t sector;                  /* le64 */
    uint32_t num_sectors;             /* le32 */
    uint32_t flags;                   /* le32: UNMAP (write zeroes only) */
};

/*
 * Configuration space.  A device exposes the prefix its features need:
 * up to max_discard_sectors (36 bytes) always, through
 * discard_sector_alignment (48) with DISCARD, through
 * write_zeroes_may_unmap (57) with WRITE_ZEROES.
 */
struct virtio_blk_config {
    uint64_t capacity;                /* 0: in 512-byte sectors */
    uint32_t size_max;                /* 8: SIZE_MAX */
    uint32_t seg_max;                 /* 12: SEG_MAX: data segments per request */
    struct {
        uint16_t cylinders;
        uint8_t heads;
        uint8_t sectors;
    } geometry;                       /* 16: GEOMETRY */
    uint32_t blk_size;                /* 20: BLK_SIZE: logical block size */
    uint8_t physical_block_exp;       /* 24: TOPOLOGY: log2(phys / logical) */
    uint8_t alignment_offset;         /* 25 */
    uint16_t min_io_size;             /* 26: in logical blocks */
    uint32_t opt_io_size;             /* 28: in logical blocks */
    uint8_t wce;                      /* 32: CONFIG_WCE: writeback (1) */
    uint8_t unused;                   /* 33 */
    uint16_t num_queues;              /* 34: MQ */
    uint32_t max_discard_sectors;     /* 36: DISCARD */
    uint32_t max_discard_seg;         /* 40 */
    uint32_t discard_sector_alignment; /* 44 */
    uint32_t max_write_zeroes_sectors; /* 48: WRITE_ZEROES */
    uint32_t max_write_zeroes_seg;    /* 52 */
    uint8_t write_zeroes_may_unmap;   /* 56 */
    uint8_t unused1[3];               /* 57 */
} __attribute__((packed));

#define VIRTIO_BLK_CFG_SIZE_MIN       36
#define VIRTIO_BLK_CFG_SIZE_DISCARD   48
#define VIRTIO_BLK_CFG_SIZE_WZ        57

#endif

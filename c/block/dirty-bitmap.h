/* SPDX-License-Identifier: MIT */
/*
 * block/dirty-bitmap.h - a dirty bitmap: which chunks of a disk were
 * written since they were last copied (QEMU's BdrvDirtyBitmap,
 * include/block/dirty-bitmap.h).  Not a public header: the mirror job is
 * its only user.
 */
#ifndef AIOLAB_BLOCK_DIRTY_BITMAP_H
#define AIOLAB_BLOCK_DIRTY_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct BdrvDirtyBitmap BdrvDirtyBitmap;

/* A clean bitmap over @size bytes, one bit per @granularity bytes (a
 * power of two).  Any thread may set and reset bits at once. */
BdrvDirtyBitmap *aiolab_dirty_bitmap_new(int64_t size, uint32_t granularity);
void bdrv_release_dirty_bitmap(BdrvDirtyBitmap *bitmap);

/* Mark dirty / clean every chunk that [offset, offset + bytes) touches. */
void bdrv_set_dirty_bitmap(BdrvDirtyBitmap *bitmap, int64_t offset,
                           int64_t bytes);
void bdrv_reset_dirty_bitmap(BdrvDirtyBitmap *bitmap, int64_t offset,
                             int64_t bytes);

/* Bytes covered by dirty chunks (the last chunk counts whole). */
int64_t bdrv_get_dirty_count(BdrvDirtyBitmap *bitmap);
bool bdrv_dirty_bitmap_get(BdrvDirtyBitmap *bitmap, int64_t offset);
/* The first dirty chunk's offset in [offset, offset + bytes), or -1. */
int64_t bdrv_dirty_bitmap_next_dirty(BdrvDirtyBitmap *bitmap, int64_t offset,
                                     int64_t bytes);
uint32_t bdrv_dirty_bitmap_granularity(const BdrvDirtyBitmap *bitmap);
int64_t bdrv_dirty_bitmap_size(const BdrvDirtyBitmap *bitmap);

#endif

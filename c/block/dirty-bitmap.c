/* SPDX-License-Identifier: MIT */
/*
 * block/dirty-bitmap.c - a dirty bitmap (QEMU's block/dirty-bitmap.c over
 * util/hbitmap.c): one bit per chunk of @granularity bytes, and a count
 * of the bits set, so "is anything left to copy?" costs nothing.
 *
 * Writers of every thread set bits (the mirror's filter marks each guest
 * write after it reached the source); the mirror's coroutine finds and
 * resets them before it copies a chunk.  Why reset-then-copy is safe: a
 * write that lands after the reset sets the bit again, and one that
 * landed before it is read by the copy.  So no write is lost as long as
 * the mark follows the write, which the filter guarantees.
 *
 * Where QEMU differs: QEMU's HBitmap is hierarchical (a tree of words,
 * so finding the next set bit skips empty regions in O(log n)), supports
 * named, persistent, disabled and frozen bitmaps, and is attached to a
 * node, whose generic write path (bdrv_co_write_req_finish) marks it.
 * Here a flat array under a mutex: disks are small.
 */
#include <pthread.h>
#include <stdlib.h>
#include "block/dirty-bitmap.h"
#include "util/atomic.h"
#include "util/check.h"
#include "util/mem.h"

#define BITS_PER_WORD 64

struct BdrvDirtyBitmap {
    int64_t size;                   /* set at creation */
    uint32_t granularity;
    int shift;                      /* log2(granularity) */
    int64_t nbits;
    /* Protected by lock: writers of any thread, the job's coroutine. */
    pthread_mutex_t lock;
    uint64_t *words;
    int64_t count;                  /* bits set */
};

BdrvDirtyBitmap *aiolab_dirty_bitmap_new(int64_t size, uint32_t granularity)
{
    BdrvDirtyBitmap *bm = aiolab_xcalloc(1, sizeof(*bm));

    AIOLAB_ASSERT(granularity && !(granularity & (granularity - 1)),
                  "bad dirty bitmap granularity %u", granularity);
    bm->size = size;
    bm->granularity = granularity;
    bm->shift = __builtin_ctz(granularity);
    bm->nbits = (size + granularity - 1) >> bm->shift;
    bm->words = aiolab_xcalloc((bm->nbits + BITS_PER_WORD - 1) /
                               BITS_PER_WORD + 1, sizeof(uint64_t));
    pthread_mutex_init(&bm->lock, NULL);
    return bm;
}

void bdrv_release_dirty_bitmap(BdrvDirtyBitmap *bm)
{
    if (!bm) {
        return;
    }
    pthread_mutex_destroy(&bm->lock);
    free(bm->words);
    free(bm);
}

/* The chunk range [*first, *last] that a byte range touches; false if
 * it touches none. */
static bool chunk_range(BdrvDirtyBitmap *bm, int64_t offset, int64_t bytes,
                        int64_t *first, int64_t *last)
{
    if (bytes <= 0 || offset >= bm->size || offset < 0) {
        return false;
    }
    *first = offset >> bm->shift;
    *last = (MIN(offset + bytes, bm->size) - 1) >> bm->shift;
    return true;
}

static void bitmap_update(BdrvDirtyBitmap *bm, int64_t offset, int64_t bytes,
                          bool set)
{
    int64_t first, last, i;

    if (!chunk_range(bm, offset, bytes, &first, &last)) {
        return;
    }
    pthread_mutex_lock(&bm->lock);
    for (i = first; i <= last; i++) {
        uint64_t *w = &bm->words[i / BITS_PER_WORD];
        uint64_t bit = 1ull << (i % BITS_PER_WORD);

        if (set && !(*w & bit)) {
            *w |= bit;
            bm->count++;
        } else if (!set && (*w & bit)) {
            *w &= ~bit;
            bm->count--;
        }
    }
    pthread_mutex_unlock(&bm->lock);
}

void bdrv_set_dirty_bitmap(BdrvDirtyBitmap *bm, int64_t offset, int64_t bytes)
{
    bitmap_update(bm, offset, bytes, true);
}

void bdrv_reset_dirty_bitmap(BdrvDirtyBitmap *bm, int64_t offset,
                             int64_t bytes)
{
    bitmap_update(bm, offset, bytes, false);
}

int64_t bdrv_get_dirty_count(BdrvDirtyBitmap *bm)
{
    int64_t count;

    pthread_mutex_lock(&bm->lock);
    count = bm->count;
    pthread_mutex_unlock(&bm->lock);
    return MIN(count << bm->shift, bm->size);
}

bool bdrv_dirty_bitmap_get(BdrvDirtyBitmap *bm, int64_t offset)
{
    int64_t i = offset >> bm->shift;
    bool set;

    if (offset < 0 || i >= bm->nbits) {
        return false;
    }
    pthread_mutex_lock(&bm->lock);
    set = bm->words[i / BITS_PER_WORD] >> (i % BITS_PER_WORD) & 1;
    pthread_mutex_unlock(&bm->lock);
    return set;
}

int64_t bdrv_dirty_bitmap_next_dirty(BdrvDirtyBitmap *bm, int64_t offset,
                                     int64_t bytes)
{
    int64_t first, last, i, found = -1;

    if (!chunk_range(bm, offset, bytes, &first, &last)) {
        return -1;
    }
    pthread_mutex_lock(&bm->lock);
    for (i = first; i <= last && found < 0;) {
        uint64_t w = bm->words[i / BITS_PER_WORD] >> (i % BITS_PER_WORD);

        if (w) {
            i += __builtin_ctzll(w);
            found = i <= last ? i : -1;
            break;
        }
        i = (i / BITS_PER_WORD + 1) * BITS_PER_WORD;    /* next word */
    }
    pthread_mutex_unlock(&bm->lock);
    return found < 0 ? -1 : MAX(found << bm->shift, offset);
}

uint32_t bdrv_dirty_bitmap_granularity(const BdrvDirtyBitmap *bm)
{
    return bm->granularity;
}

int64_t bdrv_dirty_bitmap_size(const BdrvDirtyBitmap *bm)
{
    return bm->size;
}

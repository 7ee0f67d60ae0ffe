/* SPDX-License-Identifier: MIT */
/*
 * block/null.c - the "null-co" driver: a disk that stores nothing
 * (QEMU's block/null.c).  Writes succeed and vanish; reads return the
 * caller's buffer untouched, or zeroes with read-zeroes=on.
 *
 *   "driver=null-co,size=1G,latency-ns=100000,read-zeroes=on"
 *
 * With latency-ns, every request sleeps that long on a timer of the
 * submitting context (qemu_co_sleep_ns): a slow disk that costs no CPU,
 * which makes requests stay in flight long enough to see a drain wait
 * for them.  Without it a request completes without ever yielding - the
 * cheapest request the block layer can carry, used to measure the
 * layer's own cost per request.
 *
 * Where QEMU differs: QEMU 9.0 also has "null-aio" (completion from a
 * BH); its read-zeroes default is off, as here.
 */
#include <errno.h>
#include "block/block_int.h"

typedef struct BDRVNullState {
    int64_t length;
    int64_t latency_ns;
    bool read_zeroes;
} BDRVNullState;

static int null_open(BlockDriverState *bs, BlockOpts *opts, int flags,
                     Error **errp)
{
    BDRVNullState *s = bs->opaque;

    s->length = 1LL << 30;
    if (!block_opts_get_size(opts, "size", &s->length, errp) ||
        !block_opts_get_int(opts, "latency-ns", 0, INT64_MAX,
                            &s->latency_ns, errp) ||
        !block_opts_get_bool(opts, "read-zeroes", &s->read_zeroes, errp)) {
        return -EINVAL;
    }
    return 0;
}

static int64_t null_getlength(BlockDriverState *bs)
{
    BDRVNullState *s = bs->opaque;

    return s->length;
}

static int coroutine_fn null_co_common(BlockDriverState *bs)
{
    BDRVNullState *s = bs->opaque;

    if (s->latency_ns) {
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, s->latency_ns);
    }
    return 0;
}

static int coroutine_fn null_co_preadv(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, QEMUIOVector *qiov,
                                       BdrvRequestFlags flags)
{
    BDRVNullState *s = bs->opaque;

    if (s->read_zeroes) {
        qemu_iovec_memset(qiov, 0, 0, bytes);
    }
    return null_co_common(bs);
}

static int coroutine_fn null_co_pwritev(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes, QEMUIOVector *qiov,
                                        BdrvRequestFlags flags)
{
    return null_co_common(bs);
}

static int coroutine_fn null_co_pwrite_zeroes(BlockDriverState *bs,
                                              int64_t offset, int64_t bytes,
                                              BdrvRequestFlags flags)
{
    return null_co_common(bs);
}

static int coroutine_fn null_co_pdiscard(BlockDriverState *bs,
                                         int64_t offset, int64_t bytes)
{
    return null_co_common(bs);
}

static int coroutine_fn null_co_flush(BlockDriverState *bs)
{
    return null_co_common(bs);
}

const BlockDriver bdrv_null_co = {
    .format_name = "null-co",
    .instance_size = sizeof(BDRVNullState),
    .is_protocol = true,
    .bdrv_open = null_open,
    .bdrv_getlength = null_getlength,
    .bdrv_co_preadv = null_co_preadv,
    .bdrv_co_pwritev = null_co_pwritev,
    .bdrv_co_pwrite_zeroes = null_co_pwrite_zeroes,
    .bdrv_co_pdiscard = null_co_pdiscard,
    .bdrv_co_flush_to_disk = null_co_flush,
};

/* SPDX-License-Identifier: MIT */
/*
 * block/block-info.c - read-only questions about nodes and edges: names,
 * sizes, counters, the list of nodes (QEMU answers these in block.c and
 * block/qapi.c, or callers read the fields).  The counters are snapshots:
 * other threads move them.
 */
#include <errno.h>
#include <string.h>
#include "block/block_int.h"

const char *bdrv_get_node_name(const BlockDriverState *bs)
{
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    return bs->node_name;
}

const char *bdrv_get_format_name(BlockDriverState *bs)
{
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    return bs->drv ? bs->drv->format_name : NULL;
}

int64_t bdrv_getlength(BlockDriverState *bs)
{
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    return bs->drv ? qatomic_read(&bs->total_bytes) : -ENOMEDIUM;
}

AioContext *bdrv_get_aio_context(BlockDriverState *bs)
{
    return bs ? qatomic_read(&bs->aio_context) : qemu_get_aio_context();
}

bool bdrv_is_read_only(BlockDriverState *bs)
{
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    return bs->read_only;
}

int bdrv_get_in_flight(BlockDriverState *bs)
{
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    return qatomic_load_acquire(&bs->in_flight);
}

int bdrv_get_quiesce_counter(BlockDriverState *bs)
{
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    return qatomic_read(&bs->quiesce_counter);
}

int aiolab_bdrv_get_refcnt(BlockDriverState *bs)
{
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    return bs->refcnt;
}

uint32_t aiolab_bdrv_get_request_alignment(BlockDriverState *bs)
{
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    return bs->bl.request_alignment;
}

size_t aiolab_bdrv_list(BlockDriverState **out, size_t max)
{
    BlockDriverState *bs;
    size_t n = 0;

    GLOBAL_STATE_CODE();
    for (bs = bdrv_next_all_states(NULL); bs; bs = bdrv_next_all_states(bs)) {
        if (n < max) {
            out[n] = bs;
        }
        n++;
    }
    return n;
}

BdrvChild *aiolab_bdrv_find_child(BlockDriverState *bs, const char *name)
{
    BdrvChild *c;

    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    QLIST_FOREACH(c, &bs->children, next) {
        if (!strcmp(c->name, name)) {
            return c;
        }
    }
    return NULL;
}

BlockDriverState *aiolab_bdrv_child_bs(BdrvChild *child)
{
    REQUIRE_NONNULL(child);
    return child->bs;
}

bool aiolab_bdrv_child_quiesced_parent(BdrvChild *child)
{
    REQUIRE_NONNULL(child);
    return child->quiesced_parent;
}

int aiolab_bdrv_parent_count(BlockDriverState *bs)
{
    BdrvChild *c;
    int n = 0;

    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    QLIST_FOREACH(c, &bs->parents, next_parent) {
        n++;
    }
    return n;
}

/* The first node at or below @bs (through filters) with driver @drv. */
BlockDriverState *bdrv_skip_to_driver(BlockDriverState *bs,
                                      const BlockDriver *drv)
{
    while (bs && bs->drv != drv) {
        bs = bs->file ? bs->file->bs : NULL;
    }
    return bs;
}

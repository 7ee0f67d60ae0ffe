/* SPDX-License-Identifier: MIT */
/*
 * block/block.c - nodes and the graph: opening, node names, references,
 * edges (BdrvChild) and replacing a node (QEMU's block.c, first half).
 *
 * The graph is main-loop state: every function here requires the BQL.
 * Request coroutines in other threads read the edges (child->bs) while
 * they run, so an edge only changes while the nodes on both sides are
 * drained - that is what drained sections are for, and why
 * bdrv_replace_node() drains @from and @to around the switch.  The
 * happens-before edge is the in_flight counter: a request's last access
 * to the graph precedes its bdrv_dec_in_flight() (a seq_cst RMW), which
 * the drain's poll reads with acquire.
 *
 * A node's life:
 *
 *   bdrv_open: bdrv_new (refcnt 1, main context; drained once per level of
 *              an ongoing bdrv_drain_all) -> node name -> driver open
 *              (attaches children by node name) -> node complete ->
 *              unused option? bdrv_unref (a full close, as QEMU)
 *   ... bdrv_ref / edges from parents (each edge holds a reference) ...
 *   bdrv_unref to 0: bdrv_close: drained_begin, flush, driver close,
 *              detach children, drained_end (and end what drain_all left)
 *
 * An edge's life (bdrv_attach_child_common):
 *
 *   contexts differ? move the child's side to the parent's context, else
 *   the parent's side to the child's; quiesce the parent through the new
 *   edge; link it (bdrv_replace_child_noperm); if the child is not
 *   drained, un-quiesce the parent again.  So a parent attached to a
 *   drained child stays quiesced until that child's drained section ends.
 *
 * Where QEMU differs: no permissions (BLK_PERM_*) and so no permission
 * transactions; no graph lock (the drains carry the whole weight); no
 * backing-file chains, format probing or nested child options.  A node
 * being opened takes its first child's AioContext instead of dragging the
 * child into the main loop (QEMU tries the child first, and relies on
 * the BlockBackends above it to refuse).  A detached child moves back to
 * the main context only if it has no parent left.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include "block/block_int.h"
#include "util/thread.h"
#include "util/mem.h"

static QTAILQ_HEAD(, BlockDriverState) all_bdrv_states =
    QTAILQ_HEAD_INITIALIZER(all_bdrv_states);
static unsigned node_counter;

static const BlockDriver *const block_drivers[] = {
    &bdrv_file, &bdrv_null_co, &bdrv_blkdebug, &bdrv_aiolab_test,
};

static bool bdrv_is_below(BlockDriverState *top, BlockDriverState *bs);

static const BlockDriver *bdrv_find_format(const char *name)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(block_drivers); i++) {
        if (!strcmp(block_drivers[i]->format_name, name)) {
            return block_drivers[i];
        }
    }
    return NULL;
}

/* --- nodes ------------------------------------------------------------ */

BlockDriverState *bdrv_new(void)
{
    BlockDriverState *bs = aiolab_xcalloc(1, sizeof(*bs));
    int i;

    bs->magic = BDS_MAGIC;
    bs->refcnt = 1;
    bs->aio_context = qemu_get_aio_context();
    bs->bl.request_alignment = 1;
    bs->bl.min_mem_alignment = 1;
    QLIST_INIT(&bs->children);
    QLIST_INIT(&bs->parents);
    QLIST_INIT(&bs->aio_notifiers);
    QLIST_INIT(&bs->tracked_requests);
    qemu_co_mutex_init(&bs->reqs_lock);
    QTAILQ_INSERT_TAIL(&all_bdrv_states, bs, bs_list);
    /* A node born inside bdrv_drain_all_begin/end starts drained. */
    for (i = 0; i < bdrv_drain_all_count; i++) {
        bdrv_drained_begin(bs);
    }
    return bs;
}

BlockDriverState *bdrv_next_all_states(BlockDriverState *bs)
{
    return bs ? QTAILQ_NEXT(bs, bs_list) : QTAILQ_FIRST(&all_bdrv_states);
}

BlockDriverState *bdrv_find_node(const char *node_name)
{
    BlockDriverState *bs;

    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(node_name);
    QTAILQ_FOREACH(bs, &all_bdrv_states, bs_list) {
        if (!strcmp(bs->node_name, node_name)) {
            return bs;
        }
    }
    return NULL;
}

/* QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'. */
static bool node_name_wellformed(const char *name)
{
    if (!isalpha((unsigned char)name[0])) {
        return false;
    }
    for (name++; *name; name++) {
        if (!isalnum((unsigned char)*name) && !strchr("-._", *name)) {
            return false;
        }
    }
    return true;
}

static bool bdrv_assign_node_name(BlockDriverState *bs, const char *name,
                                  Error **errp)
{
    if (!name) {
        snprintf(bs->node_name, sizeof(bs->node_name), "#block%u",
                 ++node_counter);
        return true;
    }
    if (!node_name_wellformed(name)) {
        error_setg(errp, "Invalid node-name: '%s'", name);
        return false;
    }
    if (strlen(name) >= sizeof(bs->node_name)) {
        error_setg(errp, "Node name too long");
        return false;
    }
    if (bdrv_find_node(name)) {
        error_setg(errp, "Duplicate nodes with node-name='%s'", name);
        return false;
    }
    snprintf(bs->node_name, sizeof(bs->node_name), "%s", name);
    return true;
}

static void bdrv_free_node(BlockDriverState *bs)
{
    QTAILQ_REMOVE(&all_bdrv_states, bs, bs_list);
    free(bs->opaque);
    bs->magic = 0;
    free(bs);
}

/*
 * The generic options every driver accepts, turned into open flags.
 */
static bool bdrv_parse_generic_options(BlockOpts *opts, int *flags,
                                       Error **errp)
{
    bool read_only = !(*flags & BDRV_O_RDWR);
    bool direct = *flags & BDRV_O_NOCACHE;
    const char *discard;

    if (!block_opts_get_bool(opts, "read-only", &read_only, errp) ||
        !block_opts_get_bool(opts, "cache.direct", &direct, errp)) {
        return false;
    }
    discard = block_opts_get(opts, "discard");
    if (discard && !strcmp(discard, "unmap")) {
        *flags |= BDRV_O_UNMAP;
    } else if (discard && !strcmp(discard, "ignore")) {
        *flags &= ~BDRV_O_UNMAP;
    } else if (discard) {
        error_setg(errp, "Invalid discard option '%s' (unmap or ignore)",
                   discard);
        return false;
    }
    *flags = (*flags & ~(BDRV_O_RDWR | BDRV_O_NOCACHE)) |
             (read_only ? 0 : BDRV_O_RDWR) | (direct ? BDRV_O_NOCACHE : 0);
    return true;
}

static void bdrv_detach_all_children(BlockDriverState *bs)
{
    BdrvChild *c, *next;

    QLIST_FOREACH_SAFE(c, &bs->children, next, next) {
        bdrv_unref_child(bs, c);
    }
}

static BlockDriverState *bdrv_open_common(const BlockDriver *drv,
                                          BlockOpts *opts, int flags,
                                          Error **errp)
{
    BlockDriverState *bs;
    const char *unused;
    int ret, i, replay;

    if (!bdrv_parse_generic_options(opts, &flags, errp)) {
        return NULL;
    }
    bs = bdrv_new();
    if (!bdrv_assign_node_name(bs, block_opts_get(opts, "node-name"),
                               errp)) {
        bdrv_free_node(bs);
        return NULL;
    }
    bs->trace_name = aiolab_intern(bs->node_name);
    /* Drains that began before the driver existed (drain_all) are
     * replayed to it after open; later ones reach it directly. */
    replay = bs->quiesce_counter;
    bs->drv = drv;
    bs->opaque = aiolab_xcalloc(1, drv->instance_size ? drv->instance_size
                                                      : 1);
    bs->open_flags = flags;
    bs->read_only = !(flags & BDRV_O_RDWR);
    bs->opening = true;

    ret = drv->bdrv_open(bs, opts, flags, errp);
    if (ret < 0) {
        goto fail;
    }
    bs->opening = false;
    bdrv_refresh_limits(bs);
    bdrv_refresh_total_bytes(bs);
    /* Born inside drain_all sections: the driver sees one drain_begin
     * per level, as in QEMU. */
    if (drv->bdrv_drain_begin) {
        for (i = 0; i < replay; i++) {
            drv->bdrv_drain_begin(bs);
        }
    }

    /* The driver took what it knows.  Anything left over is refused
     * only now, with the node complete: it goes the way every open node
     * goes (bdrv_unref -> bdrv_close: drained, flushed, then the driver's
     * close), as QEMU's bdrv_open_inherit() does - never a bare driver
     * close on a node that was not drained. */
    unused = block_opts_first_unused(opts);
    if (unused) {
        error_setg(errp, drv->is_protocol ?
                   "Block protocol '%s' doesn't support the option '%s'" :
                   "Block format '%s' does not support the option '%s'",
                   drv->format_name, unused);
        bdrv_unref(bs);
        return NULL;
    }
    return bs;

fail:
    bs->drv = NULL;
    bdrv_detach_all_children(bs);
    while (bs->quiesce_counter) {
        bdrv_drained_end(bs);
    }
    bdrv_free_node(bs);
    return NULL;
}

BlockDriverState *bdrv_open(const char *filename, const char *reference,
                            const char *options, int flags, Error **errp)
{
    BlockOpts opts = { 0 };
    const BlockDriver *drv;
    const char *drvname;
    BlockDriverState *bs = NULL;

    GLOBAL_STATE_CODE();
    if (reference) {
        if (filename || options) {
            error_setg(errp, "Cannot reference an existing block device "
                       "with additional options or a new filename");
            return NULL;
        }
        bs = bdrv_find_node(reference);
        if (!bs) {
            error_setg(errp, "Cannot find device='%s' nor node-name='%s'",
                       reference, reference);
            return NULL;
        }
        bdrv_ref(bs);
        return bs;
    }
    if (options && !block_opts_parse(&opts, options, errp)) {
        goto out;
    }
    if (filename) {
        if (block_opts_get(&opts, "filename")) {
            error_setg(errp, "Cannot specify both a filename argument and "
                       "a filename= option");
            goto out;
        }
        block_opts_add(&opts, "filename", filename);
    }
    drvname = block_opts_get(&opts, "driver");
    if (!drvname && filename) {
        drvname = "file";
    }
    if (!drvname) {
        error_setg(errp, "Must specify either driver or file");
        goto out;
    }
    drv = bdrv_find_format(drvname);
    if (!drv) {
        error_setg(errp, "Unknown driver '%s'", drvname);
        goto out;
    }
    bs = bdrv_open_common(drv, &opts, flags, errp);
out:
    block_opts_free(&opts);
    return bs;
}

/*
 * QEMU's bdrv_new_open_driver(): a node of @drv, which users cannot open
 * by name (a job's filter: the mirror's "mirror_top").  @options as for
 * bdrv_open(), without "driver".
 */
BlockDriverState *bdrv_new_open_driver(const BlockDriver *drv,
                                       const char *options, int flags,
                                       Error **errp)
{
    BlockOpts opts = { 0 };
    BlockDriverState *bs = NULL;

    GLOBAL_STATE_CODE();
    if (!options || block_opts_parse(&opts, options, errp)) {
        bs = bdrv_open_common(drv, &opts, flags, errp);
    }
    block_opts_free(&opts);
    return bs;
}

void bdrv_ref(BlockDriverState *bs)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    bs->refcnt++;
}

static void bdrv_close(BlockDriverState *bs)
{
    GLOBAL_STATE_CODE();
    AIOLAB_ASSERT(bs->refcnt == 0, "node '%s' closed while referenced",
                  bs->node_name);

    bdrv_drained_begin(bs);         /* complete I/O */
    bdrv_flush(bs);
    bdrv_drain(bs);                 /* in case flush left pending I/O */

    if (bs->drv) {
        if (bs->drv->bdrv_close) {
            bs->drv->bdrv_close(bs);
        }
        bs->drv = NULL;
    }
    bdrv_detach_all_children(bs);
    bdrv_free_aio_notifiers(bs);
    bdrv_drained_end(bs);

    /* Still quiesced by drain_all sections that will not see it again. */
    if (bs->quiesce_counter) {
        bdrv_drain_all_end_quiesce(bs);
    }
}

void bdrv_unref(BlockDriverState *bs)
{
    GLOBAL_STATE_CODE();
    if (!bs) {
        return;
    }
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    AIOLAB_ASSERT(bs->refcnt > 0, "node '%s' has no reference left",
                  bs->node_name);
    if (--bs->refcnt == 0) {
        AIOLAB_ASSERT(QLIST_EMPTY(&bs->parents), "node '%s' freed while "
                      "it has parents", bs->node_name);
        bdrv_close(bs);
        bdrv_free_node(bs);
    }
}

/* --- limits and size ----------------------------------------------------- */

void bdrv_refresh_limits(BlockDriverState *bs)
{
    bs->bl.request_alignment = 1;
    bs->bl.min_mem_alignment = 1;
    if (bs->file && bs->file->bs) {
        bs->bl.min_mem_alignment = bs->file->bs->bl.min_mem_alignment;
    }
    if (bs->drv && bs->drv->bdrv_refresh_limits) {
        bs->drv->bdrv_refresh_limits(bs);
    }
}

/* Re-read the driver's size.  Returns: true if it changed. */
bool bdrv_refresh_total_bytes(BlockDriverState *bs)
{
    int64_t len = -ENOMEDIUM;

    if (bs->drv && bs->drv->bdrv_getlength) {
        len = bs->drv->bdrv_getlength(bs);
    }
    return qatomic_xchg(&bs->total_bytes, len) != len;
}

void bdrv_parent_cb_resize(BlockDriverState *bs)
{
    BdrvChild *c;

    QLIST_FOREACH(c, &bs->parents, next_parent) {
        if (c->klass->resize) {
            c->klass->resize(c);
        }
    }
}

/* --- edges ------------------------------------------------------------ */

/*
 * Point @child at @new_bs (or nothing).  The parent stays quiesced across
 * the switch whenever either side is drained: it is quiesced first if the
 * new node is drained, and released only after the link if it is not.
 */
void bdrv_replace_child_noperm(BdrvChild *child, BlockDriverState *new_bs)
{
    BlockDriverState *old_bs = child->bs;
    int new_bs_quiesce_counter = new_bs ? new_bs->quiesce_counter : 0;

    GLOBAL_STATE_CODE();
    if (new_bs_quiesce_counter && !child->quiesced_parent) {
        bdrv_parent_drained_begin_single(child);
    }
    if (old_bs) {
        if (child->klass->detach) {
            child->klass->detach(child);
        }
        QLIST_REMOVE(child, next_parent);
    }
    child->bs = new_bs;
    if (new_bs) {
        QLIST_INSERT_HEAD(&new_bs->parents, child, next_parent);
        if (child->klass->attach) {
            child->klass->attach(child);
        }
    }
    if (!new_bs_quiesce_counter && child->quiesced_parent) {
        bdrv_parent_drained_end_single(child);
    }
}

BdrvChild *bdrv_attach_child_common(BlockDriverState *child_bs,
                                    const char *child_name,
                                    const BdrvChildClass *klass,
                                    void *opaque, Error **errp)
{
    BdrvChild *new_child = aiolab_xcalloc(1, sizeof(*new_child));
    AioContext *child_ctx = bdrv_get_aio_context(child_bs);

    GLOBAL_STATE_CODE();
    new_child->name = aiolab_xstrdup(child_name);
    new_child->klass = klass;
    new_child->opaque = opaque;

    if (klass->get_parent_aio_context(new_child) != child_ctx) {
        BlockDriverState *parent_bs = klass->parent_is_bds ? opaque : NULL;

        if (parent_bs && parent_bs->opening &&
            QLIST_EMPTY(&parent_bs->children)) {
            /* A node being opened has no users yet: it simply lives
             * where its first child lives. */
            qatomic_set(&parent_bs->aio_context, child_ctx);
        } else if (bdrv_child_try_change_aio_context_for_attach(
                       new_child, child_bs, errp) < 0) {
            free(new_child->name);
            free(new_child);
            return NULL;
        }
    }

    bdrv_ref(child_bs);
    /* Every new edge starts with a quiesced parent; linking it releases
     * the parent again unless the child is drained. */
    bdrv_parent_drained_begin_single(new_child);
    bdrv_replace_child_noperm(new_child, child_bs);
    return new_child;
}

static BdrvChild *bdrv_attach_child(BlockDriverState *parent_bs,
                                    BlockDriverState *child_bs,
                                    const char *child_name, Error **errp)
{
    BdrvChild *c;

    c = bdrv_attach_child_common(child_bs, child_name, &child_of_bds,
                                 parent_bs, errp);
    if (!c) {
        return NULL;
    }
    QLIST_INSERT_HEAD(&parent_bs->children, c, next);
    if (!parent_bs->file &&
        (!strcmp(child_name, "file") || !strcmp(child_name, "image"))) {
        parent_bs->file = c;
    }
    if (!parent_bs->opening) {
        bdrv_refresh_limits(parent_bs);
        if (bdrv_refresh_total_bytes(parent_bs)) {
            bdrv_parent_cb_resize(parent_bs);
        }
    }
    return c;
}

BdrvChild *aiolab_bdrv_attach_child(BlockDriverState *parent_bs,
                                    BlockDriverState *child_bs,
                                    const char *child_name, Error **errp)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(parent_bs, BDS_MAGIC, "BlockDriverState");
    REQUIRE_LIVE(child_bs, BDS_MAGIC, "BlockDriverState");
    REQUIRE_NONNULL(child_name);
    if (aiolab_bdrv_find_child(parent_bs, child_name)) {
        error_setg(errp, "Node '%s' already has a child named '%s'",
                   parent_bs->node_name, child_name);
        return NULL;
    }
    if (bdrv_is_below(child_bs, parent_bs)) {
        error_setg(errp, "Making node '%s' a child of node '%s' would "
                   "create a cycle", child_bs->node_name,
                   parent_bs->node_name);
        return NULL;
    }
    return bdrv_attach_child(parent_bs, child_bs, child_name, errp);
}

BdrvChild *bdrv_open_child_ref(BlockDriverState *parent, BlockOpts *opts,
                               const char *key, bool required, Error **errp)
{
    const char *ref = block_opts_get(opts, key);
    BlockDriverState *child_bs;

    if (!ref) {
        if (required) {
            error_setg(errp, "A block device must be specified for \"%s\"",
                       key);
        }
        return NULL;
    }
    child_bs = bdrv_find_node(ref);
    if (!child_bs) {
        error_setg(errp, "Cannot find device='%s' nor node-name='%s'", ref,
                   ref);
        return NULL;
    }
    return bdrv_attach_child(parent, child_bs, key, errp);
}

void bdrv_root_unref_child(BdrvChild *child)
{
    BlockDriverState *child_bs = child->bs;

    GLOBAL_STATE_CODE();
    bdrv_replace_child_noperm(child, NULL);
    free(child->name);
    free(child);
    if (child_bs) {
        /* Nobody keeps it in an IOThread any more: back to the main loop
         * (a failure is no error: something else still holds it). */
        if (QLIST_EMPTY(&child_bs->parents)) {
            bdrv_try_change_aio_context(child_bs, qemu_get_aio_context(),
                                        NULL, NULL);
        }
        bdrv_unref(child_bs);
    }
}

void bdrv_unref_child(BlockDriverState *parent, BdrvChild *child)
{
    GLOBAL_STATE_CODE();
    if (!child) {
        return;
    }
    REQUIRE_LIVE(parent, BDS_MAGIC, "BlockDriverState");
    AIOLAB_REQUIRE(child->opaque == parent && child->klass->parent_is_bds,
                   "edge '%s' is not a child of node '%s'", child->name,
                   parent->node_name);
    QLIST_REMOVE(child, next);
    if (parent->file == child) {
        parent->file = NULL;
    }
    bdrv_root_unref_child(child);
    if (parent->drv) {
        bdrv_refresh_limits(parent);
    }
}

/* Is @bs @top, or below it? */
static bool bdrv_is_below(BlockDriverState *top, BlockDriverState *bs)
{
    BdrvChild *c;

    if (top == bs) {
        return true;
    }
    QLIST_FOREACH(c, &top->children, next) {
        if (c->bs && bdrv_is_below(c->bs, bs)) {
            return true;
        }
    }
    return false;
}

int bdrv_replace_node(BlockDriverState *from, BlockDriverState *to,
                      Error **errp)
{
    BdrvChild *c, *next;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(from, BDS_MAGIC, "BlockDriverState");
    REQUIRE_LIVE(to, BDS_MAGIC, "BlockDriverState");
    if (from == to) {
        return 0;
    }
    if (bdrv_get_aio_context(from) != bdrv_get_aio_context(to)) {
        error_setg(errp, "Cannot replace node '%s' by node '%s': they are "
                   "in different AioContexts ('%s' and '%s')",
                   from->node_name, to->node_name,
                   aiolab_aio_context_get_name(bdrv_get_aio_context(from)),
                   aiolab_aio_context_get_name(bdrv_get_aio_context(to)));
        return -EINVAL;
    }

    /* @from must not go away before all its parents have moved. */
    bdrv_ref(from);
    bdrv_drained_begin(from);
    bdrv_drained_begin(to);

    QLIST_FOREACH_SAFE(c, &from->parents, next_parent, next) {
        BlockDriverState *parent_bs = c->klass->parent_is_bds ? c->opaque
                                                               : NULL;

        if (parent_bs && bdrv_is_below(to, parent_bs)) {
            continue;           /* would make a cycle (e.g. to -> from) */
        }
        bdrv_ref(to);
        bdrv_replace_child_noperm(c, to);
        bdrv_unref(from);       /* the edge's reference */
        if (parent_bs) {
            bdrv_refresh_limits(parent_bs);
            if (bdrv_refresh_total_bytes(parent_bs)) {
                bdrv_parent_cb_resize(parent_bs);
            }
        } else if (c->klass->resize) {
            c->klass->resize(c);
        }
    }

    bdrv_drained_end(to);
    bdrv_drained_end(from);
    bdrv_unref(from);
    return 0;
}

/* --- child_of_bds: a node as the parent of an edge ------------------------ */

static void bdrv_child_cb_drained_begin(BdrvChild *c)
{
    bdrv_do_drained_begin_quiesce(c->opaque, NULL);
}

static void bdrv_child_cb_drained_end(BdrvChild *c)
{
    bdrv_drained_end(c->opaque);
}

static bool bdrv_child_cb_drained_poll(BdrvChild *c)
{
    return bdrv_drain_poll(c->opaque, NULL, false);
}

static void bdrv_child_cb_resize(BdrvChild *c)
{
    BlockDriverState *parent = c->opaque;

    if (bdrv_refresh_total_bytes(parent)) {
        bdrv_parent_cb_resize(parent);
    }
}

static bool bdrv_child_cb_change_aio_ctx(BdrvChild *c, AioContext *ctx,
                                         BdrvVisited *visited,
                                         Transaction *tran, Error **errp)
{
    return bdrv_change_aio_context(c->opaque, ctx, visited, tran, errp);
}

static AioContext *bdrv_child_get_parent_aio_context(BdrvChild *c)
{
    return bdrv_get_aio_context(c->opaque);
}

const BdrvChildClass child_of_bds = {
    .parent_is_bds = true,
    .drained_begin = bdrv_child_cb_drained_begin,
    .drained_end = bdrv_child_cb_drained_end,
    .drained_poll = bdrv_child_cb_drained_poll,
    .resize = bdrv_child_cb_resize,
    .change_aio_ctx = bdrv_child_cb_change_aio_ctx,
    .get_parent_aio_context = bdrv_child_get_parent_aio_context,
};

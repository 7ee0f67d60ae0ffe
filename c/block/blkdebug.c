/* SPDX-License-Identifier: MIT */
/*
 * block/blkdebug.c - "blkdebug": a filter that injects latency and errors
 * and stops requests at named points (QEMU's block/blkdebug.c), so that
 * races can be made deterministic in tests and tutorials.
 *
 *   "driver=blkdebug,image=disk0,node-name=dbg0,latency-ns=1000000,
 *    align=4096,inject-error.0.iotype=write,inject-error.0.errno=28,
 *    inject-error.0.offset=65536,inject-error.0.length=4096,
 *    inject-error.0.once=on,break.0.event=write-aio,break.0.tag=w0"
 *
 * A request through the filter:
 *
 *   reaches its point ("read-aio", "write-aio", "pwritev-zero", "discard",
 *   "flush-to-disk")
 *     breakpoint set on it?  -> suspended (yield) until
 *                               bdrv_debug_resume(tag) wakes it
 *   sleeps latency-ns (a timer of the submitting context)
 *   an error rule matches?  -> returns -errno (rule removed if once)
 *   goes on to the "image" child
 *
 * Suspending and resuming work across threads: the request records its
 * coroutine under the state's mutex, kicks AIO_WAIT_WHILE waiters (so
 * the main loop can wait for "suspended"), and yields; resume takes the
 * record out under the mutex and aio_co_wake()s the coroutine, which
 * goes through a BH of its context and so never runs before the yield.
 *
 * Where QEMU differs: QEMU's events are raised by format drivers above
 * blkdebug (BLKDBG_EVENT) and rules are attached to events, with a state
 * machine (set-state); here each request raises its own point, and error
 * rules select requests by type and byte range.  Resume goes through
 * aio_co_wake() (QEMU enters the coroutine directly).  "align" is QEMU's
 * option of that name: it sets this node's request_alignment, so the
 * generic layer pads requests (read-modify-write) whatever the host.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block/block_int.h"
#include "util/mem.h"

enum {
    BLKDBG_READ_AIO, BLKDBG_WRITE_AIO, BLKDBG_PWRITEV_ZERO, BLKDBG_DISCARD,
    BLKDBG_FLUSH_TO_DISK, BLKDBG__MAX,
};

static const char *const blkdebug_event_names[BLKDBG__MAX] = {
    [BLKDBG_READ_AIO] = "read-aio",
    [BLKDBG_WRITE_AIO] = "write-aio",
    [BLKDBG_PWRITEV_ZERO] = "pwritev-zero",
    [BLKDBG_DISCARD] = "discard",
    [BLKDBG_FLUSH_TO_DISK] = "flush-to-disk",
};

/* I/O types, as a mask in rules (the same order as the events). */
static const char *const blkdebug_iotype_names[BLKDBG__MAX] = {
    "read", "write", "write-zeroes", "discard", "flush",
};

typedef struct BlkdebugRule {
    unsigned iotypes;               /* 1 << BLKDBG_* */
    int error;
    int64_t offset;                 /* -1: any */
    int64_t length;
    bool once;
    QLIST_ENTRY(BlkdebugRule) next;
} BlkdebugRule;

typedef struct BlkdebugBreakpoint {
    int event;
    char *tag;
    QLIST_ENTRY(BlkdebugBreakpoint) next;
} BlkdebugBreakpoint;

typedef struct BlkdebugSuspendedReq {
    Coroutine *co;
    char *tag;
    QLIST_ENTRY(BlkdebugSuspendedReq) next;
} BlkdebugSuspendedReq;

typedef struct BDRVBlkdebugState {
    uint32_t align;                 /* set at open */
    int64_t latency_ns;             /* atomic */
    /* Protected by lock: requests of any thread and the API use them. */
    pthread_mutex_t lock;
    QLIST_HEAD(, BlkdebugRule) rules;
    QLIST_HEAD(, BlkdebugBreakpoint) breakpoints;
    QLIST_HEAD(, BlkdebugSuspendedReq) suspended;
} BDRVBlkdebugState;

/* "read-aio" or QEMU's "read_aio". */
static int blkdebug_lookup(const char *const *names, const char *name)
{
    char buf[32];
    size_t i;

    snprintf(buf, sizeof(buf), "%s", name);
    for (i = 0; buf[i]; i++) {
        if (buf[i] == '_') {
            buf[i] = '-';
        }
    }
    for (i = 0; i < BLKDBG__MAX; i++) {
        if (!strcmp(names[i], buf)) {
            return i;
        }
    }
    return -1;
}

static int blkdebug_add_rule(BDRVBlkdebugState *s, unsigned iotypes,
                             int error, int64_t offset, int64_t length,
                             bool once)
{
    BlkdebugRule *rule = aiolab_xcalloc(1, sizeof(*rule));

    rule->iotypes = iotypes;
    rule->error = error;
    rule->offset = offset;
    rule->length = length;
    rule->once = once;
    pthread_mutex_lock(&s->lock);
    QLIST_INSERT_HEAD(&s->rules, rule, next);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* inject-error.N.{iotype,errno,offset,length,sector,once} */
static bool blkdebug_parse_rules(BDRVBlkdebugState *s, BlockOpts *opts,
                                 Error **errp)
{
    char key[64];
    int n;

    for (n = 0;; n++) {
        int64_t error = EIO, offset = -1, length = 0, sector = -1;
        const char *iotype;
        unsigned iotypes = (1u << BLKDBG_READ_AIO) | (1u << BLKDBG_WRITE_AIO);
        bool once = false, found = false;
        int i;

        for (i = 0; i < opts->n; i++) {
            snprintf(key, sizeof(key), "inject-error.%d.", n);
            found |= !strncmp(opts->v[i].key, key, strlen(key));
        }
        if (!found) {
            return true;
        }
#define RULE_KEY(name) (snprintf(key, sizeof(key), "inject-error.%d." name, \
                                 n), key)
        iotype = block_opts_get(opts, RULE_KEY("iotype"));
        if (iotype) {
            int t = blkdebug_lookup(blkdebug_iotype_names, iotype);

            if (t < 0) {
                error_setg(errp, "Invalid iotype '%s' (read, write, "
                           "write-zeroes, discard or flush)", iotype);
                return false;
            }
            iotypes = 1u << t;
        }
        if (!block_opts_get_int(opts, RULE_KEY("errno"), 1, 4095, &error,
                                errp) ||
            !block_opts_get_int(opts, RULE_KEY("offset"), 0, INT64_MAX,
                                &offset, errp) ||
            !block_opts_get_int(opts, RULE_KEY("length"), 0, INT64_MAX,
                                &length, errp) ||
            !block_opts_get_int(opts, RULE_KEY("sector"), 0,
                                INT64_MAX / 512, &sector, errp) ||
            !block_opts_get_bool(opts, RULE_KEY("once"), &once, errp)) {
            return false;
        }
#undef RULE_KEY
        if (sector >= 0) {
            offset = sector * 512;
            length = 512;
        }
        blkdebug_add_rule(s, iotypes, error, offset,
                          offset >= 0 && !length ? 1 : length, once);
    }
}

static int blkdebug_debug_breakpoint(BlockDriverState *bs, const char *event,
                                     const char *tag);

/* break.N.{event,tag}: breakpoints set at open. */
static bool blkdebug_parse_breakpoints(BlockDriverState *bs, BlockOpts *opts,
                                       Error **errp)
{
    char key[48];
    int n;

    for (n = 0;; n++) {
        const char *event, *tag;

        snprintf(key, sizeof(key), "break.%d.event", n);
        event = block_opts_get(opts, key);
        snprintf(key, sizeof(key), "break.%d.tag", n);
        tag = block_opts_get(opts, key);
        if (!event && !tag) {
            return true;
        }
        if (!event || !tag) {
            error_setg(errp, "break.%d needs both an event and a tag", n);
            return false;
        }
        if (blkdebug_debug_breakpoint(bs, event, tag) < 0) {
            error_setg(errp, "Invalid event name '%s'", event);
            return false;
        }
    }
}

static int blkdebug_open(BlockDriverState *bs, BlockOpts *opts, int flags,
                         Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;
    int64_t align = 0;

    pthread_mutex_init(&s->lock, NULL);
    QLIST_INIT(&s->rules);
    QLIST_INIT(&s->breakpoints);
    QLIST_INIT(&s->suspended);
    if (!block_opts_get_int(opts, "latency-ns", 0, INT64_MAX,
                            &s->latency_ns, errp) ||
        !block_opts_get_int(opts, "align", 0, 1 << 20, &align, errp)) {
        goto fail;
    }
    if (align & (align - 1)) {
        error_setg(errp, "Cannot meet constraints with align %lld",
                   (long long)align);
        goto fail;
    }
    s->align = align;
    if (!blkdebug_parse_rules(s, opts, errp) ||
        !blkdebug_parse_breakpoints(bs, opts, errp) ||
        !bdrv_open_child_ref(bs, opts, "image", true, errp)) {
        goto fail;
    }
    return 0;
fail:
    bs->drv->bdrv_close(bs);
    return -EINVAL;
}

static void blkdebug_close(BlockDriverState *bs)
{
    BDRVBlkdebugState *s = bs->opaque;
    BlkdebugRule *r;
    BlkdebugBreakpoint *b;

    AIOLAB_ASSERT(QLIST_EMPTY(&s->suspended), "blkdebug node '%s' closed "
                  "with requests suspended", bs->node_name);
    while ((r = QLIST_FIRST(&s->rules))) {
        QLIST_REMOVE(r, next);
        free(r);
    }
    while ((b = QLIST_FIRST(&s->breakpoints))) {
        QLIST_REMOVE(b, next);
        free(b->tag);
        free(b);
    }
    pthread_mutex_destroy(&s->lock);
}

static int64_t blkdebug_getlength(BlockDriverState *bs)
{
    return bs->file ? bdrv_getlength(bs->file->bs) : -ENOMEDIUM;
}

static void blkdebug_refresh_limits(BlockDriverState *bs)
{
    BDRVBlkdebugState *s = bs->opaque;

    if (s->align) {
        bs->bl.request_alignment = s->align;
    }
}

/* A breakpoint on @event?  Then suspend until resumed. */
static void coroutine_fn blkdebug_check_breakpoint(BDRVBlkdebugState *s,
                                                   int event)
{
    BlkdebugSuspendedReq r = { .co = qemu_coroutine_self() };
    BlkdebugBreakpoint *b;

    pthread_mutex_lock(&s->lock);
    QLIST_FOREACH(b, &s->breakpoints, next) {
        if (b->event == event) {
            break;
        }
    }
    if (!b) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    QLIST_REMOVE(b, next);          /* a breakpoint catches one request */
    r.tag = b->tag;
    free(b);
    QLIST_INSERT_HEAD(&s->suspended, &r, next);
    pthread_mutex_unlock(&s->lock);
    aio_wait_kick();                /* for AIO_WAIT_WHILE(!is_suspended) */
    qemu_coroutine_yield();         /* until bdrv_debug_resume() */
    free(r.tag);
}

static int blkdebug_rule_check(BDRVBlkdebugState *s, int iotype,
                               int64_t offset, int64_t bytes)
{
    BlkdebugRule *rule;
    int error = 0;

    pthread_mutex_lock(&s->lock);
    QLIST_FOREACH(rule, &s->rules, next) {
        if (!(rule->iotypes & (1u << iotype))) {
            continue;
        }
        if (rule->offset >= 0 &&
            !(rule->offset < offset + bytes &&
              offset < rule->offset + rule->length)) {
            continue;
        }
        error = rule->error;
        if (rule->once) {
            QLIST_REMOVE(rule, next);
            free(rule);
        }
        break;
    }
    pthread_mutex_unlock(&s->lock);
    return -error;
}

/* Everything a request does before going down to the image. */
static int coroutine_fn blkdebug_pre(BlockDriverState *bs, int event,
                                     int64_t offset, int64_t bytes)
{
    BDRVBlkdebugState *s = bs->opaque;
    int64_t latency;

    blkdebug_check_breakpoint(s, event);
    latency = qatomic_read(&s->latency_ns);
    if (latency) {
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, latency);
    }
    return blkdebug_rule_check(s, event, offset, bytes);
}

static int coroutine_fn blkdebug_co_preadv(BlockDriverState *bs,
                                           int64_t offset, int64_t bytes,
                                           QEMUIOVector *qiov,
                                           BdrvRequestFlags flags)
{
    int ret = blkdebug_pre(bs, BLKDBG_READ_AIO, offset, bytes);

    return ret ? ret : bdrv_co_preadv(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn blkdebug_co_pwritev(BlockDriverState *bs,
                                            int64_t offset, int64_t bytes,
                                            QEMUIOVector *qiov,
                                            BdrvRequestFlags flags)
{
    int ret = blkdebug_pre(bs, BLKDBG_WRITE_AIO, offset, bytes);

    return ret ? ret : bdrv_co_pwritev(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn blkdebug_co_pwrite_zeroes(BlockDriverState *bs,
                                                  int64_t offset,
                                                  int64_t bytes,
                                                  BdrvRequestFlags flags)
{
    int ret = blkdebug_pre(bs, BLKDBG_PWRITEV_ZERO, offset, bytes);

    return ret ? ret : bdrv_co_pwrite_zeroes(bs->file, offset, bytes, flags);
}

static int coroutine_fn blkdebug_co_pdiscard(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes)
{
    int ret = blkdebug_pre(bs, BLKDBG_DISCARD, offset, bytes);

    return ret ? ret : bdrv_co_pdiscard(bs->file, offset, bytes);
}

static int coroutine_fn blkdebug_co_flush(BlockDriverState *bs)
{
    /* Then the generic layer flushes the image. */
    return blkdebug_pre(bs, BLKDBG_FLUSH_TO_DISK, 0, 0);
}

static int coroutine_fn blkdebug_co_truncate(BlockDriverState *bs,
                                             int64_t offset, bool exact,
                                             int prealloc,
                                             BdrvRequestFlags flags,
                                             Error **errp)
{
    return bdrv_co_truncate(bs->file, offset, exact, prealloc, flags, errp);
}

/* --- breakpoints ------------------------------------------------------------ */

static int blkdebug_debug_breakpoint(BlockDriverState *bs, const char *event,
                                     const char *tag)
{
    BDRVBlkdebugState *s = bs->opaque;
    BlkdebugBreakpoint *b;
    int ev = blkdebug_lookup(blkdebug_event_names, event);

    if (ev < 0) {
        return -EINVAL;
    }
    b = aiolab_xcalloc(1, sizeof(*b));
    b->event = ev;
    b->tag = aiolab_xstrdup(tag);
    pthread_mutex_lock(&s->lock);
    QLIST_INSERT_HEAD(&s->breakpoints, b, next);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* Take a suspended request with @tag out, or NULL (lock held). */
static BlkdebugSuspendedReq *blkdebug_take_suspended(BDRVBlkdebugState *s,
                                                     const char *tag)
{
    BlkdebugSuspendedReq *r;

    QLIST_FOREACH(r, &s->suspended, next) {
        if (!strcmp(r->tag, tag)) {
            QLIST_REMOVE(r, next);
            return r;
        }
    }
    return NULL;
}

static int blkdebug_debug_resume(BlockDriverState *bs, const char *tag)
{
    BDRVBlkdebugState *s = bs->opaque;
    BlkdebugSuspendedReq *r;
    Coroutine *co;

    pthread_mutex_lock(&s->lock);
    r = blkdebug_take_suspended(s, tag);
    co = r ? r->co : NULL;          /* @r lives on the coroutine's stack */
    pthread_mutex_unlock(&s->lock);
    if (!co) {
        return -ENOENT;
    }
    aio_co_wake(co);
    return 0;
}

static int blkdebug_debug_remove_breakpoint(BlockDriverState *bs,
                                            const char *tag)
{
    BDRVBlkdebugState *s = bs->opaque;
    BlkdebugBreakpoint *b, *next;
    bool found = false;

    pthread_mutex_lock(&s->lock);
    QLIST_FOREACH_SAFE(b, &s->breakpoints, next, next) {
        if (!strcmp(b->tag, tag)) {
            QLIST_REMOVE(b, next);
            free(b->tag);
            free(b);
            found = true;
        }
    }
    pthread_mutex_unlock(&s->lock);
    while (blkdebug_debug_resume(bs, tag) == 0) {
        found = true;
    }
    return found ? 0 : -ENOENT;
}

static bool blkdebug_debug_is_suspended(BlockDriverState *bs,
                                        const char *tag)
{
    BDRVBlkdebugState *s = bs->opaque;
    BlkdebugSuspendedReq *r;
    bool found = false;

    pthread_mutex_lock(&s->lock);
    QLIST_FOREACH(r, &s->suspended, next) {
        found |= !strcmp(r->tag, tag);
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

const BlockDriver bdrv_blkdebug = {
    .format_name = "blkdebug",
    .instance_size = sizeof(BDRVBlkdebugState),
    .is_filter = true,
    .bdrv_open = blkdebug_open,
    .bdrv_close = blkdebug_close,
    .bdrv_getlength = blkdebug_getlength,
    .bdrv_refresh_limits = blkdebug_refresh_limits,
    .bdrv_co_preadv = blkdebug_co_preadv,
    .bdrv_co_pwritev = blkdebug_co_pwritev,
    .bdrv_co_pwrite_zeroes = blkdebug_co_pwrite_zeroes,
    .bdrv_co_pdiscard = blkdebug_co_pdiscard,
    .bdrv_co_flush_to_disk = blkdebug_co_flush,
    .bdrv_co_truncate = blkdebug_co_truncate,
    .bdrv_debug_breakpoint = blkdebug_debug_breakpoint,
    .bdrv_debug_remove_breakpoint = blkdebug_debug_remove_breakpoint,
    .bdrv_debug_resume = blkdebug_debug_resume,
    .bdrv_debug_is_suspended = blkdebug_debug_is_suspended,
};

/* --- the public entry points (any node above a blkdebug node) ----------- */

static BlockDriverState *blkdebug_node(BlockDriverState *bs)
{
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    return bdrv_skip_to_driver(bs, &bdrv_blkdebug);
}

int bdrv_debug_breakpoint(BlockDriverState *bs, const char *event,
                          const char *tag)
{
    REQUIRE_NONNULL(event);
    REQUIRE_NONNULL(tag);
    bs = blkdebug_node(bs);
    return bs ? blkdebug_debug_breakpoint(bs, event, tag) : -ENOTSUP;
}

int bdrv_debug_remove_breakpoint(BlockDriverState *bs, const char *tag)
{
    REQUIRE_NONNULL(tag);
    bs = blkdebug_node(bs);
    return bs ? blkdebug_debug_remove_breakpoint(bs, tag) : -ENOTSUP;
}

int bdrv_debug_resume(BlockDriverState *bs, const char *tag)
{
    REQUIRE_NONNULL(tag);
    bs = blkdebug_node(bs);
    return bs ? blkdebug_debug_resume(bs, tag) : -ENOTSUP;
}

bool bdrv_debug_is_suspended(BlockDriverState *bs, const char *tag)
{
    REQUIRE_NONNULL(tag);
    bs = blkdebug_node(bs);
    return bs ? blkdebug_debug_is_suspended(bs, tag) : false;
}

int aiolab_blkdebug_break(BlockDriverState *bs, const char *event,
                          const char *tag)
{
    return bdrv_debug_breakpoint(bs, event, tag);
}

int aiolab_blkdebug_resume(BlockDriverState *bs, const char *tag)
{
    return bdrv_debug_resume(bs, tag);
}

bool aiolab_blkdebug_is_suspended(BlockDriverState *bs, const char *tag)
{
    return bdrv_debug_is_suspended(bs, tag);
}

int aiolab_blkdebug_inject_error(BlockDriverState *bs, const char *iotype,
                                 int error, int64_t offset, int64_t length,
                                 bool once)
{
    int t;

    REQUIRE_NONNULL(iotype);
    bs = blkdebug_node(bs);
    if (!bs) {
        return -ENOTSUP;
    }
    t = blkdebug_lookup(blkdebug_iotype_names, iotype);
    if (t < 0 || error <= 0 || offset < 0 || length < 0) {
        return -EINVAL;
    }
    return blkdebug_add_rule(bs->opaque, 1u << t, error,
                             length ? offset : -1, length, once);
}

int aiolab_blkdebug_clear_errors(BlockDriverState *bs)
{
    BDRVBlkdebugState *s;
    BlkdebugRule *r;

    bs = blkdebug_node(bs);
    if (!bs) {
        return -ENOTSUP;
    }
    s = bs->opaque;
    pthread_mutex_lock(&s->lock);
    while ((r = QLIST_FIRST(&s->rules))) {
        QLIST_REMOVE(r, next);
        free(r);
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int aiolab_blkdebug_set_latency_ns(BlockDriverState *bs, int64_t ns)
{
    bs = blkdebug_node(bs);
    if (!bs) {
        return -ENOTSUP;
    }
    if (ns < 0) {
        return -EINVAL;
    }
    qatomic_set(&((BDRVBlkdebugState *)bs->opaque)->latency_ns, ns);
    return 0;
}

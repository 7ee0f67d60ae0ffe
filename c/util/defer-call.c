/* SPDX-License-Identifier: MIT */
/*
 * util/defer-call.c - batching calls to the end of a section (see
 * defer-call.h).  Per thread; a small array searched linearly, because a
 * section defers a handful of distinct calls (one irqfd per queue).
 */
#include <stdlib.h>
#include <aiolab/defer-call.h>
#include "util/check.h"
#include "util/mem.h"

typedef struct {
    void (*fn)(void *);
    void *opaque;
} DeferredCall;

static __thread unsigned nesting_level;
static __thread DeferredCall *deferred;
static __thread unsigned n_deferred, n_alloc;

void defer_call(void (*fn)(void *), void *opaque)
{
    unsigned i;

    REQUIRE_NONNULL(fn);
    if (nesting_level == 0) {
        fn(opaque);
        return;
    }
    for (i = 0; i < n_deferred; i++) {
        if (deferred[i].fn == fn && deferred[i].opaque == opaque) {
            return;     /* already deferred: once is enough */
        }
    }
    if (n_deferred == n_alloc) {
        n_alloc = n_alloc ? n_alloc * 2 : 16;
        deferred = aiolab_xrealloc(deferred, n_alloc * sizeof(*deferred));
    }
    deferred[n_deferred++] = (DeferredCall){ fn, opaque };
}

void defer_call_begin(void)
{
    nesting_level++;
}

void defer_call_end(void)
{
    unsigned i;

    AIOLAB_REQUIRE(nesting_level > 0, "without a matching "
                   "defer_call_begin()");
    if (--nesting_level > 0) {
        return;
    }
    /*
     * Take the batch before running it: a deferred call may itself open
     * and close a section, which must not re-run this batch.
     */
    DeferredCall *batch = deferred;
    unsigned n = n_deferred;

    deferred = NULL;
    n_deferred = n_alloc = 0;
    for (i = 0; i < n; i++) {
        batch[i].fn(batch[i].opaque);
    }
    free(batch);
}

/* SPDX-License-Identifier: MIT */
/*
 * util/aiocb.h - BlockAIOCB, the handle of an asynchronous request
 * (QEMU's include/block/aio.h: AIOCBInfo, qemu_aio_get/ref/unref).
 *
 * A request's control block is allocated with its completion callback;
 * a reference keeps it alive across a synchronous cancel.  Each kind of
 * request (thread-pool work, a block request) embeds a BlockAIOCB first
 * and supplies an AIOCBInfo with its size and cancel method.
 */
#ifndef AIOLAB_UTIL_AIOCB_H
#define AIOLAB_UTIL_AIOCB_H

#include <aiolab/thread-pool.h>

typedef struct AIOCBInfo {
    void (*cancel_async)(BlockAIOCB *acb);
    AioContext *(*get_aio_context)(BlockAIOCB *acb);
    size_t aiocb_size;
} AIOCBInfo;

struct BlockAIOCB {
    const AIOCBInfo *aiocb_info;
    BlockCompletionFunc *cb;
    void *opaque;
    int refcnt;                 /* atomic */
};

void *qemu_aio_get(const AIOCBInfo *aiocb_info, BlockCompletionFunc *cb,
                   void *opaque);
void qemu_aio_ref(void *p);
void qemu_aio_unref(void *p);

#endif

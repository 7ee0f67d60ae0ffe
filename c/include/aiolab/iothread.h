/* SPDX-License-Identifier: MIT */
/*
 * aiolab/iothread.h - IOThreads: a thread whose whole life is
 *
 *     while (running) aio_poll(ctx, true);
 *
 * on an AioContext of its own.  Work reaches it only through the context's
 * thread-safe doors (BHs, event notifiers, aio_co_schedule).  It never
 * holds the BQL.
 *
 *   lifecycle:  create --(thread publishes its tid)--> running
 *               running --iothread_stop: oneshot BH sets running=false,
 *                          which also wakes the blocked aio_poll-->
 *               stopped --join--> (destroy frees)
 *
 * Properties as in QEMU's -object iothread: poll-max-ns (32768),
 * poll-grow (0), poll-shrink (0), aio-max-batch (0), thread-pool-min (0),
 * thread-pool-max (64).
 */
#ifndef AIOLAB_IOTHREAD_H
#define AIOLAB_IOTHREAD_H

#include <aiolab/aio.h>

typedef struct IOThread IOThread;

/* Global state: main loop, BQL held */

/**
 * iothread_create: create and start IOThread @id (thread name "IO <id>").
 * Returns once the thread runs.  Refuses an empty or duplicate @id.
 * Returns: the IOThread, or NULL with @errp set.
 * Context: main loop, BQL held.
 */
AIOLAB_API IOThread *iothread_create(const char *id, Error **errp);

/**
 * iothread_stop: stop the thread and join it; idempotent.  Its context
 * stays alive (BHs scheduled into it after this never run).
 * Context: main loop, BQL held; never from the IOThread itself.
 */
AIOLAB_API void iothread_stop(IOThread *iothread);

/**
 * iothread_destroy: stop, join, and free the IOThread and its context's
 * reference.  Context: main loop, BQL held.
 */
AIOLAB_API void iothread_destroy(IOThread *iothread);

/**
 * iothread_set_poll_params: set properties (QEMU sets them through QOM;
 * aiolab through this function and the two below).  Each refuses negative
 * values with "<name> value must be in range [0, INT64_MAX]" and changes
 * nothing on error.
 * Context: main loop, BQL held.
 */
AIOLAB_API bool iothread_set_poll_params(IOThread *iothread, int64_t max_ns,
                                         int64_t grow, int64_t shrink,
                                         Error **errp);
AIOLAB_API bool iothread_set_aio_max_batch(IOThread *iothread,
                                           int64_t max_batch, Error **errp);
AIOLAB_API bool iothread_set_thread_pool_params(IOThread *iothread,
                                                int64_t min, int64_t max,
                                                Error **errp);

/* Any thread */

/** iothread_by_id: find an IOThread, or NULL.  Context: any thread. */
AIOLAB_API IOThread *iothread_by_id(const char *id);

/**
 * iothread_get_aio_context: the IOThread's context (no new reference).
 * Context: any thread, until iothread_destroy().
 */
AIOLAB_API AioContext *iothread_get_aio_context(IOThread *iothread);

/**
 * iothread_get_id: a copy of the id; free() it.
 * Context: any thread, until iothread_destroy().
 */
AIOLAB_API char *iothread_get_id(IOThread *iothread);

/**
 * iothread_get_thread_id: the kernel tid of the thread.
 * Context: any thread, until iothread_destroy().
 */
AIOLAB_API int iothread_get_thread_id(IOThread *iothread);

/**
 * aiolab_iothread_get_param: read "poll-max-ns", "poll-grow",
 * "poll-shrink", "aio-max-batch", "thread-pool-min" or "thread-pool-max".
 * Returns: false for an unknown name.
 * Context: any thread (the setters run in the main loop; a concurrent
 * set may be missed).
 */
AIOLAB_API bool aiolab_iothread_get_param(IOThread *iothread, const char *name,
                                          int64_t *value);

/**
 * aiolab_iothread_list: up to @max IOThreads into @out, in creation order.
 * Returns: how many exist.  Context: any thread (a snapshot under the
 * registry's lock; an IOThread may be destroyed right after).
 */
AIOLAB_API size_t aiolab_iothread_list(IOThread **out, size_t max);

#endif

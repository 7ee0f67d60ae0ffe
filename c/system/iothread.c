/* SPDX-License-Identifier: MIT */
/*
 * system/iothread.c - IOThreads: a thread, an AioContext, and
 *
 *     while (running) aio_poll(ctx, true);
 *
 *   iothread_create()                        the IOThread
 *   ------------------------------------     ---------------------------
 *   ctx = aio_context_new()
 *   set poll-max-ns 32768, ...
 *   create thread "IO <id>"  ------------>   qemu_set_current_aio_context
 *   wait until thread_id is published <---   publish thread_id
 *                                            loop: aio_poll(ctx, true)
 *   iothread_stop():
 *   oneshot BH "running = false" -------->   (the BH's aio_notify wakes
 *                                             the sleeping aio_poll, which
 *                                             runs the BH)
 *   join  <-------------------------------   loop ends, thread exits
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <aiolab/aiolab.h>
#include "util/atomic.h"
#include "util/check.h"
#include "util/thread.h"
#include "util/mem.h"

#define IOTHREAD_MAGIC 0x494f5448u    /* "IOTH" */

struct IOThread {
    unsigned magic;
    char *id;
    AioContext *ctx;
    pthread_t thread;
    int thread_id;              /* published by the thread, under init_lock */
    bool running;               /* atomic: cleared by the stop BH */
    bool stopped;               /* main loop only */
    pthread_mutex_t init_lock;
    pthread_cond_t init_cond;
    /* Properties (main loop only) */
    int64_t poll_max_ns, poll_grow, poll_shrink;
    int64_t aio_max_batch;
    int64_t thread_pool_min, thread_pool_max;
    IOThread *next;             /* registry, main loop only */
};

static IOThread *iothreads;     /* in creation order */
static pthread_mutex_t iothreads_lock = PTHREAD_MUTEX_INITIALIZER;

#define REQUIRE_IOTHREAD(it) REQUIRE_LIVE(it, IOTHREAD_MAGIC, "IOThread")

static void *iothread_run(void *opaque)
{
    IOThread *iothread = opaque;

    qemu_set_current_aio_context(iothread->ctx);
    pthread_mutex_lock(&iothread->init_lock);
    iothread->thread_id = aiolab_gettid();
    pthread_cond_signal(&iothread->init_cond);
    pthread_mutex_unlock(&iothread->init_lock);

    while (qatomic_load_sc(&iothread->running)) {
        aio_poll(iothread->ctx, true);
    }
    return NULL;
}

/* QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'. */
static bool id_wellformed(const char *id)
{
    const char *p;

    if (!isalpha((unsigned char)id[0])) {
        return false;
    }
    for (p = id + 1; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("-._", *p)) {
            return false;
        }
    }
    return true;
}

static bool check_range(const char *name, int64_t value, Error **errp)
{
    if (value < 0) {
        error_setg(errp, "%s value must be in range [0, INT64_MAX]", name);
        return false;
    }
    return true;
}

IOThread *iothread_create(const char *id, Error **errp)
{
    IOThread *iothread;
    char name[64];
    Error *local_err = NULL;

    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(id);
    if (!id_wellformed(id)) {
        error_setg(errp, "Parameter 'id' expects an identifier (a letter, "
                   "then letters, digits, '-', '.', '_'): '%s'", id);
        return NULL;
    }
    if (iothread_by_id(id)) {
        error_setg(errp, "Duplicate ID '%s' for iothread", id);
        return NULL;
    }
    iothread = aiolab_xcalloc(1, sizeof(*iothread));
    iothread->magic = IOTHREAD_MAGIC;
    iothread->id = aiolab_xstrdup(id);
    iothread->poll_max_ns = 32768;      /* QEMU's default on POSIX */
    iothread->thread_pool_max = THREAD_POOL_MAX_THREADS_DEFAULT;
    pthread_mutex_init(&iothread->init_lock, NULL);
    pthread_cond_init(&iothread->init_cond, NULL);

    iothread->ctx = aio_context_new(&local_err);
    if (!iothread->ctx) {
        error_propagate(errp, local_err);
        goto fail;
    }
    snprintf(name, sizeof(name), "IO %s", id);
    aiolab_aio_context_set_name(iothread->ctx, name);
    aio_context_set_poll_params(iothread->ctx, iothread->poll_max_ns,
                                iothread->poll_grow, iothread->poll_shrink,
                                &error_abort);
    aio_context_set_aio_params(iothread->ctx, iothread->aio_max_batch);

    iothread->running = true;
    if (aiolab_thread_create(&iothread->thread, name, iothread_run,
                             iothread) != 0) {
        error_setg_errno(errp, errno, "cannot create thread for iothread "
                         "'%s'", id);
        aio_context_unref(iothread->ctx);
        goto fail;
    }
    /* Wait until the thread runs and has published its tid. */
    pthread_mutex_lock(&iothread->init_lock);
    while (!iothread->thread_id) {
        pthread_cond_wait(&iothread->init_cond, &iothread->init_lock);
    }
    pthread_mutex_unlock(&iothread->init_lock);

    pthread_mutex_lock(&iothreads_lock);
    IOThread **p = &iothreads;
    while (*p) {
        p = &(*p)->next;
    }
    *p = iothread;
    pthread_mutex_unlock(&iothreads_lock);
    return iothread;

fail:
    free(iothread->id);
    free(iothread);
    return NULL;
}

static void iothread_stop_bh(void *opaque)
{
    IOThread *iothread = opaque;

    /* Pairs with the load in iothread_run()'s loop condition. */
    qatomic_store_sc(&iothread->running, false);
}

void iothread_stop(IOThread *iothread)
{
    REQUIRE_IOTHREAD(iothread);
    GLOBAL_STATE_CODE();
    AIOLAB_REQUIRE(aiolab_gettid() != iothread->thread_id,
                   "called from IOThread '%s' itself (it would join itself)",
                   iothread->id);
    if (iothread->stopped) {
        return;
    }
    iothread->stopped = true;
    aio_bh_schedule_oneshot(iothread->ctx, iothread_stop_bh, iothread);
    pthread_join(iothread->thread, NULL);
}

void iothread_destroy(IOThread *iothread)
{
    IOThread **p;

    REQUIRE_IOTHREAD(iothread);
    GLOBAL_STATE_CODE();
    iothread_stop(iothread);
    pthread_mutex_lock(&iothreads_lock);
    for (p = &iothreads; *p; p = &(*p)->next) {
        if (*p == iothread) {
            *p = iothread->next;
            break;
        }
    }
    pthread_mutex_unlock(&iothreads_lock);
    aio_context_unref(iothread->ctx);
    pthread_mutex_destroy(&iothread->init_lock);
    pthread_cond_destroy(&iothread->init_cond);
    iothread->magic = 0;
    free(iothread->id);
    free(iothread);
}

IOThread *iothread_by_id(const char *id)
{
    IOThread *it;

    REQUIRE_NONNULL(id);
    pthread_mutex_lock(&iothreads_lock);
    for (it = iothreads; it; it = it->next) {
        if (!strcmp(it->id, id)) {
            break;
        }
    }
    pthread_mutex_unlock(&iothreads_lock);
    return it;
}

size_t aiolab_iothread_list(IOThread **out, size_t max)
{
    IOThread *it;
    size_t n = 0;

    pthread_mutex_lock(&iothreads_lock);
    for (it = iothreads; it; it = it->next) {
        if (n < max) {
            out[n] = it;
        }
        n++;
    }
    pthread_mutex_unlock(&iothreads_lock);
    return n;
}

AioContext *iothread_get_aio_context(IOThread *iothread)
{
    REQUIRE_IOTHREAD(iothread);
    return iothread->ctx;
}

char *iothread_get_id(IOThread *iothread)
{
    REQUIRE_IOTHREAD(iothread);
    return aiolab_xstrdup(iothread->id);
}

int iothread_get_thread_id(IOThread *iothread)
{
    REQUIRE_IOTHREAD(iothread);
    return iothread->thread_id;
}

bool iothread_set_poll_params(IOThread *iothread, int64_t max_ns,
                              int64_t grow, int64_t shrink, Error **errp)
{
    REQUIRE_IOTHREAD(iothread);
    GLOBAL_STATE_CODE();
    if (!check_range("poll-max-ns", max_ns, errp) ||
        !check_range("poll-grow", grow, errp) ||
        !check_range("poll-shrink", shrink, errp)) {
        return false;
    }
    iothread->poll_max_ns = max_ns;
    iothread->poll_grow = grow;
    iothread->poll_shrink = shrink;
    aio_context_set_poll_params(iothread->ctx, max_ns, grow, shrink,
                                &error_abort);
    return true;
}

bool iothread_set_aio_max_batch(IOThread *iothread, int64_t max_batch,
                                Error **errp)
{
    REQUIRE_IOTHREAD(iothread);
    GLOBAL_STATE_CODE();
    if (!check_range("aio-max-batch", max_batch, errp)) {
        return false;
    }
    iothread->aio_max_batch = max_batch;
    aio_context_set_aio_params(iothread->ctx, max_batch);
    return true;
}

bool iothread_set_thread_pool_params(IOThread *iothread, int64_t min,
                                     int64_t max, Error **errp)
{
    Error *local_err = NULL;

    REQUIRE_IOTHREAD(iothread);
    GLOBAL_STATE_CODE();
    if (!check_range("thread-pool-min", min, errp) ||
        !check_range("thread-pool-max", max, errp)) {
        return false;
    }
    aio_context_set_thread_pool_params(iothread->ctx, min, max, &local_err);
    if (local_err) {
        error_propagate(errp, local_err);
        return false;
    }
    iothread->thread_pool_min = min;
    iothread->thread_pool_max = max;
    return true;
}

bool aiolab_iothread_get_param(IOThread *iothread, const char *name,
                               int64_t *value)
{
    static const struct {
        const char *name;
        size_t offset;
    } params[] = {
        { "poll-max-ns", offsetof(IOThread, poll_max_ns) },
        { "poll-grow", offsetof(IOThread, poll_grow) },
        { "poll-shrink", offsetof(IOThread, poll_shrink) },
        { "aio-max-batch", offsetof(IOThread, aio_max_batch) },
        { "thread-pool-min", offsetof(IOThread, thread_pool_min) },
        { "thread-pool-max", offsetof(IOThread, thread_pool_max) },
    };
    size_t i;

    REQUIRE_IOTHREAD(iothread);
    REQUIRE_NONNULL(name);
    REQUIRE_NONNULL(value);
    for (i = 0; i < ARRAY_SIZE(params); i++) {
        if (!strcmp(params[i].name, name)) {
            *value = *(int64_t *)((char *)iothread + params[i].offset);
            return true;
        }
    }
    return false;
}

/* SPDX-License-Identifier: MIT */
/*
 * block/job-events.c - job events for whoever listens in the main loop
 * (the QMP monitor turns them into JOB_STATUS_CHANGE, BLOCK_JOB_READY,
 * BLOCK_JOB_COMPLETED, BLOCK_JOB_CANCELLED and BLOCK_JOB_ERROR).
 *
 * Events happen in any thread (READY and ERROR in the job's coroutine,
 * which may run in an IOThread); listeners want the main loop and the
 * BQL.  So an event is copied into a queue, and one BH in the main
 * context delivers the queue in order:
 *
 *   job_event_post (any thread)         job_event_flush_bh (main loop)
 *     no listener? return (no cost)       pop one (event_lock)
 *     copy; append (event_lock)           call every listener
 *     first in an empty run? schedule  -->  ... until empty, then
 *     the BH                                flush_scheduled = false
 *
 * Oneshot BHs of one pass run in reverse order, so ordering cannot come
 * from the BHs: only the queue orders, and at most one BH is pending.
 *
 * Where QEMU differs: QEMU emits QAPI events straight from the job code
 * (the monitor's event code takes its own lock) and adds rate limiting
 * of some events; Job also has notifier lists (on_ready, on_pending...).
 */
#include <stdlib.h>
#include <string.h>
#include "block/blockjob_int.h"
#include "util/mem.h"

typedef struct JobEventEntry {
    AiolabJobEvent ev;
    QSIMPLEQ_ENTRY(JobEventEntry) next;
} JobEventEntry;

typedef struct JobListener {
    AiolabJobEventFunc *fn;
    void *opaque;
    bool deleted;                   /* removed during a delivery */
    QLIST_ENTRY(JobListener) next;
} JobListener;

/* event_lock protects the queue and flush_scheduled; the listener list
 * is main-loop state (nb_listeners is atomic for the fast path). */
static pthread_mutex_t event_lock = PTHREAD_MUTEX_INITIALIZER;
static QSIMPLEQ_HEAD(, JobEventEntry) event_queue =
    QSIMPLEQ_HEAD_INITIALIZER(event_queue);
static bool flush_scheduled;
static QLIST_HEAD(, JobListener) listeners =
    QLIST_HEAD_INITIALIZER(listeners);
static int nb_listeners;
static int delivering;

/* A BH in the main loop: deliver everything queued, in order (what is
 * posted meanwhile too: flush_scheduled stays set until the queue is
 * empty, so no second BH can overtake this one). */
static void job_event_flush_bh(void *opaque)
{
    JobEventEntry *e;
    JobListener *l, *next;

    delivering++;
    for (;;) {
        pthread_mutex_lock(&event_lock);
        e = QSIMPLEQ_FIRST(&event_queue);
        if (e) {
            QSIMPLEQ_REMOVE_HEAD(&event_queue, next);
        } else {
            flush_scheduled = false;
        }
        pthread_mutex_unlock(&event_lock);
        if (!e) {
            break;
        }
        QLIST_FOREACH(l, &listeners, next) {
            if (!l->deleted) {
                l->fn(&e->ev, l->opaque);
            }
        }
        free(e);
    }
    if (--delivering == 0) {
        QLIST_FOREACH_SAFE(l, &listeners, next, next) {
            if (l->deleted) {
                QLIST_REMOVE(l, next);
                free(l);
            }
        }
    }
}

void job_event_post(Job *job, AiolabJobEvent *ev)
{
    JobEventEntry *e;
    bool schedule;

    if (!qatomic_read(&nb_listeners)) {
        return;                     /* nobody listens: no cost */
    }
    snprintf(ev->id, sizeof(ev->id), "%s", job->id);
    snprintf(ev->job_type, sizeof(ev->job_type), "%s",
             job->driver->job_type);
    e = aiolab_xmalloc(sizeof(*e));
    e->ev = *ev;
    pthread_mutex_lock(&event_lock);
    QSIMPLEQ_INSERT_TAIL(&event_queue, e, next);
    schedule = !flush_scheduled;
    flush_scheduled = true;
    pthread_mutex_unlock(&event_lock);
    if (schedule) {
        aio_bh_schedule_oneshot(qemu_get_aio_context(), job_event_flush_bh,
                                NULL);
    }
}

void aiolab_job_add_event_listener(AiolabJobEventFunc *fn, void *opaque)
{
    JobListener *l;

    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(fn);
    l = aiolab_xcalloc(1, sizeof(*l));
    l->fn = fn;
    l->opaque = opaque;
    QLIST_INSERT_HEAD(&listeners, l, next);
    qatomic_inc(&nb_listeners);
}

void aiolab_job_remove_event_listener(AiolabJobEventFunc *fn, void *opaque)
{
    JobListener *l;

    GLOBAL_STATE_CODE();
    QLIST_FOREACH(l, &listeners, next) {
        if (l->fn == fn && l->opaque == opaque && !l->deleted) {
            qatomic_dec(&nb_listeners);
            if (delivering) {
                l->deleted = true;  /* the delivery loop frees it */
            } else {
                QLIST_REMOVE(l, next);
                free(l);
            }
            return;
        }
    }
    aiolab_die(__func__, "no job event listener (fn %p, opaque %p) "
               "(a listener is removed with the values it was added with)",
               (void *)fn, opaque);
}

/* SPDX-License-Identifier: MIT */
/*
 * util/qemu-coroutine.c - creating, entering and yielding coroutines, and
 * the pool that recycles them.
 *
 * The life of a coroutine (co->caller, co->scheduled; see coroutine-int.h):
 *
 *    create ---> [fresh] --enter--> [running] --entry returns--> [pooled]
 *                   ^                  |   ^                        |
 *                   |                yield  enter / co_schedule_bh  |
 *                   |                  v   |                        |
 *                   |               [yielded] --aio_co_schedule-->  |
 *                   |                  ^        [scheduled] --------'(runs)
 *                   +----- create takes it from the pool -----------+
 *
 *   running:   caller != NULL (the enterer, or the thread's leader)
 *   yielded:   caller == NULL, scheduled == NULL
 *   scheduled: scheduled == name of the function that queued it
 *
 * Entering runs a small loop rather than a single switch.  When a running
 * coroutine wakes another one of the same AioContext (aio_co_enter(),
 * aio_co_wake(), a CoMutex unlock), async.c does not switch to it, which
 * would nest one stack inside the other, but appends it to the waker's
 * co_queue_wakeup list.  When the waker yields or terminates, control
 * comes back here, and the loop enters the woken coroutines next, newest
 * wake-ups first (depth-first).  Two coroutines can then hand control to
 * each other forever with a constant stack depth.
 *
 * Where QEMU differs: QEMU's pool keeps per-thread batches of 128 and a
 * global list of batches, capped also by vm.max_map_count.  aiolab keeps
 * one per-thread list and one global overflow list (coroutine by
 * coroutine), and does not look at max_map_count.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "util/aio-internal.h"
#include "util/atomic.h"
#include "util/check.h"
#include "util/coroutine-int.h"
#include "util/trace-internal.h"

/* --- the pool ---------------------------------------------------------
 *
 *   qemu_coroutine_create                terminate (in the enter loop)
 *        |  take from                         |  give to
 *        v                                    v
 *   this thread's list (<= POOL_LOCAL_MAX, no lock)
 *        |  empty: refill up to           |  full:
 *        |  POOL_BATCH from               v
 *   global list (mutex; <= global_pool_max) ---> full: free the coroutine
 *
 * A coroutine often terminates on another thread than the one that
 * created it (it was moved with aio_co_schedule); the global list lets
 * the creating thread get such coroutines back instead of allocating.
 * Allocating costs a 1 MiB mmap and a swapcontext; reusing costs a list
 * operation.
 */
enum {
    POOL_LOCAL_MAX = 128,
    POOL_BATCH = 64,
    POOL_GLOBAL_DEFAULT = 128,
};

typedef QSLIST_HEAD(, Coroutine) CoroutineList;

typedef struct LocalPool {
    CoroutineList list;
    unsigned size;
    bool armed;                 /* thread-exit destructor registered */
} LocalPool;

static __thread LocalPool tls_pool;

/* Protected by global_pool_lock. */
static pthread_mutex_t global_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static CoroutineList global_pool;
static unsigned global_pool_size;
/* Atomic: raised and lowered by qemu_coroutine_inc/dec_pool_size(). */
static unsigned global_pool_max = POOL_GLOBAL_DEFAULT;

static pthread_once_t pool_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t pool_key;

/*
 * The registry: every allocated coroutine (pooled or not), linked through
 * all_next, for aiolab_coroutine_list() and the gdb script ("aiolab
 * coroutines" walks aiolab_coroutine_registry).  Protected by
 * registry_lock; touched only when a coroutine is allocated or freed,
 * never on the create/enter/yield path.
 */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static Coroutine *aiolab_coroutine_registry;

/* Ever allocated (atomic).  How many are pooled is counted from the
 * registry when asked: a shared counter would put a locked instruction
 * on every create and terminate. */
static uint64_t stat_allocated;

/* Coroutine-safe TLS access: see the comment in coroutine-ucontext.c. */
static __attribute__((noinline)) LocalPool *pool_local(void)
{
    LocalPool *pool = &tls_pool;

    asm("" : "+r"(pool));       /* opaque: see co_get_leader() */
    return pool;
}

static Coroutine *coroutine_alloc(void)
{
    Coroutine *co = qemu_coroutine_new();

    pthread_mutex_lock(&registry_lock);
    co->all_next = aiolab_coroutine_registry;
    aiolab_coroutine_registry = co;
    pthread_mutex_unlock(&registry_lock);
    qatomic_inc(&stat_allocated);
    return co;
}

static void coroutine_free(Coroutine *co)
{
    Coroutine **pp;

    /* O(number of coroutines); only when a pool overflows or a thread
     * exits. */
    pthread_mutex_lock(&registry_lock);
    for (pp = &aiolab_coroutine_registry; *pp != co; pp = &(*pp)->all_next) {
    }
    *pp = co->all_next;
    pthread_mutex_unlock(&registry_lock);
    qemu_coroutine_delete(co);
}

/* pthread key destructor: the thread exits; free its pooled coroutines. */
static void pool_thread_exit(void *opaque)
{
    LocalPool *lp = opaque;
    Coroutine *co;

    lp->armed = false;      /* a pool_put() in a later destructor re-arms */
    while ((co = QSLIST_FIRST(&lp->list)) != NULL) {
        QSLIST_REMOVE_HEAD(&lp->list, pool_next);
        lp->size--;
        coroutine_free(co);
    }
}

static void pool_key_init(void)
{
    pthread_key_create(&pool_key, pool_thread_exit);
}

static Coroutine *pool_get(void)
{
    LocalPool *lp = pool_local();
    Coroutine *co;

    if (QSLIST_EMPTY(&lp->list) && qatomic_read(&global_pool_size)) {
        pthread_mutex_lock(&global_pool_lock);
        while (lp->size < POOL_BATCH &&
               (co = QSLIST_FIRST(&global_pool)) != NULL) {
            QSLIST_REMOVE_HEAD(&global_pool, pool_next);
            qatomic_set(&global_pool_size, global_pool_size - 1);
            QSLIST_INSERT_HEAD(&lp->list, co, pool_next);
            lp->size++;
        }
        pthread_mutex_unlock(&global_pool_lock);
    }
    co = QSLIST_FIRST(&lp->list);
    if (co) {
        QSLIST_REMOVE_HEAD(&lp->list, pool_next);
        lp->size--;
        qatomic_set(&co->pooled, false);
    }
    return co;
}

/* A terminated coroutine: keep it for reuse, or free it. */
static void pool_put(Coroutine *co)
{
    LocalPool *lp = pool_local();

    qatomic_set(&co->caller, NULL);
    qatomic_set(&co->pooled, true);
    if (lp->size < POOL_LOCAL_MAX) {
        if (unlikely(!lp->armed)) {
            pthread_once(&pool_key_once, pool_key_init);
            pthread_setspecific(pool_key, lp);
            lp->armed = true;
        }
        QSLIST_INSERT_HEAD(&lp->list, co, pool_next);
        lp->size++;
        return;
    }
    pthread_mutex_lock(&global_pool_lock);
    if (global_pool_size < qatomic_read(&global_pool_max)) {
        QSLIST_INSERT_HEAD(&global_pool, co, pool_next);
        qatomic_set(&global_pool_size, global_pool_size + 1);
        co = NULL;
    }
    pthread_mutex_unlock(&global_pool_lock);
    if (co) {
        coroutine_free(co);
    }
}

void qemu_coroutine_inc_pool_size(unsigned int additional_pool_size)
{
    qatomic_fetch_add(&global_pool_max, additional_pool_size);
}

void qemu_coroutine_dec_pool_size(unsigned int removing_pool_size)
{
    /* Coroutines already pooled above the new cap stay until reused. */
    qatomic_fetch_sub(&global_pool_max, removing_pool_size);
}

/* --- create, enter, yield --------------------------------------------- */

Coroutine *qemu_coroutine_create(CoroutineEntry *entry, void *opaque)
{
    Coroutine *co;

    REQUIRE_NONNULL(entry);
    co = pool_get();

    if (!co) {
        co = coroutine_alloc();
    }
    qatomic_set(&co->entry, entry);
    co->entry_arg = opaque;
    co->locks_held = 0;
    qatomic_set(&co->ctx, NULL);
    QSIMPLEQ_INIT(&co->co_queue_wakeup);
    return co;
}

/* The body of qemu_aio_coroutine_enter(); static, so that the public
 * functions of this file reach it without a PLT hop (every exported
 * function is interposable in a shared library). */
#define ENTER_FN "qemu_aio_coroutine_enter"      /* for the messages */

static void coroutine_enter(AioContext *ctx, Coroutine *co)
{
    QSIMPLEQ_HEAD(, Coroutine) pending = QSIMPLEQ_HEAD_INITIALIZER(pending);
    Coroutine *from = qemu_coroutine_self();

    QSIMPLEQ_INSERT_TAIL(&pending, co, co_queue_next);

    /* Run @co, then whatever it (and they) woke in this context. */
    while (!QSIMPLEQ_EMPTY(&pending)) {
        Coroutine *to = QSIMPLEQ_FIRST(&pending);
        const char *scheduled = qatomic_read(&to->scheduled);
        CoroutineAction ret;

        QSIMPLEQ_REMOVE_HEAD(&pending, co_queue_next);

        /* Entering it now would let two parties run one stack: abort
         * in every build, as QEMU does. */
        if (unlikely(scheduled)) {
            aiolab_die(ENTER_FN, "Co-routine was already scheduled in '%s'",
                       scheduled);
        }
        if (unlikely(qatomic_read(&to->caller))) {
            aiolab_die(ENTER_FN, "Co-routine re-entered recursively");
        }

        qatomic_set(&to->caller, from);
        qatomic_set(&to->ctx, ctx);
        /*
         * Whatever @to publishes after this point (itself in a CoMutex
         * queue, in a shared variable) must not be seen before its ctx,
         * or a waker could resume it in the old context.  Pairs with the
         * read of co->ctx in aio_co_wake().
         */
        smp_wmb();

        trace_instant(TE_COROUTINE_ENTER, NULL, 0);
        ret = qemu_coroutine_switch(from, to, COROUTINE_ENTER);

        /* Depth-first: what @to woke runs before older pending ones. */
        QSIMPLEQ_PREPEND(&pending, &to->co_queue_wakeup);

        switch (ret) {
        case COROUTINE_YIELD:
            break;
        case COROUTINE_TERMINATE:
            trace_instant(TE_COROUTINE_TERMINATE, NULL, 0);
            if (unlikely(to->locks_held)) {
                aiolab_die(ENTER_FN, "Co-routine terminated while holding "
                           "%zu CoMutex lock(s)", to->locks_held);
            }
            pool_put(to);
            break;
        default:
            aiolab_die(ENTER_FN, "bad coroutine action %d", (int)ret);
        }
    }
}

void qemu_aio_coroutine_enter(AioContext *ctx, Coroutine *co)
{
    REQUIRE_NONNULL(co);
    coroutine_enter(ctx, co);
}

void qemu_coroutine_enter(Coroutine *co)
{
    REQUIRE_NONNULL(co);
    coroutine_enter(qemu_get_current_aio_context(), co);
}

void qemu_coroutine_enter_if_inactive(Coroutine *co)
{
    REQUIRE_NONNULL(co);
    if (!qatomic_read(&co->caller)) {
        coroutine_enter(qemu_get_current_aio_context(), co);
    }
}

void coroutine_fn qemu_coroutine_yield(void)
{
    Coroutine *self = qemu_coroutine_self();
    Coroutine *to = qatomic_read(&self->caller);

    /* Outside a coroutine, self is the thread's leader: no caller. */
    if (unlikely(!to)) {
        aiolab_die(__func__, "Co-routine is yielding to no one: called "
                   "outside a coroutine " RULE_CO);
    }
    trace_instant(TE_COROUTINE_YIELD, NULL, 0);
    qatomic_set(&self->caller, NULL);
    qemu_coroutine_switch(self, to, COROUTINE_YIELD);
}

bool qemu_coroutine_entered(Coroutine *co)
{
    REQUIRE_NONNULL(co);
    return qatomic_read(&co->caller) != NULL;
}

AioContext *qemu_coroutine_get_aio_context(Coroutine *co)
{
    REQUIRE_NONNULL(co);
    return qatomic_read(&co->ctx);
}

/* --- diagnostics -------------------------------------------------------- */

static const char *co_state(Coroutine *co)
{
    if (qatomic_read(&co->pooled)) {
        return "pooled";
    }
    if (qatomic_read(&co->scheduled)) {
        return "scheduled";
    }
    if (qatomic_read(&co->caller)) {
        return "running";
    }
    return "yielded";       /* including created, not yet entered */
}

/*
 * A yielded coroutine may outlive the context it last ran in: only the
 * names of contexts still registered are looked at.
 */
typedef struct {
    AioContext *ctx[64];
    const char *name[64];
    int n;
} LiveContexts;

static void live_context_add(AioContext *ctx, void *opaque)
{
    LiveContexts *live = opaque;

    if (live->n < (int)ARRAY_SIZE(live->ctx)) {
        live->ctx[live->n] = ctx;
        live->name[live->n] = aiolab_aio_context_get_name(ctx);
        live->n++;
    }
}

static const char *live_context_name(LiveContexts *live, AioContext *ctx)
{
    int i;

    for (i = 0; ctx && i < live->n; i++) {
        if (live->ctx[i] == ctx) {
            return live->name[i];
        }
    }
    return NULL;
}

/*
 * The dump may call this from a SIGQUIT handler that interrupted a thread
 * holding registry_lock; waiting for it would deadlock, so try for a
 * while and give up (the list is then empty).
 */
size_t aiolab_coroutine_list(AiolabCoroutineInfo *out, size_t max)
{
    LiveContexts live = { .n = 0 };
    Coroutine *co;
    size_t n = 0;
    int tries;

    if (max) {
        aio_context_registry_foreach(live_context_add, &live);
    }

    for (tries = 0; pthread_mutex_trylock(&registry_lock) != 0; tries++) {
        if (tries == 1000) {
            return 0;
        }
        sched_yield();
    }
    for (co = aiolab_coroutine_registry; co; co = co->all_next) {
        AioContext *ctx;

        if (qatomic_read(&co->pooled)) {
            continue;
        }
        if (n < max) {
            ctx = qatomic_read(&co->ctx);
            out[n].co = co;
            out[n].state = co_state(co);
            out[n].scheduled_by = qatomic_read(&co->scheduled);
            out[n].ctx_name = live_context_name(&live, ctx);
            out[n].entry = (void *)qatomic_read(&co->entry);
        }
        n++;
    }
    pthread_mutex_unlock(&registry_lock);
    return n;
}

void aiolab_coroutine_pool_stats(uint64_t *allocated, uint64_t *pooled)
{
    Coroutine *co;
    uint64_t n = 0;

    if (allocated) {
        *allocated = qatomic_read(&stat_allocated);
    }
    if (pooled) {
        pthread_mutex_lock(&registry_lock);
        for (co = aiolab_coroutine_registry; co; co = co->all_next) {
            n += qatomic_read(&co->pooled);
        }
        pthread_mutex_unlock(&registry_lock);
        *pooled = n;
    }
}

/* SPDX-License-Identifier: MIT */
/*
 * util/qemu-coroutine-lock.c - CoMutex and CoQueue: waiting without
 * blocking the thread.
 *
 * A coroutine that must wait puts itself on a list and yields; whoever
 * ends the wait takes it off the list and wakes it with aio_co_wake(),
 * which resumes it in the AioContext where it last ran: at once if that
 * is the waker's context and the waker is not a coroutine, when the waker
 * yields if the waker is a coroutine of that context, and through a BH
 * (aio_co_schedule) if it belongs to another thread.  So a CoMutex works
 * between coroutines of different IOThreads.
 *
 * CoMutex
 * -------
 * `locked` counts the holder plus every locker that has arrived and not
 * yet got the lock.  Lock and unlock change it with one atomic operation;
 * when nobody else is around, that is all they do:
 *
 *   lock:    fetch_add(locked, 1) == 0  ->  ours (the fast path)
 *            otherwise, under wait_lock:
 *              handoff set?   clear it; ours
 *              else           append self to the waiters; yield; ours
 *                             when woken
 *   unlock:  fetch_sub(locked, 1) == 1  ->  nobody waits (the fast path)
 *            otherwise, under wait_lock:
 *              a waiter?      pop it; aio_co_wake() it: it now owns the lock
 *              none yet       set handoff: a locker has counted itself
 *                             but not yet enqueued; it takes the lock
 *                             when it gets wait_lock
 *
 *   the lock's states (h = handoff, W = waiters enqueued, n = locked):
 *
 *     [free n=0] --lock--> [held n=1] --lock(contended)--> [held n>1]
 *        ^                     |  ^                           |
 *        +-----unlock n=1------+  +--unlock, pop W, wake-------+
 *                                 |                           |
 *                                 +--lock consumes h--[in transit: h,
 *                                                      n>=1, no holder]
 *                                   <--unlock, W empty, set h--'
 *
 * Invariants (all under wait_lock, or by the counting above):
 *   1. There is at most one owner; while handoff is set there is none.
 *   2. handoff is set only while some counted locker has not reached
 *      wait_lock yet, so it is always consumed.
 *   3. wait_lock is never held across a yield or an aio_co_wake().
 *   4. Waiters are woken in FIFO order; the lock passes directly to the
 *      woken waiter (no barging by a later fast-path locker, since
 *      locked stays > 0 throughout).
 *
 * Where QEMU differs: QEMU's waiter list is lock-free (a push-only stack
 * reversed by the unlocker, plus a sequence-number handshake) and a
 * contended locker spins briefly when the holder runs on another thread.
 * aiolab protects the list with a tiny pthread mutex held for a few
 * instructions, keeps only the handoff, and never spins.
 *
 * CoQueue
 * -------
 * A FIFO of yielded coroutines, protected by a CoMutex (or by running in
 * one AioContext only).  qemu_co_queue_wait() enqueues self, drops the
 * mutex, yields, and re-takes it: the condition must be re-checked in a
 * loop, as with a condition variable.
 */
#include <pthread.h>
#include <string.h>

#include "util/atomic.h"
#include "util/check.h"
#include "util/coroutine-int.h"

/* Waiter lists, linked through co->co_queue_next. */
static void co_fifo_push(Coroutine **head, Coroutine **tail, Coroutine *co)
{
    co->co_queue_next.sqe_next = NULL;
    if (*tail) {
        (*tail)->co_queue_next.sqe_next = co;
    } else {
        *head = co;
    }
    *tail = co;
}

static Coroutine *co_fifo_pop(Coroutine **head, Coroutine **tail)
{
    Coroutine *co = *head;

    if (co) {
        *head = co->co_queue_next.sqe_next;
        if (!*head) {
            *tail = NULL;
        }
        co->co_queue_next.sqe_next = NULL;
    }
    return co;
}

#define REQUIRE_COROUTINE() \
    AIOLAB_REQUIRE(qemu_in_coroutine(), "called outside a coroutine " RULE_CO)

/* --- CoMutex ------------------------------------------------------------ */

void qemu_co_mutex_init(CoMutex *mutex)
{
    REQUIRE_NONNULL(mutex);
    /* All zeros is a valid unlocked CoMutex: glibc's
     * PTHREAD_MUTEX_INITIALIZER is all zeros too. */
    memset(mutex, 0, sizeof(*mutex));
    pthread_mutex_init(&mutex->wait_lock, NULL);
}

void coroutine_fn qemu_co_mutex_lock(CoMutex *mutex)
{
    Coroutine *self = qemu_coroutine_self();

    REQUIRE_COROUTINE();
    REQUIRE_NONNULL(mutex);
    /* Pairs with the fetch_sub in qemu_co_mutex_unlock(): seeing 0 means
     * the previous holder's critical section happened before ours. */
    if (qatomic_fetch_add(&mutex->locked, 1) != 0) {
        bool ours;

        pthread_mutex_lock(&mutex->wait_lock);
        ours = mutex->handoff;
        if (ours) {
            mutex->handoff = false;
        } else {
            co_fifo_push(&mutex->waiters_head, &mutex->waiters_tail, self);
        }
        pthread_mutex_unlock(&mutex->wait_lock);
        if (!ours) {
            /* The unlocker pops us and passes the lock on with the
             * wake-up; locked still counts us, so nobody barges in. */
            qemu_coroutine_yield();
        }
    }
    mutex->holder = self;
    mutex->ctx = qatomic_read(&self->ctx);     /* where we were entered */
    self->locks_held++;
}

void coroutine_fn qemu_co_mutex_unlock(CoMutex *mutex)
{
    Coroutine *self = qemu_coroutine_self();
    Coroutine *next;

    REQUIRE_COROUTINE();
    REQUIRE_NONNULL(mutex);
    AIOLAB_ASSERT(mutex->holder == self,
                  "CoMutex %p unlocked by a coroutine that does not hold it",
                  (void *)mutex);
    mutex->holder = NULL;
    mutex->ctx = NULL;
    self->locks_held--;

    if (qatomic_fetch_sub(&mutex->locked, 1) == 1) {
        return;                 /* nobody else came */
    }
    pthread_mutex_lock(&mutex->wait_lock);
    next = co_fifo_pop(&mutex->waiters_head, &mutex->waiters_tail);
    if (!next) {
        /* A locker has counted itself but not enqueued yet. */
        mutex->handoff = true;
    }
    pthread_mutex_unlock(&mutex->wait_lock);
    if (next) {
        aio_co_wake(next);
    }
}

void qemu_co_mutex_assert_locked(CoMutex *mutex)
{
    if (!qatomic_read(&mutex->locked) ||
        mutex->holder != qemu_coroutine_self()) {
        aiolab_die(__func__, "CoMutex %p is not held by the caller",
                   (void *)mutex);
    }
}

/* --- CoQueue ------------------------------------------------------------ */

void qemu_co_queue_init(CoQueue *queue)
{
    REQUIRE_NONNULL(queue);
    queue->head = NULL;
    queue->tail = NULL;
}

void coroutine_fn qemu_co_queue_wait(CoQueue *queue, CoMutex *lock)
{
    Coroutine *self = qemu_coroutine_self();

    REQUIRE_COROUTINE();
    REQUIRE_NONNULL(queue);
    /* Enqueue before unlocking: a waker must hold @lock to dequeue, so it
     * cannot miss us.  If it runs on another thread, its wake-up goes
     * through a BH of our context, which runs only after we yield. */
    co_fifo_push(&queue->head, &queue->tail, self);
    if (lock) {
        qemu_co_mutex_unlock(lock);
    }
    qemu_coroutine_yield();
    if (lock) {
        qemu_co_mutex_lock(lock);
    }
}

bool coroutine_fn qemu_co_queue_next(CoQueue *queue)
{
    Coroutine *next;

    REQUIRE_COROUTINE();
    REQUIRE_NONNULL(queue);
    next = co_fifo_pop(&queue->head, &queue->tail);
    if (!next) {
        return false;
    }
    aio_co_wake(next);          /* runs when we yield, in its context */
    return true;
}

void coroutine_fn qemu_co_queue_restart_all(CoQueue *queue)
{
    Coroutine *next;

    REQUIRE_COROUTINE();
    REQUIRE_NONNULL(queue);
    while ((next = co_fifo_pop(&queue->head, &queue->tail)) != NULL) {
        aio_co_wake(next);
    }
}

/*
 * Outside a coroutine (lock must be NULL: plain code cannot hold a
 * CoMutex), aio_co_wake() enters a waiter of the caller's context at once,
 * so it has run (to its next yield) when this returns.  From a coroutine
 * that holds @lock, the lock is dropped around the wake-up, and the
 * waiter runs when the caller yields (or in its own thread).
 */
bool qemu_co_enter_next(CoQueue *queue, CoMutex *lock)
{
    Coroutine *next;

    REQUIRE_NONNULL(queue);
    next = co_fifo_pop(&queue->head, &queue->tail);

    if (!next) {
        return false;
    }
    if (lock) {
        qemu_co_mutex_unlock(lock);
    }
    aio_co_wake(next);
    if (lock) {
        qemu_co_mutex_lock(lock);
    }
    return true;
}

void qemu_co_enter_all(CoQueue *queue, CoMutex *lock)
{
    while (qemu_co_enter_next(queue, lock)) {
    }
}

bool qemu_co_queue_empty(CoQueue *queue)
{
    REQUIRE_NONNULL(queue);
    return queue->head == NULL;
}

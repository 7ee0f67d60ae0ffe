/* SPDX-License-Identifier: MIT */
/*
 * util/lockcnt.c - QemuLockCnt (see lockcnt.h for the idea).
 *
 * Invariant: count goes 0 -> 1 only with the mutex held.  So a writer that
 * holds the mutex and reads count == 0 knows no reader is walking and none
 * can start until it unlocks: it may unlink and free nodes.
 */
#include "util/lockcnt.h"
#include "util/atomic.h"

void qemu_lockcnt_init(QemuLockCnt *lockcnt)
{
    pthread_mutex_init(&lockcnt->mutex, NULL);
    lockcnt->count = 0;
}

void qemu_lockcnt_destroy(QemuLockCnt *lockcnt)
{
    pthread_mutex_destroy(&lockcnt->mutex);
}

void qemu_lockcnt_inc(QemuLockCnt *lockcnt)
{
    unsigned old = qatomic_read(&lockcnt->count);

    for (;;) {
        if (old == 0) {
            /* First reader: wait for any writer to finish. */
            pthread_mutex_lock(&lockcnt->mutex);
            qatomic_inc(&lockcnt->count);
            pthread_mutex_unlock(&lockcnt->mutex);
            return;
        }
        if (__atomic_compare_exchange_n(&lockcnt->count, &old, old + 1, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
            return;
        }
    }
}

void qemu_lockcnt_dec(QemuLockCnt *lockcnt)
{
    qatomic_dec(&lockcnt->count);
}

bool qemu_lockcnt_dec_if_lock(QemuLockCnt *lockcnt)
{
    if (qatomic_read(&lockcnt->count) != 1) {
        return false;
    }
    pthread_mutex_lock(&lockcnt->mutex);
    /* Re-check under the mutex: another reader may have joined. */
    if (qatomic_cmpxchg(&lockcnt->count, 1u, 0u) == 1) {
        return true;
    }
    pthread_mutex_unlock(&lockcnt->mutex);
    return false;
}

void qemu_lockcnt_lock(QemuLockCnt *lockcnt)
{
    pthread_mutex_lock(&lockcnt->mutex);
}

void qemu_lockcnt_unlock(QemuLockCnt *lockcnt)
{
    pthread_mutex_unlock(&lockcnt->mutex);
}

void qemu_lockcnt_inc_and_unlock(QemuLockCnt *lockcnt)
{
    qatomic_inc(&lockcnt->count);
    pthread_mutex_unlock(&lockcnt->mutex);
}

unsigned qemu_lockcnt_count(QemuLockCnt *lockcnt)
{
    /*
     * Acquire: a writer that reads 0 must see everything the last reader
     * wrote before leaving (pairs with the RMW in qemu_lockcnt_dec()).
     */
    return qatomic_load_acquire(&lockcnt->count);
}

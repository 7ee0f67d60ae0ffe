/* SPDX-License-Identifier: MIT */
/*
 * util/lockcnt.h - QemuLockCnt: a count of readers walking a list, plus a
 * mutex for writers.
 *
 * Readers (the home thread walking the fd handlers) only bump the count.
 * A writer (aio_set_fd_handler from any thread) takes the mutex; if the
 * count is non-zero somebody is walking, so it must not free a node: it
 * marks it deleted, and the last reader to leave frees it.  The trick
 * that makes "count is zero" mean "nobody can be walking": incrementing
 * from zero takes the mutex first, so no reader can start while a writer
 * holds it.
 *
 * Where QEMU differs: QEMU packs the count and a futex-based lock into one
 * word; aiolab uses a pthread mutex and a separate atomic count.
 */
#ifndef AIOLAB_UTIL_LOCKCNT_H
#define AIOLAB_UTIL_LOCKCNT_H

#include <pthread.h>
#include <stdbool.h>

typedef struct QemuLockCnt {
    pthread_mutex_t mutex;
    unsigned count;             /* atomic */
} QemuLockCnt;

void qemu_lockcnt_init(QemuLockCnt *lockcnt);
void qemu_lockcnt_destroy(QemuLockCnt *lockcnt);
/* Become a reader (takes and drops the mutex when the count was 0). */
void qemu_lockcnt_inc(QemuLockCnt *lockcnt);
/* Stop being a reader. */
void qemu_lockcnt_dec(QemuLockCnt *lockcnt);
/*
 * If the caller is the only reader: take the mutex, drop the count to 0
 * and return true.  The caller may now unlink and free nodes (no reader
 * can start: that needs the mutex), then becomes a reader again with
 * qemu_lockcnt_inc_and_unlock().  Otherwise return false, changing
 * nothing.
 */
bool qemu_lockcnt_dec_if_lock(QemuLockCnt *lockcnt);
void qemu_lockcnt_lock(QemuLockCnt *lockcnt);
void qemu_lockcnt_unlock(QemuLockCnt *lockcnt);
void qemu_lockcnt_inc_and_unlock(QemuLockCnt *lockcnt);
unsigned qemu_lockcnt_count(QemuLockCnt *lockcnt);

#endif

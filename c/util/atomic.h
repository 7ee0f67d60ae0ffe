/* SPDX-License-Identifier: MIT */
/*
 * util/atomic.h - atomic operations and barriers, with QEMU's names.
 *
 * qatomic_read/qatomic_set are relaxed; the read-modify-write operations
 * are sequentially consistent, which makes each of them a full barrier.
 *
 * ThreadSanitizer does not model standalone fences, so the pairs that
 * matter (aio_notify vs aio_poll, aio_wait_kick vs AIO_WAIT_WHILE) are
 * written as seq_cst read-modify-writes and seq_cst loads, never as
 * smp_mb() between plain accesses.  smp_mb__after_rmw() is a compiler
 * barrier on x86, where a locked RMW already is a full barrier.
 */
#ifndef AIOLAB_UTIL_ATOMIC_H
#define AIOLAB_UTIL_ATOMIC_H

#define qatomic_read(p)        __atomic_load_n((p), __ATOMIC_RELAXED)
#define qatomic_set(p, v)      __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define qatomic_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define qatomic_store_release(p, v) \
    __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define qatomic_load_sc(p)     __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define qatomic_store_sc(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

#define qatomic_xchg(p, v)     __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define qatomic_fetch_add(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define qatomic_fetch_sub(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)
#define qatomic_fetch_or(p, v)  __atomic_fetch_or((p), (v), __ATOMIC_SEQ_CST)
#define qatomic_fetch_and(p, v) __atomic_fetch_and((p), (v), __ATOMIC_SEQ_CST)
#define qatomic_add_fetch(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define qatomic_sub_fetch(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_SEQ_CST)
#define qatomic_inc(p)         ((void)qatomic_fetch_add((p), 1))
#define qatomic_dec(p)         ((void)qatomic_fetch_sub((p), 1))
#define qatomic_or(p, v)       ((void)qatomic_fetch_or((p), (v)))
#define qatomic_and(p, v)      ((void)qatomic_fetch_and((p), (v)))

/* Returns the old value, like QEMU's qatomic_cmpxchg. */
#define qatomic_cmpxchg(p, old, new) ({                                  \
    __typeof__(*(p)) cmpxchg_old_ = (old);                               \
    (void)__atomic_compare_exchange_n((p), &cmpxchg_old_, (new), false,  \
                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
    cmpxchg_old_; })

#define barrier()    __asm__ __volatile__("" ::: "memory")
#define smp_mb()     __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define smp_wmb()    __atomic_thread_fence(__ATOMIC_RELEASE)
#define smp_rmb()    __atomic_thread_fence(__ATOMIC_ACQUIRE)

#if defined(__x86_64__) || defined(__i386__)
#define smp_mb__after_rmw() barrier()
#else
#define smp_mb__after_rmw() smp_mb()
#endif

/*
 * Thread-locals on hot paths use the initial-exec TLS model: one load from
 * the thread pointer instead of a __tls_get_addr() call.  A library loaded
 * with dlopen() (Python) takes them from glibc's small static-TLS surplus,
 * so only a few pointers are marked.
 */
#define AIOLAB_TLS_IE __attribute__((tls_model("initial-exec")))

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#endif

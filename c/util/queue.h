/* SPDX-License-Identifier: MIT */
/*
 * util/queue.h - intrusive lists in the BSD <sys/queue.h> style, with the
 * QEMU names (QLIST, QSLIST, QSIMPLEQ) used throughout aiolab.
 *
 *   QLIST     doubly linked, O(1) removal of any element
 *   QSLIST    singly linked; the *_ATOMIC forms push and take the whole
 *             list with atomic operations (the BH list)
 *   QSIMPLEQ  singly linked with a tail pointer: a FIFO queue
 */
#ifndef AIOLAB_UTIL_QUEUE_H
#define AIOLAB_UTIL_QUEUE_H

#include <stddef.h>

/* QLIST ------------------------------------------------------------- */
#define QLIST_HEAD(name, type) struct name { struct type *lh_first; }
#define QLIST_HEAD_INITIALIZER(head) { NULL }
#define QLIST_ENTRY(type) \
    struct { struct type *le_next; struct type **le_prev; }
#define QLIST_INIT(head) ((head)->lh_first = NULL)
#define QLIST_EMPTY(head) ((head)->lh_first == NULL)
#define QLIST_FIRST(head) ((head)->lh_first)
#define QLIST_NEXT(elm, field) ((elm)->field.le_next)
#define QLIST_IS_INSERTED(elm, field) ((elm)->field.le_prev != NULL)
#define QLIST_INSERT_HEAD(head, elm, field) do {                          \
    if (((elm)->field.le_next = (head)->lh_first) != NULL)                \
        (head)->lh_first->field.le_prev = &(elm)->field.le_next;          \
    (head)->lh_first = (elm);                                             \
    (elm)->field.le_prev = &(head)->lh_first;                             \
} while (0)
/* Publish @elm to readers walking the list concurrently (no removals
 * may run concurrently: see QemuLockCnt). */
#define QLIST_INSERT_HEAD_RCU(head, elm, field) do {                      \
    (elm)->field.le_prev = &(head)->lh_first;                             \
    (elm)->field.le_next = (head)->lh_first;                              \
    if ((head)->lh_first != NULL)                                         \
        (head)->lh_first->field.le_prev = &(elm)->field.le_next;          \
    __atomic_store_n(&(head)->lh_first, (elm), __ATOMIC_RELEASE);         \
} while (0)
#define QLIST_FIRST_RCU(head) __atomic_load_n(&(head)->lh_first, __ATOMIC_ACQUIRE)
#define QLIST_NEXT_RCU(elm, field) \
    __atomic_load_n(&(elm)->field.le_next, __ATOMIC_ACQUIRE)
#define QLIST_REMOVE(elm, field) do {                                     \
    if ((elm)->field.le_next != NULL)                                     \
        (elm)->field.le_next->field.le_prev = (elm)->field.le_prev;       \
    *(elm)->field.le_prev = (elm)->field.le_next;                         \
    (elm)->field.le_next = NULL;                                          \
    (elm)->field.le_prev = NULL;                                          \
} while (0)
/* Remove if inserted; no-op otherwise. */
#define QLIST_SAFE_REMOVE(elm, field) do {                                \
    if ((elm)->field.le_prev != NULL) {                                   \
        QLIST_REMOVE(elm, field);                                         \
    }                                                                     \
} while (0)
#define QLIST_FOREACH(var, head, field) \
    for ((var) = (head)->lh_first; (var); (var) = (var)->field.le_next)
#define QLIST_FOREACH_RCU(var, head, field)                               \
    for ((var) = QLIST_FIRST_RCU(head); (var);                            \
         (var) = QLIST_NEXT_RCU(var, field))
#define QLIST_FOREACH_SAFE(var, head, field, next_var)                    \
    for ((var) = ((head)->lh_first);                                      \
         (var) && ((next_var) = ((var)->field.le_next), 1);               \
         (var) = (next_var))

/* QSLIST ------------------------------------------------------------ */
#define QSLIST_HEAD(name, type) struct name { struct type *slh_first; }
#define QSLIST_HEAD_INITIALIZER(head) { NULL }
#define QSLIST_ENTRY(type) struct { struct type *sle_next; }
#define QSLIST_INIT(head) ((head)->slh_first = NULL)
#define QSLIST_EMPTY(head) ((head)->slh_first == NULL)
#define QSLIST_FIRST(head) ((head)->slh_first)
#define QSLIST_NEXT(elm, field) ((elm)->field.sle_next)
#define QSLIST_INSERT_HEAD(head, elm, field) do {                         \
    (elm)->field.sle_next = (head)->slh_first;                            \
    (head)->slh_first = (elm);                                            \
} while (0)
/* Push @elm; safe against concurrent pushes and QSLIST_MOVE_ATOMIC. */
#define QSLIST_INSERT_HEAD_ATOMIC(head, elm, field) do {                  \
    __typeof__(elm) save_sle_next_;                                       \
    save_sle_next_ = __atomic_load_n(&(head)->slh_first, __ATOMIC_RELAXED); \
    do {                                                                  \
        (elm)->field.sle_next = save_sle_next_;                           \
    } while (!__atomic_compare_exchange_n(&(head)->slh_first,             \
                 &save_sle_next_, (elm), false,                           \
                 __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));                    \
} while (0)
/* Take the whole list from @src into @dest, leaving @src empty. */
#define QSLIST_MOVE_ATOMIC(dest, src) do {                                \
    (dest)->slh_first = __atomic_exchange_n(&(src)->slh_first, NULL,      \
                                            __ATOMIC_SEQ_CST);            \
} while (0)
#define QSLIST_FIRST_RCU(head) __atomic_load_n(&(head)->slh_first, __ATOMIC_ACQUIRE)
#define QSLIST_REMOVE_HEAD(head, field) do {                              \
    (head)->slh_first = (head)->slh_first->field.sle_next;                \
} while (0)
#define QSLIST_FOREACH(var, head, field) \
    for ((var) = (head)->slh_first; (var); (var) = (var)->field.sle_next)
#define QSLIST_FOREACH_RCU(var, head, field)                              \
    for ((var) = QSLIST_FIRST_RCU(head); (var);                           \
         (var) = __atomic_load_n(&(var)->field.sle_next, __ATOMIC_ACQUIRE))

/* QSIMPLEQ ---------------------------------------------------------- */
#define QSIMPLEQ_HEAD(name, type) \
    struct name { struct type *sqh_first; struct type **sqh_last; }
#define QSIMPLEQ_HEAD_INITIALIZER(head) { NULL, &(head).sqh_first }
#define QSIMPLEQ_ENTRY(type) struct { struct type *sqe_next; }
#define QSIMPLEQ_INIT(head) do {                                          \
    (head)->sqh_first = NULL;                                             \
    (head)->sqh_last = &(head)->sqh_first;                                \
} while (0)
#define QSIMPLEQ_EMPTY(head) ((head)->sqh_first == NULL)
#define QSIMPLEQ_FIRST(head) ((head)->sqh_first)
#define QSIMPLEQ_NEXT(elm, field) ((elm)->field.sqe_next)
#define QSIMPLEQ_INSERT_TAIL(head, elm, field) do {                       \
    (elm)->field.sqe_next = NULL;                                         \
    *(head)->sqh_last = (elm);                                            \
    (head)->sqh_last = &(elm)->field.sqe_next;                            \
} while (0)
#define QSIMPLEQ_INSERT_HEAD(head, elm, field) do {                       \
    if (((elm)->field.sqe_next = (head)->sqh_first) == NULL)              \
        (head)->sqh_last = &(elm)->field.sqe_next;                        \
    (head)->sqh_first = (elm);                                            \
} while (0)
#define QSIMPLEQ_REMOVE_HEAD(head, field) do {                            \
    if (((head)->sqh_first = (head)->sqh_first->field.sqe_next) == NULL)  \
        (head)->sqh_last = &(head)->sqh_first;                            \
} while (0)
/* Put all of @head2 in front of @head1; @head2 becomes empty. */
#define QSIMPLEQ_PREPEND(head1, head2) do {                               \
    if (!QSIMPLEQ_EMPTY(head2)) {                                         \
        *(head2)->sqh_last = (head1)->sqh_first;                          \
        if (QSIMPLEQ_EMPTY(head1)) {                                      \
            (head1)->sqh_last = (head2)->sqh_last;                        \
        }                                                                 \
        (head1)->sqh_first = (head2)->sqh_first;                          \
        QSIMPLEQ_INIT(head2);                                             \
    }                                                                     \
} while (0)
#define QSIMPLEQ_FOREACH(var, head, field) \
    for ((var) = (head)->sqh_first; (var); (var) = (var)->field.sqe_next)

/* QTAILQ ------------------------------------------------------------ */
#define QTAILQ_HEAD(name, type) \
    struct name { struct type *tqh_first; struct type **tqh_last; }
#define QTAILQ_HEAD_INITIALIZER(head) { NULL, &(head).tqh_first }
#define QTAILQ_ENTRY(type) \
    struct { struct type *tqe_next; struct type **tqe_prev; }
#define QTAILQ_INIT(head) do {                                            \
    (head)->tqh_first = NULL;                                             \
    (head)->tqh_last = &(head)->tqh_first;                                \
} while (0)
#define QTAILQ_EMPTY(head) ((head)->tqh_first == NULL)
#define QTAILQ_FIRST(head) ((head)->tqh_first)
#define QTAILQ_NEXT(elm, field) ((elm)->field.tqe_next)
#define QTAILQ_INSERT_TAIL(head, elm, field) do {                         \
    (elm)->field.tqe_next = NULL;                                         \
    (elm)->field.tqe_prev = (head)->tqh_last;                             \
    *(head)->tqh_last = (elm);                                            \
    (head)->tqh_last = &(elm)->field.tqe_next;                            \
} while (0)
#define QTAILQ_REMOVE(head, elm, field) do {                              \
    if ((elm)->field.tqe_next != NULL)                                    \
        (elm)->field.tqe_next->field.tqe_prev = (elm)->field.tqe_prev;    \
    else                                                                  \
        (head)->tqh_last = (elm)->field.tqe_prev;                         \
    *(elm)->field.tqe_prev = (elm)->field.tqe_next;                       \
    (elm)->field.tqe_prev = NULL;                                         \
} while (0)
#define QTAILQ_IN_USE(elm, field) ((elm)->field.tqe_prev != NULL)
#define QTAILQ_FOREACH(var, head, field) \
    for ((var) = (head)->tqh_first; (var); (var) = (var)->field.tqe_next)

#endif

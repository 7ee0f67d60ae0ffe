/* SPDX-License-Identifier: MIT */
/*
 * tests/c/block-harness.h - helpers the block-layer tests share
 * (test-block-race.c, test-block-soak.c, test-mirror.c, ...): the main
 * loop set up, nodes opened, drained sections, failures recorded off the
 * main thread.  Header-only, like stamp.h: every test links harness.o
 * and nothing else.
 */
#ifndef AIOLAB_TESTS_BLOCK_HARNESS_H
#define AIOLAB_TESTS_BLOCK_HARNESS_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <aiolab/aiolab.h>
#include "harness.h"

/* The main loop started and the BQL taken: where a block test begins. */
static inline void block_test_setup(void)
{
    qemu_init_main_loop(&error_abort);
    bql_lock();
}

/* A node opened read-write from the option string printf(@fmt, ...)
 * makes ("driver=file,filename=...,node-name=disk0"); an error aborts. */
static inline BlockDriverState *open_node(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline BlockDriverState *open_node(const char *fmt, ...)
{
    char opts[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(opts, sizeof(opts), fmt, ap);
    va_end(ap);
    ASSERT(n >= 0 && n < (int)sizeof(opts));
    return bdrv_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
}

/* One drained section of @bs (BDRV_DRAIN), or of everything
 * (BDRV_DRAIN_ALL: @bs unused): the two kinds the drain tests run. */
enum drain_type { BDRV_DRAIN_ALL, BDRV_DRAIN };

static inline void do_drain_begin(enum drain_type type, BlockDriverState *bs)
{
    if (type == BDRV_DRAIN_ALL) {
        bdrv_drain_all_begin();
    } else {
        bdrv_drained_begin(bs);
    }
}

static inline void do_drain_end(enum drain_type type, BlockDriverState *bs)
{
    if (type == BDRV_DRAIN_ALL) {
        bdrv_drain_all_end();
    } else {
        bdrv_drained_end(bs);
    }
}

/*
 * What went wrong in a thread that must not ASSERT (a coroutine in an
 * IOThread, whose failure would not name the request): how many times,
 * and the first message, written before the count goes up.  The main
 * loop checks the count (atomic) at the end.
 */
typedef struct TestFailures {
    int64_t count;                  /* atomic */
    char first[200];
} TestFailures;

static inline void test_failures_add(TestFailures *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void test_failures_add(TestFailures *f, const char *fmt, ...)
{
    va_list ap;

    if (__atomic_load_n(&f->count, __ATOMIC_SEQ_CST) == 0) {
        va_start(ap, fmt);
        vsnprintf(f->first, sizeof(f->first), fmt, ap);
        va_end(ap);
    }
    __atomic_fetch_add(&f->count, 1, __ATOMIC_SEQ_CST);
}

#endif

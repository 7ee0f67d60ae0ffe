/* SPDX-License-Identifier: MIT */
/*
 * tests/c/stamp.h - stamped blocks for the block job tests
 * (test-mirror.c, test-block-race.c, test-block-soak.c).
 *
 * Every 4 KiB block a test writes says where it belongs and which
 * version it is: words 0..2 are a magic, the block's offset and a
 * generation number; every other word is a hash of the three.  A reader
 * can then tell "version 7 of block 12" from "version 6", from a block
 * that landed at the wrong offset, from a torn write or from zeroes.
 */
#ifndef AIOLAB_TESTS_STAMP_H
#define AIOLAB_TESTS_STAMP_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "harness.h"

#define STAMP_BLOCK 4096
#define STAMP_MAGIC 0x53544d5042304b21ull       /* "STMPB0K!" */
#define STAMP_ZEROES (-2)                       /* an all-zero block */
#define STAMP_BAD (-1)                          /* anything else */

static inline uint64_t stamp_mix(uint64_t x)
{
    /* splitmix64's finaliser */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline void stamp_fill(void *buf, int64_t offset, int64_t gen)
{
    uint64_t *w = buf;
    size_t i;

    w[0] = STAMP_MAGIC;
    w[1] = offset;
    w[2] = gen;
    for (i = 3; i < STAMP_BLOCK / 8; i++) {
        w[i] = stamp_mix(offset * 131 + gen * 7919 + i);
    }
}

/* The generation of a block read at @offset, STAMP_ZEROES or STAMP_BAD. */
static inline int64_t stamp_gen(const void *buf, int64_t offset)
{
    const uint64_t *w = buf;
    size_t i;

    if (w[0] != STAMP_MAGIC) {
        for (i = 0; i < STAMP_BLOCK / 8; i++) {
            if (w[i]) {
                return STAMP_BAD;
            }
        }
        return STAMP_ZEROES;
    }
    if ((int64_t)w[1] != offset || (int64_t)w[2] < 0) {
        return STAMP_BAD;
    }
    for (i = 3; i < STAMP_BLOCK / 8; i++) {
        if (w[i] != stamp_mix(offset * 131 + w[2] * 7919 + i)) {
            return STAMP_BAD;
        }
    }
    return (int64_t)w[2];
}

/*
 * A file of @size bytes in /tmp, unlinked at once, every block stamped
 * with generation 0 if @stamped (else zeroes).  Returns the fd; its
 * path for filename= is /proc/self/fd/N.
 */
static inline int stamp_make_file(int64_t size, bool stamped)
{
    char path[] = "/tmp/aiolab-job-XXXXXX";
    char buf[STAMP_BLOCK];
    int fd = mkstemp(path);
    int64_t off;

    ASSERT_GE(fd, 0);
    unlink(path);
    ASSERT_EQ(ftruncate(fd, size), 0);
    for (off = 0; stamped && off < size; off += STAMP_BLOCK) {
        stamp_fill(buf, off, 0);
        ASSERT_EQ(pwrite(fd, buf, STAMP_BLOCK, off), STAMP_BLOCK);
    }
    return fd;
}

#endif

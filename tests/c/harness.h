/* SPDX-License-Identifier: MIT */
/*
 * tests/c/harness.h - aiolab's C test harness.
 *
 * Each test case runs in its own forked process under a timeout, so a
 * crash or a deadlock fails that case only.  A case passes by returning,
 * fails on an ASSERT, is skipped with SKIP("why") (exit status 77).
 * A death test passes when the case aborts (or exits non-zero) and its
 * stderr contains the expected text: that is how the debug build's rule
 * messages are checked.
 *
 *     static void test_bh(void) { ...; ASSERT_EQ(n, 1); }
 *     static const TestCase tests[] = {
 *         { "/aio/bh/schedule", test_bh },
 *         { "/aio/death/leak", death_leak, .death = "BH 'cb' leaked" },
 *         { NULL }
 *     };
 *     int main(int argc, char **argv)
 *     {
 *         return harness_main(argc, argv, tests);
 *     }
 *
 * Options: --list, -p PREFIX (run matching cases), --no-fork (in-process,
 * for gdb).  Environment: AIOLAB_TEST_SCALE multiplies iteration counts
 * (make stress sets it), AIOLAB_TEST_TIMEOUT_SCALE multiplies timeouts
 * (sanitizer runs).
 */
#ifndef AIOLAB_TESTS_HARNESS_H
#define AIOLAB_TESTS_HARNESS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct TestCase {
    const char *path;
    void (*fn)(void);
    const char *death;       /* expected stderr substring: a death test */
    int timeout;             /* seconds; 0 means 30 */
    const char *no_tsan;     /* why this case does not run under TSan */
    const char *no_asan;     /* why this case does not run under ASan */
} TestCase;

int harness_main(int argc, char **argv, const TestCase *tests);

/* Iteration count scaled by AIOLAB_TEST_SCALE (default 1). */
long harness_scale(long n);
/* Which sanitizer the test was built with: "asan", "tsan" or NULL. */
const char *harness_sanitizer(void);

void harness_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define ASSERT(cond) do {                                                 \
    if (!(cond)) {                                                        \
        harness_fail(__FILE__, __LINE__, "ASSERT(%s) failed", #cond);     \
    }                                                                     \
} while (0)
#define ASSERT_TRUE(cond)  ASSERT(cond)
#define ASSERT_FALSE(cond) ASSERT(!(cond))

#define ASSERT_CMP_(a, op, b) do {                                        \
    int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                         \
    if (!(a_ op b_)) {                                                    \
        harness_fail(__FILE__, __LINE__,                                  \
                     "ASSERT(%s %s %s) failed: %" PRId64 " vs %" PRId64,  \
                     #a, #op, #b, a_, b_);                                \
    }                                                                     \
} while (0)
#define ASSERT_EQ(a, b) ASSERT_CMP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_CMP_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_CMP_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_CMP_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP_(a, >=, b)
#define ASSERT_PTR_EQ(a, b) do {                                          \
    const void *pa_ = (a), *pb_ = (b);                                    \
    if (pa_ != pb_) {                                                     \
        harness_fail(__FILE__, __LINE__, "ASSERT(%s == %s) failed: %p vs %p", \
                     #a, #b, pa_, pb_);                                   \
    }                                                                     \
} while (0)
#define ASSERT_STR_EQ(a, b) do {                                          \
    const char *sa_ = (a), *sb_ = (b);                                    \
    if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                          \
        harness_fail(__FILE__, __LINE__,                                  \
                     "ASSERT_STR_EQ(%s, %s) failed: \"%s\" vs \"%s\"",    \
                     #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)"); \
    }                                                                     \
} while (0)
#define ASSERT_STR_CONTAINS(hay, needle) do {                             \
    const char *h_ = (hay), *n_ = (needle);                               \
    if (!h_ || !strstr(h_, n_)) {                                         \
        harness_fail(__FILE__, __LINE__,                                  \
                     "ASSERT_STR_CONTAINS(%s, %s) failed: \"%s\"",        \
                     #hay, #needle, h_ ? h_ : "(null)");                  \
    }                                                                     \
} while (0)

#define SKIP(why) do {                                                    \
    printf("# skip: %s\n", (why));                                        \
    fflush(stdout);                                                       \
    exit(77);                                                             \
} while (0)

#endif

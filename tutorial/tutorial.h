/* SPDX-License-Identifier: MIT */
/*
 * tutorial/tutorial.h - the few helpers every tutorial program shares.
 *
 * A tutorial program proves what its chapter claims by printing one line
 * per claim:
 *
 *     check: a BH scheduled three times runs once: ok
 *
 * or, at the first claim that does not hold, a FAILED line (with what was
 * seen, and a hint in exercises) before it exits with status 1:
 *
 *     check: the loop goes idle after EOF: FAILED (hint: ...)
 *
 * tutorial/check.py runs every program and reads these lines.  Timing is
 * printed, never checked: only counts, orders and return values are.
 *
 * Include it first, with quotes ("../tutorial.h"), so that the build line
 * needs no extra -I.
 */
#ifndef AIOLAB_TUTORIAL_H
#define AIOLAB_TUTORIAL_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* container_of: from a member's address to its struct, as in QEMU. */
#ifndef container_of
#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))
#endif

/* CHECK: @cond must hold. */
#define CHECK(claim, cond) \
    check_report((claim), (cond), "false: " #cond)

/* CHECK_HINT: as CHECK, with a hint for whoever sees it fail. */
#define CHECK_HINT(claim, cond, hint) \
    check_report((claim), (cond), "hint: " hint)

/* CHECK_EQ: two integers must be equal; a failure shows both. */
#define CHECK_EQ(claim, got, want) \
    check_eq((claim), (long long)(got), (long long)(want), NULL)

/* CHECK_EQ_HINT: as CHECK_EQ, with a hint. */
#define CHECK_EQ_HINT(claim, got, want, hint) \
    check_eq((claim), (long long)(got), (long long)(want), (hint))

static inline void check_report(const char *claim, bool ok, const char *why)
{
    if (ok) {
        printf("check: %s: ok\n", claim);
        fflush(stdout);
        return;
    }
    printf("check: %s: FAILED (%s)\n", claim, why);
    fflush(stdout);
    exit(1);
}

static inline void check_eq(const char *claim, long long got, long long want,
                            const char *hint)
{
    char why[512];

    if (hint) {
        snprintf(why, sizeof(why), "got %lld, expected %lld; hint: %s",
                 got, want, hint);
    } else {
        snprintf(why, sizeof(why), "got %lld, expected %lld", got, want);
    }
    check_report(claim, got == want, why);
}

/* The calling thread's kernel id (glibc's gettid() needs _GNU_SOURCE). */
static inline int tut_gettid(void)
{
    return (int)syscall(SYS_gettid);
}

/*
 * A @size-byte scratch file at @path (created or emptied), opened for
 * reading and writing: the disk image a chapter's daemon serves.  Prints
 * why and returns NULL when it cannot.
 */
static inline FILE *tut_scratch_image(const char *path, off_t size)
{
    FILE *f = fopen(path, "w+");

    if (f && ftruncate(fileno(f), size) == 0) {
        return f;
    }
    perror(path);
    if (f) {
        fclose(f);
    }
    return NULL;
}

/* CLOCK_MONOTONIC in ns, for the timings a program prints. */
static inline int64_t tut_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * tut_run_self: run this program again as "<program> @mode" in a child
 * process and collect what it wrote to stderr into @err.  For showing an
 * abort without dying of it.  (fork() alone would copy a process whose
 * other threads do not exist in the child: exec gives a clean start.)
 * Returns: the child's wait status.
 */
static inline int tut_run_self(const char *mode, char *err, size_t len)
{
    int pipefd[2], status = 0;
    size_t used = 0;
    ssize_t n;
    pid_t pid;

    if (pipe(pipefd) < 0) {
        perror("pipe");
        exit(1);
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        execl("/proc/self/exe", "tutorial-child", mode, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    for (;;) {
        char scratch[256];
        bool room = used + 1 < len;

        /* Keep reading when @err is full, or the child could block. */
        n = read(pipefd[0], room ? err + used : scratch,
                 room ? len - 1 - used : sizeof(scratch));
        if (n <= 0) {
            break;
        }
        if (room) {
            used += n;
        }
    }
    err[used] = '\0';
    close(pipefd[0]);
    waitpid(pid, &status, 0);
    return status;
}

#endif

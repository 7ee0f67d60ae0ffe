/* SPDX-License-Identifier: MIT */
/* tests/c/harness.c - see harness.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"

void harness_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    exit(1);
}

long harness_scale(long n)
{
    const char *s = getenv("AIOLAB_TEST_SCALE");
    double k = s ? atof(s) : 1.0;

    if (k <= 0) {
        k = 1.0;
    }
    return (long)(n * k) > 0 ? (long)(n * k) : 1;
}

const char *harness_sanitizer(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return "asan";
#elif defined(__SANITIZE_THREAD__)
    return "tsan";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return "asan";
#elif __has_feature(thread_sanitizer)
    return "tsan";
#else
    return NULL;
#endif
#else
    return NULL;
#endif
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Read everything from @fd into a growing buffer (NUL-terminated). */
static char *slurp(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n;

    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += n;
    }
    buf[len] = '\0';
    return buf;
}

enum { PASS, FAIL, SKIPPED };

static int run_one(const TestCase *t, double timeout_scale)
{
    int timeout = (int)((t->timeout ? t->timeout : 30) * timeout_scale);
    int errpipe[2];
    pid_t pid;
    int status;
    char *err;
    int result;

    fflush(stdout);
    fflush(stderr);
    if (pipe(errpipe) < 0) {
        perror("pipe");
        return FAIL;
    }
    pid = fork();
    if (pid == 0) {
        close(errpipe[0]);
        if (t->death) {
            dup2(errpipe[1], 2);
        } else {
            /* Keep stderr visible, but also let the parent see EOF. */
            close(errpipe[1]);
        }
        alarm(timeout);
        t->fn();
        fflush(stdout);
        exit(0);
    }
    close(errpipe[1]);
    err = slurp(errpipe[0]);
    close(errpipe[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }

    if (t->death) {
        bool died = WIFSIGNALED(status) ||
                    (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
                     WEXITSTATUS(status) != 77);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
            printf("# timed out after %d s\n", timeout);
            result = FAIL;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
            result = SKIPPED;
        } else if (!died) {
            printf("# expected an abort with \"%s\", but the case returned\n",
                   t->death);
            result = FAIL;
        } else if (!strstr(err, t->death)) {
            printf("# aborted, but stderr lacks \"%s\"; it was:\n", t->death);
            fputs(err, stdout);
            result = FAIL;
        } else {
            result = PASS;
        }
    } else if (WIFSIGNALED(status)) {
        if (WTERMSIG(status) == SIGALRM) {
            printf("# timed out after %d s\n", timeout);
        } else {
            printf("# killed by signal %d (%s)\n", WTERMSIG(status),
                   strsignal(WTERMSIG(status)));
        }
        result = FAIL;
    } else if (WEXITSTATUS(status) == 77) {
        result = SKIPPED;
    } else {
        result = WEXITSTATUS(status) == 0 ? PASS : FAIL;
    }
    free(err);
    return result;
}

int harness_main(int argc, char **argv, const TestCase *tests)
{
    const char *prefix = NULL;
    const char *san = harness_sanitizer();
    const char *ts = getenv("AIOLAB_TEST_TIMEOUT_SCALE");
    double timeout_scale = ts ? atof(ts) : (san ? 3.0 : 1.0);
    bool no_fork = false;
    int counts[3] = { 0, 0, 0 };
    int i, n = 0;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) {
            for (const TestCase *t = tests; t->path; t++) {
                printf("%s\n", t->path);
            }
            return 0;
        } else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            prefix = argv[++i];
        } else if (!strcmp(argv[i], "--no-fork")) {
            no_fork = true;
        } else {
            fprintf(stderr, "usage: %s [--list] [-p PREFIX] [--no-fork]\n",
                    argv[0]);
            return 2;
        }
    }
    if (timeout_scale <= 0) {
        timeout_scale = 1.0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    for (const TestCase *t = tests; t->path; t++) {
        const char *why = NULL;
        double t0;
        int r;

        if (prefix && strncmp(t->path, prefix, strlen(prefix)) != 0) {
            continue;
        }
        n++;
        if (san && !strcmp(san, "tsan") && t->no_tsan) {
            why = t->no_tsan;
        } else if (san && !strcmp(san, "asan") && t->no_asan) {
            why = t->no_asan;
        }
        if (why) {
            printf("ok %d %s # SKIP %s\n", n, t->path, why);
            counts[SKIPPED]++;
            continue;
        }
        if (no_fork) {
            t->fn();
            printf("ok %d %s\n", n, t->path);
            counts[PASS]++;
            continue;
        }
        t0 = now_s();
        r = run_one(t, timeout_scale);
        counts[r]++;
        printf("%s %d %s (%.2fs)%s\n", r == FAIL ? "not ok" : "ok", n, t->path,
               now_s() - t0, r == SKIPPED ? " # SKIP" : "");
    }
    printf("# %s: %d passed, %d failed, %d skipped\n", argv[0], counts[PASS],
           counts[FAIL], counts[SKIPPED]);
    return counts[FAIL] ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * tools/tool-main.c - the pieces of main() that aiolab-vm and
 * aiolab-storage-daemon share: termination signals delivered to the main
 * loop, and the IOThreads stopped at exit.
 */
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include "tools/tool-main.h"

static int sigfd = -1;
static void (*sig_fn)(void *opaque);
static void *sig_opaque;

static void sigfd_handler(void *opaque)
{
    struct signalfd_siginfo si;

    if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
        sig_fn(sig_opaque);
    }
}

void tool_signals_init(const int *signals, void (*fn)(void *opaque),
                       void *opaque)
{
    sigset_t set;

    sig_fn = fn;
    sig_opaque = opaque;
    sigemptyset(&set);
    for (; *signals; signals++) {
        sigaddset(&set, *signals);
    }
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd >= 0) {
        qemu_set_fd_handler(sigfd, sigfd_handler, NULL, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
}

void tool_signals_cleanup(void)
{
    if (sigfd >= 0) {
        qemu_set_fd_handler(sigfd, NULL, NULL, NULL);
        close(sigfd);
        sigfd = -1;
    }
}

void tool_destroy_iothreads(void)
{
    IOThread *its[64];
    size_t n, i;

    n = aiolab_iothread_list(its, 64);
    for (i = 0; i < n && i < 64; i++) {
        iothread_destroy(its[i]);
    }
}

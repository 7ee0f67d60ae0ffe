/* SPDX-License-Identifier: MIT */
/*
 * util/dump.c - aiolab_dump_state(): what is everyone doing?
 *
 * Called on SIGQUIT (Ctrl-\) when a program hangs.  It only reads: racy
 * snapshots of atomics and lists, trylocks where a lock is needed, so a
 * thread stuck holding a lock cannot make the dump hang too.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <aiolab/aiolab.h>
#include "util/aio-internal.h"
#include "util/check.h"
#include "util/thread.h"

static const char *symbol_name(void *fn, char *buf, size_t len)
{
    Dl_info info;

    if (fn && dladdr(fn, &info) && info.dli_sname) {
        return info.dli_sname;
    }
    snprintf(buf, len, "%p", fn);
    return buf;
}

static void dump_timer(QEMUTimer *ts, void *opaque)
{
    FILE *f = opaque;
    char buf[32];

    fprintf(f, "      timer %s(%p) expires in %lld ns\n",
            symbol_name((void *)ts->cb, buf, sizeof(buf)), ts->opaque,
            (long long)(ts->expire_time -
                        qemu_clock_get_ns(ts->timer_list->type)));
}

static void dump_bh_list(FILE *f, BHList *list)
{
    QEMUBH *bh;
    int n = 0;

    QSLIST_FOREACH_RCU(bh, list, next) {
        unsigned flags = qatomic_read(&bh->flags);
        fprintf(f, "      BH '%s'%s%s%s%s\n", bh->name,
                flags & BH_SCHEDULED ? " scheduled" : "",
                flags & BH_DELETED ? " deleted" : "",
                flags & BH_ONESHOT ? " oneshot" : "",
                flags & BH_IDLE ? " idle" : "");
        if (++n > 50) {
            fprintf(f, "      ...\n");
            break;
        }
    }
}

static void dump_ctx(AioContext *ctx, void *opaque)
{
    FILE *f = opaque;
    AioHandler *node;
    char b1[32], b2[32];

    fprintf(f, "  AioContext '%s' (home tid %d): refcnt %d, notify_me %u, "
            "notified %d, fdmon %s, poll_ns %lld/%lld\n", qatomic_read(&ctx->name),
            ctx->home_tid, qatomic_read(&ctx->refcnt),
            qatomic_read(&ctx->notify_me), qatomic_read(&ctx->notified),
            ctx->fdmon_ops->name, (long long)qatomic_read(&ctx->poll_ns),
            (long long)qatomic_read(&ctx->poll_max_ns));
    dump_bh_list(f, &ctx->bh_list);
    if (pthread_mutex_trylock(&ctx->list_lock.mutex) == 0) {
        QLIST_FOREACH(node, &ctx->aio_handlers, node) {
            if (aio_handler_is_deleted(node) ||
                node->opaque == &ctx->notifier) {
                continue;
            }
            fprintf(f, "      fd %d: read=%s write=%s%s\n", node->pfd.fd,
                    node->io_read ? symbol_name((void *)node->io_read, b1,
                                                sizeof(b1)) : "-",
                    node->io_write ? symbol_name((void *)node->io_write, b2,
                                                 sizeof(b2)) : "-",
                    node->io_poll ? " (pollable)" : "");
        }
        pthread_mutex_unlock(&ctx->list_lock.mutex);
    }
    timerlistgroup_foreach(&ctx->tlg, dump_timer, f);
}

void aiolab_dump_state(FILE *f)
{
    AiolabThread *t;
    AiolabCoroutineInfo cos[64];
    size_t n, i;
    int holder = aiolab_bql_holder_tid();

    if (!f) {
        f = stderr;
    }
    fprintf(f, "=== aiolab state (pid %d) ===\n", getpid());
    if (holder) {
        fprintf(f, "BQL: held by tid %d\n", holder);
    } else {
        fprintf(f, "BQL: free\n");
    }
    fprintf(f, "Threads:\n");
    /* No registry lock: threads are only ever added at the head. */
    for (t = aiolab_thread_registry_first(); t; t = t->next) {
        const char *cond = qatomic_read(&t->wait_cond);
        if (holder && t->tid == holder) {
            fprintf(f, "  [BQL holder, for %lld us]",
                    (long long)((aiolab_now_ns() -
                                 qatomic_read(&t->bql_locked_at_ns)) / 1000));
        }
        fprintf(f, "  %-16s tid %-7d%s", t->name, t->tid,
                qatomic_read(&t->exited) ? " (exited)" : "");
        if (cond) {
            AioContext *wctx = qatomic_read(&t->wait_ctx);
            fprintf(f, " AIO_WAIT_WHILE(%s) in %s() at %s:%d polling '%s'",
                    cond, qatomic_read(&t->wait_func),
                    qatomic_read(&t->wait_file), qatomic_read(&t->wait_line),
                    wctx ? qatomic_read(&wctx->name) : "?");
        }
        fputc('\n', f);
    }
    fprintf(f, "Waiters in AIO_WAIT_WHILE: %u\n", aiolab_aio_wait_num_waiters());
    fprintf(f, "Contexts:\n");
    aio_context_registry_foreach(dump_ctx, f);
    if (main_loop_tlg.tl[0]) {
        fprintf(f, "  main-loop timers (timer_new_ns/us/ms):\n");
        timerlistgroup_foreach(&main_loop_tlg, dump_timer, f);
    }
    n = aiolab_coroutine_list(cos, ARRAY_SIZE(cos));
    fprintf(f, "Coroutines: %zu live\n", n);
    for (i = 0; i < n && i < ARRAY_SIZE(cos); i++) {
        char buf[32];
        fprintf(f, "  co %p %-9s entry %s ctx %s%s%s\n", cos[i].co,
                cos[i].state, symbol_name(cos[i].entry, buf, sizeof(buf)),
                cos[i].ctx_name ? cos[i].ctx_name : "-",
                cos[i].scheduled_by ? " scheduled by " : "",
                cos[i].scheduled_by ? cos[i].scheduled_by : "");
    }
    fprintf(f, "=== end of aiolab state ===\n");
    fflush(f);
}

void aiolab_dump_state_fd(int fd)
{
    int copy = dup(fd);
    FILE *f = copy >= 0 ? fdopen(copy, "w") : NULL;

    if (!f) {
        if (copy >= 0) {
            close(copy);
        }
        return;
    }
    aiolab_dump_state(f);
    fclose(f);
}

static void sigquit_handler(int sig)
{
    aiolab_dump_state(stderr);
}

void aiolab_install_sigquit_handler(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sigquit_handler;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGQUIT, &sa, NULL);
}

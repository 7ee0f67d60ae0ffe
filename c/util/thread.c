/* SPDX-License-Identifier: MIT */
/*
 * util/thread.c - the registry of threads that use aiolab (see thread.h),
 * thread creation with names, and the cheap clock.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <stdint.h>
#include <aiolab/trace.h>
#include "util/atomic.h"
#include "util/thread.h"
#include "util/mem.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static AiolabThread *registry_head;
static __thread AiolabThread *thread_self AIOLAB_TLS_IE;
static __thread bool timer_slack_set;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

int aiolab_gettid(void)
{
    return (int)syscall(SYS_gettid);
}

/* Mark the record exited when the thread ends (it stays for exports). */
static void thread_exit_destructor(void *opaque)
{
    AiolabThread *t = opaque;

    qatomic_set(&t->exited, true);
}

static void exit_key_init(void)
{
    pthread_key_create(&exit_key, thread_exit_destructor);
}

AiolabThread *aiolab_thread_self(void)
{
    AiolabThread *t = thread_self;

    if (likely(t)) {
        return t;
    }
    t = aiolab_xcalloc(1, sizeof(*t));
    t->tid = aiolab_gettid();
    if (pthread_getname_np(pthread_self(), t->name, sizeof(t->name)) != 0) {
        snprintf(t->name, sizeof(t->name), "thread-%d", t->tid);
    }
    pthread_once(&exit_key_once, exit_key_init);
    pthread_setspecific(exit_key, t);
    pthread_mutex_lock(&registry_lock);
    t->next = registry_head;
    registry_head = t;
    pthread_mutex_unlock(&registry_lock);
    thread_self = t;
    return t;
}

void aiolab_thread_registry_lock(void)
{
    pthread_mutex_lock(&registry_lock);
}

void aiolab_thread_registry_unlock(void)
{
    pthread_mutex_unlock(&registry_lock);
}

AiolabThread *aiolab_thread_registry_first(void)
{
    return registry_head;
}

void aiolab_thread_set_name(const char *name)
{
    AiolabThread *t = aiolab_thread_self();
    char kname[16];

    pthread_mutex_lock(&registry_lock);
    snprintf(t->name, sizeof(t->name), "%s", name);
    pthread_mutex_unlock(&registry_lock);
    /* The kernel keeps 15 bytes. */
    snprintf(kname, sizeof(kname), "%s", name);
    pthread_setname_np(pthread_self(), kname);
}

void aiolab_thread_set_timer_slack(void)
{
    if (!timer_slack_set) {
        /* 1 ns: without it a 1 ms timer sleeps ~50 us too long. */
        prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);
        timer_slack_set = true;
    }
}

typedef struct ThreadStart {
    void *(*fn)(void *);
    void *arg;
    char name[32];
} ThreadStart;

static void *thread_trampoline(void *opaque)
{
    ThreadStart ts = *(ThreadStart *)opaque;

    free(opaque);
    aiolab_thread_set_name(ts.name);
    aiolab_thread_set_timer_slack();
    return ts.fn(ts.arg);
}

int aiolab_thread_create(pthread_t *thread, const char *name,
                         void *(*fn)(void *), void *arg)
{
    ThreadStart *ts = aiolab_xcalloc(1, sizeof(*ts));
    sigset_t set, old;
    int ret;

    ts->fn = fn;
    ts->arg = arg;
    snprintf(ts->name, sizeof(ts->name), "%s", name);
    /*
     * Block the signals the main thread handles, so that they are not
     * delivered to a worker (as QEMU's qemu_thread_create does); the new
     * thread inherits the mask.
     */
    sigemptyset(&set);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    ret = pthread_create(thread, NULL, thread_trampoline, ts);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret) {
        free(ts);
    }
    return ret;
}

typedef struct Interned {
    struct Interned *next;
    char s[];
} Interned;

static Interned *interned;
static pthread_mutex_t intern_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * A small cache in front of the list, keyed by the caller's pointer: C
 * callers pass string literals, so the same pointer comes back every time
 * and a hit costs a load and a strcmp.  The strcmp matters: a caller's
 * temporary buffer may be reused for another string.
 */
#define INTERN_CACHE_SIZE 256
static struct {
    const char *key;
    const char *interned;
} intern_cache[INTERN_CACHE_SIZE];

static const char *intern_slow(const char *s)
{
    Interned *i;
    size_t len = strlen(s);

    pthread_mutex_lock(&intern_lock);
    for (i = interned; i; i = i->next) {
        if (!strcmp(i->s, s)) {
            break;
        }
    }
    if (!i) {
        i = aiolab_xmalloc(sizeof(*i) + len + 1);
        memcpy(i->s, s, len + 1);
        i->next = interned;
        interned = i;
    }
    pthread_mutex_unlock(&intern_lock);
    return i->s;
}

const char *aiolab_intern(const char *s)
{
    unsigned slot = ((uintptr_t)s >> 3) % INTERN_CACHE_SIZE;
    const char *key = qatomic_load_acquire(&intern_cache[slot].key);
    const char *hit = qatomic_load_acquire(&intern_cache[slot].interned);
    const char *r;

    if (key == s && hit && !strcmp(hit, s)) {
        return hit;
    }
    r = intern_slow(s);
    /* Racy update of a cache line: readers check with strcmp anyway. */
    qatomic_store_release(&intern_cache[slot].interned, NULL);
    qatomic_store_release(&intern_cache[slot].key, s);
    qatomic_store_release(&intern_cache[slot].interned, r);
    return r;
}

const char *aiolab_intern_string(const char *s)
{
    return s ? aiolab_intern(s) : NULL;
}

int64_t aiolab_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

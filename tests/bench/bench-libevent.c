/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/bench-libevent.c - libevent 2.1 peers.  Built by run.py:
 *
 *     cc -O2 -g -pthread tests/bench/bench-libevent.c -o bench-libevent \
 *        -levent_pthreads -levent
 *
 * Usage: bench-libevent ROW [cpu=N] [cpu2=N] [quick=1]
 *   bh        event_active + event_base_loop(EVLOOP_ONCE|EVLOOP_NONBLOCK)
 *   wakeup    event_active from another thread (evthread_use_pthreads)
 *   pingpong  two event_bases, each activating the other's event
 *   timer     1 ms evtimer, EVENT_BASE_FLAG_PRECISE_TIMER (timerfd)
 *   fd        eventfd write + EVLOOP_ONCE|EVLOOP_NONBLOCK, handler reads
 */
#include "bench.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <sys/eventfd.h>

static volatile uint64_t counter;

/* ---- bh ---------------------------------------------------------------- */

struct bh {
    struct event_base *base;
    struct event *ev;
};

static void count_cb(evutil_socket_t fd, short what, void *arg)
{
    counter++;
}

static void bh_batch(void *arg, uint64_t n)
{
    struct bh *b = arg;

    for (uint64_t i = 0; i < n; i++) {
        event_active(b->ev, EV_READ, 0);
        event_base_loop(b->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
}

static void row_bh(void)
{
    struct bh b;

    pin_self(opt_cpu());
    b.base = event_base_new();
    b.ev = event_new(b.base, -1, 0, count_cb, NULL);
    json_begin("libevent");
    json_str("backend", event_base_get_method(b.base));
    json_throughput(bh_batch, &b, 1);
    json_end();
    bench_check_ran(counter, "callback");
    event_free(b.ev);
    event_base_free(b.base);
}

/* ---- loop threads (wakeup, pingpong) ------------------------------------- */

struct loop {
    struct event_base *base;
    struct event *ev;          /* activated by the other side */
    struct event *stop_ev;
    pthread_t th;
    int cpu;
    sem_t ready;
};

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(((struct loop *)arg)->base);
}

static void *loop_thread(void *arg)
{
    struct loop *l = arg;

    pin_self(l->cpu);
    sem_post(&l->ready);
    event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void loop_init(struct loop *l, int cpu, event_callback_fn cb, void *opaque)
{
    l->base = event_base_new();
    l->ev = event_new(l->base, -1, 0, cb, opaque);
    l->stop_ev = event_new(l->base, -1, 0, stop_cb, l);
    l->cpu = cpu;
    sem_init(&l->ready, 0, 0);
}

static void loop_start(struct loop *l)
{
    pthread_create(&l->th, NULL, loop_thread, l);
    sem_wait(&l->ready);
}

static void loop_stop(struct loop *l)
{
    event_active(l->stop_ev, EV_READ, 0);
    pthread_join(l->th, NULL);
    event_free(l->ev);
    event_free(l->stop_ev);
    event_base_free(l->base);
}

/* ---- wakeup ---------------------------------------------------------------- */

static int done_flag;

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    __atomic_store_n(&done_flag, 1, __ATOMIC_RELEASE);
}

static void row_wakeup(void)
{
    int64_t gap = opt_int("gap_ns", 0);
    size_t n = wakeup_samples(gap), warm = n / 10;
    int64_t *v = samples_alloc(n);
    struct loop l;

    evthread_use_pthreads();
    pin_self(opt_cpu2());
    loop_init(&l, opt_cpu(), wake_cb, NULL);
    loop_start(&l);
    usleep(10000);
    for (size_t i = 0; i < n + warm; i++) {
        int64_t t0 = now_ns();

        __atomic_store_n(&done_flag, 0, __ATOMIC_RELAXED);
        event_active(l.ev, EV_READ, 0);
        while (!__atomic_load_n(&done_flag, __ATOMIC_ACQUIRE)) {
            cpu_relax();
        }
        if (i >= warm) {
            v[i - warm] = now_ns() - t0;
        }
        gap_wait(gap);
    }
    loop_stop(&l);
    json_begin("libevent");
    json_latency(v, n);
    json_end();
}

/* ---- pingpong ------------------------------------------------------------ */

static struct loop pp[2];
static BenchPingPong rtt;

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
    if (pingpong_ping(&rtt)) {
        event_active(pp[1].ev, EV_READ, 0);
    }
}

static void pong_cb(evutil_socket_t fd, short what, void *arg)
{
    event_active(pp[0].ev, EV_READ, 0);
}

static void row_pingpong(void)
{
    pingpong_init(&rtt);
    evthread_use_pthreads();
    pin_self(opt_cpu2());
    loop_init(&pp[0], opt_cpu(), ping_cb, NULL);
    loop_init(&pp[1], opt_cpu(), pong_cb, NULL);
    loop_start(&pp[0]);
    loop_start(&pp[1]);
    usleep(10000);
    event_active(pp[0].ev, EV_READ, 0);
    pingpong_wait(&rtt);
    loop_stop(&pp[0]);
    loop_stop(&pp[1]);
    json_begin("libevent");
    json_latency(rtt.v, rtt.n);
    json_end();
}

/* ---- timer ------------------------------------------------------------------ */

static struct event *tm_ev;
static struct event_base *tm_base;
static int64_t tm_deadline;
static int64_t *tm_v;
static size_t tm_n, tm_warm = 5, tm_i;
static const struct timeval one_ms = { 0, 1000 };

static void tm_arm(void)
{
    event_base_update_cache_time(tm_base);
    tm_deadline = now_ns() + 1000000;
    event_add(tm_ev, &one_ms);
}

static void tm_cb(evutil_socket_t fd, short what, void *arg)
{
    int64_t late = now_ns() - tm_deadline;

    if (tm_i >= tm_warm) {
        tm_v[tm_i - tm_warm] = late;
    }
    if (++tm_i < tm_n + tm_warm) {
        tm_arm();
    }
}

static void row_timer(void)
{
    struct event_config *cfg = event_config_new();

    pin_self(opt_cpu());
    tm_n = bench_quick() ? 100 : 1000;
    tm_v = samples_alloc(tm_n);
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    tm_base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    tm_ev = evtimer_new(tm_base, tm_cb, NULL);
    tm_arm();
    event_base_dispatch(tm_base);      /* returns when no event is pending */
    json_begin("libevent (precise timer)");
    json_str("backend", event_base_get_method(tm_base));
    json_latency(tm_v, tm_n);
    json_end();
}

/* ---- fd ------------------------------------------------------------------ */

struct fdb {
    struct event_base *base;
    int efd;
};

static void fd_cb(evutil_socket_t fd, short what, void *arg)
{
    if (bench_eventfd_read(fd)) {
        counter++;
    }
}

static void fd_batch(void *arg, uint64_t n)
{
    struct fdb *f = arg;

    for (uint64_t i = 0; i < n; i++) {
        bench_eventfd_write(f->efd);
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
}

static void row_fd(void)
{
    struct fdb f;
    struct event *ev;

    pin_self(opt_cpu());
    f.base = event_base_new();
    f.efd = bench_eventfd();
    ev = event_new(f.base, f.efd, EV_READ | EV_PERSIST, fd_cb, NULL);
    event_add(ev, NULL);
    json_begin("libevent");
    json_str("backend", event_base_get_method(f.base));
    json_throughput(fd_batch, &f, 1);
    json_end();
    bench_check_ran(counter, "handler");
}

static const BenchRow rows[] = {
    BENCH_LOOP_ROWS,
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    bench_init(argc, argv);
    bench_run_row(rows);
    return 0;
}

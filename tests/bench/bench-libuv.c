/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/bench-libuv.c - libuv peers.  Built by run.py:
 *
 *     cc -O2 -g -pthread tests/bench/bench-libuv.c -o bench-libuv -luv
 *
 * Usage: bench-libuv ROW [cpu=N] [cpu2=N] [quick=1]
 *   bh        uv_idle_start + uv_run(UV_RUN_NOWAIT); the callback stops it
 *   wakeup    uv_async_send from another thread
 *   pingpong  two loops, each uv_async_send-ing the other
 *   timer     uv_timer_start(1 ms) (libuv's clock and timeouts are in ms)
 *   fd        uv_poll on an eventfd, uv_run(UV_RUN_NOWAIT) per write
 */
#include "bench.h"

#include <sys/eventfd.h>
#include <uv.h>

static volatile uint64_t counter;

/* ---- bh ---------------------------------------------------------------- */

static void idle_cb(uv_idle_t *h)
{
    counter++;
    uv_idle_stop(h);
}

static uv_idle_t bh_idle;

static void bh_batch(void *arg, uint64_t n)
{
    uv_loop_t *loop = arg;

    for (uint64_t i = 0; i < n; i++) {
        uv_idle_start(&bh_idle, idle_cb);
        uv_run(loop, UV_RUN_NOWAIT);
    }
}

static void row_bh(void)
{
    uv_loop_t loop;

    pin_self(opt_cpu());
    uv_loop_init(&loop);
    uv_idle_init(&loop, &bh_idle);
    json_begin("libuv (uv_idle)");
    json_throughput(bh_batch, &loop, 1);
    json_end();
    bench_check_ran(counter, "callback");
}

/* ---- loop threads ---------------------------------------------------------- */

typedef struct {
    uv_loop_t loop;
    uv_async_t async;       /* the work door */
    uv_async_t stop;
    uv_thread_t th;
    int cpu;
    sem_t ready;
} Loop;

static void stop_cb(uv_async_t *h)
{
    Loop *l = h->data;

    uv_close((uv_handle_t *)&l->async, NULL);
    uv_close((uv_handle_t *)&l->stop, NULL);
}

static void loop_thread(void *arg)
{
    Loop *l = arg;

    pin_self(l->cpu);
    sem_post(&l->ready);
    uv_run(&l->loop, UV_RUN_DEFAULT);
}

static void loop_start(Loop *l, int cpu, uv_async_cb cb)
{
    uv_loop_init(&l->loop);
    uv_async_init(&l->loop, &l->async, cb);
    uv_async_init(&l->loop, &l->stop, stop_cb);
    l->stop.data = l;
    l->cpu = cpu;
    sem_init(&l->ready, 0, 0);
    uv_thread_create(&l->th, loop_thread, l);
    sem_wait(&l->ready);
}

static void loop_stop(Loop *l)
{
    uv_async_send(&l->stop);
    uv_thread_join(&l->th);
    uv_loop_close(&l->loop);
}

/* ---- wakeup ---------------------------------------------------------------- */

static int done_flag;

static void wake_cb(uv_async_t *h)
{
    __atomic_store_n(&done_flag, 1, __ATOMIC_RELEASE);
}

static void row_wakeup(void)
{
    int64_t gap = opt_int("gap_ns", 0);
    size_t n = wakeup_samples(gap), warm = n / 10;
    int64_t *v = samples_alloc(n);
    static Loop l;

    pin_self(opt_cpu2());
    loop_start(&l, opt_cpu(), wake_cb);
    usleep(10000);
    for (size_t i = 0; i < n + warm; i++) {
        int64_t t0 = now_ns();

        __atomic_store_n(&done_flag, 0, __ATOMIC_RELAXED);
        uv_async_send(&l.async);
        while (!__atomic_load_n(&done_flag, __ATOMIC_ACQUIRE)) {
            cpu_relax();
        }
        if (i >= warm) {
            v[i - warm] = now_ns() - t0;
        }
        gap_wait(gap);
    }
    loop_stop(&l);
    json_begin("libuv (uv_async_send)");
    json_latency(v, n);
    json_end();
}

/* ---- pingpong ------------------------------------------------------------ */

static Loop pp[2];
static BenchPingPong rtt;

static void ping_cb(uv_async_t *h)
{
    if (pingpong_ping(&rtt)) {
        uv_async_send(&pp[1].async);
    }
}

static void pong_cb(uv_async_t *h)
{
    uv_async_send(&pp[0].async);
}

static void row_pingpong(void)
{
    pingpong_init(&rtt);
    pin_self(opt_cpu2());
    loop_start(&pp[0], opt_cpu(), ping_cb);
    loop_start(&pp[1], opt_cpu(), pong_cb);
    usleep(10000);
    uv_async_send(&pp[0].async);
    pingpong_wait(&rtt);
    loop_stop(&pp[0]);
    loop_stop(&pp[1]);
    json_begin("libuv (uv_async_send)");
    json_latency(rtt.v, rtt.n);
    json_end();
}

/* ---- timer ------------------------------------------------------------------ */

static uv_timer_t tm;
static int64_t tm_deadline;
static int64_t *tm_v;
static size_t tm_n, tm_warm = 5, tm_i;

static void tm_cb(uv_timer_t *h);

static void tm_arm(void)
{
    uv_update_time(tm.loop);
    tm_deadline = now_ns() + 1000000;
    uv_timer_start(&tm, tm_cb, 1, 0);
}

static void tm_cb(uv_timer_t *h)
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
    uv_loop_t loop;

    pin_self(opt_cpu());
    tm_n = bench_quick() ? 100 : 1000;
    tm_v = samples_alloc(tm_n);
    uv_loop_init(&loop);
    uv_timer_init(&loop, &tm);
    uv_update_time(&loop);
    tm_deadline = now_ns() + 1000000;
    uv_timer_start(&tm, tm_cb, 1, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    json_begin("libuv (uv_timer, ms)");
    json_latency(tm_v, tm_n);
    json_end();
}

/* ---- fd ------------------------------------------------------------------ */

static int fd_efd;

static void fd_cb(uv_poll_t *h, int status, int events)
{
    if (bench_eventfd_read(fd_efd)) {
        counter++;
    }
}

static void fd_batch(void *arg, uint64_t n)
{
    uv_loop_t *loop = arg;

    for (uint64_t i = 0; i < n; i++) {
        bench_eventfd_write(fd_efd);
        uv_run(loop, UV_RUN_NOWAIT);
    }
}

static void row_fd(void)
{
    uv_loop_t loop;
    uv_poll_t p;

    pin_self(opt_cpu());
    uv_loop_init(&loop);
    fd_efd = bench_eventfd();
    uv_poll_init(&loop, &p, fd_efd);
    uv_poll_start(&p, UV_READABLE, fd_cb);
    json_begin("libuv (uv_poll)");
    json_throughput(fd_batch, &loop, 1);
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

/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/bench-glib.c - GLib main-loop peers.  Built by run.py:
 *
 *     cc -O2 -g -pthread tests/bench/bench-glib.c -o bench-glib \
 *        $(pkg-config --cflags --libs glib-2.0)
 *
 * Usage: bench-glib ROW [variant=...] [cpu=N] [cpu2=N] [quick=1]
 *   bh variant=idle       g_idle_add + g_main_context_iteration(FALSE)
 *   bh variant=readytime  a persistent GSource made ready with
 *                         g_source_set_ready_time(src, 0), one iteration each
 *   wakeup                g_main_context_invoke into another thread's context
 *   pingpong              two contexts, each arming the other's ready-time
 *                         source (g_source_set_ready_time from another thread)
 *   timer                 a ready-time source 1 ms ahead (GLib rounds its
 *                         poll timeout up to whole ms)
 *   fd                    g_unix_fd_add on an eventfd, one iteration each
 */
#include "bench.h"

#include <glib.h>
#include <glib-unix.h>
#include <sys/eventfd.h>

static volatile uint64_t counter;

/*
 * A source with no prepare/check of its own: it dispatches when its ready
 * time (set to 0 = "now") has passed, and disarms itself.
 */
typedef struct {
    GSource src;
    void (*fn)(void *);
    void *opaque;
} ReadySource;

static gboolean ready_dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
    ReadySource *r = (ReadySource *)s;

    g_source_set_ready_time(s, -1);
    r->fn(r->opaque);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs ready_funcs = { .dispatch = ready_dispatch };

static GSource *ready_source_new(GMainContext *ctx, void (*fn)(void *),
                                 void *opaque)
{
    ReadySource *r = (ReadySource *)g_source_new(&ready_funcs,
                                                 sizeof(ReadySource));

    r->fn = fn;
    r->opaque = opaque;
    g_source_set_ready_time(&r->src, -1);
    g_source_attach(&r->src, ctx);
    return &r->src;
}

static void count_fn(void *opaque)
{
    counter++;
}

/* ---- bh ---------------------------------------------------------------- */

static gboolean idle_cb(gpointer data)
{
    counter++;
    return G_SOURCE_REMOVE;
}

static void idle_batch(void *arg, uint64_t n)
{
    GMainContext *ctx = arg;

    for (uint64_t i = 0; i < n; i++) {
        GSource *s = g_idle_source_new();

        g_source_set_callback(s, idle_cb, NULL, NULL);
        g_source_attach(s, ctx);
        g_source_unref(s);
        g_main_context_iteration(ctx, FALSE);
    }
}

static GSource *bh_src;

static void ready_batch(void *arg, uint64_t n)
{
    GMainContext *ctx = arg;

    for (uint64_t i = 0; i < n; i++) {
        g_source_set_ready_time(bh_src, 0);
        g_main_context_iteration(ctx, FALSE);
    }
}

static void row_bh(void)
{
    bool idle = !strcmp(opt_str("variant", "idle"), "idle");
    GMainContext *ctx = g_main_context_new();

    pin_self(opt_cpu());
    g_main_context_push_thread_default(ctx);
    if (idle) {
        json_begin("GLib (g_idle_add)");
        json_throughput(idle_batch, ctx, 1);
    } else {
        bh_src = ready_source_new(ctx, count_fn, NULL);
        json_begin("GLib (ready-time source)");
        json_throughput(ready_batch, ctx, 1);
    }
    json_end();
    bench_check_ran(counter, "callback");
}

/* ---- loop threads ---------------------------------------------------------- */

typedef struct {
    GMainContext *ctx;
    GMainLoop *loop;
    GThread *th;
    int cpu;
    sem_t ready;
} Loop;

static gboolean signal_ready(gpointer data)
{
    sem_post(&((Loop *)data)->ready);
    return G_SOURCE_REMOVE;
}

static gpointer loop_thread(gpointer data)
{
    Loop *l = data;

    pin_self(l->cpu);
    g_main_context_push_thread_default(l->ctx);
    g_main_context_invoke(l->ctx, signal_ready, l);
    g_main_loop_run(l->loop);
    g_main_context_pop_thread_default(l->ctx);
    return NULL;
}

static void loop_start(Loop *l, int cpu)
{
    l->ctx = g_main_context_new();
    l->loop = g_main_loop_new(l->ctx, FALSE);
    l->cpu = cpu;
    sem_init(&l->ready, 0, 0);
    l->th = g_thread_new("loop", loop_thread, l);
    sem_wait(&l->ready);
}

static gboolean quit_cb(gpointer data)
{
    g_main_loop_quit(((Loop *)data)->loop);
    return G_SOURCE_REMOVE;
}

static void loop_stop(Loop *l)
{
    g_main_context_invoke(l->ctx, quit_cb, l);
    g_thread_join(l->th);
}

/* ---- wakeup ---------------------------------------------------------------- */

static int done_flag;

static gboolean wake_cb(gpointer data)
{
    __atomic_store_n(&done_flag, 1, __ATOMIC_RELEASE);
    return G_SOURCE_REMOVE;
}

static void row_wakeup(void)
{
    int64_t gap = opt_int("gap_ns", 0);
    size_t n = wakeup_samples(gap), warm = n / 10;
    int64_t *v = samples_alloc(n);
    Loop l;

    pin_self(opt_cpu2());
    loop_start(&l, opt_cpu());
    usleep(10000);
    for (size_t i = 0; i < n + warm; i++) {
        int64_t t0 = now_ns();

        __atomic_store_n(&done_flag, 0, __ATOMIC_RELAXED);
        g_main_context_invoke(l.ctx, wake_cb, NULL);
        while (!__atomic_load_n(&done_flag, __ATOMIC_ACQUIRE)) {
            cpu_relax();
        }
        if (i >= warm) {
            v[i - warm] = now_ns() - t0;
        }
        gap_wait(gap);
    }
    loop_stop(&l);
    json_begin("GLib (g_main_context_invoke)");
    json_latency(v, n);
    json_end();
}

/* ---- pingpong ---------------------------------------------------------------- */

static Loop pp[2];
static GSource *pp_src[2];
static BenchPingPong rtt;

static void ping_fn(void *opaque)
{
    if (pingpong_ping(&rtt)) {
        g_source_set_ready_time(pp_src[1], 0);
    }
}

static void pong_fn(void *opaque)
{
    g_source_set_ready_time(pp_src[0], 0);
}

static void row_pingpong(void)
{
    pingpong_init(&rtt);
    pin_self(opt_cpu2());
    loop_start(&pp[0], opt_cpu());
    loop_start(&pp[1], opt_cpu());
    pp_src[0] = ready_source_new(pp[0].ctx, ping_fn, NULL);
    pp_src[1] = ready_source_new(pp[1].ctx, pong_fn, NULL);
    usleep(10000);
    g_source_set_ready_time(pp_src[0], 0);
    pingpong_wait(&rtt);
    loop_stop(&pp[0]);
    loop_stop(&pp[1]);
    json_begin("GLib (ready-time source)");
    json_latency(rtt.v, rtt.n);
    json_end();
}

/* ---- timer ----------------------------------------------------------------- */

static GSource *tm_src;
static int64_t tm_deadline;
static int64_t *tm_v;
static size_t tm_n, tm_warm = 5, tm_i;
static GMainLoop *tm_loop;

static void tm_arm(void)
{
    /* GLib's ready time is in g_get_monotonic_time() us (CLOCK_MONOTONIC). */
    tm_deadline = now_ns() + 1000000;
    g_source_set_ready_time(tm_src, (tm_deadline + 999) / 1000);
}

static void tm_fn(void *opaque)
{
    int64_t late = now_ns() - tm_deadline;

    if (tm_i >= tm_warm) {
        tm_v[tm_i - tm_warm] = late;
    }
    if (++tm_i < tm_n + tm_warm) {
        tm_arm();
    } else {
        g_main_loop_quit(tm_loop);
    }
}

static void row_timer(void)
{
    GMainContext *ctx = g_main_context_new();

    pin_self(opt_cpu());
    tm_n = bench_quick() ? 100 : 1000;
    tm_v = samples_alloc(tm_n);
    g_main_context_push_thread_default(ctx);
    tm_loop = g_main_loop_new(ctx, FALSE);
    tm_src = ready_source_new(ctx, tm_fn, NULL);
    tm_arm();
    g_main_loop_run(tm_loop);
    json_begin("GLib (ready-time source)");
    json_latency(tm_v, tm_n);
    json_end();
}

/* ---- fd ------------------------------------------------------------------- */

static gboolean fd_cb(gint fd, GIOCondition cond, gpointer data)
{
    if (bench_eventfd_read(fd)) {
        counter++;
    }
    return G_SOURCE_CONTINUE;
}

static int fd_efd;

static void fd_batch(void *arg, uint64_t n)
{
    GMainContext *ctx = arg;

    for (uint64_t i = 0; i < n; i++) {
        bench_eventfd_write(fd_efd);
        g_main_context_iteration(ctx, FALSE);
    }
}

static void row_fd(void)
{
    GMainContext *ctx = g_main_context_new();
    GSource *s;

    pin_self(opt_cpu());
    g_main_context_push_thread_default(ctx);
    fd_efd = bench_eventfd();
    s = g_unix_fd_source_new(fd_efd, G_IO_IN);
    g_source_set_callback(s, (GSourceFunc)(void (*)(void))fd_cb, NULL, NULL);
    g_source_attach(s, ctx);
    json_begin("GLib (g_unix_fd_add)");
    json_throughput(fd_batch, ctx, 1);
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

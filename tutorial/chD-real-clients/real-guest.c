/* cc -Ic/include tutorial/chD-real-clients/real-guest.c -o build/real-guest -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chD-real-clients/real-guest.c - the toy machine's virtio-blk device,
 * unchanged, serving a real Linux kernel.
 *
 * This program is a storage daemon: a vhost-user-blk export of a 4 MiB
 * file, its queue in IOThread io0.  It starts tests/vhost/boot.py, which
 * boots Debian's cloud kernel under real QEMU (TCG) with a
 * vhost-user-blk-pci device on our socket; the guest's init reads the
 * whole disk, writes from two writers, flushes, reads back and discards,
 * and boot.py gives its verdict.  Meanwhile every request Linux's
 * virtio_blk driver sends is handled here.  Then the trace tells the
 * story of one of them, thread by thread.
 *
 * No QEMU, no kernel, no busybox on this machine: the program says why
 * and exits 77 (check.py: skipped).  A boot under TCG on a busy machine
 * can take a minute, and QEMU itself is killed at 150 s, so:
 * check.py timeout: 180 s.
 */
#include "../tutorial.h"
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <aiolab/aiolab.h>
#include <aiolab/export.h>

#define SOCK     "real-guest.sock"
#define IMAGE    "real-guest.img"
#define DISK     (4 << 20)
#define MAXREC   (1 << 17)

extern char **environ;

static struct {
    pid_t pid;
    int status;
    bool done;                  /* atomic */
} child;

static void *waiter(void *opaque)
{
    waitpid(child.pid, &child.status, 0);
    __atomic_store_n(&child.done, true, __ATOMIC_RELEASE);
    qemu_notify_event();        /* wake the main loop */
    return NULL;
}

/* The repository: the first directory above the current one that has
 * tests/vhost/boot.py (check.py runs us in build/tutorial/...). */
static bool find_boot_py(char *path, size_t len)
{
    char dir[PATH_MAX];

    if (!getcwd(dir, sizeof(dir))) {
        return false;
    }
    for (;;) {
        char *slash;

        snprintf(path, len, "%s/tests/vhost/boot.py", dir);
        if (access(path, R_OK) == 0) {
            return true;
        }
        slash = strrchr(dir, '/');
        if (!slash || slash == dir) {
            return false;
        }
        *slash = '\0';
    }
}

static bool is(const AiolabTraceRecord *r, const char *name, char phase,
               int tid)
{
    return r->name && !strcmp(r->name, name) &&
           (phase == 0 || r->phase == phase) && (tid == 0 || r->tid == tid);
}

static int count(const AiolabTraceRecord *rec, size_t n, const char *name,
                 char phase, int tid)
{
    int c = 0;

    for (size_t i = 0; i < n; i++) {
        c += is(&rec[i], name, phase, tid);
    }
    return c;
}

/* The events of one request's story, in the order they must happen. */
static const char *const io_story[] = {
    "aio_dispatch_handler",     /* B: the kick fd is readable in io0 */
    "virtio_blk_handle_vq",     /* B: pop the chain, parse the request */
    "virtio_blk_submit_multireq",
    "qemu_aio_coroutine_enter", /* the request's coroutine starts */
    "request",                  /* B: the block layer's request */
    "thread_pool_submit_aio",   /* aio=threads: a preadv for a worker */
    "qemu_coroutine_yield",     /* the coroutine waits; io0 goes on */
    "thread_pool_complete_aio", /* io0 again: the worker's result */
    "qemu_aio_coroutine_enter", /* the coroutine resumes */
    "request",                  /* E */
    "virtio_blk_req_complete",  /* status byte, used ring */
    "virtio_notify_irqfd",      /* the call fd: QEMU injects the irq */
};
static const char *const story_set[] = {
    "virtio_blk_handle_vq", "virtio_blk_submit_multireq",
    "qemu_aio_coroutine_enter", "request", "thread_pool_submit_aio",
    "qemu_coroutine_yield", "thread_pool_work", "thread_pool_complete_aio",
    "virtio_blk_req_complete", "virtio_notify_irqfd",
};

static bool in_story(const AiolabTraceRecord *r)
{
    for (size_t i = 0; i < sizeof(story_set) / sizeof(story_set[0]); i++) {
        if (r->name && !strcmp(r->name, story_set[i]) &&
            (r->phase != 'E' || !strcmp(r->name, "request") ||
             !strcmp(r->name, "thread_pool_work"))) {
            return true;
        }
    }
    return false;
}

/* [region: one-request] */
/*
 * The trace has no request ids.  The guest's first step reads the disk
 * with `dd bs=64k iflag=direct`: one 64 KiB read at a time.  Take one
 * (from the third on) and its window: back from its `request` begin to
 * the ring pass that popped it and the kick fd's handler around that,
 * forward from its end to the irqfd write.  Keep it only if it was
 * alone: no other request began or ended in the window.
 */
static bool find_request(const AiolabTraceRecord *rec, size_t n, int io,
                         size_t *kick, size_t *last)
{
    int seen = 0;

    for (size_t b = 1; b < n; b++) {
        size_t e = 0, pass = 0, k = 0, l = 0;
        int others = 0;

        if (!is(&rec[b], "request", 'B', io) || rec[b].arg != 65536 ||
            ++seen < 3) {
            continue;
        }
        for (size_t i = b + 1; i < n && !e; i++) {
            e = is(&rec[i], "request", 'E', io) ? i : 0;
        }
        for (size_t i = b; i > 0 && !pass; i--) {
            pass = is(&rec[i], "virtio_blk_handle_vq", 'B', io) ? i : 0;
        }
        for (size_t i = pass; i > 0 && !k; i--) {
            k = is(&rec[i], "aio_dispatch_handler", 'B', io) ? i : 0;
        }
        for (size_t i = e; e && i < n && !l; i++) {
            l = is(&rec[i], "virtio_notify_irqfd", 'i', io) ? i : 0;
        }
        for (size_t i = k; k && i <= l; i++) {
            others += is(&rec[i], "request", 0, io) && i != b && i != e;
        }
        if (e && pass && k && l && others == 0) {
            *kick = k;
            *last = l;
            return true;
        }
    }
    return false;
}
/* [endregion] */

int main(void)
{
    static AiolabTraceRecord rec[MAXREC];
    char boot_py[PATH_MAX], tname[32];
    AiolabBqlStats bql[16];
    AiolabTraceThread threads[32];
    IOThread *io;
    pthread_t th;
    size_t n, nb, nt, last = 0, kick = 0;
    int io_tid, main_tid = tut_gettid(), io_bql = 0;
    int worker_tid = 0, workers = 0, io_i = 0, worker_b = -1, worker_e = -1;
    bool io_order = true;
    int64_t since;
    FILE *img;
    char *argv[] = { "python3", boot_py, SOCK, "--dir", "real-guest-work",
                     "--size", "65536", "--disk", "4194304", NULL };

    if (!find_boot_py(boot_py, sizeof(boot_py))) {
        printf("skip: tests/vhost/boot.py not found above the current "
               "directory (run from the aiolab tree)\n");
        return 77;
    }
    qemu_init_main_loop(&error_abort);
    bql_lock();
    aiolab_trace_set_enabled(true);
    io = iothread_create("io0", &error_abort);
    io_tid = iothread_get_thread_id(io);
    img = tut_scratch_image(IMAGE, DISK);
    if (!img) {
        return 1;
    }
    /* [region: daemon] */
    bdrv_open(NULL, NULL, "driver=file,node-name=disk0,aio=threads,"
              "filename=" IMAGE, BDRV_O_RDWR, &error_abort);
    blk_exp_add("type=vhost-user-blk,id=exp0,node-name=disk0,"
                "addr.type=unix,addr.path=" SOCK ",writable=on,"
                "iothread=io0", &error_abort);
    since = aiolab_trace_now_ns();
    fflush(stdout);             /* boot.py writes to our stdout too */
    if (posix_spawn(&child.pid, "/usr/bin/python3", NULL, NULL, argv,
                    environ) != 0) {
        printf("skip: cannot run /usr/bin/python3\n");
        return 77;
    }
    pthread_create(&th, NULL, waiter, NULL);
    while (!__atomic_load_n(&child.done, __ATOMIC_ACQUIRE)) {
        main_loop_wait(false);  /* vhost-user messages, in this thread */
    }
    /* [endregion] */
    pthread_join(th, NULL);
    blk_exp_close_all();
    if (WIFEXITED(child.status) && WEXITSTATUS(child.status) == 77) {
        return 77;              /* boot.py said "skip: why" */
    }
    CHECK_HINT("a real Linux guest booted on the export, its verdict ok",
               WIFEXITED(child.status) && WEXITSTATUS(child.status) == 0,
               "see boot.py's verdict line above, and "
               "real-guest-work/guest.log");

    n = aiolab_trace_collect(rec, MAXREC, since);
    printf("vhost-user messages: %d (main thread); virtio_blk_handle_vq "
           "passes: %d in io0, %d elsewhere; requests: %d\n",
           count(rec, n, "vhost_user_msg", 'B', main_tid),
           count(rec, n, "virtio_blk_handle_vq", 'B', io_tid),
           count(rec, n, "virtio_blk_handle_vq", 'B', 0) -
           count(rec, n, "virtio_blk_handle_vq", 'B', io_tid),
           count(rec, n, "request", 'B', io_tid));
    CHECK("every vhost-user message was handled in the main thread",
          count(rec, n, "vhost_user_msg", 'B', main_tid) > 0 &&
          count(rec, n, "vhost_user_msg", 'B', 0) ==
          count(rec, n, "vhost_user_msg", 'B', main_tid));
    CHECK("every ring pass, request and irqfd write happened in io0",
          count(rec, n, "virtio_blk_handle_vq", 'B', io_tid) > 0 &&
          count(rec, n, "virtio_blk_handle_vq", 'B', 0) ==
          count(rec, n, "virtio_blk_handle_vq", 'B', io_tid) &&
          count(rec, n, "request", 'B', 0) ==
          count(rec, n, "request", 'B', io_tid) &&
          count(rec, n, "virtio_notify_irqfd", 0, 0) ==
          count(rec, n, "virtio_notify_irqfd", 0, io_tid));
    nb = aiolab_bql_get_stats(bql, 16);
    for (size_t i = 0; i < nb && i < 16; i++) {
        io_bql += bql[i].tid == io_tid ? (int)bql[i].acquisitions : 0;
    }
    CHECK_EQ("io0 never took the BQL", io_bql, 0);

    CHECK("a 64 KiB read of the guest's, alone in flight from its kick to "
          "its irqfd write, is in the trace",
          find_request(rec, n, io_tid, &kick, &last));
    nt = aiolab_trace_threads(threads, 32);
    printf("one request, from the kick to the interrupt (us since the "
           "kick):\n");
    /* [region: story] */
    for (size_t i = kick; i <= last; i++) {
        const AiolabTraceRecord *r = &rec[i];

        if (i != kick && !in_story(r)) {
            continue;
        }
        snprintf(tname, sizeof(tname), "%d", r->tid);
        for (size_t t = 0; t < nt && t < 32; t++) {
            if (threads[t].tid == r->tid) {
                snprintf(tname, sizeof(tname), "%s", threads[t].name);
            }
        }
        printf("  %9.1f  %-7s %c %s\n", (r->ts_ns - rec[kick].ts_ns) / 1e3,
               tname, r->phase, r->name);
        if (r->tid == io_tid) {
            io_order &= io_i < (int)(sizeof(io_story) / sizeof(char *)) &&
                        !strcmp(r->name, io_story[io_i]);
            io_i++;
        } else if (is(r, "thread_pool_work", 'B', 0)) {
            worker_tid = r->tid;
            workers++;
            worker_b = io_i;    /* how many of io0's events came before */
        } else if (is(r, "thread_pool_work", 'E', worker_tid)) {
            worker_e = io_i;
        }
    }
    /* [endregion] */
    CHECK("io0's part runs kick, pop, coroutine, submit, yield, "
          "completion, resume, used ring, irqfd, in that order",
          io_order && io_i == (int)(sizeof(io_story) / sizeof(char *)));
    CHECK("one worker thread ran the read, between io0's submit and "
          "io0's completion",
          worker_tid != 0 && worker_tid != io_tid &&
          worker_tid != main_tid && workers == 1 && worker_b >= 6 &&
          worker_e >= worker_b && worker_e <= 7);
    aiolab_trace_write_json("real-guest.json", since, &error_abort);
    printf("trace: real-guest.json (open it in Perfetto)\n");
    iothread_destroy(io);
    fclose(img);
    bql_unlock();
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-machine.c - the toy machine in one process: vCPU threads
 * running the guest driver against virtio-blk in each placement, who
 * takes the BQL (counted per thread by aiolab_bql_get_stats), queues
 * shared between vCPUs, completion polling, mmio-hold contention,
 * vm_stop/vm_start, a werror=stop request parked and re-issued on
 * resume, a malformed ring that breaks only the device, and the option
 * and set-up errors.
 *
 * Every run uses the verify workload on a real file (null-co keeps no
 * data), so each case also checks that nothing was lost or corrupted.
 * Timing is never asserted: counts and states are.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <aiolab/aiolab.h>
#include "harness.h"

static AiolabMachine *m;
static char path[64];
static int events[4];

static void on_event(void *opaque, const AiolabMachineEvent *ev)
{
    events[ev->type]++;
}

/* Main loop + BQL, IOThreads io0 and io1, a 16 MiB file "disk0". */
static void setup(void)
{
    int fd;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    iothread_create("io0", &error_abort);
    iothread_create("io1", &error_abort);
    snprintf(path, sizeof(path), "/tmp/aiolab-test-machine-XXXXXX");
    fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 16 << 20), 0);
    close(fd);
    {
        char opts[160];
        snprintf(opts, sizeof(opts), "driver=file,filename=%s,"
                 "node-name=disk0", path);
        ASSERT(bdrv_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort));
    }
    unlink(path);
}

static void new_machine(int smp, bool no_shutdown)
{
    AiolabMachineConf mc = { .smp = smp, .ram_size = 32 << 20,
                             .no_shutdown = no_shutdown };

    m = aiolab_machine_new(&mc, &error_abort);
    aiolab_machine_set_event_handler(m, on_event, NULL);
}

static VirtIOBlock *add_dev(const char *drive, const char *iothread,
                            bool ioeventfd, int nq)
{
    VirtIOBlkConf c;

    virtio_blk_conf_init(&c);
    c.id = "vd0";
    c.iothread = iothread;
    c.ioeventfd = ioeventfd;
    c.num_queues = nq;
    return aiolab_machine_add_virtio_blk(m, &c, drive, &error_abort);
}

static void workload(const char *str)
{
    AiolabWorkloadConf w;

    ASSERT(aiolab_workload_parse(str, &w, &error_abort));
    ASSERT(aiolab_machine_set_workload(m, &w, &error_abort));
}

/* Run the main loop until the guest shuts down (or @until says stop). */
static ShutdownCause run(bool (*until)(void))
{
    ShutdownCause cause = SHUTDOWN_CAUSE_NONE;

    while (!aiolab_machine_main_loop_should_exit(m, &cause)) {
        if (until && until()) {
            return SHUTDOWN_CAUSE_NONE;
        }
        if (until) {
            main_loop_wait(true);           /* check again soon, and let */
            bql_unlock();                   /* the vCPUs have the BQL */
            usleep(100);
            bql_lock();
        } else {
            main_loop_wait(false);
        }
    }
    return cause;
}

static AiolabWorkloadStats stats(int vcpu)
{
    AiolabWorkloadStats st;

    ASSERT(aiolab_machine_get_workload_stats(m, vcpu, &st));
    return st;
}

/* Every request done, nothing lost or corrupted, blocks verified. */
static void expect_clean(int vcpu, uint64_t min_ops)
{
    AiolabWorkloadStats st = stats(vcpu);

    if (st.error[0]) {
        printf("# vcpu %d: %s\n", vcpu, st.error);
    }
    ASSERT(st.finished);
    ASSERT_EQ(st.verify_errors, 0);
    ASSERT_EQ(st.lost, 0);
    ASSERT_EQ(st.io_errors, 0);
    ASSERT_GE(st.reads + st.writes, min_ops);
    ASSERT_GT(st.verified, 0);
}

static AiolabBqlStats bql_of(int tid)
{
    AiolabBqlStats all[64], none = { 0 };
    size_t n = aiolab_bql_get_stats(all, 64), i;

    for (i = 0; i < n && i < 64; i++) {
        if (all[i].tid == tid) {
            return all[i];
        }
    }
    return none;
}

static AiolabVirtQueueStats vq_stats(VirtIOBlock *s, int n)
{
    AiolabVirtQueueStats st;

    aiolab_virtio_queue_get_stats(virtio_get_queue(
        aiolab_virtio_blk_get_vdev(s), n), &st);
    return st;
}

static int vcpu_tid(int i)
{
    return aiolab_machine_get_vcpu_thread_id(m, i);
}

/* ------------------------------------------------------------------------
 * Placement: who runs the queue, who takes the BQL
 * ------------------------------------------------------------------------ */

/* ioeventfd=off: every kick is an MMIO exit in which the vCPU takes the
 * BQL and runs handle_vq itself; completions come in the main loop. */
static void test_ioeventfd_off(void)
{
    VirtIOBlock *s;
    AiolabWorkloadStats st;

    setup();
    new_machine(1, false);
    s = add_dev("disk0", NULL, false, 1);
    workload("vcpu=0,rw=verify,iodepth=2,count=300");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    expect_clean(0, 300);
    st = stats(0);
    ASSERT_GT(st.kicks, 0);
    /* each kick is an exit, each exit one acquisition */
    ASSERT_GE(st.mmio_exits, st.kicks);
    ASSERT_GE(bql_of(vcpu_tid(0)).acquisitions, st.kicks);
    ASSERT_PTR_EQ(aiolab_virtio_blk_get_vq_aio_context(s, 0),
                  qemu_get_aio_context());
    ASSERT_EQ(vq_stats(s, 0).irqfd_notifies, 0);
    ASSERT_GT(vq_stats(s, 0).notifies, 0);
    aiolab_machine_free(m);
}

/* ioeventfd on, no iothread: kicks are eventfd writes (no exit, no BQL
 * in the vCPU); the main loop handles the queue under the BQL. */
static void test_main_loop(void)
{
    VirtIOBlock *s;
    AiolabWorkloadStats st;

    setup();
    new_machine(1, false);
    s = add_dev("disk0", NULL, true, 1);
    workload("vcpu=0,rw=verify,iodepth=2,count=300");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    expect_clean(0, 300);
    st = stats(0);
    ASSERT_GT(st.kicks, 20);
    /* after boot: none for the I/O, one when the guest code returns */
    ASSERT_LE(bql_of(vcpu_tid(0)).acquisitions, 3);
    ASSERT_GT(bql_of(getpid()).acquisitions, 0);
    ASSERT_EQ(vq_stats(s, 0).irqfd_notifies, 0);
    aiolab_machine_free(m);
}

/* iothread=io0: host notifiers and completions in the IOThread, through
 * the irqfd; the IOThread never takes the BQL, the vCPU only to leave. */
static void test_iothread(void)
{
    VirtIOBlock *s;
    IOThread *io0;

    setup();
    io0 = iothread_by_id("io0");
    new_machine(1, false);
    s = add_dev("disk0", "io0", true, 1);
    workload("vcpu=0,rw=verify,iodepth=4,count=400");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    expect_clean(0, 400);
    ASSERT_EQ(bql_of(iothread_get_thread_id(io0)).acquisitions, 0);
    ASSERT_LE(bql_of(vcpu_tid(0)).acquisitions, 3);
    ASSERT_PTR_EQ(aiolab_virtio_blk_get_vq_aio_context(s, 0),
                  iothread_get_aio_context(io0));
    ASSERT_GT(vq_stats(s, 0).irqfd_notifies, 0);
    ASSERT_EQ(vq_stats(s, 0).notifies, 0);
    aiolab_machine_free(m);
}

static void mapping_run(const IOThreadVirtQueueMapping *map, size_t n,
                        const char *const *expect)
{
    VirtIOBlkConf c;
    VirtIOBlock *s;
    int q;

    setup();
    new_machine(4, false);
    virtio_blk_conf_init(&c);
    c.num_queues = 4;
    c.iothread_vq_mapping = map;
    c.iothread_vq_mapping_len = n;
    s = aiolab_machine_add_virtio_blk(m, &c, "disk0", &error_abort);
    for (q = 0; q < 4; q++) {
        char w[64];
        snprintf(w, sizeof(w), "vcpu=%d,rw=verify,iodepth=2,count=150", q);
        workload(w);
    }
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    for (q = 0; q < 4; q++) {
        expect_clean(q, 150);
        ASSERT_EQ(stats(q).queue, q);               /* queue i for vCPU i */
        ASSERT_PTR_EQ(aiolab_virtio_blk_get_vq_aio_context(s, q),
                      iothread_get_aio_context(iothread_by_id(expect[q])));
        ASSERT_GT(vq_stats(s, q).pops, 0);
        ASSERT_GT(vq_stats(s, q).irqfd_notifies, 0);
    }
    ASSERT_EQ(bql_of(iothread_get_thread_id(iothread_by_id("io0")))
              .acquisitions, 0);
    ASSERT_EQ(bql_of(iothread_get_thread_id(iothread_by_id("io1")))
              .acquisitions, 0);
    aiolab_machine_free(m);
}

static void test_vq_mapping_round_robin(void)
{
    IOThreadVirtQueueMapping map[] = { { "io0" }, { "io1" } };
    static const char *const expect[] = { "io0", "io1", "io0", "io1" };

    mapping_run(map, 2, expect);
}

static void test_vq_mapping_explicit(void)
{
    static const uint16_t v0[] = { 0, 1, 2 }, v1[] = { 3 };
    IOThreadVirtQueueMapping map[] = { { "io0", v0, 3 }, { "io1", v1, 1 } };
    static const char *const expect[] = { "io0", "io0", "io0", "io1" };

    mapping_run(map, 2, expect);
}

/* Three vCPUs, one queue: they share it (and its lock, and collect each
 * other's completions). */
static void test_shared_queue(void)
{
    setup();
    new_machine(3, false);
    add_dev("disk0", "io0", true, 1);
    workload("vcpu=0,rw=verify,iodepth=3,count=200");
    workload("vcpu=1,rw=verify,iodepth=3,count=200");
    workload("vcpu=2,rw=verify,iodepth=3,count=200");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    expect_clean(0, 200);
    expect_clean(1, 200);
    expect_clean(2, 200);
    ASSERT_EQ(stats(2).queue, 0);
    aiolab_machine_free(m);
}

/* Completion polling (poll=): vCPU 0 polls with interrupts off on the
 * queue it shares with vCPU 3, which halts for its interrupts; vCPU 1
 * polls a queue of its own, which then gets no interrupt at all; vCPU 2
 * polls 20 us before halting.  Nothing is lost: a polling vCPU sees the
 * IPI of the one that collected its completion. */
static void test_polling(void)
{
    VirtIOBlock *s;

    setup();
    new_machine(4, false);
    s = add_dev("disk0", "io0", true, 3);
    workload("vcpu=0,rw=verify,iodepth=3,count=100,poll=always");
    workload("vcpu=1,rw=verify,iodepth=3,count=100,poll=always");
    workload("vcpu=2,rw=verify,iodepth=3,count=100,poll=20");
    workload("vcpu=3,rw=verify,iodepth=3,count=100");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    for (int i = 0; i < 4; i++) {
        expect_clean(i, 100);
    }
    ASSERT_EQ(stats(3).queue, 0);
    ASSERT_EQ(stats(1).queue, 1);
    ASSERT_EQ(stats(1).interrupts, 0);
    /* The device's side: only its first check signals (QEMU's rule) */
    ASSERT_LE(vq_stats(s, 1).irqfd_notifies, 1);
    ASSERT_GE(vq_stats(s, 1).suppressed, 99);
    aiolab_machine_free(m);
}

/* A vCPU that sleeps 2 ms per exit with the BQL held: the main loop,
 * which handles the disk here, waits for it, and the stats show it. */
static void test_mmio_hold(void)
{
    AiolabWorkloadStats hold;
    AiolabBqlStats main_bql;

    setup();
    new_machine(2, false);
    add_dev("disk0", NULL, true, 1);
    workload("vcpu=0,rw=verify,iodepth=2,count=300");
    workload("vcpu=1,mmio-hold=2000,mmio-period=3000");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    expect_clean(0, 300);
    hold = stats(1);
    ASSERT(hold.finished);                  /* ended with the I/O */
    ASSERT_GT(hold.mmio_exits, 0);
    ASSERT_GE(hold.mmio_hold_ns, hold.mmio_exits * 2000000);
    ASSERT_GE(bql_of(vcpu_tid(1)).hold_ns_total, hold.mmio_hold_ns);
    main_bql = bql_of(getpid());
    ASSERT_GT(main_bql.contended, 0);
    ASSERT_GT(main_bql.wait_ns_total, 0);
    aiolab_machine_free(m);
}

/* ------------------------------------------------------------------------
 * Run state
 * ------------------------------------------------------------------------ */

static bool some_progress(void)
{
    AiolabWorkloadStats st = stats(0);

    return st.reads + st.writes > 100;
}

/* vm_stop parks the vCPUs (nothing moves), vm_start resumes them. */
static void test_stop_cont(void)
{
    AiolabWorkloadStats a, b;
    int i;

    setup();
    new_machine(2, false);
    add_dev("disk0", "io0", true, 2);
    workload("vcpu=0,rw=verify,iodepth=4,count=3000");
    workload("vcpu=1,rw=verify,iodepth=4,count=3000");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(events[AIOLAB_MACHINE_EVENT_RESUME], 1);
    ASSERT_EQ(run(some_progress), SHUTDOWN_CAUSE_NONE);
    vm_stop(RUN_STATE_PAUSED);
    ASSERT_EQ(runstate_get(), RUN_STATE_PAUSED);
    ASSERT_EQ(events[AIOLAB_MACHINE_EVENT_STOP], 1);
    a = stats(0);
    for (i = 0; i < 20; i++) {
        main_loop_wait(true);
        bql_unlock();
        usleep(1000);
        bql_lock();
    }
    b = stats(0);
    ASSERT_EQ(a.reads + a.writes, b.reads + b.writes);
    ASSERT_FALSE(b.finished);
    vm_start();
    ASSERT_EQ(events[AIOLAB_MACHINE_EVENT_RESUME], 2);
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    expect_clean(0, 3000);
    expect_clean(1, 3000);
    aiolab_machine_free(m);
}

static bool stopped(void)
{
    return !runstate_is_running();
}

/* werror=stop: the failed write is parked and the VM stops (a vmstop
 * request from the IOThread); vm_start re-issues it in its queue's
 * context, where it succeeds (the error was injected once). */
static void test_werror_stop(void)
{
    VirtIOBlkConf c;
    VirtIOBlock *s;
    AiolabVirtIOBlkStats ds;

    setup();
    ASSERT(bdrv_open(NULL, NULL, "driver=blkdebug,image=disk0,"
                     "node-name=dbg0,inject-error.0.iotype=write,"
                     "inject-error.0.errno=28,inject-error.0.once=on",
                     BDRV_O_RDWR, &error_abort));
    new_machine(1, false);
    virtio_blk_conf_init(&c);
    c.iothread = "io0";
    c.werror = BLOCKDEV_ON_ERROR_STOP;
    s = aiolab_machine_add_virtio_blk(m, &c, "dbg0", &error_abort);
    workload("vcpu=0,rw=verify,iodepth=4,count=300");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(stopped), SHUTDOWN_CAUSE_NONE);
    ASSERT_EQ(runstate_get(), RUN_STATE_IO_ERROR);
    main_loop_wait(true);                   /* the event BH */
    ASSERT_EQ(events[AIOLAB_MACHINE_EVENT_BLOCK_IO_ERROR], 1);
    ASSERT_EQ(events[AIOLAB_MACHINE_EVENT_STOP], 1);
    aiolab_virtio_blk_get_stats(s, &ds);
    ASSERT_EQ(ds.parked, 1);
    vm_start();
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    expect_clean(0, 300);
    aiolab_virtio_blk_get_stats(s, &ds);
    ASSERT_EQ(ds.parked, 0);
    aiolab_machine_free(m);
}

/* A chain pointing outside guest RAM breaks the device, not the
 * process: the guest sees NEEDS_RESET, counts what it lost, and stops. */
static void test_malformed(void)
{
    VirtIOBlock *s;
    AiolabWorkloadStats st;

    setup();
    new_machine(1, false);
    s = add_dev("disk0", "io0", true, 1);
    workload("vcpu=0,rw=randwrite,iodepth=4,count=400,malformed=100");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    /* virtio_error raises NEEDS_RESET before it marks the device broken
     * (as QEMU's does), so the guest may be done first; stopping the VM
     * stops ioeventfd in the IOThread, after the handler has finished. */
    vm_shutdown();
    ASSERT(aiolab_virtio_device_is_broken(aiolab_virtio_blk_get_vdev(s)));
    st = stats(0);
    ASSERT(st.finished);
    ASSERT_GT(st.lost, 0);
    ASSERT_LT(st.writes, 100);
    ASSERT_STR_CONTAINS(st.error, "needs a reset");
    aiolab_machine_free(m);
}

/*
 * A guest that rewrites its live queue's size and QueueReady after
 * DRIVER_OK (reconfigure=N) while io0 works the ring: the transport
 * refuses, the device breaks (NEEDS_RESET), the queue keeps the size
 * and rings io0 was using.  Before the fix the vCPU remapped the rings
 * under io0 (a data race TSan reports; the device then failed on a
 * ring of the wrong size).
 */
static void test_reconfigure_live_queue(void)
{
    VirtIOBlock *s;
    VirtIODevice *vdev;
    AiolabWorkloadStats st;
    char err[128];

    setup();
    new_machine(1, false);
    s = add_dev("disk0", "io0", true, 1);
    vdev = aiolab_virtio_blk_get_vdev(s);
    workload("vcpu=0,rw=randwrite,iodepth=4,count=400,reconfigure=100");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    vm_shutdown();
    ASSERT(aiolab_virtio_device_is_broken(vdev));
    ASSERT(aiolab_virtio_get_status(vdev) & VIRTIO_CONFIG_S_NEEDS_RESET);
    aiolab_virtio_device_get_last_error(vdev, err, sizeof(err));
    ASSERT_STR_CONTAINS(err, "written for queue 0 after DRIVER_OK");
    ASSERT_EQ(virtio_queue_get_num(vdev, 0), virtio_queue_get_max_num(vdev, 0));
    st = stats(0);
    ASSERT(st.finished);
    /* 99 submitted before the rewrite; io0, popping concurrently, may
     * still take what the guest kicked before it saw the config
     * interrupt: at most one more iodepth window (writes 102 was seen). */
    ASSERT_LE(st.writes, 99 + 4);
    ASSERT_STR_CONTAINS(st.error, "needs a reset");
    aiolab_machine_free(m);
}

/* --- BLOCK_IO_ERROR: order and no loss ------------------------------ */

static AiolabMachineEventType seq[64];
static int nseq;

static void record_event(void *opaque, const AiolabMachineEvent *ev)
{
    events[ev->type]++;
    if (nseq < (int)(sizeof(seq) / sizeof(seq[0]))) {
        seq[nseq++] = ev->type;
    }
}

/* A device on a blkdebug node "dbg0" over disk0, in @iothread (NULL:
 * the main loop), with or without ioeventfd. */
static VirtIOBlock *add_dbg_dev(const char *dbg_opts, const char *iothread,
                                bool ioeventfd, BlockdevOnError werror)
{
    char opts[256];
    VirtIOBlkConf c;

    snprintf(opts, sizeof(opts), "driver=blkdebug,image=disk0,"
             "node-name=dbg0,%s", dbg_opts);
    ASSERT(bdrv_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort));
    virtio_blk_conf_init(&c);
    c.id = "vd0";
    c.iothread = iothread;
    c.ioeventfd = ioeventfd;
    c.werror = werror;
    return aiolab_machine_add_virtio_blk(m, &c, "dbg0", &error_abort);
}

static BlockDriverState *dbg;
static VirtIOBlock *dbg_dev;

static bool dbg_suspended(void)
{
    return bdrv_debug_is_suspended(dbg, "w0");
}

static uint64_t dev_stat(VirtIOBlock *s, bool parked)
{
    AiolabVirtIOBlkStats ds;

    aiolab_virtio_blk_get_stats(s, &ds);
    return parked ? ds.parked : ds.ioerrors;
}

static bool first_io_error(void)
{
    return dev_stat(dbg_dev, false) > 0;
}

/* Wait, without the BQL and without running the main loop, until the
 * device has at least @n parked requests (@parked) or I/O errors. */
static void wait_dev_stat(VirtIOBlock *s, bool parked, uint64_t n)
{
    bql_unlock();
    while (dev_stat(s, parked) < n) {
        usleep(1000);
    }
    bql_lock();
}

/*
 * werror=stop: the error that stops the VM is sent before the STOP it
 * caused (QEMU's blk_error_action sends the event from the failing
 * thread before it requests the stop).  The write is held at a
 * breakpoint, then failed where the main loop sees the stop request
 * before its event BH has run.  With ioeventfd=off nothing in vm_stop
 * polls the main context before the STOP (no host notifiers to detach,
 * nothing in flight to drain): before do_vm_stop sent the queued events
 * first, the STOP always came first and the BLOCK_IO_ERROR after it.
 * With ioeventfd on, vm_stop waits for the queue's context to detach
 * its host notifiers, polling the main context, and the BH ran there or
 * not depending on timing (io0 failed about one run in three).
 */
static void test_io_error_before_stop(const char *iothread, bool ioeventfd)
{
    VirtIOBlock *s;
    ShutdownCause cause = SHUTDOWN_CAUSE_NONE;

    setup();
    new_machine(1, false);
    aiolab_machine_set_event_handler(m, record_event, NULL);
    s = add_dbg_dev("inject-error.0.iotype=write,inject-error.0.errno=5,"
                    "inject-error.0.once=on,break.0.event=write-aio,"
                    "break.0.tag=w0", iothread, ioeventfd,
                    BLOCKDEV_ON_ERROR_STOP);
    dbg = bdrv_find_node("dbg0");
    workload("vcpu=0,rw=verify,iodepth=1,count=50");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(dbg_suspended), SHUTDOWN_CAUSE_NONE);
    nseq = 0;
    ASSERT_EQ(bdrv_debug_resume(dbg, "w0"), 0);
    if (iothread) {
        wait_dev_stat(s, true, 1);
    } else {
        /* the wake-up is a BH of the main context: one dispatch at a
         * time until the request has failed and is parked */
        while (dev_stat(s, true) < 1) {
            ASSERT_EQ(nseq, 0);
            main_loop_wait(true);
        }
    }
    ASSERT_FALSE(aiolab_machine_main_loop_should_exit(m, &cause));
    ASSERT_EQ(runstate_get(), RUN_STATE_IO_ERROR);
    ASSERT_EQ(nseq, 2);
    ASSERT_EQ(seq[0], AIOLAB_MACHINE_EVENT_BLOCK_IO_ERROR);
    ASSERT_EQ(seq[1], AIOLAB_MACHINE_EVENT_STOP);
    vm_start();
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    ASSERT_EQ(events[AIOLAB_MACHINE_EVENT_BLOCK_IO_ERROR], 1);
    expect_clean(0, 50);
    aiolab_machine_free(m);
}

static void test_io_error_before_stop_mmio(void)
{
    test_io_error_before_stop(NULL, false);
}

static void test_io_error_before_stop_main_loop(void)
{
    test_io_error_before_stop(NULL, true);
}

static void test_io_error_before_stop_iothread(void)
{
    test_io_error_before_stop("io0", true);
}

/*
 * Every write fails (werror=report) while the main loop is away: every
 * failure is sent when it comes back, none dropped (the old queue kept
 * 64 and dropped the rest without a count).
 */
static void test_io_error_no_loss(void)
{
    VirtIOBlock *s;
    AiolabWorkloadStats st;

    setup();
    new_machine(1, false);
    aiolab_machine_set_event_handler(m, record_event, NULL);
    s = add_dbg_dev("inject-error.0.iotype=write,inject-error.0.errno=5",
                    "io0", true, BLOCKDEV_ON_ERROR_REPORT);
    dbg = bdrv_find_node("dbg0");
    dbg_dev = s;
    workload("vcpu=0,rw=randwrite,iodepth=8,count=2000");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(first_io_error), SHUTDOWN_CAUSE_NONE);   /* booted */
    wait_dev_stat(s, false, 300);
    ASSERT_EQ(run(NULL), SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    vm_shutdown();
    st = stats(0);
    ASSERT(st.finished);
    ASSERT_EQ(st.io_errors, 2000);
    ASSERT_EQ(dev_stat(s, false), 2000);
    ASSERT_EQ(events[AIOLAB_MACHINE_EVENT_BLOCK_IO_ERROR], 2000);
    aiolab_machine_free(m);
}

/* -no-shutdown: a finished guest leaves the machine stopped. */
static void test_no_shutdown(void)
{
    setup();
    new_machine(1, true);
    add_dev("disk0", NULL, true, 1);
    workload("vcpu=0,rw=verify,iodepth=1,count=50");
    ASSERT(aiolab_machine_start(m, true, &error_abort));
    ASSERT_EQ(run(stopped), SHUTDOWN_CAUSE_NONE);
    ASSERT_EQ(runstate_get(), RUN_STATE_SHUTDOWN);
    ASSERT_EQ(events[AIOLAB_MACHINE_EVENT_SHUTDOWN], 1);
    expect_clean(0, 50);
    aiolab_machine_free(m);
}

/* ------------------------------------------------------------------------
 * Options and set-up errors
 * ------------------------------------------------------------------------ */

static void expect_parse_error(const char *str, const char *msg)
{
    AiolabWorkloadConf w;
    Error *err = NULL;

    ASSERT_FALSE(aiolab_workload_parse(str, &w, &err));
    ASSERT_STR_CONTAINS(error_get_pretty(err), msg);
    error_free(err);
}

static void test_parse(void)
{
    AiolabWorkloadConf w;

    ASSERT(aiolab_workload_parse("vcpu=3,rw=randrw,bs=64k,iodepth=8,"
                                 "runtime=0.5,rwmixread=70,mmio-hold=1.5",
                                 &w, &error_abort));
    ASSERT_EQ(w.vcpu, 3);
    ASSERT_EQ(w.rw, AIOLAB_WL_RANDRW);
    ASSERT_EQ(w.bs, 65536);
    ASSERT_EQ(w.iodepth, 8);
    ASSERT_EQ(w.runtime_ns, 500000000);
    ASSERT_EQ(w.rwmixread, 70);
    ASSERT_EQ(w.mmio_hold_ns, 1500);
    ASSERT_EQ(w.queue, -1);
    expect_parse_error("rw=foo", "Parameter 'rw' does not accept value 'foo'");
    expect_parse_error("bs=1000", "Parameter 'bs' expects a size");
    expect_parse_error("iodepth=0", "Parameter 'iodepth' expects");
    expect_parse_error("nope=1", "Invalid parameter 'nope'");
    expect_parse_error("vcpu", "Expected '=' after parameter 'vcpu'");
    ASSERT(aiolab_workload_parse("poll=always", &w, &error_abort));
    ASSERT_EQ(w.poll_ns, AIOLAB_WORKLOAD_POLL_ALWAYS);
    ASSERT(aiolab_workload_parse("poll=2.5", &w, &error_abort));
    ASSERT_EQ(w.poll_ns, 2500);
    expect_parse_error("poll=never", "Parameter 'poll' expects a duration "
                       "in microseconds (at most 10 s) or 'always'");
}

static void test_hist(void)
{
    static AiolabLatencyHist h;
    int64_t p50, p99;
    int i;

    for (i = 1; i <= 10000; i++) {
        aiolab_latency_hist_add(&h, i * 1000);      /* 1 us .. 10 ms */
    }
    p50 = aiolab_latency_hist_percentile(&h, 0.5);
    p99 = aiolab_latency_hist_percentile(&h, 0.99);
    ASSERT_GE(p50, 5000000 * 97 / 100);
    ASSERT_LE(p50, 5000000 * 103 / 100);
    ASSERT_GE(p99, 9900000 * 97 / 100);
    ASSERT_LE(p99, 9900000 * 103 / 100);
    ASSERT_EQ(aiolab_latency_hist_percentile(&h, 1.0), 10000000);
    ASSERT_EQ(h.count, 10000);
}

static void expect_setup_error(const char *wl, const char *msg)
{
    AiolabWorkloadConf w;
    Error *err = NULL;

    ASSERT(aiolab_workload_parse(wl, &w, &error_abort));
    ASSERT_FALSE(aiolab_machine_set_workload(m, &w, &err));
    ASSERT_STR_CONTAINS(error_get_pretty(err), msg);
    error_free(err);
}

static void test_setup_errors(void)
{
    VirtIOBlkConf c;
    Error *err = NULL;

    setup();
    new_machine(2, false);
    virtio_blk_conf_init(&c);
    ASSERT_FALSE(aiolab_machine_add_virtio_blk(m, &c, "nope", &err));
    ASSERT_STR_CONTAINS(error_get_pretty(err), "can't find value 'nope'");
    error_free(err);
    err = NULL;
    add_dev("disk0", NULL, true, 1);
    ASSERT_FALSE(aiolab_machine_add_virtio_blk(m, &c, "disk0", &err));
    ASSERT_STR_CONTAINS(error_get_pretty(err), "it's in use");
    error_free(err);
    err = NULL;
    expect_setup_error("vcpu=2,rw=randread", "vcpu=2 does not exist");
    expect_setup_error("vcpu=0,rw=randread,device=vdX",
                       "Device 'vdX' not found");
    expect_setup_error("vcpu=0,rw=randread,queue=1", "queue=1 is out of range");
    expect_setup_error("vcpu=0,rw=randread,offset=1G", "does not fit");
    expect_setup_error("vcpu=0,rw=randread,mmio-hold=10",
                       "mmio-hold cannot be combined");
    workload("vcpu=0,rw=verify,size=8M");
    workload("vcpu=1,rw=verify,offset=4M,size=8M");
    ASSERT_FALSE(aiolab_machine_start(m, true, &err));
    ASSERT_STR_CONTAINS(error_get_pretty(err), "overlap");
    error_free(err);
    aiolab_machine_free(m);
}

static const TestCase tests[] = {
    { "/machine/parse", test_parse },
    { "/machine/hist", test_hist },
    { "/machine/setup-errors", test_setup_errors },
    { "/machine/placement/ioeventfd-off", test_ioeventfd_off },
    { "/machine/placement/main-loop", test_main_loop },
    { "/machine/placement/iothread", test_iothread },
    { "/machine/placement/vq-mapping-round-robin",
      test_vq_mapping_round_robin },
    { "/machine/placement/vq-mapping-explicit", test_vq_mapping_explicit },
    { "/machine/shared-queue", test_shared_queue },
    { "/machine/mmio-hold", test_mmio_hold },
    { "/machine/stop-cont", test_stop_cont },
    { "/machine/werror-stop", test_werror_stop },
    { "/machine/polling", test_polling },
    { "/machine/malformed", test_malformed },
    { "/machine/reconfigure-live-queue", test_reconfigure_live_queue },
    { "/machine/io-error/before-stop/ioeventfd-off",
      test_io_error_before_stop_mmio },
    { "/machine/io-error/before-stop/main-loop",
      test_io_error_before_stop_main_loop },
    { "/machine/io-error/before-stop/iothread",
      test_io_error_before_stop_iothread },
    { "/machine/io-error/no-loss", test_io_error_no_loss },
    { "/machine/no-shutdown", test_no_shutdown },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}

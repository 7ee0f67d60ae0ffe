/* SPDX-License-Identifier: MIT */
/*
 * aiolab/machine.h - the toy machine: guest RAM, vCPU threads running a
 * small virtio-blk guest driver, virtio-blk devices, the run state
 * (vm_start/vm_stop) and the main loop that ties them together (QEMU's
 * system/vl.c, system/cpus.c, system/runstate.c and accel/kvm's vCPU
 * loop, reduced to what the lesson needs).
 *
 *   vCPU thread "CPU n/toy"                  main loop thread
 *   -----------------------                  ----------------
 *   guest code ("in KVM_RUN": no BQL)        main_loop_wait(): BQL held
 *     build chains in guest RAM                except while it sleeps
 *     kick: ioeventfd -> eventfd write       host notifiers (ioeventfd
 *           (no exit)                          =on, no iothread)
 *           or MMIO exit: bql_lock,          completions, virtio_notify
 *           virtio_queue_notify, unlock      QMP (iohandler context)
 *     HLT: wait for the interrupt eventfd    vm_stop / vm_start
 *   exit_request (a kick from vm_stop):
 *     back to the outer loop, BQL held,      IOThread "IO io0"
 *     park until vm_start                    host notifiers with poll
 *                                            handlers, irqfd completions;
 *                                            never the BQL
 *
 * The machine is QEMU-style global state: one per process, created and
 * driven from the main loop with the BQL held (vm_stop() and vm_start()
 * take no machine argument, as in QEMU).
 *
 * Where QEMU differs: the guest is C code in the vCPU threads, not a
 * guest kernel under KVM; its device is a virtio-mmio-like register
 * window handled by functions (see c/system/vcpu.c); interrupts are
 * eventfds the vCPU polls while halted (KVM's irqfd plus an in-kernel
 * irqchip); there is no migration, no reset, no hot-plug.
 */
#ifndef AIOLAB_MACHINE_H
#define AIOLAB_MACHINE_H

#include <aiolab/hw/virtio-blk.h>

typedef struct AiolabMachine AiolabMachine;

/* QEMU's RunState (qapi/run-state.json), the part the toy machine has. */
typedef enum RunState {
    RUN_STATE_PRELAUNCH,    /* "prelaunch": created, never run (-S) */
    RUN_STATE_RUNNING,      /* "running" */
    RUN_STATE_PAUSED,       /* "paused": stopped by the monitor */
    RUN_STATE_IO_ERROR,     /* "io-error": werror/rerror=stop */
    RUN_STATE_SHUTDOWN,     /* "shutdown": the guest finished (-no-shutdown) */
    RUN_STATE__MAX
} RunState;

/* QEMU's ShutdownCause, the part the toy machine has. */
typedef enum ShutdownCause {
    SHUTDOWN_CAUSE_NONE,
    SHUTDOWN_CAUSE_HOST_QMP_QUIT,   /* "host-qmp-quit": the quit command */
    SHUTDOWN_CAUSE_HOST_SIGNAL,     /* "host-signal": SIGINT, SIGTERM */
    SHUTDOWN_CAUSE_GUEST_SHUTDOWN,  /* "guest-shutdown": workloads done */
    SHUTDOWN_CAUSE__MAX
} ShutdownCause;

/* ---------------------------------------------------------------------
 * Workloads: what the guest driver on one vCPU does
 * --------------------------------------------------------------------- */

typedef enum AiolabWorkloadType {
    AIOLAB_WL_NONE,         /* no I/O: an mmio-hold vCPU, or an idle one */
    AIOLAB_WL_RANDREAD,
    AIOLAB_WL_RANDWRITE,
    AIOLAB_WL_RANDRW,       /* rwmixread percent reads */
    AIOLAB_WL_SEQWRITE,
    AIOLAB_WL_SEQREAD,
    AIOLAB_WL_VERIFY,       /* stamped writes, verified reads, final sweep */
    AIOLAB_WL__MAX
} AiolabWorkloadType;

/**
 * AiolabWorkloadConf: one -workload option.  Fill it with
 * aiolab_workload_conf_init() or aiolab_workload_parse().
 */
typedef struct AiolabWorkloadConf {
    int vcpu;                   /* vcpu=: which vCPU runs it (0) */
    AiolabWorkloadType rw;      /* rw=: none randread randwrite randrw
                                 * seqwrite seqread verify (none) */
    char device[64];            /* device=: a device id ("": the first) */
    int queue;                  /* queue=: -1: vcpu % num-queues */
    uint32_t bs;                /* bs=: bytes, a multiple of 512 (4096) */
    uint32_t iodepth;           /* iodepth= (1) */
    int64_t runtime_ns;         /* runtime= seconds (1 if no count) */
    uint64_t count;             /* count=: requests, then stop (0: none) */
    int64_t offset;             /* offset=: first byte of the region (0) */
    int64_t size;               /* size=: region bytes (0: to the end; a
                                 * verify workload: its share, see
                                 * aiolab_machine_set_workload()) */
    int rwmixread;              /* rwmixread= percent (50) */
    uint64_t seed;              /* seed= (1) */
    int64_t mmio_hold_ns;       /* mmio-hold= microseconds held per exit */
    int64_t mmio_period_ns;     /* mmio-period= microseconds between exits'
                                 * starts (2 x mmio-hold) */
    int64_t poll_ns;            /* poll=: microseconds the guest busy-polls
                                 * the used ring before halting (0), or
                                 * AIOLAB_WORKLOAD_POLL_ALWAYS (poll=always:
                                 * it never halts for completions) */
    uint64_t malformed_at;      /* malformed=N: request N is published as a
                                 * chain pointing outside guest RAM (0) */
    int64_t timeout_ns;         /* timeout=: seconds of guest time after
                                 * which a request counts as lost (30) */
    uint64_t reconfigure_at;    /* reconfigure=N: before request N the
                                 * guest rewrites its live queue's size
                                 * and QueueReady (0) */
} AiolabWorkloadConf;

/* poll=always: the guest polls its used ring instead of waiting for its
 * interrupt, with the queue's interrupts suppressed (docs/machine.md,
 * "Polling"). */
#define AIOLAB_WORKLOAD_POLL_ALWAYS ((int64_t)-1)

/** aiolab_workload_conf_init: the defaults above.  Context: any thread. */
AIOLAB_API void aiolab_workload_conf_init(AiolabWorkloadConf *conf);

/**
 * aiolab_workload_parse: parse "vcpu=0,rw=randread,bs=4096,iodepth=4,
 * runtime=2" (keys as in AiolabWorkloadConf; sizes take K/M/G suffixes,
 * times are decimal) into @conf, starting from the defaults.
 * Returns: false with @errp set (QEMU's wording: "Parameter 'bs' expects
 * a size", "Invalid parameter 'foo'", ...).
 * Context: any thread.
 */
AIOLAB_API bool aiolab_workload_parse(const char *str, AiolabWorkloadConf *conf,
                                      Error **errp);

/** aiolab_workload_type_name: "randread" etc.  Context: any thread. */
AIOLAB_API const char *aiolab_workload_type_name(AiolabWorkloadType type);

/* ---------------------------------------------------------------------
 * Latency histograms (log-linear: 32 sub-buckets per power of 2, so a
 * percentile is within 3% of the true value)
 * --------------------------------------------------------------------- */

#define AIOLAB_LAT_SUB_BITS 5
#define AIOLAB_LAT_BUCKETS (32 * 38)        /* up to 2^42 ns */

typedef struct AiolabLatencyHist {
    uint64_t count;
    int64_t min_ns, max_ns;
    double sum_ns;
    uint64_t buckets[AIOLAB_LAT_BUCKETS];
} AiolabLatencyHist;

/**
 * aiolab_latency_hist_add / _merge / _percentile / _bucket_value: record
 * one value; add @src into @dst; the value at fraction @p (0.5, 0.99,
 * 0.999) of the recorded ones (0 when empty); a bucket's middle value.
 * Context: any thread (the caller serialises access to one histogram).
 */
AIOLAB_API void aiolab_latency_hist_add(AiolabLatencyHist *h, int64_t ns);
AIOLAB_API void aiolab_latency_hist_merge(AiolabLatencyHist *dst,
                                          const AiolabLatencyHist *src);
AIOLAB_API int64_t aiolab_latency_hist_percentile(const AiolabLatencyHist *h,
                                                  double p);
AIOLAB_API int64_t aiolab_latency_hist_bucket_value(int idx);

/* ---------------------------------------------------------------------
 * Global state: main loop, BQL held
 * --------------------------------------------------------------------- */

/** AiolabMachineConf: -smp, -m and friends. */
typedef struct AiolabMachineConf {
    int smp;                    /* vCPUs, 1..64 (1) */
    uint64_t ram_size;          /* bytes of guest RAM (128 MiB) */
    bool no_shutdown;           /* -no-shutdown: stop instead of exiting
                                 * when the guest is done */
} AiolabMachineConf;

/**
 * aiolab_machine_new: create the machine: guest RAM (one memfd region at
 * guest physical address 0) and @conf->smp vCPUs, not started.
 * Returns: NULL with @errp set (a machine exists already, bad smp, RAM).
 * Context: main loop, BQL held.
 */
AIOLAB_API AiolabMachine *aiolab_machine_new(const AiolabMachineConf *conf,
                                             Error **errp);

/**
 * aiolab_machine_add_virtio_blk: realize a virtio-blk device on node
 * @drive (an anonymous BlockBackend is created on it, as -device
 * virtio-blk,drive=NODE does), plugged into the machine's transport.
 * @conf->blk, ->block_io_error and ->opaque are the machine's to set;
 * the rest is the caller's (virtio_blk_conf_init() first).  A NULL
 * @conf->id becomes "virtio-blk<N>".
 * Errors: "Property 'virtio-blk-device.drive' can't find value 'x'",
 * "... can't take value 'x', it's in use", a duplicate id, and
 * everything virtio_blk_new() refuses.  Nothing is changed on error.
 * Returns: the device, or NULL.
 * Context: main loop, BQL held; before aiolab_machine_start().
 */
AIOLAB_API VirtIOBlock *aiolab_machine_add_virtio_blk(AiolabMachine *m,
                                                      const VirtIOBlkConf *conf,
                                                      const char *drive,
                                                      Error **errp);

/**
 * aiolab_machine_set_workload: give vCPU @conf->vcpu its workload.
 * Checks it against the machine: the vCPU exists and has no workload
 * yet, the device exists, bs is a multiple of the device's block size,
 * the region lies inside the disk and holds a block.  Verify workloads
 * with size=0 share the disk: each gets an equal, disjoint slice.
 * Returns: false with @errp set.
 * Context: main loop, BQL held; before aiolab_machine_start().
 */
AIOLAB_API bool aiolab_machine_set_workload(AiolabMachine *m,
                                            const AiolabWorkloadConf *conf,
                                            Error **errp);

/**
 * aiolab_machine_start: lay out the guest's rings and buffers in guest
 * RAM, create the vCPU threads and, if @autostart, vm_start() (without
 * it the machine stays in "prelaunch" until vm_start(), as with -S).
 * vCPU 0 boots first: it probes every device (features, queues,
 * DRIVER_OK, each register access an MMIO exit); then every vCPU
 * starts its workload at once, and the measurement begins (BQL
 * statistics reset, CPU times sampled).
 * Returns: false with @errp set ("not enough guest RAM ...").
 * Context: main loop, BQL held; once.
 */
AIOLAB_API bool aiolab_machine_start(AiolabMachine *m, bool autostart,
                                     Error **errp);

/**
 * aiolab_machine_free: stop the vCPUs and join them, unrealize the
 * devices and drop their BlockBackends, free guest RAM.  Nodes and
 * IOThreads stay (they are the caller's).  NULL is allowed.
 * Context: main loop, BQL held.
 */
AIOLAB_API void aiolab_machine_free(AiolabMachine *m);

/** aiolab_machine_get_current: the machine, or NULL.
 * Context: any thread. */
AIOLAB_API AiolabMachine *aiolab_machine_get_current(void);

/**
 * vm_start: resume: RESUME event, cpu_enable_ticks(), run state
 * "running", the devices' VM-state handlers (ioeventfd starts, then
 * virtio_blk_dma_restart_cb re-issues requests parked by
 * werror/rerror=stop in each queue's context), and the vCPUs continue.
 * No-op when already running.
 * Context: main loop, BQL held.
 */
AIOLAB_API void vm_start(void);

/**
 * vm_stop: stop: every vCPU leaves guest code and parks (waited for with
 * the BQL dropped, as pause_all_vcpus does), cpu_disable_ticks(), run
 * state @state, the VM-state handlers (ioeventfd stops, which drains),
 * STOP event, then bdrv_drain_all().  If the VM is not running, the
 * state stays what it is (QEMU stops live states only).  Returns: 0.
 * Context: main loop, BQL held; not from a vCPU thread (use
 * qemu_system_vmstop_request()).
 */
AIOLAB_API int vm_stop(RunState state);

/**
 * vm_shutdown: vm_stop(RUN_STATE_SHUTDOWN) without the STOP event, as a
 * program does on its way out (QEMU's qemu_cleanup).
 * Context: main loop, BQL held.
 */
AIOLAB_API void vm_shutdown(void);

/** runstate_get / runstate_is_running: the run state.
 * Context: any thread. */
AIOLAB_API RunState runstate_get(void);
AIOLAB_API bool runstate_is_running(void);
/** aiolab_runstate_name: "running" etc.  Context: any thread. */
AIOLAB_API const char *aiolab_runstate_name(RunState state);
/** aiolab_shutdown_cause_name: "guest-shutdown" etc.
 * Context: any thread. */
AIOLAB_API const char *aiolab_shutdown_cause_name(ShutdownCause cause);

/**
 * qemu_system_vmstop_request / qemu_system_shutdown_request: ask the
 * main loop to vm_stop(@state) or to shut down; the main loop acts in
 * aiolab_machine_main_loop_should_exit().
 * Context: any thread (a vCPU, an IOThread completing a request, a
 * signal handler for shutdown).
 */
AIOLAB_API void qemu_system_vmstop_request(RunState state);
AIOLAB_API void qemu_system_shutdown_request(ShutdownCause cause);

/**
 * aiolab_machine_main_loop_should_exit: handle pending requests (QEMU's
 * main_loop_should_exit): a vmstop request stops the VM; a shutdown
 * request sends SHUTDOWN and, unless -no-shutdown and the guest asked
 * for it, ends the loop.
 * Returns: true to leave the main loop, with *@cause set (may be NULL).
 * Context: main loop, BQL held.
 */
AIOLAB_API bool aiolab_machine_main_loop_should_exit(AiolabMachine *m,
                                                     ShutdownCause *cause);

/**
 * aiolab_machine_main_loop: QEMU's qemu_main_loop():
 *     while (!main_loop_should_exit()) main_loop_wait(false);
 * Returns: why it ended.
 * Context: main loop, BQL held.
 */
AIOLAB_API ShutdownCause aiolab_machine_main_loop(AiolabMachine *m);

/* Events, delivered in the main loop with the BQL held. */
typedef enum AiolabMachineEventType {
    AIOLAB_MACHINE_EVENT_STOP,
    AIOLAB_MACHINE_EVENT_RESUME,
    AIOLAB_MACHINE_EVENT_SHUTDOWN,
    AIOLAB_MACHINE_EVENT_BLOCK_IO_ERROR,
} AiolabMachineEventType;

typedef struct AiolabMachineEvent {
    AiolabMachineEventType type;
    ShutdownCause cause;        /* SHUTDOWN */
    const char *device;         /* BLOCK_IO_ERROR: the device id */
    const char *node_name;      /* ... its root node */
    bool is_read;
    BlockErrorAction action;
    int error;                  /* positive errno */
} AiolabMachineEvent;

typedef void AiolabMachineEventFunc(void *opaque,
                                    const AiolabMachineEvent *event);

/**
 * aiolab_machine_set_event_handler: call @fn for every event (the QMP
 * monitor sends them on).  Context: main loop, BQL held.
 */
AIOLAB_API void aiolab_machine_set_event_handler(AiolabMachine *m,
                                                 AiolabMachineEventFunc *fn,
                                                 void *opaque);

/* ---------------------------------------------------------------------
 * Inspection: any thread, snapshots (the QMP queries and the report)
 * --------------------------------------------------------------------- */

/** aiolab_machine_get_smp: vCPUs.  Context: any thread. */
AIOLAB_API int aiolab_machine_get_smp(AiolabMachine *m);
/** aiolab_machine_get_ram_size: bytes of guest RAM.
 * Context: any thread. */
AIOLAB_API uint64_t aiolab_machine_get_ram_size(AiolabMachine *m);
/** aiolab_machine_get_vcpu_thread_id: vCPU @i's kernel tid (0 before it
 * runs).  Context: any thread. */
AIOLAB_API int aiolab_machine_get_vcpu_thread_id(AiolabMachine *m, int i);

/** aiolab_machine_num_devices / _get_device / _device_id /
 * _device_blk: the devices in creation order.  Context: any thread. */
AIOLAB_API int aiolab_machine_num_devices(AiolabMachine *m);
AIOLAB_API VirtIOBlock *aiolab_machine_get_device(AiolabMachine *m, int i);
AIOLAB_API const char *aiolab_machine_device_id(AiolabMachine *m, int i);
AIOLAB_API BlockBackend *aiolab_machine_device_blk(AiolabMachine *m, int i);
/** aiolab_machine_device_iothread: the device's iothread= (or NULL).
 * Context: any thread. */
AIOLAB_API const char *aiolab_machine_device_iothread(AiolabMachine *m,
                                                      int i);

/**
 * aiolab_machine_node_in_use: is @bs a device's root node (QEMU's
 * bdrv_has_blk(), for the machine's BlockBackends)?
 * Context: main loop, BQL held.
 */
AIOLAB_API bool aiolab_machine_node_in_use(AiolabMachine *m,
                                           BlockDriverState *bs);
/** aiolab_machine_iothread_in_use: does a device use IOThread @id?
 * Context: main loop, BQL held. */
AIOLAB_API bool aiolab_machine_iothread_in_use(AiolabMachine *m,
                                               const char *id);

/** What one vCPU's workload did, since the measurement began. */
typedef struct AiolabWorkloadStats {
    int vcpu;
    AiolabWorkloadType rw;
    char device[64];
    int queue;                  /* the queue it used (-1: none) */
    bool has_io;                /* an I/O workload (else mmio-hold/idle) */
    bool finished;              /* its guest code ended */
    uint64_t reads, writes;     /* completed requests */
    uint64_t bytes_read, bytes_written;
    uint64_t io_errors;         /* completed with IOERR/UNSUPP */
    uint64_t verified;          /* blocks whose reads were checked */
    uint64_t verify_errors;     /* mismatches (verify workloads) */
    uint64_t lost;              /* submitted, never completed */
    uint64_t kicks;             /* queue notifications written */
    uint64_t kicks_suppressed;  /* ... not needed (EVENT_IDX/NO_NOTIFY) */
    uint64_t interrupts;        /* wake-ups by the interrupt eventfd */
    uint64_t mmio_exits;        /* MMIO exits (BQL taken) */
    int64_t mmio_hold_ns;       /* BQL hold time in mmio-hold exits */
    int64_t elapsed_ns;         /* guest time from the start to the last
                                 * completion */
    AiolabLatencyHist lat_read, lat_write;
    char error[160];            /* the first problem, or "" */
} AiolabWorkloadStats;

/**
 * aiolab_machine_get_workload_stats: vCPU @vcpu's statistics into @out.
 * Returns: false if there is no such vCPU.
 * Context: any thread (a snapshot: consistent once the vCPU has finished
 * or is stopped).
 */
AIOLAB_API bool aiolab_machine_get_workload_stats(AiolabMachine *m, int vcpu,
                                                  AiolabWorkloadStats *out);

/** CPU time one thread used since the measurement began. */
typedef struct AiolabThreadCpu {
    int tid;
    char name[32];
    int64_t cpu_ns;             /* user + system */
} AiolabThreadCpu;

/**
 * aiolab_machine_get_thread_cpu: CPU time of each of the process's
 * threads since the measurement began (from /proc/self/task/TID/stat
 * and schedstat), into up to @max entries.  Returns: how many threads.
 * Context: any thread.
 */
AIOLAB_API size_t aiolab_machine_get_thread_cpu(AiolabMachine *m,
                                                AiolabThreadCpu *out,
                                                size_t max);

/**
 * aiolab_machine_get_measure_ns: guest time since the measurement began
 * (0 before), frozen while stopped.
 * Context: any thread.
 */
AIOLAB_API int64_t aiolab_machine_get_measure_ns(AiolabMachine *m);

/**
 * aiolab_machine_guest_done: has every vCPU with an I/O workload
 * finished?
 * Context: any thread.
 */
AIOLAB_API bool aiolab_machine_guest_done(AiolabMachine *m);

#endif

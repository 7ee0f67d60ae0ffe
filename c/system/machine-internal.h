/* SPDX-License-Identifier: MIT */
/*
 * system/machine-internal.h - the insides of the toy machine, shared by
 * machine.c (assembly, run state, main loop), machine-transport.c (the
 * register window a vCPU's MMIO exit lands in), machine-stats.c, vcpu.c
 * (the vCPU threads), vcpu-guest.c (the guest's virtio-blk driver) and
 * vcpu-workload.c (what the guest does with it).  Not a public header.
 *
 * Two sides live here and must not be confused:
 *   host side   MachineDevice's VirtIOBlock/BlockBackend, the run state,
 *               the vCPU thread's QEMU-style flags: the emulator's state,
 *               protected by the BQL;
 *   guest side  GuestQueue, GuestReq, Workload: what the guest kernel
 *               would keep in its own memory, protected by the guest's
 *               own locks (GuestQueue.lock is its virtqueue spinlock).
 *               Guest code never takes the BQL except by exiting.
 */
#ifndef AIOLAB_SYSTEM_MACHINE_INTERNAL_H
#define AIOLAB_SYSTEM_MACHINE_INTERNAL_H

#include <pthread.h>
#include <aiolab/aiolab.h>
#include <aiolab/machine.h>

#define MACHINE_MAX_CPUS    64
#define MACHINE_MAX_DEVICES 16

typedef struct CPUState CPUState;
typedef struct MachineDevice MachineDevice;

/* --- guest side ------------------------------------------------------- */

/* One request slot of a vCPU: its three buffers in guest RAM. */
typedef struct GuestReq {
    CPUState *owner;
    uint64_t hdr_gpa, data_gpa, status_gpa;
    uint8_t *hdr, *data, *status;       /* host views of the same bytes */
    /* Owner only */
    bool in_flight;
    bool is_write;
    bool lost;                          /* given up on: never reused */
    bool sweep;                         /* a verify workload's final read */
    int64_t block;                      /* block index in the region */
    uint32_t gen;                       /* verify: generation written */
    int64_t submit_ns;                  /* REALTIME, for latency */
    int64_t submit_vns;                 /* VIRTUAL, for "lost" */
    /* Protected by the queue's lock: set by whichever vCPU collected it */
    bool done;
    uint32_t used_len;
    int64_t done_ns;
} GuestReq;

/* The driver's view of one virtqueue, shared by the vCPUs mapped to it. */
typedef struct GuestQueue {
    MachineDevice *dev;
    int index;
    uint64_t ring_gpa;                  /* where its three areas start */
    unsigned max_num;                   /* entries laid out for */
    EventNotifier *irq;                 /* the device's guest notifier */
    int users;                          /* vCPUs mapped here */
    pthread_mutex_t lock;               /* the guest's vq lock: vr, by_head,
                                         * and GuestReq.done/used_len */
    AiolabVring vr;
    GuestReq **by_head;                 /* head -> request in flight */
    bool ready;                         /* set up by the boot vCPU */
} GuestQueue;

/* --- host side: a device and its transport ------------------------------ */

struct MachineDevice {
    AiolabMachine *m;
    int index;
    char id[64];
    char iothread[64];                  /* iothread= or "" */
    char **mapping_iothreads;           /* iothread-vq-mapping ids, or NULL */
    size_t n_mapping;
    BlockBackend *blk;
    VirtIOBlock *s;
    VirtIODevice *vdev;
    bool ioeventfd;                     /* conf.ioeventfd */
    int num_queues;                     /* conf.num_queues, resolved */
    unsigned queue_size;
    GuestQueue *queues;                 /* [num_queues] */

    /* Transport registers (BQL): the virtio-mmio window's latches */
    uint32_t dev_features_sel, drv_features_sel, queue_sel;
    uint64_t drv_features;
    uint64_t q_desc, q_avail, q_used;   /* of queue_sel, until QueueReady */

    /* Guest's view, written by the boot vCPU, then read-only */
    bool guest_ready;                   /* atomic */
    bool guest_failed;                  /* atomic: NEEDS_RESET seen */
    bool config_irq;                    /* atomic: config interrupt pending */
    uint64_t capacity_bytes;
    uint32_t blk_size;
    int guest_num_queues;               /* queues the driver set up */
    bool event_idx;
    char guest_error[128];              /* why the driver gave up, or "" */
};

/* The virtio-mmio register offsets (virtio 1.x, 4.2.2), the subset used. */
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_AVAIL_LOW     0x090
#define VIRTIO_MMIO_QUEUE_AVAIL_HIGH    0x094
#define VIRTIO_MMIO_QUEUE_USED_LOW      0x0a0
#define VIRTIO_MMIO_QUEUE_USED_HIGH     0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100

/* --- the vCPU ----------------------------------------------------------- */

/* What vcpu_exec() returns (QEMU's EXCP_*). */
enum { EXCP_INTERRUPT = 1, EXCP_HLT = 2 };

/* Where a vCPU's guest code is; it resumes here after a stop. */
typedef enum GuestPhase {
    GUEST_BOOT,         /* vCPU 0 probes the devices; others wait */
    GUEST_WAIT_GO,      /* reported ready; wait for the common start */
    GUEST_RUN,          /* the workload */
    GUEST_DRAIN,        /* no new requests; wait for those in flight */
    GUEST_SWEEP,        /* verify: read back every block written */
    GUEST_DONE,
} GuestPhase;

/* A vCPU's workload state (guest side, the vCPU's thread only). */
typedef struct Workload {
    AiolabWorkloadConf conf;
    bool has_io;
    MachineDevice *dev;
    GuestQueue *q;
    GuestReq *reqs;                     /* [conf.iodepth] */
    int64_t region_off;                 /* bytes */
    int64_t nblocks;                    /* region size / bs */
    uint32_t *gen;                      /* verify: generation per block */
    uint8_t *busy;                      /* verify: a request in flight */
    int64_t *written;                   /* verify: blocks written, in order */
    int64_t nwritten;
    uint64_t rng;
    int64_t seq_next;                   /* seqwrite/seqread: next block */
    int64_t sweep_next;                 /* verify: next block to sweep */
    uint64_t submitted;
    unsigned in_flight;
    int64_t start_vns, last_done_vns;   /* VIRTUAL */
    int64_t next_mmio_vns;              /* mmio-hold: next exit */
    uint64_t mmio_done;
    bool reconfigured;                  /* reconfigure=N: done */
} Workload;

struct CPUState {
    AiolabMachine *m;
    int cpu_index;
    pthread_t thread;
    int thread_id;                      /* atomic: published at start */
    EventNotifier kick;                 /* exit requests and IPIs */
    bool exit_request;                  /* atomic (QEMU's exit_request) */
    bool ipi;                           /* atomic: an IPI since the guest
                                         * last looked (polling guests) */

    /* QEMU's CPUState flags: BQL (and m->cpu_lock for the condvars) */
    bool created, stop, stopped, unplug;
    bool finished;                      /* the guest code ended */
    pthread_cond_t halt_cond;

    /* Guest side: this vCPU's thread only */
    GuestPhase phase;
    bool has_workload;                  /* set before start, then fixed */
    Workload wl;

    pthread_mutex_t stats_lock;         /* stats: this thread writes */
    AiolabWorkloadStats stats;
};

/* --- the machine -------------------------------------------------------- */

struct AiolabMachine {
    AiolabMachineConf conf;
    GuestMemory *mem;
    uint64_t ram_next;                  /* guest "allocator": next free gpa */

    int ndevs;
    MachineDevice *devs[MACHINE_MAX_DEVICES];
    CPUState *cpus[MACHINE_MAX_CPUS];
    bool started;

    /* Run state: BQL; read anywhere with atomics */
    RunState runstate;
    pthread_mutex_t cpu_lock;           /* the condvars' mutex (inside BQL) */
    pthread_cond_t pause_cond, created_cond;

    /* Requests from any thread (atomics), acted on by the main loop */
    int vmstop_request;                 /* RunState + 1, or 0 */
    int shutdown_request;               /* ShutdownCause, or 0 */

    /* Guest-side synchronisation: atomics */
    bool booted;                        /* vCPU 0 probed every device */
    int ready_vcpus;                    /* vCPUs waiting for go */
    bool go;                            /* the measurement has begun */
    int io_running;                     /* I/O workloads not yet done */
    int wl_running;                     /* workloads not yet done */
    int n_workloads;
    int n_io_workloads;

    /* Measurement (main loop writes; atomics) */
    int64_t measure_vns;                /* VIRTUAL at go */
    QEMUBH *go_bh;
    struct MachineCpuSample *cpu_base;  /* under stats_lock */
    size_t n_cpu_base;
    pthread_mutex_t stats_lock;

    /* Events */
    AiolabMachineEventFunc *event_fn;
    void *event_opaque;
    pthread_mutex_t event_lock;         /* queued BLOCK_IO_ERRORs */
    struct MachineEventQueue *events;
    QEMUBH *event_bh;
};

/* machine.c */
extern AiolabMachine *current_machine;
void machine_emit(AiolabMachine *m, const AiolabMachineEvent *ev);
/* Send the queued BLOCK_IO_ERRORs now (main loop, BQL). */
void machine_flush_events(AiolabMachine *m);
void machine_vcpu_ready(CPUState *cpu);
void machine_vcpu_finished(CPUState *cpu);
void machine_io_error(void *opaque, BlockErrorAction action, bool is_read,
                      int error);

/* machine-transport.c: a vCPU's MMIO exit lands here (BQL held) */
uint64_t transport_mmio_read(MachineDevice *d, uint64_t addr, unsigned size);
void transport_mmio_write(MachineDevice *d, uint64_t addr, uint64_t val,
                          unsigned size);
extern const VirtioBusOps machine_bus_ops;

/* machine-stats.c */
void machine_stats_start(AiolabMachine *m);
void machine_stats_free(AiolabMachine *m);

/* vcpu.c */
bool vcpu_create(AiolabMachine *m, CPUState *cpu, Error **errp);
void qemu_cpu_kick(CPUState *cpu);
void vcpu_ipi(CPUState *cpu);
void pause_all_vcpus(AiolabMachine *m);
void resume_all_vcpus(AiolabMachine *m);
void vcpu_unplug_all(AiolabMachine *m);
void cond_wait_bql(AiolabMachine *m, pthread_cond_t *cond);
uint64_t vcpu_mmio_read(CPUState *cpu, MachineDevice *d, uint64_t addr,
                        unsigned size);
void vcpu_mmio_write(CPUState *cpu, MachineDevice *d, uint64_t addr,
                     uint64_t val, unsigned size);
void vcpu_queue_notify(CPUState *cpu, MachineDevice *d, int n);
bool vcpu_should_exit(CPUState *cpu);
int64_t vcpu_vclock(void);
int64_t vcpu_now(void);

/* vcpu-guest.c: the driver */
bool guest_probe_device(CPUState *cpu, MachineDevice *d);
int guest_submit(CPUState *cpu, GuestQueue *q, GuestReq **reqs, int n,
                 bool malformed);
void guest_collect(CPUState *cpu, GuestQueue *q);
int guest_halt(CPUState *cpu, GuestQueue *q, int64_t timeout_ns);
bool guest_used_pending(GuestQueue *q);
bool guest_ipi_pending(CPUState *cpu);
void guest_suppress_interrupts(GuestQueue *q);
bool guest_device_failed(CPUState *cpu, MachineDevice *d);
void guest_reconfigure_queue(CPUState *cpu, GuestQueue *q);
void guest_stats_add(CPUState *cpu, uint64_t *field, uint64_t n);

/* vcpu-workload.c */
bool workload_setup(AiolabMachine *m, CPUState *cpu, Error **errp);
void workload_free(CPUState *cpu);
int workload_run(CPUState *cpu);

#endif

/* cdefs for aiolab/machine.h: the toy machine. */
typedef struct AiolabMachine AiolabMachine;
typedef enum RunState {
    RUN_STATE_PRELAUNCH,
    RUN_STATE_RUNNING,
    RUN_STATE_PAUSED,
    RUN_STATE_IO_ERROR,
    RUN_STATE_SHUTDOWN,
    RUN_STATE__MAX
} RunState;
typedef enum ShutdownCause {
    SHUTDOWN_CAUSE_NONE,
    SHUTDOWN_CAUSE_HOST_QMP_QUIT,
    SHUTDOWN_CAUSE_HOST_SIGNAL,
    SHUTDOWN_CAUSE_GUEST_SHUTDOWN,
    SHUTDOWN_CAUSE__MAX
} ShutdownCause;
typedef enum AiolabWorkloadType {
    AIOLAB_WL_NONE,
    AIOLAB_WL_RANDREAD,
    AIOLAB_WL_RANDWRITE,
    AIOLAB_WL_RANDRW,
    AIOLAB_WL_SEQWRITE,
    AIOLAB_WL_SEQREAD,
    AIOLAB_WL_VERIFY,
    AIOLAB_WL__MAX
} AiolabWorkloadType;
typedef struct AiolabWorkloadConf {
    int vcpu;
    AiolabWorkloadType rw;
    char device[64];
    int queue;
    uint32_t bs;
    uint32_t iodepth;
    int64_t runtime_ns;
    uint64_t count;
    int64_t offset;
    int64_t size;
    int rwmixread;
    uint64_t seed;
    int64_t mmio_hold_ns;
    int64_t mmio_period_ns;
    int64_t poll_ns;
    uint64_t malformed_at;
    int64_t timeout_ns;
    uint64_t reconfigure_at;
} AiolabWorkloadConf;
void aiolab_workload_conf_init(AiolabWorkloadConf *conf);
bool aiolab_workload_parse(const char *str, AiolabWorkloadConf *conf,
                           Error **errp);
const char *aiolab_workload_type_name(AiolabWorkloadType type);

#define AIOLAB_LAT_SUB_BITS 5
#define AIOLAB_LAT_BUCKETS 1216
typedef struct AiolabLatencyHist {
    uint64_t count;
    int64_t min_ns, max_ns;
    double sum_ns;
    uint64_t buckets[1216];
} AiolabLatencyHist;
void aiolab_latency_hist_add(AiolabLatencyHist *h, int64_t ns);
void aiolab_latency_hist_merge(AiolabLatencyHist *dst,
                               const AiolabLatencyHist *src);
int64_t aiolab_latency_hist_percentile(const AiolabLatencyHist *h, double p);
int64_t aiolab_latency_hist_bucket_value(int idx);

typedef struct AiolabMachineConf {
    int smp;
    uint64_t ram_size;
    bool no_shutdown;
} AiolabMachineConf;
AiolabMachine *aiolab_machine_new(const AiolabMachineConf *conf,
                                  Error **errp);
VirtIOBlock *aiolab_machine_add_virtio_blk(AiolabMachine *m,
                                           const VirtIOBlkConf *conf,
                                           const char *drive, Error **errp);
bool aiolab_machine_set_workload(AiolabMachine *m,
                                 const AiolabWorkloadConf *conf,
                                 Error **errp);
bool aiolab_machine_start(AiolabMachine *m, bool autostart, Error **errp);
void aiolab_machine_free(AiolabMachine *m);
AiolabMachine *aiolab_machine_get_current(void);
void vm_start(void);
int vm_stop(RunState state);
void vm_shutdown(void);
RunState runstate_get(void);
bool runstate_is_running(void);
const char *aiolab_runstate_name(RunState state);
const char *aiolab_shutdown_cause_name(ShutdownCause cause);
void qemu_system_vmstop_request(RunState state);
void qemu_system_shutdown_request(ShutdownCause cause);
bool aiolab_machine_main_loop_should_exit(AiolabMachine *m,
                                          ShutdownCause *cause);
ShutdownCause aiolab_machine_main_loop(AiolabMachine *m);

typedef enum AiolabMachineEventType {
    AIOLAB_MACHINE_EVENT_STOP,
    AIOLAB_MACHINE_EVENT_RESUME,
    AIOLAB_MACHINE_EVENT_SHUTDOWN,
    AIOLAB_MACHINE_EVENT_BLOCK_IO_ERROR,
} AiolabMachineEventType;
typedef struct AiolabMachineEvent {
    AiolabMachineEventType type;
    ShutdownCause cause;
    const char *device;
    const char *node_name;
    bool is_read;
    BlockErrorAction action;
    int error;
} AiolabMachineEvent;
typedef void AiolabMachineEventFunc(void *opaque,
                                    const AiolabMachineEvent *event);
void aiolab_machine_set_event_handler(AiolabMachine *m,
                                      AiolabMachineEventFunc *fn,
                                      void *opaque);

int aiolab_machine_get_smp(AiolabMachine *m);
uint64_t aiolab_machine_get_ram_size(AiolabMachine *m);
int aiolab_machine_get_vcpu_thread_id(AiolabMachine *m, int i);
int aiolab_machine_num_devices(AiolabMachine *m);
VirtIOBlock *aiolab_machine_get_device(AiolabMachine *m, int i);
const char *aiolab_machine_device_id(AiolabMachine *m, int i);
BlockBackend *aiolab_machine_device_blk(AiolabMachine *m, int i);
const char *aiolab_machine_device_iothread(AiolabMachine *m, int i);
bool aiolab_machine_node_in_use(AiolabMachine *m, BlockDriverState *bs);
bool aiolab_machine_iothread_in_use(AiolabMachine *m, const char *id);

typedef struct AiolabWorkloadStats {
    int vcpu;
    AiolabWorkloadType rw;
    char device[64];
    int queue;
    bool has_io;
    bool finished;
    uint64_t reads, writes;
    uint64_t bytes_read, bytes_written;
    uint64_t io_errors;
    uint64_t verified;
    uint64_t verify_errors;
    uint64_t lost;
    uint64_t kicks;
    uint64_t kicks_suppressed;
    uint64_t interrupts;
    uint64_t mmio_exits;
    int64_t mmio_hold_ns;
    int64_t elapsed_ns;
    AiolabLatencyHist lat_read, lat_write;
    char error[160];
} AiolabWorkloadStats;
bool aiolab_machine_get_workload_stats(AiolabMachine *m, int vcpu,
                                       AiolabWorkloadStats *out);
typedef struct AiolabThreadCpu {
    int tid;
    char name[32];
    int64_t cpu_ns;
} AiolabThreadCpu;
size_t aiolab_machine_get_thread_cpu(AiolabMachine *m, AiolabThreadCpu *out,
                                     size_t max);
int64_t aiolab_machine_get_measure_ns(AiolabMachine *m);
bool aiolab_machine_guest_done(AiolabMachine *m);

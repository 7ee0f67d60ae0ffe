/*
 * cdefs for aiolab/blockjob.h: driving block jobs (start a mirror,
 * complete, cancel, pause, query, events).  C-only (bindings/c-only.txt):
 * a job's own code - JobDriver and the coroutine_fns it calls.  The
 * test-only undrained swap is bound for the chapter 7 notebook (it shows
 * the race drained sections prevent).  BlockdevOnError and
 * BlockErrorAction are in cdefs/block.h, as in C.
 */
typedef struct Job Job;
typedef enum JobStatus {
    JOB_STATUS_UNDEFINED,
    JOB_STATUS_CREATED,
    JOB_STATUS_RUNNING,
    JOB_STATUS_PAUSED,
    JOB_STATUS_READY,
    JOB_STATUS_STANDBY,
    JOB_STATUS_WAITING,
    JOB_STATUS_PENDING,
    JOB_STATUS_ABORTING,
    JOB_STATUS_CONCLUDED,
    JOB_STATUS_NULL,
    JOB_STATUS__MAX,
} JobStatus;
typedef enum {
    JOB_DEFAULT = 0x00,
    JOB_MANUAL_FINALIZE = 0x01,
    JOB_MANUAL_DISMISS = 0x02,
} JobCreateFlags;
typedef enum BlockDeviceIoStatus {
    BLOCK_DEVICE_IO_STATUS_OK,
    BLOCK_DEVICE_IO_STATUS_FAILED,
    BLOCK_DEVICE_IO_STATUS_NOSPACE,
} BlockDeviceIoStatus;
typedef struct BlockJobInfo {
    char type[16];
    char device[64];
    int64_t len;
    int64_t offset;
    bool busy;
    bool paused;
    int64_t speed;
    BlockDeviceIoStatus io_status;
    bool ready;
    JobStatus status;
    bool auto_finalize;
    bool auto_dismiss;
    char error[128];
} BlockJobInfo;
typedef enum AiolabJobEventType {
    AIOLAB_JOB_EVENT_STATUS_CHANGE,
    AIOLAB_JOB_EVENT_READY,
    AIOLAB_JOB_EVENT_COMPLETED,
    AIOLAB_JOB_EVENT_CANCELLED,
    AIOLAB_JOB_EVENT_ERROR,
} AiolabJobEventType;
typedef struct AiolabJobEvent {
    AiolabJobEventType type;
    char id[64];
    char job_type[16];
    JobStatus status;
    int64_t len, offset, speed;
    int ret;
    char error[128];
    bool is_read;
    BlockErrorAction action;
} AiolabJobEvent;
typedef void AiolabJobEventFunc(const AiolabJobEvent *event, void *opaque);

Job *mirror_start(const char *job_id, BlockDriverState *bs,
                  BlockDriverState *target, int creation_flags,
                  int64_t speed, uint32_t granularity, int64_t buf_size,
                  BlockdevOnError on_source_error,
                  BlockdevOnError on_target_error,
                  const char *filter_node_name, Error **errp);
void job_ref(Job *job);
void job_unref(Job *job);
Job *job_get(const char *id);
Job *job_next(Job *job);
void job_pause(Job *job);
void job_resume(Job *job);
void job_user_pause(Job *job, Error **errp);
void job_user_resume(Job *job, Error **errp);
bool job_user_paused(Job *job);
void job_complete(Job *job, Error **errp);
int job_complete_sync(Job *job, Error **errp);
void job_cancel(Job *job, bool force);
int job_cancel_sync(Job *job, bool force);
void job_cancel_sync_all(void);
void job_dismiss(Job *job, Error **errp);
bool block_job_set_speed(Job *job, int64_t speed, Error **errp);
void block_job_query(Job *job, BlockJobInfo *info);
size_t aiolab_block_job_query_all(BlockJobInfo *out, size_t max);
void aiolab_job_add_event_listener(AiolabJobEventFunc *fn, void *opaque);
void aiolab_job_remove_event_listener(AiolabJobEventFunc *fn, void *opaque);
bool job_is_ready(Job *job);
bool job_is_completed(Job *job);
bool job_is_cancelled(Job *job);
bool job_cancel_requested(Job *job);
const char *JobStatus_str(JobStatus status);
const char *aiolab_job_get_id(Job *job);
JobStatus aiolab_job_get_status(Job *job);
AioContext *aiolab_job_get_aio_context(Job *job);
int aiolab_job_get_pause_count(Job *job);
bool aiolab_job_is_paused(Job *job);
bool aiolab_job_is_busy(Job *job);
void aiolab_job_get_progress(Job *job, uint64_t *current, uint64_t *total);
int aiolab_job_get_ret(Job *job);
void job_enter(Job *job);
int aiolab_test_replace_node_undrained(BlockDriverState *from,
                                       BlockDriverState *to, Error **errp);

/* cdefs for aiolab/trace.h */
typedef struct AiolabTraceRecord {
    int64_t ts_ns;
    int tid;
    char phase;
    const char *name;
    const char *label;
    int64_t arg;
} AiolabTraceRecord;
typedef struct AiolabTraceThread {
    int tid;
    char name[32];
} AiolabTraceThread;
void aiolab_trace_set_enabled(bool enabled);
bool aiolab_trace_get_enabled(void);
void aiolab_trace_clear(void);
size_t aiolab_trace_collect(AiolabTraceRecord *out, size_t max,
                            int64_t since_ns);
size_t aiolab_trace_threads(AiolabTraceThread *out, size_t max);
bool aiolab_trace_write_json(const char *path, int64_t since_ns,
                             Error **errp);
int64_t aiolab_trace_now_ns(void);
void aiolab_trace_mark(const char *name, int64_t arg);
void aiolab_trace_begin(const char *name, int64_t arg);
void aiolab_trace_end(const char *name, int64_t arg);
void aiolab_thread_set_name(const char *name);
const char *aiolab_intern_string(const char *s);

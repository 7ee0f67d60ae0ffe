/* cdefs for aiolab/iothread.h */
typedef struct IOThread IOThread;
IOThread *iothread_create(const char *id, Error **errp);
void iothread_stop(IOThread *iothread);
void iothread_destroy(IOThread *iothread);
IOThread *iothread_by_id(const char *id);
AioContext *iothread_get_aio_context(IOThread *iothread);
char *iothread_get_id(IOThread *iothread);
int iothread_get_thread_id(IOThread *iothread);
bool iothread_set_poll_params(IOThread *iothread, int64_t max_ns,
                              int64_t grow, int64_t shrink, Error **errp);
bool iothread_set_aio_max_batch(IOThread *iothread, int64_t max_batch,
                                Error **errp);
bool iothread_set_thread_pool_params(IOThread *iothread, int64_t min,
                                     int64_t max, Error **errp);
bool aiolab_iothread_get_param(IOThread *iothread, const char *name,
                               int64_t *value);
size_t aiolab_iothread_list(IOThread **out, size_t max);

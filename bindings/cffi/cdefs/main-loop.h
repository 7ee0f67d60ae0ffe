/* cdefs for aiolab/main-loop.h.  C-only: aiolab_bql_guard_lock and
 * aiolab_bql_guard_unlock (the halves of the BQL_LOCK_GUARD() macro;
 * Python has `with aiolab.bql():`). */
int qemu_init_main_loop(Error **errp);
void main_loop_wait(int nonblocking);
AioContext *qemu_get_aio_context(void);
AioContext *iohandler_get_aio_context(void);
QEMUBH *qemu_bh_new_full(QEMUBHFunc *cb, void *opaque, const char *name,
                         MemReentrancyGuard *guard);
QEMUBH *qemu_bh_new(QEMUBHFunc *cb, void *opaque);
QEMUBH *qemu_bh_new_guarded(QEMUBHFunc *cb, void *opaque,
                            MemReentrancyGuard *guard);
void qemu_set_fd_handler(int fd, IOHandler *fd_read, IOHandler *fd_write,
                         void *opaque);
void qemu_notify_event(void);
void bql_lock(void);
void bql_unlock(void);
bool bql_locked(void);
bool qemu_in_main_thread(void);
bool qemu_in_iothread(void);
typedef struct AiolabBqlStats {
    char thread_name[32];
    int tid;
    uint64_t acquisitions;
    uint64_t contended;
    int64_t wait_ns_total;
    int64_t wait_ns_max;
    int64_t hold_ns_total;
    int64_t hold_ns_max;
} AiolabBqlStats;
size_t aiolab_bql_get_stats(AiolabBqlStats *out, size_t max);
void aiolab_bql_reset_stats(void);
int aiolab_bql_holder_tid(void);

/* cdefs for aiolab/timer.h */
typedef enum {
    QEMU_CLOCK_REALTIME = 0,
    QEMU_CLOCK_VIRTUAL = 1,
    QEMU_CLOCK_HOST = 2,
    QEMU_CLOCK_VIRTUAL_RT = 3,
    QEMU_CLOCK_MAX
} QEMUClockType;
typedef struct QEMUTimer QEMUTimer;
typedef void QEMUTimerCB(void *opaque);
int64_t qemu_clock_get_ns(QEMUClockType type);
int64_t qemu_clock_get_us(QEMUClockType type);
int64_t qemu_clock_get_ms(QEMUClockType type);
void qemu_clock_enable(QEMUClockType type, bool enabled);
bool aiolab_clock_is_enabled(QEMUClockType type);
void cpu_enable_ticks(void);
void cpu_disable_ticks(void);
QEMUTimer *aio_timer_new(AioContext *ctx, QEMUClockType type, int scale,
                         QEMUTimerCB *cb, void *opaque);
QEMUTimer *timer_new_ns(QEMUClockType type, QEMUTimerCB *cb, void *opaque);
QEMUTimer *timer_new_us(QEMUClockType type, QEMUTimerCB *cb, void *opaque);
QEMUTimer *timer_new_ms(QEMUClockType type, QEMUTimerCB *cb, void *opaque);
void timer_mod(QEMUTimer *ts, int64_t expire_time);
void timer_mod_ns(QEMUTimer *ts, int64_t expire_time);
void timer_mod_anticipate(QEMUTimer *ts, int64_t expire_time);
void timer_mod_anticipate_ns(QEMUTimer *ts, int64_t expire_time);
void timer_del(QEMUTimer *ts);
void timer_free(QEMUTimer *ts);
bool timer_pending(QEMUTimer *ts);
bool timer_expired(QEMUTimer *ts, int64_t current_time);
uint64_t timer_expire_time_ns(QEMUTimer *ts);
int qemu_timeout_ns_to_ms(int64_t ns);

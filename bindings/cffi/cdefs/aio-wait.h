/* cdefs for aiolab/aio-wait.h (AIO_WAIT_WHILE is a macro: Python's
 * aiolab.aio_wait_while() is built on its two halves). */
AioContext *aiolab_aio_wait_begin(AioContext *ctx, const char *func,
                                  const char *file, int line,
                                  const char *cond);
void aiolab_aio_wait_end(void);
void aio_wait_kick(void);
void aio_wait_bh_oneshot(AioContext *ctx, QEMUBHFunc *cb, void *opaque);
unsigned aiolab_aio_wait_num_waiters(void);

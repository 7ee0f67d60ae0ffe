/* cdefs for aiolab/iov.h */
struct iovec {
    void *iov_base;
    size_t iov_len;
};
typedef struct QEMUIOVector {
    struct iovec *iov;
    int niov;
    int nalloc;
    struct iovec local_iov;
    size_t size;
} QEMUIOVector;
void qemu_iovec_init(QEMUIOVector *qiov, int alloc_hint);
void qemu_iovec_init_buf(QEMUIOVector *qiov, const void *buf, size_t len);
void qemu_iovec_init_external(QEMUIOVector *qiov, struct iovec *iov,
                              int niov);
void qemu_iovec_add(QEMUIOVector *qiov, void *base, size_t len);
void qemu_iovec_concat(QEMUIOVector *dst, QEMUIOVector *src, size_t soffset,
                       size_t sbytes);
void qemu_iovec_reset(QEMUIOVector *qiov);
void qemu_iovec_destroy(QEMUIOVector *qiov);
size_t qemu_iovec_to_buf(QEMUIOVector *qiov, size_t offset, void *buf,
                         size_t bytes);
size_t qemu_iovec_from_buf(QEMUIOVector *qiov, size_t offset,
                           const void *buf, size_t bytes);
size_t qemu_iovec_memset(QEMUIOVector *qiov, size_t offset, int fillc,
                         size_t bytes);

/* cdefs for aiolab/hw/guest-memory.h.  The static inline ld/st helpers
 * are not functions of the library (Python uses struct.pack). */
typedef struct GuestMemory GuestMemory;
typedef struct GuestMemRegion {
    uint64_t gpa;
    uint64_t size;
    void *hva;
    int fd;
    uint64_t fd_offset;
    uint64_t uaddr;
} GuestMemRegion;
#define AIOLAB_GUEST_MEM_MAX_REGIONS 509
GuestMemory *aiolab_guest_mem_new(void);
void aiolab_guest_mem_free(GuestMemory *mem);
void *aiolab_guest_mem_add_ram(GuestMemory *mem, uint64_t gpa, uint64_t size,
                               const char *name, Error **errp);
void *aiolab_guest_mem_add_fd(GuestMemory *mem, uint64_t gpa, uint64_t size,
                              int fd, uint64_t fd_offset, uint64_t uaddr,
                              Error **errp);
int aiolab_guest_mem_remove(GuestMemory *mem, uint64_t gpa, uint64_t size,
                            Error **errp);
size_t aiolab_guest_mem_get_regions(GuestMemory *mem, GuestMemRegion *out,
                                    size_t max);
void *aiolab_guest_mem_translate(GuestMemory *mem, uint64_t gpa, uint64_t len);
int aiolab_guest_mem_map_sg(GuestMemory *mem, uint64_t gpa, uint64_t len,
                            struct iovec *iov, unsigned int *niov,
                            unsigned int max_iov);
int aiolab_guest_mem_read(GuestMemory *mem, uint64_t gpa, void *buf,
                          size_t len);
int aiolab_guest_mem_write(GuestMemory *mem, uint64_t gpa, const void *buf,
                           size_t len);
bool aiolab_guest_mem_uaddr_to_gpa(GuestMemory *mem, uint64_t uaddr,
                                   uint64_t len, uint64_t *gpa);

/* SPDX-License-Identifier: MIT */
/*
 * aiolab/hw/guest-memory.h - the guest's RAM as the device sees it: a
 * list of regions, and address translation that never strays outside
 * them (QEMU's AddressSpace + MemoryRegionCache + dma_memory_map, reduced
 * to what a virtio device needs).
 *
 *   guest physical                       host virtual (this process)
 *   0x0000_0000 +----------+             hva +----------+  memfd, MAP_SHARED
 *               | region 0 |  ---------->    | region 0 |  (another process
 *   0x0400_0000 +----------+                 +----------+   can mmap the
 *               |  (hole)  |                                 same fd: the
 *   0x1000_0000 +----------+             hva +----------+    vhost-user
 *               | region 1 |  ---------->    | region 1 |    SET_MEM_TABLE
 *               +----------+                 +----------+    model)
 *
 * A region is {gpa, size, hva, fd, fd_offset, uaddr}.  Regions made here
 * are memfd-backed (memfd_create + ftruncate + mmap MAP_SHARED) with a
 * PROT_NONE guard page on each side, so an access that strays off a
 * region's end faults at once; regions can also be mapped from an fd
 * received from elsewhere (vhost-user SET_MEM_TABLE / ADD_MEM_REG), and
 * removed (REM_MEM_REG).
 *
 * The one rule: aiolab_guest_mem_translate() returns a host pointer only
 * for a range that lies wholly inside ONE region (and whose end does not
 * overflow).  Everything the device reads or writes in guest memory goes
 * through it, so a malicious guest can name any address it likes and
 * still never make the device touch anything else.
 *
 * Changing the region list (add/remove/free) is a management operation:
 * no virtqueue that uses @mem may be processing or have elements in
 * flight (stop ioeventfd or drain, as vhost-user frontends do around a
 * mem table change).  Translation and the accessors may run in any thread
 * otherwise.
 *
 * Where QEMU differs: QEMU translates through RCU-protected FlatViews, so
 * memory hot-plug can run concurrently with I/O, and maps MMIO bounce
 * buffers for non-RAM; aiolab has RAM regions only and requires quiescing.
 * No IOMMU, no dirty logging.
 */
#ifndef AIOLAB_HW_GUEST_MEMORY_H
#define AIOLAB_HW_GUEST_MEMORY_H

#include <string.h>
#include <sys/uio.h>
#include <aiolab/error.h>

typedef struct GuestMemory GuestMemory;

/** One region of guest RAM. */
typedef struct GuestMemRegion {
    uint64_t gpa;        /* guest physical address of the first byte */
    uint64_t size;       /* bytes */
    void *hva;           /* where this process sees the first byte */
    int fd;              /* the memfd or received fd behind it, or -1 */
    uint64_t fd_offset;  /* offset of the first byte in @fd */
    uint64_t uaddr;      /* vhost-user: the frontend's virtual address of
                          * the first byte (0 when not known) */
} GuestMemRegion;

#define AIOLAB_GUEST_MEM_MAX_REGIONS 509   /* vhost-user's max mem slots */

/* ---------------------------------------------------------------------
 * Management: one thread at a time, nothing in flight (see above)
 * --------------------------------------------------------------------- */

/**
 * aiolab_guest_mem_new: an empty guest memory (no regions).
 * Context: any thread.
 */
AIOLAB_API GuestMemory *aiolab_guest_mem_new(void);

/**
 * aiolab_guest_mem_free: unmap every region, close their fds, free @mem.
 * NULL is allowed.
 * Context: any thread, with nothing using @mem any more.
 */
AIOLAB_API void aiolab_guest_mem_free(GuestMemory *mem);

/**
 * aiolab_guest_mem_add_ram: create a region of @size bytes of fresh
 * zeroed RAM at @gpa: a memfd named @name, ftruncate'd and mapped
 * MAP_SHARED between two PROT_NONE guard pages.
 * @size: a non-zero multiple of the page size; @gpa page-aligned.
 * Returns: the region's host address, or NULL with @errp set (overlap
 * with another region, overflow, bad alignment, too many regions,
 * memfd/mmap failure).
 * Context: management (see the header comment).
 */
AIOLAB_API void *aiolab_guest_mem_add_ram(GuestMemory *mem, uint64_t gpa,
                                          uint64_t size, const char *name,
                                          Error **errp);

/**
 * aiolab_guest_mem_add_fd: map @size bytes of @fd, starting at
 * @fd_offset, as the region at @gpa (vhost-user SET_MEM_TABLE /
 * ADD_MEM_REG: the frontend's memfd and its mmap_offset).  @fd_offset
 * need not be page-aligned.  On success @mem owns @fd (closed when the
 * region goes); on failure the caller still owns it.
 * @uaddr: the frontend's virtual address of the region (0 if unknown),
 *         for aiolab_guest_mem_uaddr_to_gpa().
 * Returns: the region's host address, or NULL with @errp set.
 * Context: management.
 */
AIOLAB_API void *aiolab_guest_mem_add_fd(GuestMemory *mem, uint64_t gpa,
                                         uint64_t size, int fd,
                                         uint64_t fd_offset, uint64_t uaddr,
                                         Error **errp);

/**
 * aiolab_guest_mem_remove: unmap the region that starts at @gpa and has
 * exactly @size bytes (vhost-user REM_MEM_REG) and close its fd.
 * Returns: 0, or -ENOENT with @errp set.
 * Context: management.
 */
AIOLAB_API int aiolab_guest_mem_remove(GuestMemory *mem, uint64_t gpa,
                                       uint64_t size, Error **errp);

/**
 * aiolab_guest_mem_get_regions: copy up to @max regions, by ascending
 * gpa, into @out.  Returns: how many regions there are.
 * Context: any thread not racing with management.
 */
AIOLAB_API size_t aiolab_guest_mem_get_regions(GuestMemory *mem,
                                               GuestMemRegion *out,
                                               size_t max);

/* ---------------------------------------------------------------------
 * Translation and access: any thread
 * --------------------------------------------------------------------- */

/**
 * aiolab_guest_mem_translate: the host address of [@gpa, @gpa + @len).
 * Returns: NULL if @len is 0, if the range wraps past 2^64, or if it is
 * not wholly inside one region.  Never partially.
 * Context: any thread.
 */
AIOLAB_API void *aiolab_guest_mem_translate(GuestMemory *mem, uint64_t gpa,
                                            uint64_t len);

/**
 * aiolab_guest_mem_map_sg: map the guest buffer [@gpa, @gpa + @len) into
 * host iovecs appended at @iov[*@niov], one per region the buffer crosses
 * (a buffer may span regions that are adjacent in guest physical space,
 * as in QEMU's virtqueue_map_desc; each piece lies wholly inside one).
 * Returns: 0; -EINVAL for @len 0; -EFAULT if some byte is outside guest
 * RAM; -ENOBUFS if more than @max_iov iovecs would be needed.  On error
 * *@niov is left unchanged.
 * Context: any thread.
 */
AIOLAB_API int aiolab_guest_mem_map_sg(GuestMemory *mem, uint64_t gpa,
                                       uint64_t len, struct iovec *iov,
                                       unsigned *niov, unsigned max_iov);

/**
 * aiolab_guest_mem_read / aiolab_guest_mem_write: copy @len bytes from or
 * to guest memory at @gpa (the range must be in one region).
 * Returns: 0 or -EFAULT.
 * Context: any thread.
 */
AIOLAB_API int aiolab_guest_mem_read(GuestMemory *mem, uint64_t gpa,
                                     void *buf, size_t len);
AIOLAB_API int aiolab_guest_mem_write(GuestMemory *mem, uint64_t gpa,
                                      const void *buf, size_t len);

/**
 * aiolab_guest_mem_uaddr_to_gpa: vhost-user gives ring addresses as the
 * frontend's virtual addresses: turn [@uaddr, @uaddr + @len) into a guest
 * physical address, through a region that covers it wholly.
 * Returns: true with *@gpa set, or false.
 * Context: any thread.
 */
AIOLAB_API bool aiolab_guest_mem_uaddr_to_gpa(GuestMemory *mem,
                                              uint64_t uaddr, uint64_t len,
                                              uint64_t *gpa);

/*
 * Little-endian loads and stores through a host pointer already
 * translated (QEMU's include/qemu/bswap.h names).  memcpy keeps them
 * alignment-safe; on x86 each is one move.  aiolab builds only on
 * little-endian hosts (checked below), so no byte swap is needed.
 * Context: any thread (pure memory accesses).
 */
static inline uint16_t lduw_le_p(const void *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}
static inline uint32_t ldl_le_p(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}
static inline uint64_t ldq_le_p(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}
static inline void stw_le_p(void *p, uint16_t v)
{
    memcpy(p, &v, sizeof(v));
}
static inline void stl_le_p(void *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}
static inline void stq_le_p(void *p, uint64_t v)
{
    memcpy(p, &v, sizeof(v));
}

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "aiolab's guest memory accessors assume a little-endian host"
#endif

#endif

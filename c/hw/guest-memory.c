/* SPDX-License-Identifier: MIT */
/*
 * hw/guest-memory.c - guest RAM regions and bounds-checked translation
 * (see aiolab/hw/guest-memory.h).
 *
 * The regions are kept sorted by guest physical address in one array, so
 * a lookup is a binary search: the last region that starts at or below
 * the address, then one comparison against its end.  A guest has a
 * handful of regions (vhost-user allows 509), so the array stays small.
 *
 * Every region is mapped between two PROT_NONE guard pages:
 *
 *   | guard | region bytes (MAP_SHARED from the fd) ........ | guard |
 *   ^ map_base                                                       ^ end
 *
 * The translation is what keeps the device inside guest RAM; the guards
 * turn a bug in it (an off-by-one at a region's end) into an immediate
 * SIGSEGV instead of a silent read of a neighbour - the fuzzers rely on
 * that.
 *
 * Invariants (checked at add time):
 *   1. size > 0 and gpa + size - 1 does not wrap;
 *   2. regions do not overlap;
 *   3. regions[i].gpa < regions[i + 1].gpa.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <aiolab/aiolab.h>
#include "util/check.h"
#include "util/mem.h"

typedef struct GuestMemSlot {
    GuestMemRegion r;
    void *map_base;         /* the reservation, guards included */
    size_t map_size;
} GuestMemSlot;

struct GuestMemory {
    GuestMemSlot *slots;    /* sorted by r.gpa */
    size_t n;
    size_t alloc;
};

static size_t page_size(void)
{
    static size_t ps;

    if (!ps) {
        ps = (size_t)sysconf(_SC_PAGESIZE);
    }
    return ps;
}

GuestMemory *aiolab_guest_mem_new(void)
{
    GuestMemory *mem = aiolab_xcalloc(1, sizeof(*mem));

    return mem;
}

static void slot_release(GuestMemSlot *slot)
{
    munmap(slot->map_base, slot->map_size);
    if (slot->r.fd >= 0) {
        close(slot->r.fd);
    }
}

void aiolab_guest_mem_free(GuestMemory *mem)
{
    if (!mem) {
        return;
    }
    for (size_t i = 0; i < mem->n; i++) {
        slot_release(&mem->slots[i]);
    }
    free(mem->slots);
    free(mem);
}

/* Index of the last slot with gpa <= @addr, or -1. */
static ssize_t find_slot(GuestMemory *mem, uint64_t addr)
{
    size_t lo = 0, hi = mem->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (mem->slots[mid].r.gpa <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return (ssize_t)lo - 1;
}

/* The slot holding byte @addr, or NULL. */
static GuestMemSlot *slot_of(GuestMemory *mem, uint64_t addr)
{
    ssize_t i = find_slot(mem, addr);
    GuestMemSlot *s;

    if (i < 0) {
        return NULL;
    }
    s = &mem->slots[i];
    return addr - s->r.gpa < s->r.size ? s : NULL;
}

static bool check_new_region(GuestMemory *mem, uint64_t gpa, uint64_t size,
                             Error **errp)
{
    ssize_t i;

    if (size == 0 || gpa + (size - 1) < gpa) {
        error_setg(errp, "guest memory region [0x%" PRIx64 ", +0x%" PRIx64
                   ") is empty or wraps around", gpa, size);
        return false;
    }
    if (mem->n >= AIOLAB_GUEST_MEM_MAX_REGIONS) {
        error_setg(errp, "too many guest memory regions (max %d)",
                   AIOLAB_GUEST_MEM_MAX_REGIONS);
        return false;
    }
    /* Overlap: with the region at or below gpa, or the next one up. */
    i = find_slot(mem, gpa + (size - 1));
    if (i >= 0) {
        GuestMemRegion *r = &mem->slots[i].r;

        if (r->gpa + (r->size - 1) >= gpa) {
            error_setg(errp, "guest memory region [0x%" PRIx64 ", +0x%"
                       PRIx64 ") overlaps [0x%" PRIx64 ", +0x%" PRIx64 ")",
                       gpa, size, r->gpa, r->size);
            return false;
        }
    }
    return true;
}

/*
 * Map @len bytes of @fd from @offset (page-aligned) between guard pages.
 * Returns the first mapped byte, or NULL with errno set.
 */
static uint8_t *map_guarded(int fd, uint64_t offset, size_t len,
                            void **base, size_t *base_len)
{
    size_t ps = page_size();
    size_t rounded = (len + ps - 1) & ~(ps - 1);
    uint8_t *res, *p;

    if (rounded < len || rounded > SIZE_MAX - 2 * ps) {
        errno = ENOMEM;
        return NULL;
    }
    res = mmap(NULL, rounded + 2 * ps, PROT_NONE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (res == MAP_FAILED) {
        return NULL;
    }
    p = mmap(res + ps, rounded, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd, (off_t)offset);
    if (p == MAP_FAILED) {
        int err = errno;

        munmap(res, rounded + 2 * ps);
        errno = err;
        return NULL;
    }
    *base = res;
    *base_len = rounded + 2 * ps;
    return p;
}

static void insert_slot(GuestMemory *mem, const GuestMemSlot *slot)
{
    size_t pos = (size_t)(find_slot(mem, slot->r.gpa) + 1);

    if (mem->n == mem->alloc) {
        mem->alloc = mem->alloc ? mem->alloc * 2 : 4;
        mem->slots = aiolab_xreallocarray(mem->slots, mem->alloc,
                                          sizeof(*mem->slots));
    }
    memmove(&mem->slots[pos + 1], &mem->slots[pos],
            (mem->n - pos) * sizeof(*mem->slots));
    mem->slots[pos] = *slot;
    mem->n++;
}

void *aiolab_guest_mem_add_ram(GuestMemory *mem, uint64_t gpa, uint64_t size,
                               const char *name, Error **errp)
{
    GuestMemSlot slot = { .r = { .gpa = gpa, .size = size, .fd = -1 } };
    uint64_t ps = page_size();
    int fd;

    REQUIRE_NONNULL(mem);
    if ((gpa | size) & (ps - 1)) {
        error_setg(errp, "guest RAM at 0x%" PRIx64 " of 0x%" PRIx64
                   " bytes is not page-aligned", gpa, size);
        return NULL;
    }
    if (!check_new_region(mem, gpa, size, errp)) {
        return NULL;
    }
    fd = memfd_create(name ? name : "aiolab-guest-ram", MFD_CLOEXEC);
    if (fd < 0) {
        error_setg_errno(errp, errno, "memfd_create");
        return NULL;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        error_setg_errno(errp, errno, "ftruncate guest RAM to %" PRIu64,
                         size);
        close(fd);
        return NULL;
    }
    slot.r.hva = map_guarded(fd, 0, size, &slot.map_base, &slot.map_size);
    if (!slot.r.hva) {
        error_setg_errno(errp, errno, "mmap guest RAM");
        close(fd);
        return NULL;
    }
    slot.r.fd = fd;
    insert_slot(mem, &slot);
    return slot.r.hva;
}

void *aiolab_guest_mem_add_fd(GuestMemory *mem, uint64_t gpa, uint64_t size,
                              int fd, uint64_t fd_offset, uint64_t uaddr,
                              Error **errp)
{
    GuestMemSlot slot = { .r = { .gpa = gpa, .size = size, .fd = fd,
                                 .fd_offset = fd_offset, .uaddr = uaddr } };
    uint64_t delta = fd_offset & (page_size() - 1);
    uint8_t *p;

    REQUIRE_NONNULL(mem);
    if (fd < 0) {
        error_setg(errp, "invalid fd %d for a guest memory region", fd);
        return NULL;
    }
    if (!check_new_region(mem, gpa, size, errp)) {
        return NULL;
    }
    if (size > SIZE_MAX - delta || fd_offset > INT64_MAX ||
        (uaddr && uaddr + (size - 1) < uaddr)) {
        error_setg(errp, "guest memory region of 0x%" PRIx64 " bytes at fd "
                   "offset 0x%" PRIx64 " cannot be mapped", size, fd_offset);
        return NULL;
    }
    p = map_guarded(fd, fd_offset - delta, size + delta, &slot.map_base,
                    &slot.map_size);
    if (!p) {
        error_setg_errno(errp, errno, "mmap guest memory region "
                         "[0x%" PRIx64 ", +0x%" PRIx64 ")", gpa, size);
        return NULL;
    }
    slot.r.hva = p + delta;
    insert_slot(mem, &slot);
    return slot.r.hva;
}

int aiolab_guest_mem_remove(GuestMemory *mem, uint64_t gpa, uint64_t size,
                            Error **errp)
{
    ssize_t i;

    REQUIRE_NONNULL(mem);
    i = find_slot(mem, gpa);
    if (i < 0 || mem->slots[i].r.gpa != gpa || mem->slots[i].r.size != size) {
        error_setg(errp, "no guest memory region [0x%" PRIx64 ", +0x%" PRIx64
                   ")", gpa, size);
        return -ENOENT;
    }
    slot_release(&mem->slots[i]);
    memmove(&mem->slots[i], &mem->slots[i + 1],
            (mem->n - i - 1) * sizeof(*mem->slots));
    mem->n--;
    return 0;
}

size_t aiolab_guest_mem_get_regions(GuestMemory *mem, GuestMemRegion *out,
                                    size_t max)
{
    REQUIRE_NONNULL(mem);
    for (size_t i = 0; i < mem->n && i < max; i++) {
        out[i] = mem->slots[i].r;
    }
    return mem->n;
}

void *aiolab_guest_mem_translate(GuestMemory *mem, uint64_t gpa, uint64_t len)
{
    GuestMemSlot *s;
    uint64_t last;

    if (len == 0) {
        return NULL;
    }
    last = gpa + (len - 1);
    if (last < gpa) {
        return NULL;                /* wraps past 2^64 */
    }
    s = slot_of(mem, gpa);
    if (!s || last - s->r.gpa >= s->r.size) {
        return NULL;                /* starts in a hole, or runs off the end */
    }
    return (uint8_t *)s->r.hva + (gpa - s->r.gpa);
}

int aiolab_guest_mem_map_sg(GuestMemory *mem, uint64_t gpa, uint64_t len,
                            struct iovec *iov, unsigned *niov,
                            unsigned max_iov)
{
    unsigned n = *niov;

    if (len == 0) {
        return -EINVAL;
    }
    if (gpa + (len - 1) < gpa) {
        return -EFAULT;
    }
    while (len > 0) {
        GuestMemSlot *s = slot_of(mem, gpa);
        uint64_t piece;

        if (!s) {
            return -EFAULT;
        }
        if (n >= max_iov) {
            return -ENOBUFS;
        }
        piece = MIN(len, s->r.size - (gpa - s->r.gpa));
        iov[n].iov_base = (uint8_t *)s->r.hva + (gpa - s->r.gpa);
        iov[n].iov_len = piece;
        n++;
        gpa += piece;
        len -= piece;
    }
    *niov = n;
    return 0;
}

int aiolab_guest_mem_read(GuestMemory *mem, uint64_t gpa, void *buf,
                          size_t len)
{
    void *p = aiolab_guest_mem_translate(mem, gpa, len);

    if (!p) {
        return -EFAULT;
    }
    memcpy(buf, p, len);
    return 0;
}

int aiolab_guest_mem_write(GuestMemory *mem, uint64_t gpa, const void *buf,
                           size_t len)
{
    void *p = aiolab_guest_mem_translate(mem, gpa, len);

    if (!p) {
        return -EFAULT;
    }
    memcpy(p, buf, len);
    return 0;
}

bool aiolab_guest_mem_uaddr_to_gpa(GuestMemory *mem, uint64_t uaddr,
                                   uint64_t len, uint64_t *gpa)
{
    uint64_t last = uaddr + (len ? len - 1 : 0);

    if (last < uaddr) {
        return false;
    }
    for (size_t i = 0; i < mem->n; i++) {
        GuestMemRegion *r = &mem->slots[i].r;

        if (r->uaddr && uaddr >= r->uaddr && last - r->uaddr < r->size) {
            *gpa = r->gpa + (uaddr - r->uaddr);
            return true;
        }
    }
    return false;
}

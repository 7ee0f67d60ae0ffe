# SPDX-License-Identifier: MIT
"""Guest memory and the driver's side of a split virtqueue: what a guest
kernel does, from Python (aiolab/hw/guest-memory.h, virtio-guest.h).

    mem = aiolab.GuestMemory()
    mem.add_ram(0, 1 << 20)                 # 1 MiB of guest RAM at 0
    ring = aiolab.GuestRing(mem, num=16, base=0x1000)
    mem.write(0x8000, b"hello")
    head = ring.add_chain([(0x8000, 5, False)])     # one readable buffer

The device (aiolab.VirtIOBlk) reads what the ring describes.  Every
address the guest names goes through one rule, translate(): a range
wholly inside one region of guest RAM, or nothing.  A ring can also be
written raw (set_desc() + publish()), malformed on purpose.
"""
import struct
import weakref

from ._backend import B, lib, raw
from ._core import Error, call_errp, check_int
from ._hwbackend import H

U16, U32, U64 = 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF
PAGE = 4096


def _u(value, what, limit):
    return check_int(value, what, minimum=0, maximum=limit)


def as_bytes(data, what="data"):
    """bytes from a bytes-like object (not from an int: bytes(12) would
    be twelve zeros)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes-like, not "
                        f"{type(data).__name__}")
    return bytes(data)


class GuestMemory:
    """The guest's RAM as the device sees it: regions {gpa, size}, each a
    memfd mapped into this process between guard pages.  Translation
    refuses any range that is not wholly inside one region.

    add_ram/add_fd/remove/close are management: they are refused while a
    device or a ring uses the memory (close those first).  translate,
    read and write may run in any thread."""

    def __init__(self):
        self._ptr = lib.aiolab_guest_mem_new()
        self._users = weakref.WeakSet()     # devices and rings on it

    def _live(self):
        if self._ptr is None:
            raise Error("this GuestMemory is closed")
        return self._ptr

    def _management(self, what):
        self._live()
        busy = [u for u in list(self._users) if not u.closed]
        if busy:
            raise Error(f"GuestMemory.{what}: the memory is in use by "
                        f"{busy[0]!r}: close it first (the device and the "
                        "ring keep pointers into guest RAM)")

    def add_ram(self, gpa, size, name="ram"):
        """A region of size bytes of fresh zeroed RAM at guest physical
        address gpa (both page-aligned).  Returns its host address."""
        _u(gpa, "gpa", U64)
        _u(size, "size", U64)
        if not isinstance(name, str):
            raise TypeError("name must be a str")
        self._management("add_ram")
        return B.addr(call_errp(lib.aiolab_guest_mem_add_ram, self._ptr, gpa,
                                size, B.s(name)))

    def add_fd(self, gpa, size, fd, fd_offset=0, uaddr=0):
        """Map size bytes of fd from fd_offset as the region at gpa (the
        vhost-user way).  The memory takes fd over on success."""
        _u(gpa, "gpa", U64)
        _u(size, "size", U64)
        _u(fd, "fd", 0x7FFFFFFF)
        _u(fd_offset, "fd_offset", U64)
        _u(uaddr, "uaddr", U64)
        self._management("add_fd")
        return B.addr(call_errp(lib.aiolab_guest_mem_add_fd, self._ptr, gpa,
                                size, fd, fd_offset, uaddr))

    def remove(self, gpa, size):
        """Unmap the region that starts at gpa with exactly size bytes."""
        _u(gpa, "gpa", U64)
        _u(size, "size", U64)
        self._management("remove")
        call_errp(lib.aiolab_guest_mem_remove, self._ptr, gpa, size)

    @property
    def regions(self):
        """The regions by ascending gpa: dicts of gpa, size, fd,
        fd_offset, uaddr."""
        ptr = self._live()
        n = lib.aiolab_guest_mem_get_regions(ptr, B.NULL, 0)
        arr = H.array("GuestMemRegion", n)
        n = min(lib.aiolab_guest_mem_get_regions(ptr, raw(arr), n), n)
        out = []
        for i in range(n):
            r = H.item(arr, "GuestMemRegion", i)
            out.append(dict(gpa=r.gpa, size=r.size, fd=r.fd,
                            fd_offset=r.fd_offset, uaddr=r.uaddr))
        return out

    @property
    def size(self):
        """Bytes of guest RAM in all regions."""
        return sum(r["size"] for r in self.regions)

    def translate(self, gpa, length):
        """The host address of [gpa, gpa + length), or None when the range
        is empty, wraps, or is not wholly inside one region."""
        _u(gpa, "gpa", U64)
        _u(length, "length", U64)
        p = lib.aiolab_guest_mem_translate(self._live(), gpa, length)
        return None if B.is_null(p) else B.addr(p)

    def contains(self, gpa, length):
        """Is [gpa, gpa + length) wholly inside one region?"""
        return self.translate(gpa, length) is not None

    def _range(self, gpa, length, what):
        _u(gpa, "gpa", U64)
        _u(length, "length", U64)
        if length and lib.aiolab_guest_mem_translate(self._live(), gpa,
                                                     length) == B.NULL:
            raise Error(f"GuestMemory.{what}: [0x{gpa:x}, +{length}) is not "
                        "inside one region of guest RAM")

    def read(self, gpa, length):
        """length bytes of guest RAM at gpa."""
        self._range(gpa, length, "read")
        if length == 0:
            return b""
        buf, keep = B.buffer(length)
        lib.aiolab_guest_mem_read(self._ptr, gpa, raw(buf), length)
        return B.read_mem(buf, length)

    def write(self, gpa, data):
        """Copy data (bytes-like) into guest RAM at gpa."""
        data = as_bytes(data)
        self._range(gpa, len(data), "write")
        if data:
            buf, keep = B.buffer(len(data))
            B.write_mem(buf, data)
            lib.aiolab_guest_mem_write(self._ptr, gpa, raw(buf), len(data))

    def map_sg(self, gpa, length, max_iov=16):
        """[(host address, length)]: the buffer [gpa, gpa + length) as one
        piece per region it crosses (adjacent regions), or raise."""
        _u(gpa, "gpa", U64)
        _u(length, "length", U64)
        _u(max_iov, "max_iov", 1024)
        iov = H.array("struct iovec", max_iov)
        niov = H.out("unsigned int")
        ret = lib.aiolab_guest_mem_map_sg(self._live(), gpa, length, raw(iov),
                                          raw(niov), max_iov)
        if ret < 0:
            import os
            raise Error(f"GuestMemory.map_sg([0x{gpa:x}, +{length})): "
                        f"{os.strerror(-ret)}")
        out = []
        for i in range(H.value(niov, "unsigned int")):
            v = H.item(iov, "struct iovec", i)
            out.append((B.addr(v.iov_base), v.iov_len))
        return out

    def uaddr_to_gpa(self, uaddr, length):
        """vhost-user: the guest physical address of the frontend's
        virtual address range [uaddr, uaddr + length), or None."""
        _u(uaddr, "uaddr", U64)
        _u(length, "length", U64)
        p = H.out("uint64_t")
        if not lib.aiolab_guest_mem_uaddr_to_gpa(self._live(), uaddr, length,
                                                 raw(p)):
            return None
        return H.value(p, "uint64_t")

    @property
    def closed(self):
        """Has close() run?"""
        return self._ptr is None

    def close(self):
        """Unmap every region.  Refused while a device or ring uses it."""
        if self._ptr is None:
            return
        self._management("close")
        ptr, self._ptr = self._ptr, None
        lib.aiolab_guest_mem_free(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        ptr = getattr(self, "_ptr", None)
        if ptr is not None and not any(not u.closed for u in self._users):
            self._ptr = None
            lib.aiolab_guest_mem_free(ptr)

    def __repr__(self):
        if self._ptr is None:
            return "<aiolab.GuestMemory (closed)>"
        return f"<aiolab.GuestMemory {len(self.regions)} region(s), " \
               f"{self.size >> 10} KiB>"


class MemReentrancyGuard:
    """A device's re-entrancy guard (QEMU's MemReentrancyGuard, one per
    DeviceState): engaged while the device handles an access.  A memory
    core refuses an MMIO access to a device whose guard is engaged; a BH
    made with ctx.bh(fn, guard=g) engages g while fn runs
    (aio_bh_new_guarded) and restores its previous value after."""

    def __init__(self):
        self._g = B.new_guard()

    def _guard_ptr(self):
        return raw(self._g)

    @property
    def engaged(self):
        """engaged_in_io: is the device handling an access now?"""
        return B.guard_engaged(self._g)

    @engaged.setter
    def engaged(self, value):
        H.guard_set(self._g, value)

    def __repr__(self):
        return f"<aiolab.MemReentrancyGuard " \
               f"{'engaged' if self.engaged else 'idle'}>"


def _buf(b):
    """(gpa, len, write) from a tuple or a dict."""
    if isinstance(b, dict):
        b = (b.get("gpa"), b.get("len"), b.get("write", False))
    if not isinstance(b, (tuple, list)) or len(b) != 3:
        raise TypeError("a buffer is (gpa, len, write)")
    gpa, length, write = b
    return _u(gpa, "gpa", U64), _u(length, "len", U32), bool(write)


class GuestRing:
    """The driver's view of one split ring (AiolabVring) in guest memory:
    lay out the descriptor table, avail and used rings, publish chains,
    decide kicks, collect used entries.

    GuestRing(mem, num, base) lays the three areas out compactly from
    base; desc=, avail=, used= place them anywhere.  Two ways to fill it,
    one per ring: add_chain() (free descriptors, returned by get_used()),
    or set_desc() + publish() - any values, malformed if you like.
    The driver's thread: one thread at a time.

    Class constants (virtio 1.x): VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
    VRING_DESC_F_INDIRECT, VRING_USED_F_NO_NOTIFY,
    VRING_AVAIL_F_NO_INTERRUPT, VIRTQUEUE_MAX_SIZE."""

    VRING_DESC_F_NEXT = 1
    VRING_DESC_F_WRITE = 2
    VRING_DESC_F_INDIRECT = 4
    VRING_USED_F_NO_NOTIFY = 1
    VRING_AVAIL_F_NO_INTERRUPT = 1
    VIRTQUEUE_MAX_SIZE = 1024

    def __init__(self, mem, num, base=None, desc=None, avail=None, used=None,
                 event_idx=False):
        if not isinstance(mem, GuestMemory):
            raise TypeError("mem must be an aiolab.GuestMemory")
        _u(num, "num", 32768)
        if base is not None:
            if desc is not None or avail is not None or used is not None:
                raise TypeError("give base, or desc/avail/used, not both")
            desc, avail, used, _ = GuestRing.layout(num, base)
        elif desc is None or avail is None or used is None:
            raise TypeError("give base=, or all of desc=, avail=, used=")
        for v, what in ((desc, "desc"), (avail, "avail"), (used, "used")):
            _u(v, what, U64)
        self._mem = mem
        self._vr = H.new("AiolabVring")
        ret = lib.aiolab_vring_init(raw(self._vr), mem._live(), num, desc,
                                    avail, used, bool(event_idx))
        if ret == -22:
            raise ValueError(f"num must be a power of 2 in [1, 32768], not "
                             f"{num}")
        if ret < 0:
            lib.aiolab_vring_cleanup(raw(self._vr))
            raise Error(f"GuestRing: an area of the {num}-entry ring (desc "
                        f"0x{desc:x}, avail 0x{avail:x}, used 0x{used:x}) is "
                        "not inside guest RAM")
        self._closed = False
        mem._users.add(self)

    @staticmethod
    def pack_desc(addr, length, flags=0, next=0):
        """One 16-byte split-ring descriptor (le64 addr, le32 len, le16
        flags, le16 next): for indirect tables, with GuestMemory.write()."""
        _u(addr, "addr", U64)
        _u(length, "length", U32)
        _u(flags, "flags", U16)
        _u(next, "next", U16)
        return struct.pack("<QIHH", addr, length, flags, next)

    @staticmethod
    def layout(num, base):
        """(desc, avail, used, size): a compact layout of a num-entry ring
        from base (desc 16-aligned, used 4-aligned)."""
        _u(num, "num", 32768)
        _u(base, "base", U64)
        d, a, u = H.out("uint64_t"), H.out("uint64_t"), H.out("uint64_t")
        size = lib.aiolab_vring_layout(num, base, raw(d), raw(a), raw(u))
        return (H.value(d, "uint64_t"), H.value(a, "uint64_t"),
                H.value(u, "uint64_t"), size)

    def _live(self):
        if self._closed:
            raise Error("this GuestRing is closed")
        return raw(self._vr)

    @property
    def closed(self):
        """Has close() run?"""
        return self._closed

    @property
    def mem(self):
        """The GuestMemory the ring lives in."""
        return self._mem

    num = property(lambda self: self._vr.num, doc="Entries in the ring.")
    desc = property(lambda self: self._vr.desc,
                    doc="Guest address of the descriptor table.")
    avail = property(lambda self: self._vr.avail,
                     doc="Guest address of the avail ring.")
    used = property(lambda self: self._vr.used,
                    doc="Guest address of the used ring.")
    event_idx = property(lambda self: bool(self._vr.event_idx),
                         doc="Was VIRTIO_RING_F_EVENT_IDX negotiated?")
    avail_idx = property(lambda self: self._vr.avail_idx,
                         doc="The driver's next avail.idx.")
    num_free = property(lambda self: self._vr.num_free,
                        doc="Free descriptors (add_chain mode).")

    def add_chain(self, bufs):
        """Write bufs [(gpa, len, write), ...] as one chain from free
        descriptors and publish its head.  Returns the head; raises Error
        when there are not enough free descriptors."""
        bufs = [_buf(b) for b in bufs]
        if not bufs:
            raise ValueError("a chain needs at least one buffer")
        arr = H.array("AiolabVringBuf", len(bufs))
        for i, (gpa, length, write) in enumerate(bufs):
            H.set_buf(arr, i, gpa, length, write)
        head = lib.aiolab_vring_add_chain(self._live(), raw(arr), len(bufs))
        if head < 0:
            raise Error(f"GuestRing.add_chain: {len(bufs)} descriptors "
                        f"needed, {self.num_free} free (collect used entries "
                        "first)")
        return head

    def set_desc(self, i, addr, length, flags=0, next=0):
        """Write descriptor i (raw mode): any values, malformed ones
        included."""
        vr = self._live()
        _u(i, "i", self.num - 1)
        _u(addr, "addr", U64)
        _u(length, "length", U32)
        _u(flags, "flags", U16)
        _u(next, "next", U16)
        lib.aiolab_vring_set_desc(vr, i, addr, length, flags, next)

    def publish(self, head):
        """Publish head as the next avail entry (entry, write barrier,
        avail.idx).  Any 16-bit value: the device validates it."""
        vr = self._live()
        _u(head, "head", U16)
        lib.aiolab_vring_publish(vr, head)

    def get_used(self):
        """The next used entry (head, bytes written) the device published,
        or None."""
        vr = self._live()
        i, n = H.out("uint32_t"), H.out("uint32_t")
        if not lib.aiolab_vring_get_used(vr, raw(i), raw(n)):
            return None
        return H.value(i, "uint32_t"), H.value(n, "uint32_t")

    def used_entries(self):
        """Every used entry published since the last call: [(head, len)]."""
        out = []
        while True:
            e = self.get_used()
            if e is None:
                return out
            out.append(e)

    def kick_needed(self):
        """After publishing: does the device want a kick (NO_NOTIFY, or
        EVENT_IDX's avail_event)?"""
        return bool(lib.aiolab_vring_kick_needed(self._live()))

    def set_no_interrupt(self, on):
        """Set or clear VRING_AVAIL_F_NO_INTERRUPT."""
        lib.aiolab_vring_set_no_interrupt(self._live(), bool(on))

    def set_used_event(self, idx):
        """EVENT_IDX: interrupt me when used.idx passes idx."""
        vr = self._live()
        lib.aiolab_vring_set_used_event(vr, _u(idx, "idx", U16))

    @property
    def used_idx(self):
        """The device's used.idx."""
        return lib.aiolab_vring_used_idx(self._live())

    @property
    def used_flags(self):
        """The used ring's flags (VRING_USED_F_NO_NOTIFY)."""
        return lib.aiolab_vring_used_flags(self._live())

    @property
    def avail_event(self):
        """EVENT_IDX: the device's 'kick me when avail.idx passes this'."""
        return lib.aiolab_vring_avail_event(self._live())

    def close(self):
        """Free the driver's bookkeeping (the ring stays in guest RAM)."""
        if not self._closed:
            self._closed = True
            lib.aiolab_vring_cleanup(raw(self._vr))
            self._mem._users.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if not getattr(self, "_closed", True):
            self._closed = True
            lib.aiolab_vring_cleanup(raw(self._vr))

    def __repr__(self):
        if self._closed:
            return "<aiolab.GuestRing (closed)>"
        return f"<aiolab.GuestRing num={self.num} desc=0x{self.desc:x}>"

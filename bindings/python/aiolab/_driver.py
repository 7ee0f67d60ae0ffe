# SPDX-License-Identifier: MIT
"""A virtio-blk guest driver in this process: what the toy machine's
guest does on its vCPUs, driven from Python instead (the Python thread is
the vCPU).  It negotiates features, lays out one GuestRing per queue,
writes requests (header, data, status byte) into guest RAM, kicks, and
takes the device's interrupts in the main loop.

    drv = aiolab.VirtIOBlkDriver(dev)
    drv.write(8, b"a" * 4096)               # sector 8, one 4 KiB block
    data = drv.read(8, 4096)
    req = drv.request(drv.VIRTIO_BLK_T_GET_ID, length=20)
    print(req.status, req.data)

Waiting runs the main loop (main_loop_wait, BQL taken for it): the
device's completions in the main loop (ioeventfd off, or no iothread)
run there, and an IOThread's completions reach it as the queue's
interrupt (the guest notifier eventfd, which the driver watches there).
"""
import struct
import time

from ._core import Error, check_int
from ._hw import GuestRing, U32, U64, as_bytes
from ._threads import main_loop
from ._virtio import VirtIOBlk, _eventfd_take
from ._backend import lib

# Request types and status codes (virtio 1.x 5.2).
VIRTIO_BLK_T_IN = 0
VIRTIO_BLK_T_OUT = 1
VIRTIO_BLK_T_FLUSH = 4
VIRTIO_BLK_T_GET_ID = 8
VIRTIO_BLK_S_OK = 0
STATUS_NAMES = {0: "OK", 1: "IOERR", 2: "UNSUPP"}
_UNWRITTEN = 0xEE               # the status byte before the device writes it


class VirtIOBlkRequest:
    """One virtio-blk request of a VirtIOBlkDriver: where it lies in
    guest RAM and, once done, its status byte, the used length and (for
    reads and GET_ID) the bytes the device wrote."""

    def __init__(self, queue, type, sector, length, write_data):
        self.queue, self.type, self.sector = queue, type, sector
        self.length = length
        self.head = None
        self.header = self.buffer = self.status_addr = None
        self.write_data = write_data
        self.done = False
        self.status = None          # the status byte, once done
        self.used_len = None        # the used entry's length
        self.data = None            # what the device wrote (reads)

    def __repr__(self):
        state = STATUS_NAMES.get(self.status, self.status) if self.done \
            else "in flight"
        return f"<aiolab.VirtIOBlkRequest type={self.type} " \
               f"sector={self.sector} len={self.length} q{self.queue} " \
               f"head={self.head} {state}>"


class VirtIOBlkDriver:
    """The guest's virtio-blk driver for dev (a VirtIOBlk), in this
    process.  ring_base: where the rings go in guest RAM (one per queue,
    4 KiB apart); buffers are taken from the rest of that region.
    features: the features to accept (default: all offered, except
    EVENT_IDX unless event_idx=True).  Main-loop thread.

    Class constants (virtio 1.x 5.2): the request types VIRTIO_BLK_T_IN,
    _OUT, _FLUSH, _GET_ID, _DISCARD, _WRITE_ZEROES and the status codes
    VIRTIO_BLK_S_OK, _IOERR, _UNSUPP."""

    VIRTIO_BLK_T_IN = 0
    VIRTIO_BLK_T_OUT = 1
    VIRTIO_BLK_T_FLUSH = 4
    VIRTIO_BLK_T_GET_ID = 8
    VIRTIO_BLK_T_DISCARD = 11
    VIRTIO_BLK_T_WRITE_ZEROES = 13
    VIRTIO_BLK_S_OK = 0
    VIRTIO_BLK_S_IOERR = 1
    VIRTIO_BLK_S_UNSUPP = 2

    def __init__(self, dev, ring_base=0x1000, features=None,
                 event_idx=False):
        if not isinstance(dev, VirtIOBlk):
            raise TypeError("dev must be an aiolab.VirtIOBlk")
        dev._own("VirtIOBlkDriver")
        self.dev, self.mem = dev, dev.mem
        self._ring_base = check_int(ring_base, "ring_base", 0, U64)
        self._features = features
        self._event_idx = bool(event_idx)
        self.rings = []
        self.interrupts = [0] * dev.num_queues
        self.config_interrupts = 0
        self._inflight = {}         # (queue, head) -> Request
        self._closed = False
        self._fds = []
        main_loop()
        dev._drivers.append(self)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    # --- set-up -----------------------------------------------------------
    def _setup(self):
        dev = self.dev
        f = dev.host_features if self._features is None else self._features
        if not self._event_idx:
            f &= ~(1 << dev.VIRTIO_RING_F_EVENT_IDX)
        status = dev.VIRTIO_CONFIG_S_ACKNOWLEDGE | dev.VIRTIO_CONFIG_S_DRIVER
        dev.set_status(status)
        dev.set_features(f)
        dev.set_status(status | dev.VIRTIO_CONFIG_S_FEATURES_OK)
        base = self._ring_base
        for q in range(dev.num_queues):
            num = dev.queue(q).max_num
            ring = GuestRing(self.mem, num, base=base,
                             event_idx=dev.has_feature(
                                 dev.VIRTIO_RING_F_EVENT_IDX))
            self.rings.append(ring)
            dev.queue(q).setup(ring)
            base = (base + GuestRing.layout(num, base)[3] + 4095) & ~4095
        region = [r for r in self.mem.regions
                  if r["gpa"] <= base < r["gpa"] + r["size"]]
        if not region:
            raise Error(f"VirtIOBlkDriver: no guest RAM after the rings "
                        f"(0x{base:x}) for request buffers")
        self._buf_lo = self._next = base
        self._buf_hi = region[0]["gpa"] + region[0]["size"]
        self._watch()
        dev.set_status(status | dev.VIRTIO_CONFIG_S_FEATURES_OK |
                       dev.VIRTIO_CONFIG_S_DRIVER_OK)

    def _watch(self):
        """Take the queues' and the configuration interrupts in the main
        loop (the guest's interrupt controller)."""
        ctx = main_loop().ctx
        for q in range(self.dev.num_queues):
            fd = lib.event_notifier_get_fd(lib.virtio_queue_get_guest_notifier(
                self.dev.queue(q)._vq()))
            ctx.add_reader(fd, self._irq(q, fd))
            self._fds.append(fd)
        fd = lib.event_notifier_get_fd(lib.aiolab_virtio_get_config_notifier(
            self.dev._vdev_live()))
        ctx.add_reader(fd, self._config_irq(fd))
        self._fds.append(fd)

    def _irq(self, q, fd):
        def on_interrupt():
            self.interrupts[q] += _eventfd_take(fd)
            self._collect(q)
        return on_interrupt

    def _config_irq(self, fd):
        def on_config():
            self.config_interrupts += _eventfd_take(fd)
        return on_config

    def _unwatch(self):
        ctx = main_loop().ctx
        for fd in self._fds:
            ctx.remove_reader(fd)
        self._fds = []

    def reset(self):
        """Reset the device (status 0: NEEDS_RESET and broken cleared)
        and set it up again, with fresh rings.  Requests in flight are
        forgotten."""
        self._live()
        self._unwatch()
        self.dev.reset()
        for r in self.rings:
            r.close()
        self.rings, self._inflight = [], {}
        self._setup()

    # --- requests -------------------------------------------------------
    def _live(self):
        if self._closed:
            raise Error("this VirtIOBlkDriver is closed")
        self.dev._live()

    def _alloc(self, n):
        gpa = self._next
        end = (gpa + max(n, 1) + 63) & ~63
        if end > self._buf_hi:
            raise Error(f"VirtIOBlkDriver: no room for {n} more bytes of "
                        "request buffers in guest RAM (wait for the "
                        "requests in flight first)")
        self._next = end
        return gpa

    def submit(self, type, sector=0, data=None, length=0, queue=0,
               data_write=None):
        """Write a request into guest RAM and publish it on queue's ring,
        without kicking: [16-byte header][data][status byte].  data:
        bytes the device reads (writes, discard segments); length: bytes
        the device writes (reads, GET_ID).  data_write forces the data
        buffer's direction.  Returns the Request."""
        self._live()
        check_int(type, "type", 0, U32)
        check_int(sector, "sector", 0, U64)
        check_int(queue, "queue", 0, len(self.rings) - 1)
        check_int(length, "length", 0, U32)
        if data is not None:
            data = as_bytes(data)
            if length:
                raise TypeError("give data (the device reads it) or length "
                                "(the device writes it), not both")
            length = len(data)
        req = VirtIOBlkRequest(queue, type, sector, length, data)
        if not self._inflight:
            self._next = self._buf_lo       # nothing in flight: start over
        req.header = self._alloc(16)
        self.mem.write(req.header, struct.pack("<IIQ", type, 0, sector))
        bufs = [(req.header, 16, False)]
        if length:
            req.buffer = self._alloc(length)
            writable = data is None if data_write is None else data_write
            if data is not None:
                self.mem.write(req.buffer, data)
            bufs.append((req.buffer, length, bool(writable)))
        req.status_addr = self._alloc(1)
        self.mem.write(req.status_addr, bytes([_UNWRITTEN]))
        bufs.append((req.status_addr, 1, True))
        req.head = self.rings[queue].add_chain(bufs)
        self._inflight[(queue, req.head)] = req
        return req

    def kick(self, queue=0, force=False):
        """Kick queue if the device wants it (or force).  Returns whether
        it kicked."""
        self._live()
        check_int(queue, "queue", 0, len(self.rings) - 1)
        if force or self.rings[queue].kick_needed():
            self.dev.kick(queue)
            return True
        return False

    def _collect(self, q):
        for head, n in self.rings[q].used_entries():
            req = self._inflight.pop((q, head), None)
            if req is None:
                continue            # a raw chain of the caller's
            req.used_len = n
            req.status = self.mem.read(req.status_addr, 1)[0]
            if req.buffer is not None and req.write_data is None:
                req.data = self.mem.read(req.buffer, req.length)
            req.done = True

    def poll(self):
        """Collect every used entry published so far (no waiting)."""
        self._live()
        for q in range(len(self.rings)):
            self._collect(q)

    def wait(self, reqs, timeout=10):
        """Run the main loop until every request in reqs (a Request or a
        list) is done; TimeoutError after timeout seconds."""
        reqs = [reqs] if isinstance(reqs, VirtIOBlkRequest) else list(reqs)
        self.run_until(lambda: all(r.done for r in reqs), timeout)
        return reqs

    def run_until(self, predicate, timeout=10):
        """Run the main loop (BQL taken for each main_loop_wait) until
        predicate() is true; TimeoutError after timeout seconds."""
        self._live()
        main = main_loop()
        deadline = time.monotonic() + timeout
        tick = main.timer(lambda: None)
        try:
            while True:
                self.poll()
                if predicate():
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"not done after {timeout} s "
                                       f"(device {self.dev!r})")
                tick.mod_ns(int(min(left, 0.05) * 1e9), relative=True)
                main.wait(blocking=True)
        finally:
            tick.close()

    def request(self, type, sector=0, data=None, length=0, queue=0,
                timeout=10):
        """submit(), kick, wait: the finished Request."""
        req = self.submit(type, sector, data=data, length=length,
                          queue=queue)
        self.kick(queue)
        return self.wait(req, timeout)[0]

    def _ok(self, req, what):
        if req.status != VIRTIO_BLK_S_OK:
            raise Error(f"virtio-blk {what} at sector {req.sector}: status "
                        f"{STATUS_NAMES.get(req.status, req.status)}")
        return req

    def read(self, sector, nbytes, queue=0):
        """Read nbytes at sector (512-byte units): bytes."""
        return self._ok(self.request(VIRTIO_BLK_T_IN, sector, length=nbytes,
                                     queue=queue), "read").data

    def write(self, sector, data, queue=0):
        """Write data at sector (512-byte units)."""
        self._ok(self.request(VIRTIO_BLK_T_OUT, sector, data=data,
                              queue=queue), "write")

    def flush(self, queue=0):
        """A FLUSH request."""
        self._ok(self.request(VIRTIO_BLK_T_FLUSH, queue=queue), "flush")

    def get_id(self, queue=0):
        """The device's serial (GET_ID), as a str."""
        req = self._ok(self.request(VIRTIO_BLK_T_GET_ID, length=20,
                                    queue=queue), "get_id")
        return req.data.split(b"\0", 1)[0].decode(errors="replace")

    @property
    def in_flight(self):
        """Requests submitted and not completed."""
        return list(self._inflight.values())

    # --- lifetime ---------------------------------------------------------
    @property
    def closed(self):
        """Has close() run?"""
        return self._closed

    def close(self):
        """Stop watching interrupts and free the rings' bookkeeping (the
        device keeps its state; close or reset it yourself)."""
        if self._closed:
            return
        self._closed = True
        self._unwatch()
        for r in self.rings:
            r.close()
        if self in self.dev._drivers:
            self.dev._drivers.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<aiolab.VirtIOBlkDriver {len(self.rings)} ring(s), " \
               f"{len(self._inflight)} in flight" \
               f"{' closed' if self._closed else ''}>"


# SPDX-License-Identifier: MIT
"""The virtio-blk device in this process (aiolab/hw/virtio.h,
virtio-blk.h): its queues, the elements popped from them, and the
device's status, features, configuration space and placement.

    with aiolab.bql():
        blk = aiolab.BlockBackend.open("driver=null-co,size=1M")
    mem = aiolab.GuestMemory()
    mem.add_ram(0, 4 << 20)
    dev = aiolab.VirtIOBlk(blk, mem, ioeventfd=False)
    drv = aiolab.VirtIOBlkDriver(dev)       # the guest's driver
    drv.write(0, b"x" * 512)
    assert drv.read(0, 512) == b"x" * 512

Device calls are management (main loop, BQL): the package takes the BQL
for them.  A queue is popped and pushed by its home thread; from Python
that is allowed only while ioeventfd is off (the BQL holder is then the
home), so that no IOThread handles the same ring at the same time.
"""
import os
import struct

from ._backend import B, lib, raw
from ._blkconf import context_name, make_blk_conf
from ._core import Error, call_errp, check_int, context_for
from ._hw import GuestMemory, U16, U32, U64, as_bytes
from ._hwbackend import H
from ._threads import bql, main_loop

_CONFIG = struct.Struct("<QIIHBBIBBHIBBHIIIIIB")    # virtio_blk_config
_CONFIG_FIELDS = ("capacity", "size_max", "seg_max", "cylinders", "heads",
                  "sectors", "blk_size", "physical_block_exp",
                  "alignment_offset", "min_io_size", "opt_io_size", "wce",
                  "unused", "num_queues", "max_discard_sectors",
                  "max_discard_seg", "discard_sector_alignment",
                  "max_write_zeroes_sectors", "max_write_zeroes_seg",
                  "write_zeroes_may_unmap")


class VirtIOBlk:
    """A virtio-blk device on a BlockBackend, its queues in guest memory
    (QEMU's hw/block/virtio-blk.c, realized as -device virtio-blk).

    Keyword arguments are QEMU's properties (iothread=IOThread,
    iothread_vq_mapping=[IOThread or (IOThread, [vqs])], num_queues,
    queue_size, ioeventfd, serial, rerror/werror "report", "ignore",
    "enospc", "stop"...); notifiers=False plugs it into a transport
    without ioeventfd.  QEMU's realize errors raise aiolab.Error with
    QEMU's message.  The device keeps the BlockBackend, the memory and
    its IOThreads in use until close().

    Class constants (virtio 1.x): the status bits VIRTIO_CONFIG_S_*
    (ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, NEEDS_RESET, FAILED) and
    the feature bits VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_RING_F_EVENT_IDX,
    VIRTIO_F_VERSION_1, VIRTIO_BLK_F_* (SEG_MAX, RO, BLK_SIZE, FLUSH,
    TOPOLOGY, CONFIG_WCE, MQ, DISCARD, WRITE_ZEROES)."""

    VIRTIO_CONFIG_S_ACKNOWLEDGE = 1
    VIRTIO_CONFIG_S_DRIVER = 2
    VIRTIO_CONFIG_S_DRIVER_OK = 4
    VIRTIO_CONFIG_S_FEATURES_OK = 8
    VIRTIO_CONFIG_S_NEEDS_RESET = 0x40
    VIRTIO_CONFIG_S_FAILED = 0x80
    VIRTIO_RING_F_INDIRECT_DESC = 28
    VIRTIO_RING_F_EVENT_IDX = 29
    VIRTIO_F_VERSION_1 = 32
    VIRTIO_BLK_F_SEG_MAX = 2
    VIRTIO_BLK_F_RO = 5
    VIRTIO_BLK_F_BLK_SIZE = 6
    VIRTIO_BLK_F_FLUSH = 9
    VIRTIO_BLK_F_TOPOLOGY = 10
    VIRTIO_BLK_F_CONFIG_WCE = 11
    VIRTIO_BLK_F_MQ = 12
    VIRTIO_BLK_F_DISCARD = 13
    VIRTIO_BLK_F_WRITE_ZEROES = 14

    def __init__(self, blk, mem, notifiers=True, **props):
        from ._block import BlockBackend
        if not isinstance(blk, BlockBackend):
            raise TypeError("blk must be an aiolab.BlockBackend")
        if not isinstance(mem, GuestMemory):
            raise TypeError("mem must be an aiolab.GuestMemory")
        if getattr(blk, "_device", None) is not None:
            raise Error(f"this BlockBackend is in use by {blk._device!r}")
        conf, users = make_blk_conf(blk._live(), **props)
        bus = H.new("VirtioBusOps")
        bus.no_notifiers = not notifiers
        main_loop()
        with bql():
            ptr = call_errp(lib.virtio_blk_new, conf.ptr(), mem._live(),
                            raw(bus), B.NULL)
        self._init(ptr, mem, users, machine=None)
        self._blk, self._bus = blk, bus
        blk._device = self

    @classmethod
    def _wrap(cls, ptr, mem, users, machine):
        self = cls.__new__(cls)
        self._init(ptr, mem, users, machine)
        self._blk = self._bus = None
        return self

    def _init(self, ptr, mem, users, machine):
        self._ptr = ptr
        self._vdev = lib.aiolab_virtio_blk_get_vdev(ptr)
        self._mem, self._machine = mem, machine
        self._iothreads = users
        self._queues = {}
        self._drivers = []
        if mem is not None:
            mem._users.add(self)
        for io in users:
            io.__dict__.setdefault("_users", set()).add(self)

    # --- state ------------------------------------------------------------
    def _live(self):
        if self._ptr is None:
            raise Error("this VirtIOBlk is closed" if self._machine is None
                        else "this VirtIOBlk's machine is closed")
        return self._ptr

    def _own(self, what):
        """Driving the device from Python: not for a machine's device
        (its guest, on the vCPUs, drives it)."""
        self._live()
        if self._machine is not None:
            raise Error(f"VirtIOBlk.{what}: this device belongs to a "
                        "machine, whose guest drives it (inspect it only)")

    @property
    def closed(self):
        """Has close() run (or the device's machine been closed)?"""
        return self._ptr is None

    @property
    def id(self):
        """The device id, or None."""
        if self._machine is not None:
            return self._machine._device_id(self)
        return None

    @property
    def mem(self):
        """The GuestMemory its queues live in."""
        return self._mem

    @property
    def name(self):
        """The device's name ("virtio-blk")."""
        return B.str(lib.aiolab_virtio_device_get_name(self._vdev_live()))

    def _vdev_live(self):
        self._live()
        return self._vdev

    @property
    def num_queues(self):
        """Number of virtqueues."""
        return lib.virtio_get_num_queues(self._vdev_live())

    def queue(self, n):
        """Virtqueue n (a VirtQueue)."""
        check_int(n, "n", 0, self.num_queues - 1)
        q = self._queues.get(n)
        if q is None:
            q = self._queues[n] = VirtQueue(self, n)
        return q

    # --- features and status (the transport's registers) --------------
    @property
    def host_features(self):
        """The features the device offers (a bit mask)."""
        return lib.aiolab_virtio_get_host_features(self._vdev_live())

    @property
    def guest_features(self):
        """The features the driver accepted."""
        return lib.aiolab_virtio_get_guest_features(self._vdev_live())

    def has_feature(self, bit):
        """Was feature bit negotiated?"""
        return bool(lib.virtio_vdev_has_feature(
            self._vdev_live(), check_int(bit, "bit", 0, 63)))

    def set_features(self, features):
        """The driver's feature choice.  Raises if it includes features
        the device did not offer, or once FEATURES_OK is set."""
        self._own("set_features")
        check_int(features, "features", 0, U64)
        with bql():
            ret = lib.virtio_set_features(self._vdev, features)
        if ret == -1:
            raise Error(f"features 0x{features & ~self.host_features:x} "
                        "were not offered (the others were taken)")
        if ret < 0:
            raise Error("features are frozen once FEATURES_OK is set "
                        "(reset first)")

    @property
    def status(self):
        """The device status byte (with NEEDS_RESET once broken)."""
        return lib.aiolab_virtio_get_status(self._vdev_live())

    @status.setter
    def status(self, value):
        self.set_status(value)

    def set_status(self, value):
        """Write the status register as a transport does: without
        DRIVER_OK stop ioeventfd first, with DRIVER_OK start it after, 0
        resets the device."""
        self._own("set_status")
        check_int(value, "status", 0, 255)
        with bql():
            ret = lib.aiolab_virtio_bus_set_status(self._vdev, value)
        if ret < 0:
            raise Error("FEATURES_OK refused: the driver did not accept "
                        "VIRTIO_F_VERSION_1 (aiolab is modern-only)")

    def reset(self):
        """Reset (status 0): not broken, queues torn down, features 0."""
        self.set_status(0)

    @property
    def broken(self):
        """Has the device hit virtio_error() since the last reset?"""
        return bool(lib.aiolab_virtio_device_is_broken(self._vdev_live()))

    @property
    def last_error(self):
        """The last virtio_error() message ("" if none)."""
        return H.last_error(self._vdev_live())

    def isr_read(self):
        """Read and clear the ISR (bit 0 a queue, bit 1 configuration)."""
        return lib.aiolab_virtio_isr_read(self._vdev_live())

    def config_interrupts(self):
        """Configuration interrupts since the last call (the config
        notifier's count; NEEDS_RESET raises one)."""
        n = lib.aiolab_virtio_get_config_notifier(self._vdev_live())
        return _eventfd_take(lib.event_notifier_get_fd(n))

    # --- configuration space ------------------------------------------
    def config_read(self, offset=0, length=None):
        """Bytes of configuration space (all of it by default)."""
        vdev = self._vdev_live()
        total = lib.aiolab_virtio_get_config_len(vdev)
        if length is None:
            length = total
        check_int(offset, "offset", 0, U32)
        check_int(length, "length", 0, 4096)
        buf, keep = B.buffer(length)
        with bql():
            n = lib.aiolab_virtio_config_read(vdev, offset, raw(buf), length)
        return B.read_mem(buf, n)

    def config_write(self, offset, data):
        """The driver writes configuration space (only wce is writable).
        Returns the bytes taken."""
        self._own("config_write")
        data = as_bytes(data)
        check_int(offset, "offset", 0, U32)
        buf, keep = B.buffer(len(data))
        B.write_mem(buf, data)
        with bql():
            return lib.aiolab_virtio_config_write(self._vdev, offset,
                                                  raw(buf), len(data))

    @property
    def config(self):
        """The configuration space as a dict (capacity in 512-byte
        sectors, seg_max, blk_size, num_queues, wce, ...)."""
        data = self.config_read()
        data += bytes(_CONFIG.size - len(data))
        return dict(zip(_CONFIG_FIELDS, _CONFIG.unpack(data)))

    @property
    def config_generation(self):
        """Bumped by every configuration change."""
        return lib.aiolab_virtio_get_config_generation(self._vdev_live())

    # --- placement and ioeventfd ----------------------------------------
    @property
    def ioeventfd_enabled(self):
        """May the device use ioeventfd at all (ioeventfd=on and a
        transport with notifiers)?"""
        return bool(lib.virtio_device_ioeventfd_enabled(self._vdev_live()))

    @property
    def ioeventfd_state(self):
        """QEMU's four flags: a set of "started", "starting", "stopping",
        "disabled"."""
        v = lib.aiolab_virtio_blk_ioeventfd_state(self._live())
        return {name for bit, name in ((1, "started"), (2, "starting"),
                                       (4, "stopping"), (8, "disabled"))
                if v & bit}

    def start_ioeventfd(self):
        """Move the queues onto host notifiers in their AioContexts.
        Returns False when ioeventfd is disabled (kicks are then handled
        inline, under the BQL)."""
        self._own("start_ioeventfd")
        with bql():
            return lib.virtio_device_start_ioeventfd(self._vdev) == 0

    def stop_ioeventfd(self):
        """Back to inline handling (each queue's last kick is read in its
        own thread; in-flight requests are drained)."""
        self._own("stop_ioeventfd")
        with bql():
            lib.virtio_device_stop_ioeventfd(self._vdev)

    def vq_context(self, n):
        """The AioContext queue n is handled in when ioeventfd runs
        (QEMU's vq_aio_context[n])."""
        check_int(n, "n", 0, self.num_queues - 1)
        return context_for(lib.aiolab_virtio_blk_get_vq_aio_context(
            self._live(), n))

    @property
    def vq_contexts(self):
        """Each queue's context by QMP name: "main-loop" or the IOThread's
        id (x-query-virtio-status's vq-aio-contexts)."""
        return [context_name(lib.aiolab_virtio_blk_get_vq_aio_context(
            self._live(), n)) for n in range(self.num_queues)]

    def vmstate_change(self, running):
        """The VM starts or stops: a started driver gets ioeventfd started
        on run and stopped on stop."""
        self._own("vmstate_change")
        with bql():
            lib.aiolab_virtio_vmstate_change(self._vdev, bool(running))

    def dma_restart(self, running=True):
        """virtio_blk_dma_restart_cb: re-issue the requests werror/rerror=
        stop parked, each in its queue's context (when running)."""
        self._own("dma_restart")
        with bql():
            lib.virtio_blk_dma_restart_cb(self._ptr, bool(running), 1)

    @property
    def stats(self):
        """Request counters: reads, writes, flushes, get_ids, discards,
        write_zeroes, unsupported, ioerrors, submits_rw, merged, parked."""
        st = H.new("AiolabVirtIOBlkStats")
        lib.aiolab_virtio_blk_get_stats(self._live(), raw(st))
        return {k: getattr(st, k) for k in (
            "reads", "writes", "flushes", "get_ids", "discards",
            "write_zeroes", "unsupported", "ioerrors", "submits_rw",
            "merged", "parked")}

    # --- the guest's side of the transport --------------------------------
    def kick(self, n=0):
        """What the guest's write to queue n's notify register does: an
        eventfd write with ioeventfd, else an MMIO exit (BQL, inline
        handling).  Any thread."""
        self._own("kick")
        check_int(n, "n", 0, self.num_queues - 1)
        lib.aiolab_virtio_guest_kick(self._vdev, n)

    def notify(self, n=0):
        """virtio_queue_notify(): the MMIO notify path (BQL): set the host
        notifier if assigned, else handle the queue inline."""
        self._own("notify")
        check_int(n, "n", 0, self.num_queues - 1)
        with bql():
            lib.virtio_queue_notify(self._vdev, n)

    # --- lifetime -----------------------------------------------------------
    def close(self):
        """Unrealize: stop ioeventfd, drain, detach from the BlockBackend
        (which stays the caller's) and free.  Drivers attached to it are
        closed first."""
        if self._ptr is None:
            return
        if self._machine is not None:
            raise Error("this device belongs to a machine: close the "
                        "machine")
        for d in list(self._drivers):
            d.close()
        for q in self._queues.values():
            q._release_elements()
        with bql():
            ptr, self._ptr = self._ptr, None
            lib.virtio_blk_free(ptr)
        self._forget()

    def _forget(self):
        self._ptr = self._vdev = None
        if self._blk is not None:
            self._blk._device = None
        if self._mem is not None:
            self._mem._users.discard(self)
        for io in self._iothreads:
            io.__dict__.get("_users", set()).discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if self._ptr is None:
            return "<aiolab.VirtIOBlk (closed)>"
        where = ", ".join(self.vq_contexts)
        return f"<aiolab.VirtIOBlk {self.num_queues} queue(s) in {where}" \
               f"{' BROKEN' if self.broken else ''}>"


def _eventfd_take(fd):
    """Read (and so clear) an eventfd's count without blocking."""
    import select
    if not select.select([fd], [], [], 0)[0]:
        return 0
    try:
        return struct.unpack("<Q", os.read(fd, 8))[0]
    except BlockingIOError:
        return 0


class VirtQueue:
    """One virtqueue of a device: its setup, counters, and - with
    ioeventfd off - popping and pushing elements from Python."""

    def __init__(self, dev, n):
        self._dev, self.index = dev, n
        self._ptr = lib.virtio_get_queue(dev._vdev, n)
        self._elements = set()

    def _vq(self):
        self._dev._live()
        return self._ptr

    def _home(self, what):
        """The queue's home is the BQL holder only with ioeventfd off."""
        self._dev._own(what)
        if "started" in self._dev.ioeventfd_state:
            raise Error(f"VirtQueue.{what}: queue {self.index} is handled "
                        f"in '{self._dev.vq_contexts[self.index]}' "
                        "(ioeventfd started): pop and push it from Python "
                        "only with ioeventfd off")
        return self._ptr

    # --- setup -----------------------------------------------------------
    @property
    def num(self):
        """The size the driver chose (0: not usable)."""
        return lib.virtio_queue_get_num(self._dev._vdev_live(), self.index)

    @num.setter
    def num(self, value):
        self._dev._own("queue.num")
        check_int(value, "num", 0, 0x7FFFFFFF)
        with bql():
            lib.virtio_queue_set_num(self._dev._vdev, self.index, value)

    @property
    def max_num(self):
        """The device's maximum size (queue-size)."""
        return lib.virtio_queue_get_max_num(self._dev._vdev_live(),
                                            self.index)

    def set_rings(self, desc, avail, used):
        """The guest addresses of the three areas; (0, 0, 0) tears the
        queue down.  An area outside guest RAM or misaligned breaks the
        device and raises."""
        self._dev._own("set_rings")
        for v, what in ((desc, "desc"), (avail, "avail"), (used, "used")):
            check_int(v, what, 0, U64)
        with bql():
            ret = lib.virtio_queue_set_rings(self._dev._vdev, self.index,
                                             desc, avail, used)
        if ret < 0:
            raise Error(f"queue {self.index}: {self._dev.last_error}")

    def setup(self, ring):
        """num and rings from a GuestRing (the driver's side)."""
        from ._hw import GuestRing
        if not isinstance(ring, GuestRing):
            raise TypeError("ring must be an aiolab.GuestRing")
        self.num = ring.num
        self.set_rings(ring.desc, ring.avail, ring.used)

    @property
    def ready(self):
        """Are the rings set up?"""
        return bool(lib.virtio_queue_ready(self._vq()))

    @property
    def enabled(self):
        """A disabled queue pops nothing and ignores kicks."""
        return bool(lib.aiolab_virtio_queue_is_enabled(
            self._dev._vdev_live(), self.index))

    @enabled.setter
    def enabled(self, value):
        self._dev._own("queue.enabled")
        lib.aiolab_virtio_queue_set_enabled(self._dev._vdev, self.index,
                                            bool(value))

    @property
    def last_avail_idx(self):
        """Where popping resumes (vhost-user GET/SET_VRING_BASE)."""
        return lib.virtio_queue_get_last_avail_idx(self._dev._vdev_live(),
                                                   self.index)

    @last_avail_idx.setter
    def last_avail_idx(self, value):
        self._home("last_avail_idx")
        check_int(value, "last_avail_idx", 0, U16)
        lib.virtio_queue_set_last_avail_idx(self._dev._vdev, self.index,
                                            value)

    def update_used_idx(self):
        """Re-read used.idx from the ring (a queue taken over)."""
        self._home("update_used_idx")
        lib.virtio_queue_update_used_idx(self._dev._vdev, self.index)

    @property
    def used_idx(self):
        """The device's used index."""
        return lib.aiolab_virtio_queue_get_used_idx(self._dev._vdev_live(),
                                                    self.index)

    @property
    def inuse(self):
        """Elements popped and not yet pushed or detached."""
        return lib.aiolab_virtio_queue_get_inuse(self._dev._vdev_live(),
                                                 self.index)

    @property
    def stats(self):
        """pops, pushes, notifies, irqfd_notifies, suppressed, kicks."""
        st = H.new("AiolabVirtQueueStats")
        lib.aiolab_virtio_queue_get_stats(self._vq(), raw(st))
        return {k: getattr(st, k) for k in (
            "pops", "pushes", "notifies", "irqfd_notifies", "suppressed",
            "kicks")}

    def interrupts(self):
        """Interrupts raised on the queue since the last call (its guest
        notifier's count).  A VirtIOBlkDriver takes them itself."""
        n = lib.virtio_queue_get_guest_notifier(self._vq())
        return _eventfd_take(lib.event_notifier_get_fd(n))

    # --- the queue's home thread (ioeventfd off, BQL) -------------------
    @property
    def empty(self):
        """Nothing available (also true when not set up, or broken)?"""
        vq = self._home("empty")
        with bql():
            return bool(lib.virtio_queue_empty(vq))

    def pop(self):
        """virtqueue_pop(): the next chain, validated and mapped, as a
        VirtQueueElement; None when there is none - or when the chain was
        malformed, which breaks the device (see last_error)."""
        vq = self._home("pop")
        with bql():
            p = lib.virtqueue_pop(vq, 4096)
        return None if B.is_null(p) else VirtQueueElement(self, p)

    def pop_head(self, head):
        """The chain at descriptor head, validated like pop(), without
        taking an avail entry (vhost-user's in-flight resubmission)."""
        vq = self._home("pop_head")
        check_int(head, "head", 0, U32)
        with bql():
            p = lib.aiolab_virtqueue_pop_head(vq, head, 4096)
        return None if B.is_null(p) else VirtQueueElement(self, p)

    def flush(self, count):
        """Publish count entries written by VirtQueueElement.fill()."""
        vq = self._home("flush")
        check_int(count, "count", 0, U32)
        with bql():
            lib.virtqueue_flush(vq, count)

    @property
    def notification(self):
        """Does the device ask the guest to kick (NO_NOTIFY / avail_event)?"""
        return bool(lib.virtio_queue_get_notification(self._vq()))

    @notification.setter
    def notification(self, enable):
        vq = self._home("notification")
        with bql():
            lib.virtio_queue_set_notification(vq, 1 if enable else 0)

    def should_notify(self):
        """Does the guest want an interrupt now (NO_INTERRUPT, EVENT_IDX)?"""
        vq = self._home("should_notify")
        with bql():
            return bool(lib.virtio_should_notify(self._dev._vdev, vq))

    def notify(self, irqfd=False):
        """Interrupt the guest if it wants one: virtio_notify(), or with
        irqfd the deferred virtio_notify_irqfd()."""
        vq = self._home("notify")
        with bql():
            fn = lib.virtio_notify_irqfd if irqfd else lib.virtio_notify
            fn(self._dev._vdev, vq)

    def handle(self):
        """virtio_blk_handle_vq(): one handle pass over the queue, what a
        kick runs.  Completions arrive in the main loop."""
        vq = self._home("handle")
        with bql():
            lib.virtio_blk_handle_vq(self._dev._ptr, vq)

    def _release_elements(self):
        for e in list(self._elements):
            e._free()

    def __repr__(self):
        return f"<aiolab.VirtQueue {self.index} num={self.num}>"


class VirtQueueElement:
    """A popped descriptor chain: its head (index), the device-readable
    buffers (out_bufs) and device-writable ones (in_bufs) as (guest
    address, length) pairs.  Finish it with push(), fill(), detach() or
    unpop(); afterwards it raises aiolab.Error."""

    def __init__(self, vq, p):
        e = H.elem(p)
        self._vq, self._p = vq, p
        self.index, self.ndescs = e.index, e.ndescs
        self.out_bufs = [(H.u64(e.out_addr, i), H.iov(e.out_sg, i)[1])
                         for i in range(e.out_num)]
        self.in_bufs = [(H.u64(e.in_addr, i), H.iov(e.in_sg, i)[1])
                        for i in range(e.in_num)]
        vq._elements.add(self)

    def _live(self, what):
        self._vq._dev._live()
        if self._p is None:
            raise Error(f"VirtQueueElement.{what}: this element was already "
                        "pushed, detached or unpopped")
        self._vq._home(what)
        return H.elem(self._p)

    @property
    def done(self):
        """Was it pushed, filled, detached or unpopped?"""
        return self._p is None

    def read_out(self):
        """The device-readable buffers' bytes, concatenated."""
        self._live("read_out")
        mem = self._vq._dev._mem
        return b"".join(mem.read(gpa, n) for gpa, n in self.out_bufs)

    def write_in(self, data, offset=0):
        """Scatter data into the device-writable buffers from byte offset.
        Returns the bytes written (at most what fits)."""
        self._live("write_in")
        data = as_bytes(data)
        check_int(offset, "offset", 0)
        mem = self._vq._dev._mem
        done = 0
        for gpa, n in self.in_bufs:
            if offset >= n:
                offset -= n
                continue
            chunk = data[done:done + n - offset]
            if not chunk:
                break
            mem.write(gpa + offset, chunk)
            done += len(chunk)
            offset = 0
        return done

    def _finish(self, fn, *args):
        e = self._live(fn.__name__)
        with bql():
            fn(self._vq._ptr, e, *args)
        self._free()

    def push(self, length=0):
        """Complete it: a used entry {index, length}, used.idx++.  No
        interrupt: call the queue's notify() after."""
        self._finish(lib.virtqueue_push, check_int(length, "length", 0, U32))

    def fill(self, length, idx):
        """Write its used entry at used_idx + idx without publishing it
        (VirtQueue.flush() publishes)."""
        self._finish(lib.virtqueue_fill, check_int(length, "length", 0, U32),
                     check_int(idx, "idx", 0, U32))

    def detach(self, length=0):
        """Drop it without a used entry (the guest never sees it end)."""
        self._finish(lib.virtqueue_detach_element,
                     check_int(length, "length", 0, U32))

    def unpop(self):
        """Put it back: the next pop returns the same chain."""
        self._finish(lib.virtqueue_unpop, 0)

    def _free(self):
        if self._p is not None:
            H.free(self._p)
            self._p = None
            self._vq._elements.discard(self)

    def __repr__(self):
        return f"<aiolab.VirtQueueElement head={self.index} " \
               f"out={self.out_bufs} in={self.in_bufs}" \
               f"{' done' if self._p is None else ''}>"


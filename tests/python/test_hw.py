# SPDX-License-Identifier: MIT
"""The device layer from Python (aiolab.GuestMemory, GuestRing,
VirtIOBlk, VirtQueue, VirtIOBlkDriver) on this process's binding: guest
memory that refuses anything outside RAM, chains popped and pushed by
hand, virtio-blk read/write round trips in each placement, malformed
chains that put the device into NEEDS_RESET without touching memory
outside guest RAM, and bad input."""
import os
import struct

import pytest

import aiolab

RAM = 4 << 20
BUF = 0x100000                  # request buffers in the tests' own chains
F_NEXT = aiolab.GuestRing.VRING_DESC_F_NEXT
F_WRITE = aiolab.GuestRing.VRING_DESC_F_WRITE
F_INDIRECT = aiolab.GuestRing.VRING_DESC_F_INDIRECT
NEEDS_RESET = aiolab.VirtIOBlk.VIRTIO_CONFIG_S_NEEDS_RESET
T_IN = aiolab.VirtIOBlkDriver.VIRTIO_BLK_T_IN
T_OUT = aiolab.VirtIOBlkDriver.VIRTIO_BLK_T_OUT


@pytest.fixture
def mem(main):
    m = aiolab.GuestMemory()
    m.add_ram(0, RAM, "guest-ram")
    yield m


@pytest.fixture
def disk(main, tmp_path):
    """A 16 MiB raw file behind a BlockBackend."""
    path = tmp_path / "disk.img"
    with open(path, "wb") as f:
        f.truncate(16 << 20)
    with aiolab.bql():
        blk = aiolab.BlockBackend.open(f"driver=file,filename={path},"
                                       "aio=threads")
    yield blk


def manual_setup(dev, mem, num=16, base=0x1000):
    """The driver's start-up by hand: features, one ring, DRIVER_OK."""
    S = aiolab.VirtIOBlk
    st = S.VIRTIO_CONFIG_S_ACKNOWLEDGE | S.VIRTIO_CONFIG_S_DRIVER
    dev.set_status(st)
    dev.set_features(dev.host_features &
                     ~(1 << S.VIRTIO_RING_F_EVENT_IDX))
    dev.set_status(st | S.VIRTIO_CONFIG_S_FEATURES_OK)
    ring = aiolab.GuestRing(mem, num, base=base)
    q = dev.queue(0)
    q.num = num
    q.setup(ring)
    dev.set_status(st | S.VIRTIO_CONFIG_S_FEATURES_OK |
                   S.VIRTIO_CONFIG_S_DRIVER_OK)
    return ring, q


# --- guest memory -------------------------------------------------------------

def test_guest_memory(mem):
    assert mem.regions == [dict(gpa=0, size=RAM, fd=mem.regions[0]["fd"],
                                fd_offset=0, uaddr=0)]
    assert mem.regions[0]["fd"] >= 0
    assert mem.translate(0x10, 16) is not None
    assert mem.translate(RAM - 8, 16) is None          # straddles the end
    assert mem.translate(RAM, 1) is None
    assert mem.translate(0x10, 0) is None
    assert mem.translate(2 ** 64 - 1, 2) is None        # wraps
    mem.write(0x2000, b"guest bytes")
    assert mem.read(0x2000, 11) == b"guest bytes"
    assert mem.read(0x2000, 0) == b""
    with pytest.raises(aiolab.Error, match="not inside one region"):
        mem.read(RAM - 2, 4)
    with pytest.raises(aiolab.Error, match="not inside one region"):
        mem.write(RAM - 1, b"xy")
    assert mem.read(RAM - 2, 2) == b"\0\0"             # nothing written
    # A second region right after the first: a buffer may span both, in
    # two pieces, but translate() never gives a pointer across them.
    mem.add_ram(RAM, 0x10000, "more")
    assert [n for _, n in mem.map_sg(RAM - 0x100, 0x200)] == [0x100, 0x100]
    assert mem.translate(RAM - 0x100, 0x200) is None
    with pytest.raises(aiolab.Error, match="Bad address"):
        mem.map_sg(RAM + 0x10000 - 4, 8)
    with pytest.raises(aiolab.Error, match="overlaps"):
        mem.add_ram(0x1000, 0x1000)
    mem.remove(RAM, 0x10000)
    assert len(mem.regions) == 1
    mem.close()
    with pytest.raises(aiolab.Error, match="closed"):
        mem.read(0, 1)


def test_guest_memory_bad_input(mem):
    with pytest.raises(TypeError):
        mem.read("0", 1)
    with pytest.raises(ValueError):
        mem.read(-1, 1)
    with pytest.raises(ValueError):
        mem.translate(0, 2 ** 64)
    with pytest.raises(TypeError):
        mem.write(0, 12)
    with pytest.raises(TypeError):
        mem.add_ram(0x800000, 0x1000, name=3)
    with pytest.raises(aiolab.Error):
        mem.add_ram(0x800010, 0x1000)                  # not page-aligned
    with pytest.raises(aiolab.Error):
        mem.remove(0x800000, 0x1000)                   # no such region
    ring = aiolab.GuestRing(mem, 8, base=0x1000)
    with pytest.raises(aiolab.Error, match="in use by"):
        mem.close()
    ring.close()
    mem.close()


# --- the driver's ring ---------------------------------------------------------

def test_guest_ring(mem):
    d, a, u, size = aiolab.GuestRing.layout(16, 0x1000)
    assert (d, a) == (0x1000, 0x1100) and u % 4 == 0 and size > 0
    ring = aiolab.GuestRing(mem, 16, base=0x1000)
    assert (ring.num, ring.desc, ring.avail, ring.used) == (16, d, a, u)
    assert ring.num_free == 16 and ring.avail_idx == 0
    head = ring.add_chain([(BUF, 16, False), (BUF + 16, 1, True)])
    assert ring.num_free == 14 and ring.avail_idx == 1
    assert ring.kick_needed()                   # the device asked for kicks
    assert ring.get_used() is None
    with pytest.raises(aiolab.Error, match="free"):
        ring.add_chain([(BUF, 1, False)] * 15)
    with pytest.raises(ValueError):
        ring.set_desc(16, BUF, 1)               # no descriptor 16
    with pytest.raises(ValueError):
        aiolab.GuestRing(mem, 12, base=0x8000)  # not a power of 2
    with pytest.raises(aiolab.Error, match="not inside guest RAM"):
        aiolab.GuestRing(mem, 16, base=RAM - 64)
    with pytest.raises(TypeError):
        aiolab.GuestRing(mem, 16, base=0x1000, desc=0x2000)
    with pytest.raises(TypeError):
        ring.add_chain([(BUF, 16)])
    assert head == 0
    ring.close()
    with pytest.raises(aiolab.Error, match="closed"):
        ring.publish(0)


# --- chains popped and pushed by hand ------------------------------------------

def test_chain_popped_by_device(mem, disk):
    dev = aiolab.VirtIOBlk(disk, mem, ioeventfd=False)
    ring, q = manual_setup(dev, mem)
    mem.write(BUF, b"H" * 16)
    mem.write(BUF + 0x1000, b"payload!")
    head = ring.add_chain([(BUF, 16, False), (BUF + 0x1000, 8, False),
                           (BUF + 0x2000, 512, True),
                           (BUF + 0x3000, 1, True)])
    assert not q.empty
    elem = q.pop()
    assert elem.index == head
    assert elem.out_bufs == [(BUF, 16), (BUF + 0x1000, 8)]
    assert elem.in_bufs == [(BUF + 0x2000, 512), (BUF + 0x3000, 1)]
    assert elem.read_out() == b"H" * 16 + b"payload!"
    assert q.inuse == 1 and q.empty and q.pop() is None
    # The element is a snapshot: rewriting the descriptors now (a guest
    # racing the device) changes nothing the device already validated.
    ring.set_desc(head, RAM + 0x1000, 16, 0, 0)
    assert elem.out_bufs[0] == (BUF, 16)
    assert elem.write_in(b"R" * 513) == 513
    assert mem.read(BUF + 0x2000, 512) == b"R" * 512
    assert mem.read(BUF + 0x3000, 1) == b"R"
    assert ring.get_used() is None
    elem.push(513)
    assert ring.get_used() == (head, 513)
    assert q.inuse == 0 and q.used_idx == 1
    assert q.stats["pops"] == 1 and q.stats["pushes"] == 1
    with pytest.raises(aiolab.Error, match="already pushed"):
        elem.push(1)
    with pytest.raises(aiolab.Error, match="already pushed"):
        elem.read_out()
    dev.close()
    ring.close()


def test_indirect_unpop_detach(mem, disk):
    dev = aiolab.VirtIOBlk(disk, mem, ioeventfd=False)
    ring, q = manual_setup(dev, mem)
    table = BUF + 0x10000
    # Inside a table, a nested INDIRECT flag is a plain buffer (QEMU's
    # rule: not rejected, not followed).
    mem.write(table, aiolab.GuestRing.pack_desc(BUF, 16, F_NEXT, 1) +
              aiolab.GuestRing.pack_desc(BUF + 0x1000, 4096,
                                         F_NEXT | F_WRITE | F_INDIRECT, 2) +
              aiolab.GuestRing.pack_desc(BUF + 0x3000, 1, F_WRITE, 0))
    ring.set_desc(5, table, 48, F_INDIRECT)
    ring.publish(5)
    ring.set_desc(6, BUF, 16)
    ring.publish(6)
    e = q.pop()
    assert e.index == 5 and e.out_bufs == [(BUF, 16)]
    assert e.in_bufs == [(BUF + 0x1000, 4096), (BUF + 0x3000, 1)]
    e.unpop()                                   # the same chain again
    assert q.inuse == 0
    e = q.pop()
    assert e.index == 5
    f = q.pop()
    assert f.index == 6 and q.inuse == 2
    f.detach()                                  # no used entry for it
    e.fill(4097, 0)
    assert ring.get_used() is None              # filled, not published
    q.flush(1)
    assert ring.get_used() == (5, 4097) and q.inuse == 0
    assert not dev.broken
    dev.close()
    ring.close()


# --- virtio-blk round trips --------------------------------------------------

@pytest.mark.parametrize("placement", ["ioeventfd-off", "main-loop",
                                       "iothread"])
def test_round_trip(mem, disk, placement):
    io = aiolab.IOThread("io0") if placement == "iothread" else None
    dev = aiolab.VirtIOBlk(disk, mem, iothread=io, serial="aiolab-1",
                           ioeventfd=placement != "ioeventfd-off")
    assert dev.vq_contexts == ["io0" if io else "main-loop"]
    drv = aiolab.VirtIOBlkDriver(dev)
    if placement == "ioeventfd-off":
        assert dev.ioeventfd_state == {"disabled"}
    else:
        assert "started" in dev.ioeventfd_state
    data = os.urandom(8192)
    drv.write(16, data)
    assert drv.read(16, 8192) == data
    assert drv.read(0, 512) == bytes(512)
    assert drv.get_id() == "aiolab-1"
    drv.flush()
    with aiolab.bql():
        assert disk.pread(16 * 512, 8192) == data    # it reached the disk
    # A range past the end is IOERR; an unknown type UNSUPP; neither
    # breaks the device.
    r = drv.request(T_IN, (16 << 20) // 512, length=512)
    assert r.status == drv.VIRTIO_BLK_S_IOERR
    r = drv.request(99, 0, length=512)
    assert r.status == drv.VIRTIO_BLK_S_UNSUPP
    with pytest.raises(aiolab.Error, match="status IOERR"):
        drv.read((16 << 20) // 512, 512)
    assert not dev.broken
    st = dev.stats
    assert st["reads"] >= 2 and st["writes"] == 1 and st["ioerrors"] == 2
    assert sum(drv.interrupts) > 0              # completions interrupted
    # Several requests in one kick: all complete.
    reqs = [drv.submit(T_OUT, 64 + 8 * i, data=bytes([i]) * 4096)
            for i in range(8)]
    drv.kick()
    drv.wait(reqs)
    assert [r.status for r in reqs] == [0] * 8
    assert drv.read(64, 8 * 4096) == b"".join(bytes([i]) * 4096
                                              for i in range(8))
    dev.close()
    assert drv.closed
    if io:
        io.close()


def test_placement_by_mapping(mem, disk):
    with aiolab.IOThread("ioA") as a, aiolab.IOThread("ioB") as b:
        dev = aiolab.VirtIOBlk(disk, mem, num_queues=3,
                               iothread_vq_mapping=[a, b])
        assert dev.vq_contexts == ["ioA", "ioB", "ioA"]
        assert dev.vq_context(1) is b.ctx
        drv = aiolab.VirtIOBlkDriver(dev)
        for q in range(3):
            drv.write(8 * q, bytes([q + 1]) * 4096, queue=q)
        assert drv.read(0, 3 * 4096, queue=1) == \
            b"".join(bytes([q + 1]) * 4096 for q in range(3))
        with pytest.raises(aiolab.Error, match="is used by"):
            a.close()
        dev.close()


# --- malformed chains -----------------------------------------------------------

def _loop(ring, mem):
    ring.set_desc(0, BUF, 16, F_NEXT, 1)
    ring.set_desc(1, BUF + 16, 1, F_NEXT, 0)     # back to 0, forever
    return 0


def _outside_ram(ring, mem):
    # The data buffer straddles the end of guest RAM: the first bytes are
    # RAM, the rest is the guard page a stray write would hit.
    ring.set_desc(0, BUF, 16, F_NEXT, 1)
    ring.set_desc(1, RAM - 256, 512, F_WRITE | F_NEXT, 2)
    ring.set_desc(2, BUF + 16, 1, F_WRITE)
    return 0


def _indirect_size(ring, mem):
    ring.set_desc(0, BUF + 0x10000, 20, F_INDIRECT)
    return 0


def _indirect_outside(ring, mem):
    ring.set_desc(0, RAM - 32, 64, F_INDIRECT)
    return 0


def _next_out_of_range(ring, mem):
    ring.set_desc(0, BUF, 16, F_NEXT, 1000)
    return 0


def _too_long(ring, mem):
    # An indirect table of 4 entries whose chain goes on past its end.
    t = BUF + 0x10000
    mem.write(t, b"".join(aiolab.GuestRing.pack_desc(BUF, 16, F_NEXT, i + 1)
                          for i in range(4)))
    ring.set_desc(0, t, 64, F_INDIRECT)
    return 0


def _too_many(ring, mem):
    # 1100 valid descriptors in one chain: more than VIRTQUEUE_MAX_SIZE
    # (1024) iovecs for one element.
    t = BUF + 0x10000
    mem.write(t, b"".join(aiolab.GuestRing.pack_desc(BUF, 16, F_NEXT, i + 1)
                          for i in range(1099)) +
              aiolab.GuestRing.pack_desc(BUF, 16))
    ring.set_desc(0, t, 1100 * 16, F_INDIRECT)
    return 0


def _wrong_order(ring, mem):
    ring.set_desc(0, BUF + 16, 1, F_WRITE | F_NEXT, 1)
    ring.set_desc(1, BUF, 16, 0)
    return 0


def _zero_length(ring, mem):
    ring.set_desc(0, BUF, 16, F_NEXT, 1)
    ring.set_desc(1, BUF + 16, 0, F_WRITE)
    return 0


def _bad_head(ring, mem):
    return 999                                  # >= num (256)


def _missing_status(ring, mem):
    ring.set_desc(0, BUF, 16)                   # no device-writable byte
    return 0


MALFORMED = [
    (_loop, "Looped descriptor"),
    (_outside_ram, "virtio: bogus descriptor or out of resources"),
    (_indirect_size, "Invalid size for indirect buffer table"),
    (_indirect_outside, "Cannot map indirect buffer"),
    (_next_out_of_range, "Desc next is 1000"),
    (_too_long, "Desc next is 4"),
    (_too_many, "virtio: too many write descriptors in indirect table"),
    (_wrong_order, "Incorrect order for descriptors"),
    (_zero_length, "virtio: zero sized buffers are not allowed"),
    (_bad_head, "Guest says index 999 is available"),
    (_missing_status, "virtio-blk missing headers"),
]


@pytest.mark.parametrize("build,message", MALFORMED,
                         ids=[m[0].__name__[1:] for m in MALFORMED])
def test_malformed_chain_needs_reset(mem, disk, build, message):
    dev = aiolab.VirtIOBlk(disk, mem)            # main-loop placement
    drv = aiolab.VirtIOBlkDriver(dev)
    ring = drv.rings[0]
    canary = os.urandom(256)
    mem.write(RAM - 256, canary)                 # the last bytes of RAM
    mem.write(BUF, struct.pack("<IIQ", T_IN, 0, 0))
    mem.write(BUF + 16, b"\xee")
    dev.config_interrupts()
    ring.publish(build(ring, mem))
    drv.kick(force=True)
    drv.run_until(lambda: dev.broken, timeout=10)
    assert dev.last_error == message
    assert dev.status & NEEDS_RESET
    drv.run_until(lambda: drv.config_interrupts > 0, timeout=10)
    assert ring.used_idx == 0                    # nothing completed
    assert mem.read(RAM - 256, 256) == canary    # nothing written
    assert mem.read(BUF + 16, 1) == b"\xee"
    # Broken: further kicks are ignored, however valid the request.
    req = drv.submit(T_IN, 0, length=512)
    drv.kick(force=True)
    with pytest.raises(TimeoutError):
        drv.wait(req, timeout=0.2)
    assert not req.done and ring.used_idx == 0
    # Until a reset (status 0), after which the driver starts over.
    drv.reset()
    assert not dev.broken and not dev.status & NEEDS_RESET
    data = os.urandom(512)
    drv.write(8, data)
    assert drv.read(8, 512) == data
    dev.close()


# --- bad input and misuse --------------------------------------------------------

def test_device_bad_input(mem, disk):
    with pytest.raises(TypeError, match="BlockBackend"):
        aiolab.VirtIOBlk(None, mem)
    with pytest.raises(TypeError, match="GuestMemory"):
        aiolab.VirtIOBlk(disk, "mem")
    with pytest.raises(TypeError, match="IOThread"):
        aiolab.VirtIOBlk(disk, mem, iothread="io0")
    with pytest.raises(ValueError, match="rerror"):
        aiolab.VirtIOBlk(disk, mem, rerror="explode")
    with pytest.raises(ValueError):
        aiolab.VirtIOBlk(disk, mem, num_queues=70000)
    with pytest.raises(TypeError):
        aiolab.VirtIOBlk(disk, mem, bogus_property=1)
    with pytest.raises(aiolab.Error,
                       match=r"invalid queue-size property \(3\)"):
        aiolab.VirtIOBlk(disk, mem, queue_size=3)
    with aiolab.IOThread("io0") as io:
        with pytest.raises(aiolab.Error, match="ioeventfd is required"):
            aiolab.VirtIOBlk(disk, mem, iothread=io, ioeventfd=False)
    with aiolab.IOThread("io1") as io:
        with pytest.raises(aiolab.Error, match="vq index 2 for IOThread "
                           "\"io1\" must be less than num_queues 2"):
            aiolab.VirtIOBlk(disk, mem, num_queues=2,
                             iothread_vq_mapping=[(io, [0, 2])])
        with pytest.raises(aiolab.Error, match="incompatible with "
                           "iothread"):
            aiolab.VirtIOBlk(disk, mem, iothread=io, notifiers=False)
    dev = aiolab.VirtIOBlk(disk, mem)
    with pytest.raises(aiolab.Error, match="in use by"):
        aiolab.VirtIOBlk(disk, mem)
    with aiolab.bql():
        with pytest.raises(aiolab.Error, match="uses this BlockBackend"):
            disk.unref()
    with pytest.raises(ValueError):
        dev.queue(1)
    with pytest.raises(aiolab.Error, match="not offered"):
        dev.set_features(1 << 63)
    drv = aiolab.VirtIOBlkDriver(dev)
    with pytest.raises(aiolab.Error, match="ioeventfd started"):
        dev.queue(0).pop()                      # the main loop's queue now
    with pytest.raises(aiolab.Error, match="frozen"):
        dev.set_features(0)
    with pytest.raises(TypeError):
        drv.submit(T_OUT, 0, data=b"x" * 512, length=512)
    dev.close()
    with pytest.raises(aiolab.Error, match="closed"):
        dev.status
    with pytest.raises(aiolab.Error, match="closed"):
        drv.read(0, 512)
    with aiolab.bql():
        disk.unref()                            # allowed again


def test_element_outlives_device(mem, disk):
    dev = aiolab.VirtIOBlk(disk, mem, ioeventfd=False)
    ring, q = manual_setup(dev, mem)
    ring.add_chain([(BUF, 16, False)])
    e = q.pop()
    dev.close()
    with pytest.raises(aiolab.Error, match="closed"):
        e.push(0)
    with pytest.raises(aiolab.Error, match="closed"):
        q.pop()
    ring.close()
    mem.close()


# --- the re-entrancy guard ----------------------------------------------------

def test_reentrancy_guard(ctx):
    """A guarded BH engages its device's guard while it runs and restores
    the previous value after; a memory core refusing access to an
    engaged device then blocks a DMA that loops back into it."""
    g = aiolab.MemReentrancyGuard()
    assert not g.engaged
    seen, blocked = [], []

    def mmio_write():               # the memory core's check, then the device
        if g.engaged:
            blocked.append(1)
            return
        seen.append("reset")

    def dma_done():                 # the DMA lands on the device's register
        seen.append(g.engaged)
        mmio_write()

    plain, guarded = ctx.bh(dma_done), ctx.bh(dma_done, guard=g)
    plain.schedule()
    ctx.poll()
    assert seen == [False, "reset"] and not blocked
    guarded.schedule()
    ctx.poll()
    assert seen[2:] == [True] and blocked == [1]
    assert not g.engaged                        # released after the BH
    g.engaged = True                            # already engaged: stays so
    guarded.schedule()
    ctx.poll()
    assert g.engaged
    g.engaged = False
    with pytest.raises(TypeError, match="MemReentrancyGuard"):
        ctx.bh(dma_done, guard=object())
    plain.delete()
    guarded.delete()

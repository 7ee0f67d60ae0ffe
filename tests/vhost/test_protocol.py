# SPDX-License-Identifier: MIT
"""The vhost-user-blk export against a raw Python front-end (vuclient.py):
the protocol done right (also against Debian's qemu-storage-daemon, to
show the client is right), a read-only export holding off a front-end
that writes anyway, bad input of every kind (the daemon logs a clear
error, drops that front-end and keeps serving the next one and its other
exports), and the in-flight log made deterministic with a blkdebug
breakpoint: an out-of-order completion survives a SIGKILL with the log,
and is lost without it."""
import fcntl
import mmap
import os
import struct
import sys
import time

import vuclient as vu
from daemon import vhost_export_args

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "machine"))
from qmp import QMPClient  # noqa: E402

DISK = 16 << 20


def start(env, writable=True, node_prefix=(), kind=None, second=False):
    """A daemon with export exp0 on vu0.sock (and with @second, exp1 on
    vu1.sock in IOThread io1, on its own image)."""
    img = env.image("disk0.img", DISK)
    sock = env.path("vu0.sock")
    d = env.daemon(kind)
    args = vhost_export_args(d.kind, img, sock, writable,
                             node_prefix=node_prefix)
    socks = [sock]
    if second:
        img1 = env.image("disk1.img", DISK)
        sock1 = env.path("vu1.sock")
        args = ["--object", "iothread,id=io1"] + args + [
            "--blockdev", f"driver=file,node-name=disk1,filename={img1},"
                          "cache.direct=on",
            "--export", f"type=vhost-user-blk,id=exp1,node-name=disk1,"
                        f"addr.type=unix,addr.path={sock1},writable=on,"
                        "iothread=io1"]
        socks.append(sock1)
    d.start(args, socks)
    return d, img, sock


def good_io(sock, sector=64, timeout=10.0):
    """A well-behaved front-end: set up, write a block, read it back."""
    c = vu.VuClient(sock, timeout)
    try:
        ram, ring = c.setup()
        data = os.urandom(4096)
        res = vu.blk_io(ring, writes=[(sector, data)], timeout=timeout)
        assert [s for s, _ in res.values()] == [vu.S_OK], res
        res = vu.blk_io(ring, reads=[(sector, 4096)], timeout=timeout)
        (status, back), = res.values()
        assert status == vu.S_OK and back == data, status
        return data
    finally:
        c.close()


def test_protocol_round_trip(env):
    """A QEMU-like set-up (features, protocol features, owner, memory
    table, in-flight log, one ring) and I/O: what a write puts in the
    image a read returns; GET_QUEUE_NUM, GET_CONFIG (capacity) and a
    second connection after the first went away."""
    d, img, sock = start(env)
    c = vu.VuClient(sock)
    offered = c.negotiate()
    assert offered & vu.F_VERSION_1
    assert c.get_u64(vu.GET_QUEUE_NUM) == 1
    c.send(vu.GET_CONFIG, struct.pack("<III", 0, 8, 0) + bytes(8))
    payload, _ = c.reply(vu.GET_CONFIG)
    assert struct.unpack("<Q", payload[12:20])[0] == DISK // 512
    ram = vu.GuestRAM()
    ring = vu.Ring(ram)
    # The memory one region at a time (CONFIGURE_MEM_SLOTS), acked.
    c.send(vu.ADD_MEM_REG, struct.pack("<Q", 0) + ram.region(), [ram.fd],
           vu.VERSION | vu.NEED_REPLY)
    assert struct.unpack("<Q", c.reply(vu.ADD_MEM_REG)[0])[0] == 0
    fd, size, _ = c.get_inflight(1, ring.num)
    os.close(fd)
    c.start_ring(ring)
    data = os.urandom(8192)
    res = vu.blk_io(ring, writes=[(8, data[:4096]), (16, data[4096:])])
    assert [s for s, _ in res.values()] == [vu.S_OK] * 2, res
    res = vu.blk_io(ring, reads=[(8, 4096), (16, 4096)])
    assert b"".join(v[1] for v in sorted(res.values(), key=lambda v:
                                         v[1] != data[:4096])) == data
    # GET_VRING_BASE stops the ring: every request was completed first.
    assert c.state(vu.GET_VRING_BASE, 0, 0) == (0, ring.avail_idx)
    c.close()
    good_io(sock)                      # the next front-end is served
    assert d.stop() == 0
    with open(img, "rb") as f:
        f.seek(8 * 512)
        assert f.read(4096) == data[:4096]
        f.seek(16 * 512)
        assert f.read(4096) == data[4096:]


test_protocol_round_trip.kinds = ["aiolab", "qsd"]


def _wce(c):
    """virtio_blk_config.wce (offset 32) as GET_CONFIG reads it now."""
    c.send(vu.GET_CONFIG, struct.pack("<III", 0, 40, 0) + bytes(40))
    payload, _ = c.reply(vu.GET_CONFIG)
    return payload[12 + 32]


def test_cache_mode_survives_driver_change(env):
    """The front-end switches drivers without a device reset, as QEMU
    does at boot (SeaBIOS, then Linux): session 1 negotiates neither
    FLUSH nor CONFIG_WCE (the device turns its cache to write-through:
    it cannot be flushed), session 2 negotiates both.  Its driver reads
    wce from the config the front-end fetched at connect time, so the
    device's wce must be that value again - not session 1's leftover,
    which made a write-back guest's every write a write + flush.  A
    SET_CONFIG (the guest toggling the cache) holds into the next
    session too."""
    d, img, sock = start(env)
    c = vu.VuClient(sock)
    c.negotiate(features=vu.F_VERSION_1)
    initial = _wce(c)                   # what QEMU caches at connect
    ram = vu.GuestRAM()
    ring = vu.Ring(ram)
    c.mem_table(ram)
    # Session 1: no FLUSH.  (No GET_CONFIG now: a front-end that reads
    # the config again knows the new value; QEMU reads it at connect.)
    c.start_ring(ring)
    c.state(vu.GET_VRING_BASE, 0, 0)    # the front-end's "reset"
    flush, config_wce = vu.BLK_F_FLUSH, 1 << 11
    c.set_u64(vu.SET_FEATURES, (vu.F_VERSION_1 | flush | config_wce) &
              c.offered | vu.F_PROTOCOL_FEATURES)
    c.start_ring(ring)                  # session 2: FLUSH + CONFIG_WCE
    assert _wce(c) == initial, (f"session 2's driver read wce={initial} "
                                f"but the device runs with {_wce(c)}")
    data = os.urandom(4096)
    res = vu.blk_io(ring, writes=[(8, data)])
    assert [st for st, _ in res.values()] == [vu.S_OK], res
    # The guest turns the cache off (SET_CONFIG wce=0); a new session of
    # a CONFIG_WCE driver keeps it off, as QEMU's cached config says.
    c.send(vu.SET_CONFIG, struct.pack("<III", 32, 1, 0) + b"\0")
    assert _wce(c) == 0
    c.state(vu.GET_VRING_BASE, 0, ring.avail_idx)
    c.start_ring(ring, base=ring.avail_idx)
    assert _wce(c) == 0, "SET_CONFIG's wce=0 was lost at the restart"
    c.close()
    assert d.stop() == 0


test_cache_mode_survives_driver_change.kinds = ["aiolab", "qsd"]


def test_blocking_kick_and_iothread_across_disconnect(env):
    """A front-end passing a blocking kick eventfd (QEMU's are
    non-blocking) does I/O and hangs up: the device's stop reads the kick
    fd once more with nothing pending, which on a blocking fd hung the
    export's IOThread and the main loop with it (the next front-end got
    no answer).  The export makes kick fds non-blocking as they arrive.
    And the node, which an NBD export serves from the same IOThread io0,
    stays in io0 after the disconnect (the stop used to move it, and the
    NBD export with it, to the main loop)."""
    img = env.image("disk0.img", DISK)
    sock, nbd, qmp = (env.path(n) for n in ("vu0.sock", "nbd.sock",
                                             "qmp.sock"))
    d = env.daemon("aiolab")
    args = vhost_export_args(d.kind, img, sock, iothreads=("io0",)) + [
        "--nbd-server", f"addr.type=unix,addr.path={nbd}",
        "--export", "type=nbd,id=nbd0,node-name=disk0,name=disk0,"
                    "writable=on,iothread=io0",
        "--chardev", f"socket,id=qmp0,path={qmp},server=on,wait=off",
        "--monitor", "chardev=qmp0"]
    d.start(args, [sock, nbd, qmp])
    q = QMPClient(qmp)
    env.closers.append(q.close)

    def node_ctx():
        return [n["x-aio-context"] for n in
                q.execute("query-named-block-nodes")
                if n["node-name"] == "disk0"][0]

    assert node_ctx() == "io0"
    c = vu.VuClient(sock)
    ram = vu.GuestRAM()
    ring = vu.Ring(ram)
    os.close(ring.kick)
    ring.kick = os.eventfd(0, os.EFD_CLOEXEC)           # blocking
    ram, ring = c.setup(ram, ring)
    block = os.urandom(4096)
    # Two batches: requests in one batch may complete in any order.
    res = vu.blk_io(ring, writes=[(8, block)])
    assert list(res.values()) == [(vu.S_OK, None)], res
    res = vu.blk_io(ring, reads=[(8, 4096)])
    assert list(res.values()) == [(vu.S_OK, block)], res
    c.close()
    # Answered only once the disconnect (a device stop) was handled.
    c2 = vu.VuClient(sock, timeout=10)
    try:
        assert c2.get_u64(vu.GET_FEATURES) & vu.F_VERSION_1
    finally:
        c2.close()
    assert node_ctx() == "io0", "the disconnect moved node disk0 (and " \
        "the NBD export of it) out of io0"
    # The daemon's doing, on the file description the front-end shares.
    assert fcntl.fcntl(ring.kick, fcntl.F_GETFL) & os.O_NONBLOCK
    os.close(ring.kick)
    os.close(ring.call)
    q.close()
    assert d.stop() == 0


test_blocking_kick_and_iothread_across_disconnect.timeout = 40


def test_read_only_export_refuses_writes(env):
    """writable=off: VIRTIO_BLK_F_RO is offered, and a front-end that
    writes anyway gets VIRTIO_BLK_S_IOERR (the block layer refuses the
    write: the device's BlockBackend sits on a read-only filter); reads
    work; the image is untouched."""
    d, img, sock = start(env, writable=False)
    c = vu.VuClient(sock)
    ram, ring = c.setup()
    assert c.offered & vu.BLK_F_RO
    res = vu.blk_io(ring, writes=[(0, b"\x55" * 4096)])
    assert [s for s, _ in res.values()] == [vu.S_IOERR], res
    res = vu.blk_io(ring, reads=[(0, 4096)])
    assert list(res.values()) == [(vu.S_OK, bytes(4096))], res
    c.close()
    assert d.stop() == 0
    with open(img, "rb") as f:
        assert f.read() == bytes(DISK)


# --- bad input ----------------------------------------------------------------
# Each case gets a fresh connection and does one wrong thing; it returns
# what the daemon must say on stderr (None: nothing in particular).

def _hdr(req, flags, size):
    return struct.pack("<III", req, flags, size)


def bad_garbage(c):
    c.sock.sendall(b"\xde\xad\xbe\xef" * 8)
    return "not a version 1 request"


def bad_reply_flag(c):
    c.sock.sendall(_hdr(vu.GET_FEATURES, vu.VERSION | vu.REPLY, 0))
    return "not a version 1 request"


def bad_huge_size(c):
    c.sock.sendall(_hdr(vu.SET_MEM_TABLE, vu.VERSION, 1 << 20))
    return "too large"


def bad_unknown_request(c):
    c.send(99)
    return "request 99 (unknown) is not supported"


def bad_unsupported_request(c):
    c.send(vu.SET_LOG_BASE, struct.pack("<QQ", 0, 0))
    return "(SET_LOG_BASE) is not supported"


def bad_truncated_then_closed(c):
    c.sock.sendall(_hdr(vu.SET_FEATURES, vu.VERSION, 8) + b"\x01\x02\x03")
    c.sock.close()
    return "in the middle of a message"


def bad_short_payload(c):
    c.send(vu.SET_FEATURES, struct.pack("<I", 1))
    return "with a 4-byte payload (expected 8)"


def bad_features_not_offered(c):
    c.set_u64(vu.SET_FEATURES, 1 << 63)
    return "were not offered"


def bad_protocol_features(c):
    c.set_u64(vu.SET_PROTOCOL_FEATURES, 1 << 2)     # RARP
    return "SET_PROTOCOL_FEATURES"


def _mem(c, regions, fds, nregions=None):
    c.negotiate()
    body = b"".join(regions)
    c.send(vu.SET_MEM_TABLE,
           struct.pack("<II", len(regions) if nregions is None else nregions,
                       0) + body, fds)


def bad_region_past_end_of_file(c):
    ram = vu.GuestRAM(1 << 20)
    _mem(c, [ram.region(size=64 << 20)], [ram.fd])
    return "goes past the end of its file"


def bad_region_offset(c):
    ram = vu.GuestRAM(1 << 20)
    _mem(c, [ram.region(size=1 << 20, offset=1 << 20)], [ram.fd])
    return "goes past the end of its file"


def bad_region_not_a_file(c):
    efd = os.eventfd(0)
    _mem(c, [struct.pack("<QQQQ", 0, 1 << 20, vu.UADDR_BASE, 0)], [efd])
    os.close(efd)
    return "is not a memory file"


def bad_regions_overlap(c):
    ram = vu.GuestRAM(2 << 20)
    r0 = struct.pack("<QQQQ", 0, 2 << 20, vu.UADDR_BASE, 0)
    r1 = struct.pack("<QQQQ", 1 << 20, 1 << 20, vu.UADDR_BASE + (4 << 20), 0)
    _mem(c, [r0, r1], [ram.fd, ram.fd])
    return "overlaps"


def bad_nine_regions(c):
    ram = vu.GuestRAM(1 << 20)
    c.negotiate()
    c.send(vu.SET_MEM_TABLE, struct.pack("<II", 9, 0) + ram.region() * 8,
           [ram.fd])
    return "SET_MEM_TABLE with 9 regions"


def bad_region_without_fd(c):
    ram = vu.GuestRAM(1 << 20)
    _mem(c, [ram.region()], [])
    return "came with 0 file descriptors (expected 1)"


def bad_too_many_fds(c):
    fds = [os.eventfd(0) for _ in range(12)]
    c.negotiate()
    c.send(vu.SET_VRING_CALL, struct.pack("<Q", 0), fds)
    for fd in fds:
        os.close(fd)
    return "more than 8 file descriptors"


def bad_vring_index(c):
    c.negotiate()
    # Asked for an ack: the failure is answered (non-zero), then the
    # connection closes.
    assert c.state(vu.SET_VRING_NUM, 7, 64, ack=True) != 0
    return "for vring 7, but the device has 1"


def bad_vring_size(c):
    c.negotiate()
    c.state(vu.SET_VRING_NUM, 0, 100)
    return "size 100 is not a power of 2"


def bad_vring_base(c):
    c.negotiate()
    c.state(vu.SET_VRING_BASE, 0, 1 << 20)
    return "is not a 16-bit ring index"


def bad_vring_outside_memory(c):
    ram = vu.GuestRAM(1 << 20)
    c.negotiate()
    c.mem_table(ram)
    ring = vu.Ring(ram, base=(1 << 20) - 0x1000)  # runs off the end
    c.state(vu.SET_VRING_NUM, 0, 64)
    c.send(vu.SET_VRING_ADDR, ring.addr_payload(0))
    ring.close()
    return "is not inside the guest's memory"


def bad_vring_moved_outside_memory(c):
    # Addresses given before the memory: checked when the ring starts.
    ram = vu.GuestRAM(1 << 20)
    ring = vu.Ring(ram, base=0x80000)
    c.negotiate()
    c.state(vu.SET_VRING_NUM, 0, 64)
    c.send(vu.SET_VRING_ADDR, ring.addr_payload(0))
    small = vu.GuestRAM(256 << 10)
    c.mem_table(small, ack=False)
    c.set_u64(vu.SET_VRING_KICK, 0, [ring.kick])
    ring.close()
    return "is not inside the guest's memory"


def bad_kick_without_fd(c):
    c.negotiate()
    c.set_u64(vu.SET_VRING_KICK, vu.VRING_NOFD)
    return "no kick fd"


def bad_kick_not_an_eventfd(c):
    # A memfd as the kick fd: no AioContext may be asked to poll it.
    ram = vu.GuestRAM(1 << 20)
    c.negotiate()
    c.set_u64(vu.SET_VRING_KICK, 0, [ram.fd])
    return "the fd of SET_VRING_KICK is not an eventfd"


def bad_call_not_an_eventfd(c):
    ram = vu.GuestRAM(1 << 20)
    c.negotiate()
    c.set_u64(vu.SET_VRING_CALL, 0, [ram.fd])
    return "the fd of SET_VRING_CALL is not an eventfd"


def bad_ring_before_features(c):
    ram = vu.GuestRAM(1 << 20)
    ring = vu.Ring(ram)
    c.send(vu.SET_MEM_TABLE, struct.pack("<II", 1, 0) + ram.region(),
           [ram.fd])
    c.send(vu.SET_VRING_ADDR, ring.addr_payload(0))
    c.set_u64(vu.SET_VRING_KICK, 0, [ring.kick])
    ring.close()
    return "before SET_FEATURES"


def bad_config_size(c):
    c.negotiate()
    c.send(vu.GET_CONFIG, struct.pack("<III", 0, 300, 0) + bytes(256))
    return "GET_CONFIG of 300 bytes"


def bad_inflight_too_small(c):
    c.negotiate()
    fd = os.memfd_create("tiny")
    os.ftruncate(fd, 4096)
    c.set_inflight(fd, 1 << 20, 0, 1, 64)
    os.close(fd)
    return "in-flight log's fd is not a file of at least"


def bad_descriptor_chain(c):
    # The guest's side: a descriptor pointing outside guest RAM breaks
    # the device (virtio_error), and the front-end is dropped.
    ram, ring = c.setup()
    head = ring.submit(vu.T_OUT, 0, b"x" * 512)
    ring._desc(head + 1, 64 << 20, 512, vu.DESC_F_NEXT, head + 2)
    ring.do_kick()
    return "the device is broken (virtio: bogus descriptor"


def bad_disconnect_mid_request(c):
    # Requests in flight (each held 20 ms by blkdebug) when the front-end
    # goes: the device is stopped and drained before the memory goes.
    ram, ring = c.setup()
    for i in range(8):
        ring.submit(vu.T_OUT, 8 * i, os.urandom(4096))
    ring.do_kick()
    time.sleep(0.005)
    c.sock.close()
    return None


BAD = [v for k, v in sorted(globals().items()) if k.startswith("bad_")]


def test_bad_input(env):
    """Every bad front-end is dropped with a clear message; the daemon
    stays up, serves the next front-end on that export, and its other
    export (another socket, another IOThread, another image) keeps
    serving a front-end that stays connected throughout."""
    lat = "driver=blkdebug,node-name=disk0,image=file0,latency-ns=20000000"
    d, img, sock = start(env, node_prefix=(lat,), second=True)
    by = vu.VuClient(env.path("vu1.sock"))
    env.closers.append(by.close)
    bram, bring = by.setup()
    block = os.urandom(4096)
    assert list(vu.blk_io(bring, writes=[(0, block)]).values()) == \
        [(vu.S_OK, None)]
    failures = []
    for case in BAD:
        mark = d.mark()
        c = vu.VuClient(sock)
        try:
            want = case(c)
            if case is not bad_truncated_then_closed and \
                    case is not bad_disconnect_mid_request:
                assert c.dropped(10), "the daemon kept the connection"
            if want:
                assert d.wait_stderr(want, 10, mark), \
                    f"no '{want}' on stderr"
                line = d.wait_stderr("dropping the front-end", 10, mark)
                assert line and "exp0" in line, line
            assert d.alive(), "the daemon died"
            good_io(sock)
            res = vu.blk_io(bring, reads=[(0, 4096)])
            assert list(res.values()) == [(vu.S_OK, block)], \
                "the other export's front-end lost its data"
        except Exception as e:
            failures.append(f"{case.__name__}: {e!r}")
        finally:
            c.close()
    assert not failures, "\n".join(failures) + "\nstderr:\n" + d.stderr()
    by.close()
    assert d.stop() == 0


test_bad_input.timeout = 120


# --- the in-flight log, deterministic -------------------------------------------

def _inflight_heads(fd, size, num):
    """Heads marked in flight in queue 0's log region (vhost-user.rst:
    a 16-byte header, then 16 bytes per descriptor, inflight first)."""
    with mmap.mmap(fd, size) as m:
        return [i for i in range(num) if m[16 + 16 * i]]


def _out_of_order_then_kill(env):
    """Queue a write the daemon holds forever (a blkdebug breakpoint on
    writes) and a read after it that completes: used.idx is 1 with the
    write still in flight.  SIGKILL the daemon.  Returns what the next
    back-end needs: (ram, ring, client's inflight (fd, size, off), write
    head, read head, data, image)."""
    brk = ("driver=blkdebug,node-name=disk0,image=file0,"
           "break.0.event=write-aio,break.0.tag=w0")
    d, img, sock = start(env, node_prefix=(brk,))
    c = vu.VuClient(sock)
    ram, ring = c.setup(inflight=True)
    fd, size, off = c.inflight
    data = os.urandom(4096)
    w = ring.submit(vu.T_OUT, 0, data)
    ring.do_kick()
    deadline = time.monotonic() + 10
    while _inflight_heads(fd, size, ring.num) != [w]:
        assert time.monotonic() < deadline, "the write never got popped"
        time.sleep(0.01)
    r = ring.submit(vu.T_IN, 64, read_len=4096)
    ring.do_kick()
    assert ring.completions(1) == [(r, 4097)]   # data + status byte
    assert ring.used_idx() == 1
    assert _inflight_heads(fd, size, ring.num) == [w]
    d.kill()                                     # SIGKILL by its PID
    c.close()
    return ram, ring, (fd, size, off), w, r, data, img, sock


def _reconnect(env, ram, ring, sock, inflight=None):
    """A new daemon on the same image (no breakpoint), and the front-end
    back with the same memory and rings, rewound to the used index as
    QEMU rewinds them when its back-end died; with @inflight, the log is
    handed over (SET_INFLIGHT_FD)."""
    d = env.daemon()
    d.start(vhost_export_args("aiolab", env.path("disk0.img"), sock), [sock])
    c = vu.VuClient(sock)
    env.closers.append(c.close)
    c.negotiate()
    c.mem_table(ram)
    if inflight:
        c.set_inflight(*inflight, 1, ring.num)
    c.start_ring(ring, base=ring.used_idx())
    return d, c


def test_inflight_log_resubmits(env):
    """With the log: the new daemon resubmits exactly the write (the read
    that completed is not redone), it completes, and it is in the image."""
    ram, ring, inflight, w, r, data, img, sock = _out_of_order_then_kill(env)
    d, c = _reconnect(env, ram, ring, sock, inflight)
    assert d.wait_stderr("vring 0: 1 request in flight in the log", 10)
    assert ring.completions(1) == [(w, 1)]
    assert ring.status(w) == vu.S_OK
    time.sleep(0.3)
    assert ring.used_idx() == 2, "a request completed twice"
    c.close()
    assert d.stop() == 0
    with open(img, "rb") as f:
        assert f.read(4096) == data
    assert _inflight_heads(inflight[0], inflight[1], ring.num) == []


def test_without_inflight_log_a_request_is_lost(env):
    """The failure the log prevents, shown happening: rewound to the used
    index without the log, the new back-end pops the read again (a second
    completion of a head the guest already got back) and never the write,
    which is lost."""
    ram, ring, inflight, w, r, data, img, sock = _out_of_order_then_kill(env)
    d, c = _reconnect(env, ram, ring, sock, None)
    assert ring.completions(1) == [(r, 4097)], "expected the read again"
    time.sleep(0.5)
    assert ring.used_idx() == 2, "the write completed after all"
    c.close()
    assert d.stop() == 0
    with open(img, "rb") as f:
        assert f.read(4096) == bytes(4096), "the write reached the image"

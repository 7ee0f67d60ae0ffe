# SPDX-License-Identifier: MIT
"""tests/vhost/vuclient.py - a raw vhost-user front-end in Python, for the
tests that a real QEMU cannot do: malformed messages, wrong fds, memory
regions and rings that lie, a deterministic in-flight log.

It plays both QEMU (the messages, with fds passed by socket.send_fds) and
the guest driver (a split virtqueue in a memfd it shares, virtio-blk
requests, the kick eventfd it writes and the call eventfd it reads).
Message numbers and layouts: docs/interop/vhost-user.rst; rings and
requests: the virtio 1.x specification.  Standard library only.
"""
import mmap
import os
import select
import socket
import struct
import time

# Requests (vhost-user.rst, "Front-end message types").
GET_FEATURES, SET_FEATURES, SET_OWNER, RESET_OWNER = 1, 2, 3, 4
SET_MEM_TABLE, SET_LOG_BASE = 5, 6
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE = 8, 9, 10, 11
SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR = 12, 13, 14
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES = 15, 16
GET_QUEUE_NUM, SET_VRING_ENABLE = 17, 18
GET_CONFIG, SET_CONFIG = 24, 25
GET_INFLIGHT_FD, SET_INFLIGHT_FD = 31, 32
GET_MAX_MEM_SLOTS, ADD_MEM_REG, REM_MEM_REG = 36, 37, 38

VERSION, REPLY, NEED_REPLY = 0x1, 0x4, 0x8
F_PROTOCOL_FEATURES = 1 << 30
PF_MQ, PF_REPLY_ACK, PF_CONFIG = 1 << 0, 1 << 3, 1 << 9
PF_INFLIGHT, PF_MEM_SLOTS = 1 << 12, 1 << 15
VRING_NOFD = 1 << 8

# virtio
F_VERSION_1 = 1 << 32
BLK_F_RO, BLK_F_FLUSH = 1 << 5, 1 << 9
DESC_F_NEXT, DESC_F_WRITE = 1, 2
T_IN, T_OUT, T_FLUSH = 0, 1, 4
S_OK, S_IOERR, S_UNSUPP = 0, 1, 2

UADDR_BASE = 0x7f1200000000     # where "QEMU" pretends the RAM is mapped


class GuestRAM:
    """@size bytes of memfd RAM at guest physical 0."""

    def __init__(self, size=2 << 20, gpa=0):
        self.fd = os.memfd_create("vuclient-ram")
        os.ftruncate(self.fd, size)
        self.mm = mmap.mmap(self.fd, size)
        self.size = size
        self.gpa = gpa
        self.uaddr = UADDR_BASE + gpa

    def region(self, size=None, offset=0):
        """A VhostUserMemRegion for this RAM (its fields may be bent)."""
        return struct.pack("<QQQQ", self.gpa, size or self.size,
                           self.uaddr, offset)

    def write(self, gpa, data):
        self.mm[gpa - self.gpa:gpa - self.gpa + len(data)] = data

    def read(self, gpa, n):
        return bytes(self.mm[gpa - self.gpa:gpa - self.gpa + n])

    def close(self):
        self.mm.close()
        os.close(self.fd)


class Ring:
    """The driver's side of a split virtqueue of @num entries in @ram:
    descriptors at @base (not 0: a ring at guest address 0 is "not set
    up" to virtio), avail at +0x1000, used at +0x2000, headers and
    statuses at +0x3000, 4 KiB data buffers from +0x10000 (one per
    head)."""

    def __init__(self, ram, num=64, base=0x40000):
        self.ram, self.num = ram, num
        self.desc = base
        self.avail = base + 0x1000
        self.used = base + 0x2000
        self.hdrs = base + 0x3000
        self.data = base + 0x10000
        self.avail_idx = 0
        self.last_used = 0
        self.free = list(range(num // 3))   # groups of 3 descriptors
        self.kick = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.call = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def addr_payload(self, index):
        """SET_VRING_ADDR's payload: index, flags, desc, used, avail, log
        (front-end user addresses)."""
        u = self.ram.uaddr - self.ram.gpa
        return struct.pack("<IIQQQQ", index, 0, u + self.desc, u + self.used,
                           u + self.avail, 0)

    def buf(self, head):
        return self.data + head * 4096

    def _desc(self, i, addr, length, flags, nxt):
        self.ram.write(self.desc + 16 * i,
                       struct.pack("<QIHH", addr, length, flags, nxt))

    def submit(self, rtype, sector, data=b"", read_len=0, group=None):
        """Queue one virtio-blk request: a chain (header, data, status) in
        descriptor group @group (descriptors 3g, 3g+1, 3g+2; the next
        free one by default).  Returns its head, 3g.  No kick."""
        g = group if group is not None else self.free.pop(0)
        head = 3 * g
        hdr = self.hdrs + 32 * g
        self.ram.write(hdr, struct.pack("<IIQ", rtype, 0, sector))
        self.ram.write(hdr + 16, b"\xff")
        chain = [(hdr, 16, 0)]
        if data:
            self.ram.write(self.buf(g), data)
            chain.append((self.buf(g), len(data), 0))
        elif read_len:
            chain.append((self.buf(g), read_len, DESC_F_WRITE))
        chain.append((hdr + 16, 1, DESC_F_WRITE))
        for k, (addr, length, flags) in enumerate(chain):
            last = k == len(chain) - 1
            self._desc(head + k, addr, length,
                       flags | (0 if last else DESC_F_NEXT), head + k + 1)
        self.publish(head)
        return head

    def publish(self, head):
        self.ram.write(self.avail + 4 + 2 * (self.avail_idx % self.num),
                       struct.pack("<H", head))
        self.avail_idx = (self.avail_idx + 1) & 0xffff
        self.ram.write(self.avail + 2, struct.pack("<H", self.avail_idx))

    def do_kick(self):
        os.eventfd_write(self.kick, 1)

    def used_idx(self):
        return struct.unpack("<H", self.ram.read(self.used + 2, 2))[0]

    def status(self, head):
        g = head // 3
        return self.ram.read(self.hdrs + 32 * g + 16, 1)[0]

    def completions(self, want, timeout=10.0):
        """Wait for @want more used entries: [(head, len)]."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < want:
            while self.last_used != self.used_idx() and len(out) < want:
                slot = self.last_used % self.num
                out.append(struct.unpack("<II", self.ram.read(
                    self.used + 4 + 8 * slot, 8)))
                self.last_used = (self.last_used + 1) & 0xffff
            if len(out) >= want:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(out)} of {want} completions "
                                     f"after {timeout} s")
            select.select([self.call], [], [], min(left, 0.1))
            try:
                os.eventfd_read(self.call)
            except BlockingIOError:
                pass
        return out

    def close(self):
        os.close(self.kick)
        os.close(self.call)


class VuClient:
    """A connection to a vhost-user back-end."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.features = 0
        self.protocol = 0

    def close(self):
        self.sock.close()

    # --- messages ---------------------------------------------------------
    def send(self, req, payload=b"", fds=(), flags=VERSION, size=None):
        data = struct.pack("<III", req, flags,
                           len(payload) if size is None else size) + payload
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.sendall(data)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the back-end closed the connection")
            buf += chunk
        return buf

    def reply(self, req):
        """Read a reply to @req: (payload, fds)."""
        data, fds, _, _ = socket.recv_fds(self.sock, 12, 1)
        if not data:
            raise ConnectionError("the back-end closed the connection")
        data += self._recv_exact(12 - len(data))
        r, flags, size = struct.unpack("<III", data)
        assert r == req and flags & REPLY, (r, flags, req)
        return self._recv_exact(size), fds

    def get_u64(self, req):
        self.send(req)
        payload, _ = self.reply(req)
        return struct.unpack("<Q", payload)[0]

    def set_u64(self, req, value, fds=(), ack=False):
        self.send(req, struct.pack("<Q", value), fds,
                  VERSION | (NEED_REPLY if ack else 0))
        if ack:
            payload, _ = self.reply(req)
            return struct.unpack("<Q", payload)[0]
        return None

    def state(self, req, index, num, ack=False):
        self.send(req, struct.pack("<II", index, num),
                  flags=VERSION | (NEED_REPLY if ack else 0))
        if req == GET_VRING_BASE:
            payload, _ = self.reply(req)
            return struct.unpack("<II", payload)
        if ack:
            return struct.unpack("<Q", self.reply(req)[0])[0]
        return None

    def dropped(self, timeout=5.0):
        """Did the back-end close the connection (within @timeout)?"""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True

    # --- a QEMU-like set-up ------------------------------------------------
    def negotiate(self, protocol=PF_MQ | PF_REPLY_ACK | PF_CONFIG |
                  PF_INFLIGHT | PF_MEM_SLOTS, features=F_VERSION_1):
        offered = self.get_u64(GET_FEATURES)
        assert offered & F_PROTOCOL_FEATURES, hex(offered)
        self.offered = offered
        self.protocol = self.get_u64(GET_PROTOCOL_FEATURES) & protocol
        self.set_u64(SET_PROTOCOL_FEATURES, self.protocol)
        self.send(SET_OWNER)
        self.features = (features & offered) | F_PROTOCOL_FEATURES
        self.set_u64(SET_FEATURES, self.features)
        return offered

    def mem_table(self, ram, ack=True):
        self.send(SET_MEM_TABLE, struct.pack("<II", 1, 0) + ram.region(),
                  [ram.fd], VERSION | (NEED_REPLY if ack else 0))
        if ack:
            assert struct.unpack("<Q", self.reply(SET_MEM_TABLE)[0])[0] == 0

    def get_inflight(self, num_queues=1, queue_size=64):
        self.send(GET_INFLIGHT_FD, struct.pack("<QQHHxxxx", 0, 0, num_queues,
                                               queue_size))
        payload, fds = self.reply(GET_INFLIGHT_FD)
        size, offset, nq, qs = struct.unpack("<QQHH", payload[:20])
        assert fds, "GET_INFLIGHT_FD reply without an fd"
        return fds[0], size, offset

    def set_inflight(self, fd, size, offset, num_queues=1, queue_size=64):
        self.send(SET_INFLIGHT_FD, struct.pack("<QQHHxxxx", size, offset,
                                               num_queues, queue_size), [fd])

    def start_ring(self, ring, index=0, base=0):
        self.state(SET_VRING_NUM, index, ring.num)
        self.state(SET_VRING_BASE, index, base)
        self.send(SET_VRING_ADDR, ring.addr_payload(index))
        self.set_u64(SET_VRING_CALL, index, [ring.call])
        self.set_u64(SET_VRING_KICK, index, [ring.kick])
        # An acked enable: the ring is running when this returns.
        assert self.state(SET_VRING_ENABLE, index, 1, ack=True) == 0

    def setup(self, ram=None, ring=None, inflight=False):
        """negotiate + memory + one running ring: (ram, ring)."""
        ram = ram or GuestRAM()
        ring = ring or Ring(ram)
        self.negotiate()
        self.mem_table(ram)
        if inflight:
            self.inflight = self.get_inflight(1, ring.num)
        self.start_ring(ring)
        return ram, ring


def blk_io(client_ring, writes=(), reads=(), timeout=10.0):
    """Submit writes [(sector, data)] then reads [(sector, nbytes)] on a
    running @client_ring, kick once, wait: {head: (status, data)}."""
    r = client_ring
    heads = {}
    for sector, data in writes:
        heads[r.submit(T_OUT, sector, data)] = ("w", None)
    for sector, n in reads:
        heads[r.submit(T_IN, sector, read_len=n)] = ("r", n)
    r.do_kick()
    out = {}
    for head, length in r.completions(len(heads), timeout):
        kind, n = heads[head]
        data = r.ram.read(r.buf(head // 3), n) if kind == "r" else None
        out[head] = (r.status(head), data)
        r.free.append(head // 3)
    return out

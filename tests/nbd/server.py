# SPDX-License-Identifier: MIT
"""What the NBD tests share: a storage daemon to test (aiolab's, or
Debian's qemu-storage-daemon as the reference), started with the same
command line, and a raw NBD client for the bad-input tests.  Standard
library only (the real clients are separate programs, and python3-libnbd
runs in its own /usr/bin/python3 process)."""
import os
import signal
import socket
import struct
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
QSD = "/usr/bin/qemu-storage-daemon"

# Protocol numbers (doc/proto.md of the NBD project).
INIT_MAGIC = 0x4e42444d41474943
OPTS_MAGIC = 0x49484156454f5054
REP_MAGIC = 0x0003e889045565a9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668e33ef
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS = 1, 2, 3, 5
OPT_INFO, OPT_GO, OPT_STRUCTURED_REPLY = 6, 7, 8
OPT_SET_META_CONTEXT = 10
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
REP_ERR_UNSUP, REP_ERR_POLICY = (1 << 31) + 1, (1 << 31) + 2
REP_ERR_INVALID, REP_ERR_UNKNOWN = (1 << 31) + 3, (1 << 31) + 6
INFO_EXPORT, INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE = 0, 1, 2, 3
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_WRITE_ZEROES = 6
FLAG_FUA, FLAG_NO_HOLE, FLAG_DF, FLAG_FAST_ZERO = 1, 2, 4, 16
REPLY_FLAG_DONE = 1
REPLY_TYPE_NONE, REPLY_TYPE_OFFSET_DATA = 0, 1
REPLY_TYPE_ERROR, REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 1, (1 << 15) + 2
EPERM, EIO, EINVAL, ENOSPC = 1, 5, 22, 28
TX_READ_ONLY, TX_SEND_FLUSH, TX_SEND_FUA = 2, 4, 8
TX_SEND_TRIM, TX_SEND_WRITE_ZEROES = 32, 64


class Skip(Exception):
    pass


def die_with_parent():
    """In a child before exec: SIGKILL when the test runner dies."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, KILL


def wait_socket(path, proc, timeout=10.0):
    """Wait until @path accepts connections (or @proc died)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited with {proc.returncode}: "
                                 f"{proc.stderr.read().decode()}")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            s.close()
            return
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: no listener after {timeout} s")
            time.sleep(0.02)


class Daemon:
    """A storage daemon: kind "aiolab" (build/bin/aiolab-storage-daemon)
    or "qsd" (Debian's qemu-storage-daemon), with an NBD server on
    tmp/nbd.sock and a QMP monitor on tmp/qmp.sock."""

    def __init__(self, kind, build, tmp):
        self.kind = kind
        self.tmp = tmp
        if kind == "aiolab":
            self.prog = os.path.join(ROOT, build, "bin",
                                     "aiolab-storage-daemon")
        else:
            self.prog = QSD
        if not os.access(self.prog, os.X_OK):
            raise Skip(f"{self.prog} is not installed or built")
        self.nbd_sock = os.path.join(tmp, "nbd.sock")
        self.qmp_sock = os.path.join(tmp, "qmp.sock")
        self.proc = None
        self.stderr_text = None

    def uri(self, name="disk"):
        return f"nbd+unix:///{name}?socket={self.nbd_sock}"

    def args(self, blockdevs, exports, objects=(), extra=()):
        a = []
        for o in objects:
            a += ["--object", o]
        for b in blockdevs:
            a += ["--blockdev", b]
        a += ["--nbd-server",
              f"addr.type=unix,addr.path={self.nbd_sock}"]
        for e in exports:
            a += ["--export", e]
        a += ["--chardev", f"socket,id=qmp0,path={self.qmp_sock},"
                           "server=on,wait=off", "--monitor", "chardev=qmp0"]
        return a + list(extra)

    def start(self, blockdevs, exports, objects=(), extra=()):
        # Not under timeout(1): the test signals the daemon itself, by its
        # PID; the test's alarm bounds the time, and the daemon dies with
        # the test runner (PR_SET_PDEATHSIG) if that is killed.
        self.proc = subprocess.Popen(
            [self.prog, *self.args(blockdevs, exports, objects, extra)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, preexec_fn=die_with_parent)
        wait_socket(self.nbd_sock, self.proc)
        wait_socket(self.qmp_sock, self.proc)
        return self

    def start_file(self, image, writable=True, name="disk", extra_export="",
                   node_opts="", objects=()):
        return self.start(
            [f"driver=file,node-name=disk0,filename={image}{node_opts}"],
            [f"type=nbd,id=exp0,node-name=disk0,name={name},"
             f"writable={'on' if writable else 'off'}{extra_export}"],
            objects)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal the daemon and wait: (exit status, stderr)."""
        if self.proc is None:
            return None, ""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"{self.kind} daemon ignored signal {sig}")
        self.stderr_text = err.decode(errors="replace")
        rc = self.proc.returncode
        self.proc = None
        return rc, self.stderr_text

    def kill(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            _, err = self.proc.communicate()
            self.stderr_text = err.decode(errors="replace")
        self.proc = None


def run(argv, timeout=60, check=True, env=None):
    """Run a client under timeout(1): (exit status, stdout + stderr)."""
    p = subprocess.run(["timeout", "-s", "KILL", str(timeout), *argv],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=env)
    out = p.stdout.decode(errors="replace")
    if check and p.returncode != 0:
        raise AssertionError(f"{argv[0]} exited with {p.returncode}:\n{out}")
    return p.returncode, out


def make_image(path, size, seed=None):
    """A raw image: zeroes, or deterministic pseudo-random data."""
    with open(path, "wb") as f:
        if seed is None:
            f.truncate(size)
        else:
            f.write(pattern_bytes(size, seed))


def pattern_bytes(size, seed):
    import random
    return random.Random(seed).randbytes(size)


# --- a raw NBD client --------------------------------------------------------

class NBDError(Exception):
    pass


class RawClient:
    """Speaks the protocol byte by byte, so tests can also break it."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.structured = False
        self.tx_flags = 0
        self.size = 0

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"connection closed after {len(buf)} of "
                               f"{n} bytes")
            buf += chunk
        return buf

    def closed_by_server(self, timeout=10.0):
        """True if the server closes the connection (EOF or reset)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def hello(self, flags=3):
        magic, opts, hflags = struct.unpack(">QQH", self.recv_exact(18))
        assert magic == INIT_MAGIC and opts == OPTS_MAGIC, (magic, opts)
        assert hflags & 1, "no fixed newstyle"
        self.send(struct.pack(">I", flags))
        return hflags

    def option(self, opt, data=b""):
        self.send(struct.pack(">QII", OPTS_MAGIC, opt, len(data)) + data)

    def opt_reply(self):
        magic, opt, rtype, length = struct.unpack(">QIII",
                                                  self.recv_exact(20))
        assert magic == REP_MAGIC, hex(magic)
        return opt, rtype, self.recv_exact(length)

    def go(self, name, structured=True, infos=(INFO_BLOCK_SIZE,), opt=OPT_GO):
        """STRUCTURED_REPLY (if asked), then GO: the replies as a list of
        (type, data); raises NBDError on an error reply."""
        if structured:
            self.option(OPT_STRUCTURED_REPLY)
            _, rtype, _ = self.opt_reply()
            assert rtype == REP_ACK, rtype
            self.structured = True
        n = name.encode()
        self.option(opt, struct.pack(">I", len(n)) + n +
                    struct.pack(">H", len(infos)) +
                    b"".join(struct.pack(">H", i) for i in infos))
        replies = []
        while True:
            _, rtype, data = self.opt_reply()
            if rtype & (1 << 31):
                raise NBDError(rtype, data)
            if rtype == REP_ACK:
                return replies
            if rtype == REP_INFO and struct.unpack(">H", data[:2])[0] == \
                    INFO_EXPORT:
                self.size, self.tx_flags = struct.unpack(">QH", data[2:])
            replies.append((rtype, data))

    def connect(self, name="disk", structured=True):
        self.hello()
        return self.go(name, structured)

    def request(self, cmd, offset=0, length=0, data=b"", flags=0, cookie=1):
        self.send(struct.pack(">IHHQQI", REQUEST_MAGIC, flags, cmd, cookie,
                              offset, length) + data)

    def reply(self, read_len=0):
        """One reply: (cookie, error, data); structured chunks are
        gathered until the one with NBD_REPLY_FLAG_DONE."""
        magic = struct.unpack(">I", self.recv_exact(4))[0]
        if magic == SIMPLE_REPLY_MAGIC:
            error, cookie = struct.unpack(">IQ", self.recv_exact(12))
            data = self.recv_exact(read_len) if read_len and not error \
                else b""
            return cookie, error, data
        assert magic == STRUCTURED_REPLY_MAGIC, hex(magic)
        data, error = b"", 0
        while True:
            flags, rtype, cookie, length = struct.unpack(
                ">HHQI", self.recv_exact(16))
            payload = self.recv_exact(length)
            if rtype == REPLY_TYPE_OFFSET_DATA:
                data += payload[8:]
            elif rtype in (REPLY_TYPE_ERROR, REPLY_TYPE_ERROR_OFFSET):
                error = struct.unpack(">I", payload[:4])[0]
            if flags & REPLY_FLAG_DONE:
                return cookie, error, data
            magic = struct.unpack(">I", self.recv_exact(4))[0]
            assert magic == STRUCTURED_REPLY_MAGIC, hex(magic)

    def cmd(self, cmd, offset=0, length=0, data=b"", flags=0, cookie=7):
        self.request(cmd, offset, length, data, flags, cookie)
        c, error, rdata = self.reply(length if cmd == CMD_READ else 0)
        assert c == cookie, (c, cookie)
        return error, rdata

    def read(self, offset, length):
        return self.cmd(CMD_READ, offset, length)

    def write(self, offset, data, flags=0):
        return self.cmd(CMD_WRITE, offset, len(data), data, flags)[0]


def reference(fn):
    """Run @fn against aiolab-storage-daemon and, as the reference,
    Debian's qemu-storage-daemon."""
    fn.kinds = ["aiolab", "qsd"]
    return fn


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()

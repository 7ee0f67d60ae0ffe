# SPDX-License-Identifier: MIT
"""tests/vhost/daemon.py - a storage daemon serving vhost-user-blk for the
tests: aiolab's (build/bin/aiolab-storage-daemon) or, as the reference,
Debian's qemu-storage-daemon, with the same command line.

The daemon runs as our direct child (no wrapper), so its PID is its own:
the reconnect test SIGKILLs exactly it.  Its stderr is collected line by
line by a thread, so a test can wait for a message while it runs.  The
harness (run.py) kills whatever a test left running.
"""
import os
import signal
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
QSD = "/usr/bin/qemu-storage-daemon"


class Skip(Exception):
    """A prerequisite that cannot exist on this machine."""


def wait_socket(path, proc=None, timeout=10.0):
    """Wait until @path accepts connections (or @proc died).  The probe
    connection closes at once; a back-end drops it as a front-end that
    went away before saying anything."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"daemon exited with {proc.returncode} "
                                 f"before listening on {path}")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: no listener after {timeout} s")
            time.sleep(0.02)
        finally:
            s.close()


class Daemon:
    """One daemon process of @kind "aiolab" or "qsd" in directory @tmp."""

    def __init__(self, kind, build, tmp):
        self.kind = kind
        self.tmp = tmp
        self.prog = (os.path.join(ROOT, build, "bin", "aiolab-storage-daemon")
                     if kind == "aiolab" else QSD)
        if not os.access(self.prog, os.X_OK):
            raise Skip(f"{self.prog} is not installed or built")
        self.proc = None
        self.lines = []
        self.cond = threading.Condition()
        self.reader = None

    def start(self, args, sockets, trace=None):
        """Start with @args (a list of daemon options) and wait for every
        path in @sockets to exist."""
        argv = [self.prog, *args]
        if trace and self.kind == "aiolab":
            argv += ["--trace", f"file={trace}"]
        self.lines = []
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read, daemon=True,
                                       args=(self.proc,))
        self.reader.start()
        for path in sockets:
            wait_socket(path, self.proc)
        return self

    def _read(self, proc):
        for raw in proc.stderr:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        with self.cond:
            return "\n".join(self.lines)

    def wait_stderr(self, text, timeout=10.0, start=0):
        """The first stderr line (from line @start on) containing @text,
        or None after @timeout seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def mark(self):
        """How many stderr lines there are now (for wait_stderr's start)."""
        with self.cond:
            return len(self.lines)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal the daemon by its PID and wait: its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"{self.kind} daemon ignored signal {sig}")
        self.reader.join(5)
        return rc

    def kill(self):
        """SIGKILL by PID (no clean-up runs in the daemon)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.reader:
            self.reader.join(5)


def vhost_export_args(kind, image, sock, writable=True, num_queues=1,
                      iothreads=(), mapping=False, node_prefix=(),
                      node="disk0", exp_id="exp0", direct=True):
    """The same command line for both daemons: a file node (O_DIRECT) and
    a vhost-user-blk export of it.  @iothreads become --object iothread;
    the export runs in the first (iothread=) or, with @mapping, spreads
    its queues over all of them (aiolab only).  @node_prefix: extra
    --blockdev specs stacked on the file node (which is then "file0")."""
    args = []
    for it in iothreads:
        args += ["--object", f"iothread,id={it}"]
    fnode = "file0" if node_prefix else node
    args += ["--blockdev", f"driver=file,node-name={fnode},filename={image}"
                           + (",cache.direct=on" if direct else "")]
    for spec in node_prefix:
        args += ["--blockdev", spec]
    exp = (f"type=vhost-user-blk,id={exp_id},node-name={node},"
           f"addr.type=unix,addr.path={sock},"
           f"writable={'on' if writable else 'off'},num-queues={num_queues}")
    if iothreads and mapping:
        exp += "".join(f",iothread-vq-mapping.{i}.iothread={it}"
                       for i, it in enumerate(iothreads))
    elif iothreads:
        exp += f",iothread={iothreads[0]}"
    return args + ["--export", exp]

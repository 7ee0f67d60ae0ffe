# SPDX-License-Identifier: MIT
"""A small QMP client for aiolab-vm's and aiolab-storage-daemon's
monitors (``-qmp unix:PATH,server=on,wait=off``), written the way a real
client talks to QEMU: connect to the unix socket, read the greeting,
negotiate capabilities, send one JSON object per command, and sort what
comes back into replies (matched by "id") and asynchronous events.

    from aiolab.qmp import QMPClient, QMPError
    q = QMPClient("/tmp/vm.sock")
    q.execute("cont")                    # its "return", or QMPError
    q.wait_event("RESUME")

Standard library only, and it does not touch libaiolab: the notebooks'
helpers (notebooks/lab.py) and the end-to-end tests (tests/machine,
tests/nbd, the benchmarks) share it; tests/machine/qmp.py loads this file
without importing the rest of the package.
"""
import json
import socket
import time

__all__ = ["QMPClient", "QMPError"]


class QMPError(RuntimeError):
    """An "error" reply: .cls (QEMU's error class, e.g. "GenericError"),
    .desc (the message) and .reply (the whole reply)."""

    def __init__(self, reply):
        self.reply = reply
        err = reply["error"]
        super().__init__(f"{err['class']}: {err['desc']}")
        self.cls = err["class"]
        self.desc = err["desc"]


class QMPClient:
    """A connection to a QMP monitor.

    QMPClient(path, timeout=10.0, negotiate=True) connects (retrying until
    the socket exists, up to @timeout seconds), reads the greeting
    (.greeting) and, with @negotiate, leaves capabilities negotiation.
    Events that arrive while waiting for a reply are kept in .events
    (wait_event() takes them from there) and, in arrival order, in
    .event_log, which nothing removes from."""

    def __init__(self, path, timeout=10.0, negotiate=True):
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self.event_log = []
        self.next_id = 1
        self.greeting = self.recv()
        if self.greeting is None:
            raise ConnectionError(f"QMP {path}: closed before the greeting")
        if negotiate:
            self.execute("qmp_capabilities")

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        """Send bytes or a str as they are (for malformed input tests)."""
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def recv(self):
        """The next JSON line, event or reply; None at EOF.  Events are
        appended to .event_log here."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg = json.loads(line)
        if isinstance(msg, dict) and "event" in msg:
            self.event_log.append(msg)
        return msg

    def recv_reply(self):
        """The next message that is not an event (events are kept)."""
        while True:
            msg = self.recv()
            if msg is None or "event" not in msg:
                return msg
            self.events.append(msg)

    def cmd(self, name, **args):
        """Send a command and return the whole reply object."""
        req = {"execute": name, "id": self.next_id}
        self.next_id += 1
        if args:
            req["arguments"] = args
        self.send_raw(json.dumps(req) + "\n")
        reply = self.recv_reply()
        if reply is None:
            raise ConnectionError(f"QMP {name}: the connection was closed")
        if reply.get("id") != req["id"]:
            raise RuntimeError(f"QMP {name}: reply {reply!r} does not "
                               f"answer {req!r}")
        return reply

    def execute(self, name, **args):
        """Send a command; its "return", or QMPError."""
        reply = self.cmd(name, **args)
        if "error" in reply:
            raise QMPError(reply)
        return reply["return"]

    def wait_event(self, name, timeout=10.0):
        """Wait for event @name (one already received counts) and take it
        out of .events; TimeoutError, or EOFError if the monitor goes."""
        deadline = time.monotonic() + timeout
        old = self.sock.gettimeout()
        try:
            while True:
                for i, ev in enumerate(self.events):
                    if ev["event"] == name:
                        return self.events.pop(i)
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    msg = self.recv()
                except socket.timeout:
                    raise TimeoutError(f"no {name} event in {timeout} s")
                if msg is None:
                    raise EOFError(f"connection closed waiting for {name}")
                if "event" in msg:
                    self.events.append(msg)
        finally:
            self.sock.settimeout(old)

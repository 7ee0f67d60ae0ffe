# SPDX-License-Identifier: MIT
"""A small QMP client, written the way a real one talks to QEMU: connect
to the unix socket, read the greeting, negotiate capabilities, send one
JSON object per command, and sort what comes back into replies (matched
by "id") and asynchronous events.  Standard library only."""
import json
import socket
import time


class QMPError(Exception):
    def __init__(self, reply):
        self.reply = reply
        err = reply["error"]
        super().__init__(f"{err['class']}: {err['desc']}")
        self.cls = err["class"]
        self.desc = err["desc"]


class QMPClient:
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
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self.next_id = 1
        self.greeting = self.recv()
        if negotiate:
            self.execute("qmp_capabilities")

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def recv(self):
        """The next JSON line, event or reply; None at EOF."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

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
        assert reply is not None, f"{name}: connection closed"
        assert reply.get("id") == req["id"], (req, reply)
        return reply

    def execute(self, name, **args):
        """Send a command; its "return", or QMPError."""
        reply = self.cmd(name, **args)
        if "error" in reply:
            raise QMPError(reply)
        return reply["return"]

    def wait_event(self, name, timeout=10.0):
        """Wait for event @name (one already received counts)."""
        deadline = time.monotonic() + timeout
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

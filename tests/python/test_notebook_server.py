# SPDX-License-Identifier: MIT
"""`make notebook`, headless: scripts/notebook.py starts Debian's Jupyter
Notebook; over its REST API we list the notebooks and start a kernel, over
the kernel's websocket channels we run cells that import aiolab and poll an
AioContext (on this process's binding), interrupt a blocking poll as the
"interrupt kernel" button does, then shut the kernel and the server down
and check that no process is left.

Marked `notebooks` (`-m "not notebooks"` skips it).  Needs
python3-websocket and jupyter-notebook; skipped without them.
"""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

import aiolab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LAUNCHER = os.path.join(ROOT, "scripts", "notebook.py")

pytestmark = pytest.mark.notebooks


class Server:
    """The launcher's server, and the few REST calls the test needs."""

    def __init__(self, tmp):
        self.runtime = os.path.join(tmp, "runtime")
        env = dict(os.environ, AIOLAB_BINDING=aiolab.BINDING,
                   JUPYTER_RUNTIME_DIR=self.runtime,
                   JUPYTER_CONFIG_DIR=os.path.join(tmp, "config"),
                   JUPYTER_DATA_DIR=os.path.join(tmp, "data"),
                   IPYTHONDIR=os.path.join(tmp, "ipython"),
                   MPLCONFIGDIR=os.path.join(tmp, "mpl"))
        env.pop("PYTHONPATH", None)     # the launcher must provide it
        self.log = open(os.path.join(tmp, "server.log"), "w+")
        # Its own session: the server and anything it leaves behind can be
        # found (and, as a last resort, killed) as one process group.
        self.proc = subprocess.Popen(
            [sys.executable, LAUNCHER], stdout=subprocess.PIPE,
            stderr=self.log, stdin=subprocess.DEVNULL, env=env, text=True,
            start_new_session=True)
        first = self.proc.stdout.readline()
        assert first.startswith("aiolab notebooks: http://127.0.0.1:"), \
            first + self.log_text()
        self.url = first.split()[-1]
        self.base, self.token = self.url.split("/?token=")

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def api(self, method, path, body=None, timeout=10):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text else None)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail("the server exited:\n" + self.log_text())
            try:
                return self.api("GET", "/api/contents")
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail("the server did not answer in time:\n" +
                                self.log_text())
                time.sleep(0.2)

    def stop(self):
        """/api/shutdown; then SIGTERM, then SIGKILL the group."""
        if self.proc.poll() is None:
            try:
                self.api("POST", "/api/shutdown", timeout=5)
            except (urllib.error.URLError, OSError):
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)
        self.proc.stdout.close()
        self.log.close()


def kernel_processes(runtime):
    """Processes whose command line names a connection file in runtime."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if runtime in cmd:
            found.append(int(pid))
    return found


class Kernel:
    """A kernel's websocket channels (the JSON protocol of Notebook 6)."""

    def __init__(self, server, kernel_id):
        import websocket
        ws_url = server.base.replace("http://", "ws://") + \
            f"/api/kernels/{kernel_id}/channels?token={server.token}"
        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.session = uuid.uuid4().hex
        self.pending = {}           # msg_id -> what result() read so far

    def execute(self, code):
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request",
                       "username": "test", "session": self.session,
                       "date": "", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "buffers": [],
            "content": {"code": code, "silent": False,
                        "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        return msg_id

    def result(self, msg_id, timeout=60, until=None):
        """(stdout text, the execute_reply content) of a request; with
        `until`, return (text, None) as soon as the text contains it."""
        import websocket
        out, reply, idle = self.pending.pop(msg_id, ([], None, False))
        deadline = time.monotonic() + timeout
        while reply is None or not idle:
            if until is not None and until in "".join(out):
                self.pending[msg_id] = (out, reply, idle)
                return "".join(out), None
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no reply in {timeout} s; output so far: "
                            f"{''.join(out)!r}")
            self.ws.settimeout(left)
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                out.append("\n".join(msg["content"]["traceback"]))
            elif kind == "execute_reply":
                reply = msg["content"]
            elif kind == "status":
                idle = msg["content"]["execution_state"] == "idle"
        return "".join(out), reply

    def close(self):
        self.ws.close()


POLL_CELL = """
import os, threading, aiolab
with aiolab.AioContext(name="server-test") as ctx:
    bh = ctx.bh(lambda: print("BH ran on", aiolab.BINDING, "in",
                              threading.current_thread().name))
    bh.schedule()
    print("polls:", ctx.poll(), ctx.poll())
    bh.delete()
import lab                              # notebooks/lab.py
print("cwd:", os.path.basename(os.getcwd()), "quick:", lab.QUICK)
"""

BLOCKING_CELL = """
import time, aiolab
ctx = aiolab.AioContext(name="forever")
print("polling", flush=True)
t0 = time.monotonic()
try:
    ctx.poll(blocking=True)             # nothing will ever happen
finally:
    print("left after %.1f s" % (time.monotonic() - t0), flush=True)
    ctx.close()
"""


@pytest.mark.timeout(240)
def test_notebook_server(tmp_path):
    pytest.importorskip("websocket")
    if not os.path.exists("/usr/bin/jupyter-notebook"):
        pytest.skip("Debian's jupyter-notebook is not installed")
    server = Server(str(tmp_path))
    kernel = None
    try:
        status, listing = server.wait_ready()
        names = sorted(c["name"] for c in listing["content"]
                       if c["type"] == "notebook")
        on_disk = sorted(n for n in os.listdir(os.path.join(ROOT, "notebooks"))
                         if n.endswith(".ipynb"))
        assert "ch01-event-loop.ipynb" in on_disk
        assert names == on_disk

        status, k = server.api("POST", "/api/kernels", {"name": "python3"})
        assert status == 201 and k["name"] == "python3"
        kernel = Kernel(server, k["id"])

        out, reply = kernel.result(kernel.execute(POLL_CELL))
        assert reply["status"] == "ok", out
        assert f"BH ran on {aiolab.BINDING} in MainThread" in out
        assert "polls: True False" in out
        assert "cwd: notebooks quick:" in out

        # The "interrupt kernel" button: SIGINT to the kernel.  A blocking
        # poll must give way at once.
        msg_id = kernel.execute(BLOCKING_CELL)
        kernel.result(msg_id, timeout=30, until="polling")
        time.sleep(0.5)                 # well inside aio_poll by now
        status, _ = server.api("POST", f"/api/kernels/{k['id']}/interrupt")
        assert status == 204
        out, reply = kernel.result(msg_id, timeout=30)
        assert reply["status"] == "error", out
        assert reply["ename"] == "KeyboardInterrupt", out
        assert "left after" in out

        kernel.close()
        kernel = None
        status, _ = server.api("DELETE", f"/api/kernels/{k['id']}")
        assert status == 204
        status, running = server.api("GET", "/api/kernels")
        assert running == []
    finally:
        if kernel is not None:
            kernel.close()
        server.stop()
        # Nothing may outlive the server: not it, not a kernel.
        left = kernel_processes(server.runtime)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert server.proc.returncode is not None
    assert not left, f"processes left behind: {left}"

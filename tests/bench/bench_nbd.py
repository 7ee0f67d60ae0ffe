# SPDX-License-Identifier: MIT
"""NBD rows of tests/bench/run.py (rows_nbd.py): a storage daemon serving
one NBD export over a unix socket, and one client driving it, timed.

Usage: /usr/bin/python3 tests/bench/bench_nbd.py ROW SERVER [key=value ...]
                                  [cpu=N] [cpu2=M] [quick=1]
  SERVER  aiolab   AIOLAB_BENCH_BUILD/bin/aiolab-storage-daemon
          qsd      Debian's qemu-storage-daemon (qemu-system-common 7.2)
  keys  client=fio|qemu-img   fio's nbd engine (libnbd), or qemu-img bench
                        on the nbd+unix:// URI (QEMU's own NBD client)
        target=file|null      the export's node: the scratch image
                        (driver=file, aio=threads, through the page cache,
                        read once first) or driver=null-co (size 1G,
                        read-zeroes off: the server's own cost)
        rw=randread|randwrite|read   fio's pattern (qemu-img bench reads
                        sequentially; -w writes)
        depth=N count=N quick_count=M   requests in flight and per run
        trace=on|off    aiolab only: AIOLAB_TRACE for the daemon
        size=256M quick_size=32M   the scratch image

The daemon runs under `taskset -c CPU` (all its threads: main loop,
thread-pool workers), the client under `taskset -c CPU2`: two CPUs, one
each, the same for both servers.  Both daemons get the same command line
(--blockdev, --nbd-server, --export type=nbd,...,writable=on).  Prints one
JSON object: value = ns per request (the client's run time / requests),
iops, daemon_cpu_ns (the daemon's user + system CPU time per request
while the client ran: a figure less sensitive to other load on the
machine, for information), and the commands.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchargs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_block import parse_size, scratch_image, warm  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent


def opts(argv):
    return benchargs.parse(argv, __doc__, ('row', 'server'))


def server_prog(o):
    if o["server"] == "qsd":
        if not shutil.which("qemu-storage-daemon"):
            raise SystemExit("bench_nbd.py: qemu-storage-daemon not "
                             "installed (make deps-clients)")
        return "qemu-storage-daemon"
    build = Path(os.environ.get("AIOLAB_BENCH_BUILD") or
                 ROOT / "build" / "release")
    exe = build / "bin" / "aiolab-storage-daemon"
    if not exe.exists():
        raise SystemExit("bench_nbd.py: %s not built (make RELEASE=1)" % exe)
    return str(exe)


def wait_socket(path, proc):
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            raise SystemExit("bench_nbd.py: the daemon exited: %s"
                             % proc.stderr.read().decode())
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
            # Finish the handshake's first step, so that the daemon does
            # not log a client that hung up on it.
            s.recv(18)
            s.sendall(b"\0\0\0\3" + b"IHAVEOPT" + b"\0\0\0\2\0\0\0\0")
            s.recv(64)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("bench_nbd.py: no NBD socket at %s" % path)
            time.sleep(0.02)
        finally:
            s.close()


def start_daemon(o, img, sock, cpu):
    node = ("driver=null-co,node-name=disk0,size=1073741824"
            if o.get("target") == "null" else
            "driver=file,node-name=disk0,filename=%s,aio=threads" % img)
    cmd = ["taskset", "-c", str(cpu), server_prog(o), "--blockdev", node,
           "--nbd-server", "addr.type=unix,addr.path=%s" % sock,
           "--export", "type=nbd,id=exp0,node-name=disk0,name=disk,"
           "writable=on"]
    env = dict(os.environ)
    env["AIOLAB_TRACE"] = o.get("trace", "on")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    wait_socket(sock, proc)
    return proc, " ".join(cmd)


def cpu_seconds(pid):
    """user + system time of process @pid and all its threads so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_daemon(proc):
    """SIGTERM to a daemon started with stderr=PIPE, and wait; exits the
    bench (named after the running script: bench_vhost.py uses this too)
    if it ignores the signal or fails."""
    me = os.path.basename(sys.argv[0])
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise SystemExit("%s: the daemon ignored SIGTERM" % me)
    if proc.returncode != 0:
        raise SystemExit("%s: the daemon exited with %d: %s"
                         % (me, proc.returncode, err.decode()[-1000:]))


def run_client(cmd, cpu):
    full = ["taskset", "-c", str(cpu)] + cmd
    r = subprocess.run(full, capture_output=True, text=True, timeout=170)
    if r.returncode != 0:
        raise SystemExit("bench_nbd.py: exit %d: %s\n%s%s" % (
            r.returncode, " ".join(full), r.stdout, r.stderr))
    return " ".join(full), r.stdout


def measure_fio(o, uri, size, count, depth, cpu2):
    rw = o.get("rw", "randread")
    cmd = ["fio", "--name=bench", "--ioengine=nbd", "--uri=" + uri,
           "--rw=" + rw, "--bs=4k", "--iodepth=%d" % depth,
           "--size=%d" % size, "--number_ios=%d" % count,
           "--loops=%d" % (count * 4096 // size + 1),
           "--output-format=json"]
    full, out = run_client(cmd, cpu2)
    j = json.loads(out[out.index("{"):])
    side = j["jobs"][0]["write" if "write" in rw else "read"]
    if side["total_ios"] < count or side["iops"] <= 0:
        raise SystemExit("bench_nbd.py: fio did %d of %d requests"
                         % (side["total_ios"], count))
    return full, side["total_ios"] / side["iops"], side["total_ios"]


def measure_qemu_img(o, uri, size, count, depth, cpu2):
    cmd = ["qemu-img", "bench", "-f", "raw", "-c", str(count), "-d",
           str(depth), "-s", "4096"]
    if "write" in o.get("rw", "read"):
        cmd.append("-w")
    full, out = run_client(cmd + [uri], cpu2)
    m = re.search(r"Run completed in ([0-9.]+) seconds", out)
    if not m:
        raise SystemExit("bench_nbd.py: no timing in %r" % out)
    return full, float(m.group(1)), count


def main():
    o = opts(sys.argv)
    quick = o.get("quick") == "1"
    cpu, cpu2 = int(o.get("cpu", "1")), int(o.get("cpu2", "0"))
    depth = int(o.get("depth", "1"))
    count = int(o.get("quick_count" if quick else "count", "10000"))
    size_str = o.get("quick_size" if quick else "size",
                     "32M" if quick else "256M")
    img = scratch_image(size_str)
    size = (1 << 30) if o.get("target") == "null" else parse_size(size_str)
    if o.get("target") != "null":
        warm(img)
    with tempfile.TemporaryDirectory(prefix="aiolab-bench-nbd-") as tmp:
        sock = Path(tmp) / "nbd.sock"
        proc, dcmd = start_daemon(o, img, sock, cpu)
        try:
            uri = "nbd+unix:///disk?socket=%s" % sock
            fn = {"fio": measure_fio, "qemu-img": measure_qemu_img}[
                o.get("client", "fio")]
            cpu0 = cpu_seconds(proc.pid)
            ccmd, secs, n = fn(o, uri, size, count, depth, cpu2)
            cpu_ns = (cpu_seconds(proc.pid) - cpu0) * 1e9 / n
        finally:
            if proc.poll() is None:
                stop_daemon(proc)
    res = {"row": o["row"], "impl": o["server"], "value": secs * 1e9 / n,
           "iops": n / secs, "seconds": secs, "requests": n, "depth": depth,
           "daemon_cpu_ns": cpu_ns,
           "daemon_cmd": dcmd, "tool_cmd": ccmd}
    if o["server"] == "qsd":
        res["version"] = subprocess.run(
            ["qemu-storage-daemon", "--version"], capture_output=True,
            text=True).stdout.split("\n")[0]
    print(json.dumps(res))


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: MIT
"""vhost-user-blk rows of tests/bench/run.py (rows_vhost.py): a storage
daemon serving one vhost-user-blk export, a real Linux guest under
Debian's QEMU (TCG) driving it, timed inside the guest.

Usage: /usr/bin/python3 tests/bench/bench_vhost.py ROW SERVER [key=value ...]
                                  [cpu=N] [cpu2=M] [quick=1]
  SERVER  aiolab   AIOLAB_BENCH_BUILD/bin/aiolab-storage-daemon
          qsd      Debian's qemu-storage-daemon (qemu-system-common 7.2)
  keys  phases=read1,write1,read8   what the guest does, in order: MODE
                        (read or write) and the number of guest threads,
                        each with one request in flight (so the queue
                        depth); the first phase is the figure ("value"),
                        each phase is also reported by its name
        bs=4096         request size
        count=N quick_count=M   requests per phase
        trace=on|off    aiolab only: AIOLAB_TRACE for the daemon

One run = one boot: the daemon starts (taskset -c CPU, all its threads),
then qemu-system-x86_64 -accel tcg (taskset -c CPU2, under timeout) with
the export as a vhost-user-blk-pci disk.  The guest's /init loads
virtio_blk and runs tests/bench/vhost-guest-io.c (built here, -static)
once per phase: N threads of random BS-sized O_DIRECT requests on
/dev/vda, timed with CLOCK_MONOTONIC in the guest.  Before and after each
phase the guest prints a line and sleeps 0.2 s, and the host reads the
daemon's CPU time in between (the sum of its threads' schedstat run
times, in ns): daemon_cpu_ns (the first phase's) and <phase>_daemon_cpu_ns
are the back-end's own CPU time per request.

Both daemons get the same command line: --blockdev driver=file,node-name=
disk0,filename=IMG,aio=threads (a 64 MiB image of random data, in the
page cache) and --export type=vhost-user-blk,id=exp0,node-name=disk0,
addr.type=unix,addr.path=SOCK,writable=on,num-queues=1, the export in
the main loop.

Exit status 1 with "... not installed" on stderr when QEMU, busybox, a C
compiler with a static libc or Debian's cloud kernel cannot be had (run.py
reports the row as skipped).  Prints one JSON object: value = ns per
request of the first phase as the guest saw it, iops, <phase> and
<phase>_iops for every phase, daemon_cpu_ns and <phase>_daemon_cpu_ns,
boot_s, and the commands.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchargs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "vhost"))
import guest  # noqa: E402
from daemon import wait_socket  # noqa: E402
from bench_nbd import stop_daemon  # noqa: E402

IMAGE_SIZE = 64 << 20
QSD = "/usr/bin/qemu-storage-daemon"

INIT = guest.INIT_PRELUDE + r"""for p in @PHASES@; do
    set -- $p
    say "go $1"; sleep 0.2
    /bin/vhost-guest-io /dev/vda $2 @BS@ $3 @COUNT@ $1 > /dev/ttyS0 \
        2>&1 || say "fail $1 rc=$?"
    sleep 0.2; say "end $1"
done
say "done"
poweroff -f
"""


def cpu_seconds(pid):
    """CPU time of process @pid's live threads so far, in seconds, from
    /proc/PID/task/*/schedstat (ns; /proc/PID/stat counts 10 ms ticks,
    too coarse for a phase of a second).  A thread that exits during a
    phase takes its time with it: the daemons' thread-pool workers stay
    alive while requests keep coming."""
    total = 0
    for path in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def opts(argv):
    return benchargs.parse(argv, __doc__, ('row', 'server'))


def skip(why):
    sys.stderr.write("bench_vhost.py: skipped: %s\n" % why)
    raise SystemExit(1)


def server_prog(kind):
    if kind == "qsd":
        if not os.access(QSD, os.X_OK):
            skip("qemu-storage-daemon is not installed (make deps-clients)")
        return QSD
    build = Path(os.environ.get("AIOLAB_BENCH_BUILD") or
                 ROOT / "build" / "release")
    exe = build / "bin" / "aiolab-storage-daemon"
    if not exe.exists():
        raise SystemExit("bench_vhost.py: %s not built (make RELEASE=1)"
                         % exe)
    return str(exe)


def scratch_dir():
    d = Path(os.environ.get("AIOLAB_BENCH_SCRATCH") or
             ROOT / "build" / "bench" / "scratch")
    d.mkdir(parents=True, exist_ok=True)
    return d


def image():
    """The scratch image: 64 MiB of random data (the guest's writes keep
    it non-zero), in the page cache."""
    path = scratch_dir() / "vhost-64M.img"
    if not path.exists() or path.stat().st_size != IMAGE_SIZE:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(os.urandom(IMAGE_SIZE))
        os.replace(tmp, path)
    with open(path, "rb") as f:
        while f.read(1 << 22):
            pass
    return path


def guest_program():
    """vhost-guest-io, built -static once into the scratch directory."""
    src = HERE / "vhost-guest-io.c"
    out = scratch_dir() / "vhost-guest-io"
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    cc = os.environ.get("CC") or "cc"
    if not shutil.which(cc):
        skip("a C compiler (%s) is not installed" % cc)
    r = subprocess.run([cc, "-static", "-O2", "-pthread", "-o",
                        str(out) + ".tmp", str(src)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        skip("%s -static failed (a static libc, libc6-dev, is not "
             "installed?): %s" % (cc, r.stderr.strip()[-300:]))
    os.replace(str(out) + ".tmp", out)
    return out


def build_initramfs(tmp, kernel, prog, o, count):
    """tmp/initrd.cpio: busybox, the virtio modules, the workload, /init."""
    root = Path(tmp) / "initramfs"
    for d in ("bin", "lib", "proc", "sys", "dev", "tmp"):
        (root / d).mkdir(parents=True)
    shutil.copy(guest.BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "mount", "insmod", "sleep", "echo", "poweroff"):
        os.symlink("busybox", root / "bin" / applet)
    shutil.copy(prog, root / "bin" / "vhost-guest-io")
    order = guest.install_modules(kernel, root / "lib")
    init = (INIT.replace("@MODULES@", " ".join(order))
            .replace("@PHASES@", " ".join(
                "'%s %s %d'" % (name, mode, n)
                for name, mode, n in o["phases"]))
            .replace("@BS@", str(o["bs"]))
            .replace("@COUNT@", str(count)))
    (root / "init").write_text(init)
    (root / "init").chmod(0o755)
    return guest.pack_initramfs(root, os.path.join(tmp, "initrd.cpio"))


def start_daemon(o, img, sock, cpu):
    cmd = ["taskset", "-c", str(cpu), server_prog(o["server"]),
           "--blockdev", "driver=file,node-name=disk0,filename=%s,"
           "aio=threads" % img,
           "--export", "type=vhost-user-blk,id=exp0,node-name=disk0,"
           "addr.type=unix,addr.path=%s,writable=on,num-queues=1" % sock]
    env = dict(os.environ)
    env["AIOLAB_TRACE"] = o.get("trace", "on")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    try:
        wait_socket(str(sock), proc)
    except AssertionError as e:
        proc.kill()
        raise SystemExit("bench_vhost.py: %s: %s" % (
            e, proc.communicate()[1].decode()[-1000:]))
    return proc, " ".join(cmd)


def run_guest(o, g, proc, count):
    """Follow the guest's phases; returns {phase: (ns, requests, cpu_s)}."""
    out = {}
    for p, _, threads in o["phases"]:
        if g.wait_for("go " + p, 120) is None:
            raise SystemExit("bench_vhost.py: the guest never started "
                             "phase %s:\n%s" % (p, g.tail()))
        c0 = cpu_seconds(proc.pid)
        end = g.wait_for("end " + p, 120)
        c1 = cpu_seconds(proc.pid)
        if end is None:
            raise SystemExit("bench_vhost.py: phase %s never ended:\n%s"
                             % (p, g.tail()))
        res = g.wait_for("result %s " % p, 0)
        fails = g.results()["fail"]
        if fails or res is None:
            raise SystemExit("bench_vhost.py: phase %s failed: %s\n%s"
                             % (p, "; ".join(fails), g.tail()))
        kv = dict(w.split("=", 1) for w in res.split()[3:])
        n, ns = int(kv["requests"]), int(kv["ns"])
        if n != count - count % threads or int(kv["errors"]) != 0:
            raise SystemExit("bench_vhost.py: phase %s: %s" % (p, res))
        out[p] = (ns, n, c1 - c0)
    return out


def main():
    o = opts(sys.argv)
    if o["server"] not in ("aiolab", "qsd"):
        raise SystemExit("bench_vhost.py: SERVER is aiolab or qsd, not %r"
                         % o["server"])
    quick = o.get("quick") == "1"
    cpu, cpu2 = int(o.get("cpu", "1")), int(o.get("cpu2", "0"))
    o["bs"] = int(o.get("bs", "4096"))
    spec, o["phases"] = o.get("phases", "read1"), []
    for p in spec.split(","):
        m = re.fullmatch(r"(read|write)([1-9][0-9]?)", p)
        if not m:
            raise SystemExit("bench_vhost.py: a phase is read or write and "
                             "a thread count (read1, write8), not %r" % p)
        o["phases"].append((p, m.group(1), int(m.group(2))))
    count = int(o.get("quick_count" if quick else "count", "2000"))
    server_prog(o["server"])            # skip early if it is missing
    if not os.path.exists(guest.QEMU):
        skip("qemu-system-x86 is not installed (make deps-clients)")
    if not os.path.exists(guest.BUSYBOX):
        skip("busybox-static is not installed (make deps-clients)")
    try:
        kernel = guest.ensure_kernel()
    except guest.Skip as e:
        skip("Debian's cloud kernel is not installed in build/guest and "
             "cannot be downloaded: %s" % e)
    prog = guest_program()
    img = image()
    with tempfile.TemporaryDirectory(prefix="aiolab-bench-vhost-",
                                     dir=scratch_dir()) as tmp:
        initrd = build_initramfs(tmp, kernel, prog, o, count)
        sock = Path(tmp) / "vu.sock"
        proc, dcmd = start_daemon(o, img, sock, cpu)
        g = None
        try:
            t0 = time.monotonic()
            # QEMU and its threads inherit the CPU set of this process.
            mine = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {cpu2})
            try:
                g = guest.Guest(kernel, initrd, str(sock), tmp, smp=1,
                                queues=1, timeout=170)
            finally:
                os.sched_setaffinity(0, mine)
            gcmd = "taskset -c %d %s" % (cpu2, " ".join(g.argv))
            phases = run_guest(o, g, proc, count)
            boot_s = time.monotonic() - t0
            if g.wait_for("done", 60) is None:
                raise SystemExit("bench_vhost.py: the guest did not "
                                 "finish:\n%s" % g.tail())
            rc = g.wait(60)
            if rc != 0:
                raise SystemExit("bench_vhost.py: QEMU exited with %d:\n%s"
                                 % (rc, g.tail()))
        finally:
            if g is not None:
                g.kill()
            if proc.poll() is None:
                stop_daemon(proc)
    first = o["phases"][0][0]
    ns, n, cpu_s = phases[first]
    res = {"row": o["row"], "impl": o["server"], "value": ns / n,
           "iops": n * 1e9 / ns, "requests": n,
           "bs": o["bs"], "daemon_cpu_ns": cpu_s * 1e9 / n,
           "boot_s": boot_s,
           "daemon_cmd": dcmd, "qemu_cmd": gcmd}
    for p, (pns, pn, pcpu) in phases.items():
        res[p] = pns / pn
        res[p + "_iops"] = pn * 1e9 / pns
        res[p + "_daemon_cpu_ns"] = pcpu * 1e9 / pn
    if o["server"] == "qsd":
        res["version"] = subprocess.run(
            [QSD, "--version"], capture_output=True,
            text=True).stdout.split("\n")[0]
    print(json.dumps(res))


if __name__ == "__main__":
    main()

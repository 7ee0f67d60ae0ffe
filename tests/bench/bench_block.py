# SPDX-License-Identifier: MIT
"""Block-layer rows of tests/bench/run.py (rows_block.py): one request
stream through aiolab-img bench, qemu-img bench or fio, timed.

Usage: /usr/bin/python3 tests/bench/bench_block.py ROW TOOL [key=value ...]
                                   [cpu=N] [cpu2=M] [quick=1]
  TOOL  aiolab   build/<release>/bin/aiolab-img bench ... --output=json
        qemu     qemu-img bench ... (Debian's qemu-utils), its
                 "Run completed in X seconds." line
        fio      fio --output-format=json, read iops
  keys  target=odirect|pagecache|null   what is read:
                   odirect    the scratch image, cache.direct=on (O_DIRECT)
                   pagecache  the scratch image through the page cache
                              (read once first, so that it is cached)
                   null       --image-opts driver=null-co,size=1G
        depth=N         requests in flight (default 1)
        aio=io_uring|threads   aiolab-img / qemu-img engine (file only)
        engine=E        fio's ioengine (io_uring, libaio, psync)
        pattern=random|seq     random offsets (fio randread, aiolab-img
                        --random) or qemu-img bench's sequential stride
                        (fio read); qemu-img has only seq
        count=N quick_count=M  requests per run (full / quick mode)
        trace=on|off    aiolab only: AIOLAB_TRACE for the tool
        batch=N         aiolab only: --object main-loop,id=ml0,
                        aio-max-batch=N (io_uring submission batch)
        size=256M quick_size=32M   the scratch image (default)

Every program runs under `taskset -c CPU` (all of its threads: thread-pool
workers, io_uring's kernel workers inherit the mask).  The image is
AIOLAB_BENCH_SCRATCH/block-SIZE.img, written once with non-zero data (a
sparse file would read holes, not data).  Prints one JSON object: value =
ns per request (wall time of the run / requests), iops, the command, and
cpu_ns_per_request: the CPU time (user + system) the tool used per
request, which a loaded machine disturbs much less than the wall time.
aiolab-img reports its process's CPU time over the timed run itself
(--output=json); fio, its job's usr_cpu + sys_cpu over the job's runtime
(without fio's start-up, ~150 ms of CPU in its parent process); for
qemu-img it is the process's whole rusage, start-up included (a few ms:
it overstates qemu-img's cost on short runs).
"""
import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import benchargs

ROOT = Path(__file__).resolve().parent.parent.parent


def opts(argv):
    return benchargs.parse(argv, __doc__, ('row', 'tool'))


def parse_size(s):
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", s)
    if not m:
        raise SystemExit("bench_block.py: bad size %r" % s)
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[
        m.group(2).lower()]


def scratch_image(size_str):
    """The scratch image, created with non-zero data if missing."""
    d = Path(os.environ.get("AIOLAB_BENCH_SCRATCH") or
             ROOT / "build" / "bench" / "scratch")
    d.mkdir(parents=True, exist_ok=True)
    path = d / ("block-%s.img" % size_str)
    size = parse_size(size_str)
    if not path.exists() or path.stat().st_size != size:
        tmp = path.with_suffix(".tmp")
        chunk = os.urandom(1 << 20)
        with open(tmp, "wb") as f:
            for _ in range(size >> 20):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return path


def warm(path):
    """Read the file once, so that its pages are in the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 22):
            pass


def tool_cmd(o, img, count, depth):
    target = o.get("target", "pagecache")
    aio = o.get("aio", "io_uring")
    if target == "null":
        spec = ["--image-opts", "driver=null-co,size=1G"]
    else:
        # One node (the file driver) for both tools: qemu-img's "-f raw"
        # would add QEMU's raw format node, which aiolab does not have.
        spec = (["-t", "none"] if target == "odirect" else []) + [
            "--image-opts", "driver=file,filename=%s,aio=%s" % (img, aio)]
    return ["-c", str(count), "-d", str(depth)] + spec


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(cmd, cpu, env=None):
    """Run @cmd pinned; returns (command line, stdout, CPU seconds)."""
    full = ["taskset", "-c", str(cpu)] + cmd
    cpu0 = children_cpu()
    r = subprocess.run(full, capture_output=True, text=True, env=env,
                       timeout=170)
    if r.returncode != 0:
        sys.stderr.write("exit %d: %s\n%s%s" % (r.returncode, " ".join(full),
                                                r.stdout, r.stderr))
        raise SystemExit(1)
    return " ".join(full), r.stdout, children_cpu() - cpu0


def measure_aiolab(o, img, count, depth, cpu):
    build = Path(os.environ.get("AIOLAB_BENCH_BUILD") or
                 ROOT / "build" / "release")
    exe = build / "bin" / "aiolab-img"
    if not exe.exists():
        raise SystemExit("bench_block.py: %s not found (make RELEASE=1)"
                         % exe)
    cmd = [str(exe), "bench", "--output=json"]
    if "batch" in o:
        cmd += ["--object", "main-loop,id=ml0,aio-max-batch=%s" % o["batch"]]
    if o.get("pattern", "random") == "random":
        cmd.append("--random")
    cmd += tool_cmd(o, img, count, depth)
    env = dict(os.environ)
    env["AIOLAB_TRACE"] = o.get("trace", "on")
    full, out, _ = run(cmd, cpu, env)
    j = json.loads(out.strip().splitlines()[-1])
    extra = {"checks": j["checks"], "trace": j["trace"]}
    if "cpu_ns_per_request" in j:           # older builds lack it
        extra["cpu_ns_per_request"] = j["cpu_ns_per_request"]
    return full, j["seconds"], extra


def measure_qemu(o, img, count, depth, cpu):
    if not shutil.which("qemu-img"):
        raise SystemExit("bench_block.py: qemu-img not installed "
                         "(make deps-clients)")
    full, out, cpu_s = run(["qemu-img", "bench"] +
                           tool_cmd(o, img, count, depth), cpu)
    m = re.search(r"Run completed in ([0-9.]+) seconds", out)
    if not m:
        raise SystemExit("bench_block.py: no timing in %r" % out)
    ver = subprocess.run(["qemu-img", "--version"], capture_output=True,
                         text=True).stdout.split("\n")[0]
    return full, float(m.group(1)), {"version": ver,
                                     "cpu_ns_per_request":
                                         cpu_s * 1e9 / count}


def measure_fio(o, img, count, depth, cpu):
    if not shutil.which("fio"):
        raise SystemExit("bench_block.py: fio not installed "
                         "(make deps-clients)")
    target = o.get("target", "pagecache")
    cmd = ["fio", "--name=bench", "--filename=%s" % img,
           "--rw=%s" % ("randread" if o.get("pattern", "random") == "random"
                        else "read"),
           "--bs=4k", "--ioengine=%s" % o.get("engine", "io_uring"),
           "--iodepth=%d" % depth, "--direct=%d" % (target == "odirect"),
           "--invalidate=0", "--number_ios=%d" % count,
           # A sequential pass ends at the end of the file: enough loops.
           "--loops=%d" % (count * 4096 // img.stat().st_size + 1),
           "--output-format=json"]
    full, out, _ = run(cmd, cpu)
    j = json.loads(out[out.index("{"):])
    job = j["jobs"][0]
    rd = job["read"]
    if rd["total_ios"] < count or rd["runtime"] <= 0:
        raise SystemExit("bench_block.py: fio did %d of %d requests"
                         % (rd["total_ios"], count))
    # usr_cpu and sys_cpu: percent of the job's runtime (ms).
    cpu_s = (job["usr_cpu"] + job["sys_cpu"]) / 100 * job["job_runtime"] / 1e3
    return full, rd["total_ios"] / rd["iops"], {
        "version": j.get("fio version", "fio"),
        "cpu_ns_per_request": cpu_s * 1e9 / rd["total_ios"]}


def main():
    o = opts(sys.argv)
    quick = o.get("quick") == "1"
    cpu = int(o.get("cpu", "1"))
    depth = int(o.get("depth", "1"))
    count = int(o.get("quick_count" if quick else "count", "10000"))
    size = o.get("quick_size" if quick else "size",
                 "32M" if quick else "256M")
    img = scratch_image(size)
    if o.get("target") == "pagecache":
        warm(img)
    fn = {"aiolab": measure_aiolab, "qemu": measure_qemu,
          "fio": measure_fio}.get(o["tool"])
    if not fn:
        raise SystemExit("bench_block.py: unknown tool %r" % o["tool"])
    cmd, secs, extra = fn(o, img, count, depth, cpu)
    res = {"row": o["row"], "impl": o["tool"], "value": secs * 1e9 / count,
           "iops": count / secs, "seconds": secs, "requests": count,
           "depth": depth, "image": "%s (%s)" % (img.name, size),
           "tool_cmd": cmd}
    res.update(extra)
    print(json.dumps(res))


if __name__ == "__main__":
    main()

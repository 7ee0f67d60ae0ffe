# SPDX-License-Identifier: MIT
"""Compare aiolab builds on rows 11/12's O_DIRECT reads, beside fio, in one
interleaved run: the before/after tables of tests/bench/README.md.

Usage: /usr/bin/python3 tests/bench/compare_builds.py [--rounds R]
           [--depth D] [--count N] [--cpu C] [--batch B] [--size 256M]
           NAME=BUILD_DIR [NAME=BUILD_DIR ...]

Each round runs, for every build then for fio, `aiolab-img bench --random
-t none --object main-loop,id=ml0,aio-max-batch=B -c N -d D` (tracing off)
or `fio --rw=randread --direct=1 --ioengine=io_uring --iodepth=D
--number_ios=N` on the scratch image of bench_block.py, pinned to CPU C
with taskset - and each of them a second time with N/10 requests.  It
prints, per program, the median wall time per request (and IOPS, and the
ratio to fio's IOPS) and the median CPU time per request: the CPU time
(user + system, from wait4's rusage) of the N-request run minus that of
the N/10-request run, divided by 0.9 N, so that start-up costs cancel
out.  CPU time per request is what a loaded machine disturbs least; the
wall-time ratio is the targets' measure.  BUILD_DIR is a release build
(make RELEASE=1 BUILD=...), holding bin/aiolab-img.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_block import scratch_image  # noqa: E402


def cpu_of(cmd, cpu):
    """Run @cmd pinned; returns (stdout, CPU seconds it used)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ, AIOLAB_TRACE="off")
    p = subprocess.Popen(["taskset", "-c", str(cpu)] + cmd,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    out, err = p.communicate()
    if p.returncode != 0:
        raise SystemExit("exit %d: %s\n%s" % (p.returncode, " ".join(cmd),
                                              err))
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, ((r1.ru_utime + r1.ru_stime) -
                 (r0.ru_utime + r0.ru_stime))


def aiolab_cmd(build, img, count, depth, batch):
    exe = Path(build) / "bin" / "aiolab-img"
    if not exe.exists():
        raise SystemExit("compare_builds.py: %s not found" % exe)
    return [str(exe), "bench", "--output=json", "--random", "-t", "none",
            "--object", "main-loop,id=ml0,aio-max-batch=%d" % batch,
            "-c", str(count), "-d", str(depth), "--image-opts",
            "driver=file,filename=%s,aio=io_uring" % img]


def fio_cmd(img, count, depth):
    return ["fio", "--name=bench", "--filename=%s" % img, "--rw=randread",
            "--bs=4k", "--ioengine=io_uring", "--iodepth=%d" % depth,
            "--direct=1", "--invalidate=0", "--number_ios=%d" % count,
            "--output-format=json"]


def wall_ns(out, count):
    if '"jobs"' in out:
        rd = json.loads(out[out.index("{"):])["jobs"][0]["read"]
        return 1e9 / rd["iops"]
    return json.loads(out.strip().splitlines()[-1])["ns_per_request"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--count", type=int, default=None,
                    help="requests per run (default 20000 at QD1, "
                         "60000 above)")
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1,
                    help="the main loop's aio-max-batch (0: aiolab's "
                         "default batching)")
    ap.add_argument("--size", default="256M")
    ap.add_argument("builds", nargs="+", metavar="NAME=BUILD_DIR")
    a = ap.parse_args()
    count = a.count or (20000 if a.depth == 1 else 60000)
    if a.rounds < 1 or count < 100:
        raise SystemExit("compare_builds.py: --rounds >= 1, --count >= 100")
    progs = []
    for b in a.builds:
        name, sep, build = b.partition("=")
        if not sep or not name or not build:
            raise SystemExit("compare_builds.py: expected NAME=BUILD_DIR, "
                             "got %r" % b)
        if not (Path(build) / "bin" / "aiolab-img").exists():
            raise SystemExit("compare_builds.py: %s/bin/aiolab-img not "
                             "found (make RELEASE=1 BUILD=%s)" % (build, build))
        progs.append((name, lambda n, build=build: aiolab_cmd(
            build, img, n, a.depth, a.batch)))
    img = scratch_image(a.size)
    progs.append(("fio", lambda n: fio_cmd(img, n, a.depth)))
    res = {name: ([], []) for name, _ in progs}
    small = count // 10
    for r in range(a.rounds):
        for name, mk in progs:
            out, c1 = cpu_of(mk(count), a.cpu)
            _, c0 = cpu_of(mk(small), a.cpu)
            res[name][0].append(wall_ns(out, count))
            res[name][1].append((c1 - c0) * 1e9 / (count - small))
        sys.stderr.write("round %d/%d done\n" % (r + 1, a.rounds))
    fio_wall = statistics.median(res["fio"][0])
    print("QD%d, %d requests per run, %d rounds, CPU %d, aio-max-batch=%d"
          % (a.depth, count, a.rounds, a.cpu, a.batch))
    print("%-10s %12s %9s %9s %14s %10s" % ("program", "wall ns/req", "IOPS",
                                            "x fio", "CPU ns/req", "CPU min"))
    for name, _ in progs:
        w, c = res[name]
        mw = statistics.median(w)
        print("%-10s %12.0f %9.0f %9.2f %14.0f %10.0f" % (
            name, mw, 1e9 / mw, fio_wall / mw, statistics.median(c), min(c)))


if __name__ == "__main__":
    main()

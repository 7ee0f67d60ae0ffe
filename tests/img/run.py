#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Tests of build/bin/aiolab-img (docs/img.md): what bench writes lands in
the file, reads and flushes are counted, bad input is refused with
qemu-img's kind of message and exit status 1.

    /usr/bin/python3 tests/img/run.py [--build build]

Each case prints "ok N name" or "not ok N name"; the last line is
"# tests/img: N passed, N failed, N skipped" (the harness format of
tests/run.py).  Timing is never checked.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def img(*args, ok=True):
    r = subprocess.run([IMG] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=60)
    if ok and r.returncode != 0:
        raise AssertionError("exit %d: %s\n%s" % (r.returncode, args,
                                                  r.stderr))
    return r


def bench_json(*args):
    r = img("bench", "--output=json", *args)
    return json.loads(r.stdout.strip().splitlines()[-1])


@case
def create_and_info(d):
    p = os.path.join(d, "a.img")
    r = img("create", "-f", "raw", p, "3M")
    assert r.stdout.strip() == "Formatting '%s', fmt=raw size=3145728" % p
    assert os.path.getsize(p) == 3 << 20
    r = img("info", "--output=json", p)
    j = json.loads(r.stdout)
    assert j["virtual-size"] == 3 << 20 and j["format"] == "file", j


@case
def write_pattern_lands(d):
    """-w --pattern fills every block the offsets cover, nothing else."""
    p = os.path.join(d, "w.img")
    img("create", "-q", p, "1M")
    # 8 KiB requests every 16 KiB from 4 KiB: 64 positions, 100 requests
    # wrap once.
    j = bench_json("-w", "--pattern=171", "-c", 100, "-d", 4, "-s", "8k",
                   "-S", "16k", "-o", "4k", p)
    assert j["requests"] == 100 and j["mode"] == "write", j
    data = open(p, "rb").read()
    for off in range(0, 1 << 20, 4096):
        inside = off >= 4096 and (off - 4096) % 16384 < 8192 and \
            off + 4096 <= (1 << 20)
        want = b"\xab" * 4096 if inside else bytes(4096)
        assert data[off:off + 4096] == want, "block at %d" % off


@case
def direct_unaligned_write(d):
    """-t none with 512-byte requests at odd offsets: padded (RMW)."""
    p = os.path.join(d, "u.img")
    with open(p, "wb") as f:
        f.write(b"\x11" * (64 << 10))
    r = img("bench", "-t", "none", "-w", "--pattern=34", "-c", 3, "-d", 1,
            "-s", 512, "-S", 1000, "-o", 513, p, ok=False)
    if r.returncode != 0 and "O_DIRECT" in r.stderr:
        return "skipped: no O_DIRECT here"
    assert r.returncode == 0, r.stderr
    data = open(p, "rb").read()
    for i in range(3):
        off = 513 + 1000 * i
        assert data[off:off + 512] == b"\x22" * 512, off
        assert data[off - 1] == 0x11 and data[off + 512] == 0x11, off
    assert len(data) == 64 << 10


@case
def flushes_counted(d):
    j = bench_json("-w", "-c", 30, "-d", 4, "--flush-interval=10",
                   "--image-opts", "driver=null-co,size=1M")
    assert j["flushes"] == 3 and j["drain_on_flush"], j
    j = bench_json("-w", "-c", 30, "-d", 4, "--flush-interval=7",
                   "--no-drain", "--image-opts", "driver=null-co,size=1M")
    assert j["flushes"] == 4 and not j["drain_on_flush"], j


@case
def reads_every_engine(d):
    p = os.path.join(d, "r.img")
    img("create", "-q", p, "1M")
    for extra in ([], ["-i", "io_uring"], ["-i", "threads", "-t", "none"],
                  ["-i", "io_uring", "-t", "none", "--random"],
                  ["--object", "main-loop,id=m,aio-max-batch=1",
                   "-i", "io_uring"]):
        j = bench_json("-c", 200, "-d", 8, *extra, p)
        assert j["requests"] == 200 and j["seconds"] > 0, (extra, j)
        assert j["direct"] == ("none" in extra), (extra, j)
    r = img("bench", "-c", 50, "-d", 2, "--image-opts",
            "driver=null-co,size=1G")
    lines = r.stdout.splitlines()
    assert lines[0] == ("Sending 50 read requests, 4096 bytes each, 2 in "
                        "parallel (starting at offset 0, step size 4096)")
    assert lines[1].startswith("Run completed in "), lines


@case
def bad_input(d):
    p = os.path.join(d, "b.img")
    img("create", "-q", p, "64k")
    bad = [
        (["bench", os.path.join(d, "missing.img")],
         "Could not open '%s'" % os.path.join(d, "missing.img")),
        (["bench", "-c", "0", p], "Invalid request count specified"),
        (["bench", "-d", "x", p], "Invalid queue depth specified"),
        (["bench", "-s", "0", p], "Invalid buffer size specified"),
        (["bench", "--pattern=300", p], "Invalid pattern byte specified"),
        (["bench", "--flush-interval=5", p],
         "--flush-interval is only available in write tests"),
        (["bench", "-w", "--no-drain", p],
         "--no-drain requires --flush-interval"),
        (["bench", "-t", "bogus", p], "Invalid cache option: 'bogus'"),
        (["bench", "-t", "unsafe", p], "'unsafe' is not available"),
        (["bench", "-i", "native", p], "requires cache.direct=on"),
        (["bench", "-n", "-t", "none", p], "aio=native (Linux AIO)"),
        (["bench", "-i", "posix", p], "Invalid aio option 'posix'"),
        (["bench", "--image-opts", "driver=nope"], "Unknown driver 'nope'"),
        (["bench", "--image-opts", "driver=null-co,bogus=1"], "bogus"),
        (["bench", "-s", "128k", p], "too small"),
        (["bench", "--object", "iothread,id=x", p], "Invalid object type"),
        (["bench", "--object", "main-loop", p], "Parameter 'id' is missing"),
        (["bench", "--object", "main-loop,id=m,x=1", p],
         "Property 'main-loop.x' not found"),
        (["bench", p, p], "Expecting one image file name"),
        (["create", p, "12Q"], "Invalid image size specified"),
        (["frob"], "Command not found: frob"),
        ([], "Not enough arguments"),
    ]
    for args, msg in bad:
        r = img(*args, ok=False)
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        assert r.stderr.startswith("aiolab-img: ") and msg in r.stderr, \
            (args, r.stderr)
        assert r.stdout == "", (args, r.stdout)
    # A read-only bench leaves the file alone; the refused runs did too.
    assert open(p, "rb").read() == bytes(64 << 10)


def main():
    global IMG
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    args = ap.parse_args()
    IMG = os.path.join(ROOT, args.build, "bin", "aiolab-img")
    counts = [0, 0, 0]
    if not os.access(IMG, os.X_OK):
        print("# tests/img: %s not built: 0 passed, 0 failed, 1 skipped"
              % IMG)
        return 0
    with tempfile.TemporaryDirectory(dir=os.path.join(ROOT, "build")) as d:
        for n, fn in enumerate(CASES, 1):
            try:
                res = fn(d)
            except Exception:
                traceback.print_exc(file=sys.stdout)
                print("not ok %d %s" % (n, fn.__name__))
                counts[1] += 1
                continue
            if isinstance(res, str) and res.startswith("skipped"):
                print("ok %d %s # %s" % (n, fn.__name__, res))
                counts[2] += 1
            else:
                print("ok %d %s" % (n, fn.__name__))
                counts[0] += 1
    print("# tests/img: %d passed, %d failed, %d skipped" % tuple(counts))
    return 1 if counts[1] else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/fuzz/run.py - build and run aiolab's libFuzzer targets.

    run.py build              compile build/fuzz/<target> (clang,
                              -fsanitize=fuzzer,address,undefined, the
                              library's sources compiled in, not the .so)
    run.py smoke [--time S]   build, replay each seed corpus once, then fuzz
                              each target for S seconds (default 10) on a
                              scratch copy of the corpus (make test)
    run.py fuzz [--time S]    build, fuzz each target for S seconds (default
                              300) keeping new inputs in build/fuzz/work/
                              (make fuzz); crashes in build/fuzz/artifacts/
    run.py seeds              rewrite tests/fuzz/corpus/ from the generators
                              below (deterministic)

Exit status: 0 pass, 1 a target failed (crash, leak, UB, timeout), 77
skipped (no clang with libFuzzer).  --target NAME limits it to one.
"""
import argparse
import glob
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUZZ = os.path.join(ROOT, "tests", "fuzz")
OUT = os.path.join(ROOT, "build", "fuzz")
TARGETS = ["fuzz-virtqueue", "fuzz-virtio-blk", "fuzz-vhost-user",
           "fuzz-nbd"]
CC = os.environ.get("FUZZ_CC", "clang")
SAN = "-fsanitize=address,undefined"
CFLAGS = ["-std=gnu11", "-O1", "-g", "-fno-omit-frame-pointer",
          "-fno-sanitize-recover=undefined", "-D_GNU_SOURCE", "-pthread",
          "-Ic/include", "-Ic", "-DAIOLAB_CHECKS=1", "-w"]
HAVE_URING = os.path.exists("/usr/include/liburing.h")
if HAVE_URING:
    CFLAGS.append("-DCONFIG_LIBURING=1")
LIBS = ["-lpthread", "-lm"] + (["-luring"] if HAVE_URING else [])
# Each target runs this long at most per input before it counts as a hang.
PER_INPUT_TIMEOUT = 25


def log(msg):
    print(msg, flush=True)


def have_libfuzzer():
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "t.c")
        with open(src, "w") as f:
            f.write("int LLVMFuzzerTestOneInput(const char *d, long n)"
                    "{return 0;}\n")
        r = subprocess.run([CC, "-fsanitize=fuzzer," + SAN[len("-fsanitize="):],
                            src, "-o", os.path.join(d, "t")],
                           capture_output=True)
        return r.returncode == 0


def lib_sources():
    """What the Makefile puts in libaiolab; AIOLAB_FUZZ_TRACKED_ONLY=1 skips
    files git does not track (someone's work in progress)."""
    srcs = []
    for d in ("c/util", "c/system", "c/block", "c/hw", "c/export"):
        srcs += sorted(glob.glob(os.path.join(ROOT, d, "*.c")))
    if os.environ.get("AIOLAB_FUZZ_TRACKED_ONLY") == "1":
        tracked = set(subprocess.run(["git", "ls-files", "c"], cwd=ROOT,
                                     capture_output=True, text=True
                                     ).stdout.split())
        srcs = [s for s in srcs if os.path.relpath(s, ROOT) in tracked]
    return srcs


def newest_header():
    hs = glob.glob(os.path.join(ROOT, "c", "**", "*.h"), recursive=True)
    hs += glob.glob(os.path.join(FUZZ, "*.h"))
    return max(os.path.getmtime(h) for h in hs)


def compile_one(src, obj, extra, hdr_time):
    if (os.path.exists(obj) and
            os.path.getmtime(obj) >= max(os.path.getmtime(src), hdr_time)):
        return None
    os.makedirs(os.path.dirname(obj), exist_ok=True)
    cmd = [CC] + CFLAGS + extra + ["-c", src, "-o", obj]
    if src.endswith("coroutine-ucontext.c"):
        cmd.append("-U_FORTIFY_SOURCE")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        return f"{os.path.relpath(src, ROOT)}:\n{r.stderr}"
    return None


def build():
    hdr_time = newest_header()
    jobs = []
    objs = []
    for src in lib_sources():
        obj = os.path.join(OUT, "obj", os.path.relpath(src, ROOT)[:-2] + ".o")
        objs.append(obj)
        # The library: instrumented for coverage and the sanitizers.
        jobs.append((src, obj, ["-fsanitize=fuzzer-no-link," +
                                SAN[len("-fsanitize="):]]))
    for t in TARGETS:
        jobs.append((os.path.join(FUZZ, t + ".c"),
                     os.path.join(OUT, "obj", t + ".o"),
                     ["-fsanitize=fuzzer-no-link," + SAN[len("-fsanitize="):]]))
    with ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        errors = [e for e in ex.map(lambda j: compile_one(j[0], j[1], j[2],
                                                          hdr_time), jobs) if e]
    if errors:
        log("fuzz build failed:\n" + "\n".join(errors))
        return False
    for t in TARGETS:
        exe = os.path.join(OUT, t)
        tobj = os.path.join(OUT, "obj", t + ".o")
        if (os.path.exists(exe) and os.path.getmtime(exe) >=
                max(os.path.getmtime(o) for o in objs + [tobj])):
            continue
        cmd = [CC, "-fsanitize=fuzzer," + SAN[len("-fsanitize="):],
               "-pthread", tobj] + objs + ["-o", exe] + LIBS
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if r.returncode != 0:
            log(f"fuzz link of {t} failed:\n{r.stderr}")
            return False
        log(f"  LINK    {os.path.relpath(exe, ROOT)}")
    return True


def run_target(t, corpus_dirs, extra, label):
    exe = os.path.join(OUT, t)
    art = os.path.join(OUT, "artifacts")
    os.makedirs(art, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    cmd = [exe, f"-timeout={PER_INPUT_TIMEOUT}", "-rss_limit_mb=2048",
           f"-artifact_prefix={art}/{t}-", "-print_final_stats=1"] + \
        extra + corpus_dirs
    t0 = time.time()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    dt = time.time() - t0
    out = r.stdout + r.stderr
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    execs = int(m.group(1)) if m else 0
    covs = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", out)
    cov = covs[-1] if covs else ("?", "?", "?")
    ok = r.returncode == 0
    log(f"{'ok' if ok else 'FAIL'} {t} {label}: {execs} execs in {dt:.1f}s"
        f" (cov {cov[0]}, ft {cov[1]}, corpus {cov[2]})")
    if not ok:
        tail = "\n".join(out.splitlines()[-60:])
        log(tail)
    return ok, execs, dt


def corpus_of(t):
    return os.path.join(FUZZ, "corpus", t)


def smoke(targets, secs):
    ok = True
    for t in targets:
        good, _, _ = run_target(t, [corpus_of(t)], ["-runs=0"], "corpus replay")
        ok &= good
        with tempfile.TemporaryDirectory() as scratch:
            for f in glob.glob(os.path.join(corpus_of(t), "*")):
                shutil.copy(f, scratch)
            good, _, _ = run_target(t, [scratch],
                                    [f"-max_total_time={secs}"],
                                    f"{secs}s")
            ok &= good
    return ok


def fuzz(targets, secs):
    ok = True
    for t in targets:
        work = os.path.join(OUT, "work", t)
        os.makedirs(work, exist_ok=True)
        for f in glob.glob(os.path.join(corpus_of(t), "*")):
            shutil.copy(f, work)
        good, _, _ = run_target(t, [work], [f"-max_total_time={secs}"],
                                f"{secs}s")
        ok &= good
    return ok


# --------------------------------------------------------------------------
# Seeds: well-formed and malformed rings, in the layout of fuzz-common.h.
# desc table at 0x400, avail at 0x800, used at 0xc00, buffers from 0x1000.
# (A descriptor table at guest address 0 would mean "no queue":
# virtio_queue_map_rings().)
# --------------------------------------------------------------------------
DESC, AVAIL, USED = 0x400, 0x800, 0xc00
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WZ = 0, 1, 4, 8, 11, 13


class Image:
    def __init__(self, size=0x8000):
        self.b = bytearray(size)
        self.nd = 0          # next free descriptor
        self.heads = []
        self.buf = 0x1000

    def grow(self, end):
        if end > len(self.b):
            self.b.extend(bytes(end - len(self.b)))

    def put(self, gpa, data):
        self.grow(gpa + len(data))
        self.b[gpa:gpa + len(data)] = data

    def alloc(self, n):
        gpa = self.buf
        self.buf = (self.buf + n + 63) & ~63
        return gpa

    def desc(self, i, addr, ln, flags, nxt, table=DESC):
        self.put(table + 16 * i, struct.pack("<QIHH", addr, ln, flags, nxt))

    def chain(self, bufs):
        """bufs: [(gpa, len, write)]; returns head."""
        head = self.nd
        for k, (gpa, ln, w) in enumerate(bufs):
            last = k == len(bufs) - 1
            self.desc(self.nd, gpa, ln, (F_WRITE if w else 0) |
                      (0 if last else F_NEXT), 0 if last else self.nd + 1)
            self.nd += 1
        self.heads.append(head)
        return head

    def blk(self, typ, sector, ln, out=None):
        hdr = self.alloc(16)
        self.put(hdr, struct.pack("<IIQ", typ, 0, sector))
        bufs = [(hdr, 16, False)]
        if ln:
            data = self.alloc(ln)
            if out is not None:
                self.put(data, out)
            bufs.append((data, ln, not (typ & 1)))
        st = self.alloc(1)
        bufs.append((st, 1, True))
        return self.chain(bufs)

    def publish(self, used_event=0, num=64):
        for k, h in enumerate(self.heads):
            self.put(AVAIL + 4 + 2 * k, struct.pack("<H", h))
        self.put(AVAIL + 2, struct.pack("<H", len(self.heads)))
        self.put(AVAIL + 4 + 2 * num, struct.pack("<H", used_event))

    def input(self, flags=0, qlog=6, last_avail=0, params=b"", used=USED):
        hdr = struct.pack("<BBHIII", flags, qlog, last_avail, DESC, AVAIL,
                          used)
        # Trailing zeros are implied: the target zero-fills guest RAM.
        return hdr + params.ljust(16, b"\0") + bytes(self.b).rstrip(b"\0")


def seg(sector, n, flags=0):
    return struct.pack("<QII", sector, n, flags)


def blk_seeds():
    s = {}

    def one(name, build, flags=0, params=b"", last_avail=0):
        im = Image()
        build(im)
        im.publish()
        s[name] = im.input(flags, 6, last_avail, params)

    one("read", lambda im: im.blk(T_IN, 0, 4096))
    one("write", lambda im: im.blk(T_OUT, 8, 4096, b"\xab" * 4096))
    one("flush", lambda im: im.blk(T_FLUSH, 0, 0))
    one("get-id", lambda im: im.blk(T_GET_ID, 0, 20))
    one("discard", lambda im: im.blk(T_DISCARD, 0, 16, seg(8, 8)))
    one("write-zeroes-unmap", lambda im: im.blk(T_WZ, 0, 16, seg(0, 16, 1)))
    one("unsupp", lambda im: im.blk(0x20, 0, 8))
    one("misaligned-4k", lambda im: im.blk(T_OUT, 1, 4096),
        params=bytes([0, 0, 0, 2]))
    one("beyond-end", lambda im: im.blk(T_IN, 16, 4096),
        params=bytes([0, 0, 0, 0, 2]))

    def merge(im):
        for sec in (8, 0, 16):
            im.blk(T_OUT, sec, 4096, bytes([sec]) * 4096)
    one("merge-3-writes", merge)

    def mixed(im):
        im.blk(T_OUT, 0, 512)
        im.blk(T_OUT, 1, 512)
        im.blk(T_IN, 2, 512)
        im.blk(T_FLUSH, 0, 0)
        im.blk(T_OUT, 3, 512)
    one("direction-change-flush", mixed)
    one("merging-off", merge, params=bytes([0, 0, 0, 1]))
    one("werror-stop", merge, params=bytes([3, 0, 1]))
    one("werror-enospc", merge, params=bytes([2, 0, 8]))
    one("rerror-ignore", lambda im: im.blk(T_IN, 0, 4096),
        params=bytes([0, 1, 2]))
    one("flush-error-report", lambda im: im.blk(T_FLUSH, 0, 0),
        params=bytes([0, 0, 4]))
    one("second-kick", lambda im: im.blk(T_GET_ID, 0, 20), flags=8)

    def span(im):     # a data buffer across regions A and B
        hdr = im.alloc(16)
        im.put(hdr, struct.pack("<IIQ", T_OUT, 0, 0))
        im.chain([(hdr, 16, False), (0xf800, 0x1000, False),
                  (0x100000, 1, True)])
    one("span-regions", span)

    def indirect(im):
        hdr, data, st = im.alloc(16), im.alloc(512), im.alloc(1)
        im.put(hdr, struct.pack("<IIQ", T_IN, 0, 0))
        table = im.alloc(48)
        im.desc(0, hdr, 16, F_NEXT, 1, table)
        im.desc(1, data, 512, F_NEXT | F_WRITE, 2, table)
        im.desc(2, st, 1, F_WRITE, 0, table)
        im.desc(0, table, 48, F_INDIRECT, 0)
        im.nd = 1
        im.heads.append(0)
    one("indirect", indirect, flags=2)
    one("event-idx", merge, flags=1)

    # The used ring laid over a 2-entry avail ring: every push moves
    # avail.idx one past the pop, and the used entries it writes (id 0)
    # leave every avail entry naming head 0, a valid chain, so the handle
    # pass never ended until set-up refused the layout (fuzz-virtio-blk
    # found it).
    im = Image()
    hdr, buf = im.alloc(16), im.alloc(21)     # two descriptors: num is 2
    im.put(hdr, struct.pack("<IIQ", T_GET_ID, 0, 0))
    im.chain([(hdr, 16, False), (buf, 21, True)])
    im.publish(num=2)
    s["bad-rings-overlap"] = im.input(qlog=1, used=AVAIL)
    one("no-interrupt", merge, flags=4)
    one("wrapped-index", lambda im: im.blk(T_IN, 0, 512), last_avail=65535)

    def loop(im):
        im.desc(0, 0x1000, 16, F_NEXT, 1)
        im.desc(1, 0x1000, 16, F_NEXT, 0)
        im.heads.append(0)
    one("bad-loop", loop)

    def no_in(im):
        im.put(0x1000, struct.pack("<IIQ", T_IN, 0, 0))
        im.chain([(0x1000, 16, False)])
    one("bad-missing-headers", no_in)

    def short_hdr(im):
        im.chain([(0x1000, 8, False), (0x1100, 1, True)])
    one("bad-short-outhdr", short_hdr)
    one("bad-short-discard", lambda im: im.blk(T_DISCARD, 0, 8, b"\1" * 8))
    return s


def vq_seeds():
    s = {}

    def one(name, build, flags=0, qlog=4, params=b"", last_avail=0):
        im = Image(0x3000)
        build(im)
        im.publish(num=1 << qlog)
        s[name] = im.input(flags, qlog, last_avail, params)

    def simple(im):
        for k in range(4):
            im.chain([(0x1000 + 0x100 * k, 16, False),
                      (0x1800 + 0x100 * k, 64, True)])
    one("simple", simple)
    one("keep-unpop-detach", simple, params=bytes([0b11100100] * 16))
    one("event-idx", simple, flags=1)
    one("no-notify", simple, flags=4)

    def indirect(im):
        t = 0x2000
        for i in range(3):
            im.desc(i, 0x1000 + 64 * i, 64, F_NEXT if i < 2 else F_WRITE,
                    i + 1, t)
        im.desc(0, t, 48, F_INDIRECT, 0)
        im.heads.append(0)
    one("indirect", indirect, flags=2)

    def span(im):
        im.chain([(0xff00, 0x200, False)])
    one("span-regions", span)

    def loop(im):
        im.desc(0, 0x1000, 16, F_NEXT, 1)
        im.desc(1, 0x1000, 16, F_NEXT, 0)
        im.heads.append(0)
    one("bad-loop", loop)

    def order(im):
        im.chain([(0x1000, 16, True), (0x1100, 16, False)])
    one("bad-order", order)

    def next_oob(im):
        im.desc(0, 0x1000, 16, F_NEXT, 200)
        im.heads.append(0)
    one("bad-next", next_oob)

    def head_oob(im):
        im.heads.append(999)
    one("bad-head", head_oob)
    one("bad-zero-len", lambda im: im.chain([(0x1000, 0, False)]))
    one("bad-outside-ram", lambda im: im.chain([(0x200000, 16, False)]))

    def bad_indirect(im):
        im.desc(0, 0x2000, 17, F_INDIRECT, 0)
        im.heads.append(0)
    one("bad-indirect-size", bad_indirect, flags=2)
    one("full-ring", simple, qlog=2, params=bytes([0xff] * 16))
    return s


# --------------------------------------------------------------------------
# Seeds for fuzz-vhost-user: front-end sessions, in the record format of
# fuzz-vhost-user.c.  Guest RAM (the 256 KiB memfd) at guest physical 0,
# user address VU_UADDR; ring at 0x1000/0x2000/0x3000, requests after.
# --------------------------------------------------------------------------
VU_UADDR = 0x7f0000000000
(VU_GET_FEATURES, VU_SET_FEATURES, VU_SET_OWNER, VU_RESET_OWNER,
 VU_SET_MEM_TABLE) = 1, 2, 3, 4, 5
VU_SET_VRING_NUM, VU_SET_VRING_ADDR, VU_SET_VRING_BASE = 8, 9, 10
VU_GET_VRING_BASE, VU_SET_VRING_KICK, VU_SET_VRING_CALL = 11, 12, 13
VU_SET_VRING_ERR, VU_GET_PROTOCOL_FEATURES = 14, 15
VU_SET_PROTOCOL_FEATURES, VU_GET_QUEUE_NUM, VU_SET_VRING_ENABLE = 16, 17, 18
VU_GET_CONFIG, VU_SET_CONFIG = 24, 25
VU_GET_INFLIGHT_FD, VU_SET_INFLIGHT_FD, VU_RESET_DEVICE = 31, 32, 34
VU_GET_MAX_MEM_SLOTS, VU_ADD_MEM_REG, VU_REM_MEM_REG = 36, 37, 38
VU_RAM = 256 << 10


def vu_msg(req, payload=b"", nfds=0, ram=False, flags=1, size=None):
    raw = struct.pack("<III", req, flags,
                      len(payload) if size is None else size) + payload
    return bytes([(nfds & 15) | (16 if ram else 0)]) + \
        struct.pack("<H", len(raw)) + raw


def vu_state(req, index, num, flags=1):
    return vu_msg(req, struct.pack("<II", index, num), flags=flags)


def vu_region(gpa=0, size=VU_RAM, off=0):
    return struct.pack("<QQQQ", gpa, size, VU_UADDR + gpa, off)


def vu_ram(off, data):
    return bytes([0x40]) + struct.pack("<HH", off // 16, len(data)) + data


def vu_ring_addr(q=0, base=0x1000):
    """Size, base and addresses of a queue of 64 at base (desc), +0x1000
    (avail), +0x2000 (used)."""
    return (vu_state(VU_SET_VRING_NUM, q, 64) +
            vu_state(VU_SET_VRING_BASE, q, 0) +
            vu_msg(VU_SET_VRING_ADDR, struct.pack(
                "<IIQQQQ", q, 0, VU_UADDR + base, VU_UADDR + base + 0x2000,
                VU_UADDR + base + 0x1000, 0)))


def vu_ring(q=0, base=0x1000):
    """vu_ring_addr(), then kick and call eventfds and an acked enable."""
    return (vu_ring_addr(q, base) +
            vu_msg(VU_SET_VRING_KICK, struct.pack("<Q", q), 1) +
            vu_msg(VU_SET_VRING_CALL, struct.pack("<Q", q), 1) +
            vu_state(VU_SET_VRING_ENABLE, q, 1, flags=9))


def vu_requests(base=0x1000, reqs=((1, 8, 4096), (0, 8, 4096), (4, 0, 0))):
    """Chains (type, sector, length) in the ring at @base, and avail.idx."""
    out, desc, heads = b"", b"", []
    for k, (typ, sector, ln) in enumerate(reqs):
        hdr, data, st = 0x8000 + 32 * k, 0x10000 + 0x1000 * k, 0x8010 + 32 * k
        out += vu_ram(hdr, struct.pack("<IIQ", typ, 0, sector))
        chain = [(hdr, 16, 0)] + ([(data, ln, 0 if typ & 1 else 2)]
                                  if ln else []) + [(st, 1, 2)]
        heads.append(len(desc) // 16)
        for i, (a, n, f) in enumerate(chain):
            nxt = len(desc) // 16 + 1
            last = i == len(chain) - 1
            desc += struct.pack("<QIHH", a, n, f | (0 if last else 1),
                                0 if last else nxt)
    avail = struct.pack("<HH", 0, len(heads)) + b"".join(
        struct.pack("<H", h) for h in heads)
    return out + vu_ram(base, desc) + vu_ram(base + 0x1000, avail)


def vu_hello(features=(1 << 32) | (1 << 30), protocol=0xb209):
    return (vu_msg(VU_GET_FEATURES) + vu_msg(VU_GET_PROTOCOL_FEATURES) +
            vu_msg(VU_SET_PROTOCOL_FEATURES, struct.pack("<Q", protocol)) +
            vu_msg(VU_GET_QUEUE_NUM) + vu_msg(VU_GET_MAX_MEM_SLOTS) +
            vu_msg(VU_SET_OWNER) +
            vu_msg(VU_GET_CONFIG, struct.pack("<III", 0, 60, 0) +
                   bytes(60)) +
            vu_msg(VU_SET_FEATURES, struct.pack("<Q", features)))


def vu_seeds():
    table = vu_msg(VU_SET_MEM_TABLE, struct.pack("<II", 1, 0) + vu_region(),
                   1, True)
    addreg = vu_msg(VU_ADD_MEM_REG, struct.pack("<Q", 0) + vu_region(), 1,
                    True, flags=9)
    inflight = vu_msg(VU_GET_INFLIGHT_FD, struct.pack("<QQHHxxxx", 0, 0, 1,
                                                      64))
    io = vu_requests() + b"\x41\x42"
    s = {
        "qemu-like": vu_hello() + inflight + addreg + vu_ring() + io +
        vu_state(VU_GET_VRING_BASE, 0, 0),
        "mem-table": vu_hello() + table + vu_ring() + io,
        "event-idx": vu_hello((1 << 32) | (1 << 30) | (1 << 29)) + table +
        vu_ring() + io,
        "two-queues": vu_hello() + table + vu_ring(0) + vu_ring(1, 0x20000) +
        vu_requests() + vu_requests(0x20000) + b"\x41\x42",
        "set-inflight": vu_hello() + table + vu_msg(
            VU_SET_INFLIGHT_FD, struct.pack("<QQHHxxxx", 0x1000, 0x30000, 1,
                                            64), 1, True) + vu_ring() + io,
        "stop-restart": vu_hello() + table + vu_ring() + io +
        vu_state(VU_GET_VRING_BASE, 0, 0) + vu_ring() + b"\x41\x42",
        "rem-mem-reg": vu_hello() + addreg + vu_ring() + io +
        vu_msg(VU_REM_MEM_REG, struct.pack("<Q", 0) + vu_region()),
        "reset": vu_hello() + table + vu_ring() + io +
        vu_msg(VU_RESET_DEVICE) + vu_hello() + table + vu_ring(),
        "set-config": vu_hello() + vu_msg(VU_SET_CONFIG, struct.pack(
            "<III", 32, 1, 0) + b"\0"),
        "bad-garbage": bytes([0, 32, 0]) + bytes(range(32)),
        "bad-truncated": vu_msg(VU_SET_FEATURES, b"\1\2\3", size=8),
        "bad-region-past-file": vu_hello() + vu_msg(
            VU_SET_MEM_TABLE, struct.pack("<II", 1, 0) +
            vu_region(size=64 << 20), 1, True),
        "bad-ring-outside": vu_hello() + table + vu_ring(0, 0x3f000),
        "bad-too-many-fds": vu_hello() +
        vu_msg(VU_SET_VRING_CALL, struct.pack("<Q", 0), 12),
        "bad-kick-memfd": vu_hello() + table + vu_ring_addr() +
        vu_msg(VU_SET_VRING_KICK, struct.pack("<Q", 0), 1, True),
        "bad-chain": vu_hello() + table + vu_ring() + vu_ram(
            0x1000, struct.pack("<QIHH", 1 << 40, 16, 0, 0)) +
        vu_ram(0x2000, struct.pack("<HHH", 0, 1, 0)) + b"\x41\x42",
    }
    return s


# --------------------------------------------------------------------------
# NBD seeds: the bytes a client sends (tests/fuzz/fuzz-nbd.c).
# --------------------------------------------------------------------------
NBD_OPTS_MAGIC, NBD_REQUEST_MAGIC = 0x49484156454F5054, 0x25609513


def nbd_opt(opt, data=b""):
    return struct.pack(">QII", NBD_OPTS_MAGIC, opt, len(data)) + data


def nbd_info(name, infos=(3,), opt=7):
    n = name.encode()
    return nbd_opt(opt, struct.pack(">I", len(n)) + n +
                   struct.pack(">H", len(infos)) +
                   b"".join(struct.pack(">H", i) for i in infos))


def nbd_req(cmd, off=0, ln=0, data=b"", flags=0, cookie=1):
    return struct.pack(">IHHQQI", NBD_REQUEST_MAGIC, flags, cmd, cookie, off,
                       ln) + data


def nbd_go(name="disk", structured=True):
    return (struct.pack(">I", 3) + (nbd_opt(8) if structured else b"") +
            nbd_info(name))


def nbd_seeds():
    rw = (nbd_req(1, 4096, 512, b"\x5a" * 512, cookie=1) +
          nbd_req(0, 4096, 512, cookie=2) + nbd_req(3, cookie=3) +
          nbd_req(4, 0, 4096, flags=1, cookie=4) +
          nbd_req(6, 8192, 4096, flags=2, cookie=5) +
          nbd_req(6, 8192, 4096, flags=16, cookie=6) +
          nbd_req(1, 511, 3, b"abc", flags=1, cookie=7) +
          nbd_req(0, 0, 0, cookie=8))
    return {
        "go-structured": nbd_go() + rw + nbd_req(2),
        "go-simple": nbd_go(structured=False) + rw + nbd_req(2),
        "export-name": struct.pack(">I", 1) + nbd_opt(1, b"disk") + rw,
        "no-zeroes-export-name": struct.pack(">I", 3) +
        nbd_opt(1, b"ro") + nbd_req(0, 0, 4096) + nbd_req(2),
        "info-list-abort": struct.pack(">I", 3) + nbd_info("disk", (0, 1, 2, 3),
                                                           6) +
        nbd_opt(3) + nbd_opt(2),
        "read-only-writes": nbd_go("ro") + nbd_req(1, 0, 8, b"x" * 8) +
        nbd_req(4, 0, 512) + nbd_req(6, 0, 512) + nbd_req(0, 0, 512),
        "refused": nbd_go() + nbd_req(0, 1 << 20, 512) +
        nbd_req(1, (1 << 20) - 1, 2, b"xy") + nbd_req(99) +
        nbd_req(0, 0, 512, flags=2) + nbd_req(0, 0, 64 << 20) +
        nbd_req(5, 0, 512) + nbd_req(7, 0, 512),
        "options-refused": struct.pack(">I", 3) + nbd_opt(5) + nbd_opt(10,
                                                                        b"x") +
        nbd_opt(99) + nbd_opt(3, b"junk") + nbd_info("nope") +
        nbd_opt(8) + nbd_opt(8) + nbd_info("disk", (3,) * 3),
        "bad-client-flags": struct.pack(">I", 0xfffffff0),
        "bad-option-magic": struct.pack(">I", 3) + b"X" * 16,
        "bad-option-length": struct.pack(">I", 3) +
        struct.pack(">QII", NBD_OPTS_MAGIC, 7, 1 << 30),
        "bad-info-lengths": struct.pack(">I", 3) +
        nbd_opt(7, struct.pack(">I", 100) + b"disk"),
        "bad-request-magic": nbd_go() + b"\0" * 28,
        "bad-oversized-write": nbd_go() + nbd_req(1, 0, 64 << 20),
        "bad-truncated": nbd_go() + nbd_req(1, 0, 4096, b"z" * 100),
        "oldstyle-no-fixed": struct.pack(">I", 0) + nbd_info("disk"),
    }


def write_seeds():
    for t, gen in (("fuzz-virtio-blk", blk_seeds),
                   ("fuzz-virtqueue", vq_seeds),
                   ("fuzz-vhost-user", vu_seeds),
                   ("fuzz-nbd", nbd_seeds)):
        d = corpus_of(t)
        os.makedirs(d, exist_ok=True)
        for f in glob.glob(os.path.join(d, "*")):
            os.unlink(f)
        for name, data in sorted(gen().items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        log(f"{len(os.listdir(d))} seeds in {os.path.relpath(d, ROOT)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cmd", choices=["build", "smoke", "fuzz", "seeds"])
    ap.add_argument("--time", type=int, default=None,
                    help="seconds of fuzzing per target")
    ap.add_argument("--target", choices=TARGETS, action="append")
    args = ap.parse_args()
    targets = args.target or TARGETS
    if args.cmd == "seeds":
        write_seeds()
        return 0
    if not have_libfuzzer():
        log(f"skip: {CC} cannot build libFuzzer targets (make deps-test)")
        return 77
    if not build():
        return 1
    if args.cmd == "build":
        return 0
    if args.cmd == "smoke":
        return 0 if smoke(targets, args.time or 10) else 1
    return 0 if fuzz(targets, args.time or 300) else 1


if __name__ == "__main__":
    sys.exit(main())

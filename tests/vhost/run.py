#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/vhost/run.py - aiolab-storage-daemon's vhost-user-blk export
served to a real QEMU running a real Linux guest (test_guest.py), and to
a raw Python front-end that breaks the protocol (test_protocol.py).

    /usr/bin/python3 tests/vhost/run.py [--build DIR] [-k SUBSTRING] [--list]
                                        [-x SUBSTRING] [--no-reference]

Every test_* function runs with a fresh temporary directory under
build/ (O_DIRECT needs a real file system, not tmpfs) and its own time
limit.  A function with a `kinds` attribute runs once per kind: against
aiolab-storage-daemon ("name/aiolab") and, as the reference, Debian's
qemu-storage-daemon ("name/qsd") with the same command line, so that a
failure of ours can be told apart from a harness problem.  Prints
harness lines ("ok N name", "not ok N name" with "# " details) ending
with "# vhost: N passed, N failed, N skipped", as tests/run.py expects.
Exit status 0 iff nothing failed.  Every QEMU runs under timeout(1);
every process is stopped by its own PID.

A test skips (never fails) only when a prerequisite cannot exist here:
no QEMU or busybox installed (make deps-clients), or no way to download
Debian's cloud kernel.
"""
import argparse
import glob
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import daemon  # noqa: E402


class Env:
    """What a test gets: its temporary directory, the build, the kind of
    daemon it tests, and everything it starts (stopped at the end)."""

    def __init__(self, build, tmp, kind):
        self.build = build
        self.tmp = tmp
        self.kind = kind or "aiolab"
        self.daemons = []
        self.guests = []
        self.closers = []

    def path(self, name):
        return os.path.join(self.tmp, name)

    def image(self, name="disk.img", size=16 << 20):
        p = self.path(name)
        with open(p, "wb") as f:
            f.truncate(size)
        return p

    def daemon(self, kind=None):
        d = daemon.Daemon(kind or self.kind, self.build, self.tmp)
        self.daemons.append(d)
        return d

    def cleanup(self):
        for g in self.guests:
            g.kill()
        for d in self.daemons:
            d.kill()
        for c in self.closers:
            try:
                c()
            except Exception:
                pass

    def details(self):
        out = []
        for d in self.daemons:
            text = d.stderr()
            if text:
                out.append(f"{d.kind} daemon stderr:\n{text[-4000:]}")
        for g in self.guests:
            out.append("guest console (last lines):\n" + g.tail(40))
        return "\n".join(out)


def load_tests():
    tests = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for attr in dir(mod):
            fn = getattr(mod, attr)
            if attr.startswith("test_") and callable(fn):
                tests.append((name, fn.__code__.co_firstlineno, attr, fn))
    tests.sort(key=lambda t: (t[0], t[1]))
    out = []
    for m, _, a, fn in tests:
        for k in getattr(fn, "kinds", [None]):
            out.append((f"{m[5:]}/{a[5:]}" + (f"/{k}" if k else ""), fn, k))
    return out


def alarm_handler(signum, frame):
    raise TimeoutError("test timed out")


def run_one(build, fn, kind):
    scratch = os.path.join(ROOT, "build", "vhost-tests")
    os.makedirs(scratch, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="t-", dir=scratch)
    env = Env(build, tmp, kind)
    status, detail = "ok", ""
    signal.alarm(int(getattr(fn, "timeout", 60)))
    try:
        fn(env)
    except Exception as e:
        if type(e).__name__ == "Skip":
            status, detail = "skip", str(e)
        else:
            status = "not ok"
            detail = traceback.format_exc() + env.details()
    finally:
        signal.alarm(0)
        env.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return status, detail


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("-k", help="run tests whose name contains this")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("-x", action="append", default=[],
                    help="leave out tests whose name contains this")
    ap.add_argument("--no-reference", action="store_true",
                    help="leave out the qemu-storage-daemon runs (for the "
                    "sanitizer builds of our daemon)")
    args = ap.parse_args()
    tests = load_tests()
    if args.no_reference:
        tests = [t for t in tests if t[2] != "qsd"]
    if args.k:
        tests = [t for t in tests if args.k in t[0]]
    tests = [t for t in tests if not any(x in t[0] for x in args.x)]
    if args.list:
        for name, _, _ in tests:
            print(name)
        return 0
    signal.signal(signal.SIGALRM, alarm_handler)
    counts = [0, 0, 0]
    for i, (name, fn, kind) in enumerate(tests, 1):
        t0 = time.monotonic()
        status, detail = run_one(args.build, fn, kind)
        dt = time.monotonic() - t0
        if status == "skip":
            print(f"ok {i} {name} # skip {detail}")
            counts[2] += 1
        else:
            print(f"{status} {i} {name} ({dt:.2f}s)")
            counts[0 if status == "ok" else 1] += 1
            for line in detail.rstrip().splitlines():
                print("# " + line)
        sys.stdout.flush()
    print(f"# vhost: {counts[0]} passed, {counts[1]} failed, "
          f"{counts[2]} skipped")
    return 1 if counts[1] else 0


if __name__ == "__main__":
    sys.exit(main())

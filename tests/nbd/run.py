#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/nbd/run.py - aiolab-storage-daemon's NBD export against real
NBD clients from Debian (qemu-img, qemu-io, nbdinfo, nbdcopy, nbdsh /
python3-libnbd, fio's nbd engine) and against raw sockets that break
the protocol.

    /usr/bin/python3 tests/nbd/run.py [--build DIR] [-k SUBSTRING] [--list]
                                      [--no-reference]

Every test_* function of tests/nbd/test_*.py runs with a fresh temporary
directory and its own time limit.  A function marked @reference runs
twice: against aiolab-storage-daemon ("name/aiolab") and, as the
reference, against Debian's qemu-storage-daemon ("name/qsd") with the
same command line, so that a failure of ours can be told apart from a
problem of the harness or the client.  Prints harness lines ("ok N
name", "not ok N name" with "# " details) ending with "# nbd: N passed,
N failed, N skipped", as tests/run.py expects.  Exit status 0 iff
nothing failed.  Every external process runs under timeout(1) and is
stopped by its own PID.
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
sys.path.insert(0, os.path.join(ROOT, "tests", "machine"))  # qmp.py

import server  # noqa: E402


class Env:
    """What a test gets: its temporary directory, the build, and daemons
    it starts (stopped at the end whatever happens)."""

    def __init__(self, build, tmp, kind):
        self.build = build
        self.tmp = tmp
        self.kind = kind            # "aiolab" or "qsd" (reference)
        self.daemons = []

    def path(self, name):
        return os.path.join(self.tmp, name)

    def daemon(self, kind=None, sub=None):
        """A Daemon of this test's kind (or @kind), in tmp (or tmp/sub)."""
        d = os.path.join(self.tmp, sub) if sub else self.tmp
        os.makedirs(d, exist_ok=True)
        dm = server.Daemon(kind or self.kind or "aiolab", self.build, d)
        self.daemons.append(dm)
        return dm

    def cleanup(self):
        for d in self.daemons:
            d.kill()


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
        kinds = getattr(fn, "kinds", [None])
        for k in kinds:
            out.append((f"{m[5:]}/{a[5:]}" + (f"/{k}" if k else ""), fn, k))
    return out


def alarm_handler(signum, frame):
    raise TimeoutError("test timed out")


def run_one(build, name, fn, kind):
    tmp = tempfile.mkdtemp(prefix="aiolab-nbd-")
    env = Env(build, tmp, kind)
    status, detail = "ok", ""
    signal.alarm(int(getattr(fn, "timeout", 60)))
    try:
        fn(env)
    except Exception as e:
        if type(e).__name__ == "Skip":
            status, detail = "skip", str(e)
        else:
            status, detail = "not ok", traceback.format_exc()
            env.cleanup()
            for d in env.daemons:
                if d.stderr_text:
                    detail += f"\n{d.kind} daemon stderr:\n{d.stderr_text}"
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
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the qemu-storage-daemon runs (sanitizer "
                         "builds of the daemon)")
    args = ap.parse_args()
    tests = load_tests()
    if args.no_reference:
        tests = [t for t in tests if t[2] != "qsd"]
    if args.k:
        tests = [t for t in tests if args.k in t[0]]
    if args.list:
        for name, _, _ in tests:
            print(name)
        return 0
    signal.signal(signal.SIGALRM, alarm_handler)
    counts = [0, 0, 0]
    for i, (name, fn, kind) in enumerate(tests, 1):
        t0 = time.monotonic()
        status, detail = run_one(args.build, name, fn, kind)
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
    print(f"# nbd: {counts[0]} passed, {counts[1]} failed, "
          f"{counts[2]} skipped")
    return 1 if counts[1] else 0


if __name__ == "__main__":
    sys.exit(main())

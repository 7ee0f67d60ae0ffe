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
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "machine"))  # qmp.py
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import server  # noqa: E402
from testrunner import load_tests, run_case, run_suite  # noqa: E402


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


def cases():
    """(name, test, kind): a test marked @reference once per kind."""
    out = []
    for m, a, fn in load_tests(HERE):
        for k in getattr(fn, "kinds", [None]):
            out.append((f"{m[5:]}/{a[5:]}" + (f"/{k}" if k else ""), fn, k))
    return out


def daemons_stderr(env):
    """A failed test's detail ends with its daemons' stderr."""
    env.cleanup()
    return "".join(f"\n{d.kind} daemon stderr:\n{d.stderr_text}"
                   for d in env.daemons if d.stderr_text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("-k", help="run tests whose name contains this")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the qemu-storage-daemon runs (sanitizer "
                         "builds of the daemon)")
    args = ap.parse_args()
    tests = cases()
    if args.no_reference:
        tests = [t for t in tests if t[2] != "qsd"]
    if args.k:
        tests = [t for t in tests if args.k in t[0]]
    if args.list:
        for name, _, _ in tests:
            print(name)
        return 0
    return run_suite("nbd", [
        (name, lambda fn=fn, kind=kind: run_case(
            fn, lambda tmp: Env(args.build, tmp, kind), "aiolab-nbd-", 60,
            daemons_stderr))
        for name, fn, kind in tests])


if __name__ == "__main__":
    sys.exit(main())

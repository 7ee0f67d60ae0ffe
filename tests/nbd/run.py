#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/nbd/run.py - aiolab-storage-daemon's NBD export against real
NBD clients from Debian (qemu-img, qemu-io, nbdinfo, nbdcopy, nbdsh /
python3-libnbd, fio's nbd engine) and against raw sockets that break
the protocol.

    /usr/bin/python3 tests/nbd/run.py [--build DIR] [-k SUBSTRING] [--list]
                                      [-x SUBSTRING] [--no-reference]

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
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "machine"))  # qmp.py
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import server  # noqa: E402
from testrunner import run_case, suite_main  # noqa: E402


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


def daemons_stderr(env):
    """A failed test's detail ends with its daemons' stderr."""
    env.cleanup()
    return "".join(f"\n{d.kind} daemon stderr:\n{d.stderr_text}"
                   for d in env.daemons if d.stderr_text)


def main():
    return suite_main("nbd", __doc__, HERE, lambda args, fn, kind: run_case(
        fn, lambda tmp: Env(args.build, tmp, kind), "aiolab-nbd-", 60,
        daemons_stderr))


if __name__ == "__main__":
    sys.exit(main())

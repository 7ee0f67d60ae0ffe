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
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import daemon  # noqa: E402
from testrunner import run_case, suite_main  # noqa: E402


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


def main():
    # O_DIRECT needs a real file system, not tmpfs: scratch under build/.
    scratch = os.path.join(ROOT, "build", "vhost-tests")
    return suite_main("vhost", __doc__, HERE, lambda args, fn, kind: run_case(
        fn, lambda tmp: Env(args.build, tmp, kind), "t-", 60,
        lambda env: env.details(), tmp_dir=scratch))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/vhost/boot.py - boot the test guest (guest.py) on any
vhost-user-blk socket, by hand or from another program (tutorial chapter
D's real-guest.c runs it while it serves the socket itself).

    /usr/bin/python3 tests/vhost/boot.py SOCKET [--dir DIR] [--queues N]
        [--smp N] [--writers N] [--size BYTES] [--disk BYTES]

Builds the initramfs in DIR (default: a new directory under build/),
runs QEMU with TCG on SOCKET, and prints the guest's "AIOLAB ..." lines
and then one verdict line: "verdict: ok", or "verdict: bad: ..." with
what guest.check_run() found (the image itself is not checked: its
owner still has it open).  Exit status 0 (ok), 1 (bad), 77 (a
prerequisite is missing: QEMU, busybox, or Debian's cloud kernel).
"""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import guest  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("socket")
    ap.add_argument("--dir")
    ap.add_argument("--queues", type=int, default=1)
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--size", type=int, default=256 << 10,
                    help="bytes each writer writes (a multiple of 4096)")
    ap.add_argument("--disk", type=int, default=None,
                    help="the disk's size in bytes, if it must be checked")
    args = ap.parse_args()
    work = args.dir or tempfile.mkdtemp(
        prefix="boot-", dir=os.path.join(guest.ROOT, "build"))
    os.makedirs(work, exist_ok=True)
    try:
        kernel = guest.ensure_kernel()
        pats = [os.urandom(args.size) for _ in range(args.writers)]
        initrd = guest.build_initramfs(work, kernel, pats)
        g = guest.Guest(kernel, initrd, args.socket, work, smp=args.smp,
                        queues=args.queues)
    except guest.Skip as e:
        print(f"skip: {e}")
        return 77
    rc = g.wait()
    for line in g.lines:
        if line and line.startswith("AIOLAB "):
            print(line)
    bad = guest.check_run(g.results(), pats, None, args.disk)
    if rc != 0:
        bad.insert(0, f"QEMU exited with {rc}")
    print("verdict: " + ("ok" if not bad else "bad: " + "; ".join(bad)))
    sys.stdout.flush()
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: MIT
"""Build the cffi low-level module, aiolab._aiolab_cffi (API mode).

    /usr/bin/python3 bindings/cffi/build.py --build build \
        --out bindings/python/aiolab

The declarations are the cdef files in bindings/cffi/cdefs/, one per C
header (read in dependency order); callbacks go through `extern "Python"`
functions, with ffi.new_handle() as the opaque pointer.  The module links
against BUILD/libaiolab.so with an rpath to it (setup.py bundles the
library instead and links with $ORIGIN).
"""
import argparse
import os
import shutil
import sys
import tempfile

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# One cdef file per C header, in include order.
CDEF_FILES = [
    "error.h", "event_notifier.h", "aio.h", "timer.h", "main-loop.h",
    "iothread.h", "aio-wait.h", "coroutine.h", "thread-pool.h",
    "defer-call.h", "trace.h", "debug.h", "iov.h", "block.h",
    "block-backend.h", "blockjob.h", "guest-memory.h", "virtio.h",
    "virtio-blk.h", "virtio-guest.h", "machine.h",
]

# Typedefs the cdefs use that the C headers do not name (block.h takes the
# AioContext notifier callbacks as unnamed function pointer types).
EXTRA_C = """
typedef void AioContextAttachedFn(AioContext *new_context, void *opaque);
typedef void AioContextDetachFn(void *opaque);
"""

# Every C callback the package needs, as Python functions.  opaque is a
# handle from ffi.new_handle(); the notifier ones get the EventNotifier
# (its address finds the Python object), one per role.  aio_set_fd_handler
# passes one opaque to all four of its callbacks: the fd ones call it with
# their role.
CALLBACKS = """
extern "Python" void _aiolab_void_cb(void *);
extern "Python" bool _aiolab_bool_cb(void *);
extern "Python" int _aiolab_int_cb(void *);
extern "Python" void _aiolab_completion_cb(void *, int);
extern "Python" void _aiolab_fd_read_cb(void *);
extern "Python" void _aiolab_fd_write_cb(void *);
extern "Python" bool _aiolab_fd_poll_cb(void *);
extern "Python" void _aiolab_fd_poll_ready_cb(void *);
extern "Python" void _aiolab_attached_cb(AioContext *, void *);
extern "Python" void _aiolab_notifier_read_cb(EventNotifier *);
extern "Python" bool _aiolab_notifier_poll_cb(void *);
extern "Python" void _aiolab_notifier_poll_ready_cb(EventNotifier *);
extern "Python" void _aiolab_notifier_poll_begin_cb(EventNotifier *);
extern "Python" void _aiolab_notifier_poll_end_cb(EventNotifier *);
extern "Python" void _aiolab_machine_event_cb(void *,
                                              const AiolabMachineEvent *);
extern "Python" void _aiolab_job_event_cb(const AiolabJobEvent *, void *);
void free(void *ptr);
"""


def cdef_text():
    parts = []
    for name in CDEF_FILES:
        with open(os.path.join(HERE, "cdefs", name)) as f:
            parts.append(f.read())
    return "\n".join(parts) + CALLBACKS


def make_ffi(library_dirs, rpath):
    ffi = cffi.FFI()
    ffi.cdef(cdef_text())
    ffi.set_source(
        "aiolab._aiolab_cffi",
        "#include <stdlib.h>\n#include <aiolab/aiolab.h>\n" + EXTRA_C,
        include_dirs=[os.path.join(ROOT, "c", "include")],
        library_dirs=library_dirs,
        libraries=["aiolab"],
        extra_link_args=["-Wl,-rpath," + rpath],
        extra_compile_args=["-std=gnu11"],
    )
    return ffi


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build",
                    help="directory holding libaiolab.so (default build)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bindings", "python",
                                                  "aiolab"),
                    help="where the extension module goes")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    ffi = make_ffi([build], build)
    with tempfile.TemporaryDirectory() as tmp:
        so = ffi.compile(tmpdir=tmp, verbose=False)
        dest = os.path.join(args.out, os.path.basename(so))
        shutil.copy(so, dest)
    print("  CFFI    " + os.path.relpath(dest, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())

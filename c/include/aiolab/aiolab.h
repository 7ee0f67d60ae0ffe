/* SPDX-License-Identifier: MIT */
/*
 * aiolab/aiolab.h - the whole public API of aiolab, a working model of
 * QEMU 9.0's event-loop concurrency architecture.
 *
 *     cc -Ic/include prog.c -Lbuild -laiolab -Wl,-rpath,$PWD/build
 */
#ifndef AIOLAB_AIOLAB_H
#define AIOLAB_AIOLAB_H

#include <aiolab/compiler.h>
#include <aiolab/error.h>
#include <aiolab/event_notifier.h>
#include <aiolab/aio.h>
#include <aiolab/timer.h>
#include <aiolab/main-loop.h>
#include <aiolab/iothread.h>
#include <aiolab/aio-wait.h>
#include <aiolab/coroutine.h>
#include <aiolab/thread-pool.h>
#include <aiolab/defer-call.h>
#include <aiolab/trace.h>
#include <aiolab/debug.h>
#include <aiolab/iov.h>
#include <aiolab/block.h>
#include <aiolab/block-backend.h>
#include <aiolab/blockjob.h>
#include <aiolab/export.h>
#include <aiolab/nbd.h>
#include <aiolab/hw/guest-memory.h>
#include <aiolab/hw/virtio_wire.h>
#include <aiolab/hw/virtio_blk_wire.h>
#include <aiolab/hw/virtio.h>
#include <aiolab/hw/virtio-blk.h>
#include <aiolab/hw/virtio-guest.h>
#include <aiolab/machine.h>

#define AIOLAB_VERSION "0.1.0"
/** aiolab_version: the library's version string.  Context: any thread. */
AIOLAB_API const char *aiolab_version(void);

#endif

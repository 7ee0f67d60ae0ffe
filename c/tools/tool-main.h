/* SPDX-License-Identifier: MIT */
/*
 * tools/tool-main.h - the start-up and shutdown pieces of main() that
 * aiolab-vm and aiolab-storage-daemon share (tool-main.c): termination
 * signals through a signalfd, and stopping every IOThread.  Not
 * installed.
 */
#ifndef AIOLAB_TOOLS_TOOL_MAIN_H
#define AIOLAB_TOOLS_TOOL_MAIN_H

#include <aiolab/aiolab.h>

/**
 * tool_signals_init: block @signals (a list ending with 0) in the
 * calling thread, and so in every thread it starts afterwards, and call
 * @fn(@opaque) in the main loop's iohandler context whenever one of them
 * arrives: through a signalfd, as QEMU's util/main-loop.c does, never in
 * a signal handler.  SIGPIPE is ignored (a client that hangs up).
 * Context: main loop, BQL held; once.
 */
void tool_signals_init(const int *signals, void (*fn)(void *opaque),
                       void *opaque);

/**
 * tool_signals_cleanup: remove the signalfd tool_signals_init() set up
 * (nothing if it did not, or could not).
 * Context: main loop, BQL held.
 */
void tool_signals_cleanup(void);

/**
 * tool_destroy_iothreads: stop and free every IOThread (-object
 * iothread, QMP object-add).
 * Context: main loop, BQL held, no user of their contexts left.
 */
void tool_destroy_iothreads(void);

#endif

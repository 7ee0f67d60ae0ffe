/* SPDX-License-Identifier: MIT */
/*
 * tools/sd.h - the pieces of aiolab-storage-daemon
 * (c/tools/aiolab-storage-daemon.c): the command line (sd-options.c).
 * Not installed.
 */
#ifndef AIOLAB_TOOLS_SD_H
#define AIOLAB_TOOLS_SD_H

#include <stdio.h>
#include <jansson.h>
#include <aiolab/aiolab.h>

/**
 * sd_error: print "aiolab-storage-daemon: --OPT ARG: message" (QEMU's
 * error location format) to stderr.  @arg may be NULL.
 */
void sd_error(const char *opt, const char *arg, const char *fmt, ...)
    AIOLAB_PRINTF(3, 4);

/** sd_usage: the --help text. */
void sd_usage(FILE *f);

/**
 * sd_process_args: act on the command line in its order, as
 * qemu-storage-daemon does: --object, --blockdev, --nbd-server,
 * --export, --chardev/--monitor, --pidfile.  *@exit_now is set for
 * --help and --version.
 * Returns: false after printing an error (the caller exits with 1).
 * Context: main loop, BQL held.
 */
bool sd_process_args(int argc, char **argv, bool *exit_now);

/** sd_pidfile: the --pidfile path (to remove at exit), or NULL. */
const char *sd_pidfile(void);

/** sd_trace_file: the --trace file= path (written at exit), or NULL. */
const char *sd_trace_file(void);

#endif

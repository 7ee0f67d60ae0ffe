/* SPDX-License-Identifier: MIT */
/*
 * tools/opts.h - command-line pieces that aiolab-vm and
 * aiolab-storage-daemon share (opts.c): QEMU's error location format,
 * keyval strings, and the two options both programs take, an iothread
 * object and a block node.  Not installed.
 */
#ifndef AIOLAB_TOOLS_OPTS_H
#define AIOLAB_TOOLS_OPTS_H

#include <stdarg.h>
#include <stdbool.h>
#include <jansson.h>
#include <aiolab/aiolab.h>

/**
 * opts_verror: print "PROG: OPT ARG: message" (QEMU's error location
 * format) to stderr.  @arg may be NULL.
 */
void opts_verror(const char *prog, const char *opt, const char *arg,
                 const char *fmt, va_list ap) AIOLAB_PRINTF(4, 0);

/**
 * opts_keyval: "first,key=value,key2=value2" into a JSON object of
 * strings, the first element without '=' becoming @implied_key (e.g.
 * "qom-type", "driver"; NULL: none).  ",," is a literal comma.  A key
 * given twice is an error if @unique, else the last one counts.
 * Returns: NULL with @errp set.
 */
json_t *opts_keyval(const char *str, const char *implied_key, bool unique,
                    Error **errp);

/**
 * opts_keyval_or_json: @str as a JSON object if it starts with '{',
 * else opts_keyval(@str, @implied_key, unique).
 * Returns: NULL with @errp set.
 */
json_t *opts_keyval_or_json(const char *str, const char *implied_key,
                            Error **errp);

/**
 * opts_add_iothread: the object @kv describes ("qom-type": "iothread",
 * "id", integer properties as strings), added as with QMP object-add.
 * @kv may be NULL (false, for a parse that failed).
 * Context: main loop, BQL held.
 */
bool opts_add_iothread(json_t *kv, Error **errp);

/**
 * opts_add_blockdev: open the node @kv describes (it must name
 * "node-name"), from the library's option string @flat, or, if @flat is
 * NULL, the one made from @kv; the node is released at exit
 * (monitor_track_node).  @kv may be NULL (false).
 * Context: main loop, BQL held.
 */
bool opts_add_blockdev(json_t *kv, const char *flat, Error **errp);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * aiolab/nbd.h - the NBD server (QEMU's nbd-server-start/stop,
 * blockdev-nbd.c).  Exports are added with blk_exp_add("type=nbd,...")
 * (aiolab/export.h) once the server runs; c/export/nbd-server.c
 * describes the protocol as served here.
 *
 *     nbd_server_start("addr.type=unix,addr.path=/tmp/nbd.sock", &err);
 *     blk_exp_add("type=nbd,id=e0,node-name=disk0,name=disk,writable=on",
 *                 &err);
 *     ... qemu-img info 'nbd+unix:///disk?socket=/tmp/nbd.sock' ...
 *     nbd_server_stop(&err);      (also closes every NBD export)
 *
 * Export options besides the common ones (type, id, node-name,
 * writable, writethrough, iothread, fixed-iothread): name (default: the
 * node name), description, multi-conn (on/off; default on for read-only
 * exports, as QEMU's auto).
 *
 * Where QEMU differs: unix sockets only, no TLS, no metadata contexts
 * (base:allocation, dirty bitmaps), no NBD_CMD_CACHE.
 */
#ifndef AIOLAB_NBD_H
#define AIOLAB_NBD_H

#include <aiolab/export.h>

/* ---------------------------------------------------------------------
 * Global state: main loop, BQL held
 * --------------------------------------------------------------------- */

/**
 * nbd_server_start: listen for NBD clients.
 * @options: "addr.type=unix,addr.path=PATH[,max-connections=N]" (N 0:
 *           unlimited, the default; at N connections the server stops
 *           accepting until one ends, as QEMU's).  An existing file at
 *           PATH is replaced.
 * The listening socket and each client's handshake live in the main
 * loop's iohandler context; a client that chose an export is served in
 * that export's AioContext.
 * Returns: false with @errp set ("NBD server already running", a bad or
 * missing option, the socket's error).
 * Context: main loop, BQL held.
 */
AIOLAB_API bool nbd_server_start(const char *options, Error **errp);

/**
 * nbd_server_stop: stop listening (the socket file is removed), hang up
 * on clients still negotiating, and close every NBD export (waiting
 * until they are deleted, as blk_exp_close_all_type("nbd")).
 * Returns: false with @errp set ("NBD server not running").
 * Context: main loop, BQL held; not from a coroutine.
 */
AIOLAB_API bool nbd_server_stop(Error **errp);

/**
 * nbd_server_is_running: has nbd_server_start() succeeded since the last
 * nbd_server_stop()?  Context: main loop, BQL held.
 */
AIOLAB_API bool nbd_server_is_running(void);

#endif

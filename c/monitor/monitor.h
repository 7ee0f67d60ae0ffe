/* SPDX-License-Identifier: MIT */
/*
 * monitor/monitor.h - the QMP monitor (QEMU's monitor/qmp.c,
 * qapi/qmp-dispatch.c and the qmp_* command handlers), linked into the
 * tools only: it is the one part of aiolab that needs a JSON library
 * (jansson).  Not installed; the tools include it as "monitor/monitor.h".
 *
 * A monitor listens on a unix socket, registered with
 * qemu_set_fd_handler(): its handlers live in the main loop's iohandler
 * context, so they run only from main_loop_wait(), with the BQL held,
 * and never inside a nested aio_poll() (a drain, AIO_WAIT_WHILE) - a
 * command can never start in the middle of another.
 *
 *   client connects -> {"QMP": {"version": ..., "capabilities": []}}
 *   {"execute": "qmp_capabilities"}          -> {"return": {}}
 *   {"execute": "query-status", "id": 1}     -> {"return": {...}, "id": 1}
 *   {"execute": "nope"}                      -> {"error": {"class":
 *                                  "CommandNotFound", "desc": "..."}}
 *   (any time after negotiation)             <- {"timestamp": {...},
 *                                  "event": "STOP"}
 *
 * Where QEMU differs: no out-of-band execution (capabilities are
 * empty), no HMP, no coroutine commands, one listening socket per -qmp,
 * any number of clients (QEMU's chardev takes one at a time).
 */
#ifndef AIOLAB_MONITOR_MONITOR_H
#define AIOLAB_MONITOR_MONITOR_H

#include <jansson.h>
#include <aiolab/aiolab.h>
#include <aiolab/machine.h>

/* QMP error classes (QEMU's QapiErrorClass). */
typedef enum QapiErrorClass {
    ERROR_CLASS_GENERIC_ERROR,
    ERROR_CLASS_COMMAND_NOT_FOUND,
    ERROR_CLASS_DEVICE_NOT_ACTIVE,
    ERROR_CLASS_DEVICE_NOT_FOUND,
} QapiErrorClass;

/**
 * QmpCommandFunc: a command handler.  @args is the "arguments" object
 * (checked against the command's parameter list); on success set *@ret
 * (NULL means {}) and return true; on failure set *@err_class and @errp.
 * Context: main loop, BQL held.
 */
typedef bool QmpCommandFunc(json_t *args, json_t **ret,
                            QapiErrorClass *err_class, Error **errp);

/**
 * QmpCommand: a command and its parameters: "name:TYPE" for required and
 * "name:TYPE?" for optional ones, TYPE one of s (string), i (integer), b
 * (bool), o (object), a (array), n (string or null), x (anything).  A
 * command with "*" in its list accepts any extra member (object-add,
 * blockdev-add: their members are the object's properties).
 */
typedef struct QmpCommand {
    const char *name;
    QmpCommandFunc *fn;
    const char *params[16];
} QmpCommand;

/**
 * monitor_init_qmp: listen for QMP clients on @spec, the -qmp argument
 * "unix:PATH[,server=on|off][,wait=on|off]" (server must be on; the
 * legacy "server" and "nowait" flags are accepted).  With wait=on (the
 * default, as in QEMU), monitor_wait_clients() blocks until a client
 * connects.  The socket file is replaced if it exists and removed by
 * monitor_cleanup().
 * Returns: false with @errp set.
 * Context: main loop, BQL held.
 */
bool monitor_init_qmp(const char *spec, Error **errp);

/**
 * monitor_wait_clients: for each wait=on monitor, accept its first
 * client (and send the greeting) before the machine starts.
 * Context: main loop, BQL held.
 */
void monitor_wait_clients(void);

/**
 * monitor_cleanup: flush what is queued to each client (the reply to
 * quit, the SHUTDOWN event), close everything, remove socket files.
 * Tracked nodes stay: monitor_release_nodes() drops them.
 * Context: main loop, BQL held.
 */
void monitor_cleanup(void);

/**
 * qapi_event_send: send event @name with @data (stolen; NULL: no data
 * member) and a timestamp to every client past negotiation.
 * Context: main loop, BQL held.
 */
void qapi_event_send(const char *name, json_t *data);

/**
 * monitor_machine_event: an AiolabMachineEventFunc that turns machine
 * events into STOP, RESUME, SHUTDOWN and BLOCK_IO_ERROR.
 * Context: main loop, BQL held.
 */
void monitor_machine_event(void *opaque, const AiolabMachineEvent *ev);

/**
 * qmp_find_command: the command called @name, or NULL.  The tables are
 * qmp_machine_commands (qmp-cmds.c), qmp_block_commands (qmp-block.c),
 * qmp_job_commands (qmp-jobs.c) and qmp_export_commands (qmp-export.c),
 * each ending with a NULL name.
 * Context: any thread.
 */
const QmpCommand *qmp_find_command(const char *name);
extern const QmpCommand qmp_machine_commands[];
extern const QmpCommand qmp_block_commands[];
extern const QmpCommand qmp_job_commands[];
extern const QmpCommand qmp_export_commands[];

/**
 * monitor_export_deleted: the blk_exp_set_deleted_listener() callback
 * that sends BLOCK_EXPORT_DELETED; monitor_init_qmp() registers it.
 * Context: main loop, BQL held.
 */
void monitor_export_deleted(const char *id, void *opaque);

/**
 * monitor_set_quit_handler: what QMP "quit" does in a program without a
 * machine (aiolab-storage-daemon: leave its main loop); with a machine,
 * quit requests its shutdown.  Context: main loop, BQL held.
 */
void monitor_set_quit_handler(void (*fn)(void *opaque), void *opaque);

/**
 * monitor_job_event: an AiolabJobEventFunc that sends JOB_STATUS_CHANGE,
 * BLOCK_JOB_READY, BLOCK_JOB_COMPLETED, BLOCK_JOB_CANCELLED and
 * BLOCK_JOB_ERROR; monitor_init_qmp() registers it.
 * Context: main loop, BQL held.
 */
void monitor_job_event(const AiolabJobEvent *ev, void *opaque);

/**
 * monitor_dispatch: run one parsed QMP input and return the response
 * object (with "id" copied) - the whole of QEMU's qmp_dispatch(), for
 * the socket server and for tests.  @negotiated is the client's state,
 * updated by qmp_capabilities.
 * Context: main loop, BQL held.
 */
json_t *monitor_dispatch(json_t *req, bool *negotiated);

/* --- helpers shared by the command files ------------------------------ */

/**
 * qmp_aio_context_name: "main-loop" for the main context, the IOThread id
 * for an IOThread's, else the context's own name.
 * Context: main loop, BQL held.
 */
const char *qmp_aio_context_name(AioContext *ctx);

/**
 * qmp_blockdev_options: turn blockdev-add's arguments into the -blockdev
 * option string bdrv_open() takes (nested objects become dotted keys,
 * bools on/off, commas doubled).  Returns: a malloc'd string, or NULL
 * with @errp set.  Context: any thread.
 */
char *qmp_blockdev_options(json_t *args, Error **errp);

/**
 * qmp_iothread_add: create IOThread @id with the properties in @props
 * (poll-max-ns, poll-grow, poll-shrink, aio-max-batch, thread-pool-min,
 * thread-pool-max: integers), all or nothing.  Used by object-add and by
 * aiolab-vm's -object.  Returns: false with @errp set.
 * Context: main loop, BQL held.
 */
bool qmp_iothread_add(const char *id, json_t *props, Error **errp);

/**
 * monitor_track_node: remember a node created by -blockdev or
 * blockdev-add (QEMU's monitor-owned nodes), so that monitor_cleanup()
 * drops its reference at exit.
 * Context: main loop, BQL held.
 */
void monitor_track_node(BlockDriverState *bs);
/** monitor_release_nodes: drop every tracked node's reference (after
 * the machine is gone, before the IOThreads are).  Main loop, BQL. */
void monitor_release_nodes(void);

#endif

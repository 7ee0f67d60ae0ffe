/* SPDX-License-Identifier: MIT */
/*
 * aiolab-storage-daemon - aiolab's block layer served to clients outside
 * the process, with qemu-storage-daemon's command line.
 *
 *   build/bin/aiolab-storage-daemon \
 *       --object iothread,id=io0 \
 *       --blockdev driver=file,node-name=disk0,filename=disk.img,aio=io_uring \
 *       --nbd-server addr.type=unix,addr.path=/tmp/nbd.sock \
 *       --export type=nbd,id=exp0,node-name=disk0,name=disk,writable=on,\
 *iothread=io0 \
 *       --chardev socket,id=qmp0,path=/tmp/qmp.sock,server=on,wait=off \
 *       --monitor chardev=qmp0
 *   qemu-img info 'nbd+unix:///disk?socket=/tmp/nbd.sock'
 *
 * What main() does is qemu-storage-daemon's main(): start the main loop
 * and take the BQL; act on the options in order (any error: a message,
 * exit status 1, sockets removed); run the main loop until SIGINT,
 * SIGTERM, SIGHUP or QMP quit; then close every export (their
 * connections end, their BlockBackends are drained and flushed), cancel
 * block jobs, close the monitor, release the nodes (each flushed as it
 * closes), stop the IOThreads, remove the pidfile.
 * docs/storage-daemon.md is the reference.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "monitor/monitor.h"
#include "tools/sd.h"
#include "tools/tool-main.h"

static bool exit_requested;

/* SIGINT, SIGTERM, SIGHUP (from the main loop: tool_signals_init) and
 * QMP quit. */
static void request_exit(void *opaque)
{
    exit_requested = true;
    qemu_notify_event();
}

static void teardown(void)
{
    if (nbd_server_is_running()) {
        nbd_server_stop(&error_abort);  /* closes the NBD exports too */
    }
    blk_exp_close_all();
    job_cancel_sync_all();
    monitor_cleanup();
    monitor_release_nodes();
    tool_destroy_iothreads();
    tool_signals_cleanup();
    if (sd_pidfile()) {
        unlink(sd_pidfile());
    }
    if (sd_trace_file()) {
        Error *err = NULL;

        if (!aiolab_trace_write_json(sd_trace_file(), 0, &err)) {
            error_report_err(err);
        }
    }
}

int main(int argc, char **argv)
{
    Error *err = NULL;
    bool exit_now;

    aiolab_thread_set_name("main");
    if (qemu_init_main_loop(&err) < 0) {
        error_report_err(err);
        return 1;
    }
    bql_lock();
    /* Signals first: an IOThread started by --object inherits the mask,
     * so only the main thread's signalfd sees them. */
    tool_signals_init((const int[]){ SIGINT, SIGTERM, SIGHUP, 0 },
                      request_exit, NULL);
    monitor_set_quit_handler(request_exit, NULL);
    if (!sd_process_args(argc, argv, &exit_now) || exit_now) {
        teardown();
        bql_unlock();
        return exit_now ? 0 : 1;
    }
    monitor_wait_clients();
    while (!exit_requested) {
        main_loop_wait(false);
    }
    teardown();
    bql_unlock();
    return 0;
}

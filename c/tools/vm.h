/* SPDX-License-Identifier: MIT */
/*
 * tools/vm.h - the pieces of aiolab-vm (c/tools/aiolab-vm.c): option
 * parsing (vm-options.c), -device (vm-device.c) and the final report
 * (vm-report.c).  Not installed.
 */
#ifndef AIOLAB_TOOLS_VM_H
#define AIOLAB_TOOLS_VM_H

#include <stdio.h>
#include <jansson.h>
#include <aiolab/aiolab.h>
#include <aiolab/machine.h>

#define VM_MAX_OPTS 64

/* The command line, checked for shape but not yet acted on. */
typedef struct VmOptions {
    int smp;
    uint64_t ram_size;
    const char *ram_arg;        /* -m's argument, for messages */
    bool json;                  /* -json: the report as JSON */
    bool freeze;                /* -S */
    bool no_shutdown;           /* -no-shutdown */
    const char *trace_file;     /* -trace-file */
    const char *report_file;    /* -report-file: the report there too */
    const char *objects[VM_MAX_OPTS];
    const char *blockdevs[VM_MAX_OPTS];
    const char *devices[VM_MAX_OPTS];
    const char *workloads[VM_MAX_OPTS];
    const char *qmps[VM_MAX_OPTS];
    int n_objects, n_blockdevs, n_devices, n_workloads, n_qmps;
} VmOptions;

/**
 * vm_error: print "aiolab-vm: -OPT ARG: message" (QEMU's error location
 * format) to stderr.  @arg may be NULL.
 */
void vm_error(const char *opt, const char *arg, const char *fmt, ...)
    AIOLAB_PRINTF(3, 4);

/** vm_error_err: vm_error() with @err's message; frees @err. */
void vm_error_err(const char *opt, const char *arg, Error *err);

/**
 * vm_parse_args: read the command line into @o.  Prints the error and
 * returns false on a bad option; sets *@exit_now for --help/--version.
 */
bool vm_parse_args(int argc, char **argv, VmOptions *o, bool *exit_now);

/** vm_usage: the --help text. */
void vm_usage(FILE *f);

/**
 * keyval_to_json: "first,key=value,key2=value2" into a JSON object of
 * strings, the first element without '=' becoming @implied_key (e.g.
 * "qom-type", "driver").  ",," is a literal comma.  Returns: NULL with
 * @errp set.
 */
json_t *keyval_to_json(const char *str, const char *implied_key,
                       Error **errp);

/** vm_add_object: -object iothread,id=...,poll-max-ns=... */
bool vm_add_object(const char *arg, Error **errp);

/** vm_add_blockdev: -blockdev driver=...,node-name=... */
bool vm_add_blockdev(const char *arg, Error **errp);

/**
 * vm_add_device: -device virtio-blk,drive=...,... or the JSON form
 * '{"driver": "virtio-blk", ..., "iothread-vq-mapping": [...]}'.
 * *@what gets the driver name for error locations (static storage).
 */
bool vm_add_device(AiolabMachine *m, const char *arg, const char **what,
                   Error **errp);

/**
 * vm_report: print the final report (human-readable, or JSON with
 * @json) to @f.  Returns: the number of guest-visible errors (verify
 * mismatches, lost requests, broken or failed devices).
 */
int vm_report(AiolabMachine *m, ShutdownCause cause, bool json, FILE *f);

#endif

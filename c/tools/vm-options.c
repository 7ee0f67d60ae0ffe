/* SPDX-License-Identifier: MIT */
/*
 * tools/vm-options.c - aiolab-vm's command line: the option table, the
 * shape checks done before anything is created, keyval strings, and
 * -object / -blockdev.
 *
 * As in QEMU, the whole command line is read first and every object is
 * created afterwards, in a fixed order (IOThreads, nodes, the machine,
 * devices, workloads, monitors), so that a mistake anywhere stops the
 * program before the guest runs: "aiolab-vm: -OPT ARG: message", exit
 * status 1.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "monitor/monitor.h"
#include "tools/opts.h"
#include "tools/vm.h"

void vm_error(const char *opt, const char *arg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    opts_verror("aiolab-vm", opt, arg, fmt, ap);
    va_end(ap);
}

void vm_error_err(const char *opt, const char *arg, Error *err)
{
    vm_error(opt, arg, "%s", error_get_pretty(err));
    error_free(err);
}

void vm_usage(FILE *f)
{
    fputs(
"usage: aiolab-vm [options]\n"
"\n"
"The toy machine: vCPU threads running a virtio-blk guest driver against\n"
"QEMU 9.0's device model, in the main loop or in IOThreads.\n"
"\n"
"Machine:\n"
"  -smp N               vCPUs (1)\n"
"  -m SIZE              guest RAM, MiB or with a K/M/G suffix (128M)\n"
"  -S                   do not start the vCPUs (QMP 'cont' does)\n"
"  -no-shutdown         stop instead of exiting when the guest is done\n"
"Objects and devices:\n"
"  -object iothread,id=ID[,poll-max-ns=NS][,poll-grow=N][,poll-shrink=N]\n"
"          [,aio-max-batch=N][,thread-pool-min=N][,thread-pool-max=N]\n"
"  -blockdev driver=file|null-co|blkdebug,node-name=NAME,...\n"
"  -device virtio-blk,drive=NODE[,id=ID][,iothread=ID][,num-queues=N]\n"
"          [,queue-size=N][,ioeventfd=on|off][,serial=S][,werror=ACTION]\n"
"          [,rerror=ACTION][,request-merging=on|off][,logical_block_size=N]\n"
"  -device '{\"driver\":\"virtio-blk\",\"drive\":NODE,\"iothread-vq-mapping\":\n"
"          [{\"iothread\":\"io0\",\"vqs\":[0,2]},...]}'    (ACTION: report,\n"
"          ignore, enospc, stop, auto)\n"
"The guest:\n"
"  -workload vcpu=N,rw=randread|randwrite|randrw|seqwrite|seqread|verify,\n"
"          bs=SIZE,iodepth=N,runtime=SEC|count=N[,device=ID][,queue=N]\n"
"          [,offset=SIZE][,size=SIZE][,rwmixread=PCT][,seed=N][,poll=US|always]\n"
"          [,timeout=SEC][,malformed=N]\n"
"  -workload vcpu=N,mmio-hold=US[,mmio-period=US][,runtime=SEC|count=N]\n"
"          a vCPU that holds the BQL for US per exit, sleeping\n"
"Output and control:\n"
"  -qmp unix:PATH,server=on[,wait=off]   a QMP monitor\n"
"  -trace-file PATH     Perfetto/Chrome trace of the whole run\n"
"  -json                the final report as JSON on stdout\n"
"  -report-file PATH    also write the report to PATH\n"
"  -h, --help, --version\n"
"\n"
"Exit status: 0; 1 bad command line or start-up error; 2 the guest saw\n"
"errors (verify mismatches, lost requests, a broken device).\n"
"See docs/machine.md.\n", f);
}

/* --- keyval ------------------------------------------------------------ */

/* A key given twice: the last one counts, as in QEMU's QemuOpts. */
json_t *keyval_to_json(const char *str, const char *implied_key,
                       Error **errp)
{
    return opts_keyval(str, implied_key, false, errp);
}

/* --- sizes and numbers --------------------------------------------------- */

/* QEMU's qemu_strtosz with a default unit (for -m: MiB). */
static bool parse_size_unit(const char *s, uint64_t unit, uint64_t *out)
{
    char *end;
    double d;

    errno = 0;
    d = strtod(s, &end);
    if (end == s || errno || d < 0) {
        return false;
    }
    switch (*end) {
    case 'b': case 'B': unit = 1; end++; break;
    case 'k': case 'K': unit = 1ull << 10; end++; break;
    case 'm': case 'M': unit = 1ull << 20; end++; break;
    case 'g': case 'G': unit = 1ull << 30; end++; break;
    case 't': case 'T': unit = 1ull << 40; end++; break;
    }
    if (*end || d * unit >= 18446744073709551615.0) {
        return false;
    }
    *out = (uint64_t)(d * unit);
    return true;
}

static bool parse_smp(const char *arg, int *smp)
{
    const char *v = strncmp(arg, "cpus=", 5) ? arg : arg + 5;
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (end == v || *end || errno) {
        vm_error("-smp", arg, "Parameter 'cpus' expects a number");
        return false;
    }
    if (n < 1) {
        vm_error("-smp", arg, "Invalid CPU topology: CPU topology parameters "
                 "must be greater than zero");
        return false;
    }
    if (n > 64) {
        vm_error("-smp", arg, "Invalid SMP CPUs %ld. The max CPUs supported "
                 "by machine 'aiolab' is 64", n);
        return false;
    }
    *smp = n;
    return true;
}

static bool parse_mem(const char *arg, uint64_t *size)
{
    const char *v = strncmp(arg, "size=", 5) ? arg : arg + 5;

    if (!parse_size_unit(v, 1ull << 20, size)) {
        vm_error("-m", arg, "Parameter 'size' expects a non-negative number "
                 "below 2^64");
        return false;
    }
    if (*size < (1ull << 20) || *size % 4096) {
        vm_error("-m", arg, "guest RAM must be at least 1M and a multiple of "
                 "4K");
        return false;
    }
    return true;
}

/* --- the option table --------------------------------------------------- */

static bool push(const char **list, int *n, const char *opt, const char *arg)
{
    if (*n == VM_MAX_OPTS) {
        vm_error(opt, arg, "too many %s options (at most %d)", opt,
                 VM_MAX_OPTS);
        return false;
    }
    list[(*n)++] = arg;
    return true;
}

bool vm_parse_args(int argc, char **argv, VmOptions *o, bool *exit_now)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->smp = 1;
    o->ram_size = 128ull << 20;
    o->ram_arg = "128M";
    *exit_now = false;
    for (i = 1; i < argc; i++) {
        const char *opt = argv[i], *arg = NULL;
        const char *name = opt[0] == '-' && opt[1] == '-' ? opt + 1 : opt;
        static const char *const with_arg[] = {
            "-smp", "-m", "-object", "-blockdev", "-device", "-workload",
            "-qmp", "-trace-file", "-report-file", NULL,
        };
        int k;

        if (!strcmp(name, "-h") || !strcmp(name, "-help")) {
            vm_usage(stdout);
            *exit_now = true;
            return true;
        }
        if (!strcmp(name, "-version")) {
            printf("aiolab-vm %s (a model of QEMU 9.0's event loops)\n",
                   AIOLAB_VERSION);
            *exit_now = true;
            return true;
        }
        for (k = 0; with_arg[k] && strcmp(with_arg[k], name); k++) {
            /* find it */
        }
        if (with_arg[k]) {
            if (i + 1 >= argc) {
                vm_error(opt, NULL, "requires an argument");
                return false;
            }
            arg = argv[++i];
        }
        if (!strcmp(name, "-smp")) {
            if (!parse_smp(arg, &o->smp)) {
                return false;
            }
        } else if (!strcmp(name, "-m")) {
            if (!parse_mem(arg, &o->ram_size)) {
                return false;
            }
            o->ram_arg = arg;
        } else if (!strcmp(name, "-object")) {
            if (!push(o->objects, &o->n_objects, name, arg)) {
                return false;
            }
        } else if (!strcmp(name, "-blockdev")) {
            if (!push(o->blockdevs, &o->n_blockdevs, name, arg)) {
                return false;
            }
        } else if (!strcmp(name, "-device")) {
            if (!push(o->devices, &o->n_devices, name, arg)) {
                return false;
            }
        } else if (!strcmp(name, "-workload")) {
            if (!push(o->workloads, &o->n_workloads, name, arg)) {
                return false;
            }
        } else if (!strcmp(name, "-qmp")) {
            if (!push(o->qmps, &o->n_qmps, name, arg)) {
                return false;
            }
        } else if (!strcmp(name, "-trace-file")) {
            o->trace_file = arg;
        } else if (!strcmp(name, "-report-file")) {
            o->report_file = arg;
        } else if (!strcmp(name, "-json")) {
            o->json = true;
        } else if (!strcmp(name, "-S")) {
            o->freeze = true;
        } else if (!strcmp(name, "-no-shutdown")) {
            o->no_shutdown = true;
        } else {
            vm_error(opt, NULL, "invalid option");
            return false;
        }
    }
    return true;
}

/* --- -object, -blockdev (opts.c) ------------------------------------------ */

bool vm_add_object(const char *arg, Error **errp)
{
    json_t *kv = keyval_to_json(arg, "qom-type", errp);
    bool ok = opts_add_iothread(kv, errp);

    json_decref(kv);
    return ok;
}

/* The node is opened from @arg itself, not from the parsed keys. */
bool vm_add_blockdev(const char *arg, Error **errp)
{
    json_t *kv = keyval_to_json(arg, NULL, errp);
    bool ok = opts_add_blockdev(kv, arg, errp);

    json_decref(kv);
    return ok;
}

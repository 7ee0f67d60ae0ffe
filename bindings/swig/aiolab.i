/* SPDX-License-Identifier: MIT */
/*
 * bindings/swig/aiolab.i - the SWIG low-level module, aiolab.aiolab_swig.
 *
 * The declarations are the same cdef files the cffi module uses (one per C
 * header).  Built with -threads: every call releases the GIL, so a blocking
 * aio_poll() does not stop other Python threads, and a callback from an
 * IOThread can take the GIL (without -threads it would deadlock).
 *
 * Callbacks go through the small C trampolines below: the opaque pointer
 * is a Python object (a new reference from aiolab_swig_handle_new()), and
 * the trampoline takes the GIL and calls it.
 */
%module(threads="1") aiolab_swig

%{
#include <stdlib.h>
#include <aiolab/aiolab.h>
typedef void AioContextAttachedFn(AioContext *new_context, void *opaque);
typedef void AioContextDetachFn(void *opaque);
%}

%include <stdint.i>
%include <cpointer.i>
%include <carrays.i>

/* Handle management runs with the GIL held (it touches refcounts). */
%nothread aiolab_swig_handle_new;
%nothread aiolab_swig_handle_free;
%nothread aiolab_swig_set_notifier_dispatch;
%nothread aiolab_swig_read_mem;
%nothread aiolab_swig_write_mem;

%{
/* Report an exception that escaped a callback (the aiolab package's own
 * wrappers catch everything; this is the last line of defence).  A
 * KeyboardInterrupt gets here when Python runs its SIGINT handler as the
 * callback starts: reporting it would lose the Ctrl-C, so it is re-armed
 * for the main thread, which raises it once it is back in Python (this
 * also writes the signal wake-up fd, waking a blocking poll). */
static void aiolab_swig_report(PyObject *callable)
{
    if (!PyErr_Occurred()) {
        return;
    }
    if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        PyErr_Clear();
        PyErr_SetInterrupt();
        return;
    }
    PyErr_WriteUnraisable(callable);
}

/*
 * Each trampoline holds its own reference to the callable while calling
 * it: the callable may release the handle (a oneshot BH does, when done).
 */
static void aiolab_swig_void_cb(void *opaque)
{
    PyGILState_STATE st = PyGILState_Ensure();
    PyObject *fn = opaque, *r;

    Py_INCREF(fn);
    r = PyObject_CallNoArgs(fn);
    if (r) {
        Py_DECREF(r);
    } else {
        aiolab_swig_report(fn);
    }
    Py_DECREF(fn);
    PyGILState_Release(st);
}

static bool aiolab_swig_bool_cb(void *opaque)
{
    PyGILState_STATE st = PyGILState_Ensure();
    PyObject *fn = opaque, *r;
    bool ret = false;

    Py_INCREF(fn);
    r = PyObject_CallNoArgs(fn);
    if (r) {
        ret = PyObject_IsTrue(r) == 1;
        Py_DECREF(r);
    } else {
        aiolab_swig_report(fn);
    }
    Py_DECREF(fn);
    PyGILState_Release(st);
    return ret;
}

static int aiolab_swig_int_cb(void *opaque)
{
    PyGILState_STATE st = PyGILState_Ensure();
    PyObject *fn = opaque, *r;
    int ret = -1;

    Py_INCREF(fn);
    r = PyObject_CallNoArgs(fn);
    if (r) {
        ret = (int)PyLong_AsLong(r);
        if (PyErr_Occurred()) {
            aiolab_swig_report(fn);
            ret = -1;
        }
        Py_DECREF(r);
    } else {
        aiolab_swig_report(fn);
    }
    Py_DECREF(fn);
    PyGILState_Release(st);
    return ret;
}

static void aiolab_swig_completion_cb(void *opaque, int ret)
{
    PyGILState_STATE st = PyGILState_Ensure();
    PyObject *fn = opaque, *r;

    Py_INCREF(fn);
    r = PyObject_CallFunction(fn, "i", ret);
    if (r) {
        Py_DECREF(r);
    } else {
        aiolab_swig_report(fn);
    }
    Py_DECREF(fn);
    PyGILState_Release(st);
}

/* fd handlers: one opaque for all four callbacks; call it with the role
 * (the numbers are aiolab/_backend.py's READ, WRITE, POLL, POLL_READY). */
static bool aiolab_swig_fd(void *opaque, int role)
{
    PyGILState_STATE st = PyGILState_Ensure();
    PyObject *fn = opaque, *r;
    bool ret = false;

    Py_INCREF(fn);
    r = PyObject_CallFunction(fn, "i", role);
    if (r) {
        ret = PyObject_IsTrue(r) == 1;
        Py_DECREF(r);
    } else {
        aiolab_swig_report(fn);
    }
    Py_DECREF(fn);
    PyGILState_Release(st);
    return ret;
}

static void aiolab_swig_fd_read_cb(void *opaque)
{
    aiolab_swig_fd(opaque, 0);
}

static void aiolab_swig_fd_write_cb(void *opaque)
{
    aiolab_swig_fd(opaque, 5);
}

static bool aiolab_swig_fd_poll_cb(void *opaque)
{
    return aiolab_swig_fd(opaque, 1);
}

static void aiolab_swig_fd_poll_ready_cb(void *opaque)
{
    aiolab_swig_fd(opaque, 2);
}

/* An AioContext notifier's "attached" callback: fn(address of ctx); its
 * "detach" one goes through aiolab_swig_void_cb: fn(). */
static void aiolab_swig_attached_cb(AioContext *ctx, void *opaque)
{
    PyGILState_STATE st = PyGILState_Ensure();
    PyObject *fn = opaque, *r;

    Py_INCREF(fn);
    r = PyObject_CallFunction(fn, "K", (unsigned long long)(uintptr_t)ctx);
    if (r) {
        Py_DECREF(r);
    } else {
        aiolab_swig_report(fn);
    }
    Py_DECREF(fn);
    PyGILState_Release(st);
}

/* BlockDevOps whose callbacks are the fd-role trampolines (drained_begin
 * READ, drained_end WRITE, drained_poll POLL, resize_cb POLL_READY). */
static BlockDevOps *aiolab_swig_devops_new(void)
{
    BlockDevOps *ops = calloc(1, sizeof(*ops));

    ops->drained_begin = aiolab_swig_fd_read_cb;
    ops->drained_end = aiolab_swig_fd_write_cb;
    ops->drained_poll = aiolab_swig_fd_poll_cb;
    ops->resize_cb = aiolab_swig_fd_poll_ready_cb;
    return ops;
}

static void aiolab_swig_devops_free(BlockDevOps *ops)
{
    free(ops);
}

static void *aiolab_swig_malloc(size_t n)
{
    return calloc(1, n ? n : 1);
}

static void aiolab_swig_free(void *p)
{
    free(p);
}

/* Copy between Python bytes and C memory. */
static PyObject *aiolab_swig_read_mem(void *p, size_t n)
{
    return PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
}

static void aiolab_swig_write_mem(void *p, PyObject *data)
{
    char *buf;
    Py_ssize_t len;

    if (PyBytes_AsStringAndSize(data, &buf, &len) == 0) {
        memcpy(p, buf, (size_t)len);
    }
}

/* EventNotifier callbacks get the notifier, not an opaque: the package
 * registers one dispatcher that maps (address, role) to Python. */
static PyObject *notifier_dispatch;

static bool aiolab_swig_notifier(EventNotifier *e, int role)
{
    PyGILState_STATE st = PyGILState_Ensure();
    PyObject *r = NULL;
    bool ret = false;

    if (notifier_dispatch) {
        Py_INCREF(notifier_dispatch);
        r = PyObject_CallFunction(notifier_dispatch, "Ki",
                                  (unsigned long long)(uintptr_t)e, role);
        if (r) {
            ret = PyObject_IsTrue(r) == 1;
            Py_DECREF(r);
        } else {
            aiolab_swig_report(notifier_dispatch);
        }
        Py_DECREF(notifier_dispatch);
    }
    PyGILState_Release(st);
    return ret;
}

static void aiolab_swig_notifier_read_cb(EventNotifier *e)
{
    aiolab_swig_notifier(e, 0);
}

static bool aiolab_swig_notifier_poll_cb(void *e)
{
    return aiolab_swig_notifier(e, 1);
}

static void aiolab_swig_notifier_poll_ready_cb(EventNotifier *e)
{
    aiolab_swig_notifier(e, 2);
}

static void aiolab_swig_notifier_poll_begin_cb(EventNotifier *e)
{
    aiolab_swig_notifier(e, 3);
}

static void aiolab_swig_notifier_poll_end_cb(EventNotifier *e)
{
    aiolab_swig_notifier(e, 4);
}

/* A job event listener: fn(the event's fields as a tuple, in the order
 * of aiolab/_backend.py's JOB_EVENT_FIELDS). */
static void aiolab_swig_job_event_cb(const AiolabJobEvent *ev, void *opaque)
{
    PyGILState_STATE st = PyGILState_Ensure();
    PyObject *fn = opaque, *r;

    Py_INCREF(fn);
    r = PyObject_CallFunction(fn, "((issiLLLisOi))", (int)ev->type, ev->id,
                              ev->job_type, (int)ev->status,
                              (long long)ev->len, (long long)ev->offset,
                              (long long)ev->speed, ev->ret, ev->error,
                              ev->is_read ? Py_True : Py_False,
                              (int)ev->action);
    if (r) {
        Py_DECREF(r);
    } else {
        aiolab_swig_report(fn);
    }
    Py_DECREF(fn);
    PyGILState_Release(st);
}

static void *aiolab_swig_handle_new(PyObject *obj)
{
    Py_INCREF(obj);
    return obj;
}

static void aiolab_swig_handle_free(void *handle)
{
    Py_XDECREF((PyObject *)handle);
}

static void aiolab_swig_set_notifier_dispatch(PyObject *fn)
{
    Py_XINCREF(fn);
    Py_XDECREF(notifier_dispatch);
    notifier_dispatch = fn;
}

static unsigned long long aiolab_swig_addr(void *p)
{
    return (unsigned long long)(uintptr_t)p;
}

/* Trace names must outlive the trace; SWIG's argument strings are
 * temporaries, so intern them first. */
static void aiolab_swig_trace(int phase, const char *name, int64_t arg)
{
    const char *n = aiolab_intern_string(name);

    if (phase == 'B') {
        aiolab_trace_begin(n, arg);
    } else if (phase == 'E') {
        aiolab_trace_end(n, arg);
    } else {
        aiolab_trace_mark(n, arg);
    }
}

/* aiolab_rule_check with its buffer made here: NULL, or the message. */
static char *aiolab_swig_rule_check(int rule, const char *func, void *ctx)
{
    char buf[512];

    if (aiolab_rule_check(rule, func, ctx, buf, sizeof(buf))) {
        return NULL;
    }
    return strdup(buf);
}
%}

%newobject aiolab_swig_rule_check;
%newobject iothread_get_id;

%constant void (*AIOLAB_SWIG_VOID_CB)(void *) = aiolab_swig_void_cb;
%constant bool (*AIOLAB_SWIG_BOOL_CB)(void *) = aiolab_swig_bool_cb;
%constant int (*AIOLAB_SWIG_INT_CB)(void *) = aiolab_swig_int_cb;
%constant void (*AIOLAB_SWIG_COMPLETION_CB)(void *, int) =
    aiolab_swig_completion_cb;
%constant void (*AIOLAB_SWIG_FD_READ_CB)(void *) = aiolab_swig_fd_read_cb;
%constant void (*AIOLAB_SWIG_FD_WRITE_CB)(void *) = aiolab_swig_fd_write_cb;
%constant bool (*AIOLAB_SWIG_FD_POLL_CB)(void *) = aiolab_swig_fd_poll_cb;
%constant void (*AIOLAB_SWIG_FD_POLL_READY_CB)(void *) =
    aiolab_swig_fd_poll_ready_cb;
%constant void (*AIOLAB_SWIG_ATTACHED_CB)(AioContext *, void *) =
    aiolab_swig_attached_cb;
%constant void (*AIOLAB_SWIG_NOTIFIER_READ_CB)(EventNotifier *) =
    aiolab_swig_notifier_read_cb;
%constant bool (*AIOLAB_SWIG_NOTIFIER_POLL_CB)(void *) =
    aiolab_swig_notifier_poll_cb;
%constant void (*AIOLAB_SWIG_NOTIFIER_POLL_READY_CB)(EventNotifier *) =
    aiolab_swig_notifier_poll_ready_cb;
%constant void (*AIOLAB_SWIG_NOTIFIER_POLL_BEGIN_CB)(EventNotifier *) =
    aiolab_swig_notifier_poll_begin_cb;
%constant void (*AIOLAB_SWIG_NOTIFIER_POLL_END_CB)(EventNotifier *) =
    aiolab_swig_notifier_poll_end_cb;
%constant void (*AIOLAB_SWIG_JOB_EVENT_CB)(const AiolabJobEvent *, void *) =
    aiolab_swig_job_event_cb;
void *aiolab_swig_handle_new(PyObject *obj);
void aiolab_swig_handle_free(void *handle);
void aiolab_swig_set_notifier_dispatch(PyObject *fn);
unsigned long long aiolab_swig_addr(void *p);
char *aiolab_swig_rule_check(int rule, const char *func, void *ctx);
void aiolab_swig_trace(int phase, const char *name, int64_t arg);
BlockDevOps *aiolab_swig_devops_new(void);
void aiolab_swig_devops_free(BlockDevOps *ops);
void *aiolab_swig_malloc(size_t n);
void aiolab_swig_free(void *p);
PyObject *aiolab_swig_read_mem(void *p, size_t n);
void aiolab_swig_write_mem(void *p, PyObject *data);

%pointer_functions(Error *, errorp);
%pointer_functions(int64_t, int64p);
%pointer_functions(uint64_t, uint64p);
%pointer_functions(EventNotifier, notifierp);
%pointer_functions(MemReentrancyGuard, guardp);
%array_functions(AiolabBqlStats, bqlstats_array);
%array_functions(AiolabTraceRecord, tracerecord_array);
%array_functions(AiolabTraceThread, tracethread_array);
%array_functions(AiolabCoroutineInfo, coroutineinfo_array);
%array_functions(IOThread *, iothreadp_array);
%array_functions(BlockDriverState *, bdrvp_array);
%pointer_functions(QEMUIOVector, qiovp);
%pointer_functions(AiolabTestDriverStats, testdrvstatsp);
%array_functions(BlockJobInfo, jobinfo_array);

%include "../cffi/cdefs/error.h"
%include "../cffi/cdefs/event_notifier.h"
%include "../cffi/cdefs/aio.h"
%include "../cffi/cdefs/timer.h"
%include "../cffi/cdefs/main-loop.h"
%include "../cffi/cdefs/iothread.h"
%include "../cffi/cdefs/aio-wait.h"
%include "../cffi/cdefs/coroutine.h"
%include "../cffi/cdefs/thread-pool.h"
%include "../cffi/cdefs/defer-call.h"
%include "../cffi/cdefs/trace.h"
%include "../cffi/cdefs/debug.h"
%include "../cffi/cdefs/iov.h"
%include "../cffi/cdefs/block.h"
%include "../cffi/cdefs/block-backend.h"
%include "../cffi/cdefs/blockjob.h"
%include "hw.i"

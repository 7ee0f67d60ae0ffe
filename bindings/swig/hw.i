/* SPDX-License-Identifier: MIT */
/*
 * bindings/swig/hw.i - the SWIG part for the device layer and the toy
 * machine (aiolab/hw/*.h, aiolab/machine.h), %included at the end of
 * aiolab.i: the same cdef files the cffi module reads, plus what SWIG
 * needs around them - typed arrays and out-parameters, a cast for
 * virtqueue_pop()'s element, owned copies of VirtIOBlkConf's strings, and
 * the machine-event trampoline.
 */

/* Handle management and Python objects: with the GIL held. */
%nothread aiolab_swig_blkconf_new;
%nothread aiolab_swig_blkconf_free;

%{
/*
 * A machine event listener (aiolab_machine_set_event_handler): fn(the
 * event's fields as a tuple: type, cause, device, node_name, is_read,
 * action, error).  Called in the main loop with the BQL held.
 */
static void aiolab_swig_machine_event_cb(void *opaque,
                                         const AiolabMachineEvent *ev)
{
    PyGILState_STATE st = PyGILState_Ensure();
    PyObject *fn = opaque, *r;

    Py_INCREF(fn);
    r = PyObject_CallFunction(fn, "((iissOii))", (int)ev->type,
                              (int)ev->cause, ev->device, ev->node_name,
                              ev->is_read ? Py_True : Py_False,
                              (int)ev->action, ev->error);
    if (r) {
        Py_DECREF(r);
    } else {
        aiolab_swig_report(fn);
    }
    Py_DECREF(fn);
    PyGILState_Release(st);
}

/*
 * VirtIOBlkConf with owned strings.  SWIG's setter for a `const char *`
 * member would malloc a copy that nothing frees; this holder keeps the
 * copies (and the iothread-vq-mapping) and frees them with the conf.
 * The conf is the first member, so the holder's address is the conf's.
 */
typedef struct AiolabSwigBlkConf {
    VirtIOBlkConf conf;
    char *id, *iothread, *serial;
    IOThreadVirtQueueMapping *map;
    char **map_names;
    uint16_t **map_vqs;
    size_t nmap;
} AiolabSwigBlkConf;

static VirtIOBlkConf *aiolab_swig_blkconf_new(void)
{
    AiolabSwigBlkConf *h = calloc(1, sizeof(*h));

    if (h) {
        virtio_blk_conf_init(&h->conf);
    }
    return &h->conf;
}

static void aiolab_swig_blkconf_free(VirtIOBlkConf *c)
{
    AiolabSwigBlkConf *h = (AiolabSwigBlkConf *)c;

    if (!h) {
        return;
    }
    for (size_t i = 0; i < h->nmap; i++) {
        free(h->map_names[i]);
        free(h->map_vqs[i]);
    }
    free(h->map);
    free(h->map_names);
    free(h->map_vqs);
    free(h->id);
    free(h->iothread);
    free(h->serial);
    free(h);
}

/* Set "id", "iothread" or "serial" (NULL clears it).  Returns false for
 * another name or when out of memory. */
static bool aiolab_swig_blkconf_set_str(VirtIOBlkConf *c, const char *field,
                                        const char *value)
{
    AiolabSwigBlkConf *h = (AiolabSwigBlkConf *)c;
    char **slot;
    const char **member;
    char *copy = NULL;

    if (!strcmp(field, "id")) {
        slot = &h->id, member = &c->id;
    } else if (!strcmp(field, "iothread")) {
        slot = &h->iothread, member = &c->iothread;
    } else if (!strcmp(field, "serial")) {
        slot = &h->serial, member = &c->serial;
    } else {
        return false;
    }
    if (value && !(copy = strdup(value))) {
        return false;
    }
    free(*slot);
    *slot = copy;
    *member = copy;
    return true;
}

/* Append an iothread-vq-mapping item: @iothread with @n_vqs vqs from
 * aiolab_swig_blkconf_set_vq(), or without "vqs" when @n_vqs < 0. */
static bool aiolab_swig_blkconf_add_mapping(VirtIOBlkConf *c,
                                            const char *iothread, int n_vqs)
{
    AiolabSwigBlkConf *h = (AiolabSwigBlkConf *)c;
    size_t n = h->nmap + 1;
    IOThreadVirtQueueMapping *map = realloc(h->map, n * sizeof(*map));
    char **names;
    uint16_t **vqs;

    if (!map) {
        return false;
    }
    h->map = map;
    names = realloc(h->map_names, n * sizeof(*names));
    if (!names) {
        return false;
    }
    h->map_names = names;
    vqs = realloc(h->map_vqs, n * sizeof(*vqs));
    if (!vqs) {
        return false;
    }
    h->map_vqs = vqs;
    names[h->nmap] = strdup(iothread);
    vqs[h->nmap] = n_vqs >= 0 ? calloc(n_vqs ? n_vqs : 1, sizeof(uint16_t))
                              : NULL;
    map[h->nmap] = (IOThreadVirtQueueMapping){
        .iothread = names[h->nmap], .vqs = vqs[h->nmap],
        .n_vqs = n_vqs >= 0 ? (size_t)n_vqs : 0,
    };
    h->nmap = n;
    c->iothread_vq_mapping = map;
    c->iothread_vq_mapping_len = n;
    return names[n - 1] != NULL;
}

/* vqs[@i] of the last item added. */
static void aiolab_swig_blkconf_set_vq(VirtIOBlkConf *c, size_t i,
                                       uint16_t vq)
{
    AiolabSwigBlkConf *h = (AiolabSwigBlkConf *)c;

    if (h->nmap && h->map_vqs[h->nmap - 1] && i < h->map[h->nmap - 1].n_vqs) {
        h->map_vqs[h->nmap - 1][i] = vq;
    }
}

/* The last virtio_error() message, malloc'd (SWIG frees it). */
static char *aiolab_swig_virtio_last_error(VirtIODevice *vdev)
{
    size_t n = aiolab_virtio_device_get_last_error(vdev, NULL, 0);
    char *buf = malloc(n + 1);

    if (buf) {
        aiolab_virtio_device_get_last_error(vdev, buf, n + 1);
    }
    return buf;
}

/* virtqueue_pop() returns the element as void *. */
static VirtQueueElement *aiolab_swig_elem(void *p)
{
    return p;
}
%}

%constant void (*AIOLAB_SWIG_MACHINE_EVENT_CB)(void *,
                                               const AiolabMachineEvent *) =
    aiolab_swig_machine_event_cb;
VirtIOBlkConf *aiolab_swig_blkconf_new(void);
void aiolab_swig_blkconf_free(VirtIOBlkConf *c);
bool aiolab_swig_blkconf_set_str(VirtIOBlkConf *c, const char *field,
                                 const char *value);
bool aiolab_swig_blkconf_add_mapping(VirtIOBlkConf *c, const char *iothread,
                                     int n_vqs);
void aiolab_swig_blkconf_set_vq(VirtIOBlkConf *c, size_t i, uint16_t vq);
VirtQueueElement *aiolab_swig_elem(void *p);
%newobject aiolab_swig_virtio_last_error;
char *aiolab_swig_virtio_last_error(VirtIODevice *vdev);

/* Set through aiolab_swig_blkconf_set_str()/_add_mapping() only. */
%immutable VirtIOBlkConf::id;
%immutable VirtIOBlkConf::iothread;
%immutable VirtIOBlkConf::serial;
%immutable VirtIOBlkConf::iothread_vq_mapping;
%immutable VirtIOBlkConf::iothread_vq_mapping_len;

%include "../cffi/cdefs/guest-memory.h"
%include "../cffi/cdefs/virtio.h"
%include "../cffi/cdefs/virtio-blk.h"
%include "../cffi/cdefs/virtio-guest.h"
%include "../cffi/cdefs/machine.h"

%pointer_functions(uint32_t, uint32p);
%pointer_functions(unsigned int, uintp);
%pointer_functions(ShutdownCause, shutdowncausep);
%array_functions(uint64_t, uint64_array);
%array_functions(struct iovec, iovec_array);
%array_functions(GuestMemRegion, memregion_array);
%array_functions(AiolabVringBuf, vringbuf_array);
%array_functions(AiolabThreadCpu, threadcpu_array);

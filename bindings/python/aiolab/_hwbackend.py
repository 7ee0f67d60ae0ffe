# SPDX-License-Identifier: MIT
"""What the device layer and the machine need from the low-level module,
the same on cffi and SWIG: C structs allocated from Python, typed arrays,
out-parameters, VirtIOBlkConf with strings that outlive the call, the
element cast, and the machine-event trampoline.

(aiolab/_backend.py does the same for the core; this file keeps the
device layer's needs apart.)
"""
from ._backend import B, BINDING, lib, raw

# A machine event (AiolabMachineEvent) reaches its Python listener as a
# tuple of these fields, in this order, on either binding.
MACHINE_EVENT_FIELDS = ("type", "cause", "device", "node_name", "is_read",
                        "action", "error")


class _HwCffi:
    def __init__(self):
        ffi = self.ffi = B.ffi

        @ffi.def_extern(onerror=B._onerror)
        def _aiolab_machine_event_cb(opaque, ev):
            ffi.from_handle(opaque)((
                ev.type, ev.cause, B.str(ev.device), B.str(ev.node_name),
                bool(ev.is_read), ev.action, ev.error))

        self.MACHINE_EVENT_CB = lib._aiolab_machine_event_cb

    def new(self, ctype):
        """A zeroed C struct, freed with the returned object."""
        return self.ffi.new(ctype + " *")

    def array(self, ctype, n):
        return self.ffi.new(ctype + "[]", max(n, 1))

    def item(self, arr, ctype, i):
        return arr[i]

    def set_buf(self, arr, i, gpa, length, write):
        arr[i].gpa, arr[i].len, arr[i].write = gpa, length, bool(write)

    def u64(self, p, i):
        """Element i of a C uint64_t array."""
        return p[i]

    def iov(self, p, i):
        """(host address pointer, length) of iovec i of a C array."""
        return p[i].iov_base, p[i].iov_len

    def out(self, ctype):
        return self.ffi.new(ctype + " *")

    def value(self, p, ctype):
        return p[0]

    def elem(self, p):
        return self.ffi.cast("VirtQueueElement *", p)

    def free(self, p):
        lib.free(p)

    def chars(self, field):
        return B.chars(field)

    # --- VirtIOBlkConf: the strings live as long as the conf ------------
    def blkconf_new(self):
        conf = self.ffi.new("VirtIOBlkConf *")
        lib.virtio_blk_conf_init(conf)
        return _CffiBlkConf(self.ffi, conf)

    def last_error(self, vdev):
        n = lib.aiolab_virtio_device_get_last_error(vdev, self.ffi.NULL, 0)
        buf = self.ffi.new("char[]", n + 1)
        lib.aiolab_virtio_device_get_last_error(vdev, buf, n + 1)
        return self.ffi.string(buf).decode(errors="replace")

    def guard_set(self, g, engaged):
        g.engaged_in_io = bool(engaged)

    def hist_buckets(self, h):
        return [(i, h.buckets[i]) for i in range(lib.AIOLAB_LAT_BUCKETS)
                if h.buckets[i]]

    def copy_struct(self, dst, src, ctype):
        self.ffi.memmove(dst, src, self.ffi.sizeof(ctype))


class _CffiBlkConf:
    def __init__(self, ffi, conf):
        self.ffi, self.conf, self._keep, self._map = ffi, conf, [], []

    def set_str(self, field, value):
        if value is None:
            setattr(self.conf, field, self.ffi.NULL)
            return
        s = self.ffi.new("char[]", value.encode())
        self._keep.append(s)
        setattr(self.conf, field, s)

    def set_mapping(self, items):
        """items: [(iothread id, vqs or None)]."""
        arr = self.ffi.new("IOThreadVirtQueueMapping[]", max(len(items), 1))
        for i, (name, vqs) in enumerate(items):
            s = self.ffi.new("char[]", name.encode())
            self._keep.append(s)
            arr[i].iothread = s
            if vqs is not None:
                v = self.ffi.new("uint16_t[]", list(vqs) or [0])
                self._keep.append(v)
                arr[i].vqs, arr[i].n_vqs = v, len(vqs)
        self._keep.append(arr)
        self.conf.iothread_vq_mapping = arr
        self.conf.iothread_vq_mapping_len = len(items)

    def ptr(self):
        return self.conf


class _HwSwig:
    def __init__(self):
        self.MACHINE_EVENT_CB = lib.AIOLAB_SWIG_MACHINE_EVENT_CB

    _ARRAYS = {"AiolabVringBuf": "vringbuf_array",
               "GuestMemRegion": "memregion_array",
               "AiolabThreadCpu": "threadcpu_array",
               "struct iovec": "iovec_array"}
    _OUT = {"uint64_t": "uint64p", "uint32_t": "uint32p",
            "unsigned int": "uintp", "ShutdownCause": "shutdowncausep"}

    def new(self, ctype):
        return getattr(lib, ctype)()        # SWIG owns and frees it

    def array(self, ctype, n):
        from ._backend import _SwigOwned
        name = self._ARRAYS[ctype]
        return _SwigOwned(getattr(lib, "new_" + name)(max(n, 1)),
                          getattr(lib, "delete_" + name))

    def item(self, arr, ctype, i):
        return getattr(lib, self._ARRAYS[ctype] + "_getitem")(raw(arr), i)

    def set_buf(self, arr, i, gpa, length, write):
        b = lib.AiolabVringBuf()
        b.gpa, b.len, b.write = gpa, length, bool(write)
        lib.vringbuf_array_setitem(raw(arr), i, b)

    def u64(self, p, i):
        return lib.uint64_array_getitem(p, i)

    def iov(self, p, i):
        v = lib.iovec_array_getitem(p, i)
        return v.iov_base, v.iov_len

    def out(self, ctype):
        from ._backend import _SwigOwned
        name = self._OUT[ctype]
        p = _SwigOwned(getattr(lib, "new_" + name)(),
                       getattr(lib, "delete_" + name))
        getattr(lib, name + "_assign")(p.ptr, 0)
        return p

    def value(self, p, ctype):
        return getattr(lib, self._OUT[ctype] + "_value")(raw(p))

    def elem(self, p):
        return lib.aiolab_swig_elem(p)

    def free(self, p):
        lib.aiolab_swig_free(p)

    def chars(self, field):
        return field

    def blkconf_new(self):
        return _SwigBlkConf()

    def last_error(self, vdev):
        return lib.aiolab_swig_virtio_last_error(vdev) or ""

    def guard_set(self, g, engaged):
        v = lib.guardp_value(raw(g))
        v.engaged_in_io = bool(engaged)
        lib.guardp_assign(raw(g), v)

    def hist_buckets(self, h):
        b = h.buckets
        out = []
        for i in range(lib.AIOLAB_LAT_BUCKETS):
            v = lib.uint64_array_getitem(b, i)
            if v:
                out.append((i, v))
        return out

    def copy_struct(self, dst, src, ctype):
        lib.aiolab_latency_hist_merge(dst, src)     # dst is zeroed: a copy


class _SwigBlkConf:
    def __init__(self):
        self.conf = lib.aiolab_swig_blkconf_new()

    def set_str(self, field, value):
        if not lib.aiolab_swig_blkconf_set_str(self.conf, field, value):
            raise MemoryError(field)

    def set_mapping(self, items):
        for name, vqs in items:
            n = -1 if vqs is None else len(vqs)
            if not lib.aiolab_swig_blkconf_add_mapping(self.conf, name, n):
                raise MemoryError("iothread-vq-mapping")
            for i, vq in enumerate(vqs or ()):
                lib.aiolab_swig_blkconf_set_vq(self.conf, i, vq)

    def ptr(self):
        return self.conf

    def __del__(self):
        if self.conf is not None:
            lib.aiolab_swig_blkconf_free(self.conf)
            self.conf = None


H = _HwCffi() if BINDING == "cffi" else _HwSwig()

# SPDX-License-Identifier: MIT
"""VirtIOBlkConf from Python keyword arguments (QEMU's -device virtio-blk
properties), shared by VirtIOBlk and Machine.add_virtio_blk, and the QMP
names of AioContexts."""
from ._backend import B, lib
from ._core import Error, check_int, context_for
from ._hwbackend import H
from ._threads import IOThread

U16, U32 = 0xFFFF, 0xFFFFFFFF
_ON_ERROR = {"report": 0, "ignore": 1, "enospc": 2, "stop": 3, "auto": 4}


def _iothread_id(io, what):
    if not isinstance(io, IOThread):
        raise TypeError(f"{what} must be an aiolab.IOThread (the object, "
                        f"not its id), not {type(io).__name__}")
    io._live()
    return io.id


def _mapping(items):
    """iothread_vq_mapping -> ([(id, vqs or None)], [IOThread])."""
    if isinstance(items, (str, bytes, dict)) or not hasattr(items,
                                                            "__iter__"):
        raise TypeError("iothread_vq_mapping must be a list of IOThreads, "
                        "(IOThread, [vqs]) pairs or {'iothread': ..., "
                        "'vqs': [...]} dicts")
    out, used = [], []
    for item in items:
        vqs = None
        if isinstance(item, dict):
            io, vqs = item.get("iothread"), item.get("vqs")
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            io, vqs = item
        else:
            io = item
        name = _iothread_id(io, "an iothread-vq-mapping item's iothread")
        if vqs is not None:
            vqs = [check_int(v, "vq", minimum=0, maximum=U16) for v in vqs]
        out.append((name, vqs))
        used.append(io)
    return out, used


def make_blk_conf(blk_ptr, id=None, iothread=None, iothread_vq_mapping=None,
                  num_queues=1, queue_size=256, logical_block_size=512,
                  physical_block_size=512, request_merging=True,
                  config_wce=True, write_cache=True, discard=True,
                  write_zeroes=True, max_discard_sectors=None,
                  max_write_zeroes_sectors=None, serial=None, ioeventfd=True,
                  rerror="report", werror="enospc"):
    """A VirtIOBlkConf (QEMU's defaults, then these) and the IOThreads it
    names.  Shared by VirtIOBlk and Machine.add_virtio_blk."""
    conf = H.blkconf_new()
    c = conf.ptr()
    if blk_ptr is not None:
        c.blk = blk_ptr
    for name, v in (("id", id), ("serial", serial)):
        if v is not None and not isinstance(v, str):
            raise TypeError(f"{name} must be a str")
        conf.set_str(name, v)
    users = []
    if iothread is not None:
        conf.set_str("iothread", _iothread_id(iothread, "iothread"))
        users.append(iothread)
    if iothread_vq_mapping is not None:
        items, more = _mapping(iothread_vq_mapping)
        conf.set_mapping(items)
        users += more
    c.num_queues = check_int(num_queues, "num_queues", 0, U16)
    c.queue_size = check_int(queue_size, "queue_size", 0, U16)
    c.logical_block_size = check_int(logical_block_size,
                                     "logical_block_size", 0, U32)
    c.physical_block_size = check_int(physical_block_size,
                                      "physical_block_size", 0, U32)
    if max_discard_sectors is not None:
        c.max_discard_sectors = check_int(max_discard_sectors,
                                          "max_discard_sectors", 0, U32)
    if max_write_zeroes_sectors is not None:
        c.max_write_zeroes_sectors = check_int(
            max_write_zeroes_sectors, "max_write_zeroes_sectors", 0, U32)
    c.request_merging = bool(request_merging)
    c.config_wce = bool(config_wce)
    c.write_cache = bool(write_cache)
    c.discard = bool(discard)
    c.write_zeroes = bool(write_zeroes)
    c.ioeventfd = bool(ioeventfd)
    for name, v in (("rerror", rerror), ("werror", werror)):
        if v not in _ON_ERROR:
            raise ValueError(f"{name} must be one of {sorted(_ON_ERROR)}, "
                             f"not {v!r}")
        setattr(c, name, _ON_ERROR[v])
    return conf, users


def context_name(ptr):
    """"main-loop" for the main context, an IOThread's id for its own,
    as QMP names them."""
    if B.is_null(ptr):
        return None
    if B.addr(ptr) == B.addr(lib.qemu_get_aio_context()):
        return "main-loop"
    try:
        ctx = context_for(ptr)
    except Error:
        ctx = None
    if ctx is not None and getattr(ctx, "_iothread", None) is not None:
        return ctx._iothread.id
    return B.str(lib.aiolab_aio_context_get_name(ptr))

# SPDX-License-Identifier: MIT
"""Bad input from the command line, QMP and the guest must be refused
cleanly and change nothing: an option a block driver does not know
(-blockdev, blockdev-add), a virtio-blk num-queues over QEMU's
VIRTIO_QUEUE_MAX, and the order of BLOCK_IO_ERROR and the STOP it
causes."""
import time

from test_qmp import expect_error, finish, vm_with_qmp

LONG = "rw=verify,bs=4096,iodepth=4,runtime=30"


def assert_refused(env, args, msg):
    """aiolab-vm exits 1 with @msg, no abort."""
    rc, out, err = env.run(*args)
    assert rc == 1, (args, rc, err)
    assert msg in err, (args, err)
    assert "aiolab: " not in err and "Aborted" not in err, err


def test_blockdev_unknown_option(env):
    """A driver that refuses an option after opening: the node is closed
    the normal way (drained), exit status 1, QEMU's message."""
    for opts, msg in [
            ("driver=aiolab-test,node-name=t,bogus=1",
             "Block format 'aiolab-test' does not support the option "
             "'bogus'"),
            ("driver=null-co,node-name=t,bogus=1",
             "Block protocol 'null-co' doesn't support the option 'bogus'"),
            (f"driver=file,filename={env.disk},node-name=t,bogus=1",
             "Block protocol 'file' doesn't support the option 'bogus'"),
            ("driver=aiolab-test,file=disk0,node-name=t,bogus=1",
             "Block format 'aiolab-test' does not support the option "
             "'bogus'")]:
        assert_refused(env, [*env.blockdev(), "-blockdev", opts], msg)


def test_blockdev_add_unknown_option(env):
    """blockdev-add with an unknown option over a node a running guest
    uses: an error reply, the graph as it was, the name free again."""
    p, q = vm_with_qmp(env, "-object", "iothread,id=io0", *env.blockdev(),
                       "-device", "virtio-blk,drive=disk0,iothread=io0",
                       "-workload", "vcpu=0," + LONG)
    # the guest's DRIVER_OK moves disk0 into io0: compare after that
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        before = q.execute("query-named-block-nodes")
        if before[0]["x-aio-context"] == "io0":
            break
        time.sleep(0.01)
    assert before[0]["x-aio-context"] == "io0", before
    for args in [{"driver": "aiolab-test", "bogus": 1},
                 {"driver": "aiolab-test", "file": "disk0", "bogus": 1},
                 {"driver": "null-co", "bogus": 1}]:
        expect_error(q, "GenericError", "support the option 'bogus'",
                     "blockdev-add", **{"node-name": "t"}, **args)
        assert q.execute("query-named-block-nodes") == before
    q.execute("blockdev-add", driver="aiolab-test", file="disk0",
              **{"node-name": "t"})
    names = [n["node-name"] for n in q.execute("query-named-block-nodes")]
    assert names == ["disk0", "t"], names
    assert q.execute("query-status")["status"] == "running"
    q.execute("quit")
    rc, report, err = finish(p)
    assert rc == 0, err
    w = report["workloads"][0]
    assert w["verify_errors"] == 0 and w["lost"] == 0, w


def test_num_queues_limit(env):
    """num-queues above VIRTIO_QUEUE_MAX (1024) is a realize error, not
    an abort in virtio_add_queue(); 1024 itself runs."""
    for n in (1025, 2000, 65534):
        assert_refused(env, [*env.blockdev(), "-device",
                             f"virtio-blk,drive=disk0,num-queues={n}"],
                       f"invalid num-queues property ({n}), must be at "
                       "most 1024")
    assert_refused(env, [*env.blockdev(), "-device",
                         '{"driver": "virtio-blk", "drive": "disk0", '
                         '"num-queues": 1025}'],
                   "invalid num-queues property (1025)")
    rc, report, err = env.run_json(*env.blockdev(), "-device",
                                   "virtio-blk,drive=disk0,num-queues=1024",
                                   "-workload", "vcpu=0,rw=verify,count=50")
    assert rc == 0, err
    assert report["devices"][0]["num-queues"] == 1024, report["devices"]
    assert report["workloads"][0]["verify_errors"] == 0

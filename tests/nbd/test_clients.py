# SPDX-License-Identifier: MIT
"""Real NBD clients from Debian against the daemon's NBD export: each
test runs against aiolab-storage-daemon and, as the reference, against
qemu-storage-daemon with the same command line (@reference).  Every
test checks data, not only exit statuses, and the last word is the image
file itself after a SIGTERM shutdown (exit status 0, sockets removed)."""
import json
import os

from server import Skip, file_bytes, make_image, reference, run

MiB = 1 << 20
LIBNBD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "libnbd_client.py")


def stop_clean(d):
    rc, err = d.stop()
    assert rc == 0, f"{d.kind} exited with {rc}: {err}"
    if d.kind == "aiolab":
        # (qemu-storage-daemon 7.2 leaves its sockets behind.)
        assert not os.path.exists(d.nbd_sock), "NBD socket left behind"
        assert not os.path.exists(d.qmp_sock), "QMP socket left behind"
    return err


@reference
def test_qemu_img(env):
    img, src, out = env.path("disk.img"), env.path("src.img"), \
        env.path("out.img")
    make_image(img, 32 * MiB)
    make_image(src, 32 * MiB, seed=1)
    d = env.daemon().start_file(img)
    _, info = run(["qemu-img", "info", "--output=json", d.uri()])
    info = json.loads(info)
    assert info["virtual-size"] == 32 * MiB, info
    assert info["format"] == "raw", info
    run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src,
         d.uri()])
    run(["qemu-img", "compare", "-f", "raw", "-F", "raw", src, d.uri()])
    run(["qemu-img", "convert", "-f", "raw", "-O", "raw", d.uri(), out])
    assert file_bytes(out) == file_bytes(src)
    # Negative control: compare notices a difference (the harness can
    # fail), through the export too.
    with open(out, "r+b") as f:
        f.seek(5 * MiB + 17)
        f.write(b"\xff")
    rc, text = run(["qemu-img", "compare", "-f", "raw", "-F", "raw", out,
                    d.uri()], check=False)
    assert rc == 1 and "mismatch at offset 5242880" in text, (rc, text)
    stop_clean(d)
    assert file_bytes(img) == file_bytes(src)


QEMU_IO_CMDS = [
    "write -P 0x11 0 64k", "write -P 0x22 64k 4k", "write -P 0x33 513 1000",
    "read -P 0x11 0 513", "read -P 0x33 513 1000", "read -P 0x11 1513 1000",
    "read -P 0x22 64k 4k", "write -z 1M 256k", "read -P 0 1M 256k",
    "write -P 0x44 2M 64k", "write -z -u 2M 4k", "read -P 0 2M 4k",
    "read -P 0x44 2052k 60k", "write -f -P 0x55 3M 64k", "read -P 0x55 3M 64k",
    "discard 4M 64k", "flush", "aio_write -P 0x66 5M 4k",
    "aio_write -P 0x67 5124k 4k", "aio_flush", "read -P 0x66 5M 4k",
    "read -P 0x67 5124k 4k", "write -P 0x77 63M 1M", "read -P 0x77 63M 1M",
]


@reference
def test_qemu_io(env):
    img = env.path("disk.img")
    make_image(img, 64 * MiB)
    d = env.daemon().start_file(img)
    args = ["qemu-io", "-f", "raw"]
    for c in QEMU_IO_CMDS:
        args += ["-c", c]
    _, out = run(args + [d.uri()])
    bad = [line for line in out.splitlines()
           if "fail" in line.lower() or "error" in line.lower()]
    assert not bad, out
    lines = out.splitlines()
    writes = sum(c.split()[0] in ("write", "aio_write") for c in QEMU_IO_CMDS)
    reads = sum(c.split()[0] == "read" for c in QEMU_IO_CMDS)
    assert sum(x.startswith("wrote ") for x in lines) == writes, out
    assert sum(x.startswith("read ") for x in lines) == reads, out
    # Negative control: a wrong pattern is noticed.
    _, out = run(["qemu-io", "-f", "raw", "-c", "read -P 0x12 0 4k",
                  d.uri()], check=False)
    assert "Pattern verification failed" in out, out
    stop_clean(d)
    data = file_bytes(img)
    assert data[0:513] == b"\x11" * 513
    assert data[513:1513] == b"\x33" * 1000
    assert data[1 * MiB:1 * MiB + 256 * 1024] == bytes(256 * 1024)
    assert data[3 * MiB:3 * MiB + 65536] == b"\x55" * 65536
    assert data[63 * MiB:] == b"\x77" * MiB


@reference
def test_nbdinfo(env):
    img = env.path("disk.img")
    make_image(img, 8 * MiB)
    d = env.daemon().start(
        ["driver=file,node-name=disk0,filename=" + img],
        ["type=nbd,id=exp0,node-name=disk0,name=disk,writable=on",
         "type=nbd,id=exp1,node-name=disk0,name=ro,description=read only"])
    _, out = run(["nbdinfo", "--json", d.uri()])
    info = json.loads(out)
    assert info["protocol"] == "newstyle-fixed", info
    e = info["exports"][0]
    assert e["export-name"] == "disk" and e["export-size"] == 8 * MiB, e
    for flag in ("can_flush", "can_fua", "can_trim", "can_zero", "can_df"):
        assert e[flag] is True, (flag, e)
    assert e["is_read_only"] is False, e
    assert e["block_size_maximum"] >= 1 << 20, e
    _, out = run(["nbdinfo", "--json", d.uri("ro")])
    e = json.loads(out)["exports"][0]
    assert e["is_read_only"] is True and e["can_multi_conn"] is True, e
    assert e["description"] == "read only", e
    _, out = run(["nbdinfo", "--list", "--json", d.uri()])
    names = sorted(x["export-name"] for x in json.loads(out)["exports"])
    assert names == ["disk", "ro"], names
    _, out = run(["nbdinfo", "--size", d.uri()])
    assert out.strip() == str(8 * MiB), out
    rc, out = run(["nbdinfo", d.uri("nope")], check=False)
    assert rc != 0 and "nope" in out, out
    stop_clean(d)


@reference
def test_nbdcopy(env):
    img, src, out = env.path("disk.img"), env.path("src.img"), \
        env.path("out.img")
    make_image(img, 16 * MiB)
    make_image(src, 16 * MiB, seed=2)
    make_image(out, 16 * MiB)
    d = env.daemon().start(
        ["driver=file,node-name=disk0,filename=" + img],
        ["type=nbd,id=exp0,node-name=disk0,name=disk,writable=on",
         "type=nbd,id=exp1,node-name=disk0,name=ro"])
    run(["nbdcopy", "--flush", src, d.uri()])
    # Four connections at once on the read-only (multi-conn) export.
    run(["nbdcopy", "--connections=4", "--requests=16", d.uri("ro"), out])
    assert file_bytes(out) == file_bytes(src)
    stop_clean(d)
    assert file_bytes(img) == file_bytes(src)


@reference
def test_nbdsh(env):
    if not os.path.exists("/usr/bin/nbdsh"):
        raise Skip("nbdsh (libnbd-bin) is not installed")
    img = env.path("disk.img")
    make_image(img, 8 * MiB)
    d = env.daemon().start(
        ["driver=file,node-name=disk0,filename=" + img],
        ["type=nbd,id=exp0,node-name=disk0,name=disk,writable=on",
         "type=nbd,id=exp1,node-name=disk0,name=ro"])
    # nbdsh runs "python3 -mnbd": Debian's python3, where python3-libnbd
    # is installed, must come first on PATH.
    e = dict(os.environ, NBD_URI=d.uri(), NBD_URI_RO=d.uri("ro"),
             NBD_SERVER=d.kind,
             PATH="/usr/bin:" + os.environ.get("PATH", ""))
    _, out = run(["nbdsh", "-c", f"exec(open({LIBNBD_SCRIPT!r}).read())"],
                 env=e, timeout=120)
    assert "libnbd client: all checks passed" in out, out
    stop_clean(d)
    data = file_bytes(img)
    # The script leaves a known pattern: four handles, one stripe each.
    for i in range(4):
        assert data[i * MiB:(i + 1) * MiB] == bytes([0xa0 + i]) * MiB, i


@reference
def test_fio_verify(env):
    img = env.path("disk.img")
    make_image(img, 16 * MiB)
    d = env.daemon().start_file(img)
    _, out = run(["fio", "--name=verify", "--ioengine=nbd", "--uri=" +
                  d.uri(), "--rw=randwrite", "--bs=4k", "--size=16M",
                  "--iodepth=32", "--verify=crc32c", "--do_verify=1",
                  "--verify_fatal=1", "--verify_state_save=0",
                  "--randrepeat=0", "--output-format=json"],
                 timeout=120)
    res = json.loads(out[out.index("{"):])
    job = res["jobs"][0]
    assert job["error"] == 0, job
    assert job["write"]["total_ios"] == 4096, job["write"]
    assert job["read"]["total_ios"] == 4096, job["read"]  # the verify pass
    stop_clean(d)


@reference
def test_iothread_export(env):
    """The export in an IOThread, its file on io_uring (threads where the
    kernel refuses), with O_DIRECT: a verified fio run and qemu-io."""
    if env.kind == "qsd":
        raise Skip("qemu-storage-daemon 7.2 aborts when a client of an "
                   "IOThread export disconnects (blockdev-nbd.c: "
                   "nbd_blockdev_client_closed: Assertion "
                   "`qemu_in_main_thread() && nbd_server' failed)")
    img = env.path("disk.img")
    make_image(img, 16 * MiB)
    d = env.daemon().start_file(img, node_opts=",cache.direct=on,aio=io_uring",
                                extra_export=",iothread=io0",
                                objects=["iothread,id=io0"])
    _, out = run(["fio", "--name=verify", "--ioengine=nbd", "--uri=" +
                  d.uri(), "--rw=randwrite", "--bs=4k", "--size=8M",
                  "--iodepth=16", "--verify=crc32c", "--do_verify=1",
                  "--verify_fatal=1", "--verify_state_save=0",
                  "--output-format=json"], timeout=120)
    job = json.loads(out[out.index("{"):])["jobs"][0]
    assert job["error"] == 0 and job["read"]["total_ios"] == 2048, job
    _, out = run(["qemu-io", "-f", "raw", "-c", "write -P 0x5a 4097 3000",
                  "-c", "read -P 0x5a 4097 3000", d.uri()])
    assert "fail" not in out.lower(), out
    stop_clean(d)
    assert file_bytes(img)[4097:7097] == b"\x5a" * 3000

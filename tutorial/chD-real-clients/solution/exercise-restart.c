/* cc -Ic/include tutorial/chD-real-clients/solution/exercise-restart.c -o build/exercise-restart-solution -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chD-real-clients/exercise-restart.c - stop a ring and start it again,
 * as QEMU does when a VM is paused and resumed, or migrated.
 *
 * While a vhost-user ring runs, its position (the next avail entry to
 * take) lives in the back-end, not in QEMU.  GET_VRING_BASE stops the
 * ring and hands the position back; SET_VRING_BASE tells a back-end
 * where to start.  The guest knows nothing of either: to it, the ring
 * simply goes on.
 *
 * The "qemu" thread writes 0x5a to block 0 and reads it back, stops the
 * ring, lets the guest reuse the write's data page for something else,
 * restarts the ring with ring_restart() and sends one more read.  The
 * checks want the disk untouched by the restart and exactly one request
 * handled after it.  This is the solution.
 *
 *     /usr/bin/python3 tutorial/check.py -k exercise-restart -v
 */
#include "../../tutorial.h"
#include "../vu-wire.h"
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <aiolab/aiolab.h>
#include <aiolab/export.h>

#define RAM_SIZE (1 << 20)
#define QSIZE    16
#define SOCK     "exercise-restart.sock"
#define IMAGE    "exercise-restart.img"


typedef struct Front {
    int sock;
    GuestMemory *mem;
    uint8_t *ram;
    AiolabVring vr;
    uint64_t desc, avail, used;     /* the ring's guest addresses */
    int kick, call;
    uint32_t base;                  /* what GET_VRING_BASE answered */
    uint32_t base_after;            /* ... after the restart */
    uint8_t status[3];              /* write, read, read after restart */
    uint8_t read_back[2];           /* first byte of each read */
    bool done;                      /* atomic */
} Front;

/* Start ring 0 at avail index @base (QEMU: vhost_virtqueue_start()). */
static void ring_start(Front *f, uint32_t base)
{
    struct {
        uint32_t index, flags;
        uint64_t desc, used, avail, log;
    } ring = { 0, 0, (uintptr_t)f->ram + f->desc, (uintptr_t)f->ram + f->used,
               (uintptr_t)f->ram + f->avail, 0 };

    send_state(f->sock, SET_VRING_NUM, VERSION, 0, QSIZE);
    send_state(f->sock, SET_VRING_BASE, VERSION, 0, base);
    send_msg(f->sock, SET_VRING_ADDR, VERSION, &ring, sizeof(ring), -1);
    send_u64(f->sock, SET_VRING_KICK, 0, f->kick);
    send_u64(f->sock, SET_VRING_CALL, 0, f->call);
    send_state(f->sock, SET_VRING_ENABLE, VERSION | NEED_REPLY, 0, 1);
    if (recv_u64(f->sock) != 0) {
        printf("SET_VRING_ENABLE failed\n");
        exit(1);
    }
}

/* Stop ring 0: the back-end finishes what it popped and answers with
 * the next avail index it would have taken (vhost_virtqueue_stop()). */
static uint32_t ring_stop(Front *f)
{
    send_state(f->sock, GET_VRING_BASE, VERSION, 0, 0);
    return (uint32_t)(recv_u64(f->sock) >> 32);   /* { index, num }: num */
}

/* [region: exercise] */
/*
 * SOLUTION: the VM resumes where it paused: the back-end goes on from
 * the index it gave back at the stop.  Base 0 made it take the two old
 * requests again, and the old write carried whatever its page held now.
 */
static void ring_restart(Front *f)
{
    ring_start(f, f->base);
}
/* [endregion] */

static void frontend_setup(Front *f)
{
    GuestMemRegion r;
    struct __attribute__((packed)) {
        uint32_t nregions, padding;
        uint64_t gpa, size, uaddr, mmap_offset;
    } table;

    send_msg(f->sock, GET_FEATURES, VERSION, NULL, 0, -1);
    recv_u64(f->sock);
    send_msg(f->sock, GET_PROTOCOL_FEATURES, VERSION, NULL, 0, -1);
    send_u64(f->sock, SET_PROTOCOL_FEATURES,
             recv_u64(f->sock) & PF_REPLY_ACK, -1);
    send_msg(f->sock, SET_OWNER, VERSION, NULL, 0, -1);
    send_u64(f->sock, SET_FEATURES, (1ull << VIRTIO_F_VERSION_1) |
             (1ull << VIRTIO_BLK_F_FLUSH) | F_PROTOCOL_FEATURES, -1);
    aiolab_guest_mem_get_regions(f->mem, &r, 1);
    table = (typeof(table)) { 1, 0, 0, r.size, (uintptr_t)f->ram, 0 };
    send_msg(f->sock, SET_MEM_TABLE, VERSION, &table, sizeof(table), r.fd);
    aiolab_vring_layout(QSIZE, 0x1000, &f->desc, &f->avail, &f->used);
    aiolab_vring_init(&f->vr, f->mem, QSIZE, f->desc, f->avail, f->used,
                      false);
    ring_start(f, 0);           /* a fresh ring starts at 0 */
}

/* Request number @k: its header and status byte in their own slot, 4 KiB
 * of data at @data.  Waits for the status byte, not for a used entry. */
static uint8_t guest_request(Front *f, int k, uint32_t type, uint64_t data)
{
    uint64_t hdr = 0x8000 + 0x100 * k, status = hdr + 0x10;
    AiolabVringBuf bufs[3] = {
        { hdr, 16, false },
        { data, 4096, type == VIRTIO_BLK_T_IN },
        { status, 1, true },
    };
    struct pollfd p = { .fd = f->call, .events = POLLIN };
    uint64_t n;

    stl_le_p(f->ram + hdr, type);
    stq_le_p(f->ram + hdr + 8, 0);              /* sector 0 */
    f->ram[status] = 0xee;
    aiolab_vring_add_chain(&f->vr, bufs, 3);
    eventfd_write(f->kick, 1);
    while (__atomic_load_n(&f->ram[status], __ATOMIC_ACQUIRE) == 0xee) {
        if (poll(&p, 1, 5000) != 1) {
            printf("no interrupt within 5 s\n");
            exit(1);
        }
        eventfd_read(f->call, &n);
    }
    return f->ram[status];
}

static void *frontend(void *opaque)
{
    Front *f = opaque;
    struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = SOCK };

    aiolab_thread_set_name("qemu");
    f->sock = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(f->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("connect");
        exit(1);
    }
    frontend_setup(f);
    memset(f->ram + 0x10000, 0x5a, 4096);
    f->status[0] = guest_request(f, 0, VIRTIO_BLK_T_OUT, 0x10000);
    f->status[1] = guest_request(f, 1, VIRTIO_BLK_T_IN, 0x20000);
    f->read_back[0] = f->ram[0x20000];
    f->base = ring_stop(f);                     /* the VM pauses */
    /* The write finished long ago: its page holds something else now. */
    memset(f->ram + 0x10000, 0, 4096);
    aiolab_trace_mark("restart", 0);           /* for the checks */
    ring_restart(f);                            /* the VM resumes */
    f->status[2] = guest_request(f, 2, VIRTIO_BLK_T_IN, 0x30000);
    f->read_back[1] = f->ram[0x30000];
    f->base_after = ring_stop(f);
    close(f->sock);
    __atomic_store_n(&f->done, true, __ATOMIC_RELEASE);
    qemu_notify_event();
    return NULL;
}

int main(void)
{
    static AiolabTraceRecord rec[1 << 16];
    Front f = { 0 };
    IOThread *io;
    pthread_t th;
    size_t n;
    int after = 0;
    uint8_t block[4096];
    FILE *img;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    aiolab_trace_set_enabled(true);
    io = iothread_create("io0", &error_abort);
    img = tut_scratch_image(IMAGE, 1 << 20);
    if (!img) {
        return 1;
    }
    bdrv_open(NULL, NULL, "driver=file,node-name=disk0,filename=" IMAGE,
              BDRV_O_RDWR, &error_abort);
    blk_exp_add("type=vhost-user-blk,id=exp0,node-name=disk0,"
                "addr.type=unix,addr.path=" SOCK ",writable=on,"
                "iothread=io0", &error_abort);
    f.mem = aiolab_guest_mem_new();
    f.ram = aiolab_guest_mem_add_ram(f.mem, 0, RAM_SIZE, "qemu-ram",
                                     &error_abort);
    f.kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    f.call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_create(&th, NULL, frontend, &f);
    while (!__atomic_load_n(&f.done, __ATOMIC_ACQUIRE)) {
        main_loop_wait(false);
    }
    pthread_join(th, NULL);
    blk_exp_close_all();

    CHECK("before the stop: the write and the read complete, the read "
          "returns 0x5a", f.status[0] == VIRTIO_BLK_S_OK &&
          f.status[1] == VIRTIO_BLK_S_OK && f.read_back[0] == 0x5a);
    CHECK_EQ("GET_VRING_BASE answers 2 at the stop", f.base, 2);
    n = aiolab_trace_collect(rec, 1 << 16, 0);
    for (size_t i = 0, seen = 0; i < n; i++) {
        seen |= rec[i].name && !strcmp(rec[i].name, "restart");
        after += seen && rec[i].name &&
                 !strcmp(rec[i].name, "virtio_blk_req_complete");
    }
    CHECK_HINT("block 0 still holds 0x5a: the restart replayed nothing",
               pread(fileno(img), block, 4096, 0) == 4096 &&
               block[0] == 0x5a && block[4095] == 0x5a,
               "the back-end took the avail ring from the index you gave "
               "it and wrote the old write's page again; where had it "
               "stopped?");
    CHECK_EQ_HINT("exactly one request was handled after the restart",
                  after, 1, "SET_VRING_BASE is where the back-end goes on");
    CHECK("the read after the restart returns 0x5a",
          f.status[2] == VIRTIO_BLK_S_OK && f.read_back[1] == 0x5a);
    CHECK_EQ("GET_VRING_BASE answers 3 at the end", f.base_after, 3);
    iothread_destroy(io);
    fclose(img);
    bql_unlock();
    return 0;
}

/* cc -Ic/include tutorial/chD-real-clients/vhost-user-by-hand.c -o build/vhost-user-by-hand -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chD-real-clients/vhost-user-by-hand.c - be QEMU for a minute.
 *
 * The main thread is a storage daemon: a vhost-user-blk export of a file,
 * its queue in IOThread io0, exactly what aiolab-storage-daemon runs.  A
 * second thread, "qemu", is the front-end: it owns the guest's RAM (a
 * memfd), sends the messages QEMU sends - with the RAM's fd, a kick
 * eventfd and a call eventfd passed over the socket (SCM_RIGHTS) - and
 * then plays the guest's driver: a write and a read on the ring, a kick,
 * an interrupt.  After the set-up, requests and completions never touch
 * the socket, the main thread, or the BQL.
 */
#include "../tutorial.h"
#include "vu-wire.h"
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <aiolab/aiolab.h>
#include <aiolab/export.h>

#define RAM_SIZE (1 << 20)
#define QSIZE    16
#define SOCK     "vhost-user-by-hand.sock"


typedef struct Front {
    int sock;
    GuestMemory *mem;               /* the guest's RAM: QEMU's memfd */
    uint8_t *ram;
    AiolabVring vr;
    int kick, call;                 /* the eventfds it hands over */
    uint64_t offered;
    uint8_t status[2];              /* of the write, of the read */
    bool data_ok;
    uint32_t base;                  /* GET_VRING_BASE's answer */
    int tid;
    bool done;                      /* atomic */
} Front;

/* [region: setup] */
static void frontend_setup(Front *f)
{
    GuestMemRegion r;
    uint64_t d, a, u;
    struct __attribute__((packed)) {
        uint32_t nregions, padding;
        uint64_t gpa, size, uaddr, mmap_offset;
    } table;
    struct {
        uint32_t index, flags;
        uint64_t desc, used, avail, log;
    } ring;

    send_msg(f->sock, GET_FEATURES, VERSION, NULL, 0, -1);
    f->offered = recv_u64(f->sock);
    send_msg(f->sock, GET_PROTOCOL_FEATURES, VERSION, NULL, 0, -1);
    send_u64(f->sock, SET_PROTOCOL_FEATURES,
             recv_u64(f->sock) & PF_REPLY_ACK, -1);
    send_msg(f->sock, SET_OWNER, VERSION, NULL, 0, -1);
    send_u64(f->sock, SET_FEATURES, (1ull << VIRTIO_F_VERSION_1) |
             (1ull << VIRTIO_BLK_F_FLUSH) | F_PROTOCOL_FEATURES, -1);
    /* The RAM: at guest address 0, at OUR address, and its memfd. */
    aiolab_guest_mem_get_regions(f->mem, &r, 1);
    table = (typeof(table)) { 1, 0, 0, r.size, (uintptr_t)f->ram, 0 };
    send_msg(f->sock, SET_MEM_TABLE, VERSION, &table, sizeof(table), r.fd);
    /* One ring of QSIZE; its addresses are OUR virtual addresses too. */
    aiolab_vring_layout(QSIZE, 0x1000, &d, &a, &u);
    aiolab_vring_init(&f->vr, f->mem, QSIZE, d, a, u, false);
    send_state(f->sock, SET_VRING_NUM, VERSION, 0, QSIZE);
    send_state(f->sock, SET_VRING_BASE, VERSION, 0, 0);
    ring = (typeof(ring)) { 0, 0, (uintptr_t)f->ram + d,
                            (uintptr_t)f->ram + u, (uintptr_t)f->ram + a, 0 };
    send_msg(f->sock, SET_VRING_ADDR, VERSION, &ring, sizeof(ring), -1);
    send_u64(f->sock, SET_VRING_KICK, 0, f->kick);    /* the ring starts */
    send_u64(f->sock, SET_VRING_CALL, 0, f->call);
    send_state(f->sock, SET_VRING_ENABLE, VERSION | NEED_REPLY, 0, 1);
    CHECK_EQ("SET_VRING_ENABLE is acknowledged with 0", recv_u64(f->sock), 0);
}
/* [endregion] */

/* One request (header, 4 KiB of data, status), kick, interrupt. */
static uint8_t guest_request(Front *f, uint32_t type, uint64_t data)
{
    uint64_t hdr = 0x8000, status = 0x8010;
    AiolabVringBuf bufs[3] = {
        { hdr, 16, false },
        { data, 4096, type == VIRTIO_BLK_T_IN },
        { status, 1, true },
    };
    struct pollfd p = { .fd = f->call, .events = POLLIN };
    uint32_t id, len;
    uint64_t n;

    stl_le_p(f->ram + hdr, type);
    stq_le_p(f->ram + hdr + 8, 0);              /* sector 0 */
    f->ram[status] = 0xee;
    /* [region: request] */
    aiolab_vring_add_chain(&f->vr, bufs, 3);
    eventfd_write(f->kick, 1);          /* what KVM makes of the notify */
    /* Interrupts until the used ring has it (the first may be the one
     * the back-end sends when a ring comes on: a driver shrugs). */
    while (!aiolab_vring_get_used(&f->vr, &id, &len)) {
        CHECK("an interrupt comes through the call eventfd",
              poll(&p, 1, 5000) == 1 && eventfd_read(f->call, &n) == 0);
    }
    /* [endregion] */
    return f->ram[status];
}

static void *frontend(void *opaque)
{
    Front *f = opaque;
    struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = SOCK };
    uint8_t reply[20];

    aiolab_thread_set_name("qemu");
    f->tid = (int)syscall(SYS_gettid);
    f->sock = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(f->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("connect");
        exit(1);
    }
    frontend_setup(f);
    memset(f->ram + 0x10000, 0x5a, 4096);
    f->status[0] = guest_request(f, VIRTIO_BLK_T_OUT, 0x10000);
    f->status[1] = guest_request(f, VIRTIO_BLK_T_IN, 0x20000);
    f->data_ok = memcmp(f->ram + 0x10000, f->ram + 0x20000, 4096) == 0;
    send_state(f->sock, GET_VRING_BASE, VERSION, 0, 0);  /* stop the ring */
    if (recv(f->sock, reply, sizeof(reply), MSG_WAITALL) == sizeof(reply)) {
        f->base = ldl_le_p(reply + 16);
    }
    close(f->sock);
    __atomic_store_n(&f->done, true, __ATOMIC_RELEASE);
    qemu_notify_event();
    return NULL;
}

/* How many trace records named @name thread @tid left. */
static int count(const AiolabTraceRecord *rec, size_t n, const char *name,
                 int tid)
{
    int c = 0;

    for (size_t i = 0; i < n; i++) {
        c += rec[i].name && !strcmp(rec[i].name, name) &&
             rec[i].phase != 'E' && (tid == 0 || rec[i].tid == tid);
    }
    return c;
}

int main(void)
{
    static AiolabTraceRecord rec[1 << 16];
    AiolabBqlStats bql[16];
    Front f = { 0 };
    IOThread *io;
    pthread_t th;
    size_t n, nb;
    int io_tid, main_tid = (int)syscall(SYS_gettid), io_bql = 0;
    char buf[4096];
    FILE *img;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    aiolab_trace_set_enabled(true);
    io = iothread_create("io0", &error_abort);
    io_tid = iothread_get_thread_id(io);
    img = tut_scratch_image("vhost-user-by-hand.img", 1 << 20);
    if (!img) {
        return 1;
    }
    /* [region: daemon] */
    bdrv_open(NULL, NULL, "driver=file,node-name=disk0,"
              "filename=vhost-user-by-hand.img", BDRV_O_RDWR, &error_abort);
    blk_exp_add("type=vhost-user-blk,id=exp0,node-name=disk0,"
                "addr.type=unix,addr.path=" SOCK ",writable=on,"
                "iothread=io0", &error_abort);
    /* [endregion] */
    f.mem = aiolab_guest_mem_new();
    f.ram = aiolab_guest_mem_add_ram(f.mem, 0, RAM_SIZE, "qemu-ram",
                                     &error_abort);
    /* Non-blocking, as QEMU's: the back-end empties the kick fd when
     * the ring stops, and a blocking one would hang io0 right there. */
    f.kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    f.call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_create(&th, NULL, frontend, &f);
    while (!__atomic_load_n(&f.done, __ATOMIC_ACQUIRE)) {
        main_loop_wait(false);      /* the daemon: messages, here */
    }
    pthread_join(th, NULL);
    blk_exp_close_all();

    CHECK("the back-end offers VERSION_1, FLUSH and protocol features",
          (f.offered & (1ull << VIRTIO_F_VERSION_1)) &&
          (f.offered & (1ull << VIRTIO_BLK_F_FLUSH)) &&
          (f.offered & F_PROTOCOL_FEATURES));
    CHECK("the write and the read complete with VIRTIO_BLK_S_OK",
          f.status[0] == VIRTIO_BLK_S_OK && f.status[1] == VIRTIO_BLK_S_OK);
    CHECK("the read returns what the write wrote", f.data_ok);
    CHECK("the block is in the image file",
          pread(fileno(img), buf, 4096, 0) == 4096 && buf[0] == 0x5a &&
          buf[4095] == 0x5a);
    CHECK_EQ("GET_VRING_BASE answers 2: both requests popped, none left",
             f.base, 2);
    /* [region: threads] */
    n = aiolab_trace_collect(rec, 1 << 16, 0);
    printf("messages handled by the main thread: %d; handle_vq passes: "
           "io0 %d, main %d\n", count(rec, n, "vhost_user_msg", main_tid),
           count(rec, n, "virtio_blk_handle_vq", io_tid),
           count(rec, n, "virtio_blk_handle_vq", main_tid));
    CHECK("every message was handled in the main thread",
          count(rec, n, "vhost_user_msg", main_tid) > 0 &&
          count(rec, n, "vhost_user_msg", 0) ==
          count(rec, n, "vhost_user_msg", main_tid));
    CHECK("the ring was handled in io0, never in the main thread",
          count(rec, n, "virtio_blk_handle_vq", io_tid) >= 2 &&
          count(rec, n, "virtio_blk_handle_vq", main_tid) == 0);
    CHECK("completions went out as irqfd writes from io0",
          count(rec, n, "virtio_notify_irqfd", io_tid) >= 2);
    /* [endregion] */
    nb = aiolab_bql_get_stats(bql, 16);
    for (size_t i = 0; i < nb && i < 16; i++) {
        io_bql += bql[i].tid == io_tid ? (int)bql[i].acquisitions : 0;
    }
    CHECK_EQ("io0 never took the BQL", io_bql, 0);
    aiolab_trace_write_json("vhost-user-by-hand.json", 0, &error_abort);
    printf("trace: vhost-user-by-hand.json (open it in Perfetto)\n");
    iothread_destroy(io);
    fclose(img);
    bql_unlock();
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz-vhost-user.c - libFuzzer target: a whole vhost-user
 * front-end session against the vhost-user-blk export - the socket
 * reader's framing, every message's checks, the memory table, the rings,
 * the in-flight log and the device they start - over a real unix socket
 * to an export of a null-co node, in this thread's main loop.
 *
 *   python3 tests/fuzz/run.py build && build/fuzz/fuzz-vhost-user CORPUS
 *
 * Input: a sequence of records (little-endian), until the input ends:
 *
 *   op 0x00-0x3f  send: u16 length L, then L raw bytes, written with one
 *                 sendmsg carrying (op & 15, at most 12) fds: with bit 4
 *                 of op, dups of the guest RAM memfd; without, fresh
 *                 eventfds (kept: op 0x41 kicks them)
 *   op 0x40       RAM: u16 offset (x 16), u16 length L, L bytes copied
 *                 into the 256 KiB guest RAM memfd (rings, requests)
 *   op 0x41       write 1 to every eventfd sent so far (kicks)
 *   op 0x42       run the main loop until nothing is left to do
 *   other ops     end the input
 *
 * The bytes after a send's header are whatever the input says: framing
 * across records, truncation and garbage are all the fuzzer's.  At the
 * end the client shuts its side; the export must drop it (EOF), its
 * device drained.  Properties: no crash, no access outside what was
 * mapped (ASan), no leak, the export serving a fresh session after every
 * input, bounded time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <aiolab/aiolab.h>
#include <aiolab/export.h>
#include "export/vhost-user-server.h"
#include "hw/virtio-internal.h"

#define RAM_SIZE    (256 << 10)
#define MAX_EVENTFDS 64

static char sock_path[108];

static void init_once(void)
{
    char opts[256];

    qemu_init_main_loop(&error_abort);
    bql_lock();
    aiolab_trace_set_enabled(false);
    /* FUZZ_VERBOSE=1 shows why a session was dropped (seed writing). */
    aiolab_virtio_error_quiet = vu_server_quiet = !getenv("FUZZ_VERBOSE");
    /* The node stays referenced for the process's life. */
    bdrv_open(NULL, NULL, "driver=null-co,size=1M,node-name=n0", BDRV_O_RDWR,
              &error_abort);
    snprintf(sock_path, sizeof(sock_path), "/tmp/aiolab-fuzz-vu-%d.sock",
             (int)getpid());
    snprintf(opts, sizeof(opts), "type=vhost-user-blk,id=f0,node-name=n0,"
             "addr.type=unix,addr.path=%s,writable=on,num-queues=2",
             sock_path);
    blk_exp_add(opts, &error_abort);
}

typedef struct Session {
    int sock, ram;
    uint8_t *ram_p;
    int efd[MAX_EVENTFDS];
    int nefd;
    bool eof;
} Session;

/* Read (and drop) the replies, closing any fds they carry; note EOF. */
static void drain_replies(Session *s)
{
    for (;;) {
        char buf[512];
        union {
            char c[CMSG_SPACE(8 * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { buf, sizeof(buf) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = ctl.c,
                             .msg_controllen = sizeof(ctl.c) };
        ssize_t n = recvmsg(s->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                s->eof = true;
            }
            return;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
             c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_type == SCM_RIGHTS) {
                int nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                for (int i = 0; i < nfd; i++) {
                    int fd;

                    memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
                    close(fd);
                }
            }
        }
    }
}

static void run_loop(Session *s)
{
    /* The export is in the main loop: its accept, its messages, its
     * queues and null-co's completions all run here. */
    for (int i = 0; i < 64 && aio_poll(qemu_get_aio_context(), false); i++) {
    }
    for (int i = 0; i < 16; i++) {
        main_loop_wait(true);
    }
    drain_replies(s);
}

static void send_record(Session *s, uint8_t op, const uint8_t *p, size_t len)
{
    int fds[12], n = MIN(op & 15, 12);
    bool kept[12] = { false };
    union {
        char c[CMSG_SPACE(sizeof(fds))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { (void *)p, len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    for (int i = 0; i < n; i++) {
        if (op & 16) {
            fds[i] = s->ram;
            kept[i] = true;             /* the session's own */
        } else {
            fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (s->nefd < MAX_EVENTFDS) {
                s->efd[s->nefd++] = fds[i];
                kept[i] = true;
            }
        }
    }
    if (n && len) {
        struct cmsghdr *c;

        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.c;
        mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    }
    if (len && sendmsg(s->sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        s->eof = s->eof || errno == EPIPE || errno == ECONNRESET;
    }
    for (int i = 0; i < n; i++) {
        if (!kept[i]) {
            close(fds[i]);      /* the export has its own copy */
        }
    }
    run_loop(s);
}

static void session_open(Session *s)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    memset(s, 0, sizeof(*s));
    strcpy(addr.sun_path, sock_path);
    s->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->sock < 0 || connect(s->sock, (void *)&addr, sizeof(addr)) < 0) {
        abort();
    }
    s->ram = memfd_create("fuzz-ram", MFD_CLOEXEC);
    if (s->ram < 0 || ftruncate(s->ram, RAM_SIZE) < 0) {
        abort();
    }
    s->ram_p = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                    s->ram, 0);
    if (s->ram_p == MAP_FAILED) {
        abort();
    }
    run_loop(s);                /* accepted */
}

static void session_close(Session *s)
{
    /* Our side is done: the export must see EOF and drop us. */
    shutdown(s->sock, SHUT_WR);
    for (int i = 0; i < 10000 && !s->eof; i++) {
        main_loop_wait(false);
        drain_replies(s);
    }
    if (!s->eof) {
        fprintf(stderr, "the export never dropped the session\n");
        abort();
    }
    run_loop(s);
    close(s->sock);
    for (int i = 0; i < s->nefd; i++) {
        close(s->efd[i]);
    }
    munmap(s->ram_p, RAM_SIZE);
    close(s->ram);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    Session s;
    size_t i = 0;

    if (!inited) {
        init_once();
        inited = true;
    }
    session_open(&s);
    while (i < size && !s.eof) {
        uint8_t op = data[i++];

        if (op < 0x40 && i + 2 <= size) {
            size_t len = MIN(lduw_le_p(data + i), size - i - 2);

            send_record(&s, op, data + i + 2, len);
            i += 2 + len;
        } else if (op == 0x40 && i + 4 <= size) {
            size_t off = (size_t)lduw_le_p(data + i) * 16 % RAM_SIZE;
            size_t len = MIN(MIN(lduw_le_p(data + i + 2), size - i - 4),
                             RAM_SIZE - off);

            memcpy(s.ram_p + off, data + i + 4, len);
            i += 4 + len;
        } else if (op == 0x41) {
            for (int k = 0; k < s.nefd; k++) {
                eventfd_write(s.efd[k], 1);
            }
            run_loop(&s);
        } else if (op == 0x42) {
            run_loop(&s);
        } else {
            break;
        }
    }
    session_close(&s);
    return 0;
}

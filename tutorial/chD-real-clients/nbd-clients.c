/* cc -Ic/include tutorial/chD-real-clients/nbd-clients.c -o build/nbd-clients -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chD-real-clients/nbd-clients.c - the same block layer, another
 * protocol: an NBD export of a file, served from IOThread io0 to
 * Debian's qemu-io, qemu-img and nbdinfo, each a separate process.
 *
 * The main thread runs the NBD server's listening socket and each
 * client's handshake; once a client has chosen its export, the
 * connection moves to the export's AioContext, io0, where every request
 * is a coroutine.  The clients run one after the other while the main
 * loop serves them; this program never calls them, they call us.
 *
 * No qemu-utils on this machine: the program says so and exits 77.
 */
#include "../tutorial.h"
#include <pthread.h>
#include <spawn.h>
#include <aiolab/aiolab.h>
#include <aiolab/nbd.h>

#define SOCK   "nbd-clients.sock"
#define IMAGE  "nbd-clients.img"
#define URI    "nbd+unix:///disk0?socket=" SOCK
#define DISK   (4 << 20)

extern char **environ;

typedef struct Client {
    pid_t pid;
    int out;                    /* the read end of its stdout+stderr */
    char text[4096];            /* what it printed (the start of it) */
    int status;
    bool done;                  /* atomic */
} Client;

static void *client_waiter(void *opaque)
{
    Client *c = opaque;
    size_t have = 0;
    char scratch[512];
    ssize_t n;

    for (;;) {
        bool room = have + 1 < sizeof(c->text);

        n = read(c->out, room ? c->text + have : scratch,
                 room ? sizeof(c->text) - 1 - have : sizeof(scratch));
        if (n <= 0) {
            break;
        }
        have += room ? (size_t)n : 0;
    }
    c->text[have] = '\0';
    close(c->out);
    waitpid(c->pid, &c->status, 0);
    __atomic_store_n(&c->done, true, __ATOMIC_RELEASE);
    qemu_notify_event();
    return NULL;
}

/* [region: client] */
/* Run @argv as a child process and serve it until it exits: the main
 * loop must keep turning, or its handshake would never be answered.
 * Returns its exit status (-1 if it did not exit normally). */
static int run_client(Client *c, char *const argv[])
{
    posix_spawn_file_actions_t fa;
    int pipefd[2];
    pthread_t th;

    printf("$");
    for (int i = 0; argv[i]; i++) {
        printf(" %s", argv[i]);
    }
    printf("\n");
    fflush(stdout);
    if (pipe(pipefd) < 0) {
        perror("pipe");
        exit(1);
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    *c = (Client) { .out = pipefd[0] };
    if (posix_spawn(&c->pid, argv[0], &fa, NULL, argv, environ) != 0) {
        perror(argv[0]);
        exit(1);
    }
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    pthread_create(&th, NULL, client_waiter, c);
    while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE)) {
        main_loop_wait(false);  /* accept, handshake: here */
    }
    pthread_join(th, NULL);
    printf("%s", c->text);
    return WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -1;
}
/* [endregion] */

static int count(const AiolabTraceRecord *rec, size_t n, const char *name,
                 char phase, int tid)
{
    int c = 0;

    for (size_t i = 0; i < n; i++) {
        c += rec[i].name && !strcmp(rec[i].name, name) &&
             rec[i].phase == phase && (tid == 0 || rec[i].tid == tid);
    }
    return c;
}

int main(void)
{
    static AiolabTraceRecord rec[1 << 16];
    char *qemu_io[] = { "/usr/bin/qemu-io", "-f", "raw",
                        "-c", "write -P 0x5a 0 64k",
                        "-c", "read -P 0x5a 0 64k",
                        "-c", "write -z 1M 1M", URI, NULL };
    char *compare[] = { "/usr/bin/qemu-img", "compare", "-f", "raw",
                        "-F", "raw", IMAGE, URI, NULL };
    char *nbdinfo[] = { "/usr/bin/nbdinfo", "--size", URI, NULL };
    AiolabBqlStats bql[16];
    unsigned char block[65536];
    Client c;
    IOThread *io;
    size_t n, nb;
    int io_tid, main_tid = tut_gettid(), io_bql = 0, workers;
    bool moved = false;
    int64_t since;
    FILE *img;

    if (access(qemu_io[0], X_OK) || access(compare[0], X_OK)) {
        printf("skip: qemu-io and qemu-img are not installed (Debian's "
               "qemu-utils; make deps-clients)\n");
        return 77;
    }
    qemu_init_main_loop(&error_abort);
    bql_lock();
    aiolab_trace_set_enabled(true);
    io = iothread_create("io0", &error_abort);
    io_tid = iothread_get_thread_id(io);
    img = tut_scratch_image(IMAGE, DISK);
    if (!img) {
        return 1;
    }
    /* Some data the clients did not write, for the zeroes to replace. */
    memset(block, 0xa5, sizeof(block));
    if (pwrite(fileno(img), block, sizeof(block), 1 << 20) < 0) {
        perror(IMAGE);
        return 1;
    }
    /* [region: server] */
    bdrv_open(NULL, NULL, "driver=file,node-name=disk0,aio=threads,"
              "filename=" IMAGE, BDRV_O_RDWR, &error_abort);
    nbd_server_start("addr.type=unix,addr.path=" SOCK, &error_abort);
    blk_exp_add("type=nbd,id=exp0,node-name=disk0,name=disk0,"
                "writable=on,iothread=io0", &error_abort);
    /* [endregion] */
    since = aiolab_trace_now_ns();

    CHECK_EQ("qemu-io writes, reads back and zeroes over NBD: exit 0",
             run_client(&c, qemu_io), 0);
    CHECK("qemu-io's pattern check found what it wrote",
          strstr(c.text, "read 65536/65536 bytes") &&
          !strstr(c.text, "Pattern verification failed"));
    CHECK("the file behind the export has the 0x5a block and the zeroes",
          pread(fileno(img), block, 4096, 0) == 4096 &&
          block[0] == 0x5a && block[4095] == 0x5a &&
          pread(fileno(img), block, 4096, 1 << 20) == 4096 &&
          block[0] == 0 && block[4095] == 0);
    CHECK_EQ("qemu-img compare: the NBD view equals the file (exit 0)",
             run_client(&c, compare), 0);
    if (access(nbdinfo[0], X_OK) == 0) {
        CHECK("nbdinfo --size reports the export's 4194304 bytes",
              run_client(&c, nbdinfo) == 0 &&
              strtoll(c.text, NULL, 10) == DISK);
    } else {
        printf("(nbdinfo is not installed: libnbd-bin; its step is left "
               "out)\n");
    }

    /* [region: threads] */
    n = aiolab_trace_collect(rec, 1 << 16, since);
    workers = 0;
    for (size_t i = 0; i < n; i++) {
        workers += rec[i].name && !strcmp(rec[i].name, "thread_pool_work")
                   && rec[i].phase == 'B' && rec[i].tid != io_tid &&
                   rec[i].tid != main_tid;
    }
    printf("block requests: io0 %d, main %d; thread-pool work items on "
           "workers: %d\n", count(rec, n, "request", 'B', io_tid),
           count(rec, n, "request", 'B', main_tid), workers);
    CHECK("every block request of the clients ran in io0",
          count(rec, n, "request", 'B', io_tid) >= 3 &&
          count(rec, n, "request", 'B', 0) ==
          count(rec, n, "request", 'B', io_tid));
    CHECK("their preadv/pwritev calls ran on thread-pool workers",
          workers >= 3);
    /* [endregion] */
    /* [region: moved] */
    /* A socket io0 handled that the main loop's iohandler context had
     * handled before: a client's connection, handshake done. */
    for (size_t i = 0; i < n && !moved; i++) {
        if (rec[i].tid != io_tid || rec[i].phase != 'B' ||
            strcmp(rec[i].name, "aio_dispatch_handler")) {
            continue;
        }
        for (size_t j = 0; j < i && !moved; j++) {
            moved = rec[j].tid == main_tid && rec[j].phase == 'B' &&
                    !strcmp(rec[j].name, "aio_dispatch_handler") &&
                    rec[j].label && !strcmp(rec[j].label, "iohandler") &&
                    rec[j].arg == rec[i].arg;
        }
    }
    CHECK("a connection's socket was served in the main thread's "
          "iohandler context first (the handshake), then in io0", moved);
    /* [endregion] */
    nb = aiolab_bql_get_stats(bql, 16);
    for (size_t i = 0; i < nb && i < 16; i++) {
        io_bql += bql[i].tid == io_tid ? (int)bql[i].acquisitions : 0;
    }
    CHECK_EQ("io0 never took the BQL", io_bql, 0);
    aiolab_trace_write_json("nbd-clients.json", since, &error_abort);
    printf("trace: nbd-clients.json (open it in Perfetto)\n");
    nbd_server_stop(&error_abort);
    iothread_destroy(io);
    fclose(img);
    bql_unlock();
    return 0;
}

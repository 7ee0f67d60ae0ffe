/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/vhost-guest-io.c - the workload bench_vhost.py runs inside
 * its Linux guest (linked -static, started by the guest's /init): N
 * threads, each with one request in flight, doing 4 KiB (or BS) O_DIRECT
 * reads or writes at random aligned offsets of its own slice of the disk.
 *
 *   vhost-guest-io DEV read|write BS THREADS REQUESTS [NAME]
 *
 * Prints one line, timed with CLOCK_MONOTONIC from the moment every
 * thread is ready to the moment the last one finished:
 *   "AIOLAB result NAME requests=N ns=T errors=E"   (NAME: MODE)
 * so the figure is T / N ns per request, as the guest saw it (the whole
 * path: the guest's block layer and virtio_blk driver, the virtqueue in
 * shared memory, the kick and call eventfds through QEMU, the back-end).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *dev;
static int writing;
static size_t bs;
static long per_thread;
static int64_t slice;
static pthread_barrier_t start;
static long errors;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *worker(void *arg)
{
    long idx = (long)arg, bad = 0;
    uint64_t x = 0x9e3779b97f4a7c15ull * (idx + 1);
    int64_t blocks = slice / (int64_t)bs;
    void *buf;
    int fd = open(dev, (writing ? O_RDWR : O_RDONLY) | O_DIRECT);

    if (fd < 0 || posix_memalign(&buf, 4096, bs) != 0) {
        perror("vhost-guest-io: open");
        exit(1);
    }
    memset(buf, 0x5a + (int)idx, bs);
    pthread_barrier_wait(&start);
    for (long i = 0; i < per_thread; i++) {
        off_t off;
        ssize_t n;

        x ^= x << 13; x ^= x >> 7; x ^= x << 17;     /* xorshift64 */
        off = idx * slice + (int64_t)(x % (uint64_t)blocks) * (int64_t)bs;
        n = writing ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off);
        if (n != (ssize_t)bs) {
            bad++;
        }
    }
    pthread_barrier_wait(&start);
    pthread_mutex_lock(&lock);
    errors += bad;
    pthread_mutex_unlock(&lock);
    close(fd);
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t *t;
    long threads, requests;
    int64_t size, t0, t1;
    int fd;

    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: vhost-guest-io DEV read|write BS THREADS "
                "REQUESTS [NAME]\n");
        return 2;
    }
    dev = argv[1];
    writing = strcmp(argv[2], "write") == 0;
    bs = strtoul(argv[3], NULL, 0);
    threads = strtol(argv[4], NULL, 0);
    requests = strtol(argv[5], NULL, 0);
    fd = open(dev, O_RDONLY);
    if (fd < 0 || bs == 0 || bs % 512 || threads < 1 || requests < threads) {
        fprintf(stderr, "vhost-guest-io: bad arguments or no %s\n", dev);
        return 2;
    }
    size = lseek(fd, 0, SEEK_END);
    close(fd);
    slice = size / threads / (int64_t)bs * (int64_t)bs;
    if (slice < (int64_t)bs) {
        fprintf(stderr, "vhost-guest-io: %s is too small\n", dev);
        return 2;
    }
    per_thread = requests / threads;
    t = calloc(threads, sizeof(*t));
    pthread_barrier_init(&start, NULL, threads + 1);
    for (long i = 0; i < threads; i++) {
        pthread_create(&t[i], NULL, worker, (void *)i);
    }
    pthread_barrier_wait(&start);       /* every thread has opened */
    t0 = now_ns();
    pthread_barrier_wait(&start);       /* every thread is done */
    t1 = now_ns();
    for (long i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
    }
    printf("AIOLAB result %s requests=%ld ns=%lld errors=%ld\n",
           argc == 7 ? argv[6] : argv[2],
           per_thread * threads, (long long)(t1 - t0), errors);
    fflush(stdout);
    return errors ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * system/vcpu-workload.c - what the guest does with its disk: fio-style
 * workloads (randread, randwrite, randrw, seqwrite, seqread, verify) and
 * the BQL-holding "mmio-hold" vCPU, as guest code on a vCPU thread.
 *
 * A workload is a loop of steps, each resumable after a vm_stop:
 *
 *   collect completions (own, or collected by a vCPU sharing the queue)
 *   give up on requests older than timeout= (lost), or on all of them
 *     when the device needs a reset
 *   RUN:   fill free slots up to iodepth, publish, kick
 *   DRAIN: runtime or count reached: wait for those in flight
 *   SWEEP: verify only: read back every block written, and check it
 *   nothing completed: busy-poll the used ring for poll=, then halt
 *
 * Verify: every 512-byte sector written carries a stamp
 *
 *   word 0   magic            word 3..62  pseudo-random fill from
 *   word 1   byte offset                  (offset, generation)
 *   word 2   generation<<32 | vcpu   word 63  checksum of words 0..62
 *
 * and the vCPU remembers the generation of each block of its region
 * (verify workloads get disjoint regions), never has two requests on one
 * block at once, and checks every read against what it last wrote and
 * saw acknowledged.  A failed write leaves the block's generation
 * unknown: any well-formed stamp of that offset is then accepted.
 *
 * mmio-hold: every mmio-period, an MMIO exit to a slow emulated device
 * that holds the BQL for mmio-hold, sleeping (nanosleep) while it holds
 * it: the contention the main loop then suffers is real, and visible in
 * aiolab_bql_get_stats() and the trace.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <aiolab/machine.h>
#include "system/machine-internal.h"
#include "util/atomic.h"
#include "util/mem.h"

#define STAMP_MAGIC 0x61696f6c61627631ull       /* "aiolabv1" */
#define GEN_UNKNOWN 0xffffffffu
#define SECTOR_WORDS (VIRTIO_BLK_SECTOR_SIZE / 8)

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static uint64_t sector_checksum(const uint64_t *w)
{
    uint64_t h = 0x243f6a8885a308d3ull;
    int i;

    for (i = 0; i < SECTOR_WORDS - 1; i++) {
        h = (h ^ w[i]) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

static void stamp_block(uint8_t *buf, uint32_t bs, uint64_t off, uint32_t gen,
                        int vcpu)
{
    uint32_t s;
    int i;

    for (s = 0; s < bs / VIRTIO_BLK_SECTOR_SIZE; s++) {
        uint64_t w[SECTOR_WORDS];
        uint64_t soff = off + (uint64_t)s * VIRTIO_BLK_SECTOR_SIZE;
        uint64_t x = mix64(soff ^ ((uint64_t)gen << 40));

        w[0] = STAMP_MAGIC;
        w[1] = soff;
        w[2] = (uint64_t)gen << 32 | (uint32_t)vcpu;
        for (i = 3; i < SECTOR_WORDS - 1; i++) {
            w[i] = x = mix64(x + i);
        }
        w[SECTOR_WORDS - 1] = sector_checksum(w);
        memcpy(buf + s * VIRTIO_BLK_SECTOR_SIZE, w, sizeof(w));
    }
}

static bool all_zero(const uint64_t *w)
{
    int i;

    for (i = 0; i < SECTOR_WORDS; i++) {
        if (w[i]) {
            return false;
        }
    }
    return true;
}

/* Check a block read back; on a mismatch describe it in @why. */
static bool check_block(const uint8_t *buf, uint32_t bs, uint64_t off,
                        uint32_t expect, char *why, size_t len)
{
    uint32_t s;

    for (s = 0; s < bs / VIRTIO_BLK_SECTOR_SIZE; s++) {
        uint64_t w[SECTOR_WORDS];
        uint64_t soff = off + (uint64_t)s * VIRTIO_BLK_SECTOR_SIZE;

        memcpy(w, buf + s * VIRTIO_BLK_SECTOR_SIZE, sizeof(w));
        if (expect == GEN_UNKNOWN && all_zero(w)) {
            continue;
        }
        if (w[0] != STAMP_MAGIC) {
            snprintf(why, len, "offset %" PRIu64 ": no stamp (expected "
                     "generation %u)", soff, expect);
            return false;
        }
        if (w[1] != soff) {
            snprintf(why, len, "offset %" PRIu64 ": stamp of offset %" PRIu64,
                     soff, w[1]);
            return false;
        }
        if (w[SECTOR_WORDS - 1] != sector_checksum(w)) {
            snprintf(why, len, "offset %" PRIu64 ": bad checksum", soff);
            return false;
        }
        if (expect != GEN_UNKNOWN && (uint32_t)(w[2] >> 32) != expect) {
            snprintf(why, len, "offset %" PRIu64 ": generation %u, expected "
                     "%u", soff, (uint32_t)(w[2] >> 32), expect);
            return false;
        }
    }
    return true;
}

/* --- setup (main loop, before the vCPUs run) --------------------------- */

static uint64_t guest_alloc(AiolabMachine *m, uint64_t size, uint64_t align)
{
    uint64_t gpa = (m->ram_next + align - 1) & ~(align - 1);

    if (gpa + size > m->conf.ram_size) {
        return UINT64_MAX;
    }
    m->ram_next = gpa + size;
    return gpa;
}

static void *guest_ptr(AiolabMachine *m, uint64_t gpa, uint64_t len)
{
    return aiolab_guest_mem_translate(m->mem, gpa, len);
}

bool workload_setup(AiolabMachine *m, CPUState *cpu, Error **errp)
{
    Workload *w = &cpu->wl;
    AiolabWorkloadConf *c = &w->conf;
    uint64_t data, meta, stride = ((uint64_t)c->bs + 4095) & ~4095ull;
    unsigned i;

    w->rng = mix64(c->seed * 0x9e3779b97f4a7c15ull + cpu->cpu_index + 1) | 1;
    if (!w->has_io) {
        return true;
    }
    data = guest_alloc(m, stride * c->iodepth, 4096);
    meta = guest_alloc(m, 32ull * c->iodepth, 64);
    if (data == UINT64_MAX || meta == UINT64_MAX) {
        error_setg(errp, "not enough guest RAM for vCPU %d's buffers "
                   "(%u x %u bytes): raise -m", cpu->cpu_index, c->iodepth,
                   c->bs);
        return false;
    }
    w->reqs = aiolab_xcalloc(c->iodepth, sizeof(*w->reqs));
    for (i = 0; i < c->iodepth; i++) {
        GuestReq *r = &w->reqs[i];

        r->owner = cpu;
        r->data_gpa = data + i * stride;
        r->hdr_gpa = meta + 32ull * i;
        r->status_gpa = r->hdr_gpa + 16;
        r->data = guest_ptr(m, r->data_gpa, c->bs);
        r->hdr = guest_ptr(m, r->hdr_gpa, 16);
        r->status = guest_ptr(m, r->status_gpa, 1);
        memset(r->data, 0xa5, c->bs);
    }
    if (c->rw == AIOLAB_WL_VERIFY) {
        w->gen = aiolab_xcalloc(w->nblocks, sizeof(*w->gen));
        w->busy = aiolab_xcalloc(w->nblocks, 1);
        w->written = aiolab_xcalloc(w->nblocks, sizeof(*w->written));
    }
    return true;
}

void workload_free(CPUState *cpu)
{
    free(cpu->wl.reqs);
    free(cpu->wl.gen);
    free(cpu->wl.busy);
    free(cpu->wl.written);
}

/* --- the steps -------------------------------------------------------- */

static void note_error(CPUState *cpu, const char *fmt, ...)
    AIOLAB_PRINTF(2, 3);

static void note_error(CPUState *cpu, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&cpu->stats_lock);
    if (!cpu->stats.error[0]) {
        va_start(ap, fmt);
        vsnprintf(cpu->stats.error, sizeof(cpu->stats.error), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&cpu->stats_lock);
}

static uint64_t block_offset(Workload *w, int64_t block)
{
    return w->region_off + (uint64_t)block * w->conf.bs;
}

static void complete_one(CPUState *cpu, GuestReq *r)
{
    Workload *w = &cpu->wl;
    AiolabWorkloadStats *st = &cpu->stats;
    uint64_t off = block_offset(w, r->block);
    uint8_t status = *r->status;
    int64_t lat = r->done_ns - r->submit_ns;
    char why[128] = "";
    bool ok = status == VIRTIO_BLK_S_OK, verified = false, bad = false;

    if (ok && w->gen && !r->is_write) {
        bad = !check_block(r->data, w->conf.bs, off, w->gen[r->block], why,
                           sizeof(why));
        verified = true;
    }
    if (w->gen) {
        if (r->is_write) {
            if (!w->gen[r->block]) {
                w->written[w->nwritten++] = r->block;
            }
            w->gen[r->block] = ok ? r->gen : GEN_UNKNOWN;
        }
        w->busy[r->block] = 0;
    }
    r->in_flight = false;
    w->in_flight--;

    pthread_mutex_lock(&cpu->stats_lock);
    if (!ok) {
        st->io_errors++;
    } else if (!r->sweep) {
        if (r->is_write) {
            st->writes++;
            st->bytes_written += w->conf.bs;
            aiolab_latency_hist_add(&st->lat_write, lat);
        } else {
            st->reads++;
            st->bytes_read += w->conf.bs;
            aiolab_latency_hist_add(&st->lat_read, lat);
        }
        w->last_done_vns = vcpu_vclock();
        st->elapsed_ns = w->last_done_vns - w->start_vns;
    }
    st->verified += verified;
    st->verify_errors += bad;
    pthread_mutex_unlock(&cpu->stats_lock);
    if (!ok) {
        note_error(cpu, "%s at offset %" PRIu64 " completed with status %u",
                   r->is_write ? "write" : "read", off, status);
    } else if (bad) {
        note_error(cpu, "verify: %s", why);
    }
}

/* Collect, complete what is done, give up on what is lost. */
static int reap(CPUState *cpu, bool failed)
{
    Workload *w = &cpu->wl;
    GuestReq *done[1024], *lost[1024];
    int64_t now = vcpu_vclock();
    unsigned i;
    int n = 0, n_lost = 0, k;

    guest_collect(cpu, w->q);
    /* done is written by whichever vCPU collects: read it under the lock */
    pthread_mutex_lock(&w->q->lock);
    for (i = 0; i < w->conf.iodepth && n < 1024; i++) {
        GuestReq *r = &w->reqs[i];
        if (!r->in_flight) {
            continue;
        }
        if (r->done) {
            done[n++] = r;
        } else if (failed || now - r->submit_vns > w->conf.timeout_ns) {
            lost[n_lost++] = r;
        }
    }
    pthread_mutex_unlock(&w->q->lock);
    for (k = 0; k < n; k++) {
        complete_one(cpu, done[k]);
    }
    for (k = 0; k < n_lost; k++) {
        GuestReq *r = lost[k];

        /* Never reused: the device might still write into it. */
        r->in_flight = false;
        r->lost = true;
        w->in_flight--;
        guest_stats_add(cpu, &cpu->stats.lost, 1);
        note_error(cpu, "%s at offset %" PRIu64 " lost (%s)",
                   r->is_write ? "write" : "read", block_offset(w, r->block),
                   failed ? "the device needs a reset" : "timed out");
    }
    return n;
}

/* Choose the next request for slot @r.  Returns: false if none now. */
static bool prepare(CPUState *cpu, GuestReq *r)
{
    Workload *w = &cpu->wl;
    AiolabWorkloadConf *c = &w->conf;
    int64_t b = 0;
    int tries;

    r->sweep = cpu->phase == GUEST_SWEEP;
    if (r->sweep) {
        if (w->sweep_next >= w->nwritten) {
            return false;
        }
        b = w->written[w->sweep_next++];
        r->is_write = false;
    } else {
        switch (c->rw) {
        case AIOLAB_WL_SEQWRITE:
        case AIOLAB_WL_SEQREAD:
            b = w->seq_next++ % w->nblocks;
            r->is_write = c->rw == AIOLAB_WL_SEQWRITE;
            break;
        case AIOLAB_WL_VERIFY:
            /* Reads go to blocks written in this run, writes anywhere. */
            r->is_write = !w->nwritten ||
                          (int)(xorshift(&w->rng) % 100) >= c->rwmixread;
            for (tries = 0; tries < 8; tries++) {
                b = r->is_write ? xorshift(&w->rng) % w->nblocks
                    : w->written[xorshift(&w->rng) % w->nwritten];
                if (!w->busy[b]) {
                    break;
                }
            }
            if (w->busy[b]) {
                return false;
            }
            break;
        default:
            b = xorshift(&w->rng) % w->nblocks;
            r->is_write = c->rw == AIOLAB_WL_RANDWRITE ||
                          (c->rw == AIOLAB_WL_RANDRW &&
                           (int)(xorshift(&w->rng) % 100) >= c->rwmixread);
        }
    }
    r->block = b;
    if (w->gen) {
        w->busy[b] = 1;
        if (r->is_write) {
            r->gen = w->gen[b] + 1;
            if (r->gen == GEN_UNKNOWN || r->gen == 0) {
                r->gen = 1;
            }
            stamp_block(r->data, c->bs, block_offset(w, b), r->gen,
                        cpu->cpu_index);
        }
    }
    stl_le_p(r->hdr, r->is_write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN);
    stl_le_p(r->hdr + 4, 0);
    stq_le_p(r->hdr + 8, block_offset(w, b) / VIRTIO_BLK_SECTOR_SIZE);
    r->submit_vns = vcpu_vclock();
    return true;
}

/* Fill free slots and publish them.  Returns: how many were published. */
static int submit_more(CPUState *cpu)
{
    Workload *w = &cpu->wl;
    AiolabWorkloadConf *c = &w->conf;
    GuestReq *batch[1024];
    unsigned i;
    int n = 0, sent, k;
    bool malformed = false;

    /* reconfigure=N: the misbehaving driver acts once N - 1 requests
     * are out, its queue live. */
    if (cpu->phase == GUEST_RUN && c->reconfigure_at && !w->reconfigured &&
        w->submitted + 1 >= c->reconfigure_at) {
        w->reconfigured = true;
        guest_reconfigure_queue(cpu, w->q);
    }
    for (i = 0; i < c->iodepth && n < 1024; i++) {
        GuestReq *r = &w->reqs[i];

        if (r->in_flight || r->lost) {
            continue;
        }
        if (cpu->phase == GUEST_RUN && c->count &&
            w->submitted + n >= c->count) {
            break;
        }
        if (!prepare(cpu, r)) {
            break;
        }
        if (cpu->phase == GUEST_RUN && c->malformed_at &&
            w->submitted + n + 1 == c->malformed_at) {
            malformed = n == 0;
            if (!malformed) {
                if (w->gen) {
                    w->busy[r->block] = 0;
                }
                break;                  /* it goes first in the next batch */
            }
        }
        batch[n++] = r;
    }
    if (!n) {
        return 0;
    }
    sent = guest_submit(cpu, w->q, batch, n, malformed);
    for (k = sent; k < n; k++) {
        if (w->gen) {
            w->busy[batch[k]->block] = 0;   /* the ring was full */
        }
    }
    w->in_flight += sent;
    if (cpu->phase == GUEST_RUN) {
        w->submitted += sent;
    }
    return sent;
}

/*
 * poll=always: spin on the used ring (and on IPIs from a vCPU sharing the
 * queue) with the queue's interrupts suppressed; never halt.  Back to the
 * workload loop at least every 100 ms, so that lost requests are noticed.
 */
static int poll_for_completion(CPUState *cpu)
{
    Workload *w = &cpu->wl;
    int64_t end = vcpu_now() + 100 * SCALE_MS;
    unsigned spins = 0;

    guest_suppress_interrupts(w->q);
    while (!guest_used_pending(w->q) && !guest_ipi_pending(cpu)) {
        if (vcpu_should_exit(cpu)) {
            return -1;
        }
        if (++spins % 1024 == 0 && vcpu_now() > end) {
            return 0;
        }
    }
    return 1;
}

/* Busy-poll the used ring for poll=, then halt (or poll=always). */
static int wait_for_completion(CPUState *cpu)
{
    Workload *w = &cpu->wl;

    if (w->conf.poll_ns == AIOLAB_WORKLOAD_POLL_ALWAYS) {
        return poll_for_completion(cpu);
    }
    if (w->conf.poll_ns) {
        int64_t end = vcpu_now() + w->conf.poll_ns;
        while (vcpu_now() < end) {
            if (guest_used_pending(w->q) || vcpu_should_exit(cpu)) {
                return 1;
            }
        }
    }
    return guest_halt(cpu, w->q, 100 * SCALE_MS);
}

static int mmio_hold_run(CPUState *cpu)
{
    Workload *w = &cpu->wl;
    AiolabWorkloadConf *c = &w->conf;
    AiolabMachine *m = cpu->m;
    int64_t now = vcpu_vclock(), t0, held;
    struct timespec ts = { c->mmio_hold_ns / 1000000000,
                           c->mmio_hold_ns % 1000000000 };

    if ((c->runtime_ns && now - w->start_vns >= c->runtime_ns) ||
        (c->count && w->mmio_done >= c->count) || !c->mmio_hold_ns ||
        (!c->runtime_ns && !c->count && m->n_workloads > 0 &&
         qatomic_read(&m->io_running) == 0 && m->n_io_workloads > 0)) {
        return EXCP_HLT;
    }
    if (now < w->next_mmio_vns) {
        guest_halt(cpu, NULL, w->next_mmio_vns - now);
        return 0;
    }
    bql_lock();
    aiolab_trace_begin("mmio exit (slow device, BQL held)", c->mmio_hold_ns);
    t0 = vcpu_now();
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        /* the rest of the hold */
    }
    held = vcpu_now() - t0;
    aiolab_trace_end("mmio exit (slow device, BQL held)", c->mmio_hold_ns);
    bql_unlock();
    w->mmio_done++;
    pthread_mutex_lock(&cpu->stats_lock);
    cpu->stats.mmio_exits++;
    cpu->stats.mmio_hold_ns += held;
    cpu->stats.elapsed_ns = vcpu_vclock() - w->start_vns;
    pthread_mutex_unlock(&cpu->stats_lock);
    w->next_mmio_vns += c->mmio_period_ns;
    if (w->next_mmio_vns < now) {
        w->next_mmio_vns = now + c->mmio_period_ns;
    }
    return 0;
}

/*
 * One step of vCPU @cpu's workload.  Returns: 0 to go on, EXCP_HLT when
 * it is done.  Context: the vCPU's guest code.
 */
int workload_run(CPUState *cpu)
{
    Workload *w = &cpu->wl;
    AiolabWorkloadConf *c = &w->conf;
    bool failed;
    int n;

    if (!w->start_vns) {
        w->start_vns = w->next_mmio_vns = vcpu_vclock();
        w->last_done_vns = w->start_vns;
    }
    if (!w->has_io) {
        return mmio_hold_run(cpu);
    }
    if (!qatomic_read(&w->dev->guest_ready)) {
        note_error(cpu, "device %s is not usable: %s", w->dev->id,
                   w->dev->guest_error[0] ? w->dev->guest_error
                                          : "its driver failed");
        return EXCP_HLT;
    }
    failed = guest_device_failed(cpu, w->dev);
    n = reap(cpu, failed);
    if (failed) {
        note_error(cpu, "device %s needs a reset (it is broken)", w->dev->id);
        return EXCP_HLT;
    }
    if (cpu->phase == GUEST_RUN &&
        ((c->runtime_ns && vcpu_vclock() - w->start_vns >= c->runtime_ns) ||
         (c->count && w->submitted >= c->count))) {
        cpu->phase = GUEST_DRAIN;
    }
    if (cpu->phase != GUEST_DRAIN) {
        n += submit_more(cpu);
    }
    if (w->in_flight == 0) {
        if (cpu->phase == GUEST_DRAIN && w->gen) {
            cpu->phase = GUEST_SWEEP;
            return 0;
        }
        if (cpu->phase != GUEST_RUN) {
            return EXCP_HLT;
        }
        if (n == 0) {
            /* Nothing in flight and nothing could be sent (every slot
             * lost, or verify found every block busy). */
            return EXCP_HLT;
        }
    }
    if (n == 0 && w->in_flight > 0) {
        wait_for_completion(cpu);
    }
    return 0;
}

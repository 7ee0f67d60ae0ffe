/* cc -Ic/include docs/examples/wait-kick.c -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/* SPDX-License-Identifier: MIT */
/*
 * docs/examples/wait-kick.c - the main loop waits for work done in an
 * IOThread: AIO_WAIT_WHILE() on one side, aio_wait_kick() on the other.
 * docs/threading.md includes the region below; tests/docs-check.py builds
 * and runs this file, so the text there cannot drift from working code.
 */
#include <stdio.h>
#include <aiolab/aiolab.h>

typedef struct Work {
    int input;
    int result;
    bool done;              /* the waited-on condition: seq_cst atomics */
} Work;

/* [region: wait-kick] */
/* Runs in the IOThread, as a BH of its AioContext. */
static void work_bh(void *opaque)
{
    Work *w = opaque;

    w->result = w->input * 2;
    /* Make the condition false for the waiter, then kick: in this order. */
    __atomic_store_n(&w->done, true, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

/* Main loop, BQL held: run work_bh in @iothread and wait for it. */
static int run_in_iothread(IOThread *iothread, int input)
{
    Work w = { .input = input };
    AioContext *ctx = iothread_get_aio_context(iothread);

    aio_bh_schedule_oneshot(ctx, work_bh, &w);
    /* Polls the *main* context until the kick's BH wakes it. */
    AIO_WAIT_WHILE(ctx, !__atomic_load_n(&w.done, __ATOMIC_SEQ_CST));
    return w.result;
}
/* [endregion] */

int main(void)
{
    IOThread *iothread;
    int i, result;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    iothread = iothread_create("io0", &error_abort);
    for (i = 0; i < 1000; i++) {
        result = run_in_iothread(iothread, i);
        if (result != 2 * i) {
            fprintf(stderr, "wait-kick: got %d for %d\n", result, i);
            return 1;
        }
    }
    iothread_destroy(iothread);
    bql_unlock();
    printf("wait-kick: 1000 round trips\n");
    return 0;
}

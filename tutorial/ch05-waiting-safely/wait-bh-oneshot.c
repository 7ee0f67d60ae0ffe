/* cc -Ic/include tutorial/ch05-waiting-safely/wait-bh-oneshot.c -o build/wait-bh-oneshot -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch05-waiting-safely/wait-bh-oneshot.c - run a function in an IOThread
 * and wait for it; and the wait that is forbidden.
 *
 * aio_wait_bh_oneshot() is AIO_WAIT_WHILE packaged: a one-shot BH in the
 * IOThread runs the function, then sets "done" and kicks the main loop.
 * Only the main loop may wait like that.  An IOThread that waits for
 * another IOThread's context would never be kicked: the debug build
 * aborts instead of deadlocking, and we run that in a child process.
 */
#include "../tutorial.h"
#include <signal.h>
#include <aiolab/aiolab.h>

typedef struct {
    int tid;            /* where where_bh() ran */
    bool ran;
} Probe;

static void where_bh(void *opaque)
{
    Probe *p = opaque;

    p->tid = tut_gettid();
    p->ran = true;
}

static AioContext *other_ctx;
static bool other_done;

/* [region: misuse] */
/* Runs in IOThread io0, which then waits for IOThread io1: forbidden. */
static void wait_for_other_iothread_bh(void *opaque)
{
    AIO_WAIT_WHILE(other_ctx, !__atomic_load_n(&other_done,
                                               __ATOMIC_SEQ_CST));
}
/* [endregion] */

/* The child process: commit the misuse (it aborts). */
static int misuse(void)
{
    IOThread *io0, *io1;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    io0 = iothread_create("io0", &error_abort);
    io1 = iothread_create("io1", &error_abort);
    other_ctx = iothread_get_aio_context(io1);
    aio_wait_bh_oneshot(iothread_get_aio_context(io0),
                        wait_for_other_iothread_bh, NULL);
    iothread_destroy(io1);      /* not reached */
    iothread_destroy(io0);
    return 0;
}

int main(int argc, char **argv)
{
    Probe p = { 0 };
    IOThread *it;
    char err[2048];
    int status;

    if (argc > 1 && strcmp(argv[1], "@misuse") == 0) {
        return misuse();
    }

    qemu_init_main_loop(&error_abort);
    bql_lock();
    it = iothread_create("io0", &error_abort);
    /* [region: oneshot] */
    aio_wait_bh_oneshot(iothread_get_aio_context(it), where_bh, &p);
    /* [endregion] */
    CHECK("aio_wait_bh_oneshot() returns after the function has run",
          p.ran);
    CHECK_EQ("the function ran in the IOThread", p.tid,
             iothread_get_thread_id(it));
    iothread_destroy(it);

    /* [region: child] */
    status = tut_run_self("@misuse", err, sizeof(err));
    printf("the child's stderr:\n%s", err);
    /* [endregion] */
    CHECK("an IOThread waiting on another IOThread's context aborts",
          WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK("the abort message says why",
          strstr(err, "aio_wait_kick() only wakes the main loop") != NULL);
    bql_unlock();
    return 0;
}

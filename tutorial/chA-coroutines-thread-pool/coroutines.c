/* cc -Ic/include tutorial/chA-coroutines-thread-pool/coroutines.c -o build/coroutines -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chA-coroutines-thread-pool/coroutines.c - enter, yield, and waking a
 * coroutine from another one.
 *
 * A coroutine is a function with a stack of its own: it can stop in the
 * middle (qemu_coroutine_yield) and be continued later (entered again),
 * all in one thread, without locks.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

static char story[256];

static void note(const char *s)
{
    strcat(story, s);
    strcat(story, " ");
}

/* [region: hello] */
static void coroutine_fn hello_co(void *opaque)
{
    note("co:start");
    qemu_coroutine_yield();             /* back to whoever entered us */
    note("co:resumed");
}                                       /* returning ends the coroutine */
/* [endregion] */

static Coroutine *a_co, *b_co;
static bool b_ran_before_a_yielded;

/* [region: wake] */
static void coroutine_fn a_fn(void *opaque)
{
    note("A:wakes-B");
    aio_co_enter(qemu_get_current_aio_context(), b_co);
    b_ran_before_a_yielded = strstr(story, "B:runs") != NULL;
    note("A:goes-on");
}                                       /* B runs now, A is finished */

static void coroutine_fn b_fn(void *opaque)
{
    note("B:runs");
}
/* [endregion] */

#define VOLLEYS 25000
static Coroutine *players[2];
static int volleys;
static bool game_over;

/* [region: ping-pong] */
static void coroutine_fn player_co(void *opaque)
{
    Coroutine *other = players[opaque == &players[0]];

    AioContext *ctx = qemu_get_current_aio_context();

    while (volleys < VOLLEYS) {
        volleys++;
        aio_co_enter(ctx, other);       /* queued: it runs when we yield */
        qemu_coroutine_yield();
    }
    if (!game_over) {                   /* let the other one finish */
        game_over = true;
        aio_co_enter(ctx, other);
    }
}
/* [endregion] */

int main(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    Coroutine *co;

    qemu_set_current_aio_context(ctx);

    /* [region: enter] */
    co = qemu_coroutine_create(hello_co, NULL);
    note("main:enter");
    qemu_coroutine_enter(co);           /* runs until the yield */
    note("main:back");
    qemu_coroutine_enter(co);           /* runs from the yield to the end */
    note("main:end");
    /* [endregion] */
    printf("%s\n", story);
    CHECK("enter runs a coroutine until it yields; enter again resumes it",
          strcmp(story, "main:enter co:start main:back co:resumed "
                 "main:end ") == 0);
    CHECK("main is not in a coroutine", !qemu_in_coroutine());

    story[0] = '\0';
    a_co = qemu_coroutine_create(a_fn, NULL);
    b_co = qemu_coroutine_create(b_fn, NULL);
    qemu_coroutine_enter(a_co);
    printf("%s\n", story);
    CHECK("aio_co_enter() from a coroutine queues: B did not run inside A",
          !b_ran_before_a_yielded);
    CHECK("B ran as soon as A yielded (here: returned)",
          strcmp(story, "A:wakes-B A:goes-on B:runs ") == 0);

    players[0] = qemu_coroutine_create(player_co, &players[0]);
    players[1] = qemu_coroutine_create(player_co, &players[1]);
    qemu_coroutine_enter(players[0]);
    CHECK_EQ("two coroutines handed control back and forth 25000 times",
             volleys, VOLLEYS);
    CHECK("both players finished; the loop has nothing left to do",
          game_over && !aio_poll(ctx, false));

    aio_context_unref(ctx);
    return 0;
}

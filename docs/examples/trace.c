/* cc -Ic/include docs/examples/trace.c -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/* SPDX-License-Identifier: MIT */
/*
 * docs/examples/trace.c - record a few trace events and write them as
 * Chrome trace-event JSON for https://ui.perfetto.dev.  docs/tracing.md
 * includes the region below; tests/docs-check.py builds and runs this
 * file, which then checks that the events it expects were recorded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <aiolab/aiolab.h>

static void hello_bh(void *opaque)
{
    (*(int *)opaque)++;
}

/* Was an event @name (with @label, if not NULL) recorded since @since? */
static bool recorded(int64_t since, const char *name, const char *label)
{
    size_t n = aiolab_trace_collect(NULL, 0, since), i;
    AiolabTraceRecord *recs = calloc(n + 64, sizeof(*recs));
    bool found = false;

    n = aiolab_trace_collect(recs, n + 64, since);
    for (i = 0; i < n && !found; i++) {
        found = !strcmp(recs[i].name, name) &&
                (!label || (recs[i].label && !strcmp(recs[i].label, label)));
    }
    free(recs);
    return found;
}

int main(void)
{
    const char *path = "build/docs-examples/trace.json";
    AioContext *ctx = aio_context_new(&error_abort);
    Error *err = NULL;
    int runs = 0;

    qemu_set_current_aio_context(ctx);
    /* [region: capture] */
    aiolab_trace_set_enabled(true);         /* on by default; AIOLAB_TRACE=0 */
    aiolab_thread_set_name("example");      /* the track's name in Perfetto */
    int64_t since = aiolab_trace_now_ns();  /* export only what follows */

    aio_bh_schedule_oneshot(ctx, hello_bh, &runs);
    aiolab_trace_begin("my step", 1);       /* a slice of your own */
    aio_poll(ctx, true);                    /* runs hello_bh (ready: no wait) */
    aiolab_trace_end("my step", 1);
    aiolab_trace_mark("done", runs);        /* an instant of your own */

    if (!aiolab_trace_write_json(path, since, &err)) {
        error_report_err(err);
        return 1;
    }
    /* [endregion] */

    if (runs != 1 || !recorded(since, "aio_bh_call", "hello_bh") ||
        !recorded(since, "qemu_bh_schedule", "hello_bh") ||
        !recorded(since, "aio_poll", "ctx1") ||
        !recorded(since, "my step", NULL) || !recorded(since, "done", NULL)) {
        fprintf(stderr, "trace: an expected event is missing\n");
        return 1;
    }
    printf("trace: wrote %s\n", path);
    aio_context_unref(ctx);
    return 0;
}

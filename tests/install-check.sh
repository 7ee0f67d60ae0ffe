#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/install-check.sh - `make install PREFIX=...` gives a usable library:
# a program builds with pkg-config's flags alone and runs.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make --no-print-directory install PREFIX="$tmp/prefix" >/dev/null
cat > "$tmp/prog.c" <<'C'
#include <aiolab/aiolab.h>
#include <stdio.h>
static int ran;
static void cb(void *opaque) { ran++; }
int main(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    QEMUBH *bh;

    qemu_set_current_aio_context(ctx);
    bh = aio_bh_new(ctx, cb, NULL);
    qemu_bh_schedule(bh);
    aio_poll(ctx, false);
    qemu_bh_delete(bh);
    aio_context_unref(ctx);
    printf("%s %d\n", aiolab_version(), ran);
    return ran == 1 ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
cc "$tmp/prog.c" $(pkg-config --cflags --libs aiolab) \
    -Wl,-rpath,"$tmp/prefix/lib" -o "$tmp/prog"
"$tmp/prog"
echo "install-check: OK"

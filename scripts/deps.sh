#!/bin/sh
# SPDX-License-Identifier: MIT
# scripts/deps.sh TIER... - install the Debian packages a tier needs, if
# any are missing (as root, or through sudo).  Tiers (shared/DESIGN.md §3):
#   build    compiler, liburing, cffi, swig, python3-dev, matplotlib
#   test     pytest, nbclient, hypothesis, clang (fuzzing, TSan), the
#            peers that `make bench` measures
#   clients  the real clients: QEMU, qemu-img, fio, libnbd, busybox
set -eu

pkgs_build="gcc make pkg-config liburing-dev python3-dev python3-cffi swig
python3-matplotlib python3-setuptools libjansson-dev"
pkgs_test="python3-pytest python3-nbclient python3-nbformat python3-ipykernel
python3-hypothesis python3-tqdm python3-venv python3-pip jupyter-notebook
python3-pytest-forked python3-pytest-timeout python3-websocket python3-mypy
clang llvm libclang-rt-14-dev clang-format gdb libevent-dev libglib2.0-dev
libuv1-dev python3-uvloop"
pkgs_clients="qemu-system-x86 qemu-utils qemu-system-common fio libnbd-bin
python3-libnbd busybox-static cpio"

want=""
for tier in "$@"; do
    case "$tier" in
    build) want="$want $pkgs_build" ;;
    test) want="$want $pkgs_test" ;;
    clients) want="$want $pkgs_clients" ;;
    *) echo "scripts/deps.sh: unknown tier '$tier' (build, test, clients)" >&2
       exit 2 ;;
    esac
done

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "aiolab: installing missing Debian packages:$missing"
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
else
    echo "aiolab: cannot install them (not root, no sudo). As root, run:" >&2
    echo "    apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

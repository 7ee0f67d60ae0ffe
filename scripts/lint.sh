#!/bin/sh
# SPDX-License-Identifier: MIT
#
# scripts/lint.sh [BASE] - check the C lines changed since BASE (default
# HEAD: your uncommitted work; e.g. origin/main for a branch) against
# .clang-format, as QEMU's checkpatch checks a patch rather than the tree.
# Prints the reformatting clang-format wants and exits 1 if there is any.
#
# scripts/lint.sh --all - report how far the whole tree is from the
# format (informational, exit 0): the tree predates .clang-format and was
# hand-formatted; see docs/contributing.md.
set -eu
cd "$(dirname "$0")/.."
paths="c tests/c tutorial"
if [ "${1:-}" = "--all" ]; then
    files=$(git ls-files -- 'c/*.c' 'c/*.h' 'tests/c/*.c' 'tests/c/*.h')
    n=0
    for f in $files; do
        if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
            n=$((n + 1))
        fi
    done
    echo "lint --all: $n of $(echo "$files" | wc -w) C files differ from .clang-format (informational)"
    exit 0
fi
base=${1:-HEAD}
if ! command -v git-clang-format >/dev/null 2>&1; then
    echo "lint: git-clang-format not found (Debian package clang-format)" >&2
    exit 2
fi
out=$(git clang-format --diff "$base" -- $paths 2>&1) || {
    echo "$out" >&2
    exit 2
}
case "$out" in
*"diff --git"*)
    echo "$out"
    echo "lint: the lines above changed since $base do not follow .clang-format" >&2
    echo "      (fix them, or stage them - git add - and run: git clang-format $base)" >&2
    exit 1 ;;
esac
echo "lint: OK (lines changed since $base)"

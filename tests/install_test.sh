#!/usr/bin/env bash
# Installs replog into a temporary prefix and builds and runs a consumer project
# that uses find_package(replog). Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -x "$tmp/prefix/bin/replog"
cmake -S "$src/tests/consumer" -B "$tmp/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
out=$("$tmp/consumer/consumer")
[ "$out" = '{"due":"2026-01-02T03:04:05Z"}' ] || { echo "consumer printed: $out"; exit 1; }
echo "installed package found and used"

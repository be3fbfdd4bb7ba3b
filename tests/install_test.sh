#!/usr/bin/env bash
# Installs replog into a temporary prefix and builds and runs a consumer project
# that uses find_package(replog) and includes only <replog/replog.h>; then
# builds the to-do example (examples/todo) the same way and runs its story
# (tests/todo_example_test.sh).
# The consumer is compiled with a directory of poisoned lmdb.h, zmq.h,
# zmq.hpp and msgpack.hpp first on its include path: a public header that
# reaches one of them fails the build. Usage: install_test.sh BUILD_DIR SOURCE_DIR
# REPLOG_CONSUMER_FLAGS: compiler and linker flags the consumer needs too (the
# sanitizer flags of a sanitized build).
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -x "$tmp/prefix/bin/replog"

# Only include/replog/ is installed, as include/replog/.
installed=$(cd "$tmp/prefix/include" && find . -type f | sort)
expected=$(cd "$src/include" && find . -type f -name '*.h' | sort)
[ "$installed" = "$expected" ] || { echo "installed headers differ from include/replog/:"; diff <(echo "$expected") <(echo "$installed"); exit 1; }

mkdir "$tmp/poison"
for h in lmdb.h zmq.h zmq.hpp msgpack.hpp; do
  echo '#error "a public header reached an internal dependency"' >"$tmp/poison/$h"
done
extra=${REPLOG_CONSUMER_FLAGS:-}
cmake -S "$src/tests/consumer" -B "$tmp/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_CXX_FLAGS="-I$tmp/poison${extra:+ $extra}" ${extra:+-DCMAKE_EXE_LINKER_FLAGS="$extra"} >/dev/null
cmake --build "$tmp/consumer" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
out=$("$tmp/consumer/consumer" "$tmp/data")
[ "$out" = 'due 2026-01-02T03:04:05Z by 32-hex update, state hash of 64 hex digits' ] ||
  { echo "consumer printed: $out"; exit 1; }
echo "installed package found and used; no public header reaches LMDB, ZeroMQ or msgpack-c"

cmake -S "$src/examples/todo" -B "$tmp/todo" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_CXX_FLAGS="-I$tmp/poison${extra:+ $extra}" ${extra:+-DCMAKE_EXE_LINKER_FLAGS="$extra"} >/dev/null
cmake --build "$tmp/todo" >"$tmp/todo-build.log" 2>&1 || { cat "$tmp/todo-build.log"; exit 1; }
"$src/tests/todo_example_test.sh" "$tmp/todo/todo" "$tmp/prefix/bin/replog"

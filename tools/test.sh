#!/usr/bin/env bash
# Builds replog and runs every test through ctest; exits non-zero on any failure.
# Installs what is missing first (tools/deps.sh). Safe to run again: it rebuilds
# only what changed.
#   REPLOG_SEED=N      replay the randomised tests with this seed
#   REPLOG_FUZZ_SECONDS=N  how long the fuzz targets run in all (default 30; 0 skips them)
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/deps.sh

jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPLOG_BUILD_BENCH=ON -DREPLOG_NODE_SUITES=ON >/dev/null
cmake --build build --parallel "$jobs"

ctest --test-dir build --output-on-failure --parallel "$jobs" --timeout 600

# The fuzz targets (tools/fuzz.sh), one budget split across them; exit 77 there
# means clang or its fuzzer runtime cannot be had, and the step is skipped.
fuzz_seconds=${REPLOG_FUZZ_SECONDS:-30}
if [ "$fuzz_seconds" -gt 0 ]; then
  fuzz_rc=0
  ./tools/fuzz.sh --total-seconds "$fuzz_seconds" || fuzz_rc=$?
  [ "$fuzz_rc" -eq 0 ] || [ "$fuzz_rc" -eq 77 ] || { echo "tools/fuzz.sh failed (above)"; exit 1; }
fi

#!/usr/bin/env bash
# Builds replog and runs every test through ctest; exits non-zero on any failure.
# Installs what is missing first (tools/deps.sh). Safe to run again: it rebuilds
# only what changed.
#   REPLOG_SEED=N      replay the randomised tests with this seed
#   REPLOG_FUZZ_SECONDS=N  how long the decoder fuzzer runs (default 30; 0 skips it)
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/deps.sh

jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPLOG_BUILD_BENCH=ON -DREPLOG_NODE_SUITES=ON >/dev/null
cmake --build build --parallel "$jobs"

fuzz_seconds=${REPLOG_FUZZ_SECONDS:-30}
have_rt() { dpkg-query -W -f='${Status}' libclang-rt-dev 2>/dev/null | grep -q "install ok installed"; }
if command -v clang++ >/dev/null && [ "$fuzz_seconds" -gt 0 ] && ! have_rt; then
  # libFuzzer's runtime comes with clang's runtime libraries.
  echo "installing: libclang-rt-dev" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-rt-dev; } >/dev/null 2>&1 ||
    echo "libclang-rt-dev is not available: the fuzzer is skipped" >&2
fi
if command -v clang++ >/dev/null && [ "$fuzz_seconds" -gt 0 ] && have_rt; then
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DREPLOG_FUZZ=ON -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
  cmake --build build-fuzz --parallel "$jobs" --target fuzz_decoders
fi

ctest --test-dir build --output-on-failure --parallel "$jobs" --timeout 600

if [ -x build-fuzz/tests/fuzz_decoders ]; then
  echo "fuzzing the decoders for ${fuzz_seconds}s"
  mkdir -p build-fuzz/corpus
  build-fuzz/tests/fuzz_decoders -max_total_time="$fuzz_seconds" -max_len=4096 -rss_limit_mb=2048 \
    -print_final_stats=0 build-fuzz/corpus tests/fuzz_seeds 2> build-fuzz/fuzz.log \
    || { tail -n 40 build-fuzz/fuzz.log; echo "fuzzer found a crash (build-fuzz/fuzz.log)"; exit 1; }
  grep -E "^Done [0-9]+ runs" build-fuzz/fuzz.log | tail -n 1 || true
fi

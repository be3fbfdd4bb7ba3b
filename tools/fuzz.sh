#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for a
# fixed budget over its checked-in seed corpus (tests/fuzz/corpus/<target>/).
# Prints per target: executions, executions per second, corpus size, crashes.
# Exits 1 on a crash (its input's path on one line: "crash: <target> <path>"),
# 77 when clang or its fuzzer runtime cannot be had (one line says why).
usage() {
  cat <<'USAGE'
usage: tools/fuzz.sh [options]
  --seconds-per-target N  time budget of each target (default 60)
  --total-seconds N       one budget split evenly across the targets run
  --runs N                stop each target after N executions (with the time budget, whichever comes first)
  --target NAME           run only this target (values, frames, bodies, json, beacon, invite, proof, s3list, archive); may be repeated
  --json                  print one JSON object with the figures instead of the table
  --write-corpus          rewrite tests/fuzz/corpus/ with the real encoders, then exit
  -h, --help              this text
Environment: REPLOG_BUILD_JOBS (build parallelism; default nproc).
The growing corpus is kept in build-fuzz/corpus/<target>/; crash inputs go to
build-fuzz/artifacts/<target>/ and each target's log to build-fuzz/fuzz-<target>.log.
USAGE
}
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(values frames bodies json beacon invite proof s3list archive http)
targets=()
per_target=60
total=""
runs=-1
json=0
write_corpus=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds-per-target) per_target=${2:?}; shift 2 ;;
    --total-seconds) total=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --target) targets+=("${2:?}"); shift 2 ;;
    --json) json=1; shift ;;
    --write-corpus) write_corpus=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fuzz.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: no target \"$t\" (${all_targets[*]})" >&2; exit 2; }
done
for n in "$per_target" "$runs" ${total:+"$total"}; do
  [[ "$n" =~ ^-?[0-9]+$ ]] || { echo "fuzz.sh: \"$n\" is not a number" >&2; exit 2; }
done
if [ "$per_target" -le 0 ] && [ -z "$total" ]; then
  echo "fuzz.sh: --seconds-per-target must be at least 1" >&2; exit 2
fi
if [ -n "$total" ]; then
  per_target=$(( total / ${#targets[@]} ))
  [ "$per_target" -gt 0 ] || per_target=1
fi
say() { [ "$json" = 1 ] || echo "$@"; }

# --- build -------------------------------------------------------------------------
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is not installed: fuzzing skipped" >&2; exit 77; }
have_rt() { dpkg-query -W -f='${Status}' libclang-rt-dev 2>/dev/null | grep -q "install ok installed"; }
if ! have_rt; then
  # libFuzzer's runtime comes with clang's runtime libraries.
  echo "installing: libclang-rt-dev" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-rt-dev; } >/dev/null 2>&1 || true
  have_rt || { echo "fuzz.sh: libclang-rt-dev is not available: fuzzing skipped" >&2; exit 77; }
fi
jobs=${REPLOG_BUILD_JOBS:-$(nproc)}
cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DREPLOG_FUZZ=ON -DREPLOG_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
if [ "$write_corpus" = 1 ]; then
  cmake --build build-fuzz --parallel "$jobs" --target fuzz_make_corpus >build-fuzz/build.log 2>&1 ||
    { tail -n 40 build-fuzz/build.log >&2; exit 1; }
  rm -rf tests/fuzz/corpus.new
  build-fuzz/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus.new
  # Seeds that are not the generator's (crash reproducers, older seeds) are kept.
  cp -a tests/fuzz/corpus.new/. tests/fuzz/corpus/ && rm -rf tests/fuzz/corpus.new
  exit 0
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
cmake --build build-fuzz --parallel "$jobs" "${build_targets[@]}" >build-fuzz/build.log 2>&1 ||
  { tail -n 40 build-fuzz/build.log >&2; echo "fuzz.sh: the build failed (build-fuzz/build.log)" >&2; exit 1; }

# --- run ---------------------------------------------------------------------------
# A stat line of libFuzzer's final report (-print_final_stats=1), or 0.
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1 | grep -E '^[0-9]+$' || echo 0; }
failed=0
rows=()
say "fuzzing ${targets[*]}: ${per_target}s each$([ "$runs" -ge 0 ] && echo ", at most $runs runs")"
[ "$json" = 1 ] || printf '%-8s %12s %9s %8s %8s\n' target executions exec/s corpus crashes
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t artifacts=build-fuzz/artifacts/$t log=build-fuzz/fuzz-$t.log
  mkdir -p "$corpus" "$artifacts"
  rc=0
  # The first directory grows; the checked-in seeds are only read. Sanitizer
  # findings, timeouts (10 s per input) and leaks all count as crashes.
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$per_target" -runs="$runs" -max_len=4096 \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(stat number_of_executed_units "$log")
  speed=$(stat average_exec_per_sec "$log")
  size=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' "$log" | tail -n 1)
  crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  crashes=0
  if [ "$rc" -ne 0 ]; then
    crashes=1
    failed=$((failed + 1))
  fi
  row="{\"target\": \"$t\", \"seconds\": $per_target, \"executions\": $execs, \"exec_per_sec\": $speed, \"corpus\": ${size:-0}, \"crashes\": $crashes"
  if [ -n "$crash" ]; then row+=", \"crash_file\": \"$crash\""; fi
  rows+=("$row}")
  [ "$json" = 1 ] || printf '%-8s %12s %9s %8s %8s\n' "$t" "$execs" "$speed" "${size:-0}" "$crashes"
  if [ "$rc" -ne 0 ]; then
    [ "$json" = 1 ] || grep -E "fuzz invariant violated|ERROR: |runtime error:|SUMMARY:" "$log" | head -n 5 >&2 || true
    echo "crash: $t ${crash:-"(no input written; see $log)"}" >&2
  fi
done
if [ "$json" = 1 ]; then
  printf '{"seconds_per_target": %s, "runs": %s, "targets": [' "$per_target" "$runs"
  sep=""
  for r in "${rows[@]}"; do printf '%s%s' "$sep" "$r"; sep=", "; done
  printf '], "crashes": %s}\n' "$failed"
fi
[ "$failed" -eq 0 ]

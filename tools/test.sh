#!/usr/bin/env bash
# Builds replog and runs every test through ctest; exits non-zero on any failure.
# Installs what is missing first (tools/deps.sh). Safe to run again: it rebuilds
# only what changed.
#   REPLOG_SEED=N      replay the randomised tests with this seed
#   REPLOG_FUZZ_SECONDS=N  how long the fuzz targets run in all (default 30; 0 skips them)
# --sanitize and --tsan run sanitizer builds instead (--help says more).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: tools/test.sh [--sanitize | --tsan | --help] [-- CTEST_ARGS...]

With no flag: builds build/ (RelWithDebInfo), runs every test through ctest,
then the fuzz targets (REPLOG_FUZZ_SECONDS=N, default 30, 0 skips them). This
is what CI runs.

  --sanitize  builds build-asan/ with AddressSanitizer and UndefinedBehavior-
              Sanitizer (REPLOG_SANITIZE=address) and runs the whole ctest
              suite: leaks, memory errors and undefined behaviour stop the
              process. Every sanitized process, also those that Python and
              shell tests start, writes its report into
              build-asan/sanitizer-logs/; any non-empty log there fails the run
              and is printed. The suite takes about 10 minutes on 2
              cores, the first build much longer.
  --tsan      builds the GoogleTest executables in build-tsan/ with
              ThreadSanitizer (REPLOG_SANITIZE=thread) and runs their tests
              (the suites that run threads), with tools/tsan.supp; reports go
              to build-tsan/sanitizer-logs/ and fail the run likewise.
  --help      prints this.
  -- ARGS     with --sanitize or --tsan: further arguments for ctest, e.g.
              -- -E '^(Sim|ReplayProperty)\.' to leave out the long
              single-node suites, or -- -R '^Threads\.' for one suite.

Under both, ctest timeouts are 5x (ASan) or 10x (TSan) longer, and
REPLOG_TIME_SCALE=5 or 10 stretches the time bounds of the C++ tests
(tests/test_seed.h: property budgets, threads_test's waits).
The fuzz step is not run (tools/fuzz.sh builds its own ASan+UBSan targets).
Environment: REPLOG_SEED=N replays the randomised tests with this seed.
EOF
}

mode=release
ctest_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --sanitize) mode=address ;;
    --tsan) mode=thread ;;
    -h | --help) usage; exit 0 ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "tools/test.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [ "${#ctest_args[@]}" -gt 0 ] && [ "$mode" = release ]; then
  echo "tools/test.sh: ctest arguments after -- go with --sanitize or --tsan" >&2
  exit 2
fi

./tools/deps.sh

jobs=$(nproc)

if [ "$mode" = release ]; then
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
  exit 0
fi

# --- sanitizer builds ------------------------------------------------------------

# Prints every non-empty report in $1 and fails when there is one. A sanitizer
# stops the process it finds something in; a report of a child process that a
# Python or shell test started would otherwise be seen only as a failed step,
# or not at all when the test expects that child to die.
check_sanitizer_logs() {
  local dir=$1 found=0 f
  for f in "$dir"/*; do
    [ -s "$f" ] || continue
    found=$((found + 1))
    echo "==== sanitizer report: $f"
    cat "$f"
  done
  if [ "$found" -gt 0 ]; then
    echo "$found sanitizer report(s) in $dir (above)"
    return 1
  fi
  echo "no sanitizer reports in $dir"
}

if [ "$mode" = address ]; then
  dir=build-asan slowdown=5
else
  dir=build-tsan slowdown=10
fi
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPLOG_BUILD_BENCH=ON -DREPLOG_NODE_SUITES=ON \
  -DREPLOG_SANITIZE="$mode" >/dev/null
logs=$PWD/$dir/sanitizer-logs
rm -rf "$logs"
mkdir -p "$logs"
export REPLOG_TIME_SCALE=$slowdown
start=$(date +%s)
rc=0

if [ "$mode" = address ]; then
  cmake --build "$dir" --parallel "$jobs"
  # abort_on_error: a report ends in SIGABRT, so no test can take it for a normal
  # exit code. quarantine_size_mb bounds the memory freed blocks are held in
  # (several sanitized processes run at once). verify_asan_link_order=0: the
  # nemesis starts nodes under libfaketime, an LD_PRELOAD that comes before the
  # ASan runtime.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:quarantine_size_mb=32:verify_asan_link_order=0:log_path=$logs/asan"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1:log_path=$logs/ubsan"
  ctest --test-dir "$dir" --output-on-failure --parallel "$jobs" --timeout $((600 * slowdown)) \
    ${ctest_args[@]+"${ctest_args[@]}"} || rc=$?
else
  # The GoogleTest executables: every test that runs threads in one process
  # (writer, peer service and API threads). The Python and shell tests run the
  # same code in separate processes, one thread of each at a time per call.
  targets=(replog_tests data_dir_test identity_test threads_test secure_transport_test trust_test sim_test
    replay_property_test ingest_test crash_test)
  cmake --build "$dir" --parallel "$jobs" --target "${targets[@]}"
  # Their tests, by suite name, read from what ctest lists for those programs.
  suites=$(ctest --test-dir "$dir" --show-only=json-v1 | /usr/bin/python3 -c '
import json, os, sys
programs = set(sys.argv[1:])
suites = set()
for t in json.load(sys.stdin)["tests"]:
    cmd = t.get("command") or []
    if cmd and os.path.basename(cmd[0]) in programs:
        suites.add(t["name"].split(".")[0])
print("|".join(sorted(suites)))' "${targets[@]}")
  [ -n "$suites" ] || { echo "no tests found for ${targets[*]}"; exit 1; }
  echo "TSan: running the suites ${suites//|/, }"
  # halt_on_error: the first race stops the process. tools/tsan.supp says what
  # is suppressed and why (only reports from inside libzmq).
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tools/tsan.supp:log_path=$logs/tsan"
  ctest --test-dir "$dir" --output-on-failure --parallel "$jobs" --timeout $((600 * slowdown)) \
    -R "^($suites)\." ${ctest_args[@]+"${ctest_args[@]}"} || rc=$?
fi

echo "$dir: ctest finished in $(($(date +%s) - start)) s (exit $rc)"
check_sanitizer_logs "$logs" || rc=1
exit "$rc"

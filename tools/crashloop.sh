#!/usr/bin/env bash
# A long crash loop: the crash test's writer (real processes, real LMDB) is
# SIGKILLed at random moments, and after every kill the directory is checked:
# every acknowledged update present, seq prefixes whole, checkpoints usable.
#   tools/crashloop.sh [--kills N] [--seconds S] [--seed SEED]
# Defaults: 500 kills within 900 s. Prints the crash test's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=500 seconds=900 seed=${REPLOG_SEED:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) kills=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "crashloop.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -f build/build.ninja ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target crash_test crash_writer >/dev/null
bin=$(find build/tests -maxdepth 1 -name crash_test -type f | head -n 1)
[ -n "$bin" ] || { echo "crashloop.sh: crash_test was not built" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
env ${seed:+REPLOG_SEED=$seed} REPLOG_CRASH_KILLS="$kills" REPLOG_CRASH_SECONDS="$seconds" \
  "$bin" --gtest_filter='CrashTest.SigkillAtRandomMomentsLosesNothingAcknowledged' >"$log" 2>&1 || status=$?
grep -E "crash test:|SEED|seed|Failure|FAILED|PASSED" "$log" || tail -n 20 "$log"
exit "$status"

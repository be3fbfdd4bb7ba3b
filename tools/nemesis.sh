#!/usr/bin/env bash
# Runs the nemesis (tests/nemesis/nemesis.py) for longer than ctest does: five
# `replog node` processes in network namespaces under kills, stops, partitions
# and clock offsets, then heal, converge and the independent checker.
#   tools/nemesis.sh [--seconds N] [--seed S] [--runs R] [--beyond-skew] [--keep]
# --runs R runs seeds S, S+1, ... S+R-1 one after another and prints each run's
# summary line, then a total. Needs root (it makes namespaces); installs what is
# missing through tools/deps.sh and builds the replog program first if needed.
# Exit status: 0 when every run passed (77 when the nemesis cannot run here).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=120 seed=${REPLOG_SEED:-} runs=1 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --beyond-skew|--keep) extra+=("$1"); shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "nemesis.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$seed" ] || seed=$(( $(od -An -N4 -tu4 /dev/urandom) ))

source tools/deps.sh
[ -f build/build.ninja ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target replog-cli >/dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0 passed=0
for ((r = 0; r < runs; r++)); do
  s=$(( seed + r ))
  code=0
  /usr/bin/python3 tests/nemesis/nemesis.py build/replog --seconds "$seconds" --seed "$s" \
    --json "$out/$s.json" "${extra[@]}" > "$out/$s.log" 2>&1 || code=$?
  if [ "$code" -eq 77 ]; then tail -1 "$out/$s.log"; exit 77; fi
  grep -E 'failed after|FOUND DOWN|UNCLEAN|FAILURE' "$out/$s.log" | sed 's/^/  /' || true
  grep -E '^\[.*\] (PASS|FAIL) nemesis' "$out/$s.log" | sed 's/^\[[^]]*\] //' || true
  if [ "$code" -eq 0 ]; then passed=$((passed + 1)); else
    failed=$((failed + 1))
    echo "---- run with seed $s failed (exit $code); its output:"; cat "$out/$s.log"
  fi
done
echo "nemesis: $passed passed, $failed failed ($runs runs of $seconds s from seed $seed)"
[ "$failed" -eq 0 ]

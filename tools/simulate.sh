#!/usr/bin/env bash
# Runs many seeds of the deterministic simulator (tests/sim) in parallel and
# reports seeds run, passed, seeds per hour, the fault mix, and every failure
# with the one command that replays it. Builds replog_sim first if needed.
#   tools/simulate.sh --seeds N [--jobs J] [--seed FIRST] [--nodes K] [--steps S]
#                     [--faults LIST] [--minutes M] [--twice]
# --twice runs each seed twice and fails a seed whose runs differ (two trace
# hashes), while other seeds run beside it. Without --nodes, each batch of
# seeds takes K from 3..9 in turn. --minutes stops starting batches after M
# minutes (the seeds not started are not run).
# Exit status: 0 when every seed run passed.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=100 jobs=$(nproc) first=${REPLOG_SEED:-1} nodes="" steps=300 faults=all minutes=0 batch=10 twice=
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --seed) first=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --faults) faults=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --twice) twice=--twice; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "simulate.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

[ -f build/build.ninja ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target replog_sim >/dev/null
sim=build/tests/sim/replog_sim

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
deadline=$(( minutes > 0 ? start + minutes * 60 : 0 ))

# One line per batch: its first seed, its seed count, its node count.
for ((b = 0; b * batch < seeds; b++)); do
  s=$(( first + b * batch ))
  n=$(( seeds - b * batch < batch ? seeds - b * batch : batch ))
  k=${nodes:-$(( 3 + b % 7 ))}
  echo "$s $n $k"
done | xargs -P "$jobs" -L 1 sh -c '
  # $0 steps, $1 deadline, $2 program, $3 faults, $4 output dir, $5 --twice or empty; then the line: $6 seed, $7 count, $8 nodes
  if [ "$1" -gt 0 ] && [ "$(date +%s)" -ge "$1" ]; then exit 0; fi
  # Exit 1 is a seed that failed (its JSON says which); anything else is a
  # simulator that stopped (an abort, a crash): the batch is named as such.
  "$2" --seed "$6" --seeds "$7" --nodes "$8" --steps "$0" --faults "$3" $5 --json > "$4/$6.json" 2> "$4/$6.err"
  rc=$?
  if [ "$rc" -gt 1 ]; then echo "$6 $7 $8 $rc $(tail -n 1 "$4/$6.err")" > "$4/$6.stopped"; fi
  exit 0
' "$steps" "$deadline" "$sim" "$faults" "$out" "$twice"
elapsed=$(( $(date +%s) - start ))

python3 - "$elapsed" "$out" "$faults" "$steps" <<'PY'
import glob, json, sys
elapsed = max(1, int(sys.argv[1]))
runs = []
for f in sorted(glob.glob(sys.argv[2] + "/*.json")):
    for l in open(f):
        try:
            runs.append(json.loads(l))
        except json.JSONDecodeError:
            pass  # the last line of a batch that stopped: named below
stopped = [open(f).read().split(" ", 4) for f in sorted(glob.glob(sys.argv[2] + "/*.stopped"))]
failed = [r for r in runs if not r["passed"]]
mix = {}
for r in runs:
    for kind, n in r["faults"].items():
        mix[kind] = mix.get(kind, 0) + n
print(f"seeds run: {len(runs)}, passed: {len(runs) - len(failed)}, failed: {len(failed)}")
print(f"runs with copied directories (full checks): {sum(r.get('copied', False) for r in runs)}")
print(f"runs verified on the loops ahead of the writers: {sum(r.get('verified_ahead', 0) for r in runs)}")
print(f"time: {elapsed} s, seeds per hour: {len(runs) * 3600 // elapsed}")
print("fault mix: " + ", ".join(f"{kind} {n}" for kind, n in sorted(mix.items())))
for r in failed:
    print(f"FAILED seed {r['seed']}: {r['problems'][0] if r['problems'] else '?'}")
    print(f"  replay: {r['replay']}")
for first, count, nodes, rc, why in stopped:
    print(f"STOPPED the batch of seeds {first}..{int(first) + int(count) - 1} with {nodes} nodes (exit {rc}): {why.strip()}")
    print(f"  replay one by one: build/tests/sim/replog_sim --seed SEED --nodes {nodes} --faults {sys.argv[3]} --steps {sys.argv[4]}")
sys.exit(1 if failed or stopped or not runs else 0)
PY

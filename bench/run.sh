#!/usr/bin/env bash
# Runs replog and its peers (Yjs, Automerge, Hypercore, PouchDB) on the same
# workloads in one sitting and writes the generated section of
# docs/BENCHMARKS.md ("Side by side ...") and its chart,
# docs/benchmarks/peers.svg. See bench/peers/ for the peers' scripts.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/run.sh [--quick] [--dir DIR] [--build DIR] [--note TEXT] [--help]
  --quick      small N (A, B: 20,000; C: 2,000): under 5 minutes on 2 cores
  --dir DIR    make the temp dirs under DIR (default /tmp; choose the file system)
  --build DIR  the CMake build dir of the bench programs (default build-bench)
  --note TEXT  a sentence for the page about this run (e.g. what else ran on the machine)
Without --quick: A and B at N = 1,000,000 for replog and Yjs, 100,000 for
Automerge, Hypercore and PouchDB (slower by orders of magnitude); C at 10,000.
Installs what is missing (bench/peers with npm ci, gnuplot), builds the bench
programs, runs every system, and rewrites the section between the
peers:begin and peers:end markers of docs/BENCHMARKS.md.
USAGE
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
quick=0
tmp_parent=/tmp
build="$root/build-bench"
note=""
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --dir) tmp_parent="$2"; shift ;;
    --build) build="$2"; shift ;;
    --note) note="$2"; shift ;;
    --help|-h) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if ((quick)); then
  n_ab=20000; n_ab_slow=20000; n_c=2000
else
  n_ab=1000000; n_ab_slow=100000; n_c=10000
fi

# --- what is missing --------------------------------------------------------------------
# The build's packages, Node.js and the peers (npm ci in bench/peers).
source "$root/tools/deps.sh"
log() { echo "bench/run.sh: $*" >&2; }
# The chart only; gnuplot-nox is gnuplot without X11.
if ! command -v gnuplot >/dev/null; then
  log "installing: gnuplot-nox"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null
fi
peers="$root/bench/peers"

# --- replog's bench programs (the build type of docs/BENCHMARKS.md) -----------------------
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPLOG_BUILD_BENCH=ON >/dev/null
fi
log "building replog_replication_bench and replog_bench"
cmake --build "$build" --target replog_replication_bench replog_bench >/dev/null

results="$(mktemp -d "$tmp_parent/replog-peers-XXXXXX")"
trap 'rm -rf "$results"' EXIT
start=$(date +%s.%N)
elapsed() { awk -v now="$(date +%s.%N)" -v start="$start" 'BEGIN { printf "%.1f", now - start }'; }
load_start=$(cut -d' ' -f1 /proc/loadavg)

# --- replog ------------------------------------------------------------------------------
log "replog: A (fresh replication, 1/10/100 origins) and B (small diff), N=$n_ab"
quick_flag=()
((quick)) && quick_flag=(--quick)
"$build/bench/replog_replication_bench" "${quick_flag[@]}" --json --dir "$tmp_parent" --only fresh,diff \
  --origins 1,10,100 --updates "$n_ab" --paths 10000 >"$results/replication.json"
log "replog: C (durable single appends), N=$n_c"
"$build/bench/replog_bench" --json --dir "$tmp_parent" --only single --ops "$n_c" >"$results/single.json"

# --- the peers -----------------------------------------------------------------------------
# run_peer SYSTEM WORKLOAD N SCRIPT [ARGS...]: one line into peers.jsonl, or an
# error line when the script fails (the run goes on).
run_peer() {
  local system=$1 workload=$2 n=$3 script=$4
  shift 4
  log "$system: $workload, N=$n"
  local out
  if out=$(node "$peers/$script" "$@" --n "$n" --workload "$workload" --dir "$tmp_parent" 2>"$results/err"); then
    echo "$out" >>"$results/peers.jsonl"
  else
    local status=$? why
    why=$(tail -n 1 "$results/err" | tr -d '"\\')
    echo "{\"system\":\"$system\",\"workload\":\"$workload\",\"n\":$n,\"error\":\"exit $status: $why\"}" >>"$results/peers.jsonl"
    log "$system $workload failed: $why"
  fi
}
: >"$results/peers.jsonl"
for variant in array map; do
  for w in A B; do run_peer "yjs-$variant" $w $n_ab yjs.js --variant $variant; done
  run_peer "yjs-$variant" C $n_c yjs.js --variant $variant
done
for p in automerge hypercore pouchdb; do
  for w in A B; do run_peer $p $w $n_ab_slow $p.js; done
  run_peer $p C $n_c $p.js
done

# --- the machine and the run -------------------------------------------------------------------
load_end=$(cut -d' ' -f1 /proc/loadavg)
packages=$(cd "$peers" && node -e '
  const deps = Object.keys(require("./package.json").dependencies);
  const out = {};
  for (const d of deps) out[d] = require("./node_modules/" + d + "/package.json").version;
  process.stdout.write(JSON.stringify(out));')
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
fs_type=$(df -T "$tmp_parent" | awk 'NR == 2 { print $2 }')
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt")
node -e '
  const [cpu, cores, kernel, fs, nodeV, packages, build] = process.argv.slice(1);
  process.stdout.write(JSON.stringify({ cpu, cores: Number(cores), kernel, filesystem: fs, node: nodeV,
    packages: JSON.parse(packages), build_type: build }));' \
  "$cpu" "$(nproc)" "$(uname -s) $(uname -r | cut -d- -f1)" "$fs_type" "$(node --version)" "$packages" "$build_type" >"$results/machine.json"
commit=$(git -C "$root" rev-parse --short HEAD)
if [ -n "$(git -C "$root" status --porcelain -- ':!docs')" ]; then commit="$commit with local changes"; fi
node -e '
  const [quick, date, commit, ls, le, seconds, nab, nabSlow, nc, note] = process.argv.slice(1);
  const g = (v) => Number(v).toLocaleString("en-US");
  process.stdout.write(JSON.stringify({ quick: quick === "1", date, commit, load_start: ls, load_end: le,
    seconds: Number(seconds), n_ab: nab === nabSlow ? g(nab) : g(nab) + " (Automerge, Hypercore, PouchDB: " + g(nabSlow) + ")",
    n_c: g(nc), note }));' \
  "$quick" "$(date -u +%Y-%m-%d)" "$commit" "$load_start" "$load_end" \
  "$(elapsed)" "$n_ab" "$n_ab_slow" "$n_c" "$note" >"$results/run.json"

# --- the page and the chart ---------------------------------------------------------------------
mkdir -p "$root/docs/benchmarks"
node "$peers/report.js" "$results" "$root/docs/BENCHMARKS.md" peers.svg
gnuplot -c "$results/chart.gp" "$root/docs/benchmarks/peers.svg" "$results/chart.dat"
log "wrote docs/BENCHMARKS.md (section peers) and docs/benchmarks/peers.svg in $(elapsed) s"

#!/usr/bin/env bash
# The main job, on a fresh machine: installs what is missing, builds, and runs
# three replog nodes on loopback, paired by one-line invites and linked over
# CURVE — typed updates made on each, gossip until the
# three state hashes are equal, a device that worked offline coming back with a
# conflict, and the conflict resolved. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --parallel "$(nproc)" --target replog-cli >/dev/null

replog=$PWD/build/replog
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ replog %s\n' "$*"; "$replog" "$@"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
names=(laptop phone tablet)
declare -A port
for n in "${names[@]}"; do port[$n]=$(free_port); done
start() {  # start NAME: its daemon, with no --peer: it dials whom its invite and its members name
  local n=$1
  "$replog" node --data "$n" --listen "tcp://127.0.0.1:${port[$n]}" \
    --anti-entropy-ms 300 --log-level warn 2>>"$n.log" &
  pids+=($!)
  eval "pid_$n=$!"
  for _ in $(seq 50); do [ -e "$n/api.endpoint" ] && return; sleep 0.1; done
}
hashes() { for n in "${names[@]}"; do printf '  %-7s %s\n' "$n" "$("$replog" state --data "$n" --hash)"; done; }
wait_equal() {
  for i in $(seq 50); do
    local h; h=$(for n in "${names[@]}"; do "$replog" state --data "$n" --hash; done | sort -u | wc -l)
    if [ "$h" -eq 1 ]; then echo "  equal after $((i * 100)) ms:"; hashes; return; fi
    sleep 0.1
  done
  echo "  not equal after 5 s:"; hashes; return 1
}

cat > schema.json <<'JSON'
{"enums": {"Color": ["Red", "Green", "Blue"]},
 "records": {"Task": {"fields": {"title": "string", "due": "time", "color": "Color", "done": "bool"},
                      "required": ["title"], "unique": ["title"]}}}
JSON

step "the laptop makes the cluster (with a schema) and runs its node on loopback"
run init --data laptop --schema schema.json
start laptop
echo "  laptop listening on tcp://127.0.0.1:${port[laptop]}, device $("$replog" id --data laptop)"

step "the phone and the tablet join, each with a one-time line the laptop prints (CURVE from the first byte)"
for n in phone tablet; do
  printf '$ replog invite --data laptop --endpoint tcp://127.0.0.1:%s\n' "${port[laptop]}"
  line=$("$replog" invite --data laptop --endpoint "tcp://127.0.0.1:${port[laptop]}" 2>/dev/null)
  echo "  $line"
  run join "$line" --data "$n" --name "$n"
done
for n in phone tablet; do start "$n"; echo "  $n listening on tcp://127.0.0.1:${port[$n]}"; done
echo "  the joiners receive the laptop's log (its schema is update #1):"
wait_equal

step "membership spreads: the phone was told of the tablet by the laptop, and trusts it (how: introducer)"
for _ in $(seq 50); do
  "$replog" trust list --data phone --json | grep -q introducer && break
  sleep 0.1
done
run trust list --data phone

step "updates on every device: a date, an enum, counters"
run call --data laptop create '{"type": "Task", "id": "t1", "fields": {"title": "ship v1", "due": {"$time": "2026-12-01T09:30:00+01:00"}, "color": {"$enum": "Color.Green"}}}' >/dev/null
run call --data phone create '{"type": "Task", "id": "t2", "fields": {"title": "write docs", "color": {"$enum": "Color.Blue"}}}' >/dev/null
for n in "${names[@]}"; do run call --data "$n" inc '{"path": "stats.visits", "by": 1}' >/dev/null; done

step "gossip: the three state hashes become equal"
wait_equal

step "the tablet, which now holds the laptop's task, marks it done"
run call --data tablet update '{"type": "Task", "id": "t1", "fields": {"done": true}}' >/dev/null
wait_equal

step "state on the tablet, typed: the date is a time, the enum the registered member"
run state --data tablet --path Task.t1
run state --data tablet --info

step "bad input at the keyboard is refused, naming the place; nothing is stored"
run call --data phone update '{"type": "Task", "id": "t2", "fields": {"color": {"$enum": "Color.Purple"}}}' || true

step "the phone goes offline; it and the laptop both create a task titled \"release\""
kill "$pid_phone"; wait "$pid_phone" 2>/dev/null || true
run call --data phone create '{"type": "Task", "id": "p9", "fields": {"title": "release"}}' >/dev/null
sleep 0.05
run call --data laptop create '{"type": "Task", "id": "t3", "fields": {"title": "release"}}' >/dev/null

step "the phone comes back: the later create is skipped on every device alike, as a conflict"
start phone
wait_equal
run conflicts --data tablet
skipped=$("$replog" conflicts --data tablet --json | /usr/bin/python3 -c 'import json,sys; c=json.load(sys.stdin)["conflicts"]; print(c[0]["update"] if c else "")')

step "a person renames the task and closes the conflict; it is closed everywhere"
run call --data laptop create '{"type": "Task", "id": "t3", "fields": {"title": "release (laptop)"}}' >/dev/null
run resolve --data laptop "$skipped" >/dev/null
wait_equal
run conflicts --data phone
sleep 0.3
run peers --data laptop

#!/usr/bin/env bash
# The main job, on a fresh machine: installs what is missing, builds, and shows
# replog doing its work offline: typed updates into an LMDB log, state rebuilt
# by replay, two devices that worked apart exchanging their logs, a conflict
# surfaced and resolved, and both ending with the same state hash.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --parallel "$(nproc)" >/dev/null

replog=$PWD/build/replog
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ replog %s\n' "$*"; "$replog" "$@"; }

cat > schema.json <<'JSON'
{"enums": {"Color": ["Red", "Green", "Blue"]},
 "records": {"Task": {"fields": {"title": "string", "due": "time", "color": "Color", "done": "bool"},
                      "required": ["title"], "unique": ["title"]}}}
JSON

step "a laptop: a data directory with a schema (recorded as the log's first update)"
run init --data laptop --schema schema.json
cluster=$("$replog" status --data laptop --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster_id"])')

step "updates with a date and an enum, as typed JSON"
run call --data laptop create '{"type": "Task", "id": "t1", "fields": {"title": "ship v1", "due": {"$time": "2026-12-01T09:30:00+01:00"}, "color": {"$enum": "Color.Green"}}}'
run call --data laptop set '{"path": "stats.visits", "value": 1}'
run call --data laptop inc '{"path": "stats.visits", "by": 2}'

step "state comes back typed: the date is a time, the enum the registered member"
run state --data laptop --path Task.t1
step "and as info JSON, for display"
run state --data laptop --info

step "bad input at the keyboard is refused, naming the place; nothing is stored"
run call --data laptop update '{"type": "Task", "id": "t1", "fields": {"color": {"$enum": "Color.Purple"}}}' || true
run call --data laptop update '{"type": "Task", "id": "t1", "fields": {"due": "tomorrow"}}' || true

step "a phone in the same cluster works apart and creates a task with the same (unique) title"
run init --data phone --cluster "$cluster" --schema schema.json
run call --data phone create '{"type": "Task", "id": "p7", "fields": {"title": "ship v1", "color": {"$enum": "Color.Red"}}}'

step "they meet: each imports the other's log (export/import, until the network issue lands)"
"$replog" export --data laptop > laptop.mpk
"$replog" export --data phone --format jsonl > phone.jsonl
run import --data phone laptop.mpk
run import --data laptop phone.jsonl

step "what could not merge is a conflict for a person, on both devices alike"
run conflicts --data laptop
skipped=$("$replog" conflicts --data laptop --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["conflicts"]; print(c[0]["update"] if c else "")')

step "the person fixes the data and closes the conflict"
run call --data laptop create '{"type": "Task", "id": "p7", "fields": {"title": "ship v1 (phone)", "color": {"$enum": "Color.Red"}}}'
run resolve --data laptop "$skipped"
"$replog" export --data laptop > laptop.mpk
run import --data phone laptop.mpk

step "the same updates give the same state hash on both devices"
printf 'laptop  %s\nphone   %s\n' "$("$replog" state --data laptop --hash)" "$("$replog" state --data phone --hash)"
run verify --data laptop
run log --data laptop --limit 3

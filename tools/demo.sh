#!/usr/bin/env bash
# The main job, on a fresh machine: installs what is missing, builds, and shows
# replog doing its work. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --parallel "$(nproc)" >/dev/null

replog=./build/replog
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cat > "$work/schema.json" <<'JSON'
{"enums": {"Color": ["Red", "Green", "Blue"]},
 "records": {"Task": {"fields": {"title": "string", "due": "time", "color": "Color"},
                      "required": ["title"], "unique": ["title"]}}}
JSON

value='{"$type": "Task", "title": "ship v1", "due": {"$time": "2026-12-01T09:30:00.250+01:00"}, "color": {"$enum": "Color.Green"}}'

step "a task with a date and an enum, as typed JSON"
echo "$value"
step "stored as MessagePack (hex): time = timestamp ext -1, enum = ext 1, record = ext 2"
hex=$($replog value --schema "$work/schema.json" --to hex "$value")
echo "$hex"
step "read back from MessagePack: the date is a time, the enum the registered member"
$replog value --from hex --schema "$work/schema.json" --to typed "$hex"
step "info JSON, for display"
$replog value --from hex --to info "$hex"
step "a typo at the keyboard is refused, naming the place"
$replog value --schema "$work/schema.json" \
  '{"$type": "Task", "title": "x", "color": {"$enum": "Color.Purple"}}' || true

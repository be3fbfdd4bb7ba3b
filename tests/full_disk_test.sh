#!/usr/bin/env bash
# A full disk: calls fail with one readable line, nothing already stored is lost
# or damaged, and writing works again once there is room. Needs root (it mounts
# a small tmpfs); skipped (exit 77) where mounting is not allowed.
# Usage: full_disk_test.sh PATH_TO_REPLOG
set -uo pipefail
R=$1
tmp=$(mktemp -d)
mnt=$tmp/mnt
mkdir -p "$mnt"
cleanup() { umount "$mnt" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
if ! mount -t tmpfs -o size=3m tmpfs "$mnt" 2>/dev/null; then echo "cannot mount a tmpfs here: skipped"; exit 77; fi
fail() { echo "FAIL: $*"; exit 1; }

$R init --data "$mnt/d" >/dev/null || fail "init"
big=$(head -c 30000 /dev/zero | tr '\0' 'x')
ok=0 err=""
for i in $(seq 1 400); do
  if out=$($R call --data "$mnt/d" set "{\"path\": \"k$i\", \"value\": \"$big\"}" 2>"$tmp/err"); then
    ok=$((ok + 1))
  else
    err=$(cat "$tmp/err"); break
  fi
done
[ -n "$err" ] || fail "the disk never filled ($ok calls)"
echo "after $ok stored calls: $err"
[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "error is not one line"
echo "$err" | grep -qiE "space|full" || fail "error does not say the disk is full"

mount -o remount,size=64m "$mnt" || fail "remount"
n=$($R status --data "$mnt/d" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["updates"])')
[ "$n" -eq "$ok" ] || fail "$ok calls were acknowledged but $n updates are stored"
$R verify --data "$mnt/d" >/dev/null || fail "verify after the disk was full"
$R call --data "$mnt/d" set '{"path": "after", "value": 1}' >/dev/null || fail "writing once there is room"
echo "full disk handled: $ok acknowledged updates kept, verify clean, writes resume"

#!/usr/bin/env bash
# The replog program as a person uses it: every command's --help, one-line
# errors with a non-zero exit, the offline flow, export/import between two
# nodes, the directory lock, options from the environment and a config file.
# Usage: cli_test.sh PATH_TO_REPLOG
set -uo pipefail
R=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill $(jobs -p) 2>/dev/null' EXIT
# Failures are counted in a file: a check inside a pipeline runs in a subshell,
# where a variable's increment would be lost.
: > "$tmp/failures"
fail() { echo "FAIL: $*"; echo "$*" >> "$tmp/failures"; }
# expect_error CMD...: must exit non-zero with exactly one line on stderr, nothing on stdout.
expect_error() {
  local out err code
  out=$("$@" 2>"$tmp/err"); code=$?
  err=$(cat "$tmp/err")
  [ $code -ne 0 ] || fail "expected failure: $*"
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [ -n "$err" ] || fail "expected one error line from: $* (got: $err)"
  [ -z "$out" ] || fail "expected no stdout from: $* (got: $out)"
  echo "$err"
}

# --help everywhere
$R --help >/dev/null || fail "replog --help"
for c in init id call state log conflicts resolve status verify export import value; do
  $R $c --help | grep -q "usage: replog $c" || fail "$c --help"
done
expect_error $R frobnicate >/dev/null

cat > "$tmp/schema.json" <<'JSON'
{"enums": {"Color": ["Red", "Green"]},
 "records": {"Task": {"fields": {"title": "string", "due": "time", "color": "Color"},
                      "required": ["title"], "unique": ["title"]}}}
JSON
A=$tmp/a B=$tmp/b
$R init --data "$A" --schema "$tmp/schema.json" >/dev/null || fail "init a"
expect_error $R init --data "$A" | grep -q "already holds" || fail "init twice"
cluster=$($R status --data "$A" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster_id"])')
[ -n "$cluster" ] || fail "status --json names the cluster"
$R init --data "$B" --cluster "$cluster" --schema "$tmp/schema.json" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["cluster_id"]' \
  || fail "init --cluster --json"

$R call --data "$A" create '{"type":"Task","id":"t1","fields":{"title":"ship","due":{"$time":"2026-12-01T09:00:00Z"},"color":{"$enum":"Color.Green"}}}' >/dev/null \
  || fail "create t1"
[ "$($R state --data "$A" --path Task.t1.due)" = '{
  "$time": "2026-12-01T09:00:00Z"
}' ] || fail "time comes back typed"
[ "$($R state --data "$A" --path Task.t1.color --info)" = '"Green"' ] || fail "info JSON enum"

# one-line errors, nothing stored
before=$($R state --data "$A" --hash)
expect_error $R call --data "$A" create '{"type":"Task","id":"t2","fields":{"title":"ship"}}' | grep -q "Task.t2.title" || fail "unique refused with path"
expect_error $R call --data "$A" create '{"type":"Task","id":"t3","fields":{"title":"x","color":{"$enum":"Color.Blue"}}}' \
  | grep -q "Task.t3.color: unknown enum member Color.Blue" || fail "unknown enum refused with path"
expect_error $R call --data "$A" nosuch '{}' | grep -q "unknown method nosuch" || fail "unknown method"
expect_error $R call --data "$A" set '{"path": "a", ' | grep -q "malformed JSON" || fail "malformed JSON"
expect_error $R call --data "$A" set '{"path":"a","value":{"$time":"soon"}}' | grep -q "value: not an ISO-8601 time" || fail "bad time path"
expect_error $R state >/dev/null
expect_error $R state --data "$tmp/none" | grep -q "no such data directory" || fail "missing dir"
expect_error $R resolve --data "$A" 00000000000000000000000000000001 | grep -q "no open conflict" || fail "resolve closed"
[ "$($R state --data "$A" --hash)" = "$before" ] || fail "refused calls changed state"

# the directory lock: a second writer waits at most --lock-wait (default 5 s)
# and then names the holder; readers never wait
flock -x "$A/LOCK" -c 'sleep 2' &
holder=$!
# Wait (at most 5 s) until the holder has the lock: a non-blocking flock then fails.
for _ in $(seq 250); do flock -n "$A/LOCK" true || break; sleep 0.02; done
flock -n "$A/LOCK" true && fail "the test's lock holder never took the lock"
expect_error $R call --data "$A" --lock-wait 0.2 set '{"path":"x","value":1}' | grep -q "in use by another writer" || fail "lock"
$R state --data "$A" --hash >/dev/null || fail "reader blocked by the lock"
$R call --data "$A" set '{"path":"x","value":1}' >/dev/null || fail "a writer waits for a short-lived holder"
wait "$holder" || fail "the test's lock holder failed"

# working apart, then exchanging logs: same hash on both, a conflict surfaced
$R call --data "$B" create '{"type":"Task","id":"t9","fields":{"title":"ship"}}' >/dev/null || fail "create on b"
$R call --data "$A" set '{"path":"counter","value":1}' >/dev/null || fail "set counter on a"
$R export --data "$A" > "$tmp/a.mpk" || fail "export a"
$R export --data "$B" --format jsonl "$tmp/b.jsonl" || fail "export b"
$R import --data "$B" "$tmp/a.mpk" >/dev/null || fail "import a into b"
$R import --data "$A" < "$tmp/b.jsonl" >/dev/null || fail "import b into a"
ha=$($R state --data "$A" --hash) hb=$($R state --data "$B" --hash)
[ "$ha" = "$hb" ] || fail "hashes differ after exchange: $ha $hb"
$R conflicts --data "$A" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["conflicts"]) == 1 and d["conflicts"][0]["kind"] == "unique", d' \
  || fail "conflict listed"
$R import --data "$A" "$tmp/b.jsonl" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["accepted"] == 0 and d["duplicates"] > 0, d' \
  || fail "importing twice changes nothing"
[ "$($R state --data "$A" --hash)" = "$ha" ] || fail "second import changed state"
# An export with one byte of one update altered is refused, naming the update's
# origin and seqs, and nothing of that origin is stored.
C="$tmp/c"
$R init --data "$C" --cluster "$cluster" >/dev/null || fail "init c"
python3 - "$tmp/a.mpk" "$tmp/a-altered.mpk" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
at = data.find(b"title")  # inside the first update's argument
assert at > 0, "no update body to alter"
data[at] ^= 0x01
open(sys.argv[2], "wb").write(data)
PY
if $R import --data "$C" "$tmp/a-altered.mpk" 2>"$tmp/altered.err" >/dev/null; then fail "an altered import was taken"; fi
origin_a=$($R status --data "$A" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["node_id"])')
grep -q "origin $origin_a #1" "$tmp/altered.err" || fail "the refusal names the altered update: $(head -2 "$tmp/altered.err")"
grep -q "do not chain" "$tmp/altered.err" || fail "the refusal says why: $(head -2 "$tmp/altered.err")"
$R status --data "$C" --json | python3 -c "import json,sys; assert '$origin_a' not in json.load(sys.stdin)['vector']" \
  || fail "an altered import stored something"

# resolve the conflict after fixing the data
skipped=$($R conflicts --data "$A" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["conflicts"][0]["update"])')
[ ${#skipped} -eq 32 ] || fail "conflicts --json names the skipped update (got: $skipped)"
$R call --data "$A" update '{"type":"Task","id":"t1","fields":{"title":"ship (a)"}}' >/dev/null || fail "fix the data before resolving"
$R resolve --data "$A" "$skipped" >/dev/null || fail "resolve"
$R conflicts --data "$A" | grep -q "no open conflicts" || fail "conflict closed"

# log, status, verify, state --at, --json forms
$R log --data "$A" --json | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' || fail "log --json"
[ "$($R log --data "$A" --limit 2 | wc -l)" -eq 2 ] || fail "log --limit"
# log --follow prints the log, then each update as it is stored
$R log --data "$A" --follow > "$tmp/follow" &
follower=$!
before=$($R log --data "$A" | wc -l)
for _ in $(seq 50); do [ "$(wc -l < "$tmp/follow")" -ge "$before" ] && break; sleep 0.1; done
$R call --data "$A" set '{"path":"followed","value":1}' >/dev/null || fail "call while following"
for _ in $(seq 50); do grep -q '"followed"' "$tmp/follow" && break; sleep 0.1; done
kill $follower 2>/dev/null; wait $follower 2>/dev/null
grep -q 'set {"path":"followed"' "$tmp/follow" || fail "log --follow prints the update stored later (got: $(tail -1 "$tmp/follow"))"
[ "$(wc -l < "$tmp/follow")" -eq $((before + 1)) ] || fail "log --follow prints each update once"
expect_error $R log --data "$A" --follow --limit 2 | grep -q "do not go together" || fail "log --follow --limit"
$R status --data "$A" | grep -q "^vector" || fail "status"
$R verify --data "$A" | grep -q "^ok" || fail "verify"
[ "$($R state --data "$A" --at 2000-01-01T00:00:00Z --info)" = "{}" ] || fail "state --at before everything"

# the device id: the key file is owner-only, refused when wider, made once for
# a directory an earlier build made (no key file), and the same on every surface
[ "$(stat -c %a "$A/identity.key")" = 600 ] || fail "identity.key is 0600"
[ "$(stat -c %s "$A/identity.key")" = 64 ] || fail "identity.key holds 64 bytes"
id_a=$($R id --data "$A")
printf '%s\n' "$id_a" | grep -Eq '^([A-Z2-7]{7}-){7}[A-Z2-7]{7}$' || fail "replog id prints 8 groups of 7 (got: $id_a)"
$R id --data "$A" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["device_id"] == sys.argv[1], d
assert len(bytes.fromhex(d["public_key_hex"])) == 32, d' "$id_a" || fail "id --json"
[ "$($R status --data "$A" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["device_id"])')" = "$id_a" ] \
  || fail "status --json carries the device id"
$R status --data "$A" | grep -q "^device     $id_a" || fail "status prints the device id"
[ "$($R id --data "$B")" != "$id_a" ] || fail "two directories, two ids"
chmod 644 "$A/identity.key"
expect_error $R id --data "$A" | grep -q "chmod 600" || fail "a key file open to others is refused, saying chmod 600"
chmod 600 "$A/identity.key"
mv "$A/identity.key" "$tmp/a.key"
id_new=$($R id --data "$A") || fail "id makes a key for a directory without one"
[ "$($R id --data "$A")" = "$id_new" ] && [ "$id_new" != "$id_a" ] || fail "the key made on first use is kept"
mv "$tmp/a.key" "$A/identity.key"
expect_error $R id --data "$tmp/none" | grep -q "replog init" || fail "id without a data directory"

# the trust list, offline (under the lock): add, rename, list with ids as
# replog id prints them, remove; a typo'd id and the own id refused; the file
# is 0600 and refused when others may write it
$R trust --help | grep -q "usage: replog trust" || fail "trust --help"
for c in add list remove; do
  $R trust $c --help | grep -q "usage: replog trust $c" || fail "trust $c --help"
done
expect_error $R trust frobnicate --data "$A" | grep -q "add, list or remove" || fail "an unknown trust subcommand"
id_b=$($R id --data "$B")
[ "$($R trust list --data "$A")" = "no trusted devices" ] || fail "an empty trust list"
[ "$($R trust list --data "$A" --json | python3 -c 'import json,sys; print(json.load(sys.stdin))')" = "[]" ] \
  || fail "trust list --json when empty"
[ "$($R trust add "$id_b" --name "laptop b" --data "$A")" = "trusted $id_b (laptop b)" ] || fail "trust add"
[ "$(stat -c %a "$A/trust.json")" = 600 ] || fail "trust.json is 0600"
$R trust list --data "$A" | grep -Eqx "$id_b  [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z  manual  laptop b" \
  || fail "trust list prints the id as replog id does, when, how and the name (got: $($R trust list --data "$A"))"
lower_b=$(printf '%s' "$id_b" | tr -d - | tr A-Z a-z)
$R trust add "$lower_b" --name desk --data "$A" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["id"] == sys.argv[1] and d["name"] == "desk" and d["how"] == "manual" and d["added_ms"] > 0, d' "$id_b" \
  || fail "trust add --json of the same device in lower case renames it"
$R trust list --data "$A" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert [x["id"] for x in d] == [sys.argv[1]] and d[0]["name"] == "desk", d' "$id_b" || fail "trust list --json"
c=${id_b:9:1}; [ "$c" = B ] && t=C || t=B
typo_b="${id_b:0:9}$t${id_b:10}"
expect_error $R trust add "$typo_b" --data "$A" | grep -q "device id: the check fails in groups 1-2" || fail "a typo'd id refused"
expect_error $R trust remove "$typo_b" --data "$A" | grep -q "the check fails" || fail "a typo'd id refused by remove"
expect_error $R trust add "$id_a" --data "$A" | grep -q "$id_a is this node's own device id" || fail "the own id refused"
expect_error $R trust add "$id_b" --name "$(printf 'a\tb')" --data "$A" | grep -q "control character" \
  || fail "a name with a control character refused"
expect_error $R trust list --data "$tmp/none" | grep -q "replog init" || fail "trust list without a data directory"
expect_error $R trust add "$id_b" --data "$tmp/none" | grep -q "replog init" || fail "trust add without a data directory"
[ ! -e "$tmp/none" ] || fail "trust add made a directory"
chmod 664 "$A/trust.json"
expect_error $R trust list --data "$A" | grep -q "chmod 600 $A/trust.json" || fail "a trust file others may write is refused"
chmod 600 "$A/trust.json"
[ "$($R trust remove "$id_b" --data "$A")" = "removed $id_b" ] || fail "trust remove"
[ "$($R trust remove "$id_b" --data "$A" --json)" = '{"removed":false}' ] || fail "trust remove of an untrusted device"
[ "$($R trust list --data "$A")" = "no trusted devices" ] || fail "the trust list is empty again"

# options from the environment and a config file
REPLOG_DATA="$A" $R state --hash >/dev/null || fail "REPLOG_DATA"
printf 'data = %s\n' "$A" > "$tmp/replog.conf"
$R state --config "$tmp/replog.conf" --hash >/dev/null || fail "--config"

failures=$(wc -l < "$tmp/failures")
if [ "$failures" -ne 0 ]; then echo "$failures CLI checks failed"; exit 1; fi
echo "all CLI checks passed"

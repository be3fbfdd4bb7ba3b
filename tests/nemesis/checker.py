#!/usr/bin/python3
"""The nemesis checker: what the writers were told, against what the nodes hold.

Shares no code with replog or with the nemesis driver. Its only inputs are text:

- each node's `replog log --json` output: one JSON object per line with (at
  least) "id" (32 hex: hlc then origin), "origin" (16 hex), "seq" (int) and
  "arg" (the call's argument; the writers' calls are `set` with a unique string
  "value");
- each writer's acknowledgements: one JSON object per line, in the order the
  writer got them, with "value" (the unique value of the call) and "id" (the
  update id `replog call --json` printed on exit 0).

It counts:

- lost:        acknowledged calls missing from at least one node's log;
- duplicated:  call values (acknowledged or not) stored more than once in at
               least one node's log;
- reordered:   acknowledged calls whose seq is not above the seq of the same
               writer's previous acknowledged call of the same origin (a writer
               waits for each call before the next, so within an origin seq
               order must be acknowledgement order);
- mismatched:  acknowledged calls found, but under another id than the one the
               writer was told;
- gaps:        (node, origin) pairs whose seqs are not exactly 1..N;
- divergent:   nodes whose set of update ids differs from the first node's;
- in_flight_stored: calls not acknowledged (killed, timed out) that some node
               holds; a call in flight at a fault may go either way, so this is
               a figure, not a failure.

Usage: checker.py RUN_DIR   (reads log-*.jsonl and acks-*.jsonl in RUN_DIR,
prints the counts as JSON, exits 1 when any failure count is above 0)."""
import glob
import json
import os
import sys

FAILURE_KEYS = ("lost", "duplicated", "reordered", "mismatched", "gaps", "divergent", "unreadable")


def parse_lines(text):
    """JSON lines -> list of dicts; blank lines ignored; a bad line raises ValueError."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise ValueError("line %d: %s" % (number, e))
    return out


def _value_of(entry):
    arg = entry.get("arg")
    if isinstance(arg, dict) and isinstance(arg.get("value"), str):
        return arg["value"]
    return None


def check(logs, acks, attempted_values=()):
    """logs: node name -> list of log entries (dicts); acks: writer name -> list of
    acknowledgements in the order received. attempted_values: values of calls that
    were made but not acknowledged. Returns a dict of counts and a list of details."""
    r = {"nodes": len(logs), "writers": len(acks), "acknowledged": sum(len(a) for a in acks.values()),
         "lost": 0, "duplicated": 0, "reordered": 0, "mismatched": 0, "gaps": 0, "divergent": 0,
         "unreadable": 0, "in_flight_stored": 0, "entries": {}, "details": []}
    details = r["details"]

    def note(text):
        if len(details) < 50:
            details.append(text)

    # Per node: value -> entries holding it; (origin -> seqs).
    by_value, ids = {}, {}
    for node, entries in sorted(logs.items()):
        values, seqs, node_ids = {}, {}, set()
        for e in entries:
            if "seq" not in e or "origin" not in e or "id" not in e:
                r["unreadable"] += 1
                note("%s: an entry without id/origin/seq: %s" % (node, json.dumps(e)[:200]))
                continue
            node_ids.add(e["id"])
            seqs.setdefault(e["origin"], []).append(e["seq"])
            v = _value_of(e)
            if v is not None:
                values.setdefault(v, []).append(e)
        by_value[node], ids[node] = values, node_ids
        r["entries"][node] = len(entries)
        for origin, s in sorted(seqs.items()):
            if sorted(s) != list(range(1, len(s) + 1)):
                r["gaps"] += 1
                note("%s: origin %s holds seqs that are not 1..%d (max %d)" % (node, origin, len(s), max(s)))

    nodes = sorted(logs)
    for node in nodes[1:]:
        if ids[node] != ids[nodes[0]]:
            r["divergent"] += 1
            note("%s holds %d ids that %s lacks and lacks %d that it holds" % (
                node, len(ids[node] - ids[nodes[0]]), nodes[0], len(ids[nodes[0]] - ids[node])))

    duplicated = set()
    for node in nodes:
        for v, entries in by_value[node].items():
            if len(entries) > 1 and v not in duplicated:
                duplicated.add(v)
                note("%s: value %s stored %d times: %s" % (node, v, len(entries), [x["id"] for x in entries]))
    r["duplicated"] = len(duplicated)

    acked_values = set()
    for writer, lst in sorted(acks.items()):
        last_seq = {}  # origin -> seq of this writer's previous acknowledged call there
        for a in lst:
            v = a["value"]
            acked_values.add(v)
            missing = [n for n in nodes if v not in by_value[n]]
            if missing:
                r["lost"] += 1
                note("%s: acknowledged %s (id %s) missing on %s" % (writer, v, a.get("id"), ",".join(missing)))
                continue
            found = by_value[nodes[0]][v][0]
            if a.get("id") is not None and any(by_value[n][v][0]["id"] != a["id"] for n in nodes):
                r["mismatched"] += 1
                note("%s: %s acknowledged as %s but stored as %s" % (writer, v, a["id"], found["id"]))
            origin, seq = found["origin"], found["seq"]
            if origin in last_seq and seq <= last_seq[origin]:
                r["reordered"] += 1
                note("%s: %s got seq %d of %s after an earlier call got seq %d" % (
                    writer, v, seq, origin, last_seq[origin]))
            last_seq[origin] = max(seq, last_seq.get(origin, 0))

    for v in set(attempted_values) - acked_values:
        if any(v in by_value[n] for n in nodes):
            r["in_flight_stored"] += 1
    r["failed"] = any(r[k] for k in FAILURE_KEYS)
    return r


def load_dir(run_dir):
    """Reads log-NAME.jsonl, acks-NAME.jsonl and attempts-NAME.jsonl from run_dir."""
    def read(pattern):
        out = {}
        for path in sorted(glob.glob(os.path.join(run_dir, pattern))):
            name = os.path.basename(path).split("-", 1)[1].rsplit(".", 1)[0]
            with open(path, encoding="utf-8") as f:
                out[name] = parse_lines(f.read())
        return out
    attempted = [a["value"] for lst in read("attempts-*.jsonl").values() for a in lst]
    return read("log-*.jsonl"), read("acks-*.jsonl"), attempted


def summary(r):
    return ("acknowledged=%d lost=%d duplicated=%d reordered=%d mismatched=%d gaps=%d divergent=%d "
            "in_flight_stored=%d" % (r["acknowledged"], r["lost"], r["duplicated"], r["reordered"],
                                     r["mismatched"], r["gaps"], r["divergent"], r["in_flight_stored"]))


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    logs, acks, attempted = load_dir(argv[1])
    if not logs:
        print("checker: no log-*.jsonl in %s" % argv[1], file=sys.stderr)
        return 2
    r = check(logs, acks, attempted)
    print(json.dumps(r, indent=1, sort_keys=True))
    print("checker: " + summary(r))
    return 1 if r["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

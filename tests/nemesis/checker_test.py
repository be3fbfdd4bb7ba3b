#!/usr/bin/python3
"""Nemesis.CheckerCountsLostDuplicatedAndReordered: the checker, fed synthetic logs
and acknowledgements with known faults, reports exactly those faults (so a
nemesis run that reports 0 lost and 0 duplicated could have reported more).

Usage: checker_test.py   (exits 0 when every case passes)"""
import contextlib
import copy
import io
import json
import os
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402

ORIGINS = ["00000000000000a1", "00000000000000b2"]
failures = []


def make_run(calls_per_writer=5):
    """Two writers on two origins; three nodes holding every update. Returns logs, acks."""
    entries, acks = [], {}
    hlc = 1000
    for w, origin in enumerate(ORIGINS):
        acks["w%d" % w] = []
        for seq in range(1, calls_per_writer + 1):
            hlc += 7
            uid = "%016x%s" % (hlc, origin)
            value = "seed1-w%d-%d" % (w, seq)
            entries.append({"id": uid, "hlc": hlc, "origin": origin, "seq": seq, "method": "set",
                            "arg": {"path": "nem.w%d.k%d" % (w, seq % 3), "value": value}})
            acks["w%d" % w].append({"value": value, "id": uid})
    entries.sort(key=lambda e: e["id"])
    logs = {"n%d" % i: copy.deepcopy(entries) for i in range(3)}
    return logs, acks


def expect(name, result, **want):
    got = {k: result[k] for k in want}
    others = {k: result[k] for k in checker.FAILURE_KEYS if k not in want and result[k]}
    if got != want or others:
        failures.append("%s: want %s, got %s%s; details %s" % (
            name, want, got, (", also " + json.dumps(others)) if others else "", result["details"][:5]))
    else:
        print("ok   %s: %s" % (name, checker.summary(result)))


def main():
    logs, acks = make_run()
    r = checker.check(logs, acks)
    expect("clean run", r, lost=0, duplicated=0, reordered=0, acknowledged=10, failed=False)

    # One acknowledged update dropped from one node (and so its origin has a gap there).
    logs, acks = make_run()
    victim = acks["w0"][2]["value"]
    logs["n1"] = [e for e in logs["n1"] if e["arg"]["value"] != victim]
    r = checker.check(logs, acks)
    expect("one acknowledged call dropped on one node", r, lost=1, gaps=1, divergent=1, failed=True)

    # One acknowledged update stored twice on one node: same value, a fresh id and seq.
    logs, acks = make_run()
    dup = copy.deepcopy(logs["n2"][0])
    dup["seq"] = 6
    dup["id"] = "%016x%s" % (99999, dup["origin"])
    logs["n2"].append(dup)
    r = checker.check(logs, acks)
    expect("one acknowledged call stored twice on one node", r, duplicated=1, divergent=1, failed=True)

    # The doctored pair the nemesis driver applies to a real run: both at once.
    logs, acks = make_run()
    drop, twice = acks["w1"][0]["value"], acks["w0"][4]["value"]
    logs["n0"] = [e for e in logs["n0"] if e["arg"]["value"] != drop]
    extra = copy.deepcopy(next(e for e in logs["n0"] if e["arg"]["value"] == twice))
    extra["seq"] += 100
    logs["n0"].append(extra)
    r = checker.check(logs, acks)
    expect("one dropped and one duplicated", r, lost=1, duplicated=1, gaps=2, divergent=2, failed=True)

    # Two acknowledgements of one writer swapped: seq order no longer ack order.
    logs, acks = make_run()
    acks["w1"][1], acks["w1"][2] = acks["w1"][2], acks["w1"][1]
    r = checker.check(logs, acks)
    expect("two acknowledgements out of seq order", r, reordered=1, failed=True)

    # A writer told one id while the nodes hold the value under another.
    logs, acks = make_run()
    acks["w0"][0] = dict(acks["w0"][0], id="f" * 32)
    r = checker.check(logs, acks)
    expect("acknowledged id differs from the stored one", r, mismatched=1, failed=True)

    # A call that was not acknowledged (in flight at a kill) but stored: a figure only.
    logs, acks = make_run()
    gone = acks["w0"].pop()
    r = checker.check(logs, acks, attempted_values=[gone["value"], "never-stored"])
    expect("unacknowledged call stored", r, in_flight_stored=1, lost=0, acknowledged=9, failed=False)

    # A writer whose node moved to a fresh origin: seqs restart, which is not a reordering.
    logs, acks = make_run()
    fresh = "00000000000000c3"
    e = {"id": "%016x%s" % (50000, fresh), "hlc": 50000, "origin": fresh, "seq": 1, "method": "set",
         "arg": {"path": "nem.w0.k0", "value": "seed1-w0-6"}}
    for n in logs:
        logs[n].append(copy.deepcopy(e))
    acks["w0"].append({"value": "seed1-w0-6", "id": e["id"]})
    r = checker.check(logs, acks)
    expect("a writer continuing under a fresh origin", r, reordered=0, lost=0, acknowledged=11, failed=False)

    # The command-line form reads a run directory and exits 1 on a failure.
    logs, acks = make_run()
    logs["n2"] = logs["n2"][1:]
    with tempfile.TemporaryDirectory(prefix="replog-checker-") as d:
        for n, entries in logs.items():
            with open(os.path.join(d, "log-%s.jsonl" % n), "w") as f:
                f.write("".join(json.dumps(e) + "\n" for e in entries))
        for w, lst in acks.items():
            with open(os.path.join(d, "acks-%s.jsonl" % w), "w") as f:
                f.write("".join(json.dumps(a) + "\n" for a in lst))
        l2, a2, att = checker.load_dir(d)
        r = checker.check(l2, a2, att)
        expect("run directory read back", r, lost=1, gaps=1, divergent=1, failed=True)
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            rc = checker.main(["checker.py", d])
        if "checker: acknowledged=10 lost=1" not in printed.getvalue():
            failures.append("checker.py RUN_DIR printed no summary line: %s" % printed.getvalue()[-300:])
        if rc != 1:
            failures.append("checker.py RUN_DIR exited %d on a run with a loss, expected 1" % rc)

    for f in failures:
        print("FAIL " + f)
    print("%d passed, %d failed" % (9 - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Cluster.MembershipSpreadsToEveryDevice: membership as replicated data
(PROTOCOL.md §7 "Membership"). n0 trusts n1 and n2; n1 and n2 trust n0 only
and dial it. A fourth device d trusts n0 and dials it. `trust add d` on n0
alone makes n1 and n2 trust d (how "introducer") without touching them, d
learns n1 and n2 the same way, and d's writes reach every node; n1 and n2
dial d at the endpoint n0 reaches it at, and `replog peers` says how those
links were found: introducer. `trust remove d` on n0 alone
removes d on n1 and n2 too: its TCP connections to them close (ss), its
later writes reach nobody, and `replog status --json` counts what membership
took.

Usage: membership_spreads.py PATH_TO_REPLOG"""
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402


def connections(a, b):
    """Established TCP connections between the processes of nodes a and b,
    either way (ss -tnp sees the processes of this user)."""
    out = subprocess.run(["ss", "-Htnp", "state", "established"], capture_output=True, text=True).stdout
    found = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) < 5:
            continue
        for x, y in ((a, b), (b, a)):
            if f[3].endswith(":%d" % y.port) and ("pid=%d," % x.proc.pid) in line:
                found.add((f[2], f[3]))
    return found


def membership_test(cluster):
    n0, n1, n2, d = (cluster.add_node(name) for name in ("n0", "n1", "n2", "d"))
    ids = {n.name: n.device_id() for n in (n0, n1, n2, d)}
    for n in (n0, n1, n2, d):
        n.secure = True
    for n in (n1, n2):
        n0.cli("trust", "add", ids[n.name], "--name", n.name)
        n.cli("trust", "add", ids["n0"], "--name", "n0")
        n.peers = ["%s@%s" % (ids["n0"], n0.listen)]
    d.cli("trust", "add", ids["n0"], "--name", "n0")
    d.peers = ["%s@%s" % (ids["n0"], n0.listen)]
    for n in (n0, n1, n2):
        n.start(wait=False)
    for n in (n0, n1, n2):
        n.wait_serving()
    H.wait_until(lambda: all(len([p for p in n.status()["peers"] if p["ready"]]) >= 1 for n in (n1, n2)),
                 "n1 and n2 to be linked to n0")
    H.check(ids["n2"] in n1.trusted() and ids["n1"] in n2.trusted(),
            "n1 and n2 did not learn each other from n0: %s / %s" % (n1.trusted(), n2.trusted()))
    H.step("n1 and n2, which trusted n0 alone, trust each other (introduced by n0)")

    d.start()
    n0.cli("trust", "add", ids["d"], "--name", "d")
    H.step("trust add d on n0 only")

    def everyone_trusts_d():
        return all(ids["d"] in n.trusted() for n in (n1, n2))
    H.wait_until(everyone_trusts_d, "n1 and n2 to trust d", timeout=10,
                 on_timeout=lambda: "%s / %s" % (n1.trusted(), n2.trusted()))
    for n in (n1, n2):
        entry = n.trusted()[ids["d"]]
        H.check(entry["how"] == "introducer" and entry["name"] == "d" and entry["by"] == ids["n0"],
                "%s's entry about d: %s" % (n.name, entry))
    H.wait_until(lambda: ids["n1"] in d.trusted() and ids["n2"] in d.trusted(), "d to trust n1 and n2")
    H.step("n1 and n2 trust d (how introducer, by n0), and d trusts them, untouched")

    for i in range(5):
        d.call("set", {"path": "from_d.k%d" % i, "value": i})
    expected = {d.node_id: 5}
    cluster.wait_converged(nodes=[n0, n1, n2, d], expected=expected)
    H.wait_until(lambda: connections(d, n1) and connections(d, n2), "d to be linked with n1 and n2 directly",
                 timeout=15)
    H.step("d's writes reached every node; d has its own links to n1 and n2")
    for a, b in ((n1, d), (n2, d), (d, n1), (d, n2)):
        hows = [p.get("how") for p in json.loads(a.cli("peers", "--json")) if p.get("device_id") == ids[b.name]]
        H.check(hows == ["introducer"], "%s's link to %s was found how? %s" % (a.name, b.name, hows))
    H.step("replog peers on n1, n2 and d: their links to each other were found by an introducer")

    before = connections(d, n1) | connections(d, n2)
    n0.cli("trust", "remove", ids["d"])
    H.wait_until(lambda: all(ids["d"] not in n.trusted() for n in (n1, n2)), "n1 and n2 to remove d", timeout=10)
    for n in (n1, n2):
        gone = json.loads(n.cli("trust", "list", "--all", "--json"))["removed"]
        H.check(any(g["id"] == ids["d"] and g["by"] == ids["n0"] for g in gone),
                "%s keeps no tombstone of d by n0: %s" % (n.name, gone))
    H.wait_until(lambda: not (before & (connections(d, n1) | connections(d, n2))),
                 "d's connections to n1 and n2 to close", timeout=10, on_timeout=lambda: str(before))
    H.step("trust remove d on n0 only: n1 and n2 removed it (tombstone by n0) and its %d connections to them closed"
           % len(before))

    d.call("set", {"path": "after.removal", "value": 1})
    time.sleep(3)
    for n in (n0, n1, n2):
        H.check(n.status()["vector"].get(d.node_id) == 5, "%s took d's write after the removal" % n.name)
    for n in (n1, n2):
        m = n.status()["members"]
        H.check(m["received"] > 0 and m["accepted"] >= 2, "%s counted no membership: %s" % (n.name, m))
    H.step("d's later write reached nobody; status members on n1: %s" % json.dumps(n1.status()["members"]))


if __name__ == "__main__":
    H.run(membership_test)

#!/usr/bin/python3
"""Cluster.LateNodeCatchesUpFromZero: a node made after thousands of updates were
written (20,000 imported into one node from an export-format file of a device that
never ran a node: a signed origin, its updates and the heads that prove them, plus 2,500 calls through the local API on two running nodes)
starts from an empty log, peers with one node only, and ends with exactly the same
updates and state hash; its count only rises while it catches up, and a call on
it afterwards reaches the others.

Usage: late_node.py PATH_TO_REPLOG"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

IMPORTED = 20000
CALLS_B = 2000
CALLS_A = 500


def test(cluster):
    a = cluster.add_node("a")
    b = cluster.add_node("b", peers=[a.listen])
    path = os.path.join(cluster.tmp, "device.mpk")
    device = H.generate_updates(path, IMPORTED, a.status()["cluster_id"], value_bytes=60)
    out = json.loads(a.cli("import", path, "--json"))
    H.check(out["accepted"] == IMPORTED and not out["refused"], "import into a: %s" % out)
    H.step("imported %d updates of origin %016x (a device that only exported its log) into a, offline"
           % (IMPORTED, device))
    a.start()
    b.start()
    t0 = time.monotonic()
    wa = H.Writer(a, lambda i: ("inc", {"path": "a.count", "by": 1}), count=CALLS_A)
    wb = H.Writer(b, lambda i: ("set", {"path": "b.k%d" % (i % 700), "value": i}), count=CALLS_B)
    wa.start()
    wb.start()
    wa.join(60)
    wb.join(60)
    H.check(wa.acked == CALLS_A and wb.acked == CALLS_B and not wa.errors and not wb.errors,
            "calls: a %d/%d %s, b %d/%d %s" % (wa.acked, CALLS_A, wa.errors[:2], wb.acked, CALLS_B, wb.errors[:2]))
    H.step("%d calls on a and %d on b through the local API in %.2f s" % (CALLS_A, CALLS_B, time.monotonic() - t0))
    expected = {"%016x" % device: IMPORTED, a.node_id: CALLS_A, b.node_id: CALLS_B}
    cluster.wait_converged([a, b], expected=expected)

    c = cluster.add_node("c", peers=[b.listen])
    H.check(c.count() == 0, "the new node c is not empty")
    H.step("c: a new, empty node of the cluster, peering with b only; starting it")
    c.start(wait=False)
    samples = []
    t0 = time.monotonic()

    def caught_up():
        cluster.check_alive()
        try:
            v = c.vector()
        except H.TestFailure:  # c's API not up yet
            return False
        samples.append(sum(v.values()))
        return v == expected
    H.wait_until(caught_up, "c to catch up", interval=0.02,
                 on_timeout=lambda: cluster.describe([a, b, c]))
    H.step("c holds all %d updates after %.2f s (%d samples of its count on the way: %s)" % (
        sum(expected.values()), time.monotonic() - t0, len(samples), samples[:3] + ["..."] + samples[-2:]))
    drops = [(x, y) for x, y in zip(samples, samples[1:]) if y < x]
    H.check(not drops, "c's count went down while catching up: %s" % drops[:5])
    cluster.wait_converged(expected=expected)

    c.call("set", {"path": "c.hello", "value": "from the late node"})
    expected[c.node_id] = 1
    H.step("one call on c; it must reach a and b")
    cluster.wait_converged(expected=expected)
    cluster.check_final(expected=expected)
    for n in (a, b, c):
        H.check(json.loads(n.cli("state", "--path", "a.count")) == CALLS_A, "%s: a.count wrong" % n.name)
    errors = cluster.stop_all()
    H.check(not errors, "; ".join(errors))
    cluster.verify_offline()


if __name__ == "__main__":
    H.run(test)

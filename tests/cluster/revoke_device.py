#!/usr/bin/python3
"""Cluster.RevokeShutsOutAStolenDevice: three nodes on CURVE that trust each
other converge. n2 is stolen: offline, the thief writes on it, while n0 revokes
it (`replog revoke DEVICE_ID`). n1, which has not heard of the revocation,
takes the thief's updates from n2 and folds them; once n0 is back, the
revocation reaches n1, both have removed n2's key from trust, and the thief's
updates are out of both states, though n1 holds them and n0 does not: one hash.
What n2 wrote before stays. `replog status`, `replog conflicts` and `replog
verify` say what happened.

Usage: revoke_device.py PATH_TO_REPLOG"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

BEFORE = 5
AFTER = 4


def holds(node, path):
    """Whether `replog state --path PATH --json` finds a value there."""
    out = node.cli("state", "--path", path, "--json", check_rc=False)
    return out.strip() not in ("", "null") and "no value" not in out


def revoke_test(cluster):
    n0 = cluster.add_node("n0")
    n1 = cluster.add_node("n1")
    n2 = cluster.add_node("n2")
    nodes = [n0, n1, n2]
    ids = H.trust_each_other(nodes)
    n1.peers = ["%s@%s" % (ids["n0"], n0.listen)]
    n2.peers = ["%s@%s" % (ids["n0"], n0.listen), "%s@%s" % (ids["n1"], n1.listen)]
    for n in nodes:
        n.start(wait=False)
    for n in nodes:
        n.wait_serving()
    for n in nodes:
        for i in range(BEFORE):
            n.call("set", {"path": "%s.before%d" % (n.name, i), "value": i})
    expected = {n.node_id: BEFORE for n in nodes}
    cluster.wait_converged(expected=expected)
    H.step("three devices trust each other and converged on %d calls each" % BEFORE)

    # The device is stolen: offline, the thief writes on it.
    n1.stop()
    n2.stop()
    for i in range(AFTER):
        n2.call("set", {"path": "n2.after%d" % i, "value": i})
    H.step("n1 and n2 stopped; %d calls on n2 while it is away (the thief's)" % AFTER)

    out = n0.cli("revoke", ids["n2"], "--json")
    H.step("n0: replog revoke %s -> update %s" % (ids["n2"], json.loads(out)["id"]))
    H.wait_until(lambda: n0.status().get("revoked", {}).get(n2.node_id) == BEFORE and ids["n2"] not in n0.trusted(),
                 "n0 to hold the revocation and drop n2 from trust", timeout=10,
                 on_timeout=lambda: cluster.describe([n0]))
    H.step("n0: status says origin %s is revoked after #%d; n2's key is off its trust list" % (n2.node_id, BEFORE))

    # n1 has not heard of it: it takes the thief's updates from n2 first.
    n0.stop()
    n1.start(wait=False)
    n2.start(wait=False)
    n1.wait_serving()
    n2.wait_serving()
    H.wait_until(lambda: n1.vector().get(n2.node_id) == BEFORE + AFTER and holds(n1, "n2.after0"),
                 "n1 to take n2's later updates while it knows of no revocation", timeout=20,
                 on_timeout=lambda: cluster.describe([n1, n2]))
    H.step("n0 down; n1 took n2's %d later updates and folded them (it knows of no revocation yet)" % AFTER)

    n0.start()
    honest = [n0, n1]

    def revoked_everywhere():
        return all(n.status().get("revoked", {}).get(n2.node_id) == BEFORE and ids["n2"] not in n.trusted()
                   for n in honest)
    H.wait_until(revoked_everywhere, "n1 to hold the revocation and drop n2 from trust", timeout=20,
                 on_timeout=lambda: cluster.describe(honest))
    H.wait_until(lambda: n0.hash() == n1.hash(), "n0 and n1 to agree on one state", timeout=20,
                 on_timeout=lambda: cluster.describe(honest))
    held = {n.name: n.vector().get(n2.node_id) for n in honest}
    H.step("n0 back: the revocation reached n1, which dropped n2 from trust; n2's origin held to %s, "
           "and one hash on both" % json.dumps(held))
    for n in honest:
        for i in range(AFTER):
            H.check(not holds(n, "n2.after%d" % i), "%s folded n2's update after the revocation: n2.after%d" % (n.name, i))
        for i in range(BEFORE):
            H.check(holds(n, "n2.before%d" % i), "%s lost n2's update from before the revocation: n2.before%d"
                    % (n.name, i))
        conflicts = n.cli("conflicts")
        H.check("revoked: origin %s after #%d" % (n2.node_id, BEFORE) in conflicts,
                "%s: replog conflicts does not show the revocation:\n%s" % (n.name, conflicts))
    H.step("n0 and n1: none of n2's later updates in state, though n1 holds them; all of its earlier ones "
           "kept; replog conflicts lists the revoked origin")

    # Honest devices go on syncing with each other.
    n1.call("set", {"path": "n1.after", "value": 1})
    H.wait_until(lambda: holds(n0, "n1.after"), "n1's next call to reach n0", timeout=15)
    H.step("n0 and n1 still sync: n1's next call reached n0")
    for n in nodes:
        n.stop()
    cluster.verify_offline(honest)


if __name__ == "__main__":
    H.run(revoke_test)

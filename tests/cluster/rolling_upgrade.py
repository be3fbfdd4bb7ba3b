#!/usr/bin/python3
"""Cluster.AFormatOneClusterUpgradesOneNodeAtATime: the two data directories
of tests/fixtures/format1 (written before signed origins, storage format 1)
upgrade one at a time while the cluster runs. `a` starts on this build
(upgraded in place, its old origin attested under its device key) and syncs
with a new device `c` while `b` is still down on the old format: all but b's
old origin, which only b can attest. Then `b` starts and upgrades too, and its
old updates reach `c`. Every node ends with every update: the fixture's 8,
among them the one `a` never received, and the calls made during the upgrade;
one state hash, every origin signed, and `replog verify` ok everywhere.

Usage: rolling_upgrade.py PATH_TO_REPLOG"""
import json
import os
import shutil
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "format1")
FIXTURE_UPDATES = 8


def fixture_node(cluster, name):
    data = os.path.join(cluster.tmp, name)
    shutil.copytree(os.path.join(FIXTURES, name), data)
    for f in os.listdir(data):
        os.chmod(os.path.join(data, f), 0o600)  # git keeps no file modes
    node = H.Node(cluster, name, data, H.free_port())
    node.secure = True
    cluster.nodes.append(node)
    return node


def start_upgrading(node):
    """Starts a format 1 directory's node: it upgrades in place and writes as the
    origin of its device key, which `replog id` gives before it starts."""
    key = json.loads(node.cli("id", "--json"))["public_key_hex"]
    node.node_id = "%016x" % H.origin_id(bytes.fromhex(key))
    node.start()


def upgrade_test(cluster):
    a = fixture_node(cluster, "a")
    b = fixture_node(cluster, "b")
    cluster.cluster_id = "f1f1f1f1-0001"
    c = cluster.add_node("c")
    c.secure = True
    ids = {n.name: n.device_id() for n in (a, b, c)}
    for n in (a, b):
        n.cli("trust", "add", ids["c"], "--name", "c")
        c.cli("trust", "add", ids[n.name], "--name", n.name)
    b_legacy = json.loads(b.cli("status", "--json"))["node_id"]
    H.step("a and b: format 1 directories of one cluster; c: a new device; all trust each other")

    c.peers = ["%s@%s" % (ids["a"], a.listen)]
    start_upgrading(a)
    c.start()
    former = a.status()["former_origins"]
    H.check(any("upgraded to signed origins" in why for why in former.values()),
            "a does not report its upgrade: %s" % former)
    for i in range(3):
        c.call("set", {"path": "c.k%d" % i, "value": i})
    for i in range(2):
        a.call("set", {"path": "a.after%d" % i, "value": i})
    # b's old origin waits for b's own attestation: a holds 3 of its updates but
    # cannot sign for them, and c takes nothing unsigned.
    def synced_but_b():
        va, vc = a.vector(), c.vector()
        return vc.get(b_legacy) is None and {o: s for o, s in va.items() if o != b_legacy} == vc
    H.wait_until(synced_but_b, "c to hold everything a holds but b's old origin",
                 on_timeout=lambda: cluster.describe([a, c]))
    H.step("a upgraded in place at start (%s) and synced with c, all but b's old origin %s (%d updates at a), "
           "which no one but b can sign; b is still down on format 1" % (json.dumps(former), b_legacy,
                                                                          a.vector()[b_legacy]))

    b.peers = ["%s@%s" % (ids["a"], a.listen)]
    start_upgrading(b)
    cluster.wait_converged(nodes=[a, b, c])
    for n in (a, b, c):
        s = n.status()
        H.check(s["updates"] == FIXTURE_UPDATES + 5, "%s holds %d updates, not %d" % (
            n.name, s["updates"], FIXTURE_UPDATES + 5))
        H.check(s["updates"] == sum(s["vector"].values()), "%s: the vector does not sum to its updates" % n.name)
        unverified = {o: seq for o, seq in s["vector"].items() if s["verified"].get(o, 0) < seq}
        H.check(not unverified, "%s holds unverified updates: %s" % (n.name, unverified))
        late = n.cli("state", "--path", "b.late", "--json").strip()
        H.check(late == "true", "%s lacks b's last format 1 update (b.late): %r" % (n.name, late))
    H.step("b upgraded and joined: all three hold the fixture's %d updates (b.late too) and the 5 calls, "
           "every origin signed, one hash" % FIXTURE_UPDATES)
    for n in (a, b, c):
        n.stop()
    cluster.verify_offline([a, b, c])


if __name__ == "__main__":
    H.run(upgrade_test)

#!/usr/bin/python3
"""Cluster.SecureNodesSyncOnlyWithTrustedDevices: three nodes on CURVE (no
--insecure) that trust each other by device id converge under concurrent calls,
every surface naming peers by device id; a fourth node that n0 does not trust
delivers nothing and gets nothing, until n0 trusts it while running; a device
removed from n0's trust list while running loses its connections at once (ss
shows the old TCP connections gone) and is refused afterwards.

Usage: secure_cluster.py PATH_TO_REPLOG"""
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from converge_concurrent import make_calls  # noqa: E402

CALLS_PER_THREAD = 30


def connections(owner, peer_port):
    """The established TCP connections of process `owner` to `peer_port`, as
    (local, peer) address pairs (ss -tnp: needs root to see other processes)."""
    out = subprocess.run(["ss", "-Htnp", "state", "established"], capture_output=True, text=True).stdout
    found = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 5 and f[3].endswith(":%d" % peer_port) and ("pid=%d," % owner) in line:
            found.add((f[2], f[3]))
    return found


def secure_test(cluster):
    n0 = cluster.add_node("n0")
    n1 = cluster.add_node("n1")
    n2 = cluster.add_node("n2")
    nodes = [n0, n1, n2]
    ids = H.trust_each_other(nodes)
    H.step("device ids: %s" % json.dumps(ids))
    n1.peers = ["%s@%s" % (ids["n0"], n0.listen)]
    n2.peers = ["%s@%s" % (ids["n0"], n0.listen)]
    listed = json.loads(n0.cli("trust", "list", "--json"))
    H.check(sorted(d["id"] for d in listed) == sorted([ids["n1"], ids["n2"]]),
            "n0 trust list --json: %s" % listed)
    for n in nodes:
        n.start(wait=False)
    for n in nodes:
        n.wait_serving()
    H.step("n1 and n2 dial n0 by device id; n0 connects back; %d calls on each node from 2 threads" % (2 * CALLS_PER_THREAD))
    writers = [H.Writer(n, make_calls(k, t), count=CALLS_PER_THREAD, pause=0.005)
               for k, n in enumerate(nodes) for t in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        H.check(not w.errors and w.acked == CALLS_PER_THREAD, "calls on %s failed: %s" % (w.node.name, w.errors[:3]))
    expected = {n.node_id: 2 * CALLS_PER_THREAD for n in nodes}
    cluster.wait_converged(expected=expected)
    cluster.check_final(expected=expected)

    def peers_by_device(n):
        return {p.get("device_id"): p for p in n.status()["peers"] if p["ready"]}
    H.wait_until(lambda: set(peers_by_device(n0)) == {ids["n1"], ids["n2"]},
                 "n0 to list n1 and n2 as ready peers by device id",
                 on_timeout=lambda: json.dumps(n0.status()["peers"]))
    for cmd in (("peers",), ("status",)):
        out = n0.cli(*cmd)
        H.check(ids["n1"] in out and ids["n2"] in out, "replog %s does not name the peers' device ids:\n%s" % (cmd[0], out))
    H.step("status, status --json and peers: n0's peers are named by the device ids `replog id` prints")

    # A node n0 does not trust: it dials n0 and gets nothing; n0 gets nothing from it.
    n3 = cluster.add_node("n3")
    ids["n3"] = n3.device_id()
    n3.secure = True
    n3.cli("trust", "add", ids["n0"], "--name", "n0")
    n3.peers = ["%s@%s" % (ids["n0"], n0.listen)]
    n3.start()
    for i in range(10):
        n3.call("set", {"path": "stranger.k%d" % i, "value": i})
    refused_before = n0.status()["refusals"]["handshakes_refused"]
    time.sleep(3)
    s3, s0 = n3.status(), n0.status()
    H.check(s3["vector"] == {n3.node_id: 10}, "the untrusted node received updates: %s" % s3["vector"])
    H.check(n3.node_id not in s0["vector"], "n0 stored the untrusted node's updates: %s" % s0["vector"])
    H.check(s0["refusals"]["handshakes_refused"] > 0, "n0 counted no refused handshake: %s" % s0["refusals"])
    H.step("untrusted n3: nothing either way after 3 s; n0 refused %d handshakes"
           % s0["refusals"]["handshakes_refused"])
    del refused_before

    # Trusted while running: it syncs at once.
    n0.cli("trust", "add", ids["n3"], "--name", "n3")
    expected[n3.node_id] = 10
    cluster.wait_converged(nodes=[n0, n1, n3], expected=expected)
    H.step("n0 trusted n3 while running: n3 converged with n0 and n1 (through n0)")

    # Removed while running: its connections are gone at once and it is refused.
    before = connections(n2.proc.pid, n0.port) | connections(n0.proc.pid, n2.port)
    H.check(before, "no connection between n2 and n0 before the removal")
    n0.cli("trust", "remove", ids["n2"])

    def old_gone():
        now = connections(n2.proc.pid, n0.port) | connections(n0.proc.pid, n2.port)
        return not (before & now)
    H.wait_until(old_gone, "n2's connections to and from n0 to close", timeout=5,
                 on_timeout=lambda: str(before))
    H.step("trust remove n2 on n0: its %d TCP connections are gone (ss)" % len(before))
    refused = n0.status()["refusals"]["handshakes_refused"]
    n2.call("set", {"path": "after.removal", "value": 1})
    time.sleep(2)
    s0 = n0.status()
    H.check(s0["vector"].get(n2.node_id) == expected[n2.node_id],
            "n0 got n2's update after removing it: %s" % s0["vector"])
    H.check(ids["n2"] not in peers_by_device(n0), "n0 still lists n2 as a peer")
    H.check(s0["refusals"]["handshakes_refused"] > refused, "n2's new handshakes were not refused")
    H.step("n2 is refused afterwards: its new update did not reach n0")


if __name__ == "__main__":
    H.run(secure_test)

#!/usr/bin/python3
"""Cluster.ThreeNodesConvergeUnderConcurrentCalls (and the 5-node variant in
five_nodes_converge.py): concurrent calls on every node, from several threads
each, on shared and distinct paths; then every node holds exactly the calls made
(per-origin seq = calls acknowledged on that origin), one state hash everywhere,
and the commutative parts of state (counters, a set) show that nothing was lost.

Usage: converge_concurrent.py PATH_TO_REPLOG"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

THREADS_PER_NODE = 3
CALLS_PER_THREAD = 50


def make_calls(k, t):
    def call(i):
        kind = i % 5
        if kind == 0:
            return "inc", {"path": "shared.counter", "by": 1}
        if kind == 1:
            return "set", {"path": "shared.last", "value": "%d-%d-%d" % (k, t, i)}
        if kind == 2:
            return "set", {"path": "node%d.t%d.k%d" % (k, t, i), "value": i}
        if kind == 3:
            return "inc", {"path": "node%d.count" % k, "by": 2}
        return "add", {"path": "shared.members", "value": "%d-%d-%d" % (k, t, i)}
    return call


def concurrent_calls_test(cluster, count, topology):
    nodes = []
    for k in range(count):
        if topology == "mesh":   # node k names every earlier node; the rest come from connect-back
            peers = [n.listen for n in nodes]
        else:                    # a line: every update of an end node is relayed count-1 times
            peers = [nodes[-1].listen] if nodes else []
        nodes.append(cluster.add_node("n%d" % k, peers=peers))
    H.step("%d nodes, %s topology: %s" % (count, topology, ", ".join(
        "%s=%s peers %s" % (n.name, n.node_id, n.peers) for n in nodes)))
    for n in nodes:
        n.start(wait=False)
    for n in nodes:
        n.wait_serving()
    H.step("all nodes serve their local API; starting %d writer threads per node, %d calls each, 5 ms apart, right away (before and while the peers handshake)"
           % (THREADS_PER_NODE, CALLS_PER_THREAD))
    writers = [H.Writer(n, make_calls(k, t), count=CALLS_PER_THREAD, pause=0.005)
               for k, n in enumerate(nodes) for t in range(THREADS_PER_NODE)]
    t0 = time.monotonic()
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    H.step("%d calls made in %.2f s" % (sum(w.acked for w in writers), time.monotonic() - t0))
    for w in writers:
        H.check(not w.is_alive(), "a writer on %s hangs" % w.node.name)
        H.check(not w.errors and w.acked == CALLS_PER_THREAD,
                "calls on %s failed: %d acknowledged, errors %s" % (w.node.name, w.acked, w.errors[:3]))
    expected = {n.node_id: THREADS_PER_NODE * CALLS_PER_THREAD for n in nodes}
    cluster.wait_converged(expected=expected)
    cluster.check_final(expected=expected)
    if topology == "mesh":
        cluster.wait_peers_in_sync({n: [m for m in nodes if m is not n] for n in nodes})
    else:
        cluster.wait_peers_in_sync({n: nodes[max(0, k - 1):k] + nodes[k + 1:k + 2] for k, n in enumerate(nodes)})

    calls = [make_calls(k, t)(i) for k in range(count) for t in range(THREADS_PER_NODE) for i in range(CALLS_PER_THREAD)]
    incs = sum(1 for m, a in calls if m == "inc" and a["path"] == "shared.counter")
    members = sorted(a["value"] for m, a in calls if m == "add")
    for n in nodes:
        got = json.loads(n.cli("state", "--path", "shared.counter"))
        H.check(got == incs, "%s: shared.counter = %s, expected %d (one per inc call)" % (n.name, got, incs))
        got = sorted(json.loads(n.cli("state", "--path", "shared.members")))
        H.check(got == members, "%s: shared.members has %d members, expected %d" % (n.name, len(got), len(members)))
        for k in range(count):
            got = json.loads(n.cli("state", "--path", "node%d.count" % k))
            want = 2 * sum(1 for t in range(THREADS_PER_NODE) for i in range(CALLS_PER_THREAD) if i % 5 == 3)
            H.check(got == want, "%s: node%d.count = %s, expected %d" % (n.name, k, got, want))
    H.step("every node: shared.counter = %d, %d set members, per-node counters right" % (incs, len(members)))

    errors = cluster.stop_all()
    H.check(not errors, "; ".join(errors))
    H.step("all nodes stopped with SIGTERM, exit code 0")
    cluster.verify_offline()


if __name__ == "__main__":
    H.run(lambda c: concurrent_calls_test(c, 3, "mesh"))

#!/usr/bin/python3
"""Cluster.PartitionHealsWithoutLossOrDuplication: four nodes in two groups,
{a, b} and {c, d}. Every node has a TCP proxy in front of it and advertises the
proxy's address (--advertise), so that every link between the groups - configured
or made by connecting back - runs through a proxy; nodes of one group also name
each other's own port directly. Blocking every proxy partitions the groups (the
direct links inside a group stay up).

Steps: write everywhere and converge; partition; write on both sides (shared and
distinct paths); each side converges on its own updates and nothing crosses the
partition; heal while writing again; every node ends with exactly the calls made
on every origin (none lost, none stored twice) and one state hash.

Usage: partition.py PATH_TO_REPLOG"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402


def calls_for(name, phase):
    def call(i):
        kind = i % 4
        if kind == 0:
            return "inc", {"path": "shared.counter", "by": 1}
        if kind == 1:
            return "set", {"path": "shared.last", "value": "%s-%s-%d" % (name, phase, i)}
        if kind == 2:
            return "add", {"path": "shared.members", "value": "%s-%s-%d" % (name, phase, i)}
        return "set", {"path": "%s.%s.k%d" % (name, phase, i), "value": i}
    return call


def write_all(nodes, phase, count, made):
    writers = [H.Writer(n, calls_for(n.name, phase), count=count, pause=0.002) for n in nodes]
    for w in writers:
        w.start()
    return writers


def join_all(writers, made):
    for w in writers:
        w.join(60)
        H.check(not w.errors and w.acked == w.count,
                "calls on %s: %d of %d acknowledged, errors %s" % (w.node.name, w.acked, w.count, w.errors[:3]))
        made[w.node.node_id] = made.get(w.node.node_id, 0) + w.acked


def test(cluster):
    names = ["a", "b", "c", "d"]
    group = {"a": 0, "b": 0, "c": 1, "d": 1}
    nodes = {name: cluster.add_node(name) for name in names}
    proxies = {name: cluster.add_proxy(n.port, name) for name, n in nodes.items()}
    for name, n in nodes.items():
        n.advertise = proxies[name].endpoint
        n.peers = [(other.listen if group[o] == group[name] else proxies[o].endpoint)
                   for o, other in nodes.items() if o != name]
        H.step("%s (%s): listens on %s, advertises %s, peers %s"
               % (name, n.node_id, n.listen, n.advertise, n.peers))
    for n in nodes.values():
        n.start(wait=False)
    for n in nodes.values():
        n.wait_serving()
    all_nodes = list(nodes.values())
    left, right = [nodes["a"], nodes["b"]], [nodes["c"], nodes["d"]]
    made = {}

    H.step("phase 1: 60 calls on every node, connected")
    join_all(write_all(all_nodes, "p1", 60, made), made)
    cluster.wait_converged(expected=made)

    for p in proxies.values():
        p.block()
    H.step("partition: every proxy cuts its connections and refuses new ones; {a, b} | {c, d}")
    before = dict(made)
    join_all(write_all(all_nodes, "p2", 150, made), made)
    H.step("phase 2: 150 calls on every node while partitioned")
    left_expected = {o: made[o] if o in (nodes["a"].node_id, nodes["b"].node_id) else before[o] for o in made}
    right_expected = {o: made[o] if o in (nodes["c"].node_id, nodes["d"].node_id) else before[o] for o in made}
    cluster.wait_converged(left, expected=left_expected)
    cluster.wait_converged(right, expected=right_expected)
    # Part of the scenario, not a wait for a condition: for 3 s (15 anti-entropy rounds and
    # reconnection attempts) nothing may cross; the check below is over that whole time.
    time.sleep(3.0)
    for n in all_nodes:
        v = n.vector()
        want = left_expected if n in left else right_expected
        H.check(v == want, "%s: vector %s while partitioned, expected %s (an update crossed the partition?)"
                % (n.name, json.dumps(v, sort_keys=True), json.dumps(want, sort_keys=True)))
    H.step("each side holds its own updates only; connections refused by the proxies: %s"
           % {k: p.refused for k, p in proxies.items()})
    h_left, h_right = nodes["a"].hash(), nodes["c"].hash()
    H.check(h_left != h_right, "both sides report the same hash while holding different updates")

    writers = write_all(all_nodes, "p3", 60, made)
    # Heal while the writers are under way: once each has a call acknowledged.
    H.wait_until(lambda: all(w.acked >= 1 or w.errors for w in writers), "the first call on every node", timeout=30)
    for p in proxies.values():
        p.unblock()
    H.step("healed (proxies forward again) while 60 more calls per node are made")
    join_all(writers, made)
    cluster.wait_converged(expected=made)
    cluster.check_final(expected=made)

    calls = [calls_for(name, phase)(i) for name in names for phase, count in (("p1", 60), ("p2", 150), ("p3", 60))
             for i in range(count)]
    incs = sum(1 for m, a in calls if m == "inc")
    members = sorted(a["value"] for m, a in calls if m == "add")
    for n in all_nodes:
        got = json.loads(n.cli("state", "--path", "shared.counter"))
        H.check(got == incs, "%s: shared.counter = %s, expected %d" % (n.name, got, incs))
        got = sorted(json.loads(n.cli("state", "--path", "shared.members")))
        H.check(got == members, "%s: %d set members, expected %d" % (n.name, len(got), len(members)))
    H.step("every node: shared.counter = %d (every inc once), all %d set members" % (incs, len(members)))
    errors = cluster.stop_all()
    H.check(not errors, "; ".join(errors))
    cluster.verify_offline()


if __name__ == "__main__":
    H.run(test)

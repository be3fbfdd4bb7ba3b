#!/usr/bin/python3
"""Cluster.ABeaconsWrongAddressGivesWayToTheDevicesOwnEndpoint: a beacon's
source address need not be where its device listens. Node a listens on
tcp://127.0.0.2 and sends its beacons from 127.0.0.1, so b, which trusts a,
dials tcp://127.0.0.1:PORT, where nothing answers. When a then dials b, its
authenticated Hello names tcp://127.0.0.2:PORT, and b's link back to a must
use that at once, not wait for the beacon's link to time out (30 s and more).
Also: a node that listens on a loopback address sends no beacons unless it is
told where to (--discovery-to): no other device could dial it.

Usage: discovery_gives_way.py PATH_TO_REPLOG"""
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from discovery_loopback import free_udp_port  # noqa: E402
from discovery_netns import pair_devices  # noqa: E402


def peers_of(node):
    return json.loads(node.cli("peers", "--json"))


def gives_way_test(cluster):
    a = cluster.add_node("a")
    b = cluster.add_node("b")
    ids = pair_devices(cluster.replog, [a.data, b.data])
    udp_a, udp_b = free_udp_port(), free_udp_port()
    a.secure = b.secure = True
    a.listen = "tcp://127.0.0.2:%d" % a.port
    b.extra_args = ["--discovery", "on", "--discovery-port", str(udp_b), "--discovery-interval-ms", "300",
                    "--discovery-to", "127.0.0.3:%d" % udp_a]
    a.extra_args = ["--discovery", "on", "--discovery-port", str(udp_a), "--discovery-interval-ms", "300",
                    "--discovery-to", "127.0.0.1:%d" % udp_b]
    b.start()
    a.start()

    wrong = "tcp://127.0.0.1:%d" % a.port
    H.wait_until(lambda: any(p.get("endpoint") == wrong and p.get("how") == "discovered" for p in peers_of(b)),
                 "b to dial a at the beacon's source address %s" % wrong, timeout=10)
    H.check(not any(p.get("ready") for p in peers_of(b)), "b has a ready link before a dialled it: %s" % peers_of(b))
    H.step("b dialled a where its beacon came from (%s), where a does not listen" % wrong)

    a.stop()
    a.peers = ["%s@tcp://127.0.0.1:%d" % (ids[1], b.port)]
    a.start()
    right = a.listen

    def linked_right():
        return any(p.get("endpoint") == right and p.get("ready") for p in peers_of(b))
    H.wait_until(linked_right, "b's link to a at the endpoint of a's Hello (%s)" % right, timeout=10)
    H.check(not any(p.get("endpoint") == wrong for p in peers_of(b)), "the beacon's link stayed: %s" % peers_of(b))
    a.call("set", {"path": "from_a", "value": 1})
    b.call("set", {"path": "from_b", "value": 2})
    cluster.wait_converged(nodes=[a, b])
    H.step("a's Hello named %s: b's link moved there at once, and the two converged" % right)

    quiet = cluster.add_node("quiet")
    quiet.secure = True
    quiet.extra_args = ["--discovery", "on", "--discovery-port", str(free_udp_port())]
    quiet.start()
    d = quiet.status()["discovery"]
    H.check(d["state"].startswith("off") and "loopback" in d["state"], "a loopback-only node beacons: %s" % d)
    H.step("a node listening on loopback only sends no beacons: %s" % d["state"])
    quiet.stop()


if __name__ == "__main__":
    H.run(gives_way_test)

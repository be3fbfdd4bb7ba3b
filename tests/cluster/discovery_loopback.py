#!/usr/bin/python3
"""Cluster.DiscoveryFindsPeersOnLoopbackWithoutPeerOptions: three secure nodes
on one host, with no --peer, find each other by beacons and converge. On one
host broadcasts may not reach the other nodes, so each node also sends its
beacon by unicast to the others' UDP ports (--discovery-to, a test-only
option); the network-namespace test (discovery_netns.py) covers broadcast.
Then: every peer says how it was found (discovered, or inbound for the link
back to a device that dialled first), status --json counts the beacons, and a
node with --discovery off sends none.

Usage: discovery_loopback.py PATH_TO_REPLOG"""
import json
import os
import socket
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from discovery_netns import pair_devices  # noqa: E402


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_test(cluster):
    nodes = [cluster.add_node("n%d" % i) for i in range(3)]
    pair_devices(cluster.replog, [n.data for n in nodes])
    udp = [free_udp_port() for _ in nodes]
    for i, n in enumerate(nodes):
        n.secure = True
        n.extra_args = ["--discovery", "on", "--discovery-port", str(udp[i]), "--discovery-interval-ms", "300"]
        for j in range(len(nodes)):
            if j != i:
                n.extra_args += ["--discovery-to", "127.0.0.1:%d" % udp[j]]
    for n in nodes:
        n.start()
    for i, n in enumerate(nodes):
        n.call("set", {"path": "from.%s" % n.name, "value": i})

    def all_linked():
        for n in nodes:
            peers = n.status()["peers"]
            if sum(1 for p in peers if p.get("ready")) < len(nodes) - 1:
                return False
        return True
    H.wait_until(all_linked, "every node to have a ready link to each other node", timeout=20)
    cluster.wait_converged(nodes=nodes)
    H.step("three nodes without --peer found each other and converged")

    found = {}
    for n in nodes:
        peers = json.loads(n.cli("peers", "--json"))
        found[n.name] = sorted(p.get("how", "?") for p in peers)
        H.check(all(p.get("how") in ("discovered", "inbound") for p in peers),
                "%s: peers found otherwise than by discovery: %s" % (n.name, peers))
        text = n.cli("peers")
        H.check("discovered" in text or "inbound" in text, "%s: replog peers names no how: %s" % (n.name, text))
    H.check(any("discovered" in v for v in found.values()), "no link was made by discovery: %s" % found)
    H.step("how each peer was found: %s" % json.dumps(found))

    st = nodes[0].status()
    d = st.get("discovery")
    H.check(d is not None and d["state"] == "on", "status --json has no discovery object that is on: %s" % d)
    H.check(d["beacons_sent"] > 0 and d["beacons_known"] > 0, "no beacons counted: %s" % d)
    H.check(d["beacons_bad_mac"] == 0, "beacons of this cluster failed the MAC: %s" % d)
    H.check("beacons_refused" in st["refusals"] and "discovery_dials_limited" in st["refusals"],
            "refusals lack the discovery counters: %s" % st["refusals"])
    H.step("n0 discovery counters: %s" % json.dumps(d))

    quiet = cluster.add_node("quiet")
    quiet.secure = True
    quiet.extra_args = ["--discovery", "off", "--discovery-port", str(free_udp_port()),
                        "--discovery-to", "127.0.0.1:%d" % udp[0]]
    quiet.start()
    st = quiet.status()
    H.check(st["discovery"]["state"] == "off" and st["discovery"]["beacons_sent"] == 0,
            "--discovery off: %s" % st["discovery"])
    r = subprocess.run([cluster.replog, "node", "--data", quiet.data, "--listen", "tcp://127.0.0.1:1", "--insecure",
                        "--discovery", "on"], capture_output=True, text=True, timeout=30)
    H.check(r.returncode != 0 and "--insecure" in r.stderr, "--insecure --discovery on: exit %d, %s" % (
        r.returncode, r.stderr.strip()))
    H.step("--discovery off sends nothing; --insecure --discovery on is refused")
    quiet.stop()


if __name__ == "__main__":
    H.run(loopback_test)

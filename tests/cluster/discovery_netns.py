#!/usr/bin/python3
"""Cluster.DiscoveryInNamespacesFindsMembersOnly: real hosts on one machine.
One network namespace per node, each joined by a veth pair to a bridge in a
hub namespace (10.77.0.0/24), made and deleted here. Three members start with
discovery on (the default) and no --peer; they find each other by broadcast
beacons and converge while every member drops a quarter of the packets it
receives (an nftables `numgen random` rule; no netem needed). Two more nodes
on the bridge learn nothing: a stranger without the cluster secret (the
members' beacons fail its MAC) and a device that holds the secret but that
no member trusts (its beacons name no trusted device). Neither syncs
anything. A capture of every beacon on the bridge (tcpdump) holds no public
key, no device id, no cluster id and no cluster secret, nor any 8-byte
window of them.

Needs root, ip, nft and tcpdump; exits 77 (skipped) with one line where a
namespace or an nftables table cannot be made.

Usage: discovery_netns.py PATH_TO_REPLOG"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

PREFIX = "rdsc"           # namespaces: rdsc<pid>h (the hub), rdsc<pid>n<i>
SUBNET = "10.77.0."
TCP_PORT = 7400
UDP_PORT = 21029          # the default discovery port
LOSS_PERCENT = 25
MEMBERS = 3
CALLS_PER_MEMBER = 20


def run(args, check=True, input_text=None, timeout=30):
    r = subprocess.run(args, capture_output=True, text=True, input=input_text, timeout=timeout,
                       stdin=None if input_text is not None else subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise H.TestFailure("%s: exit %d: %s" % (" ".join(args), r.returncode, (r.stderr or r.stdout).strip()[:300]))
    return r


def give_cluster_secret(from_dir, to_dir):
    with open(os.path.join(from_dir, "cluster.key"), "rb") as f:
        secret = f.read()
    path = os.path.join(to_dir, "cluster.key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    os.chmod(path, 0o600)


def pair_devices(replog, data_dirs):
    """Makes the devices of `data_dirs` one cluster that trusts itself: the
    first one's cluster secret is given to the others and each trusts every
    other's device id. Nodes must not be running. Stands in for invite/join:
    when those exist, this is the one function to change. Returns the ids."""
    ids = [json.loads(run([replog, "id", "--json", "--data", d]).stdout)["device_id"] for d in data_dirs]
    for d in data_dirs[1:]:
        give_cluster_secret(data_dirs[0], d)
    for i, d in enumerate(data_dirs):
        for j, other in enumerate(ids):
            if j != i:
                run([replog, "trust", "add", other, "--name", "d%d" % j, "--data", d])
    return ids


class Net:
    """A hub namespace with a bridge, and one namespace per node on it."""

    def __init__(self, count):
        tag = "%s%d" % (PREFIX, os.getpid())
        self.hub = tag + "h"
        self.ns = ["%sn%d" % (tag, i) for i in range(count)]
        self.addr = [SUBNET + str(11 + i) for i in range(count)]
        self.made = []

    def make(self):
        for ns in [self.hub] + self.ns:
            run(["ip", "netns", "add", ns])
            self.made.append(ns)
        h = ["ip", "-n", self.hub]
        run(h + ["link", "add", "br0", "type", "bridge"])
        run(h + ["link", "set", "br0", "up"])
        for i, ns in enumerate(self.ns):
            run(h + ["link", "add", "v%d" % i, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(h + ["link", "set", "v%d" % i, "master", "br0", "up"])
            n = ["ip", "-n", ns]
            run(n + ["addr", "add", self.addr[i] + "/24", "brd", "+", "dev", "eth0"])
            run(n + ["link", "set", "eth0", "up"])
            run(n + ["link", "set", "lo", "up"])

    def drop_randomly(self, i, percent):
        """Node i drops `percent` % of every packet it receives (TCP and UDP)."""
        script = ("table inet loss {\n  chain input { type filter hook input priority 0; policy accept; "
                  "numgen random mod 100 < %d counter drop; }\n}\n" % percent)
        run(["ip", "netns", "exec", self.ns[i], "nft", "-f", "-"], input_text=script)

    def dropped(self, i):
        """Packets node i's loss rule has dropped so far."""
        out = run(["ip", "netns", "exec", self.ns[i], "nft", "list", "table", "inet", "loss"]).stdout
        m = re.search(r"counter packets (\d+)", out)
        return int(m.group(1)) if m else 0

    def destroy(self):
        for ns in reversed(self.made):
            run(["ip", "netns", "del", ns], check=False)
        self.made = []


def remove_stale_namespaces():
    """Namespaces of an earlier run whose driver is gone (killed before its cleanup)."""
    for line in run(["ip", "netns", "list"], check=False).stdout.splitlines():
        m = re.match(r"^(%s(\d+)[hn]\d*)\b" % PREFIX, line)
        if m and not os.path.exists("/proc/%s" % m.group(2)):
            run(["ip", "netns", "del", m.group(1)], check=False)


class NsNode(H.Node):
    """A harness node whose process runs in a namespace of its own."""

    def place(self, ns, addr):
        self.ns = ns
        self.listen = "tcp://%s:%d" % (addr, TCP_PORT)
        self.secure = True

    def start(self, wait=True):
        args = ["ip", "netns", "exec", self.ns, self.cluster.replog, "node", "--data", self.data,
                "--listen", self.listen, "--anti-entropy-ms", str(H.ANTI_ENTROPY_MS),
                "--discovery-interval-ms", "500", "--log-level", "debug"]
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(("---- start #%d: %s\n" % (self.starts, " ".join(args))).encode())
            log.flush()
            # `ip netns exec` execs the node: proc.pid is the node's pid.
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=H._die_with_parent)
        if wait:
            self.wait_serving()
        return self


def start_capture(net, path):
    proc = subprocess.Popen(["ip", "netns", "exec", net.hub, "tcpdump", "-i", "br0", "--immediate-mode", "-U", "-n",
                             "-s", "0", "-w", path, "udp port %d" % UDP_PORT],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=H._die_with_parent)
    line = proc.stderr.readline().decode(errors="replace")
    if "listening on" not in line:
        proc.kill()
        raise H.TestFailure("tcpdump did not start: %s" % line.strip())
    return proc


def stop_capture(proc, path):
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with open(path, "rb") as f:
        return f.read()


def windows(data, size=8):
    return {data[i:i + size] for i in range(len(data) - size + 1)}


def check_capture(captured, nodes, ids, cluster_id):
    beacons = captured.count(b"RPLD")
    H.check(beacons >= 20, "the capture holds %d beacons: it did not see them" % beacons)
    secrets = {}
    for n, device in zip(nodes, ids):
        pk = bytes.fromhex(json.loads(n.cli("id", "--json"))["public_key_hex"])
        secrets["%s public key" % n.name] = pk
        secrets["%s device id" % n.name] = device.encode()
        secrets["%s device id without dashes" % n.name] = device.replace("-", "").encode()
        with open(os.path.join(n.data, "cluster.key"), "rb") as f:
            secrets["%s cluster secret" % n.name] = f.read()
    secrets["cluster id"] = cluster_id.encode()
    for what, value in secrets.items():
        for w in windows(value):
            H.check(w not in captured, "the capture of the beacons holds 8 bytes of the %s" % what)
    H.step("%d beacons captured (%d bytes): no 8-byte window of a public key, device id, cluster id or secret"
           % (beacons, len(captured)))


def netns_test(cluster):
    remove_stale_namespaces()
    nodes = [cluster.add_node("m%d" % i) for i in range(MEMBERS)]
    stranger = cluster.add_node("stranger")     # another cluster secret (its own), trusted by no one
    untrusted = cluster.add_node("untrusted")   # this cluster's secret, trusted by no one
    everyone = nodes + [stranger, untrusted]
    ids = pair_devices(cluster.replog, [n.data for n in nodes])
    # The untrusted device got the secret (say, it was removed) but no member trusts it, nor it them.
    give_cluster_secret(nodes[0].data, untrusted.data)
    all_ids = ids + [json.loads(n.cli("id", "--json"))["device_id"] for n in (stranger, untrusted)]

    net = Net(len(everyone))
    capture = None
    try:
        net.make()
        for i, n in enumerate(everyone):
            n.__class__ = NsNode
            n.place(net.ns[i], net.addr[i])
        for i in range(MEMBERS):
            net.drop_randomly(i, LOSS_PERCENT)
        H.step("%d namespaces on a bridge; members drop %d%% of what they receive" % (len(everyone), LOSS_PERCENT))
        capture_path = os.path.join(cluster.tmp, "beacons.pcap")
        capture = start_capture(net, capture_path)
        for n in everyone:
            n.start(wait=False)
        for n in everyone:
            n.wait_serving(timeout=20)
        for k in range(CALLS_PER_MEMBER):
            for n in nodes:
                n.call("set", {"path": "%s.k%d" % (n.name, k), "value": k})
        for n in (stranger, untrusted):
            n.call("set", {"path": "leak.%s" % n.name, "value": 1})

        def members_linked():
            return all(sum(1 for p in n.status()["peers"] if p.get("ready")) >= MEMBERS - 1 for n in nodes)
        H.wait_until(members_linked, "every member to be linked to the two others", timeout=60)
        cluster.wait_converged(nodes=nodes, timeout=60)
        dropped = [net.dropped(i) for i in range(MEMBERS)]
        H.check(all(d > 0 for d in dropped), "a loss rule dropped nothing: %s" % dropped)
        H.step("three members without --peer found each other and converged under %d%% loss (dropped: %s)"
               % (LOSS_PERCENT, dropped))

        for n in nodes:
            peers = json.loads(n.cli("peers", "--json"))
            hows = sorted(p.get("how") for p in peers)
            H.check(all(h in ("discovered", "inbound") for h in hows), "%s: peers found how? %s" % (n.name, peers))
            H.check(len(n.vector()) == MEMBERS, "%s holds updates of %d origins: %s" % (n.name, len(n.vector()),
                                                                                          n.vector()))
            d = n.status()["discovery"]
            H.check(d["beacons_bad_mac"] > 0, "%s never heard the stranger's beacons: %s" % (n.name, d))
            H.check(d["beacons_unknown_device"] > 0, "%s never heard the untrusted device: %s" % (n.name, d))
            H.check(d["beacons_self"] > 0, "%s never heard its own beacon: %s" % (n.name, d))
            H.step("%s: peers %s; discovery %s" % (n.name, hows, json.dumps(d)))
        time.sleep(2)  # a few more beacon rounds for the outsiders to hear
        for n, counter in ((stranger, "beacons_bad_mac"), (untrusted, "beacons_unknown_device")):
            st = n.status()
            d = st["discovery"]
            H.check(d["beacons_known"] == 0 and d["dials"] == 0, "%s recognised a member: %s" % (n.name, d))
            H.check(d[counter] > 0, "%s heard no member beacon (%s): %s" % (n.name, counter, d))
            H.check(not any(p.get("ready") for p in st["peers"]), "%s has a ready peer: %s" % (n.name, st["peers"]))
            H.check(len(st["vector"]) == 1, "%s received updates: %s" % (n.name, st["vector"]))
            H.step("%s learned nothing: %s" % (n.name, json.dumps(d)))
    finally:
        captured = stop_capture(capture, capture_path) if capture else None
        cluster.stop_all()
        net.destroy()
    check_capture(captured, everyone, all_ids, cluster.cluster_id)


def skip_reason():
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft", "tcpdump"):
        if shutil.which(tool) is None:
            return "%s is not installed (tools/deps.sh installs it)" % tool
    probe = "%s%dprobe" % (PREFIX, os.getpid())
    r = run(["ip", "netns", "add", probe], check=False)
    if r.returncode != 0:
        return "cannot make a network namespace (ip netns add: %s)" % r.stderr.strip()
    try:
        r = run(["ip", "netns", "exec", probe, "nft", "-f", "-"], check=False,
                input_text="table inet probe {\n  chain input { type filter hook input priority 0; "
                           "numgen random mod 100 < 1 drop; }\n}\n")
        if r.returncode != 0:
            return "cannot load an nftables table in a namespace (nft: %s)" % r.stderr.strip()[:200]
    finally:
        run(["ip", "netns", "del", probe], check=False)
    return None


if __name__ == "__main__":
    reason = skip_reason()
    if reason:
        print("skipped: %s" % reason)
        sys.exit(77)
    H.run(netns_test)

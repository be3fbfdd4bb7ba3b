#!/usr/bin/python3
"""Cluster.LanDevicesPairByInviteFindEachOtherAndConverge: real hosts on one
machine. One network namespace per device, each joined by a veth pair to a
bridge in a hub namespace (10.77.0.0/24), made and deleted here. Every member
drops a quarter of the packets it receives (an nftables `numgen random` rule;
no netem needed), from the start.

n0 starts with discovery on (the default) and no --peer. n1 and n2 are paired
by invites: `replog invite` on n0, `replog join LINE` run in the joiner's
namespace (the exchange crosses the bridge); just joined, each trusts n0
only. Started with no --peer, they come to trust each other through
membership (how "introducer", by n0), every member gets ready links to the
two others (`replog peers` says how each was found) and the three converge.
A fourth device n3 joins by one invite from n1 and starts with no --peer:
n0, n1 and n2 trust it within a bounded wait, its writes reach them all and
it holds all of theirs. Two more devices on the bridge learn nothing: a
stranger without the cluster secret (the members' beacons fail its MAC) and
a device that holds the secret but that no member trusts (its beacons name
no trusted device). Neither syncs anything. An invite line used already is
refused when tried again from the stranger's namespace. A capture of every
beacon on the bridge (tcpdump) holds no public key, no device id, no cluster
id and no cluster secret, nor any 8-byte window of them.

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
    other's device id. Nodes must not be running. Returns the ids. For tests
    whose nodes cannot reach each other to join (the loopback discovery
    test); the namespace test below pairs by invite."""
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


def invite(cluster, inviter):
    """`replog invite --json` on the running inviter (its local API). Its
    endpoints are where it listens: its bridge address, reachable from every
    namespace. Returns the line."""
    info = json.loads(run([cluster.replog, "invite", "--data", inviter.data, "--expires", "2m", "--json"]).stdout)
    H.check(info["endpoints"] == [inviter.listen], "%s's invite names %s" % (inviter.name, info["endpoints"]))
    return info["line"]


def join(cluster, net, i, line, name):
    """`replog join LINE` run in namespace i: the exchange crosses the bridge.
    Returns the new device's node (not started). Under the loss rules a TCP
    connect can lose its SYN or SYN-ACK several times over, and the kernel
    waits 1, 3, 7, 15 s before trying again: joins here ran past 20 s in 2 of
    10 runs, so one gets 60."""
    data = os.path.join(cluster.tmp, name)
    r = run(["ip", "netns", "exec", net.ns[i], cluster.replog, "join", line, "--data", data, "--name", name,
             "--timeout", "60s", "--json"], timeout=80)
    joined = json.loads(r.stdout)
    H.check(joined["made_dir"] and joined["cluster_id"] == cluster.cluster_id, "join --json: %s" % joined)
    n = NsNode(cluster, name, data, TCP_PORT)
    n.node_id = n.status()["node_id"]
    n.place(net.ns[i], net.addr[i])
    cluster.nodes.append(n)
    return n


def netns_test(cluster):
    remove_stale_namespaces()
    n0 = cluster.add_node("n0")
    stranger = cluster.add_node("stranger")     # another cluster secret (its own), trusted by no one
    untrusted = cluster.add_node("untrusted")   # this cluster's secret, trusted by no one
    # The untrusted device got the secret (say, it was removed) but no member trusts it, nor it them.
    give_cluster_secret(n0.data, untrusted.data)
    # Namespaces: 0..3 the members n0..n3 (n1..n3 made by replog join), then the outsiders.
    net = Net(MEMBERS + 1 + 2)
    outsiders = [(stranger, MEMBERS + 1), (untrusted, MEMBERS + 2)]
    capture = None
    nodes = [n0]
    try:
        net.make()
        for n, i in [(n0, 0)] + outsiders:
            n.__class__ = NsNode
            n.place(net.ns[i], net.addr[i])
        for i in range(MEMBERS + 1):
            net.drop_randomly(i, LOSS_PERCENT)
        H.step("%d namespaces on a bridge; members drop %d%% of what they receive" % (len(net.ns), LOSS_PERCENT))
        capture_path = os.path.join(cluster.tmp, "beacons.pcap")
        capture = start_capture(net, capture_path)
        for n in (n0, stranger, untrusted):
            n.start(wait=False)
        for n in (n0, stranger, untrusted):
            n.wait_serving(timeout=20)

        lines = []
        for i in (1, 2):
            lines.append(invite(cluster, n0))
            nodes.append(join(cluster, net, i, lines[-1], "n%d" % i))
        n1, n2 = nodes[1], nodes[2]
        ids = {n.name: n.device_id() for n in nodes}
        H.check({d: e["how"] for d, e in n0.trusted().items()} == {ids["n1"]: "invite", ids["n2"]: "invite"},
                "n0 trusts %s" % n0.trusted())
        for n in (n1, n2):
            H.check(list(n.trusted()) == [ids["n0"]] and n.trusted()[ids["n0"]]["how"] == "invite",
                    "%s, just joined, trusts %s" % (n.name, n.trusted()))
        H.step("n1 and n2 joined by invites from n0, each in its own namespace; each trusts n0 only")

        for n in (n1, n2):
            n.start(wait=False)
        for n in (n1, n2):
            n.wait_serving(timeout=20)

        def joiners_trust_each_other():
            return ids["n2"] in n1.trusted() and ids["n1"] in n2.trusted()
        H.wait_until(joiners_trust_each_other, "n1 and n2 to trust each other", timeout=45,
                     on_timeout=lambda: "%s / %s" % (n1.trusted(), n2.trusted()))
        for n, other in ((n1, "n2"), (n2, "n1")):
            e = n.trusted()[ids[other]]
            H.check(e["how"] == "introducer" and e["by"] == ids["n0"], "%s's entry about %s: %s" % (n.name, other, e))
        H.step("n1 and n2 trust each other, introduced by n0 (how introducer)")

        for k in range(CALLS_PER_MEMBER):
            for n in nodes:
                n.call("set", {"path": "%s.k%d" % (n.name, k), "value": k})
        for n in (stranger, untrusted):
            n.call("set", {"path": "leak.%s" % n.name, "value": 1})

        def ready_links(n):
            return {p.get("device_id"): p.get("how") for p in json.loads(n.cli("peers", "--json")) if p.get("ready")}

        def linked(group):
            return all(set(ready_links(n)) >= {ids[m.name] for m in group if m is not n} for n in group)
        H.wait_until(lambda: linked(nodes), "every member to be linked to the two others", timeout=90,
                     on_timeout=lambda: cluster.describe(nodes))
        expected = {n.node_id: CALLS_PER_MEMBER for n in nodes}
        cluster.wait_converged(nodes=nodes, expected=expected, timeout=60)
        dropped = [net.dropped(i) for i in range(MEMBERS)]
        H.check(all(d > 0 for d in dropped), "a loss rule dropped nothing: %s" % dropped)
        H.step("three members without --peer found each other and converged under %d%% loss (dropped: %s)"
               % (LOSS_PERCENT, dropped))
        # How each link was found: n1 and n2 reach n0 by their invites (peers.json); n0 hears
        # them by a beacon or takes its trust entry's `invite` for their inbound links; the
        # joiners find each other by a beacon or where n0 reaches them (introducer).
        allowed = {("n0", "n1"): {"discovered", "invite"}, ("n0", "n2"): {"discovered", "invite"},
                   ("n1", "n0"): {"invite"}, ("n2", "n0"): {"invite"},
                   ("n1", "n2"): {"discovered", "introducer"}, ("n2", "n1"): {"discovered", "introducer"}}
        for n in nodes:
            hows = ready_links(n)
            for m in nodes:
                if m is not n:
                    H.check(hows.get(ids[m.name]) in allowed[(n.name, m.name)],
                            "%s's link to %s was found how? %s" % (n.name, m.name, hows.get(ids[m.name])))
            d = n.status()["discovery"]
            H.check(d["beacons_bad_mac"] > 0, "%s never heard the stranger's beacons: %s" % (n.name, d))
            H.check(d["beacons_unknown_device"] > 0, "%s never heard the untrusted device: %s" % (n.name, d))
            H.check(d["beacons_self"] > 0, "%s never heard its own beacon: %s" % (n.name, d))
            H.step("%s: ready links %s; discovery %s"
                   % (n.name, sorted("%s %s" % (m.name, hows[ids[m.name]]) for m in nodes if m is not n),
                      json.dumps(d)))

        n3 = join(cluster, net, 3, invite(cluster, n1), "n3")
        ids["n3"] = n3.device_id()
        n3.start()
        H.step("n3 joined by one invite from n1 and started with no --peer")
        H.wait_until(lambda: all(ids["n3"] in n.trusted() for n in nodes), "n0, n1 and n2 to trust n3", timeout=45,
                     on_timeout=lambda: "; ".join("%s: %s" % (n.name, sorted(n.trusted())) for n in nodes))
        H.check(n1.trusted()[ids["n3"]]["how"] == "invite", "n1's entry about n3: %s" % n1.trusted()[ids["n3"]])
        H.wait_until(lambda: all(ids[n.name] in n3.trusted() for n in nodes), "n3 to trust n0, n1 and n2",
                     timeout=45, on_timeout=lambda: str(n3.trusted()))
        H.step("n0, n1 and n2 trust n3 (n1: invite; n0, n2: %s)"
               % ", ".join(n.trusted()[ids["n3"]]["how"] for n in (n0, n2)))
        for k in range(CALLS_PER_MEMBER):
            n3.call("set", {"path": "n3.k%d" % k, "value": k})
        nodes.append(n3)
        expected[n3.node_id] = CALLS_PER_MEMBER
        cluster.wait_converged(nodes=nodes, expected=expected, timeout=60)
        H.wait_until(lambda: linked(nodes), "the four members to be linked to each other", timeout=90,
                     on_timeout=lambda: cluster.describe(nodes))
        H.step("n3's writes reached every member and it holds all of theirs; its links: %s"
               % sorted("%s %s" % (m.name, h) for m in nodes for d, h in ready_links(n3).items() if d == ids[m.name]))

        time.sleep(2)  # a few more beacon rounds for the outsiders to hear
        for n, counter in ((stranger, "beacons_bad_mac"), (untrusted, "beacons_unknown_device")):
            st = n.status()
            d = st["discovery"]
            H.check(d["beacons_known"] == 0 and d["dials"] == 0, "%s recognised a member: %s" % (n.name, d))
            H.check(d[counter] > 0, "%s heard no member beacon (%s): %s" % (n.name, counter, d))
            H.check(not any(p.get("ready") for p in st["peers"]), "%s has a ready peer: %s" % (n.name, st["peers"]))
            H.check(len(st["vector"]) == 1, "%s received updates: %s" % (n.name, st["vector"]))
            H.step("%s learned nothing: %s" % (n.name, json.dumps(d)))
        for n in nodes:
            H.check(len(n.vector()) == len(nodes), "%s took an outsider's write: %s" % (n.name, n.vector()))

        r = run(["ip", "netns", "exec", net.ns[MEMBERS + 1], cluster.replog, "join", lines[0],
                 "--data", os.path.join(cluster.tmp, "again"), "--timeout", "10s"], check=False, timeout=30)
        H.check(r.returncode != 0 and "ask for a new line" in r.stderr,
                "n1's line used again: exit %d: %s" % (r.returncode, r.stderr.strip()))
        H.step("n1's line, used again from the stranger's namespace, is refused: %s" % r.stderr.strip())
    finally:
        captured = stop_capture(capture, capture_path) if capture else None
        cluster.stop_all()
        net.destroy()
    everyone = nodes + [stranger, untrusted]
    check_capture(captured, everyone, [n.device_id() for n in everyone], cluster.cluster_id)


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

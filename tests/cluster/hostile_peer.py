#!/usr/bin/python3
"""Cluster.HostilePeerIsDroppedAndNodeKeepsServing: a raw ZeroMQ DEALER (pyzmq)
connected to node a's listen port sends what a broken or hostile peer could send
(PROTOCOL.md §2): messages before Hello (Error 4), garbage and valid headers with
wrong bodies (dropped; Error 1 at most), another protocol version (Error 2),
multi-part messages, a Hello of another cluster (Error 3), a frame above max_frame
(ZMQ_MAXMSGSIZE cuts the connection); then, after a proper Hello with feature bit 1
(answered with a's Hello, bit 1 set; a connects back to the advertised endpoint),
signed updates (PROTOCOL.md §8: every run ends at a head signed by its origin's key):
H#1 of the peer's own origin H (stored, relayed to b), and updates of a second origin
F of its own that skip a seq (not stored; a pulls F from the sender at once), do not
rise in hlc, fork F's seq 1 under a second signed head (a quarantines F and reports
it), or arrive after the fork; an origin O whose update lies beyond the clock-skew
limit; then floods of 600 refused Pushes and 10,000 Vector messages, whose malformed
ones cut that connection off (its Request is not answered; status counts it) while a
new connection is served at once.

Then signed origins against every node (a third node c peers only with b, through a
proxy that stays blocked until the end): the hostile peer pulls a's and b's logs
from a and checks that they are genuine (ranges end at heads, the first carries the
key, ids derive from keys, signatures verify, updates chain to the heads); (a) its
own genuine signed runs are taken by a, b and c (from seq 1 with the key, and
continuing); (b) a's first range relayed under a's genuine head with one byte of its
first body changed is refused by c (which holds nothing of a), a and b, and with one
hlc moved by c; (c) runs in b's name, chained right from b's genuine log, under a
head signed with the hostile key carrying that key, no key, or b's key, are refused
by a and c; (d) such runs in a's own name to a and in b's to b (new seqs, and a
rewrite of seq 1) are refused, and a and b keep their node ids and keep writing.
No node takes any of it for a fork; updates_refused counts it.

Meanwhile node b peers with a (and with a fake node of another cluster, which it
must not ask again within 60 s of its Error 3), and both keep writing. Afterwards
a still runs and serves, a, b and c hold the same updates (every call, H#1..8, F#1
only) and the same state hash, the hostile peer's genuine updates are in every
state and no forged, altered or refused value is in any, a reports exactly one fork
(origin F) and nothing else changed (no conflicts, writes not blocked, nothing
unknown, no former origins), b and c report no fork, a logged the bad frames and
refusals at a bounded rate (PROTOCOL.md §2: "logged at most once per 5 s") and its
memory did not grow by more than 100 MB. During the attack neither a nor b fell
behind the other's writes by more than 5 s of them (a monitor samples both vectors
every 100 ms); a sent at most 3 Requests in the second the listener answered them
with empty Updates (no re-request loop), and after that, for each origin, no
unanswered Request again within 5 s.

Usage: hostile_peer.py PATH_TO_REPLOG"""
import json
import os
import random
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

import msgpack  # noqa: E402
import zmq  # noqa: E402
import zmq.utils.monitor  # noqa: E402

HELLO, ERROR, VECTOR, REQUEST, UPDATES, PUSH = 1, 2, 3, 4, 5, 6
MAX_UPDATE, MAX_FRAME = 1 << 20, 4 << 20
FEATURE_SIGNED = 2      # PROTOCOL.md §2 "Features", bit 1: Updates and Push carry heads (§8 "On the wire")
MAX_GROWTH_MB = 100
# Bound on how far one node may fall behind the other's writes during the attack: what the other writes
# in LAG_S seconds (at least LAG_MIN updates).
LAG_S, LAG_MIN = 5.0, 100
CTX = zmq.Context.instance()


def frame(type_, body, version=1):
    return msgpack.packb([version, type_, body], use_bin_type=True)


def decode(data):
    try:
        return msgpack.unpackb(data, raw=False)
    except Exception:
        return ("undecodable", data[:40])


class Raw:
    """A raw DEALER to the node under attack."""

    def __init__(self, endpoint, monitor=False):
        self.s = CTX.socket(zmq.DEALER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.setsockopt(zmq.SNDHWM, 100000)
        self.s.setsockopt(zmq.SNDTIMEO, 5000)
        self.monitor = self.s.get_monitor_socket() if monitor else None
        self.s.connect(endpoint)

    def send(self, data):
        self.s.send(data)

    def recv(self, timeout=1.0):
        if self.s.poll(int(timeout * 1000)):
            return decode(self.s.recv())
        return None

    def drain(self):
        n = 0
        while self.s.poll(0):
            self.s.recv()
            n += 1
        return n

    def expect_error(self, code, what, timeout=3.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.recv(max(0.01, deadline - time.monotonic()))
            if r is None:
                break
            if isinstance(r, list) and len(r) == 3 and r[1] == ERROR:
                H.check(r[2][0] == code, "%s: got Error %s, expected Error %d" % (what, r[2], code))
                H.step("  %s -> Error %d (%s)" % (what, code, r[2][1]))
                return
        raise H.TestFailure("%s: no Error %d within %.0f s" % (what, code, timeout))

    def tolerate(self, allowed, what, timeout=0.15):
        """Whatever comes back must be an Error with a code in `allowed` (or nothing)."""
        got = []
        while True:
            r = self.recv(timeout)
            if r is None:
                break
            got.append(r)
            H.check(isinstance(r, list) and len(r) == 3 and r[1] == ERROR and r[2][0] in allowed,
                    "%s: unexpected answer %r" % (what, r))
        H.step("  %s -> %s" % (what, ", ".join("Error %d" % r[2][0] for r in got) or "dropped, no answer"))

    def hello(self, body, what="a proper Hello"):
        """Says Hello and returns the node's Hello body (within 5 s)."""
        self.send(frame(HELLO, body))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            m = self.recv(0.5)
            if isinstance(m, list) and len(m) == 3 and m[1] == HELLO:
                return m[2]
        raise H.TestFailure("no Hello back within 5 s for %s" % what)

    def pull(self, origin, from_seq, to_seq):
        """Pulls `origin` from `from_seq` up to at least `to_seq` on this signed link, as a peer
        would (PROTOCOL.md §2 "Pull", §8 "On the wire"). Returns (envelopes, heads): every
        range ends at the head that came with it."""
        ups, heads = [], []
        deadline = time.monotonic() + 20
        while from_seq + len(ups) <= to_seq:
            self.send(frame(REQUEST, [origin, from_seq + len(ups), to_seq, 256 * 1024]))
            m = None
            while m is None:
                H.check(time.monotonic() < deadline, "a pull of %016x did not finish within 20 s" % origin)
                r = self.recv(0.5)
                if isinstance(r, list) and len(r) == 3 and r[1] == UPDATES and r[2][0] == origin:
                    m = r[2]
            H.check(len(m) == 4, "Updates on a signed link without its head: %d elements" % len(m))
            if not m[2]:
                break
            H.check(m[3] is not None, "a non-empty range came without a head")
            ups += m[2]
            heads.append(m[3])
        return ups, heads

    def close(self):
        if self.monitor is not None:
            self.s.disable_monitor()
            self.monitor.close(0)
        self.s.close(0)


class Listener(threading.Thread):
    """The hostile peer's own ROUTER (the endpoint its Hello advertises). The node is
    expected to connect back to it; it answers the node's Hello (with feature bit 1) and
    Vectors like a peer that holds `held` of origin `claim`, and records the Requests the
    node sends."""

    def __init__(self, cluster_id, node_id, port):
        super().__init__(daemon=True)
        self.cluster_id, self.node_id, self.port = cluster_id, node_id, port
        self.s = CTX.socket(zmq.ROUTER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.bind("tcp://127.0.0.1:%d" % port)
        self.held = 0
        self.claim = node_id
        self.answer_requests = True
        self.hellos = []
        self.requests = []
        self.request_times = []   # time.monotonic() of each Request, in order
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            if not self.s.poll(50):
                continue
            parts = self.s.recv_multipart()
            if len(parts) != 2:
                continue
            rid, m = parts[0], decode(parts[1])
            if not (isinstance(m, list) and len(m) == 3):
                continue
            if m[1] == HELLO:
                self.hellos.append(m[2])
                self.s.send_multipart([rid, frame(HELLO, [self.cluster_id, self.node_id,
                                                          "tcp://127.0.0.1:%d" % self.port, MAX_UPDATE, MAX_FRAME,
                                                          FEATURE_SIGNED])])
            elif m[1] == VECTOR and not m[2][2]:
                held = [[self.claim, self.held]] if self.held else []
                self.s.send_multipart([rid, frame(VECTOR, [0, 1, True, held])])
            elif m[1] == REQUEST:
                self.request_times.append(time.monotonic())
                self.requests.append(m[2])
                if self.answer_requests:   # "holds nothing from from_seq"; an empty range's head is nil
                    self.s.send_multipart([rid, frame(UPDATES, [m[2][0], False, [], None])])

    def stop(self):
        self.stopping.set()
        self.join(5)
        self.s.close(0)


class OtherCluster(threading.Thread):
    """A ROUTER that answers every Hello with Error 3 (another cluster), recording when they came."""

    def __init__(self):
        super().__init__(daemon=True)
        self.s = CTX.socket(zmq.ROUTER)
        self.s.setsockopt(zmq.LINGER, 0)
        port = H.free_port()
        self.s.bind("tcp://127.0.0.1:%d" % port)
        self.endpoint = "tcp://127.0.0.1:%d" % port
        self.hellos = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            if not self.s.poll(50):
                continue
            parts = self.s.recv_multipart()
            m = decode(parts[-1])
            if isinstance(m, list) and len(m) == 3 and m[1] == HELLO:
                self.hellos.append(time.monotonic())
                self.s.send_multipart([parts[0], frame(ERROR, [3, "this node is in cluster elsewhere"])])

    def stop(self):
        self.stopping.set()
        self.join(5)
        self.s.close(0)


class LagMonitor(threading.Thread):
    """Samples, every 100 ms, how far a is behind b's own writes and b behind a's."""

    def __init__(self, a, b):
        super().__init__(daemon=True)
        self.a, self.b = a, b
        self.max_a_behind = self.max_b_behind = 0
        self.samples = 0
        self.error = None
        self.stopping = threading.Event()

    def run(self):
        ca, cb = self.a.client(2000), self.b.client(2000)
        try:
            while not self.stopping.wait(0.1):
                va, vb = ca.status()["vector"], cb.status()["vector"]
                self.max_a_behind = max(self.max_a_behind, vb.get(self.b.node_id, 0) - va.get(self.b.node_id, 0))
                self.max_b_behind = max(self.max_b_behind, va.get(self.a.node_id, 0) - vb.get(self.a.node_id, 0))
                self.samples += 1
        except Exception as e:   # a status call that timed out: the node under attack stopped serving
            self.error = repr(e)
        finally:
            ca.socket.close(0)
            cb.socket.close(0)

    def stop(self):
        self.stopping.set()
        self.join(5)


def barrier(p, hostile_id, cluster):
    """Waits until node a has handled every frame sent on `p` so far: a Request's answer
    comes after the frames before it, and a second Request's after whatever the first
    one's poll stored (pushes of one poll are stored after the frames are read)."""
    for _ in range(2):
        p.send(frame(REQUEST, [hostile_id, 1, 1, 1 << 20]))
        deadline, done = time.monotonic() + 10, False
        while not done and time.monotonic() < deadline:
            m = p.recv(0.5)
            if m is None:
                cluster.check_alive()
                continue
            done = isinstance(m, list) and m[1] == UPDATES and m[2][0] == hostile_id
        H.check(done, "a did not answer a Request within 10 s")


def update(hlc, origin, seq, arg, method="set"):
    return [hlc, origin, H.encode_body(seq, method, arg)]


MARKER = "genuine"          # the value of a's first update; the hostile node's relay changes one byte of it


def check_genuine(cluster_id, origin, ups, heads):
    """What the hostile node pulled of an honest origin is genuine (PROTOCOL.md §8): the first
    range's head carries the key, the origin id is derived from it, every head's signature
    verifies, and the updates chain from c_0 to each head's chain. Returns (key, chain values)."""
    from nacl.signing import VerifyKey
    H.check(heads and len(heads[0]) == 6, "the range from seq 1 of %016x came without the key in its head: %r"
            % (origin, heads[:1]))
    key = heads[0][5]
    H.check(H.origin_id(key) == origin, "%016x's key derives id %016x" % (origin, H.origin_id(key)))
    chains = H.chain_over(cluster_id, key, ups)
    for h in heads:
        VerifyKey(key).verify(H.head_message(h[0], h[1], h[2], h[3]), h[4])
        H.check(h[0] == origin and 1 <= h[1] <= len(ups) and chains[h[1] - 1] == h[2],
                "a head of %016x does not match the updates it came with: seq %d" % (origin, h[1]))
    H.check(heads[-1][1] == len(ups), "the last range does not end at its head")
    return key, chains


def refused_since(node, before):
    return node.status()["refusals"]["updates_refused"] - before


def signed_origins(cluster, a, b, hostile, forks_before, writers):
    """PROTOCOL.md §8 against a trusted peer that speaks the protocol by hand (feature bit 1):
    (a) its own genuine signed runs are taken by every honest node, whether from seq 1 with
    the key or continuing a known origin; (b) a relay of a's genuine run with one byte of one
    body (or one hlc) changed, under a's genuine head, is refused by every node, also by c,
    which holds nothing of a yet; (c) runs in b's name (chained right, so that only the
    signature is wrong) under a head carrying the hostile key, carrying no key, or carrying
    b's key, are refused by a and by c; (d) runs in the receiver's own origin, new seqs and a
    rewrite of its seq 1, are refused: it keeps its origin and keeps writing.
    Node c peers with b through a blocked proxy until the end. `forks_before`: node name ->
    the forks it reported before (a's of F); no node may report another. `writers`: a's and
    b's Writers, which must go on. Returns c."""
    cid = cluster.cluster_id
    proxy = cluster.add_proxy(b.port, "b (for c)")
    proxy.block()
    c = cluster.add_node("c", peers=[proxy.endpoint])
    c.start()
    A, B = int(a.node_id, 16), int(b.node_id, 16)
    hex_h = "%016x" % hostile.origin
    # A Hello that names no endpoint: no node dials the hostile node back in this part.
    hello = [cid, hostile.origin, "", MAX_UPDATE, MAX_FRAME, FEATURE_SIGNED]
    links = {}
    try:
        for n in (a, b, c):
            links[n.name] = Raw(n.listen)
            got = links[n.name].hello(hello, "the hostile node's Hello to %s" % n.name)
            H.check(len(got) >= 6 and got[5] & FEATURE_SIGNED, "%s's Hello lacks feature bit 1" % n.name)
        la, lb, lc = links["a"], links["b"], links["c"]
        refused0 = {n.name: n.status()["refusals"]["updates_refused"] for n in (a, b, c)}
        H.step("signed origins: the hostile node (a trusted peer, feature bit 1) says Hello to a, b and c; c "
               "peers only with b, through a proxy that is blocked for now")

        # What an honest node serves it: a's and b's logs, each range ending at a head.
        ups_a, heads_a = la.pull(A, 1, a.vector()[a.node_id])
        key_a, chains_a = check_genuine(cid, A, ups_a, heads_a)
        ups_b, heads_b = la.pull(B, 1, a.vector()[b.node_id])
        key_b, chains_b = check_genuine(cid, B, ups_b, heads_b)
        H.check(MARKER.encode() in ups_a[0][2], "a's seq 1 is not the marker call")
        H.step("  pulled from a: %d updates of a in %d ranges, %d of b in %d; each range ends at its head, the "
               "first carries the key, ids derive from the keys, signatures verify, updates chain to the heads"
               % (len(ups_a), len(heads_a), len(ups_b), len(heads_b)))

        # (a) the hostile node's own genuine updates.
        start = hostile.seq
        run = [hostile.write("set", {"path": "hostile.genuine.%d" % (start + i + 1), "value": start + i + 1})
               for i in range(5)]
        la.send(frame(PUSH, [run, [hostile.head()]]))
        H.wait_until(lambda: a.vector().get(hex_h) == hostile.seq and b.vector().get(hex_h) == hostile.seq,
                     "a to store H#%d..%d and relay them to b" % (start + 1, hostile.seq), timeout=10)
        run = [hostile.write("set", {"path": "hostile.genuine.%d" % (hostile.seq + 1), "value": hostile.seq + 1})
               for _ in range(2)]
        lb.send(frame(PUSH, [run, [hostile.head()]]))
        H.wait_until(lambda: b.vector().get(hex_h) == hostile.seq and a.vector().get(hex_h) == hostile.seq,
                     "b to store H#%d..%d and relay them to a" % (hostile.seq - 1, hostile.seq), timeout=10)
        lc.send(frame(PUSH, [hostile.updates, [hostile.head(with_key=True)]]))
        H.wait_until(lambda: c.vector().get(hex_h) == hostile.seq, "c to store H#1..%d" % hostile.seq, timeout=10)
        H.step("  (a) the hostile node's genuine signed runs: H#%d..%d to a (relayed to b), H#%d..%d to b (relayed "
               "to a), H#1..%d to c in one run whose head carries the key -> every node holds H up to %d"
               % (start + 1, hostile.seq - 2, hostile.seq - 1, hostile.seq, hostile.seq, hostile.seq))

        # (b) a's genuine first range relayed with one byte of one body changed, under a's genuine head.
        first = heads_a[0]
        run_a = [list(u) for u in ups_a[:first[1]]]
        body = bytearray(run_a[0][2])
        H.check(body.endswith(MARKER.encode()), "the marker's body does not end with its value")
        body[-1] ^= 0x03                                  # "genuine" -> "genuinf"
        run_a[0][2] = bytes(body)
        moved = [list(u) for u in ups_a[:first[1]]]
        moved[-1][0] += 1                                 # one hlc moved by one (the chain binds it too)
        for link in (lc, la, lb):
            link.send(frame(PUSH, [run_a, [first]]))
            barrier(link, hostile.origin, cluster)
        lc.send(frame(PUSH, [moved, [first]]))
        barrier(lc, hostile.origin, cluster)
        H.check(a.node_id not in c.vector(), "c stored a relayed range of a with an altered byte: %s"
                % c.vector().get(a.node_id))
        H.step("  (b) a's first range (seq 1..%d) relayed under a's genuine head, with one byte of its first body "
               "changed (\"%s\" -> \"%s\") -> refused by c (which holds nothing of a), a and b; with one hlc moved "
               "by 1 -> refused by c" % (first[1], MARKER, body[-len(MARKER):].decode()))

        # (c) runs in b's name, chained right from b's genuine log, not signed by b's key.
        def forged_run(base_ups, base_chains, origin, key, path, count=3):
            seq0 = len(base_ups)
            now = H.make_hlc(int(time.time() * 1000))
            ups = [[now + i, origin,
                    H.encode_body(seq0 + i + 1, "set", {"path": "%s.%d" % (path, i), "value": "forged"})]
                   for i in range(count)]
            chains = H.chain_over(cid, key, ups, prev=base_chains[-1] if base_chains else None)
            return ups, seq0 + count, chains[-1]

        def carried(key):
            """The keys a forged head may carry: the hostile key (whose id is not the origin), none
            (the receiver's recorded key must then verify it), and the origin's own key."""
            return (hostile.key, None, key)

        for k in carried(key_b):
            ups, seq, chain = forged_run([], [], B, key_b, "b.forged")
            lc.send(frame(PUSH, [ups, [H.make_head(hostile.signing_key, B, seq, chain, key=k)]]))
            ups, seq, chain = forged_run(ups_b, chains_b, B, key_b, "b.forged")
            la.send(frame(PUSH, [ups, [H.make_head(hostile.signing_key, B, seq, chain, key=k)]]))
        barrier(lc, hostile.origin, cluster)
        barrier(la, hostile.origin, cluster)
        H.check(b.node_id not in c.vector(), "c stored updates in b's name that b never signed: %s"
                % c.vector().get(b.node_id))
        H.step("  (c) runs in b's name (b's id, chained from c_0 or from b's genuine seq %d), each under a head "
               "signed with the hostile key and carrying that key, no key, or b's key -> refused by c (from seq 1) "
               "and by a (continuing b's log)" % len(ups_b))

        # (d) runs in the receiver's own origin: new seqs chained on its genuine log, and a rewrite of its seq 1.
        acked = [w.acked for w in writers]
        for node, link, origin, key, ups0, chains0 in ((a, la, A, key_a, ups_a, chains_a),
                                                       (b, lb, B, key_b, ups_b, chains_b)):
            for k in carried(key):
                ups, seq, chain = forged_run(ups0, chains0, origin, key, "%s.forged" % node.name)
                link.send(frame(PUSH, [ups, [H.make_head(hostile.signing_key, origin, seq, chain, key=k)]]))
                ups, seq, chain = forged_run([], [], origin, key, "%s.forged" % node.name, count=1)
                link.send(frame(PUSH, [ups, [H.make_head(hostile.signing_key, origin, seq, chain, key=k)]]))
            barrier(link, hostile.origin, cluster)
        for n in (a, b):
            st = n.status()
            H.check(st["node_id"] == n.node_id and not st["former_origins"],
                    "%s left its origin after forged runs in its name: node id %s, former origins %s"
                    % (n.name, st["node_id"], st["former_origins"]))
        H.wait_until(lambda: all(w.acked >= n + 10 or w.errors for w, n in zip(writers, acked)),
                     "10 more calls on a and on b after the runs in their names", timeout=20)
        H.check(not any(w.errors for w in writers), "calls failed: %s" % [w.errors[:2] for w in writers])
        for n, w, extra in ((a, writers[0], 1), (b, writers[1], 0)):   # a's extra update: the marker
            done = w.acked + extra
            st = n.status()
            H.check(st["node_id"] == n.node_id and st["vector"].get(n.node_id, 0) >= done,
                    "%s's calls did not go on in its own origin: node id %s holds %s, %d calls acknowledged"
                    % (n.name, st["node_id"], st["vector"].get(n.node_id), done))
        H.step("  (d) runs in a's name to a and in b's name to b (new seqs chained on their genuine logs, and "
               "their seq 1 rewritten), heads signed with the hostile key -> refused; a and b keep their node ids, "
               "no former origins, and go on writing under them (10 more calls each)")

        for n in (a, b, c):
            st = n.status()
            H.check(set(st["forks"]) <= set(forks_before.get(n.name, ())),
                    "%s reports a fork after forged and altered runs: %s" % (n.name, st["forks"]))
        # Counted, maybe a moment after the answers to the barriers.
        counts = H.wait_until(lambda: (lambda got: all(got.values()) and got)(
            {n.name: refused_since(n, refused0[n.name]) for n in (a, b, c)}),
            "updates_refused to count the refused runs on a, b and c", timeout=5)
        H.step("  status: no node took any of it for a fork; updates_refused rose by %s" % counts)
    finally:
        for link in links.values():
            link.close()
    proxy.unblock()
    H.step("c's proxy to b unblocked: c syncs the genuine log")
    return c


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test(cluster):
    a = cluster.add_node("a")
    b = cluster.add_node("b", peers=[a.listen])
    # b also names a peer of another cluster: it must get Error 3 and wait 60 s before its next Hello.
    other = OtherCluster()
    other.start()
    b.peers.append(other.endpoint)
    a.start()
    b.start()
    # a's first update, which the hostile node relays later with one byte altered.
    a.call("set", {"path": "marker.a", "value": MARKER})
    writers = [H.Writer(n, lambda i, n=n: ("inc" if i % 2 else "set",
                                           {"path": "%s.count" % n.name, "by": 1} if i % 2 else
                                           {"path": "%s.k%d" % (n.name, i % 50), "value": i}), pause=0.01)
               for n in (a, b)]
    for w in writers:
        w.start()
    H.step("a and b running and writing (a call every ~10 ms each); attacking a on %s" % a.listen)
    lag = LagMonitor(a, b)
    lag.start()
    a_pid = a.proc.pid
    rss0 = rss_kb(a_pid)
    t_attack = time.monotonic()
    # The hostile node's own key: its origin H (its node id too) gets only genuine updates. It also
    # holds a second key, of origin F, which it forks, and a third, of origin O, whose updates lie
    # hours ahead: every update it sends is signed (PROTOCOL.md §8), so that what is refused is
    # refused for what the test means, not for a missing proof.
    hostile = H.SignedOrigin(cluster.cluster_id)
    fw = H.SignedOrigin(cluster.cluster_id)
    ow = H.SignedOrigin(cluster.cluster_id)
    hostile_id, f_origin, other_origin = hostile.origin, fw.origin, ow.origin
    back_port = H.free_port()
    back = Listener(cluster.cluster_id, hostile_id, back_port)
    back.claim = f_origin
    back.start()
    hello = [cluster.cluster_id, hostile_id, "tcp://127.0.0.1:%d" % back_port, MAX_UPDATE, MAX_FRAME, FEATURE_SIGNED]
    raws = []
    try:
        # --- before any Hello
        r = Raw(a.listen)
        raws.append(r)
        H.step("before Hello:")
        r.send(frame(VECTOR, [0, 1, False, [[hostile_id, 5]]]))
        r.expect_error(4, "a Vector before Hello")
        r.send(frame(REQUEST, [int(a.node_id, 16), 1, 10, 1000]))
        r.expect_error(4, "a Request before Hello")
        r.send(frame(PUSH, [[update(H.make_hlc(int(time.time() * 1000)), hostile_id, 1, {"path": "x", "value": 1})]]))
        r.expect_error(4, "a Push before Hello")
        H.step("garbage and malformed frames:")
        for i, junk in enumerate([b"", b"\x00", b"\xc1", b"garbage, not MessagePack",
                                  bytes(random.getrandbits(8) for _ in range(300)), b"\xa3abc",
                                  b"\x93\x01\x01", b"\xdd\xff\xff\xff\xff", b"\x93\x01\x06\x91\xdd\x7f\xff\xff\xff"]):
            r.send(junk)
            r.tolerate((1, 4), "junk frame %d (%d bytes)" % (i, len(junk)))
        for what, data in [("Hello with a string body", frame(HELLO, "hello")),
                           ("Hello with 2 fields", frame(HELLO, [1, 2])),
                           ("Vector with 1 field", frame(VECTOR, [0])),
                           ("Request with a string origin", frame(REQUEST, ["x", 1, 2, 3])),
                           ("Push with a string body", frame(PUSH, "not a list")),
                           ("Push of an update with a negative origin", frame(PUSH, [[[1, -5, b"x"]]])),
                           ("unknown type 99", frame(99, [])),
                           ("Error with 1 field", frame(ERROR, [1])),
                           ("a 4-element frame", msgpack.packb([1, 1, [], 5]))]:
            r.send(data)
            r.tolerate((1, 4), what)
        r.send(frame(HELLO, hello, version=2))
        r.expect_error(2, "a Hello of protocol version 2")
        r.s.send_multipart([frame(VECTOR, [0, 1, False, []]), b"second part"])
        r.tolerate((1, 4), "a two-part message")
        r.send(frame(HELLO, ["another-cluster", hostile_id, "tcp://127.0.0.1:%d" % back_port, MAX_UPDATE, MAX_FRAME]))
        r.expect_error(3, "a Hello of another cluster")
        r.send(frame(VECTOR, [0, 1, False, []]))
        r.expect_error(4, "a Vector after the refused Hello")

        # --- a frame above max_frame: ZMQ_MAXMSGSIZE cuts the connection
        big = Raw(a.listen, monitor=True)
        raws.append(big)
        big.send(frame(VECTOR, [0, 1, False, []]))
        big.expect_error(4, "a Vector on a second connection")
        big.send(b"\x00" * (MAX_FRAME + 1024 * 1024))
        H.step("sent a 5 MiB frame (max_frame is 4 MiB, ZMQ_MAXMSGSIZE 4,198,400)")
        deadline, disconnected = time.monotonic() + 5, False
        while time.monotonic() < deadline and not disconnected:
            if big.monitor.poll(200):
                ev = zmq.utils.monitor.recv_monitor_message(big.monitor)
                disconnected = ev["event"] == zmq.EVENT_DISCONNECTED
        H.check(disconnected, "the node did not cut the connection that sent a 5 MiB frame")
        H.step("  the node cut that connection")
        big.send(frame(VECTOR, [0, 1, False, []]))
        big.expect_error(4, "a Vector after the reconnect", timeout=8)

        cluster.check_alive()
        # --- a proper Hello (feature bit 1: signed), then signed updates the node must refuse
        p = Raw(a.listen)
        raws.append(p)
        got = p.hello(hello)
        H.check(got[0] == cluster.cluster_id and "%016x" % got[1] == a.node_id,
                "the node's Hello names cluster %s node %016x" % (got[0], got[1]))
        H.check(len(got) >= 6 and got[5] & FEATURE_SIGNED, "the node's Hello lacks feature bit 1 (signed): %r" % (got,))
        H.step("proper Hello of hostile node %016x with feature bit 1 -> Hello of node %s, bit 1 set"
               % (hostile_id, a.node_id))
        H.wait_until(lambda: any(h[1] == int(a.node_id, 16) for h in back.hellos),
                     "a to connect back to the endpoint in the hostile Hello", timeout=5)
        H.step("  a connected back to the advertised endpoint and said Hello there")
        hex_h, hex_f, hex_o = "%016x" % hostile_id, "%016x" % f_origin, "%016x" % other_origin
        now_ms = int(time.time() * 1000)
        t1 = H.make_hlc(now_ms - 5000)
        p.send(frame(PUSH, [[hostile.write("set", {"path": "hostile.genuine.1", "value": 1}, hlc=t1)],
                            [hostile.head(1, with_key=True)]]))
        H.wait_until(lambda: a.vector().get(hex_h) == 1, "a to store H#1", timeout=5)
        H.wait_until(lambda: b.vector().get(hex_h) == 1, "b to get H#1 from a", timeout=10)
        H.step("Push H#1, signed with the hostile node's own key (its head carries the key) -> stored by a, "
               "relayed to b")
        p.send(frame(PUSH, [[fw.write("set", {"path": "hostile.f", "value": 1}, hlc=t1)], [fw.head(1, with_key=True)]]))
        H.wait_until(lambda: a.vector().get(hex_f) == 1, "a to store F#1", timeout=5)
        H.step("Push F#1 (the hostile node's second origin, signed) -> stored by a")
        back.held = 1
        asked = len(back.requests)
        fw.write("set", {"path": "hostile.skipped", "value": 2}, hlc=H.make_hlc(now_ms - 4500))
        p.send(frame(PUSH, [[fw.write("set", {"path": "hostile.gap", "value": 3}, hlc=H.make_hlc(now_ms - 4000))],
                            [fw.head(3)]]))
        H.wait_until(lambda: any(r[0] == f_origin and r[1] == 2 for r in back.requests[asked:]),
                     "a to pull F from seq 2 from the sender of the gap", timeout=3,
                     on_timeout=lambda: "requests seen: %s" % back.requests[asked:])
        H.step("Push F#3 with its signed head (skips seq 2) -> not stored; a at once asks the sender for F "
               "from seq 2: %s" % [r for r in back.requests[asked:] if r[0] == f_origin][:1])
        time.sleep(1.0)  # part of the scenario: the listener answers Requests for 1 s
        back.answer_requests = False   # from now on Requests time out (5 s) instead of getting empty answers
        t_unanswered = time.monotonic()
        answered_phase = len(back.requests) - asked
        H.step("  (the listener answered every Request with an empty Updates for 1 s: a sent %d Requests in that "
               "time; from now on it leaves them unanswered)" % answered_phase)
        # PROTOCOL.md §2: an empty Updates means the peer holds nothing from from_seq; the receiver takes
        # the peer's seq to be its own until the peer's next Vector ("no re-request loop"). The listener's
        # Vectors claim only F#1, which a holds: one Request for the gap, and at most a few more.
        H.check(1 <= answered_phase <= 3, "a sent %d Requests in 1 s to a peer that answered each with an empty "
                "Updates (a re-request loop; PROTOCOL.md §2 allows none)" % answered_phase)
        n_unanswered = len(back.requests)
        back2 = fw.branch(1)
        p.send(frame(PUSH, [[back2.write("set", {"path": "hostile.back", "value": 2}, hlc=t1 - (1 << 16))],
                            [back2.head(2)]]))
        H.step("Push F#2 with an hlc below F#1's (signed: it chains and its head verifies)")
        p.send(frame(PUSH, [[ow.write("set", {"path": "hostile.future", "value": 1},
                                      hlc=H.make_hlc(now_ms + 3 * 3600 * 1000))], [ow.head(1, with_key=True)]]))
        H.step("Push %s#1 stamped 3 h ahead (--max-clock-skew is 1 h), signed" % hex_o)
        barrier(p, hostile_id, cluster)
        v = a.vector()
        H.check(v.get(hex_f) == 1, "a holds %s of F after the gap / hlc-order pushes, expected 1" % v.get(hex_f))
        H.check(hex_o not in v, "a stored an update 3 h in the future: %s" % v.get(hex_o))
        H.check(not a.status()["forks"], "a reports a fork already: %s" % a.status()["forks"])
        H.step("  a still holds exactly F#1, nothing of %s, no fork" % hex_o)

        forked = fw.branch(0)
        p.send(frame(PUSH, [[forked.write("set", {"path": "hostile.f", "value": "forked"}, hlc=t1)],
                            [forked.head(1, with_key=True)]]))
        H.wait_until(lambda: a.status()["fork_evidence"].get(hex_f) == 1, "a to report the fork of F", timeout=5)
        H.step("Push F#1 with other bytes under a second head signed by F's key (a fork) -> a keeps fork "
               "evidence of F from seq 1: %s" % a.status()["fork_evidence"])
        p.send(frame(PUSH, [[fw.updates[1]], [fw.head(2)]]))
        barrier(p, hostile_id, cluster)
        H.check(a.vector().get(hex_f) == 2, "a did not store F#2 on its branch (holds %s)" % a.vector().get(hex_f))
        H.step("Push F#2 (signed, on the branch a holds) -> stored, and left out of replay with all of F")

        H.step("flood: 600 signed Pushes (F's runs, stored and left out; 3 h ahead of the clock, refused)")
        t_floods = time.monotonic()
        for i in range(300):
            while fw.seq < i + 2:
                fw.write("set", {"path": "q", "value": i})
            p.send(frame(PUSH, [[fw.updates[i + 1]], [fw.head(i + 2)]]))
            ahead = ow.branch(0)
            u = ahead.write("set", {"path": "f", "value": i}, hlc=H.make_hlc(now_ms + 7200 * 1000 + i))
            p.send(frame(PUSH, [[u], [ahead.head(1, with_key=True)]]))
        H.step("flood: 10,000 Vector messages: 8,000 small ones (valid, pages out of range, zero pages, "
               "runs that never end), then one run of 2,000 pages of 1,024 new origins each that never ends")
        t0 = time.monotonic()
        answers = 0
        for i in range(10000):
            kind = i % 4 if i < 8000 else 4
            if kind == 0:
                body = [0, 1, False, [[hostile_id, 10 ** 6], [other_origin, 7]]]
            elif kind == 1:
                body = [7, 3, False, [[hostile_id, 1]]]                          # page beyond pages
            elif kind == 2:
                body = [1 + i, 2 ** 32 - 1, False, [[random.getrandbits(64), 1]]]  # a run that never ends
            elif kind == 3:
                body = [0, 0, i % 2 == 0, []]                                     # zero pages
            else:
                base = random.getrandbits(63)
                body = [i - 7999, 2 ** 31, False, [[base + j, j + 1] for j in range(1024)]]
            p.send(frame(VECTOR, body))
            if i % 500 == 499:
                answers += p.drain()
        sent_s = time.monotonic() - t0
        # The flood's malformed Vectors cut this connection off (PROTOCOL.md: more than 20 bad frames in
        # 10 s): a Request on it is not answered for a while.
        p.send(frame(REQUEST, [hostile_id, 1, 1, 1 << 20]))
        deadline, answered = time.monotonic() + 3, False
        while not answered and time.monotonic() < deadline:
            m = p.recv(0.5)
            answered = isinstance(m, list) and m[1] == UPDATES and m[2][0] == hostile_id
        H.check(not answered, "a answered a connection that had sent thousands of bad frames")
        refusals = a.status()["refusals"]
        H.check(refusals["sources_blocked"] >= 1 and refusals["frames_blocked"] >= 1,
                "status does not count the cut-off source: %s" % refusals)
        H.step("  sent in %.2f s; %d answers read back; the flooding connection is cut off (%d of its frames "
               "dropped unread)" % (sent_s, answers, refusals["frames_blocked"]))
        cluster.check_alive()

        # --- the node still serves: a new connection handshakes and its Request is answered; its
        # answer (Updates of H) says the node has worked through everything before it.
        q = Raw(a.listen)
        raws.append(q)
        q.send(frame(HELLO, hello))
        deadline, got = time.monotonic() + 5, None
        while time.monotonic() < deadline and got is None:
            m = q.recv(0.5)
            if isinstance(m, list) and m[1] == HELLO:
                got = m
        H.check(got is not None, "a does not answer a new Hello after the attack")
        q.send(frame(REQUEST, [hostile_id, 1, 1, 1 << 20]))
        deadline, done = time.monotonic() + 60, False
        while not done and time.monotonic() < deadline:
            m = q.recv(1.0)
            if m is None:
                cluster.check_alive()
                continue
            done = isinstance(m, list) and m[1] == UPDATES and m[2][0] == hostile_id
        H.check(done, "a did not answer a new connection's Request within 60 s of the floods")
        H.step("a new connection gets a Hello back, and its Request is answered %.2f s after the first refused Push"
               % (time.monotonic() - t_floods))

        # --- claims of origins a lacks, repeated while the listener answers no Request: a must not ask
        # again for an origin within 5 s of an unanswered Request, and must ask again after that.
        H.step("the hostile peer claims H up to 10^6 and %s up to 7 every 0.25 s for 6.5 s; its listener "
               "answers no Request" % hex_o)
        t_claims = time.monotonic()
        while time.monotonic() - t_claims < 6.5:
            q.send(frame(VECTOR, [0, 1, False, [[hostile_id, 10 ** 6], [other_origin, 7]]]))
            time.sleep(0.25)  # part of the scenario: a claim repeated at a steady pace
            q.drain()
    finally:
        t_end = time.monotonic()
        for r in raws:
            r.close()
        back.stop()
        other.stop()
    c = signed_origins(cluster, a, b, hostile, {"a": [hex_f]}, writers)
    attack_s = time.monotonic() - t_attack
    lag.stop()
    H.step("during the attack, a lagged behind b's writes by at most %d updates, b behind a's by at most %d "
           "(%d samples)" % (lag.max_a_behind, lag.max_b_behind, lag.samples))
    # The monitor must have watched the whole attack: one sample per 100 ms, or at least a third of them on a
    # loaded machine (each sample is two status calls), and none may have failed.
    H.check(lag.error is None, "a status call of the lag monitor failed during the attack: %s" % lag.error)
    H.check(lag.samples >= max(5, int(attack_s / 0.1 / 3)),
            "the lag monitor took %d samples in a %.1f s attack" % (lag.samples, attack_s))
    # Pushes go out within a few ms of each commit (PROTOCOL.md §2), so neither node may fall behind the
    # other's writes by more than what that node writes in LAG_S seconds, however a is attacked.
    rate_a, rate_b = writers[0].acked / attack_s, writers[1].acked / attack_s
    bound_a, bound_b = max(LAG_MIN, int(LAG_S * rate_b)), max(LAG_MIN, int(LAG_S * rate_a))
    H.check(lag.max_a_behind <= bound_a and lag.max_b_behind <= bound_b,
            "during the attack a fell %d updates behind b's writes (at most %d allowed: %.0f s of b's %.0f calls/s) "
            "and b %d behind a's (at most %d)" % (lag.max_a_behind, bound_a, LAG_S, rate_b, lag.max_b_behind, bound_b))
    H.step("  within the bounds: %d and %d (%.0f s of the other's writes)" % (bound_a, bound_b, LAG_S))
    unanswered_s = t_end - t_unanswered
    H.step("a sent %d Requests to the hostile peer's listener, %d of them in the %.1f s it answered none"
           % (len(back.requests), len(back.requests) - n_unanswered, unanswered_s))
    # PROTOCOL.md §2: at most one Request per origin outstanding; one not answered within 5 s is dropped and
    # may go again. So per origin, Requests the listener left unanswered are at least 5 s apart.
    last_asked = {}
    for (origin, _, _, _), t in zip(back.requests[n_unanswered:], back.request_times[n_unanswered:]):
        if origin in last_asked:
            H.check(t - last_asked[origin] >= 4.5, "a asked again for origin %016x %.2f s after an unanswered "
                    "Request (PROTOCOL.md §2: only after 5 s)" % (origin, t - last_asked[origin]))
        last_asked[origin] = t
    asked_again = len(back.requests) - n_unanswered - len(last_asked)
    H.check(asked_again >= 1, "a never asked again for an origin whose Request went unanswered for 5 s "
            "while the peer kept claiming it (%d Requests for %d origins in %.1f s)"
            % (len(back.requests) - n_unanswered, len(last_asked), unanswered_s))
    H.check(len(back.requests) - n_unanswered <= len(last_asked) * (int(unanswered_s / 5) + 1),
            "%d unanswered Requests for %d origins in %.1f s" % (len(back.requests) - n_unanswered, len(last_asked),
                                                               unanswered_s))
    rss1 = rss_kb(a_pid)
    H.step("attack took %.1f s; a's resident memory %d MB -> %d MB" % (attack_s, rss0 // 1024, rss1 // 1024))
    acked_now = [w.acked for w in writers]
    H.wait_until(lambda: all(w.acked >= n + 20 or w.errors for w, n in zip(writers, acked_now)),
                 "20 more calls on each node after the attack", timeout=30)
    for w in writers:
        w.stop()
        H.check(not w.errors, "calls on %s failed during the attack: %s" % (w.node.name, w.errors[:3]))
    H.step("writers stopped: a made %d calls, b %d" % (writers[0].acked, writers[1].acked))
    cluster.check_alive()
    # a's first update is the marker call, made before the writers started.
    # F is forked from seq 1: left out of every state, whichever part of it a
    # node holds (a node that learns of the fork first stops taking F).
    expected = {a.node_id: writers[0].acked + 1, b.node_id: writers[1].acked, hex_h: hostile.seq,
                hex_f: a.vector().get(hex_f)}
    cluster.wait_converged([a, b, c], expected=expected, timeout=30)
    hashes = {n.name: n.hash() for n in (a, b, c)}
    H.check(len(set(hashes.values())) == 1, "state hashes differ: %s" % hashes)
    sts = {n.name: n.status() for n in (a, b, c)}
    for name in ("a", "b", "c"):
        H.check(sts[name]["fork_evidence"] == {hex_f: 1}, "%s's fork evidence: %s, expected F from seq 1 "
                "(evidence spreads)" % (name, sts[name]["fork_evidence"]))
        H.check(not sts[name]["forks"], "%s reports a quarantine: %s" % (name, sts[name]["forks"]))
    for n in (a, b, c):
        s = sts[n.name]
        H.check(s["node_id"] == n.node_id, "%s's node id changed: %s" % (n.name, s["node_id"]))
        H.check(s["conflicts"] == 0 and not s["former_origins"] and s["unknown_method_updates"] == 0,
                "%s: conflicts %s, former origins %s, unknown %s" % (n.name, s["conflicts"], s["former_origins"],
                s["unknown_method_updates"]))
        want = sum(v for o, v in expected.items() if o != hex_f) + s["vector"].get(hex_f, 0)
        H.check(s["updates"] == want, "%s: %d updates, expected %d" % (n.name, s["updates"], want))
        state = json.loads(n.cli("state"))
        H.check(state.get("marker", {}).get("a") == MARKER, "%s: marker.a is %r, not a's genuine %r"
                % (n.name, state.get("marker", {}).get("a"), MARKER))
        genuine = state.get("hostile", {}).get("genuine", {})
        H.check(genuine == {str(i): i for i in range(1, hostile.seq + 1)},
                "%s: the hostile node's genuine updates are not all in its state: %s" % (n.name, genuine))
        # Forged runs wrote a.forged.* and b.forged.*; refused ones hostile.future, hostile.back, q and f.
        bad = {"a.forged": state.get("a", {}).get("forged"), "b.forged": state.get("b", {}).get("forged"),
               "q": state.get("q"), "f": state.get("f")}
        bad.update({"hostile." + k: v for k, v in state.get("hostile", {}).items() if k not in ("genuine", "f")})
        bad = {k: v for k, v in bad.items() if v is not None}
        H.check(not bad, "%s holds values of refused or forged updates: %s" % (n.name, bad))
    H.step("a, b and c: same hash %s, every call, H#1..%d (the hostile node's genuine updates, in every state), "
           "F#1 only; a reports the one fork (F), nothing else changed; marker.a is %r everywhere, and no forged "
           "or altered value is in any state" % (hashes["a"], hostile.seq, MARKER))

    H.step("b said Hello %d time(s) in %.0f s to a peer that answered Error 3 (another cluster)"
           % (len(other.hellos), time.monotonic() - other.hellos[0] if other.hellos else 0))
    H.check(other.hellos, "b never said Hello to its peer of another cluster")
    H.check(len(other.hellos) <= 2, "b said Hello %d times to a peer that answered Error 3, at %s s after the "
            "first (PROTOCOL.md §2: it waits 60 s before trying again)"
            % (len(other.hellos), ["%.1f" % (t - other.hellos[0]) for t in other.hellos[:8]]))
    problems = []
    # "counted, logged at most once per 5 s": a few lines, not one per refused frame.
    noisy = [line for line in a.log_text().splitlines()
             if any(w in line for w in ("refused", "dropped", "malformed", "says"))]
    limit = 3 * (int(attack_s / 5) + 2)
    H.step("a logged %d lines about refused updates or dropped frames during a %.1f s attack (at most %d allowed)"
           % (len(noisy), attack_s, limit))
    if len(noisy) > limit:
        problems.append("a logged %d lines about bad frames and refused updates in %.1f s "
                        "(PROTOCOL.md §2: counted, logged at most once per 5 s); the first ones:\n    %s"
                        % (len(noisy), attack_s, "\n    ".join(noisy[:6])))
    # One peer's junk must not make the node hold unbounded memory (DESIGN §1: decoding untrusted
    # bytes is bounded; §4: bounded memory): the attack sends about 40 MB of Vector pages in total.
    grown_mb = (rss1 - rss0) / 1024
    H.step("a's resident memory grew by %.0f MB during the attack (at most %d MB allowed)" % (grown_mb, MAX_GROWTH_MB))
    if grown_mb > MAX_GROWTH_MB:
        problems.append("a's resident memory grew from %d MB to %d MB while one peer sent Vector pages of a run "
                        "that never ends (pages = 2^31): the pages being assembled are not bounded"
                        % (rss0 // 1024, rss1 // 1024))
    H.check(not problems, "\n  ".join(problems))
    errors = cluster.stop_all()
    H.check(not errors, "; ".join(errors))
    cluster.verify_offline()


if __name__ == "__main__":
    H.run(test)

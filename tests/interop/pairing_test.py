#!/usr/bin/python3
"""The second implementation (tests/interop/replog_peer.py) against a real node for
the parts of PROTOCOL.md §7 that let devices find and admit each other:

  1. joining with an invite, as the joiner: `replog invite --json` on a running node,
     the line parsed here (its check verified), Join with a wrong proof (refused as
     documented, the invite still open), Join with the right proof (the accept proof and
     the cluster id checked, the cluster secret equal to the node's cluster.key), the
     node trusting this device with how "invite", a repeated Join, a used line refused,
     and a sync as a trusted peer;
  2. as the inviter: a line built here and a CURVE ROUTER with its own ZAP handler that
     answers `replog join LINE` run by the CLI; the CLI's directory must hold this
     side's cluster secret, trust this device and store the endpoint as a peer;
  3. membership: Hello with feature bit 0, the node's Members frame decoded and
     compared with `replog trust list --all --json`, a new device introduced by this
     device, a removal, and entries the rules refuse, counted under `members`;
  4. discovery: beacons from the node verified with keys derived from its cluster.key
     (tag, masked port, MAC), a beacon from here that makes the node dial this device,
     and beacons with a bad MAC or an unknown device counted.

    /usr/bin/python3 tests/interop/pairing_test.py PATH_TO_REPLOG [--timeout S] [--keep]

Exits 0 when every check holds, 1 with the reason (and the node's log) when one
fails. Everything runs on loopback; every process it starts is stopped before it exits.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)

import zmq  # noqa: E402
from nacl.signing import SigningKey  # noqa: E402

import interop_test as it  # noqa: E402
import replog_peer as rp  # noqa: E402
from interop_test import TestFailure, check, step, wait_until  # noqa: E402


class Device:
    """An Ed25519 identity of this side (§6, §7 Keys)."""

    def __init__(self):
        sk = SigningKey.generate()
        self.identity = bytes(sk) + bytes(sk.verify_key)
        self.key = bytes(sk.verify_key)
        self.id = rp.device_id(self.key)
        self.curve_public = rp.curve_keys(self.identity)[0]
        self.origin = int.from_bytes(os.urandom(8), "big") | 1


class NodeX(it.Node):
    """interop_test's Node (CURVE) with extra arguments for `replog node`."""

    def __init__(self, replog, tmp, name, extra=()):
        super().__init__(replog, tmp, name, True)
        self.extra_args = list(extra)

    def json(self, *args):
        return json.loads(self.cli(*args, "--json").stdout)

    def refusals(self):
        return self.api.status()["refusals"]

    def device_key(self):
        return rp.parse_device_id(self.api.status()["device_id"])

    def cluster_secret(self):
        with open(os.path.join(self.data, "cluster.key"), "rb") as f:
            return f.read()


def trusted(node):
    """`replog trust list --json`: {device id: its map}."""
    out = node.json("trust", "list")
    return {d["id"]: d for d in (out["devices"] if isinstance(out, dict) else out)}


def monitor_auth_failed(sock, timeout_s):
    """True when the socket's CURVE handshake is refused by the server's ZAP."""
    mon = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_SUCCEEDED)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if mon.poll(100):
                from zmq.utils.monitor import recv_monitor_message
                ev = recv_monitor_message(mon)
                if ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                    return "refused (ZAP %s)" % ev["value"]
                if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    return "admitted"
        return "no handshake result"
    finally:
        sock.disable_monitor()
        mon.close(0)


def joiner_link(endpoint, device, inviter_key):
    return rp.Peer(endpoint, "", device.origin, identity_key=device.identity,
                   server_key=rp.curve_public_of_key(inviter_key))


def send_join(peer, device, proof, name=""):
    """Join every 500 ms until answered (§7 step 1); the JoinReply's body."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        peer.send(rp.JOIN, [device.key, proof, name])
        f = peer.recv(0.5)
        while f is not None:
            if f[1] == rp.JOIN_REPLY:
                check(rp.join_reply_ok(f[2]), "JoinReply does not decode as §7 says: %r" % (f[2],))
                return f[2]
            peer.other.append(f)
            f = peer.recv(0)
    raise TestFailure("no JoinReply within 10 s")


def test_joiner(node, tmp):
    step("==== joining with an invite, this side the joiner ====")
    st = node.api.status()
    cluster, node_key = st["cluster_id"], rp.parse_device_id(st["device_id"])
    node.api.call("set", {"path": "greeting", "value": "hello"})
    inv = node.json("invite")
    line = inv["line"]
    parsed = rp.parse_invite(line)                      # verifies the 4 check bytes
    check(parsed["inviter_key"] == node_key and parsed["cluster"] == cluster == inv["cluster_id"]
          and parsed["endpoints"] == inv["endpoints"] == [node.listen] and inv["device_id"] == st["device_id"],
          "the line's fields %r differ from invite --json %r" % (parsed, inv))
    check(rp.make_invite(parsed["inviter_key"], parsed["secret"], parsed["cluster"], parsed["endpoints"]) == line,
          "the line built here from its fields differs from the node's")
    for bad, why in ((line[:-1], "cut"), (line[:20] + ("a" if line[20] != "a" else "b") + line[21:], "changed"),
                     (line.upper().replace("REPLOG-INVITE-1:", "replog-invite-1:"), "upper case"),
                     (line.replace("-1:", "-2:"), "another version")):
        try:
            rp.parse_invite(bad)
            raise TestFailure("a %s line parses here" % why)
        except rp.InviteError:
            pass
        r = subprocess.run([node.replog, "join", bad, "--data", os.path.join(tmp, "never"), "--timeout", "2s"],
                           capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        check(r.returncode != 0, "replog join accepts a %s line" % why)
    step("invite line parsed here (check bytes verified, fields equal invite --json, rebuilt byte for byte); "
         "cut, changed, upper-case and version-2 lines refused here and by replog join")

    # A wrong proof: refused with the documented empty answer, and counted.
    stranger = Device()
    # Read before the link opens: its CURVE handshake, which pending_joiners
    # counts, runs in the background as soon as it connects.
    before = node.refusals()
    peer = joiner_link(parsed["endpoints"][0], stranger, parsed["inviter_key"])
    try:
        peer.send(rp.HELLO, [cluster, stranger.origin, "", rp.MAX_UPDATE, rp.MAX_FRAME, 0])
        reply = send_join(peer, stranger, os.urandom(32))
        check(reply == [False, b"", "", b""], "a wrong proof is answered %r" % (reply,))
        check(not any(f[1] == rp.HELLO for f in peer.other), "a joiner's Hello was answered")
        after = wait_until(lambda: (lambda r: r if r["join_refused"] > before["join_refused"]
                                    and r["joiner_frames_dropped"] > before["joiner_frames_dropped"] else None)(
            node.refusals()), "join_refused and joiner_frames_dropped to rise", timeout=5)
        check(after["pending_joiners"] > before["pending_joiners"], "pending_joiners did not rise: %r" % after)
    finally:
        peer.close()
    step("a Join with a wrong proof is answered [false, '', '', ''], a joiner's Hello is not answered; "
         "join_refused, joiner_frames_dropped and pending_joiners count them")

    # The right proof, from a fresh device.
    joiner = Device()
    peer = joiner_link(parsed["endpoints"][0], joiner, parsed["inviter_key"])
    try:
        proof = rp.join_proof(parsed["secret"], joiner.key, parsed["inviter_key"])
        # Sent by the stranger first: the proof binds the joiner's key, so it is refused.
        p2 = joiner_link(parsed["endpoints"][0], stranger, parsed["inviter_key"])
        try:
            r2 = send_join(p2, stranger, proof)
            check(r2 == [False, b"", "", b""], "the joiner's proof sent by another device is answered %r" % (r2,))
        finally:
            p2.close()
        reply = send_join(peer, joiner, proof, "interop joiner")
        ok, accept, got_cluster, secret = reply
        check(ok is True, "the right proof is refused: %r" % (reply,))
        check(accept == rp.accept_proof(parsed["secret"], parsed["inviter_key"], joiner.key),
              "the accept proof is not BLAKE2b-256(secret, replog-accept-v1 ‖ inviter ‖ joiner)")
        check(got_cluster == parsed["cluster"], "JoinReply names cluster %r, the line %r" % (got_cluster, parsed["cluster"]))
        check(secret == node.cluster_secret(), "the cluster secret handed over is not the node's cluster.key")
        again = send_join(peer, joiner, proof, "interop joiner")
        check(again == reply, "a repeated Join gets another answer: %r" % (again,))
    finally:
        peer.close()
    devices = trusted(node)
    d = devices.get(joiner.id)
    check(d is not None and d["how"] == "invite" and d["name"] == "interop joiner",
          "trust list --json after the join: %r" % (devices,))
    wait_until(lambda: node.refusals()["joined"] >= 1, "refusals.joined to count the join (is %r)"
               % node.refusals()["joined"], timeout=5)
    step("the right proof: accepted, accept proof and cluster id verified, the cluster secret is the node's "
         "cluster.key; a repeated Join gets the same answer; trust list says how = invite, name as asked")

    # The line is used: with no invite open the handshake itself is refused (ZAP 400) ...
    late = Device()
    sock = zmq.Context.instance().socket(zmq.DEALER)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, late.curve_public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, rp.curve_keys(late.identity)[1])
        sock.setsockopt(zmq.CURVE_SERVERKEY, rp.curve_public_of_key(parsed["inviter_key"]))
        mon_result = [None]
        import threading
        t = threading.Thread(target=lambda: mon_result.__setitem__(0, monitor_auth_failed(sock, 5)))
        t.start()
        time.sleep(0.1)
        sock.connect(parsed["endpoints"][0])
        t.join(6)
    finally:
        sock.close(0)
    check(mon_result[0] is not None and mon_result[0].startswith("refused"),
          "with no invite open a joiner's handshake is %s" % mon_result[0])
    # ... and with another invite open, the used line's proof is refused in JoinReply.
    node.json("invite", "--expires", "30s")
    peer = joiner_link(parsed["endpoints"][0], late, parsed["inviter_key"])
    try:
        reply = send_join(peer, late, rp.join_proof(parsed["secret"], late.key, parsed["inviter_key"]))
        check(reply == [False, b"", "", b""], "a used line is answered %r while another invite is open" % (reply,))
    finally:
        peer.close()
    step("a used line: refused at the CURVE handshake (ZAP 400) while no invite is open, and "
         "[false, '', '', ''] while another one is")

    # The trust is real: a sync as a trusted device.
    peer = rp.Peer(node.listen, cluster, joiner.origin, identity_key=joiner.identity,
                   server_device_id=st["device_id"])
    try:
        hello = peer.handshake()
        check(hello["cluster"] == cluster, "Hello %r" % (hello,))
        have = {}
        theirs = peer.exchange_vectors({})
        got = peer.pull(have, theirs)
        check(len(got) >= 1 and theirs == {o: len(u) for o, u in have.items()}, "pulled %d of %r" % (len(got), theirs))
    finally:
        peer.close()
    step("the joined device handshakes and pulls %d updates as a trusted peer" % len(got))
    return joiner


def test_inviter(replog, tmp, zap):
    step("==== joining with an invite, this side the inviter (replog join run by the CLI) ====")
    me = Device()
    secret, cluster_secret = os.urandom(16), os.urandom(32)
    cluster = os.urandom(8).hex() + "-A_b"
    joiner_keys = []

    def policy(mechanism, key):
        if mechanism != "CURVE":
            return 400, ""
        joiner_keys.append(key)
        return 200, "joiner:" + key.hex()
    zap.policy = policy
    lis = rp.Listener(me.identity)
    data = os.path.join(tmp, "joined-by-cli")
    proc = None
    try:
        line = rp.make_invite(me.key, secret, cluster, [lis.endpoint])
        proc = subprocess.Popen([replog, "join", line, "--data", data, "--name", "cli device", "--json",
                                 "--timeout", "20s"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=it._die_with_parent)
        answered = None
        other = []
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and proc.poll() is None:
            got = lis.recv(0.1)
            if got is None:
                continue
            rid, frame, user = got
            if frame is None or frame[1] != rp.JOIN:
                other.append(frame)
                continue
            key, proof, name = frame[2]
            # §7 step 2: the link's CURVE key must be the X25519 form of device_key.
            check(user == "joiner:" + rp.curve_public_of_key(key).hex(),
                  "the Join's device key %s is not the link's (%s)" % (key.hex(), user))
            check(proof == rp.join_proof(secret, key, me.key), "replog join sent a wrong join proof")
            check(name == "cli device", "Join names %r" % name)
            lis.send(rid, rp.JOIN_REPLY, [True, rp.accept_proof(secret, me.key, key), cluster, cluster_secret])
            answered = key
        out, err = proc.communicate(timeout=25)
        check(proc.returncode == 0, "replog join exited %s: %s" % (proc.returncode, (err + out).decode(errors="replace")))
        check(answered is not None, "replog join sent no Join")
        step("replog join sent Join from its own key with the right proof; answered; it exited 0: %s"
             % out.decode(errors="replace").strip()[:200])
        with open(os.path.join(data, "cluster.key"), "rb") as f:
            check(f.read() == cluster_secret, "cluster.key is not the secret handed over")
        with open(os.path.join(data, "trust.json")) as f:
            tj = json.load(f)
        d = [x for x in tj["devices"] if x["id"] == me.id]
        check(len(d) == 1 and d[0]["how"] == "invite", "trust.json does not trust this side with how invite: %r" % tj)
        with open(os.path.join(data, "peers.json")) as f:
            pj = json.load(f)
        check(pj == {"version": 1, "peers": [{"id": me.id, "endpoints": [lis.endpoint], "how": "invite"}]},
              "peers.json is %r" % pj)
        st = json.loads(subprocess.run([replog, "status", "--json", "--data", data], capture_output=True,
                                       timeout=30).stdout)
        check(st["cluster_id"] == cluster and rp.parse_device_id(st["device_id"]) == answered,
              "the joined directory has cluster %r, device %r" % (st.get("cluster_id"), st.get("device_id")))
        step("the CLI's directory: cluster.key is this side's secret, trust.json trusts this device "
             "(how invite), peers.json names its endpoint, cluster id %s" % cluster)

        # A wrong accept proof: the joiner must not trust or store anything.
        data2 = os.path.join(tmp, "refused-by-cli")
        proc = subprocess.Popen([replog, "join", rp.make_invite(me.key, secret, cluster, [lis.endpoint]),
                                 "--data", data2, "--timeout", "5s"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=it._die_with_parent)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            got = lis.recv(0.1)
            if got and got[1] is not None and got[1][1] == rp.JOIN:
                lis.send(got[0], rp.JOIN_REPLY, [True, os.urandom(32), cluster, cluster_secret])
        out, err = proc.communicate(timeout=15)
        check(proc.returncode != 0, "replog join took a wrong accept proof")
        left = sorted(os.listdir(data2)) if os.path.isdir(data2) else []
        stored_secret = None
        if "cluster.key" in left:
            with open(os.path.join(data2, "cluster.key"), "rb") as f:
                stored_secret = f.read()
        check(stored_secret != cluster_secret and "trust.json" not in left and "peers.json" not in left,
              "replog join stored what it was given after a wrong accept proof: %s" % left)
        step("a wrong accept proof: replog join fails (%s); it stored neither the secret handed over nor "
             "trust.json nor peers.json (the directory holds %s)" % (err.decode(errors="replace").strip()[:160], left))
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        lis.close()


def admit(keys_by_curve):
    """A ZAP policy as §7 Trust: CURVE clients whose key is one of these, user id the
    Ed25519 key in hex."""
    def policy(mechanism, key):
        if mechanism == "CURVE" and key in keys_by_curve:
            return 200, keys_by_curve[key].hex()
        return 400, ""
    return policy


class ServedLink:
    """This device's listening side: answers the node's Hello on its DEALER (the
    connect-back or a dial) with its own, and collects what arrives."""

    def __init__(self, device, cluster, features):
        self.device, self.cluster, self.features = device, cluster, features
        self.lis = rp.Listener(device.identity)
        self.frames = []            # (type, body, user) in arrival order
        self.node_hello = None

    def poll(self, timeout_s):
        got = self.lis.recv(timeout_s)
        if got is None or got[1] is None:
            return
        rid, f, user = got
        self.frames.append((f[1], f[2], user))
        if f[1] == rp.HELLO:
            self.node_hello = rp.hello_fields(f[2])
            self.lis.send(rid, rp.HELLO, [self.cluster, self.device.origin, self.lis.endpoint,
                                          rp.MAX_UPDATE, rp.MAX_FRAME, self.features])
        elif f[1] == rp.VECTOR and not f[2][2]:
            self.lis.send(rid, rp.VECTOR, [0, 1, True, []])

    def wait(self, pred, what, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            it.check_time()
            v = pred()
            if v:
                return v
            self.poll(0.05)
        raise TestFailure("timed out after %.0f s waiting for %s" % (timeout, what))

    def members(self):
        return [rp.decode_members(b) for t, b, _ in self.frames if t == rp.MEMBERS]

    def close(self):
        self.lis.close()


KNOWN_DISAGREEMENTS = []


def list_as_entries(node):
    """`replog trust list --all --json` as {key: (state, ms, author, name)}. `by` "" means
    "this node, before it had a key" (PROTOCOL.md §4); such an entry travels with the
    node's own key as author."""
    out = node.json("trust", "list", "--all")
    own = node.device_key()
    m = {}
    for kind, state, ms in (("devices", rp.MEMBER, "changed_ms"), ("removed", rp.REMOVED, "removed_ms")):
        for d in out[kind]:
            if d["by"] == "" and d.get("how") == "invite":
                note = ("trust list says by = \"\" for %s, trusted by invite while this node had a key "
                        "(PROTOCOL.md §4: \"\" only before it had one)" % d["id"])
                if note not in KNOWN_DISAGREEMENTS:
                    KNOWN_DISAGREEMENTS.append(note)
                    step("NOTE, node and document disagree: " + note)
            m[rp.parse_device_id(d["id"])] = (state, d[ms], rp.parse_device_id(d["by"]) if d["by"] else own, d["name"])
    return m


def check_members_frame(entries, node, label):
    got = {e.key: (e.state, e.ms, e.author, e.name) for e in entries}
    want = list_as_entries(node)
    check(got == want, "%s: the Members frame %r differs from trust list --all %r" % (label, entries, want))
    keys = [e.key for e in entries]
    return keys


def test_members(node, member, zap):
    step("==== membership: Members frames (feature bit 0) ====")
    st = node.api.status()
    cluster, node_key = st["cluster_id"], rp.parse_device_id(st["device_id"])
    zap.policy = admit({rp.curve_public_of_key(node_key): node_key})
    served = ServedLink(member, cluster, rp.FEATURE_MEMBERS)
    peer = rp.Peer(node.listen, cluster, member.origin, identity_key=member.identity,
                   server_device_id=st["device_id"], advertise=served.lis.endpoint, features=rp.FEATURE_MEMBERS)
    try:
        hello = peer.handshake()
        check(hello["features"] & rp.FEATURE_MEMBERS, "the node's Hello lacks feature bit 0: %r" % (hello,))
        # The node connects back to this device's endpoint and, once ready, sends its list there.
        served.wait(lambda: served.members(), "the node's Members frame on its outgoing link")
        check(served.node_hello is not None and served.node_hello["features"] & rp.FEATURE_MEMBERS,
              "the node's Hello on its outgoing link: %r" % (served.node_hello,))
        users = {u for t, _, u in served.frames}
        check(users == {node_key.hex()}, "frames arrived from %r" % users)
        first = served.members()[0]
        keys = check_members_frame(first, node, "first Members frame")
        mine = [e for e in first if e.key == member.key]
        check(len(mine) == 1 and mine[0].endpoint == served.lis.endpoint,
              "the entry about this device should carry the node's ready link's endpoint %r: %r"
              % (served.lis.endpoint, mine))
        step("Members received on the node's link back (%d entries, order %s): equal to trust list --all; "
             "the entry about this device carries endpoint %s" % (
                 len(first), "by key" if keys == sorted(keys) else "not by key", mine[0].endpoint))

        # A third device introduced by this one.
        third = Device()
        now = int(time.time() * 1000)
        before = node.api.status()["members"]
        peer.send(rp.MEMBERS, rp.members_body([rp.MemberEntry(third.key, rp.MEMBER, now, member.key, "third", "")]))
        d = wait_until(lambda: trusted(node).get(third.id), "the node to trust the introduced device", timeout=10)
        check(d["how"] == "introducer" and d["name"] == "third" and d["by"] == member.id and d["changed_ms"] == now,
              "the introduced device: %r" % d)
        after = wait_until(lambda: (lambda m: m if m["received"] == before["received"] + 1
                                    and m["accepted"] == before["accepted"] + 1 else None)(
            node.api.status()["members"]), "members received and accepted to count the frame", timeout=5)
        n = len(served.members())
        served.wait(lambda: len(served.members()) > n and any(
            e.key == third.key for e in served.members()[-1]), "the node to send its changed list at once", 5)
        check_members_frame(served.members()[-1], node, "Members frame after the merge")
        step("an entry introducing a third device, authored by this one: trusted with how introducer, by this "
             "device, changed_ms the entry's ms; received/accepted counted; the node sent its new list at once")

        # The same frame again changes nothing.
        peer.send(rp.MEMBERS, rp.members_body([rp.MemberEntry(third.key, rp.MEMBER, now, member.key, "third", "")]))
        wait_until(lambda: node.api.status()["members"]["received"] == after["received"] + 1, "the repeat taken", 5)
        check(node.api.status()["members"]["accepted"] == after["accepted"], "a repeated entry was applied again")

        # Refused entries, one reason each.
        other = Device()
        bad = [
            ("self_authored", rp.MemberEntry(other.key, rp.MEMBER, now, other.key, "self")),
            ("about_sender", rp.MemberEntry(member.key, rp.REMOVED, now + 5, node_key, "")),
            ("future", rp.MemberEntry(other.key, rp.MEMBER, now + 2 * 3600 * 1000, member.key, "future")),
            ("invalid", rp.MemberEntry(other.key, rp.MEMBER, now, member.key, "bad\x01name")),
        ]
        before = node.api.status()["members"]
        for reason, e in bad:
            peer.send(rp.MEMBERS, rp.members_body([e]))
        def counted():
            r = node.api.status()["members"]["refused"]
            return all(r.get(reason, 0) > before["refused"].get(reason, 0) for reason, _ in bad) and r
        refused = wait_until(counted, "members.refused to count %s" % [r for r, _ in bad], timeout=10)
        check(other.id not in trusted(node), "a refused entry was applied")
        check(node.api.status()["members"]["accepted"] == before["accepted"], "a refused entry was counted accepted")
        step("refused and counted under members.refused: %s" % {k: refused[k] for k, _ in bad})

        # Removal of the introduced device by a newer entry: a tombstone.
        peer.send(rp.MEMBERS, rp.members_body([rp.MemberEntry(third.key, rp.REMOVED, now + 1, member.key, "third", "")]))
        wait_until(lambda: third.id not in trusted(node), "the node to remove the third device", timeout=10)
        removed = {d["id"]: d for d in node.json("trust", "list", "--all")["removed"]}
        check(third.id in removed and removed[third.id]["removed_ms"] == now + 1 and removed[third.id]["by"] == member.id,
              "the tombstone: %r" % removed.get(third.id))
        # An older member entry does not bring it back.
        peer.send(rp.MEMBERS, rp.members_body([rp.MemberEntry(third.key, rp.MEMBER, now, member.key, "third", "")]))
        time.sleep(0.5)
        check(third.id not in trusted(node), "an older member entry revived a removed device")
        served.wait(lambda: any(e.key == third.key and e.state == rp.REMOVED for e in served.members()[-1]),
                    "the tombstone in the node's next Members frame", 5)
        step("a newer removed entry removes the device (tombstone removed_ms/by as sent); an older member "
             "entry does not revive it; the tombstone is in the node's next Members frame")
    finally:
        peer.close()
        served.close()


def test_beacons(replog, tmp, zap, schema_path):
    step("==== discovery: UDP beacons ====")
    me = Device()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    q = udp.getsockname()[1]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    p = probe.getsockname()[1]
    probe.close()
    node = NodeX(replog, tmp, "node-beacons", ["--discovery", "on", "--discovery-port", str(p),
                                               "--discovery-to", "127.0.0.1:%d" % q,
                                               "--discovery-interval-ms", "300"])
    served = None
    try:
        node.init(schema_path)
        node.cli("trust", "add", me.id, "--name", "beaconing device")
        node.start()
        st = node.api.status()
        node_key = rp.parse_device_id(st["device_id"])
        disc = st.get("discovery", {})
        check(disc.get("state") == "on" and disc.get("udp_port") == p, "status discovery: %r" % disc)
        keys = rp.beacon_keys(node.cluster_secret())
        udp.settimeout(5)
        beacons = []
        while len(beacons) < 3:
            it.check_time()
            data, src = udp.recvfrom(2048)
            beacons.append(data)
        for b in beacons:
            status, port, who = rp.parse_beacon(b, keys, [me.key, node_key])
            check(status == "ok" and who == node_key and port == node.port,
                  "a beacon from the node parses as %s, port %s (node listens on %d), %s" % (
                      status, port, node.port, "the node's key" if who == node_key else who))
            check(b[:6] == b"RPLD\x01\x00", "beacon header %r" % b[:6])
        tails = [b[6:] for b in beacons]
        for lo, hi in ((0, 16), (16, 32), (34, 50)):        # nonce, tag, MAC
            check(len({t[lo:hi] for t in tails}) == 3, "two beacons of the node share a field past the flags")
        other_keys = rp.beacon_keys(os.urandom(32))
        check(rp.parse_beacon(beacons[0], other_keys, [node_key])[0] == "bad_mac", "another cluster's keys verify")
        step("3 beacons from the node: 56 bytes, MAC and tag verified with keys derived (crypto_kdf, "
             "beaconid/beaconmc) from its cluster.key, masked port unmasked to its TCP port %d" % node.port)

        # A beacon from this device: the node dials it.
        zap.policy = admit({rp.curve_public_of_key(node_key): node_key})
        served = ServedLink(me, st["cluster_id"], rp.FEATURE_MEMBERS)
        before = node.api.status()["discovery"]
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tx.sendto(rp.make_beacon(keys, me.key, served.lis.port), ("127.0.0.1", p))
            served.wait(lambda: served.node_hello, "the node to dial the endpoint this beacon names", 10)
            check(served.node_hello["cluster"] == st["cluster_id"], "Hello %r" % served.node_hello)
            mid = wait_until(lambda: (lambda d: d if d["beacons_known"] > before["beacons_known"]
                                      and d["dials"] > before["dials"] else None)(node.api.status()["discovery"]),
                             "discovery beacons_known and dials to rise (%r before)" % before, timeout=5)

            def discovered():
                served.poll(0.05)
                ps = node.api.status()["peers"]
                return [x for x in ps if x.get("device_id") == me.id and x.get("ready") and x.get("how") == "discovered"]
            wait_until(discovered, "status to show the link as ready, how discovered", timeout=10)
            step("a beacon from here naming this device and a ROUTER port: the node dials it with CURVE "
                 "(beacons_known %d -> %d, dials %d -> %d), the link is ready with how = discovered" % (
                     before["beacons_known"], mid["beacons_known"], before["dials"], mid["dials"]))

            # A bad MAC, a stranger's key, a wrong size: counted, not dialled.
            good = rp.make_beacon(keys, me.key, served.lis.port)
            badmac = good[:40] + bytes(x ^ 0xff for x in good[40:41]) + good[41:]
            tx.sendto(badmac, ("127.0.0.1", p))
            tx.sendto(rp.make_beacon(keys, os.urandom(32), 4242), ("127.0.0.1", p))
            tx.sendto(good[:55], ("127.0.0.1", p))
            tx.sendto(rp.make_beacon(other_keys, me.key, served.lis.port), ("127.0.0.1", p))

            def counted():
                d = node.api.status()["discovery"]
                return (d["beacons_bad_mac"] >= mid["beacons_bad_mac"] + 2
                        and d["beacons_unknown_device"] > mid["beacons_unknown_device"]
                        and d["beacons_malformed"] > mid["beacons_malformed"]) and d
            after = wait_until(counted, "beacons_bad_mac, beacons_unknown_device and beacons_malformed to count", 5)
            refusals = wait_until(lambda: (lambda r: r if r["beacons_refused"] >= 3 else None)(
                node.api.status()["refusals"]), "refusals.beacons_refused to count 3", timeout=5)
            step("a bad MAC and another cluster's beacon (beacons_bad_mac %d -> %d), an unknown device "
                 "(beacons_unknown_device %d -> %d), 55 bytes (beacons_malformed %d -> %d); refusals.beacons_refused %d"
                 % (mid["beacons_bad_mac"], after["beacons_bad_mac"], mid["beacons_unknown_device"],
                    after["beacons_unknown_device"], mid["beacons_malformed"], after["beacons_malformed"],
                    refusals["beacons_refused"]))
        finally:
            tx.close()
    except BaseException:
        print("---- node log (beacons) ----\n%s" % node.log_text()[-6000:], flush=True)
        raise
    finally:
        udp.close()
        if served is not None:
            served.close()
        try:
            node.stop()
        finally:
            node.kill()


def main():
    head, _, rest = __doc__.partition("\n\n")
    ap = argparse.ArgumentParser(description=head, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=rest)
    ap.add_argument("replog", help="the replog binary")
    ap.add_argument("--timeout", type=float, default=120, help="bound on the whole run, s (default 120)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    it.DEADLINE = time.monotonic() + a.timeout
    replog = os.path.abspath(a.replog)
    tmp = tempfile.mkdtemp(prefix="replog-pairing-")
    zap = rp.ZapHandler(zmq.Context.instance(), lambda m, k: (400, ""))
    ok = False
    node = None
    try:
        # Self-checks against libsodium itself for what PyNaCl lacks (crypto_kdf).
        import ctypes
        so = ctypes.CDLL("libsodium.so.23")
        check(so.sodium_init() >= 0, "sodium_init")
        master = os.urandom(32)
        out = ctypes.create_string_buffer(32)
        so.crypto_kdf_derive_from_key(out, ctypes.c_size_t(32), ctypes.c_uint64(1), b"beaconid", master)
        check(out.raw == rp.kdf_derive(master, "beaconid"), "kdf_derive differs from libsodium's crypto_kdf")
        schema_path = os.path.join(tmp, "schema.json")
        with open(schema_path, "w") as f:
            json.dump({"records": {}}, f)
        node = NodeX(replog, tmp, "node-invite", ["--discovery", "off"])
        try:
            node.init(schema_path)
            node.start()
            joiner = test_joiner(node, tmp)
            test_members(node, joiner, zap)
        except BaseException:
            print("---- node log (invite, members) ----\n%s" % node.log_text()[-6000:], flush=True)
            raise
        finally:
            try:
                node.stop()
            finally:
                node.kill()
        test_inviter(replog, tmp, zap)
        test_beacons(replog, tmp, zap, schema_path)
        ok = True
        step("PASS")
    except TestFailure as e:
        step("FAIL: %s" % e)
    except Exception:
        traceback.print_exc()
        step("FAIL: unexpected exception")
    finally:
        zap.close()
        if a.keep:
            step("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""A second implementation against a real node: tests/interop/replog_peer.py, written
from PROTOCOL.md and docs/ alone, syncs with a running `replog node` and must agree
with it byte for byte.

First the PROTOCOL.md §8 vectors are computed here. Then, for each mode (CURVE with a
trust list, then --insecure unless --secure-only):
  1. init a data directory with a schema, start `replog node`, trust the client's
     device id (computed here from PROTOCOL.md §6), make calls of every method
     through the local API and `replog call`, and check that calls replay would
     skip are refused;
  2. connect as a peer with feature bit 1 (signed origins, §8), handshake, pull every
     update in ranges that each end at a head and are verified here (key from the
     head or remembered, chain from c_0 or the tip held), replay them here and compare
     the state hash, the data and the open conflicts with the node's;
  3. write this client's own updates (its own Ed25519 key, the origin derived from it,
     its own HLC) covering every method and every conflict kind, push them as signed
     runs, and compare again after the node applied them; then a late device (its own
     key) whose updates sort before the node's own, and resolves from both sides;
  4. receiving: a duplicate, a gap, an hlc that does not rise, a time ahead and reserved
     origins, each signed, leave no trace;
  5. signed origins: a range of the node's altered by one byte (or one hlc, or one
     signature byte, or without its key, or under another key) fails verification here;
     the node refuses a run whose body was altered after signing; the node connects
     back to this side's listener and pulls its ranges, each ending at a head held
     here (cut back to one when too long; with a certificate for a certified key), and
     its next call arrives here as a Push that verifies;
  6. negative checks: a hash off by one byte differs; malformed frames get the
     documented Error and the node keeps serving.
  7. fork evidence: an origin of this side forks at seq 2 (two runs signed by one key);
     the node keeps chain evidence and sends it as an Evidence frame (type 10) to a
     listener of this side when it keeps it and to another when that link is ready; it
     passes decode_evidence and check_evidence here (§8 "Fork evidence", whose vector is
     checked first), and both sides leave the fork out of replay.

    /usr/bin/python3 tests/interop/interop_test.py PATH_TO_REPLOG [--secure-only]
        [--insecure-only] [--timeout S] [--keep]

Exits 0 when every check holds, 1 with the reason (and the node's log) when one
fails. Every process it starts is stopped before it exits.
"""
import argparse
import ctypes
import hashlib
import json
import os
import shutil
import signal
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

import replog_peer as rp  # noqa: E402
from replog_peer import Enum, Record, Time  # noqa: E402

T0 = time.monotonic()
DEADLINE = None


class TestFailure(Exception):
    pass


def step(text):
    print("[%6.2f s] %s" % (time.monotonic() - T0, text), flush=True)


def check(cond, message):
    if not cond:
        raise TestFailure(message)


def check_time():
    if DEADLINE is not None and time.monotonic() > DEADLINE:
        raise TestFailure("the test ran past its time bound")


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the node gets SIGKILL if this driver dies without cleaning up.
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


_ports_given = set()


def free_port():
    # Never the same port twice in one run: a node that is down does not hold its port.
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def wait_until(pred, what, timeout=15.0, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        check_time()
        try:
            v = pred()
            if v:
                return v
        except (rp.ApiError, OSError, zmq.ZMQError) as e:
            last = e
        if time.monotonic() > deadline:
            raise TestFailure("timed out after %.0f s waiting for %s%s" % (
                timeout, what, "; last error: %s" % last if last else ""))
        time.sleep(interval)


SCHEMA_DOC = {
    "enums": {"Color": ["Red", "Green", "Blue"]},
    "records": {
        "Task": {
            "fields": {"title": "string", "due": "time", "color": "Color", "tags": "list<string>",
                       "n": "int", "w": "float", "blob": "bytes", "meta": "map<any>", "sub": "map<Task>"},
            "required": ["title"],
            "unique": ["title"],
        },
    },
}

# The schema change: a new member at the end, a new record type, Task gets `owner`.
SCHEMA_DOC_2 = {
    "enums": {"Color": ["Red", "Green", "Blue", "Black"], "Level": ["Low", "High"]},
    "records": {
        "Task": {
            "fields": {"title": "string", "due": "time", "color": "Color", "tags": "list<string>",
                       "n": "int", "w": "float", "blob": "bytes", "meta": "map<any>", "sub": "map<Task>",
                       "owner": "string"},
            "required": ["title"],
            "unique": ["owner", "title"],
        },
        "Note": {"fields": {"text": "string", "level": "Level", "refs": "list<map<int>>"},
                 "required": ["text"]},
        "Empty": {"fields": {}},
    },
}


class Node:
    """One `replog node` process on loopback with its data directory."""

    def __init__(self, replog, tmp, name, secure):
        self.replog, self.secure = replog, secure
        self.data = os.path.join(tmp, name)
        self.port = free_port()
        self.listen = "tcp://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(tmp, name + ".log")
        self.proc = None
        self.api = None
        self.extra_args = []          # more arguments for `replog node`

    def cli(self, *args, ok=True):
        r = subprocess.run([self.replog, *args, "--data", self.data], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=30)
        if ok and r.returncode != 0:
            raise TestFailure("replog %s failed (exit %d): %s" % (
                " ".join(args), r.returncode, (r.stderr + r.stdout).decode(errors="replace").strip()))
        return r

    def init(self, schema_path):
        self.cli("init", "--schema", schema_path)

    def start(self):
        args = [self.replog, "node", "--data", self.data, "--listen", self.listen, "--anti-entropy-ms", "200"]
        if not self.secure:
            args.append("--insecure")
        args += self.extra_args
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     preexec_fn=_die_with_parent)
        log.close()

        def serving():
            self.check_alive()
            if not os.path.exists(os.path.join(self.data, "api.endpoint")):
                return False
            api = rp.Api(self.data, timeout_ms=1000)
            try:
                api.status()
            except rp.ApiError:
                api.close()
                raise
            self.api = api
            return True
        wait_until(serving, "the node to serve its local API")
        self.api.sock.setsockopt(zmq.RCVTIMEO, 15000)
        self.api.timeout_ms = 15000

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise TestFailure("the node exited with code %s" % self.proc.returncode)

    def stop(self):
        if self.api is not None:
            self.api.close()
            self.api = None
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("the node did not stop within 10 s of SIGTERM")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def status(self):
        return json.loads(self.cli("status", "--json").stdout)

    def conflicts(self):
        out = json.loads(self.cli("conflicts", "--json").stdout)
        return out, {c["update"]: c for c in out["conflicts"]}

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def node_conflict_view(node):
    """`replog conflicts --json`: {skipped id: (kind code, [involved ids], [path])}; the
    local API's `conflicts` op must say the same."""
    raw, _ = node.conflicts()
    view = {}
    for c in raw["conflicts"]:
        check(rp.KIND_NAMES.get(c["code"]) == c["kind"], "conflict %r: code and kind disagree" % (c,))
        view[c["update"].lower()] = (c["code"], [i.lower() for i in c["involved"]], list(c["path"]))
    if getattr(node, "api", None) is not None:
        served = node.api.request("conflicts", None)
        api_view = {c["update"].lower(): (c["code"], [i.lower() for i in c["involved"]], list(c["path"]))
                    for c in served["conflicts"]}
        check(api_view == view, "the API's conflicts op %r differs from replog conflicts %r" % (api_view, view))
        check(served["forks"] == raw["forks"], "forks differ: API %r, CLI %r" % (served["forks"], raw["forks"]))
    return view


class Client:
    """This implementation's side: a peer link, its own origins and a copy of the log, kept
    as signed origins (PROTOCOL.md §8): every update it holds is covered by a head it
    verified, or signed for its own origins."""

    def __init__(self, node, cluster, secure):
        from nacl.signing import SigningKey
        self.node = node
        self.identity = None
        self.signing_key = SigningKey.generate()
        if secure:
            sk = self.signing_key
            self.identity = bytes(sk) + bytes(sk.verify_key)     # libsodium's 64-byte form
            self.device_id = rp.device_id(bytes(sk.verify_key))
        self.cluster = cluster
        self.store = rp.SignedLog(cluster)
        self.log = self.store.updates       # origin -> [Update] in seq order
        # §8 Writers: a node first writes as its device key (with --insecure this side has no
        # device key on the wire, but its origin is still that of its key).
        self.origin = self.store.add_writer(rp.OriginWriter(cluster, self.signing_key)).origin
        self.clock = rp.HybridClock()
        self.tips_checked = 0               # Vector tips found equal to this side's chains
        self.fork_seqs = {}                 # origin -> fork seq, from evidence checked here (§8)
        self.peer = None

    def connect(self, node_device_id=None):
        self.peer = rp.Peer(self.node.listen, self.cluster, self.origin, identity_key=self.identity,
                            server_device_id=node_device_id, features=rp.FEATURE_SIGNED)
        hello = self.peer.handshake()
        return hello

    def new_origin(self, certified=False):
        """Another origin this side writes, under a fresh key (vouched for by its own key
        with a certificate when `certified`)."""
        w = rp.OriginWriter.generate(self.cluster, device=self.signing_key if certified else None)
        return self.store.add_writer(w).origin

    def updates(self):
        return [u for ups in self.log.values() for u in ups]

    def vector(self):
        return {o: len(ups) for o, ups in self.log.items() if ups}

    def pull_all(self):
        theirs = self.peer.exchange_vectors(self.vector())
        got, refused = self.peer.pull_verified(self.store, theirs)
        check(not refused, "this side refused what the node served: %s" % refused[:3])
        for u in got:
            self.clock.observe(u.hlc)
        check(self.vector() == {o: s for o, s in theirs.items() if s},
              "after pulling, this client's vector %s differs from the node's %s" % (self.vector(), theirs))
        # Each tip its Vector carried is the chain this side computed at that seq (§3 Vector).
        for o, (seq, tip) in self.peer.vector_tips.items():
            rec = self.store.record(o)
            check(rec is not None and len(rec.chains) > seq and rec.chains[seq][:8] == tip,
                  "the node's Vector gives origin %s at #%d the tip %s, not this side's chain there"
                  % (rp.origin_text(o), seq, tip.hex()))
        self.tips_checked += len(self.peer.vector_tips)
        return got

    def write(self, origin, clock, method, arg=None, arg_bytes=None):
        seq = self.store.held(origin) + 1
        body = rp.encode_body(seq, method, arg, arg_bytes)
        return self.store.append_own(rp.Update(clock.tick(), origin, body))

    def push(self, updates):
        """Pushes `updates` (the newest of its own origins) as runs, each ending at a head
        signed now, the key carried on a run from seq 1 (§8 On the wire)."""
        runs = []
        for origin in dict.fromkeys(u.origin for u in updates):
            runs += self.store.runs(origin, min(u.seq for u in updates if u.origin == origin))
        self.peer.push_runs(runs)
        return runs

    def barrier(self):
        """Returns once the node has handled every frame sent on the link so far: a Request's
        answer comes after the frames before it, the second one's after what the first one's
        poll stored."""
        for _ in range(2):
            self.peer.request_range(self.origin, 1, 1)

    def replay(self):
        """§8 "Replay leaves a fork out": from the fork seq of each origin with evidence."""
        return rp.replay(self.updates(), self.fork_seqs)


def describe_state_diff(mine, node):
    lines = []
    if isinstance(mine, dict) and isinstance(node, dict):
        for k in sorted(set(mine) | set(node)):
            a, b = mine.get(k, "<absent>"), node.get(k, "<absent>")
            if a == "<absent>" or b == "<absent>" or rp.encode(a) != rp.encode(b):
                lines.append("  %s: mine %r, node %r" % (k, a, b))
    else:
        lines.append("  mine %r, node %r" % (mine, node))
    return "\n".join(lines)


def compare(node, client, label, expect_conflicts=None):
    """Replays the client's copy of the log and compares with the node: the state hash
    (§3), the data (local API `state`) and the open conflicts (`replog conflicts`)."""
    check_time()
    node.check_alive()
    state = client.replay()
    mine = state.state_hash()
    theirs = node.api.hash()
    node_data = node.api.state()
    mine_conflicts = state.conflict_view()
    node_conflicts = node_conflict_view(node)
    problems = []
    if rp.encode(state.data) != rp.encode(node_data):
        problems.append("data differs:\n" + describe_state_diff(state.data, node_data))
    if mine_conflicts != node_conflicts:
        lines = []
        for k in sorted(set(mine_conflicts) | set(node_conflicts)):
            a, b = mine_conflicts.get(k), node_conflicts.get(k)
            if a != b:
                u = next((u for u in client.updates() if u.id == k), None)
                for i in list(a[1] if a else []) + list(b[1] if b else []):
                    v = next((u for u in client.updates() if u.id == i), None)
                    lines.append("    involved %s = %s %s" % (i, v.method if v else "?", rp.decode(v.arg_bytes) if v else ""))
                lines.append("  %s (%s): mine %s, node %s" % (
                    k, "%s %s" % (u.method, rp.decode(u.arg_bytes) if u else "") if u else "?", a, b))
        problems.append("conflicts differ:\n" + "\n".join(lines))
    if mine != theirs and not problems:
        problems.append("hash differs with equal data and conflicts: schema %r retired %r" % (
            state.schema.canonical() if state.schema else {}, state.retired))
    if problems or mine != theirs:
        raise TestFailure("%s: state hash mine %s, node %s\n%s" % (label, mine, theirs, "\n".join(problems)))
    if expect_conflicts is not None:
        kinds = sorted(k for k, _, _ in mine_conflicts.values())
        check(kinds == sorted(expect_conflicts), "%s: open conflict kinds %s, expected %s" % (
            label, kinds, sorted(expect_conflicts)))
    step("%s: %d updates, %d open conflicts, state hash %s equal on both sides" % (
        label, len(client.updates()), len(mine_conflicts), mine))
    return state


def wait_node_has(node, client):
    want = {rp.origin_text(o): s for o, s in client.vector().items()}

    def has():
        v = node.api.status()["vector"]
        return all(v.get(o, 0) >= s for o, s in want.items())
    wait_until(has, "the node to store the pushed updates (vector %s)" % want)


# ---------------------------------------------------------------------------------------------

def node_calls(node):
    """Phase 1: every method through the node's local API (one through `replog call`),
    each a call that must be accepted, then calls that replay would skip, refused."""
    api = node.api
    t = Time(1764581400, 0)                         # 2025-12-01T09:30:00Z
    t_ns = Time(1764581400, 123456789)
    calls = [
        ("set", {"path": "counters.a", "value": 1}),
        ("set", {"path": ["deep", "x", "y"], "value": {"k": [1, 2.5, "s", b"\x00\x01", t, t_ns, None, True,
                                                              -7, 1 << 40, -(1 << 40)]}}),
        ("set", {"path": "misc.color", "value": Enum("Color", "Green")}),
        ("set", {"path": "lists.l", "value": [1, 2, 3]}),
        ("set", {"path": "lists.l.1", "value": 20}),
        ("set", {"path": "misc.f", "value": 2.0}),
        ("set", {"path": "misc.nan", "value": float("nan")}),
        ("set", {"path": "misc.gone", "value": "x"}),
        ("set", {"path": "misc.nul", "value": None}),
        ("add", {"path": "misc.nul", "value": 1}),
        ("set", {"path": "lists.l.01", "value": 21}),
        ("unset", {"path": "misc.gone"}),
        ("unset", {"path": "misc.never"}),
        ("inc", {"path": "counters.a", "by": 5}),
        ("inc", {"path": "counters.b"}),
        ("inc", {"path": "counters.f", "by": 1.5}),
        ("inc", {"path": "counters.f", "by": 2}),
        ("inc", {"path": "misc.f", "by": -3}),
        ("add", {"path": "sets.s", "value": "a"}),
        ("add", {"path": "sets.s", "value": "b"}),
        ("add", {"path": "sets.s", "value": "a"}),
        ("add", {"path": "sets.s", "value": 1}),
        ("remove", {"path": "sets.s", "value": "b"}),
        ("remove", {"path": "sets.s", "value": "zzz"}),
        ("create", {"type": "Task", "id": "t1", "fields": {"title": "one", "due": t, "color": Enum("Color", "Red"),
                                                            "tags": ["x", "y"], "w": 3, "blob": b"\xff",
                                                            "meta": {"any": [1, "two"]}}}),
        ("create", {"type": "Task", "id": "t2", "fields": {"title": "two", "n": 1}}),
        ("create", {"type": "Task", "id": "t3", "fields": {"title": "three", "due": None}}),
        ("update", {"type": "Task", "id": "t1", "fields": {"n": 7, "color": Enum("Color", "Blue"), "tags": None}}),
        ("update", {"type": "Task", "id": "t2", "fields": {"title": "two b", "w": 0.25}}),
        ("set", {"path": "Task.t1.n", "value": 8}),
        ("inc", {"path": "Task.t1.n", "by": 2}),
        ("inc", {"path": "Task.t1.w", "by": 1}),
        ("add", {"path": "Task.t1.tags", "value": "z"}),
        ("remove", {"path": "Task.t1.tags", "value": "z"}),
        ("unset", {"path": "Task.t2.w"}),
        ("delete", {"type": "Task", "id": "t3"}),
        ("delete", {"type": "Task", "id": "t404"}),
        ("schema", {"document": SCHEMA_DOC_2}),
        ("create", {"type": "Note", "id": "n1", "fields": {"text": "hi", "level": Enum("Level", "High"),
                                                            "refs": [{"a": 1}]}}),
        ("update", {"type": "Task", "id": "t2", "fields": {"owner": "ann", "color": Enum("Color", "Black")}}),
        ("create", {"type": "Empty", "id": "e1", "fields": {}}),
        ("retire", {"origin": "00000000000000AB", "last_seq": 3}),
        ("retire", {"origin": "7", "last_seq": 0}),
    ]
    ids = []
    for method, arg in calls:
        try:
            ids.append(api.call(method, arg))
        except rp.ApiError as e:
            raise TestFailure("local call %s %r refused: %s" % (method, arg, e))
    # One through the CLI (typed JSON).
    out = node.cli("call", "set", json.dumps({"path": "cli.when", "value": {"$time": "2026-01-02T03:04:05.5Z"}}))
    ids.append(out.stdout.decode().strip())
    step("node: %d calls accepted (set, unset, inc, add, remove, create, update, delete, schema, retire)"
         % len(ids))

    refused = [
        ("create", {"type": "Task", "id": "t1", "fields": {"title": "again"}}, "exists"),
        ("update", {"type": "Task", "id": "t404", "fields": {"title": "x"}}, "missing"),
        ("inc", {"path": "counters.a", "by": (1 << 63) - 1}, "overflow"),
        ("set", {"path": "Task.t1.title", "value": 5}, "schema"),
        ("create", {"type": "Task", "id": "t9", "fields": {"title": "one"}}, "unique"),
        ("create", {"type": "Nope", "id": "x", "fields": {}}, "unknown type"),
        ("set", {"path": "counters.a.x", "value": 1}, "failed"),
        ("schema", {"document": {"bogus": {}}}, "invalid schema"),
        ("resolve", {"update": "0" * 32}, "closed conflict"),
        ("set", {"path": "", "value": 1}, "bad argument"),
    ]
    for method, arg, why in refused:
        try:
            api.call(method, arg)
        except rp.ApiError as e:
            step("node refuses %s (%s): %s" % (method, why, e))
            continue
        raise TestFailure("local call %s %r (%s) was accepted; replay would skip it" % (method, arg, why))
    return ids


def client_updates(client, ids):
    """Phase 3: this client's own updates, every method and every conflict kind.
    Returns the update list and the kinds of conflict each is expected to open."""
    o, c = client.origin, client.clock
    w = client.write
    big = (1 << 63) - 1
    plan = [
        # method, arg, expected conflict kind or None
        ("set", {"path": "client.v", "value": {"list": [Time(0, 1), Time(-5, 0), Time((1 << 34) + 1, 0),
                                                         Time((1 << 32) - 1, 0), Time(1 << 32, 999999999)],
                                                "$key": -1.5, "": "", "ü": 1, "z": 2, "list2": list(range(20)),
                                                "big": {str(i): i for i in range(17)}}}, None),
        ("set", {"path": "counters.a.x", "value": 1}, rp.FAILED),
        ("set", {"path": "Task.t1.title", "value": 5}, rp.SCHEMA),
        ("set", {"path": "Task.t1.nope", "value": 1}, rp.SCHEMA),
        ("set", {"path": "misc.bad", "value": Enum("Color", "Purple")}, rp.SCHEMA),
        ("set", {"path": "lists.l.9", "value": 1}, rp.FAILED),
        ("unset", {"path": "client.v.z"}, None),
        ("unset", {"path": "Task.t1.title"}, rp.SCHEMA),
        ("inc", {"path": "counters.a", "by": 10}, None),
        ("inc", {"path": "counters.a", "by": big}, rp.OVERFLOW),
        ("inc", {"path": "deep.x", "by": 1}, rp.SCHEMA),
        ("inc", {"path": "counters.a", "by": 0.5}, rp.SCHEMA),
        ("inc", {"path": "counters.a", "by": "1"}, rp.BAD_ARGUMENT),
        ("add", {"path": "sets.s", "value": "c"}, None),
        ("add", {"path": "counters.a", "value": 1}, rp.SCHEMA),
        ("remove", {"path": "sets.s", "value": "a"}, None),
        ("remove", {"path": "counters.b", "value": 1}, rp.SCHEMA),
        ("create", {"type": "Task", "id": "c1", "fields": {"title": "client", "owner": "bob"}}, None),
        ("create", {"type": "Task", "id": "c1", "fields": {"title": "client 2"}}, rp.EXISTS),
        ("create", {"type": "Ghost", "id": "g", "fields": {}}, rp.SCHEMA),
        ("create", {"type": "Task", "id": "c2", "fields": {"n": 1}}, rp.SCHEMA),
        ("create", {"type": "Task", "id": "c3", "fields": {"title": "one"}}, rp.UNIQUE),
        ("create", {"type": "Task", "id": "c4", "fields": {"title": "x", "owner": "ann"}}, rp.UNIQUE),
        ("create", {"type": "Task", "id": "c5", "fields": {"title": "y", "bogus": 1}}, rp.SCHEMA),
        ("update", {"type": "Task", "id": "c1", "fields": {"n": 3, "sub": {"s": Record("Task", {"title": "inner"})}}},
         None),
        ("update", {"type": "Task", "id": "zz", "fields": {"n": 1}}, rp.MISSING),
        ("update", {"type": "Task", "id": "c1", "fields": {"title": None}}, rp.SCHEMA),
        ("update", {"type": "Task", "id": "c1", "fields": {"title": "two b"}}, rp.UNIQUE),
        ("update", {"type": "Task", "id": "c1", "fields": {"n": "three"}}, rp.SCHEMA),
        ("delete", {"type": "Note", "id": "n1"}, None),
        ("delete", {"type": "Ghost", "id": "g"}, rp.SCHEMA),
        ("schema", {"document": {"records": {"Task": {"fields": {"t": "NoSuchType"}}}}}, rp.SCHEMA),
        ("retire", {"origin": "ab", "last_seq": 5}, None),
        ("set", {"path": "Task.t404.title", "value": "x"}, rp.SCHEMA),
        ("set", {"path": "client.nul", "value": None}, None),
        ("set", {"path": "client.nul.a", "value": 1}, rp.FAILED),
        ("inc", {"path": "client.nul.a"}, rp.FAILED),
        ("unset", {"path": "client.nul.a"}, rp.FAILED),
        ("add", {"path": "client.nul.a", "value": 1}, rp.FAILED),
        ("remove", {"path": "client.nul.a", "value": 1}, None),
        ("add", {"path": "client.nul", "value": 1}, None),
        ("inc", {"path": "lists.l.5"}, rp.FAILED),
        ("unset", {"path": "lists.l.0"}, rp.FAILED),
        ("remove", {"path": "counters.a.zz", "value": 1}, None),
        ("set", {"path": "lists.l.0000000001", "value": 1}, rp.FAILED),
        ("set", {"path": "lists.l.000000001", "value": 22}, None),
        ("set", {"path": "Task.t1", "value": Record("Task", {"title": "rec set", "n": 1, "w": 2})}, None),
        ("inc", {"path": "Task.t1.n", "by": 1.5}, rp.SCHEMA),
        ("set", {"path": "Task.t2.title", "value": "rec set"}, rp.UNIQUE),
        ("create", {"type": "Task", "id": "c6", "fields": {"title": "six", "n": None, "owner": "carl"}}, None),
        ("retire", {"origin": "ab", "last_seq": 2}, None),
        ("retire", {"origin": "0", "last_seq": 2}, None),
        ("retire", {"origin": "ffffffffffffffff", "last_seq": 2}, None),
        ("set", {"path": "Task.zz", "value": {"title": "m"}}, rp.SCHEMA),
        ("set", {"path": "misc.r", "value": Record("Task", {"title": "one"})}, None),
        ("set", {"path": "misc.r2", "value": Record("Task", {"n": 1})}, rp.SCHEMA),
        ("update", {"type": "Task", "id": "c6", "fields": {}}, None),
        ("create", {"type": "Task", "id": "c6", "fields": {"title": "six again"}}, rp.EXISTS),
        ("create", {"type": "Task", "id": "c7", "fields": {"title": "seven", "n": 3.0}}, rp.SCHEMA),
        ("add", {"path": "Task.c6.tags", "value": 1}, rp.SCHEMA),
        ("add", {"path": "sets.s", "value": 1.0}, None),
        ("unset", {"path": "Task.c6"}, None),
        ("create", {"type": "Task", "id": "c8", "fields": {"title": "six"}}, None),
        ("create", {"type": "Task", "id": "c9", "fields": {"title": "nine", "owner": "carl"}}, None),
        ("create", {"type": "Task", "id": "c11", "fields": {"title": "eleven", "n": 1}}, None),
        ("update", {"type": "Task", "id": "c11", "fields": {"n": 1}}, None),
        ("create", {"type": "Task", "id": "c11", "fields": {"title": "eleven again"}}, rp.EXISTS),
        ("set", {"path": "Task.c11.n", "value": 1}, None),
        ("create", {"type": "Task", "id": "c11", "fields": {"title": "eleven again"}}, rp.EXISTS),
        ("set", {"path": "Task.c11.n", "value": 2}, None),
        ("create", {"type": "Task", "id": "c11", "fields": {"title": "eleven again"}}, rp.EXISTS),
        ("create", {"type": "Task", "id": "c12", "fields": {"title": "twelve", "n": None, "owner": None}}, None),
        ("create", {"type": "Task", "id": "c12", "fields": {"title": 5}}, rp.EXISTS),
        ("add", {"path": "Task.c12.tags", "value": "a"}, None),
        ("create", {"type": "Task", "id": "c12", "fields": {"title": "w1"}}, rp.EXISTS),
        ("add", {"path": "Task.c12.tags", "value": "a"}, None),
        ("create", {"type": "Task", "id": "c12", "fields": {"title": "w2"}}, rp.EXISTS),
        ("remove", {"path": "Task.c12.tags", "value": "zz"}, None),
        ("create", {"type": "Task", "id": "c12", "fields": {"title": "w3"}}, rp.EXISTS),
        ("remove", {"path": "Task.c12.tags", "value": "a"}, None),
        ("create", {"type": "Task", "id": "c12", "fields": {"title": "w4"}}, rp.EXISTS),
        ("unset", {"path": "Task.c12.n"}, None),
        ("create", {"type": "Task", "id": "c12", "fields": {"title": "w5"}}, rp.EXISTS),
        ("inc", {"path": "Task.c12.n", "by": 0}, None),
        ("create", {"type": "Task", "id": "c12", "fields": {"title": "w6"}}, rp.EXISTS),
        ("update", {"type": "Task", "id": "c12", "fields": {"owner": None}}, None),
        ("create", {"type": "Task", "id": "c12", "fields": {"title": "w7"}}, rp.EXISTS),
        ("update", {"type": "Task", "id": "zz", "fields": {"title": 5}}, rp.MISSING),
        ("update", {"type": "Task", "id": "c12", "fields": {"title": 5, "nope": 1}}, rp.SCHEMA),
        ("update", {"type": "Task", "id": "c12", "fields": {"title": "one", "n": "x"}}, rp.SCHEMA),
        ("update", {"type": "Task", "id": "c12", "fields": {"title": "one", "nope": 1}}, rp.SCHEMA),
        ("create", {"type": "Task", "id": "c13", "fields": {"title": "one", "nope": 1}}, rp.SCHEMA),
        ("create", {"type": "Task", "id": "c13", "fields": {"title": "one", "owner": "ann"}}, rp.UNIQUE),
        ("set", {"path": "Task.zz.title", "value": 5}, rp.SCHEMA),
        ("set", {"path": "Task.c12.nope.x", "value": 5}, rp.SCHEMA),
        ("set", {"path": "Task.c12.title", "value": None}, rp.SCHEMA),
        ("set", {"path": "Task.c12.n", "value": None}, rp.SCHEMA),
        ("set", {"path": "Task.c1.sub.s.n", "value": 4}, None),
        ("set", {"path": "Task.c1.sub.s.bad", "value": 4}, rp.SCHEMA),
        ("set", {"path": ["dotted.key", "x"], "value": 1}, None),
        ("inc", {"path": "Task.c1.w"}, None),
        ("inc", {"path": "Task.c1.n", "by": 0}, None),
        ("schema", {"document": {"records": {"R": {}}}}, None),
        ("schema", {"document": {}}, None),
        ("create", {"type": "Task", "id": "c10", "fields": {"title": "ten"}}, rp.SCHEMA),
        ("create", {"type": "Task", "id": "c12", "fields": {"title": "ten"}}, rp.SCHEMA),
        ("update", {"type": "Task", "id": "c12", "fields": {"title": "ten"}}, rp.SCHEMA),
        ("set", {"path": "misc.e", "value": Enum("Color", "Red")}, rp.SCHEMA),
        ("delete", {"type": "Task", "id": "c1"}, rp.SCHEMA),
        ("schema", {"document": SCHEMA_DOC_2}, None),
        ("retire", {"origin": "xyz", "last_seq": 1}, rp.BAD_ARGUMENT),
        ("set", {"path": "", "value": 1}, rp.BAD_ARGUMENT),
        ("set", {"path": ".".join("p" * 33), "value": 1}, rp.BAD_ARGUMENT),
        ("set", {"value": 1}, rp.BAD_ARGUMENT),
        ("resolve", {"update": "nothex"}, rp.BAD_ARGUMENT),
    ]
    made = []
    for method, arg, kind in plan:
        made.append((w(o, c, method, arg), kind))
    # An argument in non-canonical forms the decoder must accept (VALUES.md): a map16
    # header, an int in the signed family, a float32, a time in ext8, a str8 key.
    nc = (b"\xde\x00\x02" + b"\xd9\x04path" + rp.encode("nc.v") + b"\xa5value" +
          b"\x94" + b"\xd0\x05" + b"\xca\x3f\xc0\x00\x00" + b"\xc7\x04\xff\x00\x00\x00\x07" + b"\xd1\xff\x00")
    made.append((w(o, c, "set", arg_bytes=nc), None))
    # Arguments that are not maps or do not decode; an unknown method.
    made.append((w(o, c, "set", [1, 2]), rp.BAD_ARGUMENT))
    made.append((w(o, c, "set", arg_bytes=b"\xc1"), rp.BAD_ARGUMENT))
    made.append((w(o, c, "set", arg_bytes=b"\x81\xa4path"), rp.BAD_ARGUMENT))
    made.append((w(o, c, "frobnicate", {"path": "x"}), None))
    # Resolve two of the conflicts opened above, one with upper-case hex.
    made.append((w(o, c, "resolve", {"update": made[1][0].id}), None))
    made.append((w(o, c, "resolve", {"update": made[2][0].id.upper()}), None))
    made.append((w(o, c, "resolve", {"update": made[1][0].id}), None))     # closed already: no-op
    return made


def late_device(client, node_ids):
    """A device that wrote while apart: its clock puts its updates between the node's
    first calls, so replay on both sides rolls back and replays what follows."""
    first_node_hlc = int(node_ids[0][:16], 16)
    late = rp.HybridClock()
    late.last = first_node_hlc - 1 - (1 << 16)          # ~1 ms before the node's first call
    late.now_ms = lambda: 0                             # its wall clock is far behind: ticks count up
    origin = client.new_origin()                        # its own key, as another device's
    made = [
        client.write(origin, late, "create", {"type": "Task", "id": "early", "fields": {"title": "one"}}),
        client.write(origin, late, "set", {"path": "counters", "value": "not a map"}),
        client.write(origin, late, "add", {"path": "sets.s", "value": "early"}),
    ]
    return origin, made


def branch_head(client, origin, updates):
    """A head of `origin` (one of this side's) over `updates` chained on the tip it holds before
    them: a branch it never stores, signed all the same, so that what the node refuses it
    refuses for what the test means, not for a missing proof."""
    rec = client.store.record(origin)
    c = rec.chains[updates[0].seq - 1]
    for u in updates:
        c = rp.chain_step(c, rec.key, u.hlc, u.body)
    return client.store.writers[origin].sign(updates[-1].seq, c)


def receiving_checks(node, client):
    """PROTOCOL.md §2 "Receiving" and §8 "Receiving with verification": a duplicate is
    ignored; a gap, an hlc that does not rise, a time too far ahead and a reserved origin are
    not stored though their runs are signed and chain to their heads, and the next run still
    is."""
    o = client.origin
    ups = client.log[o]
    seq = len(ups)
    before = node.api.status()
    refused0 = before["refusals"]["updates_refused"]

    def body(n, path):
        return rp.encode_body(n, "set", {"path": path, "value": n})
    last_hlc = ups[-1].hlc
    now = client.clock.tick()
    skipped = rp.Update(now, o, body(seq + 1, "recv.skipped"))
    gap = rp.Update(now + 1, o, body(seq + 2, "recv.gap"))
    flat = rp.Update(last_hlc, o, body(seq + 1, "recv.flat"))
    ahead = rp.Update((int(time.time() * 1000) + 2 * 3600 * 1000) << 16, o, body(seq + 1, "recv.ahead"))
    w = client.store.writers[o]
    pushes = [
        ("a duplicate", [ups[0]], client.store.carried(o, client.store.sign_head(o, 1))),
        ("a gap", [gap], branch_head(client, o, [skipped, gap])),
        ("an hlc that does not rise", [flat], branch_head(client, o, [flat])),
        ("a time 2 h ahead", [ahead], branch_head(client, o, [ahead])),
    ]
    for reserved in (0, (1 << 64) - 1):            # a head naming a reserved origin, signed, with the key
        u = rp.Update(now, reserved, body(1, "recv.reserved"))
        c = rp.chain_step(rp.chain_start(client.cluster, w.key), w.key, u.hlc, u.body)
        sig = w.signing_key.sign(rp.head_message(reserved, 1, c, 0)).signature
        pushes.append(("reserved origin %016x" % reserved, [u], rp.Head(reserved, 1, c, 0, sig, w.key)))
    for what, run, head in pushes:
        client.peer.push_runs([(run, head)])
        client.barrier()                               # one case per poll: none is judged with another
    good = client.write(o, client.clock, "set", {"path": "recv.ok", "value": True})
    client.push([good])
    wait_node_has(node, client)
    st = node.api.status()
    check(st["vector"][rp.origin_text(o)] == seq + 1, "the node holds %d of this origin, expected %d" % (
        st["vector"][rp.origin_text(o)], seq + 1))
    check(not st["forks"], "a duplicate was taken for a fork: %r" % st["forks"])
    # Counted as refused: the flat hlc, the time ahead and the two reserved origins
    # (not the gap, not the duplicate), maybe a moment after the vector moved.
    st = wait_until(lambda: (lambda s: s["refusals"]["updates_refused"] >= refused0 + 4 and s)(node.api.status()),
                    "updates_refused to count the 4 refused updates")
    check(rp.origin_text(0) not in st["vector"] and "f" * 16 not in st["vector"], "a reserved origin was stored")
    compare(node, client, "refused updates left no trace")
    step("receiving: a duplicate ignored; a gap, an hlc that does not rise, a time 2 h ahead and reserved "
         "origins not stored, each a signed run that chains to its head (updates_refused %d -> %d); the next "
         "push stored" % (refused0, st["refusals"]["updates_refused"]))


def flip_last_byte(u):
    """The update with the last byte of its body changed: still well-framed (it is the
    argument's last byte), another value."""
    b = bytearray(u.body)
    b[-1] ^= 0x01
    return rp.Update(u.hlc, u.origin, bytes(b))


def verification_checks(node, client):
    """§8 in this implementation against what the node serves: a genuine range verifies in a
    log that knows nothing of the origin (the key from the head) and the next one from the
    tip held; the same range with one byte of one body changed, one hlc moved, one byte of
    the signature changed, its head without the key, or under another key's head, does not.
    Then the node against this implementation: a run whose body was altered after signing
    is refused (nothing stored, counted), as is this side's first range altered by one byte
    under its genuine head (not a fork); the genuine run after it is stored."""
    # Large calls on the node, so that it holds heads at several seqs (they are at most about
    # 1 MiB of bodies apart, §8 On the wire): a range from seq 1 then ends before its newest.
    for i in range(4):
        node.api.call("set", {"path": "big.v%d" % i, "value": "%d" % i * 300000})
    client.pull_all()
    check(client.tips_checked > 0, "the node's Vector carried no chain tips on a signed link")
    step("the node's Vector carries chain tips on a signed link (%d), each this side's chain at its seq"
         % client.tips_checked)
    node_origin = int(node.api.status()["node_id"], 16)
    held = client.store.held(node_origin)
    more, first, head1 = client.peer.request_range(node_origin, 1, held, max_bytes=1)
    check(head1 is not None and head1.key is not None and head1.seq == first[-1].seq,
          "a range from seq 1 did not end at a head carrying the key: %r" % (head1,))
    _, second, head2 = client.peer.request_range(node_origin, head1.seq + 1, held, max_bytes=1 << 20)
    check(second and head2 is not None and head2.key is None and head2.seq == second[-1].seq,
          "the next range did not end at a head without the key: %r" % (head2,))

    def verify(ranges, fresh=None):
        log = fresh or rp.SignedLog(client.cluster)
        stored, refusals = [], []
        for ups, head in ranges:
            s, r = log.receive(ups, [head] if head is not None else [])
            stored += s
            refusals += r
        return stored, refusals

    stored, refusals = verify([(first, head1), (second, head2)])
    check(len(stored) == len(first) + len(second) and not refusals,
          "a genuine range did not verify here: %s" % refusals[:2])
    i = len(first) // 2
    sig = bytearray(head1.signature)
    sig[10] ^= 0x01
    other = client.store.writers[client.origin]
    bad = {
        "one byte of one body changed": [(first[:i] + [flip_last_byte(first[i])] + first[i + 1:], head1)],
        "one hlc moved by 1": [(first[:i] + [rp.Update(first[i].hlc + 1, first[i].origin, first[i].body)]
                                + first[i + 1:], head1)],
        "one byte of the signature changed": [(first, rp.Head(head1.origin, head1.seq, head1.chain, head1.flags,
                                                              bytes(sig), head1.key))],
        "the head without the key (none known)": [(first, head1.without_key())],
        "the head carrying another key": [(first, head1.without_key().with_key(other.key))],
        "the second range with one byte changed": [(first, head1),
                                                   ([flip_last_byte(second[0])] + second[1:], head2)],
        "the second range without the first": [(second, head2)],
    }
    kinds = {}
    for what, ranges in bad.items():
        stored, refusals = verify(ranges)
        check(refusals and len(stored) == (len(first) if len(ranges) == 2 else 0),
              "%s: verified here (stored %d, refusals %s)" % (what, len(stored), refusals))
        kinds[what] = refusals[0].kind
    check(all(kinds[w] == "bad proof" for w in list(bad)[:3] + ["the head carrying another key",
                                                                 "the second range with one byte changed"]),
          "refusals of altered ranges: %s" % kinds)
    step("verifying here: the node's range 1..%d (asked with max_bytes 1 up to %d: it ran on to a head, which "
         "carries the key; more = %s) and %d..%d (no key: the key and chain tip remembered) verify; refused: %s"
         % (head1.seq, held, more, head1.seq + 1, head2.seq, "; ".join("%s (%s)" % kv for kv in kinds.items())))

    # The node against this implementation: a body altered after signing.
    o = client.origin
    seq = client.store.held(o)
    st0 = node.api.status()
    u1 = client.write(o, client.clock, "set", {"path": "signed.a", "value": 1})
    u2 = client.write(o, client.clock, "set", {"path": "signed.b", "value": 2})
    head = client.store.sign_head(o)
    client.peer.push_runs([([u1, flip_last_byte(u2)], head)])
    first_range = client.log[o][:3]
    altered = [first_range[0], flip_last_byte(first_range[1])] + first_range[2:]
    client.peer.push_runs([(altered, branch_head(client, o, first_range).with_key(client.store.record(o).key))])
    client.barrier()
    st = node.api.status()
    check(st["vector"][rp.origin_text(o)] == seq, "the node stored a run whose body was altered after signing: "
          "holds %d of this origin, %d before" % (st["vector"][rp.origin_text(o)], seq))
    check(not st["forks"], "an altered run was taken for a fork: %r" % st["forks"])
    # Counted, maybe a moment after the answers to the barrier.
    st = wait_until(lambda: (lambda s: s["refusals"]["updates_refused"] > st0["refusals"]["updates_refused"] and s)(
        node.api.status()), "updates_refused to count the altered runs", timeout=5)
    client.push([u1, u2])
    wait_node_has(node, client)
    compare(node, client, "the genuine run after the altered ones")
    step("the node refuses a run of this side whose body was altered after signing, and this side's seq 1..3 "
         "with one byte changed under its genuine head (no fork; updates_refused %d -> %d); the genuine run "
         "is stored" % (st0["refusals"]["updates_refused"], st["refusals"]["updates_refused"]))


def serving_checks(node, client, node_device_id, secure):
    """§8 On the wire, this side serving: it listens (CURVE with its own key, or plain TCP),
    says Hello on a second link naming that endpoint, and the node connects back, handshakes
    (feature bit 1 on both sides) and pulls what this side wrote without pushing: 12 updates
    of about 200 KB of its origin with a head after every third (so that ranges are cut back
    to heads), and an origin under a fresh key its own key
    vouches for (a certificate: the 8-element head) from seq 1. Every range it serves ends at
    a head it holds, with the key (and certificate) when it starts at seq 1. A call on the
    node then comes to this side as a Push of a run with its head, verified here."""
    ctx = zmq.Context.instance()
    zap = node_only_zap(ctx, node_device_id) if secure else None
    lis = rp.Listener(client.identity if secure else None, context=ctx)
    server = rp.PeerServer(lis, client.store, client.origin, identity_key=client.identity if secure else None)
    link = None
    try:
        o = client.origin
        # 12 updates of about 200 KB, a head after every third: more than the node asks for at
        # once, so ranges are cut back to heads held here.
        for i in range(12):
            client.write(o, client.clock, "set", {"path": "served.own.k%d" % (i % 4), "value": "%x" % i * 200000})
            if (i + 1) % 3 == 0:
                client.store.sign_head(o)
        m = client.new_origin(certified=True)
        for i in range(12):
            client.write(m, client.clock, "inc", {"path": "served.certified", "by": i})
            if i + 1 in (5, 12):
                client.store.sign_head(m)
        want = {rp.origin_text(o): client.store.held(o), rp.origin_text(m): 12}
        link = rp.Peer(node.listen, client.cluster, client.origin, identity_key=client.identity,
                       server_device_id=node_device_id, advertise=lis.endpoint, features=rp.FEATURE_SIGNED)
        link.handshake()
        deadline = time.monotonic() + 20
        done = False
        while not done:
            check_time()
            check(time.monotonic() < deadline, "the node did not pull this side's ranges within 20 s: served %s, "
                  "node vector %s" % (server.served, node.api.status()["vector"]))
            while server.poll(0.05):
                pass
            v = node.api.status()["vector"]
            done = all(v.get(k, 0) >= n for k, n in want.items())
        check(server.hellos and server.hellos[0]["features"] & rp.FEATURE_SIGNED,
              "the node's Hello to this side lacks feature bit 1: %s" % server.hellos[:1])
        check(not server.refused_hellos, "this side refused the node's Hello: %s" % server.refused_hellos[:1])
        if secure:
            check(server.hellos[0]["origin_bound"], "the node's Hello on its link to this side is not signed")
        for origin, from_seq, to_seq, count, head in server.served:
            if count:
                check(head.seq == from_seq + count - 1 and (head.key is not None) == (from_seq == 1),
                      "served %016x %d..%d ending at %r" % (origin, from_seq, from_seq + count - 1, head))
        cut_back = [x for x in server.served
                    if x[0] == o and x[3] and x[1] + x[3] - 1 < min(x[2], want[rp.origin_text(o)])]
        own = [x for x in server.served if x[0] == o and x[3]]
        cert = [x for x in server.served if x[0] == m and x[3]]
        check(own and cert and cert[0][1] == 1 and cert[0][4].cert is not None,
              "the node did not pull both origins from this side (from seq 1 with the certificate): %s" % server.served)
        compare(node, client, "the node pulled this side's ranges")
        check(cut_back, "no range of this side's origin was cut back to a head (Requests %s)" % server.requests)
        step("serving: the node connected back, said Hello with bit 1 and pulled %d ranges from this side (%s; "
             "max_bytes %s), each ending at a head held here, %d of them cut back to one; the certified origin's "
             "first range carried key, device and certificate" % (
                 len(own) + len(cert), ", ".join("%s %d..%d" % (rp.origin_text(x[0])[:6], x[1], x[1] + x[3] - 1)
                                                 for x in own + cert),
                 sorted({r[3] for r in server.requests}), len(cut_back)))
        # A call on the node reaches this side as a Push (the node's DEALER to this side).
        node_origin = int(node.api.status()["node_id"], 16)
        n0 = client.store.held(node_origin)
        node.api.call("set", {"path": "served.ping", "value": True})
        deadline = time.monotonic() + 10
        while client.store.held(node_origin) <= n0:
            check_time()
            check(time.monotonic() < deadline, "the node's call did not come as a Push within 10 s (refused here: %s)"
                  % server.refused[:3])
            server.poll(0.05)
        check(not server.refused, "this side refused what the node pushed: %s" % server.refused[:3])
        compare(node, client, "the node's call pushed to this side and verified here")
        step("serving: the node's next call came as a Push of a run with its head; verified and stored here")
    finally:
        if link is not None:
            link.close()
        server.close()
        if zap is not None:
            zap.close()


def compression_checks(node, client, node_device_id):
    """§2 "Compressed bodies": on a second link whose Hello sets bit 4 as well as bit 1, the
    node says bit 4 back; a range of its origin comes with its body compressed and reads as
    the same range on the plain link, byte for byte, with the same head; a Push whose body
    this side compressed is stored; and a compressed body on the plain link (bit 1 only)
    is answered with Error 1 and stores nothing."""
    node_origin = int(node.api.status()["node_id"], 16)
    for i in range(4):
        node.api.call("set", {"path": "zip.node.k%d" % i, "value": "n" * 300})
    held = node.api.status()["vector"][rp.origin_text(node_origin)]
    link = rp.Peer(node.listen, client.cluster, client.origin, identity_key=client.identity,
                   server_device_id=node_device_id, features=rp.FEATURE_SIGNED | rp.FEATURE_COMPRESS)
    try:
        hello = link.handshake()
        check(hello["features"] & rp.FEATURE_COMPRESS and link.compressing,
              "the node's Hello lacks feature bit 4: %d" % hello["features"])
        more, ups, head = link.request_range(node_origin, 1, held)
        check(link.compressed_received > 0, "the node's Updates of %d updates did not come compressed" % len(ups))
        plain_more, plain_ups, plain_head = client.peer.request_range(node_origin, 1, held)
        check(client.peer.compressed_received == 0, "a compressed body came on a link without bit 4")
        check(ups and [u.envelope() for u in ups] == [u.envelope() for u in plain_ups] and more == plain_more
              and head is not None and plain_head is not None and head.wire() == plain_head.wire(),
              "the compressed range differs from the plain one (%d and %d updates)" % (len(ups), len(plain_ups)))
        made = [client.write(client.origin, client.clock, "set", {"path": "zip.client.k%d" % i, "value": "c" * 300})
                for i in range(5)]
        link.push_runs(client.store.runs(client.origin, made[0].seq), compress=True)
        wait_node_has(node, client)
        client.pull_all()
        compare(node, client, "a Push with a compressed body")
        errors = len(client.peer.errors)
        before = node.api.status()["vector"]
        client.peer.send(rp.REQUEST, [node_origin, 1, 1, 1 << 20], compress=True)
        f = client.peer.wait_for((rp.ERROR,), 5.0)
        check(f[1] == rp.ERROR and f[2][0] == 1 and len(client.peer.errors) == errors + 1,
              "a compressed body on a link without bit 4 was answered with %r, not Error 1" % (f,))
        check(node.api.status()["vector"] == before, "the node stored something after the refused frame")
        step("compressed bodies: bit 4 both ways; a range of %d updates came compressed (%d frames) and read "
             "as the plain link's; a compressed Push of 5 was stored; a compressed body without bit 4 got "
             "Error 1 (%s)" % (len(ups), link.compressed_received, f[2][1]))
    finally:
        link.close()


def hello_signature_checks(node, client, node_device_id, cluster):
    """§2 Handshake on a CURVE link: a Hello whose signature does not bind the link to its node
    id gets Error 6 and the link is not admitted (a Vector then gets Error 4); a genuine one
    for an origin key the device certified is taken; a Hello without feature bit 1 and
    without a signature (an older node) is still answered. Four bad frames in all."""
    from nacl.signing import SigningKey
    other = SigningKey.generate()
    other_identity = bytes(other) + bytes(other.verify_key)
    fresh = SigningKey.generate()
    fresh_key = bytes(fresh.verify_key)
    cert = client.signing_key.sign(rp.cert_message(cluster, fresh_key)).signature

    def link():
        return rp.Peer(node.listen, cluster, client.origin, identity_key=client.identity,
                       server_device_id=node_device_id, features=rp.FEATURE_SIGNED)

    def base(node_id):
        return [cluster, node_id, "", rp.MAX_UPDATE, rp.MAX_FRAME, rp.FEATURE_SIGNED]

    genuine = base(client.origin) + rp.hello_proof(client.identity, cluster, client.origin)
    flipped = list(genuine)
    flipped[7] = bytes([genuine[7][0] ^ 0x01]) + genuine[7][1:]
    refused = [
        ("a flipped signature bit", flipped),
        ("a signature by another device than the link's",
         base(rp.origin_id(bytes(other.verify_key))) + rp.hello_proof(other_identity, cluster,
                                                                       rp.origin_id(bytes(other.verify_key)))),
        ("a node id that is not the device's origin",
         base(client.origin ^ 1) + rp.hello_proof(client.identity, cluster, client.origin ^ 1)),
        ("feature bit 1 and no signature", base(client.origin)),
    ]
    for what, body in refused:
        p = link()
        try:
            p.send(rp.HELLO, body)
            f = p.wait_for((rp.HELLO,), 5)
            check(f[1] == rp.ERROR and f[2][0] == rp.ERROR_UNBOUND, "%s: expected Error 6, got %r" % (what, f))
            p.send(rp.VECTOR, [0, 1, False, []])
            g = p.wait_for((rp.VECTOR,), 5)
            check(g[1] == rp.ERROR and g[2][0] == 4, "%s: the link was admitted (a Vector got %r)" % (what, g))
            step("hello: %s gets Error 6 (%s) and the link is not admitted" % (what, f[2][1]))
        finally:
            p.close()
    p = rp.Peer(node.listen, cluster, rp.origin_id(fresh_key), identity_key=client.identity,
                server_device_id=node_device_id, features=rp.FEATURE_SIGNED, origin_key=fresh_key, origin_cert=cert)
    try:
        hello = p.handshake()
        check(hello["origin_bound"], "the node's answer does not bind its link: %r" % (hello,))
        step("hello: a Hello naming an origin key the device certified (10 elements) is answered with Hello")
    finally:
        p.close()
    p = rp.Peer(node.listen, cluster, client.origin ^ 1, identity_key=client.identity,
                server_device_id=node_device_id, features=rp.FEATURE_MEMBERS)
    try:
        hello = p.handshake()
        step("hello: an older node's Hello (no feature bit 1, unsigned) is still answered with Hello")
    finally:
        p.close()


def negative_checks(node, client, node_device_id, cluster):
    """A wrong hash is told apart; malformed frames get the documented Errors and the
    node keeps serving. Fewer than 20 bad frames, so the source is never cut off."""
    state = client.replay()
    good = state.state_hash()
    data = bytearray(state.hash_input())
    data[len(data) // 2] ^= 0x01
    wrong = hashlib.blake2b(bytes(data), digest_size=32).hexdigest()
    check(wrong != node.api.hash(), "a hash over one flipped byte equals the node's")
    check(good == node.api.hash(), "the unmodified hash no longer equals the node's")
    if state.conflicts:
        k = sorted(state.conflicts)[0]
        del state.conflicts[k]
        check(state.state_hash() != node.api.hash(), "dropping one conflict leaves the hash equal")
    step("negative: a hash over one flipped byte, or with one conflict dropped, differs from the node's")

    before = node.api.status()["refusals"]["bad_frames"] if "refusals" in node.api.status() else None
    p = rp.Peer(node.listen, cluster, client.origin, identity_key=client.identity,
                server_device_id=node_device_id)
    try:
        # Before any Hello on this connection: Error 4.
        p.send(rp.VECTOR, [0, 1, False, []])
        f = p.wait_for((), 5)
        check(f[1] == rp.ERROR and f[2][0] == 4, "Vector before Hello: expected Error 4, got %r" % (f,))
        step("negative: a Vector before Hello gets Error 4 (%s)" % f[2][1])
        # Another cluster: Error 3.
        p.send(rp.HELLO, ["not-" + cluster, client.origin, "", rp.MAX_UPDATE, rp.MAX_FRAME, 0])
        f = p.wait_for((rp.HELLO,), 5)
        check(f[1] == rp.ERROR and f[2][0] == 3, "Hello of another cluster: expected Error 3, got %r" % (f,))
        step("negative: a Hello of another cluster gets Error 3 (%s)" % f[2][1])
        # Other limits: Error 2.
        p.send(rp.HELLO, [cluster, client.origin, "", rp.MAX_UPDATE + 1, rp.MAX_FRAME, 0])
        f = p.wait_for((rp.HELLO,), 5)
        check(f[1] == rp.ERROR and f[2][0] == 2, "Hello with other limits: expected Error 2, got %r" % (f,))
        step("negative: a Hello with max_update 1,048,577 gets Error 2 (%s)" % f[2][1])
        p.handshake()
        # Version 2: Error 2.
        p.send(rp.VECTOR, [0, 1, False, []], version=2)
        f = p.wait_for((), 5)
        check(f[1] == rp.ERROR and f[2][0] == 2, "version 2: expected Error 2, got %r" % (f,))
        step("negative: a frame of version 2 gets Error 2 (%s)" % f[2][1])
        # Malformed: truncated MessagePack; trailing bytes; a Push with a bad body; bad page.
        bad = [
            ("a truncated frame", b"\x93\x01\x03"),
            ("trailing bytes", rp.pack_frame(rp.VECTOR, [0, 1, False, []]) + b"\x00"),
            ("a Push whose update body has seq 0",
             rp.pack_frame(rp.PUSH, [[[1 << 16, client.origin, b"\x93\x00\xa3set\xc4\x01\x80"]]])),
            ("a Push whose seq is written signed",
             rp.pack_frame(rp.PUSH, [[[1 << 16, client.origin, b"\x93\xd0\x01\xa3set\xc4\x01\x80"]]])),
            ("a Vector with page >= pages", rp.pack_frame(rp.VECTOR, [1, 1, False, []])),
            ("a Request of 3 elements", rp.pack_frame(rp.REQUEST, [client.origin, 1, 2])),
        ]
        for what, data in bad:
            p.send_raw(data)
            f = p.wait_for((), 5)
            check(f[1] == rp.ERROR and f[2][0] == 1, "%s: expected Error 1, got %r" % (what, f))
            step("negative: %s gets Error 1 (%s)" % (what, f[2][1]))
        # A two-part message is dropped without an answer.
        p.sock.send_multipart([rp.pack_frame(rp.VECTOR, [0, 1, False, []]), b"x"])
        check(p.recv(0.5) is None, "a two-part message was answered")
        step("negative: a two-part message is dropped without an answer")
    finally:
        p.close()
    node.check_alive()
    st = node.api.status()
    if before is not None:
        check(st["refusals"]["bad_frames"] > before, "refusals.bad_frames did not count the bad frames")
    # The main link still syncs.
    theirs = client.peer.exchange_vectors(client.vector())
    check({o: s for o, s in theirs.items() if s} == client.vector(), "the node's vector changed: %s" % theirs)
    check(good == node.api.hash(), "the node's hash changed after the bad frames")
    step("negative: the node keeps running and serving (bad_frames %s -> %s)" % (
        before, st.get("refusals", {}).get("bad_frames")))


def fork_evidence_checks(node, client, node_device_id, secure):
    """§8 "Fork evidence" and "Evidence spreads": an origin of this side (a fresh key its own
    key certifies) forks. The node holds its run 1..3, then gets 2..3 again with other bodies,
    chained from the same #1 and signed by the same key: it must keep chain evidence with fork
    seq 2 and send it as an Evidence frame to every peer whose link carries bit 1, when it keeps
    it (to a listener of this side it had connected to) and when a link becomes ready (a second
    listener it connects to afterwards); the piece must pass decode_evidence and check_evidence
    here. Copies with one body byte changed, or with both branches one, are refused. Both sides
    then leave the origin's #2 and #3 out of replay.

    Evidence goes only on the links the node opened (§8 "Evidence spreads"); this side's own
    links to the node (its incoming links) are watched to check that none came there."""
    ctx = zmq.Context.instance()
    zap = node_only_zap(ctx, node_device_id) if secure else None
    servers, links = [], []

    def listen():
        # Each listener is a device of its own (trusted with CURVE), so that the node takes it for
        # a new peer and connects to it (one link per device; per node id without keys).
        from nacl.signing import SigningKey
        sk = SigningKey.generate()
        identity = bytes(sk) + bytes(sk.verify_key) if secure else None
        if secure:
            node.cli("trust", "add", rp.device_id(bytes(sk.verify_key)), "--name", "evidence%d" % len(servers))
        node_id = rp.origin_id(bytes(sk.verify_key))
        lis = rp.Listener(identity, context=ctx)
        srv = rp.PeerServer(lis, client.store, node_id, identity_key=identity)
        servers.append(srv)
        link = rp.Peer(node.listen, client.cluster, node_id, identity_key=identity,
                       server_device_id=node_device_id, advertise=lis.endpoint, features=rp.FEATURE_SIGNED)
        links.append(link)
        link.handshake()
        return srv

    def pump(pred, what, timeout=10.0):
        """Serves the node's links to this side's listeners until `pred()` holds."""
        deadline = time.monotonic() + timeout
        while True:
            check_time()
            for srv in servers:
                while srv.poll(0.01):
                    pass
            v = pred()
            if v:
                return v
            check(time.monotonic() < deadline, "timed out after %.0f s waiting for %s" % (timeout, what))

    def got(srv):
        return srv.evidence or srv.refused_evidence
    try:
        # The node connects to this side and its link becomes ready (it sends its Vector).
        kept_srv = listen()
        pump(lambda: kept_srv.hellos and kept_srv.frames >= 2, "the node to connect to this side's listener")
        check(not kept_srv.evidence, "the node sent evidence before any fork")
        m = client.new_origin(certified=True)
        name = rp.origin_text(m)
        branch_a = [client.write(m, client.clock, "set", {"path": "fork.a%d" % n, "value": n}) for n in (1, 2, 3)]
        client.push(branch_a)                  # one run from seq 1, its head with key and certificate
        pump(lambda: node.api.status()["vector"].get(name) == 3, "the node to store %s 1..3" % name)
        branch_b = [rp.Update(client.clock.tick(), m,
                              rp.encode_body(n, "set", {"path": "fork.b%d" % n, "value": n})) for n in (2, 3)]
        client.peer.push_runs([(branch_b, branch_head(client, m, branch_b))])
        st = pump(lambda: (lambda s: name in s.get("fork_evidence", {}) and s)(node.api.status()),
                  "the node to keep fork evidence of %s" % name)
        check(st["fork_evidence"][name] == 2, "the node keeps evidence of %s with fork seq %r, expected 2"
              % (name, st["fork_evidence"][name]))
        check(st["vector"].get(name) == 3, "the node holds %r of the forked origin, expected 3"
              % st["vector"].get(name))
        # Sent when kept, to the ready peer; then when a new link becomes ready.
        pump(lambda: got(kept_srv), "the node to send its new evidence to this side's listener")
        ready_srv = listen()
        pump(lambda: got(ready_srv), "the node to send its evidence when its link to a second listener is ready")
        for srv in servers:
            check(not srv.refused_evidence, "this side refused the node's evidence: %s"
                  % [why for _, why in srv.refused_evidence])
        kept, ready = kept_srv.evidence[0], ready_srv.evidence[0]
        check(ready == kept, "the evidence sent when a link became ready differs from the one sent when kept:"
              "\n  %s\n  %s" % (ready.hex(), kept.hex()))
        # What came on this side's own links to the node (its incoming links).
        for p in [client.peer] + links:
            while True:
                f = p.recv(0.05 if p is client.peer else 0)
                if f is None:
                    break
                p.other.append(f)
        incoming = [d for p in [client.peer] + links for d in p.evidence]
        check(all(d == kept for d in incoming), "evidence on an incoming link differs from the one kept")
    finally:
        for link in links:
            link.close()
        for srv in servers:
            srv.close()
        if zap is not None:
            zap.close()

    e = rp.decode_evidence(kept)
    origin, seq = rp.check_evidence(e, client.cluster)
    check(e.kind == rp.EVIDENCE_CHAIN and origin == m and seq == 2 and rp.fork_seq(e) == 2,
          "the node's evidence is of kind %d, origin %s, fork seq %d; expected chain evidence of %s at #2"
          % (e.kind, rp.origin_text(origin), seq, name))
    mine = [(u.hlc, u.body) for u in branch_a[1:]], [(u.hlc, u.body) for u in branch_b]
    theirs = sorted([[(u.hlc, u.body) for u in e.branch_a], [(u.hlc, u.body) for u in e.branch_b]])
    check(theirs == sorted(mine), "the evidence's branches are not this side's two branches from #2")
    check(bytes(e.base) == client.store.record(m).chains[1], "the evidence's base is not c_1 of the origin")
    heads = [len(h.wire()) for h in (e.a, e.b)]
    refused = {}
    for what, bad in (
            ("one byte of a branch body changed",
             rp.Evidence(e.kind, e.a, e.b, e.s, e.base, [flip_last_byte(e.branch_a[0])] + e.branch_a[1:],
                         e.branch_b)),
            ("both branches one (first updates equal)",
             rp.Evidence(e.kind, e.a, e.a, e.s, e.base, e.branch_a, e.branch_a))):
        try:
            rp.check_evidence(bad, client.cluster)
        except rp.EvidenceError as x:
            refused[what] = str(x)
            continue
        raise TestFailure("check_evidence took the node's evidence with %s" % what)
    client.fork_seqs[m] = seq
    compare(node, client, "a fork of this side's origin %s left out from #%d on both sides" % (name, seq))
    step("fork evidence: the node kept chain evidence of this side's origin %s (fork seq 2, in status) and sent it "
         "(%d bytes, heads of %d and %d elements) to this side's listener when kept and to a second one when its "
         "link was ready; decode_evidence and check_evidence take it here (base c_1, the two branches from #2); "
         "refused: %s" % (name, len(kept), heads[0], heads[1], "; ".join("%s (%s)" % kv for kv in refused.items())))
    rec = client.store.record(m)
    # The origin's key is not a device key (this side's device key certifies it), and the node
    # holds its certificate from the first run: the evidence's heads carry it (8 elements).
    check(rec.cert is not None and all(h.key == rec.key and h.cert == rec.cert for h in (e.a, e.b)),
          "the evidence's heads do not carry %s's key with its certificate (%d and %d elements)"
          % ((name,) + tuple(heads)))
    check(not incoming, "the node sent evidence on %d of this side's own links to it; PROTOCOL.md §8 "
          "\"Evidence spreads\" says only on links it opened" % len(incoming))
    step("fork evidence: its heads carry the key with its device and certificate (%d and %d elements), and it "
         "came only on links the node opened, none on this side's %d links to it" % (heads[0], heads[1],
                                                                                     1 + len(links)))


def node_only_zap(ctx, node_device_id):
    """A ZAP handler for this side's listeners that admits the node's device only (§7 Trust:
    the user id is the admitted device's key in 64 hex digits)."""
    node_curve = rp.curve_public_of_device(node_device_id)
    node_hex = rp.parse_device_id(node_device_id).hex()
    return rp.ZapHandler(ctx, lambda mech, key: (200, node_hex) if mech == "CURVE" and key == node_curve
                         else (400, ""))


def signed_origin_vectors():
    """PROTOCOL.md §8 "Vectors", computed here from the section's rules: ids, the chain, a
    head, a certificate, the three head encodings, and check_head on what they decode to."""
    from nacl.signing import SigningKey
    cluster = "f1f1f1f1-0001"
    k, d = SigningKey(bytes(range(1, 33))), SigningKey(bytes(range(0x21, 0x41)))
    w = rp.OriginWriter(cluster, k, device=d)
    b1 = bytes.fromhex("9301a3736574c40f82a470617468a161a576616c756501")
    b2 = bytes.fromhex("9302a3696e63c40c82a2627902a470617468a16e")
    c0 = rp.chain_start(cluster, w.key)
    c1 = rp.chain_step(c0, w.key, 0x01a2131fe5330000, b1)
    c2 = rp.chain_step(c1, w.key, 0x01a2131fe5330001, b2)
    head = w.sign(2, c2)
    sig = ("a1e8d66c047744b453acd835c729748fe5c4c0302e0cb37f74bf97b2ace12db6"
           "e68b703ba1b85ea12532a990e979b6e8e4ae44f0138fb4747381e10d74980409")
    cert = ("dfef7181277e39200ead01e887e1ada5950d1ddbced2c517d9e9d94cb2005e54"
            "5581c9fe9a714b2760920558e6d9871b62df1da34c96ea5b37c5e2a178e2850c")
    h5 = "95cfbc100233fd6a1a9402c420" + c2.hex() + "00c440" + sig
    h6 = "96" + h5[2:] + "c420" + w.key.hex()
    h8 = "98" + h6[2:] + "c420" + w.device.hex() + "c440" + cert
    got = [w.key.hex(), rp.origin_text(w.origin), rp.origin_text(rp.origin_id(w.device)), c0.hex(), c1.hex(),
           c2.hex(), head.signature.hex(), w.cert.hex(), head.encode().hex(), w.carried(head).encode().hex(),
           rp.Head.decode(bytes.fromhex(h6)).without_key().with_key(w.key).encode().hex()]
    want = ["79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664", "bc100233fd6a1a94",
            "daf0f522225dbb9a", "d62a59ff199a669b9babab30b17021f6180c70c9c3d924dca119cc577a17b593",
            "1803bca9f591612ef4cf8c4b999199375a92da07b529e8cd953287520b4ee24d",
            "c10bb285bb29732c08c64c7f9a7483133ae8824996c2264d59d41bbcc6f91e80", sig, cert, h5, h8, h6]
    for name, g, x in zip(["K", "id(K)", "id(D)", "c_0", "c_1", "c_2", "signature", "cert", "head (5)",
                           "head (8)", "head (6)"], got, want):
        check(g == x, "PROTOCOL.md §8 vector %s: computed %s, the document says %s" % (name, g, x))
    for h in (h6, h8):
        check(rp.check_head(rp.Head.decode(bytes.fromhex(h)), cluster) == w.key, "check_head refuses a vector head")
    check(rp.check_head(rp.Head.decode(bytes.fromhex(h5)), cluster) is None, "a head without a key was checked")
    for bad, why in ((h8, "another cluster"), (h5[:-2] + "%02x" % (int(h5[-2:], 16) ^ 1), "a signature byte")):
        try:
            rp.check_head(rp.Head.decode(bytes.fromhex(bad)), "f1f1f1f1-0002" if why == "another cluster" else cluster,
                          known_key=w.key)
        except rp.HeadError:
            continue
        raise TestFailure("check_head accepted a vector head with %s changed" % why)
    for bad in ("97" + h6[2:] + "c0", h5 + "00", "95" + h5[2:].replace("c440", "d940", 1)):
        try:
            rp.Head.decode(bytes.fromhex(bad))
        except rp.HeadError:
            continue
        raise TestFailure("the head reader took %s" % bad)
    step("PROTOCOL.md §8 vectors computed here: id(K), id(D), c_0..c_2, the head's signature, D's certificate, "
         "the 5-, 6- and 8-element encodings; check_head takes them, refuses another cluster's certificate and a "
         "changed signature; the reader refuses an array of 7, a trailing byte, a str for the signature")

    # §8 "Vectors": chain evidence of a fork at seq 2, body_2 at hlc_2 on one branch, at hlc_2' on the other.
    hlc2b = 0x01a2131fe5340000
    c2b = rp.chain_step(c1, w.key, hlc2b, b2)
    head_b = w.sign(2, c2b)
    sig_b = ("200b7db64f7a4818423dad7d79d81ae9919ec801ca2569968394c366e4a98e4b"
             "9c1d59aead17f29f22e0c348607ab8bcd8eeaf1943b12aaebcd38e7f8c7a8202")
    check(c2b.hex() == "fb9843e4bdbbbc68d8b1ed0349e0614517cc04e058e49ff90ee2c45a19e915bc",
          "PROTOCOL.md §8 vector c_2': computed %s" % c2b.hex())
    check(head_b.signature.hex() == sig_b, "PROTOCOL.md §8 vector, head b's signature: computed %s"
          % head_b.signature.hex())
    hb6 = "96cfbc100233fd6a1a9402c420" + c2b.hex() + "00c440" + sig_b + "c420" + w.key.hex()
    upd = "93cf%016xcfbc100233fd6a1a94c414" + b2.hex()
    doc = bytes.fromhex("9701" + h6 + hb6 + "02c420" + c1.hex() + "91" + upd % 0x01a2131fe5330001
                        + "91" + upd % hlc2b)
    ev = rp.Evidence(rp.EVIDENCE_CHAIN, head.with_key(w.key), head_b.with_key(w.key), 2, c1,
                     [rp.Update(0x01a2131fe5330001, w.origin, b2)], [rp.Update(hlc2b, w.origin, b2)])
    check(len(doc) == 413 and ev.encode() == doc, "PROTOCOL.md §8 evidence vector: encoded here (%d bytes) %s, "
          "the document's (%d bytes) %s" % (len(ev.encode()), ev.encode().hex(), len(doc), doc.hex()))
    got = rp.decode_evidence(doc)
    check(rp.check_evidence(got, cluster) == (w.origin, 2) and rp.fork_seq(got) == 2,
          "check_evidence does not take the §8 evidence vector with fork seq 2")
    same = rp.Evidence(rp.EVIDENCE_CHAIN, got.a, got.a, 2, c1, got.branch_a, got.branch_a)
    moved = rp.Evidence(rp.EVIDENCE_CHAIN, got.a, got.b, 2, c1, got.branch_a, [rp.Update(hlc2b + 1, w.origin, b2)])
    # (Without a certificate and with s > 1 nothing in chain evidence names the cluster.)
    for what, e in (("hlc_2 in both branches", same), ("branch b's hlc moved by 1", moved)):
        try:
            rp.check_evidence(e, cluster)
        except rp.EvidenceError:
            continue
        raise TestFailure("check_evidence took the §8 evidence vector with %s" % what)
    body_seq0 = "93cf%016xcfbc100233fd6a1a94c406" % hlc2b + "9300a178c400"
    unread = [
        ("over 3 MiB", b"\x91" + b"\xc0" * (3 * 1024 * 1024)),
        ("a byte after it", doc + b"\x00"),
        ("nesting of 6 arrays", bytes.fromhex("9701" + h6 + hb6 + "02c420" + c1.hex() + "9191919191c0" + "91"
                                              + upd % hlc2b)),
        ("kind 3", bytes.fromhex("9303" + h6 + hb6)),
        ("kind 1 of 3 elements", bytes.fromhex("9301" + h6 + hb6)),
        ("kind 2 of 7 elements", bytes.fromhex("9702") + doc[2:]),
        ("an empty branch", bytes.fromhex("9701" + h6 + hb6 + "02c420" + c1.hex() + "90" + "91" + upd % hlc2b)),
        ("an update of 2", bytes.fromhex("9701" + h6 + hb6 + "02c420" + c1.hex() + "9192cf0000000000000001cf00"
                                         "00000000000001" + "91" + upd % hlc2b)),
        ("a body with seq 0", bytes.fromhex("9701" + h6 + hb6 + "02c420" + c1.hex() + "91" + body_seq0 + "91"
                                            + upd % hlc2b)),
        ("a head of 7", bytes.fromhex("9701" + "97" + h6[2:] + "c0" + hb6) + doc[2 + len(h6) // 2 + len(hb6) // 2:]),
    ]
    for what, data in unread:
        try:
            rp.decode_evidence(data)
        except rp.EvidenceError:
            continue
        raise TestFailure("the evidence reader took %s" % what)
    step("PROTOCOL.md §8 evidence vector (413 bytes) encoded here byte for byte; decode_evidence and check_evidence "
         "take it (fork seq 2), refuse it with hlc_2 in both branches or branch b's hlc moved; the reader refuses %s"
         % ", ".join(what for what, _ in unread))


def run_mode(replog, tmp, secure):
    mode = "CURVE" if secure else "insecure"
    step("==== %s ====" % mode)
    node = Node(replog, tmp, "node-" + mode.lower(), secure)
    client = None
    try:
        schema_path = os.path.join(tmp, "schema.json")
        with open(schema_path, "w") as f:
            json.dump(SCHEMA_DOC, f)
        node.init(schema_path)
        node.start()
        st = node.api.status()
        cluster, node_id = st["cluster_id"], st["node_id"]
        node_device_id = st.get("device_id")
        check(st.get("secure") is secure, "status says secure = %r" % st.get("secure"))
        client = Client(node, cluster, secure)
        if secure:
            out = node.cli("trust", "add", client.device_id, "--name", "interop")
            listed = node.api.request("trust.list", None)
            check(any(d["id"] == client.device_id for d in listed),
                  "trust.list does not list %s: %r" % (client.device_id, listed))
            check(rp.parse_device_id(node_device_id) is not None, "the node's device id does not parse")
            step("trusted the client's device id %s (computed from PROTOCOL.md §6)" % client.device_id)

        ids = node_calls(node)

        hello = client.connect(node_device_id)
        check(hello["cluster"] == cluster and rp.origin_text(hello["node_id"]) == node_id,
              "the node's Hello names %r" % (hello,))
        check(hello["max_update"] == rp.MAX_UPDATE and hello["max_frame"] == rp.MAX_FRAME,
              "the node's Hello has limits %r" % (hello,))
        step("handshake: the node answers Hello %r" % ([hello["cluster"], rp.origin_text(hello["node_id"]),
                                                          hello["endpoint"], hello["features"]],))

        check(hello["features"] & rp.FEATURE_SIGNED and client.peer.signed,
              "the node's Hello lacks feature bit 1 (signed origins): %r" % (hello,))
        if secure:
            # Peer.handshake checked it as §2 Handshake says: the device key is the link's,
            # the signature verifies over its CURVE key, and the node id is its origin.
            check(hello["origin_bound"] and hello["key"] is None,
                  "the node's Hello does not bind the link to its node id: %r" % (hello,))
            step("handshake: the node's Hello is signed by its device key over its CURVE key and node id "
                 "(the node id is the device key's origin)")
        # §8 Writers: the node writes as its device key, so its origin id derives from that key.
        node_key = rp.parse_device_id(node_device_id)
        derived = rp.origin_text(rp.origin_id(node_key))
        check(derived == node_id, "the node's origin %s is not the id of its device key (%s)" % (node_id, derived))

        # Pull in small answers so that ranges end at many heads, each verified here, then compare.
        theirs = client.peer.exchange_vectors({})
        got, refused = client.peer.pull_verified(client.store, theirs, max_bytes=200)
        check(not refused, "this side refused ranges the node served: %s" % refused[:3])
        for u in got:
            client.clock.observe(u.hlc)
        check(client.vector() == theirs, "pulled %s, the node has %s" % (client.vector(), theirs))
        check([u.id for u in client.log[int(node_id, 16)][1:]] == ids,
              "the pulled update ids are not the ids the calls returned")
        rec = client.store.record(int(node_id, 16))
        check(rec.key == node_key, "the node's ranges carried another key than its device key")
        step("pulled %d updates (max_bytes 200) in ranges ending at %d heads, each verified here: the key from "
             "the first range's head, the chain from c_0 and then from the tip held" % (len(got), len(rec.heads)))
        compare(node, client, "node's calls replayed here", expect_conflicts=[])

        # A Request the node answers empty: from_seq 0, beyond what it holds, reserved origin.
        for req in ([int(node_id, 16), 0, 5], [int(node_id, 16), 10 ** 6, 10 ** 6 + 1], [0, 1, 1]):
            more, ups, head = client.peer.request_range(req[0], req[1], req[2])
            check(not more and not ups and head is None, "Request %r answered with %d updates, head %r" % (
                req, len(ups), head))
        step("Requests from seq 0, beyond the node's seq and for a reserved origin are answered empty%s" % (
            "; with no fourth element (PROTOCOL.md §8 says a nil head): %s" % client.peer.empty_without_head
            if client.peer.empty_without_head else ", each with a nil head"))

        made = client_updates(client, ids)
        client.push([u for u, _ in made])
        wait_node_has(node, client)
        compare(node, client, "client's updates pushed and applied",
                )

        # Exact conflict kinds: each expected conflict is open unless a later resolve closed it.
        state = client.replay()
        opened = state.conflict_view()
        for u, kind in made:
            if kind is None:
                check(u.id not in opened or u.method == "resolve", "%s %r opened a conflict %r" % (
                    u.method, rp.decode(u.arg_bytes) if u.method != "frobnicate" else "", opened.get(u.id)))
        resolved = {made[1][0].id, made[2][0].id}
        for u, kind in made:
            if kind is not None and u.id not in resolved:
                check(u.id in opened and opened[u.id][0] == kind, "%s: expected a %s conflict, have %r" % (
                    u.method, rp.KIND_NAMES[kind], opened.get(u.id)))
        check(node.api.status()["unknown_method_updates"] == 1, "the node does not count the unknown method")
        step("every expected conflict kind is open on both sides (schema, unique, failed, overflow, "
             "missing, exists, bad-argument); the unknown method is counted")

        # The node's own calls see the client's updates: resolve one conflict locally.
        target = sorted(opened)[0]
        node.api.call("resolve", {"update": target})
        client.pull_all()
        compare(node, client, "the node resolved %s" % target)

        # A late device: its updates sort among the node's first calls.
        late_origin, late_made = late_device(client, ids)
        if secure:
            # An origin counts only when its key is a member's (§8 "Membership"): the
            # node trusts the late device as it would any device of the cluster.
            late_key = bytes(client.store.writers[late_origin].key)
            node.cli("trust", "add", rp.device_id(late_key), "--name", "late")
        client.push(late_made)
        wait_node_has(node, client)
        compare(node, client, "a late device's updates folded in below the node's")

        # A revocation (§8 "Revocation"): the late device is shut out after its #1,
        # though its #2 and #3 sort before the revocation.
        revoke = client.write(client.origin, client.clock, "revoke",
                              {"origin": rp.origin_text(late_origin), "last_seq": 1})
        client.push([revoke])
        wait_node_has(node, client)
        check(node.api.status().get("revoked") == {rp.origin_text(late_origin): 1},
              "the node's status does not show the revocation: %r" % node.api.status().get("revoked"))
        compare(node, client, "a revocation left the late device's #2 and #3 out on both sides")

        # The node writes on top of everything, this client pulls it.
        node.api.call("set", {"path": "after.late", "value": 1})
        client.pull_all()
        compare(node, client, "the node's call after the late updates")

        receiving_checks(node, client)
        verification_checks(node, client)
        serving_checks(node, client, node_device_id, secure)
        compression_checks(node, client, node_device_id)
        if secure:
            hello_signature_checks(node, client, node_device_id, cluster)
        negative_checks(node, client, node_device_id, cluster)
        fork_evidence_checks(node, client, node_device_id, secure)

        # After a restart the node replays from its log (and checkpoints): same hash.
        node.stop()
        r = node.cli("verify", ok=False)
        check(r.returncode == 0, "replog verify: %s" % (r.stdout + r.stderr).decode(errors="replace"))
        node.start()
        compare(node, client, "after the node's restart")
        client.peer.close()
        client.peer = None
    except BaseException:
        print("---- node log (%s) ----\n%s" % (mode, node.log_text()[-6000:]), flush=True)
        raise
    finally:
        if client is not None and client.peer is not None:
            client.peer.close()
        try:
            node.stop()
        finally:
            node.kill()


def main():
    global DEADLINE
    head, _, rest = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(description=head, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=rest)
    p.add_argument("replog", help="the replog binary")
    p.add_argument("--secure-only", action="store_true", help="run only the CURVE mode")
    p.add_argument("--insecure-only", action="store_true", help="run only the --insecure mode")
    p.add_argument("--timeout", type=float, default=120, help="bound on the whole run, s (default 120)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = p.parse_args()
    DEADLINE = time.monotonic() + a.timeout
    replog = os.path.abspath(a.replog)
    tmp = tempfile.mkdtemp(prefix="replog-interop-")
    modes = [m for m, skip in ((True, a.insecure_only), (False, a.secure_only)) if not skip]
    ok = False
    try:
        # Self-checks of the pieces the documents give test vectors for.
        check(rp.device_id(bytes(range(32))) == "AAAQEAY-EAUDAO5-CAJBIFQ-YDIOB4T-IBCEQTC-QKRMFYR-YDENBWH-A5DYPQE",
              "PROTOCOL.md §6 test vector")
        check(rp.device_id(bytes(32)) == "-".join(["AAAAAAA"] * 8), "PROTOCOL.md §6 zero key")
        check(rp.encode(Enum("C", "R")).hex() == "c7050192a143a152", "VALUES.md enum example")
        check(rp.encode(rp.State().data) == b"\x80", "empty map")
        signed_origin_vectors()
        for secure in modes:
            run_mode(replog, tmp, secure)
        ok = True
        step("PASS")
    except TestFailure as e:
        step("FAIL: %s" % e)
    except Exception:
        traceback.print_exc()
        step("FAIL: unexpected exception")
    finally:
        if a.keep:
            step("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

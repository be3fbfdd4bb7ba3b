"""Shared helpers for the cluster tests: real `replog node` processes on loopback.

Every test script is run as
    /usr/bin/python3 tests/cluster/<test>.py PATH_TO_REPLOG
and uses `run(test_function)` from here, which makes a Cluster (temp dirs,
processes, proxies), runs the test, prints the node logs when it fails, and always
stops every process it started and removes its temp dirs.

Only behaviour that PROTOCOL.md and docs/ describe is asserted. Reads go through the CLI
(`replog status --json`, `replog state --hash`), which asks the running node's
local API; bulk calls go through tools/replog_client.py.
"""
import atexit
import copy
import ctypes
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))

import msgpack  # noqa: E402

import replog_client  # noqa: E402

POLL_S = 0.1            # polling interval while waiting
CONVERGE_S = 20.0       # default bound on waiting for convergence
ANTI_ENTROPY_MS = 200


class TestFailure(Exception):
    pass


def step(text):
    """Print what the test checks now (with a timestamp relative to the start)."""
    print("[%6.2f s] %s" % (time.monotonic() - _T0, text), flush=True)


_T0 = time.monotonic()


def seed_random():
    """Seeds `random` from REPLOG_SEED when set, else from a fresh seed, and prints it:
    a failing run's random choices are replayed by setting REPLOG_SEED."""
    env = os.environ.get("REPLOG_SEED")
    seed = int(env) if env else random.SystemRandom().randrange(1 << 63)
    random.seed(seed)
    print("seed: %d (rerun with REPLOG_SEED=%d)" % (seed, seed), flush=True)
    return seed


SEED = seed_random()


def check(cond, message):
    if not cond:
        raise TestFailure(message)


_ports_given = set()


def free_port():
    """A loopback TCP port that is free now and was not given out before in this run.
    The kernel may hand a closed port out again, so a node that is down (and so not
    holding its port) could otherwise lose it to a node made later."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise TestFailure("no loopback port left that was not given out before")


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the node gets SIGKILL if this driver dies without cleaning up.
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def trust_each_other(nodes):
    """Every node secure and trusting every other's device key (`replog trust add`);
    returns their device ids by name."""
    ids = {n.name: n.device_id() for n in nodes}
    for n in nodes:
        n.secure = True
        for m in nodes:
            if m is not n:
                n.cli("trust", "add", ids[m.name], "--name", m.name)
    return ids


def wait_until(pred, what, timeout=CONVERGE_S, interval=POLL_S, on_timeout=None):
    """Polls pred() until it returns a truthy value; fails with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last_error = None
        except TestFailure:
            raise
        except Exception as e:  # a node between restarts, a CLI that failed once
            last_error = e
        if time.monotonic() >= deadline:
            detail = on_timeout() if on_timeout else ""
            raise TestFailure("timed out after %.0f s waiting for %s%s%s" % (
                timeout, what, (": " + detail) if detail else "",
                ("; last error: %s" % last_error) if last_error else ""))
        time.sleep(interval)


# --- bulk updates (PROTOCOL.md §1, docs/STORAGE.md "Update body") ----------------------------

def make_hlc(ms, logical=0):
    return (ms << 16) | logical


def encode_body(seq, method, arg):
    """body = [seq, method: str, arg: bin (the MessagePack of the argument value)]."""
    return msgpack.packb([seq, method, replog_client.pack(arg)], use_bin_type=True)


def encode_update(hlc, origin, body):
    """An update as on the wire and in `replog export`: [hlc, origin, body: bin]."""
    return msgpack.packb([hlc, origin, body], use_bin_type=True)


# --- signed origins (PROTOCOL.md §8) ----------------------------------------------------------

HEAD_FINAL, HEAD_LEGACY = 1, 2
RESERVED_ORIGINS = (0, (1 << 64) - 1)


def blake2b256(data):
    return hashlib.blake2b(data, digest_size=32).digest()


def origin_id(key):
    """id(K): the first 8 bytes of BLAKE2b-256("replog-origin-v1" ‖ K), big-endian."""
    return int.from_bytes(blake2b256(b"replog-origin-v1" + key)[:8], "big")


def chain_start(cluster, key):
    """c_0 = BLAKE2b-256("replog-chain-v1" ‖ u8(len(cluster)) ‖ cluster ‖ K)."""
    c = cluster.encode()
    return blake2b256(b"replog-chain-v1" + bytes([len(c)]) + c + key)


def chain_next(prev, key, hlc, body):
    """c_n = BLAKE2b-256(c_{n-1} ‖ K ‖ u64be(hlc_n) ‖ body_n)."""
    return blake2b256(prev + key + struct.pack(">Q", hlc) + body)


def head_message(origin, seq, chain, flags=0):
    """The 63 bytes a head's signature covers."""
    return b"replog-head-v1" + struct.pack(">QQ", origin, seq) + chain + bytes([flags])


def make_head(signing_key, origin, seq, chain, flags=0, key=None):
    """A head as a list ready for MessagePack: [origin, seq, chain, flags, signature], and
    `key` (32 bytes) as a sixth element when given. Signed by `signing_key` (a nacl
    SigningKey), whatever origin it names and whatever key it carries."""
    sig = signing_key.sign(head_message(origin, seq, chain, flags)).signature
    head = [origin, seq, chain, flags, sig]
    if key is not None:
        head.append(bytes(key))
    return head


def chain_over(cluster, key, envelopes, prev=None):
    """The chain values after each of `envelopes` ([hlc, origin, body], in seq order),
    chained under `key` from `prev` (default c_0 of `cluster` and `key`)."""
    c = chain_start(cluster, key) if prev is None else prev
    out = []
    for hlc, _, body in envelopes:
        c = chain_next(c, key, hlc, body)
        out.append(c)
    return out


def encode_head(head):
    """A head's encoding: a MessagePack array of 5 or 6 (shortest forms, bins)."""
    return msgpack.packb(list(head), use_bin_type=True)


class SignedOrigin:
    """A writer that holds an Ed25519 key: its origin id is derived from the key, and it
    keeps the chain value after each of its updates so that it can sign a head at any seq.
    `seed` (32 bytes) makes it repeatable; without one it is drawn from the seeded `random`."""

    def __init__(self, cluster, seed=None):
        from nacl.signing import SigningKey
        self.cluster = cluster
        while True:
            s = seed if seed is not None else random.getrandbits(256).to_bytes(32, "big")
            self.signing_key = SigningKey(s)
            self.key = bytes(self.signing_key.verify_key)
            self.origin = origin_id(self.key)
            if self.origin not in RESERVED_ORIGINS:
                break
            if seed is not None:
                raise ValueError("this seed's key has a reserved origin id")
        self.chains = [chain_start(cluster, self.key)]   # chains[n] = c_n
        self.updates = []                                 # envelopes [hlc, origin, body], seq order
        self.last_hlc = 0

    @property
    def seq(self):
        return len(self.updates)

    def append_body(self, hlc, body):
        """Chains one more update (its body must carry seq = self.seq + 1); returns the envelope."""
        self.chains.append(chain_next(self.chains[-1], self.key, hlc, body))
        u = [hlc, self.origin, body]
        self.updates.append(u)
        self.last_hlc = hlc
        return u

    def write(self, method, arg, hlc=None):
        """The next update of this origin (hlc: now, or just above the last one)."""
        if hlc is None:
            hlc = max(make_hlc(int(time.time() * 1000)), self.last_hlc + 1)
        return self.append_body(hlc, encode_body(self.seq + 1, method, arg))

    def head(self, seq=None, flags=0, with_key=False):
        """Signs the head at `seq` (default: the last update); `with_key` carries the key
        (due on a run that starts at seq 1)."""
        seq = self.seq if seq is None else seq
        return make_head(self.signing_key, self.origin, seq, self.chains[seq], flags,
                         key=self.key if with_key else None)

    def branch(self, seq):
        """Another writer with this key that holds only updates 1..seq: what it writes next
        is a second branch of this origin from seq + 1 (a fork, when both are signed)."""
        other = copy.copy(self)
        other.chains = self.chains[:seq + 1]
        other.updates = self.updates[:seq]
        other.last_hlc = other.updates[-1][0] if other.updates else 0
        return other


def generate_updates(path, count, cluster, start_ms=None, value_bytes=40, keys=1000,
                     head_every=1000, head_bytes=1 << 20):
    """Writes `count` valid `set` updates of one made-up signed origin (a device that only
    exported its log) in `replog export`'s MessagePack form: the update envelopes, then
    the heads that prove them (PROTOCOL.md §8): one at least every `head_every` updates and
    before the bodies since the last one pass `head_bytes`, one at the end, the first one
    carrying the key. `cluster` is the importing cluster's id (c_0 binds it); the key is
    drawn from the test's seeded random, so a rerun with the same seed repeats the file.
    Returns the origin id. Timestamps start 10 minutes in the past and rise by 1 ms every
    16 updates."""
    o = SignedOrigin(cluster)
    start_ms = start_ms or int(time.time() * 1000) - 600_000
    pad = "v" * value_bytes
    head_seqs, run_bytes = [], 0
    with open(path, "wb") as f:
        for i in range(count):
            seq = i + 1
            body = encode_body(seq, "set", {"path": "bulk.k%d" % (i % keys), "value": "%s%d" % (pad, i)})
            if run_bytes and run_bytes + len(body) > head_bytes:
                head_seqs.append(seq - 1)          # the run so far stays within head_bytes
                run_bytes = 0
            f.write(msgpack.packb(o.append_body(make_hlc(start_ms + i // 16, i % 16), body), use_bin_type=True))
            run_bytes += len(body)
            if seq - (head_seqs[-1] if head_seqs else 0) >= head_every or seq == count:
                head_seqs.append(seq)
                run_bytes = 0
        for n, seq in enumerate(head_seqs):
            f.write(encode_head(o.head(seq, with_key=(n == 0))))
    return o.origin


# --- TCP proxy -------------------------------------------------------------------------------

class Proxy:
    """A TCP forwarder on 127.0.0.1:port -> 127.0.0.1:target.

    block() cuts every open connection (both directions at once) and refuses new
    ones (accepted and closed at once) until unblock(). rate_bytes_s, when set,
    limits each direction of each connection to that many bytes per second."""

    def __init__(self, target_port, name="", rate_bytes_s=None):
        self.target_port = target_port
        self.name = name
        self.rate = rate_bytes_s
        self.blocked = False
        self.lock = threading.Lock()
        self.conns = set()
        self.closed = False
        self.accepted = 0
        self.refused = 0
        self.bytes_to_target = 0     # forwarded client -> target
        self.bytes_from_target = 0   # forwarded target -> client
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.blocked or self.closed:
                    self.refused += 1
                    _hard_close(client)
                    continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
                server.settimeout(None)
            except OSError:
                _hard_close(client)
                continue
            pair = (client, server)
            with self.lock:
                if self.blocked or self.closed:
                    _hard_close(client)
                    _hard_close(server)
                    continue
                self.accepted += 1
                self.conns.add(pair)
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(pair, src, dst), daemon=True).start()

    def _pump(self, pair, src, dst):
        sent, t0 = 0, time.monotonic()
        try:
            while True:
                data = src.recv(16384 if self.rate is None else min(16384, max(1024, self.rate // 20)))
                if not data:
                    break
                dst.sendall(data)
                if src is pair[0]:
                    self.bytes_to_target += len(data)
                else:
                    self.bytes_from_target += len(data)
                if self.rate:
                    sent += len(data)
                    ahead = sent / self.rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            pass
        finally:
            with self.lock:
                if pair in self.conns:
                    self.conns.discard(pair)
                    _hard_close(pair[0])
                    _hard_close(pair[1])

    def block(self):
        with self.lock:
            self.blocked = True
            conns = list(self.conns)
            self.conns.clear()
        for a, b in conns:
            _hard_close(a)
            _hard_close(b)

    def unblock(self):
        with self.lock:
            self.blocked = False

    def close(self):
        self.closed = True
        self.block()
        try:
            self.listener.close()
        except OSError:
            pass


def _hard_close(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


# --- nodes -------------------------------------------------------------------------------------

class Node:
    def __init__(self, cluster, name, data, port):
        self.cluster = cluster
        self.name = name
        self.data = data
        self.port = port
        self.listen = "tcp://127.0.0.1:%d" % port
        self.peers = []
        self.advertise = None
        self.extra_args = []
        self.wrapper = []       # a command the node runs under (e.g. env LD_PRELOAD=... for libfaketime)
        self.secure = False     # CURVE with the trust list, instead of --insecure
        self.proc = None
        self.log_path = os.path.join(cluster.tmp, name + ".log")
        self.node_id = None
        self.starts = 0

    # -- process
    def start(self, wait=True):
        check(self.proc is None or self.proc.poll() is not None, "%s is already running" % self.name)
        args = [self.cluster.replog, "node", "--data", self.data, "--listen", self.listen,
                "--anti-entropy-ms", str(ANTI_ENTROPY_MS)]
        if not self.secure:
            args.append("--insecure")
        elif "--discovery" not in self.extra_args:
            # Nodes on one host would hear each other's broadcasts and dial
            # addresses they do not listen on; tests that want discovery say so.
            args += ["--discovery", "off"]
        for p in self.peers:
            args += ["--peer", p]
        if self.advertise:
            args += ["--advertise", self.advertise]
        if "--http" not in self.extra_args:
            args += ["--http", "off"]  # the dashboard's tests ask for it (dashboard_util.with_http)
        args = list(self.wrapper) + args + self.extra_args
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(("---- start #%d: %s\n" % (self.starts, " ".join(args))).encode())
        log.flush()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     preexec_fn=_die_with_parent)
        log.close()
        if wait:
            self.wait_serving()
        return self

    def wait_serving(self, timeout=10):
        def serving():
            self.check_alive()
            c = replog_client.Client(self.data, timeout_ms=500)
            try:
                return c.status()["node_id"] == self.node_id
            finally:
                c.socket.close(0)
        wait_until(serving, "%s to serve its local API" % self.name, timeout=timeout)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None and not getattr(self, "_expect_exit", False):
            raise TestFailure("%s exited unexpectedly with code %s" % (self.name, self.proc.returncode))

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after `timeout` s. Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self._expect_exit = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("%s did not stop within %d s of SIGTERM (killed)" % (self.name, timeout))
        finally:
            self._expect_exit = False

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self._expect_exit = True
            self.proc.kill()
            self.proc.wait()
            self._expect_exit = False

    # -- CLI
    def cli(self, *args, check_rc=True, timeout=60):
        return self.cluster.cli(*args, "--data", self.data, check_rc=check_rc, timeout=timeout)

    def status(self):
        return json.loads(self.cli("status", "--json"))

    def hash(self):
        return self.cli("state", "--hash").strip()

    def vector(self):
        return self.status()["vector"]

    def count(self):
        return sum(self.vector().values())

    def call(self, method, arg):
        return self.cli("call", method, json.dumps(arg)).strip()

    def device_id(self):
        """What `replog id` prints: this node's device id."""
        return json.loads(self.cli("id", "--json"))["device_id"]

    def trusted(self):
        """`replog trust list --json`, by device id."""
        return {d["id"]: d for d in json.loads(self.cli("trust", "list", "--json"))}

    def client(self, timeout_ms=10000):
        return replog_client.Client(self.data, timeout_ms=timeout_ms)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class Cluster:
    def __init__(self, replog):
        self.replog = os.path.abspath(replog)
        self.tmp = tempfile.mkdtemp(prefix="replog-cluster-")
        self.nodes = []
        self.proxies = []
        self.services = []      # other processes a test started (close() stops each)
        self.cluster_id = None
        self.closed = False

    def cli(self, *args, check_rc=True, timeout=60):
        r = subprocess.run([self.replog, *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        if check_rc and r.returncode != 0:
            raise TestFailure("replog %s failed (exit %d): %s%s" % (
                " ".join(args), r.returncode, r.stderr.decode(errors="replace").strip(),
                r.stdout.decode(errors="replace").strip()[:500]))
        return r.stdout.decode()

    def add_node(self, name=None, peers=(), port=None):
        """Makes a data directory (`replog init`; the first one makes the cluster id)."""
        name = name or "n%d" % len(self.nodes)
        data = os.path.join(self.tmp, name)
        node = Node(self, name, data, port or free_port())
        if self.cluster_id is None:
            self.cli("init", "--data", data)
            self.cluster_id = node.status()["cluster_id"]
        else:
            self.cli("init", "--data", data, "--cluster", self.cluster_id)
        node.node_id = node.status()["node_id"]
        node.peers = list(peers)
        self.nodes.append(node)
        return node

    def add_proxy(self, target_port, name="", rate_bytes_s=None):
        p = Proxy(target_port, name, rate_bytes_s)
        self.proxies.append(p)
        return p

    def check_alive(self):
        for n in self.nodes:
            n.check_alive()

    # -- convergence
    def snapshot(self, nodes):
        return {n.name: n.status() for n in nodes}

    def describe(self, nodes):
        lines = []
        for n in nodes:
            try:
                s = n.status()
                peers = ", ".join("%s%s lack %d/%d" % (p["node_id"], "" if p["ready"] else " (not ready)",
                                                       p["we_lack"], p["they_lack"]) for p in s.get("peers", []))
                lines.append("%s: %d updates, hash %s..., vector %s, peers [%s]" % (
                    n.name, s["updates"], s["state_hash"][:12], json.dumps(s["vector"], sort_keys=True), peers))
            except Exception as e:
                lines.append("%s: status failed: %s" % (n.name, e))
        return "\n  " + "\n  ".join(lines)

    def wait_converged(self, nodes=None, expected=None, timeout=CONVERGE_S):
        """Waits until every node reports the same vector (equal to `expected`, a map
        origin hex -> seq, when given) and the same state hash. Returns the hash."""
        nodes = nodes or self.nodes
        expected = {k: v for k, v in (expected or {}).items() if v} if expected is not None else None

        def below_forks(vector, evidence):
            # An origin proved forked at seq f is left out of replay from f on,
            # whichever branch (and however much of it) a node holds: nodes
            # agree on what lies below f (PROTOCOL.md §2, "Receiving").
            v = {}
            for origin, seq in vector.items():
                if origin in evidence:
                    seq = min(seq, evidence[origin] - 1)
                if seq:
                    v[origin] = seq
            return v

        def converged():
            self.check_alive()
            sts = [n.status() for n in nodes]
            evidence = sts[0].get("fork_evidence") or {}
            if any((s.get("fork_evidence") or {}) != evidence for s in sts):
                return False
            vectors = [below_forks(s["vector"], evidence) for s in sts]
            if any(v != vectors[0] for v in vectors):
                return False
            want = below_forks(expected, evidence) if expected is not None else None
            if want is not None and vectors[0] != want:
                if any(vectors[0].get(o, 0) > seq for o, seq in want.items()) or \
                        set(vectors[0]) - set(want):
                    raise TestFailure("vectors went past the calls made: %s, expected %s" % (
                        json.dumps(vectors[0], sort_keys=True), json.dumps(expected, sort_keys=True)))
                return False
            hashes = {s["state_hash"] for s in sts}
            return len(hashes) == 1 and hashes.pop()

        step("waiting (up to %.0f s) for %s to converge%s" % (
            timeout, ", ".join(n.name for n in nodes), " on " + json.dumps(expected, sort_keys=True) if expected else ""))
        t0 = time.monotonic()
        h = wait_until(converged, "convergence", timeout=timeout, on_timeout=lambda: self.describe(nodes))
        step("converged after %.2f s, state hash %s" % (time.monotonic() - t0, h))
        return h

    def wait_peers_in_sync(self, neighbours, timeout=10):
        """`neighbours`: node -> the nodes it should list as peers. Waits until each lists
        every one of them as ready, with we_lack = they_lack = 0 (the sync status users see)."""
        def in_sync():
            for n, want in neighbours.items():
                peers = {p["node_id"]: p for p in n.status()["peers"] if p["ready"]}
                for m in want:
                    p = peers.get(m.node_id)
                    if p is None or p["we_lack"] or p["they_lack"]:
                        return False
            return True
        listed = list(neighbours)
        wait_until(in_sync, "every node to show its peers ready and in sync (we_lack = they_lack = 0)",
                   timeout=timeout, on_timeout=lambda: self.describe(listed))
        step("status: every node lists its peers as ready, we_lack = they_lack = 0")

    def check_final(self, nodes=None, expected=None):
        """Asserts what every converged node reports: equal `replog state --hash`, the
        vector equal to `expected` and `updates` equal to its sum (nothing stored twice)."""
        nodes = nodes or self.nodes
        hashes = {n.name: n.hash() for n in nodes}
        step("replog state --hash: %s" % json.dumps(hashes))
        check(len(set(hashes.values())) == 1, "state hashes differ: %s" % hashes)
        for n in nodes:
            s = n.status()
            if expected is not None:
                exp = {k: v for k, v in expected.items() if v}
                check(s["vector"] == exp, "%s: vector %s, expected %s (calls made)" % (
                    n.name, json.dumps(s["vector"], sort_keys=True), json.dumps(exp, sort_keys=True)))
            check(s["updates"] == sum(s["vector"].values()),
                  "%s: %d updates stored but the vector sums to %d" % (n.name, s["updates"], sum(s["vector"].values())))
            check(not s["forks"], "%s reports forks: %s" % (n.name, s["forks"]))
            check(not s["former_origins"], "%s left its origin: %s" % (n.name, s["former_origins"]))
        step("every node: same hash, vector %s, updates = sum of the vector, no forks"
             % ("= calls made" if expected is not None else "equal"))
        return hashes[nodes[0].name]

    def verify_offline(self, nodes=None):
        """After the nodes stopped: `replog verify` replays each log from scratch."""
        for n in nodes or self.nodes:
            out = n.cli("verify", check_rc=False)
            check(out.startswith("ok"), "%s: replog verify: %s" % (n.name, out.strip()))
        step("replog verify: ok on %s" % ", ".join(n.name for n in nodes or self.nodes))

    # -- teardown
    def stop_all(self):
        errors = []
        for n in self.nodes:
            try:
                code = n.stop()
                if code not in (None, 0):
                    errors.append("%s exited with code %s" % (n.name, code))
            except TestFailure as e:
                errors.append(str(e))
        return errors

    def close(self, keep=False):
        if self.closed:
            return
        self.closed = True
        for p in self.proxies:
            p.close()
        for n in self.nodes:
            try:
                n.stop(timeout=5)
            except Exception:
                n.kill()
        for s in self.services:
            try:
                s.close()
            except Exception:
                pass
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def print_logs(self, tail=80):
        for n in self.nodes:
            lines = n.log_text().splitlines()
            print("---- %s log (%s), last %d of %d lines" % (n.name, n.log_path, min(tail, len(lines)), len(lines)))
            for line in lines[-tail:]:
                print("  " + line)


class Writer(threading.Thread):
    """Calls methods on one node through its own API client (one REQ socket per thread)
    until `count` calls were acknowledged or stop() is called. `acked` counts the calls
    that returned an update id; `errors` keeps the failures."""

    def __init__(self, node, make_call, count=None, pause=0.0, timeout_ms=10000):
        super().__init__(daemon=True)
        self.node, self.make_call, self.count, self.pause = node, make_call, count, pause
        self.timeout_ms = timeout_ms
        self.acked = 0
        self.attempted = 0
        self.errors = []
        self._stop_event = threading.Event()

    def run(self):
        client = None
        try:
            client = self.node.client(self.timeout_ms)
            i = 0
            while not self._stop_event.is_set() and (self.count is None or self.acked < self.count):
                method, arg = self.make_call(i)
                self.attempted += 1
                try:
                    client.call(method, arg)
                    self.acked += 1
                except Exception as e:
                    self.errors.append(repr(e))
                    return  # a REQ socket without its reply is unusable: stop here
                i += 1
                if self.pause:
                    time.sleep(self.pause)
        except Exception as e:
            self.errors.append(repr(e))
        finally:
            if client is not None:
                client.socket.close(0)

    def stop(self):
        self._stop_event.set()
        self.join(30)

    @property
    def in_flight(self):
        return self.attempted - self.acked


def run(test, keep_env="REPLOG_CLUSTER_KEEP"):
    """Runs test(cluster) with cleanup; exits 0 on success, 1 on failure."""
    if len(sys.argv) < 2:
        print("usage: %s PATH_TO_REPLOG" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    cluster = Cluster(sys.argv[1])
    keep = bool(os.environ.get(keep_env))
    atexit.register(cluster.close, keep)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    name = os.path.basename(sys.argv[0])
    step("%s: data under %s" % (name, cluster.tmp))
    ok = False
    try:
        test(cluster)
        errors = cluster.stop_all()
        check(not errors, "; ".join(errors))
        ok = True
    except TestFailure as e:
        print("FAIL: %s (seed %d: rerun with REPLOG_SEED=%d)" % (e, SEED, SEED), flush=True)
    except BaseException:  # an error in the test itself, or a signal
        print("FAIL: unexpected error", flush=True)
        traceback.print_exc()
    finally:
        if not ok:
            cluster.stop_all()
            cluster.print_logs()
            if keep:
                print("kept %s" % cluster.tmp)
        cluster.close(keep=keep)
    step("%s: %s" % (name, "PASS" if ok else "FAILED"))
    sys.exit(0 if ok else 1)

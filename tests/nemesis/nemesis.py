#!/usr/bin/python3
"""Nemesis.FiveNodesSurviveKillsStopsPartitionsAndClocks: five `replog node`
processes, each in a network namespace of its own, each with a writer that calls
through the CLI the way people do, under a seeded nemesis; then heal, converge
and check with checker.py (which shares no code with the node or with this file).

    nemesis.py PATH_TO_REPLOG [--seconds N] [--seed S] [--beyond-skew] [--keep]

The world: a namespace `rnm<pid>h` holding a bridge, and five namespaces
`rnm<pid>n0..4`, each with one veth (10.77.0.11..15/24) on that bridge and an
nftables table `inet nemesis` whose set `cut` holds the addresses it may not
talk to (input and output both dropped). Node i listens on 10.77.0.1<i+1>:7700
and names the other four as peers. Its writer runs, in a loop,
    ip netns exec NS replog call --data DIR --json set '{"path": ..., "value": UNIQUE}'
and records each exit 0 (the printed update id) in acks-w<i>.jsonl.

The nemesis (random.Random(seed): the same seed gives the same schedule of faults,
not the same interleaving of processes) does, for --seconds:
  kill       SIGKILL a node and start it again at once, or after 0.2-1.5 s so that
             its writer's `replog call` takes the directory directly and the new
             node waits for that call's lock (--lock-wait);
  stop       SIGSTOP a node, SIGCONT it 1-8 s later;
  partition  one node isolated, a 2|3 split, or a bridge node that sees both sides
             of a split; healed 2-10 s later or replaced by the next one;
  clock      restart a node (SIGTERM) under libfaketime with a new offset within
             +-skew/2 (--max-clock-skew is 60 s here), so any two clocks stay within
             the skew limit; its writer's calls run under the same offset. With
             --beyond-skew the first of them is skew + 10 s ahead instead (the others
             refuse that node's updates until their clocks catch up).
Then: writers stop; partitions healed, every node SIGCONTed, delayed restarts done.
A node found not running that the nemesis did not stop on purpose is a failure
(and is counted whenever it is found, during the run too). Then the nodes must
converge (equal vectors and state hashes in `replog status --json`) within
--converge-timeout; `replog log --json` of every node and the writers' acks go to
checker.py; lost, duplicated, reordered, mismatched, gaps, divergent, nodes found
down or unclean stops above 0 fail the run. The checker is then fed a doctored
copy of the run (one acknowledged entry dropped, one duplicated) and must report
exactly one lost and one duplicated. Finally every node is stopped with SIGTERM
(exit 0 expected) and `replog verify` replays each directory.

Exits 77 with one line when namespaces or nftables cannot be had (not root, no
`ip netns`, no `nft`). Prints REPLOG_SEED and, at the end, one summary line with
the command that replays the schedule.
"""
import argparse
import atexit
import ctypes
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import checker  # noqa: E402

SKIP = 77
NODES = 5
PORT = 7700
SUBNET = "10.77.0."
SKEW_MS = 60_000
ANTI_ENTROPY_MS = 500
CALL_TIMEOUT_S = 45        # a call to a stopped node fails after the CLI's 30 s API timeout
MAX_STEPS = 100_000        # bound on nemesis steps, whatever --seconds says
MAX_CALLS_PER_WRITER = 100_000
FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/faketime/libfaketimeMT.so.1"]

_T0 = time.monotonic()
_libc = ctypes.CDLL(None, use_errno=True)


class Skip(Exception):
    pass


class Failure(Exception):
    pass


def say(text):
    print("[%7.2f s] %s" % (time.monotonic() - _T0, text), flush=True)


def die_with_parent():
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def run(args, check=True, timeout=30, input_text=None):
    r = subprocess.run(args, input=input_text, capture_output=True, text=True, timeout=timeout,
                       stdin=None if input_text is not None else subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise Failure("%s: exit %d: %s" % (" ".join(args), r.returncode, (r.stderr or r.stdout).strip()[:300]))
    return r


# --- the network ---------------------------------------------------------------------------------

NFT_TABLE = """
table inet nemesis {
  set cut { type ipv4_addr; }
  chain input { type filter hook input priority 0; policy accept; ip saddr @cut drop; }
  chain output { type filter hook output priority 0; policy accept; ip daddr @cut drop; }
}
"""


class Net:
    """A hub namespace with a bridge, and one namespace per node on it."""

    def __init__(self, tag, count):
        self.hub = "rnm%sh" % tag
        self.ns = ["rnm%sn%d" % (tag, i) for i in range(count)]
        self.addr = [SUBNET + str(11 + i) for i in range(count)]
        self.made = []
        self.cuts = [set() for _ in range(count)]

    def make(self):
        for ns in [self.hub] + self.ns:
            r = run(["ip", "netns", "add", ns], check=False)
            if r.returncode != 0:
                raise Skip("cannot make a network namespace (ip netns add: %s)" % r.stderr.strip())
            self.made.append(ns)
        h = ["ip", "-n", self.hub]
        run(h + ["link", "add", "br0", "type", "bridge"])
        run(h + ["link", "set", "br0", "up"])
        for i, ns in enumerate(self.ns):
            run(h + ["link", "add", "v%d" % i, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(h + ["link", "set", "v%d" % i, "master", "br0", "up"])
            n = ["ip", "-n", ns]
            run(n + ["addr", "add", self.addr[i] + "/24", "dev", "eth0"])
            run(n + ["link", "set", "eth0", "up"])
            run(n + ["link", "set", "lo", "up"])
            r = run(["ip", "netns", "exec", ns, "nft", "-f", "-"], check=False, input_text=NFT_TABLE)
            if r.returncode != 0:
                raise Skip("cannot load an nftables table in a namespace (nft: %s)" % r.stderr.strip()[:200])

    def set_cuts(self, cuts):
        """cuts[i]: the node indexes node i may not talk to (made symmetric by the caller)."""
        for i, ns in enumerate(self.ns):
            if cuts[i] == self.cuts[i]:
                continue
            script = "flush set inet nemesis cut\n"
            if cuts[i]:
                script += "add element inet nemesis cut { %s }\n" % ", ".join(self.addr[j] for j in sorted(cuts[i]))
            run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input_text=script)
            self.cuts[i] = set(cuts[i])

    def heal(self):
        self.set_cuts([set() for _ in self.ns])

    def destroy(self):
        for ns in reversed(self.made):
            run(["ip", "netns", "del", ns], check=False)
        self.made = []


def remove_stale_namespaces():
    """Namespaces of an earlier run whose driver is gone (killed before its cleanup)."""
    r = run(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"^(rnm(\d+)[hn]\d*)\b", line)
        if m and not os.path.exists("/proc/%s" % m.group(2)):
            run(["ip", "netns", "del", m.group(1)], check=False)


# --- nodes and writers ----------------------------------------------------------------------------

class Node:
    def __init__(self, d, i):
        self.d, self.i = d, i
        self.name = "n%d" % i
        self.ns = d.net.ns[i]
        self.data = os.path.join(d.tmp, self.name)
        self.log_path = os.path.join(d.tmp, self.name + ".log")
        self.proc = None
        self.offset_s = 0.0      # this device's clock offset (node and its writer's CLI)
        self.down_on_purpose = False
        self.stopped = False
        self.starts = 0

    def env_args(self):
        if not self.offset_s:
            return []
        return ["env", "LD_PRELOAD=" + self.d.faketime, "FAKETIME=%+.1f" % self.offset_s,
                "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_NO_CACHE=1"]

    def start(self):
        peers = []
        for j, a in enumerate(self.d.net.addr):
            if j != self.i:
                peers += ["--peer", "tcp://%s:%d" % (a, PORT)]
        args = (["ip", "netns", "exec", self.ns] + self.env_args() +
                [self.d.replog, "node", "--data", self.data, "--listen", "tcp://%s:%d" % (self.d.net.addr[self.i], PORT),
                 "--insecure", "--anti-entropy-ms", str(ANTI_ENTROPY_MS), "--max-clock-skew", str(SKEW_MS)] + peers)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(("---- start #%d (clock %+.1f s): %s\n" % (self.starts, self.offset_s, " ".join(args))).encode())
            log.flush()
            # `ip netns exec` and `env` exec the node: proc.pid is the node's pid.
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=die_with_parent)
        self.down_on_purpose = False
        self.stopped = False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        if self.proc is not None:
            self.down_on_purpose = True
            self.signal(signal.SIGKILL)
            self.proc.wait(10)
            self.stopped = False

    def terminate(self, timeout=15):
        """SIGCONT + SIGTERM; returns the exit code, or None when it had to be killed."""
        if not self.running():
            return self.proc.returncode if self.proc else 0
        self.down_on_purpose = True
        self.signal(signal.SIGCONT)
        self.stopped = False
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)
            return None

    def cli(self, *args, timeout=30, check=True):
        return run([self.d.replog, *args, "--data", self.data], timeout=timeout, check=check)

    def status(self):
        return json.loads(self.cli("status", "--json", timeout=10).stdout)

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace").splitlines()[-lines:]
        except OSError:
            return []


class Writer(threading.Thread):
    """Calls `replog call` on its node, one at a time, until stopped."""

    def __init__(self, d, node, seed):
        super().__init__(daemon=True)
        self.d, self.node = d, node
        self.rng = random.Random("%d-writer-%d" % (seed, node.i))
        self.seed = seed
        self.acks_path = os.path.join(d.tmp, "acks-w%d.jsonl" % node.i)
        self.attempts_path = os.path.join(d.tmp, "attempts-w%d.jsonl" % node.i)
        self.stop_event = threading.Event()
        self.proc = None
        self.lock = threading.Lock()
        self.acked = self.failed = self.timed_out = 0
        self.errors = {}

    def run(self):
        n = 0
        with open(self.acks_path, "a") as acks, open(self.attempts_path, "a") as attempts:
            while not self.stop_event.is_set() and n < MAX_CALLS_PER_WRITER:
                n += 1
                value = "s%d-w%d-%d" % (self.seed, self.node.i, n)
                path = "nem.shared" if self.rng.random() < 0.2 else "nem.w%d.k%d" % (self.node.i, self.rng.randrange(20))
                attempts.write(json.dumps({"value": value}) + "\n")
                attempts.flush()
                args = (["ip", "netns", "exec", self.node.ns] + self.node.env_args() +
                        [self.d.replog, "call", "--data", self.node.data, "--json", "set",
                         json.dumps({"path": path, "value": value})])
                t0 = time.time()
                with self.lock:
                    if self.stop_event.is_set():
                        break
                    self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                 stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
                try:
                    out, err = self.proc.communicate(timeout=CALL_TIMEOUT_S)
                    rc = self.proc.returncode
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    out, err = self.proc.communicate()
                    rc, err = None, "killed after %d s" % CALL_TIMEOUT_S
                if rc == 0:
                    try:
                        uid = json.loads(out)["id"]
                    except (ValueError, KeyError):
                        uid = None
                    acks.write(json.dumps({"value": value, "id": uid, "t0": t0, "t1": time.time()}) + "\n")
                    acks.flush()
                    self.acked += 1
                else:
                    self.failed += 1
                    if rc is None:
                        self.timed_out += 1
                    last = (err.strip().splitlines() or ["exit %s" % rc])[-1]
                    reason = re.sub(r"\d+", "N", last)[:120]
                    self.errors[reason] = self.errors.get(reason, 0) + 1
                    say("%s: call %s failed after %.1f s (started at %.2f s): %s" % (
                        self.node.name, value, time.time() - t0, t0 - self.d.wall0, last[:200]))
                self.stop_event.wait(self.d.pause)

    def stop(self):
        self.stop_event.set()

    def kill_call(self):
        with self.lock:
            self.stop_event.set()
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()


# --- the driver -----------------------------------------------------------------------------------

class Driver:
    def __init__(self, opts):
        self.opts = opts
        self.replog = os.path.abspath(opts.replog)
        self.seed = opts.seed
        self.rng = random.Random(self.seed)
        self.tmp = tempfile.mkdtemp(prefix="replog-nemesis-")
        self.net = Net(str(os.getpid()), NODES)
        self.nodes = []
        self.writers = []
        self.faketime = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
        self.pause = 0.05
        self.counts = {"kills": 0, "delayed_restarts": 0, "stops": 0, "partitions": 0, "clock_offsets": 0,
                       "beyond_skew": 0, "nodes_down": 0, "unclean_stops": 0}
        self.pending = []        # (due, kind, node index)
        self.partition_until = None
        self.cleaned = False
        self.t_heal = None
        self.wall0 = time.time() - (time.monotonic() - _T0)  # wall time of the driver's [0.00 s]
        self.writers_stop_s = 0.0
        self.cut_at_heal = 0

    # -- setup
    def check_world(self):
        if os.geteuid() != 0:
            raise Skip("needs root for network namespaces")
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                raise Skip("no `%s` (tools/deps.sh installs iproute2 and nftables)" % tool)
        if not os.access(self.replog, os.X_OK):
            raise Failure("no replog program at %s" % self.replog)

    def setup(self):
        remove_stale_namespaces()
        self.net.make()
        say("namespaces %s + hub %s, addresses %s, nft table inet nemesis in each"
            % (",".join(self.net.ns), self.net.hub, ",".join(self.net.addr)))
        self.nodes = [Node(self, i) for i in range(NODES)]
        first = self.nodes[0]
        run([self.replog, "init", "--data", first.data])
        cluster = first.status()["cluster_id"]
        for n in self.nodes[1:]:
            run([self.replog, "init", "--data", n.data, "--cluster", cluster])
        for n in self.nodes:
            n.start()
        self.wait_serving(self.nodes, 20)
        say("five nodes serving; clock offsets %s" % (
            "by libfaketime (%s)" % os.path.basename(self.faketime) if self.faketime else
            "OFF: libfaketime not found (tools/deps.sh installs faketime)"))

    def wait_serving(self, nodes, timeout):
        deadline = time.monotonic() + timeout
        left = list(nodes)
        while left and time.monotonic() < deadline:
            left = [n for n in left if not (n.running() and os.path.exists(os.path.join(n.data, "api.endpoint"))
                                             and n.cli("status", "--json", timeout=5, check=False).returncode == 0)]
            if left:
                time.sleep(0.2)
        if left:
            raise Failure("not serving after %d s: %s" % (timeout, ", ".join(n.name for n in left)))

    # -- the faults
    def due(self, now):
        keep = []
        for when, kind, i in sorted(self.pending):
            if when > now:
                keep.append((when, kind, i))
                continue
            n = self.nodes[i] if i is not None else None
            if kind == "cont" and n.stopped:
                n.signal(signal.SIGCONT)
                n.stopped = False
            elif kind == "restart" and n.down_on_purpose and not n.running():
                n.start()
            elif kind == "heal_net":
                self.net.heal()
                say("partition healed")
        self.pending = keep

    def check_nodes(self, when):
        for n in self.nodes:
            if not n.running() and not n.down_on_purpose:
                self.counts["nodes_down"] += 1
                say("FOUND DOWN %s: %s (exit %s); last log lines:\n    %s" % (
                    n.name, when, n.proc.returncode if n.proc else None, "\n    ".join(n.log_tail(15))))
                n.start()

    def act(self):
        r = self.rng
        kind = r.choices(["kill", "stop", "partition", "clock"], [3, 2, 3, 2])[0]
        i = r.randrange(NODES)
        n = self.nodes[i]
        now = time.monotonic()
        if kind == "kill":
            if not n.running():
                return
            delay = r.uniform(0.2, 1.5) if r.random() < 0.5 else 0.0
            n.kill()
            self.pending = [p for p in self.pending if p[2] != i or p[1] != "cont"]
            self.counts["kills"] += 1
            if delay:
                self.counts["delayed_restarts"] += 1
                self.pending.append((now + delay, "restart", i))
                say("kill %s (SIGKILL), restart in %.1f s" % (n.name, delay))
            else:
                n.start()
                say("kill %s (SIGKILL), restarted at once" % n.name)
        elif kind == "stop":
            if not n.running() or n.stopped:
                return
            n.signal(signal.SIGSTOP)
            n.stopped = True
            length = r.uniform(1, 8)
            self.pending.append((now + length, "cont", i))
            self.counts["stops"] += 1
            say("stop %s (SIGSTOP) for %.1f s" % (n.name, length))
        elif kind == "partition":
            shape = r.choice(["isolate", "split", "bridge"])
            order = list(range(NODES))
            r.shuffle(order)
            cuts = [set() for _ in range(NODES)]
            if shape == "isolate":
                a, b = order[:1], order[1:]
            else:
                a, b = order[:2], order[2:]
            bridge = order[-1] if shape == "bridge" else None
            for x in a:
                for y in b:
                    if y != bridge:
                        cuts[x].add(y)
                        cuts[y].add(x)
            self.net.set_cuts(cuts)
            length = r.uniform(2, 10)
            self.pending = [p for p in self.pending if p[1] != "heal_net"] + [(now + length, "heal_net", None)]
            self.counts["partitions"] += 1
            say("partition (%s) %s | %s%s for %.1f s" % (
                shape, ",".join("n%d" % x for x in a), ",".join("n%d" % y for y in b if y != bridge),
                (" with n%d seeing both" % bridge) if bridge is not None else "", length))
        elif kind == "clock":
            if self.faketime is None or not n.running():
                return
            beyond = self.opts.beyond_skew and self.counts["beyond_skew"] == 0
            if beyond:
                offset = SKEW_MS / 1000 + 10
                self.counts["beyond_skew"] += 1
            else:
                offset = round(r.uniform(-SKEW_MS / 2000, SKEW_MS / 2000), 1)
            code = n.terminate()
            if code != 0:
                self.counts["unclean_stops"] += 1
                say("UNCLEAN STOP %s: SIGTERM gave exit %s" % (n.name, code))
            self.pending = [p for p in self.pending if p[2] != i or p[1] != "cont"]
            n.offset_s = offset
            n.start()
            self.counts["clock_offsets"] += 1
            say("clock %s: restarted (SIGTERM) at %+.1f s%s" % (n.name, offset, " (beyond the skew limit)" if beyond else ""))

    def nemesis(self):
        end = time.monotonic() + self.opts.seconds
        steps = 0
        while steps < MAX_STEPS:
            now = time.monotonic()
            if now >= end:
                break
            steps += 1
            self.due(now)
            self.check_nodes("during the run")
            self.act()
            wait = min(self.rng.uniform(0.3, 2.5), max(0.0, end - time.monotonic()))
            # Wake for due events while waiting.
            stop_at = time.monotonic() + wait
            while time.monotonic() < stop_at:
                nxt = min([p[0] for p in self.pending] + [stop_at])
                time.sleep(max(0.0, min(nxt, stop_at) - time.monotonic()))
                self.due(time.monotonic())

    # -- heal, converge, check
    def heal(self):
        """Writers stop; processes heal (SIGCONT, delayed restarts) while any partition
        stays; once no call is in flight the network heals, and convergence is timed
        from that moment."""
        for w in self.writers:
            w.stop()
        self.pending = [p for p in self.pending if p[1] != "heal_net"]
        for n in self.nodes:
            if n.stopped:
                n.signal(signal.SIGCONT)
                n.stopped = False
        for when, kind, i in self.pending:
            n = self.nodes[i]
            if kind == "restart" and not n.running():
                n.start()
        self.pending = []
        t = time.monotonic()
        self.check_nodes("at heal time")
        say("every node SIGCONTed, delayed restarts done; waiting for the writers' last calls")
        deadline = t + CALL_TIMEOUT_S + 10
        for w in self.writers:
            w.join(max(0.1, deadline - time.monotonic()))
            if w.is_alive():
                w.kill_call()
                w.join(5)
        self.writers_stop_s = time.monotonic() - t
        cut = self.cut_at_heal = sum(len(c) for c in self.net.cuts) // 2
        self.net.heal()
        self.t_heal = time.monotonic()
        say("writers stopped after %.1f s (a call in flight waits for its reply up to the CLI's 30 s); "
            "healed %d cut links: no nft cuts left" % (self.writers_stop_s, cut))
        self.check_nodes("at heal time")
        self.wait_serving(self.nodes, 40)

    def converge(self):
        t0 = self.t_heal
        deadline = t0 + self.opts.converge_timeout
        last = None
        polls = 0
        while time.monotonic() < deadline and polls < 10_000:
            polls += 1
            try:
                sts = [n.status() for n in self.nodes]
                vectors = [s["vector"] for s in sts]
                hashes = {s["state_hash"] for s in sts}
                last = sts
                if all(v == vectors[0] for v in vectors) and len(hashes) == 1 and "" not in hashes \
                        and not any(s.get("state_pending") for s in sts):
                    took = time.monotonic() - t0
                    say("converged %.2f s after healing the network: %d updates, hash %s" % (
                        took, sts[0]["updates"], hashes.pop()[:16]))
                    for n, s in zip(self.nodes, sts):
                        if s.get("forks"):
                            raise Failure("%s reports forks: %s" % (n.name, s["forks"]))
                        if s.get("former_origins"):
                            say("note: %s moved to a fresh origin: %s" % (n.name, s["former_origins"]))
                    return took
            except (Failure, ValueError, subprocess.TimeoutExpired) as e:
                last = str(e)
            self.check_nodes("while converging")
            time.sleep(0.25)
        detail = "\n  ".join("%s: %s updates, hash %s, vector %s" % (
            n.name, s["updates"], s["state_hash"][:16], json.dumps(s["vector"], sort_keys=True))
            for n, s in zip(self.nodes, last)) if isinstance(last, list) else last
        raise Failure("no convergence within %d s of healing:\n  %s" % (self.opts.converge_timeout, detail))

    def check(self):
        for n in self.nodes:
            out = n.cli("log", "--json", timeout=60).stdout
            with open(os.path.join(self.tmp, "log-%s.jsonl" % n.name), "w") as f:
                f.write(out)
        logs, acks, attempted = checker.load_dir(self.tmp)
        result = checker.check(logs, acks, attempted)
        say("checker: " + checker.summary(result))
        for line in result["details"][:20]:
            say("  " + line)
        # The same checker on a doctored copy: one acknowledged entry dropped, one stored twice.
        victim = sorted(logs)[0]
        held = {(e.get("arg") or {}).get("value") for e in logs[victim]}
        acked = [a["value"] for lst in acks.values() for a in lst if a["value"] in held]
        if len(acked) >= 2:
            drop, twice = acked[0], acked[-1]
            doctored = dict(logs)
            doctored[victim] = [e for e in logs[victim] if (e.get("arg") or {}).get("value") != drop]
            copy = dict(next(e for e in logs[victim] if (e.get("arg") or {}).get("value") == twice))
            copy["seq"] += 1_000_000
            copy["id"] = copy["id"][:-16] + "%016x" % (int(copy["origin"], 16) ^ 1)
            doctored[victim].append(copy)
            d = checker.check(doctored, acks, attempted)
            say("checker on a doctored copy (%s: one acknowledged entry dropped, one stored twice): lost=%d "
                "duplicated=%d" % (victim, d["lost"], d["duplicated"]))
            if d["lost"] != result["lost"] + 1 or d["duplicated"] != result["duplicated"] + 1:
                self.counts["checker_blind"] = 1
                say("FAILURE: the checker did not count the doctored loss and duplicate")
        else:
            self.counts["checker_blind"] = 1
            say("FAILURE: fewer than 2 acknowledged calls, nothing to check")
        return result

    def finish(self):
        for n in self.nodes:
            code = n.terminate()
            if code != 0:
                self.counts["unclean_stops"] += 1
                say("UNCLEAN STOP %s: SIGTERM gave exit %s" % (n.name, code))
        bad = []
        for n in self.nodes:
            r = n.cli("verify", timeout=120, check=False)
            if r.returncode != 0 or not r.stdout.startswith("ok"):
                bad.append("%s: %s" % (n.name, (r.stdout + r.stderr).strip()[:200]))
        if bad:
            raise Failure("replog verify: " + "; ".join(bad))
        say("every node stopped by SIGTERM; replog verify: ok on all five")

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        for w in self.writers:
            w.kill_call()
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.signal(signal.SIGKILL)
                try:
                    n.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        for w in self.writers:
            w.join(5)
        self.net.destroy()
        if self.opts.keep:
            say("kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def replay_command(self):
        return "tools/nemesis.sh --seconds %d --seed %d%s" % (
            self.opts.seconds, self.seed, " --beyond-skew" if self.opts.beyond_skew else "")

    def main(self):
        self.check_world()
        say("REPLOG_SEED=%d: %d s of faults on %d nodes; replay: %s" % (
            self.seed, self.opts.seconds, NODES, self.replay_command()))
        self.setup()
        self.writers = [Writer(self, n, self.seed) for n in self.nodes]
        for w in self.writers:
            w.start()
        self.nemesis()
        self.heal()
        calls = {w.node.name: (w.acked, w.failed) for w in self.writers}
        say("writers: acknowledged/failed %s" % json.dumps(calls))
        for w in self.writers:
            for reason, count in sorted(w.errors.items(), key=lambda x: -x[1])[:3]:
                say("  %s failed %d x: %s" % (w.node.name, count, reason))
        took = self.converge()
        result = self.check()
        waited = sum(sum(1 for line in n.log_tail(100_000) if "locked by another writer" in line)
                     for n in self.nodes)
        self.finish()
        c = self.counts
        failed = result["failed"] or c["nodes_down"] or c["unclean_stops"] or c.get("checker_blind")
        say("%s nemesis: acknowledged=%d lost=%d duplicated=%d reordered=%d nodes_down=%d converge_s=%.2f (links cut at heal %d) "
            "kills=%d (delayed %d, node waited for a call's lock %d) stops=%d partitions=%d clock_offsets=%d%s "
            "unacknowledged=%d (stored %d) seed=%d replay: %s" % (
                "FAIL" if failed else "PASS", result["acknowledged"], result["lost"], result["duplicated"],
                result["reordered"], c["nodes_down"], took, self.cut_at_heal, c["kills"], c["delayed_restarts"], waited, c["stops"],
                c["partitions"], c["clock_offsets"], " (beyond skew %d)" % c["beyond_skew"] if self.opts.beyond_skew else "",
                sum(w.failed for w in self.writers), result["in_flight_stored"], self.seed, self.replay_command()))
        if self.opts.json:
            with open(self.opts.json, "w") as f:
                json.dump(dict(c, seed=self.seed, seconds=self.opts.seconds, converge_s=round(took, 2),
                               lock_waits=waited, writers_stop_s=round(self.writers_stop_s, 1), cut_at_heal=self.cut_at_heal, unacknowledged=sum(w.failed for w in self.writers),
                               **{k: result[k] for k in ("acknowledged", "lost", "duplicated", "reordered",
                                                         "mismatched", "gaps", "divergent", "in_flight_stored")}),
                          f, sort_keys=True)
        return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("replog")
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--converge-timeout", type=int, default=60)
    p.add_argument("--beyond-skew", action="store_true", help="one clock offset beyond the skew limit")
    p.add_argument("--keep", action="store_true", help="keep the temp directory (logs, acks)")
    p.add_argument("--json", help="write the figures to this file")
    opts = p.parse_args()
    if opts.seed is None:
        env = os.environ.get("REPLOG_SEED")
        opts.seed = int(env) if env else int.from_bytes(os.urandom(4), "little")
    opts.seconds = max(1, min(opts.seconds, 24 * 3600))
    d = Driver(opts)
    atexit.register(d.cleanup)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    code = 1
    try:
        code = d.main()
    except Skip as e:
        print("SKIP nemesis: %s" % e, flush=True)
        code = SKIP
    except Failure as e:
        say("FAIL nemesis (seed %d): %s; replay: %s" % (d.seed, e, d.replay_command()))
        for n in d.nodes:
            print("---- %s log, last lines" % n.name)
            print("  " + "\n  ".join(n.log_tail(30)))
        code = 1
    except BaseException as e:  # a signal, or a bug of this driver
        say("FAIL nemesis (seed %d): %s: %s; replay: %s" % (d.seed, type(e).__name__, e, d.replay_command()))
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        if code != 0 and code != SKIP and not opts.keep:
            opts.keep = bool(os.environ.get("REPLOG_NEMESIS_KEEP"))
        d.cleanup()
    sys.exit(code)


if __name__ == "__main__":
    main()

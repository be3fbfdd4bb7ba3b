#!/usr/bin/python3
"""A second implementation reads and writes replog's S3 archive: tests/interop/replog_archive.py,
written from docs/ARCHIVE.md and PROTOCOL.md alone, against archives the real `replog` writes
to a loopback s3rver, and must agree with it byte for byte.

  1. self-checks: crypto_kdf against libsodium itself (PyNaCl lacks it); seal and open round
     trips at chunk boundaries, the size rule, a flipped byte or another name refused;
  2. `replog init`, calls, `replog archive push`; before each later push this side writes
     the segment of the new range itself (from `replog export` and the data directory's
     identity.key and cluster.key), and the object replog uploads must be those bytes; one
     update is above 64 KiB so that a segment spans two chunks;
  3. after each push the reader lists (pages of 2 keys, so continuation tokens are used),
     opens, decodes and proves every segment, and its vector must be `replog status`'s;
     every segment re-encoded and resealed here from what it decoded must be its bytes;
  4. a second member directory (same cluster, cluster.key copied, both trusting each other)
     runs `replog archive compact`: the chain after it must be the one ARCHIVE.md §6's
     merging gives, its merged segment the one this side wrote before, the snapshot must
     verify (signer, seal, signature, name, state hash, heads) and its state hash must be
     this side's replay of the segments and `replog state --hash`; the snapshot re-encoded
     and resealed here must be its bytes; a reader that does not count the second device
     as a member refuses it;
  5. damage, each undone after: one byte flipped in a segment and in a snapshot, a segment
     copied under another segment's name and under a snapshot's name, a hole; the reader
     names each by its key, and `replog archive verify` fails on each damaged segment too.
     Names that are not the archive's are ignored.
  6. a fork: a copy of the first member's directory pushes its own next update first; the
     first member's push then archives the fork's evidence, which this side finds under the
     name its contents give, proves, and writes byte for byte.

    /usr/bin/python3 tests/interop/archive_interop_test.py PATH_TO_REPLOG [--seed N]
        [--timeout S] [--keep]

Exits 0 when every check holds, 1 with the reason when one fails. Every process it starts
is stopped before it exits.
"""
import argparse
import ctypes
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)

import msgpack  # noqa: E402

import interop_test as it  # noqa: E402
import replog_archive as ra  # noqa: E402
import replog_peer as rp  # noqa: E402
from interop_test import TestFailure, check, step  # noqa: E402

S3RVER = os.path.join(os.path.dirname(HERE), "s3", "node_modules", ".bin", "s3rver")
BUCKET = "replog-interop"
PREFIX = "archive/one"
# s3rver's own credentials: it checks the access key id (not the signature, so this side's
# requests go unsigned).
AWS_ENV = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER", "AWS_REGION": "us-east-1"}


class S3rver:
    def __init__(self, directory):
        self.directory, self.proc, self.port, self.output = directory, None, None, b""

    def start(self, timeout=20.0):
        if not os.access(S3RVER, os.X_OK):
            raise TestFailure("%s is missing: run tools/deps.sh (it installs s3rver with npm)" % S3RVER)
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        self.proc = subprocess.Popen([S3RVER, "--directory", self.directory, "--address", "127.0.0.1",
                                      "--port", "0", "--configure-bucket", BUCKET, "--silent"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env, preexec_fn=it._die_with_parent)
        deadline = time.monotonic() + timeout
        marker = b"listening on 127.0.0.1:"
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                self.output += chunk
                i = self.output.find(marker)
                if i >= 0:
                    digits = self.output[i + len(marker):].split(b"\n")[0].strip()
                    if digits.isdigit() and b"\n" in self.output[i:]:
                        self.port = int(digits)
                        return
        raise TestFailure("s3rver did not print its port: %r" % self.output[-500:])

    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc.stdout.close()
        self.proc = None


class Cli:
    def __init__(self, replog, env):
        self.replog, self.env = replog, env

    def __call__(self, *args, ok=True, timeout=60):
        it.check_time()
        r = subprocess.run([self.replog, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=self.env, timeout=timeout)
        if ok and r.returncode != 0:
            raise TestFailure("replog %s: exit %d\n%s%s" % (" ".join(args)[:200], r.returncode, r.stdout[-2000:],
                                                            r.stderr[-2000:]))
        return r


# ---------------------------------------------------------------------------------------------
# 1. Self-checks
# ---------------------------------------------------------------------------------------------

def self_checks(rng):
    step("self-checks: crypto_kdf against libsodium, sealing round trips")
    so = ctypes.CDLL("libsodium.so.23")
    check(so.sodium_init() >= 0, "sodium_init")
    for ctx, sub in (("archive0", 1), ("rlarchiv", 1), ("rlarchiv", 2)):
        master = bytes(rng.getrandbits(8) for _ in range(32))
        out = ctypes.create_string_buffer(32)
        check(so.crypto_kdf_derive_from_key(out, ctypes.c_size_t(32), ctypes.c_uint64(sub), ctx.encode(), master) == 0,
              "crypto_kdf_derive_from_key failed")
        check(out.raw == ra.kdf(master, ctx, sub), "kdf(%s, %d) differs from libsodium's crypto_kdf" % (ctx, sub))
    key = ra.ArchiveKey(bytes(rng.getrandbits(8) for _ in range(32)))
    other = ra.ArchiveKey(bytes(rng.getrandbits(8) for _ in range(32)))
    name = ra.segment_name(0x1234, 5, 9)
    for n in (0, 1, 65535, 65536, 65537, 2 * 65536 + 17):
        pt = bytes(rng.getrandbits(8) for _ in range(n))
        obj = ra.seal(key, ra.KIND_SEGMENT, ra.segment_context(0x1234, 5, 9), pt)
        check(len(obj) == ra.sealed_size(n) == 28 + n + max(1, -(-n // 65536)) * 40, "size rule at %d" % n)
        check(ra.open_sealed(name, obj, [other, key]) == pt, "round trip at %d" % n)
        check(ra.seal(key, ra.KIND_SEGMENT, ra.segment_context(0x1234, 5, 9), pt) == obj, "not deterministic")
        i = rng.randrange(len(obj))
        bad = bytearray(obj)
        bad[i] ^= 1 << rng.randrange(8)
        for what, nm, data, keys in (("a flipped byte at %d" % i, name, bytes(bad), [key]),
                                     ("another name", ra.segment_name(0x1234, 5, 10), obj, [key]),
                                     ("another key", name, obj, [other]),
                                     ("one byte short", name, obj[:-1], [key])):
            try:
                ra.open_sealed(nm, data, keys)
            except ra.ArchiveError as e:
                check(e.key == nm, "the refusal names %r, not %r" % (e.key, nm))
            else:
                raise TestFailure("an object with %s opened (%d bytes of plaintext)" % (what, n))


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def status(cli, data):
    return json.loads(cli("status", "--data", data, "--json").stdout)


def exported(cli, data, tmp, origin):
    """The origin's updates from `replog export` (MessagePack: envelopes with heads among them)."""
    path = os.path.join(tmp, "export.mpk")
    cli("export", "--data", data, "--file", path, "--origin", rp.origin_text(origin))
    with open(path, "rb") as f:
        items = list(msgpack.Unpacker(f, raw=False, strict_map_key=False, max_bin_len=rp.MAX_UPDATE))
    ups = [rp.Update(*e) for e in items if isinstance(e, list) and len(e) == 3]
    return ups


def listing(bucket):
    keys, _ = bucket.list("")
    return keys


def chain_of(report, origin):
    """The (first, last) spans of the origin's segments, sorted."""
    return sorted((s.first, s.last) for s in report.segments.values() if s.origin == origin)


def read_clean(reader, node_vector, what):
    rep = reader.read()
    check(not rep.problems, "%s: the reader found problems:\n  %s" % (what, "\n  ".join(map(str, rep.problems))))
    got = {rp.origin_text(o): s for o, s in rep.vector.items()}
    check(got == node_vector, "%s: the archive's vector %r is not the node's %r" % (what, got, node_vector))
    # Every segment and snapshot re-encoded and resealed here from what was decoded.
    key = reader.keys[0]
    for n, seg in rep.segments.items():
        pt = ra.encode_segment(seg.origin, seg.first, seg.last, seg.head, seg.updates)
        check(pt == rep.plaintexts[n], "%s: %s re-encoded here differs from its plaintext" % (what, n))
        check(ra.seal(key, ra.KIND_SEGMENT, ra.segment_context(seg.origin, seg.first, seg.last), pt) == rep.objects[n],
              "%s: %s resealed here differs from its bytes" % (what, n))
    return rep


def expect_refused(reader, key, what, cli=None, data=None, archive=None):
    rep = reader.read()
    check(key in rep.damaged, "%s: the reader did not name %s (problems: %s)" % (what, key, [str(p) for p in rep.problems]))
    step("  %s: refused: %s" % (what, next(str(p) for p in rep.problems if p.key == key)))
    if cli is not None:
        r = cli("archive", "verify", "--data", data, "--archive", archive, ok=False)
        check(r.returncode != 0, "%s: replog archive verify passed" % what)
        check(key in r.stdout + r.stderr, "%s: replog archive verify does not name %s:\n%s%s"
              % (what, key, r.stdout[-1500:], r.stderr[-1500:]))
    return rep


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

def run(replog, tmp, rng):
    s3 = S3rver(os.path.join(tmp, "s3"))
    os.makedirs(s3.directory)
    try:
        s3.start()
        step("s3rver on %s" % s3.endpoint())
        env = dict(os.environ, AWS_ENDPOINT_URL=s3.endpoint(), **AWS_ENV)
        env.pop("REPLOG_DATA", None)
        cli = Cli(replog, env)
        archive = "s3://%s/%s" % (BUCKET, PREFIX)
        bucket = ra.Bucket(s3.endpoint(), BUCKET, PREFIX)
        scenario(cli, tmp, archive, bucket, rng)
    finally:
        s3.stop()


def call(cli, d, rng, path=None, value=None):
    path = path or "k%d" % rng.randrange(1000)
    value = rng.randrange(-10 ** 6, 10 ** 6) if value is None else value
    cli("call", "--data", d, "set", json.dumps({"path": path, "value": value}))


def push_fresh(cli, d, tmp, archive, bucket, key, cluster, sk, held, what):
    """This side writes the segment of the range replog has not uploaded yet (held + 1 up to
    what the node holds) from `replog export`, the device key and the cluster secret; then
    replog pushes. Its writer merges as it pushes (ARCHIVE.md §6), so the origin's chain
    after the push must be what §6's rule makes of the chain before plus that segment, and
    every object the push made must be the bytes this side writes for its range."""
    origin = rp.origin_id(bytes(sk.verify_key))
    ups = exported(cli, d, tmp, origin)
    name, mine = ra.write_segment(key, cluster, sk, ups, held + 1, len(ups))
    check(bucket.get(name) is None, "%s exists before the push" % name)
    reader = ra.Reader(bucket, [key], cluster, None)
    before = chain_of(reader.read(), origin)
    sizes = {s: len(bucket.get(ra.segment_name(origin, *s))) for s in before}
    sizes[(held + 1, len(ups))] = len(mine)
    expected = ra.plan_merges(before + [(held + 1, len(ups))], sizes)
    cli("archive", "push", "--data", d, "--archive", archive)
    after = chain_of(reader.read(), origin)
    check(after == expected, "%s: the segments are %r after the push; ARCHIVE.md §6 gives %r" % (what, after, expected))
    made = [s for s in after if s not in before]
    for first, last in made:
        theirs = bucket.get(ra.segment_name(origin, first, last))
        ours = mine if (first, last) == (held + 1, len(ups)) else ra.write_segment(key, cluster, sk, ups, first, last)[1]
        check(theirs == ours, "the segment %d..%d this side wrote (%d bytes) differs from replog's (%d bytes)"
              % (first, last, len(ours), len(theirs or b"")))
    step("%s: replog wrote %s, the bytes this side wrote first (chain now %r)" % (what, made, after))


def scenario(cli, tmp, archive, bucket, rng):
    d, d2 = os.path.join(tmp, "d"), os.path.join(tmp, "d2")
    cli("init", "--data", d)
    st = status(cli, d)
    cluster = st["cluster_id"]
    origin = int(st["node_id"], 16)
    key = ra.ArchiveKey.of_member(d)
    sk = ra.read_identity(d)
    check(rp.origin_id(bytes(sk.verify_key)) == origin, "the node's origin is not the id of its device key")
    step("node %s, cluster %s, archive key id %08x" % (st["node_id"], cluster, key.id))

    # 2. pushes: the first of three calls, then one call per push, one above 64 KiB
    for _ in range(3):
        call(cli, d, rng)
    cli("archive", "push", "--data", d, "--archive", archive)
    reader = ra.Reader(bucket, [key], cluster, ra.members_of(d), list_page=2)
    rep = read_clean(reader, status(cli, d)["vector"], "after the first push")
    check(chain_of(rep, origin) == [(1, 3)], "the first push gave %r, not one segment 1..3" % chain_of(rep, origin))
    big = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(70000))
    n_single = 6
    for i in range(n_single):
        held = status(cli, d)["vector"][st["node_id"]]
        if i == 3:
            call(cli, d, rng, "big", big)
        else:
            call(cli, d, rng)
        push_fresh(cli, d, tmp, archive, bucket, key, cluster, sk, held, "push %d" % (i + 2))
    rep = read_clean(reader, status(cli, d)["vector"], "after the pushes")
    check(any(len(rep.objects[n]) > 28 + 65536 + 40 for n in rep.segments), "no segment spans two chunks")
    before = chain_of(rep, origin)
    step("the archive holds %d segments of %s: %s; %d change feed entries" % (len(before), st["node_id"], before,
                                                                            len(rep.changes)))
    # One feed entry per uploaded segment: merged segments end where an uploaded one did.
    check({(origin, last) for _, last in before} <= {(o, q) for _, o, q in rep.changes},
          "the change feed %r does not name each segment's end" % (rep.changes,))

    # continuation tokens and start-after: pages of 2 give what pages of 1000 give
    check(bucket.list("", max_keys=2) == bucket.list("", max_keys=1000), "listing in pages of 2 differs")
    oc = ra.OriginChain(origin)
    reader.pull_origin(origin, oc)
    check([u.key for u in oc.updates] == [u.key for u in rep.chains[origin].updates], "pulling from 0 differs")
    part2 = ra.OriginChain(origin)
    part2.key, part2.updates, part2.chains = oc.key, oc.updates[:4], oc.chains[:5]
    taken = reader.pull_origin(origin, part2)
    check(all(ra.parse_segment_name(n)[2] > 4 for n in taken) and part2.held == oc.held,
          "pulling after #4 took %r" % taken)

    # 4. a second member compacts
    cli("init", "--data", d2, "--cluster", cluster)
    shutil.copyfile(os.path.join(d, "cluster.key"), os.path.join(d2, "cluster.key"))
    os.chmod(os.path.join(d2, "cluster.key"), 0o600)
    st2 = status(cli, d2)
    check(st2["cluster_id"] == cluster, "the second member's cluster is %s" % st2["cluster_id"])
    cli("trust", "add", st2["device_id"], "--data", d)
    cli("trust", "add", st["device_id"], "--data", d2)
    check(ra.ArchiveKey.of_member(d2).id == key.id, "the second member derives another archive key")
    expected = ra.plan_merges(before, {s: len(rep.objects[ra.segment_name(origin, *s)]) for s in before})
    ups = exported(cli, d, tmp, origin)
    predicted = {}
    for first, last in expected:
        if (first, last) not in before:
            predicted[ra.segment_name(origin, first, last)] = ra.write_segment(key, cluster, sk, ups, first, last)[1]
    # The pushes merged as they went, so compact may find nothing left to join.
    r = cli("archive", "compact", "--data", d2, "--archive", archive)
    step("compact: %s" % r.stdout.strip().splitlines()[0] if r.stdout.strip() else "compact: (nothing printed)")
    reader = ra.Reader(bucket, [key], cluster, ra.members_of(d), list_page=2)
    rep = read_clean(reader, status(cli, d)["vector"], "after compact")
    after = chain_of(rep, origin)
    check(after == expected, "after compact the segments are %r; ARCHIVE.md §6 merging gives %r" % (after, expected))
    for n, data in predicted.items():
        check(rep.objects.get(n) == data, "the merged segment %s this side wrote differs from replog's" % n)
    step("merged as §6 says: %r -> %r, the merged bytes the ones this side wrote" % (before, after))
    check_snapshots(cli, d, d2, rep, reader, cluster, key, 1)

    # a reader that does not count the second device refuses its snapshot
    alone = ra.Reader(bucket, [key], cluster, {bytes(sk.verify_key)})
    rep_alone = alone.read()
    check(rep_alone.problems and all(p.key.startswith("snapshots/") and "not a member" in p.why for p in rep_alone.problems),
          "a reader with only the first device as member: %s" % [str(p) for p in rep_alone.problems])

    # more calls, a push, a call of the second member (its first segment written here
    # first), which the first pulls, and a second compact: a second snapshot, of two origins
    for _ in range(2):
        call(cli, d, rng)
    cli("archive", "push", "--data", d, "--archive", archive)
    sk2 = ra.read_identity(d2)
    call(cli, d2, rng)
    push_fresh(cli, d2, tmp, archive, bucket, key, cluster, sk2, 0, "the second member's push")
    r = cli("archive", "pull", "--data", d, "--archive", archive)
    check(status(cli, d)["vector"].get(st2["node_id"]) == 1, "after pull the first member holds %r (%s)"
          % (status(cli, d)["vector"], r.stdout.strip()))
    cli("archive", "compact", "--data", d2, "--archive", archive)
    rep = read_clean(reader, status(cli, d)["vector"], "after the second compact")
    check_snapshots(cli, d, d2, rep, reader, cluster, key, 2)
    held = status(cli, d)["vector"][st["node_id"]]
    call(cli, d, rng)
    push_fresh(cli, d, tmp, archive, bucket, key, cluster, sk, held, "a push after compact")
    rep = read_clean(reader, status(cli, d)["vector"], "after the last push")
    check(len(rep.snapshots) == 2, "%d snapshots after the last push" % len(rep.snapshots))
    r = cli("archive", "verify", "--data", d, "--archive", archive, ok=False)
    check(r.returncode == 0, "replog archive verify fails on the clean archive:\n%s%s" % (r.stdout, r.stderr))

    damage(cli, d, archive, bucket, reader, rep, origin, rng)
    resealed(cli, d, d2, archive, bucket, reader, rep, origin, cluster, key, rng)
    fork(cli, d, tmp, archive, bucket, key, cluster, origin, rng)


def fork(cli, d, tmp, archive, bucket, key, cluster, origin, rng):
    """§5 "Forks": a copy of the first member's directory writes as its origin and pushes
    first; the first member's push then finds its segment's name taken by other bytes, takes
    them through ingest (a fork) and uploads the evidence. This side finds the evidence
    object under the name its contents give, opens and proves it, and writes the same
    bytes; `replog archive verify` reports the fork."""
    twin = os.path.join(tmp, "twin")
    shutil.copytree(d, twin)
    if os.path.exists(os.path.join(twin, "LOCK")):
        os.remove(os.path.join(twin, "LOCK"))
    held = status(cli, d)["vector"][rp.origin_text(origin)]
    call(cli, twin, rng, "branch", "twin")
    cli("archive", "push", "--data", twin, "--archive", archive)
    call(cli, d, rng, "branch", "first")
    # The first member's push reads the newest segment of its origin, finds the other
    # branch, keeps the evidence and names the object (a fork is never taken silently).
    r = cli("archive", "push", "--data", d, "--archive", archive, ok=False)
    check(r.returncode == 1 and "a fork of %s" % rp.origin_text(origin) in r.stdout + r.stderr,
          "the first member's push after the fork: exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
    names = [n for n in bucket.list("evidence/")[0]]
    check(len(names) == 1, "after the fork the archive holds evidence %r, not one piece" % names)
    parsed = ra.parse_evidence_name(names[0])
    check(parsed is not None and parsed[:2] == (origin, held + 1),
          "the evidence is named %s, not for %s at #%d" % (names[0], rp.origin_text(origin), held + 1))
    rep = ra.Reader(bucket, [key], cluster, ra.members_of(d)).read()
    check(not rep.problems, "after the fork the reader found problems:\n  %s" % "\n  ".join(map(str, rep.problems)))
    check(rep.evidence == {names[0]: (origin, held + 1)}, "the reader proved %r" % rep.evidence)
    _, _, evidence = ra.read_evidence(names[0], rep.objects[names[0]], [key], cluster)
    check(ra.write_evidence(key, evidence) == (names[0], rep.objects[names[0]]),
          "the evidence object written here differs from replog's")
    r = cli("archive", "verify", "--data", d, "--archive", archive, "--json", ok=False)
    v = json.loads(r.stdout.strip().splitlines()[-1])
    check(r.returncode == 0 and v["evidence"] == 1 and v["origins"][rp.origin_text(origin)]["fork_seq"] == held + 1,
          "replog archive verify after the fork: exit %d, %s" % (r.returncode, r.stdout.strip()))
    step("a fork at #%d: replog archived its evidence as %s; this side proved it and wrote the same bytes"
         % (held + 1, names[0]))


def check_snapshots(cli, d, d2, rep, reader, cluster, key, count):
    check(len(rep.snapshots) == count, "%d snapshots verified, not %d" % (len(rep.snapshots), count))
    sk2 = ra.read_identity(d2)
    node_hash = cli("state", "--data", d, "--hash").stdout.strip()
    for n, s in rep.snapshots.items():
        check(bytes(s.signer) == bytes(sk2.verify_key), "%s: signed by another device than the compactor's" % n)
        ups = [u for o, q in s.vector.items() for u in rep.chains[o].updates[:q]]
        mine = rp.replay(ups).state_hash()
        check(mine == s.state_hash.hex(), "%s: its state hash %s is not this side's replay of its vector (%s)"
              % (n, s.state_hash.hex(), mine))
        if {rp.origin_text(o): q for o, q in s.vector.items()} == status(cli, d)["vector"]:
            check(node_hash == mine, "%s: the node's hash %s differs from the snapshot's %s" % (n, node_hash, mine))
        pt = ra.encode_snapshot(cluster, sk2, s.cut, s.vector, s.state_hash, s.heads, s.checkpoint_bytes)
        check(pt == rep.plaintexts[n], "%s: re-encoded here differs from its plaintext" % n)
        check(ra.seal(key, ra.KIND_SNAPSHOT, ra.snapshot_context(*ra.parse_snapshot_name(n)), pt) == rep.objects[n],
              "%s: resealed here differs from its bytes" % n)
        step("snapshot %s: vector %s, heads %s, state hash %s = this side's replay; bytes rewritten here equal"
             % (n, {rp.origin_text(o): q for o, q in s.vector.items()},
                ["#%d of %d" % (h.seq, len(h.wire())) for h in s.heads], mine[:16]))
        for h in s.heads:
            check((h.key is not None) == (h.seq == 1), "%s: the head %r %s its key" % (n, h, "carries" if h.key else "lacks"))


def damage(cli, d, archive, bucket, reader, rep, origin, rng):
    step("damage, each undone after")
    segs = sorted((n for n, sg in rep.segments.items() if sg.origin == origin), key=lambda n: ra.parse_segment_name(n)[1])
    check(len(segs) >= 2, "the damage checks need two segments: %r" % segs)
    vector = status(cli, d)["vector"]

    def restore_clean(what):
        read_clean(reader, vector, "after undoing " + what)

    # a flipped byte in each segment in turn (its own random position)
    for n in segs:
        data = rep.objects[n]
        i = rng.randrange(len(data))
        bad = bytearray(data)
        bad[i] ^= 1 << rng.randrange(8)
        bucket.put(n, bytes(bad))
        expect_refused(reader, n, "%s with byte %d flipped" % (n, i), cli, d, archive)
        bucket.put(n, data)
        restore_clean("the flip in " + n)
    # each field of the header, the first nonce and the last byte, in the first segment
    n = segs[0]
    data = rep.objects[n]
    for i, field in ((0, "magic"), (8, "format"), (9, "kind"), (11, "reserved"), (12, "key id"),
                     (19, "chunk size"), (27, "length"), (28, "nonce"), (len(data) - 1, "tag")):
        bad = bytearray(data)
        bad[i] ^= 1 << rng.randrange(8)
        bucket.put(n, bytes(bad))
        expect_refused(reader, n, "%s with its %s changed (byte %d)" % (n, field, i), cli, d, archive)
        bucket.put(n, data)
    restore_clean("the header flips")
    # a flipped byte in a snapshot
    sn = sorted(rep.snapshots)[0]
    data = rep.objects[sn]
    i = rng.randrange(len(data))
    bad = bytearray(data)
    bad[i] ^= 1 << rng.randrange(8)
    bucket.put(sn, bytes(bad))
    expect_refused(reader, sn, "%s with byte %d flipped" % (sn, i))
    bucket.put(sn, data)
    restore_clean("the flip in " + sn)
    # a segment copied under other names: a range the chain covers, a range past it, a
    # snapshot's name
    src = segs[-1]
    _, first, last = ra.parse_segment_name(src)
    held = rep.vector[origin]
    for other in (ra.segment_name(origin, 1, 2), ra.segment_name(origin, held + 1, held + 1),
                  ra.snapshot_name(bytes(16), bytes(8), bytes(8))):
        check(other not in rep.objects and other != src, "%s is taken" % other)
        bucket.put(other, rep.objects[src])
        covered = other == ra.segment_name(origin, 1, 2)
        expect_refused(reader, other, "%s copied under %s" % (src, other),
                       *((cli, d, archive) if other.startswith("log/") and not covered else ()))
        if covered:
            # `replog archive verify` proves each origin's chain of segments from seq 1 (the one
            # reaching furthest at each step); one that the chain covers is not opened.
            r = cli("archive", "verify", "--data", d, "--archive", archive, ok=False)
            step("  (replog archive verify on the covered copy: exit %d, %s)"
                 % (r.returncode, "names it" if other in r.stdout + r.stderr else "does not name it"))
        bucket.delete(other)
        restore_clean("the copy " + other)
    # a hole: the second segment of the chain gone
    check(len(segs) >= 3, "the hole check needs three segments: %r" % segs)
    hole = segs[1]
    h_first = ra.parse_segment_name(hole)[1]
    bucket.delete(hole)
    got = reader.read()
    check(got.vector.get(origin) == h_first - 1, "with %s gone the reader holds #%r" % (hole, got.vector.get(origin)))
    check(any("the archive lacks #%d" % h_first in p.why for p in got.problems), "the hole is not named: %s"
          % [str(p) for p in got.problems])
    step("  %s deleted: the hole is named: %s" % (hole, next(str(p) for p in got.problems if "lacks" in p.why)))
    r = cli("archive", "verify", "--data", d, "--archive", archive, ok=False)
    check(r.returncode != 0 and "lacks" in r.stdout + r.stderr, "replog archive verify with %s gone: exit %d\n%s%s"
          % (hole, r.returncode, r.stdout[-1500:], r.stderr[-1500:]))
    bucket.put(hole, rep.objects[hole])
    restore_clean("the hole")
    # foreign names are ignored
    for n in ("log/notes.txt", "log/%016x/%020d-%020d.seg.bak" % (origin, 1, 1), "snapshots/x.snap"):
        bucket.put(n, b"not the archive's")
    got = reader.read()
    check(not got.problems and len(got.ignored) == 3, "foreign names: problems %s, ignored %s"
          % ([str(p) for p in got.problems], got.ignored))
    r = cli("archive", "verify", "--data", d, "--archive", archive, ok=False)
    check(r.returncode == 0, "replog archive verify with foreign names: exit %d\n%s%s"
          % (r.returncode, r.stdout[-1500:], r.stderr[-1500:]))
    step("  three foreign names ignored (here and by replog archive verify)")


def resealed(cli, d, d2, archive, bucket, reader, rep, origin, cluster, key, rng):
    """Damage a member could do: plaintexts changed and sealed again under the archive key,
    so that the seal holds and the proof (chain, head, signature, state) must catch it."""
    step("plaintexts changed and resealed under the archive key, each undone after")
    vector = status(cli, d)["vector"]
    from nacl.signing import SigningKey

    def attempt(name, plaintext, kind, context, what, why, verify=False):
        bucket.put(name, ra.seal(key, kind, context, plaintext))
        got = reader.read()
        mine = [p for p in got.problems if p.key == name]
        check(mine and why in mine[0].why, "%s: the reader says %s" % (what, [str(p) for p in got.problems]))
        step("  %s: refused: %s" % (what, mine[0].why))
        if verify:
            r = cli("archive", "verify", "--data", d, "--archive", archive, ok=False)
            check(r.returncode != 0 and name in r.stdout + r.stderr, "%s: replog archive verify: exit %d\n%s%s"
                  % (what, r.returncode, r.stdout[-1500:], r.stderr[-1500:]))
        bucket.put(name, rep.objects[name])
        read_clean(reader, vector, "after undoing " + what)

    # a segment whose last update's body has one byte of its argument changed
    n = max(rep.segments, key=lambda x: ra.parse_segment_name(x)[2])
    seg = rep.segments[n]
    u = seg.updates[-1]
    body = bytearray(u.body)
    body[-1] ^= 1
    changed = seg.updates[:-1] + [rp.Update(u.hlc, u.origin, bytes(body))]
    ctx = ra.segment_context(seg.origin, seg.first, seg.last)
    attempt(n, ra.encode_segment(seg.origin, seg.first, seg.last, seg.head, changed), ra.KIND_SEGMENT, ctx,
            "%s with a body byte changed" % n, "do not chain to its head", verify=True)
    # the first segment without its key in the head
    n1 = next(x for x, sg in rep.segments.items() if sg.first == 1)
    s1 = rep.segments[n1]
    attempt(n1, ra.encode_segment(s1.origin, s1.first, s1.last, s1.head.without_key(), s1.updates), ra.KIND_SEGMENT,
            ra.segment_context(s1.origin, s1.first, s1.last), "%s with a head without its key" % n1,
            "does not carry the key", verify=True)
    # snapshots: a state hash changed (signature kept; then signed again by the member;
    # then signed by a key that is no member's)
    sn = sorted(rep.snapshots)[-1]
    snap = rep.snapshots[sn]
    ctx = ra.snapshot_context(*ra.parse_snapshot_name(sn))
    other_hash = bytes([snap.state_hash[0] ^ 1]) + snap.state_hash[1:]
    plain = rep.plaintexts[sn]
    i = plain.index(snap.state_hash, 17)
    attempt(sn, plain[:i] + other_hash + plain[i + 32:], ra.KIND_SNAPSHOT, ctx,
            "%s with its state hash changed" % sn, "signature does not verify")
    sk2 = ra.read_identity(d2)
    attempt(sn, ra.encode_snapshot(cluster, sk2, snap.cut, snap.vector, other_hash, snap.heads, snap.checkpoint_bytes),
            ra.KIND_SNAPSHOT, ctx, "%s with its state hash changed and signed again" % sn, "the state hashes to")
    stranger = SigningKey(bytes(rng.getrandbits(8) for _ in range(32)))
    attempt(sn, ra.encode_snapshot(cluster, stranger, snap.cut, snap.vector, snap.state_hash, snap.heads,
                                   snap.checkpoint_bytes),
            ra.KIND_SNAPSHOT, ctx, "%s signed by a stranger" % sn, "not a member")


def main():
    head, _, rest = __doc__.partition("\n\n")
    ap = argparse.ArgumentParser(description=head, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=rest)
    ap.add_argument("replog", help="the replog binary")
    ap.add_argument("--seed", type=int, help="seed for values and damage positions (default: random)")
    ap.add_argument("--timeout", type=float, default=120, help="bound on the whole run, s (default 120)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    it.DEADLINE = time.monotonic() + a.timeout
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 32)
    step("seed %d (rerun with --seed %d)" % (seed, seed))
    rng = random.Random(seed)
    replog = os.path.abspath(a.replog)
    tmp = tempfile.mkdtemp(prefix="replog-archive-interop-")
    ok = False
    try:
        self_checks(rng)
        run(replog, tmp, rng)
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
    if not ok:
        step("seed %d" % seed)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

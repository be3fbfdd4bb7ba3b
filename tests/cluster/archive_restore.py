#!/usr/bin/python3
"""Cluster.ArchiveRestoreGivesTheSameHash: three devices of one cluster (linked to n0,
each `replog node --archive` to one prefix of a real s3rver on loopback) make
REPLOG_ARCHIVE_UPDATES updates in all (default 30,000; issue 11 names 100,000, which
takes minutes here: set the variable to run it), in two halves with a recorded time
between them; n0 rolls up the first half (`archive compact`, a snapshot) before
that time. When each has archived its own origin (status.archive: lag 0), the
archive key is exported under a passphrase, n2 is stopped and its directory wiped,
and `replog restore --archive-key FILE --at MID` rebuilds it from the archive alone:
it starts from that snapshot and folds only the second half, prints the others'
state hash, and its hash as of MID equals
`replog state --hash --at MID` on n0 (and differs from the final one). The restored
directory is detached at MID (state shows that time, a call is refused) until
`restore --attach`; then its state hash is the others'. `replog archive
verify` proves every origin up to its seq, and `replog verify` replays the restored log.

Usage: archive_restore.py PATH_TO_REPLOG"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import s3 as S  # noqa: E402

UPDATES = int(os.environ.get("REPLOG_ARCHIVE_UPDATES", "30000"))
THREADS = 2  # writers per node
PREFIX = "restore-test/"


def make_calls(k, t):
    def call(i):
        kind = i % 4
        if kind == 0:
            return "inc", {"path": "shared.counter", "by": 1}
        if kind == 1:
            return "set", {"path": "shared.last", "value": "%d-%d-%d" % (k, t, i)}
        if kind == 2:
            return "set", {"path": "node%d.t%d.k%d" % (k, t, i % 700), "value": i}
        return "add", {"path": "shared.members", "value": "%d-%d" % (k, i % 300)}
    return call


def write(nodes, total, offset):
    """`total` calls spread over the nodes, THREADS writers each; returns calls per node."""
    per = [total // len(nodes) + (1 if k < total % len(nodes) else 0) for k in range(len(nodes))]
    writers = []
    for k, n in enumerate(nodes):
        for t in range(THREADS):
            count = per[k] // THREADS + (1 if t < per[k] % THREADS else 0)
            make = make_calls(k, t)
            writers.append(H.Writer(n, (lambda f, o: lambda i: f(i + o))(make, offset), count=count))
    t0 = time.monotonic()
    for w in writers:
        w.start()
    for w in writers:
        w.join(300)
        H.check(not w.is_alive(), "a writer on %s did not finish within 300 s" % w.node.name)
        H.check(not w.errors and w.acked == w.count, "calls on %s failed: %s" % (w.node.name, w.errors[:3]))
    H.step("%d calls acknowledged in %.1f s" % (total, time.monotonic() - t0))
    return per


def restore_test(cluster):
    H.check(UPDATES >= 30, "REPLOG_ARCHIVE_UPDATES must be at least 30")
    s3 = S.S3rver(cluster).start()
    H.step("s3rver on %s, bucket %s; %d updates in all (REPLOG_ARCHIVE_UPDATES)" % (s3.endpoint, s3.bucket, UPDATES))
    nodes = S.members(cluster, ["n0", "n1", "n2"])
    n0, n1, n2 = nodes
    ids = {n.name: n.device_id() for n in nodes}
    for n in (n1, n2):
        n.peers = ["%s@%s" % (ids["n0"], n0.listen)]
    for n in nodes:
        n.extra_args += S.archive_args(s3, PREFIX, poll_ms=2000)  # linked: pulls are not needed
        n.start(wait=False)
    for n in nodes:
        n.wait_serving()

    first = write(nodes, UPDATES // 2, 0)
    expected = {n.node_id: first[k] for k, n in enumerate(nodes)}
    cluster.wait_converged(expected=expected, timeout=120)
    # A roll-up of the first half: restore --at MID starts from it and folds only what follows.
    n0.stop()
    out = n0.cli("archive", "compact", "--json", "--archive", s3.uri(PREFIX), "--s3-endpoint", s3.endpoint)
    snapshot = json.loads(out.strip().splitlines()[-1])["snapshot"]
    H.check(snapshot.startswith("snapshots/"), "archive compact wrote no snapshot: %s" % out.strip())
    n0.start(wait=False)
    n0.wait_serving()
    H.step("n0 rolled up the first half: %s" % snapshot)
    time.sleep(0.05)
    mid_ms = int(time.time() * 1000)
    mid = S.iso_ms(mid_ms)
    time.sleep(0.05)
    H.step("the middle time: %s" % mid)
    second = write(nodes, UPDATES - UPDATES // 2, UPDATES)
    expected = {n.node_id: first[k] + second[k] for k, n in enumerate(nodes)}
    cluster.wait_converged(expected=expected, timeout=120)
    final = cluster.check_final(expected=expected)

    t0 = time.monotonic()
    for n in nodes:
        a = S.wait_archived(n, timeout=120)
        H.step("%s archived its own %d updates: %s" % (n.name, expected[n.node_id], json.dumps(
            {k: a[k] for k in ("lag_updates", "segments_put", "updates_put", "requests")})))
    H.step("every node's own origin archived %.1f s after the last call" % (time.monotonic() - t0))
    at_mid = n0.cli("state", "--hash", "--at", mid).strip()
    H.check(at_mid != final, "the hash as of the middle time equals the final hash: the test would prove nothing")
    H.step("n0: replog state --hash --at %s = %s" % (mid, at_mid))

    key_file = os.path.join(cluster.tmp, "archive.key")
    n0.cli("archive", "key", "export", key_file)
    H.check(oct(os.stat(key_file).st_mode & 0o777) == "0o600", "the key file is not 0600")
    rc, v, err = S.verify(cluster, s3, PREFIX, key_file=key_file)
    H.check(rc == 0 and v and v["ok"], "archive verify --archive-key: exit %d %s %s" % (rc, v, err))
    verified = {o.lower(): e["verified"] for o, e in v["origins"].items()}
    H.check(verified == {o.lower(): s for o, s in expected.items()},
            "archive verify proves %s, the nodes hold %s" % (verified, expected))
    H.step("replog archive verify --archive-key: ok, every origin proved up to its seq: %s" % json.dumps(verified))

    n2.stop()
    shutil.rmtree(n2.data)
    H.step("n2 stopped and its directory wiped; restore from the archive with the key file alone")
    t0 = time.monotonic()
    rc, j, err = S.restore(cluster, s3, PREFIX, n2.data, key_file=key_file, at=mid)
    took = time.monotonic() - t0
    H.step("replog restore: %.1f s, %s" % (took, json.dumps(j)))
    H.check(j is not None, "restore printed no JSON")
    H.check(j["updates_stored"] == UPDATES, "restore stored %d updates, %d were made" % (j["updates_stored"], UPDATES))
    H.check(j["state_hash"] == final, "restored hash %s, the nodes' %s" % (j["state_hash"], final))
    H.check(j["state_hash_at"] == at_mid, "restored hash as of %s: %s, n0's: %s" % (mid, j["state_hash_at"], at_mid))
    H.check(not j["damaged"], "restore named damage: %s" % j["damaged"])
    H.check(j["snapshot"] == snapshot and j["replayed"] == UPDATES - UPDATES // 2,
            "restore started from %r and folded %d updates; expected %s and the second half's %d"
            % (j["snapshot"], j["replayed"], snapshot, UPDATES - UPDATES // 2))
    detached = cluster.cli("state", "--hash", "--data", n2.data).strip()
    H.check(detached == at_mid, "replog state --hash on the detached restore (--at): %s, expected the as-of hash %s"
            % (detached, at_mid))
    r = subprocess.run([cluster.replog, "call", "--data", n2.data, "set", json.dumps({"path": "x", "value": 1})],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    H.check(r.returncode != 0, "a call on the detached restore was accepted: %s" % r.stdout.strip())
    H.step("the restore is detached at %s: state --hash gives the as-of hash, a call is refused (%s)"
           % (mid, r.stderr.strip()))
    cluster.cli("restore", "--from", s3.uri(PREFIX), "--data", n2.data, "--attach")
    restored = cluster.cli("state", "--hash", "--data", n2.data).strip()
    H.check(restored == final, "replog state --hash after restore --attach: %s, expected %s" % (restored, final))
    st = json.loads(cluster.cli("status", "--json", "--data", n2.data))
    vec = {o.lower(): s for o, s in st["vector"].items()}
    H.check(vec == {o.lower(): s for o, s in expected.items()}, "restored vector %s, expected %s" % (vec, expected))
    H.check(st["updates"] == UPDATES, "restored directory stores %d updates, expected %d" % (st["updates"], UPDATES))
    out = cluster.cli("verify", "--data", n2.data, check_rc=False)
    H.check(out.startswith("ok"), "replog verify on the restored directory: %s" % out.strip())
    H.step("attached: same hash as n0 and n1, vector = calls made, replog verify ok")
    cluster.nodes.remove(n2)  # its old device key is gone with its directory; n0 and n1 stop as usual


if __name__ == "__main__":
    H.run(restore_test)

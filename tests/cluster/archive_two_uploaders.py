#!/usr/bin/python3
"""Cluster.Archive.TwoUploadersOfOneOriginLeaveOneValidArchive: n2 has no --archive
and writes steadily; n0 and n1, linked to it, both archive its origin with a grace
period of 0, so they race to upload the same updates and cut segments where each
happens to be. Checked: both end with the whole origin archived and no error or
damage; no object has another ETag at the end than in a listing taken mid-way (one
name, one content: the sealing is deterministic, and s3rver would let a second PUT
replace the first); `archive verify` proves the origin to its seq; a restore fetches
each update once (the overlapping segments are skipped) and gives the nodes' hash.

Usage: archive_two_uploaders.py PATH_TO_REPLOG"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import s3 as S  # noqa: E402

PREFIX = "uploaders-test/"
WRITE_S = 6


def uploaders_test(cluster):
    s3 = S.S3rver(cluster).start()
    n0, n1, n2 = S.members(cluster, ["n0", "n1", "n2"])
    ids = {n.name: n.device_id() for n in (n0, n1, n2)}
    n1.peers = ["%s@%s" % (ids["n0"], n0.listen)]
    n2.peers = ["%s@%s" % (ids["n0"], n0.listen), "%s@%s" % (ids["n1"], n1.listen)]
    for n in (n0, n1):
        n.extra_args += S.archive_args(s3, PREFIX, poll_ms=100, grace_ms=0)
    for n in (n0, n1, n2):
        n.start(wait=False)
    for n in (n0, n1, n2):
        n.wait_serving()
    w = H.Writer(n2, lambda i: ("set", {"path": "k%d" % (i % 50), "value": i}), pause=0.002)
    w.start()
    try:
        time.sleep(WRITE_S / 2)
        mid = s3.list(PREFIX)
        time.sleep(WRITE_S / 2)
    finally:
        w.stop()
    H.check(not w.errors, "calls on n2 failed: %s" % w.errors[:3])
    expected = {n2.node_id: w.acked}
    final = cluster.wait_converged(expected=expected)
    H.step("n2 made %d calls in %d s; %d objects were listed mid-way" % (w.acked, WRITE_S, len(mid)))

    def both_archived():
        return all(n.status()["archive"]["archived"].get(n2.node_id) == w.acked for n in (n0, n1))
    H.wait_until(both_archived, "n0 and n1 to know n2's origin archived", timeout=30,
                 on_timeout=lambda: json.dumps([n.status()["archive"] for n in (n0, n1)]))
    put = {}
    for n in (n0, n1):
        a = n.status()["archive"]
        H.check(not a["last_error"] and not a["damaged"], "%s: error %r, damage %s" % (n.name, a["last_error"],
                                                                                      a["damaged"]))
        put[n.name] = a["updates_put"]
    after = s3.list(PREFIX)
    segs = S.segments(after, PREFIX)[n2.node_id.lower()]
    overlaps = sum(1 for a, b in zip(segs, segs[1:]) if b[0] <= a[1])
    changed = sorted(k for k in mid if after.get(k, (None,))[0] != mid[k][0])
    H.check(not changed, "objects gone or with another ETag since mid-way: %s" % changed[:5])
    H.step("uploads of n2's origin: %s (%d in all for %d updates); %d segments, %d overlapping their neighbour; "
           "no object changed" % (json.dumps(put), sum(put.values()), w.acked, len(segs), overlaps))

    key_file = os.path.join(cluster.tmp, "archive.key")
    n0.cli("archive", "key", "export", key_file)
    rc, v, err = S.verify(cluster, s3, PREFIX, key_file=key_file)
    H.check(rc == 0 and v["ok"] and {o.lower(): e["verified"] for o, e in v["origins"].items()} ==
            {n2.node_id.lower(): w.acked}, "archive verify: exit %d %s %s" % (rc, v, err))
    rc, j, err = S.restore(cluster, s3, PREFIX, os.path.join(cluster.tmp, "restored"), key_file=key_file)
    H.check(j["state_hash"] == final and j["updates_stored"] == w.acked and j["updates_got"] == w.acked,
            "restore: %s; the nodes' hash %s, %d updates" % (json.dumps(j), final, w.acked))
    H.step("archive verify proves #1..#%d; restore fetched and stored each update once: the nodes' hash" % w.acked)


if __name__ == "__main__":
    H.run(uploaders_test)

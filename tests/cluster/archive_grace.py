#!/usr/bin/python3
"""Cluster.AnOriginThatNeverReachesTheBucketIsArchivedAfterTheGrace: three linked
devices; n1 has no --archive (it never reaches the bucket), n0 archives with a grace
period of GRACE_MS, n2 archives with the default grace (10 minutes). Calls on all three.
- n1's updates are archived by n0, and not before the grace: every change feed entry
  that names n1's origin is later than the first call on n1 plus the grace;
- nobody pays a PUT for updates their own node archives: n0 uploads its own and n1's
  updates, n2 only its own (status.archive.updates_put);
- `archive verify` proves the three origins, and `replog restore` into a member
  directory made by init (the cluster secret copied, both devices trusted), with no
  key file, gives the nodes' state hash.

Usage: archive_grace.py PATH_TO_REPLOG"""
import json
import os
import shutil
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import s3 as S  # noqa: E402

PREFIX = "grace-test/"
GRACE_MS = 3000
CALLS = 20


def grace_test(cluster):
    s3 = S.S3rver(cluster).start()
    n0, n1, n2 = S.members(cluster, ["n0", "n1", "n2"])
    ids = {n.name: n.device_id() for n in (n0, n1, n2)}
    for n in (n1, n2):
        n.peers = ["%s@%s" % (ids["n0"], n0.listen)]
    n0.extra_args += S.archive_args(s3, PREFIX, poll_ms=200, grace_ms=GRACE_MS)
    n2.extra_args += S.archive_args(s3, PREFIX, poll_ms=200)
    for n in (n0, n1, n2):
        n.start(wait=False)
    for n in (n0, n1, n2):
        n.wait_serving()
    first_call_ms = int(time.time() * 1000)
    for i in range(CALLS):
        for k, n in enumerate((n0, n1, n2)):
            n.call("set", {"path": "n%d.k%d" % (k, i), "value": i})
    expected = {n.node_id: CALLS for n in (n0, n1, n2)}
    final = cluster.wait_converged(expected=expected)
    H.step("n1 (no --archive) made %d calls from %s on; n0 archives others' updates after %d ms"
           % (CALLS, S.iso_ms(first_call_ms), GRACE_MS))

    def n1_archived():
        return n0.status()["archive"]["archived"].get(n1.node_id) == CALLS
    H.wait_until(n1_archived, "n0 to archive n1's updates", timeout=GRACE_MS / 1000 + 20,
                 on_timeout=lambda: json.dumps(n0.status()["archive"]))
    for n in (n0, n2):
        S.wait_archived(n)
    times = S.feed_times_for(s3, PREFIX, n1.node_id)
    H.check(times, "no change feed entry names n1's origin")
    H.check(min(times) >= first_call_ms + GRACE_MS, "n1's updates were archived %d ms after its first call, "
            "before the %d ms grace" % (min(times) - first_call_ms, GRACE_MS))
    H.step("n0 archived n1's updates %d ms after n1's first call (grace %d ms)"
           % (min(times) - first_call_ms, GRACE_MS))
    put = {n.name: n.status()["archive"]["updates_put"] for n in (n0, n2)}
    H.check(put == {"n0": 2 * CALLS, "n2": CALLS}, "updates uploaded: %s; expected n0 its own and n1's (%d), "
            "n2 its own (%d)" % (put, 2 * CALLS, CALLS))
    H.step("updates uploaded: %s (n2 left n1's to the grace, n0 did not upload n2's)" % json.dumps(put))

    rc, v, err = S.verify(cluster, s3, PREFIX, data=n0.data)
    H.check(rc == 0 and v and v["ok"], "archive verify: exit %d %s %s" % (rc, v, err))
    verified = {o.lower(): e["verified"] for o, e in v["origins"].items()}
    H.check(verified == {o.lower(): s for o, s in expected.items()}, "archive verify proves %s" % verified)

    data = os.path.join(cluster.tmp, "member")
    cluster.cli("init", "--data", data, "--cluster", cluster.cluster_id)
    shutil.copyfile(os.path.join(n0.data, "cluster.key"), os.path.join(data, "cluster.key"))
    os.chmod(os.path.join(data, "cluster.key"), 0o600)
    for name in ("n0", "n1", "n2"):
        cluster.cli("trust", "add", ids[name], "--name", name, "--data", data)
    rc, j, err = S.restore(cluster, s3, PREFIX, data)
    H.check(j["state_hash"] == final and j["updates_stored"] == 3 * CALLS,
            "restore into a member directory: %s; the nodes' hash %s" % (json.dumps(j), final))
    H.step("archive verify proves all three origins; restore into a member directory (no key file): "
           "the nodes' hash")


if __name__ == "__main__":
    H.run(grace_test)

#!/usr/bin/python3
"""Cluster.Archive.KnownBug.ARevokedDeviceCannotReadNewSegments (DISABLED: fails today).

Issue 11: "Revoking a device rotates the archive key for new objects ... Objects
written before the revocation stay readable to the holders of the old key." Three
members; n2 exports its archive key file (as a thief of the device could). n0 archives,
revokes n2, and archives more. A restore with n2's key file must read the segments
from before the revocation and none of those written after it.

Today the archive key is derived from the cluster secret alone (node/archive/
archive_keys.h), nothing rotates it (docs/ARCHIVE.md lists the rotation as not built
yet), and n2's key file reads every later segment.

Usage: archive_revoke.py PATH_TO_REPLOG"""
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import s3 as S  # noqa: E402

PREFIX = "revoke-test/"


def revoke_test(cluster):
    s3 = S.S3rver(cluster).start()
    n0, n1, n2 = S.members(cluster, ["n0", "n1", "n2"])
    stolen = os.path.join(cluster.tmp, "stolen.key")
    n2.cli("archive", "key", "export", stolen)
    n1.peers = ["%s@%s" % (n0.device_id(), n0.listen)]
    n0.extra_args += S.archive_args(s3, PREFIX, poll_ms=200)
    n0.start()
    n1.start()
    for i in range(10):
        n0.call("set", {"path": "before.k%d" % i, "value": i})
    S.wait_archived(n0)
    before = n0.vector()[n0.node_id]
    n0.cli("revoke", n2.device_id())
    at_revoke = n0.vector()[n0.node_id]   # the revocation is an update of n0's too
    H.step("n0 revoked n2 (whose key file was taken): %s" % json.dumps(n0.status().get("revoked", "")))
    for i in range(10):
        n0.call("set", {"path": "after.k%d" % i, "value": i})
    S.wait_archived(n0)
    total = n0.vector()[n0.node_id]
    H.step("n0 archived #1..#%d before the revocation (#%d), #%d..#%d after it" % (before, at_revoke,
                                                                                  at_revoke + 1, total))
    rc, j, err = S.restore(cluster, s3, PREFIX, os.path.join(cluster.tmp, "thief"), key_file=stolen, check_rc=False)
    got = json.loads(cluster.cli("status", "--json", "--data", os.path.join(cluster.tmp, "thief")))["vector"]
    got_n0 = {o.lower(): s for o, s in got.items()}.get(n0.node_id.lower(), 0)
    H.step("restore with n2's key file: exit %d, n0 up to #%d; %s" % (rc, got_n0, err.strip().replace("\n", " | ")))
    H.check(got_n0 >= before, "the revoked device's key no longer reads what was written before the revocation")
    H.check(got_n0 <= at_revoke, "KNOWN BUG: the revoked device's key file reads n0's segments written after the "
            "revocation (restored n0 up to #%d; the revocation is #%d): the archive key was not rotated"
            % (got_n0, at_revoke))


if __name__ == "__main__":
    H.run(revoke_test)

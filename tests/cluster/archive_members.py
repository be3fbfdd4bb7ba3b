#!/usr/bin/python3
"""Cluster.Archive.ANonMembersSegmentsAreNamedAndNotApplied: x holds the cluster secret
(so the archive key) but is on nobody's trust list, as a device removed from the
lists that kept its directory. It archives to the prefix the members use. Checked:
- the running members (n0, n1, both --archive, no link) converge on their own updates
  and name x's first segment in status.archive.damaged, and hold nothing of x;
- `replog archive verify --data` names it ("no member's");
- `replog restore --archive-key` (n0's key file, which carries n0's trust list) exits
  non-zero naming it, applies nothing of x, and gives n0's state hash.

The DISABLED KnownBug variant (--verify-key-file) requires `archive verify
--archive-key` with that same key file to name it too: today it ignores the file's
trust list and reports the archive ok (exit 0), while restore with the file refuses.

Usage: archive_members.py PATH_TO_REPLOG [--verify-key-file]"""
import json
import os
import shutil
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import s3 as S  # noqa: E402

PREFIX = "members-test/"
VERIFY_KEY_FILE = "--verify-key-file" in sys.argv[2:]


def members_test(cluster):
    s3 = S.S3rver(cluster).start()
    n0, n1 = S.members(cluster, ["n0", "n1"])
    x = cluster.add_node("x")
    shutil.copyfile(os.path.join(n0.data, "cluster.key"), os.path.join(x.data, "cluster.key"))
    os.chmod(os.path.join(x.data, "cluster.key"), 0o600)
    x.secure = True
    for n in (n0, n1, x):
        n.extra_args += S.archive_args(s3, PREFIX, poll_ms=200)
        n.start()
    for i in range(8):
        n0.call("set", {"path": "n0.k%d" % i, "value": i})
        n1.call("set", {"path": "n1.k%d" % i, "value": i})
        x.call("set", {"path": "x.k%d" % i, "value": i})
    S.wait_archived(x)
    x_origin = x.node_id.lower()
    x_first = S.segments(s3.list(PREFIX), PREFIX)[x_origin][0][2][len(PREFIX):]
    H.step("x (cluster secret, trusted by nobody) archived its 8 updates; its first segment is %s" % x_first)
    expected = {n0.node_id: 8, n1.node_id: 8}
    final = cluster.wait_converged(nodes=[n0, n1], expected=expected, timeout=30)
    for n in (n0, n1):
        H.wait_until(lambda: x_first in n.status()["archive"]["damaged"],
                     "%s to name x's segment in status.archive.damaged" % n.name, timeout=10,
                     on_timeout=lambda: json.dumps(n.status()["archive"]))
    cluster.check_final(nodes=[n0, n1], expected=expected)
    H.step("n0 and n1 hold nothing of x and name its segment: %s" % n0.status()["archive"]["damaged"][x_first])

    rc, v, err = S.verify(cluster, s3, PREFIX, data=n0.data)
    H.check(rc != 0 and any(x_first in p for p in v["problems"]), "archive verify --data: exit %d %s" % (rc, v))
    H.step("archive verify --data names it: %s" % v["problems"])
    key_file = os.path.join(cluster.tmp, "archive.key")
    n0.cli("archive", "key", "export", key_file)
    if VERIFY_KEY_FILE:
        rc, v, err = S.verify(cluster, s3, PREFIX, key_file=key_file)
        H.check(rc != 0 and any(x_first in p for p in v["problems"]),
                "KNOWN BUG: archive verify --archive-key (n0's file, with n0's trust list) passes x's segments "
                "that restore with the same file refuses: exit %d %s" % (rc, v))
        return
    rc, j, err = S.restore(cluster, s3, PREFIX, os.path.join(cluster.tmp, "restored"), key_file=key_file,
                           check_rc=False)
    H.check(rc != 0 and x_first in err, "restore --archive-key: exit %d, does not name %s: %s" % (rc, x_first, err))
    H.check(j["state_hash"] == final and j["updates_stored"] == 16, "restore applied %d updates, hash %s; "
            "expected 16 and n0's %s" % (j["updates_stored"], j["state_hash"], final))
    H.step("restore --archive-key: exit %d, names x's segment, stores the members' 16 updates, n0's hash" % rc)


if __name__ == "__main__":
    H.run(members_test)

#!/usr/bin/python3
"""Cluster.DamageIsNamedAndNotApplied: a device archives its updates in many small
segments to a real s3rver. Then the archive is damaged by plain HTTP, as a bucket's
owner or a broken disk could: a middle segment B is deleted, and in an earlier
segment A one byte is flipped (the object re-PUT). Checked at each stage:
- `replog restore` exits non-zero, names the hole (the origin's prefix and the first
  missing seq) and A's object key, and applies nothing from the damage on: the
  restored vector stops right before the first damaged segment;
- `replog archive verify` exits non-zero and names them too (with both, only A today:
  --verify-names-all requires the hole as well, a KNOWN BUG test);
- a running member that syncs from the archive names them in status.archive.damaged
  and stops at the same seq.
Segments A and B are drawn with the seed.

Usage: archive_damage.py PATH_TO_REPLOG [--verify-names-all]"""
import json
import os
import random
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import s3 as S  # noqa: E402

PREFIX = "damage-test/"
BURSTS = 10
VERIFY_NAMES_ALL = "--verify-names-all" in sys.argv[2:]


def check_restore(cluster, s3, key_file, name, origin, stop_at, needles):
    """A restore into a new directory: non-zero, each needle in its errors, the vector of
    `origin` = stop_at."""
    data = os.path.join(cluster.tmp, name)
    rc, j, err = S.restore(cluster, s3, PREFIX, data, key_file=key_file, check_rc=False)
    H.step("replog restore -> exit %d, stderr: %s" % (rc, err.strip().replace("\n", " | ")))
    H.check(rc != 0, "restore exited 0 from a damaged archive")
    for n in needles:
        H.check(n in err, "restore does not name %r: %s" % (n, err.strip()))
    vec = {o.lower(): s for o, s in json.loads(cluster.cli("status", "--json", "--data", data))["vector"].items()}
    H.check(vec.get(origin, 0) == stop_at, "restore applied %s of %s; it should stop at #%d, before the damage"
            % (vec.get(origin, 0), origin, stop_at))
    out = cluster.cli("verify", "--data", data, check_rc=False)
    H.check(out.startswith("ok"), "replog verify on the restored directory: %s" % out.strip())
    H.step("restore named %s and stopped at #%d" % (needles, stop_at))


def check_verify(cluster, s3, key_file, needles):
    rc, v, err = S.verify(cluster, s3, PREFIX, key_file=key_file)
    problems = " ".join(v["problems"]) if v else ""
    H.step("replog archive verify -> exit %d, problems: %s" % (rc, v and v["problems"]))
    H.check(rc != 0 and v and not v["ok"], "archive verify passed a damaged archive: %s %s" % (v, err))
    for n in needles:
        H.check(n in problems, "%sarchive verify does not name %r: %s" % (
            "KNOWN BUG: " if VERIFY_NAMES_ALL else "", n, problems))


def damage_test(cluster):
    s3 = S.S3rver(cluster).start()
    n0, n1, n2 = S.members(cluster, ["n0", "n1", "n2"])
    n0.extra_args += S.archive_args(s3, PREFIX, poll_ms=200)
    n0.start()
    for b in range(BURSTS):
        for i in range(8):
            n0.call("set", {"path": "b%d.k%d" % (b, i), "value": i})
        time.sleep(0.3)
    S.wait_archived(n0, timeout=30)
    held = n0.vector()[n0.node_id]
    origin = n0.node_id.lower()
    n0.stop()
    segs = S.segments(s3.list(PREFIX), PREFIX)[origin]
    H.check(len(segs) >= 6, "only %d segments for %d updates: too few to damage a middle one" % (len(segs), held))
    key_file = os.path.join(cluster.tmp, "archive.key")
    n0.cli("archive", "key", "export", key_file)
    rc, v, err = S.verify(cluster, s3, PREFIX, key_file=key_file)
    H.check(rc == 0 and v["ok"], "archive verify before the damage: %s %s" % (v, err))
    H.step("n0 archived %d updates in %d segments; archive verify: ok" % (held, len(segs)))

    a = random.randrange(1, len(segs) - 3)
    b = random.randrange(a + 2, len(segs) - 1)
    a_first, a_last, a_key = segs[a]
    a_name = a_key[len(PREFIX):]   # replog names objects by their key under the archive's prefix
    b_first, b_last, b_key = segs[b]
    gap = ["log/%s" % origin, "#%d" % b_first]   # the hole: named by the origin and the first missing seq

    s3.delete(b_key)
    H.check(b_key not in s3.list(PREFIX), "the deleted segment is still listed")
    H.step("deleted segment B %s (#%d..#%d)" % (b_key, b_first, b_last))
    check_restore(cluster, s3, key_file, "restored-hole", origin, b_first - 1, gap)
    check_verify(cluster, s3, key_file, gap)

    sealed = bytearray(s3.get(a_key))
    at = random.randrange(len(sealed) // 4, len(sealed))
    sealed[at] ^= 1 << random.randrange(8)
    old_etag = s3.list(a_key)[a_key][0]
    new_etag = s3.put(a_key, bytes(sealed))
    H.check(new_etag != old_etag, "the altered object has its old ETag: the PUT did not take")
    H.step("flipped one bit of byte %d of %d in segment A %s (#%d..#%d)" % (at, len(sealed), a_key, a_first, a_last))
    check_restore(cluster, s3, key_file, "restored-both", origin, a_first - 1, [a_name] + gap)
    # KNOWN BUG (run with --verify-names-all): archive verify stops at the first problem
    # of an origin and leaves the hole after it unnamed; restore names both.
    check_verify(cluster, s3, key_file, [a_name] + (gap if VERIFY_NAMES_ALL else []))

    # A member that syncs from the archive while running: it names both and stops before A.
    n1.extra_args += S.archive_args(s3, PREFIX, poll_ms=200)
    n1.start()

    def named():
        a1 = n1.status()["archive"]
        d = " ".join("%s %s" % kv for kv in a1["damaged"].items())
        return a_name in d and ("#%d" % b_first) in d and a1
    a1 = H.wait_until(named, "n1's status.archive.damaged to name A and the hole", timeout=20,
                      on_timeout=lambda: json.dumps(n1.status()["archive"]))
    time.sleep(1)  # more polls: still nothing past the damage
    got = n1.vector().get(n0.node_id, 0)
    H.check(got == a_first - 1, "n1 holds #%d of n0, expected #%d (right before A)" % (got, a_first - 1))
    H.step("n1 (--archive): status.archive.damaged %s; it holds n0 up to #%d" % (json.dumps(a1["damaged"]), got))


if __name__ == "__main__":
    H.run(damage_test)

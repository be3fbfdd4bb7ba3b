#!/usr/bin/python3
"""Cluster.AnIndependentS3ClientReadsAndWritesTheArchive: s3cmd (Debian's, an S3
client that shares no code with replog) against what replog wrote to a real s3rver:
- it lists every object the archiver wrote, with the same sizes, and downloads them
  into a directory: each file's MD5 is the ETag replog's PUT got;
- it uploads that directory to a second s3rver, in a bucket and prefix that replog
  never wrote to: `replog archive verify` proves every origin there, and `replog
  restore --archive-key` from it gives the nodes' state hash.

Skips (exit 77) when s3cmd is not installed (tools/deps.sh installs it).

Usage: archive_interop.py PATH_TO_REPLOG"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import s3 as S  # noqa: E402

PREFIX = "interop/"


def s3cmd(cluster, server, *args):
    """Runs s3cmd with a config of its own for `server` (path-style, plain HTTP)."""
    conf = os.path.join(cluster.tmp, "s3cmd-%d.cfg" % server.port)
    if not os.path.exists(conf):
        with open(conf, "w") as f:
            f.write("[default]\naccess_key = S3RVER\nsecret_key = S3RVER\nhost_base = 127.0.0.1:%d\n"
                    "host_bucket = 127.0.0.1:%d\nuse_https = False\nsignature_v2 = False\n"
                    "bucket_location = us-east-1\nguess_mime_type = False\nprogress_meter = False\n"
                    % (server.port, server.port))
    r = subprocess.run(["s3cmd", "-c", conf, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=120)
    H.check(r.returncode == 0, "s3cmd %s failed (exit %d): %s %s" % (" ".join(args), r.returncode,
                                                                   r.stderr.strip(), r.stdout.strip()[-500:]))
    return r.stdout


def interop_test(cluster):
    if not shutil.which("s3cmd"):
        print("SKIP: s3cmd is not installed (tools/deps.sh installs it)")
        sys.exit(77)
    s3a = S.S3rver(cluster, "s3a").start()
    n0, n1 = S.members(cluster, ["n0", "n1"])
    n1.peers = ["%s@%s" % (n0.device_id(), n0.listen)]
    for n in (n0, n1):
        n.extra_args += S.archive_args(s3a, PREFIX, poll_ms=200)
        n.start()
    for i in range(30):
        n0.call("set", {"path": "a.k%d" % i, "value": i})
        n1.call("inc", {"path": "b.count", "by": i})
    expected = {n0.node_id: 30, n1.node_id: 30}
    final = cluster.wait_converged(expected=expected)
    for n in (n0, n1):
        S.wait_archived(n)
    for n in (n0, n1):
        n.stop()   # nothing merges or uploads while the two clients compare listings
        n.proc = None
    ours = s3a.list(PREFIX)
    H.step("replog archived %d objects to %s" % (len(ours), s3a.uri(PREFIX)))

    listed = {}
    for line in s3cmd(cluster, s3a, "ls", "--recursive", "s3://%s/%s" % (s3a.bucket, PREFIX)).splitlines():
        f = line.split()
        if len(f) >= 4 and f[-1].startswith("s3://"):
            listed[f[-1][len("s3://%s/" % s3a.bucket):]] = int(f[2])
    H.check(listed == {k: v[2] for k, v in ours.items()},
            "s3cmd ls lists %d objects, replog wrote %d; differences: %s" % (
                len(listed), len(ours), sorted(set(listed) ^ set(ours))[:5]))
    H.step("s3cmd ls --recursive: the same %d keys and sizes" % len(listed))

    down = os.path.join(cluster.tmp, "downloaded")
    os.makedirs(down)
    s3cmd(cluster, s3a, "get", "--recursive", "s3://%s/%s" % (s3a.bucket, PREFIX), down + "/")
    files = {}
    for root, _dirs, names in os.walk(down):
        for name in names:
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                files[PREFIX + os.path.relpath(p, down)] = hashlib.md5(f.read()).hexdigest()
    H.check(set(files) == set(ours), "s3cmd get wrote %d files for %d objects: %s" % (
        len(files), len(ours), sorted(set(files) ^ set(ours))[:5]))
    bad = [k for k in ours if ours[k][0].strip('"') != files[k]]
    H.check(not bad, "downloaded files whose MD5 is not the object's ETag: %s" % bad[:5])
    H.step("s3cmd get --recursive: %d files, each one's MD5 = the ETag of replog's PUT" % len(files))

    s3b = S.S3rver(cluster, "s3b", bucket="elsewhere-bucket").start()
    s3cmd(cluster, s3b, "put", "--recursive", down + "/", "s3://%s/moved/" % s3b.bucket)
    H.check(len(s3b.list("moved/")) == len(ours), "s3cmd put uploaded %d objects of %d" % (
        len(s3b.list("moved/")), len(ours)))
    H.step("s3cmd put --recursive: the directory uploaded to a second s3rver as %s" % s3b.uri("moved/"))
    key_file = os.path.join(cluster.tmp, "archive.key")
    n0.cli("archive", "key", "export", key_file)
    rc, v, err = S.verify(cluster, s3b, "moved/", key_file=key_file)
    H.check(rc == 0 and v and v["ok"], "archive verify of the uploaded copy: exit %d %s %s" % (rc, v, err))
    verified = {o.lower(): e["verified"] for o, e in v["origins"].items()}
    H.check(verified == {o.lower(): s for o, s in expected.items()}, "archive verify proves %s, expected %s"
            % (verified, expected))
    rc, j, err = S.restore(cluster, s3b, "moved/", os.path.join(cluster.tmp, "restored"), key_file=key_file)
    H.check(j["state_hash"] == final and j["updates_stored"] == 60,
            "restore from the copy: %s, the nodes' hash %s" % (json.dumps(j), final))
    H.step("replog archive verify and restore from s3cmd's upload: every origin proved, the nodes' hash")


if __name__ == "__main__":
    H.run(interop_test)

"""Helpers for the archive cluster tests (tests/cluster/archive_*.py): a real
S3-compatible server (s3rver, installed by tools/deps.sh into tests/s3/node_modules)
on loopback, listings with ETags straight from its HTTP API, and member devices that
share the cluster secret (and so the archive key) and trust each other.

s3rver checks no signature, so any access key works; the tests set S3RVER/S3RVER in
the environment the replog processes inherit, and name the endpoint with
--s3-endpoint. It also ignores If-None-Match, so a test proves that nothing was
overwritten by comparing ETags before and after.
"""
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import harness as H

HERE = os.path.dirname(os.path.abspath(__file__))
S3RVER = os.path.join(HERE, "..", "s3", "node_modules", ".bin", "s3rver")
BUCKET = "replog-archive"
PASSPHRASE = "correct horse battery staple"


def s3_env():
    """The credentials every replog process of a test inherits (s3rver checks none)."""
    os.environ["AWS_ACCESS_KEY_ID"] = "S3RVER"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "S3RVER"
    os.environ["AWS_REGION"] = "us-east-1"
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ["REPLOG_PASSPHRASE"] = PASSPHRASE


class S3rver:
    """s3rver on 127.0.0.1 in a fresh directory with one bucket. start() takes the port
    the kernel picks (--port 0) from the line it prints; stop() and then start() again
    serve the same directory on the same port (an outage). Registered with the cluster,
    so it is stopped whatever the test does."""

    def __init__(self, cluster, name="s3", bucket=BUCKET):
        H.check(os.access(S3RVER, os.X_OK), "%s is missing: run tools/deps.sh (it installs s3rver with npm)" % S3RVER)
        self.dir = os.path.join(cluster.tmp, name)
        os.makedirs(self.dir)
        self.bucket = bucket
        self.log_path = os.path.join(cluster.tmp, name + ".log")
        self.port = 0
        self.proc = None
        cluster.services.append(self)
        s3_env()

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def uri(self, prefix):
        return "s3://%s/%s" % (self.bucket, prefix)

    def start(self, timeout=30):
        H.check(self.proc is None or self.proc.poll() is not None, "s3rver is already running")
        env = dict(os.environ)
        # s3rver makes continuation tokens with DES, in Node's OpenSSL 3 legacy provider only.
        env["NODE_OPTIONS"] = "--openssl-legacy-provider"
        args = [S3RVER, "--directory", self.dir, "--address", "127.0.0.1", "--port", str(self.port),
                "--configure-bucket", self.bucket, "--silent"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
                                     preexec_fn=H._die_with_parent)
        log.close()
        marker = b"listening on 127.0.0.1:"
        printed = b""
        deadline = time.monotonic() + timeout
        os.set_blocking(self.proc.stdout.fileno(), False)
        while time.monotonic() < deadline:
            H.check(self.proc.poll() is None, "s3rver exited (code %s) before it listened: %r; see %s" % (
                self.proc.returncode, printed, self.log_path))
            chunk = self.proc.stdout.read()
            if chunk:
                printed += chunk
                at = printed.find(marker)
                if at >= 0:
                    digits = printed[at + len(marker):]
                    n = len(digits) - len(digits.lstrip(b"0123456789"))
                    if 0 < n < len(digits):       # the whole number has arrived
                        port = int(digits[:n])
                        H.check(self.port in (0, port), "s3rver came back on port %d, not %d" % (port, self.port))
                        self.port = port
                        return self
            time.sleep(0.05)
        raise H.TestFailure("s3rver printed no port within %d s: %r" % (timeout, printed))

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.stop()

    # -- plain HTTP (s3rver needs no signature)
    def url(self, key=""):
        return "%s/%s/%s" % (self.endpoint, self.bucket, urllib.parse.quote(key, safe="/-_.~"))

    def list(self, prefix=""):
        """{key: (etag, last_modified, size)} of every object under `prefix` (ListObjectsV2,
        following continuation tokens; at most 10,000 pages)."""
        out, token = {}, None
        for _ in range(10000):
            q = {"list-type": "2", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            url = "%s/%s?%s" % (self.endpoint, self.bucket, urllib.parse.urlencode(sorted(q.items())))
            with urllib.request.urlopen(url, timeout=10) as r:
                root = ET.fromstring(r.read())
            for e in root.iter():   # s3rver's namespace is not AWS's: match local names
                e.tag = e.tag.rsplit("}", 1)[-1]
            for c in root.findall("Contents"):
                out[c.find("Key").text] = (c.find("ETag").text, c.find("LastModified").text,
                                                int(c.find("Size").text))
            if root.findtext("IsTruncated") != "true":
                return out
            token = root.findtext("NextContinuationToken")
        raise H.TestFailure("listing %r did not end" % prefix)

    def get(self, key):
        with urllib.request.urlopen(self.url(key), timeout=10) as r:
            return r.read()

    def put(self, key, data):
        req = urllib.request.Request(self.url(key), data=data, method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.headers.get("ETag")

    def delete(self, key):
        req = urllib.request.Request(self.url(key), method="DELETE")
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status


def segments(listing, prefix):
    """The segment keys of a listing ({key: ...}) under `prefix`, by origin:
    {origin hex: [(first, last, key)] sorted by first}."""
    out = {}
    for key in listing:
        rest = key[len(prefix):] if key.startswith(prefix) else None
        if not rest or not rest.startswith("log/") or not rest.endswith(".seg"):
            continue
        _, origin, name = rest.split("/")
        last, first = name[:-len(".seg")].split("-")
        out.setdefault(origin, []).append((int(first), int(last), key))
    for v in out.values():
        v.sort()
    return out


def feed_times_for(s3, prefix, origin):
    """Uploader times (ms) of the change feed entries under `prefix` that name `origin`."""
    out = []
    for key in s3.list(prefix + "changes/"):
        ms, o, _last = key[len(prefix + "changes/"):].split("-")
        if o.lower() == origin.lower():
            out.append(int(ms))
    return out


def members(cluster, names):
    """Data directories for `names` in one cluster that share the first one's cluster
    secret (so the archive key) and trust each other (CURVE on, discovery off, no peers)."""
    nodes = [cluster.add_node(n) for n in names]
    secret = os.path.join(nodes[0].data, "cluster.key")
    for n in nodes[1:]:
        shutil.copyfile(secret, os.path.join(n.data, "cluster.key"))
        os.chmod(os.path.join(n.data, "cluster.key"), 0o600)
    H.trust_each_other(nodes)
    return nodes


def archive_args(s3, prefix, poll_ms=200, grace_ms=None):
    args = ["--archive", s3.uri(prefix), "--s3-endpoint", s3.endpoint, "--archive-poll-ms", str(poll_ms)]
    if grace_ms is not None:
        args += ["--archive-grace-ms", str(grace_ms)]
    return args


def archive_status(node):
    return node.status().get("archive")


def wait_archived(node, timeout=60):
    """Until the node's archiver reports lag 0 for its own origin and the archive holding
    all of it (status.archive.archived[own] = own seq) with no error."""
    def done():
        s = node.status()
        a = s.get("archive") or {}
        own = s["vector"].get(node.node_id, 0)
        return (a.get("lag_updates") == 0 and not a.get("last_error")
                and a.get("archived", {}).get(node.node_id, 0) == own) and a
    return H.wait_until(done, "%s to archive all of its own updates" % node.name, timeout=timeout,
                        on_timeout=lambda: str(archive_status(node)))


def restore(cluster, s3, prefix, data, key_file=None, at=None, check_rc=True, timeout=300):
    """`replog restore --json`; returns (exit code, parsed JSON or None, stderr)."""
    args = [cluster.replog, "restore", "--from", s3.uri(prefix), "--s3-endpoint", s3.endpoint, "--data", data,
            "--json"]
    if key_file:
        args += ["--archive-key", key_file]
    if at:
        args += ["--at", at]
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if check_rc and r.returncode != 0:
        raise H.TestFailure("replog restore failed (exit %d): %s %s" % (r.returncode, r.stderr.strip(), r.stdout.strip()))
    try:
        j = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else None
    except ValueError:
        j = None
    return r.returncode, j, r.stderr


def verify(cluster, s3, prefix, data=None, key_file=None, timeout=300):
    """`replog archive verify --json`; returns (exit code, parsed JSON or None, stderr)."""
    args = [cluster.replog, "archive", "verify", "--archive", s3.uri(prefix), "--s3-endpoint", s3.endpoint, "--json"]
    args += ["--data", data] if data else ["--archive-key", key_file]
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    try:
        j = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else None
    except ValueError:
        j = None
    return r.returncode, j, r.stderr


def iso_ms(ms):
    """An ISO-8601 UTC time with milliseconds, as `--at` takes it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def segments_without_feed_entry(s3, prefix):
    """Segment keys under `prefix` with no change feed entry naming their origin and last seq."""
    listing = s3.list(prefix)
    fed = set()
    for key in listing:
        if key.startswith(prefix + "changes/"):
            _ms, origin, last = key[len(prefix + "changes/"):].split("-")
            fed.add((origin.lower(), int(last)))
    return sorted(key for origin, segs in segments(listing, prefix).items() for _f, last, key in segs
                  if (origin.lower(), last) not in fed)


def compare_listings(before, after, prefix):
    """What became of the objects of listing `before` in listing `after` ({key: (etag,
    ...)}): (changed, lost). `changed`: keys listed in both with another ETag. `lost`:
    keys gone from `after` that no segment in `after` covers (merging deletes a segment
    only after writing one that covers it; feed entries go only after 7 days)."""
    changed = sorted(k for k in before if k in after and after[k][0] != before[k][0])
    now = segments(after, prefix)
    lost = []
    for key in sorted(set(before) - set(after)):
        seg = segments({key: None}, prefix)
        if not seg:
            lost.append(key)
            continue
        ((origin, [(first, last, _)]),) = seg.items()
        if not any(f <= first and last <= l for f, l, _k in now.get(origin, [])):
            lost.append(key)
    return changed, lost


def chain(segs):
    """The chain of segments from seq 1 ([(first, last, key)] sorted by first), each step
    the one reaching furthest, as a reader takes it; returns (chain, the seq it reaches)."""
    out, at = [], 0
    while True:
        step = [s for s in segs if s[0] <= at + 1 and s[1] > at]
        if not step:
            return out, at
        best = max(step, key=lambda s: s[1])
        out.append(best)
        at = best[1]

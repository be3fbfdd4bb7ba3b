#!/usr/bin/python3
"""Cluster.AnArchiverKilledMidUploadResumes: a device writes a large burst (about
20 MB of updates) with no archive, then restarts with --archive to a real s3rver that it
reaches through a proxy limited to 4 MiB/s, so each segment (up to 4 MiB) takes about a
second to upload. Once one segment is in and the next one's bytes are flowing, the node
is SIGKILLed: mid-PUT. The archive then holds a gap-free prefix of the log and less than
all of it. Restarted (and given a few more calls), the node completes the archive: its
segments partition 1..seq with no gap and no overlap (nothing uploaded twice), no object
from before the kill has another ETag, `archive verify` proves the origin to its seq,
and a restore stores every update once and gives the node's state hash.

The kill is a process crash: the kernel still delivers what the node had written,
so the segment in flight may complete after it (the listing is let settle before the
restart). `--torn` cuts the connection at the kill instead (power lost mid-PUT), and
`--feed` also requires a change feed entry for every segment, `--lag` a lag in status
that counts what the archive lacks during the first upload: all three fail today (KNOWN
BUG, see their comments and tests/cluster/cluster.cmake).

Usage: archive_crash.py PATH_TO_REPLOG [--torn] [--feed]"""
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import s3 as S  # noqa: E402

PREFIX = "crash-test/"
BURST = int(os.environ.get("REPLOG_CRASH_UPDATES", "3000"))
VALUE_BYTES = 6000
RATE = 4 << 20
# Variants, each a test of its own (tests/cluster/cluster.cmake):
#   --torn  the connection dies with the node (KNOWN BUG: s3rver keeps the torn object,
#           and the restarted archiver takes it for archived by its name)
#   --lag   require status.archive.lag_updates to count what the archive lacks while the
#           first upload after a start runs (KNOWN BUG: it reads 0 until that round ends)
#   --feed  also require a change feed entry for every segment (KNOWN BUG: a segment
#           whose PUT completed after the kill never gets one)
TORN = "--torn" in sys.argv[2:]
FEED = "--feed" in sys.argv[2:]
LAG = "--lag" in sys.argv[2:]


def write(node, count, offset):
    pad = "x" * VALUE_BYTES
    writers = [H.Writer(node, (lambda t: lambda i: ("set", {"path": "big.t%d.k%d" % (t, (i + offset) % 500),
                                                             "value": "%s%d" % (pad, i + offset)}))(t),
                        count=count // 2 + (t < count % 2)) for t in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
        H.check(not w.is_alive() and not w.errors and w.acked == w.count,
                "calls on %s failed or hung: %s" % (node.name, w.errors[:3]))


def settle(s3, proxy, timeout=30):
    """Until the proxy forwards nothing more and the listing stays the same for 1 s."""
    last = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = (proxy.bytes_to_target, s3.list(PREFIX))
        if now == last:
            return
        last = now
        time.sleep(1)
    raise H.TestFailure("uploads to s3rver still moving %d s after the kill" % timeout)


def crash_test(cluster):
    s3 = S.S3rver(cluster).start()
    proxy = cluster.add_proxy(s3.port, "s3", rate_bytes_s=RATE)
    (n0,) = S.members(cluster, ["n0"])
    n0.start()
    t0 = time.monotonic()
    write(n0, BURST, 0)
    held = n0.vector()[n0.node_id]
    H.step("n0 wrote %d updates of ~%d bytes in %.1f s with no archive" % (held, VALUE_BYTES, time.monotonic() - t0))
    n0.stop()

    n0.extra_args += ["--archive", s3.uri(PREFIX), "--s3-endpoint", "http://127.0.0.1:%d" % proxy.port,
                      "--archive-poll-ms", "200"]
    n0.start()
    H.step("n0 restarted with --archive through a proxy at %d KiB/s" % (RATE >> 10))
    H.wait_until(lambda: n0.status()["archive"]["segments_put"] >= 1, "n0 to put its first segment", timeout=60)
    mark = proxy.bytes_to_target
    H.wait_until(lambda: proxy.bytes_to_target - mark >= (1 << 20), "the next segment's bytes to flow", timeout=30)
    a = n0.status()["archive"]
    if LAG:
        lacking = held - a["archived"].get(n0.node_id, 0)
        H.check(a["lag_updates"] >= lacking, "KNOWN BUG: status.archive.lag_updates is %d while the archive "
                "lacks %d of n0's updates (archived %s, held %d)" % (a["lag_updates"], lacking, a["archived"], held))
    if TORN:
        # The proxy cuts the connection as the node dies: what the kernel still held for
        # the node never reaches the server, as when the machine loses power mid-PUT.
        proxy.block()
        n0.kill()
        proxy.unblock()
    else:
        n0.kill()  # a process crash: the kernel still sends what the node had written
    H.step("SIGKILL mid-upload%s: %d segments put, %d bytes of the next one sent" % (
        " (connection cut with it)" if TORN else "", a["segments_put"], proxy.bytes_to_target - mark))
    settle(s3, proxy)

    listing = s3.list(PREFIX)
    segs = S.segments(listing, PREFIX).get(n0.node_id.lower(), [])
    H.check(segs, "no segment in the archive after the kill")
    _, upto = S.chain(segs)
    H.check(upto == max(s[1] for s in segs), "after the kill the archive has a gap: the chain from #1 reaches #%d, "
            "a segment ends at #%d: %s" % (upto, max(s[1] for s in segs), segs))
    H.check(upto < held, "the archive held all %d updates before the kill: the kill came too late" % held)
    H.step("listing after the kill: %s" % {k: v[2] for k, v in listing.items() if "/log/" in k})
    H.step("after the kill: %d segments hold 1..%d of %d, no gap" % (len(segs), upto, held))
    before = {k: v for k, v in listing.items()}
    # Whether the kill tore the newest segment: the offline check names it when it does
    # not open (the kernel may have sent only part of it before closing).
    pre_chain, _ = S.chain(S.segments(before, PREFIX)[n0.node_id.lower()])
    newest = pre_chain[-1]
    rc, v, _ = S.verify(cluster, s3, PREFIX, data=n0.data)
    torn_by_kill = rc != 0 and v is not None and any(newest[2].split(PREFIX, 1)[-1] in p for p in v["problems"])
    H.step("the newest segment before the restart %s" % ("is torn" if torn_by_kill else "opens"))

    n0.start()
    write(n0, 50, BURST)
    held = n0.vector()[n0.node_id]
    a = S.wait_archived(n0, timeout=120)
    H.step("restarted: archive complete (lag %d, %d segments put since the restart)"
           % (a["lag_updates"], a["segments_put"]))
    after = s3.list(PREFIX)
    segs = S.segments(after, PREFIX)[n0.node_id.lower()]
    H.step("listing after the restart: %s" % {k: v[2] for k, v in after.items() if "/log/" in k})
    ch, reach = S.chain(segs)
    H.check(reach == held, "after the restart the chain of segments from #1 reaches #%d of %d: %s"
            % (reach, held, segs))
    # A torn newest segment is no archive: the restart deletes it and uploads its range again
    # (and may merge it away after). A process crash can tear the upload too (the kernel
    # sends what was written, then closes), which the offline check above saw. With
    # --torn the tear is certain.
    torn = [newest] if TORN or torn_by_kill else []
    lacked = held - upto + sum(last - first + 1 for first, last, _ in torn)
    H.check(a["updates_put"] == lacked, "the restarted node uploaded %d updates; the archive lacked %d "
            "(something was uploaded twice)" % (a["updates_put"], lacked))
    changed, lost = S.compare_listings(before, after, PREFIX)
    changed = [k for k in changed if k not in {key for _, _, key in torn}]
    H.check(not changed, "objects from before the kill with another ETag: %s" % changed[:5])
    H.check(not lost, "objects from before the kill gone, and no segment covers them: %s" % lost[:5])
    H.step("the chain of %d segments reaches #%d with no gap (%d objects in all); the restarted node uploaded "
           "exactly the %d updates the archive lacked; every object from before the kill kept its ETag or was "
           "merged into one that covers it" % (len(ch), held, len(segs), held - upto))
    unfed = S.segments_without_feed_entry(s3, PREFIX)
    if FEED:
        H.check(not unfed, "KNOWN BUG: segments without a change feed entry after the restart "
                "(pollers see them only by the sweep): %s" % unfed)
    H.step("segments without a change feed entry: %s" % unfed)

    rc, v, err = S.verify(cluster, s3, PREFIX, data=n0.data)
    H.check(rc == 0 and v and v["ok"], "%sarchive verify: exit %d %s %s%s" % (
        "KNOWN BUG: a torn segment stays in the archive after the restart: " if TORN else "", rc, v, err,
        "; yet n0's status.archive says lag %d, archived %s, damaged %s" % (
            a["lag_updates"], a["archived"], a["damaged"]) if TORN else ""))
    verified = {o.lower(): e["verified"] for o, e in v["origins"].items()}
    H.check(verified == {n0.node_id.lower(): held}, "archive verify proves %s, n0 holds %d" % (verified, held))
    final = n0.hash()
    key_file = os.path.join(cluster.tmp, "archive.key")
    n0.cli("archive", "key", "export", key_file)
    rc, j, err = S.restore(cluster, s3, PREFIX, os.path.join(cluster.tmp, "restored"), key_file=key_file)
    H.check(j["updates_stored"] == held and j["updates_got"] == held,
            "restore got %d and stored %d updates, n0 holds %d" % (j["updates_got"], j["updates_stored"], held))
    H.check(j["state_hash"] == final, "restored hash %s, n0's %s" % (j["state_hash"], final))
    H.step("archive verify: 1..%d proved; restore: %d updates, each once, n0's hash" % (held, held))


if __name__ == "__main__":
    H.run(crash_test)

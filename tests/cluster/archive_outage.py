#!/usr/bin/python3
"""Cluster.AnS3OutageLosesNothing: two linked devices archive one prefix of a real
s3rver while calls go on at both. The server is stopped for REPLOG_OUTAGE_S seconds
(default 10; issue 11 names 30 s, which adds nothing here: the S3 client gives up on a
refused connection after its ~3 s of retries, and the archiver's backoff is capped at
the 200 ms poll interval, so after 10 s every state of the retry loop has been passed
through several times) and started again on the same port and directory. Checked: no
call fails, status.archive.last_error names the outage while it lasts and the lag grows,
after it the archive completes (lag 0, no error), no object that existed before the
outage has another ETag after it (s3rver ignores If-None-Match) and every one gone
was merged into a segment that covers it, `archive verify` proves every origin, and
a restore from the archive gives the nodes' state hash.

The server is stopped while both archives are idle (the calls pause for that moment
and go on through the outage): s3rver keeps a PUT cut off by its stop as a torn
object, which the archiver then takes for archived for good (the bug that the DISABLED
test Cluster.Archive.KnownBug.TornSegmentIsReplacedAfterACrash shows every time).
--stop-mid-put stops the server while the nodes upload; then this test fails at times
for that reason (one run in several).

Usage: archive_outage.py PATH_TO_REPLOG [--stop-mid-put]"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import s3 as S  # noqa: E402

OUTAGE_S = float(os.environ.get("REPLOG_OUTAGE_S", "10"))
PREFIX = "outage-test/"
# --stop-mid-put: stop the server while the nodes upload (fails at times, KNOWN BUG: a
# PUT it was receiving stays as a torn object, which the archiver takes for archived).
MID_PUT = "--stop-mid-put" in sys.argv[2:]


def make_calls(k):
    def call(i):
        if i % 3 == 0:
            return "inc", {"path": "shared.count", "by": 1}
        return "set", {"path": "n%d.k%d" % (k, i % 200), "value": i}
    return call


def outage_test(cluster):
    s3 = S.S3rver(cluster).start()
    H.step("s3rver on %s; an outage of %.0f s (REPLOG_OUTAGE_S)" % (s3.endpoint, OUTAGE_S))
    n0, n1 = S.members(cluster, ["n0", "n1"])
    n1.peers = ["%s@%s" % (n0.device_id(), n0.listen)]
    for n in (n0, n1):
        n.extra_args += S.archive_args(s3, PREFIX, poll_ms=200)
        n.start()
    first = [H.Writer(n, make_calls(k), pause=0.01) for k, n in enumerate((n0, n1))]
    writers = list(first)
    for w in first:
        w.start()
    try:
        H.wait_until(lambda: all(n.status()["archive"]["segments_put"] >= 3 for n in (n0, n1)),
                     "both nodes to archive a few segments", timeout=20)
        if not MID_PUT:
            # The server goes down between uploads: s3rver keeps a PUT it was receiving
            # as a torn object, which the archiver then takes for archived (the KnownBug
            # test --stop-mid-put). The calls resume as soon as it is down.
            for w in first:
                w.stop()
            for n in (n0, n1):
                S.wait_archived(n)
        before = s3.list(PREFIX)
        H.step("before the outage: %d objects in the archive, calls acknowledged: %s"
               % (len(before), [w.acked for w in first]))

        s3.stop()
        down_at = time.monotonic()
        if not MID_PUT:
            writers += [H.Writer(n, (lambda f, o: lambda i: f(i + o))(make_calls(k), first[k].acked), pause=0.01)
                        for k, n in enumerate((n0, n1))]
            for w in writers[2:]:
                w.start()
        H.step("s3rver stopped%s" % (" mid-upload" if MID_PUT else "; calls go on"))
        seen = {}
        lag = {}
        while time.monotonic() - down_at < OUTAGE_S:
            for n in (n0, n1):
                a = n.status()["archive"]
                if a["last_error"] and n.name not in seen:
                    seen[n.name] = a["last_error"]
                    H.step("%s: status.archive.last_error after %.1f s: %s"
                           % (n.name, time.monotonic() - down_at, a["last_error"]))
                lag[n.name] = a["lag_updates"]
            for w in writers:
                H.check(not w.errors, "a call on %s failed during the outage: %s" % (w.node.name, w.errors[:3]))
            time.sleep(0.2)
        acked_during = [sum(w.acked for w in writers if w.node is n) for n in (n0, n1)]
        H.check(set(seen) == {"n0", "n1"}, "status.archive.last_error stayed empty during the outage on %s"
                % sorted({"n0", "n1"} - set(seen)))
        H.check(all(v > 0 for v in lag.values()), "the archive lag did not grow during the outage: %s" % lag)
        H.step("during the outage: lag %s, calls acknowledged %s, none failed" % (json.dumps(lag), acked_during))

        s3.start()
        H.step("s3rver back on the same port %d and directory" % s3.port)
        time.sleep(2)
    finally:
        for w in writers:
            w.stop()
    for w in writers:
        H.check(not w.errors, "a call on %s failed: %s" % (w.node.name, w.errors[:3]))
    expected = {n.node_id: sum(w.acked for w in writers if w.node is n) for n in (n0, n1)}
    H.step("calls stopped: %s acknowledged, none failed" % json.dumps(expected))
    final = cluster.wait_converged(expected=expected, timeout=30)
    cluster.check_final(expected=expected)
    for n in (n0, n1):
        a = S.wait_archived(n, timeout=60)
        H.step("%s: archive complete after the outage: lag %d, last_error %r, segments_put %d"
               % (n.name, a["lag_updates"], a["last_error"], a["segments_put"]))

    after = s3.list(PREFIX)
    changed, lost = S.compare_listings(before, after, PREFIX)
    H.check(not lost, "objects gone after the outage that no segment covers: %s" % lost[:5])
    H.check(not changed, "objects with another ETag after the outage: %s" % [(k, before[k][0], after[k][0])
                                                                            for k in changed[:5]])
    H.step("of the %d objects from before the outage, %d are there with their ETags, the others merged into "
           "segments that cover them (%d objects now)" % (len(before), len(set(before) & set(after)), len(after)))

    unfed = S.segments_without_feed_entry(s3, PREFIX)
    H.step("segments without a change feed entry: %s" % unfed)
    key_file = os.path.join(cluster.tmp, "archive.key")
    n0.cli("archive", "key", "export", key_file)
    rc, v, err = S.verify(cluster, s3, PREFIX, key_file=key_file)
    H.check(rc == 0 and v and v["ok"], "%sarchive verify: exit %d %s %s" % (
        "KNOWN BUG: a PUT torn by the outage stays in the archive: " if MID_PUT else "", rc, v, err))
    verified = {o.lower(): e["verified"] for o, e in v["origins"].items()}
    H.check(verified == {o.lower(): s for o, s in expected.items()}, "archive verify proves %s, the nodes hold %s"
            % (verified, expected))
    rc, j, err = S.restore(cluster, s3, PREFIX, os.path.join(cluster.tmp, "restored"), key_file=key_file)
    H.check(j["state_hash"] == final, "restored hash %s, the nodes' %s" % (j["state_hash"], final))
    H.check(j["updates_stored"] == sum(expected.values()), "restore stored %d updates, %d were made"
            % (j["updates_stored"], sum(expected.values())))
    H.step("archive verify: every origin proved to its seq; restore: %d updates, the nodes' hash"
           % j["updates_stored"])


if __name__ == "__main__":
    H.run(outage_test)

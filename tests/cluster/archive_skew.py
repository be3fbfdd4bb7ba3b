#!/usr/bin/python3
"""Cluster.Archive.AnUploaderWithASkewedClockIsSeenByTheFeed: n0 archives and polls
every 200 ms, in a bucket that also holds 100 other origins' prefixes, so its
per-origin sweep (one origin every second poll) takes some 40 s to come round. n1,
paired with n0 and never linked to it, runs with its clock SKEW_S behind (libfaketime)
and archives one update; its change feed entry carries n1's clock. Checked: n0 holds
n1's update within 3 s (15 polls; issue 11's target is a new segment seen within 2
polls), so it was found by the feed, not the sweep.

The default skew is 2 minutes, inside the archiver's 5-minute skew window. The DISABLED
KnownBug variant (--ten-minutes) uses 10 minutes: S3 accepts requests from a clock up to
15 minutes off (s3rver too), but the feed listing starts 5 minutes before the newest
entry seen, so such an uploader's entries are skipped and n0 finds its update only by
the sweep, some 40 s later here (at a 2 s poll and 1,000 origins: over an hour).

Usage: archive_skew.py PATH_TO_REPLOG [--ten-minutes]"""
import os
import random
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import s3 as S  # noqa: E402
from archive_sync import FAKETIME_LIBS  # noqa: E402

PREFIX = "skew-test/"
SKEW_S = 600 if "--ten-minutes" in sys.argv[2:] else 120
OTHER_ORIGINS = 100
SEEN_WITHIN_S = 3.0


def skew_test(cluster):
    faketime = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
    H.check(faketime, "libfaketime is missing (tools/deps.sh installs faketime)")
    s3 = S.S3rver(cluster).start()
    for _ in range(OTHER_ORIGINS):
        s3.put("%slog/%016x/placeholder" % (PREFIX, random.getrandbits(64)), b"")
    n0, n1 = S.members(cluster, ["n0", "n1"])
    n0.extra_args += S.archive_args(s3, PREFIX, poll_ms=200)
    n0.start()
    n0.call("set", {"path": "n0.k", "value": 1})
    S.wait_archived(n0)
    time.sleep(1)  # n0 has listed its own feed entry: its feed position is now
    H.step("n0 archives and polls every 200 ms beside %d other origins' prefixes" % OTHER_ORIGINS)

    n1.wrapper = ["env", "LD_PRELOAD=" + faketime, "FAKETIME=-%d" % SKEW_S, "FAKETIME_DONT_FAKE_MONOTONIC=1",
                  "FAKETIME_NO_CACHE=1"]
    n1.extra_args += S.archive_args(s3, PREFIX, poll_ms=200)
    n1.start()
    n1.call("set", {"path": "n1.k", "value": 1})
    S.wait_archived(n1)
    t0 = time.monotonic()
    times = S.feed_times_for(s3, PREFIX, n1.node_id)
    H.check(times and all(time.time() * 1000 - t > (SKEW_S - 60) * 1000 for t in times),
            "n1's feed entries do not carry its skewed clock: %s" % times)
    H.step("n1 (clock %d s behind) archived its update; its feed entry is %d s old"
           % (SKEW_S, time.time() - max(times) / 1000))

    def seen():
        return n0.vector().get(n1.node_id) == 1
    H.wait_until(seen, "n0 to take n1's update from the archive", timeout=120)
    took = time.monotonic() - t0
    H.step("n0 took n1's update %.1f s after it was archived" % took)
    H.check(took <= SEEN_WITHIN_S, "%sn0 took n1's update %.1f s (%d polls) after it was archived: the feed "
            "skipped an entry from a clock %d s behind, and the sweep found it" % (
                "KNOWN BUG: " if SKEW_S > 300 else "", took, took / 0.2, SKEW_S))


if __name__ == "__main__":
    H.run(skew_test)

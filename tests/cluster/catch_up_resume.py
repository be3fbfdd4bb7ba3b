#!/usr/bin/python3
"""Cluster.CatchUpResumesAfterStopMidway: a node 30,000 updates behind (imported
into its only peer from an export-format file of a signed origin, with a head
every 1,000 updates) is stopped twice in the middle of
its catch-up - first SIGKILL, then SIGTERM - and restarted each time. It ends with
all of them and the same state hash, its count never goes down (not across the
stops either: what it had committed stays), and it resumes instead of starting over.

Its link to the peer goes through a throttled TCP proxy (about 2 MB/s), so that the
catch-up takes seconds and "midway" can be hit reliably.

Usage: catch_up_resume.py PATH_TO_REPLOG"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

TOTAL = 30000
RATE = 2_000_000


def test(cluster):
    a = cluster.add_node("a")
    path = os.path.join(cluster.tmp, "device.mpk")
    device = H.generate_updates(path, TOTAL, a.status()["cluster_id"], value_bytes=200)
    out = json.loads(a.cli("import", path, "--json"))
    H.check(out["accepted"] == TOTAL and not out["refused"], "import into a: %s" % out)
    H.step("a holds %d updates (%.1f MB file) of origin %016x; starting a"
           % (TOTAL, os.path.getsize(path) / 1e6, device))
    a.start()
    proxy = cluster.add_proxy(a.port, "a", rate_bytes_s=RATE)
    c = cluster.add_node("c", peers=[proxy.endpoint])
    expected = {"%016x" % device: TOTAL}
    samples = []   # (phase, count)

    def sample(phase):
        cluster.check_alive()
        n = c.count()
        samples.append((phase, n))
        return n

    def run_until(phase, fraction):
        c.start(wait=False)
        target = int(TOTAL * fraction)
        t0 = time.monotonic()
        H.wait_until(lambda: sample(phase) >= target, "c to pass %d updates" % target, timeout=30, interval=0.02,
                     on_timeout=lambda: cluster.describe([a, c]))
        H.step("%s: c holds %d updates after %.2f s" % (phase, samples[-1][1], time.monotonic() - t0))

    H.step("c: empty, peering with a through a proxy limited to %.1f MB/s" % (RATE / 1e6))
    run_until("run 1", 0.25)
    c.kill()
    k1 = c.count()   # offline, from LMDB
    H.step("c SIGKILLed; its log holds %d updates" % k1)
    H.check(k1 >= samples[-1][1], "c lost committed updates to SIGKILL: had %d, holds %d" % (samples[-1][1], k1))
    H.check(k1 < TOTAL, "c was not stopped midway (it held all %d already)" % TOTAL)
    samples.append(("after SIGKILL", k1))

    run_until("run 2", 0.6)
    code = c.stop()
    H.check(code == 0, "c exited with code %s after SIGTERM" % code)
    k2 = c.count()
    H.step("c stopped with SIGTERM (exit 0) mid-catch-up; its log holds %d updates" % k2)
    H.check(k2 >= samples[-1][1], "c lost updates across SIGTERM: had %d, holds %d" % (samples[-1][1], k2))
    H.check(k2 < TOTAL, "c was not stopped midway the second time (it held all %d already)" % TOTAL)
    samples.append(("after SIGTERM", k2))

    c.start(wait=False)
    first = None
    t0 = time.monotonic()

    def done():
        nonlocal first
        n = sample("run 3")
        first = n if first is None else first
        return n == TOTAL
    H.wait_until(done, "c to hold all %d updates" % TOTAL, timeout=30, interval=0.02,
                 on_timeout=lambda: cluster.describe([a, c]))
    H.step("run 3: c holds all %d after %.2f s (it restarted from %d)" % (TOTAL, time.monotonic() - t0, first))
    drops = [(x, y) for x, y in zip(samples, samples[1:]) if y[1] < x[1]]
    H.check(not drops, "c's count went down: %s" % drops[:5])
    H.step("c's count never went down over %d samples across two stops and restarts" % len(samples))
    size = os.path.getsize(path)
    H.step("a sent %.1f MB to c through the proxy for a %.1f MB log" % (proxy.bytes_from_target / 1e6, size / 1e6))
    H.check(proxy.bytes_from_target < 1.5 * size,
            "c fetched %.1f MB for a %.1f MB log: it started over instead of resuming"
            % (proxy.bytes_from_target / 1e6, size / 1e6))
    cluster.wait_converged(expected=expected)
    cluster.check_final(expected=expected)
    errors = cluster.stop_all()
    H.check(not errors, "; ".join(errors))
    cluster.verify_offline()


if __name__ == "__main__":
    H.run(test)

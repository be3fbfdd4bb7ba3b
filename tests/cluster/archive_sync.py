#!/usr/bin/python3
"""Cluster.TwoNodesThatNeverMeetSyncThroughTheArchive: two devices paired once (one
cluster secret, each on the other's trust list) run with no link at all (CURVE,
--discovery off, no --peer), both `--archive` one prefix of a real s3rver with a
200 ms poll. Calls on each: both converge to one state hash, and neither lists a peer.

Then a third device "a month later": n2, paired at the start, writes its updates
under libfaketime with its clock 30 days behind (replog has no clock option of its
own), offline, so their timestamps are a month old. It uploads them with `archive push`
to a prefix of its own, and the test copies only its segments into the shared prefix,
with no change feed entry (as after the feed's 7-day retention dropped them). n0 and
n1, which have polled many times by then, must find them by the per-origin sweep;
then n2 runs with --archive too, and all three converge. Last, a member n3 that never
runs a node: `replog archive pull` gives it the same hash, and `archive status` shows
every origin archived and held to its seq.

Usage: archive_sync.py PATH_TO_REPLOG"""
import json
import os
import shutil
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import s3 as S  # noqa: E402

PREFIX = "sync-test/"
CALLS = 40
MONTH_S = 30 * 24 * 3600
FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/faketime/libfaketimeMT.so.1"]


def calls(node, k, count, start=0):
    for i in range(start, start + count):
        node.call("set", {"path": "n%d.k%d" % (k, i), "value": i})
        if i % 3 == 0:
            node.call("inc", {"path": "shared.count", "by": k + 1})


def sync_test(cluster):
    faketime = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
    H.check(faketime, "libfaketime is missing (tools/deps.sh installs faketime)")
    s3 = S.S3rver(cluster).start()
    H.step("s3rver on %s" % s3.endpoint)
    n0, n1, n2 = S.members(cluster, ["n0", "n1", "n2"])
    for n in (n0, n1):
        n.extra_args += S.archive_args(s3, PREFIX, poll_ms=200)
        n.start()
    H.step("n0 and n1: paired (one cluster secret, mutual trust), no --peer, discovery off, --archive %s"
           % s3.uri(PREFIX))

    calls(n0, 0, CALLS)
    calls(n1, 1, CALLS)
    per = CALLS + (CALLS + 2) // 3
    expected = {n0.node_id: per, n1.node_id: per}
    h = cluster.wait_converged(nodes=[n0, n1], expected=expected, timeout=30)
    cluster.check_final(nodes=[n0, n1], expected=expected)
    for n in (n0, n1):
        s = n.status()
        H.check(not s["peers"], "%s lists peers: %s" % (n.name, s["peers"]))
        a = s["archive"]
        H.check(a["segments_got"] > 0 and a["updates_stored"] == per,
                "%s stored %s updates from the archive, expected %d" % (n.name, a["updates_stored"], per))
    H.step("n0 and n1 converged on %s through the archive alone (no peers; each stored the other's %d updates "
           "from it)" % (h[:16], per))

    # Many polls later, a third device that wrote a month ago.
    r0 = n0.status()["archive"]["requests"]
    time.sleep(3)
    r1 = n0.status()["archive"]["requests"]
    H.check(r1 - r0 >= 10, "n0 made only %d archive requests in 3 s of 200 ms polls" % (r1 - r0))
    H.step("n0 kept polling: %d archive requests in 3 s" % (r1 - r0))
    n2.wrapper = ["env", "LD_PRELOAD=" + faketime, "FAKETIME=-%d" % MONTH_S, "FAKETIME_DONT_FAKE_MONOTONIC=1",
                  "FAKETIME_NO_CACHE=1"]
    n2.start()
    calls(n2, 2, CALLS)
    n2.stop()
    n2.proc = None  # stopped on purpose: not "exited unexpectedly"
    n2.wrapper = []
    now_ms = int(time.time() * 1000)
    own = n2.hash()
    week_ago = n2.cli("state", "--hash", "--at", S.iso_ms(now_ms - 7 * 86400_000)).strip()
    two_months_ago = n2.cli("state", "--hash", "--at", S.iso_ms(now_ms - 2 * MONTH_S * 1000)).strip()
    H.check(week_ago == own and two_months_ago != own,
            "n2's updates are not a month old (the fake clock did not take): hash %s, a week ago %s, "
            "two months ago %s" % (own, week_ago, two_months_ago))
    H.step("n2 wrote %d updates with its clock %d days behind (offline: state --at a week ago = its state)"
           % (per, MONTH_S // 86400))
    # It uploads them to a prefix of its own, and only its segments are copied into the
    # shared one, without change feed entries: as after the feed's retention dropped them.
    # (A device whose own clock is a month off cannot upload at all: S3 answers 403
    # RequestTimeTooSkewed, which status.archive.last_error shows.)
    out = n2.cli("archive", "push", "--archive", s3.uri("staging/"), "--s3-endpoint", s3.endpoint)
    H.step("n2: replog archive push: %s" % out.strip())
    copied = 0
    for key in s3.list("staging/log/"):
        s3.put(PREFIX + key[len("staging/"):], s3.get(key))
        copied += 1
    H.check(copied > 0, "archive push wrote no segment")
    H.check(not S.feed_times_for(s3, PREFIX, n2.node_id), "the shared prefix has feed entries of n2")
    H.step("n2's %d segments copied into %s with no change feed entry" % (copied, s3.uri(PREFIX)))
    expected[n2.node_id] = per
    h = cluster.wait_converged(nodes=[n0, n1], expected=expected, timeout=30)
    H.step("n0 and n1 took n2's month-old updates from the archive by the sweep: %s" % h[:16])
    n2.extra_args += S.archive_args(s3, PREFIX, poll_ms=200)
    n2.start()
    h = cluster.wait_converged(nodes=[n0, n1, n2], expected=expected, timeout=30)
    cluster.check_final(nodes=[n0, n1, n2], expected=expected)
    for n in (n0, n1, n2):
        H.check(not n.status()["peers"], "%s lists peers" % n.name)
    H.step("n2 started with --archive: all three converged on %s through the archive" % h[:16])
    # A member that only ever runs one-off commands: archive pull, then archive status.
    n3 = cluster.add_node("n3")
    shutil.copyfile(os.path.join(n0.data, "cluster.key"), os.path.join(n3.data, "cluster.key"))
    os.chmod(os.path.join(n3.data, "cluster.key"), 0o600)
    for n in (n0, n1, n2):
        n3.cli("trust", "add", n.device_id(), "--name", n.name)
    out = n3.cli("archive", "pull", "--archive", s3.uri(PREFIX), "--s3-endpoint", s3.endpoint)
    H.step("n3: replog archive pull: %s" % out.strip())
    H.check(n3.hash() == h, "n3's hash after archive pull %s, the others' %s" % (n3.hash(), h))
    st = json.loads(n3.cli("archive", "status", "--archive", s3.uri(PREFIX), "--s3-endpoint", s3.endpoint,
                           "--json"))
    held = {o.lower(): (e["verified"], e["held"]) for o, e in st["origins"].items()}
    H.check(st["ok"] and held == {o.lower(): (s, s) for o, s in expected.items()},
            "n3: archive status --json: %s, expected %s" % (st, expected))
    H.step("n3 (never runs a node): archive pull gives the same hash; archive status: every origin archived "
           "and held to its seq")
    cluster.nodes.remove(n3)
    stats = {n.name: {k: n.status()["archive"][k] for k in ("segments_put", "segments_got", "requests")}
             for n in (n0, n1, n2)}
    H.step("archive counters: %s" % json.dumps(stats))


if __name__ == "__main__":
    H.run(sync_test)

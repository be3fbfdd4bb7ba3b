#!/usr/bin/python3
"""Cluster.KilledNodeCatchesUpAfterRestart: three nodes write continuously; one is
SIGKILLed while its own writer is mid-call, the others keep writing, it restarts
while they still write, writes again, and every node ends with exactly the calls
made (every acknowledged call survived the kill) and one state hash.

The same steps with SIGTERM instead of SIGKILL are peer_down_sigterm.py
(Cluster.PeerDownDuringWritesGetsEverything).

Usage: down_and_back.py PATH_TO_REPLOG"""
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402


def calls_for(tag):
    def call(i):
        if i % 3 == 0:
            return "inc", {"path": "counter", "by": 1}
        if i % 3 == 1:
            return "set", {"path": "%s.k%d" % (tag, i), "value": i}
        return "add", {"path": "seen", "value": "%s-%d" % (tag, i)}
    return call


def down_and_back(cluster, how):
    a = cluster.add_node("a")
    b = cluster.add_node("b", peers=[a.listen])
    c = cluster.add_node("c", peers=[a.listen, b.listen])
    for n in (a, b, c):
        n.start(wait=False)
    for n in (a, b, c):
        n.wait_serving()
    H.step("a, b, c running (c peers a and b); writers on all three, one call every ~3 ms each")
    writers = {n.name: H.Writer(n, calls_for(n.name), pause=0.003, timeout_ms=1500) for n in (a, b, c)}
    for w in writers.values():
        w.start()
    # Every writer under way (c's with calls acknowledged), rather than a fixed time.
    H.wait_until(lambda: all(w.acked >= 30 or w.errors for w in writers.values()),
                 "30 acknowledged calls on each of a, b and c", timeout=30)
    before = c.count()
    H.step("c holds %d updates; stopping c with %s while its writer is mid-call" % (before, how))
    if how == "SIGKILL":
        c.kill()
    else:
        code = c.stop()
        H.check(code == 0, "c exited with code %s after SIGTERM, expected 0" % code)
        H.check("stopped" in c.log_text().splitlines()[-1], "c's log does not end with 'stopped'")
        H.step("c exited with code 0 and logged 'stopped'")
    writers["c"].join(5)
    H.check(not writers["c"].is_alive(), "c's writer still waits for a reply from a dead node")
    acked_c, attempted_c = writers["c"].acked, writers["c"].attempted
    own = c.vector().get(c.node_id, 0)   # read offline, from LMDB
    H.step("c's writer: %d calls acknowledged, %d attempted; c's log holds %d of its own (read offline)"
           % (acked_c, attempted_c, own))
    H.check(acked_c <= own <= attempted_c,
            "after %s c holds %d of its own updates, but %d calls were acknowledged and %d attempted"
            % (how, own, acked_c, attempted_c))
    down = c.count()
    H.check(down >= before, "c's count went down from %d to %d across the %s" % (before, down, how))

    a_down, b_down = writers["a"].acked, writers["b"].acked
    H.wait_until(lambda: (writers["a"].acked >= a_down + 100 and writers["b"].acked >= b_down + 100)
                 or writers["a"].errors or writers["b"].errors,
                 "100 more calls on a and on b while c is down", timeout=30)
    H.step("a and b kept writing while c was down (a: %d, b: %d calls so far); restarting c while they still write"
           % (writers["a"].acked, writers["b"].acked))
    c.start()
    after = c.count()
    H.check(after >= down, "c's count went down from %d to %d across the restart" % (down, after))
    H.step("c serves again with %d updates (had %d when it went down)" % (after, down))
    again = H.Writer(c, lambda i: calls_for("c2")(i), count=100, pause=0.003)
    again.start()
    a_up, b_up = writers["a"].acked, writers["b"].acked
    H.wait_until(lambda: (writers["a"].acked >= a_up + 50 and writers["b"].acked >= b_up + 50 and again.acked >= 50)
                 or again.errors or writers["a"].errors or writers["b"].errors,
                 "50 more calls on each of a, b and the restarted c, all at once", timeout=30)
    for w in (writers["a"], writers["b"]):
        w.stop()
    again.join(30)
    for name, w in (("a", writers["a"]), ("b", writers["b"]), ("c after restart", again)):
        H.check(not w.errors, "calls on %s failed: %s" % (name, w.errors[:3]))
    H.check(again.acked == 100, "c took %d of 100 calls after the restart" % again.acked)
    expected = {a.node_id: writers["a"].acked, b.node_id: writers["b"].acked, c.node_id: own + again.acked}
    H.step("calls made: a %d, b %d, c %d before + %d after the restart"
           % (writers["a"].acked, writers["b"].acked, own, again.acked))
    cluster.wait_converged(expected=expected)
    cluster.check_final(expected=expected)
    counter = sum(1 for w in (writers["a"], writers["b"]) for i in range(w.acked) if i % 3 == 0) + \
        sum(1 for i in range(own) if i % 3 == 0) + sum(1 for i in range(again.acked) if i % 3 == 0)
    for n in (a, b, c):
        got = int(n.cli("state", "--path", "counter").strip())
        H.check(got == counter, "%s: counter = %d, expected %d (one per inc call)" % (n.name, got, counter))
    H.step("counter = %d on every node (one per inc call)" % counter)
    errors = cluster.stop_all()
    H.check(not errors, "; ".join(errors))
    cluster.verify_offline()


if __name__ == "__main__":
    H.run(lambda cl: down_and_back(cl, "SIGKILL"))

"""The dashboard end to end in a real browser: two secure nodes that sync, each
with its dashboard; tests/web/dashboard.mjs drives A's in headless Chromium
(playwright-core from tests/web/node_modules, Debian's /usr/bin/chromium): B
is listed as a peer, a call made on B shows in A's live feed and state tree
within a second, and a conflict made while the nodes were apart shows both
updates side by side and is resolved from the page by a follow-up call. A screenshot is left in the artifacts
directory (REPLOG_ARTIFACTS)."""
import json
import os
import subprocess
import time

import harness as H
import dashboard_util as D

WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web")
BROWSER_TIMEOUT_S = 60


SCHEMA = {"document": {"enums": {"Color": ["Red", "Green"]},
                       "records": {"Note": {"fields": {"text": "string", "color": "Color", "due": "time"}}}}}


def note(text, color):
    return {"type": "Note", "id": "n1", "fields": {"text": text, "color": {"$enum": "Color." + color},
                                                   "due": {"$time": "2026-12-24T18:00:00Z"}}}


def make_conflict(cluster, a, b):
    """Working apart: with b stopped, a creates Note n1; then b, offline and later, creates
    Note n1 too. When they meet, replay puts a's create first and skips b's on both nodes:
    a conflict (kind exists) naming a's create as the update it ran into."""
    a.call("schema", SCHEMA)
    cluster.wait_converged()
    b.stop()
    a.call("create", note("from a", "Red"))
    time.sleep(0.01)
    return b.call("create", note("from b", "Green"))  # `replog call` prints the update's id


def test(cluster):
    for needed in ("/usr/bin/chromium", os.path.join(WEB, "node_modules", "playwright-core")):
        H.check(os.path.exists(needed), "%s is missing: run tools/deps.sh" % needed)
    a = cluster.add_node("a")
    b = cluster.add_node("b")
    ids = H.trust_each_other([a, b])
    a.peers = ["%s@%s" % (ids["b"], b.listen)]
    b.peers = ["%s@%s" % (ids["a"], a.listen)]
    D.with_http(a)
    D.with_http(b)
    a.start()
    b.start()
    conflict = make_conflict(cluster, a, b)
    H.step("while apart: a and b each created Note n1; b's create (%s) is the conflict" % conflict)
    b.start()
    H.wait_until(lambda: a.status()["conflicts"] == 1, "the conflict to show on a", timeout=10)
    shot = os.path.join(D.artifact_dir(), "dashboard.png")
    cfg = {"urlA": D.url_of(a) + "/", "urlB": D.url_of(b), "nodeB": b.node_id, "deviceB": ids["b"],
           "conflict": conflict, "screenshot": shot, "timeoutMs": 10000}
    t0 = time.monotonic()
    r = subprocess.run(["node", os.path.join(WEB, "dashboard.mjs"), json.dumps(cfg)], cwd=WEB,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=BROWSER_TIMEOUT_S)
    print(r.stdout.decode(errors="replace"), end="", flush=True)
    H.check(r.returncode == 0, "the browser test failed (exit %d): %s" % (r.returncode, r.stderr.decode(errors="replace")[-2000:]))
    H.step("the browser part took %.1f s" % (time.monotonic() - t0))
    H.check(os.path.getsize(shot) > 10_000, "the screenshot %s is there" % shot)
    cluster.wait_converged()
    for n in (a, b):
        H.check(n.status()["conflicts"] == 0, "%s still has a conflict" % n.name)
        H.check(json.loads(n.cli("state", "--path", "Note.n1.text")) == "merged",
                "%s: the note's text is the follow-up's" % n.name)
    H.step("both nodes: no conflict, the follow-up's text, the same hash")


if __name__ == "__main__":
    H.run(test)

#!/usr/bin/python3
"""Cluster.InviteThenJoinConverges: `replog invite` on a running node prints
one line; `replog join LINE` makes a new data directory for the same cluster,
and the new node, started with no --peer, finds the inviter through
peers.json; both converge under calls on each. Around it, the one-line
errors: invite without a running node, a damaged line, a directory of another
cluster (refused before connecting), and the line used a second time.

Usage: invite_join.py PATH_TO_REPLOG"""
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402


def run(cluster, *args, timeout=60):
    return subprocess.run([cluster.replog, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def one_line_error(r, what, needle):
    err = r.stderr.strip()
    H.check(r.returncode != 0, "%s: exit 0" % what)
    H.check(len(err.splitlines()) == 1 and needle in err, "%s: want one line with %r, got %r" % (what, needle, err))


def invite_test(cluster):
    n0 = cluster.add_node("n0")
    n0.secure = True
    one_line_error(run(cluster, "invite", "--data", n0.data), "invite without a node", "start it")
    n0.start()

    r = run(cluster, "invite", "--data", n0.data, "--expires", "2m")
    H.check(r.returncode == 0, "replog invite failed: %s" % r.stderr)
    line = r.stdout.strip()
    H.check(line.startswith("replog-invite-1:") and "\n" not in line, "replog invite printed %r" % r.stdout)
    H.step("replog invite printed one line of %d characters" % len(line))
    info = json.loads(run(cluster, "invite", "--data", n0.data, "--json").stdout)
    H.check(info["endpoints"] == [n0.listen] and info["cluster_id"] == cluster.cluster_id,
            "invite --json: %s" % info)

    one_line_error(run(cluster, "join", line[:-5], "--data", os.path.join(cluster.tmp, "x")),
                   "a truncated line", "copy all of it")
    H.check(not os.path.exists(os.path.join(cluster.tmp, "x")), "a bad line made a directory")
    other = os.path.join(cluster.tmp, "other")
    cluster.cli("init", "--data", other, "--cluster", "0ddc1a55")
    one_line_error(run(cluster, "join", line, "--data", other), "another cluster's directory", "holds the data of cluster")
    H.step("one-line errors: invite without a node, a truncated line, another cluster's directory")

    d1 = os.path.join(cluster.tmp, "n1")
    r = run(cluster, "join", line, "--data", d1, "--name", "n1", "--timeout", "20s", "--json")
    H.check(r.returncode == 0, "replog join failed: %s" % r.stderr)
    joined = json.loads(r.stdout)
    H.check(joined["made_dir"] and joined["cluster_id"] == cluster.cluster_id, "join --json: %s" % joined)
    H.check(oct(os.stat(os.path.join(d1, "peers.json")).st_mode & 0o777) == "0o600", "peers.json is not 0600")
    trusted = json.loads(n0.cli("trust", "list", "--json"))
    H.check([d["how"] for d in trusted] == ["invite"] and trusted[0]["name"] == "n1", "n0 trusts %s" % trusted)
    H.step("replog join made %s, trusted both ways (how = invite)" % d1)

    r = run(cluster, "join", line, "--data", os.path.join(cluster.tmp, "n2"), "--timeout", "10s")
    H.check(r.returncode != 0 and "ask for a new line" in r.stderr, "a second use: %s %s" % (r.returncode, r.stderr))
    H.step("the same line a second time is refused: %s" % r.stderr.strip())

    n1 = H.Node(cluster, "n1", d1, H.free_port())
    n1.node_id = n1.status()["node_id"]
    n1.secure = True
    cluster.nodes.append(n1)
    n1.start()
    for i in range(20):
        n0.call("set", {"path": "from0.k%d" % i, "value": i})
        n1.call("set", {"path": "from1.k%d" % i, "value": i})
    expected = {n0.node_id: 20, n1.node_id: 20}
    cluster.wait_converged(nodes=[n0, n1], expected=expected)
    cluster.check_final(nodes=[n0, n1], expected=expected)
    H.step("n1, started without --peer, found n0 through peers.json; both converged")
    hows = [p.get("how") for p in json.loads(n1.cli("peers", "--json"))]
    H.check(hows == ["invite"], "n1's link to n0 was not found by its invite: %s" % hows)
    H.step("replog peers on n1 says how its peer was found: invite")


if __name__ == "__main__":
    H.run(invite_test)

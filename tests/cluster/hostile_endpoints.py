#!/usr/bin/python3
"""Cluster.HostileEndpointsNeverStopOrSteerANode: a raw ZeroMQ DEALER says Hello
to a running node, each time as a new node id, naming an endpoint no node should
ever dial (PROTOCOL.md "Connecting back"): empty, garbage, ipc:// to the node's
own API socket, inproc://, a 10,000-character host, ports 0 and 70000, tcp://*,
a bind-only wildcard, a host that resolves nowhere, a bad IPv6 literal, another
transport. Earlier builds passed the endpoint to ZeroMQ, which threw, and one
frame stopped the node.

After each Hello the node answers (Hello, or Error 1 for the Hello too long to
decode), keeps running and serving its local API, and its state hash does not
change; at the end a call still succeeds and the node's log shows it refused the
endpoints rather than dialing them (only the one that resolves nowhere is a valid
tcp://HOST:PORT: it may be dialed once, never twice).

Usage: hostile_endpoints.py PATH_TO_REPLOG"""
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

import msgpack  # noqa: E402
import zmq  # noqa: E402

HELLO, ERROR = 1, 2
MAX_UPDATE, MAX_FRAME = 1 << 20, 4 << 20


def answer(sock, timeout_s=3.0):
    if not sock.poll(int(timeout_s * 1000)):
        return None
    return msgpack.unpackb(sock.recv(), raw=False)


def test(cluster):
    a = cluster.add_node("a")
    a.start()
    H.check(a.call("set", {"path": "x", "value": 1}) is not None, "a first call")
    hash0 = a.hash()
    api_sock = "ipc://" + os.path.join(os.path.abspath(a.data), "api.sock")
    hostile = ["", "garbage-endpoint", api_sock, "inproc://x", "tcp://" + "h" * 10000 + ":7000",
               "tcp://127.0.0.1:0", "tcp://127.0.0.1:70000", "tcp://*:7000", "tcp://[::1:7000",
               "udp://127.0.0.1:7000", "tcp://127.0.0.1", "tcp://nowhere.invalid:7000"]
    ctx = zmq.Context.instance()
    for i, endpoint in enumerate(hostile):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(a.listen)
        node_id = 0x1000 + i
        s.send(msgpack.packb([1, HELLO, [cluster.cluster_id, node_id, endpoint, MAX_UPDATE, MAX_FRAME]],
                             use_bin_type=True))
        got = answer(s)
        shown = endpoint if len(endpoint) < 60 else endpoint[:40] + "... (%d bytes)" % len(endpoint)
        H.check(got is not None, "no answer to a Hello naming %r" % shown)
        if len(endpoint) > 4096:
            H.check(got[1] == ERROR and got[2][0] == 1, "Hello naming %r: expected Error 1, got %r" % (shown, got))
        else:
            H.check(got[1] == HELLO, "Hello naming %r: expected Hello, got %r" % (shown, got))
        s.close(0)
        a.check_alive()
        H.check(a.hash() == hash0, "a's hash changed after a Hello naming %r" % shown)
        H.step("Hello naming %-45r -> %s; a runs, serves, hash unchanged" % (shown, "Error 1" if got[1] == ERROR else "Hello"))
    H.check(a.call("set", {"path": "y", "value": 2}) is not None, "a call after the attack")
    a.check_alive()
    log = a.log_text()
    H.check("Invalid argument" not in log, "a's log shows a ZeroMQ error: it passed an endpoint on")
    H.step("a still writes; its log shows no endpoint reached ZeroMQ unchecked")


if __name__ == "__main__":
    H.run(test)

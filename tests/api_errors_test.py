#!/usr/bin/python3
"""The local API's error replies and its socket fallback (PROTOCOL.md §4),
against a real `replog node`:
- its data directory is longer than 80 bytes, so its sockets live in
  /tmp/replog-<8-byte BLAKE2b of DATA>, a directory of mode 0700, and
  DATA/api.endpoint names them (and goes when the node stops);
- a request that is not msgpack, not a 3-element array, has a non-str op, an
  API version other than 1, or an unknown op gets the documented error reply;
- after each one the node keeps serving (status, a call).
Usage: api_errors_test.py PATH_TO_REPLOG"""
import hashlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq

replog = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="replog-api-errors-")
# Longer than 80 bytes once absolute: the socket path would pass the Unix limit.
data = os.path.join(os.path.abspath(tmp), "a-data-directory-whose-path-is-long-enough" * 2)
assert len(data) > 80, data
sock_dir = "/tmp/replog-" + hashlib.blake2b(data.encode(), digest_size=8).hexdigest()
node = None
failures = 0


def check(ok, what):
    global failures
    print(("ok:   " if ok else "FAIL: ") + what)
    if not ok:
        failures += 1


def eventually(ready, seconds=15):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if ready():
            return True
        time.sleep(0.02)
    return False


def request(raw):
    """Sends raw bytes as one request on a fresh REQ socket; returns the decoded reply."""
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 10000)
    s.setsockopt(zmq.SNDTIMEO, 10000)
    s.connect(api)
    try:
        s.send(raw)
        return msgpack.unpackb(s.recv(), raw=False)
    except zmq.Again:
        return None
    finally:
        s.close()


def still_serves():
    reply = request(msgpack.packb([1, "status", {}]))
    return reply is not None and reply[:2] == [1, "ok"] and reply[2]["updates"] >= 0


try:
    subprocess.run([replog, "init", "--data", data], check=True, stdout=subprocess.DEVNULL)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = open(os.path.join(tmp, "node.log"), "w")
    node = subprocess.Popen([replog, "node", "--data", data, "--listen", "tcp://127.0.0.1:%d" % port, "--insecure"],
                            stderr=log)
    endpoint_file = os.path.join(data, "api.endpoint")
    check(eventually(lambda: os.path.exists(endpoint_file)), "the node wrote api.endpoint")
    with open(endpoint_file) as f:
        lines = f.read().split()
    check(lines == ["ipc://%s/api.sock" % sock_dir, "ipc://%s/events.sock" % sock_dir],
          "api.endpoint names the fallback sockets: %r" % lines)
    mode = stat.S_IMODE(os.stat(sock_dir).st_mode)
    check(mode == 0o700, "the fallback directory has mode 0700 (%o)" % mode)
    check(not os.path.exists(os.path.join(data, "api.sock")), "no socket in the long directory itself")
    api = lines[0]
    ctx = zmq.Context.instance()

    cases = [
        ("bytes that are not msgpack", b"\xc1\xc1\xc1", "malformed request: expected [1, op, arg]"),
        ("trailing bytes after a request", msgpack.packb([1, "status", {}]) + b"\x00",
         "malformed request: expected [1, op, arg]"),
        ("a str, not an array", msgpack.packb("status"), "malformed request: expected [1, op, arg]"),
        ("an array of 2", msgpack.packb([1, "status"]), "malformed request: expected [1, op, arg]"),
        ("an array of 4", msgpack.packb([1, "status", {}, 0]), "malformed request: expected [1, op, arg]"),
        ("op not a str", msgpack.packb([1, 7, {}]), "malformed request: expected [1, op, arg]"),
        ("API version 2", msgpack.packb([2, "status", {}]), "unsupported API version (this node speaks 1)"),
        ("API version \"1\"", msgpack.packb(["1", "status", {}]), "unsupported API version (this node speaks 1)"),
        ("an unknown op", msgpack.packb([1, "drop_everything", {}]),
         'unknown op "drop_everything" (call, state, hash, conflicts, status, subscribe, '
         'trust.list, trust.add, trust.remove, invite.create)'),
        ("a call without arg", msgpack.packb([1, "call", {"method": "set"}]), "call needs {method, arg}"),
        ("a call whose method is not a str", msgpack.packb([1, "call", {"method": 5, "arg": {}}]),
         "call needs {method, arg}"),
    ]
    for what, raw, expected in cases:
        reply = request(raw)
        check(reply == [1, "error", expected], "%s: %r" % (what, reply))
        check(still_serves(), "%s: the node still answers status" % what)
    reply = request(msgpack.packb([1, "call", {"method": "no_such_method", "arg": {}}]))
    check(reply is not None and reply[1] == "error" and "no_such_method" in reply[2],
          "a call of an unknown method is refused by name: %r" % (reply,))
    reply = request(msgpack.packb([1, "call", {"method": "set", "arg": {"path": "x", "value": 1}}]))
    check(reply is not None and reply[1] == "ok" and len(reply[2]["id"]) == 32, "a call after all that: %r" % (reply,))
    status = request(msgpack.packb([1, "status", {}]))
    check(status[2]["updates"] == 1, "exactly one update stored: %r" % status[2]["updates"])
    check(node.poll() is None, "the node is running")

    node.send_signal(signal.SIGTERM)
    node.wait(30)
    check(node.returncode == 0, "the node stopped cleanly (%s)" % node.returncode)
    check(not os.path.exists(endpoint_file), "api.endpoint is removed when the node stops")
finally:
    if node and node.poll() is None:
        node.kill()
        node.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(sock_dir, ignore_errors=True)

if failures:
    print("%d checks failed" % failures)
    sys.exit(1)
print("all local API error checks passed")

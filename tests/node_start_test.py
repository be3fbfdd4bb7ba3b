#!/usr/bin/python3
"""Regression: a `replog node` started while a short-lived command holds the
data directory's lock used to exit at once ("in use by another writer") and
stay down. Now it waits for the lock, says once whose lock it waits for, and
comes up; a call made while it waits gives way to it and is served by it.
Usage: node_start_test.py PATH_TO_REPLOG PATH_TO_HOLD_LOCK"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

replog, hold_lock = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="replog-start-test-")
data = os.path.join(tmp, "d")
node = holder = None


def run(*args):
    return subprocess.run([replog, *args], capture_output=True, text=True, timeout=90)


def eventually(ready, seconds=10):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if ready():
            return True
        time.sleep(0.02)
    return False


try:
    subprocess.run([replog, "init", "--data", data], check=True, stdout=subprocess.DEVNULL)
    # A "command" holds the lock for 2 s, as a `replog call` writing directly would.
    holder = subprocess.Popen([hold_lock, data, "call", "2000"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n", "the holder did not take the lock"
    start = time.monotonic()
    log_path = os.path.join(tmp, "node.err")
    with open(log_path, "w") as log:
        node = subprocess.Popen([replog, "node", "--data", data, "--insecure", "--listen", "tcp://127.0.0.1:0"],
                                stderr=log)
    assert eventually(lambda: os.path.exists(os.path.join(data, "NODE_STARTING"))), "the node left no starting mark"

    # With --lock-wait 0.1 this call cannot wait out the holder: it succeeds only
    # by giving way to the starting node and sending its call there.
    r = run("call", "--data", data, "--lock-wait", "0.1", "set", '{"path": "during", "value": 1}')
    assert r.returncode == 0, "a call during the node's start failed: " + r.stderr
    assert holder.wait(timeout=10) == 0
    assert node.poll() is None, "the node exited: " + open(log_path).read()
    waited = time.monotonic() - start
    assert waited < 30, "the node took longer than its bound: %.1f s" % waited

    r = run("peers", "--data", data)
    assert r.returncode == 0 and "no node running" not in r.stdout, "the node does not serve: " + r.stdout + r.stderr
    r = run("state", "--data", data, "--path", "during")
    assert r.stdout.strip() == "1", r.stdout + r.stderr
    waiting = [line for line in open(log_path) if "waiting" in line]
    assert len(waiting) == 1, "expected one line saying whose lock it waits for: %r" % waiting
    assert "pid %d, command call" % holder.pid in waiting[0] and "up to 30 s" in waiting[0], waiting[0]
    print("node came up after %.1f s; it said: %s" % (waited, waiting[0].strip()))
finally:
    for p in (node, holder):
        if p and p.poll() is None:
            p.terminate()
            p.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)

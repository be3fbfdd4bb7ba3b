#!/usr/bin/python3
"""Cluster.CurveHidesPayloadsOnTheWire: a capture of the peer traffic (tcpdump on
loopback) while a call's payload replicates. With CURVE (the default) the
payload string appears in no captured byte; with --insecure it does, which
proves the capture and the search can tell. Needs tcpdump and the right to
capture (root); exits 77 (skipped) with one line where either is missing.

Usage: capture.py PATH_TO_REPLOG"""
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402


def start_capture(path, ports):
    expr = " or ".join("tcp port %d" % p for p in ports)
    proc = subprocess.Popen(["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-n", "-s", "0", "-w", path, expr],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    line = proc.stderr.readline().decode(errors="replace")  # "listening on lo ..." once it captures
    if "listening on" not in line:
        proc.kill()
        raise H.TestFailure("tcpdump did not start: %s" % line.strip())
    return proc


def stop_capture(proc, path):
    time.sleep(1.0)  # the last packets reach the file (immediate mode, -U writes per packet)
    proc.send_signal(signal.SIGINT)
    proc.wait(10)
    H.step("tcpdump: %s" % proc.stderr.read().decode(errors="replace").strip().replace("\n", "; "))
    with open(path, "rb") as f:
        return f.read()


def pair(cluster, secure, tag):
    a = cluster.add_node("%s0" % tag)
    b = cluster.add_node("%s1" % tag)
    if secure:
        ida = json.loads(a.cli("id", "--json"))["device_id"]
        idb = json.loads(b.cli("id", "--json"))["device_id"]
        a.cli("trust", "add", idb)
        b.cli("trust", "add", ida)
        b.peers = ["%s@%s" % (ida, a.listen)]
    else:
        b.peers = [a.listen]
    a.secure = b.secure = secure
    return a, b


def payload_seen(cluster, secure, tag):
    a, b = pair(cluster, secure, tag)
    capture_file = os.path.join(cluster.tmp, tag + ".pcap")
    tcpdump = start_capture(capture_file, [a.port, b.port])
    try:
        a.start()
        b.start()
        cluster.wait_converged(nodes=[a, b])
        marker = "payload-" + secrets.token_hex(12)
        a.call("set", {"path": "note", "value": marker})
        H.wait_until(lambda: b.cli("state", "--path", "note", check_rc=False).strip() == json.dumps(marker),
                     "%s to receive the call" % b.name)
    finally:
        captured = stop_capture(tcpdump, capture_file)
    H.check(len(captured) > 2000, "the capture holds only %d bytes: it did not see the peer traffic" % len(captured))
    return marker.encode() in captured, len(captured)


def capture_test(cluster):
    seen, size = payload_seen(cluster, True, "curve")
    H.check(not seen, "with CURVE the payload appears in the capture")
    H.step("CURVE: the payload is in none of the %d captured bytes" % size)
    seen, size = payload_seen(cluster, False, "plain")
    H.check(seen, "with --insecure the payload is not in the capture: the check cannot tell")
    H.step("--insecure: the payload is in the capture (%d bytes): the check can tell" % size)


if __name__ == "__main__":
    if shutil.which("tcpdump") is None:
        print("skipped: tcpdump is not installed (apt-get install tcpdump)")
        sys.exit(77)
    if os.geteuid() != 0:
        print("skipped: capturing packets needs root")
        sys.exit(77)
    H.run(capture_test)

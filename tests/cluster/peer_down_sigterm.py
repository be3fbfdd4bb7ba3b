#!/usr/bin/python3
"""Cluster.PeerDownDuringWritesGetsEverything: a node stopped gracefully (SIGTERM)
while everyone writes exits 0, keeps every acknowledged call, and after its restart
gets everything written while it was down (steps in down_and_back.py).

Usage: peer_down_sigterm.py PATH_TO_REPLOG"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from down_and_back import down_and_back  # noqa: E402

if __name__ == "__main__":
    H.run(lambda cl: down_and_back(cl, "SIGTERM"))

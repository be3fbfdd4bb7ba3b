#!/usr/bin/python3
"""Cluster.FiveNodesInALineConvergeUnderConcurrentCalls: the 5-node variant of
converge_concurrent.py, the nodes in a line (n0 - n1 - n2 - n3 - n4), so the
updates of an end node reach the other end only by relaying.

Usage: five_nodes_converge.py PATH_TO_REPLOG"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from converge_concurrent import concurrent_calls_test  # noqa: E402

if __name__ == "__main__":
    H.run(lambda c: concurrent_calls_test(c, 5, "line"))

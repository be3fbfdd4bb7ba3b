# Clusters of real `replog node` processes on loopback, driven by Python
# (tests/cluster/*.py; shared helpers in harness.py). Included from
# tests/CMakeLists.txt, so CMAKE_CURRENT_SOURCE_DIR is the tests directory.
# Needs Debian's /usr/bin/python3 with python3-zmq and python3-msgpack.
# Each script takes the replog binary, prints every step it checks, exits
# non-zero on failure (printing the node logs) and cleans up after itself;
# REPLOG_CLUSTER_KEEP=1 keeps its temp directory.

add_test(NAME Cluster.ThreeNodesConvergeUnderConcurrentCalls
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/cluster/converge_concurrent.py $<TARGET_FILE:replog-cli>)
add_test(NAME Cluster.FiveNodesInALineConvergeUnderConcurrentCalls
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/cluster/five_nodes_converge.py $<TARGET_FILE:replog-cli>)
add_test(NAME Cluster.KilledNodeCatchesUpAfterRestart
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/cluster/down_and_back.py $<TARGET_FILE:replog-cli>)
add_test(NAME Cluster.LateNodeCatchesUpFromZero
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/cluster/late_node.py $<TARGET_FILE:replog-cli>)
add_test(NAME Cluster.PeerDownDuringWritesGetsEverything
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/cluster/peer_down_sigterm.py $<TARGET_FILE:replog-cli>)
add_test(NAME Cluster.CatchUpResumesAfterStopMidway
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/cluster/catch_up_resume.py $<TARGET_FILE:replog-cli>)
add_test(NAME Cluster.PartitionHealsWithoutLossOrDuplication
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/cluster/partition.py $<TARGET_FILE:replog-cli>)
add_test(NAME Cluster.HostilePeerIsDroppedAndNodeKeepsServing
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/cluster/hostile_peer.py $<TARGET_FILE:replog-cli>)

set_tests_properties(
  Cluster.ThreeNodesConvergeUnderConcurrentCalls
  Cluster.FiveNodesInALineConvergeUnderConcurrentCalls
  Cluster.KilledNodeCatchesUpAfterRestart
  Cluster.LateNodeCatchesUpFromZero
  Cluster.PeerDownDuringWritesGetsEverything
  Cluster.CatchUpResumesAfterStopMidway
  Cluster.PartitionHealsWithoutLossOrDuplication
  Cluster.HostilePeerIsDroppedAndNodeKeepsServing
  PROPERTIES TIMEOUT 180 RUN_SERIAL TRUE)

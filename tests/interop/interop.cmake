# A second implementation of the protocol, written from PROTOCOL.md and docs/
# alone (tests/interop/replog_peer.py), synced against a real `replog node` in
# both link modes (tests/interop/README.md). Included from tests/CMakeLists.txt,
# so CMAKE_CURRENT_SOURCE_DIR is the tests directory. Needs Debian's
# /usr/bin/python3 with python3-zmq, python3-msgpack and python3-nacl.

add_test(NAME Interop.SecondImplementationAgreesWithNode
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/interop/interop_test.py $<TARGET_FILE:replog-cli>
          --timeout ${REPLOG_TIMEOUT_120})
set_tests_properties(Interop.SecondImplementationAgreesWithNode PROPERTIES
  TIMEOUT ${REPLOG_TIMEOUT_180} RUN_SERIAL TRUE)

# PROTOCOL.md §7's joining with an invite (both sides), Members frames and discovery
# beacons, by the same second implementation (tests/interop/pairing_test.py).
add_test(NAME Interop.PairingMembersDiscovery
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/interop/pairing_test.py $<TARGET_FILE:replog-cli>
          --timeout ${REPLOG_TIMEOUT_120})
set_tests_properties(Interop.PairingMembersDiscovery PROPERTIES
  TIMEOUT ${REPLOG_TIMEOUT_180} RUN_SERIAL TRUE)

# docs/ARCHIVE.md by the same second implementation (tests/interop/replog_archive.py): it
# reads, proves and rewrites byte for byte the segments and snapshots `replog archive push`
# and `compact` write to a loopback s3rver (tests/interop/archive_interop_test.py). Needs
# tests/s3/node_modules (tools/deps.sh).
add_test(NAME Interop.SecondImplementationReadsTheArchive
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/interop/archive_interop_test.py $<TARGET_FILE:replog-cli>
          --timeout ${REPLOG_TIMEOUT_120})
set_tests_properties(Interop.SecondImplementationReadsTheArchive PROPERTIES
  TIMEOUT ${REPLOG_TIMEOUT_180} RUN_SERIAL TRUE)

# The nemesis: five `replog node` processes in network namespaces under kills,
# stops, nftables partitions and clock offsets, checked by an independent
# checker (tests/nemesis/README.md). Included from tests/CMakeLists.txt, so
# CMAKE_CURRENT_SOURCE_DIR is the tests directory. Needs root, iproute2 and
# nftables (else it skips with exit 77); faketime for the clock offsets.

add_test(NAME Nemesis.FiveNodesSurviveKillsStopsPartitionsAndClocks
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/nemesis/nemesis.py $<TARGET_FILE:replog-cli> --seconds 60)
set_tests_properties(Nemesis.FiveNodesSurviveKillsStopsPartitionsAndClocks PROPERTIES
  TIMEOUT ${REPLOG_TIMEOUT_180} RUN_SERIAL TRUE SKIP_RETURN_CODE 77)

add_test(NAME Nemesis.CheckerCountsLostDuplicatedAndReordered
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/nemesis/checker_test.py)
set_tests_properties(Nemesis.CheckerCountsLostDuplicatedAndReordered PROPERTIES TIMEOUT ${REPLOG_TIMEOUT_30})

# Node-level suites: replay properties, crash safety, ingest (included by
# tests/CMakeLists.txt). Each is its own executable so ctest can run them in
# parallel; together they take well under two minutes on two cores.

function(replog_node_suite name)
  add_executable(${name} ${name}.cc)
  target_compile_options(${name} PRIVATE ${REPLOG_WARNINGS})
  target_link_libraries(${name} PRIVATE replog_internal GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT ${REPLOG_TIMEOUT_60} PROPERTIES TIMEOUT ${REPLOG_TIMEOUT_300})
endfunction()

# Property tests: random logs from several origins, replayed through real nodes
# in random arrival orders with restarts; the state hash must not depend on it.
replog_node_suite(replay_property_test)

# Bad input at ingest and the local call path.
replog_node_suite(ingest_test)

# Crash safety: crash_writer writes through a Node until crash_test kills it
# with SIGKILL; the test then checks the data directory.
add_executable(crash_writer crash_writer.cc)
target_compile_options(crash_writer PRIVATE ${REPLOG_WARNINGS})
target_link_libraries(crash_writer PRIVATE replog_internal)

find_program(REPLOG_MDB_STAT mdb_stat)
if(NOT REPLOG_MDB_STAT)
  # The test fails with a message naming the package (lmdb-utils) rather than
  # silently skipping the check.
  set(REPLOG_MDB_STAT "mdb_stat")
endif()

add_executable(crash_test crash_test.cc)
target_compile_options(crash_test PRIVATE ${REPLOG_WARNINGS})
target_link_libraries(crash_test PRIVATE replog_internal GTest::gtest GTest::gtest_main)
target_compile_definitions(crash_test PRIVATE
  CRASH_WRITER="$<TARGET_FILE:crash_writer>"
  MDB_STAT="${REPLOG_MDB_STAT}")
add_dependencies(crash_test crash_writer)
gtest_discover_tests(crash_test DISCOVERY_TIMEOUT ${REPLOG_TIMEOUT_60} PROPERTIES TIMEOUT ${REPLOG_TIMEOUT_300})

# Signed origins on the writing side: keys, chains, heads, the format 1 upgrade.
replog_node_suite(signing_test)
target_compile_definitions(signing_test PRIVATE REPLOG_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")

# Signed origins on the receiving side: what a verifying ingest takes and
# refuses, and two linked nodes proving a fork from their vectors' tips.
replog_node_suite(verify_ingest_test)
target_link_libraries(verify_ingest_test PRIVATE replog_test_support)

# Membership and revocation: the rule, revoked origins left out, held runs, retire.
replog_node_suite(revocation_test)

# The archive: object names, deterministic sealing, segments ending at heads,
# and the Archiver over real signing nodes and an in-memory bucket.
replog_node_suite(archive_test)

// Seeds for randomised tests: a fresh seed each run, printed, and taken back
// from REPLOG_SEED so that any failure reproduces.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

namespace replog::testing {

inline uint64_t test_seed() {
  static const uint64_t seed = [] {
    if (const char* s = std::getenv("REPLOG_SEED")) return static_cast<uint64_t>(std::strtoull(s, nullptr, 10));
    return static_cast<uint64_t>(std::random_device{}()) << 32 | std::random_device{}();
  }();
  return seed;
}

// Records the seed in the test's output and its XML report.
inline std::mt19937_64 seeded_rng() {
  uint64_t seed = test_seed();
  ::testing::Test::RecordProperty("REPLOG_SEED", std::to_string(seed));
  std::cerr << "REPLOG_SEED=" << seed << "\n";
  return std::mt19937_64(seed);
}

}  // namespace replog::testing

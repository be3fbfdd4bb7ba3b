// Seeds for randomised tests: a fresh seed each run, printed, and taken back
// from REPLOG_SEED so that any failure reproduces.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
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

// A property test's time budget, scaled by REPLOG_TIME_SCALE (a number, 1 by
// default) for slow builds (sanitizers) and loaded machines.
inline std::chrono::seconds scaled_budget(std::chrono::seconds budget) {
  double scale = 1;
  if (const char* s = std::getenv("REPLOG_TIME_SCALE")) scale = std::max(1.0, std::strtod(s, nullptr));
  return std::chrono::seconds(static_cast<int64_t>(static_cast<double>(budget.count()) * scale));
}

// Says how many trials of a time-bounded property ran out of those planned,
// in the output and the XML report, and fails when fewer than `minimum` ran: a
// property that ran two trials has checked little, and that must not pass
// unseen. The properties run their minimum whatever the budget, so this fails
// only when a trial loop stopped early. REPLOG_TIME_SCALE=N gives more time.
inline void report_trials(const std::string& what, int ran, int planned, int minimum) {
  ::testing::Test::RecordProperty("trials_run", std::to_string(ran));
  ::testing::Test::RecordProperty("trials_planned", std::to_string(planned));
  std::cerr << "ran " << ran << " of " << planned << " planned " << what
            << (ran < planned ? " (the time budget cut the rest)" : "") << "\n";
  EXPECT_GE(ran, minimum) << "only " << ran << " " << what << " ran, fewer than the " << minimum
                          << " this property needs to mean something (rerun with the seed above)";
}

// Records the seed in the test's output and its XML report.
inline std::mt19937_64 seeded_rng() {
  uint64_t seed = test_seed();
  ::testing::Test::RecordProperty("REPLOG_SEED", std::to_string(seed));
  std::cerr << "REPLOG_SEED=" << seed << "\n";
  return std::mt19937_64(seed);
}

}  // namespace replog::testing

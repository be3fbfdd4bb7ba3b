// The simulator's suite: seeds under each kind of fault (and all together),
// the same seed giving the same trace, and a checker that can fail.
#include <gtest/gtest.h>

#include <cstdlib>

#include "protocol/msgpack_codec.h"
#include "sim/checker.h"
#include "sim/seeded_randomness.h"
#include "sim/simulation.h"

namespace replog::sim {
namespace {

// The first seed: REPLOG_SEED when given, else a fixed one (ctest runs repeat).
uint64_t first_seed() {
  const char* s = std::getenv("REPLOG_SEED");
  return s ? std::strtoull(s, nullptr, 10) : 1;
}

// Runs `count` seeds; every failure is reported with its replay command.
void expect_seeds_pass(SimOptions options, int count) {
  std::cerr << "REPLOG_SEED=" << first_seed() << " (" << count << " seeds from it)\n";
  for (int k = 0; k < count; ++k) {
    options.seed = first_seed() + static_cast<uint64_t>(k);
    RunResult r = run_simulation(options);
    std::string problems;
    for (const auto& p : r.problems) problems += "\n  " + p;
    EXPECT_TRUE(r.passed) << "seed " << options.seed << ":" << problems << "\nreplay: " << replay_command(options);
  }
}

SimOptions only(FaultKind kind, int nodes, int steps) {
  SimOptions o;
  o.faults = {kind};
  o.nodes = nodes;
  o.steps = steps;
  return o;
}

TEST(Sim, SeedsPassUnderMessageFaults) { expect_seeds_pass(only(FaultKind::kMessages, 3, 200), 30); }
TEST(Sim, SeedsPassUnderPartitions) { expect_seeds_pass(only(FaultKind::kPartitions, 5, 200), 30); }
TEST(Sim, SeedsPassUnderCrashes) { expect_seeds_pass(only(FaultKind::kCrashes, 4, 200), 30); }
TEST(Sim, SeedsPassUnderClockJumps) { expect_seeds_pass(only(FaultKind::kClocks, 3, 200), 30); }
TEST(Sim, SeedsPassWithAHostilePeer) { expect_seeds_pass(only(FaultKind::kHostile, 3, 200), 30); }
TEST(Sim, NodesKeepWritingWhileOriginsAreForged) { expect_seeds_pass(only(FaultKind::kForge, 3, 200), 20); }

TEST(Sim, SeedsPassUnderEveryFaultTogether) {
  SimOptions o;
  o.steps = 200;
  for (int nodes : {3, 5, 7, 9}) {
    o.nodes = nodes;
    expect_seeds_pass(o, nodes == 9 ? 10 : 30);
  }
}

TEST(Sim, OneSeedGivesOneTraceHash) {
  SimOptions o;
  o.seed = first_seed() + 1000;
  o.steps = 300;
  RunResult a = run_simulation(o);
  RunResult b = run_simulation(o);
  EXPECT_EQ(a.trace_hash, b.trace_hash) << "replay: " << replay_command(o);
  EXPECT_EQ(a.frames, b.frames);
  o.seed += 1;
  EXPECT_NE(run_simulation(o).trace_hash, a.trace_hash) << "another seed, another run";
}

}  // namespace
}  // namespace replog::sim

int main(int argc, char** argv) {
  replog::sim::install_seeded_randomness();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

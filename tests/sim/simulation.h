// run_simulation: one seeded run from start to verdict. It builds the
// cluster, runs the faulty phase (calls and nemesis, step by step), heals,
// lets the nodes converge, makes one more call on every node, converges
// again, and checks the nodes against the model (sim/checker.h).
//
// The same options give the same run byte for byte: every random choice
// comes from one std::mt19937_64 seeded with options.seed, the node's ids from
// seeded libsodium randomness (sim/seeded_randomness.h), time from ManualClocks.
// REQUIRES: install_seeded_randomness() was called first thing in main.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "sim/checker.h"
#include "sim/options.h"

namespace replog::sim {

inline constexpr int64_t kStepMs = 5;

struct RunResult {
  bool passed = false;
  bool copied = false;  // a directory was copied over a node's (two nodes wrote under one origin)
  std::string trace_hash;
  std::vector<std::string> problems;
  std::map<std::string, uint64_t> faults;  // injected, by kind
  uint64_t calls_acknowledged = 0, calls_refused = 0, frames = 0;
  uint64_t runs_verified_ahead = 0;  // Cluster::runs_verified_ahead at the end
  int64_t converge_ms = 0;  // simulated time from heal to one state
  std::deque<std::string> recent_trace;
};

RunResult run_simulation(const SimOptions& options);

// Plain snapshots of live nodes, for the checker.
class Cluster;
struct SimNode;
std::vector<NodeSnapshot> snapshot_nodes(Cluster& cluster);
// One node's, named `name`. REQUIRES: up
NodeSnapshot snapshot_node(SimNode& node, std::string name);

}  // namespace replog::sim

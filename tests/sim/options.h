// SimOptions: what one simulated run does (the seed, the cluster size, the
// length, and which kinds of fault the nemesis may inject), and the parsing
// of the fault list shared by replog_sim and the tests.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace replog::sim {

enum class FaultKind : uint8_t {
  kMessages,    // drop, duplicate, delay, reorder (FaultyTransport)
  kPartitions,  // one isolated, majority/minority, ring of majorities, swizzle
  kCrashes,     // a node dropped without close() and reopened from its directory
  kClocks,      // clock jumps within the skew limit, forwards and backwards
  kSkew,        // clock jumps beyond the skew limit (updates refused until clocks catch up)
  kHostile,     // a stranger: garbage frames, replayed frames, a lying vector, genuine runs relayed altered
  kForge,       // the stranger pushes updates under real origins (every node must refuse them)
  kDisk,        // fault points in the store (full disk, full map, failed reads), disks full for a
                // while, and maps that start small so that they grow
  kCopies,      // a node's directory copied over another's: two nodes, one origin (a fork)
  kTrust,       // a node stops trusting another for a while; an outsider no node trusts dials them all
  kRevoke,      // a node revokes another's origin (a stolen device): its later updates are left out everywhere
  kArchive,     // every node archives to one S3 bucket that answers 500s, goes down, loses listed objects
                // to merges and cuts uploads off; nodes compact; a restore from it at the end
};

const char* fault_name(FaultKind kind);
// "messages,crashes", "all", or "none"; nullopt names the unknown word in `error`.
std::optional<std::set<FaultKind>> parse_faults(const std::string& list, std::string& error);
std::string faults_to_string(const std::set<FaultKind>& faults);

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 5;     // 3..9
  int steps = 300;   // steps of the faulty phase, each kStepMs of simulated time
  std::set<FaultKind> faults = {FaultKind::kMessages, FaultKind::kPartitions, FaultKind::kCrashes,
                                FaultKind::kClocks,   FaultKind::kSkew,       FaultKind::kHostile,
                                FaultKind::kForge,    FaultKind::kDisk,       FaultKind::kCopies,
                                FaultKind::kTrust,    FaultKind::kRevoke,     FaultKind::kArchive};
  bool verbose = false;  // every trace line on stderr
};

// The one command that replays a run.
std::string replay_command(const SimOptions& options);

}  // namespace replog::sim

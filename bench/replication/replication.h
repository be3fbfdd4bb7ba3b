// replog_replication_bench: the replication figures of docs/BENCHMARKS.md
// ("Replication (gossip over ZeroMQ)"), one file per group of figures:
//
//   fresh.cc         1, 1b, 1c  fresh replication to an empty node   (--only fresh)
//   in_sync.cc       2          the in-sync check                    (--only insync)
//   small_diff.cc    3a, 3b     a small diff                         (--only diff)
//   mesh_latency.cc  4a-4f      8 nodes, steady calls                (--only latency)
//   raw_mesh.*       4g         the same links and calls without replog (its raw reference)
//   memory.cc        5          memory of `replog node` processes    (--only memory)
//   fresh.cc         6          fresh replication, verifying or not  (--only verify)
//   wire_bytes.cc    7          the bytes a proof adds to a Push     (--only wire)
//   peer_node.*      a node on the daemon's PeerService over the tests' FaultyTransport, threaded or stepped
//   step_pair.*      two stepped nodes, frames delivered hop by hop (figures 2, 3)
//   main.cc          options; runs the groups
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/run.h"
#include "common/signed_log.h"
#include "protocol/version_vector.h"

namespace replog::bench {

struct Options : RunOptions {
  uint64_t updates = 1'000'000;  // shared / replicated updates
  uint64_t paths = 10'000;
  int nodes = 8;                 // latency figure
  int degree = 0;                // latency figure: peers each node dials at random (0: all, a full mesh)
  bool tree_off = false;         // latency figure: nodes without relay trees (wire::kFeatureTree)
  bool relay_after_commit = false;  // latency figure: received updates relayed after their commit, not before
  bool relay_ahead_off = false;  // latency figure: relayed once the writer has checked them (SyncOptions::relay_ahead)
  bool verify_off = false;  // latency figure: received updates judged for form alone (a baseline)
  bool compress_off = false;     // every figure: links without compressed bodies (wire::kFeatureCompress)
  double rate = 200;             // calls/s per node
  double seconds = 30;           // latency figure duration
  double idle_s = 3;             // memory figure: idle time before reading /proc
  double fresh_timeout_s = 240;  // 1 origin: a replication that has not ended by then is an error
  double fresh_cap_s = 25;       // more origins: stopped after this long and reported as not finished
  std::vector<uint64_t> origins = {1, 10, 100};
};

extern Options g_opt;

inline const std::string kCluster = kBenchCluster;  // every node of a run: one cluster

// Two nodes that hold the same updates, left by figure 1 for figures 2, 3
// and 5 (the 1-origin pair is the source and the receiver of figure 1; a pair
// of more origins is the source and a twin built beside it).
struct Pair {
  uint64_t origins = 0;
  std::string source_dir, receiver_dir;
  std::string hash;
};
extern std::map<uint64_t, Pair> g_pairs;  // by origins

// The number of updates a vector covers.
inline uint64_t vector_total(const VersionVector& v) {
  uint64_t n = 0;
  for (const auto& [_, seq] : v) n += seq;
  return n;
}

// The groups of figures.
void fig_fresh(uint64_t origins, bool need_pair);                                      // 1, 1b, 1c
void fig_verify();                                                                     // 6
void fig_wire();                                                                       // 7
void fig_insync_and_diff(const std::vector<uint64_t>& origin_cases, bool insync, bool diff);  // 2, 3
void fig_memory();                                                                     // 5

// Figure 3 on a stepped pair in sync (small_diff.cc; fig_insync_and_diff runs it).
struct StepPair;
void measure_diff(StepPair& sp);
void fig_latency();                                                                    // 4

// Stops the `replog node` processes figure 5 started and has not stopped yet.
void stop_children();

}  // namespace replog::bench

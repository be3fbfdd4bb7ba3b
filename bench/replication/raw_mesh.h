// The raw reference of figure 4 (4g): the mesh's links and calls with
// nothing of replog around them (raw_mesh.cc says what each raw node does).
#pragma once

#include <cstdint>
#include <set>
#include <vector>

namespace replog::bench {

struct RawMeshResult {
  std::vector<double> each;  // s from a call's commit to its commit on a receiver, per delivery, sorted
  std::vector<double> all;   // the same to a call's slowest receiver, per call, sorted
  uint64_t calls = 0, expected = 0;  // calls made; deliveries they needed (calls x other nodes)
  double verify_cpu = 0;             // CPU-s the receivers spent verifying signatures
};

// Runs `links.size()` raw nodes linked as `links` says (each node's
// neighbours, both ways), each calling `rate` times a second for `seconds`;
// `verify`: receivers verify each message's signature.
RawMeshResult raw_mesh(const std::vector<std::set<int>>& links, double rate, double seconds, bool verify);

}  // namespace replog::bench

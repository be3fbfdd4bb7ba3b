// Buggify: the simulation's fault-point injector (storage/fault_point.h).
//
// A run that has disk faults switches on a random subset of the points, each
// with its own small chance, and may fill one node's disk for a while (every
// commit of that node then fails as a full disk does). Whether a point fires
// is a hash of (seed, node, point, how many times that node reached that
// point), not a draw from a shared generator: each node's writer thread
// reaches its points in a fixed order, so the run stays the same byte for
// byte even though writers run beside the driving thread.
//
// Thread safety: fire() may be called from any writer thread; the other
// members only from the driving thread, while the nodes they change are idle.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>

#include "storage/fault_point.h"

namespace replog::sim {

class Buggify final : public fault::Injector {
 public:
  // Installs itself as the process's injector until destroyed. With `on`
  // false no point fires at random (a disk is full only when set so).
  Buggify(uint64_t seed, bool on, std::mt19937_64& rng);
  ~Buggify() override;
  Buggify(const Buggify&) = delete;
  Buggify& operator=(const Buggify&) = delete;

  void add_node(const std::string& dir, int index);
  void set_disk_full(int index, bool full);
  // From now on nothing fires (the run heals).
  void heal();
  // Whether storage errors may happen in this run (a call may fail with one).
  bool on() const { return on_; }
  // Node `index`'s points neither fire nor count while it is suspended (while
  // it opens: a real node that cannot open exits, and is started again).
  void suspend(int index, bool suspended);
  // Points fired so far at node `index` (to tell an expected failure from a bug).
  uint64_t fired_at(int index) const;
  // Fired so far, by point name (for the run's fault mix).
  std::map<std::string, uint64_t> fired() const;
  // "commit finds the disk full 1/64, ..." for the trace.
  std::string describe() const;

  bool fire(fault::Point point, std::string_view store_dir) override;

 private:
  struct NodeFaults {
    int index = 0;
    bool disk_full = false;
    bool suspended = false;
    std::array<uint64_t, fault::kPointCount> reached{};
    uint64_t fired = 0;
  };

  const uint64_t seed_;
  const bool on_;
  std::array<uint32_t, fault::kPointCount> one_in_{};  // 0: point off in this run
  mutable std::mutex mu_;
  std::map<std::string, NodeFaults, std::less<>> nodes_;
  std::array<uint64_t, fault::kPointCount> fired_{};
  bool healed_ = false;
};

}  // namespace replog::sim

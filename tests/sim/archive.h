// SimArchive: the S3 archive in a simulated run (fault kind `archive`). One
// in-memory bucket is shared by every node; each live node runs a real
// Archiver over it with its own clock, pushing every few steps and polling
// every few more, and now and then a node runs the roll-up (compact_archive:
// pull, merge, snapshot, retention) in between. The bucket misbehaves as S3
// does: 500s, outages, slow requests (a node's archiver waits on one for a
// while), a 404 for an object a listing just named (merged away by someone
// else), and uploads cut off after the object was stored (the client saw an
// error, the bucket has it).
//
// Now and then, during the faults, a fresh node restores from the bucket as it
// is (starting from a snapshot when one is exact) and `replog verify`'s check
// runs on what it made: whatever it could take, the directory must be whole
// and every checkpoint in it, the adopted snapshot among them, must equal the
// fold of the log below its cut.
//
// At the end (faults healed) every node pushes with no grace period and a
// fresh node restores from the bucket alone: the offline check must find no
// problem, and the restored state must be the cluster's, after a copied
// directory too (the fork's evidence is archived with the segments).
//
// Thread safety: none; the simulation's thread drives it.
#pragma once

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "node/archive/archiver.h"
#include "sim/cluster.h"
#include "sim/trace.h"
#include "storage/object_store.h"

namespace replog::sim {

class SimArchive {
 public:
  SimArchive(Cluster& cluster, std::mt19937_64& rng, Trace& trace);

  // Called once per faulty step, after the cluster ticked.
  void step(int index);
  // Ends the bucket's faults.
  void heal();
  // Every node uploads what it holds, then a fresh node restores: problems found.
  std::vector<std::string> check_restore(const std::string& tmp_dir);
  const std::map<std::string, uint64_t>& counts() const { return counts_; }

 private:
  Status fault(std::string_view op, const std::string& key);
  Status cut_off(const std::string& key);
  std::string without_dirs(const Status& s) const;
  Archiver* archiver_of(SimNode& n, int64_t grace_ms);
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  void compact(SimNode& n);
  void restore_now(int index);

  Cluster& cluster_;
  std::mt19937_64& rng_;
  Trace& trace_;
  MemoryObjectStore bucket_;
  archive::Keyring keys_;
  struct Slot {
    // The opening of the node the archiver was made for (SimNode::opened): a
    // restart makes another. Not its address: a restarted node may be given
    // the old one's, or not, as the allocator goes, and a run must repeat.
    uint64_t opened = 0;
    std::unique_ptr<Archiver> archiver;
    int busy_until = -1;  // a slow request: no push or poll through this step
  };
  std::map<int, Slot> slots_;
  bool down_ = false;       // an outage: every request fails
  bool faulty_ = true;      // 500s, 404s after listings, cut-off uploads
  int outage_until_ = -1;
  std::map<std::string, uint64_t> counts_;
  std::vector<std::string> problems_;  // found by restores during the faults
};

}  // namespace replog::sim

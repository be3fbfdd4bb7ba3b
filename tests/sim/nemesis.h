// Nemesis: the faults of a run, started at random steps and ended after a
// random while, each one written to the trace and counted by kind:
//   messages   loss, duplication, delay and reordering on every transport;
//   partitions one node isolated, majority/minority, a ring of majorities,
//              swizzle (links cut one at a time, restored in random order);
//   crashes    a node dropped (sometimes right after a commit, before its
//              pushes went out; sometimes during a call, whose answer is lost,
//              committed or not), down for a while or restarted at once;
//   clocks     one node's clock jumped within the skew limit;
//   skew       one node's clock jumped beyond it;
//   hostile    the stranger's garbage, replays, lying vectors, and genuine
//              runs it relays altered;
//   forge      the stranger's updates under real origins (some seeds only);
//   disk       one node's disk full for a while, and the store's fault points
//              (sim/buggify.h) firing at random;
//   copies     a node's directory copied over another's, so that two nodes
//              write under one origin (its fork resolved in replay; among
//              other faults in 15% of seeds only);
//   trust      one node removes another from its trust list for a while (its
//              engine forgets it, and the removal spreads to the nodes it
//              reaches), then trusts and dials it again (which spreads too);
//              and an outsider,
//              a node no one trusts, dials every node and writes now and then.
// heal() ends them all (the outsider stays, untrusted): what a run checks is
// judged after it.
#pragma once

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim/cluster.h"
#include "sim/options.h"
#include "sim/stranger.h"
#include "sim/workload.h"

namespace replog::sim {

class Nemesis {
 public:
  Nemesis(const SimOptions& options, Cluster& cluster, Workload& workload, Buggify& buggify, std::mt19937_64& rng,
          Trace& trace);

  // Called once per step, after the cluster ticked.
  void step(int index);
  void heal();

  bool forging() const { return forging_; }
  // Whether two nodes were given one origin by a copied directory.
  bool copied() const { return copies_ > 0; }
  // The origins a copied directory gave two writers.
  const std::set<OriginId>& forked() const { return forked_; }
  // Nodes whose origin another node revoked: they cannot write after it.
  const std::set<int>& revoked_nodes() const { return revoked_nodes_; }
  const std::map<std::string, uint64_t>& counts() const { return counts_; }
  uint64_t failed_calls() const { return failed_calls_; }
  // What the nemesis found wrong as it went (a restarted node serving a run
  // without its head).
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  using LinkPair = std::pair<int, int>;
  bool on(FaultKind kind) const { return options_.faults.count(kind) > 0; }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  void note(const std::string& kind, const std::string& line);

  void start_message_faults();
  void apply_message_faults();
  void start_partition();
  std::vector<LinkPair> partition_links(int kind);
  void apply_cuts();
  void swizzle_step();
  void crash_one();
  void crash_during_call(SimNode& n);
  void fill_disk(int index);
  void free_disks_due(int index);
  void copy_directory();
  void restart_due(int index);
  void check_heads_served(int i, bool from_format_4);
  void jump_clock();
  void hostile_act();
  void remove_trust(int index);
  void revoke_node();
  void restore_trust_due(int index);
  void outsider_call();

  const SimOptions& options_;
  Cluster& cluster_;
  Workload& workload_;
  Buggify& buggify_;
  std::mt19937_64& rng_;
  Trace& trace_;
  std::unique_ptr<Stranger> stranger_;
  bool forging_ = false;
  bool copying_ = false;

  testing::Faults message_faults_;
  int messages_until_ = -1;
  std::set<LinkPair> cut_;
  int partition_until_ = -1;
  std::vector<LinkPair> swizzle_cuts_, swizzle_restores_;
  std::map<int, int> down_until_;  // node -> step it restarts at
  std::map<int, int> full_until_;  // node -> step its disk has room again
  std::map<LinkPair, int> distrust_until_;  // (a, b): a does not trust b until that step
  int copies_ = 0;
  std::set<OriginId> copied_origins_;  // origins copied once (or revoked): never again
  std::set<OriginId> forked_;
  std::set<int> older_format_;  // down, and to restart from format 4's layout
  std::vector<std::string> problems_;
  bool revoking_ = false;
  OriginId schema_origin_ = 0;  // n0's first origin, whose #1 recorded the schema
  std::set<int> revoked_nodes_;
  std::map<std::string, uint64_t> counts_;
  uint64_t failed_calls_ = 0;
};

}  // namespace replog::sim

// Workload: random calls on a small key space, so that concurrent writers
// conflict and late updates reorder folds: set/inc on counters c0..c3,
// set on v0..v3, add/remove of small ints on sets s0..s2 (now and then a set
// of an int there, so that an add is skipped), and create/update/delete of
// records item/i0..i3. Every call the node acknowledges goes into the model.
#pragma once

#include <random>
#include <string>

#include "sim/cluster.h"
#include "sim/model.h"

namespace replog::sim {

struct CallOutcome {
  bool acknowledged = false;
  bool failed = false;  // refused for a reason other than its content (a node bug)
  std::string line;     // for the trace
};

class Workload {
 public:
  // `cluster` (may be null) counts the origin moves a call is made after.
  Workload(std::mt19937_64& rng, Model& model, const Cluster* cluster = nullptr)
      : rng_(rng), model_(model), cluster_(cluster) {}
  // Whether the store may fail a call (disk faults are on): then a storage
  // error is an expected outcome, not a bug.
  void expect_storage_errors(bool expect) { storage_errors_expected_ = expect; }
  // Node `index`'s directory was replaced by a copy of another's (Model::forget_node).
  void forget_node(int index) { model_.forget_node(index); }
  // One random call on `node`.
  CallOutcome call(SimNode& node);
  // A given call on `node`.
  CallOutcome call(SimNode& node, const std::string& method, Value arg);
  // One random call whose answer is lost (its node crashes before the caller
  // hears): the model takes it as in flight, to be held or not.
  CallOutcome call_in_flight(SimNode& node);

 private:
  std::pair<std::string, Value> random_call();
  Value record_fields();
  std::string pick(const char* prefix, int count);

  CallOutcome call(SimNode& node, const std::string& method, Value arg, bool answer_lost);

  std::mt19937_64& rng_;
  Model& model_;
  const Cluster* cluster_;
  bool storage_errors_expected_ = false;
};

}  // namespace replog::sim

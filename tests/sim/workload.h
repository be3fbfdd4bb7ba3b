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
  Workload(std::mt19937_64& rng, Model& model) : rng_(rng), model_(model) {}
  // One random call on `node`.
  CallOutcome call(SimNode& node);
  // A given call on `node`.
  CallOutcome call(SimNode& node, const std::string& method, Value arg);

 private:
  std::pair<std::string, Value> random_call();
  Value record_fields();
  std::string pick(const char* prefix, int count);

  std::mt19937_64& rng_;
  Model& model_;
};

}  // namespace replog::sim

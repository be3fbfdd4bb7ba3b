// Model: the independent expectation of a run. It keeps every acknowledged
// call (its id, method and argument) and folds them in id order with its own
// small implementation of the built-in methods the simulator generates: set,
// inc, add, remove on top-level keys, and create, update, delete of records of
// the one record type. It shares nothing with the node but the Value type.
//
// Where the node's replay skips an update (create of a record that exists,
// update of one that does not, inc or add on a value of another kind) the
// model skips it too, by its own reading of the rules.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "protocol/update.h"
#include "replog/value.h"

namespace replog::sim {

inline constexpr const char* kRecordType = "item";

struct AckedCall {
  UpdateId id;
  std::string method;
  Value arg;
  int node = -1;     // the node that made it (-1: not known, as in hand-made models)
  uint64_t seq = 0;  // its seq in its origin (0: not known)
  uint64_t moves = 0;  // origin moves the cluster had seen when it was made (Cluster::moves())
  bool copied_over = false;  // its node's directory was replaced by a copy of another's after it
};

class Model {
 public:
  void acknowledge(const UpdateId& id, std::string method, Value arg, int node = -1, uint64_t seq = 0,
                   uint64_t moves = 0);
  // A call in flight when its node crashed: committed, but its caller never
  // heard so. It may be held or not, but alike everywhere and at most once.
  void in_flight(const UpdateId& id, std::string method, Value arg, int node = -1, uint64_t seq = 0,
                 uint64_t moves = 0);
  // Node `node`'s directory was replaced by a copy of another's: what it
  // wrote so far may have reached peers before or not. Its acknowledged calls
  // are judged as calls in flight from now on: held at most once, alike
  // everywhere.
  void forget_node(int node);
  const std::vector<AckedCall>& calls() const { return calls_; }
  const std::vector<AckedCall>& in_flight_calls() const { return in_flight_; }
  // The data every node should hold: the fold of every acknowledged call and
  // of the in-flight calls in `held` (those the nodes turned out to hold).
  Value fold(const std::set<UpdateId>& held = {}) const;
  // The same, the calls named by address (an id may name two calls: the two
  // branches of a forked origin can hold one id each) and each folded at the
  // id it is held under (`held_as`; a call its node re-issued under a fresh
  // origin after a fork is ordered there). Calls held as one id with one
  // method and argument are one update (two writers of one origin, one
  // clock reading, the same call) and fold once.
  // `left_out`: acknowledged calls replay leaves out (past a revocation).
  Value fold(const std::set<const AckedCall*>& held, const std::function<UpdateId(const AckedCall&)>& held_as,
             const std::set<const AckedCall*>& left_out = {}) const;

 private:
  std::vector<AckedCall> calls_;
  std::vector<AckedCall> in_flight_;
};

}  // namespace replog::sim

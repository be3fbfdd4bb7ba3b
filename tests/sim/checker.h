// Checker: what a healed run must satisfy, judged on plain snapshots of the
// nodes against the Model (so a test can feed it a snapshot that differs):
//   - every node has one state hash;
//   - every node's data equals the model's fold (compared as canonical
//     MessagePack encodings of the two Values);
//   - every origin's log is the prefix 1..n its vector claims;
//   - every node holds evidence of the same forks;
//   - every acknowledged call is held exactly once on every node: by its id,
//     or, when its origin forked at or below its seq (replay leaves it out),
//     as the update its node re-issued with the same method and argument
//     when it moved to a fresh origin (OriginMove); one left out and not
//     re-issued is lost;
//   - a call in flight at a crash, or made by a node whose directory was
//     later replaced by a copy (Model::forget_node), is held at most once,
//     and by all or none;
//   - no valid update was refused (refusals other than gaps and
//     too-far-ahead; a forked origin's runs refused as a fork or at or past
//     its fork seq are the other branch, and not counted).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "protocol/update.h"
#include "protocol/version_vector.h"
#include "replog/value.h"
#include "sim/cluster.h"
#include "sim/counting_store.h"
#include "sim/model.h"

namespace replog::sim {

struct NodeSnapshot {
  std::string name;
  std::string state_hash;
  Value data;  // the state's root
  VersionVector vector;
  std::map<OriginId, std::vector<Update>> log;  // every update held, per origin, in seq order
  std::map<OriginId, uint64_t> fork_seqs;       // origins it holds fork evidence of: the seq replay leaves out from
  std::map<OriginId, uint64_t> revoked = {};    // revocations in effect: origin -> its last seq that counts
};

// One line per divergence found; empty when the run passed.
std::vector<std::string> check_run(const std::vector<NodeSnapshot>& nodes, const Model& model,
                                   const Refusals& refusals, const std::vector<OriginMove>& moves = {});

// No node holds an update the stranger forged, nor one whose bytes it altered.
// Judged in every run.
std::vector<std::string> check_hostile(const std::vector<NodeSnapshot>& nodes, const HostileLedger& ledger);

// The outsider, a node no node trusts, writing under `origin`: it holds no
// origin but its own (it received nothing), and no node holds its origin
// (nothing it sent was stored). Judged in every run; the
// outsider takes no part in the checks above.
std::vector<std::string> check_outsider(const NodeSnapshot& outsider, OriginId origin,
                                        const std::vector<NodeSnapshot>& nodes);

}  // namespace replog::sim

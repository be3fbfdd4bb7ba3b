// VersionVector: for each origin, the highest seq held. Because every node
// holds a gap-free prefix 1..k of each origin, this is an exact summary of what
// a node holds, and the difference of two vectors is exactly what one lacks
// (docs/ARCHITECTURE.md "Replication").
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <map>

#include "protocol/update.h"
#include "replog/types.h"
#include "replog/value.h"

namespace replog {

// The seq held for `origin` (0: none).
inline uint64_t seq_of(const VersionVector& v, OriginId origin) {
  auto it = v.find(origin);
  return it == v.end() ? 0 : it->second;
}

// Raises each origin's entry to the highest seq among `updates` (entries are
// never lowered; origins not among them are left as they are).
template <typename Updates>
void raise_to(VersionVector& v, const Updates& updates) {
  for (const auto& u : updates) {
    uint64_t& seq = v[u.id().origin];
    if (u.seq() > seq) seq = u.seq();
  }
}

// Updates that `mine` holds and `theirs` lacks.
uint64_t count_missing_from(const VersionVector& mine, const VersionVector& theirs);

// As a Value: a map from 16-hex-digit origin ids to seqs (the local API,
// checkpoints, the peers database).
Value vector_to_value(const VersionVector& v);
Result<VersionVector> vector_from_value(const Value& v);

}  // namespace replog

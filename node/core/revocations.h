// Revocations (docs/ARCHITECTURE.md "Signed origins"; PROTOCOL.md §8
// "Revocation"): which `revoke {origin, last_seq}` updates of a log take
// effect, as a pure function of the log, so that every node holding the same
// updates leaves out the same ones.
//
// A revocation takes effect unless it is *blocked*: written by an origin that
// a revocation in effect revokes below the revocation's own seq (the writer
// was shut out before it wrote it). Timestamps play no part, so a device that
// back-dates its clock gains nothing. Revocations that block each other in a
// cycle (two members revoking each other, neither having seen the other's)
// all take effect. A revocation written by a forked origin at or after its
// fork seq is left out with the rest of that origin, so it is void.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "protocol/update.h"
#include "replog/value.h"

namespace replog {

inline constexpr const char* kRevokeMethod = "revoke";

// One `revoke` update as the rule needs it.
struct Revocation {
  UpdateId id;             // the revoke update's own id (its writer is id.origin)
  uint64_t seq = 0;        // its seq in its writer's origin
  OriginId target = 0;     // the origin revoked
  uint64_t last_seq = 0;   // the last seq of `target` that still counts
};

// The argument of `revoke`: {origin: 1..16 hex digits, last_seq: int >= 0}.
// Null with `why` set when it has another shape (replay records a
// bad-argument conflict; the rule ignores it). Reserved origins are refused.
std::optional<Revocation> parse_revoke_arg(const Value& arg, std::string* why);

// Of `all`, the revocations in effect, as origin -> the lowest last_seq of the
// revocations in effect that name it. `fork_seqs`: origin -> first seq that a
// fork leaves out.
std::map<OriginId, uint64_t> effective_revocations(const std::vector<Revocation>& all,
                                                   const std::map<OriginId, uint64_t>& fork_seqs);

// What replay leaves out, origin -> first seq left out: forks from their fork
// seq, revoked origins after their last seq, the lower where both apply.
std::map<OriginId, uint64_t> left_out_seqs(const std::map<OriginId, uint64_t>& fork_seqs,
                                           const std::map<OriginId, uint64_t>& revoked);

}  // namespace replog

#include "node/engine/ingest_check.h"

#include "node/core/hlc.h"
#include "protocol/bytes.h"

namespace replog {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kAccept: return "accepted";
    case Verdict::kDuplicate: return "duplicate";
    case Verdict::kFork: return "fork";
    case Verdict::kGap: return "gap";
    case Verdict::kHlcNotRising: return "hlc does not rise with seq";
    case Verdict::kTooFarAhead: return "too far ahead of this clock";
    case Verdict::kReservedOrigin: return "reserved origin id";
    case Verdict::kQuarantined: return "origin quarantined";
    case Verdict::kUnverified: return "no signed head covers it";
    case Verdict::kBadProof: return "its proof does not verify";
    case Verdict::kNotMember: return "its origin is not a member's";
  }
  return "?";
}

}  // namespace replog

namespace replog::engine {

Verdict check_received(const UpdateView& u, const HeldOrigin& held, uint64_t hlc_ceiling) {
  if (is_reserved_origin(u.id.origin)) return Verdict::kReservedOrigin;
  if (held.quarantined) return Verdict::kQuarantined;
  if (u.seq <= held.seq) {
    bool same = held.id_at_seq && *held.id_at_seq == u.id && held.body_at_seq && *held.body_at_seq == u.body;
    return same ? Verdict::kDuplicate : Verdict::kFork;
  }
  if (u.seq > held.seq + 1) return Verdict::kGap;
  // Seq 1's predecessor hlc is 0, so an hlc of 0 is never valid.
  if (u.id.hlc <= held.last_hlc) return Verdict::kHlcNotRising;
  if (u.id.hlc > hlc_ceiling) return Verdict::kTooFarAhead;
  return Verdict::kAccept;
}

std::string describe_refusal(const UpdateView& u, const HeldOrigin& held, Verdict v) {
  std::string what = "origin " + hex16(u.id.origin) + " seq " + std::to_string(u.seq) + " (" + u.id.to_string() + ")";
  switch (v) {
    case Verdict::kFork:
      return what + ": held as " + (held.id_at_seq ? held.id_at_seq->to_string() : std::string("?")) +
             " with other bytes (fork)";
    case Verdict::kGap:
      return what + ": gap, " + std::to_string(held.seq) + " held";
    case Verdict::kTooFarAhead:
      return what + ": timestamp " + hlc::to_string(u.id.hlc) + " is beyond the clock skew limit";
    default:
      return what + ": " + verdict_name(v);
  }
}

}  // namespace replog::engine

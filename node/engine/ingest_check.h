// The check of one received update against what is held of its origin
// (PROTOCOL.md "Receiving updates"): a pure function, so that every rule of
// ingest is in one place and testable without a log.
//
// Thread safety: pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "node/sync/sync_store.h"
#include "protocol/update.h"

namespace replog::engine {

// What the log holds of the update's origin.
struct HeldOrigin {
  uint64_t seq = 0;       // updates 1..seq are held
  uint64_t last_hlc = 0;  // the hlc of update `seq` (0 when none)
  bool quarantined = false;
  // When the update's seq is at or below `seq`: the id and body held there.
  std::optional<UpdateId> id_at_seq;
  std::optional<std::string_view> body_at_seq;
};

// `hlc_ceiling`: the highest hlc this node's clock accepts now (its wall clock
// plus the skew limit).
Verdict check_received(const UpdateView& u, const HeldOrigin& held, uint64_t hlc_ceiling);

// One line for logs and reports: what was received and why it was not stored.
std::string describe_refusal(const UpdateView& u, const HeldOrigin& held, Verdict v);

}  // namespace replog::engine

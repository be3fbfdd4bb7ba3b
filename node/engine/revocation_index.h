// The revocations a log holds (node/core/revocations.h decides which take
// effect), kept in the meta record `revocations` (docs/STORAGE.md) so that
// opening a node does not read the whole log for them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "node/core/revocations.h"
#include "storage/update_log.h"

namespace replog::engine {

// The revocation `u` makes, when it is a `revoke` whose argument has the shape.
std::optional<Revocation> revocation_of(const UpdateView& u);

// The meta record: 40 bytes per revocation, ordered by update id: hlc, origin,
// seq, target, last_seq, each 8 bytes big-endian.
std::string encode_revocations(const std::vector<Revocation>& all);
Result<std::vector<Revocation>> decode_revocations(std::string_view bytes);

// The log's revocations: from the meta record, or, when a directory has none
// yet (written before revocations), by reading every update once; `scanned`
// says which, so that a writer stores what it read.
Result<std::vector<Revocation>> load_revocations(LogTxn& txn, bool* scanned);

// What replay leaves out in this log: forks from their evidence, and the
// revocations in effect. `revocations` as load_revocations gives them.
std::map<OriginId, uint64_t> log_left_out(LogTxn& txn, const std::vector<Revocation>& revocations,
                                          std::map<OriginId, uint64_t>* revoked = nullptr);

}  // namespace replog::engine

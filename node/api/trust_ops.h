// The local API's trust ops (PROTOCOL.md §4): trust.list, trust.add and
// trust.remove over a TrustStore (storage/trust.h). The local API answers them
// with run_trust_op(), and so does `replog trust` when no node runs, so both
// give the same results and the same one-line errors.
//
// trust.add refuses the node's own device id here, not in the store: the
// store keeps a list of keys, the identity is the data directory's.
//
// Thread safety: as the TrustStore's (any thread).
#pragma once

#include <string>

#include "replog/status.h"
#include "replog/value.h"
#include "storage/env.h"
#include "storage/trust.h"

namespace replog {

// Whether `op` is one of the trust ops.
bool is_trust_op(const std::string& op);

// A trusted device as the API gives it: {id: device id, name, added_ms, how,
// changed_ms, by: device id or ""}.
Value trusted_device_value(const TrustedDevice& device);
// A removed device (a tombstone): {id, name, removed_ms, by}.
Value removed_device_value(const RemovedDevice& device);

// Runs the trust op `op` with `arg` on `trust`, the trust list of the data
// directory `data_dir` (whose identity.key trust.add reads to refuse the
// node's own id). A new device's added_ms is env.now_millis(); the entries
// trust.add and trust.remove make are authored by that key (PROTOCOL.md §7).
// trust.list gives the members, or with {removed: true} {devices, removed}
// with the tombstones. An error is
// one line: a malformed arg, a device id that does not parse, the own id, a
// bad name, or the file's write failing (then nothing changed).
Result<Value> run_trust_op(TrustStore& trust, const std::string& data_dir, const std::string& op, const Value& arg,
                           Env& env = Env::posix());

}  // namespace replog

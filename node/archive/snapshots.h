// Archive snapshots and retention (docs/ARCHIVE.md "Snapshots"): the roll-up
// that `replog archive compact` writes, and how restore checks them.
//
// A snapshot is the state folded from exactly the updates of its vector, with
// the cut, the vector, the heads at the vector and the state hash, signed by
// the member that wrote it and sealed like a segment. It never changes, so it
// can be cached forever. Restore trusts one only when its signer is a member;
// it then compares the snapshot's state with its own replay, and warns when
// the archive's log is behind a snapshot's vector (a truncated bucket).
//
// Thread safety: uses the bucket from the calling thread only.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "node/engine/node.h"
#include "protocol/archive_format.h"
#include "storage/object_store.h"

namespace replog {

// Seals and uploads `node`'s state as a snapshot signed by `device_secret`
// (64 bytes). Returns its key; an equal snapshot already there is kept.
Result<std::string> write_snapshot(ObjectStore& bucket, const archive::Keyring& keys, const engine::Node& node,
                                   std::string_view device_secret);

// The snapshots in the bucket, by cut (oldest first).
Result<std::vector<archive::SnapshotName>> list_snapshots(ObjectStore& bucket);

// Opens one: its seal, its signature, a signer that is a member (when
// is_member is set), and a state that decodes to the hash it records.
Result<archive::Snapshot> read_snapshot(ObjectStore& bucket, const archive::Keyring& keys,
                                        const archive::SnapshotName& name, std::string_view cluster,
                                        const std::function<bool(std::string_view)>& is_member);

struct RetentionReport {
  size_t snapshots_deleted = 0;
  size_t feed_deleted = 0;
};

// Keeps the newest `keep` snapshots of each methods digest (at least one of
// each) and deletes the rest; deletes change feed entries older than
// `feed_before_ms`.
Status apply_retention(ObjectStore& bucket, size_t keep, int64_t feed_before_ms, RetentionReport& report);

}  // namespace replog

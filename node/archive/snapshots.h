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
#include <optional>
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

// What adopt_snapshot took, and why it passed over newer snapshots.
struct AdoptedSnapshot {
  std::string key;                  // empty: none taken (state is replayed from scratch)
  uint64_t updates_after = 0;       // held updates beyond its vector: what is replayed
  std::vector<std::string> passed;  // one line per snapshot not taken, newest first
};

// Restore's shortcut (docs/ARCHIVE.md "Restore"): the newest snapshot (with a
// cut at or before `at_millis`, when given) folded with `node`'s methods that
// opens, is signed by a member, and is exact for what the node holds becomes
// its state at the snapshot's cut (engine::Node::adopt_checkpoint). Tries at
// most `tries` snapshots, newest first. A bucket error is returned; a
// snapshot that does not fit is only passed over.
Result<AdoptedSnapshot> adopt_snapshot(ObjectStore& bucket, const archive::Keyring& keys, engine::Node& node,
                                       const std::function<bool(std::string_view)>& is_member,
                                       std::optional<int64_t> at_millis, size_t tries = 3);

struct RetentionReport {
  size_t snapshots_deleted = 0;
  size_t feed_deleted = 0;
};

// Keeps the newest `keep` snapshots of each methods digest (at least one of
// each) and deletes the rest; deletes change feed entries older than
// `feed_before_ms`.
Status apply_retention(ObjectStore& bucket, size_t keep, int64_t feed_before_ms, RetentionReport& report);

}  // namespace replog

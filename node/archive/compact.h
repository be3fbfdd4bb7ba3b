// compact_archive: the stateless roll-up (docs/ARCHIVE.md "Roll-up"), run by
// `replog archive compact` from cron and callable by an application with its
// own methods: the node it is given was opened with the application's
// registry, so the snapshot's methods digest keeps the two apart.
//
// It takes every segment the node lacks (an empty member directory is
// enough; there it starts from the newest snapshot a member signed, when it is
// exact, and folds only the updates after it), merges each origin's small segments, writes a snapshot of the
// node's state signed by the device key, and applies retention. Running it
// every minute is safe, and two runs at once do no harm: merged objects are
// equal bytes under equal names and nothing is deleted before what covers it
// has been read back.
//
// Thread safety: one call at a time per bucket object.
#pragma once

#include <string>

#include "node/archive/archiver.h"
#include "node/archive/snapshots.h"

namespace replog {

struct CompactOptions {
  size_t snapshots_kept = 3;                               // per methods digest
  int64_t feed_retention_ms = int64_t{7} * 24 * 3600 * 1000;
  MergeOptions merge;
  std::function<void(const ArchiveCounters&)> on_progress;
  // Whose snapshots a node that holds nothing yet may start from (the
  // device keys of members); null: it folds every update.
  std::function<bool(std::string_view)> is_member;
};

struct CompactReport {
  ArchiveCounters pulled;
  MergeReport merged;
  RetentionReport retention;
  std::string snapshot;  // the key written (or found equal)
  std::string started_from;  // the snapshot an empty node started from, if any
  std::map<std::string, std::string> damaged;
};

Status compact_archive(engine::Node& node, ObjectStore& bucket, const archive::Keyring& keys,
                       std::string_view device_secret, const Clock& clock, const CompactOptions& options,
                       CompactReport& report);

}  // namespace replog

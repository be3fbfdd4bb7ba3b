#include "node/archive/compact.h"

#include "node/archive/listing.h"

namespace replog {

Status compact_archive(engine::Node& node, ObjectStore& bucket, const archive::Keyring& keys,
                       std::string_view device_secret, const Clock& clock, const CompactOptions& options,
                       CompactReport& report) {
  ArchiveOptions ao;
  ao.on_progress = options.on_progress;
  Archiver archiver(node, bucket, keys, clock, ao);
  const bool empty = node.vector().empty();
  Status pulled = archiver.pull(/*sweep_all=*/true);
  const ArchiveStatus st = archiver.status();
  report.pulled = st.counters;
  report.damaged = st.damaged;
  // A snapshot of a node that could not take everything would pin a partial state: stop here.
  REPLOG_RETURN_IF_ERROR(pulled);
  if (!st.damaged.empty()) return Status::corruption("the archive has damage: " + st.damaged.begin()->first);
  if (empty && options.is_member) {
    auto adopted = adopt_snapshot(bucket, keys, node, options.is_member, std::nullopt, 1);
    if (!adopted) return adopted.status();
    report.started_from = adopted->key;
  }
  auto origins = archive::origins_in_bucket(bucket);
  if (!origins) return origins.status();
  for (OriginId origin : *origins) {
    // The origin's key, as the node holds it (a range from seq 1 carries it).
    auto first = node.read_range(origin, 1, 1, 1);
    const std::string key = first && first->head ? first->head->key : std::string();
    REPLOG_RETURN_IF_ERROR(merge_segments(bucket, keys, origin, key, options.merge, report.merged));
  }
  auto snap = write_snapshot(bucket, keys, node, device_secret);
  if (!snap) return snap.status();
  report.snapshot = *snap;
  return apply_retention(bucket, options.snapshots_kept, clock.now_millis() - options.feed_retention_ms,
                         report.retention);
}

}  // namespace replog

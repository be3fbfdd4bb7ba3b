#include "node/archive/snapshots.h"

#include <algorithm>
#include <map>

#include "node/core/checkpoint.h"
#include "node/core/hlc.h"
#include "node/core/state.h"
#include "protocol/bytes.h"

namespace replog {

using archive::SnapshotName;

Result<std::string> write_snapshot(ObjectStore& bucket, const archive::Keyring& keys, const engine::Node& node,
                                   std::string_view device_secret) {
  auto head = node.head_checkpoint();
  if (head.bytes.empty()) return Status::not_found("nothing folded yet: no snapshot to write");
  archive::Snapshot snap;
  const auto cut = head.cut.key();
  snap.cut.assign(cut.data(), cut.size());
  snap.vector = head.vector;
  snap.state_hash = head.state_hash;
  snap.checkpoint = std::move(head.bytes);
  for (const auto& [origin, seq] : snap.vector) {
    auto r = node.read_range(origin, seq, 1, 1);
    if (r && r->head && r->head->seq == seq) snap.heads.push_back(std::move(*r->head));
  }
  auto methods = from_hex(node.methods().digest());
  if (!methods) return methods.status();
  const SnapshotName name{snap.cut, archive::vector_digest(snap.vector), methods->substr(0, 8)};
  const std::string plain = archive::encode_snapshot(snap, node.cluster_id(), device_secret);
  const std::string key = archive::snapshot_key(name);
  auto put = bucket.put_new(key, archive::seal(keys.back(), archive::Kind::kSnapshot, archive::snapshot_context(name),
                                               plain));
  if (!put) return put.status();
  return key;
}

Result<std::vector<SnapshotName>> list_snapshots(ObjectStore& bucket) {
  auto listed = bucket.list(std::string(archive::kSnapshotsPrefix), "", 0);
  if (!listed) return listed.status();
  std::vector<SnapshotName> out;
  for (const auto& o : *listed)
    if (auto n = archive::parse_snapshot_key(o.key)) out.push_back(*n);
  return out;  // the cut leads the name, so key order is cut order
}

Result<archive::Snapshot> read_snapshot(ObjectStore& bucket, const archive::Keyring& keys, const SnapshotName& name,
                                        std::string_view cluster,
                                        const std::function<bool(std::string_view)>& is_member) {
  const std::string key = archive::snapshot_key(name);
  auto sealed = bucket.get(key, archive::kMaxPlaintextBytes + archive::kChunkBytes * 2);
  if (!sealed) return sealed.status().with_context(key);
  auto plain = archive::open(keys, archive::Kind::kSnapshot, archive::snapshot_context(name), *sealed);
  if (!plain) return plain.status().with_context(key);
  auto snap = archive::decode_snapshot(*plain, cluster);
  if (!snap) return snap.status().with_context(key);
  if (is_member && !is_member(snap->signer))
    return Status::refused(key + ": signed by " + to_hex(snap->signer).substr(0, 16) + "…, a key that is no member's");
  if (snap->cut != name.cut || archive::vector_digest(snap->vector) != name.vector_digest)
    return Status::corruption(key + ": holds another cut or vector than its name");
  auto cp = decode_checkpoint(snap->checkpoint);
  if (!cp) return cp.status().with_context(key);
  auto state = State::decode(cp->state_bytes);
  if (!state) return state.status().with_context(key);
  const auto hash = state->hash();
  if (std::string(reinterpret_cast<const char*>(hash.data()), hash.size()) != snap->state_hash || cp->vector != snap->vector)
    return Status::corruption(key + ": its state does not match the hash and vector it records");
  return snap;
}

Result<AdoptedSnapshot> adopt_snapshot(ObjectStore& bucket, const archive::Keyring& keys, engine::Node& node,
                                       const std::function<bool(std::string_view)>& is_member,
                                       std::optional<int64_t> at_millis, size_t tries) {
  auto names = list_snapshots(bucket);
  if (!names) return names.status();
  auto methods = from_hex(node.methods().digest());
  if (!methods) return methods.status();
  AdoptedSnapshot out;
  for (auto n = names->rbegin(); n != names->rend() && tries > 0; ++n) {
    const std::string key = archive::snapshot_key(*n);
    if (n->methods_digest != methods->substr(0, 8)) continue;  // another application's
    if (at_millis && hlc::millis(UpdateId::from_key(n->cut).hlc) > *at_millis) continue;
    --tries;
    auto snap = read_snapshot(bucket, keys, *n, node.cluster_id(), is_member);
    if (!snap && snap.status().code() == Status::Code::kIOError) return snap.status();
    Status s = snap ? node.adopt_checkpoint(snap->checkpoint) : snap.status();
    if (!s) {
      out.passed.push_back(snap ? key + ": " + s.message() : s.message());  // read_snapshot names the key
      continue;
    }
    out.key = key;
    const VersionVector held = node.vector();
    for (const auto& [origin, seq] : held) out.updates_after += seq - std::min(seq, seq_of(snap->vector, origin));
    break;
  }
  return out;
}

Status apply_retention(ObjectStore& bucket, size_t keep, int64_t feed_before_ms, RetentionReport& report) {
  auto snaps = list_snapshots(bucket);
  if (!snaps) return snaps.status();
  std::map<std::string, std::vector<SnapshotName>> by_methods;
  for (const auto& n : *snaps) by_methods[n.methods_digest].push_back(n);
  for (auto& [_, names] : by_methods)
    for (size_t i = 0; i + std::max<size_t>(keep, 1) < names.size(); ++i) {
      REPLOG_RETURN_IF_ERROR(bucket.del(archive::snapshot_key(names[i])));
      ++report.snapshots_deleted;
    }
  auto feed = bucket.list(std::string(archive::kChangesPrefix), "", 0);
  if (!feed) return feed.status();
  for (const auto& o : *feed) {
    auto e = archive::parse_feed_key(o.key);
    if (!e) continue;
    if (e->uploader_ms >= feed_before_ms) break;  // listed in time order
    REPLOG_RETURN_IF_ERROR(bucket.del(o.key));
    ++report.feed_deleted;
  }
  return Status::ok();
}

}  // namespace replog

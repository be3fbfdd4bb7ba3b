// engine::Node's membership and revocations (docs/ARCHITECTURE.md "Signed
// origins"; PROTOCOL.md §8 "Membership and revocation").
//
// An origin's runs are stored only when its key is a member's, or certified
// by a member's device key; the others wait in a bounded buffer in memory
// until membership changes. Revocations are updates like any others: which of
// them take effect is decided over every one the log holds
// (node/core/revocations.h), and replay leaves the revoked updates out
// wherever they fall, refolding from the first one whose fate changed.
#include <algorithm>

#include "node/engine/batch.h"
#include "node/engine/revocation_index.h"
#include "protocol/bytes.h"

namespace replog::engine {

// A directory from before revocations has no index of them: read the log once.
Status Node::index_revocations() {
  auto txn = log_->begin_write();
  if (!txn) return txn.status();
  if (txn->meta(meta::kRevocations)) {
    txn->abort();
    return Status::ok();
  }
  auto all = load_revocations(*txn, nullptr);
  if (!all) return all.status();
  REPLOG_RETURN_IF_ERROR(txn->put_meta(meta::kRevocations, encode_revocations(*all)));
  return txn->commit();
}

// `u` was stored in this batch: when it is a revocation, the index grows and
// what replay leaves out is worked out again before the commit.
void Node::note_revocation(Batch& b, const UpdateView& u) {
  if (u.method != kRevokeMethod) return;
  auto r = revocation_of(u);
  if (!r) return;
  auto at = std::lower_bound(revocations_.begin(), revocations_.end(), *r,
                             [](const Revocation& x, const Revocation& y) { return x.id < y.id; });
  if (at != revocations_.end() && at->id == r->id) return;
  revocations_.insert(at, *r);
  b.left_out_changed = true;
}

// What replay leaves out, again from the forks and revocations the batch's
// transaction holds. For each origin whose first left-out seq moved, state is
// refolded from the first held update between the old and the new seq, and
// the checkpoints from there on are dropped.
Status Node::refresh_left_out(Batch& b) {
  if (!b.left_out_changed) return Status::ok();
  b.left_out_changed = false;
  REPLOG_RETURN_IF_ERROR(b.txn.put_meta(meta::kRevocations, encode_revocations(revocations_)));
  ++b.puts;
  std::map<OriginId, uint64_t> revoked;
  auto now = log_left_out(b.txn, revocations_, &revoked);
  const auto& before = replayer_.left_out();
  std::set<OriginId> origins;
  for (const auto& [o, _] : before) origins.insert(o);
  for (const auto& [o, _] : now) origins.insert(o);
  std::optional<UpdateId> first;
  for (OriginId o : origins) {
    auto x = before.find(o);
    auto y = now.find(o);
    const uint64_t a = x == before.end() ? UINT64_MAX : x->second;
    const uint64_t c = y == now.end() ? UINT64_MAX : y->second;
    if (a == c) continue;
    if (auto id = b.txn.id_of(o, std::min(a, c))) first = first ? std::min(*first, *id) : *id;
  }
  replayer_.set_left_out(std::move(now));
  if (first) {
    for (const auto& [cut, _] : b.txn.checkpoints())
      if (!(cut < *first)) REPLOG_RETURN_IF_ERROR(b.txn.delete_checkpoint(cut));
    refold_from_ = refold_from_ ? std::min(*refold_from_, *first) : *first;
  }
  {
    std::lock_guard<std::mutex> l(revoked_mu_);
    if (revoked != revoked_) {
      revoked_ = std::move(revoked);
      ++revocation_generation_;
    }
  }
  return b.txn.status();
}

// Whether `origin`'s runs may be stored: its key (the held one, or the one its
// batch carries) is a member's or certified by one; or it is revoked and the
// runs start at or below its last seq, which lagging nodes still need.
bool Node::member_allows(Batch& b, OriginId origin, const std::vector<const Update*>& ups,
                         const std::string& batch_key) {
  if (!options_.is_member || origin == node_id_) return true;
  {
    std::lock_guard<std::mutex> l(revoked_mu_);
    auto r = revoked_.find(origin);
    if (r != revoked_.end()) return !ups.empty() && ups.front()->seq() <= r->second;
  }
  if (const auto& rec = b.record_of(origin)) return options_.is_member(rec->member_key());
  if (batch_key.empty()) return true;  // no key known: refused as unverified, not held
  // The certificate is checked with the head; here only who it names.
  return options_.is_member(batch_key) || std::any_of(b.requests.begin(), b.requests.end(), [&](const auto& req) {
           return std::any_of(req->heads.begin(), req->heads.end(), [&](const proof::Head& h) {
             return h.origin == origin && h.key == batch_key && !h.device.empty() && options_.is_member(h.device);
           });
         });
}

void Node::hold(OriginId origin, const std::vector<const Update*>& ups, const std::vector<const proof::Head*>& heads) {
  uint64_t bytes = 0;
  for (const Update* u : ups) bytes += u->body().size();
  std::lock_guard<std::mutex> l(held_mu_);
  if (held_bytes_ + bytes > kMaxHeldBytes) return;  // full: the sender offers them again later
  HeldRuns& h = held_[origin];
  for (const Update* u : ups) {
    if (!h.update_keys.emplace(u->seq(), u->id()).second) continue;
    h.updates.push_back(*u);
    h.bytes += u->body().size();
    held_bytes_ += u->body().size();
  }
  for (const proof::Head* head : heads)
    if (h.head_keys.emplace(head->seq, head->signature).second) h.heads.push_back(*head);
}

Result<IngestReport> Node::membership_changed() {
  std::vector<Update> updates;
  std::vector<proof::Head> heads;
  {
    std::lock_guard<std::mutex> l(held_mu_);
    for (auto& [_, h] : held_) {
      std::move(h.updates.begin(), h.updates.end(), std::back_inserter(updates));
      std::move(h.heads.begin(), h.heads.end(), std::back_inserter(heads));
    }
    held_.clear();
    held_bytes_ = 0;
  }
  if (updates.empty()) return IngestReport{};
  return ingest(std::move(updates), std::move(heads));
}

std::map<OriginId, uint64_t> Node::revoked_origins() const {
  std::lock_guard<std::mutex> l(revoked_mu_);
  return revoked_;
}

std::vector<std::string> Node::revoked_member_keys() const {
  std::map<OriginId, uint64_t> revoked;
  {
    std::lock_guard<std::mutex> l(revoked_mu_);
    revoked = revoked_;
  }
  std::vector<std::string> keys;
  if (revoked.empty()) return keys;
  auto txn = log_->begin_read();
  if (!txn) return keys;
  for (const auto& [origin, _] : revoked)
    if (auto rec = txn->origin_record(origin)) keys.push_back(rec->member_key());
  return keys;
}

}  // namespace replog::engine

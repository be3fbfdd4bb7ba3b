// engine::Node::adopt_checkpoint: a restore starts from an archive snapshot
// instead of replaying the log below it (docs/ARCHIVE.md "Restore").
//
// The log stays whole (history is kept); only the fold is saved. A snapshot
// is taken only when it is exact for the log held, so the state folded from
// it equals the state a replay from scratch gives.
#include "node/core/checkpoint.h"
#include "node/engine/node.h"
#include "protocol/bytes.h"
#include "storage/update_log.h"

namespace replog::engine {

namespace {

std::string at(OriginId origin, uint64_t seq) { return hex16(origin) + " #" + std::to_string(seq); }

// The first seq left out per origin falls inside `vector`: some update it
// folded would be left out (or was, for its writer).
std::optional<std::string> leaves_out_inside(const std::map<OriginId, uint64_t>& left_out, const VersionVector& vector,
                                             const char* by) {
  for (const auto& [origin, first] : left_out)
    if (first <= seq_of(vector, origin))
      return std::string("its vector holds ") + at(origin, first) + ", which " + by + " leave out";
  return std::nullopt;
}

}  // namespace

// REQUIRES: state_mu_ held (revocations_ and the replayer's left-out).
Status Node::check_exact(LogTxn& txn, const Checkpoint& cp) const {
  const auto held = txn.vector_entries();
  for (const auto& [origin, seq] : cp.vector) {
    auto h = held.find(origin);
    const uint64_t have = h == held.end() ? 0 : h->second.seq;
    if (have < seq) return Status::refused("it covers " + at(origin, seq) + " but this node holds only #" + std::to_string(have));
    auto id = txn.id_of(origin, seq);
    if (!id || cp.cut < *id) return Status::refused("its vector reaches " + at(origin, seq) + ", past its cut");
  }
  for (const auto& [origin, entry] : held) {
    const uint64_t seq = seq_of(cp.vector, origin);
    if (entry.seq == seq) continue;
    auto next = txn.id_of(origin, seq + 1);
    if (!next || !(cp.cut < *next))
      return Status::refused("it lacks " + at(origin, seq + 1) + ", held below its cut");
  }
  if (auto why = leaves_out_inside(replayer_.left_out(), cp.vector, "the forks and revocations held now"))
    return Status::refused(*why);
  std::vector<Revocation> inside;
  for (const auto& r : revocations_)
    if (r.seq <= seq_of(cp.vector, r.id.origin)) inside.push_back(r);
  if (auto why = leaves_out_inside(left_out_seqs({}, effective_revocations(inside, {})), cp.vector,
                                   "the revocations inside it"))
    return Status::refused(*why);
  return txn.status();
}

Status Node::adopt_checkpoint(std::string_view bytes) {
  if (!writable_) return Status::invalid_argument("adopt_checkpoint needs a writable node");
  auto cp = decode_checkpoint(bytes);
  if (!cp) return cp.status();
  if (cp->methods_digest != methods_->digest())
    return Status::refused("it was folded with other methods (digest " + cp->methods_digest.substr(0, 16) + "…)");
  std::lock_guard<std::mutex> l(state_mu_);
  auto txn = log_->begin_write();
  if (!txn) return txn.status();
  REPLOG_RETURN_IF_ERROR(check_exact(*txn, *cp));
  REPLOG_RETURN_IF_ERROR(txn->put_checkpoint(cp->cut, bytes));
  REPLOG_RETURN_IF_ERROR(txn->commit());
  // Everything at or below the cut is the checkpoint's: fold from it.
  refold_from_ = cp->cut.origin == UINT64_MAX ? UpdateId{cp->cut.hlc + 1, 0} : UpdateId{cp->cut.hlc, cp->cut.origin + 1};
  return Status::ok();
}

}  // namespace replog::engine

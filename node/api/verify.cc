#include "node/api/verify.h"

#include <map>

#include "node/core/checkpoint.h"
#include "node/core/replayer.h"
#include "node/engine/node.h"
#include "node/engine/revocation_index.h"
#include "protocol/bytes.h"
#include "protocol/msgpack_codec.h"
#include "protocol/origin_proof.h"
#include "storage/update_log.h"

namespace replog {

namespace {

// The state hash each decodable checkpoint of these methods holds, by cut.
std::map<UpdateId, std::string> checkpoint_hashes(LogTxn& txn, const std::string& digest, VerifyReport& report) {
  std::map<UpdateId, std::string> out;
  for (const auto& [cut, bytes] : txn.checkpoints()) {
    auto cp = decode_checkpoint(bytes);
    if (!cp) {
      report.problems.push_back("checkpoint " + cut.to_string() + ": " + cp.status().message());
      continue;
    }
    if (cp->cut != cut) report.problems.push_back("checkpoint " + cut.to_string() + ": cut field differs from its key");
    if (cp->methods_digest != digest) continue;  // made by another set of methods: not comparable
    auto state = State::decode(cp->state_bytes);
    if (!state) {
      report.problems.push_back("checkpoint " + cut.to_string() + ": " + state.status().message());
      continue;
    }
    out[cut] = state->hash_hex();
  }
  return out;
}

// Replays the whole log from empty, checking each origin's prefix, the seq
// index, and every checkpoint against the fold at its cut.
class LogWalk {
 public:
  LogWalk(LogTxn& txn, const MethodRegistry& methods, std::map<UpdateId, std::string> checkpoints,
          VerifyReport& report)
      : txn_(txn), replayer_(methods, 0), checkpoints_(std::move(checkpoints)), report_(report) {
    next_checkpoint_ = checkpoints_.begin();
    cluster_ = txn_.meta(meta::kCluster).value_or("");
    // Forks proved by evidence and revoked updates are left out of the fold, as
    // a node leaves them out; the index of revocations is checked against the
    // log after the walk.
    auto indexed = engine::load_revocations(txn_, nullptr);
    if (!indexed) problem("revocations: " + indexed.status().message());
    else indexed_revocations_ = std::move(indexed).value();
    replayer_.set_left_out(engine::log_left_out(txn_, indexed_revocations_));
    for (auto& [origin, rec] : txn_.origin_records()) {
      Chained c;
      c.rec = rec;
      c.chain = c.chain_at_tip = proof::chain_start(cluster_, rec.key);
      for (const StoredHead& h : txn_.heads(origin)) c.heads[h.seq] = h;
      chains_.emplace(origin, std::move(c));
    }
  }

  void run() {
    Status iter = txn_.for_each_from(UpdateId{}, [&](const UpdateId& id, std::string_view body) {
      visit(id, body);
      return true;
    });
    if (!iter) problem(iter.message());
    check_checkpoints_before(std::nullopt);
    report_.scratch_hash = replayer_.state().hash_hex();
    if (engine::encode_revocations(revocations_) != engine::encode_revocations(indexed_revocations_))
      problem("revocations: the index names " + std::to_string(indexed_revocations_.size()) + ", the log holds " +
              std::to_string(revocations_.size()));
  }

  const std::map<OriginId, VectorEntry>& seen() const { return seen_; }

  // After the walk: each record's tip is its chain where the record says, and
  // every kept head was met.
  void check_records() {
    for (auto& [origin, c] : chains_) {
      const std::string name = "origin " + hex16(origin);
      if (c.at_seq != c.rec.seq || c.chain_at_tip != c.rec.chain) {
        problem(name + ": its recorded chain tip at #" + std::to_string(c.rec.seq) + " is not the chain of its updates");
        continue;
      }
      if (!c.rec.device.empty() && !proof::cert_valid(cluster_, c.rec.key, c.rec.device, c.rec.cert))
        problem(name + ": the certificate of its key does not verify");
      for (const auto& [seq, h] : c.heads)
        if (seq > c.rec.seq) problem(name + ": a head at #" + std::to_string(seq) + " is past its verified tip");
      if (c.bad_heads == 0) ++report_.origins_verified;
    }
    for (const auto& [origin, o] : seen_) {
      auto it = chains_.find(origin);
      report_.unverified_updates += it == chains_.end() ? o.seq : o.seq - std::min(o.seq, it->second.rec.seq);
    }
  }

 private:
  void problem(std::string text) { report_.problems.push_back(std::move(text)); }

  void visit(const UpdateId& id, std::string_view body) {
    ++report_.updates;
    auto u = parse_update(id, body);
    if (!u) return problem(u.status().message());
    VectorEntry& o = seen_[id.origin];
    const std::string origin = "origin " + hex16(id.origin);
    if (u->seq != o.seq + 1)
      problem(origin + ": seq " + std::to_string(u->seq) + " follows " + std::to_string(o.seq));
    if (id.hlc <= o.last_hlc && o.seq > 0) problem(origin + ": hlc does not rise at seq " + std::to_string(u->seq));
    o.seq = std::max(o.seq, u->seq);
    o.last_hlc = std::max(o.last_hlc, id.hlc);
    auto indexed = txn_.id_of(id.origin, u->seq);
    if (!indexed || *indexed != id)
      problem("seq index: " + origin + " seq " + std::to_string(u->seq) + " does not point at " + id.to_string());
    if (!decode_msgpack(u->arg)) ++report_.undecodable_args;
    if (auto r = engine::revocation_of(*u)) revocations_.push_back(*r);
    chain(id, *u);
    check_checkpoints_before(id);
    auto applied = replayer_.apply(*u);
    if (applied.outcome == Replayer::Outcome::kHalted) problem(applied.halt + "; the fold left it out");
  }

  // Compares every checkpoint whose cut sorts below `next` (none: all the rest)
  // with the fold so far; its cut must be the last applied update.
  void check_checkpoints_before(const std::optional<UpdateId>& next) {
    for (; next_checkpoint_ != checkpoints_.end() && (!next || next_checkpoint_->first < *next); ++next_checkpoint_) {
      const std::string name = "checkpoint " + next_checkpoint_->first.to_string();
      if (!replayer_.last_applied() || next_checkpoint_->first != *replayer_.last_applied()) {
        problem(name + ": its cut is not in the log");
        continue;
      }
      ++report_.checkpoints_checked;
      if (replayer_.state().hash_hex() != next_checkpoint_->second)
        problem(name + ": state differs from the fold of the log up to its cut");
    }
  }

  struct Chained {
    OriginRecord rec;
    proof::Chain chain{};
    std::map<uint64_t, StoredHead> heads;
    uint64_t at_seq = 0;
    proof::Chain chain_at_tip{};
    size_t bad_heads = 0;
  };

  // Steps the update's origin's chain and checks a kept head at its seq.
  void chain(const UpdateId& id, const UpdateView& u) {
    auto it = chains_.find(id.origin);
    if (it == chains_.end() || u.seq > it->second.rec.seq) return;
    Chained& c = it->second;
    proof::chain_step(c.chain, c.rec.key, id.hlc, u.body);
    c.at_seq = u.seq;
    if (u.seq == c.rec.seq) c.chain_at_tip = c.chain;
    auto h = c.heads.find(u.seq);
    if (h == c.heads.end()) return;
    ++report_.heads_checked;
    proof::Head head{id.origin, h->second.seq, h->second.chain, h->second.flags, h->second.signature, {}, {}, {}};
    const std::string name = "origin " + hex16(id.origin) + " head #" + std::to_string(u.seq);
    if (head.chain != c.chain) {
      ++c.bad_heads;
      problem(name + ": its chain is not the chain of the updates up to it");
    } else if (Status s = proof::check_head(head, cluster_, c.rec.key); !s) {
      ++c.bad_heads;
      problem(name + ": " + s.message());
    }
  }

  LogTxn& txn_;
  std::string cluster_;
  std::map<OriginId, Chained> chains_;
  Replayer replayer_;
  std::map<UpdateId, std::string> checkpoints_;
  std::map<UpdateId, std::string>::const_iterator next_checkpoint_;
  std::map<OriginId, VectorEntry> seen_;
  std::vector<Revocation> revocations_;          // met in the walk
  std::vector<Revocation> indexed_revocations_;  // the meta record
  VerifyReport& report_;
};

void check_vector(LogTxn& txn, const std::map<OriginId, VectorEntry>& seen, VerifyReport& report) {
  auto vector = txn.vector_entries();
  report.origins = seen.size();
  for (const auto& [origin, o] : seen) {
    auto it = vector.find(origin);
    if (it == vector.end() || it->second.seq != o.seq || it->second.last_hlc != o.last_hlc)
      report.problems.push_back("vector entry of origin " + hex16(origin) + " does not match the log");
  }
  for (const auto& [origin, e] : vector)
    if (!seen.count(origin)) report.problems.push_back("vector names origin " + hex16(origin) + " with no updates");
}

void check_loaded_state(const std::string& dir, std::shared_ptr<const MethodRegistry> methods, VerifyReport& report) {
  engine::NodeOptions options;
  options.dir = dir;
  options.methods = std::move(methods);
  auto node = engine::Node::open_read_only(options);
  if (!node) {
    report.problems.push_back("loading state: " + node.status().message());
    return;
  }
  report.loaded_hash = (*node)->state_hash();
  if (report.loaded_hash != report.scratch_hash)
    report.problems.push_back("state loaded from checkpoint and tail differs from the fold from scratch");
}

}  // namespace

Result<VerifyReport> verify_data_dir(const std::string& dir, std::shared_ptr<const MethodRegistry> methods) {
  VerifyReport report;
  auto log = UpdateLog::open(dir, {});
  if (!log) return log.status();
  auto txn = (*log)->begin_read();
  if (!txn) return txn.status();
  LogWalk walk(*txn, *methods, checkpoint_hashes(*txn, methods->digest(), report), report);
  walk.run();
  walk.check_records();
  check_vector(*txn, walk.seen(), report);
  const std::string cluster = txn->meta(meta::kCluster).value_or("");
  for (const auto& [origin, bytes] : txn->evidence()) {
    auto e = proof::decode_evidence(bytes);
    Status s = e ? proof::check_evidence(*e, cluster) : e.status();
    if (s && e->origin() != origin) s = Status::corruption("it names origin " + hex16(e->origin()));
    if (!s) report.problems.push_back("fork evidence of origin " + hex16(origin) + ": " + s.message());
    ++report.evidence_checked;
  }
  if (!txn->status()) report.problems.push_back(txn->status().message());
  check_loaded_state(dir, std::move(methods), report);
  return report;
}

}  // namespace replog

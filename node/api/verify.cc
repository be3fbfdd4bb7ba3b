#include "node/api/verify.h"

#include <map>

#include "node/core/checkpoint.h"
#include "node/core/replayer.h"
#include "node/engine/node.h"
#include "protocol/bytes.h"
#include "protocol/msgpack_codec.h"
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
  }

  void run() {
    Status iter = txn_.for_each_from(UpdateId{}, [&](const UpdateId& id, std::string_view body) {
      visit(id, body);
      return true;
    });
    if (!iter) problem(iter.message());
    check_checkpoints_before(std::nullopt);
    report_.scratch_hash = replayer_.state().hash_hex();
  }

  const std::map<OriginId, VectorEntry>& seen() const { return seen_; }

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
    check_checkpoints_before(id);
    replayer_.apply(*u);
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

  LogTxn& txn_;
  Replayer replayer_;
  std::map<UpdateId, std::string> checkpoints_;
  std::map<UpdateId, std::string>::const_iterator next_checkpoint_;
  std::map<OriginId, VectorEntry> seen_;
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
  check_vector(*txn, walk.seen(), report);
  if (!txn->status()) report.problems.push_back(txn->status().message());
  check_loaded_state(dir, std::move(methods), report);
  return report;
}

}  // namespace replog

#include "node/api/verify.h"

#include <map>

#include "node/engine/node.h"
#include "node/core/replayer.h"
#include "protocol/msgpack_codec.h"
#include "storage/update_log.h"

namespace replog {

Result<VerifyReport> verify_data_dir(const std::string& dir, std::shared_ptr<const MethodRegistry> methods) {
  VerifyReport report;
  auto log = UpdateLog::open(dir, {});
  if (!log) return log.status();
  auto txn = (*log)->begin_read();
  if (!txn) return txn.status();

  const std::string digest = methods->digest();
  std::map<UpdateId, std::string> checkpoint_hashes;  // cut -> hash stored in the checkpoint
  for (const auto& [cut, bytes] : txn->checkpoints()) {
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
    checkpoint_hashes[cut] = state->hash_hex();
  }

  Replayer replayer(*methods, 0);
  struct OriginCheck {
    uint64_t seq = 0;
    uint64_t last_hlc = 0;
  };
  std::map<OriginId, OriginCheck> seen;
  auto next_checkpoint = checkpoint_hashes.begin();
  // Compares every checkpoint whose cut sorts below `next` (none: all the rest)
  // with the fold so far; its cut must be the last applied update.
  auto check_checkpoints_before = [&](const std::optional<UpdateId>& next) {
    while (next_checkpoint != checkpoint_hashes.end() && (!next || next_checkpoint->first < *next)) {
      if (replayer.last_applied() && next_checkpoint->first == *replayer.last_applied()) {
        ++report.checkpoints_checked;
        if (replayer.state().hash_hex() != next_checkpoint->second)
          report.problems.push_back("checkpoint " + next_checkpoint->first.to_string() +
                                    ": state differs from the fold of the log up to its cut");
      } else {
        report.problems.push_back("checkpoint " + next_checkpoint->first.to_string() + ": its cut is not in the log");
      }
      ++next_checkpoint;
    }
  };

  Status iter = txn->for_each_from(UpdateId{}, [&](const UpdateId& id, std::string_view body) {
    ++report.updates;
    auto u = parse_body(id, body);
    if (!u) {
      report.problems.push_back(u.status().message());
      return true;
    }
    OriginCheck& o = seen[id.origin];
    if (u->seq != o.seq + 1)
      report.problems.push_back("origin " + hex16(id.origin) + ": seq " + std::to_string(u->seq) + " follows " +
                                std::to_string(o.seq));
    if (id.hlc <= o.last_hlc && o.seq > 0)
      report.problems.push_back("origin " + hex16(id.origin) + ": hlc does not rise at seq " + std::to_string(u->seq));
    o.seq = std::max(o.seq, u->seq);
    o.last_hlc = std::max(o.last_hlc, id.hlc);
    auto indexed = txn->id_of(id.origin, u->seq);
    if (!indexed || *indexed != id)
      report.problems.push_back("seq index: origin " + hex16(id.origin) + " seq " + std::to_string(u->seq) +
                                " does not point at " + id.to_string());
    if (!decode_msgpack(u->arg)) ++report.undecodable_args;
    check_checkpoints_before(id);
    replayer.apply(*u);
    return true;
  });
  if (!iter) report.problems.push_back(iter.message());
  check_checkpoints_before(std::nullopt);

  auto vector = txn->vector();
  report.origins = seen.size();
  for (const auto& [origin, o] : seen) {
    auto it = vector.find(origin);
    if (it == vector.end() || it->second.seq != o.seq || it->second.last_hlc != o.last_hlc)
      report.problems.push_back("vector entry of origin " + hex16(origin) + " does not match the log");
  }
  for (const auto& [origin, e] : vector)
    if (!seen.count(origin)) report.problems.push_back("vector names origin " + hex16(origin) + " with no updates");
  report.scratch_hash = replayer.state().hash_hex();

  NodeOptions options;
  options.dir = dir;
  options.methods = methods;
  auto node = Node::open_read_only(options);
  if (!node) {
    report.problems.push_back("loading state: " + node.status().message());
  } else {
    report.loaded_hash = (*node)->state_hash();
    if (report.loaded_hash != report.scratch_hash)
      report.problems.push_back("state loaded from checkpoint and tail differs from the fold from scratch");
  }
  return report;
}

}  // namespace replog

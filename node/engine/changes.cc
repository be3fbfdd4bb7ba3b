// engine::Node's change subscriptions: the replayer's steps turned into
// Changes (include/replog/changes.h), held until the batch commits.
#include <algorithm>

#include "node/engine/node.h"

namespace replog::engine {

void Node::set_change_sink(ChangeSink sink) {
  std::lock_guard<std::mutex> l(state_mu_);
  change_sink_ = std::move(sink);
  pending_changes_.clear();
}

void Node::observe(const Replayer::Event& e) const {
  if (!change_sink_ || quiet_changes_ > 0) return;
  Change c;
  switch (e.kind) {
    case Replayer::Event::Kind::kApplied: c.kind = Change::Kind::kApplied; break;
    case Replayer::Event::Kind::kConflict: c.kind = Change::Kind::kConflict; break;
    case Replayer::Event::Kind::kRolledBack: c.kind = Change::Kind::kRolledBack; break;
  }
  c.id = e.entry.id;
  c.method = e.entry.method;
  const TypeRegistry& schema = replayer_.state().schema();
  for (const auto& op : e.entry.ops) {
    const auto* write = std::get_if<UndoEntry::PathOp>(&op);
    if (!write) continue;
    const Path& p = write->written.empty() ? write->path : write->written;
    if (std::find(c.paths.begin(), c.paths.end(), p) != c.paths.end()) continue;
    c.paths.push_back(p);
    if (p.size() < 2 || !schema.find_record(p[0])) continue;
    std::pair<std::string, std::string> record{p[0], p[1]};
    if (std::find(c.records.begin(), c.records.end(), record) == c.records.end()) c.records.push_back(record);
  }
  pending_changes_.push_back(std::move(c));
}

void Node::note_reloaded() const {
  if (!change_sink_ || quiet_changes_ > 0) return;
  // Whatever was heard before the rebuild is summed up by it.
  pending_changes_.clear();
  pending_changes_.push_back(Change{Change::Kind::kReloaded, {}, {}, {}, {}});
}

void Node::publish_changes_locked() const {
  if (pending_changes_.empty()) return;
  if (change_sink_) change_sink_(pending_changes_);
  pending_changes_.clear();
}

}  // namespace replog::engine

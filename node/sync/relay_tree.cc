// Relay trees (kFeatureTree, PROTOCOL.md "Relay trees"): which peers a
// received update is pushed on to. An origin pushes its own updates to every
// peer; a node relays another origin's updates only to peers that neither
// hear that origin first hand nor pruned it, and announces them (Have),
// once committed, to the peers that pruned it. A duplicate push prunes its
// sender; an announcement of what this node lacks grafts the announcer after
// kGraftDelayMs. Plumtree (Leitao, Pereira, Rodrigues, 2007) is the model;
// anti-entropy rounds stay the safety net under all of it.
#include <algorithm>

#include "node/sync/sync_engine.h"

namespace replog {

bool SyncEngine::reaches_otherwise(const Peer& p, OriginId origin) const {
  if (!tree_link(p) || origin == hello_.node_id) return false;
  return p.node_id == origin || p.hears.count(origin) || p.lazy.count(origin);
}

bool SyncEngine::relays_to(const Peer& p, OriginId origin) const { return !reaches_otherwise(p, origin); }

bool SyncEngine::announces_to(const Peer& p, OriginId origin) const {
  return reaches_otherwise(p, origin) && p.node_id != origin && !p.hears.count(origin);
}

void SyncEngine::take_tree(Peer& p, const wire::Tree& t) {
  const VersionVector held = node_.vector();
  // Only origins held are kept in the per-peer sets, so a peer cannot grow them past the vector.
  for (OriginId o : t.prune)
    if (seq_of(held, o) > 0 && o != hello_.node_id) p.lazy.insert(o);
  for (OriginId o : t.graft) p.lazy.erase(o);
  if (!t.prune.empty() || !t.graft.empty()) note_lazy_changed();
  if (t.hears) p.hears = std::set<OriginId>(t.hears->begin(), t.hears->end());
  const int64_t now = clock_.now_millis();
  for (const auto& [o, seq] : t.have) {
    if (is_reserved_origin(o) || forked_.count(o) || seq <= held_or_coming(held, o)) continue;
    auto g = grafts_.find(o);
    if (g != grafts_.end()) {
      g->second.seq = std::max(g->second.seq, seq);
      continue;
    }
    if (grafts_.size() >= wire::kMaxTreeEntries) break;
    grafts_[o] = Graft{p.endpoint, seq, now + kGraftDelayMs};
  }
}

void SyncEngine::note_lazy_changed() {
  const bool any = std::any_of(peers_.begin(), peers_.end(), [](const auto& e) { return !e.second.lazy.empty(); });
  any_lazy_.store(any, std::memory_order_relaxed);
}

void SyncEngine::prune_duplicates(const Link& link, Peer& from, const wire::Push& push) {
  if (push.updates.empty()) return;
  const VersionVector held = node_.vector();
  const int64_t now = clock_.now_millis();
  std::map<OriginId, bool> all_held;  // per origin of the push: every update of it a push brought before
  for (const Update& u : push.updates) {
    const OriginId o = u.id().origin;
    uint64_t& seen = poll_seen_[o];
    const uint64_t have = held_or_coming(held, o);
    auto pushed = pushed_.find(o);
    // Past kMaxPushedOrigins, kept only for origins held or coming, so that
    // peers cannot grow it past the vector.
    if (pushed == pushed_.end() && (have > 0 || pushed_.size() < kMaxPushedOrigins))
      pushed = pushed_.emplace(o, Pushed{}).first;
    Pushed none;
    Pushed& p = pushed == pushed_.end() ? none : pushed->second;
    // Held, pushed earlier in this poll, or on its way to the store.
    if (u.seq() > std::max(seen, have)) p.new_ms = now;
    // Only a copy of what a push brought says two peers relay the origin here
    // (and only of what is held or coming: a refused push proves nothing).
    const bool dup = u.seq() <= std::max(seen, std::min(p.seq, have));
    seen = std::max(seen, u.seq());
    p.seq = std::max(p.seq, u.seq());
    auto [it, fresh] = all_held.emplace(o, dup);
    if (!fresh) it->second = it->second && dup;
  }
  wire::Tree t;
  for (const auto& [o, dup] : all_held)
    if (dup && o != from.node_id) t.prune.push_back(o);  // never prune the origin itself
  if (t.prune.empty()) return;
  counters_.prunes += t.prune.size();
  send(link, t);
}

void SyncEngine::run_grafts(int64_t now) {
  if (grafts_.empty()) return;
  const VersionVector held = node_.vector();
  std::map<std::string, wire::Tree> out;  // by endpoint
  for (auto it = grafts_.begin(); it != grafts_.end();) {
    const auto& [o, g] = *it;
    const uint64_t have = held_or_coming(held, o);
    if (have >= g.seq) {
      it = grafts_.erase(it);
      continue;
    }
    if (g.due_ms > now) {
      ++it;
      continue;
    }
    auto p = peers_.find(g.endpoint);
    if (p != peers_.end() && p->second.ready) {
      Peer& peer = p->second;
      // While pushes bring the origin, the tree reaches this node and was only
      // slower this time: the graft pulls and leaves the tree as it is.
      auto pushed = pushed_.find(o);
      if (pushed == pushed_.end() || pushed->second.new_ms < 0 || now - pushed->second.new_ms >= kGraftTreeAfterMs)
        out[g.endpoint].graft.push_back(o);
      // The announcement supersedes a pull out elsewhere for kGraftTakesOverMs
      // or more: it would wait on its timeout. A younger one stays, so a peer
      // announcing what it does not hold cannot take every pull over.
      auto pull = pulls_.find(o);
      const bool stale = pull != pulls_.end() &&
                         now - (pull->second.deadline_ms - options_.request_timeout_ms) >= kGraftTakesOverMs;
      if (stale && pull->second.endpoint != g.endpoint) {
        if (auto q = peers_.find(pull->second.endpoint); q != peers_.end())
          q->second.credit_used -= std::min(q->second.credit_used, pull->second.bytes);
        pulls_.erase(pull);
      }
      if (!pulls_.count(o) && peer.credit_used < options_.credit_bytes) {
        const uint64_t from = have + 1;
        const size_t bytes = std::min(wire::kMaxBatchBytes, options_.credit_bytes - peer.credit_used);
        send(Link{true, peer.endpoint}, wire::Request{o, from, g.seq, bytes});
        pulls_[o] = Pull{peer.endpoint, from, g.seq, bytes, now + options_.request_timeout_ms};
        peer.credit_used += bytes;
      }
      uint64_t& their = peer.their[o];
      their = std::max(their, g.seq);
      ++counters_.grafts;
    }
    it = grafts_.erase(it);
  }
  for (auto& [endpoint, t] : out) send(Link{true, endpoint}, t);
}

// The origins this node hears first hand: peers handshaken both ways (its
// link to them is ready, and theirs to it said Hello), whose pushes reach it.
void SyncEngine::spread_hears() {
  std::set<PeerId> dialled_in;
  for (const auto& [_, in] : incoming_) dialled_in.insert(in.id);
  std::vector<OriginId> hears;
  for (const auto& [_, p] : peers_)
    if (p.ready && dialled_in.count(p.id)) hears.push_back(p.node_id);
  std::sort(hears.begin(), hears.end());
  hears.erase(std::unique(hears.begin(), hears.end()), hears.end());
  if (hears.size() > wire::kMaxTreeEntries) hears.resize(wire::kMaxTreeEntries);
  if (hears == hears_sent_) return;
  hears_sent_ = std::move(hears);
  wire::Tree t;
  t.hears = hears_sent_;
  for (auto& [_, p] : peers_)
    if (p.ready && tree_link(p)) send(Link{true, p.endpoint}, t);
}

}  // namespace replog

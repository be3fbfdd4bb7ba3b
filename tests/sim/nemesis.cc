#include "sim/nemesis.h"

#include <algorithm>

#include "protocol/bytes.h"

namespace replog::sim {

Nemesis::Nemesis(const SimOptions& options, Cluster& cluster, Workload& workload, Buggify& buggify,
                 std::mt19937_64& rng, Trace& trace)
    : options_(options), cluster_(cluster), workload_(workload), buggify_(buggify), rng_(rng), trace_(trace) {
  if (on(FaultKind::kHostile) || on(FaultKind::kForge)) stranger_ = std::make_unique<Stranger>(cluster, rng);
  forging_ = on(FaultKind::kForge) && chance(0.25);
  // Among other faults copies come in 15% of seeds, so that the other kinds keep their share.
  copying_ = on(FaultKind::kCopies) && (options_.faults.size() == 1 || chance(0.15));
  revoking_ = on(FaultKind::kRevoke) && (options_.faults.size() == 1 || chance(0.15));
  schema_origin_ = cluster_.nodes().front().node->node_id();
  if (forging_) trace_.line("this run forges origins (every node must refuse them)");
  if (on(FaultKind::kTrust)) {
    cluster_.add_outsider();
    trace_.line("an outsider dials every node; none trusts it");
  }
}

void Nemesis::note(const std::string& kind, const std::string& line) {
  ++counts_[kind];
  trace_.line(line);
}

void Nemesis::step(int index) {
  if (stranger_) stranger_->pump();
  if (index == messages_until_) {
    message_faults_ = testing::Faults{};
    apply_message_faults();
    trace_.line("message faults end");
  }
  if (index == partition_until_) {
    cut_.clear();
    apply_cuts();
    trace_.line("partition heals");
  }
  swizzle_step();
  restart_due(index);
  free_disks_due(index);
  restore_trust_due(index);
  if (on(FaultKind::kMessages) && messages_until_ < index && chance(0.02)) {
    start_message_faults();
    messages_until_ = index + 20 + static_cast<int>(rng_() % 80);
  }
  if (on(FaultKind::kPartitions) && partition_until_ < index && swizzle_restores_.empty() && chance(0.02)) {
    start_partition();
    partition_until_ = index + 20 + static_cast<int>(rng_() % 80);
  }
  if (on(FaultKind::kCrashes) && chance(0.015)) crash_one();
  if ((on(FaultKind::kClocks) || on(FaultKind::kSkew)) && chance(0.015)) jump_clock();
  if (stranger_ && chance(0.03)) hostile_act();
  if (on(FaultKind::kDisk) && chance(0.01)) fill_disk(index);
  if (copying_ && copies_ < 2 && chance(0.01)) copy_directory();
  if (on(FaultKind::kTrust) && chance(0.02)) remove_trust(index);
  if (revoking_ && revoked_nodes_.empty() && chance(0.01)) revoke_node();
  if (on(FaultKind::kTrust) && chance(0.03)) outsider_call();
}

void Nemesis::start_message_faults() {
  std::uniform_real_distribution<double> u(0, 1);
  message_faults_ = testing::Faults{0.3 * u(rng_), 0.2 * u(rng_), 0.3 * u(rng_), static_cast<int64_t>(rng_() % 60)};
  apply_message_faults();
  note("messages", "message faults: drop " + std::to_string(message_faults_.drop) + " duplicate " +
                       std::to_string(message_faults_.duplicate) + " reorder " + std::to_string(message_faults_.reorder) +
                       " delay " + std::to_string(message_faults_.max_delay_ms));
}

void Nemesis::apply_message_faults() {
  for (auto& n : cluster_.nodes())
    if (n.transport) n.transport->faults() = message_faults_;
}

// Links (a, b), a != b, cut both ways, for one of the shapes.
std::vector<Nemesis::LinkPair> Nemesis::partition_links(int kind) {
  const int k = static_cast<int>(cluster_.nodes().size());
  std::vector<int> order(static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) order[static_cast<size_t>(i)] = i;
  std::shuffle(order.begin(), order.end(), rng_);
  std::vector<int> side(static_cast<size_t>(k), 0);
  const int minority = kind == 0 ? 1 : (k - 1) / 2;  // 0: one isolated, 1: majority/minority
  for (int i = 0; i < minority; ++i) side[static_cast<size_t>(order[static_cast<size_t>(i)])] = 1;
  const int reach = (k / 2 + 1) / 2;  // ring of majorities: each sees 2 * reach + 1 of k
  std::vector<LinkPair> links;
  for (int a = 0; a < k; ++a)
    for (int b = a + 1; b < k; ++b) {
      const int d = std::min(b - a, k - (b - a));
      const bool cut = kind == 2 ? d > reach : side[static_cast<size_t>(a)] != side[static_cast<size_t>(b)];
      if (cut || kind == 3) links.push_back({a, b});
    }
  return links;
}

void Nemesis::start_partition() {
  static const char* names[] = {"one isolated", "majority/minority", "ring of majorities", "swizzle"};
  const int kind = static_cast<int>(rng_() % 4);
  auto links = partition_links(kind);
  if (kind == 3) {
    std::shuffle(links.begin(), links.end(), rng_);
    swizzle_cuts_ = links;
    partition_until_ = -1;
  } else {
    cut_ = std::set<LinkPair>(links.begin(), links.end());
    apply_cuts();
  }
  note(std::string("partition ") + names[kind], std::string("partition: ") + names[kind] + ", " +
                                                     std::to_string(links.size()) + " links");
}

void Nemesis::apply_cuts() {
  auto& net = cluster_.network();
  auto& nodes = cluster_.nodes();
  net.heal();
  for (const auto& [a, b] : cut_)
    net.cut_both(nodes[static_cast<size_t>(a)].endpoint, nodes[static_cast<size_t>(b)].endpoint);
}

// Swizzle: one link cut per step until all are, then one restored per step in another order.
void Nemesis::swizzle_step() {
  if (!swizzle_cuts_.empty()) {
    cut_.insert(swizzle_cuts_.back());
    swizzle_cuts_.pop_back();
    if (swizzle_cuts_.empty()) {
      swizzle_restores_.assign(cut_.begin(), cut_.end());
      std::shuffle(swizzle_restores_.begin(), swizzle_restores_.end(), rng_);
    }
  } else if (!swizzle_restores_.empty()) {
    cut_.erase(swizzle_restores_.back());
    swizzle_restores_.pop_back();
  } else {
    return;
  }
  apply_cuts();
}

void Nemesis::crash_one() {
  const int i = static_cast<int>(rng_() % cluster_.nodes().size());
  SimNode& n = cluster_.nodes()[static_cast<size_t>(i)];
  if (!n.up()) return;
  std::string how = "crash";
  const double roll = std::uniform_real_distribution<double>(0, 1)(rng_);
  if (roll < 0.4) {  // right after a commit, before its push goes out
    failed_calls_ += workload_.call(n).failed;
    how = "crash after commit";
  } else if (roll < 0.6) {
    crash_during_call(n);
    how = "crash during a call";
  }
  cluster_.crash(i);
  const int down_steps = chance(0.3) ? 0 : 5 + static_cast<int>(rng_() % 40);
  down_until_[i] = -down_steps;  // relative; made absolute in restart_due
  note(how, how + " n" + std::to_string(i) + " down " + std::to_string(down_steps) + " steps");
  // As if the node had run an older build: its restart reads the heads
  // where format 4 kept them, serves them, and upgrades.
  if (chance(0.25)) {
    older_format_.insert(i);
    const size_t moved = cluster_.rewrite_as_format_4(i);
    note("format 4 restart", "n" + std::to_string(i) + " restarts from storage format 4 (" + std::to_string(moved) +
                                 " newest heads moved to the heads table)");
  }
}

// A call whose node dies before its caller hears back: the commit either
// happened (the answer is lost) or did not (the disk failed it first).
void Nemesis::crash_during_call(SimNode& n) {
  const bool committed = chance(0.5);
  if (!committed) {
    cluster_.settle(n.index);
    buggify_.set_disk_full(n.index, true);
  }
  CallOutcome c = workload_.call_in_flight(n);
  failed_calls_ += c.failed;
  trace_.line(c.line + (committed ? "" : " (not committed)"));
  if (!committed) {
    cluster_.settle(n.index);
    buggify_.set_disk_full(n.index, full_until_.count(n.index) > 0);
  }
}

// One live node's disk is full from step `index` for 10..69 steps.
void Nemesis::fill_disk(int index) {
  const int i = static_cast<int>(rng_() % cluster_.nodes().size());
  if (!cluster_.nodes()[static_cast<size_t>(i)].up() || full_until_.count(i)) return;
  cluster_.settle(i);
  buggify_.set_disk_full(i, true);
  full_until_[i] = index + 10 + static_cast<int>(rng_() % 60);
  note("disk full", "disk full n" + std::to_string(i));
}

void Nemesis::free_disks_due(int index) {
  for (auto it = full_until_.begin(); it != full_until_.end();) {
    if (it->second > index) {
      ++it;
      continue;
    }
    if (cluster_.nodes()[static_cast<size_t>(it->first)].up()) cluster_.settle(it->first);
    buggify_.set_disk_full(it->first, false);
    trace_.line("disk has room again n" + std::to_string(it->first));
    it = full_until_.erase(it);
  }
}

// Node `to` crashes and comes back from a copy of node `from`'s directory.
void Nemesis::copy_directory() {
  const int k = static_cast<int>(cluster_.nodes().size());
  const int from = static_cast<int>(rng_() % static_cast<uint64_t>(k));
  const int to = (from + 1 + static_cast<int>(rng_() % static_cast<uint64_t>(k - 1))) % k;
  auto& nodes = cluster_.nodes();
  if (!nodes[static_cast<size_t>(from)].up() || !nodes[static_cast<size_t>(to)].up() || down_until_.count(to)) return;
  // At most two writers of one origin, ever: a second copy of an origin
  // makes a third branch, or two holders of one branch past its fork seq that
  // would both re-issue it, which the node does not resolve (docs/DECISIONS.md,
  // "The owner re-issues").
  const OriginId origin = nodes[static_cast<size_t>(from)].node->node_id();
  if (!copied_origins_.insert(origin).second) return;
  cluster_.crash(to);
  cluster_.copy_directory(from, to);
  workload_.forget_node(to);
  cluster_.restart(to);
  apply_message_faults();
  ++copies_;
  forked_.insert(origin);
  note("copied directory", "n" + std::to_string(from) + "'s directory copied over n" + std::to_string(to) +
                               ": two nodes, one origin");
}

void Nemesis::restart_due(int index) {
  for (auto it = down_until_.begin(); it != down_until_.end();) {
    if (it->second <= 0) it->second = index - it->second;  // first step after the crash
    if (it->second > index) {
      ++it;
      continue;
    }
    cluster_.restart(it->first);
    apply_message_faults();
    trace_.line("restart n" + std::to_string(it->first));
    check_heads_served(it->first, older_format_.erase(it->first) > 0);
    it = down_until_.erase(it);
  }
}

// Every run a node holds ends at a head it keeps, so a restarted node serves
// each origin's last update with one, also when it restarted from format 4's
// layout (its newest heads in `heads`, not in the origin records).
void Nemesis::check_heads_served(int i, bool from_format_4) {
  SimNode& n = cluster_.nodes()[static_cast<size_t>(i)];
  for (const auto& [origin, held] : n.node->vector()) {
    auto range = n.node->read_range(origin, held, 1, size_t{1} << 20);
    if (range && range->head && range->head->seq >= held) continue;
    problems_.push_back("n" + std::to_string(i) + " restarted" + (from_format_4 ? " from storage format 4" : "") +
                        " serves " + hex16(origin) + " #" +
                        std::to_string(held) + " without a head");
  }
}

void Nemesis::jump_clock() {
  SimNode& n = cluster_.nodes()[rng_() % cluster_.nodes().size()];
  const bool beyond = on(FaultKind::kSkew) && (!on(FaultKind::kClocks) || chance(0.4));
  int64_t ms = beyond ? kMaxSkewMs + 500 + static_cast<int64_t>(rng_() % 4000) : 100 + static_cast<int64_t>(rng_() % 1400);
  if (chance(0.5)) ms = -ms;
  n.clock->advance(ms);
  note(beyond ? "clock beyond skew" : "clock within skew",
       "clock n" + std::to_string(n.index) + " jumps " + std::to_string(ms) + " ms");
}

void Nemesis::hostile_act() {
  const int choice = static_cast<int>(rng_() % (forging_ ? 6 : 5));
  const bool hostile = on(FaultKind::kHostile);
  if (choice == 0 && hostile) note("garbage", stranger_->send_garbage());
  else if (choice == 1 && hostile) note("replay", stranger_->replay_frame());
  else if (choice == 2 && hostile) note("lying vector", stranger_->lie_in_vector());
  else if ((choice == 3 || choice == 4) && hostile) note("altered relay", stranger_->relay_altered());
  else if (choice == 5) note("forged origin", stranger_->forge_origin());
}

// Node a stops trusting node b for 20..99 steps (whether a is up or down).
void Nemesis::remove_trust(int index) {
  const int k = static_cast<int>(cluster_.nodes().size());
  const int a = static_cast<int>(rng_() % static_cast<uint64_t>(k));
  const int b = (a + 1 + static_cast<int>(rng_() % static_cast<uint64_t>(k - 1))) % k;
  const int steps = 20 + static_cast<int>(rng_() % 80);
  if (distrust_until_.count({a, b})) return;
  cluster_.distrust(a, cluster_.nodes()[static_cast<size_t>(b)]);
  distrust_until_[{a, b}] = index + steps;
  note("trust removed", "n" + std::to_string(a) + " stops trusting n" + std::to_string(b) + " for " +
                            std::to_string(steps) + " steps");
}

void Nemesis::restore_trust_due(int index) {
  for (auto it = distrust_until_.begin(); it != distrust_until_.end();) {
    if (it->second > index) {
      ++it;
      continue;
    }
    const auto [a, b] = it->first;
    cluster_.trust(a, cluster_.nodes()[static_cast<size_t>(b)]);
    trace_.line("n" + std::to_string(a) + " trusts n" + std::to_string(b) + " again");
    it = distrust_until_.erase(it);
  }
}

// A stolen device: node `by` revokes node `victim`'s origin after the last seq
// of it that `by` holds, or a few seqs before it. The victim's updates past that seq are left out of
// replay on every node, whenever they were written; the victim's own calls
// are refused once it learns. Its origin is never copied (one rule at a time).
void Nemesis::revoke_node() {
  const int k = static_cast<int>(cluster_.nodes().size());
  const int victim = static_cast<int>(rng_() % static_cast<uint64_t>(k));
  const int by = (victim + 1 + static_cast<int>(rng_() % static_cast<uint64_t>(k - 1))) % k;
  auto& nodes = cluster_.nodes();
  if (!nodes[static_cast<size_t>(victim)].up() || !nodes[static_cast<size_t>(by)].up()) return;
  const OriginId origin = nodes[static_cast<size_t>(victim)].node->node_id();
  if (!copied_origins_.insert(origin).second) return;
  // What `by` holds, or a few seqs less (revoke --last-seq): updates already
  // held everywhere are then left out too.
  const uint64_t held = seq_of(nodes[static_cast<size_t>(by)].node->vector(), origin);
  uint64_t last = held - std::min<uint64_t>(held, rng_() % 8);
  // n0's first origin recorded the schema at #1: leaving it out leaves every
  // record of the type out, which the model does not follow.
  if (origin == schema_origin_) last = std::max<uint64_t>(last, 1);
  CallOutcome c = workload_.call(nodes[static_cast<size_t>(by)], "revoke",
                                 Value(Map{{"origin", Value(hex16(origin))}, {"last_seq", Value(static_cast<int64_t>(last))}}));
  trace_.line(c.line);
  if (!c.acknowledged) return;
  revoked_nodes_.insert(victim);
  note("revocation", "n" + std::to_string(by) + " revokes n" + std::to_string(victim) + "'s origin " + hex16(origin) +
                         " after #" + std::to_string(last));
}

// A call on the outsider: its update must never reach a node of the cluster.
void Nemesis::outsider_call() {
  SimNode& o = *cluster_.outsider();
  auto id = o.node->call("inc", Value(Map{{"path", Value("outsider")}, {"by", Value(1)}}));
  note("outsider call", "outsider call inc " + (id ? id->to_string() : "refused: " + id.status().message()));
}

void Nemesis::heal() {
  message_faults_ = testing::Faults{};
  apply_message_faults();
  cut_.clear();
  swizzle_cuts_.clear();
  swizzle_restores_.clear();
  apply_cuts();
  distrust_until_.clear();
  cluster_.restore_trust();  // before the restarts below, which dial whom they trust
  for (const auto& [i, _] : down_until_) {
    cluster_.restart(i);
    check_heads_served(i, older_format_.erase(i) > 0);
  }
  down_until_.clear();
  for (size_t i = 0; i < cluster_.nodes().size(); ++i) cluster_.settle(static_cast<int>(i));
  full_until_.clear();
  buggify_.heal();
  stranger_.reset();
  cluster_.align_clocks();
  trace_.line("heal");
}

}  // namespace replog::sim

#include "sim/simulation.h"

#include <filesystem>
#include <optional>
#include <set>

#include "protocol/bytes.h"
#include "sim/archive.h"
#include "sim/buggify.h"
#include "sim/cluster.h"
#include "sim/nemesis.h"
#include "sim/seeded_randomness.h"
#include "sim/workload.h"

namespace replog::sim {

namespace {

constexpr int64_t kConvergeLimitMs = 60'000;
// Membership converges within one resend of the Members frames
// (SyncOptions::members_resend_ms, 30 s): a frame lost before healing, or a
// tombstone still travelling then, is made good by the next one.
constexpr int64_t kTrustConvergeLimitMs = 35'000;
// More frames than this in one step (5 simulated ms) for every node is a storm:
// the run stops there and fails, rather than running on for hours.
constexpr uint64_t kStormFramesPerNodeStep = 1'000;

class Simulation {
 public:
  explicit Simulation(const SimOptions& options)
      : options_(options),
        rng_((reseed_randomness(options.seed), options.seed)),
        trace_(options.verbose),
        buggify_(options.seed, options.faults.count(FaultKind::kDisk) > 0, rng_),
        cluster_(options.nodes, rng_, trace_, &buggify_),
        workload_(rng_, model_, &cluster_),
        nemesis_(options, cluster_, workload_, buggify_, rng_, trace_) {
    workload_.expect_storage_errors(buggify_.on());
    if (options.faults.count(FaultKind::kArchive)) archive_.emplace(cluster_, rng_, trace_);
  }

  RunResult run();

 private:
  void faulty_step(int index);
  void make_call(SimNode& node);
  int64_t converge(int64_t limit_ms);
  // Steps until every node trusts every other, for at most `limit_ms`.
  void converge_trust(int64_t limit_ms);
  void final_calls();
  // Each node's origins and evidence, and the refusals recorded, for a failure's last trace lines.
  void trace_end_state();
  // True (and a problem noted) when the last step sent a storm of frames.
  bool storm();
  RunResult finish();

  const SimOptions& options_;
  std::mt19937_64 rng_;
  Trace trace_;
  Model model_;
  Buggify buggify_;
  Cluster cluster_;
  Workload workload_;
  Nemesis nemesis_;
  std::optional<SimArchive> archive_;
  RunResult result_;
  uint64_t frames_before_ = 0;
  bool stormed_ = false;
};

void Simulation::make_call(SimNode& node) {
  CallOutcome c = workload_.call(node);
  trace_.line(c.line);
  c.acknowledged ? ++result_.calls_acknowledged : ++result_.calls_refused;
  if (c.failed) result_.problems.push_back("a call failed on n" + std::to_string(node.index) + ": " + c.line);
}

void Simulation::faulty_step(int index) {
  cluster_.tick(kStepMs);
  nemesis_.step(index);
  if (archive_) archive_->step(index);
  const int calls = static_cast<int>(rng_() % 3);
  for (int c = 0; c < calls; ++c) {
    SimNode& n = cluster_.nodes()[rng_() % cluster_.nodes().size()];
    if (n.up()) make_call(n);
  }
  trace_.line("step " + std::to_string(index) + " frames " + cluster_.frames_by_type());
}

bool Simulation::storm() {
  const uint64_t now = cluster_.frames_sent(), step = now - frames_before_;
  frames_before_ = now;
  if (stormed_ || step <= kStormFramesPerNodeStep * cluster_.nodes().size()) return stormed_;
  stormed_ = true;
  result_.problems.push_back("frame storm: " + std::to_string(step) + " frames in one step (" +
                             cluster_.frames_by_type() + ")");
  return true;
}

// Runs until one state (or the limit); returns the simulated ms it took, -1 if never.
int64_t Simulation::converge(int64_t limit_ms) {
  for (int64_t t = 0; t <= limit_ms; t += 10 * kStepMs) {
    if (cluster_.converged()) return t;
    for (int i = 0; i < 10; ++i) {
      cluster_.tick(kStepMs);
      if (storm()) return -1;
    }
  }
  return -1;
}

void Simulation::converge_trust(int64_t limit_ms) {
  const auto all_trusted = [&] {
    for (const auto& n : cluster_.nodes())
      for (const auto& other : cluster_.nodes())
        if (other.index != n.index && !cluster_.trusts(n.index, other.key)) return false;
    return true;
  };
  for (int64_t t = 0; t < limit_ms && !all_trusted(); t += kStepMs) {
    cluster_.tick(kStepMs);
    if (storm()) return;
  }
}

void Simulation::final_calls() {
  for (auto& n : cluster_.nodes()) {
    if (nemesis_.revoked_nodes().count(n.index)) continue;  // shut out: its calls are refused
    CallOutcome c = workload_.call(n, "inc", Value(Map{{"path", Value("final")}, {"by", Value(1)}}));
    trace_.line(c.line);
    if (!c.acknowledged) result_.problems.push_back("n" + std::to_string(n.index) + " cannot write after healing: " + c.line);
    else ++result_.calls_acknowledged;
  }
}

RunResult Simulation::run() {
  trace_.line("seed " + std::to_string(options_.seed) + " nodes " + std::to_string(options_.nodes) + " steps " +
              std::to_string(options_.steps) + " faults " + faults_to_string(options_.faults));
  if (buggify_.on()) trace_.line("fault points: " + buggify_.describe());
  for (int i = 0; i < options_.steps && !storm(); ++i) faulty_step(i);
  nemesis_.heal();
  if (archive_) archive_->heal();
  // Every run gets the full checks: forged origins are refused (signed
  // origins), and a copied directory's fork is left out of replay alike on
  // every node once its evidence spread, its writers' calls re-issued.
  result_.copied = nemesis_.copied();
  const int64_t limit = kConvergeLimitMs;
  result_.converge_ms = converge(limit);
  final_calls();
  const int64_t again = converge(limit);
  if (stormed_) return finish();
  if (result_.converge_ms < 0 || again < 0)
    result_.problems.push_back("no single state " + std::to_string(limit / 1000) + " s after healing");
  // Membership converges too: healing re-trusted on each node what it lacked,
  // and nothing that still travelled may undo it for good.
  converge_trust(kTrustConvergeLimitMs);
  if (stormed_) return finish();
  const auto nodes = snapshot_nodes(cluster_);
  trace_end_state();
  auto found = check_run(nodes, model_, cluster_.refusals(), cluster_.moves());
  for (const auto& n : cluster_.nodes())
    for (const auto& other : cluster_.nodes())
      if (other.index != n.index && !cluster_.trusts(n.index, other.key))
        found.push_back("n" + std::to_string(n.index) + " does not trust n" + std::to_string(other.index) +
                        " after healing");
  auto taken = check_hostile(nodes, cluster_.hostile());
  found.insert(found.end(), taken.begin(), taken.end());
  if (SimNode* o = cluster_.outsider()) {
    auto leaked = check_outsider(snapshot_node(*o, "outsider"), o->node->node_id(), nodes);
    found.insert(found.end(), leaked.begin(), leaked.end());
  }
  // A copied directory's fork that no node proved (its second branch reached
  // only the bucket) is named by the archive's checks, not proved: the restore
  // cannot be held to the cluster's state then (docs/ARCHIVE.md "Forks").
  std::optional<OriginId> unproven;
  for (OriginId o : nemesis_.forked())
    if (std::none_of(nodes.begin(), nodes.end(), [&](const NodeSnapshot& s) { return s.fork_seqs.count(o) > 0; }))
      unproven = o;
  if (archive_ && found.empty() && unproven)
    trace_.line("archive: no restore check: no node proved the fork of " + hex16(*unproven));
  if (archive_ && found.empty() && !unproven) {
    // The archive holds the whole log, and restoring it gives the cluster's
    // state; after a copied directory, with the fork's evidence, which the
    // archive carries too.
    const std::string tmp = std::filesystem::path(cluster_.nodes().front().dir).parent_path().string();
    auto lost = archive_->check_restore(tmp);
    found.insert(found.end(), lost.begin(), lost.end());
  }
  result_.problems.insert(result_.problems.end(), found.begin(), found.end());
  return finish();
}

void Simulation::trace_end_state() {
  std::set<std::string> seen;
  for (const auto& r : cluster_.refusals())
    if (seen.size() < 20 && seen.insert(r.node + r.detail).second) trace_.line("refused by " + r.node + ": " + r.id.to_string() + " (seq " + std::to_string(r.seq) + ") " + r.detail);
  for (auto& n : cluster_.nodes()) {
    const engine::NodeInfo info = n.node->info();
    std::string line = "n" + std::to_string(n.index) + " writes as " + hex16(info.node_id) + "; holds";
    for (const auto& [origin, seq] : info.vector) line += " " + hex16(origin) + ":" + std::to_string(seq);
    if (!info.fork_evidence.empty()) line += "; fork evidence";
    for (const auto& [origin, seq] : info.fork_evidence) line += " " + hex16(origin) + ":" + std::to_string(seq);
    for (const auto& [origin, why] : info.former_origins) line += "; left " + hex16(origin) + ": " + why;
    line += "; state " + n.node->state_hash().substr(0, 16);
    trace_.line(line);
  }
}

RunResult Simulation::finish() {
  result_.faults = nemesis_.counts();
  if (archive_)
    for (const auto& [kind, n] : archive_->counts()) result_.faults[kind] += n;
  for (const auto& [point, n] : buggify_.fired()) result_.faults["fault point: " + point] += n;
  result_.frames = cluster_.frames_sent();
  result_.runs_verified_ahead = cluster_.runs_verified_ahead();
  trace_.line("end: " + std::to_string(result_.problems.size()) + " problems, frames " + std::to_string(result_.frames));
  if (nemesis_.failed_calls()) result_.problems.push_back(std::to_string(nemesis_.failed_calls()) + " calls failed");
  for (const auto& p : nemesis_.problems()) result_.problems.push_back(p);
  result_.passed = result_.problems.empty();
  result_.recent_trace = trace_.recent();
  result_.trace_hash = trace_.hash();
  return result_;
}

std::vector<Update> whole_origin(engine::Node& node, OriginId origin) {
  std::vector<Update> out;
  for (;;) {
    auto part = node.read_range(origin, out.size() + 1, 1024, size_t{64} << 20);
    if (!part || part->updates.empty()) return out;
    for (auto& u : part->updates) out.push_back(std::move(u));
  }
}

}  // namespace

NodeSnapshot snapshot_node(SimNode& n, std::string name) {
  NodeSnapshot s;
  s.name = std::move(name);
  s.state_hash = n.node->state_hash();
  n.node->read([&](const State& state) { s.data = state.root(); });
  s.vector = n.node->vector();
  const engine::NodeInfo info = n.node->info();
  s.fork_seqs = info.fork_evidence;
  s.revoked = info.revoked;
  for (const auto& [origin, seq] : s.vector) s.log[origin] = whole_origin(*n.node, origin);
  return s;
}

std::vector<NodeSnapshot> snapshot_nodes(Cluster& cluster) {
  std::vector<NodeSnapshot> out;
  for (auto& n : cluster.nodes())
    if (n.up()) out.push_back(snapshot_node(n, "n" + std::to_string(n.index)));
  return out;
}

RunResult run_simulation(const SimOptions& options) {
  Simulation sim(options);
  return sim.run();
}

}  // namespace replog::sim

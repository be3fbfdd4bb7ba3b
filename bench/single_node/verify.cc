// Figure 8: verifying a log written by single calls. Figure 1's node signed
// a head after every call and kept them thinned (about one per 64 KiB of
// bodies); its log is read back as runs ending at those kept heads (what
// export writes) and ingested as `replog import` does (batches of at least
// 1000 updates cut at a head, each with its heads) into fresh nodes with
// verification on and off, in turn (ABBA). 8a: the rates; 8b: what
// verification adds per update, against the proof's own work alone (the
// chain over every body and a check of every head, in memory).
#include <algorithm>
#include <filesystem>
#include <map>
#include <vector>

#include "common/bench_common.h"
#include "common/report.h"
#include "common/workload.h"
#include "protocol/bytes.h"
#include "protocol/origin_proof.h"
#include "single_node/single_node.h"

namespace replog::bench {

namespace {

// The log of a node, as runs of each origin ending at its kept heads.
struct SignedLog {
  std::string cluster, hash;
  std::vector<SignedBatch> batches;  // cut as import cuts them
  std::map<OriginId, std::string> keys;
  uint64_t updates = 0, heads = 0, bytes = 0;
};

// A log of single calls when figure 1 did not leave one (untimed).
std::string build_single_call_log() {
  progress("figure 8: writing " + grouped(g_opt.single_ops) + " single calls (untimed)");
  const std::string dir = new_node_dir("single-calls");
  auto node = open_node(dir);
  auto t0 = Steady::now();
  for (uint64_t i = 0; i < g_opt.single_ops && seconds_since(t0) < g_opt.time_cap_s; ++i)
    must(node->call("set", set_value(i)), "Node::call");
  check(node->close(), "Node::close");
  return dir;
}

SignedLog read_log(const std::string& dir) {
  auto src = open_read_only(dir);
  SignedLog log;
  log.cluster = src->cluster_id();
  log.hash = src->state_hash();
  for (const auto& [origin, held] : src->vector()) {
    std::vector<Update> part;
    std::vector<proof::Head> part_heads;
    uint64_t from = 1;
    while (from <= held) {
      // At most one update asked for: the range runs on to the next kept head.
      Range r = must(src->read_range(origin, from, 1, 1), "Node::read_range");
      if (r.updates.empty() || !r.head) die("origin " + hex16(origin) + " #" + std::to_string(from) + ": no kept head");
      if (r.head->seq != r.updates.back().seq()) die("a range that does not end at its head");
      if (!r.head->key.empty()) log.keys[origin] = r.head->key;
      for (auto& u : r.updates) {
        log.bytes += u.body().size();
        part.push_back(std::move(u));
      }
      part_heads.push_back(std::move(*r.head));
      ++log.heads;
      from = part.back().seq() + 1;
      if (part.size() >= 1000 || from > held) {
        log.updates += part.size();
        log.batches.push_back(SignedBatch{std::move(part), std::move(part_heads)});
        part.clear();
        part_heads.clear();
      }
    }
  }
  return log;
}

// The proof's own work over the log, in memory: every body chained, every
// head checked. Best of kCpuReps, in seconds.
double proof_alone(const SignedLog& log) {
  double best = 1e9;
  for (int rep = 0; rep < kCpuReps; ++rep) {
    auto t0 = Steady::now();
    std::map<OriginId, proof::Chain> chains;
    for (const SignedBatch& b : log.batches) {
      for (const Update& u : b.updates) {
        const std::string& key = log.keys.at(u.id().origin);
        auto it = chains.find(u.id().origin);
        if (it == chains.end()) it = chains.emplace(u.id().origin, proof::chain_start(log.cluster, key)).first;
        proof::chain_step(it->second, key, u.id().hlc, u.body());
      }
      for (const proof::Head& h : b.heads) check(proof::check_head(h, log.cluster, log.keys.at(h.origin)), "check_head");
    }
    best = std::min(best, seconds_since(t0));
    for (const auto& [origin, c] : chains) {
      const proof::Head& last = log.batches.back().heads.back();
      if (origin == last.origin && c != last.chain) die("the log does not chain to its last head");
    }
  }
  return best;
}

// One ingest of the whole log into a fresh node; returns the seconds of the
// Node::ingest calls (and the drain) and adds the commits to `commits`.
double ingest_once(const SignedLog& log, bool verify, uint64_t& commits) {
  const std::string dir = new_node_dir(verify ? "verify-on" : "verify-off", log.cluster);
  auto node = open_node(dir, "Node::open", verify);
  std::vector<SignedBatch> batches = log.batches;  // copied untimed
  size_t accepted = 0;
  const uint64_t txn0 = last_txnid(*node);
  auto t0 = Steady::now();
  for (auto& b : batches) accepted += ingest_or_die(*node, std::move(b), "ingest");
  must(node->ingest({}), "Node::ingest (drain)");
  const double s = seconds_since(t0);
  commits += last_txnid(*node) - txn0;
  if (accepted != log.updates) die("ingest accepted " + grouped(accepted) + " of " + grouped(log.updates));
  if (node->state_hash() != log.hash) die("the ingested log folds to another hash than its source's");
  check(node->close(), "Node::close");
  node.reset();
  std::filesystem::remove_all(dir);
  return s;
}

}  // namespace

void fig_verify() {
  const std::string dir = g_single_dir ? *g_single_dir : build_single_call_log();
  const SignedLog log = read_log(dir);
  const double n = static_cast<double>(log.updates);
  progress("figure 8: ingesting a log of " + grouped(n) + " single calls (" + grouped(log.heads) +
           " kept heads) with verification on and off, in turn");
  const int reps = g_opt.quick ? 2 : 6;
  double on_s = 0, off_s = 0;
  uint64_t on_commits = 0, off_commits = 0;
  for (int r = 0; r < reps; ++r) {
    // ABBA: off, on, on, off, ...
    for (bool verify : (r % 2 == 0) ? std::vector<bool>{false, true} : std::vector<bool>{true, false})
      (verify ? on_s : off_s) += ingest_once(log, verify, verify ? on_commits : off_commits);
  }
  const double proof_s = proof_alone(log);
  const double total = n * reps;
  const double on_rate = total / on_s, off_rate = total / off_s;
  const double kib_per_head = static_cast<double>(log.bytes) / 1024.0 / static_cast<double>(log.heads);
  RowBuilder("8a", "ingest of a log written by single calls, verification on")
      .measured(on_rate, "updates/s",
                rate_text(on_rate) + " (" + grouped(n) + " updates, " + grouped(log.heads) +
                    (log.heads == 1 ? " kept head" : " kept heads") + ", one per " +
                    fmt("%.1f KiB", kib_per_head) + "; " + grouped(static_cast<double>(log.batches.size())) +
                    " batches; " + std::to_string(reps) + " runs)")
      .raw(off_rate, "updates/s", rate_text(off_rate) + " verification off, same batches, in turn")
      .percent_of(on_rate / off_rate, "unverified")
      .note(grouped(on_commits) + " commits verified, " + grouped(off_commits) + " unverified; hashes equal the source's")
      .add();
  const double per_update = (on_s - off_s) / total, proof_per_update = proof_s / n;
  RowBuilder("8b", "verification's cost per update of that log")
      .measured(per_update, "s", fmt("%.2f us", per_update * 1e6) + " per update (on minus off)")
      .raw(proof_per_update, "s",
           fmt("%.2f us", proof_per_update * 1e6) + " the proof alone: chain steps + head checks in memory (best of " +
               std::to_string(kCpuReps) + ")")
      .ratio(per_update / proof_per_update, "%.2fx the proof alone")
      .add();
}

}  // namespace replog::bench

// Figure 4: replay from scratch, in memory (4a) and through
// Node::open_read_only of a copy of the dataset without checkpoints (4b),
// both against decode_msgpack of each update's argument.
#include <lmdb.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <vector>

#include "common/bench_common.h"
#include "common/report.h"
#include "common/workload.h"
#include "node/core/methods.h"
#include "node/core/replayer.h"
#include "protocol/msgpack_codec.h"
#include "single_node/single_node.h"
#include "storage/update_log.h"

namespace replog::bench {

namespace {

// Copies a node dir (mdb_env_copy2, compacting) and deletes every checkpoint
// of the copy, so that a reader folds the log from scratch.
std::string copy_without_checkpoints(const std::string& src) {
  std::string dst = fresh_dir("no-checkpoints");
  {
    auto log = must(UpdateLog::open(src, {}), "UpdateLog::open");
    mdb_check(mdb_env_copy2(log->env(), dst.c_str(), MDB_CP_COMPACT), "mdb_env_copy2");
  }
  auto log = must(UpdateLog::open(dst, {}), "UpdateLog::open copy");
  auto txn = must(log->begin_write(), "begin_write");
  for (const auto& [cut, _] : txn.checkpoints()) check(txn.delete_checkpoint(cut), "delete_checkpoint");
  check(txn.commit(), "commit");
  return dst;
}

struct InMemory {
  double raw_s = 1e9;  // decode_msgpack of each argument, best of kCpuReps
  double s = 1e9;      // Replayer::apply of each update, best of kCpuReps
  std::string hash;
};

// The dataset parsed, then decoded (raw) and replayed in turn, kCpuReps times.
InMemory replay_in_memory() {
  std::vector<Update> ups;
  ups.reserve(g_opt.updates);
  const std::vector<OriginId> ids = dataset_ids();
  for (uint64_t i = 0; i < g_opt.updates; ++i) ups.push_back(dataset_update(i, ids));
  MethodRegistry reg = MethodRegistry::with_builtins();
  InMemory out;
  std::optional<Replayer> last;
  for (int k = 0; k < kCpuReps; ++k) {
    size_t ok = 0;
    auto t0 = Steady::now();
    for (const auto& u : ups) ok += decode_msgpack(u.arg()).is_ok();
    out.raw_s = std::min(out.raw_s, seconds_since(t0));
    if (ok != ups.size()) die("decode_msgpack failed on the dataset");

    last.reset();
    last.emplace(reg, 1024);
    size_t applied = 0;
    t0 = Steady::now();
    for (const auto& u : ups) applied += last->apply(u.view()).outcome == Replayer::Outcome::kApplied;
    out.s = std::min(out.s, seconds_since(t0));
    if (applied != ups.size()) die("replay skipped updates of the dataset");
  }
  out.hash = last->state().hash_hex();
  return out;
}

// The fastest of kCpuReps Node::open_read_only of `dir`, each checked against `hash`.
double open_read_only_best(const std::string& dir, const std::string& hash) {
  double best = 1e9;
  for (int k = 0; k < kCpuReps; ++k) {
    auto t0 = Steady::now();
    auto node = open_read_only(dir);
    best = std::min(best, seconds_since(t0));
    std::string node_hash = node->state_hash();
    if (node_hash != hash) die("read-only node folded hash " + node_hash + ", in-memory replay " + hash);
  }
  return best;
}

}  // namespace

void fig_replay() {
  const double n = static_cast<double>(g_opt.updates);
  progress("figure 4: replay from scratch of " + grouped(n) + " set updates over " +
           grouped(static_cast<double>(g_opt.paths)) + " paths");
  const InMemory mem = replay_in_memory();
  g_scratch_hash = mem.hash;
  const double raw_rate = n / mem.raw_s;
  const std::string raw_text = rate_text(raw_rate) + " decode_msgpack of each arg";
  const std::string best_of = ", best of " + std::to_string(kCpuReps) + ")";
  RowBuilder("4a", "replay from scratch, in memory (Replayer::apply)")
      .measured(n / mem.s, "updates/s", rate_text(n / mem.s) + " (" + time_text(mem.s) + best_of)
      .raw(raw_rate, "updates/s", raw_text)
      .percent_of((n / mem.s) / raw_rate, "raw")
      .goal(">= 60% of raw", (n / mem.s) / raw_rate >= 0.60)
      .add();

  // The same through the node: read the log from LMDB, parse, apply.
  std::string copy = copy_without_checkpoints(dataset_dir());
  const double ns = open_read_only_best(copy, mem.hash);
  RowBuilder("4b", "replay from scratch via Node::open_read_only (no checkpoints)")
      .measured(n / ns, "updates/s", rate_text(n / ns) + " (" + time_text(ns) + best_of)
      .raw(raw_rate, "updates/s", raw_text)
      .percent_of((n / ns) / raw_rate, "raw")
      .goal(">= 45% of raw", (n / ns) / raw_rate >= 0.45)
      .note("hash equal to in-memory replay")
      .add();
  std::filesystem::remove_all(copy);
}

}  // namespace replog::bench

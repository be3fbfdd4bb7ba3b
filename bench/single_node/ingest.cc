// Figure 3: bulk ingest of the dataset through Node::ingest, in batches of
// 1000 with their signed heads (one per origin; verification on), against the
// same puts in raw LMDB, 1000 updates per commit; the two run in turn, in ten
// blocks each.
#include <algorithm>
#include <vector>

#include "common/bench_common.h"
#include "common/raw_lmdb.h"
#include "common/report.h"
#include "single_node/single_node.h"

namespace replog::bench {

namespace {

constexpr size_t kBatch = 1000;
constexpr size_t kBlocks = 10;

// Raw: updates [b0, b1) as the same puts, 1000 updates per commit; returns seconds.
double raw_block(RawEnv& raw, const std::vector<Update>& all, size_t b0, size_t b1) {
  auto t0 = Steady::now();
  for (size_t i = b0; i < b1; i += kBatch) {
    raw.write([&](MDB_txn* txn) {
      for (size_t j = i; j < std::min(b1, i + kBatch); ++j) raw.put_update(txn, all[j]);
    });
  }
  return seconds_since(t0);
}

// Node: updates [b0, b1) through Node::ingest (the copies are made and their
// heads signed untimed); returns seconds and adds what was accepted to `accepted`.
double node_block(Node& node, const Dataset& d, size_t b0, size_t b1, size_t& accepted) {
  const std::vector<Update>& all = d.updates;
  std::vector<SignedBatch> batches;
  for (size_t i = b0; i < b1; i += kBatch)
    batches.push_back(signed_batch(
        d.origins, {all.begin() + static_cast<long>(i), all.begin() + static_cast<long>(std::min(b1, i + kBatch))}));
  auto t0 = Steady::now();
  for (auto& b : batches) accepted += ingest_or_die(node, std::move(b), "ingest");
  // The writer may still be writing a checkpoint after acknowledging the
  // last batch; an empty ingest waits for it (and costs one small commit),
  // so that work is timed here and not during the raw block.
  must(node.ingest({}), "Node::ingest (drain)");
  return seconds_since(t0);
}

}  // namespace

void fig_ingest() {
  progress("figure 3: bulk ingest of " + grouped(static_cast<double>(g_opt.updates)) + " updates, 4 origins");
  const Dataset d = make_dataset();
  const std::vector<Update>& all = d.updates;
  RawEnv raw(fresh_dir("raw-ingest"));
  std::string dir = new_node_dir("dataset");
  double raw_s = 0, node_s = 0;
  uint64_t commits = 0;
  {
    auto node = open_node(dir);
    const size_t block = std::max<size_t>(kBatch, (all.size() / kBlocks + kBatch - 1) / kBatch * kBatch);
    size_t accepted = 0;
    const uint64_t txn0 = last_txnid(*node);
    for (size_t b0 = 0; b0 < all.size(); b0 += block) {
      const size_t b1 = std::min(all.size(), b0 + block);
      raw_s += raw_block(raw, all, b0, b1);
      node_s += node_block(*node, d, b0, b1, accepted);
    }
    if (accepted != all.size())
      die("ingest accepted " + std::to_string(accepted) + " of " + std::to_string(all.size()));
    commits = last_txnid(*node) - txn0;
    check(node->close(), "Node::close");
  }
  if (!g_dataset_dir) g_dataset_dir = dir;
  const double n = static_cast<double>(g_opt.updates);
  const double rate = n / node_s, raw_rate = n / raw_s;
  RowBuilder("3", "bulk ingest (Node::ingest, batches of 1000, 4 signed origins)")
      .measured(rate, "updates/s",
                rate_text(rate) + " (" + time_text(node_s) + ", " + grouped(static_cast<double>(commits)) + " commits)")
      .raw(raw_rate, "updates/s", rate_text(raw_rate) + " raw LMDB, 1000 updates/commit")
      .percent_of(rate / raw_rate, "raw")
      .goal(">= 60% of raw", rate / raw_rate >= 0.6)
      .add();
}

}  // namespace replog::bench

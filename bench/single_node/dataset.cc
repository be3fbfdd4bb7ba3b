#include <algorithm>

#include "common/bench_common.h"
#include "common/workload.h"
#include "node/core/methods.h"
#include "node/core/replayer.h"
#include "single_node/single_node.h"

namespace replog::bench {

std::optional<std::string> g_dataset_dir;
std::optional<std::string> g_scratch_hash;

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Dataset make_dataset() {
  Dataset d{SignedOrigins(kBenchCluster, kDatasetSeed, kDatasetOrigins), {}};
  d.updates.reserve(g_opt.updates);
  for (uint64_t i = 0; i < g_opt.updates; ++i) d.updates.push_back(next_dataset_update(d.origins, i));
  return d;
}

std::vector<OriginId> dataset_ids() { return SignedOrigins(kBenchCluster, kDatasetSeed, kDatasetOrigins).ids(); }

namespace {

// Node::ingest of the dataset in batches of 1000, each with its heads.
void ingest_dataset(const std::string& dir, Dataset& d) {
  auto node = open_node(dir);
  std::vector<Update>& all = d.updates;
  const size_t batch = 1000;
  size_t accepted = 0;
  for (size_t i = 0; i < all.size(); i += batch) {
    size_t end = std::min(all.size(), i + batch);
    std::vector<Update> b(std::make_move_iterator(all.begin() + static_cast<long>(i)),
                                 std::make_move_iterator(all.begin() + static_cast<long>(end)));
    accepted += ingest_or_die(*node, signed_batch(d.origins, std::move(b)), "ingest");
  }
  if (accepted != all.size()) die("ingest accepted " + std::to_string(accepted) + " of " + std::to_string(all.size()));
  check(node->close(), "Node::close");
}

}  // namespace

const std::string& dataset_dir() {
  if (!g_dataset_dir) {
    progress("building the dataset (" + grouped(static_cast<double>(g_opt.updates)) + " updates via Node::ingest)");
    Dataset d = make_dataset();
    std::string dir = new_node_dir("dataset");
    ingest_dataset(dir, d);
    g_dataset_dir = dir;
  }
  return *g_dataset_dir;
}

const std::string& scratch_hash() {
  if (!g_scratch_hash) {
    progress("folding the dataset from scratch in memory for the reference hash");
    MethodRegistry reg = MethodRegistry::with_builtins();
    Replayer rep(reg, 1024);
    const std::vector<OriginId> ids = dataset_ids();
    for (uint64_t i = 0; i < g_opt.updates; ++i) rep.apply(dataset_update(i, ids).view());
    g_scratch_hash = rep.state().hash_hex();
  }
  return *g_scratch_hash;
}

}  // namespace replog::bench

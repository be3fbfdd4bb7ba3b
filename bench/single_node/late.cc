// Figure 5: late updates. 5a: one update arriving k positions late, in the
// Replayer (rollback_to + apply it + re-apply k) against k+1 in-order applies.
// 5b: a stream from 8 origins shuffled within 50 positions through
// Node::ingest (each batch with the signed heads of its runs), against the
// same stream in key order into another node. 5c: 5b's apply logic without LMDB.
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "common/bench_common.h"
#include "common/report.h"
#include "common/workload.h"
#include "node/core/methods.h"
#include "node/core/replayer.h"
#include "single_node/single_node.h"

namespace replog::bench {

namespace {

constexpr OriginId kLateOrigin = 0x0c0c000000000001ULL;

// --- 5a: one update k positions late ------------------------------------------------

// The late_base updates of 5a: the dataset's, with room between their hlcs.
std::vector<Update> late_base_updates(uint64_t m) {
  std::vector<Update> base;
  base.reserve(m);
  for (uint64_t i = 0; i < m; ++i) {
    OriginId origin = kOriginBase + i % kDatasetOrigins;
    UpdateId id{base_hlc() + 2 * i + 2, origin};
    base.push_back(Update::make(id, i / kDatasetOrigins + 1, "set", set_arg(i)));
  }
  return base;
}

// Applies the first half of `base`, then the second half in chunks of 100;
// returns the median cost of one in-order apply over the chunks.
double apply_in_order(Replayer& rep, const std::vector<Update>& base) {
  const uint64_t m = base.size();
  for (uint64_t i = 0; i < m / 2; ++i) rep.apply(base[i].view());
  std::vector<double> chunks;  // in-order cost per update, per chunk of 100
  for (uint64_t i = m / 2; i < m; i += 100) {
    const uint64_t e = std::min(m, i + 100);
    auto t0 = Steady::now();
    for (uint64_t j = i; j < e; ++j) rep.apply(base[j].view());
    chunks.push_back(seconds_since(t0) / static_cast<double>(e - i));
  }
  return median_of(chunks);
}

// The median cost of one update arriving k positions late (between
// base[m-k-1] and base[m-k]); the state is put back after each repetition.
double late_cost(Replayer& rep, const std::vector<Update>& base, uint64_t k, int reps) {
  const uint64_t m = base.size();
  uint64_t li = 7'777'777 + k;
  UpdateId lid{base[m - k].id().hlc - 1, kLateOrigin};
  const Update late = Update::make(lid, 1, "set", set_arg(li));
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    if (!rep.can_rollback_to(lid)) die("late k=" + std::to_string(k) + " is outside the undo window");
    auto t = Steady::now();
    rep.rollback_to(lid);
    rep.apply(late.view());
    for (uint64_t j = m - k; j < m; ++j) rep.apply(base[j].view());
    times.push_back(seconds_since(t));
    // Put the state back (untimed): take the late update out again.
    rep.rollback_to(lid);
    for (uint64_t j = m - k; j < m; ++j) rep.apply(base[j].view());
  }
  return median_of(times);
}

void add_linearity_row(double cost10, double cost1000) {
  const double slope10 = cost10 / 11, slope1000 = cost1000 / 1001;
  RowBuilder("5a", "linearity: cost per position, k=1000 vs k=10")
      .measured(slope1000 / slope10, "x", fmt("%.2f us", slope1000 * 1e6) + " vs " + fmt("%.2f us", slope10 * 1e6))
      .raw(slope10, "s", "k=10 per position")
      .ratio(slope1000 / slope10, "%.2fx")
      .goal("O(k): <= 2x", slope1000 / slope10 <= 2.0)
      .add();
}

void fig_late_k() {
  progress("figure 5a: one update k positions late (Replayer rollback_to + re-apply)");
  const uint64_t m = g_opt.late_base;
  const std::vector<Update> base = late_base_updates(m);
  MethodRegistry reg = MethodRegistry::with_builtins();
  Replayer rep(reg, 1024);
  const double apply_s = apply_in_order(rep, base);
  const std::string head_hash = rep.state().hash_hex();

  std::map<uint64_t, double> per_k;
  for (uint64_t k : {1, 10, 100, 1000}) {
    if (k + 1 > 1024 || k >= m) continue;
    const int reps = static_cast<int>(std::clamp<uint64_t>(20'000 / k, 50, 5'000));
    const double cost = late_cost(rep, base, k, reps);
    if (rep.state().hash_hex() != head_hash) die("late-update rollback did not restore the state");
    per_k[k] = cost;
    const double raw = apply_s * static_cast<double>(k + 1);
    RowBuilder("5a", "one update k=" + std::to_string(k) + " late (Replayer)")
        .measured(cost, "s",
                  time_text(cost) + fmt(" (%.2f us/position; median of ", cost * 1e6 / static_cast<double>(k + 1)) +
                      std::to_string(reps) + ")")
        .raw(raw, "s", time_text(raw) + " = " + std::to_string(k + 1) + " in-order applies (median)")
        .ratio(cost / raw, "%.2fx raw time")
        .add();
  }
  if (per_k.count(10) && per_k.count(1000)) add_linearity_row(per_k[10], per_k[1000]);
}

// --- 5b, 5c: a shuffled stream --------------------------------------------------------

constexpr uint64_t kStreamOrigins = 8;
constexpr uint64_t kStreamSeed = 20261125;

struct Stream {
  SignedOrigins origins{kBenchCluster, kStreamSeed, kStreamOrigins};
  std::vector<Update> in_order;  // key order
  std::vector<size_t> arrival;          // indexes into in_order, in arrival order
  double mean_late = 0;                 // positions, over updates that arrive late
  size_t max_late = 0;
};

// How late each update of st.arrival comes (positions: how many with a larger
// key arrived before it), counted exactly with a Fenwick tree over indexes.
void measure_lateness(Stream& st) {
  const size_t n = st.arrival.size();
  size_t late = 0;
  double sum = 0;
  std::vector<uint32_t> bit(n + 1, 0);
  auto add = [&](size_t i) { for (++i; i <= n; i += i & (~i + 1)) ++bit[i]; };
  auto prefix = [&](size_t i) { uint64_t s = 0; for (++i; i > 0; i -= i & (~i + 1)) s += bit[i]; return s; };
  for (size_t a = 0; a < n; ++a) {
    size_t i = st.arrival[a];
    size_t larger = a - prefix(i);  // arrived before it with a larger key
    if (larger > 0) {
      ++late;
      sum += static_cast<double>(larger);
      st.max_late = std::max(st.max_late, larger);
    }
    add(i);
  }
  st.mean_late = late ? sum / static_cast<double>(late) : 0;
}

// `n` updates from 8 origins (chosen at random), arriving shuffled within a
// window of 50 positions; each origin's own updates keep their seq order (a
// peer sends an origin in seq order, and ingest refuses a gap).
Stream make_stream(uint64_t n) {
  Stream st;
  std::mt19937_64 rng(20261125);
  st.in_order.reserve(n);
  std::vector<uint64_t> origin_of(n);
  for (uint64_t i = 0; i < n; ++i) {
    size_t o = rng() % kStreamOrigins;
    origin_of[i] = o;
    st.in_order.push_back(st.origins.append(o, base_hlc() + i, "set", set_arg(i)));
  }
  std::vector<double> last(kStreamOrigins, -1);
  std::vector<std::pair<double, size_t>> score(n);
  std::uniform_real_distribution<double> delay(0, 50);
  for (uint64_t i = 0; i < n; ++i) {
    double s = std::max(last[origin_of[i]], static_cast<double>(i) + delay(rng));
    last[origin_of[i]] = s;
    score[i] = {s, i};
  }
  std::sort(score.begin(), score.end());
  st.arrival.reserve(n);
  for (const auto& [_, i] : score) st.arrival.push_back(i);
  measure_lateness(st);
  return st;
}

// Node::ingest of the stream in batches, in key order into one node and in
// arrival order into another, one batch each in turn so that both see the
// same disk.
struct StreamTimes {
  double in_order_s = 0, shuffled_s = 0;
  std::string in_order_hash, shuffled_hash;
  size_t late_batches = 0, batches = 0;
};

// Batches whose lowest key is below the head before them (the rollback path).
void count_late_batches(const Stream& st, size_t bs, StreamTimes& out) {
  const size_t n = st.in_order.size();
  std::optional<UpdateId> h;
  for (size_t a = 0; a < n; a += bs) {
    std::optional<UpdateId> lo, hi;
    for (size_t b = a; b < std::min(n, a + bs); ++b) {
      const auto& id = st.in_order[st.arrival[b]].id();
      if (!lo || id < *lo) lo = id;
      if (!hi || id > *hi) hi = id;
    }
    if (h && *lo < *h) ++out.late_batches;
    if (!h || *hi > *h) h = hi;
    ++out.batches;
  }
}

// One of the two nodes the stream goes into: 0 in key order, 1 in arrival order.
struct StreamNode {
  std::string dir;
  std::unique_ptr<Node> node;
  double secs = 0;
  size_t accepted = 0;
};

// The two nodes' batches in turn, alternating which node goes first; each
// batch's heads are signed before it is timed. (A node writes a checkpoint
// after acknowledging every 10,000th update; both nodes do so at the same
// batch, so the overlap is symmetric.)
void ingest_in_turn(const Stream& st, StreamNode (&nodes)[2]) {
  const size_t n = st.in_order.size();
  const size_t bs = g_opt.batch;
  std::vector<Update> batch;
  size_t round = 0;
  for (size_t a = 0; a < n; a += bs, ++round) {
    for (int pass = 0; pass < 2; ++pass) {
      const int k = static_cast<int>((round + static_cast<size_t>(pass)) % 2);  // 0: in order, 1: shuffled
      batch.clear();
      for (size_t b = a; b < std::min(n, a + bs); ++b) batch.push_back(st.in_order[k ? st.arrival[b] : b]);
      SignedBatch signed_one = signed_batch(st.origins, std::move(batch));
      auto t0 = Steady::now();
      nodes[k].accepted += ingest_or_die(*nodes[k].node, std::move(signed_one), "stream ingest");
      nodes[k].secs += seconds_since(t0);
      batch = {};
    }
  }
  for (auto& side : nodes) {
    auto t0 = Steady::now();
    must(side.node->ingest({}), "Node::ingest (drain)");  // waits for a trailing checkpoint
    side.secs += seconds_since(t0);
  }
}

StreamTimes ingest_stream(const Stream& st) {
  const size_t n = st.in_order.size();
  StreamNode nodes[2];
  for (int k = 0; k < 2; ++k) {
    nodes[k].dir = new_node_dir(k ? "late-shuffled" : "late-in-order");
    nodes[k].node = open_node(nodes[k].dir);
  }
  ingest_in_turn(st, nodes);
  StreamTimes out;
  for (int k = 0; k < 2; ++k) {
    StreamNode& side = nodes[k];
    if (side.accepted != n) die("stream ingest accepted " + std::to_string(side.accepted) + " of " + std::to_string(n));
    (k ? out.shuffled_hash : out.in_order_hash) = side.node->state_hash();
    check(side.node->close(), "Node::close");
    side.node.reset();
    std::filesystem::remove_all(side.dir);
  }
  out.in_order_s = nodes[0].secs;
  out.shuffled_s = nodes[1].secs;
  count_late_batches(st, g_opt.batch, out);
  return out;
}

// The node's apply logic without LMDB: sort the batch; if it sorts below the
// head, roll back to its first key and re-apply everything from there.
double replay_stream(const Stream& st, bool shuffled, std::string& hash) {
  const std::vector<Update>& ups = st.in_order;
  MethodRegistry reg = MethodRegistry::with_builtins();
  Replayer rep(reg, 1024);
  std::map<UpdateId, const Update*> held;
  const size_t n = ups.size();
  std::vector<const Update*> batch;
  auto t0 = Steady::now();
  for (size_t a = 0; a < n; a += g_opt.batch) {
    batch.clear();
    for (size_t b = a; b < std::min(n, a + g_opt.batch); ++b) batch.push_back(&ups[shuffled ? st.arrival[b] : b]);
    std::sort(batch.begin(), batch.end(), [](const Update* x, const Update* y) { return x->id() < y->id(); });
    for (const Update* u : batch) held.emplace(u->id(), u);
    auto last = rep.last_applied();
    const UpdateId& first = batch.front()->id();
    if (!last || first > *last) {
      for (const Update* u : batch) rep.apply(u->view());
    } else {
      if (!rep.can_rollback_to(first)) die("stream: late beyond the undo window");
      rep.rollback_to(first);
      for (auto it = held.lower_bound(first); it != held.end(); ++it) rep.apply(it->second->view());
    }
  }
  double s = seconds_since(t0);
  hash = rep.state().hash_hex();
  return s;
}

// 5c: the fastest of kCpuReps replays of the stream each way.
void add_replayer_row(const Stream& st, const std::string& hash_in_order) {
  const double n = static_cast<double>(g_opt.stream);
  std::string rh_in, rh_sh;
  double rs_in = 1e9, rs_sh = 1e9;
  for (int k = 0; k < kCpuReps; ++k) {
    rs_in = std::min(rs_in, replay_stream(st, false, rh_in));
    rs_sh = std::min(rs_sh, replay_stream(st, true, rh_sh));
  }
  if (rh_in != rh_sh || rh_in != hash_in_order) die("replayer stream hashes differ");
  RowBuilder("5c", "same stream, Replayer only (no LMDB, CPU part of 5b)")
      .measured(n / rs_sh, "updates/s", rate_text(n / rs_sh) + " (best of " + std::to_string(kCpuReps) + ")")
      .raw(n / rs_in, "updates/s", rate_text(n / rs_in) + " same stream in order")
      .percent_of((n / rs_sh) / (n / rs_in), "in-order")
      .add();
}

void fig_late_stream() {
  const double n = static_cast<double>(g_opt.stream);
  progress("figure 5b: " + grouped(n) + " updates from 8 origins shuffled within 50 positions, batches of " +
           std::to_string(g_opt.batch));
  Stream st = make_stream(g_opt.stream);
  StreamTimes t = ingest_stream(st);
  const std::string& h_in = t.in_order_hash;
  if (t.shuffled_hash != h_in) die("shuffled stream folded to hash " + t.shuffled_hash + ", in order " + h_in);
  const double rate = n / t.shuffled_s, in_order = n / t.in_order_s;
  const double late_pct = 100.0 * static_cast<double>(t.late_batches) / static_cast<double>(t.batches);
  RowBuilder("5b", "shuffled stream via Node::ingest (batches of " + std::to_string(g_opt.batch) + ")")
      .measured(rate, "updates/s",
                rate_text(rate) + fmt(" (%.0f%% of batches late", late_pct) + fmt(", mean %.1f", st.mean_late) +
                    " / max " + std::to_string(st.max_late) + " positions)")
      .raw(in_order, "updates/s", rate_text(in_order) + " same stream in order")
      .percent_of(rate / in_order, "in-order")
      .goal(">= 50% of in-order", rate / in_order >= 0.5)
      .note("hash equal to in-order ingest")
      .add();
  add_replayer_row(st, h_in);
}

}  // namespace

void fig_late() {
  fig_late_k();
  fig_late_stream();
}

}  // namespace replog::bench

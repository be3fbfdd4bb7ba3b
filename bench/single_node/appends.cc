// Figures 1 and 2: durable single appends, and group commit. 1b: the share
// of a durable single call that signing its head takes (signed origins: the
// node signs a head after each commit, before the caller is answered),
// against proof::sign_head alone, timed in the same loop.
//
// Durable commits depend on the disk, and a shared disk's fsync latency
// drifts during a run. So the node and its raw reference run interleaved
// (one op each in turn in figure 1; in blocks in figures 2, 3 and 5b), each
// side summing its own time: both see the same disk at the same moments.
#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "common/bench_common.h"
#include "common/raw_lmdb.h"
#include "common/report.h"
#include "common/signed_log.h"
#include "common/workload.h"
#include "protocol/origin_proof.h"
#include "single_node/single_node.h"

namespace replog::bench {

std::optional<std::string> g_single_dir;

namespace {

constexpr uint64_t kSignSeed = 101;

// One round of `threads` callers released together, `calls` each; returns its
// seconds and adds the LMDB commits it took to `commits`.
double group_round(Node& node, int threads, uint64_t calls, std::atomic<uint64_t>& next, uint64_t& commits) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      ++ready;
      while (!go.load()) std::this_thread::yield();
      for (uint64_t j = 0; j < calls; ++j) must(node.call("set", set_value(next++)), "Node::call");
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const uint64_t txn0 = last_txnid(node);
  auto t0 = Steady::now();
  go = true;
  for (auto& t : ts) t.join();
  const double s = seconds_since(t0);
  commits += last_txnid(node) - txn0;
  return s;
}

}  // namespace

// Figure 1: one raw commit (log put + index put, durable default flags) and
// one Node::call in turn; 1b: then one chain step and one proof::sign_head
// of the same update under a key of the benchmark's own, each timed alone.
// The node's log (a head signed after every call) is kept for figure 8.
void fig_single() {
  progress("figure 1: durable single appends (1b: and proof::sign_head alone)");
  RawEnv raw(fresh_dir("raw-single"));
  const std::string dir = new_node_dir("single");
  auto node = open_node(dir);
  SignedOrigins signer(kBenchCluster, kSignSeed, 1);
  uint64_t raw_done = 0, done = 0;
  double raw_s = 0, node_s = 0, sign_s = 0, chain_s = 0;
  while (done < g_opt.single_ops && raw_s + node_s < 2 * g_opt.time_cap_s) {
    const uint64_t i = raw_done++;
    const Update u = Update::make(UpdateId{base_hlc() + i, kRawOrigin}, i + 1, "set", set_arg(i));
    auto t0 = Steady::now();
    raw.write([&](MDB_txn* txn) { raw.put_update(txn, u); });
    raw_s += seconds_since(t0);
    t0 = Steady::now();
    must(node->call("set", set_value(done)), "Node::call");
    node_s += seconds_since(t0);
    // The same work the node's writer does for its own update: one chain
    // step in the write transaction, one signature after the commit.
    const Update s = signer.append(0, base_hlc() + i, "set", set_arg(i));
    proof::Chain c = signer.chain_at(0, s.seq() - 1);
    t0 = Steady::now();
    proof::chain_step(c, signer.key(0), s.id().hlc, s.body());
    chain_s += seconds_since(t0);
    t0 = Steady::now();
    const proof::Head h = proof::sign_head(signer.origin(0), s.seq(), c, 0, signer.secret(0));
    sign_s += seconds_since(t0);
    if (h.signature.size() != proof::kSignatureBytes) die("proof::sign_head gave no signature");
    ++done;
  }
  check(node->close(), "Node::close");
  g_single_dir = dir;
  const double rate = static_cast<double>(done) / node_s, raw_rate = static_cast<double>(raw_done) / raw_s;
  RowBuilder("1", "durable single appends (Node::call set, 1 caller)")
      .measured(rate, "updates/s",
                rate_text(rate) + " (" + grouped(static_cast<double>(done)) + " calls, " + time_text(1.0 / rate) +
                    " each)")
      .raw(raw_rate, "updates/s", rate_text(raw_rate) + " raw LMDB, 1 commit/update")
      .percent_of(rate / raw_rate, "raw")
      .goal(">= 80% of raw", rate / raw_rate >= 0.8)
      .count("updates", static_cast<double>(done))
      .count("seconds", node_s)
      .add();
  // Signing's share: of the call's latency, and what it adds to the rest.
  const double n = static_cast<double>(done);
  const double sign = sign_s / n, call = node_s / n, chain = chain_s / n;
  const double adds = sign / (call - sign);
  RowBuilder("1b", "signing in a durable single call (proof::sign_head, 1 head per call)")
      .measured(sign, "s",
                time_text(sign) + " per head (mean of " + grouped(n) + "; at most adds " + fmt("%.1f%%", 100 * adds) +
                    " to the rest of the call: it is made while the commit syncs)")
      .raw(call, "s", time_text(call) + " Node::call latency (mean, figure 1)")
      .percent_of(sign / call, "call")
      .goal("signing adds <= 20% to the call", adds <= 0.2)
      .note("chain step (BLAKE2b over one body, in the write transaction) " + time_text(chain) +
            " per update, mean")
      .add();
}

// Figure 2: one node; rounds alternate a single caller (2*G calls) and 8
// concurrent callers (G calls each), so the ratio compares the same disk at
// the same time.
void fig_group() {
  progress("figure 2: group commit, 8 callers vs 1 caller (interleaved rounds)");
  auto node = open_node(new_node_dir("group"));
  const int threads = 8;
  const int rounds = 40;
  const uint64_t g = std::max<uint64_t>(1, g_opt.group_ops / rounds);
  std::atomic<uint64_t> next{0};
  uint64_t single_done = 0, group_done = 0, group_commits = 0;
  double single_s = 0, group_s = 0;
  for (int round = 0; round < rounds && single_s + group_s < 2 * g_opt.time_cap_s; ++round) {
    auto t0 = Steady::now();
    for (uint64_t c = 0; c < 2 * g; ++c, ++single_done) must(node->call("set", set_value(next++)), "Node::call");
    single_s += seconds_since(t0);
    group_s += group_round(*node, threads, g, next, group_commits);
    group_done += threads * g;
  }
  check(node->close(), "Node::close");
  const double rate = static_cast<double>(group_done) / group_s;
  const double single = static_cast<double>(single_done) / single_s;
  const double per_commit =
      static_cast<double>(group_done) / static_cast<double>(std::max<uint64_t>(1, group_commits));
  RowBuilder("2", "group commit (Node::call set, 8 callers)")
      .measured(rate, "updates/s",
                rate_text(rate) + " (" + grouped(static_cast<double>(group_done)) + " calls, " +
                    fmt("%.2f calls/commit)", per_commit))
      .raw(single, "updates/s", rate_text(single) + " 1 caller, same node, interleaved")
      .ratio(rate / single, "%.2fx single")
      .goal(">= 4x single", rate / single >= 4.0)
      .add();
}

}  // namespace replog::bench

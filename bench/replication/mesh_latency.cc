// Figure 4: --nodes nodes in a full mesh on loopback, each calling at --rate
// calls/s for --seconds s: from a commit on the origin to the commit and apply
// on every other node (4a, 4b), until all hashes are equal (4c), and the
// traffic it took (4d); against Node::call on the origin. Then what checking
// and committing cost (4e, 4f), next to the CPUs and to as many raw LMDB
// environments committing on the same disk; last, 4a's p99 next to a raw mesh
// of the same links and calls (4g, raw_mesh.cc).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/bench_common.h"
#include "common/raw_lmdb.h"
#include "common/report.h"
#include "common/workload.h"
#include "replication/peer_node.h"
#include "replication/raw_mesh.h"
#include "replication/replication.h"

namespace replog::bench {

namespace {

// What a node committed (and applied), with the steady-clock ns of each commit.
struct Recorder {
  std::mutex mu;
  std::vector<std::pair<UpdateId, int64_t>> at;
  std::atomic<uint64_t> count{0};
};

struct IdHash {
  size_t operator()(const UpdateId& id) const { return std::hash<uint64_t>()(id.hlc * 0x9e3779b97f4a7c15ULL ^ id.origin); }
};

double pct(std::vector<double>& v, double p) {  // v sorted
  if (v.empty()) return 0;
  size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) ;
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

struct Mesh {
  std::vector<std::set<int>> links;  // each node's neighbours (links go both ways)
  std::vector<std::unique_ptr<PeerNode>> nodes;
  std::vector<std::unique_ptr<Recorder>> rec;
};

// Who dials whom: all others (a full mesh), or --degree random others, drawn
// again until the graph, with each link both ways, is connected.
std::vector<std::vector<int>> draw_links(int nn) {
  std::vector<std::vector<int>> dials(static_cast<size_t>(nn));
  if (g_opt.degree == 0) {
    for (int i = 0; i < nn; ++i)
      for (int j = 0; j < nn; ++j)
        if (j != i) dials[static_cast<size_t>(i)].push_back(j);
    return dials;
  }
  std::mt19937_64 rng(7);
  for (int attempt = 0; attempt < 100; ++attempt) {
    for (int i = 0; i < nn; ++i) {
      std::vector<int> others;
      for (int j = 0; j < nn; ++j)
        if (j != i) others.push_back(j);
      std::shuffle(others.begin(), others.end(), rng);
      others.resize(static_cast<size_t>(g_opt.degree));
      dials[static_cast<size_t>(i)] = others;
    }
    std::vector<std::set<int>> both(static_cast<size_t>(nn));
    for (int i = 0; i < nn; ++i)
      for (int j : dials[static_cast<size_t>(i)]) both[static_cast<size_t>(i)].insert(j), both[static_cast<size_t>(j)].insert(i);
    std::vector<bool> seen(static_cast<size_t>(nn));
    std::vector<int> todo = {0};
    seen[0] = true;
    while (!todo.empty()) {
      int i = todo.back();
      todo.pop_back();
      for (int j : both[static_cast<size_t>(i)])
        if (!seen[static_cast<size_t>(j)]) seen[static_cast<size_t>(j)] = true, todo.push_back(j);
    }
    if (std::all_of(seen.begin(), seen.end(), [](bool b) { return b; })) return dials;
  }
  die("figure 4: no connected graph of degree " + std::to_string(g_opt.degree) + " in 100 draws");
}

// Opens the nodes, each recording its commits, and starts them peered as
// draw_links says; returns once every node has handshaken with each of its
// neighbours (those it dials and those that dial it: links go both ways).
void start_mesh(Mesh& m, int nn) {
  for (int i = 0; i < nn; ++i) {
    m.nodes.push_back(std::make_unique<PeerNode>());
    m.rec.push_back(std::make_unique<Recorder>());
    Recorder* r = m.rec.back().get();
    m.nodes.back()->on_commit = [r](const std::vector<Update>& ups) {
      int64_t now = Steady::now().time_since_epoch().count();
      std::lock_guard<std::mutex> l(r->mu);
      for (const auto& u : ups) r->at.emplace_back(u.id(), now);
      r->count += ups.size();
    };
    if (g_opt.tree_off) m.nodes.back()->features_off = wire::kFeatureTree;
    m.nodes.back()->relay_before_commit = !g_opt.relay_after_commit;
    m.nodes.back()->verify_origins = !g_opt.verify_off;
    m.nodes.back()->open(new_node_dir("mesh-" + std::to_string(i), kCluster), "n" + std::to_string(i));
  }
  std::vector<std::string> eps;
  for (auto& n : m.nodes) eps.push_back(n->endpoint);
  const auto dials = draw_links(nn);
  std::vector<std::set<int>> neighbours(static_cast<size_t>(nn));
  for (int i = 0; i < nn; ++i) {
    std::vector<std::string> peers;
    for (int j : dials[static_cast<size_t>(i)]) {
      peers.push_back(eps[static_cast<size_t>(j)]);
      neighbours[static_cast<size_t>(i)].insert(j);
      neighbours[static_cast<size_t>(j)].insert(i);
    }
    m.nodes[static_cast<size_t>(i)]->start_threaded(peers, 1000 + static_cast<uint64_t>(i));
  }
  m.links = neighbours;
  auto t_wait = Steady::now();
  while (true) {
    bool ok = true;
    for (int i = 0; i < nn; ++i)
      ok = ok && all_peers_ready(*m.nodes[static_cast<size_t>(i)]->service, neighbours[static_cast<size_t>(i)].size());
    if (ok) break;
    if (seconds_since(t_wait) > 30) die("figure 4: the mesh did not handshake within 30 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  progress("  mesh ready after " + time_text(seconds_since(t_wait)) + "; calling");
}

// One caller per node at --rate calls/s for --seconds s; fills each node's
// call latencies and returns the seconds the calls took.
double run_callers(Mesh& m, std::vector<std::vector<double>>& call_s) {
  const int nn = static_cast<int>(m.nodes.size());
  const auto interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / g_opt.rate));
  const auto t0 = Steady::now() + std::chrono::milliseconds(50);
  const auto t_end = t0 + std::chrono::milliseconds(static_cast<int64_t>(g_opt.seconds * 1000));
  call_s.assign(static_cast<size_t>(nn), {});
  std::vector<std::thread> callers;
  for (int i = 0; i < nn; ++i) {
    callers.emplace_back([&, i] {
      Node& node = *m.nodes[static_cast<size_t>(i)]->node;
      auto& lat = call_s[static_cast<size_t>(i)];
      for (uint64_t k = 0;; ++k) {
        auto t = t0 + k * interval;
        if (t >= t_end) break;
        std::this_thread::sleep_until(t);
        auto c0 = Steady::now();
        must(node.call("set", set_value(k * static_cast<uint64_t>(nn) + static_cast<uint64_t>(i))), "Node::call");
        lat.push_back(seconds_since(c0));
      }
    });
  }
  for (auto& t : callers) t.join();
  return seconds_since(t0);
}

// Waits until every node holds the `total` calls, then checks the hashes.
void wait_converged(Mesh& m, uint64_t total) {
  auto t_conv = Steady::now();
  while (true) {
    bool all = true;
    for (auto& r : m.rec) all = all && r->count.load() >= total;
    if (all) break;
    if (seconds_since(t_conv) > 60) {
      std::string counts;
      for (auto& r : m.rec) counts += " " + grouped(r->count.load());
      die("figure 4: not every node holds the " + grouped(total) + " calls 60 s after the last one:" + counts);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::string hash0 = m.nodes[0]->node->state_hash();
  for (auto& n : m.nodes)
    if (n->node->state_hash() != hash0) die("figure 4: hashes differ after every node holds every call");
}

// The nodes' counters, summed when they are closed.
struct Traffic {
  SyncCounters sum;
  WireCount wire;
  uint64_t commits = 0, push_frames = 0;
  double busy = 0, run = 0, push_s = 0;  // event loops: busy, running, in Push frames
  double check_cpu = 0;                  // CPU seconds the writers spent checking received updates
  uint64_t ahead_runs = 0, ahead_reused = 0;  // Node::ahead_counts(), summed
};

// What the nodes had done before the calls: LMDB's last transaction and the
// CPU time spent checking received updates, per node.
struct Before {
  std::vector<uint64_t> txn;
  std::vector<double> check_cpu;
};

Before before_calls(const Mesh& m) {
  Before b;
  for (const auto& n : m.nodes) {
    b.txn.push_back(last_txnid(*n->node));
    b.check_cpu.push_back(n->node->check_cpu_seconds());
  }
  return b;
}

Traffic close_mesh(Mesh& m, const Before& before) {
  Traffic t;
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    t.commits += last_txnid(*m.nodes[i]->node) - before.txn[i];
    t.check_cpu += m.nodes[i]->node->check_cpu_seconds() - before.check_cpu[i];
    const auto ahead = m.nodes[i]->node->ahead_counts();
    t.ahead_runs += ahead.runs;
    t.ahead_reused += ahead.signatures_reused;
  }
  for (auto& n : m.nodes) {
    n->close();
    for (double s : n->timing.frames_s) t.busy += s;
    t.busy += n->timing.tick_s;
    t.run += seconds_between(n->loop_started, n->loop_ended);
    t.push_s += n->timing.frames_s[6];
    t.push_frames += n->timing.frames[6];
    const auto& c = n->final_counters;
    t.sum.frames_out += c.frames_out, t.sum.bytes_out += c.bytes_out, t.sum.updates_received += c.updates_received;
    t.sum.refused_updates += c.refused_updates, t.sum.bad_frames += c.bad_frames;
    t.sum.prunes += c.prunes, t.sum.grafts += c.grafts;
    t.wire += n->final_wire;
  }
  return t;
}

// Latencies from the commit listeners' timestamps (one process, one steady clock).
struct Latencies {
  std::vector<double> each;  // per (call, receiving node), sorted
  std::vector<double> all;   // per call, to its slowest receiver, sorted
  double conv = 0;           // from the last call's commit on its origin to the last commit anywhere
  // `each` by the receiver's hops from the origin (the shortest path over the links), sorted.
  std::map<int, std::vector<double>> by_hops;
};

// Hops from node `from` to every node, over the mesh's links (breadth first).
std::vector<int> hops_from(const Mesh& m, size_t from) {
  std::vector<int> hops(m.links.size(), -1);
  std::vector<size_t> queue{from};
  hops[from] = 0;
  for (size_t k = 0; k < queue.size(); ++k)
    for (int j : m.links[queue[k]])
      if (hops[static_cast<size_t>(j)] < 0) {
        hops[static_cast<size_t>(j)] = hops[queue[k]] + 1;
        queue.push_back(static_cast<size_t>(j));
      }
  return hops;
}

Latencies latencies(const Mesh& m, const std::vector<OriginId>& ids, uint64_t total) {
  const size_t nn = m.nodes.size();
  std::unordered_map<UpdateId, int64_t, IdHash> origin_at;
  int64_t last_origin = 0, last_any = 0;
  for (size_t i = 0; i < nn; ++i)
    for (const auto& [id, t] : m.rec[i]->at)
      if (id.origin == ids[i]) {
        origin_at[id] = t;
        last_origin = std::max(last_origin, t);
      }
  if (origin_at.size() != total) die("figure 4: origins recorded " + grouped(origin_at.size()) + " calls of " + grouped(total));
  std::unordered_map<UpdateId, int64_t, IdHash> slowest;
  Latencies l;
  l.each.reserve(total * (nn - 1));
  std::map<OriginId, std::vector<int>> hops;  // by origin: hops to each node
  for (size_t i = 0; i < nn; ++i) hops[ids[i]] = hops_from(m, i);
  for (size_t i = 0; i < nn; ++i)
    for (const auto& [id, t] : m.rec[i]->at) {
      last_any = std::max(last_any, t);
      if (id.origin == ids[i]) continue;
      auto o = origin_at.find(id);
      if (o == origin_at.end()) die("figure 4: an update no origin committed");
      l.each.push_back(static_cast<double>(t - o->second) * 1e-9);
      l.by_hops[hops[id.origin][i]].push_back(l.each.back());
      auto& s = slowest[id];
      s = std::max(s, t);
    }
  l.all.reserve(slowest.size());
  for (const auto& [id, t] : slowest) l.all.push_back(static_cast<double>(t - origin_at[id]) * 1e-9);
  std::sort(l.each.begin(), l.each.end());
  for (auto& [_, v] : l.by_hops) std::sort(v.begin(), v.end());
  std::sort(l.all.begin(), l.all.end());
  l.conv = static_cast<double>(last_any - last_origin) * 1e-9;
  return l;
}

// 4b by the receiver's hops from the origin: "by hops from the origin: 1: p50 .., p99 .. (N); 2: ..".
std::string by_hops_text(Latencies& l) {
  std::string s = "by the receiver's hops from the origin over the links (shortest path):";
  for (auto& [h, v] : l.by_hops)
    s += " " + std::to_string(h) + ": p50 " + time_text(pct(v, 50)) + ", p99 " + time_text(pct(v, 99)) + " (" +
         grouped(v.size()) + ");";
  s.pop_back();
  return s;
}

// The mesh in words, for the rows: "8 nodes, full mesh" or "32 nodes, each dialling 4".
std::string mesh_text() {
  std::string s = std::to_string(g_opt.nodes) + " nodes, " +
                  (g_opt.degree ? "each dialling " + std::to_string(g_opt.degree) + " random others" : "full mesh");
  if (g_opt.relay_after_commit) s += ", relayed after commit";
  else if (g_opt.relay_ahead_off) s += ", relayed once the writer checked";
  if (g_opt.verify_off) s += ", verification off";
  return g_opt.tree_off ? s + ", relay trees off" : s;
}

void add_latency_rows(Latencies& l, std::vector<double>& calls, uint64_t total, double call_window) {
  const std::string setup = mesh_text() + " x " + fmt("%.0f calls/s", g_opt.rate) + ", " + fmt("%.0f s", g_opt.seconds);
  const double p99_goal = g_opt.degree ? 0.050 : 0.020;
  const std::string call_raw = "Node::call on the origin (1 durable commit): p50 " + time_text(pct(calls, 50)) +
                               ", p99 " + time_text(pct(calls, 99));
  RowBuilder("4a", "commit on origin -> commit+apply on every other node (" + setup + ")")
      .measured(pct(l.all, 99), "s",
                "p50 " + time_text(pct(l.all, 50)) + ", p99 " + time_text(pct(l.all, 99)) + ", max " +
                    time_text(l.all.back()) + " (" + grouped(total) + " calls, " +
                    rate_text(static_cast<double>(total) / call_window) + ")")
      .raw(pct(calls, 50), "s", call_raw)
      .ratio(pct(l.all, 99) / pct(calls, 99), "p99 %.1fx call p99")
      .goal(g_opt.degree ? "p99 < 50 ms" : "p99 < 20 ms", pct(l.all, 99) < p99_goal)
      .add();
  RowBuilder("4b", "the same per (call, receiving node)")
      .measured(pct(l.each, 99), "s",
                "p50 " + time_text(pct(l.each, 50)) + ", p99 " + time_text(pct(l.each, 99)) + ", max " +
                    time_text(l.each.back()) + " (" + grouped(l.each.size()) + " deliveries)")
      .raw(pct(calls, 50), "s", call_raw)
      .ratio(pct(l.each, 99) / pct(calls, 99), "p99 %.1fx call p99")
      .note(by_hops_text(l))
      .add();
  RowBuilder("4c", "all hashes equal after the last call's commit")
      .measured(l.conv, "s", time_text(l.conv) + " (every node holds every call; hashes checked equal)")
      .goal("<= 1 s", l.conv <= 1.0)
      .add();
}

void add_traffic_row(const Traffic& t, uint64_t total, double call_window) {
  const int nn = g_opt.nodes;
  const double deliveries = static_cast<double>(total) * (nn - 1);
  const double received = static_cast<double>(t.sum.updates_received) / deliveries;
  std::string by_type;
  for (size_t k = 1; k < wire::kTypeSlots; ++k)
    if (t.wire.out[k].frames)
      by_type += std::string(by_type.empty() ? "" : ", ") + kTypeNames[k] + " " + grouped(t.wire.out[k].frames) +
                 " / " + mib_text(static_cast<double>(t.wire.out[k].bytes));
  RowBuilder("4d", "traffic of the run (" + mesh_text() + ")")
      .measured(received, "received/needed",
                grouped(t.sum.updates_received) + " updates received for " + grouped(deliveries) +
                    fmt(" deliveries (%.2fx); ", received) + grouped(t.sum.refused_updates) +
                    " refused for a reason other than a gap; frames out: " + by_type)
      .raw(deliveries, "deliveries", grouped(deliveries) + " = calls x " + std::to_string(nn - 1) + " other nodes")
      .ratio(received, "%.2fx")
      .goal("<= 1.5 copies received per delivery needed", received <= 1.5)
      .note(grouped(t.sum.prunes) + " prunes, " + grouped(t.sum.grafts) + " grafts; " + grouped(t.sum.bad_frames) +
            " bad frames; frames ZmqTransport dropped: " + dropped_text(t.wire) + "; " +
            grouped(t.commits) + " LMDB commits in all (" +
            rate_text(static_cast<double>(t.commits) / (nn * call_window)) + " per node) for " +
            grouped(t.push_frames) + " Push frames received and " + grouped(total) + " calls; event loops busy " +
            fmt("%.0f%%", 100 * t.busy / t.run) + " of the time (mean), " +
            time_text(t.push_s / static_cast<double>(std::max<uint64_t>(1, t.push_frames))) +
            " per Push frame in on_frame; " + grouped(t.ahead_runs) + " runs verified on the loops, ahead of the writers (" +
            grouped(t.ahead_reused) + " of their signatures not verified again)")
      .add();
}

// The raw reference of the commit rate: `envs` plain LMDB environments on
// this disk (the library's flags, durable commits), each on its own thread
// committing one update (its two puts) at a time for `seconds`; commits per
// second, all environments together.
double raw_commit_rate(int envs, double seconds) {
  std::vector<std::unique_ptr<RawEnv>> raw;
  for (int i = 0; i < envs; ++i) raw.push_back(std::make_unique<RawEnv>(fresh_dir("raw-commits-" + std::to_string(i))));
  std::atomic<uint64_t> commits{0};
  const auto t_end = Steady::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  std::vector<std::thread> threads;
  const auto t0 = Steady::now();
  for (int i = 0; i < envs; ++i)
    threads.emplace_back([&, i] {
      RawEnv& env = *raw[static_cast<size_t>(i)];
      for (uint64_t k = 1; Steady::now() < t_end; ++k) {
        const Update u = Update::make(UpdateId{k, static_cast<OriginId>(i + 1)}, k, "set", std::string(130, 'x'));
        env.write([&](MDB_txn* txn) { env.put_update(txn, u); });
        ++commits;
      }
    });
  for (auto& t : threads) t.join();
  return static_cast<double>(commits.load()) / seconds_since(t0);
}

// The cost of checking and of committing, next to what the machine offers:
// its CPUs, and as many raw environments committing on the same disk.
void add_cost_rows(const Traffic& t, double call_window) {
  const int nn = g_opt.nodes;
  const double cpus = std::max(1u, std::thread::hardware_concurrency());
  const double check = t.check_cpu / call_window;
  RowBuilder("4e", "CPU spent checking received updates (chains, heads, signatures), all nodes")
      .measured(check, "CPU-s/s",
                fmt("%.3f CPU-s/s", check) + " (" + fmt("%.2f CPU-s", t.check_cpu) + " in " + time_text(call_window) +
                    fmt(", %.1f ms per node per s)", 1000 * check / nn))
      .raw(cpus, "CPU-s/s", fmt("%.0f CPUs", cpus) + " on this machine")
      .percent_of(check / cpus, "the CPUs")
      .add();
  progress("  raw reference: " + std::to_string(nn) + " LMDB environments committing one update at a time, 5 s");
  const double raw = raw_commit_rate(nn, 5.0);
  const double rate = static_cast<double>(t.commits) / call_window;
  RowBuilder("4f", "LMDB commits (fsyncs) of all nodes")
      .measured(rate, "commits/s",
                rate_text(rate) + " (" + grouped(t.commits) + " commits in " + time_text(call_window) + ", " +
                    rate_text(rate / nn) + " per node)")
      .raw(raw, "commits/s",
           rate_text(raw) + " raw: " + std::to_string(nn) + " LMDB environments each committing as fast as it can")
      .percent_of(rate / raw, "raw")
      .add();
}

// 4g: the p99 of 4a next to a raw mesh of the same links and calls
// (raw_mesh.cc), run after the nodes have closed.
void add_raw_mesh_row(const Mesh& m, Latencies& l) {
  progress("  raw reference: the same links and calls without replog, " + fmt("%.0f s", g_opt.seconds));
  RawMeshResult raw = raw_mesh(m.links, g_opt.rate, g_opt.seconds, !g_opt.verify_off);
  if (raw.all.empty()) die("figure 4g: the raw mesh delivered nothing");
  const std::string what = g_opt.verify_off ? "no signature verified" : "Ed25519 verified per message";
  RowBuilder("4g", "4a's p99 next to a raw mesh: the same links and calls, no replog")
      .measured(pct(l.all, 99), "s", "replog p99 " + time_text(pct(l.all, 99)))
      .raw(pct(raw.all, 99), "s",
           "mesh without replog (ZeroMQ, a durable LMDB commit per poll, " + what +
               ", one copy per node along shortest paths): p50 " + time_text(pct(raw.all, 50)) + ", p99 " +
               time_text(pct(raw.all, 99)))
      .ratio(pct(l.all, 99) / pct(raw.all, 99), "%.1fx raw p99")
      .note("raw mesh per delivery p50 " + time_text(pct(raw.each, 50)) + ", p99 " + time_text(pct(raw.each, 99)) +
            "; " + grouped(raw.each.size()) + " of " + grouped(raw.expected) + " deliveries; verifying " +
            fmt("%.3f CPU-s/s", raw.verify_cpu / g_opt.seconds))
      .add();
}

}  // namespace

void fig_latency() {
  const int nn = g_opt.nodes;
  progress("figure 4: " + mesh_text() + " on loopback, " + fmt("%.0f", g_opt.rate) + " calls/s each for " +
           fmt("%.0f s", g_opt.seconds));
  Mesh m;
  start_mesh(m, nn);
  const Before before = before_calls(m);
  std::vector<std::vector<double>> call_s;
  const double call_window = run_callers(m, call_s);
  uint64_t total = 0;
  for (auto& v : call_s) total += v.size();
  wait_converged(m, total);
  std::vector<OriginId> ids;
  for (auto& n : m.nodes) ids.push_back(n->node->node_id());
  const Traffic traffic = close_mesh(m, before);
  Latencies l = latencies(m, ids, total);
  std::vector<double> calls;
  for (auto& v : call_s) calls.insert(calls.end(), v.begin(), v.end());
  std::sort(calls.begin(), calls.end());
  add_latency_rows(l, calls, total, call_window);
  add_traffic_row(traffic, total, call_window);
  add_cost_rows(traffic, call_window);
  add_raw_mesh_row(m, l);
}

}  // namespace replog::bench

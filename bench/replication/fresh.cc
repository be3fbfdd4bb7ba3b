// Figure 1 (1b, 1c with 10 and 100 origins): fresh replication of the
// dataset from one node to an empty one over loopback TCP, against raw LMDB
// (the same puts, 1000 updates per commit) and raw ZeroMQ (the same frames).
// With more than one origin it is stopped after --fresh-cap s and reported as
// not finished, with its rate so far. The pairs it leaves behind serve
// figures 2, 3 and 5. Figure 6: the 1-origin replication again, the receiver
// verifying the heads (NodeOptions::verify_origins) and not, in turn.
#include <atomic>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include "common/bench_common.h"
#include "common/raw_lmdb.h"
#include "common/report.h"
#include "common/workload.h"
#include "protocol/wire.h"
#include "replication/peer_node.h"
#include "replication/replication.h"

namespace replog::bench {

std::map<uint64_t, Pair> g_pairs;

namespace {

std::optional<double> g_raw_lmdb_s;  // measured once, with the first figure

// --- raw references ---------------------------------------------------------------------

// Plain LMDB with the library's flags and the same two puts per update, 1000
// per commit; the updates of a dataset of `origins` origins, under kRawOrigin.
double raw_lmdb_seconds(uint64_t n, uint64_t origins) {
  std::string dir = fresh_dir("raw-lmdb");
  double s = 0;
  {
    RawEnv raw(dir);
    std::vector<Update> batch;
    for (uint64_t i = 0; i < n; i += 1000) {
      batch.clear();
      for (uint64_t j = i; j < std::min(n, i + 1000); ++j) batch.push_back(dataset_update(j, origins, kRawOrigin));
      auto t0 = Steady::now();
      raw.write([&](MDB_txn* txn) {
        for (const auto& u : batch) raw.put_update(txn, u);
      });
      s += seconds_since(t0);
    }
  }
  std::filesystem::remove_all(dir);
  return s;
}

// Plain ZeroMQ: a DEALER sends `frames` frames of `frame_bytes` to a ROUTER
// over loopback TCP (the transport's socket options); seconds from the first
// send to the last receive.
double raw_zmq_once(size_t frame_bytes, size_t frames) {
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router), dealer(ctx, zmq::socket_type::dealer);
  for (auto* s : {&router, &dealer}) {
    s->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(wire::kMaxFrameBytes + 4096));
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::sndhwm, 1000);
    s->set(zmq::sockopt::rcvhwm, 1000);
  }
  router.bind("tcp://127.0.0.1:0");
  std::string ep = router.get(zmq::sockopt::last_endpoint);
  dealer.connect(ep);
  // One small frame both ways first, so the connection is up before timing.
  dealer.send(zmq::str_buffer("hi"), zmq::send_flags::none);
  zmq::message_t id, m;
  if (!router.recv(id) || !router.recv(m)) die("raw zmq: warm-up failed");
  std::string payload(frame_bytes, 'x');
  Steady::time_point t_end;
  std::thread receiver([&] {
    zmq::message_t rid, rm;
    for (size_t i = 0; i < frames; ++i) {
      if (!router.recv(rid) || !router.recv(rm)) die("raw zmq: recv failed");
      if (rm.size() != frame_bytes) die("raw zmq: short frame");
    }
    t_end = Steady::now();
  });
  auto t0 = Steady::now();
  for (size_t i = 0; i < frames; ++i)
    if (!dealer.send(zmq::buffer(payload), zmq::send_flags::none)) die("raw zmq: send failed");
  receiver.join();
  return seconds_between(t0, t_end);
}

double raw_zmq_seconds(size_t frame_bytes, size_t frames) {
  double best = 1e9;
  for (int rep = 0; rep < 3; ++rep) best = std::min(best, raw_zmq_once(frame_bytes, frames));
  return best;
}

// --- the nodes ------------------------------------------------------------------------------

// A node holding the dataset of `origins` signed origins, built through
// Node::ingest (batches of 1000 with their heads, key order). The same
// `origins` give the same keys and bytes, so a twin holds what its source does.
std::string build_source(uint64_t origins, const std::string& name) {
  std::string dir = new_node_dir(name + "-" + std::to_string(origins), kCluster);
  auto node = open_node(dir, "Node::open source");
  SignedOrigins signed_origins(kCluster, kDatasetSeed + origins, origins);
  std::vector<Update> batch;
  uint64_t accepted = 0;
  for (uint64_t i = 0; i < g_opt.updates; i += 1000) {
    batch.clear();
    for (uint64_t j = i; j < std::min(g_opt.updates, i + 1000); ++j)
      batch.push_back(next_dataset_update(signed_origins, j));
    accepted += ingest_or_die(*node, signed_batch(signed_origins, std::move(batch)), "ingest");
    batch = {};
  }
  if (accepted != g_opt.updates) die("source accepted " + grouped(accepted) + " updates");
  check(node->close(), "Node::close source");
  return dir;
}

// The source, and for a capped pair that later figures need, a twin built
// beside it (in key order; the replication may be stopped early).
Pair build_pair(uint64_t origins, const std::string& fig, bool capped, bool need_pair) {
  const uint64_t n = g_opt.updates;
  Pair pair;
  pair.origins = origins;
  if (capped && need_pair) {
    progress("figure " + fig + ": building a source node and its twin of " + grouped(n) + " updates from " +
             std::to_string(origins) + " origins (Node::ingest, untimed)");
    std::thread twin([&] { pair.receiver_dir = build_source(origins, "twin"); });
    pair.source_dir = build_source(origins, "source");
    twin.join();
  } else {
    progress("figure " + fig + ": building a source node of " + grouped(n) + " updates from " + std::to_string(origins) +
             " origin" + (origins > 1 ? "s" : "") + " (Node::ingest, untimed)");
    pair.source_dir = build_source(origins, "source");
  }
  return pair;
}

// What one replication measured.
struct Replication {
  double total_s = 0, first_s = 0;  // from the start to the last and the first commit
  double folded_s = 0;               // from the start until the receiver's state was folded (its hash read)
  uint64_t commits = 0, done = 0;
  SyncCounters rc, sc;  // receiver's, source's
  WireCount rw, sw;
  std::string dst_loop, src_loop;
};

// Waits until `got` reaches n; gives up after --fresh-cap s if `capped`, and
// dies after --fresh-timeout.
void wait_for(const std::atomic<uint64_t>& got, uint64_t n, Steady::time_point t0, bool capped) {
  while (got.load() < n) {
    if (capped && seconds_since(t0) > g_opt.fresh_cap_s) break;
    if (seconds_since(t0) > g_opt.fresh_timeout_s)
      die("replication did not finish in " + fmt("%.0f s", g_opt.fresh_timeout_s) + ": " + grouped(got.load()) +
          " of " + grouped(n) + " updates arrived");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Replicates the pair's source to the empty receiver_dir, the receiver
// verifying what it receives unless told; sets pair.hash.
Replication replicate(Pair& pair, const std::string& receiver_dir, bool capped, bool verify = true) {
  const uint64_t n = g_opt.updates;
  Replication out;
  PeerNode src, dst;
  dst.verify_origins = verify;
  std::atomic<uint64_t> got{0};
  std::atomic<int64_t> first_ns{0}, last_ns{0};
  dst.on_commit = [&](const std::vector<Update>& ups) {
    int64_t now = Steady::now().time_since_epoch().count();
    int64_t zero = 0;
    first_ns.compare_exchange_strong(zero, now);
    got += ups.size();
    last_ns = now;
  };
  src.open(pair.source_dir, "source");
  dst.open(receiver_dir, "receiver");
  const uint64_t txn0 = last_txnid(*dst.node);
  auto t0 = Steady::now();
  src.start_threaded({}, 11 + pair.origins);
  dst.start_threaded({src.endpoint}, 12 + pair.origins);
  wait_for(got, n, t0, capped);
  dst.stop = true;  // stop pulling; what is committed so far counts
  if (dst.loop.joinable()) dst.loop.join();
  const auto at = [](int64_t ns) { return Steady::time_point(Steady::duration(ns)); };
  out.done = got.load();
  out.total_s = seconds_between(t0, at(last_ns.load()));
  out.first_s = seconds_between(t0, at(first_ns.load()));
  out.commits = last_txnid(*dst.node) - txn0;
  // The state: folded beside each batch's commit, or once, after the copy
  // (a catch-up whose batches land below the head folds when it is read).
  const std::string dst_hash = dst.node->state_hash();
  out.folded_s = seconds_since(t0);
  pair.hash = src.node->state_hash();
  if (out.done == n && dst_hash != pair.hash) die("receiver's hash differs from the source's after replication");
  if (vector_total(dst.node->vector()) != out.done) die("receiver's vector does not match what it committed");
  src.close();
  dst.close();
  out.rc = dst.final_counters;
  out.sc = src.final_counters;
  out.rw = dst.final_wire;
  out.sw = src.final_wire;
  out.dst_loop = loop_breakdown(dst);
  out.src_loop = loop_breakdown(src);
  return out;
}

std::string kib_text(double bytes) { return fmt("%.1f KiB", bytes / 1024.0); }

void add_fresh_rows(const std::string& fig, uint64_t origins, const Replication& r) {
  const uint64_t n = g_opt.updates;
  const TypeCount& upd = r.rw.in[5];
  const double frame_bytes = upd.frames ? static_cast<double>(upd.bytes) / static_cast<double>(upd.frames) : 0;
  progress("raw ZeroMQ: " + grouped(upd.frames) + " frames of " + kib_text(frame_bytes) + " DEALER->ROUTER");
  const double zmq_s = raw_zmq_seconds(static_cast<size_t>(frame_bytes), static_cast<size_t>(upd.frames));
  const double rate = static_cast<double>(r.done) / r.total_s;
  const double raw_lmdb = static_cast<double>(n) / *g_raw_lmdb_s, raw_zmq = static_cast<double>(r.done) / zmq_s;
  const std::string what = grouped(n) + " updates of " + std::to_string(origins) + " origin" + (origins > 1 ? "s" : "");
  const std::string finished = r.done == n ? time_text(r.total_s) + " end to end"
                                           : "NOT finished: " + grouped(r.done) + " of " + grouped(n) + " in " +
                                                 time_text(r.total_s) + ", then stopped";
  RowBuilder(fig, "fresh replication to an empty node, " + what + " (vs LMDB)")
      .measured(rate, "updates/s",
                rate_text(rate) + " (" + finished + "; first commit after " + time_text(r.first_s) + ", " +
                    rate_text(static_cast<double>(r.done) / (r.total_s - r.first_s)) + " from then; " +
                    grouped(r.commits) + " commits; state folded " + time_text(r.folded_s - r.total_s) +
                    " after the last commit)")
      .raw(raw_lmdb, "updates/s", rate_text(raw_lmdb) + " raw LMDB, 1000 updates/commit")
      .percent_of(rate / raw_lmdb, "raw")
      .goal(">= 50% of raw", r.done == n && rate >= 0.5 * raw_lmdb)
      .note("receiver: " + grouped(upd.frames) + " Updates frames (" + kib_text(frame_bytes) + " each), " +
            grouped(r.rw.out[4].frames) + " Requests; frames ZmqTransport dropped: " + dropped_text(r.rw) + "; " +
            r.dst_loop + "; source: " + r.src_loop + (r.done == n ? "; hash equal to the source's" : ""))
      .count("updates", static_cast<double>(r.done))
      .count("seconds", r.total_s)
      .count("commits", static_cast<double>(r.commits))
      .count("folded_after_s", r.folded_s - r.total_s)
      .count("raw_seconds", *g_raw_lmdb_s)
      .count("wire_bytes", static_cast<double>(r.rw.bytes_out() + r.sw.bytes_out()))
      .add();
  RowBuilder(fig, "fresh replication, " + what + " (vs ZeroMQ)")
      .measured(rate, "updates/s",
                rate_text(rate) + fmt(" (%.1f MiB/s of Updates frames)",
                                      static_cast<double>(upd.bytes) / r.total_s / (1024.0 * 1024.0)))
      .raw(raw_zmq, "updates/s",
           rate_text(raw_zmq) + " raw ZeroMQ: the same " + grouped(upd.frames) + " frames of " + kib_text(frame_bytes) +
               " in " + time_text(zmq_s))
      .percent_of(rate / raw_zmq, "raw")
      .note("source sent " + grouped(r.sw.out[5].frames) + " Updates frames; " + grouped(r.sc.updates_sent) +
            " updates served; receiver got " + grouped(r.rc.updates_received))
      .add();
}

std::string rates_text(const std::vector<double>& rates) {
  std::string out;
  for (double r : rates) out += (out.empty() ? "" : ", ") + rate_text(r);
  return out;
}

}  // namespace

void fig_verify() {
  const uint64_t n = g_opt.updates;
  Pair pair;
  const bool own_source = !g_pairs.count(1);
  if (own_source) {
    progress("figure 6: building a source node of " + grouped(n) + " updates from 1 origin (Node::ingest, untimed)");
    pair.origins = 1;
    pair.source_dir = build_source(1, "source");
  } else {
    pair = g_pairs[1];
  }
  progress("figure 6: replicating to an empty node, verifying and not, in turn (ABBA)");
  std::vector<double> rates[2];  // [verify]
  std::optional<Replication> best[2];
  for (bool verify : {false, true, true, false}) {
    const std::string dir = new_node_dir(std::string("receiver-") + (verify ? "verifying" : "not-verifying"), kCluster);
    Pair p = pair;
    Replication r = replicate(p, dir, /*capped=*/false, verify);
    std::filesystem::remove_all(dir);
    const double rate = static_cast<double>(r.done) / r.total_s;
    rates[verify].push_back(rate);
    if (!best[verify] || rate > static_cast<double>(best[verify]->done) / best[verify]->total_s) best[verify] = r;
  }
  if (own_source) std::filesystem::remove_all(pair.source_dir);
  const Replication &on = *best[1], &off = *best[0];
  const double on_rate = static_cast<double>(on.done) / on.total_s, off_rate = static_cast<double>(off.done) / off.total_s;
  RowBuilder("6", "fresh replication, " + grouped(n) + " updates of 1 origin, receiver verifying (vs not)")
      .measured(on_rate, "updates/s",
                rate_text(on_rate) + " (best of 2: " + rates_text(rates[1]) + "; " + time_text(on.total_s) +
                    " end to end, " + grouped(on.commits) + " commits)")
      .raw(off_rate, "updates/s",
           rate_text(off_rate) + " verify_origins off (best of 2: " + rates_text(rates[0]) + "; " +
               time_text(off.total_s) + ", " + grouped(off.commits) + " commits)")
      .percent_of(on_rate / off_rate, "unverified")
      .goal(">= 90% of unverified", on_rate / off_rate >= 0.9)
      .note("run order off, on, on, off; receiver verifying: " + on.dst_loop + "; not verifying: " + off.dst_loop +
            "; hashes equal to the source's")
      .add();
}

void fig_fresh(uint64_t origins, bool need_pair) {
  const uint64_t n = g_opt.updates;
  const std::string fig =
      origins == 1 ? "1" : origins == 10 ? "1b" : origins == 100 ? "1c" : "1-" + std::to_string(origins);
  const bool capped = origins > 1;  // only the 1-origin pair is needed whole by later figures
  Pair pair = build_pair(origins, fig, capped, need_pair);
  const std::string receiver_dir = new_node_dir("receiver-" + std::to_string(origins), kCluster);
  if (!capped) pair.receiver_dir = receiver_dir;

  // Raw LMDB: half before the replication and half after, so that both sides
  // of the ratio see the disk of the same minutes.
  const bool raw_here = !g_raw_lmdb_s;
  double raw_s = 0;
  if (raw_here) {
    progress("raw LMDB: " + grouped(n / 2) + " updates, 1000 per commit, log + index put (first half)");
    raw_s += raw_lmdb_seconds(n / 2, origins);
  }
  progress("figure " + fig + ": replicating to an empty node over loopback TCP" +
           (capped ? " (stopped after " + fmt("%.0f s", g_opt.fresh_cap_s) + ")" : ""));
  const Replication r = replicate(pair, receiver_dir, capped);
  if (capped && need_pair) {
    auto twin = open_read_only(pair.receiver_dir, "Node::open_read_only twin");
    if (twin->state_hash() != pair.hash) die("the twin's hash differs from the source's");
  }
  if (need_pair) {
    g_pairs[origins] = pair;
  } else {
    std::filesystem::remove_all(pair.source_dir);
    if (!pair.receiver_dir.empty()) std::filesystem::remove_all(pair.receiver_dir);
  }
  if (capped) std::filesystem::remove_all(receiver_dir);  // a partial copy, not needed again
  if (raw_here) {
    progress("raw LMDB: " + grouped(n - n / 2) + " updates (second half)");
    raw_s += raw_lmdb_seconds(n - n / 2, origins);
    g_raw_lmdb_s = raw_s;
  }
  add_fresh_rows(fig, origins, r);
}

}  // namespace replog::bench

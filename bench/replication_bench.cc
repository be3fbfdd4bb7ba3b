// replog_replication_bench: measures the replication figures of
// docs/BENCHMARKS.md ("Replication (gossip over ZeroMQ)") in one run, on
// loopback TCP (127.0.0.1 only), each set against raw limits measured in the
// same run (plain LMDB doing the same puts, plain ZeroMQ moving frames of the
// same size), and prints a table (or JSON with --json).
//
//   replog_replication_bench [--quick] [--dir DIR] [--only NAME[,NAME...]] [--json] [--keep]
//                            [--updates N] [--paths N] [--nodes N] [--rate N] [--seconds S]
//                            [--origins A,B,...] [--fresh-cap S] [--cli PATH]
//
// Figures (NAME for --only): fresh, insync, diff, memory, latency.
//   fresh    1M updates replicated from one node to an empty one (1, 10, 100 origins;
//            with more than one origin it is stopped after --fresh-cap s and
//            reported as not finished, with its rate so far)
//   insync   one anti-entropy exchange between two nodes that share 1M updates
//            (1 origin: the pair of `fresh`; more: the source and a twin that
//            Node::ingest built beside it)
//   diff     1M shared, then 10 new on each side made while they cannot talk
//   memory   RssAnon of a `replog node` process holding 1M updates, idle and in sync
//   latency  8 nodes, 200 calls/s each: commit on the origin -> commit+apply everywhere
// insync, diff and memory use the node pairs that `fresh` leaves behind, so
// they run it too. Goals are reported as met / NOT met; the program never
// fails because of one. It exits non-zero only when the library returns an
// error or a result is wrong (hashes that differ, an exchange that never ends).
//
// Every node, thread and child process it starts is stopped before it exits.
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "node/core/clock.h"
#include "node/core/hlc.h"
#include "node/api/local_api.h"
#include "node/engine/node.h"
#include "node/core/state.h"
#include "node/sync/sync_engine.h"
#include "node/sync/transport.h"
#include "node/sync/zmq_transport.h"
#include "protocol/msgpack_codec.h"
#include "replog/value.h"
#include "protocol/wire.h"
#include "protocol/update.h"
#include "storage/update_log.h"
#include "bench_common.h"

#ifndef REPLOG_CLI_PATH
#define REPLOG_CLI_PATH ""
#endif

namespace fs = std::filesystem;
using namespace replog;
using namespace replog::bench;

namespace {

// --- small helpers ------------------------------------------------------------------

using Steady = std::chrono::steady_clock;

double seconds_since(Steady::time_point t0) { return std::chrono::duration<double>(Steady::now() - t0).count(); }
double seconds_between(Steady::time_point a, Steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::vector<pid_t> g_children;  // `replog node` processes still running

void stop_child(pid_t pid) {
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 200; ++i) {  // up to 10 s for its checkpoint
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
}

Steady::time_point g_start = Steady::now();

void progress(const std::string& msg) { std::fprintf(stderr, "[%7.1fs] %s\n", seconds_since(g_start), msg.c_str()); }

std::string grouped(uint64_t v) { return replog::bench::grouped(static_cast<double>(v)); }

// --- options ------------------------------------------------------------------------

struct Options {
  bool quick = false;
  bool json = false;
  bool keep = false;
  std::string dir;
  std::set<std::string> only;
  uint64_t updates = 1'000'000;  // shared / replicated updates
  uint64_t paths = 10'000;
  int nodes = 8;                 // latency figure
  double rate = 200;             // calls/s per node
  double seconds = 30;           // latency figure duration
  double idle_s = 3;             // memory figure: idle time before reading /proc
  double fresh_timeout_s = 240;  // 1 origin: a replication that has not ended by then is an error
  double fresh_cap_s = 25;       // more origins: stopped after this long and reported as not finished
  std::vector<uint64_t> origins = {1, 10, 100};
  std::string cli = REPLOG_CLI_PATH;
};

Options g_opt;

bool wanted(const std::string& name) { return g_opt.only.empty() || g_opt.only.count(name) > 0; }

// --- the result table -----------------------------------------------------------------

std::vector<Row> g_rows;

void add_row(Row r) {
  progress("  => " + r.fig + " " + r.name + ": " + r.measured + (r.raw.empty() ? "" : " | raw " + r.raw) +
           (r.ratio.empty() ? "" : " | " + r.ratio) + (r.met < 0 ? "" : (r.met ? " | goal met" : " | goal NOT met")));
  g_rows.push_back(std::move(r));
}

// --- the workload -------------------------------------------------------------------

constexpr OriginId kOriginBase = 0x0b0b000000000001ULL;
constexpr OriginId kRawOrigin = 0x0d0d000000000001ULL;
const std::string kCluster = "b0b0b0b0-be7c-0001";  // every node of a run: one cluster

std::string path_text(uint64_t i) { return "bench.p" + std::to_string(i % g_opt.paths); }

std::string value_text(uint64_t i) {
  std::string s = "value-" + std::to_string(i) + "-";
  s.resize(100, 'x');
  return s;
}

Value set_value(uint64_t i) { return Value(Map{{"path", Value(path_text(i))}, {"value", Value(value_text(i))}}); }
std::string set_arg(uint64_t i) { return encode_msgpack(set_value(i)); }

// Timestamps start ten minutes in the past (inside the clock-skew check).
const uint64_t g_base_hlc = hlc::make(wall_ms() - 600'000, 0);

// Update i of a dataset of `origins` origins taking turns, hlc rising by one.
EncodedUpdate dataset_update(uint64_t i, uint64_t origins) {
  OriginId origin = kOriginBase + i % origins;
  uint64_t seq = i / origins + 1;
  return EncodedUpdate{UpdateId{g_base_hlc + i, origin}, encode_body(seq, "set", set_arg(i))};
}

// --- temp directories ---------------------------------------------------------------

std::string new_node_dir(const std::string& name) {
  std::string d = g_root + "/" + std::to_string(++g_dir_counter) + "-" + name;
  InitOptions io;
  io.dir = d;
  io.cluster = kCluster;
  check(Node::init(io), "Node::init " + name);
  return d;
}

uint64_t vector_total(const VersionVector& v) {
  uint64_t n = 0;
  for (const auto& [_, e] : v) n += e.seq;
  return n;
}

// --- a Transport that counts (and, for the stepped figures, holds or drops) -----------

// The message type of a frame [1, type, body] as the library encodes it; 0 if unreadable.
int frame_type(const std::string& bytes) {
  if (bytes.size() < 3 || static_cast<unsigned char>(bytes[0]) != 0x93 || bytes[1] != 0x01) return 0;
  int t = static_cast<unsigned char>(bytes[2]);
  return t >= 1 && t <= 6 ? t : 0;
}
const char* kTypeNames[] = {"other", "hello", "error", "vector", "request", "updates", "push"};

struct TypeCount {
  uint64_t frames = 0, bytes = 0;
};
struct WireCount {
  TypeCount out[7], in[7];
  uint64_t zmq_dropped[7] = {0, 0, 0, 0, 0, 0, 0};  // sent, but ZmqTransport dropped them
  uint64_t partition_dropped = 0;
  uint64_t frames_out() const {
    uint64_t n = 0;
    for (const auto& c : out) n += c.frames;
    return n;
  }
  uint64_t bytes_out() const {
    uint64_t n = 0;
    for (const auto& c : out) n += c.bytes;
    return n;
  }
  WireCount& operator+=(const WireCount& o) {
    for (int i = 0; i < 7; ++i) {
      out[i].frames += o.out[i].frames, out[i].bytes += o.out[i].bytes;
      in[i].frames += o.in[i].frames, in[i].bytes += o.in[i].bytes;
      zmq_dropped[i] += o.zmq_dropped[i];
    }
    partition_dropped += o.partition_dropped;
    return *this;
  }
};

class CountingTransport final : public Transport {
 public:
  explicit CountingTransport(ZmqTransport& inner) : inner_(inner) {}
  void connect(const std::string& endpoint) override { inner_.connect(endpoint); }
  void send(const Link& link, const std::string& bytes) override {
    if (partitioned_) {
      ++count_.partition_dropped;
      return;
    }
    auto& c = count_.out[frame_type(bytes)];
    ++c.frames;
    c.bytes += bytes.size();
    if (hold_) {
      outbox_.push_back({link, bytes});
      return;
    }
    const uint64_t dropped0 = inner_.dropped_frames();
    inner_.send(link, bytes);
    count_.zmq_dropped[frame_type(bytes)] += inner_.dropped_frames() - dropped0;
  }
  std::vector<Frame> poll(int timeout_ms) override {
    auto frames = inner_.poll(timeout_ms);
    for (const auto& f : frames) {
      auto& c = count_.in[frame_type(f.bytes)];
      ++c.frames;
      c.bytes += f.bytes.size();
    }
    return frames;
  }
  // Stepped mode: frames wait in the outbox until flush(); returns how many of
  // them ZeroMQ took (the rest it dropped).
  void set_hold(bool hold) { hold_ = hold; }
  void set_partitioned(bool p) { partitioned_ = p; }
  size_t flush() {
    size_t sent = 0;
    for (const auto& f : outbox_) {
      const uint64_t dropped0 = inner_.dropped_frames();
      inner_.send(f.link, f.bytes);
      const uint64_t dropped = inner_.dropped_frames() - dropped0;
      count_.zmq_dropped[frame_type(f.bytes)] += dropped;
      sent += dropped ? 0 : 1;
    }
    outbox_.clear();
    return sent;
  }
  size_t held() const { return outbox_.size(); }
  const WireCount& count() const { return count_; }
  void reset_count() { count_ = WireCount{}; }

 private:
  ZmqTransport& inner_;
  bool hold_ = false, partitioned_ = false;
  std::vector<Frame> outbox_;
  WireCount count_;
};

// --- one node: Node + ZmqTransport + SyncEngine -----------------------------------------

std::atomic<int> g_log_lines{0};

SyncEngine::Log engine_logger(const std::string& name) {
  return [name](int level, const std::string& line) {
    if (level > 1) return;
    if (++g_log_lines <= 20) progress("  [" + name + (level == 0 ? " error] " : " warn] ") + line);
  };
}

// Threaded (as daemon.cc does: its own event-loop thread polling every 5 ms)
// or stepped (the main thread drives on_frame/on_tick; frames are held and
// delivered hop by hop; the engine's clock is a ManualClock).
struct PeerNode {
  std::string name, dir, endpoint;
  std::unique_ptr<Node> node;
  std::unique_ptr<zmq::context_t> context;
  std::unique_ptr<ZmqTransport> zmq_transport;
  std::unique_ptr<CountingTransport> transport;
  SystemClock system_clock;
  std::unique_ptr<ManualClock> manual_clock;  // stepped mode
  std::unique_ptr<SyncEngine> engine;
  std::function<void(const std::vector<EncodedUpdate>&)> on_commit;  // set before open()
  std::thread loop;
  std::atomic<bool> stop{false};
  SyncCounters final_counters;  // read when the loop (or the node) stops
  WireCount final_wire;
  // Threaded mode: time the loop spent in on_frame, by message type, and in on_tick.
  double busy_s[7] = {0, 0, 0, 0, 0, 0, 0};
  uint64_t busy_frames[7] = {0, 0, 0, 0, 0, 0, 0};
  double tick_s = 0;
  Steady::time_point loop_started, loop_ended;

  void open(const std::string& d, const std::string& n) {
    dir = d;
    name = n;
    NodeOptions no;
    no.dir = dir;
    node = must(Node::open(no), "Node::open " + name);
    node->set_commit_listener([this](const std::vector<EncodedUpdate>& ups) {
      if (engine) engine->on_committed(ups);
      if (on_commit) on_commit(ups);
    });
    context = std::make_unique<zmq::context_t>(1);
    zmq_transport = std::make_unique<ZmqTransport>(*context);
    check(zmq_transport->listen("tcp://127.0.0.1:0"), "listen " + name);
    endpoint = zmq_transport->bound_endpoint();
    transport = std::make_unique<CountingTransport>(*zmq_transport);
  }

  SyncOptions sync_options(const std::vector<std::string>& peers, uint64_t seed) const {
    SyncOptions so;
    so.endpoint = endpoint;
    so.peers = peers;
    so.seed = seed;
    return so;
  }

  void start_threaded(const std::vector<std::string>& peers, uint64_t seed) {
    engine = std::make_unique<SyncEngine>(*node, *transport, system_clock, sync_options(peers, seed),
                                          engine_logger(name));
    loop = std::thread([this] {
      loop_started = Steady::now();
      engine->start();
      while (!stop.load()) {
        // As the daemon does: one poll's frames at once (their pushes are
        // stored together); the time is shared out evenly among the frames.
        auto frames = transport->poll(5);
        if (!frames.empty()) {
          auto t0 = Steady::now();
          engine->on_frames(frames);
          const double each = seconds_since(t0) / static_cast<double>(frames.size());
          for (const auto& f : frames) {
            const int t = frame_type(f.bytes);
            busy_s[t] += each;
            ++busy_frames[t];
          }
        }
        auto t0 = Steady::now();
        engine->on_tick();
        tick_s += seconds_since(t0);
      }
      final_counters = engine->counters();
      loop_ended = Steady::now();
    });
  }

  void start_stepped(const std::vector<std::string>& peers, uint64_t seed) {
    manual_clock = std::make_unique<ManualClock>(wall_ms());
    engine = std::make_unique<SyncEngine>(*node, *transport, *manual_clock, sync_options(peers, seed),
                                          engine_logger(name));
    engine->start();
  }

  // Stops the loop, the engine, the sockets and the node (which checkpoints).
  void close() {
    stop = true;
    if (loop.joinable()) loop.join();
    else if (engine) final_counters = engine->counters();
    if (transport) final_wire = transport->count();
    if (node) check(node->close(), "Node::close " + name);
    engine.reset();
    transport.reset();
    zmq_transport.reset();
    context.reset();  // waits out ZMQ_LINGER for anything unsent
    node.reset();
  }
  ~PeerNode() { close(); }
};

bool all_peers_ready(const SyncEngine& e, size_t expected) {
  auto ps = e.peers();
  size_t ready = 0;
  for (const auto& p : ps) ready += p.ready;
  return ready >= expected;
}

// --- raw references ---------------------------------------------------------------------

// Plain LMDB with the library's flags and the same two puts per update
// (16-byte key -> body in "log"; origin||seq -> key in "index"), 1000 per commit.
double raw_lmdb_seconds(uint64_t n, uint64_t origins) {
  std::string dir = fresh_dir("raw-lmdb");
  MDB_env* env = nullptr;
  MDB_dbi log = 0, index = 0;
  mdb_check(mdb_env_create(&env), "mdb_env_create");
  mdb_env_set_maxdbs(env, 4);
  mdb_check(mdb_env_set_mapsize(env, size_t{16} << 30), "mdb_env_set_mapsize");
  mdb_check(mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0600), "mdb_env_open");
  {
    MDB_txn* txn;
    mdb_check(mdb_txn_begin(env, nullptr, 0, &txn), "begin");
    mdb_check(mdb_dbi_open(txn, "log", MDB_CREATE, &log), "open log");
    mdb_check(mdb_dbi_open(txn, "index", MDB_CREATE, &index), "open index");
    mdb_check(mdb_txn_commit(txn), "commit");
  }
  double s = 0;
  std::vector<EncodedUpdate> batch;
  for (uint64_t i = 0; i < n; i += 1000) {
    batch.clear();
    for (uint64_t j = i; j < std::min(n, i + 1000); ++j) {
      batch.push_back(dataset_update(j, origins));
      batch.back().id.origin = kRawOrigin + j % origins;
    }
    auto t0 = Steady::now();
    MDB_txn* txn;
    mdb_check(mdb_txn_begin(env, nullptr, 0, &txn), "begin");
    for (size_t k = 0; k < batch.size(); ++k) {
      const auto& u = batch[k];
      auto key = u.id.key();
      MDB_val kv{key.size(), key.data()}, vv{u.body.size(), const_cast<char*>(u.body.data())};
      mdb_check(mdb_put(txn, log, &kv, &vv, MDB_NOOVERWRITE), "put log");
      char ik[16];
      put_u64_be(ik, u.id.origin);
      put_u64_be(ik + 8, (i + k) / origins + 1);
      MDB_val k2{sizeof ik, ik}, v2{key.size(), key.data()};
      mdb_check(mdb_put(txn, index, &k2, &v2, 0), "put index");
    }
    mdb_check(mdb_txn_commit(txn), "commit");
    s += seconds_since(t0);
  }
  mdb_env_close(env);
  fs::remove_all(dir);
  return s;
}

// Plain ZeroMQ: a DEALER sends `frames` frames of `frame_bytes` to a ROUTER
// over loopback TCP (the transport's socket options); seconds from the first
// send to the last receive, best of 3.
double raw_zmq_seconds(size_t frame_bytes, size_t frames) {
  double best = 1e9;
  for (int rep = 0; rep < 3; ++rep) {
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
    best = std::min(best, seconds_between(t0, t_end));
  }
  return best;
}

// --- figure 1: fresh replication ---------------------------------------------------------

struct Pair {
  uint64_t origins = 0;
  std::string source_dir, receiver_dir;
  std::string hash;
};
std::map<uint64_t, Pair> g_pairs;  // by origins
std::optional<double> g_raw_lmdb_s;

// A node holding the dataset, built through Node::ingest (batches of 1000, key order).
std::string build_source(uint64_t origins, const std::string& name) {
  std::string dir = new_node_dir(name + "-" + std::to_string(origins));
  NodeOptions no;
  no.dir = dir;
  auto node = must(Node::open(no), "Node::open source");
  std::vector<EncodedUpdate> batch;
  uint64_t accepted = 0;
  for (uint64_t i = 0; i < g_opt.updates; i += 1000) {
    batch.clear();
    for (uint64_t j = i; j < std::min(g_opt.updates, i + 1000); ++j) batch.push_back(dataset_update(j, origins));
    auto rep = must(node->ingest(std::move(batch)), "Node::ingest");
    if (!rep.refused.empty()) die("ingest refused: " + rep.refused.front());
    accepted += rep.accepted;
    batch = {};
  }
  if (accepted != g_opt.updates) die("source accepted " + grouped(accepted) + " updates");
  check(node->close(), "Node::close source");
  return dir;
}

double pct(std::vector<double>& v, double p) {  // v sorted
  if (v.empty()) return 0;
  size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) ;
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

std::string kib_text(double bytes) { return fmt("%.1f KiB", bytes / 1024.0); }

// "1 hello" / "none": the frames ZmqTransport dropped, by type.
std::string dropped_text(const WireCount& w) {
  std::string out;
  for (int t = 0; t < 7; ++t)
    if (w.zmq_dropped[t])
      out += std::string(out.empty() ? "" : ", ") + grouped(w.zmq_dropped[t]) + " " + kTypeNames[t];
  return out.empty() ? "none" : out;
}

std::string loop_breakdown(const PeerNode& p) {
  const double run = seconds_between(p.loop_started, p.loop_ended);
  double busy = p.tick_s;
  std::string parts;
  for (int t = 0; t < 7; ++t) {
    busy += p.busy_s[t];
    if (p.busy_frames[t] && p.busy_s[t] >= 0.01)
      parts += std::string(", ") + kTypeNames[t] + " " + time_text(p.busy_s[t]) + " (" + grouped(p.busy_frames[t]) +
               " frames)";
  }
  return fmt("event loop busy %.0f%%", 100 * busy / run) + " of " + time_text(run) + ": on_tick " + time_text(p.tick_s) +
         parts;
}

void fig_fresh(uint64_t origins, bool need_pair) {
  const uint64_t n = g_opt.updates;
  const std::string fig = origins == 1 ? "1" : origins == 10 ? "1b" : origins == 100 ? "1c" : "1-" + std::to_string(origins);
  const bool capped = origins > 1;  // only the 1-origin pair is needed whole by later figures
  Pair pair;
  pair.origins = origins;
  if (capped && need_pair) {
    // A second node with the same updates, for figure 2 (built beside the
    // source, in key order; the replication below may be stopped early).
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
  const std::string receiver_dir = new_node_dir("receiver-" + std::to_string(origins));
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
  double total_s = 0, first_s = 0;
  uint64_t commits = 0, done = 0;
  SyncCounters rc, sc;
  WireCount rw, sw;
  std::string dst_loop, src_loop;
  {
    PeerNode src, dst;
    std::atomic<uint64_t> got{0};
    std::atomic<int64_t> first_ns{0}, last_ns{0};
    dst.on_commit = [&](const std::vector<EncodedUpdate>& ups) {
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
    src.start_threaded({}, 11 + origins);
    dst.start_threaded({src.endpoint}, 12 + origins);
    while (got.load() < n) {
      if (capped && seconds_since(t0) > g_opt.fresh_cap_s) break;
      if (seconds_since(t0) > g_opt.fresh_timeout_s)
        die("replication did not finish in " + fmt("%.0f s", g_opt.fresh_timeout_s) + ": " + grouped(got.load()) +
            " of " + grouped(n) + " updates arrived");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    dst.stop = true;  // stop pulling; what is committed so far counts
    if (dst.loop.joinable()) dst.loop.join();
    const auto at = [](int64_t ns) { return Steady::time_point(Steady::duration(ns)); };
    done = got.load();
    total_s = seconds_between(t0, at(last_ns.load()));
    first_s = seconds_between(t0, at(first_ns.load()));
    commits = last_txnid(*dst.node) - txn0;
    pair.hash = src.node->state_hash();
    if (done == n && dst.node->state_hash() != pair.hash) die("receiver's hash differs from the source's after replication");
    if (vector_total(dst.node->vector()) != done) die("receiver's vector does not match what it committed");
    src.close();
    dst.close();
    rc = dst.final_counters;
    sc = src.final_counters;
    rw = dst.final_wire;
    sw = src.final_wire;
    dst_loop = loop_breakdown(dst);
    src_loop = loop_breakdown(src);
  }
  if (capped && need_pair) {
    NodeOptions no;
    no.dir = pair.receiver_dir;
    auto twin = must(Node::open_read_only(no), "Node::open_read_only twin");
    if (twin->state_hash() != pair.hash) die("the twin's hash differs from the source's");
  }
  if (need_pair) {
    g_pairs[origins] = pair;
  } else {
    fs::remove_all(pair.source_dir);
    if (!pair.receiver_dir.empty()) fs::remove_all(pair.receiver_dir);
  }
  if (capped) fs::remove_all(receiver_dir);  // a partial copy, not needed again
  if (raw_here) {
    progress("raw LMDB: " + grouped(n - n / 2) + " updates (second half)");
    raw_s += raw_lmdb_seconds(n - n / 2, origins);
    g_raw_lmdb_s = raw_s;
  }

  const TypeCount& upd = rw.in[5];
  const double frame_bytes = upd.frames ? static_cast<double>(upd.bytes) / static_cast<double>(upd.frames) : 0;
  progress("raw ZeroMQ: " + grouped(upd.frames) + " frames of " + kib_text(frame_bytes) + " DEALER->ROUTER");
  const double zmq_s = raw_zmq_seconds(static_cast<size_t>(frame_bytes), static_cast<size_t>(upd.frames));
  const double rate = static_cast<double>(done) / total_s;
  const double raw_lmdb = static_cast<double>(n) / *g_raw_lmdb_s, raw_zmq = static_cast<double>(done) / zmq_s;
  const std::string what = grouped(n) + " updates of " + std::to_string(origins) + " origin" + (origins > 1 ? "s" : "");
  const std::string finished =
      done == n ? time_text(total_s) + " end to end"
                : "NOT finished: " + grouped(done) + " of " + grouped(n) + " in " + time_text(total_s) + ", then stopped";

  Row r;
  r.fig = fig;
  r.name = "fresh replication to an empty node, " + what + " (vs LMDB)";
  r.value = rate;
  r.unit = "updates/s";
  r.measured = rate_text(rate) + " (" + finished + "; first commit after " + time_text(first_s) + ", " +
               rate_text(static_cast<double>(done) / (total_s - first_s)) + " from then; " + grouped(commits) +
               " commits)";
  r.raw_value = raw_lmdb;
  r.raw_unit = "updates/s";
  r.raw = rate_text(raw_lmdb) + " raw LMDB, 1000 updates/commit";
  r.ratio_value = rate / raw_lmdb;
  r.ratio = fmt("%.1f%% of raw", 100 * r.ratio_value);
  r.goal = ">= 500,000/s";
  r.met = done == n && rate >= 500'000;
  r.note = "receiver: " + grouped(upd.frames) + " Updates frames (" + kib_text(frame_bytes) + " each), " +
           grouped(rw.out[4].frames) + " Requests; frames ZmqTransport dropped: " + dropped_text(rw) + "; " +
           dst_loop + "; source: " + src_loop +
           (done == n ? "; hash equal to the source's" : "");
  add_row(r);

  Row q;
  q.fig = fig;
  q.name = "fresh replication, " + what + " (vs ZeroMQ)";
  q.value = rate;
  q.unit = "updates/s";
  q.measured = rate_text(rate) + fmt(" (%.1f MiB/s of Updates frames)",
                                     static_cast<double>(upd.bytes) / total_s / (1024.0 * 1024.0));
  q.raw_value = raw_zmq;
  q.raw_unit = "updates/s";
  q.raw = rate_text(raw_zmq) + " raw ZeroMQ: the same " + grouped(upd.frames) + " frames of " + kib_text(frame_bytes) +
          " in " + time_text(zmq_s);
  q.ratio_value = rate / raw_zmq;
  q.ratio = fmt("%.1f%% of raw", 100 * q.ratio_value);
  q.note = "source sent " + grouped(sw.out[5].frames) + " Updates frames; " + grouped(sc.updates_sent) +
           " updates served; receiver got " + grouped(rc.updates_received);
  add_row(q);
}

// --- stepped pairs: figures 2 and 3 ----------------------------------------------------------
//
// Both engines run on this thread with a ManualClock each. Frames an engine
// sends are held by its CountingTransport; a hop sends every held frame over
// the real ZeroMQ sockets (loopback TCP), waits until each has arrived, and
// hands them to the receiving engine. A round trip is two hops.

struct StepPair {
  PeerNode a, b;  // a connects to b; b connects back (on a's Hello)

  void tick_both() {
    a.engine->on_tick();
    b.engine->on_tick();
  }

  // Real time: clocks follow the wall clock, frames go out at once.
  void pump_realtime(double seconds) {
    auto t0 = Steady::now();
    while (seconds_since(t0) < seconds) {
      for (PeerNode* p : {&a, &b}) {
        p->manual_clock->set(std::max(p->manual_clock->now_millis(), wall_ms()));
        for (const auto& f : p->transport->poll(1)) p->engine->on_frame(f);
        p->engine->on_tick();
      }
    }
  }

  void open(const Pair& pair, uint64_t seed) {
    a.open(pair.source_dir, "A");
    b.open(pair.receiver_dir, "B");
    b.start_stepped({}, seed + 1);
    a.start_stepped({b.endpoint}, seed);
    auto t0 = Steady::now();
    while (!(all_peers_ready(*a.engine, 1) && all_peers_ready(*b.engine, 1))) {
      if (seconds_since(t0) > 15) die("stepped pair: no handshake within 15 s");
      pump_realtime(0.05);
    }
    pump_realtime(0.3);  // the vectors each side sends after its handshake
    a.transport->set_hold(true);
    b.transport->set_hold(true);
    // Fire both anti-entropy timers once, so that b's does not fire during a
    // measurement (the next one is >= anti_entropy_ms / 2 away).
    const int64_t jump = SyncOptions{}.anti_entropy_ms * 3 / 2 + 1;
    a.manual_clock->advance(jump);
    b.manual_clock->advance(jump);
    tick_both();
    run_hops([](int) {});
  }

  // One hop; returns the frames delivered.
  size_t hop() {
    const size_t to_b = a.transport->flush(), to_a = b.transport->flush();
    std::vector<Frame> at_a, at_b;
    auto t0 = Steady::now();
    while (at_a.size() < to_a || at_b.size() < to_b) {
      if (seconds_since(t0) > 10) die("stepped pair: frames sent but not received within 10 s");
      for (auto& f : a.transport->poll(at_a.size() < to_a ? 1 : 0)) at_a.push_back(std::move(f));
      for (auto& f : b.transport->poll(at_b.size() < to_b ? 1 : 0)) at_b.push_back(std::move(f));
    }
    for (const auto& f : at_a) a.engine->on_frame(f);
    for (const auto& f : at_b) b.engine->on_frame(f);
    tick_both();  // clocks do not move: no timer fires
    return at_a.size() + at_b.size();
  }

  // Hops until nothing is held; calls after(hop number) after each; returns hops.
  int run_hops(const std::function<void(int)>& after) {
    int hops = 0;
    while (a.transport->held() + b.transport->held() > 0) {
      if (hops > 64) die("stepped pair: the exchange did not end after 64 hops");
      if (hop() > 0) ++hops;
      after(hops);
    }
    return hops;
  }

  void close() {
    a.close();
    b.close();
  }
};

struct InsyncResult {
  uint64_t origins = 0;
  int hops = 0;
  uint64_t frames = 0, bytes = 0, engine_bytes = 0, engine_frames = 0;
};
std::vector<InsyncResult> g_insync;

// One anti-entropy round of a, on a pair already in sync.
InsyncResult measure_insync(StepPair& sp, uint64_t origins) {
  sp.a.transport->reset_count();
  sp.b.transport->reset_count();
  SyncCounters ca = sp.a.engine->counters(), cb = sp.b.engine->counters();
  const int64_t jump = SyncOptions{}.anti_entropy_ms * 3 / 2 + 1;
  sp.a.manual_clock->advance(jump);
  sp.a.engine->on_tick();  // a's round: its vector to b
  InsyncResult r;
  r.origins = origins;
  r.hops = sp.run_hops([](int) {});
  WireCount w = sp.a.transport->count();
  w += sp.b.transport->count();
  r.frames = w.frames_out();
  r.bytes = w.bytes_out();
  SyncCounters ca2 = sp.a.engine->counters(), cb2 = sp.b.engine->counters();
  r.engine_bytes = (ca2.bytes_out - ca.bytes_out) + (cb2.bytes_out - cb.bytes_out);
  r.engine_frames = (ca2.frames_out - ca.frames_out) + (cb2.frames_out - cb.frames_out);
  if (r.engine_bytes != r.bytes) die("SyncEngine counted " + grouped(r.engine_bytes) + " bytes out, the wire " + grouped(r.bytes));
  for (int t = 1; t < 7; ++t)
    if (t != 3 && w.out[t].frames) die(std::string("in-sync check sent a ") + kTypeNames[t] + " frame");
  return r;
}

void add_insync_row(const InsyncResult& r) {
  Row row;
  row.fig = "2";
  row.name = "in-sync check, " + grouped(g_opt.updates) + " shared, " + std::to_string(r.origins) + " origin" +
             (r.origins > 1 ? "s" : "") + ": one anti-entropy exchange";
  row.value = static_cast<double>(r.bytes);
  row.unit = "bytes";
  row.measured = fmt("%.0f round trip", r.hops / 2.0) + (r.hops > 2 ? "s" : "") + ", " + grouped(r.frames) +
                 " frames, " + grouped(r.bytes) + " bytes";
  row.raw_value = static_cast<double>(r.origins);
  row.raw_unit = "origins";
  row.raw = std::to_string(r.origins) + " origin" + (r.origins > 1 ? "s" : "") + " in each vector";
  row.ratio_value = static_cast<double>(r.bytes) / static_cast<double>(r.origins);
  row.ratio = fmt("%.1f bytes/origin", row.ratio_value);
  row.goal = "1 round trip, bytes ~ origins";
  row.met = r.hops <= 2;
  row.note = "SyncEngine::counters() agree: " + grouped(r.engine_frames) + " frames, " + grouped(r.engine_bytes) + " bytes";
  add_row(row);
}

// Proportional to the number of origins: a Vector frame is 8-10 bytes of
// framing plus one [origin, seq] entry per origin, at most 19 bytes
// (MessagePack picks the integer widths), so one exchange (two vectors) is at
// most 2 x (10 + 19 x origins) bytes.
void add_insync_linearity() {
  if (g_insync.size() < 2) return;
  std::sort(g_insync.begin(), g_insync.end(), [](auto& x, auto& y) { return x.origins < y.origins; });
  const auto &s = g_insync.front(), &l = g_insync.back();
  std::string per;
  bool within = true;
  for (const auto& r : g_insync) {
    per += std::string(per.empty() ? "" : ", ") + std::to_string(r.origins) + ": " + grouped(r.bytes) + " B";
    within = within && r.bytes <= 2 * (10 + 19 * r.origins);
  }
  const double slope = static_cast<double>(l.bytes - s.bytes) / static_cast<double>(l.origins - s.origins);
  Row row;
  row.fig = "2";
  row.name = "in-sync check: bytes against origins";
  row.value = slope;
  row.unit = "bytes/origin";
  row.measured = per + fmt(" (%.1f bytes per added origin, ", slope) + std::to_string(s.origins) + "->" +
                 std::to_string(l.origins) + ")";
  row.raw_value = 2 * 19;
  row.raw_unit = "bytes/origin";
  row.raw = "bound 2 x (10 + 19 x origins): two vectors of [origin, seq] entries";
  row.ratio_value = slope / (2 * 19);
  row.ratio = fmt("%.2fx of the bound's slope", row.ratio_value);
  row.goal = "proportional to origins";
  row.met = within;
  add_row(row);
}

// Figure 3 on a pair in sync: 10 calls on each side while frames are dropped,
// then one anti-entropy round of a.
void measure_diff(StepPair& sp) {
  const int k = 10;
  progress("figure 3: " + std::to_string(k) + " new calls on each side while they cannot talk, then one round");
  sp.a.transport->set_partitioned(true);
  sp.b.transport->set_partitioned(true);
  for (int i = 0; i < k; ++i) {
    must(sp.a.node->call("set", set_value(50'000'000 + i)), "Node::call on A");
    must(sp.b.node->call("set", set_value(60'000'000 + i)), "Node::call on B");
  }
  // Let the coalesced pushes go out (into the partition).
  sp.a.manual_clock->advance(10);
  sp.b.manual_clock->advance(10);
  sp.tick_both();
  const uint64_t lost = sp.a.transport->count().partition_dropped + sp.b.transport->count().partition_dropped;
  sp.a.transport->set_partitioned(false);
  sp.b.transport->set_partitioned(false);

  const OriginId ida = sp.a.node->node_id(), idb = sp.b.node->node_id();
  auto bodies = must(sp.a.node->read_range(ida, 1, k, size_t{1} << 20), "read_range A");
  auto bodies_b = must(sp.b.node->read_range(idb, 1, k, size_t{1} << 20), "read_range B");
  uint64_t body_bytes = 0;
  for (const auto& u : bodies) body_bytes += u.body.size();
  for (const auto& u : bodies_b) body_bytes += u.body.size();
  if (bodies.size() != static_cast<size_t>(k) || bodies_b.size() != static_cast<size_t>(k))
    die("the new calls are not in the logs");

  sp.a.transport->reset_count();
  sp.b.transport->reset_count();
  auto holds = [](Node& node, OriginId origin, uint64_t seq) {
    auto v = node.vector();
    auto it = v.find(origin);
    return it != v.end() && it->second.seq >= seq;
  };
  int done_a = -1, done_b = -1;
  const int64_t jump = SyncOptions{}.anti_entropy_ms * 3 / 2 + 1;
  sp.a.manual_clock->advance(jump);
  sp.a.engine->on_tick();
  const int hops = sp.run_hops([&](int h) {
    if (done_a < 0 && holds(*sp.a.node, idb, k)) done_a = h;
    if (done_b < 0 && holds(*sp.b.node, ida, k)) done_b = h;
  });
  if (done_a < 0 || done_b < 0) die("small diff: the exchange ended before both sides held all 20 updates");
  if (sp.a.node->state_hash() != sp.b.node->state_hash()) die("small diff: hashes differ after the exchange");
  WireCount w = sp.a.transport->count();
  w += sp.b.transport->count();
  const uint64_t bytes = w.bytes_out(), frames = w.frames_out();
  std::string by_type;
  for (int t = 1; t < 7; ++t)
    if (w.out[t].frames)
      by_type += std::string(by_type.empty() ? "" : ", ") + grouped(w.out[t].frames) + " " + kTypeNames[t] + " (" +
                 grouped(w.out[t].bytes) + " B)";
  const int rt = (std::max(done_a, done_b) + 1) / 2;

  Row r;
  r.fig = "3a";
  r.name = "small diff (" + grouped(g_opt.updates) + " shared, " + std::to_string(k) + " new on each side): round trips";
  r.value = rt;
  r.unit = "round trips";
  r.measured = std::to_string(rt) + " round trips (A complete after " + std::to_string(done_a) + " hops, B after " +
               std::to_string(done_b) + "; exchange ended after " + std::to_string(hops) + " hops)";
  r.raw = "";
  r.goal = "<= 2 round trips";
  r.met = rt <= 2;
  r.note = std::to_string(lost) + " frames (the pushes) dropped while they could not talk; hashes equal after";
  add_row(r);

  Row q;
  q.fig = "3b";
  q.name = "small diff: wire bytes beyond the 20 update bodies";
  q.value = static_cast<double>(bytes - body_bytes);
  q.unit = "bytes";
  q.measured = grouped(bytes - body_bytes) + " bytes (" + grouped(bytes) + " in " + grouped(frames) + " frames: " +
               by_type + ")";
  q.raw_value = static_cast<double>(body_bytes);
  q.raw_unit = "bytes";
  q.raw = grouped(body_bytes) + " bytes of update bodies";
  q.ratio_value = static_cast<double>(bytes) / static_cast<double>(body_bytes);
  q.ratio = fmt("%.2fx bodies", q.ratio_value);
  q.goal = "<= 2 KiB (2,048 bytes)";
  q.met = bytes - body_bytes <= 2048;
  add_row(q);
}

void fig_insync_and_diff(const std::vector<uint64_t>& origin_cases, bool insync, bool diff) {
  for (uint64_t origins : origin_cases) {
    Pair& pair = g_pairs.at(origins);
    progress(std::string("figure ") + (insync ? "2" : "3") + ": stepped pair sharing " + grouped(g_opt.updates) +
             " updates of " + std::to_string(origins) + " origin(s)");
    StepPair sp;
    sp.open(pair, 100 + origins);
    if (insync) {
      auto r = measure_insync(sp, origins);
      g_insync.push_back(r);
      add_insync_row(r);
    }
    if (diff && origins == 1) {
      measure_diff(sp);
      pair.hash = sp.a.node->state_hash();
    }
    sp.close();
  }
  if (insync) add_insync_linearity();
}

// --- figure 5: memory of `replog node` processes -------------------------------------------------

pid_t spawn(const std::vector<std::string>& argv, const std::string& err_file) {
  pid_t pid = ::fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    int fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null = ::open("/dev/null", O_WRONLY);
    if (fd >= 0) ::dup2(fd, 2);
    if (null >= 0) ::dup2(null, 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  g_children.push_back(pid);
  return pid;
}

void reap(pid_t pid) {
  stop_child(pid);
  g_children.erase(std::remove(g_children.begin(), g_children.end(), pid), g_children.end());
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The endpoint a `replog node` logged ("... listening on tcp://127.0.0.1:PORT (...").
std::string wait_listening(pid_t pid, const std::string& err_file) {
  auto t0 = Steady::now();
  while (seconds_since(t0) < 30) {
    std::string text = read_text(err_file);
    auto at = text.find("listening on ");
    if (at != std::string::npos) {
      auto start = at + 13, end = text.find_first_of(" \n", start);
      if (end != std::string::npos) return text.substr(start, end - start);
    }
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      g_children.erase(std::remove(g_children.begin(), g_children.end(), pid), g_children.end());
      die("replog node exited early:\n" + text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  die("replog node did not start listening within 30 s");
}

std::unique_ptr<ApiClient> wait_api(const std::string& dir, zmq::context_t& ctx) {
  auto t0 = Steady::now();
  while (seconds_since(t0) < 30) {
    if (auto c = ApiClient::connect_if_running(dir, ctx)) return c;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  die("no local API for " + dir + " within 30 s");
}

struct ApiStatus {
  uint64_t updates = 0;
  std::string hash;
  bool in_sync = false;  // every peer ready, nothing lacking either way
};

ApiStatus api_status(ApiClient& api) {
  Value st = must(api.request("status", Value(), 10'000), "local API status");
  ApiStatus s;
  s.updates = static_cast<uint64_t>(st.find("updates")->as_int());
  s.hash = st.find("state_hash")->as_string();
  const auto& peers = st.find("peers")->as_list();
  s.in_sync = !peers.empty();
  for (const auto& p : peers)
    if (!p.find("ready")->as_bool() || p.find("we_lack")->as_int() != 0 || p.find("they_lack")->as_int() != 0)
      s.in_sync = false;
  return s;
}

void fig_memory() {
  if (g_opt.cli.empty() || ::access(g_opt.cli.c_str(), X_OK) != 0) {
    progress("figure 5 skipped: the replog program is not at '" + g_opt.cli + "' (use --cli PATH)");
    return;
  }
  Pair& pair = g_pairs.at(1);
  size_t state_bytes = 0;
  uint64_t held = 0;
  {
    NodeOptions no;
    no.dir = pair.receiver_dir;
    auto node = must(Node::open_read_only(no), "Node::open_read_only");
    node->read([&](const State& s) { state_bytes = s.encode().size(); });
    held = vector_total(node->vector());
    if (node->state_hash() != pair.hash) die("figure 5: the receiver's stored state is not the one measured");
  }
  progress("figure 5: two `replog node` processes holding " + grouped(held) + " updates, until in sync and idle");
  const std::string err_a = g_root + "/node-source.log", err_b = g_root + "/node-receiver.log";
  pid_t pa = spawn({g_opt.cli, "node", "--data", pair.source_dir, "--listen", "tcp://127.0.0.1:0", "--insecure"}, err_a);
  std::string ep = wait_listening(pa, err_a);
  pid_t pb = spawn({g_opt.cli, "node", "--data", pair.receiver_dir, "--listen", "tcp://127.0.0.1:0", "--peer", ep,
                    "--insecure"},
                   err_b);
  wait_listening(pb, err_b);
  zmq::context_t ctx(1);
  auto api_a = wait_api(pair.source_dir, ctx), api_b = wait_api(pair.receiver_dir, ctx);
  auto t0 = Steady::now();
  ApiStatus sa, sb;
  while (true) {
    sa = api_status(*api_a);
    sb = api_status(*api_b);
    if (sa.in_sync && sb.in_sync && sa.hash == sb.hash && sa.updates == held && sb.updates == held) break;
    if (seconds_since(t0) > 30) die("figure 5: the two processes are not in sync after 30 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double sync_s = seconds_since(t0);
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(g_opt.idle_s * 1000)));
  sa = api_status(*api_a);
  sb = api_status(*api_b);
  if (!(sa.in_sync && sb.in_sync && sa.hash == sb.hash && sa.hash == pair.hash))
    die("figure 5: the processes are no longer in sync while idle");
  struct Mem {
    double anon, file, hwm;
  };
  auto mem = [](pid_t pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/status";
    return Mem{status_kib(path, "RssAnon") * 1024.0, status_kib(path, "RssFile") * 1024.0,
               status_kib(path, "VmHWM") * 1024.0};
  };
  Mem ma = mem(pa), mb = mem(pb);
  api_a.reset();
  api_b.reset();
  reap(pb);
  reap(pa);
  const double limit = 64.0 * 1024 * 1024 + static_cast<double>(state_bytes);
  for (auto [who, m] : {std::pair{"receiver", mb}, std::pair{"source", ma}}) {
    Row r;
    r.fig = "5";
    r.name = std::string("RssAnon of `replog node` (") + who + "), " + grouped(held) + " updates, idle, in sync";
    r.value = m.anon;
    r.unit = "bytes";
    r.measured = mib_text(m.anon) + " (VmHWM " + mib_text(m.hwm) + ", RssFile " + mib_text(m.file) + "; idle " +
                 fmt("%.0f s", g_opt.idle_s) + ")";
    r.raw_value = static_cast<double>(state_bytes);
    r.raw_unit = "bytes";
    r.raw = mib_text(static_cast<double>(state_bytes)) + " State::encode()";
    r.ratio_value = m.anon / static_cast<double>(state_bytes);
    r.ratio = fmt("%.1fx state size", r.ratio_value);
    r.goal = "< 64 MiB + state = " + mib_text(limit);
    r.met = m.anon < limit;
    r.note = "in sync " + time_text(sync_s) + " after the API answered; hashes equal";
    add_row(r);
  }
}

// --- figure 4: 8 nodes, steady calls -------------------------------------------------------------

struct Recorder {
  std::mutex mu;
  std::vector<std::pair<UpdateId, int64_t>> at;  // committed (and applied) here, steady ns
  std::atomic<uint64_t> count{0};
};

struct IdHash {
  size_t operator()(const UpdateId& id) const { return std::hash<uint64_t>()(id.hlc * 0x9e3779b97f4a7c15ULL ^ id.origin); }
};

void fig_latency() {
  const int nn = g_opt.nodes;
  progress("figure 4: " + std::to_string(nn) + " nodes on loopback, " + fmt("%.0f", g_opt.rate) + " calls/s each for " +
           fmt("%.0f s", g_opt.seconds));
  std::vector<std::unique_ptr<PeerNode>> nodes;
  std::vector<std::unique_ptr<Recorder>> rec;
  for (int i = 0; i < nn; ++i) {
    nodes.push_back(std::make_unique<PeerNode>());
    rec.push_back(std::make_unique<Recorder>());
    Recorder* r = rec.back().get();
    nodes.back()->on_commit = [r](const std::vector<EncodedUpdate>& ups) {
      int64_t now = Steady::now().time_since_epoch().count();
      std::lock_guard<std::mutex> l(r->mu);
      for (const auto& u : ups) r->at.emplace_back(u.id, now);
      r->count += ups.size();
    };
    nodes.back()->open(new_node_dir("mesh-" + std::to_string(i)), "n" + std::to_string(i));
  }
  std::vector<std::string> eps;
  for (auto& n : nodes) eps.push_back(n->endpoint);
  for (int i = 0; i < nn; ++i) {
    std::vector<std::string> peers;
    for (int j = 0; j < nn; ++j)
      if (j != i) peers.push_back(eps[static_cast<size_t>(j)]);
    nodes[static_cast<size_t>(i)]->start_threaded(peers, 1000 + static_cast<uint64_t>(i));
  }
  auto t_wait = Steady::now();
  while (true) {
    bool ok = true;
    for (auto& n : nodes) ok = ok && all_peers_ready(*n->engine, static_cast<size_t>(nn - 1));
    if (ok) break;
    if (seconds_since(t_wait) > 20) die("figure 4: the mesh did not handshake within 20 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  progress("  mesh ready after " + time_text(seconds_since(t_wait)) + "; calling");
  std::vector<uint64_t> txn0;
  for (auto& n : nodes) txn0.push_back(last_txnid(*n->node));

  const auto interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / g_opt.rate));
  const auto t0 = Steady::now() + std::chrono::milliseconds(50);
  const auto t_end = t0 + std::chrono::milliseconds(static_cast<int64_t>(g_opt.seconds * 1000));
  std::vector<std::vector<double>> call_s(static_cast<size_t>(nn));
  std::vector<std::thread> callers;
  for (int i = 0; i < nn; ++i) {
    callers.emplace_back([&, i] {
      Node& node = *nodes[static_cast<size_t>(i)]->node;
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
  const double call_window = seconds_since(t0);
  uint64_t total = 0;
  for (auto& v : call_s) total += v.size();
  auto t_conv = Steady::now();
  while (true) {
    bool all = true;
    for (auto& r : rec) all = all && r->count.load() >= total;
    if (all) break;
    if (seconds_since(t_conv) > 60) {
      std::string counts;
      for (auto& r : rec) counts += " " + grouped(r->count.load());
      die("figure 4: not every node holds the " + grouped(total) + " calls 60 s after the last one:" + counts);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::string hash0 = nodes[0]->node->state_hash();
  for (auto& n : nodes)
    if (n->node->state_hash() != hash0) die("figure 4: hashes differ after every node holds every call");

  SyncCounters sum;
  WireCount wire;
  std::vector<OriginId> ids;
  uint64_t commits = 0;
  for (size_t i = 0; i < nodes.size(); ++i) commits += last_txnid(*nodes[i]->node) - txn0[i];
  for (auto& n : nodes) ids.push_back(n->node->node_id());
  double busy = 0, run = 0, push_s = 0;
  uint64_t push_frames = 0;
  for (auto& n : nodes) {
    n->close();
    for (int t = 0; t < 7; ++t) busy += n->busy_s[t];
    busy += n->tick_s;
    run += seconds_between(n->loop_started, n->loop_ended);
    push_s += n->busy_s[6];
    push_frames += n->busy_frames[6];
    const auto& c = n->final_counters;
    sum.frames_out += c.frames_out, sum.bytes_out += c.bytes_out, sum.updates_received += c.updates_received;
    sum.refused_updates += c.refused_updates, sum.bad_frames += c.bad_frames;
    wire += n->final_wire;
  }

  // Latencies from the commit listeners' timestamps (one process, one steady clock).
  std::unordered_map<UpdateId, int64_t, IdHash> origin_at;
  int64_t last_origin = 0, last_any = 0;
  for (int i = 0; i < nn; ++i)
    for (const auto& [id, t] : rec[static_cast<size_t>(i)]->at)
      if (id.origin == ids[static_cast<size_t>(i)]) {
        origin_at[id] = t;
        last_origin = std::max(last_origin, t);
      }
  if (origin_at.size() != total) die("figure 4: origins recorded " + grouped(origin_at.size()) + " calls of " + grouped(total));
  std::unordered_map<UpdateId, int64_t, IdHash> slowest;
  std::vector<double> each;
  each.reserve(total * static_cast<size_t>(nn - 1));
  for (int i = 0; i < nn; ++i)
    for (const auto& [id, t] : rec[static_cast<size_t>(i)]->at) {
      last_any = std::max(last_any, t);
      if (id.origin == ids[static_cast<size_t>(i)]) continue;
      auto o = origin_at.find(id);
      if (o == origin_at.end()) die("figure 4: an update no origin committed");
      each.push_back(static_cast<double>(t - o->second) * 1e-9);
      auto& s = slowest[id];
      s = std::max(s, t);
    }
  std::vector<double> all;
  all.reserve(slowest.size());
  for (const auto& [id, t] : slowest) all.push_back(static_cast<double>(t - origin_at[id]) * 1e-9);
  std::sort(each.begin(), each.end());
  std::sort(all.begin(), all.end());
  std::vector<double> calls;
  for (auto& v : call_s) calls.insert(calls.end(), v.begin(), v.end());
  std::sort(calls.begin(), calls.end());
  const double conv = static_cast<double>(last_any - last_origin) * 1e-9;
  const double deliveries = static_cast<double>(total) * (nn - 1);
  const std::string setup = std::to_string(nn) + " nodes x " + fmt("%.0f calls/s", g_opt.rate) + ", " +
                            fmt("%.0f s", g_opt.seconds);
  const std::string call_raw = "Node::call on the origin (1 durable commit): p50 " + time_text(pct(calls, 50)) +
                               ", p99 " + time_text(pct(calls, 99));

  Row r;
  r.fig = "4a";
  r.name = "commit on origin -> commit+apply on every other node (" + setup + ")";
  r.value = pct(all, 99);
  r.unit = "s";
  r.measured = "p50 " + time_text(pct(all, 50)) + ", p99 " + time_text(pct(all, 99)) + ", max " + time_text(all.back()) +
               " (" + grouped(total) + " calls, " + rate_text(static_cast<double>(total) / call_window) + ")";
  r.raw_value = pct(calls, 50);
  r.raw_unit = "s";
  r.raw = call_raw;
  r.ratio_value = pct(all, 99) / pct(calls, 99);
  r.ratio = fmt("p99 %.1fx call p99", r.ratio_value);
  r.goal = "p99 < 100 ms";
  r.met = pct(all, 99) < 0.1;
  add_row(r);

  Row q;
  q.fig = "4b";
  q.name = "the same per (call, receiving node)";
  q.value = pct(each, 99);
  q.unit = "s";
  q.measured = "p50 " + time_text(pct(each, 50)) + ", p99 " + time_text(pct(each, 99)) + ", max " +
               time_text(each.back()) + " (" + grouped(each.size()) + " deliveries)";
  q.raw_value = pct(calls, 50);
  q.raw_unit = "s";
  q.raw = call_raw;
  q.ratio_value = pct(each, 99) / pct(calls, 99);
  q.ratio = fmt("p99 %.1fx call p99", q.ratio_value);
  add_row(q);

  Row c;
  c.fig = "4c";
  c.name = "all hashes equal after the last call's commit";
  c.value = conv;
  c.unit = "s";
  c.measured = time_text(conv) + " (every node holds every call; hashes checked equal)";
  c.goal = "<= 1 s";
  c.met = conv <= 1.0;
  add_row(c);

  Row d;
  d.fig = "4d";
  d.name = "traffic of the run";
  d.value = static_cast<double>(sum.updates_received) / deliveries;
  d.unit = "received/needed";
  std::string by_type;
  for (int t = 1; t < 7; ++t)
    if (wire.out[t].frames)
      by_type += std::string(by_type.empty() ? "" : ", ") + kTypeNames[t] + " " + grouped(wire.out[t].frames) + " / " +
                 mib_text(static_cast<double>(wire.out[t].bytes));
  d.measured = grouped(sum.updates_received) + " updates received for " + grouped(deliveries) +
               fmt(" deliveries (%.2fx); ", d.value) + grouped(sum.refused_updates) + " refused for a reason other than a gap; frames out: " +
               by_type;
  d.raw_value = deliveries;
  d.raw_unit = "deliveries";
  d.raw = grouped(deliveries) + " = calls x " + std::to_string(nn - 1) + " other nodes";
  d.ratio_value = d.value;
  d.ratio = fmt("%.2fx", d.value);
  d.note = grouped(sum.bad_frames) + " bad frames; frames ZmqTransport dropped: " + dropped_text(wire) + "; " + grouped(commits) + " LMDB commits in all (" +
           rate_text(static_cast<double>(commits) / (nn * call_window)) + " per node) for " + grouped(push_frames) +
           " Push frames received and " + grouped(total) + " calls; event loops busy " + fmt("%.0f%%", 100 * busy / run) +
           " of the time (mean), " + time_text(push_s / static_cast<double>(std::max<uint64_t>(1, push_frames))) +
           " per Push frame in on_frame";
  add_row(d);
}

// --- output -------------------------------------------------------------------------------------------

// Rows in figure order (they are measured in the order the fixtures allow).
void sort_rows() {
  std::stable_sort(g_rows.begin(), g_rows.end(), [](const Row& x, const Row& y) { return x.fig < y.fig; });
}

void print_table() {
  print_rows_table(g_rows);
  bool notes = false;
  for (const auto& r : g_rows)
    if (!r.note.empty()) {
      if (!notes) std::cout << "\nNotes:\n";
      notes = true;
      std::cout << "  " << r.fig << " " << r.name << ": " << r.note << "\n";
    }
}

void print_json(const std::string& load_start, const std::string& load_end) {
  std::cout << "{\"options\":{\"quick\":" << (g_opt.quick ? "true" : "false") << ",\"updates\":" << g_opt.updates
            << ",\"paths\":" << g_opt.paths << ",\"nodes\":" << g_opt.nodes << ",\"rate\":" << g_opt.rate
            << ",\"seconds\":" << g_opt.seconds << "},\"seconds\":" << seconds_since(g_start)
            << ",\"loadavg_start\":\"" << load_start << "\",\"loadavg_end\":\"" << load_end
            << "\",\"cpus\":" << std::thread::hardware_concurrency() << ",\"figures\":";
  print_rows_json(g_rows);
  std::cout << "}\n";
}

void usage() {
  std::cout << "usage: replog_replication_bench [options]\n"
               "  --quick          small sizes (about 20 s; for tests)\n"
               "  --dir DIR        make the temp dir under DIR (default /tmp)\n"
               "  --only A[,B]     run only these figures: fresh insync diff memory latency\n"
               "  --json           print JSON instead of the table\n"
               "  --keep           keep the temp dir\n"
               "  --updates N      updates replicated / shared (default 1000000)\n"
               "  --paths N        distinct paths written by set (default 10000)\n"
               "  --nodes N        nodes in the latency figure (default 8)\n"
               "  --rate N         calls/s per node in the latency figure (default 200)\n"
               "  --seconds S      duration of the latency figure (default 30)\n"
               "  --origins A[,B]  origin counts of the fresh/insync figures (default 1,10,100)\n"
               "  --fresh-cap S    stop a fresh replication of more than one origin after S s (default 25)\n"
               "  --cli PATH       the replog program for the memory figure\n";
}

}  // namespace

// Stops the `replog node` processes this run started, then exits.
[[noreturn]] void replog::bench::die(const std::string& what) {
  std::fprintf(stderr, "replog_replication_bench: %s\n", what.c_str());
  for (pid_t pid : g_children) stop_child(pid);
  std::_Exit(1);  // threads of in-process nodes end with the process
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::optional<uint64_t> updates, paths, nodes, rate, seconds;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= args.size()) die(a + " needs a value");
      return args[++i];
    };
    if (a == "--quick") g_opt.quick = true;
    else if (a == "--json") g_opt.json = true;
    else if (a == "--keep") g_opt.keep = true;
    else if (a == "--dir") g_opt.dir = next();
    else if (a == "--cli") g_opt.cli = next();
    else if (a == "--only") g_opt.only = parse_only(next(), {"fresh", "insync", "diff", "memory", "latency"});
    else if (a == "--updates") updates = parse_count(next(), "--updates");
    else if (a == "--paths") paths = parse_count(next(), "--paths");
    else if (a == "--nodes") nodes = parse_count(next(), "--nodes");
    else if (a == "--rate") rate = parse_count(next(), "--rate");
    else if (a == "--seconds") seconds = parse_count(next(), "--seconds");
    else if (a == "--origins") {
      g_opt.origins.clear();
      std::stringstream list(next());
      std::string item;
      while (std::getline(list, item, ',')) g_opt.origins.push_back(parse_count(item, "--origins"));
      if (g_opt.origins.empty()) die("--origins needs a list");
    } else if (a == "--fresh-cap") g_opt.fresh_cap_s = static_cast<double>(parse_count(next(), "--fresh-cap"));
    else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else {
      usage();
      die("unknown option " + a);
    }
  }
  if (g_opt.quick) {
    g_opt.updates = 20'000;
    g_opt.paths = 1'000;
    g_opt.seconds = 3;
    g_opt.idle_s = 1;
    g_opt.fresh_timeout_s = 20;
    g_opt.fresh_cap_s = 10;
  }
  if (updates) g_opt.updates = *updates;
  if (paths) g_opt.paths = *paths;
  if (nodes) {
    if (*nodes < 2) die("--nodes needs at least 2");
    g_opt.nodes = static_cast<int>(*nodes);
  }
  if (rate) g_opt.rate = static_cast<double>(*rate);
  if (seconds) g_opt.seconds = static_cast<double>(*seconds);
  ::signal(SIGPIPE, SIG_IGN);

  std::string parent = g_opt.dir.empty() ? "/tmp" : g_opt.dir;
  fs::create_directories(parent);
  std::string tmpl = parent + "/replog-repl-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) die("mkdtemp " + tmpl + ": " + std::strerror(errno));
  g_root = buf.data();
  progress("working in " + g_root);
  const std::string load_start = loadavg();

  const bool fresh = wanted("fresh"), insync = wanted("insync"), diff = wanted("diff"), memory = wanted("memory");
  std::vector<uint64_t> cases;
  if (fresh || insync) cases = g_opt.origins;
  if ((diff || memory) && std::find(cases.begin(), cases.end(), 1) == cases.end()) cases.insert(cases.begin(), 1);
  for (uint64_t origins : cases) fig_fresh(origins, (insync && origins > 1) || origins == 1);
  if (insync || diff) {
    std::vector<uint64_t> pairs = insync ? cases : std::vector<uint64_t>{1};
    fig_insync_and_diff(pairs, insync, diff);
  }
  if (memory) fig_memory();
  if (wanted("latency")) fig_latency();

  if (!g_opt.keep) fs::remove_all(g_root);
  const std::string load_end = loadavg();
  progress("done; load average " + load_start + " at start, " + load_end + " at end");
  sort_rows();
  if (g_opt.json) {
    print_json(load_start, load_end);
  } else {
    print_table();
    std::cout << "\n" << fmt("%.1f", seconds_since(g_start)) << " s; 1-minute load average " << load_start
              << " at start, " << load_end << " at end (" << std::thread::hardware_concurrency() << " CPUs)\n";
  }
  return 0;
}

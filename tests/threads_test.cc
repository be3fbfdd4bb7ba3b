// The threaded paths, run for real so that ThreadSanitizer (tools/test.sh
// --tsan) can watch them, and checked for their outcomes in every build:
//   - a Node called from several threads while others read its state and log
//     and its LMDB map grows (the writer's group commit, UpdateLog's MapGate);
//   - the public replog::Node used from several threads at once;
//   - two nodes replicating over real ZeroMQ on loopback, each with its own
//     peer-service thread, while both take calls;
//   - a Node closed while calls are in flight;
//   - the daemon (writer, peer-service and local-API threads) stopped while
//     API calls are in flight.
// Every loop is bounded in count and in time; a time bound is stretched by
// REPLOG_TIME_SCALE (testing::scaled_budget) for sanitized builds.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "node/api/daemon.h"
#include "node/api/local_api.h"
#include "node/api/verify.h"
#include "node/engine/node.h"
#include "node/sync/peer_service.h"
#include "node/sync/zmq_transport.h"
#include "replog/node.h"
#include "storage/fault_point.h"
#include "temp_dir.h"
#include "test_seed.h"

namespace replog {
namespace {

using testing::TempDir;
using Steady = std::chrono::steady_clock;

Steady::time_point deadline_in(int seconds) {
  return Steady::now() + testing::scaled_budget(std::chrono::seconds(seconds));
}

// Polls pred every 10 ms until it holds (true) or the deadline passes (false).
template <class Pred>
bool wait_until(Pred pred, Steady::time_point deadline) {
  while (!pred()) {
    if (Steady::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

Value set_arg(const std::string& path, Value v) { return Value(Map{{"path", Value(path)}, {"value", std::move(v)}}); }

// Every update of `origin` that `node` holds, in seq order.
std::vector<UpdateId> ids_of(const engine::Node& node, OriginId origin) {
  std::vector<UpdateId> out;
  for (uint64_t from = 1;;) {
    auto r = node.read_range(origin, from, 1000, 1 << 20);
    EXPECT_TRUE(r) << r.status().message();
    if (!r || r->updates.empty()) break;
    for (const auto& u : r->updates) out.push_back(u.id());
    from += r->updates.size();
  }
  return out;
}

std::set<UpdateId> as_set(const std::vector<UpdateId>& ids) { return {ids.begin(), ids.end()}; }

std::string init_dir(const TempDir& tmp, const std::string& name, const std::string& cluster = "") {
  engine::InitOptions init;
  init.dir = tmp.sub(name);
  if (!cluster.empty()) init.cluster = cluster;
  Status s = engine::Node::init(init);
  EXPECT_TRUE(s) << s.message();
  return init.dir;
}

std::unique_ptr<engine::Node> open_node(const engine::NodeOptions& o) {
  auto n = engine::Node::open(o);
  EXPECT_TRUE(n) << n.status().message();
  return n ? std::move(n).value() : nullptr;
}

void expect_verified(const std::string& dir) {
  auto report = verify_data_dir(dir, std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins()));
  ASSERT_TRUE(report) << report.status().message();
  EXPECT_TRUE(report->ok()) << (report->problems.empty() ? "" : report->problems.front());
}

// Ids acknowledged to several threads, and the first failure any of them saw.
struct Acks {
  std::mutex mu;
  std::vector<UpdateId> ids;
  std::vector<std::string> errors;
  std::atomic<int> count{0};
  void ack(const UpdateId& id) {
    std::lock_guard<std::mutex> l(mu);
    ids.push_back(id);
    ++count;
  }
  void error(const std::string& e) {
    std::lock_guard<std::mutex> l(mu);
    errors.push_back(e);
  }
};

// --- one node, many threads ------------------------------------------------------------

TEST(ThreadedNode, CallsFromManyThreadsWhileOthersReadAndTheMapGrows) {
  TempDir tmp;
  engine::NodeOptions o;
  o.dir = init_dir(tmp, "n");
  o.initial_map_bytes = 256 << 10;  // the calls below need several times this
  o.checkpoint_interval = 100;      // checkpoints are written between batches, too
  o.undo_window = 64;
  auto node = open_node(o);
  ASSERT_TRUE(node);
  const OriginId origin = node->node_id();
  const size_t map_before = node->map_bytes();

  constexpr int kWriters = 4, kCallsEach = 100;
  const std::string pad(1024, 'x');
  const auto deadline = deadline_in(120);
  Acks acks;
  std::atomic<int> writing{kWriters};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] {
      for (int i = 0; i < kCallsEach && Steady::now() < deadline; ++i) {
        auto r = node->call("set", set_arg("w" + std::to_string(w) + ".k" + std::to_string(i),
                                           Value(Map{{"i", Value(i)}, {"pad", Value(pad)}})));
        if (!r) {
          acks.error(r.status().message());
          break;
        }
        acks.ack(*r);
      }
      --writing;
    });
  // Readers: what was committed stays committed and counts never go back.
  std::atomic<int> reads{0};
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&] {
      uint64_t last_updates = 0, last_seq = 0;
      std::vector<UpdateId> first_five;
      bool seen_w0 = false;
      while (writing > 0 && Steady::now() < deadline) {
        const uint64_t updates = node->info().updates;
        EXPECT_GE(updates, last_updates);
        last_updates = updates;
        const VersionVector v = node->vector();
        const uint64_t seq = v.count(origin) ? v.at(origin) : 0;
        EXPECT_GE(seq, last_seq);
        last_seq = seq;
        auto range = node->read_range(origin, 1, 5, 1 << 20);
        EXPECT_TRUE(range) << range.status().message();
        if (range && range->updates.size() >= 5) {
          std::vector<UpdateId> ids;
          for (size_t i = 0; i < 5; ++i) ids.push_back(range->updates[i].id());
          if (first_five.empty()) first_five = ids;
          EXPECT_EQ(ids, first_five) << "committed updates changed under a reader";
        }
        bool present = false;
        node->read([&](const State& s) {
          const Value* v0 = s.get(Path{"w0", "k0", "i"});
          present = v0 && v0->is_int() && v0->as_int() == 0;
        });
        if (seen_w0) {
          EXPECT_TRUE(present) << "a committed value went missing under a reader";
        }
        seen_w0 = seen_w0 || present;
        EXPECT_EQ(node->state_hash().size(), 64u);
        ++reads;
      }
    });
  for (auto& t : threads) t.join();

  ASSERT_TRUE(acks.errors.empty()) << acks.errors.front();
  ASSERT_EQ(acks.ids.size(), size_t{kWriters * kCallsEach}) << "the time bound cut the calls short";
  EXPECT_GT(reads.load(), 0);
  EXPECT_GT(node->map_bytes(), map_before) << "the map never grew: the test missed MapGate";
  EXPECT_EQ(as_set(ids_of(*node, origin)), as_set(acks.ids)) << "every acknowledged call, nothing else";
  node->read([&](const State& s) {
    for (int w = 0; w < kWriters; ++w)
      for (int i = 0; i < kCallsEach; ++i) {
        const Value* v = s.get(Path{"w" + std::to_string(w), "k" + std::to_string(i), "i"});
        ASSERT_TRUE(v && v->is_int()) << "w" << w << ".k" << i;
        EXPECT_EQ(v->as_int(), i);
      }
  });
  const std::string hash = node->state_hash();
  ASSERT_TRUE(node->close());
  node.reset();
  auto again = open_node(o);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->state_hash(), hash) << "reopened from its checkpoint and log";
  ASSERT_TRUE(again->close());
  again.reset();
  expect_verified(o.dir);
}

// Makes the `times` first of every `every`-th put in one store find the map
// full: the writer aborts the batch, puts its memory back from the log
// (recover_after_abort), grows the map and runs the batch again.
class MapFullEvery final : public fault::Injector {
 public:
  MapFullEvery(std::string dir, int every, int times) : dir_(std::move(dir)), every_(every), times_(times) {}
  bool fire(fault::Point point, std::string_view store_dir) override {
    if (point != fault::Point::kPutMapFull || store_dir != dir_) return false;
    if (++puts_ % every_ != 0 || fired_ >= times_) return false;
    ++fired_;
    return true;
  }
  int fired() const { return fired_; }

 private:
  const std::string dir_;
  const int every_, times_;
  std::atomic<int> puts_{0}, fired_{0};
};

// A commit listener for the tests of callers that lead: it records each
// commit's thread and number of updates, and holds the commit of a batch whose
// arguments name `held` until open().
struct CommitGate {
  explicit CommitGate(engine::Node& node, std::string held_marker = "held") : held(std::move(held_marker)) {
    node.set_commit_listener([this](const std::vector<Update>& ups, const std::vector<proof::Head>&) {
      std::unique_lock<std::mutex> l(mu);
      commits.emplace_back(std::this_thread::get_id(), ups.size());
      const bool holds = std::any_of(ups.begin(), ups.end(),
                                     [&](const Update& u) { return u.arg().find(held) != std::string_view::npos; });
      if (!holds) return;
      entered = true;
      cv.notify_all();
      cv.wait_for(l, testing::scaled_budget(std::chrono::seconds(30)), [&] { return opened; });
    });
  }
  // Until a held commit has begun; false after 30 s (scaled).
  bool wait_entered() {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, testing::scaled_budget(std::chrono::seconds(30)), [&] { return entered; });
  }
  void open() {
    {
      std::lock_guard<std::mutex> l(mu);
      opened = true;
    }
    cv.notify_all();
  }
  std::vector<std::pair<std::thread::id, size_t>> seen() {
    std::lock_guard<std::mutex> l(mu);
    return commits;
  }

  const std::string held;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::thread::id, size_t>> commits;  // guarded by mu
  bool entered = false, opened = false;                    // guarded by mu
};

// NodeOptions::callers_lead: a caller that finds the writer idle commits its
// call on its own thread; callers that come while it does queue, and the
// writer thread takes them as one batch; with the option off, every batch
// runs on the writer thread.
TEST(ThreadedNode, ACallerFindingTheWriterIdleCommitsItselfAndLaterCallersQueueBehindIt) {
  TempDir tmp;
  engine::NodeOptions o;
  o.dir = init_dir(tmp, "n");
  auto node = open_node(o);
  ASSERT_TRUE(node);
  const OriginId origin = node->node_id();
  CommitGate gate(*node);

  // Alone: the call commits on this thread.
  ASSERT_TRUE(node->call("set", set_arg("alone", Value(1))));
  ASSERT_EQ(gate.seen().size(), 1u);
  EXPECT_EQ(gate.seen()[0].first, std::this_thread::get_id());

  // Three callers come while a leading caller's commit is held open.
  Acks acks;
  const auto call = [&](const std::string& key, int v) {
    auto r = node->call("set", set_arg(key, Value(v)));
    if (r)
      acks.ack(*r);
    else
      acks.error(r.status().message());
  };
  std::thread::id leader_id;
  std::thread leader([&] {
    leader_id = std::this_thread::get_id();
    call("held", 2);
  });
  ASSERT_TRUE(gate.wait_entered());
  constexpr int kQueued = 3;
  std::vector<std::thread> queued;
  std::set<std::thread::id> queued_ids;
  std::mutex ids_mu;
  for (int i = 0; i < kQueued; ++i)
    queued.emplace_back([&, i] {
      {
        std::lock_guard<std::mutex> l(ids_mu);
        queued_ids.insert(std::this_thread::get_id());
      }
      call("q" + std::to_string(i), i);
    });
  const bool all_queued = wait_until([&] { return node->queued() == kQueued; }, deadline_in(30));
  EXPECT_EQ(acks.count.load(), 0) << "nobody is answered while the turn is held";
  gate.open();
  leader.join();
  for (auto& t : queued) t.join();
  ASSERT_TRUE(all_queued) << "the later callers did not queue";
  ASSERT_TRUE(acks.errors.empty()) << acks.errors.front();
  ASSERT_EQ(acks.count.load(), 1 + kQueued);
  const auto commits = gate.seen();
  ASSERT_EQ(commits.size(), 3u);
  EXPECT_EQ(commits[1].first, leader_id) << "the held call committed on its caller's thread";
  EXPECT_EQ(commits[2].second, static_cast<size_t>(kQueued)) << "the queued calls went in one batch";
  EXPECT_NE(commits[2].first, std::this_thread::get_id());
  EXPECT_NE(commits[2].first, leader_id);
  EXPECT_EQ(queued_ids.count(commits[2].first), 0u) << "the writer thread ran the queued batch";
  EXPECT_EQ(ids_of(*node, origin).size(), 2u + kQueued);
  ASSERT_TRUE(node->close());
  node.reset();
  expect_verified(o.dir);

  // Off: the writer thread runs even a lone call.
  o.callers_lead = false;
  node = open_node(o);
  ASSERT_TRUE(node);
  CommitGate off(*node);
  ASSERT_TRUE(node->call("set", set_arg("alone", Value(2))));
  ASSERT_EQ(off.seen().size(), 1u);
  EXPECT_NE(off.seen()[0].first, std::this_thread::get_id());
}

TEST(ThreadedNode, BatchesRetriedAfterAFullMapWhileOthersReadTheNodesIdentity) {
  TempDir tmp;
  engine::NodeOptions o;
  o.dir = init_dir(tmp, "n");
  o.initial_map_bytes = 256 << 10;
  MapFullEvery injector(o.dir, 7, 6);
  fault::install(&injector);
  struct Uninstall {
    ~Uninstall() { fault::install(nullptr); }
  } uninstall;
  auto node = open_node(o);
  ASSERT_TRUE(node);
  const OriginId origin = node->node_id();
  const std::string cluster = node->cluster_id();

  constexpr int kCallers = 4, kCallsEach = 50;
  const auto deadline = deadline_in(60);
  Acks acks;
  std::atomic<int> calling{kCallers};
  std::vector<std::thread> threads;
  for (int c = 0; c < kCallers; ++c)
    threads.emplace_back([&, c] {
      for (int i = 0; i < kCallsEach && Steady::now() < deadline; ++i) {
        auto r = node->call("set", set_arg("c" + std::to_string(c), Value(i)));
        if (!r) {
          acks.error(r.status().message());
          break;
        }
        acks.ack(*r);
      }
      --calling;
    });
  // The identity does not change under a reader while batches are retried.
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&] {
      while (calling > 0 && Steady::now() < deadline) {
        EXPECT_EQ(node->cluster_id(), cluster);
        EXPECT_EQ(node->node_id(), origin);
        EXPECT_EQ(node->info().cluster_id, cluster);
      }
    });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(acks.errors.empty()) << acks.errors.front();
  ASSERT_EQ(acks.ids.size(), size_t{kCallers * kCallsEach});
  EXPECT_EQ(injector.fired(), 6) << "fewer batches were retried than planned";
  EXPECT_EQ(as_set(ids_of(*node, origin)), as_set(acks.ids));
  ASSERT_TRUE(node->close());
  node.reset();
  expect_verified(o.dir);
}

TEST(ThreadedNode, ThePublicNodeTakesCallsAndReadsFromAnyNumberOfThreads) {
  TempDir tmp;
  InitOptions init;
  init.dir = tmp.sub("p");
  ASSERT_TRUE(Node::init(init));
  NodeOptions o;
  o.dir = init.dir;
  auto opened = Node::open(o);
  ASSERT_TRUE(opened) << opened.status().message();
  Node node = std::move(opened).value();

  constexpr int kThreads = 4, kCallsEach = 50;
  const auto deadline = deadline_in(60);
  Acks acks;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      const std::string mine = "t" + std::to_string(t);
      for (int i = 0; i < kCallsEach && Steady::now() < deadline; ++i) {
        // Each thread counts up its own key and reads it back: its own writes
        // are visible to it at once, whatever the others do.
        auto r = node.call("set", Value(Map{{"path", Value(mine)}, {"value", Value(i)}}));
        if (!r) {
          acks.error(r.status().message());
          break;
        }
        acks.ack(*r);
        auto v = node.read(mine);
        if (!v || !v->is_int() || v->as_int() != i) acks.error(mine + " did not read back " + std::to_string(i));
        (void)node.conflicts();
        (void)node.vector();
        EXPECT_EQ(node.state_hash().size(), 64u);
      }
    });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(acks.errors.empty()) << acks.errors.front();
  ASSERT_EQ(acks.ids.size(), size_t{kThreads * kCallsEach});
  EXPECT_EQ(node.vector().at(node.node_id()), uint64_t{kThreads * kCallsEach});
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(node.read("t" + std::to_string(t))->as_int(), kCallsEach - 1);
  EXPECT_TRUE(node.conflicts().empty());
  ASSERT_TRUE(node.close());
}

// close() while a caller leads a batch and nothing is queued: the writer
// thread waits for the turn, and the leader's release must wake it to stop.
TEST(ThreadedNode, CloseWhileACallerLeadsReturnsOnceTheLeaderIsDone) {
  TempDir tmp;
  engine::NodeOptions o;
  o.dir = init_dir(tmp, "n");
  auto node = open_node(o);
  ASSERT_TRUE(node);
  CommitGate gate(*node);
  bool called = false;
  std::thread leader([&] { called = static_cast<bool>(node->call("set", set_arg("held", Value(1)))); });
  ASSERT_TRUE(gate.wait_entered());
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    (void)node->close();
    closed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // close() is waiting on the writer thread
  EXPECT_FALSE(closed.load()) << "close() returned while a batch was still running";
  gate.open();
  leader.join();
  EXPECT_TRUE(called);
  const bool returned = wait_until([&] { return closed.load(); }, deadline_in(10));
  if (!returned) closer.detach();  // hung: fail, do not wait for it
  else closer.join();
  ASSERT_TRUE(returned) << "close() did not return after the leader released the turn";
}

TEST(ThreadedNode, CloseWhileCallsAreInFlightKeepsEveryAcknowledgedCall) {
  TempDir tmp;
  engine::NodeOptions o;
  o.dir = init_dir(tmp, "n");
  auto node = open_node(o);
  ASSERT_TRUE(node);
  const OriginId origin = node->node_id();

  constexpr int kCallers = 4, kMaxCallsEach = 5000;
  const auto deadline = deadline_in(60);
  Acks acks;
  std::vector<std::string> last_error(kCallers);
  std::atomic<bool> closing{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < kCallers; ++c)
    threads.emplace_back([&, c] {
      for (int i = 0; i < kMaxCallsEach && Steady::now() < deadline; ++i) {
        auto r = node->call("set", set_arg("c" + std::to_string(c), Value(i)));
        if (!r) {
          last_error[c] = r.status().message();
          return;
        }
        acks.ack(*r);
      }
    });
  // A reader, through close and after it.
  threads.emplace_back([&] {
    for (int i = 0; i < 100'000 && Steady::now() < deadline; ++i) {
      EXPECT_EQ(node->state_hash().size(), 64u);
      if (closing && i % 16 == 0) break;
    }
  });
  ASSERT_TRUE(wait_until([&] { return acks.count >= 50; }, deadline)) << "no calls went through";
  closing = true;
  Status closed = node->close();
  for (auto& t : threads) t.join();
  ASSERT_TRUE(closed) << closed.message();
  for (int c = 0; c < kCallers; ++c)
    EXPECT_EQ(last_error[c], "node is closing") << "caller " << c << " ended without seeing the close";
  // After close, a call fails at once rather than waiting for a writer that is gone.
  auto late = node->call("set", set_arg("late", Value(1)));
  EXPECT_FALSE(late);
  node.reset();

  auto again = open_node(o);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->node_id(), origin);
  EXPECT_EQ(as_set(ids_of(*again, origin)), as_set(acks.ids))
      << "every acknowledged call is stored, and nothing that was not acknowledged";
  ASSERT_TRUE(again->close());
  again.reset();
  expect_verified(o.dir);
}

// --- replication over ZeroMQ on loopback -------------------------------------------------

// A node with its peer service on a thread of its own, as the daemon runs it.
struct ZmqPeer {
  std::string dir;
  std::unique_ptr<engine::Node> node;
  zmq::context_t context{1};
  std::unique_ptr<ZmqTransport> transport;
  std::unique_ptr<PeerService> service;
  SystemClock clock;
  std::atomic<bool> stop{false};
  std::thread loop;

  void open(const std::string& d) {
    dir = d;
    engine::NodeOptions o;
    o.dir = dir;
    node = open_node(o);
    transport = std::make_unique<ZmqTransport>(context);
    Status s = transport->listen("tcp://127.0.0.1:0");
    EXPECT_TRUE(s) << s.message();
  }
  std::string endpoint() const { return transport->bound_endpoint(); }
  void start(const std::vector<std::string>& peers, uint64_t seed) {
    SyncOptions so;
    so.endpoint = endpoint();
    so.peers = peers;
    so.anti_entropy_ms = 200;
    so.seed = seed;
    service = std::make_unique<PeerService>(*node, *transport, clock, so, [](int level, const std::string& line) {
      if (level == 0) ADD_FAILURE() << "peer service error: " << line;
    });
    PeerService* s = service.get();
    node->set_commit_listener([s](const std::vector<Update>& u, const std::vector<proof::Head>& h) { s->on_committed(u, h); });
    node->set_verified_listener([s](const std::vector<Update>& u, const std::vector<proof::Head>& h) { s->on_verified(u, h); });
    loop = std::thread([this] {
      service->start();
      service->run_until(stop, 5);
    });
  }
  // As the daemon stops: the loop, then the node (its writer calls the
  // service), then the service and the sockets.
  void close() {
    stop = true;
    if (loop.joinable()) loop.join();
    if (node) {
      Status s = node->close();
      EXPECT_TRUE(s) << s.message();
    }
    service.reset();
    transport.reset();
  }
  ~ZmqPeer() { close(); }
};

// The loop's poll ends when another thread wakes the transport (an ingest
// came back, a commit is to be pushed), not when its timeout runs out; a wake
// before the poll ends the next one, and is then used up.
TEST(ThreadedSync, AWakeEndsAWaitingPollAndIsUsedUp) {
  zmq::context_t context{1};
  ZmqTransport t(context);
  ASSERT_TRUE(t.listen("tcp://127.0.0.1:0"));
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  auto t0 = Clock::now();
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    t.wake();
  });
  EXPECT_TRUE(t.poll(20'000).empty());
  waker.join();
  EXPECT_LT(seconds_since(t0), 10.0) << "woken, not timed out";
  t.wake();
  t.wake();
  t0 = Clock::now();
  EXPECT_TRUE(t.poll(20'000).empty());
  EXPECT_LT(seconds_since(t0), 10.0) << "a wake before the poll ends it";
  t0 = Clock::now();
  EXPECT_TRUE(t.poll(200).empty());
  EXPECT_GE(seconds_since(t0), 0.15) << "both wakes were used up by the poll they ended";
}

TEST(ThreadedSync, TwoNodesOverZeroMqConvergeWhileBothTakeCalls) {
  TempDir tmp;
  ZmqPeer a, b;
  a.open(init_dir(tmp, "a"));
  ASSERT_TRUE(a.node);
  b.open(init_dir(tmp, "b", a.node->cluster_id()));
  ASSERT_TRUE(b.node);
  a.start({b.endpoint()}, 1);
  b.start({a.endpoint()}, 2);

  constexpr int kWritersEach = 2, kCallsEach = 60;
  const auto deadline = deadline_in(120);
  Acks acks_a, acks_b;
  std::atomic<int> writing{2 * kWritersEach};
  std::vector<std::thread> threads;
  for (ZmqPeer* p : {&a, &b})
    for (int w = 0; w < kWritersEach; ++w)
      threads.emplace_back([&, p, w] {
        Acks& acks = p == &a ? acks_a : acks_b;
        const std::string prefix = (p == &a ? "a" : "b") + std::to_string(w);
        for (int i = 0; i < kCallsEach && Steady::now() < deadline; ++i) {
          auto r = p->node->call("set", set_arg(prefix + ".k" + std::to_string(i % 10), Value(i)));
          if (!r) {
            acks.error(r.status().message());
            break;
          }
          acks.ack(*r);
        }
        --writing;
      });
  // Readers of what the peer threads and the writers change.
  std::atomic<int> reads{0};
  for (ZmqPeer* p : {&a, &b})
    threads.emplace_back([&, p] {
      while (writing > 0 && Steady::now() < deadline) {
        for (const PeerStatus& s : p->service->peers()) EXPECT_FALSE(s.endpoint.empty());
        EXPECT_EQ(p->node->state_hash().size(), 64u);
        (void)p->node->vector();
        ++reads;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(acks_a.errors.empty()) << acks_a.errors.front();
  ASSERT_TRUE(acks_b.errors.empty()) << acks_b.errors.front();
  ASSERT_EQ(acks_a.ids.size() + acks_b.ids.size(), size_t{2 * kWritersEach * kCallsEach});
  EXPECT_GT(reads.load(), 0);

  const bool converged = wait_until(
      [&] { return a.node->vector() == b.node->vector() && a.node->state_hash() == b.node->state_hash(); },
      deadline_in(60));
  ASSERT_TRUE(converged) << "a holds " << a.node->info().updates << ", b holds " << b.node->info().updates;
  for (ZmqPeer* p : {&a, &b}) {
    EXPECT_EQ(as_set(ids_of(*p->node, a.node->node_id())), as_set(acks_a.ids));
    EXPECT_EQ(as_set(ids_of(*p->node, b.node->node_id())), as_set(acks_b.ids));
    EXPECT_EQ(p->node->info().updates, acks_a.ids.size() + acks_b.ids.size());
  }
  const std::string hash = a.node->state_hash();
  a.close();
  b.close();
  expect_verified(a.dir);
  expect_verified(b.dir);
  EXPECT_FALSE(hash.empty());
}

// --- the daemon ---------------------------------------------------------------------------

TEST(ThreadedDaemon, StopWhileApiCallsAreInFlightKeepsEveryAcknowledgedCall) {
  TempDir tmp;
  // A peer the daemon pushes to while its API takes calls.
  ZmqPeer peer;
  peer.open(init_dir(tmp, "peer"));
  ASSERT_TRUE(peer.node);
  const std::string dir = init_dir(tmp, "d", peer.node->cluster_id());
  peer.start({}, 3);

  DaemonOptions options;
  options.node.dir = dir;
  options.listen = "tcp://127.0.0.1:0";
  options.peers = {peer.endpoint()};
  options.insecure = true;
  options.log_level = 1;
  options.anti_entropy_ms = 200;
  std::atomic<bool> stop{false};
  Status daemon_status = Status::io_error("the daemon did not return");
  std::thread daemon([&] { daemon_status = run_daemon(options, stop); });

  zmq::context_t context(1);
  const auto deadline = deadline_in(90);
  ASSERT_TRUE(wait_until([&] { return ApiClient::connect_if_running(dir, context) != nullptr; }, deadline))
      << "the daemon never served its API";

  constexpr int kClients = 3, kMaxCallsEach = 2000;
  const int timeout_ms = static_cast<int>(testing::scaled_budget(std::chrono::seconds(2)).count() * 1000);
  Acks acks;
  std::atomic<bool> stopping{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c)
    threads.emplace_back([&, c] {
      auto client = ApiClient::connect_if_running(dir, context);
      if (!client) return acks.error("client " + std::to_string(c) + " found no API");
      for (int i = 0; i < kMaxCallsEach && Steady::now() < deadline; ++i) {
        const bool late = stopping;
        auto r = client->request("call", Value(Map{{"method", Value("set")},
                                                   {"arg", set_arg("c" + std::to_string(c), Value(i))}}),
                                 timeout_ms);
        // Once the daemon stops, a request goes unanswered or is refused: the
        // REQ socket is done either way.
        if (!r) {
          if (!late && !stopping) acks.error(r.status().message());
          return;
        }
        const Value* id = r->find("id");
        if (!id || !id->is_string()) return acks.error("a call's reply holds no update id");
        auto parsed = UpdateId::parse(id->as_string());
        if (!parsed) return acks.error("a call's reply holds no update id: " + id->as_string());
        acks.ack(*parsed);
      }
    });
  // Status from another client while the calls go on: the API thread asks the
  // peer service for its peers and the node for its counts.
  threads.emplace_back([&] {
    auto client = ApiClient::connect_if_running(dir, context);
    if (!client) return acks.error("status client found no API");
    while (!stopping && Steady::now() < deadline) {
      auto r = client->request("status", Value(Map{}), timeout_ms);
      if (!r) {
        if (!stopping) acks.error("status: " + r.status().message());
        return;
      }
      EXPECT_TRUE(r->find("peers") && r->find("peers")->is_list());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  // The peer receives the daemon's calls while they are still being made.
  const bool pushed = wait_until(
      [&] {
        const VersionVector v = peer.node->vector();
        return acks.count >= 60 && v.size() == 1 && v.begin()->second >= 30;
      },
      deadline);
  stopping = true;
  stop = true;
  daemon.join();
  for (auto& t : threads) t.join();
  ASSERT_TRUE(pushed) << "the peer did not receive the daemon's calls in time (" << acks.count << " acknowledged)";
  ASSERT_TRUE(daemon_status) << daemon_status.message();
  ASSERT_TRUE(acks.errors.empty()) << acks.errors.front();

  engine::NodeOptions o;
  o.dir = dir;
  auto reopened = engine::Node::open_read_only(o);
  ASSERT_TRUE(reopened) << reopened.status().message();
  std::unique_ptr<engine::Node> after = std::move(reopened).value();
  const std::vector<UpdateId> stored = ids_of(*after, after->node_id());
  const std::set<UpdateId> stored_set = as_set(stored);
  for (const UpdateId& id : acks.ids) EXPECT_TRUE(stored_set.count(id)) << id.to_string() << " was acknowledged, not stored";
  // A call may be stored with its reply lost to the stop; never more than one per client.
  EXPECT_LE(stored.size(), acks.ids.size() + kClients);
  // The peer holds a prefix of the daemon's log.
  const std::vector<UpdateId> at_peer = ids_of(*peer.node, after->node_id());
  ASSERT_LE(at_peer.size(), stored.size());
  EXPECT_TRUE(std::equal(at_peer.begin(), at_peer.end(), stored.begin()));
  after.reset();
  peer.close();
  expect_verified(dir);
}

}  // namespace
}  // namespace replog

// The sync logic without sockets: SyncEngines over an in-memory transport in
// one process (DESIGN.md §4: the transport and the clock are interfaces), and
// the wire codec on hostile input.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <deque>
#include <filesystem>

#include "node/sync/sync_engine.h"
#include "protocol/msgpack_codec.h"
#include "protocol/wire.h"
#include "temp_dir.h"
#include "test_seed.h"

namespace replog {
namespace {

// --- wire codec ------------------------------------------------------------------

TEST(Wire, EveryMessageRoundTrips) {
  std::vector<wire::Message> messages = {
      wire::Hello{"c1", 0xfedcba9876543210ULL, "tcp://127.0.0.1:7000", 1 << 20, 4 << 20},
      wire::Error{wire::ErrorCode::kCluster, "other cluster"},
      wire::Vector{1, 3, true, {{1, 2}, {UINT64_MAX, 5}}},
      wire::Request{7, 10, 20, 65536},
      wire::Updates{7, true, {{UpdateId{123, 7}, "body-bytes"}}},
      wire::Push{{{UpdateId{1, 2}, "x"}, {UpdateId{3, 4}, std::string("\0y", 2)}}},
  };
  for (const auto& m : messages) {
    std::string bytes = wire::encode(m);
    auto back = wire::decode(bytes);
    ASSERT_TRUE(back) << back.status().message();
    EXPECT_EQ(back->index(), m.index());
    EXPECT_EQ(wire::encode(*back), bytes);
  }
}

TEST(Wire, OtherVersionIsRefusedNotMisread) {
  std::string bytes = wire::encode(wire::Request{1, 1, 1, 1});
  bytes[1] = 2;  // [version=2, ...]
  auto m = wire::decode(bytes);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.status().code(), Status::Code::kRefused);
}

TEST(Wire, HostileFramesAreRefusedWithoutCrashing) {
  auto rng = testing::seeded_rng();
  std::string valid = wire::encode(wire::Push{{{UpdateId{1, 2}, "abc"}}});
  for (int i = 0; i < 20000; ++i) {
    std::string f = valid;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) f[rng() % f.size()] = static_cast<char>(rng() & 0xff);
    if (rng() % 4 == 0) f.resize(rng() % f.size());
    (void)wire::decode(f);
  }
  // A frame that declares a huge array in a few bytes fails fast.
  EXPECT_FALSE(wire::decode(std::string("\x93\x01\x06\xdd\xff\xff\xff\xff", 8)));
  EXPECT_FALSE(wire::decode(std::string(wire::kMaxFrameBytes + 1, '\x90')));
}

// --- an in-memory network ----------------------------------------------------------

class MemoryNetwork;

class MemoryTransport : public Transport {
 public:
  MemoryTransport(MemoryNetwork& net, std::string endpoint) : net_(net), endpoint_(std::move(endpoint)) {}
  void connect(const std::string& endpoint) override { links_.insert(endpoint); }
  void send(const Link& link, const std::string& bytes) override;
  std::vector<Frame> poll(int) override {
    std::vector<Frame> out(inbox_.begin(), inbox_.end());
    inbox_.clear();
    return out;
  }
  std::deque<Frame> inbox_;
  std::set<std::string> links_;

 private:
  MemoryNetwork& net_;
  std::string endpoint_;
};

class MemoryNetwork {
 public:
  std::map<std::string, MemoryTransport*> nodes;
  std::set<std::pair<std::string, std::string>> cut;  // (from, to) pairs that lose everything
  bool blocked(const std::string& a, const std::string& b) const { return cut.count({a, b}) > 0; }
};

void MemoryTransport::send(const Link& link, const std::string& bytes) {
  if (link.outgoing) {
    // To the peer's ROUTER: it sees us as routing id "<our endpoint>".
    auto it = net_.nodes.find(link.key);
    if (!links_.count(link.key) || it == net_.nodes.end() || net_.blocked(endpoint_, link.key)) return;
    it->second->inbox_.push_back({Link{false, endpoint_}, bytes});
  } else {
    // An answer on the connection from `link.key`: arrives on its DEALER to us.
    auto it = net_.nodes.find(link.key);
    if (it == net_.nodes.end() || net_.blocked(endpoint_, link.key)) return;
    it->second->inbox_.push_back({Link{true, endpoint_}, bytes});
  }
}

using testing::TempDir;

struct SimNode {
  std::unique_ptr<Node> node;
  std::unique_ptr<MemoryTransport> transport;
  std::unique_ptr<SyncEngine> engine;
};

class SimCluster {
 public:
  SimCluster(int n, ManualClock& clock, bool full_mesh) : clock_(clock) {
    std::string cluster;
    for (int i = 0; i < n; ++i) {
      std::string dir = tmp_.sub("n" + std::to_string(i));
      InitOptions init;
      init.dir = dir;
      init.clock = &clock;
      if (!cluster.empty()) init.cluster = cluster;
      EXPECT_TRUE(Node::init(init));
      NodeOptions o;
      o.dir = dir;
      o.clock = &clock;
      SimNode s;
      s.node = std::move(Node::open(o)).value();
      cluster = s.node->cluster_id();
      std::string ep = "mem://" + std::to_string(i);
      s.transport = std::make_unique<MemoryTransport>(net, ep);
      net.nodes[ep] = s.transport.get();
      SyncOptions so;
      so.endpoint = ep;
      so.anti_entropy_ms = 100;
      so.seed = static_cast<uint64_t>(i + 1);
      // A ring (each knows the next) or a full mesh; connect-back fills in the rest.
      for (int j = 0; j < n; ++j)
        if (j != i && (full_mesh || j == (i + 1) % n)) so.peers.push_back("mem://" + std::to_string(j));
      s.engine = std::make_unique<SyncEngine>(*s.node, *s.transport, clock, so, [](int, const std::string&) {});
      SyncEngine* engine = s.engine.get();
      s.node->set_commit_listener([engine](const std::vector<EncodedUpdate>& u) { engine->on_committed(u); });
      nodes.push_back(std::move(s));
    }
    for (auto& s : nodes) s.engine->start();
  }

  // Delivers frames and advances time by `ms` in 1 ms steps.
  void run(int ms) {
    for (int t = 0; t < ms; ++t) {
      clock_.advance(1);
      for (int round = 0; round < 4; ++round)
        for (auto& s : nodes)
          for (const auto& f : s.transport->poll(0)) s.engine->on_frame(f);
      for (auto& s : nodes) s.engine->on_tick();
    }
  }
  bool converged() {
    std::string h = nodes[0].node->state_hash();
    for (auto& s : nodes)
      if (s.node->state_hash() != h) return false;
    return true;
  }

  MemoryNetwork net;
  std::vector<SimNode> nodes;

 private:
  TempDir tmp_;
  ManualClock& clock_;
};

Value set_arg(const std::string& path, Value v) { return Value(Map{{"path", Value(path)}, {"value", std::move(v)}}); }

TEST(Sync, ThreeNodesInARingConvergeWithoutSockets) {
  ManualClock clock(1'790'000'000'000);
  SimCluster c(3, clock, /*full_mesh=*/false);
  c.run(50);
  for (int i = 0; i < 30; ++i)
    ASSERT_TRUE(c.nodes[static_cast<size_t>(i % 3)].node->call("inc", Value(Map{{"path", Value("n")}, {"by", Value(1)}})));
  c.run(500);
  ASSERT_TRUE(c.converged());
  c.nodes[0].node->read([](const State& s) { EXPECT_EQ(s.get({"n"})->as_int(), 30); });
}

TEST(Sync, PartitionedGroupsConvergeAfterHealing) {
  ManualClock clock(1'790'000'000'000);
  SimCluster c(4, clock, /*full_mesh=*/true);
  c.run(50);
  // {0,1} | {2,3}
  for (int a : {0, 1})
    for (int b : {2, 3}) {
      std::string x = "mem://" + std::to_string(a), y = "mem://" + std::to_string(b);
      c.net.cut.insert({x, y});
      c.net.cut.insert({y, x});
    }
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE(c.nodes[static_cast<size_t>(i % 4)].node->call("set", set_arg("k" + std::to_string(i % 5), Value(i))));
  c.run(500);
  EXPECT_FALSE(c.converged()) << "the two sides cannot have met";
  c.net.cut.clear();
  c.run(3000);
  ASSERT_TRUE(c.converged());
  for (auto& s : c.nodes) {
    VersionVector v = s.node->vector();
    ASSERT_EQ(v.size(), 4u);
    for (const auto& [origin, e] : v) EXPECT_EQ(e.seq, 10u) << "every update exactly once";
  }
}

TEST(Sync, LossyLinksAreRepairedByAntiEntropy) {
  ManualClock clock(1'790'000'000'000);
  SimCluster c(2, clock, /*full_mesh=*/true);
  c.run(50);
  // Pushes from 0 to 1 are lost; 1 learns of them only from vectors.
  c.net.cut.insert({"mem://0", "mem://1"});
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a" + std::to_string(i), Value(i))));
  c.run(100);
  EXPECT_EQ(c.nodes[1].node->vector().size(), 0u);
  c.net.cut.clear();
  c.run(2000);
  EXPECT_TRUE(c.converged());
}

}  // namespace
}  // namespace replog

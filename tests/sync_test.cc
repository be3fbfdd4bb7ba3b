// The sync logic without sockets: SyncEngines over an in-memory transport in
// one process (the transport and the clock are interfaces), and
// the wire codec on hostile input.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <zstd.h>

#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <thread>

#include "node/engine/node.h"
#include "node/sync/endpoint.h"
#include "node/sync/peer_service.h"
#include "node/sync/sync_engine.h"
#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"
#include "protocol/wire.h"
#include "support/faulty_transport.h"
#include "support/forwarding_store.h"
#include "support/memory_transport.h"
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
      wire::Updates{7, true, {Update::make(UpdateId{123, 7}, 1, "set", "body-bytes")}, std::nullopt},
      wire::Push{{Update::make(UpdateId{1, 2}, 1, "x", ""), Update::make(UpdateId{3, 4}, 9, "y", std::string("\0y", 2))}, {}},
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
  std::string valid = wire::encode(wire::Push{{Update::make(UpdateId{1, 2}, 1, "set", "abc")}, {}});
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

// --- clusters in one thread ------------------------------------------------------------

using testing::FaultyTransport;
using testing::MemoryNetwork;
using testing::MemoryTransport;
using testing::TempDir;

std::string endpoint_of(int i) { return "tcp://node" + std::to_string(i) + ":7000"; }

struct SimNode {
  std::unique_ptr<engine::Node> node;
  std::unique_ptr<SyncStore> store;  // the engine's, when the cluster wraps the node
  std::unique_ptr<MemoryTransport> memory;
  std::unique_ptr<FaultyTransport> transport;
  std::unique_ptr<PeerService> service;
};

class SimCluster {
 public:
  using Wrap = std::function<std::unique_ptr<SyncStore>(int i, engine::Node& node)>;
  SimCluster(int n, ManualClock& clock, bool full_mesh, uint64_t features_off = 0,
             const std::function<void(SyncOptions&)>& tune = nullptr, const Wrap& wrap = nullptr)
      : clock_(clock) {
    std::string cluster;
    for (int i = 0; i < n; ++i) {
      std::string dir = tmp_.sub("n" + std::to_string(i));
      engine::InitOptions init;
      init.dir = dir;
      init.clock = &clock;
      if (!cluster.empty()) init.cluster = cluster;
      EXPECT_TRUE(engine::Node::init(init));
      engine::NodeOptions o;
      o.dir = dir;
      o.clock = &clock;
      SimNode s;
      s.node = std::move(engine::Node::open(o)).value();
      cluster = s.node->cluster_id();
      s.memory = std::make_unique<MemoryTransport>(net, endpoint_of(i));
      s.transport = std::make_unique<FaultyTransport>(*s.memory, clock, static_cast<uint64_t>(i + 1));
      SyncOptions so;
      so.endpoint = endpoint_of(i);
      so.anti_entropy_ms = 100;
      so.seed = static_cast<uint64_t>(i + 1);
      so.features_off = features_off;
      if (tune) tune(so);
      // A ring (each knows the next) or a full mesh; connect-back fills in the rest.
      for (int j = 0; j < n; ++j)
        if (j != i && (full_mesh || j == (i + 1) % n)) so.peers.push_back(endpoint_of(j));
      // The loop is stepped here, not timed: by default a node stores what it
      // receives before the loop goes on (ForwardingStore), as it did before
      // ingest_async, so a run of N ms cannot outpace the writer threads.
      if (wrap) s.store = wrap(i, *s.node);
      if (!s.store) s.store = std::make_unique<testing::ForwardingStore>(*s.node);
      s.service = std::make_unique<PeerService>(*s.store, *s.transport, clock, so, [](int, const std::string&) {});
      PeerService* service = s.service.get();
      s.node->set_commit_listener([service](const std::vector<Update>& u, const std::vector<proof::Head>& h) { service->on_committed(u, h); });
      s.node->set_verified_listener([service](const std::vector<Update>& u, const std::vector<proof::Head>& h) { service->on_verified(u, h); });
      nodes.push_back(std::move(s));
    }
    for (auto& s : nodes) s.service->start();
  }

  // Delivers frames and advances time by `ms` in 1 ms steps.
  void run(int ms) {
    for (int t = 0; t < ms; ++t) {
      clock_.advance(1);
      for (int round = 0; round < 4; ++round)
        for (auto& s : nodes) s.service->run_once(0);
    }
  }
  // Updates received by every node, and how many deliveries `calls` need.
  double copies_per_delivery(size_t calls) const {
    uint64_t received = 0;
    for (const auto& s : nodes) received += s.service->engine().counters().updates_received;
    return static_cast<double>(received) / static_cast<double>(calls * (nodes.size() - 1));
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
      c.net.cut_both(endpoint_of(a), endpoint_of(b));
    }
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE(c.nodes[static_cast<size_t>(i % 4)].node->call("set", set_arg("k" + std::to_string(i % 5), Value(i))));
  c.run(500);
  EXPECT_FALSE(c.converged()) << "the two sides cannot have met";
  c.net.heal();
  c.run(3000);
  ASSERT_TRUE(c.converged());
  for (auto& s : c.nodes) {
    VersionVector v = s.node->vector();
    ASSERT_EQ(v.size(), 4u);
    for (const auto& [origin, seq] : v) EXPECT_EQ(seq, 10u) << "every update exactly once";
  }
}

TEST(Sync, LossyLinksAreRepairedByAntiEntropy) {
  ManualClock clock(1'790'000'000'000);
  SimCluster c(2, clock, /*full_mesh=*/true);
  c.run(50);
  // Pushes from 0 to 1 are lost; 1 learns of them only from vectors.
  c.net.cut(endpoint_of(0), endpoint_of(1));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a" + std::to_string(i), Value(i))));
  c.run(100);
  EXPECT_EQ(c.nodes[1].node->vector().size(), 0u);
  c.net.heal();
  c.run(2000);
  EXPECT_TRUE(c.converged());
}

// Relay trees (PROTOCOL.md "Relay trees"): in a full mesh every node hears
// every origin first hand, so an update is received once per node; without
// the feature each node relays it on to every peer.
TEST(Sync, AFullMeshRelaysNothingOnceEveryNodeNamesWhatItHears) {
  for (const bool trees : {true, false}) {
    ManualClock clock(1'790'000'000'000);
    SimCluster c(5, clock, /*full_mesh=*/true, trees ? 0 : wire::kFeatureTree);
    c.run(300);  // handshakes, and the hears sent 100 ms apart
    const size_t calls = 50;
    for (size_t i = 0; i < calls; ++i) {
      ASSERT_TRUE(c.nodes[i % 5].node->call("set", set_arg("k" + std::to_string(i), Value(static_cast<int64_t>(i)))));
      c.run(5);
    }
    c.run(1000);
    ASSERT_TRUE(c.converged());
    const double copies = c.copies_per_delivery(calls);
    // A run no peer lacks is not verified on the loop (relay ahead): the
    // writer verifies it, one head per origin of its batch.
    uint64_t verified_ahead = 0;
    for (const auto& n : c.nodes) verified_ahead += n.node->ahead_counts().runs;
    if (trees) {
      EXPECT_LE(copies, 1.2) << "with relay trees";
      EXPECT_EQ(verified_ahead, 0u) << "nothing is relayed, so nothing is verified ahead of the writers";
    } else {
      EXPECT_GE(copies, 2.0) << "without them every node relays";
      EXPECT_GT(verified_ahead, 0u) << "what a node relays is verified ahead of its writer";
    }
  }
}

// In a ring nobody hears the far origins first hand: updates travel along the
// ring, duplicates prune their senders, and the announcements graft a cut
// edge back, so every node still gets every update, mostly once.
TEST(Sync, ARingRelaysAlongItsTreeAndHealsWhenALinkIsCut) {
  ManualClock clock(1'790'000'000'000);
  SimCluster c(6, clock, /*full_mesh=*/false);
  c.run(300);
  size_t calls = 0;
  for (int i = 0; i < 60; ++i, ++calls) {
    ASSERT_TRUE(c.nodes[static_cast<size_t>(i % 6)].node->call("inc", Value(Map{{"path", Value("n")}, {"by", Value(1)}})));
    c.run(5);
  }
  c.run(1000);
  ASSERT_TRUE(c.converged());
  EXPECT_LE(c.copies_per_delivery(calls), 1.5);
  c.net.cut_both(endpoint_of(0), endpoint_of(1));
  for (int i = 0; i < 30; ++i, ++calls) {
    ASSERT_TRUE(c.nodes[static_cast<size_t>(i % 6)].node->call("inc", Value(Map{{"path", Value("n")}, {"by", Value(1)}})));
    c.run(5);
  }
  c.run(3000);
  ASSERT_TRUE(c.converged()) << "the ring, cut once, is a line: everything still reaches everyone";
  c.nodes[3].node->read([&](const State& s) { EXPECT_EQ(s.get({"n"})->as_int(), static_cast<int64_t>(calls)); });
}

// --- hostile and edge-case input from one peer ---------------------------------------------

// A stranger on the same memory network, speaking the wire protocol by hand.
struct Stranger {
  Stranger(MemoryNetwork& net, std::string name, std::string target) : transport(net, std::move(name)), to(std::move(target)) {
    EXPECT_TRUE(transport.connect(to));
  }
  void send(const wire::Message& m) { transport.send(Link{true, to}, wire::encode(m)); }
  std::vector<wire::Message> answers() {
    std::vector<wire::Message> out;
    for (auto& f : transport.poll(0))
      if (auto m = wire::decode(f.bytes)) out.push_back(std::move(m).value());
    return out;
  }
  MemoryTransport transport;
  std::string to;
};

wire::Hello hello_from(const engine::Node& node, OriginId id, std::string endpoint) {
  return wire::Hello{node.cluster_id(), id, std::move(endpoint), limits::kMaxUpdateBytes, wire::kMaxFrameBytes};
}

TEST(Endpoints, OnlyTcpHostPortIsDialed) {
  for (const char* ok : {"tcp://127.0.0.1:7000", "tcp://[::1]:1", "tcp://laptop.local:65535", "tcp://node-2:7000"})
    EXPECT_TRUE(check_peer_endpoint(ok)) << ok << ": " << check_peer_endpoint(ok).message();
  const std::string long_host(10'000, 'a');
  for (const std::string& bad :
       {std::string(""), std::string("garbage-endpoint"), std::string("ipc:///tmp/replog-x/api.sock"),
        std::string("inproc://x"), "tcp://" + long_host + ":7000", std::string("tcp://127.0.0.1:0"),
        std::string("tcp://127.0.0.1:70000"), std::string("tcp://127.0.0.1"), std::string("tcp://*:7000"),
        std::string("tcp://999.1.1.1:7000"), std::string("tcp://-bad-.host:7000"), std::string("pgm://eth0;239.1.1.1:5555"),
        std::string("tcp://127.0.0.1:-1"), std::string("tcp://[::1:7000")}) {
    Status s = check_peer_endpoint(bad);
    EXPECT_FALSE(s) << bad.substr(0, 60);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
    EXPECT_LT(s.message().size(), 200u) << "one line, not the whole string";
  }
}

// A peer that pushes updates of ever new origins (refused here, each without
// a head) cannot grow what this node keeps of its vector past what one whole
// Vector carries; the node goes on syncing with it. Node 1 asks node 0 for
// each origin it noted and is answered empty each time: pull_missing goes on
// from the origin it asked for last, so that costs a step per answer (a walk
// over all 65,536 per answer took 95 s here).
TEST(Sync, APeerPushingEverNewOriginsCannotGrowWhatIsKnownOfIt) {
  ManualClock clock(1'790'000'000'000);
  SimCluster c(2, clock, /*full_mesh=*/true, 0, [](SyncOptions& so) { so.anti_entropy_ms = 3'600'000; });
  c.run(300);
  const OriginId peer_origin = c.nodes[0].node->node_id();
  const auto known = [&] {
    for (const auto& p : c.nodes[1].service->engine().peers())
      if (p.node_id == peer_origin) return p.their_vector.size();
    return size_t{0};
  };
  const size_t cap = wire::kVectorPageEntries * wire::kMaxVectorPages;
  OriginId next = 1'000'000;
  for (int frame = 0; frame < 9; ++frame) {  // 72,000 origins, 8,000 a frame
    wire::Push push;
    for (int i = 0; i < 8'000; ++i) push.updates.push_back(Update::make(UpdateId{1, ++next}, 1, "set", ""));
    c.nodes[1].memory->inject(Link{false, endpoint_of(0)}, wire::encode(push));  // on node 0's own link
    c.run(5);
  }
  c.run(150);  // the peers' status is a snapshot taken every 100 ms
  EXPECT_EQ(known(), cap) << "noted up to the bound, and no further";
  EXPECT_EQ(c.nodes[1].node->vector().count(next), 0u) << "nothing of them is stored";
  ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a", Value(1))));
  c.run(100);
  EXPECT_EQ(seq_of(c.nodes[1].node->vector(), peer_origin), 1u) << "the peer's own updates still arrive";
}

TEST(Sync, HostileHelloEndpointsAreNeverDialedAndTheNodeKeepsServing) {
  ManualClock clock(1'790'000'000'000);
  SimCluster c(1, clock, true);
  engine::Node& node = *c.nodes[0].node;
  ASSERT_TRUE(node.call("set", set_arg("a", Value(1))));
  c.run(10);
  const std::string hash = node.state_hash();
  const std::string long_host(10'000, 'h');
  const std::vector<std::string> hostile = {
      "", "garbage-endpoint", "ipc://" + node.dir() + "/api.sock", "inproc://x", "tcp://" + long_host + ":7000",
      "tcp://127.0.0.1:0", "tcp://127.0.0.1:70000", "tcp://*:7000", "tcp://[::1:7000", "udp://1.2.3.4:5",
      "tcp://127.0.0.1", "tcp://999.999.1.1:7000"};
  OriginId id = 1000;
  for (const auto& ep : hostile) {
    Stranger s(c.net, "stranger-" + std::to_string(id), endpoint_of(0));
    s.send(hello_from(node, ++id, ep));
    c.run(5);
    // A Hello is answered with Hello; one too long to decode (a string over
    // the decoder's 4,096-byte limit) is answered with Error 1.
    auto answers = s.answers();
    ASSERT_EQ(answers.size(), 1u) << ep.substr(0, 40);
    if (ep.size() > 4096) {
      ASSERT_TRUE(std::holds_alternative<wire::Error>(answers[0]));
      EXPECT_EQ(std::get<wire::Error>(answers[0]).code, wire::ErrorCode::kMalformed);
    } else {
      EXPECT_TRUE(std::holds_alternative<wire::Hello>(answers[0])) << ep;
    }
    EXPECT_FALSE(c.nodes[0].memory->linked(ep)) << "dialed " << ep.substr(0, 40);
    EXPECT_EQ(node.state_hash(), hash);
  }
  EXPECT_EQ(c.nodes[0].memory->links(), 0u) << "no link was opened on a stranger's word";
  // Every one but the empty endpoint (no connect-back asked) and the one that did not decode.
  EXPECT_EQ(c.nodes[0].service->engine().counters().refused_endpoints, hostile.size() - 2);
  ASSERT_TRUE(node.call("set", set_arg("b", Value(2)))) << "it still writes";
}

TEST(Sync, ConnectBackOpensOneLinkPerNodeAndBacksOffWhenItStaysSilent) {
  ManualClock clock(1'790'000'000'000);
  SimCluster c(1, clock, true);
  engine::Node& node = *c.nodes[0].node;
  // Hellos from one node id naming valid endpoints that nobody answers on.
  Stranger s(c.net, "stranger", endpoint_of(0));
  s.send(hello_from(node, 77, "tcp://silent:7000"));
  c.run(5);
  EXPECT_TRUE(c.nodes[0].memory->linked("tcp://silent:7000"));
  Stranger again(c.net, "stranger-again", endpoint_of(0));
  again.send(hello_from(node, 77, "tcp://silent-2:7000"));
  c.run(5);
  EXPECT_FALSE(c.nodes[0].memory->linked("tcp://silent-2:7000")) << "one link per node id at a time";
  c.run(30'100);  // never answered: the link is closed (after 30 s)
  EXPECT_FALSE(c.nodes[0].memory->linked("tcp://silent:7000"));
  Stranger third(c.net, "stranger-3", endpoint_of(0));
  third.send(hello_from(node, 77, "tcp://silent-3:7000"));
  c.run(5);
  EXPECT_FALSE(c.nodes[0].memory->linked("tcp://silent-3:7000")) << "backing off after the silent link";
  c.run(1'100);
  Stranger fourth(c.net, "stranger-4", endpoint_of(0));
  fourth.send(hello_from(node, 77, "tcp://silent-4:7000"));
  c.run(5);
  EXPECT_TRUE(c.nodes[0].memory->linked("tcp://silent-4:7000")) << "tried again after the wait";
}

TEST(Sync, HelloWithTheReceiversOwnIdIsAnsweredButNeverDialed) {
  ManualClock clock(1'790'000'000'000);
  SimCluster c(1, clock, true);
  engine::Node& node = *c.nodes[0].node;
  Stranger s(c.net, "mirror", endpoint_of(0));
  s.send(hello_from(node, node.node_id(), "tcp://mirror:7000"));
  c.run(5);
  auto answers = s.answers();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(std::get<wire::Hello>(answers[0]).node_id, node.node_id());
  EXPECT_FALSE(c.nodes[0].memory->linked("tcp://mirror:7000"));
}

// A store whose writer is slow: ingest_async keeps each ingest until
// release() stores it. Everything else goes to the node.
class SlowStore final : public testing::ForwardingStore {
 public:
  explicit SlowStore(engine::Node& inner) : ForwardingStore(inner) {}
  void ingest_async(std::vector<Update> updates, std::vector<proof::Head> heads, IngestDone done) override {
    kept_.push_back({std::move(updates), std::move(heads), std::move(done)});
  }
  // The updates of each ingest kept, in order.
  std::vector<size_t> kept() const {
    std::vector<size_t> sizes;
    for (const auto& k : kept_) sizes.push_back(k.updates.size());
    return sizes;
  }
  void release() {
    auto kept = std::move(kept_);
    kept_.clear();
    for (auto& k : kept) k.done(inner_.ingest(std::move(k.updates), std::move(k.heads)));
  }

 private:
  struct Kept {
    std::vector<Update> updates;
    std::vector<proof::Head> heads;
    IngestDone done;
  };
  std::vector<Kept> kept_;
};

// A SimCluster wrap that gives node `index` a SlowStore, kept in `out`.
SimCluster::Wrap slow_store_on(int index, SlowStore*& out) {
  return [index, &out](int i, engine::Node& node) -> std::unique_ptr<SyncStore> {
    if (i != index) return nullptr;
    auto s = std::make_unique<SlowStore>(node);
    out = s.get();
    return s;
  };
}

// Pushes are stored without the loop waiting for the store: while one ingest
// of pushes is out, the node goes on answering, and the pushes of the polls
// meanwhile are handed over together once it is back.
TEST(Sync, PushesAreStoredWithoutTheLoopWaitingAndThoseArrivingMeanwhileGoTogether) {
  ManualClock clock(1'790'000'000'000);
  SlowStore* slow = nullptr;
  // Without small diffs, so that only pushes and pulls carry updates here.
  SimCluster c(2, clock, /*full_mesh=*/true, wire::kFeatureDiff, nullptr, slow_store_on(1, slow));
  ASSERT_NE(slow, nullptr);
  c.run(50);
  ASSERT_TRUE(slow->kept().empty());
  ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a", Value(1))));
  c.run(10);
  ASSERT_EQ(slow->kept(), std::vector<size_t>{1}) << "the first push went to the store";
  for (int i = 2; i <= 3; ++i) {
    ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a", Value(i))));
    c.run(10);
  }
  EXPECT_EQ(slow->kept(), std::vector<size_t>{1}) << "one ingest of pushes out at a time";
  // Meanwhile the loop answers: node 0's round gets node 1's vector.
  const uint64_t vectors = c.nodes[1].transport->counts().frames.count(wire::Type::kVector)
                               ? c.nodes[1].transport->counts().frames.at(wire::Type::kVector)
                               : 0;
  c.run(300);
  EXPECT_GT(c.nodes[1].transport->counts().frames.at(wire::Type::kVector), vectors);
  EXPECT_EQ(slow->kept(), std::vector<size_t>{1});
  EXPECT_TRUE(c.nodes[1].node->vector().empty()) << "nothing is stored before the store says so";
  slow->release();
  c.run(1);
  ASSERT_EQ(slow->kept(), std::vector<size_t>{2}) << "the two pushes that waited go out together";
  slow->release();
  c.run(10);
  EXPECT_TRUE(slow->kept().empty());
  EXPECT_TRUE(c.converged());
  EXPECT_EQ(c.nodes[1].node->vector().at(c.nodes[0].node->node_id()), 3u);
  EXPECT_EQ(c.nodes[1].service->engine().counters().updates_received, 3u)
      << "what was on its way to the store was not pulled meanwhile";
}

// Relay trees count what is on its way to the store as held: a peer's Tree
// announcing (have) an update this node has handed to its store but not yet
// stored starts no graft and no pull of it.
TEST(Sync, AnUpdateOnItsWayToTheStoreIsNotGraftedOrPulledAgain) {
  ManualClock clock(1'790'000'000'000);
  SlowStore* slow = nullptr;
  SimCluster c(3, clock, /*full_mesh=*/true, wire::kFeatureDiff, nullptr, slow_store_on(1, slow));
  ASSERT_NE(slow, nullptr);
  c.run(300);  // handshakes, and Trees saying whom each node hears
  const OriginId origin = c.nodes[0].node->node_id();
  ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a", Value(1))));
  c.run(10);
  ASSERT_EQ(slow->kept(), std::vector<size_t>{1}) << "node 1 has the push on its way to the store";
  ASSERT_EQ(seq_of(c.nodes[2].node->vector(), origin), 1u);
  const auto sent = [&](wire::Type t) {
    const auto& f = c.nodes[1].transport->counts().frames;
    return f.count(t) ? f.at(t) : uint64_t{0};
  };
  const uint64_t requests = sent(wire::Type::kRequest);
  const uint64_t grafts = c.nodes[1].service->engine().counters().grafts;
  // Node 2 announces it holds the update, as a lazy edge of a tree does.
  c.nodes[2].transport->send(Link{true, endpoint_of(1)}, wire::encode(wire::Tree{{}, {}, {{origin, 1}}, std::nullopt}));
  c.run(50);  // past the graft delay (10 ms)
  EXPECT_EQ(c.nodes[1].service->engine().counters().grafts, grafts) << "no graft for what is on its way";
  EXPECT_EQ(sent(wire::Type::kRequest), requests) << "no pull of it either";
  slow->release();
  c.run(10);
  EXPECT_EQ(seq_of(c.nodes[1].node->vector(), origin), 1u);
  EXPECT_EQ(c.nodes[1].service->engine().counters().updates_received, 1u);
}

// A cluster whose node 1 stores through the writer's queue, so that its loop
// goes on while its commit is held (HeldCommit); the others store before
// their loop goes on. Without small diffs: an answer to a round would carry
// an update, which a node stores before its loop goes on. Peer state is
// saved once, at the start: a save later would wait for node 1's writer,
// which waits for the test's thread.
std::unique_ptr<SimCluster> cluster_with_held_relay(int n, ManualClock& clock) {
  return std::make_unique<SimCluster>(
      n, clock, /*full_mesh=*/false, wire::kFeatureDiff, [](SyncOptions& so) { so.save_peers_ms = 3'600'000; },
      [](int i, engine::Node& node) -> std::unique_ptr<SyncStore> {
        return std::make_unique<testing::ForwardingStore>(node, /*pass_async=*/i == 1);
      });
}

// Holds `relay`'s commits once its checks have passed (and the engine has
// taken what they passed) until release(); released at the latest when it
// goes, so that the writer is never left waiting whatever fails.
class HeldCommit {
 public:
  explicit HeldCommit(SimNode& relay) : state_(std::make_shared<State>()) {
    state_->released = state_->go.get_future().share();
    PeerService* service = relay.service.get();
    relay.node->set_verified_listener(
        [service, state = state_](const std::vector<Update>& u, const std::vector<proof::Head>& h) {
          service->on_verified(u, h);
          state->verified = true;
          state->released.wait();
        });
  }
  ~HeldCommit() { release(); }
  void release() {
    if (!state_->done.exchange(true)) state_->go.set_value();
  }
  bool verified() const { return state_->verified; }

 private:
  struct State {
    std::promise<void> go;
    std::shared_future<void> released;
    std::atomic<bool> verified{false}, done{false};
  };
  std::shared_ptr<State> state_;
};

// Node 1's writer works in real time beside the stepped loop: steps `c` 1 ms
// of the clock and 1 ms of waiting at a time until `done`, for at most `wait`.
bool step_until(SimCluster& c, const std::function<bool()>& done,
                std::chrono::milliseconds wait = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    c.run(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

// Relay before commit: a received update whose checks passed goes on to
// peers while its own commit is still to come (here held back on purpose).
TEST(Sync, AVerifiedUpdateIsRelayedBeforeItsCommit) {
  ManualClock clock(1'790'000'000'000);
  auto cluster = cluster_with_held_relay(3, clock);
  SimCluster& c = *cluster;
  c.net.cut_both(endpoint_of(0), endpoint_of(2));  // 2 gets 0's updates only through 1
  c.run(300);
  HeldCommit held(c.nodes[1]);
  ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a", Value(1))));
  const OriginId origin = c.nodes[0].node->node_id();
  const auto holds = [&](int i) { return c.nodes[static_cast<size_t>(i)].node->vector().count(origin) == 1; };
  EXPECT_TRUE(step_until(c, [&] { return holds(2); })) << "node 2 holds the update";
  EXPECT_FALSE(holds(1)) << "while node 1, which relayed it, has not committed it";
  held.release();
  EXPECT_TRUE(step_until(c, [&] { return holds(1); }));
  EXPECT_TRUE(c.converged());
}

// Relay ahead of the writer: a pushed run that continues what the relay
// verified last goes on from its loop, checked there, even while its writer
// is busy with the run before it. Without relay_ahead it waits for the writer.
void relay_while_the_writer_waits(bool relay_ahead) {
  ManualClock clock(1'790'000'000'000);
  auto cluster = std::make_unique<SimCluster>(
      3, clock, /*full_mesh=*/false, wire::kFeatureDiff,
      [relay_ahead](SyncOptions& so) {
        so.save_peers_ms = 3'600'000;
        so.relay_ahead = relay_ahead;
      },
      [](int i, engine::Node& node) -> std::unique_ptr<SyncStore> {
        return std::make_unique<testing::ForwardingStore>(node, /*pass_async=*/i == 1);
      });
  SimCluster& c = *cluster;
  c.net.cut_both(endpoint_of(0), endpoint_of(2));  // 2 gets 0's updates only through 1
  c.run(300);
  const OriginId origin = c.nodes[0].node->node_id();
  const auto seq = [&](int i) { return seq_of(c.nodes[static_cast<size_t>(i)].node->vector(), origin); };
  ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a", Value(1))));
  ASSERT_TRUE(step_until(c, [&] { return seq(1) == 1 && seq(2) == 1; })) << "node 1's writer verified origin 0";
  const auto before = c.nodes[1].node->ahead_counts();
  HeldCommit held(c.nodes[1]);
  ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a", Value(2))));
  ASSERT_TRUE(step_until(c, [&] { return held.verified(); })) << "node 1's writer holds #2";
  ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a", Value(3))));
  // Without relay_ahead, half a second (far past the push delay) shows #3 waiting.
  const bool relayed = step_until(c, [&] { return seq(2) == 3; },
                                  relay_ahead ? std::chrono::milliseconds(10'000) : std::chrono::milliseconds(500));
  EXPECT_EQ(seq(1), 1u) << "node 1 has committed neither #2 nor #3";
  const auto after = c.nodes[1].node->ahead_counts();
  if (relay_ahead) {
    EXPECT_TRUE(relayed) << "node 2 holds #3, which node 1's loop verified while its writer waited";
    EXPECT_EQ(after.runs - before.runs, 2u) << "#2 and #3, one push each";
  } else {
    EXPECT_FALSE(relayed) << "#3 waits for node 1's writer";
    EXPECT_EQ(after.runs, before.runs);
  }
  held.release();
  EXPECT_TRUE(step_until(c, [&] { return seq(1) == 3 && seq(2) == 3; }));
  EXPECT_TRUE(c.converged());
  // The writer took the signatures verified ahead instead of verifying them again.
  EXPECT_EQ(c.nodes[1].node->ahead_counts().signatures_reused - before.signatures_reused, relay_ahead ? 2u : 0u);
}

TEST(Sync, ARunVerifiedOnTheLoopIsRelayedWhileTheWriterIsBusy) { relay_while_the_writer_waits(true); }
TEST(Sync, WithoutRelayAheadARunWaitsForTheWriter) { relay_while_the_writer_waits(false); }

// A Have says its sender holds the updates it names, and a graft's Request
// is answered from the store: a relay announces an update to a peer that
// pruned its origin only once its own commit is done, not when it relays it.
TEST(Sync, AnUpdateIsAnnouncedToAPrunedPeerOnlyOnceItIsCommitted) {
  ManualClock clock(1'790'000'000'000);
  // A ring of four: node 2 hears node 0's updates through 1 and through 3.
  auto cluster = cluster_with_held_relay(4, clock);
  SimCluster& c = *cluster;
  const OriginId origin = c.nodes[0].node->node_id();
  c.run(300);
  ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a", Value(1))));
  ASSERT_TRUE(step_until(c, [&] { return c.converged() && c.nodes[1].node->vector().count(origin); }));
  // Node 2 prunes node 0's updates at node 1, as a duplicate push would make it.
  c.nodes[2].transport->send(Link{true, endpoint_of(1)}, wire::encode(wire::Tree{{origin}, {}, {}, std::nullopt}));
  c.run(20);
  c.net.cut_both(endpoint_of(3), endpoint_of(2));  // and hears of them from node 1 alone

  HeldCommit held(c.nodes[1]);
  // What node 1 says to node 2 about node 0's updates: the seqs it announced.
  std::vector<uint64_t> announced;
  const auto read_held = [&] {
    for (const Frame& f : c.nodes[1].transport->held_frames()) {
      if (f.link != Link{true, endpoint_of(2)}) continue;
      auto m = wire::decode(f.bytes);
      ASSERT_TRUE(m);
      if (const auto* push = std::get_if<wire::Push>(&*m)) {
        for (const Update& u : push->updates) EXPECT_NE(u.id().origin, origin) << "node 2 pruned it: not relayed";
      }
      if (const auto* t = std::get_if<wire::Tree>(&*m))
        for (const auto& [o, seq] : t->have)
          if (o == origin) announced.push_back(seq);
    }
    c.nodes[1].transport->release();
  };
  c.nodes[1].transport->hold(true);
  ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a", Value(2))));
  ASSERT_TRUE(step_until(c, [&] { return held.verified(); })) << "node 1 verified it";
  c.run(20);  // past the push delay: whatever node 1 would say now, it has said
  read_held();
  EXPECT_TRUE(announced.empty()) << "not announced while node 1's commit is to come";
  EXPECT_EQ(seq_of(c.nodes[2].node->vector(), origin), 1u);
  held.release();
  ASSERT_TRUE(step_until(c, [&] { return seq_of(c.nodes[1].node->vector(), origin) == 2; }));
  c.run(20);
  read_held();
  EXPECT_EQ(announced, std::vector<uint64_t>{2}) << "announced once it is committed";
  c.nodes[1].transport->hold(false);
  c.run(100);
  EXPECT_EQ(seq_of(c.nodes[2].node->vector(), origin), 2u) << "node 2 grafted node 1 and pulled it";
  EXPECT_TRUE(c.converged());
}

// A graft while pushes still bring an origin is a pull alone: the tree that
// brought them was slower once, not gone, so it is left as it is, and its
// late copy of what the pull brought prunes nobody. Only once no push has
// brought the origin for a second does a graft ask the announcer to relay
// it again. (Before, every graft moved the tree, and the late copy pruned
// the tree's own link: in a loaded sparse mesh trees churned.)
TEST(Sync, AGraftLeavesAWorkingTreeAloneAndALateCopyOfWhatItPulledPrunesNobody) {
  ManualClock clock(1'790'000'000'000);
  // A ring of four: node 2 hears node 0's updates through 1 and through 3.
  SimCluster c(4, clock, /*full_mesh=*/false, 0, [](SyncOptions& so) { so.anti_entropy_ms = 60'000; });
  const OriginId origin = c.nodes[0].node->node_id();
  c.run(300);
  ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a", Value(1))));
  c.run(100);
  ASSERT_TRUE(c.converged());
  // Node 2 takes node 0's updates from node 3 and announcements from node 1.
  c.nodes[2].transport->send(Link{true, endpoint_of(1)}, wire::encode(wire::Tree{{origin}, {}, {}, std::nullopt}));
  c.nodes[2].transport->send(Link{true, endpoint_of(3)}, wire::encode(wire::Tree{{}, {origin}, {}, std::nullopt}));
  c.run(20);
  const auto counters = [&] { return c.nodes[2].service->engine().counters(); };
  const uint64_t prunes = counters().prunes;

  // What node 2 asks of node 1 when node 3 is slow: a pull, and a graft or not.
  struct Asked {
    bool pulled = false, grafted = false;
  };
  const auto slow_tree = [&](const std::string& path) {
    c.nodes[3].transport->hold(true);  // node 3's push is late
    c.nodes[2].transport->hold(true);
    const uint64_t grafts = counters().grafts;
    EXPECT_TRUE(c.nodes[0].node->call("set", set_arg(path, Value(2))));
    c.run(30);  // node 1's Have, then the graft delay (10 ms)
    EXPECT_EQ(counters().grafts, grafts + 1) << path << ": node 1 announced what no push brought";
    Asked asked;
    for (const Frame& f : c.nodes[2].transport->held_frames()) {
      if (f.link != Link{true, endpoint_of(1)}) continue;
      auto m = wire::decode(f.bytes);
      EXPECT_TRUE(m);
      if (!m) continue;
      if (const auto* r = std::get_if<wire::Request>(&*m); r && r->origin == origin) asked.pulled = true;
      if (const auto* t = std::get_if<wire::Tree>(&*m))
        asked.grafted |= std::find(t->graft.begin(), t->graft.end(), origin) != t->graft.end();
    }
    c.nodes[2].transport->hold(false);
    c.nodes[2].transport->release();
    c.run(20);  // the pull is answered
    c.nodes[3].transport->hold(false);
    c.nodes[3].transport->release();  // and node 3's push comes after it
    c.run(20);
    EXPECT_TRUE(c.converged()) << path;
    return asked;
  };
  const Asked first = slow_tree("b");
  EXPECT_TRUE(first.pulled);
  EXPECT_FALSE(first.grafted) << "pushes of node 0 came within a second: the tree stays";
  EXPECT_EQ(counters().prunes, prunes) << "node 3's copy of what node 1 gave prunes nobody";

  // The tree still works: the next update comes by node 3's push, with no graft.
  const uint64_t grafts = counters().grafts;
  const uint64_t received = counters().updates_received;
  ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("c", Value(3))));
  c.run(50);
  EXPECT_TRUE(c.converged());
  EXPECT_EQ(counters().grafts, grafts);
  EXPECT_EQ(counters().updates_received, received + 1) << "one copy, pushed";
  EXPECT_EQ(counters().prunes, prunes);

  // No push of node 0 for over a second: a graft moves the tree to node 1.
  c.run(1100);
  const Asked second = slow_tree("d");
  EXPECT_TRUE(second.pulled);
  EXPECT_TRUE(second.grafted) << "no push brought node 0's updates for a second";
}

// While the store is slow, the pushes waiting for it are bounded: past the
// bound a push is dropped (counted), and pulled once the store has caught up.
TEST(Sync, PushesWaitingForASlowStoreAreBoundedAndWhatIsDroppedIsPulledLater) {
  ManualClock clock(1'790'000'000'000);
  SlowStore* slow = nullptr;
  SimCluster c(
      2, clock, /*full_mesh=*/true, wire::kFeatureDiff, [](SyncOptions& so) { so.max_waiting_push_bytes = 6000; },
      slow_store_on(1, slow));
  c.run(50);
  for (int i = 1; i <= 3; ++i) {  // about 4 KiB each, in polls of their own
    ASSERT_TRUE(c.nodes[0].node->call("set", set_arg("a", Value(std::string(4000, static_cast<char>('a' + i))))));
    c.run(10);
  }
  const SyncEngine& engine = c.nodes[1].service->engine();
  EXPECT_EQ(slow->kept(), std::vector<size_t>{1}) << "the first is with the store";
  EXPECT_EQ(engine.counters().pushes_dropped, 1u) << "the second waits; the third would pass the bound";
  slow->release();
  c.run(1);
  ASSERT_EQ(slow->kept(), std::vector<size_t>{1}) << "the one that waited";
  slow->release();
  for (int ms = 0; ms < 3000 && !c.converged(); ms += 10) c.run(10);
  EXPECT_TRUE(c.converged()) << "the dropped one was pulled";
  EXPECT_EQ(c.nodes[1].node->vector().at(c.nodes[0].node->node_id()), 3u);
}

// A catch-up from many origins: each origin is asked for a share of the
// link's credit, so every origin's first stretch comes in the first turn, and
// the answers that arrive together are stored in one commit (near the log's
// end together, not one origin's whole range at a time across the log).
// Gives `node` the updates of `origins` writers of `each` updates of about
// 4 KB: one writer after another, or taking turns (their updates interleave
// in time, as a busy cluster's do). Ingested in runs ending at the heads the
// writers kept, so that `node` keeps them too.
void give_origins(engine::Node* node, ManualClock& clock, TempDir& dirs, int origins, int each, bool in_turns) {
  std::vector<std::unique_ptr<engine::Node>> writers;
  for (int w = 0; w < origins; ++w) {
    const std::string dir = dirs.sub("w" + std::to_string(w));
    ASSERT_TRUE(engine::Node::init({dir, node->cluster_id(), std::nullopt, &clock}));
    engine::NodeOptions o;
    o.dir = dir;
    o.clock = &clock;
    writers.push_back(std::move(engine::Node::open(o)).value());
  }
  const auto write = [&](int w, int i) {
    ASSERT_TRUE(writers[static_cast<size_t>(w)]->call(
        "set", set_arg("w" + std::to_string(w) + "." + std::to_string(i), Value(std::string(4000, static_cast<char>('a' + w))))));
  };
  for (int outer = 0; outer < (in_turns ? each : origins); ++outer) {
    for (int inner = 0; inner < (in_turns ? origins : each); ++inner)
      in_turns ? write(inner, outer) : write(outer, inner);
    clock.advance(1);
  }
  for (auto& writer : writers)
    for (uint64_t from = 1; from <= static_cast<uint64_t>(each);) {
      auto range = writer->read_range(writer->node_id(), from, static_cast<uint64_t>(each), 1);
      ASSERT_TRUE(range && range->head && !range->updates.empty());
      auto report = node->ingest(range->updates, {*range->head});
      ASSERT_TRUE(report && report->accepted == range->updates.size());
      from += range->updates.size();
    }
}

// The link credit of the catch-up tests.
constexpr size_t kCatchUpCredit = 1 << 20;

// `nodes` nodes in a full mesh (two unless said), node 0 cut from the others
// once they have handshaken, while it takes the updates of `origins` writers
// (give_origins); the others hold none of them.
void cut_off_catch_up(ManualClock& clock, TempDir& writers, int origins, int each, bool in_turns,
                      std::unique_ptr<SimCluster>& out, int nodes = 2) {
  out = std::make_unique<SimCluster>(nodes, clock, /*full_mesh=*/true, 0,
                                     [](SyncOptions& so) { so.credit_bytes = kCatchUpCredit; });
  SimCluster& c = *out;
  c.run(50);
  for (int i = 1; i < nodes; ++i) c.net.cut_both(endpoint_of(0), endpoint_of(i));
  ASSERT_NO_FATAL_FAILURE(give_origins(c.nodes[0].node.get(), clock, writers, origins, each, in_turns));
  c.run(20);  // node 0's pushes of them are lost in the cut
  for (int i = 1; i < nodes; ++i) ASSERT_TRUE(c.nodes[static_cast<size_t>(i)].node->vector().empty());
}

TEST(Sync, ACatchUpFromManyOriginsAsksEachForAShareAndStoresAnswersTogether) {
  ManualClock clock(1'790'000'000'000);
  // Ten origins of about 120 KiB each, held by node 0 only.
  constexpr int kOrigins = 10, kEach = 30;
  TempDir writers;
  std::unique_ptr<SimCluster> cluster;
  ASSERT_NO_FATAL_FAILURE(cut_off_catch_up(clock, writers, kOrigins, kEach, /*in_turns=*/false, cluster));
  SimCluster& c = *cluster;
  size_t commits = 0;
  PeerService* service = c.nodes[1].service.get();
  c.nodes[1].node->set_commit_listener([&](const std::vector<Update>& u, const std::vector<proof::Head>& h) {
    ++commits;
    service->on_committed(u, h);
  });
  // Node 1's first Requests are held, to be read.
  FaultyTransport& t1 = *c.nodes[1].transport;
  t1.hold(true);
  c.net.heal();
  std::vector<wire::Request> asked;
  for (int ms = 0; ms < 1000 && asked.empty(); ++ms) {
    c.run(1);
    for (const Frame& f : t1.held_frames())
      if (auto m = wire::decode(f.bytes); m && std::holds_alternative<wire::Request>(*m))
        asked.push_back(std::get<wire::Request>(*m));
  }
  ASSERT_EQ(asked.size(), static_cast<size_t>(kOrigins)) << "every origin is asked for in the first turn";
  for (const auto& r : asked) {
    EXPECT_EQ(r.from_seq, 1u);
    EXPECT_EQ(r.max_bytes, kCatchUpCredit / kOrigins) << "an equal share of the credit";
  }
  t1.hold(false);
  t1.release();
  const uint64_t answers_before = t1.counts().frames_in.count(wire::Type::kUpdates)
                                      ? t1.counts().frames_in.at(wire::Type::kUpdates)
                                      : 0;
  c.run(2000);
  ASSERT_TRUE(c.converged());
  EXPECT_EQ(c.nodes[1].node->vector(), c.nodes[0].node->vector());
  const uint64_t answers = t1.counts().frames_in.at(wire::Type::kUpdates) - answers_before;
  EXPECT_GE(answers, static_cast<uint64_t>(2 * kOrigins)) << "each origin took more than one answer";
  EXPECT_LE(commits * 4, answers) << commits << " commits for " << answers << " answers";
}

// The answers of a catch-up from many origins come one by one, the next
// turn's beginning before the last of this one's; once every origin has
// answered, each answer is held back until the answers it would land below
// are in, so that every commit lands above the one before it (appends, a
// fold at the head), not among its keys.
TEST(Sync, ACatchUpFromOriginsTakingTurnsCommitsEachTurnAboveTheLast) {
  ManualClock clock(1'790'000'000'000);
  constexpr int kOrigins = 8, kEach = 120;  // about 480 KB each: several turns of 128 KiB shares
  TempDir writers;
  std::unique_ptr<SimCluster> cluster;
  ASSERT_NO_FATAL_FAILURE(cut_off_catch_up(clock, writers, kOrigins, kEach, /*in_turns=*/true, cluster));
  SimCluster& c = *cluster;
  std::vector<std::pair<UpdateId, UpdateId>> commits;  // lowest and highest key of each
  std::set<OriginId> answered;
  size_t first_turn = 0;  // commits until every origin had answered once
  PeerService* service = c.nodes[1].service.get();
  c.nodes[1].node->set_commit_listener([&](const std::vector<Update>& u, const std::vector<proof::Head>& h) {
    if (!u.empty()) {
      const auto [lo, hi] = std::minmax_element(u.begin(), u.end(), [](const Update& x, const Update& y) { return x.id() < y.id(); });
      commits.emplace_back(lo->id(), hi->id());
      for (const Update& x : u) answered.insert(x.id().origin);
      if (answered.size() < static_cast<size_t>(kOrigins)) first_turn = commits.size();
    }
    service->on_committed(u, h);
  });
  // Node 0's frames go one at a time: each answer comes in a poll of its own.
  FaultyTransport& t0 = *c.nodes[0].transport;
  t0.hold(true);
  c.net.heal();
  for (int step = 0; step < 20'000 && !c.converged(); ++step) {
    t0.release_one();
    c.run(1);
  }
  t0.hold(false);
  t0.release();
  c.run(100);
  ASSERT_TRUE(c.converged());
  ASSERT_GE(commits.size(), first_turn + 3) << "several turns after the first";
  for (size_t i = first_turn + 1; i < commits.size(); ++i)
    EXPECT_LT(commits[i - 1].second, commits[i].first)
        << "commit " << i << " of " << commits.size() << " lands among the keys of the one before";
}

// A catch-up from node 0, node 1's only peer, with nothing copied to push:
// every update node 1 stores came from node 0, which holds them all.
void catch_up_from_node_0(SimCluster& c) {
  const uint64_t taken_before = c.nodes[1].service->engine().updates_taken_for_push();
  c.net.heal();
  c.run(2000);
  ASSERT_TRUE(c.converged());
  EXPECT_EQ(c.nodes[1].node->vector(), c.nodes[0].node->vector());
  EXPECT_EQ(c.nodes[1].service->engine().updates_taken_for_push(), taken_before)
      << "no copy for a push to the only peer, which sent them";
}

// The same with a node 2 that hears node 0 only through node 1: node 1
// copies what node 2 lacks and pushes it on as it stores it.
void catch_up_through_node_1(SimCluster& c) {
  const auto pushes = [&] {
    const auto& sent = c.nodes[1].transport->counts().frames;
    auto it = sent.find(wire::Type::kPush);
    return it == sent.end() ? uint64_t{0} : it->second;
  };
  const uint64_t pushes_before = pushes();
  const uint64_t taken_before = c.nodes[1].service->engine().updates_taken_for_push();
  c.net.heal();
  c.net.cut_both(endpoint_of(0), endpoint_of(2));
  c.run(2000);
  ASSERT_TRUE(c.converged());
  EXPECT_EQ(c.nodes[2].node->vector(), c.nodes[0].node->vector());
  EXPECT_GT(c.nodes[1].service->engine().updates_taken_for_push(), taken_before)
      << "node 1 copies what node 2 lacks";
  EXPECT_GT(pushes(), pushes_before) << "and pushes it to node 2";
}

// Storing a catch-up copies an update to push only for a ready peer that
// lacks it: none for the peer that sent it.
TEST(Sync, ACatchUpCopiesUpdatesToPushOnlyForAPeerThatLacksThem) {
  ManualClock clock(1'790'000'000'000);
  constexpr int kOrigins = 4, kEach = 30;
  for (int nodes : {2, 3}) {
    SCOPED_TRACE(std::to_string(nodes) + " nodes");
    TempDir writers;
    std::unique_ptr<SimCluster> cluster;
    ASSERT_NO_FATAL_FAILURE(cut_off_catch_up(clock, writers, kOrigins, kEach, /*in_turns=*/false, cluster, nodes));
    if (nodes == 2) ASSERT_NO_FATAL_FAILURE(catch_up_from_node_0(*cluster));
    else ASSERT_NO_FATAL_FAILURE(catch_up_through_node_1(*cluster));
  }
}

TEST(Sync, RequestEdgeCasesAnswerAsDocumented) {
  ManualClock clock(1'790'000'000'000);
  SimCluster c(1, clock, true);
  engine::Node& node = *c.nodes[0].node;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(node.call("set", set_arg("k", Value(std::string(100, 'x')))));
  const OriginId me = node.node_id();
  Stranger s(c.net, "asker", endpoint_of(0));
  s.send(hello_from(node, 4242, ""));
  c.run(2);
  (void)s.answers();
  auto ask = [&](wire::Request r) {
    s.send(r);
    c.run(2);
    auto a = s.answers();
    EXPECT_EQ(a.size(), 1u);
    return a.empty() ? wire::Updates{} : std::get<wire::Updates>(a[0]);
  };
  EXPECT_TRUE(ask({me, 0, 3, 1 << 20}).updates.empty()) << "from_seq 0";
  EXPECT_TRUE(ask({me, 4, 3, 1 << 20}).updates.empty()) << "from > to";
  EXPECT_TRUE(ask({0, 1, 3, 1 << 20}).updates.empty()) << "reserved origin 0";
  EXPECT_TRUE(ask({~uint64_t{0}, 1, 3, 1 << 20}).updates.empty()) << "reserved origin all ones";
  wire::Updates one = ask({me, 1, 5, 0});
  // max_bytes 0 still returns something: with signed origins, the run up to
  // the first head the node holds (heads within 64 KiB are thinned away),
  // whether or not the link carries heads.
  ASSERT_GE(one.updates.size(), 1u) << "max_bytes 0 still returns a run";
  ASSERT_LT(one.updates.size(), 5u);
  EXPECT_FALSE(one.head) << "a link without the signed feature (this Hello names none) gets no heads";
  EXPECT_TRUE(one.more) << "stopped for bytes with later seqs held";
  wire::Updates all = ask({me, 1, 5, 1 << 20});
  EXPECT_EQ(all.updates.size(), 5u);
  EXPECT_FALSE(all.more);
  wire::Updates beyond = ask({me, 4, 9, 1 << 20});
  EXPECT_EQ(beyond.updates.size(), 2u);
  EXPECT_FALSE(beyond.more) << "asked past what is held: nothing more is held";
}

TEST(Sync, ClusterConvergesThroughLossDuplicationDelayAndReordering) {
  ManualClock clock(1'790'000'000'000);
  SimCluster c(4, clock, /*full_mesh=*/false);
  for (auto& n : c.nodes) n.transport->faults() = testing::Faults{0.2, 0.1, 0.2, 30};
  c.run(200);
  for (int i = 0; i < 60; ++i)
    ASSERT_TRUE(c.nodes[static_cast<size_t>(i % 4)].node->call("inc", Value(Map{{"path", Value("n")}, {"by", Value(1)}})));
  c.run(4000);
  for (auto& n : c.nodes) n.transport->faults() = testing::Faults{};
  c.run(3000);
  ASSERT_TRUE(c.converged());
  c.nodes[0].node->read([](const State& s) { EXPECT_EQ(s.get({"n"})->as_int(), 60); });
  const auto& counts = c.nodes[0].transport->counts();
  EXPECT_GT(counts.dropped, 0u);
  EXPECT_GT(counts.duplicated, 0u);
  EXPECT_GT(counts.reordered, 0u);
  EXPECT_GT(counts.frames.at(wire::Type::kVector), 0u);
}

TEST(Sync, HeldFramesWaitForReleaseAndTurnsAreTimed) {
  ManualClock clock(1'790'000'000'000);
  SimCluster c(2, clock, /*full_mesh=*/false);
  TurnTiming timing;
  c.nodes[1].service->set_timing(&timing);
  c.run(50);
  ASSERT_TRUE(c.converged());
  EXPECT_GT(timing.frames[static_cast<size_t>(wire::Type::kHello)], 0u);
  EXPECT_GE(timing.tick_s, 0.0);
  EXPECT_GT(c.nodes[1].transport->counts().frames_in.at(wire::Type::kHello), 0u);

  FaultyTransport& t0 = *c.nodes[0].transport;
  t0.hold(true);
  ASSERT_TRUE(c.nodes[0].node->call("inc", Value(Map{{"path", Value("n")}, {"by", Value(1)}})));
  c.run(20);
  EXPECT_FALSE(c.converged());  // the push is kept, not sent
  ASSERT_GT(t0.held(), 0u);
  const size_t held = t0.held();
  EXPECT_TRUE(t0.release_one());
  EXPECT_EQ(t0.held(), held - 1);
  t0.hold(false);
  EXPECT_EQ(t0.release(), held - 1);
  EXPECT_EQ(t0.held(), 0u);
  EXPECT_FALSE(t0.release_one());
  c.run(50);
  ASSERT_TRUE(c.converged());
  c.nodes[1].service->set_timing(nullptr);
}

TEST(Wire, TypeOfReadsTheHeaderOnly) {
  EXPECT_EQ(*wire::type_of(wire::encode(wire::Request{1, 1, 1, 1})), wire::Type::kRequest);
  EXPECT_EQ(*wire::type_of(wire::encode(wire::Push{})), wire::Type::kPush);
  EXPECT_FALSE(wire::type_of(""));
  EXPECT_FALSE(wire::type_of(std::string("\x93\x01\x0c\x90", 4))) << "unknown type";
  EXPECT_EQ(*wire::type_of(wire::encode(wire::Tree{})), wire::Type::kTree);
  EXPECT_EQ(wire::type_of(std::string("\x93\x02\x01\x90", 4)).status().code(), Status::Code::kRefused);
  EXPECT_EQ(*wire::type_of(std::string("\x93\xcc\x01\xcc\x03\x90", 6)), wire::Type::kVector) << "any uint form";
}

TEST(Wire, TreeRoundTripsAndItsListsAreChecked) {
  wire::Tree t{{1, 2}, {3}, {{4, 40}, {5, 50}}, std::vector<uint64_t>{6, 7}};
  auto m = wire::decode(wire::encode(t));
  ASSERT_TRUE(m) << m.status().message();
  const auto& back = std::get<wire::Tree>(*m);
  EXPECT_EQ(back.prune, t.prune);
  EXPECT_EQ(back.graft, t.graft);
  EXPECT_EQ(back.have, t.have);
  ASSERT_TRUE(back.hears);
  EXPECT_EQ(*back.hears, *t.hears);
  auto none = wire::decode(wire::encode(wire::Tree{}));
  ASSERT_TRUE(none);
  EXPECT_FALSE(std::get<wire::Tree>(*none).hears) << "nil hears: unchanged, not empty";
  // [1, 11, [[], [], [[4]], nil]]: a have entry of one element.
  EXPECT_FALSE(wire::decode(std::string("\x93\x01\x0b\x94\x90\x90\x91\x91\x04\xc0", 10)));
  // [1, 11, [["x"], [], [], nil]]: an origin that is not a uint.
  EXPECT_FALSE(wire::decode(std::string("\x93\x01\x0b\x94\x91\xa1x\x90\x90\xc0", 10)));
  // Over kMaxTreeEntries in one list.
  wire::Tree big;
  big.prune.assign(wire::kMaxTreeEntries + 1, 9);
  EXPECT_FALSE(wire::decode(wire::encode(big)));
}

// Found by fuzz_frames: decode read the type through an 8-bit cast, so type
// 0x1a220101 was Hello; and type_of refused the signed forms decode takes.
TEST(Wire, TypeIsCheckedBeforeNarrowingAndReadAlikeByTypeOf) {
  std::string hello_body = wire::encode(wire::Hello{"c", 1, "tcp://x", 1, 1}).substr(3);
  for (const std::string& type : {std::string("\xcd\x01\x01", 3), std::string("\xd2\x1a\x22\x01\x01", 5)}) {
    std::string frame = "\x93\x01" + type + hello_body;
    EXPECT_FALSE(wire::decode(frame)) << "type 257 or 0x1a220101 is no type";
    EXPECT_FALSE(wire::type_of(frame));
  }
  // A non-negative int8/int32 is a uint for both readers (PROTOCOL.md: any integer encoding).
  std::string frame = std::string("\x93\xd0\x01\xd2\x00\x00\x00\x01", 8) + hello_body;
  ASSERT_TRUE(wire::decode(frame));
  ASSERT_TRUE(wire::type_of(frame));
  EXPECT_EQ(*wire::type_of(frame), wire::Type::kHello);
  EXPECT_FALSE(wire::type_of(std::string("\x93\x01\xd0\xff\x90", 5))) << "a negative type";
}

TEST(Wire, VectorPagesAreCheckedBeforeNarrowing) {
  // [1, 3, [page 0, pages 2^32 + 1, false, []]]: once read as 32 bits, pages would be 1.
  std::string frame("\x93\x01\x03\x94\x00\xcf\x00\x00\x00\x01\x00\x00\x00\x01\xc2\x90", 16);
  auto m = wire::decode(frame);
  ASSERT_FALSE(m);
  EXPECT_NE(m.status().message().find("page"), std::string::npos) << m.status().message();
  EXPECT_FALSE(wire::decode(wire::encode(wire::Vector{0, 0, false, {}}))) << "pages = 0";
  EXPECT_FALSE(wire::decode(wire::encode(wire::Vector{0, 65, false, {}}))) << "more than 64 pages";
  EXPECT_TRUE(wire::decode(wire::encode(wire::Vector{0, 1, false, {}}))) << "an empty vector is one empty page";
}

TEST(Wire, AFrameWithABadBodyIsMalformedAsAWhole) {
  std::string good = wire::encode(wire::Push{{Update::make(UpdateId{5, 6}, 1, "set", "\\x80")}, {}});
  ASSERT_TRUE(wire::decode(good));
  // The same envelope with the body's seq changed to 0 (not a valid body).
  std::string bad = good;
  size_t at = bad.find(std::string("\x93\x01\xa3set", 6));
  ASSERT_NE(at, std::string::npos);
  bad[at + 1] = 0;
  auto m = wire::decode(bad);
  ASSERT_FALSE(m);
  EXPECT_NE(m.status().message().find("seq"), std::string::npos) << m.status().message();
}

// --- compressed bodies (kFeatureCompress) ---------------------------------------------

// A Push of `n` updates whose values are padded as people's records often are.
std::string padded_push(int n) {
  wire::Push p;
  for (int i = 0; i < n; ++i)
    p.updates.push_back(Update::make(UpdateId{1000 + static_cast<uint64_t>(i), 7}, static_cast<uint64_t>(i + 1), "set",
                                     "{path: k" + std::to_string(i) + ", value: " + std::string(100, 'x') + "}"));
  return wire::encode(p);
}

// [version, type, bin(zstd)] of `body` under `type`, built by hand.
std::string compressed_frame(uint8_t type, std::string_view zstd_bytes) {
  std::string f = {'\x93', '\x01', static_cast<char>(type)};
  f += '\xc6';
  for (int shift = 24; shift >= 0; shift -= 8) f += static_cast<char>((zstd_bytes.size() >> shift) & 0xff);
  f += zstd_bytes;
  return f;
}

std::string zstd_of(std::string_view bytes) {
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), bytes.data(), bytes.size(), 1);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

TEST(Wire, CompressedBodiesRoundTripOnlyWhereTheLinkAgreed) {
  const std::string plain = padded_push(20);
  auto small = wire::compress(plain);
  ASSERT_TRUE(small);
  EXPECT_LT(small->size(), plain.size() / 3) << "20 padded updates";
  EXPECT_EQ(*wire::type_of(*small), wire::Type::kPush) << "the header stays readable";
  auto back = wire::decode(*small, /*compressed_ok=*/true);
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(wire::encode(*back), plain);
  auto refused = wire::decode(*small, /*compressed_ok=*/false);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.status().message().find("did not agree"), std::string::npos) << refused.status().message();
  // A plain frame is read alike either way.
  EXPECT_TRUE(wire::decode(plain, true));
  // What is not worth it, or may never be compressed, goes as it is.
  EXPECT_FALSE(wire::compress(wire::encode(wire::Request{1, 1, 1, 1})));
  wire::Hello h{"c1", 1, "tcp://" + std::string(300, 'h') + ":7000", 1 << 20, 4 << 20};
  EXPECT_FALSE(wire::compress(wire::encode(h))) << "a Hello is read before features are known";
  EXPECT_FALSE(wire::compress(wire::encode(wire::Error{wire::ErrorCode::kMalformed, std::string(500, 'e')})));
}

TEST(Wire, HostileCompressedBodiesAreRefusedBeforeTheyCostMemory) {
  const std::string plain = padded_push(3);
  const std::string body = plain.substr(3);
  ASSERT_TRUE(wire::decode(compressed_frame(6, zstd_of(body)), true)) << "the hand-built frame is good";
  auto refused = [](const std::string& f, const std::string& why) {
    auto m = wire::decode(f, true);
    EXPECT_FALSE(m) << why;
    if (!m) {
      EXPECT_EQ(m.status().code(), Status::Code::kCorruption) << why;
      EXPECT_EQ(m.status().message().find('\n'), std::string::npos) << "one line";
    }
  };
  // Far more than a frame may hold, in a few hundred bytes.
  refused(compressed_frame(6, zstd_of(std::string(wire::kMaxFrameBytes + 1, '\x90'))), "over the frame limit");
  // A zstd frame that does not name its size.
  {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
    std::string out(ZSTD_compressBound(body.size()), '\0');
    const size_t n = ZSTD_compress2(c, out.data(), out.size(), body.data(), body.size());
    ZSTD_freeCCtx(c);
    ASSERT_FALSE(ZSTD_isError(n));
    out.resize(n);
    ASSERT_EQ(ZSTD_getFrameContentSize(out.data(), out.size()), ZSTD_CONTENTSIZE_UNKNOWN);
    refused(compressed_frame(6, out), "no size named");
  }
  refused(compressed_frame(6, zstd_of(body) + zstd_of(body)), "two zstd frames");
  refused(compressed_frame(6, zstd_of(body + "\x90")), "bytes after the body");
  refused(compressed_frame(6, zstd_of("\xc0")), "a body that is not an array");
  refused(compressed_frame(1, zstd_of(wire::encode(wire::Hello{"c", 1, "", 1, 1}).substr(3))), "a compressed Hello");
  refused(compressed_frame(7, zstd_of("\x93\xa0\xa0\xa0")), "a compressed Join");
  refused(compressed_frame(6, "not zstd at all"), "garbage");
  std::string cut = compressed_frame(6, zstd_of(body));
  refused(cut.substr(0, cut.size() - 1), "cut short");
  refused(std::string("\x93\x01\x06\xc6\xff\xff\xff\xff", 8), "a length past the end");
  // Nested: a compressed body whose content is itself a compressed frame's body.
  auto once = wire::compress(padded_push(20));
  ASSERT_TRUE(once);
  refused(compressed_frame(6, zstd_of(once->substr(3))), "compressed twice");
  // Random damage to a good one: refused or read, never a crash.
  auto rng = testing::seeded_rng();
  for (int i = 0; i < 20000; ++i) {
    std::string f = *once;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) f[rng() % f.size()] = static_cast<char>(rng() & 0xff);
    if (rng() % 4 == 0) f.resize(rng() % f.size());
    (void)wire::decode(f, true);
  }
}

TEST(Sync, LinksCompressWhereBothSidesAgreeAndMixedClustersStillConverge) {
  // Bytes on the wire for the same 60 calls: every link compressing, none,
  // and half the nodes without the feature.
  auto run = [](std::function<bool(int)> compress_off) {
    ManualClock clock(1'790'000'000'000);
    SimCluster c(3, clock, /*full_mesh=*/true, 0, [&](SyncOptions& so) {
      for (int i = 0; i < 3; ++i)
        if (so.endpoint == endpoint_of(i) && compress_off(i)) so.features_off = wire::kFeatureCompress;
    });
    c.run(50);
    for (int i = 0; i < 60; ++i)
      EXPECT_TRUE(c.nodes[static_cast<size_t>(i % 3)].node->call(
          "set", set_arg("k" + std::to_string(i), Value(std::string(100, 'x') + std::to_string(i)))));
    c.run(1000);
    EXPECT_TRUE(c.converged());
    uint64_t bytes = 0;
    for (auto& s : c.nodes) {
      EXPECT_EQ(s.service->engine().counters().bad_frames, 0u);
      EXPECT_EQ(s.node->vector().size(), 3u);
      bytes += s.service->engine().counters().bytes_out;
    }
    return bytes;
  };
  const uint64_t all = run([](int) { return false; });
  const uint64_t none = run([](int) { return true; });
  const uint64_t mixed = run([](int i) { return i == 0; });
  EXPECT_LT(all, none * 7 / 10) << "compressed " << all << " bytes, plain " << none;
  EXPECT_LT(mixed, none) << "the link between nodes 1 and 2 compresses";
  EXPECT_GT(mixed, all);
}

}  // namespace
}  // namespace replog

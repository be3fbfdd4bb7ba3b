// Rules of PROTOCOL.md, docs/STORAGE.md, docs/VALUES.md and docs/METHODS.md
// that no other test held to account: retire, vectors in pages (more than
// 1,024 origins, the 64-page cap), Hello with other limits and the link to
// oneself, one Request per origin with its expiry and credit, the protocol
// limits (update size on the wire, 32 path segments, nanoseconds, the one
// NaN) and an unknown storage format version.
//
// The sync rules are checked from the outside: one real node (Node, SyncEngine
// through PeerService) on an in-memory network, and a fake peer that speaks
// the wire protocol by hand and records every frame the node sends it.
#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cmath>
#include <functional>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "node/core/hlc.h"
#include "node/engine/node.h"
#include "node/sync/peer_service.h"
#include "protocol/bytes.h"
#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"
#include "protocol/wire.h"
#include "storage/update_log.h"
#include "support/memory_transport.h"
#include "temp_dir.h"

namespace replog {
namespace {

using testing::MemoryNetwork;
using testing::MemoryTransport;
using testing::TempDir;

constexpr int64_t kNow = 1'790'000'000'000;  // 2026-09-21
const std::string kNodeEndpoint = "tcp://node:7000";

Value set_arg(const Value& path, Value v) { return Value(Map{{"path", path}, {"value", std::move(v)}}); }

Update make_update(OriginId origin, uint64_t seq, int64_t ms, const std::string& method, const Value& arg) {
  return Update::make(UpdateId{hlc::make(ms, 0), origin}, seq, method, encode_msgpack(arg));
}

std::string hex_bytes(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

std::string to_hex_str(std::string_view b) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

// --- one node on an in-memory network, and fake peers ---------------------------------

// A peer written by hand: it listens at `endpoint` (the node dials it when
// configured to) and can dial the node itself. Every frame the node sends it
// is decoded and kept, in order.
struct FakePeer {
  FakePeer(MemoryNetwork& net, std::string endpoint, OriginId id) : transport(net, std::move(endpoint)), node_id(id) {}

  // Frames that arrived since the last call, decoded (an undecodable one fails the test).
  std::vector<std::pair<Link, wire::Message>> take() {
    std::vector<std::pair<Link, wire::Message>> out;
    for (auto& f : transport.poll(0)) {
      auto m = wire::decode(f.bytes);
      EXPECT_TRUE(m) << "the node sent a frame that does not decode: " << m.status().message();
      if (m) out.emplace_back(f.link, std::move(m).value());
    }
    return out;
  }
  // Answers on the node's outgoing link to us (it arrives on the node's DEALER).
  void answer(const wire::Message& m) { transport.send(Link{false, kNodeEndpoint}, wire::encode(m)); }
  // Sends on our own outgoing link to the node (a request at its ROUTER).
  void ask(const wire::Message& m) {
    EXPECT_TRUE(transport.connect(kNodeEndpoint));
    transport.send(Link{true, kNodeEndpoint}, wire::encode(m));
  }
  wire::Hello hello(const std::string& cluster) const {
    return wire::Hello{cluster, node_id, "", limits::kMaxUpdateBytes, wire::kMaxFrameBytes};
  }

  MemoryTransport transport;
  OriginId node_id;
};

template <typename T>
std::vector<T> of_type(const std::vector<std::pair<Link, wire::Message>>& frames) {
  std::vector<T> out;
  for (const auto& [_, m] : frames)
    if (auto* x = std::get_if<T>(&m)) out.push_back(*x);
  return out;
}

class OneNode : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> peers) {
    std::string dir = tmp_.sub("n");
    engine::InitOptions init;
    init.dir = dir;
    init.clock = &clock_;
    ASSERT_TRUE(engine::Node::init(init));
    engine::NodeOptions o;
    o.verify_origins = false;  // hand-made updates: form and replay, not proof
    o.dir = dir;
    o.clock = &clock_;
    auto n = engine::Node::open(o);
    ASSERT_TRUE(n) << n.status().message();
    node_ = std::move(n).value();
    transport_ = std::make_unique<MemoryTransport>(net_, kNodeEndpoint);
    SyncOptions so;
    so.endpoint = kNodeEndpoint;
    so.peers = std::move(peers);
    so.anti_entropy_ms = 10'000'000;  // no rounds: every Vector in these tests is one the test caused
    so.seed = 1;
    service_ = std::make_unique<PeerService>(*node_, *transport_, clock_, so, [](int, const std::string&) {});
    PeerService* s = service_.get();
    node_->set_commit_listener([s](const std::vector<Update>& u, const std::vector<proof::Head>& h) { s->on_committed(u, h); });
    service_->start();
  }
  void TearDown() override {
    if (node_) node_->set_commit_listener(nullptr);
    service_.reset();
  }
  // Advances the clock by `ms` in steps of `step`, letting the node run each step.
  void Run(int64_t ms, int64_t step = 1) {
    for (int64_t t = 0; t < ms; t += step) {
      clock_.advance(step);
      service_->run_once(0);
      service_->run_once(0);
    }
  }
  // The node dials `peer`; the peer answers its Hello. Returns what the node sent after.
  std::vector<std::pair<Link, wire::Message>> Handshake(FakePeer& peer) {
    Run(30);
    auto first = peer.take();
    EXPECT_FALSE(of_type<wire::Hello>(first).empty()) << "the node said no Hello to a configured peer";
    peer.answer(peer.hello(node_->cluster_id()));
    Run(5);
    return peer.take();
  }
  // Sends `vector` to the node as the answer to its own (reply = true), in pages.
  static void AnswerVector(FakePeer& peer, const std::vector<std::pair<uint64_t, uint64_t>>& entries) {
    uint32_t pages = static_cast<uint32_t>(std::max<size_t>(1, (entries.size() + 1023) / 1024));
    for (uint32_t p = 0; p < pages; ++p) {
      wire::Vector v{p, pages, true, {}};
      for (size_t i = p * 1024; i < std::min(entries.size(), size_t{p + 1} * 1024); ++i) v.entries.push_back(entries[i]);
      peer.answer(v);
    }
  }

  TempDir tmp_;
  ManualClock clock_{kNow};
  MemoryNetwork net_;
  std::unique_ptr<engine::Node> node_;
  std::unique_ptr<MemoryTransport> transport_;
  std::unique_ptr<PeerService> service_;
};

// --- vectors in pages -----------------------------------------------------------------

TEST_F(OneNode, VectorOfMoreThan1024OriginsIsSentInPagesOfAtMost1024InOrder) {
  FakePeer peer(net_, "tcp://peer:7000", 501);
  ASSERT_NO_FATAL_FAILURE(Start({"tcp://peer:7000"}));
  std::vector<Update> ups;
  for (OriginId o = 1; o <= 2500; ++o) ups.push_back(make_update(o * 7919, 1, kNow - 1000, "set", set_arg(Value("a"), Value(1))));
  auto r = node_->ingest(ups);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->accepted, 2500u);

  auto vectors = of_type<wire::Vector>(Handshake(peer));
  ASSERT_EQ(vectors.size(), 3u) << "2,500 origins: pages of 1,024, 1,024 and 452";
  VersionVector got;
  for (uint32_t i = 0; i < vectors.size(); ++i) {
    EXPECT_EQ(vectors[i].page, i) << "pages go in order";
    EXPECT_EQ(vectors[i].pages, 3u);
    EXPECT_FALSE(vectors[i].reply);
    EXPECT_LE(vectors[i].entries.size(), wire::kVectorPageEntries);
    for (auto& [o, s] : vectors[i].entries) got[o] = s;
  }
  EXPECT_EQ(vectors[0].entries.size(), 1024u);
  EXPECT_EQ(vectors[2].entries.size(), 452u);
  EXPECT_EQ(got, node_->vector()) << "the pages together are the whole vector";
}

TEST_F(OneNode, PagesOutOfOrderOrOfAnotherCountAreDroppedAndInOrderOnesAreUsed) {
  FakePeer peer(net_, "tcp://peer:7000", 502);
  ASSERT_NO_FATAL_FAILURE(Start({"tcp://peer:7000"}));
  Handshake(peer);
  // Page 0: 1,024 origins the peer holds nothing of; page 1: three it holds.
  std::vector<std::pair<uint64_t, uint64_t>> page0, page1;
  for (uint64_t i = 0; i < 1024; ++i) page0.emplace_back(100'000 + i, 0);
  for (uint64_t o : {900'001, 900'002, 900'003}) page1.emplace_back(o, 4);
  auto requests = [&] {
    Run(5);
    return of_type<wire::Request>(peer.take());
  };
  peer.answer(wire::Vector{1, 2, true, page1});
  EXPECT_TRUE(requests().empty()) << "page 1 before page 0 is not used";
  peer.answer(wire::Vector{0, 2, true, page0});
  peer.answer(wire::Vector{1, 3, true, page1});
  EXPECT_TRUE(requests().empty()) << "a page whose `pages` differs from page 0's drops the vector";
  peer.answer(wire::Vector{0, 2, true, page0});
  peer.answer(wire::Vector{0, 2, true, page0});  // page 0 again starts over
  peer.answer(wire::Vector{1, 2, true, page1});
  auto asked = requests();
  ASSERT_EQ(asked.size(), 3u) << "the last page completes the vector: its three origins are pulled";
  std::set<uint64_t> origins;
  for (auto& q : asked) {
    origins.insert(q.origin);
    EXPECT_EQ(q.from_seq, 1u);
    EXPECT_EQ(q.to_seq, 4u);
  }
  EXPECT_EQ(origins, (std::set<uint64_t>{900'001, 900'002, 900'003}));
}

TEST_F(OneNode, SixtyFourPagesAreAcceptedAndTheLastPageIsUsed) {
  FakePeer peer(net_, "tcp://peer:7000", 503);
  ASSERT_NO_FATAL_FAILURE(Start({"tcp://peer:7000"}));
  Handshake(peer);
  std::vector<std::pair<uint64_t, uint64_t>> entries;
  for (uint64_t i = 0; i < 64 * 1024; ++i) entries.emplace_back(1'000'000 + i, i == 64 * 1024 - 1 ? 2 : 0);
  AnswerVector(peer, entries);  // 65,536 origins: exactly 64 full pages
  Run(5);
  auto asked = of_type<wire::Request>(peer.take());
  ASSERT_EQ(asked.size(), 1u) << "the one origin held, on page 63, is pulled";
  EXPECT_EQ(asked[0].origin, 1'000'000u + 64 * 1024 - 1);
}

TEST(VectorPages, TheWireHoldsAtMost1024EntriesAPageAnd64Pages) {
  wire::Vector full{63, 64, false, {}};
  for (uint64_t i = 0; i < 1024; ++i) full.entries.emplace_back(i + 1, i);
  EXPECT_TRUE(wire::decode(wire::encode(full))) << "page 63 of 64, 1,024 entries";
  wire::Vector over = full;
  over.entries.emplace_back(5000, 1);
  auto m = wire::decode(wire::encode(over));
  EXPECT_FALSE(m) << "1,025 entries in a page";
  EXPECT_FALSE(wire::decode(wire::encode(wire::Vector{64, 64, false, {}}))) << "page 64 of 64";
  EXPECT_FALSE(wire::decode(wire::encode(wire::Vector{64, 65, false, {}}))) << "page 64 of 65";
}

TEST(VectorPages, AnEntryMayCarryAnEightByteChainTipAndNoOtherLength) {
  wire::Vector v{0, 1, true, {{7, 3}, {9, 4}}};
  v.tips[9] = std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  auto back = wire::decode(wire::encode(v));
  ASSERT_TRUE(back) << back.status().message();
  const auto& got = std::get<wire::Vector>(*back);
  EXPECT_EQ(got.entries, v.entries);
  EXPECT_EQ(got.tips, v.tips) << "origin 9 has its tip, origin 7 none";
  for (size_t bad : {0, 7, 9, 32}) {
    wire::Vector w = v;
    w.tips[9] = std::string(bad, 'x');
    EXPECT_FALSE(wire::decode(wire::encode(w))) << "a tip of " << bad << " bytes";
  }
}

// --- Hello -----------------------------------------------------------------------------

TEST_F(OneNode, IncomingHelloWithOtherLimitsGetsError2AndIsNotAccepted) {
  ASSERT_NO_FATAL_FAILURE(Start({}));
  int n = 0;
  for (auto [max_update, max_frame] : {std::pair<uint64_t, uint64_t>{limits::kMaxUpdateBytes / 2, wire::kMaxFrameBytes},
                                       {limits::kMaxUpdateBytes, wire::kMaxFrameBytes * 2},
                                       {limits::kMaxUpdateBytes + 1, wire::kMaxFrameBytes}}) {
    const std::string ep = "tcp://other-limits-" + std::to_string(++n) + ":7000";
    FakePeer peer(net_, ep, 600 + static_cast<OriginId>(n));
    wire::Hello h{node_->cluster_id(), peer.node_id, ep, max_update, max_frame};
    peer.ask(h);
    Run(3);
    auto answers = peer.take();
    ASSERT_EQ(answers.size(), 1u);
    auto* e = std::get_if<wire::Error>(&answers[0].second);
    ASSERT_NE(e, nullptr) << "limits " << max_update << "/" << max_frame << " answered with something else";
    EXPECT_EQ(e->code, wire::ErrorCode::kVersion);
    EXPECT_FALSE(transport_->linked(ep)) << "no connect-back on a refused Hello";
    peer.ask(wire::Vector{0, 1, false, {}});
    Run(3);
    answers = peer.take();
    ASSERT_EQ(answers.size(), 1u);
    ASSERT_TRUE(std::holds_alternative<wire::Error>(answers[0].second));
    EXPECT_EQ(std::get<wire::Error>(answers[0].second).code, wire::ErrorCode::kHelloFirst)
        << "the refused Hello did not count as one";
  }
  // The same peer with version 1's limits is answered with Hello.
  FakePeer good(net_, "tcp://good:7000", 700);
  good.ask(good.hello(node_->cluster_id()));
  Run(3);
  auto answers = good.take();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<wire::Hello>(answers[0].second));
}

// The node dials a peer that answers in a way it must not sync with: it waits
// 60 s before its next Hello, sends nothing else meanwhile, then tries again.
void ExpectSixtySecondWait(FakePeer& peer, const std::function<void(int64_t)>& run) {
  run(59'000);
  auto frames = peer.take();
  EXPECT_TRUE(frames.empty()) << frames.size() << " frames within 60 s of a refusal";
  run(2'000);  // the wait, plus the Hello retry interval (at most 200 ms)
  frames = peer.take();
  EXPECT_FALSE(of_type<wire::Hello>(frames).empty()) << "no Hello again after 61 s";
  EXPECT_TRUE(of_type<wire::Vector>(frames).empty()) << "a Vector to a peer that never handshook";
}

struct Refusal {
  const char* name;
  std::function<wire::Message(const std::string& cluster, OriginId)> answer;
};

class OutgoingRefusal : public OneNode, public ::testing::WithParamInterface<int> {};

TEST_P(OutgoingRefusal, PeerThatCannotBeSyncedWithIsLeftAloneFor60Seconds) {
  const std::vector<Refusal> refusals = {
      {"Hello with a smaller max_update",
       [](const std::string& c, OriginId id) {
         return wire::Message(wire::Hello{c, id, "", limits::kMaxUpdateBytes / 4, wire::kMaxFrameBytes});
       }},
      {"Hello with a larger max_frame",
       [](const std::string& c, OriginId id) {
         return wire::Message(wire::Hello{c, id, "", limits::kMaxUpdateBytes, wire::kMaxFrameBytes * 2});
       }},
      {"Hello of another cluster",
       [](const std::string&, OriginId id) {
         return wire::Message(wire::Hello{"0123abcd", id, "", limits::kMaxUpdateBytes, wire::kMaxFrameBytes});
       }},
      {"Error 2", [](const std::string&, OriginId) { return wire::Message(wire::Error{wire::ErrorCode::kVersion, "limits"}); }},
      {"Error 3", [](const std::string&, OriginId) { return wire::Message(wire::Error{wire::ErrorCode::kCluster, "other"}); }},
  };
  const Refusal& r = refusals[static_cast<size_t>(GetParam())];
  SCOPED_TRACE(r.name);
  FakePeer peer(net_, "tcp://peer:7000", 800);
  ASSERT_NO_FATAL_FAILURE(Start({"tcp://peer:7000"}));
  Run(30);
  ASSERT_FALSE(of_type<wire::Hello>(peer.take()).empty());
  peer.answer(r.answer(node_->cluster_id(), peer.node_id));
  Run(2);
  (void)peer.take();
  ASSERT_TRUE(node_->call("set", set_arg(Value("a"), Value(1))));  // nothing is pushed to it either
  ExpectSixtySecondWait(peer, [this](int64_t ms) { Run(ms, 10); });
  // It answers properly this time: the link is ready and the node syncs at once.
  peer.answer(peer.hello(node_->cluster_id()));
  Run(5);
  auto vectors = of_type<wire::Vector>(peer.take());
  EXPECT_EQ(vectors.size(), 1u) << "ready after a proper Hello";
}

INSTANTIATE_TEST_SUITE_P(Answers, OutgoingRefusal, ::testing::Range(0, 5));

TEST_F(OneNode, ALinkThatReachesItselfIsNeverUsedAgain) {
  // The configured peer answers with the node's own id: the node dialled itself.
  FakePeer mirror(net_, "tcp://mirror:7000", 0);
  ASSERT_NO_FATAL_FAILURE(Start({"tcp://mirror:7000"}));
  Run(30);
  ASSERT_FALSE(of_type<wire::Hello>(mirror.take()).empty());
  mirror.node_id = node_->node_id();
  mirror.answer(mirror.hello(node_->cluster_id()));
  Run(5);
  EXPECT_TRUE(mirror.take().empty()) << "no Vector on a link to itself";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(node_->call("set", set_arg(Value("a"), Value(i))));
  Run(10 * 60'000, 50);  // ten minutes
  auto frames = mirror.take();
  EXPECT_TRUE(frames.empty()) << frames.size() << " frames sent on a link to itself";
  for (const auto& p : service_->peers()) EXPECT_FALSE(p.ready) << p.endpoint;
}

// --- pulls: one Request per origin, its expiry, the credit ---------------------------

TEST_F(OneNode, OneRequestPerOriginAcrossPeersUntilItExpiresAfter5Seconds) {
  FakePeer a(net_, "tcp://a:7000", 901), b(net_, "tcp://b:7000", 902);
  ASSERT_NO_FATAL_FAILURE(Start({"tcp://a:7000", "tcp://b:7000"}));
  Run(30);
  (void)a.take();
  (void)b.take();
  a.answer(a.hello(node_->cluster_id()));
  b.answer(b.hello(node_->cluster_id()));
  Run(5);
  (void)a.take();
  (void)b.take();
  const OriginId x = 4242;
  std::vector<wire::Request> asked;
  auto collect = [&] {
    for (FakePeer* p : {&a, &b})
      for (auto& q : of_type<wire::Request>(p->take())) {
        EXPECT_EQ(q.origin, x);
        asked.push_back(q);
      }
  };
  // Both hold x up to 5; each tells the node once a second, never answering.
  for (int s = 0; s < 4; ++s) {
    AnswerVector(a, {{x, 5}});
    AnswerVector(b, {{x, 5}});
    Run(1000);
    collect();
  }
  Run(990);  // 4,990 ms after the first Request
  collect();
  ASSERT_EQ(asked.size(), 1u) << "one Request for the origin across both peers while it is out";
  EXPECT_EQ(asked[0].from_seq, 1u);
  EXPECT_EQ(asked[0].to_seq, 5u);
  Run(20);  // past 5 s: it expires and is asked again
  collect();
  ASSERT_EQ(asked.size(), 2u) << "an unanswered Request expires after 5 s and goes out again";
  EXPECT_EQ(asked[1].from_seq, 1u);
}

TEST_F(OneNode, RequestedBytesOnALinkStayWithinTheCredit) {
  FakePeer peer(net_, "tcp://peer:7000", 950);
  ASSERT_NO_FATAL_FAILURE(Start({"tcp://peer:7000"}));
  Handshake(peer);
  std::vector<std::pair<uint64_t, uint64_t>> claims;
  // 200 origins lacking: each is asked for its share of the credit, 64 KiB at
  // the least (PROTOCOL.md, Pull), so 128 fit and the rest wait.
  for (uint64_t o = 1; o <= 200; ++o) claims.emplace_back(7000 + o, 3);
  AnswerVector(peer, claims);
  Run(5);
  auto asked = of_type<wire::Request>(peer.take());
  size_t bytes = 0;
  std::set<uint64_t> origins;
  for (auto& q : asked) {
    bytes += q.max_bytes;
    origins.insert(q.origin);
    EXPECT_EQ(q.max_bytes, size_t{64} << 10) << "a share of the credit, at least 64 KiB";
  }
  EXPECT_LE(bytes, size_t{8} << 20) << "requested bytes outstanding on one link stay under 8 MiB";
  EXPECT_EQ(origins.size(), asked.size()) << "one Request per origin";
  ASSERT_GE(asked.size(), 1u);
  ASSERT_LT(asked.size(), claims.size()) << "the credit must have held some back for this test to mean anything";
  // Answering one releases its credit: exactly the held-back pulls that now fit go out.
  const wire::Request first = asked[0];
  wire::Updates answer{first.origin, false, {}, std::nullopt};
  for (uint64_t s = 1; s <= 3; ++s)
    answer.updates.push_back(make_update(first.origin, s, kNow - 100 + static_cast<int64_t>(s), "set", set_arg(Value("k"), Value(1))));
  peer.answer(answer);
  Run(5);
  auto next = of_type<wire::Request>(peer.take());
  ASSERT_EQ(next.size(), 1u) << "one answer frees one Request's worth of credit";
  EXPECT_EQ(origins.count(next[0].origin), 0u) << "a new origin, not one already out";
  EXPECT_EQ(node_->vector().at(first.origin), 3u);
}

// --- protocol limits --------------------------------------------------------------------

TEST(Limits, AnUpdateBodyOfExactlyTheLimitCrossesTheWireAndOneByteMoreDoesNot) {
  auto body_of = [](size_t size) {
    Update probe = Update::make(UpdateId{10, 20}, 1, "set", std::string(size - 100, 'x'));
    return Update::make(UpdateId{10, 20}, 1, "set", std::string(size - 100 + (size - probe.body().size()), 'x'));
  };
  Update exact = body_of(limits::kMaxUpdateBytes);
  Update over = body_of(limits::kMaxUpdateBytes + 1);
  ASSERT_EQ(exact.body().size(), size_t{1'048'576});
  ASSERT_EQ(over.body().size(), size_t{1'048'577});
  EXPECT_TRUE(wire::decode(wire::encode(wire::Push{{exact}, {}}))) << "a Push of one body at the limit";
  EXPECT_TRUE(wire::decode(wire::encode(wire::Updates{20, false, {exact}, std::nullopt})));
  EXPECT_FALSE(wire::decode(wire::encode(wire::Push{{over}, {}}))) << "a Push of one body a byte over";
  EXPECT_FALSE(wire::decode(wire::encode(wire::Updates{20, false, {over}, std::nullopt})));
}

class LimitsNode : public ::testing::Test {
 protected:
  void SetUp() override {
    engine::InitOptions init;
    init.dir = dir_;
    init.clock = &clock_;
    ASSERT_TRUE(engine::Node::init(init));
    engine::NodeOptions o;
    o.verify_origins = false;  // hand-made updates: form and replay, not proof
    o.dir = dir_;
    o.clock = &clock_;
    auto n = engine::Node::open(o);
    ASSERT_TRUE(n) << n.status().message();
    node_ = std::move(n).value();
  }
  static Value path_of(size_t segments) {
    List p;
    for (size_t i = 0; i < segments; ++i) p.push_back(Value("s" + std::to_string(i)));
    return Value(std::move(p));
  }
  static std::string dotted_of(size_t segments) {
    std::string d;
    for (size_t i = 0; i < segments; ++i) d += (i ? "." : "") + std::string("d") + std::to_string(i);
    return d;
  }
  TempDir tmp_;
  std::string dir_ = tmp_.sub("n");
  ManualClock clock_{kNow};
  std::unique_ptr<engine::Node> node_;
};

TEST_F(LimitsNode, APathOf32SegmentsIsWrittenAnd33IsRefusedAtCallAndSkippedInReplay) {
  ASSERT_EQ(limits::kMaxPathSegments, 32u);
  ASSERT_TRUE(node_->call("set", set_arg(path_of(32), Value(1)))) << "32 segments as a list";
  ASSERT_TRUE(node_->call("set", set_arg(Value(dotted_of(32)), Value(2)))) << "32 segments dotted";
  Path p32, d32;
  for (int i = 0; i < 32; ++i) {
    p32.push_back("s" + std::to_string(i));
    d32.push_back("d" + std::to_string(i));
  }
  node_->read([&](const State& s) {
    ASSERT_NE(s.get(p32), nullptr);
    EXPECT_EQ(s.get(p32)->as_int(), 1);
    ASSERT_NE(s.get(d32), nullptr);
    EXPECT_EQ(s.get(d32)->as_int(), 2);
  });
  const uint64_t updates = node_->info().updates;
  for (const Value& path : {path_of(33), Value(dotted_of(33))}) {
    auto r = node_->call("set", set_arg(path, Value(3)));
    ASSERT_FALSE(r) << "33 segments";
    EXPECT_NE(r.status().message().find("32 segments"), std::string::npos) << r.status().message();
  }
  auto inc = node_->call("inc", Value(Map{{"path", path_of(33)}, {"by", Value(1)}}));
  EXPECT_FALSE(inc) << "every method that takes a path";
  EXPECT_EQ(node_->info().updates, updates) << "a refused call stores nothing";
  // The same update from another origin is stored (content never refuses) and skipped in replay.
  Update theirs = make_update(77, 1, kNow - 10, "set", set_arg(path_of(33), Value(3)));
  auto r = node_->ingest({theirs});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->accepted, 1u);
  node_->read([&](const State& s) {
    auto c = s.conflicts().find(theirs.id());
    ASSERT_NE(c, s.conflicts().end()) << "33 segments in replay";
    EXPECT_EQ(c->second.kind, ConflictKind::kBadArgument);
  });
}

TEST(Limits, TimestampNanosecondsOf10To9OrMoreAreRefused) {
  // 8-byte form: 30-bit nanoseconds, 34-bit seconds; 12-byte form: 32-bit ns, int64 s.
  auto ts64 = [](uint64_t ns, uint64_t s) {
    uint64_t v = ns << 34 | s;
    std::string out = hex_bytes("d7ff");
    for (int i = 7; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
    return out;
  };
  auto ts96 = [](uint32_t ns, int64_t s) {
    std::string out = hex_bytes("c70cff");
    for (int i = 3; i >= 0; --i) out += static_cast<char>((ns >> (8 * i)) & 0xff);
    for (int i = 7; i >= 0; --i) out += static_cast<char>((static_cast<uint64_t>(s) >> (8 * i)) & 0xff);
    return out;
  };
  auto ok = decode_msgpack(ts64(999'999'999, 1'790'000'000));
  ASSERT_TRUE(ok) << ok.status().message();
  EXPECT_EQ(ok->as_time().nanos, 999'999'999u);
  auto bad = decode_msgpack(ts64(1'000'000'000, 1'790'000'000));
  ASSERT_FALSE(bad) << "8-byte form, 10^9 ns";
  EXPECT_NE(bad.status().message().find("nanoseconds"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(decode_msgpack(ts64((1u << 30) - 1, 5))) << "8-byte form, largest 30-bit ns";
  auto ok96 = decode_msgpack(ts96(999'999'999, -5));
  ASSERT_TRUE(ok96) << ok96.status().message();
  EXPECT_EQ(ok96->as_time().seconds, -5);
  EXPECT_FALSE(decode_msgpack(ts96(1'000'000'000, -5))) << "12-byte form, 10^9 ns";
  EXPECT_FALSE(decode_msgpack(ts96(0xffffffffu, 1))) << "12-byte form, largest 32-bit ns";
}

TEST_F(LimitsNode, AnArgumentHoldingNanosecondsOf10To9IsStoredAndSkippedAsABadArgument) {
  // {"path": "t", "value": <time with 10^9 ns>}: decodes nowhere, refused nowhere at ingest.
  uint64_t v = uint64_t{1'000'000'000} << 34 | 1'790'000'000;
  std::string ts = hex_bytes("d7ff");
  for (int i = 7; i >= 0; --i) ts += static_cast<char>((v >> (8 * i)) & 0xff);
  std::string arg = hex_bytes("82a470617468a174a576616c7565") + ts;
  Update u = Update::make(UpdateId{hlc::make(kNow - 10, 0), 88}, 1, "set", arg);
  auto r = node_->ingest({u});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->accepted, 1u);
  node_->read([&](const State& s) {
    EXPECT_EQ(s.get({"t"}), nullptr);
    auto c = s.conflicts().find(u.id());
    ASSERT_NE(c, s.conflicts().end());
    EXPECT_EQ(c->second.kind, ConflictKind::kBadArgument);
  });
}

TEST(Limits, EveryNaNIsWrittenAsTheOneCanonicalNaN) {
  const std::string canonical = "cb7ff8000000000000";
  auto from_bits = [](uint64_t bits) {
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  };
  for (uint64_t bits : {0x7ff8000000000000ULL, 0xfff8000000000000ULL, 0x7ff0000000000001ULL, 0x7ff8dead0000beefULL,
                        0xffffffffffffffffULL}) {
    double d = from_bits(bits);
    ASSERT_TRUE(std::isnan(d));
    EXPECT_EQ(to_hex_str(encode_msgpack(Value(d))), canonical) << std::hex << bits;
    // Decoded from any NaN (float64 or float32), re-encoded as the one NaN.
    std::string raw = hex_bytes("cb");
    for (int i = 7; i >= 0; --i) raw += static_cast<char>((bits >> (8 * i)) & 0xff);
    auto back = decode_msgpack(raw);
    ASSERT_TRUE(back) << "a non-canonical NaN is a float, not an error";
    EXPECT_EQ(to_hex_str(encode_msgpack(*back)), canonical);
  }
  auto f32 = decode_msgpack(hex_bytes("caffc00001"));
  ASSERT_TRUE(f32);
  EXPECT_EQ(to_hex_str(encode_msgpack(*f32)), canonical) << "float32 NaN becomes the float64 NaN";
}

TEST(Limits, NaNsWithOtherBitsGiveOneStateHash) {
  TempDir tmp;
  ManualClock clock(kNow);
  auto hash_after_nan = [&](const std::string& name, const std::string& nan_bits) {
    std::string dir = tmp.sub(name);
    engine::InitOptions init;
    init.dir = dir;
    init.clock = &clock;
    init.cluster = "00";
    EXPECT_TRUE(engine::Node::init(init));
    engine::NodeOptions o;
    o.verify_origins = false;  // hand-made updates: form and replay, not proof
    o.dir = dir;
    o.clock = &clock;
    auto node = std::move(engine::Node::open(o)).value();
    // {"path": "x", "value": <float64 with these bits>}, as another implementation may write it.
    std::string arg = hex_bytes("82a470617468a178a576616c7565cb" + nan_bits);
    auto r = node->ingest({Update::make(UpdateId{hlc::make(kNow - 10, 0), 99}, 1, "set", arg)});
    EXPECT_TRUE(r && r->accepted == 1);
    node->read([](const State& s) {
      EXPECT_TRUE(s.conflicts().empty());
      ASSERT_NE(s.get({"x"}), nullptr);
      EXPECT_TRUE(std::isnan(s.get({"x"})->as_float()));
    });
    return node->state_hash();
  };
  const std::string canonical = hash_after_nan("a", "7ff8000000000000");
  EXPECT_EQ(hash_after_nan("b", "fff8000000000000"), canonical);
  EXPECT_EQ(hash_after_nan("c", "7ff000000000abcd"), canonical);
}

// --- retire -----------------------------------------------------------------------------

class RetireTest : public ::testing::Test {
 protected:
  std::unique_ptr<engine::Node> Open(size_t undo_window = 64, uint64_t interval = 1'000'000) {
    engine::NodeOptions o;
    o.verify_origins = false;  // hand-made updates: form and replay, not proof
    o.dir = dir_;
    o.clock = &clock_;
    o.undo_window = undo_window;
    o.checkpoint_interval = interval;
    auto n = engine::Node::open(o);
    EXPECT_TRUE(n) << n.status().message();
    return std::move(n).value();
  }
  void SetUp() override {
    engine::InitOptions init;
    init.dir = dir_;
    init.clock = &clock_;
    ASSERT_TRUE(engine::Node::init(init));
  }
  static Value retire_arg(Value origin, Value last_seq) {
    return Value(Map{{"origin", std::move(origin)}, {"last_seq", std::move(last_seq)}});
  }
  TempDir tmp_;
  std::string dir_ = tmp_.sub("n");
  ManualClock clock_{kNow + 1'000'000};
};

TEST_F(RetireTest, RetireRecordsTheOriginInStateAndInTheStateHash) {
  auto node = Open();
  const std::string before = node->state_hash();
  ASSERT_TRUE(node->call("retire", retire_arg(Value("00000000000000AB"), Value(7)))) << "16 digits, upper case";
  node->read([](const State& s) {
    ASSERT_EQ(s.retired().size(), 1u);
    EXPECT_EQ(s.retired().at(0xab), 7u);
  });
  const std::string one = node->state_hash();
  EXPECT_NE(one, before) << "retired origins are part of the state hash";
  ASSERT_TRUE(node->call("retire", retire_arg(Value("ab"), Value(9)))) << "fewer than 16 digits";
  ASSERT_TRUE(node->call("retire", retire_arg(Value("c"), Value(0)))) << "last_seq 0";
  node->read([](const State& s) {
    EXPECT_EQ(s.retired().size(), 2u);
    EXPECT_EQ(s.retired().at(0xab), 9u) << "a later retire of the origin replaces its last seq";
    EXPECT_EQ(s.retired().at(0xc), 0u);
  });
  EXPECT_NE(node->state_hash(), one);
}

TEST_F(RetireTest, RetireWithABadArgumentIsRefusedAtCallAndSkippedInReplay) {
  auto node = Open();
  const std::vector<std::pair<std::string, Value>> bad = {
      {"not a map", Value(List{Value("ab"), Value(1)})},
      {"no origin", Value(Map{{"last_seq", Value(1)}})},
      {"origin not a str", retire_arg(Value(171), Value(1))},
      {"origin not hex", retire_arg(Value("xyz"), Value(1))},
      {"origin of 17 digits", retire_arg(Value("1" + std::string(16, '0')), Value(1))},
      {"origin empty", retire_arg(Value(""), Value(1))},
      {"no last_seq", Value(Map{{"origin", Value("ab")}})},
      {"last_seq negative", retire_arg(Value("ab"), Value(-1))},
      {"last_seq a str", retire_arg(Value("ab"), Value("3"))},
  };
  for (const auto& [why, arg] : bad) {
    auto r = node->call("retire", arg);
    EXPECT_FALSE(r) << why << " was accepted";
  }
  EXPECT_EQ(node->info().updates, 0u) << "nothing stored for a refused retire";
  node->read([](const State& s) { EXPECT_TRUE(s.retired().empty()); });
  // From another origin it is stored and becomes a bad-argument conflict.
  Update u = make_update(55, 1, kNow, "retire", retire_arg(Value("xyz"), Value(1)));
  auto r = node->ingest({u});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->accepted, 1u);
  node->read([&](const State& s) {
    EXPECT_TRUE(s.retired().empty());
    auto c = s.conflicts().find(u.id());
    ASSERT_NE(c, s.conflicts().end());
    EXPECT_EQ(c->second.kind, ConflictKind::kBadArgument);
  });
}

// Origin A writes once, early; origin B writes on. The stable cut (below the
// newest update of every origin that has not retired) sits at A's update, so
// one checkpoint below it is kept. Once A is retired with its last seq, the
// stable cut moves up to B's head and that old checkpoint goes. A retire whose
// last seq this node does not hold yet does not count (more of A may come).
size_t CheckpointsBelow(const std::string& dir, const UpdateId& key, size_t* total) {
  auto log = UpdateLog::open(dir, {});
  EXPECT_TRUE(log);
  auto txn = (*log)->begin_read();
  size_t below = 0;
  *total = 0;
  for (auto& [cut, _] : txn->checkpoints()) {
    ++*total;
    if (cut < key) ++below;
  }
  return below;
}

class RetireCheckpoints : public RetireTest, public ::testing::WithParamInterface<int> {};

TEST_P(RetireCheckpoints, ARetiredOriginNoLongerHoldsBackTheStableCut) {
  // -1: no retire; 1: A's last seq, which this node holds; 2: a seq of A still to come.
  const int retire_last_seq = GetParam();
  const OriginId a = 0xa, b = 0xb;
  std::vector<Update> ups;
  uint64_t bseq = 0;
  for (int i = 0; i < 60; ++i) ups.push_back(make_update(b, ++bseq, kNow + i * 10, "set", set_arg(Value("k"), Value(i))));
  Update a1 = make_update(a, 1, kNow + 605, "set", set_arg(Value("a"), Value(1)));
  ups.push_back(a1);
  for (int i = 60; i < 200; ++i) {
    if (i == 100 && retire_last_seq >= 0)
      ups.push_back(make_update(b, ++bseq, kNow + i * 10, "retire",
                                retire_arg(Value("000000000000000a"), Value(retire_last_seq))));
    else
      ups.push_back(make_update(b, ++bseq, kNow + i * 10, "set", set_arg(Value("k"), Value(i))));
  }
  {
    auto node = Open(/*undo_window=*/2, /*interval=*/20);
    for (size_t i = 0; i < ups.size(); i += 10) {
      std::vector<Update> batch(ups.begin() + static_cast<long>(i), ups.begin() + static_cast<long>(std::min(ups.size(), i + 10)));
      auto r = node->ingest(batch);
      ASSERT_TRUE(r);
      ASSERT_EQ(r->accepted, batch.size());
    }
    if (retire_last_seq >= 0)
      node->read([&](const State& s) { EXPECT_EQ(s.retired().at(a), static_cast<uint64_t>(retire_last_seq)); });
    ASSERT_TRUE(node->close());
  }
  size_t total = 0;
  const size_t below = CheckpointsBelow(dir_, a1.id(), &total);
  ASSERT_GE(total, 2u);
  if (retire_last_seq == 1) {
    EXPECT_EQ(below, 0u) << "A retired at the last seq it holds: nothing is kept below its old update";
  } else {
    EXPECT_EQ(below, 1u) << "A not retired, or retired at a seq not yet held: one checkpoint is kept below its update";
  }
}

INSTANTIATE_TEST_SUITE_P(LastSeq, RetireCheckpoints, ::testing::Values(-1, 1, 2));

// --- an unknown storage format version ------------------------------------------------

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(FormatVersion, ADirectoryOfAnUnknownFormatIsRefusedOnOpenAndLeftUntouched) {
  TempDir tmp;
  const std::string dir = tmp.sub("n");
  ManualClock clock(kNow);
  engine::InitOptions init;
  init.dir = dir;
  init.clock = &clock;
  ASSERT_TRUE(engine::Node::init(init));
  {
    engine::NodeOptions o;
    o.verify_origins = false;  // hand-made updates: form and replay, not proof
    o.dir = dir;
    o.clock = &clock;
    auto node = std::move(engine::Node::open(o)).value();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(node->call("set", set_arg(Value("a"), Value(i))));
    ASSERT_TRUE(node->close());
  }
  {
    auto log = UpdateLog::open(dir, {});
    ASSERT_TRUE(log);
    auto txn = (*log)->begin_write();
    ASSERT_TRUE(txn);
    ASSERT_TRUE(txn->put_meta(meta::kFormat, "7"));
    ASSERT_TRUE(txn->commit());
  }
  const std::string data_before = file_bytes(dir + "/data.mdb");
  ASSERT_FALSE(data_before.empty());
  engine::NodeOptions o;
  o.verify_origins = false;  // hand-made updates: form and replay, not proof
  o.dir = dir;
  o.clock = &clock;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto node = attempt == 0 ? engine::Node::open(o) : engine::Node::open_read_only(o);
    ASSERT_FALSE(node) << (attempt == 0 ? "a writer" : "a reader") << " opened format 7";
    EXPECT_EQ(node.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(node.status().message().find("storage format 7"), std::string::npos) << node.status().message();
    EXPECT_NE(node.status().message().find("format 1, 2, 3, 4, 5 or 6"), std::string::npos) << node.status().message();
  }
  EXPECT_TRUE(file_bytes(dir + "/data.mdb") == data_before) << "refusing to open wrote to the data file";
  auto log = UpdateLog::open(dir, {});
  ASSERT_TRUE(log);
  EXPECT_EQ((*log)->begin_read()->meta(meta::kFormat).value_or(""), "7");
}

}  // namespace
}  // namespace replog

// --- hardening: bad sources cut off, silent peers, Hello features ------------------------

namespace replog {
namespace {

TEST_F(OneNode, ASourceOfBadFramesIsNotHeardForAWhileThenHeardAgain) {
  FakePeer peer(net_, "tcp://peer:7000", 601);
  ASSERT_NO_FATAL_FAILURE(Start({}));
  peer.ask(peer.hello(node_->cluster_id()));
  Run(2);
  ASSERT_EQ(of_type<wire::Hello>(peer.take()).size(), 1u);
  for (int i = 0; i < 21; ++i) peer.transport.send(Link{true, kNodeEndpoint}, std::string("\x93\x01\x09\xc0", 4));
  Run(2);
  (void)peer.take();
  EXPECT_EQ(service_->engine().counters().blocks, 1u);
  // Cut off: a well-formed request gets no answer for a minute.
  peer.ask(wire::Vector{0, 1, false, {}});
  Run(2);
  EXPECT_TRUE(peer.take().empty());
  EXPECT_GE(service_->engine().counters().blocked_frames, 1u);
  clock_.advance(60'000);
  peer.ask(wire::Vector{0, 1, false, {}});
  Run(2);
  EXPECT_EQ(of_type<wire::Vector>(peer.take()).size(), 1u) << "heard again after the block";
}

TEST_F(OneNode, TwentyBadFramesAreToleratedWithinTheWindow) {
  FakePeer peer(net_, "tcp://peer:7000", 602);
  ASSERT_NO_FATAL_FAILURE(Start({}));
  peer.ask(peer.hello(node_->cluster_id()));
  for (int i = 0; i < 20; ++i) peer.transport.send(Link{true, kNodeEndpoint}, "garbage");
  Run(2);
  (void)peer.take();
  EXPECT_EQ(service_->engine().counters().blocks, 0u);
  peer.ask(wire::Vector{0, 1, false, {}});
  Run(2);
  EXPECT_EQ(of_type<wire::Vector>(peer.take()).size(), 1u);
}

TEST_F(OneNode, ASilentPeerIsHandshakenAgainAndSyncsOnceItAnswers) {
  FakePeer peer(net_, "tcp://peer:7000", 603);
  ASSERT_NO_FATAL_FAILURE(Start({"tcp://peer:7000"}));
  auto after = Handshake(peer);
  ASSERT_EQ(of_type<wire::Vector>(after).size(), 1u) << "a ready peer is sent the vector at once";
  // The peer stops (SIGSTOP): nothing more from it for a minute (these
  // tests run no rounds, so the longest wait applies).
  Run(61'000, 100);
  EXPECT_EQ(service_->engine().counters().silent_peers, 1u);
  auto sent = peer.take();
  ASSERT_FALSE(of_type<wire::Hello>(sent).empty()) << "no new handshake with a silent peer";
  // It resumes and answers: ready again, and its vector is asked for at once.
  peer.answer(peer.hello(node_->cluster_id()));
  Run(5);
  EXPECT_EQ(of_type<wire::Vector>(peer.take()).size(), 1u);
}

// A Hello of an older node (5 elements) and of a later one (more than 10, its
// signature pairs nil) both decode; 7 elements is a key without its signature.
TEST(WireHello, FiveElementsMeanNoFeaturesAndElementsAfterTheTenthAreIgnored) {
  auto frame = [](int elements) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_array(3);
    pk.pack_uint64(1);
    pk.pack_uint64(1);
    pk.pack_array(static_cast<uint32_t>(elements));
    pk.pack(std::string("c1"));
    pk.pack_uint64(7);
    pk.pack(std::string(""));
    pk.pack_uint64(limits::kMaxUpdateBytes);
    pk.pack_uint64(wire::kMaxFrameBytes);
    if (elements > 5) pk.pack_uint64(5);
    for (int i = 7; i <= std::min(elements, 10); ++i) pk.pack_nil();
    if (elements > 10) pk.pack(std::string("a later field"));
    return std::string(buf.data(), buf.size());
  };
  auto five = wire::decode(frame(5));
  ASSERT_TRUE(five) << five.status().message();
  EXPECT_EQ(std::get<wire::Hello>(*five).features, 0u);
  auto eleven = wire::decode(frame(11));
  ASSERT_TRUE(eleven) << eleven.status().message();
  EXPECT_EQ(std::get<wire::Hello>(*eleven).features, 5u);
  EXPECT_FALSE(std::get<wire::Hello>(*eleven).proof);
  EXPECT_FALSE(wire::decode(frame(7)));
  EXPECT_FALSE(wire::decode(frame(4)));
  // This node sends six, its features last.
  wire::Hello h{"c1", 7, "", limits::kMaxUpdateBytes, wire::kMaxFrameBytes, wire::kFeatures};
  auto back = wire::decode(wire::encode(h));
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<wire::Hello>(*back).features, wire::kFeatures);
}

}  // namespace
}  // namespace replog

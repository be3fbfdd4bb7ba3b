// The Hello's signature (PROTOCOL.md §2 "Handshake"): its codec on every form
// and every wrong size, the signed message, and a SyncEngine over an
// authenticated in-memory transport that refuses Hellos that do not bind the
// link's device to the node id they name, and makes ready the ones that do.
#include <gtest/gtest.h>
#include <sodium.h>

#include <msgpack.hpp>

#include "node/sync/sync_engine.h"
#include "protocol/limits.h"
#include "protocol/origin_proof.h"
#include "protocol/wire.h"
#include "storage/identity.h"
#include "support/memory_transport.h"

namespace replog {
namespace {

constexpr const char* kCluster = "c0ffee-01";

// An Ed25519 device key with its CURVE form.
struct Device {
  std::string secret, key, curve;

  static Device make() {
    EXPECT_GE(sodium_init(), 0);
    Device d;
    d.secret.resize(crypto_sign_SECRETKEYBYTES);
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    crypto_sign_keypair(pk, reinterpret_cast<unsigned char*>(d.secret.data()));
    d.key = d.secret.substr(32);
    d.curve = curve_public_key(d.key).value();
    return d;
  }
  OriginId origin() const { return proof::origin_of_key(key); }
};

wire::Hello plain_hello(OriginId id, uint64_t features = wire::kFeatures) {
  return wire::Hello{kCluster, id, "", limits::kMaxUpdateBytes, wire::kMaxFrameBytes, features, std::nullopt};
}

// A Hello signed by `signer` over `curve` (the signer's own unless given).
wire::Hello signed_hello(const Device& signer, OriginId id, std::string curve = {}) {
  wire::Hello h = plain_hello(id);
  if (curve.empty()) curve = signer.curve;
  h.proof = proof::HelloProof{signer.key, proof::sign_hello(kCluster, curve, id, signer.secret), {}, {}};
  return h;
}

// A Hello of origin key `origin`, certified by `device`.
wire::Hello certified_hello(const Device& device, const Device& origin) {
  wire::Hello h = signed_hello(device, origin.origin());
  h.proof->key = origin.key;
  h.proof->cert = proof::sign_cert(kCluster, origin.key, device.secret);
  return h;
}

// --- codec ---------------------------------------------------------------------------

// A Hello frame from hand-made body elements, so that sizes and types can be wrong.
using Element = std::variant<std::string /*bin*/, uint64_t, std::nullptr_t>;
std::string hello_frame(const std::vector<Element>& tail, uint64_t features = wire::kFeatures, bool with_features = true) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(3);
  pk.pack_uint8(1);
  pk.pack_uint8(1);
  pk.pack_array(static_cast<uint32_t>((with_features ? 6 : 5) + tail.size()));
  pk.pack_str(static_cast<uint32_t>(std::strlen(kCluster)));
  pk.pack_str_body(kCluster, static_cast<uint32_t>(std::strlen(kCluster)));
  pk.pack_uint64(7);
  pk.pack_str(0);
  pk.pack_uint64(limits::kMaxUpdateBytes);
  pk.pack_uint64(wire::kMaxFrameBytes);
  if (with_features) pk.pack_uint64(features);
  for (const auto& e : tail) {
    if (const auto* b = std::get_if<std::string>(&e)) {
      pk.pack_bin(static_cast<uint32_t>(b->size()));
      pk.pack_bin_body(b->data(), static_cast<uint32_t>(b->size()));
    } else if (const auto* u = std::get_if<uint64_t>(&e)) {
      pk.pack_uint64(*u);
    } else {
      pk.pack_nil();
    }
  }
  return std::string(buf.data(), buf.size());
}

std::string bytes(size_t n, char c = 'x') { return std::string(n, c); }

TEST(WireHello, SignedFormsRoundTrip) {
  const Device d = Device::make(), k = Device::make();
  for (const wire::Hello& h : {plain_hello(9), signed_hello(d, d.origin()), certified_hello(d, k)}) {
    const std::string frame = wire::encode(h);
    auto back = wire::decode(frame);
    ASSERT_TRUE(back) << back.status().message();
    const auto& got = std::get<wire::Hello>(*back);
    EXPECT_EQ(got.node_id, h.node_id);
    EXPECT_EQ(got.features, h.features);
    EXPECT_EQ(got.proof, h.proof);
    EXPECT_EQ(wire::encode(got), frame);
  }
  // 6, 8 and 10 elements: unsigned, signed, signed with a certified origin key.
  EXPECT_EQ(static_cast<uint8_t>(wire::encode(plain_hello(9))[3]), 0x96);
  EXPECT_EQ(static_cast<uint8_t>(wire::encode(signed_hello(d, d.origin()))[3]), 0x98);
  EXPECT_EQ(static_cast<uint8_t>(wire::encode(certified_hello(d, k))[3]), 0x9a);
}

TEST(WireHello, OlderFormsStillDecode) {
  auto five = wire::decode(hello_frame({}, 0, /*with_features=*/false));
  ASSERT_TRUE(five) << five.status().message();
  EXPECT_EQ(std::get<wire::Hello>(*five).features, 0u);
  EXPECT_FALSE(std::get<wire::Hello>(*five).proof);
  auto six = wire::decode(hello_frame({}));
  ASSERT_TRUE(six) << six.status().message();
  EXPECT_EQ(std::get<wire::Hello>(*six).features, wire::kFeatures);
  EXPECT_FALSE(std::get<wire::Hello>(*six).proof);
}

TEST(WireHello, NilPairsAreAbsentAndElementsPastTheTenthAreIgnored) {
  auto nils = wire::decode(hello_frame({nullptr, nullptr, nullptr, nullptr, uint64_t{5}}));
  ASSERT_TRUE(nils) << nils.status().message();
  EXPECT_FALSE(std::get<wire::Hello>(*nils).proof);
  auto later = wire::decode(hello_frame({bytes(32), bytes(64), nullptr, nullptr, uint64_t{5}, bytes(3)}));
  ASSERT_TRUE(later) << later.status().message();
  ASSERT_TRUE(std::get<wire::Hello>(*later).proof);
  EXPECT_EQ(std::get<wire::Hello>(*later).proof->device, bytes(32));
  EXPECT_TRUE(std::get<wire::Hello>(*later).proof->key.empty());
}

TEST(WireHello, EveryTruncationAndWrongSizeIsMalformed) {
  const std::vector<std::pair<std::vector<Element>, const char*>> bad = {
      {{bytes(32)}, "7 elements"},
      {{bytes(32), bytes(64), bytes(32)}, "9 elements"},
      {{bytes(31), bytes(64)}, "device"},
      {{bytes(33), bytes(64)}, "device"},
      {{bytes(32), bytes(63)}, "signature"},
      {{bytes(32), bytes(65)}, "signature"},
      {{bytes(32), nullptr}, "signature"},
      {{nullptr, bytes(64)}, "device"},
      {{uint64_t{1}, bytes(64)}, "device"},
      {{bytes(32), bytes(64), bytes(31), bytes(64)}, "origin key"},
      {{bytes(32), bytes(64), bytes(32), bytes(63)}, "certificate"},
      {{bytes(32), bytes(64), bytes(32), nullptr}, "certificate"},
      {{bytes(32), bytes(64), nullptr, bytes(64)}, "origin key"},
      {{nullptr, nullptr, bytes(32), bytes(64)}, "no signature"},
  };
  for (const auto& [tail, what] : bad) {
    auto m = wire::decode(hello_frame(tail));
    ASSERT_FALSE(m) << what;
    EXPECT_EQ(m.status().code(), Status::Code::kCorruption) << what;
    EXPECT_NE(m.status().message().find(what), std::string::npos) << m.status().message();
  }
  // A str where a bin is due.
  std::string frame = wire::encode(signed_hello(Device::make(), 1));
  const size_t at = frame.find(std::string("\xc4\x20", 2));
  ASSERT_NE(at, std::string::npos);
  frame[at] = '\xd9';  // str 8 of 32 bytes
  EXPECT_FALSE(wire::decode(frame));
  // Cut anywhere, a signed Hello never decodes.
  const std::string whole = wire::encode(certified_hello(Device::make(), Device::make()));
  for (size_t n = 0; n < whole.size(); ++n) EXPECT_FALSE(wire::decode(whole.substr(0, n))) << n;
}

// --- the signed message and its check ------------------------------------------------

TEST(HelloProof, MessageIsTagClusterCurveKeyAndNodeId) {
  const std::string curve = bytes(32, '\x01');
  const std::string m = proof::hello_message(kCluster, curve, 0x0102030405060708ULL);
  EXPECT_EQ(m, std::string("replog-hello-v1") + char(9) + kCluster + curve + std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
}

TEST(HelloProof, GenuineProofsPassAndEveryAlterationIsRefused) {
  const Device d = Device::make(), k = Device::make(), other = Device::make();
  const wire::Hello own = signed_hello(d, d.origin());
  EXPECT_TRUE(proof::check_hello(*own.proof, kCluster, d.curve, d.origin()));
  const wire::Hello cert = certified_hello(d, k);
  EXPECT_TRUE(proof::check_hello(*cert.proof, kCluster, d.curve, k.origin()));

  for (size_t bit = 0; bit < 512; bit += 37) {
    proof::HelloProof p = *own.proof;
    p.signature[bit / 8] = static_cast<char>(p.signature[bit / 8] ^ (1 << (bit % 8)));
    EXPECT_FALSE(proof::check_hello(p, kCluster, d.curve, d.origin())) << "flipped bit " << bit;
  }
  EXPECT_FALSE(proof::check_hello(*own.proof, "other-cluster", d.curve, d.origin()));
  EXPECT_FALSE(proof::check_hello(*own.proof, kCluster, other.curve, d.origin())) << "another link's key";
  EXPECT_FALSE(proof::check_hello(*own.proof, kCluster, d.curve, other.origin())) << "another node id";
  EXPECT_FALSE(proof::check_hello(*signed_hello(d, other.origin()).proof, kCluster, d.curve, other.origin()))
      << "a node id that is not the device's origin";
  proof::HelloProof uncertified = *cert.proof;
  uncertified.cert = proof::sign_cert(kCluster, k.key, other.secret);
  EXPECT_FALSE(proof::check_hello(uncertified, kCluster, d.curve, k.origin())) << "a certificate by another device";
  EXPECT_FALSE(proof::check_hello(*cert.proof, kCluster, d.curve, d.origin()))
      << "a carried key must hold the node id";
}

// --- the engine ------------------------------------------------------------------------

// A store that holds nothing and writes as `own`.
class KeyedStore final : public SyncStore {
 public:
  OwnOriginKey own;
  OriginId node_id() const override { return own.origin; }
  std::string cluster_id() const override { return kCluster; }
  OwnOriginKey own_origin_key() const override { return own; }
  VersionVector vector() const override { return {}; }
  Result<Range> read_range(OriginId, uint64_t, uint64_t, size_t) const override { return Range{}; }
  Result<IngestReport> ingest(std::vector<Update>, std::vector<proof::Head>) override { return IngestReport{}; }
  Status save_peers(std::map<std::string, std::string>) override { return Status::ok(); }
};

// Node a (a SyncEngine) and device b, which speaks by hand, on a network
// where each authenticates the other.
struct Link2 {
  static constexpr const char* kA = "tcp://a:7000";
  static constexpr const char* kB = "tcp://b:7000";
  Device a = Device::make(), b = Device::make();
  ManualClock clock{1'790'000'000'000};
  testing::MemoryNetwork net;
  testing::MemoryTransport ta{net, kA, {a.key, [this](const std::string& k) { return k == b.key; }}};
  testing::MemoryTransport tb{net, kB, {b.key, [this](const std::string& k) { return k == a.key; }}};
  KeyedStore store;
  std::vector<std::string> log;
  std::unique_ptr<SyncEngine> engine;

  explicit Link2(bool dial_b = false) {
    store.own = OwnOriginKey{a.origin(), a.key, {}};
    SyncOptions o;
    o.endpoint = kA;
    o.own_key = a.key;
    o.device_secret = a.secret;
    o.peer_keys[kB] = b.key;
    if (dial_b) o.peers.push_back(kB);
    o.seed = 1;
    engine = std::make_unique<SyncEngine>(store, ta, clock, o, [this](int, const std::string& l) { log.push_back(l); });
    engine->start();
    EXPECT_TRUE(tb.connect_to(kA, a.key));
  }
  // What a answers b on b's link to a.
  std::vector<wire::Message> say(const wire::Message& m) {
    tb.send(Link{true, kA}, wire::encode(m));
    engine->on_frames(ta.poll(0));
    std::vector<wire::Message> out;
    for (auto& f : tb.poll(0))
      if (f.link.outgoing)
        if (auto d = wire::decode(f.bytes)) out.push_back(std::move(d).value());
    return out;
  }
  // Whether a admitted the Hello: a Vector then gets a's Vector, not Error 4.
  bool admitted() {
    auto answers = say(wire::Vector{0, 1, false, {}});
    return !answers.empty() && std::holds_alternative<wire::Vector>(answers.front());
  }
  static bool is_error(const std::vector<wire::Message>& answers, wire::ErrorCode code) {
    return answers.size() == 1 && std::holds_alternative<wire::Error>(answers[0]) &&
           std::get<wire::Error>(answers[0]).code == code;
  }
};

TEST(SyncHello, AGenuineSignedHelloIsAnsweredWithASignedHello) {
  Link2 l;
  auto answers = l.say(signed_hello(l.b, l.b.origin()));
  ASSERT_EQ(answers.size(), 1u);
  const auto& h = std::get<wire::Hello>(answers[0]);
  ASSERT_TRUE(h.proof) << "a's Hello is signed";
  EXPECT_EQ(h.proof->device, l.a.key);
  EXPECT_TRUE(proof::check_hello(*h.proof, kCluster, l.a.curve, h.node_id));
  EXPECT_TRUE(l.admitted());
}

TEST(SyncHello, ACertifiedOriginKeyIsTaken) {
  Link2 l;
  auto answers = l.say(certified_hello(l.b, Device::make()));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<wire::Hello>(answers[0]));
  EXPECT_TRUE(l.admitted());
}

TEST(SyncHello, HellosThatDoNotBindTheLinkAreRefusedAndTheLinkIsNotAdmitted) {
  const Device other = Device::make();
  struct Case {
    const char* what;
    std::function<wire::Hello(const Link2&)> make;
  };
  const std::vector<Case> cases = {
      {"a flipped signature bit",
       [](const Link2& l) {
         wire::Hello h = signed_hello(l.b, l.b.origin());
         h.proof->signature[10] = static_cast<char>(h.proof->signature[10] ^ 0x04);
         return h;
       }},
      {"signed by another device than the link's", [&](const Link2&) { return signed_hello(other, other.origin()); }},
      {"a node id that is not the device's origin",
       [&](const Link2& l) { return signed_hello(l.b, other.origin()); }},
      {"signed over another CURVE key", [&](const Link2& l) { return signed_hello(l.b, l.b.origin(), other.curve); }},
      {"an origin key certified by another device",
       [&](const Link2& l) {
         const Device k = Device::make();
         wire::Hello h = certified_hello(l.b, k);
         h.proof->cert = proof::sign_cert(kCluster, k.key, other.secret);
         return h;
       }},
      {"feature bit 1 and no signature", [](const Link2& l) { return plain_hello(l.b.origin()); }},
  };
  for (const auto& c : cases) {
    Link2 l;
    auto answers = l.say(c.make(l));
    EXPECT_TRUE(Link2::is_error(answers, wire::ErrorCode::kUnbound)) << c.what;
    EXPECT_FALSE(l.admitted()) << c.what;
    EXPECT_FALSE(l.log.empty()) << c.what << ": not logged";
  }
}

TEST(SyncHello, AnOlderPeerWithoutTheSignedFeatureIsStillHeard) {
  Link2 l;
  auto answers = l.say(plain_hello(12345, wire::kFeatureMembers));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<wire::Hello>(answers[0]));
  EXPECT_TRUE(l.admitted());
}

TEST(SyncHello, AnAdmittedLinkThatSaysABadHelloIsForgotten) {
  Link2 l;
  ASSERT_EQ(l.say(signed_hello(l.b, l.b.origin())).size(), 1u);
  ASSERT_TRUE(l.admitted());
  EXPECT_TRUE(Link2::is_error(l.say(signed_hello(l.b, 77)), wire::ErrorCode::kUnbound));
  EXPECT_FALSE(l.admitted());
}

// a dials b; b answers a's Hello with `answer` (of b's making). True when a's
// peer b became ready; `bound` gets whether it is listed as origin bound.
bool dial_and_answer(Link2& l, const std::function<wire::Hello(const Link2&)>& answer, bool& bound) {
  for (int round = 0; round < 20; ++round) {
    l.clock.advance(50);
    l.engine->on_tick();
    for (auto& f : l.tb.poll(0)) {
      auto m = wire::decode(f.bytes);
      if (!f.link.outgoing && m && std::holds_alternative<wire::Hello>(*m)) {
        EXPECT_TRUE(std::get<wire::Hello>(*m).proof) << "a's Hello is signed";
        l.tb.send(f.link, wire::encode(answer(l)));
      }
    }
    l.engine->on_frames(l.ta.poll(0));
  }
  l.clock.advance(200);
  l.engine->on_tick();
  auto peers = l.engine->peers();
  EXPECT_EQ(peers.size(), 1u);
  if (peers.empty()) return false;
  bound = peers[0].origin_bound;
  return peers[0].ready;
}

TEST(SyncHello, AnAnswerThatBindsTheLinkMakesThePeerReadyAndBound) {
  Link2 l(/*dial_b=*/true);
  bool bound = false;
  EXPECT_TRUE(dial_and_answer(l, [](const Link2& l) { return signed_hello(l.b, l.b.origin()); }, bound));
  EXPECT_TRUE(bound);
  EXPECT_EQ(peer_status_value(l.engine->peers()[0]).find("origin_bound")->as_bool(), true);
}

TEST(SyncHello, AnAnswerThatDoesNotBindTheLinkLeavesThePeerNotReady) {
  Link2 l(/*dial_b=*/true);
  bool bound = true;
  EXPECT_FALSE(dial_and_answer(l, [](const Link2& l) { return signed_hello(l.b, 77); }, bound));
  EXPECT_FALSE(bound);
  Link2 unsigned_answer(/*dial_b=*/true);
  EXPECT_FALSE(dial_and_answer(unsigned_answer, [](const Link2& l) { return plain_hello(l.b.origin()); }, bound));
}

TEST(SyncHello, ANodeThatMovesToAFreshOriginSignsItsNewNodeIdWithTheCertificate) {
  Link2 l;
  const Device fresh = Device::make();
  l.store.own = OwnOriginKey{fresh.origin(), fresh.key, proof::sign_cert(kCluster, fresh.key, l.a.secret)};
  l.engine->on_tick();
  auto answers = l.say(signed_hello(l.b, l.b.origin()));
  ASSERT_EQ(answers.size(), 1u);
  const auto& h = std::get<wire::Hello>(answers[0]);
  EXPECT_EQ(h.node_id, fresh.origin());
  ASSERT_TRUE(h.proof);
  EXPECT_EQ(h.proof->key, fresh.key);
  EXPECT_TRUE(proof::check_hello(*h.proof, kCluster, l.a.curve, h.node_id));
}

}  // namespace
}  // namespace replog

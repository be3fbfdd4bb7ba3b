// Signed origins (PROTOCOL.md §8, protocol/origin_proof.h): fixed vectors
// computed outside this code base, single-bit changes to heads, bodies and
// hlcs, forged heads, legacy attestations, key certificates, both kinds of
// fork evidence and what check_evidence refuses, and the head and evidence
// codecs against truncation and bad shapes.
#include <gtest/gtest.h>
#include <sodium.h>

#include <msgpack.hpp>
#include <string>
#include <vector>

#include "protocol/bytes.h"
#include "protocol/origin_proof.h"
#include "protocol/update.h"

namespace replog::proof {
namespace {

const std::string kCluster = "f1f1f1f1-0001";

struct Keys {
  std::string pub, secret;  // 32 bytes; 64 bytes (libsodium form)
  OriginId origin() const { return origin_of_key(pub); }
};

// The Ed25519 key pair of the 32-byte seed first, first+1, ..., first+31.
Keys seeded(unsigned char first) {
  EXPECT_GE(sodium_init(), 0);
  unsigned char seed[crypto_sign_SEEDBYTES];
  for (size_t i = 0; i < sizeof seed; ++i) seed[i] = static_cast<unsigned char>(first + i);
  Keys k{std::string(kKeyBytes, '\0'), std::string(kSecretKeyBytes, '\0')};
  crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(k.pub.data()),
                           reinterpret_cast<unsigned char*>(k.secret.data()), seed);
  return k;
}
const Keys& writer() {  // seed 0x01..0x20: the origin key K of the vectors
  static const Keys k = seeded(0x01);
  return k;
}
const Keys& device() {  // seed 0x21..0x40: the device key D of the vectors
  static const Keys k = seeded(0x21);
  return k;
}

std::string unhex(std::string_view text) { return from_hex(text).value(); }
std::string hex(const Chain& c) { return to_hex(chain_bytes(c)); }

// An update of `origin` (K's unless named) with hlc `hlc` and seq `seq`.
Update update(uint64_t hlc, uint64_t seq, std::string_view method, std::string_view arg, OriginId origin = 0) {
  return Update::make(UpdateId{hlc, origin == 0 ? writer().origin() : origin}, seq, method, arg);
}
// The hlc of seq `seq` in the helpers below: rising with seq, as an origin writes them.
uint64_t hlc_of(uint64_t seq) { return (uint64_t{1'795'617'187'000} + seq) << 16; }
// Updates seq first.. of `origin` whose arg says which branch they belong to.
std::vector<Update> branch(uint64_t first, size_t n, std::string_view name, OriginId origin) {
  std::vector<Update> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(update(hlc_of(first + i), first + i, "set", std::string(name) + std::to_string(i), origin));
  return out;
}
Chain chain_over(Chain c, std::string_view key, const std::vector<Update>& us) {
  for (const auto& u : us) chain_step(c, key, u.id().hlc, u.body());
  return c;
}
// A head signed by `k` for `origin`, carrying k's key.
Head keyed_head(const Keys& k, OriginId origin, uint64_t seq, const Chain& c, uint8_t flags = 0) {
  Head h = sign_head(origin, seq, c, flags, k.secret);
  h.key = k.pub;
  return h;
}
// `u` with another hlc and the same body.
Update with_hlc(const Update& u, uint64_t hlc) { return *Update::parse(UpdateId{hlc, u.id().origin}, u.body()); }

void expect_same(const std::vector<Update>& x, const std::vector<Update>& y) {
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(x[i].id(), y[i].id()) << i;
    EXPECT_EQ(x[i].body(), y[i].body()) << i;
  }
}

// --- fixed vectors (PROTOCOL.md §8 "Vectors") --------------------------------------------
//
// The expected values were computed apart from this code: Python's
// hashlib.blake2b(digest_size=32) for the hashes, the `cryptography` package's
// Ed25519 (OpenSSL) for the keys and signatures, and MessagePack written by hand.

const char* const kArg1 = "82a470617468a161a576616c756501";  // {"path": "a", "value": 1}
const char* const kArg2 = "82a2627902a470617468a16e";        // {"by": 2, "path": "n"}
const char* const kBody1 = "9301a3736574c40f82a470617468a161a576616c756501";
const char* const kBody2 = "9302a3696e63c40c82a2627902a470617468a16e";
// 2026-11-25T14:33:07.123Z logical 0 and 1; and .124Z logical 0 (branch b's seq 2 in the evidence vector).
constexpr uint64_t kHlc1 = 0x01a2131fe5330000, kHlc2 = 0x01a2131fe5330001, kHlc2b = 0x01a2131fe5340000;
const char* const kC1 = "1803bca9f591612ef4cf8c4b999199375a92da07b529e8cd953287520b4ee24d";
const char* const kC2 = "c10bb285bb29732c08c64c7f9a7483133ae8824996c2264d59d41bbcc6f91e80";
const char* const kSignature =
    "a1e8d66c047744b453acd835c729748fe5c4c0302e0cb37f74bf97b2ace12db6"
    "e68b703ba1b85ea12532a990e979b6e8e4ae44f0138fb4747381e10d74980409";
const char* const kCert =
    "dfef7181277e39200ead01e887e1ada5950d1ddbced2c517d9e9d94cb2005e54"
    "5581c9fe9a714b2760920558e6d9871b62df1da34c96ea5b37c5e2a178e2850c";
// Branch b of the evidence vector: body 2 at kHlc2b, and its head.
const char* const kC2b = "fb9843e4bdbbbc68d8b1ed0349e0614517cc04e058e49ff90ee2c45a19e915bc";
const char* const kSignatureB =
    "200b7db64f7a4818423dad7d79d81ae9919ec801ca2569968394c366e4a98e4b"
    "9c1d59aead17f29f22e0c348607ab8bcd8eeaf1943b12aaebcd38e7f8c7a8202";

// The vectors' updates: K's origin, seq 1 "set" at kHlc1 and seq 2 "inc" at kHlc2.
Update vector_update1() { return update(kHlc1, 1, "set", unhex(kArg1)); }
Update vector_update2() { return update(kHlc2, 2, "inc", unhex(kArg2)); }

// The vectors' head: K's origin at seq 2 over updates 1 and 2, flags 0.
Head vector_head() {
  const Chain c = chain_over(chain_start(kCluster, writer().pub), writer().pub, {vector_update1(), vector_update2()});
  return sign_head(writer().origin(), 2, c, 0, writer().secret);
}

// The evidence vector: K's origin forked at seq 2, branch a holding update 2
// and branch b the same body at kHlc2b; heads at seq 2 carrying K.
Evidence vector_evidence() {
  Chain base = chain_start(kCluster, writer().pub);
  chain_step(base, writer().pub, kHlc1, unhex(kBody1));
  const Update b2 = with_hlc(vector_update2(), kHlc2b);
  const Head hb = keyed_head(writer(), writer().origin(), 2, chain_over(base, writer().pub, {b2}));
  Head ha = vector_head();
  ha.key = writer().pub;
  return chain_evidence(ha, hb, 2, base, {vector_update2()}, {b2});
}

TEST(OriginProofVectors, KeysAndOriginIds) {
  EXPECT_EQ(to_hex(writer().pub), "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664");
  EXPECT_EQ(to_hex(device().pub), "e7f162a10bec559afea195e4dce84b69568d5d2cb0963eb446c0685e2b17f2f0");
  EXPECT_EQ(hex16(origin_of_key(writer().pub)), "bc100233fd6a1a94");
  EXPECT_EQ(hex16(origin_of_key(device().pub)), "daf0f522225dbb9a");
  EXPECT_EQ(origin_of_key(writer().pub.substr(1)), 0u);
  EXPECT_EQ(origin_of_key(writer().pub + "x"), 0u);
}

TEST(OriginProofVectors, ChainOverTwoUpdates) {
  EXPECT_EQ(kHlc1, uint64_t{1'795'617'187'123} << 16);
  EXPECT_EQ(kHlc2, kHlc1 + 1);
  EXPECT_EQ(kHlc2b, uint64_t{1'795'617'187'124} << 16);
  const Update u1 = vector_update1(), u2 = vector_update2();
  EXPECT_EQ(to_hex(u1.body()), kBody1);
  EXPECT_EQ(to_hex(u2.body()), kBody2);
  Chain c = chain_start(kCluster, writer().pub);
  EXPECT_EQ(hex(c), "d62a59ff199a669b9babab30b17021f6180c70c9c3d924dca119cc577a17b593");
  chain_step(c, writer().pub, kHlc1, u1.body());
  EXPECT_EQ(hex(c), kC1);
  chain_step(c, writer().pub, kHlc2, u2.body());
  EXPECT_EQ(hex(c), kC2);
  EXPECT_EQ(chain_from(chain_bytes(c)), c);
  EXPECT_FALSE(chain_from(chain_bytes(c).substr(1)));
  // Body 2 at kHlc2b instead: branch b of the evidence vector.
  Chain b = *chain_from(unhex(kC1));
  chain_step(b, writer().pub, kHlc2b, u2.body());
  EXPECT_EQ(hex(b), kC2b);
  // c_0 depends on the cluster, its length prefix included.
  EXPECT_NE(chain_start("f1f1f1f1-0002", writer().pub), chain_start(kCluster, writer().pub));
  EXPECT_NE(chain_start(kCluster, device().pub), chain_start(kCluster, writer().pub));
}

TEST(OriginProofVectors, HeadMessageAndSignature) {
  const Head h = vector_head();
  EXPECT_EQ(to_hex(head_message(h.origin, h.seq, h.chain, h.flags)),
            "7265706c6f672d686561642d7631bc100233fd6a1a940000000000000002" + std::string(kC2) + "00");
  EXPECT_EQ(to_hex(h.signature), kSignature);
  EXPECT_TRUE(head_signed_by(h, writer().pub));
  EXPECT_TRUE(check_head(h, kCluster, writer().pub));
  const Evidence e = vector_evidence();
  EXPECT_EQ(hex(e.b.chain), kC2b);
  EXPECT_EQ(to_hex(e.b.signature), kSignatureB);
}

TEST(OriginProofVectors, CertificateOfTheDeviceForTheKey) {
  EXPECT_EQ(to_hex(cert_message(kCluster, writer().pub)),
            "7265706c6f672d6f726967696e2d636572742d76310d66316631663166312d30303031" + to_hex(writer().pub));
  EXPECT_EQ(to_hex(sign_cert(kCluster, writer().pub, device().secret)), kCert);
  EXPECT_TRUE(cert_valid(kCluster, writer().pub, device().pub, unhex(kCert)));
}

TEST(OriginProofVectors, HeadEncodingsOfFiveSixAndEightElements) {
  Head h = vector_head();
  const std::string five = "95cfbc100233fd6a1a9402c420" + std::string(kC2) + "00c440" + std::string(kSignature);
  EXPECT_EQ(to_hex(encode_head(h)), five);
  h.key = writer().pub;
  const std::string six = "96" + five.substr(2) + "c420" + to_hex(writer().pub);
  EXPECT_EQ(to_hex(encode_head(h)), six);
  h.device = device().pub;
  h.cert = unhex(kCert);
  EXPECT_EQ(to_hex(encode_head(h)), "98" + six.substr(2) + "c420" + to_hex(device().pub) + "c440" + kCert);
  EXPECT_TRUE(check_head(h, kCluster, ""));
}

// Chain evidence of a fork at seq 2 whose branches hold one body at two hlcs:
// [1, head a, head b, 2, bin c_1, [envelope a], [envelope b]], each envelope
// [hlc, origin, bin body].
TEST(OriginProofVectors, ChainEvidenceEncoding) {
  const Evidence e = vector_evidence();
  const std::string env_a = "93cf01a2131fe5330001cfbc100233fd6a1a94c414" + std::string(kBody2);
  const std::string env_b = "93cf01a2131fe5340000cfbc100233fd6a1a94c414" + std::string(kBody2);
  std::string one;
  append_envelope(e.branch_b[0], one);
  EXPECT_EQ(to_hex(one), env_b);
  const std::string expected =
      "970196cfbc100233fd6a1a9402c420c10bb285bb29732c08c64c7f9a7483133ae8824996c2264d59d41bbcc6f91e8000c440a1e8d66c"
      "047744b453acd835c729748fe5c4c0302e0cb37f74bf97b2ace12db6e68b703ba1b85ea12532a990e979b6e8e4ae44f0138fb4747381"
      "e10d74980409c42079b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad04966496cfbc100233fd6a1a9402c420fb"
      "9843e4bdbbbc68d8b1ed0349e0614517cc04e058e49ff90ee2c45a19e915bc00c440200b7db64f7a4818423dad7d79d81ae9919ec801"
      "ca2569968394c366e4a98e4b9c1d59aead17f29f22e0c348607ab8bcd8eeaf1943b12aaebcd38e7f8c7a8202c42079b5562e8fe654f9"
      "4078b112e8a98ba7901f853ae695bed7e0e3910bad04966402c4201803bca9f591612ef4cf8c4b999199375a92da07b529e8cd953287"
      "520b4ee24d9193cf01a2131fe5330001cfbc100233fd6a1a94c4149302a3696e63c40c82a2627902a470617468a16e9193cf01a2131f"
      "e5340000cfbc100233fd6a1a94c4149302a3696e63c40c82a2627902a470617468a16e";
  ASSERT_EQ(expected.size(), 2 * 413u);
  const std::string bytes = encode_evidence(e);
  EXPECT_EQ(to_hex(bytes), expected);
  // Field by field: the heads of 6 elements, the fork seq, the base c_1, then the branches.
  EXPECT_EQ(expected, "9701" + to_hex(encode_head(e.a)) + to_hex(encode_head(e.b)) + "02c420" + kC1 + "91" + env_a +
                          "91" + env_b);
  auto s = check_evidence(e, kCluster);
  EXPECT_TRUE(s) << s.message();
  auto back = decode_evidence(unhex(expected));
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_TRUE(check_evidence(*back, kCluster));
  EXPECT_EQ(back->seq, 2u);
  EXPECT_EQ(hex(back->base), kC1);
  EXPECT_EQ(back->branch_a[0].id(), (UpdateId{kHlc2, writer().origin()}));
  EXPECT_EQ(back->branch_b[0].id(), (UpdateId{kHlc2b, writer().origin()}));
}

// --- heads: single bits, forgery, legacy ---------------------------------------------------

// Every one-bit change of a field makes check_head fail.
TEST(OriginProofHead, EveryFlippedBitOfAFieldIsRefused) {
  const Head good = keyed_head(writer(), writer().origin(), 7, chain_start(kCluster, writer().pub));
  ASSERT_TRUE(check_head(good, kCluster, ""));
  auto flip_bytes = [&](std::string Head::*field) {
    for (size_t bit = 0; bit < (good.*field).size() * 8; ++bit) {
      Head h = good;
      (h.*field)[bit / 8] = static_cast<char>((h.*field)[bit / 8] ^ (1 << (bit % 8)));
      EXPECT_FALSE(check_head(h, kCluster, "")) << bit;
    }
  };
  flip_bytes(&Head::signature);
  flip_bytes(&Head::key);
  for (size_t bit = 0; bit < kChainBytes * 8; ++bit) {
    Head h = good;
    h.chain[bit / 8] ^= static_cast<unsigned char>(1 << (bit % 8));
    EXPECT_FALSE(check_head(h, kCluster, "")) << "chain bit " << bit;
  }
  for (int bit = 0; bit < 64; ++bit) {
    Head h = good;
    h.seq ^= uint64_t{1} << bit;
    EXPECT_FALSE(check_head(h, kCluster, "")) << "seq bit " << bit;
    h = good;
    h.origin ^= uint64_t{1} << bit;
    EXPECT_FALSE(check_head(h, kCluster, "")) << "origin bit " << bit;
  }
  for (int bit = 0; bit < 8; ++bit) {
    Head h = good;
    h.flags = static_cast<uint8_t>(h.flags ^ (1 << bit));
    EXPECT_FALSE(check_head(h, kCluster, "")) << "flags bit " << bit;
  }
  // A known key, one bit off, is not the signer.
  Head bare = good;
  bare.key.clear();
  ASSERT_TRUE(check_head(bare, kCluster, writer().pub));
  std::string other = writer().pub;
  other[5] ^= 0x10;
  EXPECT_FALSE(check_head(bare, kCluster, other));
}

// Every one-bit change of the encoding either fails to decode or decodes to a
// head that check_head refuses.
TEST(OriginProofHead, EveryFlippedBitOfTheEncodingIsRefused) {
  Head certified = keyed_head(writer(), writer().origin(), 3, chain_start(kCluster, writer().pub));
  Head keyed = certified;
  certified.device = device().pub;
  certified.cert = sign_cert(kCluster, writer().pub, device().secret);
  for (const Head& good : {keyed, certified}) {
    const std::string bytes = encode_head(good);
    ASSERT_TRUE(check_head(*decode_head(bytes), kCluster, ""));
    for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
      std::string changed = bytes;
      changed[bit / 8] = static_cast<char>(changed[bit / 8] ^ (1 << (bit % 8)));
      auto h = decode_head(changed);
      EXPECT_TRUE(!h || !check_head(*h, kCluster, "")) << "bit " << bit << " of " << bytes.size() * 8;
    }
  }
}

TEST(OriginProofHead, AHeadWithoutAnyKeyIsNotFound) {
  Head h = sign_head(writer().origin(), 1, chain_start(kCluster, writer().pub), 0, writer().secret);
  EXPECT_EQ(check_head(h, kCluster, "").code(), Status::Code::kNotFound);
  EXPECT_EQ(check_head(h, kCluster, writer().pub.substr(2)).code(), Status::Code::kInvalidArgument);
}

TEST(OriginProofHead, AHeadSignedByAnotherKeyIsRefused) {
  const Chain c = chain_start(kCluster, writer().pub);
  // The forger signs a head of K's origin; the receiver knows K.
  Head forged = sign_head(writer().origin(), 1, c, 0, device().secret);
  EXPECT_FALSE(check_head(forged, kCluster, writer().pub));
  // Carrying its own key: that key does not hold K's origin.
  forged.key = device().pub;
  auto s = check_head(forged, kCluster, writer().pub);
  EXPECT_NE(s.message().find("does not hold"), std::string::npos) << s.message();
  // Carrying K's key: the signature is not K's.
  forged.key = writer().pub;
  s = check_head(forged, kCluster, "");
  EXPECT_NE(s.message().find("signature"), std::string::npos) << s.message();
}

TEST(OriginProofHead, OnlyALegacyHeadMayNameAnIdNotDerivedFromItsKey) {
  const OriginId legacy = 0x1234567890abcdefULL;
  const Chain c = chain_start(kCluster, device().pub);
  EXPECT_TRUE(check_head(keyed_head(device(), legacy, 4, c, kLegacy), kCluster, ""));
  EXPECT_TRUE(check_head(keyed_head(device(), legacy, 4, c, kLegacy | kFinal), kCluster, ""));
  EXPECT_FALSE(check_head(keyed_head(device(), legacy, 4, c, 0), kCluster, ""));
  EXPECT_FALSE(check_head(keyed_head(device(), legacy, 4, c, kFinal), kCluster, ""));
  // A legacy head may still name its key's own id; no head names a reserved id.
  EXPECT_TRUE(check_head(keyed_head(device(), device().origin(), 4, c, kLegacy), kCluster, ""));
  EXPECT_FALSE(check_head(keyed_head(device(), 0, 4, c, kLegacy), kCluster, ""));
  EXPECT_FALSE(check_head(keyed_head(device(), ~OriginId{0}, 4, c, kLegacy), kCluster, ""));
}

// --- chains over updates ------------------------------------------------------------------

TEST(OriginProofChain, EveryFlippedBitOfABodyChangesTheChain) {
  const std::vector<Update> us = {vector_update1(), vector_update2()};
  const Chain start = chain_start(kCluster, writer().pub);
  const Head h = vector_head();
  ASSERT_EQ(chain_over(start, writer().pub, us), h.chain);
  for (size_t i = 0; i < us.size(); ++i)
    for (size_t bit = 0; bit < us[i].body().size() * 8; ++bit) {
      Chain c = start;
      for (size_t j = 0; j < us.size(); ++j) {
        std::string body = us[j].body();
        if (j == i) body[bit / 8] = static_cast<char>(body[bit / 8] ^ (1 << (bit % 8)));
        chain_step(c, writer().pub, us[j].id().hlc, body);
      }
      EXPECT_NE(c, h.chain) << "body " << i << " bit " << bit;
    }
}

// The hlc places an update in replay order: a relay that moves an update
// (same body, another hlc) no longer matches the head.
TEST(OriginProofChain, ChangingOnlyTheHlcOfAnUpdateBreaksTheChain) {
  const Update u1 = vector_update1(), u2 = vector_update2();
  const Chain start = chain_start(kCluster, writer().pub);
  const Chain head = vector_head().chain;
  ASSERT_EQ(chain_over(start, writer().pub, {u1, u2}), head);
  EXPECT_NE(chain_over(start, writer().pub, {with_hlc(u1, kHlc1 + 1), u2}), head);
  EXPECT_NE(chain_over(start, writer().pub, {u1, with_hlc(u2, kHlc2 + 1)}), head);
  EXPECT_NE(chain_over(start, writer().pub, {u1, with_hlc(u2, kHlc2b)}), head);
  EXPECT_NE(chain_over(start, writer().pub, {with_hlc(u1, kHlc2), with_hlc(u2, kHlc1)}), head);  // hlcs swapped
  EXPECT_NE(chain_over(start, writer().pub, {with_hlc(u1, 0), u2}), head);
  EXPECT_NE(chain_over(start, writer().pub, {u1, with_hlc(u2, ~uint64_t{0})}), head);
  // Through check_evidence too: branch b moved to another hlc no longer chains to its head.
  Evidence e = vector_evidence();
  e.branch_b[0] = with_hlc(e.branch_b[0], kHlc2b + 1);
  auto s = check_evidence(e, kCluster);
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("branch b does not chain"), std::string::npos) << s.message();
}

// Every single-bit change of the 8 hlc bytes changes the chain, and makes
// the evidence that carries the update, decoded or not, fail.
TEST(OriginProofChain, EveryFlippedBitOfAnHlcIsCaught) {
  const std::vector<Update> us = {vector_update1(), vector_update2()};
  const Chain start = chain_start(kCluster, writer().pub);
  const Chain head = vector_head().chain;
  for (size_t i = 0; i < us.size(); ++i)
    for (int bit = 0; bit < 64; ++bit) {
      std::vector<Update> changed = us;
      changed[i] = with_hlc(us[i], us[i].id().hlc ^ (uint64_t{1} << bit));
      EXPECT_NE(chain_over(start, writer().pub, changed), head) << "update " << i << " hlc bit " << bit;
    }

  const Evidence good = vector_evidence();
  ASSERT_TRUE(check_evidence(good, kCluster));
  for (int bit = 0; bit < 64; ++bit) {
    Evidence e = good;
    e.branch_a[0] = with_hlc(e.branch_a[0], kHlc2 ^ (uint64_t{1} << bit));
    EXPECT_FALSE(check_evidence(e, kCluster)) << "branch a hlc bit " << bit;
    e = good;
    e.branch_b[0] = with_hlc(e.branch_b[0], kHlc2b ^ (uint64_t{1} << bit));
    EXPECT_FALSE(check_evidence(e, kCluster)) << "branch b hlc bit " << bit;
  }
  // In the encoding: each envelope's hlc is cf and its 8 bytes; a flipped bit
  // there either fails to decode or decodes to evidence check_evidence refuses.
  const std::string bytes = encode_evidence(good);
  for (const uint64_t hlc : {kHlc2, kHlc2b}) {
    std::string needle = "\x93\xcf" + u64_be(hlc);
    const size_t at = bytes.find(needle);
    ASSERT_NE(at, std::string::npos);
    for (size_t bit = 0; bit < 64; ++bit) {
      std::string changed = bytes;
      const size_t byte = at + 2 + bit / 8;
      changed[byte] = static_cast<char>(changed[byte] ^ (1 << (bit % 8)));
      auto e = decode_evidence(changed);
      EXPECT_TRUE(!e || !check_evidence(*e, kCluster)) << "hlc " << hlc << " bit " << bit;
    }
  }
}

TEST(OriginProofChain, AReorderedOrMissingUpdateBreaksTheChain) {
  const Update u1 = vector_update1(), u2 = vector_update2();
  const Chain start = chain_start(kCluster, writer().pub);
  const Chain head = vector_head().chain;
  EXPECT_EQ(chain_over(start, writer().pub, {u1, u2}), head);
  EXPECT_NE(chain_over(start, writer().pub, {u2, u1}), head);
  EXPECT_NE(chain_over(start, writer().pub, {u1}), head);
  EXPECT_NE(chain_over(start, writer().pub, {u2}), head);
  EXPECT_NE(chain_over(start, writer().pub, {u1, u1, u2}), head);
  // The same updates under another key or in another cluster chain elsewhere.
  EXPECT_NE(chain_over(chain_start(kCluster, device().pub), device().pub, {u1, u2}), head);
  EXPECT_NE(chain_over(chain_start("f1f1f1f1-0002", writer().pub), writer().pub, {u1, u2}), head);
}

// --- certificates --------------------------------------------------------------------------

TEST(OriginProofCert, AHeadCarryingAValidCertificateVerifies) {
  const Keys fresh = seeded(0x41);
  Head h = keyed_head(fresh, fresh.origin(), 1, chain_start(kCluster, fresh.pub));
  h.device = device().pub;
  h.cert = sign_cert(kCluster, fresh.pub, device().secret);
  EXPECT_TRUE(check_head(h, kCluster, ""));
  auto back = decode_head(encode_head(h));
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(*back, h);
  EXPECT_TRUE(check_head(*back, kCluster, ""));
}

TEST(OriginProofCert, AWrongCertificateIsRefused) {
  const Keys fresh = seeded(0x41);
  Head h = keyed_head(fresh, fresh.origin(), 1, chain_start(kCluster, fresh.pub));
  h.device = device().pub;
  auto refused = [&](std::string cert, std::string device_key = device().pub) {
    Head c = h;
    c.cert = std::move(cert);
    c.device = std::move(device_key);
    auto s = check_head(c, kCluster, "");
    return !s && s.message().find("certificate") != std::string::npos;
  };
  std::string flipped = sign_cert(kCluster, fresh.pub, device().secret);
  flipped[10] ^= 0x01;
  EXPECT_TRUE(refused(flipped));
  EXPECT_TRUE(refused(sign_cert("f1f1f1f1-0002", fresh.pub, device().secret)));         // another cluster
  EXPECT_TRUE(refused(sign_cert(kCluster, writer().pub, device().secret)));             // over another key
  EXPECT_TRUE(refused(sign_cert(kCluster, fresh.pub, writer().secret)));                // by another device
  EXPECT_TRUE(refused(sign_cert(kCluster, fresh.pub, device().secret), writer().pub));  // naming another device
  EXPECT_FALSE(refused(sign_cert(kCluster, fresh.pub, device().secret)));
  EXPECT_FALSE(
      cert_valid(kCluster, fresh.pub, device().pub.substr(1), sign_cert(kCluster, fresh.pub, device().secret)));
}

// --- evidence --------------------------------------------------------------------------------

// Two branches of one key: seqs 1..shared in common, then `len_a` and `len_b`
// updates of their own, with a signed head at each end.
struct Fork {
  Chain base;  // c_shared
  std::vector<Update> a, b;
  Head head_a, head_b;
};
Fork fork_after(uint64_t shared, size_t len_a, size_t len_b, const Keys& k = writer(), OriginId origin = 0,
                uint8_t flags = 0) {
  if (origin == 0) origin = k.origin();
  Fork f;
  f.base = chain_over(chain_start(kCluster, k.pub), k.pub, branch(1, shared, "common", origin));
  f.a = branch(shared + 1, len_a, "a", origin);
  f.b = branch(shared + 1, len_b, "b", origin);
  f.head_a = keyed_head(k, origin, shared + len_a, chain_over(f.base, k.pub, f.a), flags);
  f.head_b = keyed_head(k, origin, shared + len_b, chain_over(f.base, k.pub, f.b), flags);
  return f;
}
Evidence evidence_of(const Fork& f, uint64_t seq) { return chain_evidence(f.head_a, f.head_b, seq, f.base, f.a, f.b); }

void expect_same(const Evidence& x, const Evidence& y) {
  EXPECT_EQ(x.kind, y.kind);
  EXPECT_EQ(x.a, y.a);
  EXPECT_EQ(x.b, y.b);
  EXPECT_EQ(x.seq, y.seq);
  EXPECT_EQ(x.base, y.base);
  expect_same(x.branch_a, y.branch_a);
  expect_same(x.branch_b, y.branch_b);
}

TEST(OriginProofEvidence, TwoBranchesOfOneKeyProveAFork) {
  for (uint64_t k : {0, 1, 3}) {
    const Fork f = fork_after(k, 2, 3);
    const Evidence e = evidence_of(f, k + 1);
    auto s = check_evidence(e, kCluster);
    EXPECT_TRUE(s) << "k=" << k << ": " << s.message();
    EXPECT_EQ(e.fork_seq(), k + 1);
    EXPECT_EQ(e.origin(), writer().origin());
  }
  // A fork at seq 1: the base is c_0 of this cluster, and no other.
  const Evidence at_one = evidence_of(fork_after(0, 1, 1), 1);
  EXPECT_EQ(at_one.base, chain_start(kCluster, writer().pub));
  EXPECT_TRUE(check_evidence(at_one, kCluster));
  EXPECT_FALSE(check_evidence(at_one, "f1f1f1f1-0002"));
}

// One body at two hlcs is two histories: the key signed both, so the branches
// differ at the fork seq though their first bodies are equal.
TEST(OriginProofEvidence, EqualBodiesAtDifferentHlcsProveAFork) {
  const Evidence e = vector_evidence();
  ASSERT_EQ(e.branch_a[0].body(), e.branch_b[0].body());
  ASSERT_NE(e.branch_a[0].id().hlc, e.branch_b[0].id().hlc);
  auto s = check_evidence(e, kCluster);
  EXPECT_TRUE(s) << s.message();
  EXPECT_EQ(e.fork_seq(), 2u);

  // Longer branches whose first updates differ in hlc only, the rest in body too.
  const uint64_t k = 3;
  const Fork f = fork_after(k, 2, 3);
  std::vector<Update> b = f.a;
  b[0] = with_hlc(f.a[0], f.a[0].id().hlc + 1);
  b[1] = update(hlc_of(k + 2) + 1, k + 2, "set", "b1");
  b.push_back(update(hlc_of(k + 3), k + 3, "set", "b2"));
  const Head hb = keyed_head(writer(), writer().origin(), k + 3, chain_over(f.base, writer().pub, b));
  s = check_evidence(chain_evidence(f.head_a, hb, k + 1, f.base, f.a, b), kCluster);
  EXPECT_TRUE(s) << s.message();

  // Equal bodies at equal hlcs agree: no fork at that seq.
  const Evidence same = chain_evidence(e.a, e.a, 2, e.base, e.branch_a, e.branch_a);
  EXPECT_NE(check_evidence(same, kCluster).message().find("agree at the fork seq"), std::string::npos);
}

TEST(OriginProofEvidence, ChainEvidenceIsRefusedWhenItProvesNothing) {
  const uint64_t k = 2;
  const Fork f = fork_after(k, 2, 3);
  auto why = [](const Evidence& e) { return check_evidence(e, kCluster).message(); };
  auto refused = [&](const Evidence& e, std::string_view reason) {
    auto s = check_evidence(e, kCluster);
    EXPECT_FALSE(s);
    EXPECT_NE(s.message().find(reason), std::string::npos) << s.message();
  };
  ASSERT_TRUE(check_evidence(evidence_of(f, k + 1), kCluster)) << why(evidence_of(f, k + 1));

  Evidence e = evidence_of(f, k + 1);  // an update short of its head
  e.branch_a.pop_back();
  refused(e, "do not reach");
  e = evidence_of(f, k + 1);  // an update past its head
  e.branch_b.push_back(update(hlc_of(k + 4), k + 4, "set", "extra"));
  refused(e, "do not reach");
  e = evidence_of(f, k + 1);  // an update's body changed
  e.branch_b.back() = update(e.branch_b.back().id().hlc, k + 3, "set", "changed");
  refused(e, "does not chain");
  e = evidence_of(f, k + 1);  // an update's hlc changed, its body not
  e.branch_a.back() = with_hlc(e.branch_a.back(), e.branch_a.back().id().hlc + 1);
  refused(e, "branch a does not chain");
  e = evidence_of(f, k + 1);  // the wrong base
  e.base[0] ^= 1;
  refused(e, "does not chain");
  e = evidence_of(f, k + 2);  // the fork seq one too far: the updates no longer fit
  refused(e, "do not reach");
  e = evidence_of(f, k + 1);  // a fork seq above a head
  e.seq = f.head_a.seq + 1;
  refused(e, "outside the heads");
  e.seq = 0;
  refused(e, "outside the heads");

  // Two heads on one chain: the branches agree at the fork seq.
  const Fork same = fork_after(k, 2, 2);
  e = chain_evidence(same.head_a, same.head_a, k + 1, same.base, same.a, same.a);
  refused(e, "agree at the fork seq");
  // Two branches that share seq k+1 as well, shown as forking there.
  std::vector<Update> a2 = same.a, b2 = same.a;
  b2.back() = update(hlc_of(k + 2), k + 2, "set", "other");
  const Head hb2 = keyed_head(writer(), writer().origin(), k + 2, chain_over(same.base, writer().pub, b2));
  refused(chain_evidence(same.head_a, hb2, k + 1, same.base, a2, b2), "agree at the fork seq");
  ASSERT_TRUE(check_evidence(
      chain_evidence(same.head_a, hb2, k + 2, chain_over(same.base, writer().pub, {a2[0]}), {a2[1]}, {b2[1]}),
      kCluster));

  // A fork at seq 1 whose base is not c_0.
  const Fork first = fork_after(0, 2, 2);
  e = evidence_of(first, 1);
  e.base = chain_start("f1f1f1f1-0002", writer().pub);
  refused(e, "first chain value");

  // An update whose seq field is not its place, though chained and signed.
  std::vector<Update> wrong = f.b;
  wrong[0] = update(wrong[0].id().hlc, k + 7, "set", "b0");
  const Head hw = keyed_head(writer(), writer().origin(), f.head_b.seq, chain_over(f.base, writer().pub, wrong));
  refused(chain_evidence(f.head_a, hw, k + 1, f.base, f.a, wrong), "is seq");
}

// An update in a branch names its origin; one that names another origin is
// not the heads' origin's update, though the key chained and signed it.
TEST(OriginProofEvidence, ABranchUpdateOfAnotherOriginIsRefused) {
  const uint64_t k = 1;
  const Fork f = fork_after(k, 2, 3);
  ASSERT_TRUE(check_evidence(evidence_of(f, k + 1), kCluster));
  const OriginId others[] = {device().origin(), writer().origin() + 1, 0x0123456789abcdefULL};
  for (const OriginId other : others)
    for (size_t at = 0; at < f.b.size(); ++at) {
      std::vector<Update> b = f.b;
      b[at] = *Update::parse(UpdateId{b[at].id().hlc, other}, b[at].body());
      // Chained and signed as it stands: only the origin field is wrong.
      const Head hb = keyed_head(writer(), writer().origin(), f.head_b.seq, chain_over(f.base, writer().pub, b));
      auto s = check_evidence(chain_evidence(f.head_a, hb, k + 1, f.base, f.a, b), kCluster);
      EXPECT_FALSE(s) << hex16(other) << " at " << at;
      EXPECT_NE(s.message().find("branch b: update " + std::to_string(at) + " is of origin " + hex16(other)),
                std::string::npos)
          << s.message();
      // In branch a as well.
      const Head ha = keyed_head(writer(), writer().origin(), f.head_b.seq, hb.chain);
      s = check_evidence(chain_evidence(ha, f.head_a, k + 1, f.base, b, f.a), kCluster);
      EXPECT_NE(s.message().find("branch a: update " + std::to_string(at) + " is of origin"), std::string::npos)
          << s.message();
    }
  // Both branches' first updates of another origin, equal otherwise: still refused.
  std::vector<Update> a = f.a, b = f.b;
  a[0] = *Update::parse(UpdateId{a[0].id().hlc, device().origin()}, a[0].body());
  b[0] = *Update::parse(UpdateId{b[0].id().hlc, device().origin()}, b[0].body());
  const Head ha = keyed_head(writer(), writer().origin(), f.head_a.seq, chain_over(f.base, writer().pub, a));
  const Head hb = keyed_head(writer(), writer().origin(), f.head_b.seq, chain_over(f.base, writer().pub, b));
  EXPECT_FALSE(check_evidence(chain_evidence(ha, hb, k + 1, f.base, a, b), kCluster));
}

TEST(OriginProofEvidence, ChainEvidenceNeedsOneKeyOneOriginAndVerifiedHeads) {
  const uint64_t k = 1;
  const OriginId legacy = 0x0123456789abcdefULL;
  // Legacy heads of one id by two keys: valid heads, but not one key's chains.
  const Fork by_k = fork_after(k, 2, 2, writer(), legacy, kLegacy);
  const Fork by_d = fork_after(k, 2, 2, device(), legacy, kLegacy);
  ASSERT_TRUE(check_evidence(evidence_of(by_k, k + 1), kCluster));
  Evidence e = chain_evidence(by_k.head_a, by_d.head_b, k + 1, by_k.base, by_k.a, by_d.b);
  EXPECT_NE(check_evidence(e, kCluster).message().find("two keys"), std::string::npos);
  // Heads of two origins.
  const Fork other = fork_after(k, 2, 2, device());
  const Fork mine = fork_after(k, 2, 2);
  e = chain_evidence(mine.head_a, other.head_b, k + 1, mine.base, mine.a, other.b);
  EXPECT_NE(check_evidence(e, kCluster).message().find("two origins"), std::string::npos);
  // A head without its key, or with a bad signature.
  e = evidence_of(mine, k + 1);
  e.b.key.clear();
  EXPECT_NE(check_evidence(e, kCluster).message().find("carry their keys"), std::string::npos);
  e = evidence_of(mine, k + 1);
  e.a.signature[0] ^= 1;
  EXPECT_NE(check_evidence(e, kCluster).message().find("signature"), std::string::npos);
}

TEST(OriginProofEvidence, TwoKeysUnderOneLegacyIdProveAFork) {
  const OriginId legacy = 0x0123456789abcdefULL;
  const Head a = keyed_head(writer(), legacy, 5, chain_start(kCluster, writer().pub), kLegacy);
  const Head b = keyed_head(device(), legacy, 9, chain_start(kCluster, device().pub), kLegacy);
  const Evidence e = key_evidence(a, b);
  auto s = check_evidence(e, kCluster);
  EXPECT_TRUE(s) << s.message();
  EXPECT_EQ(e.fork_seq(), 1u);
  EXPECT_EQ(e.origin(), legacy);

  // One key twice is no evidence.
  const Head a2 = keyed_head(writer(), legacy, 6, chain_start(kCluster, writer().pub), kLegacy);
  EXPECT_NE(check_evidence(key_evidence(a, a2), kCluster).message().find("one key twice"), std::string::npos);
  // Without kLegacy, the second key does not hold the id.
  EXPECT_FALSE(check_evidence(key_evidence(a, keyed_head(device(), legacy, 9, b.chain, 0)), kCluster));
  // Heads of two ids, or a head without its key.
  EXPECT_FALSE(check_evidence(key_evidence(a, keyed_head(device(), legacy + 1, 9, b.chain, kLegacy)), kCluster));
  Head bare = b;
  bare.key.clear();
  EXPECT_FALSE(check_evidence(key_evidence(a, bare), kCluster));
}

// An id derived from a key is that key's alone: another key's legacy claim on
// it is a false attestation, not two keys under one id, and must not take the
// origin out of replay from seq 1 (a member could otherwise erase any origin).
TEST(OriginProofEvidence, ALegacyClaimOnAnIdDerivedFromAnotherKeyIsNoEvidence) {
  const Head honest = keyed_head(writer(), writer().origin(), 3, chain_start(kCluster, writer().pub));
  const Head claim = keyed_head(device(), writer().origin(), 8, chain_start(kCluster, device().pub), kLegacy);
  ASSERT_TRUE(check_head(honest, kCluster, ""));
  ASSERT_TRUE(check_head(claim, kCluster, ""));  // alone, a legacy head cannot be told false
  for (const Evidence& e : {key_evidence(honest, claim), key_evidence(claim, honest)}) {
    auto s = check_evidence(e, kCluster);
    EXPECT_FALSE(s);
    EXPECT_NE(s.message().find("derived"), std::string::npos) << s.message();
  }
  // Nor when the honest head itself carries kLegacy.
  const Head honest_legacy = keyed_head(writer(), writer().origin(), 3, honest.chain, kLegacy);
  EXPECT_FALSE(check_evidence(key_evidence(honest_legacy, claim), kCluster));
}

// --- codecs -------------------------------------------------------------------------------------

// A head packed by hand, field by field, so that any shape can be written.
struct Packed {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk{buf};
  Packed& array(uint32_t n) {
    pk.pack_array(n);
    return *this;
  }
  Packed& uint(uint64_t v) {
    pk.pack_uint64(v);
    return *this;
  }
  Packed& bin(std::string_view s) {
    pk.pack_bin(static_cast<uint32_t>(s.size()));
    pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  std::string bytes() const { return {buf.data(), buf.size()}; }
};

std::string packed_head(uint64_t seq, uint64_t flags, size_t chain_len = 32, size_t sig_len = 64) {
  Packed p;
  p.array(5).uint(7).uint(seq).bin(std::string(chain_len, 'c')).uint(flags).bin(std::string(sig_len, 's'));
  return p.bytes();
}

std::vector<Head> heads_of_each_form() {
  Head five = vector_head();
  Head six = five;
  six.key = writer().pub;
  Head eight = six;
  eight.device = device().pub;
  eight.cert = unhex(kCert);
  return {five, six, eight};
}

TEST(OriginProofCodec, HeadsOfFiveSixAndEightElementsRoundTrip) {
  for (const Head& h : heads_of_each_form()) {
    const std::string bytes = encode_head(h);
    auto back = decode_head(bytes);
    ASSERT_TRUE(back) << back.status().message();
    EXPECT_EQ(*back, h);
    // read_head takes a head off the front of longer bytes.
    size_t used = 0;
    auto first = read_head(bytes + "tail", used);
    ASSERT_TRUE(first);
    EXPECT_EQ(used, bytes.size());
    EXPECT_EQ(*first, h);
    std::string appended = "x";
    append_head(h, appended);
    EXPECT_EQ(appended, "x" + bytes);
  }
  Head big = vector_head();
  big.origin = ~OriginId{0} - 1;
  big.seq = ~uint64_t{0};
  big.flags = kFinal | kLegacy;
  EXPECT_EQ(*decode_head(encode_head(big)), big);
}

TEST(OriginProofCodec, HeadDecodeRefusesTruncationsAndBadShapes) {
  for (const Head& h : heads_of_each_form()) {
    const std::string bytes = encode_head(h);
    for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode_head(bytes.substr(0, n))) << n;
    EXPECT_FALSE(decode_head(bytes + '\0'));
  }
  ASSERT_TRUE(decode_head(packed_head(1, 0)));
  ASSERT_TRUE(decode_head(packed_head(1, kFinal | kLegacy)));
  for (uint64_t flags : {4ULL, 8ULL, 0x80ULL, 0xffULL, 0x103ULL, 1ULL << 40})
    EXPECT_NE(decode_head(packed_head(1, flags)).status().message().find("not known"), std::string::npos) << flags;
  EXPECT_NE(decode_head(packed_head(0, 0)).status().message().find("seq is 0"), std::string::npos);
  EXPECT_FALSE(decode_head(packed_head(1, 0, 31)));
  EXPECT_FALSE(decode_head(packed_head(1, 0, 33)));
  EXPECT_FALSE(decode_head(packed_head(1, 0, 32, 63)));
  EXPECT_FALSE(decode_head(packed_head(1, 0, 32, 65)));

  const std::string five = packed_head(1, 0);
  auto with = [&](uint32_t n, std::initializer_list<size_t> extra) {
    Packed p;
    p.array(n);
    std::string out = p.bytes() + five.substr(1);
    for (size_t len : extra) {
      Packed b;
      b.bin(std::string(len, 'k'));
      out += b.bytes();
    }
    return out;
  };
  EXPECT_TRUE(decode_head(with(6, {32})));
  EXPECT_TRUE(decode_head(with(8, {32, 32, 64})));
  EXPECT_FALSE(decode_head(with(6, {31})));
  EXPECT_FALSE(decode_head(with(6, {33})));
  EXPECT_FALSE(decode_head(with(8, {32, 31, 64})));
  EXPECT_FALSE(decode_head(with(8, {32, 32, 65})));
  EXPECT_NE(decode_head(with(7, {32, 32})).status().message().find("5, 6 or 8"), std::string::npos);
  EXPECT_FALSE(decode_head(with(9, {32, 32, 64, 1})));
  Packed four;
  four.array(4).uint(7).uint(1).bin(std::string(32, 'c')).uint(0);
  EXPECT_FALSE(decode_head(four.bytes()));
  // An origin that is not an unsigned integer, a chain sent as str.
  std::string negative = five;
  negative[1] = '\xff';  // fixint 7 -> -1
  EXPECT_FALSE(decode_head(negative));
  std::string as_str = five;
  as_str[3] = '\xd9';  // bin8 -> str8
  EXPECT_FALSE(decode_head(as_str));
  EXPECT_FALSE(decode_head(""));
}

std::vector<Evidence> evidence_of_each_kind() {
  const OriginId legacy = 0x0123456789abcdefULL;
  return {evidence_of(fork_after(2, 2, 3), 3),
          key_evidence(keyed_head(writer(), legacy, 5, chain_start(kCluster, writer().pub), kLegacy),
                       keyed_head(device(), legacy, 9, chain_start(kCluster, device().pub), kLegacy))};
}

TEST(OriginProofCodec, EvidenceRoundTripsAndRefusesTruncationsAndTrailingBytes) {
  for (const Evidence& e : evidence_of_each_kind()) {
    ASSERT_TRUE(check_evidence(e, kCluster));
    const std::string bytes = encode_evidence(e);
    auto back = decode_evidence(bytes);
    ASSERT_TRUE(back) << back.status().message();
    expect_same(*back, e);
    EXPECT_TRUE(check_evidence(*back, kCluster));
    EXPECT_EQ(encode_evidence(*back), bytes);
    for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode_evidence(bytes.substr(0, n))) << n;
    EXPECT_FALSE(decode_evidence(bytes + '\0'));
  }
}

TEST(OriginProofCodec, EvidenceDecodeRefusesBadShapes) {
  const auto kinds = evidence_of_each_kind();
  const std::string chain = encode_evidence(kinds[0]), keys = encode_evidence(kinds[1]);
  ASSERT_EQ(chain[0], '\x97');
  ASSERT_EQ(keys[0], '\x93');
  auto changed = [](std::string bytes, size_t at, char to) {
    bytes[at] = to;
    return bytes;
  };
  EXPECT_FALSE(decode_evidence(changed(chain, 1, 2)));  // kind 2 with seven elements
  EXPECT_FALSE(decode_evidence(changed(keys, 1, 1)));   // kind 1 with three
  EXPECT_FALSE(decode_evidence(changed(keys, 1, 3)));   // no kind 3
  EXPECT_FALSE(decode_evidence(changed(chain, 1, 0)));
  // A branch with no updates.
  Evidence empty = kinds[0];
  empty.branch_b.clear();
  EXPECT_NE(decode_evidence(encode_evidence(empty)).status().message().find("non-empty"), std::string::npos);
  EXPECT_FALSE(decode_evidence(std::string(kMaxEvidenceBytes + 1, '\x90')));
}

// When several fields are wrong, decoding names the first of them, in the
// order they are encoded: the same line from every build of the decoder.
TEST(OriginProofCodec, EvidenceDecodeNamesTheFirstFieldThatFails) {
  const Evidence e = vector_evidence();
  const std::string bad_head = packed_head(0, 0);  // seq 0
  Packed unknown_flags_head;
  unknown_flags_head.array(5).uint(7).uint(1).bin(std::string(32, 'c')).uint(8).bin(std::string(64, 's'));
  Packed seq_base;
  seq_base.uint(e.seq).bin(chain_bytes(e.base));
  Packed bad_seq_base;
  bad_seq_base.uint(e.seq).bin("short");
  std::string env_a, env_b;
  append_envelope(e.branch_a[0], env_a);
  append_envelope(e.branch_b[0], env_b);
  const std::string good_branches = "\x91" + env_a + "\x91" + env_b;
  Packed bare;
  bare.array(1).bin(e.branch_b[0].body());
  const std::string bad_branches = "\x91" + env_a + bare.bytes();
  auto message = [](const std::string& bytes) {
    auto d = decode_evidence(bytes);
    EXPECT_FALSE(d);
    return d.status().message();
  };
  const std::string a = encode_head(e.a), b = encode_head(e.b);
  ASSERT_TRUE(decode_evidence("\x97\x01" + a + b + seq_base.bytes() + good_branches));
  // Head a and branch b both wrong: head a is named.
  EXPECT_NE(message("\x97\x01" + bad_head + b + seq_base.bytes() + bad_branches).find("seq is 0"), std::string::npos);
  // Heads a and b both wrong: a.
  EXPECT_NE(
      message("\x97\x01" + bad_head + unknown_flags_head.bytes() + seq_base.bytes() + good_branches).find("seq is 0"),
      std::string::npos);
  EXPECT_NE(message("\x93\x02" + bad_head + unknown_flags_head.bytes()).find("seq is 0"), std::string::npos);
  // Head b and the base: b. The base and branch b: the base.
  EXPECT_NE(
      message("\x97\x01" + a + unknown_flags_head.bytes() + bad_seq_base.bytes() + bad_branches).find("not known"),
      std::string::npos);
  EXPECT_NE(message("\x97\x01" + a + b + bad_seq_base.bytes() + bad_branches).find("evidence base"), std::string::npos);
  // Both branches wrong: a.
  EXPECT_NE(message("\x97\x01" + a + b + seq_base.bytes() + bare.bytes() + bare.bytes()).find("branch a"),
            std::string::npos);
}

// Each branch is an array of update envelopes [hlc, origin, bin body]; a
// branch of bare bodies (the form before the hlc was chained), an envelope of
// another shape, or a body that does not frame is refused.
TEST(OriginProofCodec, EvidenceDecodeRefusesBranchesThatAreNotEnvelopes) {
  const Evidence e = vector_evidence();
  Packed front;
  front.array(7).uint(1);
  std::string prefix = front.bytes() + encode_head(e.a) + encode_head(e.b);
  Packed tail;
  tail.uint(e.seq).bin(chain_bytes(e.base));
  prefix += tail.bytes();
  std::string env_a;
  append_envelope(e.branch_a[0], env_a);
  auto with_b = [&](const std::string& branch_b) { return prefix + "\x91" + env_a + branch_b; };
  std::string env_b;
  append_envelope(e.branch_b[0], env_b);
  ASSERT_EQ(with_b("\x91" + env_b), encode_evidence(e));
  ASSERT_TRUE(decode_evidence(with_b("\x91" + env_b)));

  auto refused = [&](const std::string& branch_b, std::string_view reason) {
    auto d = decode_evidence(with_b(branch_b));
    EXPECT_FALSE(d);
    EXPECT_NE(d.status().message().find(reason), std::string::npos) << d.status().message();
  };
  const std::string body = e.branch_b[0].body();
  Packed bare;
  bare.array(1).bin(body);
  refused(bare.bytes(), "branch b update 0");
  Packed two;
  two.array(1).array(2).uint(kHlc2b).bin(body);
  refused(two.bytes(), "[hlc, origin, body]");
  Packed four;
  four.array(1).array(4).uint(kHlc2b).uint(writer().origin()).bin(body).uint(0);
  refused(four.bytes(), "[hlc, origin, body]");
  Packed as_str;
  as_str.array(1).array(3).uint(kHlc2b).uint(writer().origin());
  as_str.pk.pack_str(static_cast<uint32_t>(body.size()));
  as_str.pk.pack_str_body(body.data(), static_cast<uint32_t>(body.size()));
  EXPECT_FALSE(decode_evidence(with_b(as_str.bytes())));
  Packed garbage;
  garbage.array(1).array(3).uint(kHlc2b).uint(writer().origin()).bin("not a body");
  refused(garbage.bytes(), "branch b update 0");
  Packed seq0;
  std::string zero = body;
  zero[1] = 0;  // [0, "inc", ...]: seq 0
  seq0.array(1).array(3).uint(kHlc2b).uint(writer().origin()).bin(zero);
  refused(seq0.bytes(), "branch b update 0");
  // A negative hlc (int, not uint).
  std::string negative = env_b;
  ASSERT_EQ(negative.substr(0, 2), "\x93\xcf");
  negative = "\x93\xff" + negative.substr(10);
  refused("\x91" + negative, "not an unsigned integer");
  // A well-formed envelope in the second place: the branch reads.
  Packed second;
  second.array(2);
  EXPECT_TRUE(decode_evidence(with_b(second.bytes() + env_b + env_b)));
}

}  // namespace
}  // namespace replog::proof

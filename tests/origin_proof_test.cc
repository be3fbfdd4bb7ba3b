// Signed origins (PROTOCOL.md §8, protocol/origin_proof.h): fixed vectors
// computed outside this code base, single-bit changes to heads and bodies,
// forged heads, legacy attestations, key certificates, both kinds of fork
// evidence and what check_evidence refuses, and the head and evidence codecs
// against truncation and bad shapes.
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

std::string body(uint64_t seq, std::string_view method, std::string_view arg) {
  return Update::make(UpdateId{seq, 0}, seq, method, arg).body();
}
// Bodies seq first.. whose arg says which branch they belong to.
std::vector<std::string> bodies(uint64_t first, size_t n, std::string_view branch) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(body(first + i, "set", std::string(branch) + std::to_string(i)));
  return out;
}
Chain chain_over(Chain c, std::string_view key, const std::vector<std::string>& bs) {
  for (const auto& b : bs) chain_step(c, key, b);
  return c;
}
// A head signed by `k` for `origin`, carrying k's key.
Head keyed_head(const Keys& k, OriginId origin, uint64_t seq, const Chain& c, uint8_t flags = 0) {
  Head h = sign_head(origin, seq, c, flags, k.secret);
  h.key = k.pub;
  return h;
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
const char* const kC2 = "828640e3eb4e2b2e11341aa861000aadc7b66fc218bc36ca69b28bc2659ad77a";
const char* const kSignature =
    "af9d07cbed6b2e45ddd035fc167b6b276aee203dbcd855979985ca135edcbf90"
    "a8bfc1a4d7fc7c77df2e7d9bec18424bfcc0625cc5bb75423d27b91dc41af803";
const char* const kCert =
    "dfef7181277e39200ead01e887e1ada5950d1ddbced2c517d9e9d94cb2005e54"
    "5581c9fe9a714b2760920558e6d9871b62df1da34c96ea5b37c5e2a178e2850c";

// The vectors' head: K's origin at seq 2 over body 1 and body 2, flags 0.
Head vector_head() {
  Chain c = chain_start(kCluster, writer().pub);
  chain_step(c, writer().pub, unhex(kBody1));
  chain_step(c, writer().pub, unhex(kBody2));
  return sign_head(writer().origin(), 2, c, 0, writer().secret);
}

TEST(OriginProofVectors, KeysAndOriginIds) {
  EXPECT_EQ(to_hex(writer().pub), "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664");
  EXPECT_EQ(to_hex(device().pub), "e7f162a10bec559afea195e4dce84b69568d5d2cb0963eb446c0685e2b17f2f0");
  EXPECT_EQ(hex16(origin_of_key(writer().pub)), "bc100233fd6a1a94");
  EXPECT_EQ(hex16(origin_of_key(device().pub)), "daf0f522225dbb9a");
  EXPECT_EQ(origin_of_key(writer().pub.substr(1)), 0u);
  EXPECT_EQ(origin_of_key(writer().pub + "x"), 0u);
}

TEST(OriginProofVectors, ChainOverTwoBodies) {
  const std::string b1 = body(1, "set", unhex(kArg1)), b2 = body(2, "inc", unhex(kArg2));
  EXPECT_EQ(to_hex(b1), kBody1);
  EXPECT_EQ(to_hex(b2), kBody2);
  Chain c = chain_start(kCluster, writer().pub);
  EXPECT_EQ(hex(c), "d62a59ff199a669b9babab30b17021f6180c70c9c3d924dca119cc577a17b593");
  chain_step(c, writer().pub, b1);
  EXPECT_EQ(hex(c), "49e711c5976a75b1196ed70dc50d7a66999c4ac230f5478791aa398f5ac5b261");
  chain_step(c, writer().pub, b2);
  EXPECT_EQ(hex(c), kC2);
  EXPECT_EQ(chain_from(chain_bytes(c)), c);
  EXPECT_FALSE(chain_from(chain_bytes(c).substr(1)));
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

// --- chains over bodies --------------------------------------------------------------------

TEST(OriginProofChain, EveryFlippedBitOfABodyChangesTheChain) {
  const std::vector<std::string> bs = {unhex(kBody1), unhex(kBody2)};
  const Chain start = chain_start(kCluster, writer().pub);
  const Head h = vector_head();
  ASSERT_EQ(chain_over(start, writer().pub, bs), h.chain);
  for (size_t i = 0; i < bs.size(); ++i)
    for (size_t bit = 0; bit < bs[i].size() * 8; ++bit) {
      auto changed = bs;
      changed[i][bit / 8] = static_cast<char>(changed[i][bit / 8] ^ (1 << (bit % 8)));
      EXPECT_NE(chain_over(start, writer().pub, changed), h.chain) << "body " << i << " bit " << bit;
    }
}

TEST(OriginProofChain, AReorderedOrMissingUpdateBreaksTheChain) {
  const std::string b1 = unhex(kBody1), b2 = unhex(kBody2);
  const Chain start = chain_start(kCluster, writer().pub);
  const Chain head = vector_head().chain;
  EXPECT_EQ(chain_over(start, writer().pub, {b1, b2}), head);
  EXPECT_NE(chain_over(start, writer().pub, {b2, b1}), head);
  EXPECT_NE(chain_over(start, writer().pub, {b1}), head);
  EXPECT_NE(chain_over(start, writer().pub, {b2}), head);
  EXPECT_NE(chain_over(start, writer().pub, {b1, b1, b2}), head);
  // The same bodies under another key or in another cluster chain elsewhere.
  EXPECT_NE(chain_over(chain_start(kCluster, device().pub), device().pub, {b1, b2}), head);
  EXPECT_NE(chain_over(chain_start("f1f1f1f1-0002", writer().pub), writer().pub, {b1, b2}), head);
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
// bodies of their own, with a signed head at each end.
struct Fork {
  Chain base;  // c_shared
  std::vector<std::string> a, b;
  Head head_a, head_b;
};
Fork fork_after(uint64_t shared, size_t len_a, size_t len_b, const Keys& k = writer(), OriginId origin = 0,
                uint8_t flags = 0) {
  if (origin == 0) origin = k.origin();
  Fork f;
  f.base = chain_over(chain_start(kCluster, k.pub), k.pub, bodies(1, shared, "common"));
  f.a = bodies(shared + 1, len_a, "a");
  f.b = bodies(shared + 1, len_b, "b");
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
  EXPECT_EQ(x.bodies_a, y.bodies_a);
  EXPECT_EQ(x.bodies_b, y.bodies_b);
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

  Evidence e = evidence_of(f, k + 1);  // a body short of its head
  e.bodies_a.pop_back();
  refused(e, "do not reach");
  e = evidence_of(f, k + 1);  // a body past its head
  e.bodies_b.push_back(body(k + 4, "set", "extra"));
  refused(e, "do not reach");
  e = evidence_of(f, k + 1);  // a body changed
  e.bodies_b.back() = body(k + 3, "set", "changed");
  refused(e, "does not chain");
  e = evidence_of(f, k + 1);  // the wrong base
  e.base[0] ^= 1;
  refused(e, "does not chain");
  e = evidence_of(f, k + 2);  // the fork seq one too far: the bodies no longer fit
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
  std::vector<std::string> a2 = same.a, b2 = same.a;
  b2.back() = body(k + 2, "set", "other");
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

  // A body whose seq field is not its place, though chained and signed.
  std::vector<std::string> wrong = f.b;
  wrong[0] = body(k + 7, "set", "b0");
  const Head hw = keyed_head(writer(), writer().origin(), f.head_b.seq, chain_over(f.base, writer().pub, wrong));
  refused(chain_evidence(f.head_a, hw, k + 1, f.base, f.a, wrong), "is seq");
  // A body that does not frame.
  std::vector<std::string> garbage = f.b;
  garbage[1] = "not a body";
  const Head hg = keyed_head(writer(), writer().origin(), f.head_b.seq, chain_over(f.base, writer().pub, garbage));
  refused(chain_evidence(f.head_a, hg, k + 1, f.base, f.a, garbage), "does not frame");
}

TEST(OriginProofEvidence, ChainEvidenceNeedsOneKeyOneOriginAndVerifiedHeads) {
  const uint64_t k = 1;
  const OriginId legacy = 0x0123456789abcdefULL;
  // Legacy heads of one id by two keys: valid heads, but not one key's chains.
  const Fork by_k = fork_after(k, 2, 2, writer(), legacy, kLegacy);
  const Fork by_d = fork_after(k, 2, 2, device(), legacy, kLegacy);
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
  // A branch with no bodies.
  Evidence empty = kinds[0];
  empty.bodies_b.clear();
  EXPECT_NE(decode_evidence(encode_evidence(empty)).status().message().find("non-empty"), std::string::npos);
  EXPECT_FALSE(decode_evidence(std::string(kMaxEvidenceBytes + 1, '\x90')));
}

}  // namespace
}  // namespace replog::proof

// The memory transport's model of secure links (support/memory_transport.h):
// which frames a keyed end lets through, with whose key, and what it counts.
#include <gtest/gtest.h>

#include <set>

#include "support/memory_transport.h"

namespace replog::testing {
namespace {

const std::string kKeyA(32, 'a'), kKeyB(32, 'b'), kKeyC(32, 'c');

// A keyed identity that trusts the keys in `*trusted` (read at every delivery).
MemoryIdentity keyed(const std::string& key, const std::set<std::string>* trusted) {
  return MemoryIdentity{key, [trusted](const std::string& k) { return trusted->count(k) > 0; }};
}

std::vector<std::string> received(MemoryTransport& t) {
  std::vector<std::string> out;
  for (auto& f : t.poll(0)) out.push_back(f.bytes);
  return out;
}

TEST(MemoryTransport, UnkeyedEndsTalkWithoutKeys) {
  MemoryNetwork net;
  MemoryTransport a(net, "a"), b(net, "b");
  ASSERT_TRUE(a.connect("b"));
  a.send(Link{true, "b"}, "hello");
  auto in = b.poll(0);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].link, (Link{false, "a"}));
  EXPECT_TRUE(in[0].peer_key.empty());
  b.send(in[0].link, "answer");
  auto back = a.poll(0);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].link, (Link{true, "b"}));
  EXPECT_TRUE(back[0].peer_key.empty());
}

TEST(MemoryTransport, KeyedFramesCarryTheSendersKeyBothWays) {
  MemoryNetwork net;
  std::set<std::string> a_trusts{kKeyB}, b_trusts{kKeyA};
  MemoryTransport a(net, "a", keyed(kKeyA, &a_trusts)), b(net, "b", keyed(kKeyB, &b_trusts));
  ASSERT_TRUE(a.connect_to("b", kKeyB));
  a.send(Link{true, "b"}, "hello");
  auto in = b.poll(0);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].peer_key, kKeyA);
  b.send(in[0].link, "answer");
  auto back = a.poll(0);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].peer_key, kKeyB);
  EXPECT_EQ(a.handshakes_refused() + b.handshakes_refused(), 0u);
}

TEST(MemoryTransport, ConnectNeedsAKeyExactlyWhenTheTransportHasOne) {
  MemoryNetwork net;
  std::set<std::string> trusted;
  MemoryTransport plain(net, "plain"), secure(net, "secure", keyed(kKeyA, &trusted));
  EXPECT_FALSE(plain.connect_to("secure", kKeyA)) << "NULL cannot authenticate a server";
  EXPECT_FALSE(secure.connect("plain")) << "CURVE needs the server's key";
  EXPECT_EQ(plain.links() + secure.links(), 0u);
}

TEST(MemoryTransport, AKeyedAndAnUnkeyedEndNeverTalk) {
  MemoryNetwork net;
  std::set<std::string> trusts_all{kKeyA, kKeyB};
  MemoryTransport plain(net, "plain"), secure(net, "secure", keyed(kKeyA, &trusts_all));
  ASSERT_TRUE(plain.connect("secure"));
  plain.send(Link{true, "secure"}, "from NULL");
  EXPECT_TRUE(received(secure).empty());
  EXPECT_EQ(secure.handshakes_refused(), 1u) << "the server counts";
  ASSERT_TRUE(secure.connect_to("plain", kKeyB));
  secure.send(Link{true, "plain"}, "from CURVE");
  EXPECT_TRUE(received(plain).empty());
  EXPECT_EQ(plain.handshakes_refused(), 1u);
  // Nor are answers let through on a link either side made up.
  secure.send(Link{false, "plain"}, "answer");
  plain.send(Link{false, "secure"}, "answer");
  EXPECT_TRUE(received(plain).empty());
  EXPECT_TRUE(received(secure).empty());
}

TEST(MemoryTransport, OnlyTheExpectedKeyServesALink) {
  MemoryNetwork net;
  std::set<std::string> trusts_all{kKeyA, kKeyB, kKeyC};
  MemoryTransport a(net, "a", keyed(kKeyA, &trusts_all)), b(net, "b", keyed(kKeyB, &trusts_all));
  ASSERT_TRUE(a.connect_to("b", kKeyC));  // someone else is expected at b's endpoint
  a.send(Link{true, "b"}, "hello");
  EXPECT_TRUE(received(b).empty());
  EXPECT_EQ(b.handshakes_refused(), 1u);
}

TEST(MemoryTransport, AnUntrustedSenderIsRefused) {
  MemoryNetwork net;
  std::set<std::string> a_trusts{kKeyB}, b_trusts;
  MemoryTransport a(net, "a", keyed(kKeyA, &a_trusts)), b(net, "b", keyed(kKeyB, &b_trusts));
  ASSERT_TRUE(a.connect_to("b", kKeyB));
  a.send(Link{true, "b"}, "hello");
  a.send(Link{true, "b"}, "again");
  EXPECT_TRUE(received(b).empty());
  EXPECT_EQ(b.handshakes_refused(), 2u);
  b_trusts.insert(kKeyA);
  a.send(Link{true, "b"}, "trusted now");
  EXPECT_EQ(received(b), std::vector<std::string>{"trusted now"});
}

TEST(MemoryTransport, AnswersStopWhenTheServerStopsTrustingTheDialler) {
  MemoryNetwork net;
  std::set<std::string> a_trusts{kKeyB}, b_trusts{kKeyA};
  MemoryTransport a(net, "a", keyed(kKeyA, &a_trusts)), b(net, "b", keyed(kKeyB, &b_trusts));
  ASSERT_TRUE(a.connect_to("b", kKeyB));
  a.send(Link{true, "b"}, "hello");
  a.send(Link{true, "b"}, "still waiting at b");
  auto in = b.poll(0);
  ASSERT_EQ(in.size(), 2u);
  a.send(Link{true, "b"}, "arrived before the removal");
  b_trusts.clear();  // a is removed from b's trust list
  EXPECT_TRUE(received(b).empty()) << "its connection is closed, with what it sent";
  b.send(in[0].link, "answer");
  EXPECT_TRUE(received(a).empty());
  EXPECT_EQ(b.handshakes_refused(), 1u);
}

TEST(MemoryTransport, AnAnswerNeedsTheDiallersLinkToExpectTheServer) {
  MemoryNetwork net;
  std::set<std::string> trusts_all{kKeyA, kKeyB};
  MemoryTransport a(net, "a", keyed(kKeyA, &trusts_all)), b(net, "b", keyed(kKeyB, &trusts_all));
  ASSERT_TRUE(a.connect_to("b", kKeyB));
  a.send(Link{true, "b"}, "hello");
  auto in = b.poll(0);
  ASSERT_EQ(in.size(), 1u);
  a.disconnect("b");
  b.send(in[0].link, "answer to a closed link");
  EXPECT_TRUE(received(a).empty());
  EXPECT_EQ(b.handshakes_refused(), 1u);
  ASSERT_TRUE(a.connect_to("b", kKeyB));
  b.send(in[0].link, "answer");
  EXPECT_EQ(received(a), std::vector<std::string>{"answer"});
}

}  // namespace
}  // namespace replog::testing

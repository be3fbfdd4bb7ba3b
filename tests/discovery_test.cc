// LAN discovery: the beacon's bytes (node/discovery/beacon.h) and what a node
// does with the beacons it hears (node/discovery/discovery.h). Sockets only in
// the last tests (loopback, unicast); broadcast and multicast are exercised in
// network namespaces (tests/cluster/discovery_netns.py).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include "node/discovery/beacon.h"
#include "node/discovery/discovery.h"
#include "protocol/device_id.h"
#include "storage/env.h"
#include "storage/identity.h"

namespace replog {
namespace {

ClusterSecret secret(char fill) { return *ClusterSecret::from_bytes(std::string(32, fill), "test"); }

std::string key_of(char fill) {
  // A real Ed25519 public key, so that the device id checks below mean something.
  unsigned char seed[crypto_sign_SEEDBYTES];
  std::memset(seed, fill, sizeof seed);
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(pk, sk, seed);
  return std::string(reinterpret_cast<char*>(pk), sizeof pk);
}

BeaconNonce fresh_nonce() {
  BeaconNonce n;
  randombytes_buf(n.data(), n.size());
  return n;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

TEST(Beacon, RoundTripGivesPortAndSender) {
  const BeaconKeys keys = BeaconKeys::from(secret('a'));
  const std::string me = key_of(1), other = key_of(2);
  const std::string packet = encode_beacon(keys, me, 40123, fresh_nonce());
  ASSERT_EQ(packet.size(), kBeaconBytes);
  EXPECT_EQ(packet.substr(0, 4), "RPLD");
  EXPECT_EQ(packet[4], 1);
  OpenedBeacon b;
  ASSERT_EQ(open_beacon(keys, packet, &b), BeaconVerdict::kOk);
  EXPECT_EQ(b.port, 40123);
  EXPECT_TRUE(beacon_is_from(keys, b, me));
  EXPECT_FALSE(beacon_is_from(keys, b, other));
  EXPECT_EQ(beacon_sender(keys, b, {other, me}), me);
  EXPECT_EQ(beacon_sender(keys, b, {other}), std::nullopt);
}

TEST(Beacon, AnotherClustersBeaconFailsTheMac) {
  const BeaconKeys ours = BeaconKeys::from(secret('a')), theirs = BeaconKeys::from(secret('b'));
  OpenedBeacon b;
  EXPECT_EQ(open_beacon(ours, encode_beacon(theirs, key_of(1), 9, fresh_nonce()), &b), BeaconVerdict::kBadMac);
}

TEST(Beacon, EveryFlippedBitFails) {
  const BeaconKeys keys = BeaconKeys::from(secret('a'));
  const std::string packet = encode_beacon(keys, key_of(1), 40123, fresh_nonce());
  for (size_t bit = 0; bit < packet.size() * 8; ++bit) {
    std::string bad = packet;
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
    OpenedBeacon b;
    EXPECT_NE(open_beacon(keys, bad, &b), BeaconVerdict::kOk) << "bit " << bit;
  }
}

TEST(Beacon, WrongSizesMagicAndVersionAreMalformed) {
  const BeaconKeys keys = BeaconKeys::from(secret('a'));
  const std::string packet = encode_beacon(keys, key_of(1), 1, fresh_nonce());
  OpenedBeacon b;
  EXPECT_EQ(open_beacon(keys, "", &b), BeaconVerdict::kMalformed);
  EXPECT_EQ(open_beacon(keys, packet.substr(0, kBeaconBytes - 1), &b), BeaconVerdict::kMalformed);
  EXPECT_EQ(open_beacon(keys, packet + "x", &b), BeaconVerdict::kMalformed);
  std::string v2 = packet;
  v2[4] = 2;
  EXPECT_EQ(open_beacon(keys, v2, &b), BeaconVerdict::kMalformed);
  std::string magic = packet;
  magic[0] = 'X';
  EXPECT_EQ(open_beacon(keys, magic, &b), BeaconVerdict::kMalformed);
}

// A stranger learns no public key, device id or secret from a beacon: none of
// them, and no 8-byte window of them, is in any of a thousand beacons.
TEST(Beacon, CarriesNoKeyNoDeviceIdAndNoWindowOfThem) {
  const ClusterSecret s = secret('a');
  const BeaconKeys keys = BeaconKeys::from(s);
  const std::string pk = key_of(1);
  std::vector<std::string> secrets{pk, std::string(s.bytes()),
                                   std::string(reinterpret_cast<const char*>(keys.tag_key.data()), 32),
                                   std::string(reinterpret_cast<const char*>(keys.mac_key.data()), 32)};
  const std::string id = format_device_id(pk);
  for (int i = 0; i < 1000; ++i) {
    const std::string packet = encode_beacon(keys, pk, 40123, fresh_nonce());
    for (const auto& k : secrets)
      for (size_t at = 0; at + 8 <= k.size(); ++at) ASSERT_FALSE(contains(packet, k.substr(at, 8))) << i;
    for (size_t at = 0; at + 8 <= id.size(); ++at) ASSERT_FALSE(contains(packet, id.substr(at, 8))) << i;
  }
}

// Nothing links two beacons of one node: past magic, version and flags, they
// share no 6-byte run anywhere and, position by position, no more bytes than
// chance gives (about one in 256; the port is masked, so not even it repeats).
TEST(Beacon, TwoBeaconsOfOneNodeShareNothingPastTheHeader) {
  const BeaconKeys keys = BeaconKeys::from(secret('a'));
  const std::string pk = key_of(1);
  for (int i = 0; i < 200; ++i) {
    const std::string a = encode_beacon(keys, pk, 40123, fresh_nonce());
    const std::string b = encode_beacon(keys, pk, 40123, fresh_nonce());
    ASSERT_EQ(a.substr(0, 6), b.substr(0, 6));
    const std::string tail = b.substr(6);
    for (size_t at = 6; at + 6 <= a.size(); ++at) ASSERT_FALSE(contains(tail, a.substr(at, 6))) << i << " at " << at;
    int same = 0;
    for (size_t at = 6; at < a.size(); ++at) same += a[at] == b[at];
    ASSERT_LE(same, 8) << i;
  }
}

TEST(DialLimiter, OneDialPerSourcePerWindowAndAGlobalCap) {
  DialLimiter limit(30'000, 3, 60'000);
  EXPECT_TRUE(limit.allow("10.0.0.1", 0));
  EXPECT_FALSE(limit.allow("10.0.0.1", 29'999));
  EXPECT_TRUE(limit.allow("10.0.0.2", 1));
  EXPECT_TRUE(limit.allow("10.0.0.1", 30'000));
  EXPECT_FALSE(limit.allow("10.0.0.3", 30'001));  // three within a minute already
  EXPECT_TRUE(limit.allow("10.0.0.3", 60'001));   // the first two left the window
}

TEST(DialLimiter, ManySpoofedSourcesStayWithinTheCapAndTheTable) {
  DialLimiter limit;
  int allowed = 0;
  for (int i = 0; i < 100'000; ++i)
    allowed += limit.allow("10." + std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) + "." +
                               std::to_string(i & 255),
                           i / 100);  // 100,000 sources in 1000 ms
  EXPECT_EQ(allowed, 16);
}

// A Discovery without sockets, fed packets by hand.
struct Fixture {
  std::string me = key_of(1), friend_key = key_of(2), stranger = key_of(3);
  BeaconKeys keys = BeaconKeys::from(secret('a'));
  std::vector<std::pair<std::string, std::string>> dialled;
  std::set<std::string> links;
  static DiscoveryOptions options() {
    DiscoveryOptions o;
    o.listen_port = 5000;
    return o;
  }
  Discovery discovery{options(), keys, me,
                      Discovery::Hooks{[this] { return std::vector<std::string>{friend_key}; },
                                       [this](const std::string& k) { return links.count(k) > 0; },
                                       [this](const std::string& ep, const std::string& k) {
                                         dialled.emplace_back(ep, k);
                                       }},
                      [](int, const std::string&) {}};
  std::string beacon_of(const std::string& key, uint16_t port) { return encode_beacon(keys, key, port, fresh_nonce()); }
};

TEST(Discovery, TrustedDevicesBeaconDialsItsSourceWithItsKey) {
  Fixture f;
  f.discovery.on_packet(f.beacon_of(f.friend_key, 4000), "10.0.0.2", false, 0);
  ASSERT_EQ(f.dialled.size(), 1u);
  EXPECT_EQ(f.dialled[0].first, "tcp://10.0.0.2:4000");
  EXPECT_EQ(f.dialled[0].second, f.friend_key);
  EXPECT_EQ(f.discovery.counters().beacons_known, 1u);
  EXPECT_EQ(f.discovery.counters().dials, 1u);
}

TEST(Discovery, OwnOtherClustersAndUntrustedBeaconsAreCountedNotDialled) {
  Fixture f;
  f.discovery.on_packet(f.discovery.beacon(), "10.0.0.1", false, 0);
  f.discovery.on_packet(f.beacon_of(f.me, 4000), "10.0.0.1", false, 0);
  f.discovery.on_packet(encode_beacon(BeaconKeys::from(secret('z')), f.friend_key, 4000, fresh_nonce()), "10.0.0.9",
                        false, 0);
  f.discovery.on_packet(f.beacon_of(f.stranger, 4000), "10.0.0.3", false, 0);
  f.discovery.on_packet("hello", "10.0.0.4", false, 0);
  f.discovery.on_packet(f.beacon_of(f.friend_key, 0), "10.0.0.2", false, 0);  // port 0: nowhere to dial
  const auto& c = f.discovery.counters();
  EXPECT_EQ(c.beacons_received, 6u);
  EXPECT_EQ(c.beacons_self, 2u);
  EXPECT_EQ(c.beacons_bad_mac, 1u);
  EXPECT_EQ(c.beacons_unknown_device, 1u);
  EXPECT_EQ(c.beacons_malformed, 2u);
  EXPECT_TRUE(f.dialled.empty());
}

TEST(Discovery, ALinkedDeviceIsNotDialledAgain) {
  Fixture f;
  f.links.insert(f.friend_key);
  f.discovery.on_packet(f.beacon_of(f.friend_key, 4000), "10.0.0.2", false, 0);
  EXPECT_TRUE(f.dialled.empty());
  EXPECT_EQ(f.discovery.counters().dials_skipped_linked, 1u);
}

TEST(Discovery, ReplayedBeaconsDialEachAddressOnceIn30Seconds) {
  Fixture f;
  const std::string replayed = f.beacon_of(f.friend_key, 4000);
  for (int i = 0; i < 100; ++i) f.discovery.on_packet(replayed, "10.0.0.66", false, i * 100);
  EXPECT_EQ(f.dialled.size(), 1u);
  EXPECT_EQ(f.discovery.counters().dials_rate_limited, 99u);
  f.discovery.on_packet(replayed, "10.0.0.66", false, 30'000);
  EXPECT_EQ(f.dialled.size(), 2u);
}

TEST(Discovery, IPv6BeaconsAreIdentifiedButNotDialled) {
  Fixture f;
  f.discovery.on_packet(f.beacon_of(f.friend_key, 4000), "fe80::1", true, 0);
  EXPECT_TRUE(f.dialled.empty());
  EXPECT_EQ(f.discovery.counters().beacons_known, 1u);
  EXPECT_EQ(f.discovery.counters().dials_skipped_ipv6, 1u);
}

uint16_t free_udp_port() {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// The socket path on one host: two nodes on their own UDP ports, each sending
// to the other by unicast (--discovery-to), find each other within a second.
TEST(Discovery, TwoNodesOnLoopbackFindEachOtherByUnicast) {
  const BeaconKeys keys = BeaconKeys::from(secret('a'));
  const std::string ka = key_of(1), kb = key_of(2);
  const uint16_t pa = free_udp_port(), pb = free_udp_port();
  std::vector<std::string> dialled_by_a, dialled_by_b;
  auto make = [&](const std::string& me, const std::string& other, uint16_t own, uint16_t to, uint16_t tcp,
                  std::vector<std::string>* dialled) {
    DiscoveryOptions o;
    o.udp_port = own;
    o.listen_port = tcp;
    o.interval_ms = 100;
    o.ipv6 = false;
    o.also_to = {"127.0.0.1:" + std::to_string(to)};
    return std::make_unique<Discovery>(
        o, keys, me,
        Discovery::Hooks{[other] { return std::vector<std::string>{other}; }, [](const std::string&) { return false; },
                         [dialled, other](const std::string& ep, const std::string& k) {
                           if (k == other) dialled->push_back(ep);
                         }},
        [](int, const std::string&) {});
  };
  auto a = make(ka, kb, pa, pb, 7001, &dialled_by_a);
  auto b = make(kb, ka, pb, pa, 7002, &dialled_by_b);
  ASSERT_TRUE(a->open());
  ASSERT_TRUE(b->open());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((dialled_by_a.empty() || dialled_by_b.empty()) && std::chrono::steady_clock::now() < deadline) {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch()).count();
    a->run_once(now);
    b->run_once(now);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(dialled_by_a.size(), 1u);
  ASSERT_EQ(dialled_by_b.size(), 1u);
  EXPECT_EQ(dialled_by_a[0], "tcp://127.0.0.1:7002");
  EXPECT_EQ(dialled_by_b[0], "tcp://127.0.0.1:7001");
  EXPECT_GE(a->counters().beacons_sent, 1u);
}

}  // namespace
}  // namespace replog

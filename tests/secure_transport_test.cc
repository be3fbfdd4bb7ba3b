// The secure transport (PROTOCOL.md §7): CURVE on every peer socket, a ZAP
// handler that admits trusted devices only, frames that carry the sender's
// authenticated key, and a removed device whose connections are gone (seen
// with ss). Real ZeroMQ sockets on loopback.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "node/sync/zmq_transport.h"
#include "protocol/bytes.h"
#include "storage/identity.h"

namespace replog {
namespace {

using Clock = std::chrono::steady_clock;

// A device: an identity and the set of device keys it trusts.
struct Device {
  Identity identity = *Identity::generate(Env::posix());
  std::set<std::string> trusted;
  zmq::context_t context{1};
  std::unique_ptr<ZmqTransport> transport;

  Device() {
    TransportSecurity security{*identity.curve_keys(), [this](std::string_view curve) -> std::optional<std::string> {
                                 for (const auto& key : trusted)
                                   if (*curve_public_key(key) == curve) return key;
                                 return std::nullopt;
                               }};
    transport = std::make_unique<ZmqTransport>(context, std::move(security));
  }
  std::string key() const { return identity.public_key(); }
  std::string listen() {
    EXPECT_TRUE(transport->listen("tcp://127.0.0.1:0"));
    return transport->bound_endpoint();
  }
};

// Polls `a` and `b` for up to `ms`, sending `ping` from `from` on `link` every
// 50 ms; returns the frames each received.
struct Exchange {
  std::vector<Frame> at_a, at_b;
};
Exchange exchange(ZmqTransport& a, ZmqTransport& b, const Link& link_from_a, int ms, const std::string& ping = "ping") {
  Exchange ex;
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  auto next_ping = Clock::now();
  while (Clock::now() < deadline) {
    if (Clock::now() >= next_ping) {
      a.send(link_from_a, ping);
      next_ping = Clock::now() + std::chrono::milliseconds(50);
    }
    for (auto& f : a.poll(5)) ex.at_a.push_back(std::move(f));
    for (auto& f : b.poll(5)) ex.at_b.push_back(std::move(f));
  }
  return ex;
}

TEST(SecureTransport, ATrustedDeviceIsHeardAndEveryFrameCarriesItsKey) {
  Device a, b;
  b.trusted.insert(a.key());
  const std::string endpoint = b.listen();
  ASSERT_TRUE(a.transport->connect_to(endpoint, b.key()));
  Exchange ex = exchange(*a.transport, *b.transport, Link{true, endpoint}, 1500);
  ASSERT_FALSE(ex.at_b.empty());
  for (const auto& f : ex.at_b) {
    EXPECT_EQ(f.bytes, "ping");
    EXPECT_EQ(to_hex(f.peer_key), to_hex(a.key()));
  }
  // The answer on the incoming link reaches a, carrying b's key.
  b.transport->send(ex.at_b.front().link, "pong");
  auto deadline = Clock::now() + std::chrono::seconds(2);
  std::vector<Frame> answers;
  while (answers.empty() && Clock::now() < deadline) answers = a.transport->poll(10);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].bytes, "pong");
  EXPECT_EQ(to_hex(answers[0].peer_key), to_hex(b.key()));
  EXPECT_EQ(b.transport->counters().handshakes_refused, 0u);
}

TEST(SecureTransport, AnUntrustedDeviceDeliversNothing) {
  Device stranger, b;
  const std::string endpoint = b.listen();
  ASSERT_TRUE(stranger.transport->connect_to(endpoint, b.key()));
  Exchange ex = exchange(*stranger.transport, *b.transport, Link{true, endpoint}, 1500);
  EXPECT_TRUE(ex.at_b.empty()) << ex.at_b.size() << " frames from an untrusted device";
  EXPECT_GE(b.transport->counters().handshakes_refused, 1u);
}

TEST(SecureTransport, ANullMechanismClientDeliversNothing) {
  Device b;
  const std::string endpoint = b.listen();
  zmq::context_t context(1);
  zmq::socket_t plain(context, zmq::socket_type::dealer);
  plain.set(zmq::sockopt::linger, 0);
  plain.connect(endpoint);
  std::vector<Frame> got;
  auto deadline = Clock::now() + std::chrono::milliseconds(1500);
  while (Clock::now() < deadline) {
    (void)plain.send(zmq::buffer(std::string("ping")), zmq::send_flags::dontwait);
    for (auto& f : b.transport->poll(20)) got.push_back(std::move(f));
  }
  EXPECT_TRUE(got.empty()) << got.size() << " frames over the NULL mechanism";
}

TEST(SecureTransport, ADealerAcceptsOnlyTheServerKeyItDialled) {
  Device a, b, other;
  b.trusted.insert(a.key());
  const std::string endpoint = b.listen();
  // a believes `other` listens there: CURVE fails, nothing passes either way.
  ASSERT_TRUE(a.transport->connect_to(endpoint, other.key()));
  Exchange ex = exchange(*a.transport, *b.transport, Link{true, endpoint}, 1500);
  EXPECT_TRUE(ex.at_b.empty());
  EXPECT_TRUE(ex.at_a.empty());
}

TEST(SecureTransport, KeysAndMechanismsMustAgreeWithTheTransport) {
  Device b;
  EXPECT_FALSE(b.transport->connect_to("tcp://127.0.0.1:9", ""));  // a secure link needs a key
  zmq::context_t context(1);
  ZmqTransport plain(context);
  EXPECT_FALSE(plain.connect_to("tcp://127.0.0.1:9", b.key()));  // a key needs encryption
}

// The established TCP connections between two local ports, either way, as
// ss prints them ("127.0.0.1:P1 127.0.0.1:P2").
std::set<std::string> connections_to(int port) {
  std::set<std::string> out;
  const std::string cmd = "ss -Htn state established '( sport = :" + std::to_string(port) +
                          " or dport = :" + std::to_string(port) + " )' 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char line[512];
  while (std::fgets(line, sizeof line, p)) {
    // Recv-Q Send-Q Local Peer
    char local[128], peer[128];
    unsigned rq, sq;
    if (std::sscanf(line, "%u %u %127s %127s", &rq, &sq, local, peer) == 4)
      out.insert(std::string(local) + " " + peer);
  }
  ::pclose(p);
  return out;
}

int port_of(const std::string& endpoint) { return std::stoi(endpoint.substr(endpoint.rfind(':') + 1)); }

TEST(SecureTransport, RemovingADeviceClosesItsConnectionsAndRefusesItAfterwards) {
  if (std::system("ss -V >/dev/null 2>&1") != 0) GTEST_SKIP() << "ss (iproute2) is not installed";
  Device a, b, c;
  a.trusted.insert(b.key());
  b.trusted = {a.key(), c.key()};
  const std::string endpoint_a = a.listen(), endpoint_b = b.listen();
  // a and c dial b; b dials a back (its own DEALER): links both ways.
  ASSERT_TRUE(a.transport->connect_to(endpoint_b, b.key()));
  ASSERT_TRUE(c.transport->connect_to(endpoint_b, b.key()));
  ASSERT_TRUE(b.transport->connect_to(endpoint_a, a.key()));
  Exchange ex = exchange(*a.transport, *b.transport, Link{true, endpoint_b}, 800);
  ASSERT_FALSE(ex.at_b.empty());
  for (int i = 0; i < 20; ++i) {
    c.transport->send(Link{true, endpoint_b}, "from c");
    (void)c.transport->poll(5);
    (void)b.transport->poll(5);
  }
  // Connections between a's side and b's port, and b's DEALER to a's port.
  const std::set<std::string> before_b = connections_to(port_of(endpoint_b));
  const std::set<std::string> before_a = connections_to(port_of(endpoint_a));
  ASSERT_GE(before_b.size(), 4u) << "a->b and c->b, each seen from both ends";
  ASSERT_GE(before_a.size(), 2u) << "b->a";

  b.trusted.erase(a.key());
  ASSERT_TRUE(b.transport->close_untrusted());
  EXPECT_EQ(b.transport->counters().rebinds, 1u);
  EXPECT_EQ(b.transport->bound_endpoint(), endpoint_b);

  // Every connection that existed is gone (a keeps redialling, and each new
  // attempt is refused: none of them is one of the old ones).
  std::set<std::string> still;
  auto deadline = Clock::now() + std::chrono::seconds(5);
  do {
    (void)a.transport->poll(10);
    (void)b.transport->poll(10);
    (void)c.transport->poll(10);
    still.clear();
    for (const auto& conn : connections_to(port_of(endpoint_a)))
      if (before_a.count(conn)) still.insert(conn);
    for (const auto& conn : connections_to(port_of(endpoint_b)))
      if (before_b.count(conn)) still.insert(conn);
  } while (!still.empty() && Clock::now() < deadline);
  EXPECT_TRUE(still.empty()) << "still connected: " << *still.begin();

  // a is refused from now on; c, still trusted, is heard again on the new ROUTER.
  const uint64_t refused = b.transport->counters().handshakes_refused;
  Exchange after = exchange(*a.transport, *b.transport, Link{true, endpoint_b}, 1500, "after removal");
  for (const auto& f : after.at_b) EXPECT_NE(to_hex(f.peer_key), to_hex(a.key())) << "a was heard after removal";
  EXPECT_GT(b.transport->counters().handshakes_refused, refused);
  std::vector<Frame> from_c;
  deadline = Clock::now() + std::chrono::seconds(5);
  while (from_c.empty() && Clock::now() < deadline) {
    c.transport->send(Link{true, endpoint_b}, "c again");
    (void)c.transport->poll(20);
    for (auto& f : b.transport->poll(20))
      if (f.bytes == "c again") from_c.push_back(std::move(f));
  }
  ASSERT_FALSE(from_c.empty()) << "a trusted device did not reconnect after the re-bind";
  EXPECT_EQ(to_hex(from_c[0].peer_key), to_hex(c.key()));
}

}  // namespace
}  // namespace replog

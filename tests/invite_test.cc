// Joining with an invite (PROTOCOL.md §7): the line's format against damage,
// the invite book's once-and-expiring rules, and the exchange between a real
// daemon (run_daemon on loopback) and join_cluster(): success and the two
// nodes syncing, a wrong secret, a second use, an expired line, another
// cluster's directory, and a stranger who connects first.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <zmq.hpp>

#include "node/api/daemon.h"
#include "node/api/join.h"
#include "node/api/local_api.h"
#include "node/core/clock.h"
#include "node/sync/invites.h"
#include "node/sync/zmq_transport.h"
#include "protocol/device_id.h"
#include "protocol/invite.h"
#include "protocol/wire.h"
#include "storage/cluster_secret.h"
#include "storage/data_dir.h"
#include "storage/identity.h"
#include "storage/peers.h"
#include "storage/trust.h"
#include "temp_dir.h"

namespace replog {
namespace {

using testing::TempDir;
using Steady = std::chrono::steady_clock;

invite::InviteLine sample_line() {
  return {"0123abcd-ef_9", std::string(32, '\x11'), std::string(16, '\x22'),
          {"tcp://192.168.1.20:7701", "tcp://[fe80::1]:7701"}};
}

// --- the line ------------------------------------------------------------------------

TEST(InviteLine, FormatsAndParsesBack) {
  const std::string text = invite::format_line(sample_line());
  EXPECT_EQ(text.rfind("replog-invite-1:", 0), 0u);
  auto back = invite::parse_line("  " + text + "\n");
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(back->cluster, sample_line().cluster);
  EXPECT_EQ(back->inviter_key, sample_line().inviter_key);
  EXPECT_EQ(back->secret, sample_line().secret);
  EXPECT_EQ(back->endpoints, sample_line().endpoints);
}

TEST(InviteLine, EveryTruncationIsRefused) {
  const std::string text = invite::format_line(sample_line());
  for (size_t n = 0; n < text.size(); ++n) EXPECT_FALSE(invite::parse_line(text.substr(0, n))) << n;
  auto cut = invite::parse_line(text.substr(0, text.size() - 8));
  EXPECT_NE(cut.status().message().find("copy all of it"), std::string::npos) << cut.status().message();
}

// Every single-character change is refused, or reads as another line whose
// secret, key or cluster differ (and so whose proof fails).
TEST(InviteLine, EverySingleCharacterChangeIsRefusedOrNamesAnotherInvite) {
  const std::string text = invite::format_line(sample_line());
  size_t refused = 0, other = 0;
  for (size_t i = 0; i < text.size(); ++i)
    for (int c = 0x20; c < 0x7f; ++c) {
      if (c == text[i]) continue;
      std::string changed = text;
      changed[i] = static_cast<char>(c);
      auto parsed = invite::parse_line(changed);
      if (!parsed) {
        ++refused;
        continue;
      }
      ++other;
      EXPECT_TRUE(parsed->secret != sample_line().secret || parsed->inviter_key != sample_line().inviter_key ||
                  parsed->cluster != sample_line().cluster || parsed->endpoints != sample_line().endpoints)
          << changed;
    }
  EXPECT_GT(refused, 0u);
  EXPECT_LE(other, 1u) << "the 32-bit check let " << other << " changes through";
}

TEST(InviteLine, RefusesOtherVersionsCaseAndGarbage) {
  const std::string text = invite::format_line(sample_line());
  std::string v2 = text;
  v2[14] = '2';
  EXPECT_NE(invite::parse_line(v2).status().message().find("another version"), std::string::npos);
  std::string upper = text;
  for (size_t i = invite::kLinePrefix.size(); i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  EXPECT_FALSE(invite::parse_line(upper));
  EXPECT_FALSE(invite::parse_line(""));
  EXPECT_FALSE(invite::parse_line("QMIW3IU-EZ6YP3N-ERKTNX7-BTXMQPP-SJOK6LX-PMJH2T5-5PULQ4K-77F3SAU"));
  EXPECT_FALSE(invite::parse_line(std::string(invite::kLinePrefix) + std::string(5000, 'a')));
  invite::InviteLine bad = sample_line();
  bad.endpoints = {};
  EXPECT_FALSE(invite::check_line(bad));
  bad = sample_line();
  bad.cluster = "not/hex";
  EXPECT_FALSE(invite::check_line(bad));
}

TEST(InviteProofs, DependOnTheSecretTheKeysAndTheirOrder) {
  const std::string s(16, 's'), a(32, 'a'), b(32, 'b');
  const std::string p = invite::join_proof(s, a, b);
  EXPECT_EQ(p.size(), invite::kProofBytes);
  EXPECT_TRUE(invite::same_proof(p, invite::join_proof(s, a, b)));
  EXPECT_FALSE(invite::same_proof(p, invite::join_proof(std::string(16, 't'), a, b)));
  EXPECT_FALSE(invite::same_proof(p, invite::join_proof(s, b, a)));
  EXPECT_FALSE(invite::same_proof(p, invite::accept_proof(s, b, a)));  // the labels differ
  EXPECT_FALSE(invite::same_proof(p, p.substr(1)));
}

TEST(JoinMessages, RoundTripAndRefuseBadShapes) {
  wire::Join join{std::string(32, 'k'), std::string(32, 'p'), "laptop"};
  auto back = wire::decode(wire::encode(join));
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<wire::Join>(*back).name, "laptop");
  EXPECT_EQ(*wire::type_of(wire::encode(join)), wire::Type::kJoin);
  wire::JoinReply yes{true, std::string(32, 'p'), "c1", std::string(32, 's')};
  ASSERT_TRUE(wire::decode(wire::encode(yes)));
  EXPECT_EQ(*wire::type_of(wire::encode(wire::JoinReply{})), wire::Type::kJoinReply);
  EXPECT_FALSE(wire::decode(wire::encode(wire::Join{std::string(31, 'k'), std::string(32, 'p'), ""})));
  EXPECT_FALSE(wire::decode(wire::encode(wire::Join{std::string(32, 'k'), std::string(32, 'p'), std::string(65, 'n')})));
  EXPECT_FALSE(wire::decode(wire::encode(wire::JoinReply{true, "", "c1", std::string(32, 's')})));
  EXPECT_FALSE(wire::decode(wire::encode(wire::JoinReply{false, std::string(32, 'p'), "", ""})));
}

// --- the invite book -------------------------------------------------------------------

TEST(InviteBook, AnInviteIsUsedOnceByOneDeviceAndExpires) {
  ManualClock clock(1'000'000);
  InviteBook book(clock, Env::posix());
  EXPECT_FALSE(book.any_open());
  EXPECT_FALSE(book.none_open_since());
  EXPECT_FALSE(book.open(0));
  EXPECT_FALSE(book.open(InviteBook::kMaxExpiryMs + 1));
  auto opened = book.open(60'000);
  ASSERT_TRUE(opened);
  EXPECT_TRUE(book.any_open());
  const std::string me(32, 'i'), joiner(32, 'j'), other(32, 'o');
  const std::string proof = invite::join_proof(opened->secret, joiner, me);
  EXPECT_FALSE(book.match(joiner, me, std::string(32, '\0')));
  EXPECT_FALSE(book.match(other, me, proof));  // the proof is for another key
  ASSERT_EQ(book.match(joiner, me, proof), opened->secret);
  EXPECT_TRUE(book.mark_used(opened->secret, joiner));
  EXPECT_FALSE(book.any_open());
  EXPECT_EQ(book.none_open_since(), 1'000'000);
  EXPECT_EQ(book.match(joiner, me, proof), opened->secret);  // the same device again: answered again
  EXPECT_FALSE(book.mark_used(opened->secret, joiner));
  EXPECT_FALSE(book.match(other, me, invite::join_proof(opened->secret, other, me)));  // anyone else: no

  auto second = book.open(1000);
  ASSERT_TRUE(second);
  clock.advance(999);
  EXPECT_TRUE(book.any_open());
  clock.advance(1);
  EXPECT_FALSE(book.any_open());
  EXPECT_FALSE(book.match(joiner, me, invite::join_proof(second->secret, joiner, me)));
  EXPECT_EQ(book.none_open_since(), 1'001'000);
}

// --- the exchange, with a real daemon ------------------------------------------------------

// A node run by run_daemon on a thread, listening on loopback.
class Daemon {
 public:
  explicit Daemon(const std::string& dir) : dir_(dir) {
    DaemonOptions o;
    o.node.dir = dir;
    o.listen = "tcp://127.0.0.1:0";
    o.log_level = 0;
    o.anti_entropy_ms = 200;
    thread_ = std::thread([this, o] {
      status_ = run_daemon(o, stop_);
      done_ = true;
    });
    const auto deadline = Steady::now() + std::chrono::seconds(20);
    while (!done_ && Steady::now() < deadline) {
      auto probe = DataDir(dir).node_running();
      if (probe && probe->api) {
        client_ = std::move(ApiClient::connect(*probe->api, context_)).value();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(client_) << "the node did not serve its API";
  }
  ~Daemon() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    client_.reset();
    stop_ = true;
    thread_.join();
    EXPECT_TRUE(status_) << status_.message();
  }
  Result<Value> request(const std::string& op, Value arg = Value()) {
    if (!client_) return Status::io_error("no API");
    return client_->request(op, std::move(arg), 10'000);
  }
  std::string invite(int64_t expires_ms = 60'000) {
    auto r = request("invite.create", Value(Map{{"expires_ms", Value(expires_ms)}}));
    EXPECT_TRUE(r) << r.status().message();
    return r ? r->find("line")->as_string() : "";
  }
  // A refusal counter; the daemon refreshes them every 100 ms.
  int64_t refusal(const char* name) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    auto s = request("status");
    return s ? s->find("refusals")->find(name)->as_int() : -1;
  }
  std::string key() const { return load_identity(DataDir(dir_).identity_file(), Env::posix())->public_key(); }

 private:
  std::string dir_;
  std::atomic<bool> stop_{false}, done_{false};
  Status status_;
  std::thread thread_;
  zmq::context_t context_{1};
  std::unique_ptr<ApiClient> client_;
};

class InviteExchange : public ::testing::Test {
 protected:
  void SetUp() override {
    engine::InitOptions init;
    init.dir = tmp_.sub("a");
    ASSERT_TRUE(engine::Node::init(init));
    inviter_ = std::make_unique<Daemon>(init.dir);
  }
  Result<JoinOutcome> join(const std::string& line, const std::string& dir, int64_t timeout_ms = 10'000) {
    auto parsed = invite::parse_line(line);
    if (!parsed) return parsed.status();
    return join_cluster(JoinOptions{dir, *parsed, "joiner", timeout_ms});
  }
  TempDir tmp_;
  std::unique_ptr<Daemon> inviter_;
};

TEST_F(InviteExchange, TheJoinerAndTheInviterTrustEachOtherAndSync) {
  const std::string b = tmp_.sub("b");
  auto joined = join(inviter_->invite(), b);
  ASSERT_TRUE(joined) << joined.status().message();
  EXPECT_TRUE(joined->made_dir);
  const std::string a = tmp_.sub("a");
  auto a_trust = TrustStore::open(DataDir(a).trust_file(), Env::posix());
  auto b_trust = TrustStore::open(DataDir(b).trust_file(), Env::posix());
  const std::string b_key = load_identity(DataDir(b).identity_file(), Env::posix())->public_key();
  ASSERT_TRUE(a_trust && b_trust);
  ASSERT_TRUE((*a_trust)->find(b_key));
  EXPECT_EQ((*a_trust)->find(b_key)->how, "invite");
  EXPECT_EQ((*a_trust)->find(b_key)->name, "joiner");
  ASSERT_TRUE((*b_trust)->find(inviter_->key()));
  EXPECT_EQ((*b_trust)->find(inviter_->key())->how, "invite");
  EXPECT_EQ(*load_cluster_secret(DataDir(a).cluster_secret_file(), Env::posix()),
            *load_cluster_secret(DataDir(b).cluster_secret_file(), Env::posix()));
  auto peers = load_peers(DataDir(b).peers_file(), Env::posix());
  ASSERT_TRUE(peers && peers->size() == 1u);
  EXPECT_EQ((*peers)[0].public_key, inviter_->key());
  EXPECT_EQ(inviter_->refusal("joined"), 1);

  // b's node finds a through peers.json alone; a call on a reaches b.
  Daemon second(b);
  ASSERT_TRUE(inviter_->request("call", Value(Map{{"method", Value("set")},
                                                  {"arg", Value(Map{{"path", Value("x")}, {"value", Value(7)}})}})));
  const auto deadline = Steady::now() + std::chrono::seconds(20);
  Result<Value> x = Status::not_found("");
  while (Steady::now() < deadline) {
    x = second.request("state", Value(Map{{"path", Value("x")}}));
    if (x) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(x) << "the call on the inviter never reached the joiner: " << x.status().message();
  EXPECT_EQ(x->as_int(), 7);
}

TEST_F(InviteExchange, AWrongSecretIsRefusedAndTheInviteStaysOpen) {
  const std::string line = inviter_->invite();
  auto wrong = *invite::parse_line(line);
  wrong.secret[0] = static_cast<char>(wrong.secret[0] ^ 1);
  auto refused = join(invite::format_line(wrong), tmp_.sub("b"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().code(), Status::Code::kRefused);
  EXPECT_NE(refused.status().message().find("refused the join"), std::string::npos) << refused.status().message();
  EXPECT_EQ(inviter_->refusal("join_refused"), 1);
  // Nothing was stored from the failed exchange.
  EXPECT_FALSE(TrustStore::open(DataDir(tmp_.sub("b")).trust_file(), Env::posix()).value()->contains(inviter_->key()));
  EXPECT_FALSE(Env::posix().file_exists(DataDir(tmp_.sub("b")).peers_file()));
  auto joined = join(line, tmp_.sub("b"));  // the same directory, the right line
  ASSERT_TRUE(joined) << joined.status().message();
  EXPECT_FALSE(joined->made_dir);
}

TEST_F(InviteExchange, ALineWorksOnce) {
  const std::string line = inviter_->invite();
  ASSERT_TRUE(join(line, tmp_.sub("b")));
  auto again = join(line, tmp_.sub("c"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.status().code(), Status::Code::kRefused) << again.status().message();
  EXPECT_EQ(inviter_->refusal("joined"), 1);
}

TEST_F(InviteExchange, AnExpiredLineIsRefusedAtOnce) {
  const std::string line = inviter_->invite(300);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const auto t0 = Steady::now();
  auto late = join(line, tmp_.sub("b"));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.status().code(), Status::Code::kRefused);
  EXPECT_NE(late.status().message().find("no invite is open"), std::string::npos) << late.status().message();
  EXPECT_LT(Steady::now() - t0, std::chrono::seconds(8)) << "waited for the timeout instead";
  EXPECT_GE(inviter_->refusal("handshakes_refused"), 1);
}

TEST_F(InviteExchange, AnotherClustersDirectoryIsRefusedBeforeConnecting) {
  engine::InitOptions other;
  other.dir = tmp_.sub("c");
  other.cluster = "feedfeedfeedfeed";
  ASSERT_TRUE(engine::Node::init(other));
  auto refused = join(inviter_->invite(), other.dir);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.status().message().find("holds the data of cluster feedfeedfeedfeed"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(inviter_->refusal("pending_joiners"), 0);  // it never connected
  EXPECT_FALSE(Env::posix().file_exists(DataDir(other.dir).peers_file()));
}

// A stranger (a random key) that connects while the invite is open is
// admitted as a joiner, but nothing it sends reaches the sync engine and
// nothing of the node's data comes back; its wrong Join is refused and the
// real joiner still gets in.
TEST_F(InviteExchange, AStrangerConnectingFirstGetsNothing) {
  const std::string line = inviter_->invite();
  const auto parsed = *invite::parse_line(line);
  ASSERT_TRUE(inviter_->request("call", Value(Map{{"method", Value("set")},
                                                  {"arg", Value(Map{{"path", Value("x")}, {"value", Value(1)}})}})));
  Identity stranger = *Identity::generate(Env::posix());
  zmq::context_t context(1);
  ZmqTransport transport(context, TransportSecurity{*stranger.curve_keys(), [](std::string_view) {
                                                      return std::optional<std::string>();
                                                    }});
  const std::string endpoint = parsed.endpoints[0];
  ASSERT_TRUE(transport.connect_to(endpoint, parsed.inviter_key));
  auto status = inviter_->request("status");
  ASSERT_TRUE(status);
  const Link link{true, endpoint};
  const uint64_t origin = 0x5752414e47455231;
  std::vector<wire::Message> got;
  const auto deadline = Steady::now() + std::chrono::milliseconds(2500);
  while (Steady::now() < deadline) {
    transport.send(link, wire::encode(wire::Hello{status->find("cluster_id")->as_string(), origin, "",
                                                  1 << 20, 4 << 20, 0}));
    transport.send(link, wire::encode(wire::Vector{0, 1, false, {}}));
    transport.send(link, wire::encode(wire::Push{{Update::make(UpdateId{1'700'000'000'000ull << 16, origin}, 1, "set",
                                                               std::string("\x82\xa4path\xa1y\xa5value\x01", 15))},
                                                  {}}));
    transport.send(link, wire::encode(wire::Join{stranger.public_key(), std::string(32, 'x'), ""}));
    for (auto& f : transport.poll(100))
      if (auto m = wire::decode(f.bytes)) got.push_back(*m);
  }
  size_t refusals = 0;
  for (const auto& m : got) {
    auto* r = std::get_if<wire::JoinReply>(&m);
    ASSERT_TRUE(r) << "the stranger received a " << wire::type_name(m);
    EXPECT_FALSE(r->accepted);
    ++refusals;
  }
  EXPECT_GT(refusals, 0u);
  auto vector = inviter_->request("status");
  ASSERT_TRUE(vector);
  EXPECT_EQ(vector->find("vector")->as_map().size(), 1u) << "the stranger's push was stored";
  EXPECT_GE(inviter_->refusal("joiner_frames_dropped"), 1);
  EXPECT_GE(inviter_->refusal("pending_joiners"), 1);

  auto joined = join(line, tmp_.sub("b"));
  ASSERT_TRUE(joined) << joined.status().message();
}

}  // namespace
}  // namespace replog

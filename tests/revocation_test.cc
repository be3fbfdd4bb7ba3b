// Membership and revocation (node/core/revocations.h, node/engine/membership.cc):
// which revocations take effect, as a pure rule; a revoked origin's later
// updates left out of replay on every node whatever their timestamps, and
// again after a restart; runs of an origin whose key is not a member's held
// back until it is; and `retire` of a node's own origin as its final head.
#include <gtest/gtest.h>

#include "node/api/verify.h"
#include "node/core/revocations.h"
#include "node/engine/node.h"
#include "protocol/bytes.h"
#include "protocol/msgpack_codec.h"
#include "protocol/origin_proof.h"
#include "storage/data_dir.h"
#include "storage/env.h"
#include "storage/identity.h"
#include "storage/update_log.h"
#include "signed_node.h"
#include "temp_dir.h"

namespace replog {
namespace {

using engine::Node;
using testing::TempDir;

// --- the rule ---------------------------------------------------------------------

Revocation rev(OriginId writer, uint64_t hlc, uint64_t seq, OriginId target, uint64_t last_seq) {
  return Revocation{UpdateId{hlc, writer}, seq, target, last_seq};
}

constexpr OriginId kA = 0xa, kB = 0xb, kC = 0xc;


TEST(RevocationRule, ARevocationByAMemberTakesEffect) {
  auto r = effective_revocations({rev(kA, 10, 4, kB, 7)}, {});
  EXPECT_EQ(r, (std::map<OriginId, uint64_t>{{kB, 7}}));
}

TEST(RevocationRule, ARevokedDeviceThatCountersAfterwardsGainsNothingWhateverItsClock) {
  // A revokes B through #5 (A's #3). B, having seen it (it holds A #3), revokes
  // A at its #9, back-dated below A's revocation.
  auto r = effective_revocations({rev(kB, 1, 9, kA, 3), rev(kA, 50, 3, kB, 5)}, {});
  EXPECT_EQ(r, (std::map<OriginId, uint64_t>{{kB, 5}}));
  // The same in the other order of the list.
  EXPECT_EQ(effective_revocations({rev(kA, 50, 3, kB, 5), rev(kB, 1, 9, kA, 3)}, {}), r);
}

TEST(RevocationRule, TwoMembersRevokingEachOtherUnseenAreBothShutOut) {
  auto r = effective_revocations({rev(kA, 10, 4, kB, 2), rev(kB, 11, 3, kA, 1)}, {});
  EXPECT_EQ(r, (std::map<OriginId, uint64_t>{{kA, 1}, {kB, 2}}));
}

TEST(RevocationRule, WhatDependsOnACycleIsDecidedByIt) {
  constexpr OriginId kD = 0xd;
  // A and B revoke each other unseen: both take effect. A then revokes D at
  // A #6, past what B left A: void. So D's revocation of C stands.
  auto r = effective_revocations({rev(kA, 10, 4, kB, 2), rev(kB, 11, 3, kA, 1), rev(kA, 12, 6, kD, 1),
                                  rev(kD, 13, 3, kC, 0)},
                                 {});
  EXPECT_EQ(r, (std::map<OriginId, uint64_t>{{kA, 1}, {kB, 2}, {kC, 0}}));
}

TEST(RevocationRule, ARevocationOfAForkedOriginPastItsForkIsVoid) {
  EXPECT_TRUE(effective_revocations({rev(kA, 10, 4, kB, 2)}, {{kA, 4}}).empty());
  EXPECT_EQ(effective_revocations({rev(kA, 10, 4, kB, 2)}, {{kA, 5}}).size(), 1u);
}

TEST(RevocationRule, TheLowestLastSeqWinsAndLeftOutTakesTheLowerOfForkAndRevocation) {
  auto r = effective_revocations({rev(kA, 10, 4, kC, 9), rev(kB, 11, 2, kC, 6)}, {});
  EXPECT_EQ(r.at(kC), 6u);
  auto out = left_out_seqs({{kC, 5}, {kA, 3}}, r);
  EXPECT_EQ(out.at(kC), 5u);
  EXPECT_EQ(out.at(kA), 3u);
  EXPECT_EQ(left_out_seqs({{kC, 9}}, r).at(kC), 7u);
}

TEST(RevocationRule, TheArgumentIsCheckedForShape) {
  std::string why;
  EXPECT_TRUE(parse_revoke_arg(Value(Map{{"origin", Value("00000000000000ab")}, {"last_seq", Value(int64_t{3})}}), &why));
  EXPECT_FALSE(parse_revoke_arg(Value(Map{{"origin", Value("zz")}, {"last_seq", Value(int64_t{3})}}), &why));
  EXPECT_FALSE(parse_revoke_arg(Value(Map{{"origin", Value("0")}, {"last_seq", Value(int64_t{3})}}), &why));
  EXPECT_NE(why.find("reserved"), std::string::npos);
  EXPECT_FALSE(parse_revoke_arg(Value(Map{{"origin", Value("ab")}, {"last_seq", Value(int64_t{-1})}}), &why));
  EXPECT_FALSE(parse_revoke_arg(Value("ab"), &why));
}

// --- nodes ------------------------------------------------------------------------

std::string device_key(const std::string& dir) {
  auto id = load_identity(DataDir(dir).identity_file(), Env::posix());
  EXPECT_TRUE(id) << id.status().message();
  return id ? std::string(id->public_key()) : std::string();
}

Value set_arg(const std::string& key, const std::string& value) { return testing::set_string_arg(key, value); }

bool has(const Node& n, const std::string& key) {
  bool found = false;
  n.read([&](const State& s) { found = s.get(Path{key}) != nullptr; });
  return found;
}

// Everything `from` holds of `origin` from seq 1, with its head.
void copy_origin(Node& from, Node& to, OriginId origin) {
  auto r = from.read_range(origin, 1, 1000, 1 << 20);
  ASSERT_TRUE(r && r->head) << (r ? "no head" : r.status().message());
  auto rep = to.ingest(std::move(r->updates), {*r->head});
  ASSERT_TRUE(rep) << rep.status().message();
  EXPECT_TRUE(rep->refused.empty()) << rep->refused.front().detail;
}

class Revocations : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(Node::init({tmp_.sub(n), std::string("c1"), std::nullopt, nullptr}));
    a_ = testing::open_signed_node(tmp_.sub("a"));
    b_ = testing::open_signed_node(tmp_.sub("b"));
    c_ = testing::open_signed_node(tmp_.sub("c"));
    ASSERT_TRUE(a_ && b_ && c_);
  }
  TempDir tmp_;
  std::unique_ptr<Node> a_, b_, c_;
};

TEST_F(Revocations, ARevokedOriginsLaterUpdatesAreLeftOutEverywhereAndAfterARestart) {
  const OriginId a = a_->node_id();
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(a_->call("set", set_arg("a" + std::to_string(i), "x")));
  copy_origin(*a_, *b_, a);
  // B revokes A through #2: A's #3 is left out of B's state.
  ASSERT_TRUE(b_->call("revoke", Value(Map{{"origin", Value(hex16(a))}, {"last_seq", Value(int64_t{2})}})));
  EXPECT_TRUE(has(*b_, "a2"));
  EXPECT_FALSE(has(*b_, "a3")) << "revoked, though it sorts before the revocation";
  EXPECT_EQ(b_->info().revoked, (std::map<OriginId, uint64_t>{{a, 2}}));
  // A writes on; C gets A's whole origin, then B's revocation: the same state as B.
  ASSERT_TRUE(a_->call("set", set_arg("a4", "x")));
  copy_origin(*a_, *c_, a);
  EXPECT_TRUE(has(*c_, "a4"));
  copy_origin(*b_, *c_, b_->node_id());
  EXPECT_FALSE(has(*c_, "a3"));
  EXPECT_FALSE(has(*c_, "a4"));
  copy_origin(*a_, *b_, a);  // #4, after the revocation
  EXPECT_FALSE(has(*b_, "a4"));
  EXPECT_EQ(b_->state_hash(), c_->state_hash());
  // A restart rebuilds the same: the revocation is indexed, the checkpoint agrees.
  const std::string hash = c_->state_hash();
  ASSERT_TRUE(c_->close());
  c_.reset();
  c_ = testing::open_signed_node(tmp_.sub("c"));
  ASSERT_TRUE(c_);
  EXPECT_EQ(c_->state_hash(), hash);
  EXPECT_EQ(c_->info().revoked.at(a), 2u);
  ASSERT_TRUE(c_->close());
  c_.reset();
  auto report = verify_data_dir(tmp_.sub("c"), std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins()));
  ASSERT_TRUE(report) << report.status().message();
  EXPECT_TRUE(report->problems.empty()) << report->problems.front();
}

TEST_F(Revocations, AnOriginThatIsNotAMembersIsHeldBackUntilItIs) {
  ASSERT_TRUE(b_->close());
  b_.reset();
  bool member = false;
  const std::string a_key = device_key(tmp_.sub("a"));
  engine::NodeOptions o;
  o.dir = tmp_.sub("b");
  o.is_member = [&](std::string_view key) { return member && key == a_key; };
  auto opened = Node::open(o);
  ASSERT_TRUE(opened) << opened.status().message();
  b_ = std::move(opened).value();
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(a_->call("set", set_arg("a" + std::to_string(i), "x")));
  auto r = a_->read_range(a_->node_id(), 1, 1000, 1 << 20);
  ASSERT_TRUE(r && r->head);
  auto rep = b_->ingest(r->updates, {*r->head});
  ASSERT_TRUE(rep);
  ASSERT_EQ(rep->refused.size(), 3u);
  EXPECT_EQ(rep->refused.front().verdict, Verdict::kNotMember);
  EXPECT_EQ(b_->vector().count(a_->node_id()), 0u) << "nothing stored";
  EXPECT_EQ(b_->info().held.at(a_->node_id()).updates, 3u);
  EXPECT_FALSE(has(*b_, "a1"));
  member = true;
  auto again = b_->membership_changed();
  ASSERT_TRUE(again) << again.status().message();
  EXPECT_EQ(again->accepted, 3u);
  EXPECT_TRUE(b_->info().held.empty());
  EXPECT_TRUE(has(*b_, "a3"));
}

TEST_F(Revocations, RetiringItsOwnOriginSignsAFinalHeadThatIngestEnforces) {
  const OriginId a = a_->node_id();
  ASSERT_TRUE(a_->call("set", set_arg("a1", "x")));
  // The caller's last_seq is replaced by the retire's own seq.
  ASSERT_TRUE(a_->call("retire", Value(Map{{"origin", Value(hex16(a))}, {"last_seq", Value(int64_t{99})}})));
  EXPECT_NE(a_->node_id(), a) << "writes on as a fresh origin";
  EXPECT_EQ(a_->info().former_origins.count(a), 1u);
  ASSERT_TRUE(a_->call("set", set_arg("a3", "x")));
  auto r = a_->read_range(a, 1, 1000, 1 << 20);
  ASSERT_TRUE(r && r->head);
  EXPECT_EQ(r->head->seq, 2u);
  EXPECT_TRUE(r->head->flags & proof::kFinal);
  copy_origin(*a_, *b_, a);
  copy_origin(*a_, *b_, a_->node_id());
  EXPECT_EQ(b_->state_hash(), a_->state_hash());
  b_->read([&](const State& s) { EXPECT_EQ(s.retired().at(a), 2u); });
  // The old key signs one more update: refused, since its origin's final head is held.
  auto key = load_identity(DataDir(tmp_.sub("a")).identity_file(), Env::posix());
  ASSERT_TRUE(key);
  Update extra = Update::make(UpdateId{r->updates.back().id().hlc + 1000, a}, 3, "set",
                              encode_msgpack(set_arg("a4", "forged after retire")));
  proof::Chain c = r->head->chain;
  proof::chain_step(c, key->public_key(), extra.id().hlc, extra.body());
  proof::Head h = proof::sign_head(a, 3, c, 0, key->secret_key());
  auto rep = b_->ingest({extra}, {h});
  ASSERT_TRUE(rep);
  ASSERT_EQ(rep->refused.size(), 1u);
  EXPECT_EQ(rep->refused.front().verdict, Verdict::kBadProof);
  EXPECT_NE(rep->refused.front().detail.find("final head"), std::string::npos) << rep->refused.front().detail;
  EXPECT_FALSE(has(*b_, "a4"));
}

}  // namespace
}  // namespace replog

// The verifying ingest (node/engine/ingest_verify.cc): runs written and
// signed by real nodes, taken by another node only when their head verifies
// and their bytes chain to it. Altered bytes, an altered hlc, a head signed by
// another key, a run without a head, and a second branch signed by one key
// (a copied data directory) are each refused, nothing of them stored, and the
// last kept as fork evidence.
#include <gtest/gtest.h>

#include <algorithm>

#include <filesystem>

#include "node/api/verify.h"
#include "node/engine/node.h"
#include "node/sync/peer_service.h"
#include "protocol/bytes.h"
#include "protocol/origin_proof.h"
#include "storage/update_log.h"
#include "signed_node.h"
#include "support/forwarding_store.h"
#include "support/memory_transport.h"
#include "temp_dir.h"

namespace replog {
namespace {

using engine::Node;
using testing::TempDir;

std::unique_ptr<Node> open_node(const std::string& dir) { return testing::open_signed_node(dir); }

Value set_arg(const std::string& key, const std::string& value) { return testing::set_string_arg(key, value); }

std::string verdicts(const IngestReport& r) {
  std::string out;
  for (const auto& x : r.refused) out += std::string(verdict_name(x.verdict)) + ": " + x.detail + "\n";
  return out;
}

class VerifyIngest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Node::init({tmp_.sub("a"), std::string("c1"), std::nullopt, nullptr}));
    ASSERT_TRUE(Node::init({tmp_.sub("b"), std::string("c1"), std::nullopt, nullptr}));
    a_ = open_node(tmp_.sub("a"));
    b_ = open_node(tmp_.sub("b"));
    ASSERT_TRUE(a_ && b_);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(a_->call("set", set_arg("k" + std::to_string(i), "v" + std::to_string(i))));
  }

  // A's whole origin as a range from seq 1: its updates and the head they end at (with the key).
  Range a_range() {
    auto r = a_->read_range(a_->node_id(), 1, 100, 1 << 20);
    EXPECT_TRUE(r && r->head) << (r ? "no head" : r.status().message());
    return r ? std::move(r).value() : Range{};
  }

  // A copy of A's directory (same key, same origin), run beside A.
  std::unique_ptr<Node> copy_of_a() {
    EXPECT_TRUE(a_->close());
    a_.reset();
    const std::string copy = tmp_.sub("copy");
    std::filesystem::copy(tmp_.sub("a"), copy);
    std::filesystem::remove(copy + "/LOCK");
    a_ = open_node(tmp_.sub("a"));
    return open_node(copy);
  }

  void ExpectNothingOfAIn(const Node& n) { EXPECT_EQ(n.vector().count(a_->node_id()), 0u); }

  TempDir tmp_;
  std::unique_ptr<Node> a_, b_;
};

// Ranges read together (one walk of the log, as a link's Requests of one
// poll are served) are the ranges read one by one: the same updates, heads,
// keys and next_held, for signed origins of this node and of another.
TEST_F(VerifyIngest, RangesReadTogetherAreTheRangesReadOneByOne) {
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(a_->call("set", set_arg("a" + std::to_string(i % 5), std::to_string(i))));
    ASSERT_TRUE(b_->call("set", set_arg("b" + std::to_string(i % 3), std::to_string(i))));
  }
  auto all_of_a = a_->read_range(a_->node_id(), 1, 1000, 1 << 20);
  ASSERT_TRUE(all_of_a && all_of_a->head);
  ASSERT_EQ(b_->ingest(all_of_a->updates, {*all_of_a->head})->accepted, all_of_a->updates.size());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(b_->call("set", set_arg("b", std::to_string(i))));
  const OriginId a = a_->node_id(), b = b_->node_id();
  const std::vector<RangeAsk> asks{
      {a, 1, 1000, 1 << 20},  // all of a, with its key (from seq 1)
      {b, 1, 5, 1 << 20},     // a few of b's own, then on to a head
      {a, 10, 3, 100},        // a byte budget
      {b, 3, 1000, 1},        // one update's budget: on to the first head
      {a, 2, 1000, 1 << 20},  // a again, overlapping
      {b, 500, 5, 1 << 20},   // a seq not held
      {99, 1, 1, 1},          // an origin not held
      {b, 0, 5, 1 << 20},     // seq 0
  };
  const auto together = b_->read_ranges(asks);
  ASSERT_EQ(together.size(), asks.size());
  for (size_t i = 0; i < asks.size(); ++i) {
    SCOPED_TRACE("ask " + std::to_string(i));
    auto one = b_->read_range(asks[i].origin, asks[i].from, asks[i].max_count, asks[i].max_bytes);
    ASSERT_EQ(together[i].is_ok(), one.is_ok());
    if (!one) continue;
    const Range& x = *together[i];
    ASSERT_EQ(x.updates.size(), one->updates.size());
    for (size_t j = 0; j < x.updates.size(); ++j) {
      EXPECT_EQ(x.updates[j].id(), one->updates[j].id());
      EXPECT_EQ(x.updates[j].body(), one->updates[j].body());
    }
    EXPECT_EQ(x.next_held, one->next_held);
    ASSERT_EQ(x.head.has_value(), one->head.has_value());
    if (!x.head) continue;
    EXPECT_EQ(x.head->seq, one->head->seq);
    EXPECT_EQ(x.head->chain, one->head->chain);
    EXPECT_EQ(x.head->signature, one->head->signature);
    EXPECT_EQ(x.head->key, one->head->key);
    EXPECT_EQ(x.head->cert, one->head->cert);
  }
  // What the asks got, so that the comparison above compares something.
  EXPECT_EQ(together[0]->updates.size(), 34u);
  EXPECT_TRUE(together[0]->head && !together[0]->head->key.empty()) << "from seq 1: the key goes with the head";
  EXPECT_FALSE(together[1]->updates.empty());
  EXPECT_TRUE(together[1]->head.has_value());
  EXPECT_FALSE(together[3]->updates.empty());
  EXPECT_TRUE(together[5]->updates.empty());
  EXPECT_TRUE(together[6]->updates.empty());
}

TEST_F(VerifyIngest, AGenuineRunIsStoredWithItsHeadAndVerifies) {
  Range r = a_range();
  EXPECT_EQ(r.head->key.size(), 32u) << "a range from seq 1 carries the key";
  auto rep = b_->ingest(r.updates, {*r.head});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, 4u) << verdicts(*rep);
  EXPECT_EQ(b_->state_hash(), a_->state_hash());
  EXPECT_EQ(b_->info().verified.at(a_->node_id()), 4u);
  // B now serves A's origin, ending at the head it holds, which verifies.
  auto relayed = b_->read_range(a_->node_id(), 2, 100, 1 << 20);
  ASSERT_TRUE(relayed && relayed->head);
  EXPECT_EQ(relayed->updates.size(), 3u);
  EXPECT_EQ(relayed->head->signature, r.head->signature) << "the proof is relayed unchanged";
  ASSERT_TRUE(b_->close());
  auto report = verify_data_dir(tmp_.sub("b"), std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins()));
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->ok()) << (report->problems.empty() ? "" : report->problems.front());
  EXPECT_EQ(report->origins_verified, 1u) << "A's (B wrote nothing of its own)";
}

TEST_F(VerifyIngest, ARunBrokenBeforeItsHeadStoresThePartThatRunsOnToIt) {
  // The Pushes of one poll are judged together: here a stray #1 (from another
  // frame) beside the genuine run after what B holds, under the head at #4.
  Range r = a_range();
  auto upto2 = a_->read_range(a_->node_id(), 1, 2, 1 << 20);
  ASSERT_TRUE(upto2 && upto2->head);
  ASSERT_EQ(b_->ingest(upto2->updates, {*upto2->head})->accepted, upto2->updates.size());
  const uint64_t held = seq_of(b_->vector(), a_->node_id());
  ASSERT_GE(held, 2u);
  ASSERT_LT(held, 4u);
  std::vector<Update> mixed{r.updates[0]};
  for (size_t i = held; i < r.updates.size(); ++i) mixed.push_back(r.updates[i]);
  auto rep = b_->ingest(mixed, {*r.head});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, r.updates.size() - held) << verdicts(*rep);
  EXPECT_EQ(seq_of(b_->vector(), a_->node_id()), 4u);
  EXPECT_EQ(b_->state_hash(), a_->state_hash());
}

TEST_F(VerifyIngest, EveryBitOfABodyOrAnHlcAlteredIsRefusedAndNothingIsStored) {
  Range r = a_range();
  const std::string& body = r.updates[2].body();
  for (size_t byte = 0; byte < body.size(); ++byte) {
    std::string altered = body;
    altered[byte] = static_cast<char>(altered[byte] ^ 0x01);
    auto u = Update::parse(r.updates[2].id(), altered);
    if (!u) continue;  // no longer frames: refused where it is decoded
    std::vector<Update> ups = r.updates;
    ups[2] = *u;
    auto rep = b_->ingest(ups, {*r.head});
    ASSERT_TRUE(rep);
    EXPECT_EQ(rep->accepted, 0u) << "byte " << byte;
    ASSERT_FALSE(rep->refused.empty());
    // A changed seq breaks the run before its head: the part before the break
    // is a gap, and the rest is judged with the head (refused as a gap or as
    // bad proof). A body altered in place is bad proof.
    const bool seq_moved = u->seq() != r.updates[2].seq();
    EXPECT_TRUE(std::all_of(rep->refused.begin(), rep->refused.end(), [&](const Refused& x) {
      return x.verdict == Verdict::kBadProof || (seq_moved && x.verdict == Verdict::kGap);
    })) << "byte " << byte << ": " << verdicts(*rep);
  }
  std::vector<Update> ups = r.updates;
  ups[1] = *Update::parse(UpdateId{ups[1].id().hlc + 1, ups[1].id().origin}, ups[1].body());
  auto rep = b_->ingest(ups, {*r.head});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, 0u) << "an hlc moved by one";
  ExpectNothingOfAIn(*b_);
}

// A relay repeats a held run with its third update altered: the two before it
// are the held bytes (duplicates), and only the altered one and what follows
// it are refused; nothing held changes.
TEST_F(VerifyIngest, AHeldRunWithOneUpdateAlteredRefusesFromThatUpdateOn) {
  Range r = a_range();
  ASSERT_EQ(b_->ingest(r.updates, {*r.head})->accepted, 4u);
  const std::string before = b_->state_hash();
  std::string altered = r.updates[2].body();
  altered.back() = static_cast<char>(altered.back() ^ 0x01);
  std::vector<Update> ups = r.updates;
  auto u = Update::parse(ups[2].id(), altered);
  ASSERT_TRUE(u);
  ups[2] = *u;
  auto rep = b_->ingest(ups, {*r.head});
  ASSERT_TRUE(rep);
  ASSERT_EQ(rep->refused.size(), 2u) << verdicts(*rep);
  EXPECT_EQ(rep->refused[0].seq, 3u);
  EXPECT_EQ(rep->refused[0].verdict, Verdict::kBadProof);
  EXPECT_EQ(rep->refused[1].seq, 4u);
  EXPECT_EQ(rep->duplicates, 2u) << "#1 and #2 are the held bytes";
  EXPECT_EQ(b_->state_hash(), before);
}

// verify_ahead (what a relay sends on from its loop before its writer has
// the run): only a run that continues what B's writer verified last of A,
// ends at its head, chains to it and carries A's signature. Anything else is
// left to the writer, which judges it as ever. The writer then takes the
// signature verified ahead instead of verifying it again; a run it refuses
// for bad proof leaves nothing to verify ahead from until it stores one.
TEST_F(VerifyIngest, ARunVerifiedAheadOfTheWriterIsOneIngestWouldTake) {
  const OriginId a = a_->node_id();
  Range r = a_range();
  EXPECT_TRUE(b_->verify_ahead(r.updates, {*r.head}).updates.empty()) << "B's writer has verified nothing of A";
  ASSERT_EQ(b_->ingest(r.updates, {*r.head})->accepted, 4u);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(a_->call("set", set_arg("n" + std::to_string(i), "v")));
  auto next = a_->read_range(a, 5, 3, 1 << 20);  // #5..#7 and the head at #7
  ASSERT_TRUE(next && next->head);
  ASSERT_EQ(next->head->seq, 7u);
  const std::vector<Update>& run = next->updates;
  const proof::Head& head = *next->head;
  const auto ahead = [&](std::vector<Update> ups, proof::Head h) { return b_->verify_ahead(ups, {h}).updates.size(); };

  EXPECT_EQ(ahead({run[1], run[2]}, head), 0u) << "a hole: #5 is neither held nor verified";
  EXPECT_EQ(ahead({run[0], run[1]}, head), 0u) << "a run that does not reach its head";
  std::vector<Update> altered = run;
  std::string body = run[1].body();
  body.back() = static_cast<char>(body.back() ^ 0x01);
  altered[1] = *Update::parse(run[1].id(), body);
  EXPECT_EQ(ahead(altered, head), 0u) << "a body altered";
  proof::Head bad = head;
  bad.signature[7] = static_cast<char>(bad.signature[7] ^ 0x40);
  EXPECT_EQ(ahead(run, bad), 0u) << "a signature altered";
  proof::Head other_key = head;
  other_key.key = std::string(32, '\x02');
  EXPECT_EQ(ahead(run, other_key), 0u) << "a head carrying another key";
  EXPECT_EQ(b_->ahead_counts().runs, 0u);

  const auto passed = b_->verify_ahead(run, {head});
  ASSERT_EQ(passed.updates.size(), 3u);
  ASSERT_EQ(passed.heads.size(), 1u);
  EXPECT_EQ(passed.heads[0].signature, head.signature);
  EXPECT_EQ(passed.heads[0].seq, 7u);
  EXPECT_EQ(ahead(run, head), 0u) << "verified ahead once: a second copy is left to the writer";
  EXPECT_EQ(seq_of(b_->vector(), a), 4u) << "nothing is stored ahead";
  auto rep = b_->ingest(run, {head});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, 3u) << verdicts(*rep);
  EXPECT_EQ(b_->ahead_counts().signatures_reused, 1u) << "the writer did not verify #7's signature again";
  EXPECT_EQ(seq_of(b_->vector(), a), 7u);

  // A run the writer refuses for bad proof leaves B nothing to verify ahead
  // from, until its writer stores a run of A again.
  auto last = a_->read_range(a, 8, 1, 1 << 20);
  ASSERT_TRUE(last && last->head && last->head->seq == 8u);
  std::string b8 = last->updates[0].body();
  b8.back() = static_cast<char>(b8.back() ^ 0x01);
  rep = b_->ingest({*Update::parse(last->updates[0].id(), b8)}, {*last->head});
  ASSERT_TRUE(rep);
  ASSERT_EQ(rep->refused.size(), 1u);
  EXPECT_EQ(rep->refused[0].verdict, Verdict::kBadProof);
  EXPECT_EQ(ahead(last->updates, *last->head), 0u) << "the writer judges A's next run";
  ASSERT_EQ(b_->ingest(last->updates, {*last->head})->accepted, 1u);
  ASSERT_TRUE(a_->call("set", set_arg("m", "v")));
  auto ninth = a_->read_range(a, 9, 1, 1 << 20);
  ASSERT_TRUE(ninth && ninth->head);
  EXPECT_EQ(ahead(ninth->updates, *ninth->head), 1u) << "verified ahead again from the run the writer stored";
  EXPECT_EQ(b_->ahead_counts().runs, 2u);
  ASSERT_EQ(b_->ingest(ninth->updates, {*ninth->head})->accepted, 1u);
  EXPECT_EQ(b_->state_hash(), a_->state_hash());
}

TEST_F(VerifyIngest, AHeadSignedByAnotherKeyOrNoHeadIsRefused) {
  Range r = a_range();
  // B signs a head over A's genuine chain with its own key (and carries it).
  proof::Head forged = proof::sign_head(r.head->origin, r.head->seq, r.head->chain, 0,
                                        std::string(64, '\x01'));  // any key that is not A's
  forged.key = std::string(32, '\x02');
  auto rep = b_->ingest(r.updates, {forged});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, 0u);
  EXPECT_EQ(rep->refused.front().verdict, Verdict::kBadProof) << verdicts(*rep);
  // A's key with a signature that is not A's.
  proof::Head bad = *r.head;
  bad.signature[5] = static_cast<char>(bad.signature[5] ^ 0x40);
  rep = b_->ingest(r.updates, {bad});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, 0u);
  EXPECT_EQ(rep->refused.front().verdict, Verdict::kBadProof) << verdicts(*rep);
  rep = b_->ingest(r.updates, {});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, 0u);
  EXPECT_EQ(rep->refused.front().verdict, Verdict::kUnverified) << verdicts(*rep);
  ExpectNothingOfAIn(*b_);
  // The genuine run is still taken after all that.
  rep = b_->ingest(r.updates, {*r.head});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, 4u) << verdicts(*rep);
}

TEST_F(VerifyIngest, TheReceiversOwnOriginForgedIsRefusedAndItKeepsItsOrigin) {
  ASSERT_TRUE(b_->call("set", set_arg("mine", "1")));
  const OriginId own = b_->node_id();
  // A "writes" #2 of B's origin: a head A signs over a chain of its own making.
  Update u = Update::make(UpdateId{~uint64_t{0} >> 20, own}, 2, "set", "\x80");
  proof::Chain c = proof::chain_start("c1", std::string(32, '\x03'));
  proof::chain_step(c, std::string(32, '\x03'), u.id().hlc, u.body());
  proof::Head h = proof::sign_head(own, 2, c, 0, std::string(64, '\x03'));
  h.key = std::string(32, '\x03');
  auto rep = b_->ingest({u}, {h});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, 0u);
  EXPECT_FALSE(rep->origin_changed);
  EXPECT_EQ(b_->node_id(), own) << "nothing a peer sends moves a node off its origin unless its key signed it";
  EXPECT_TRUE(b_->call("set", set_arg("mine", "2"))) << "and it keeps writing";
}

TEST_F(VerifyIngest, ASecondBranchSignedByOneKeyBecomesForkEvidence) {
  // A copy of A's directory (same key, same origin) writes its own #5; A writes another #5.
  auto twin = copy_of_a();
  ASSERT_TRUE(a_ && twin);
  ASSERT_TRUE(a_->call("set", set_arg("branch", "a")));
  ASSERT_TRUE(twin->call("set", set_arg("branch", "twin")));
  Range ours = a_range();
  auto theirs = twin->read_range(twin->node_id(), 5, 10, 1 << 20);
  ASSERT_TRUE(theirs && theirs->head);
  auto rep = b_->ingest(ours.updates, {*ours.head});
  ASSERT_TRUE(rep);
  ASSERT_EQ(rep->accepted, 5u) << verdicts(*rep);
  rep = b_->ingest(theirs->updates, {*theirs->head});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->forks, 1u) << verdicts(*rep);
  EXPECT_EQ(rep->refused.front().verdict, Verdict::kFork);
  auto info = b_->info();
  const OriginId forked = a_->node_id();
  ASSERT_EQ(info.fork_evidence.count(forked), 1u);
  EXPECT_EQ(info.fork_evidence.at(forked), 5u) << "the branches part at #5";
  auto evidence = b_->evidence();
  ASSERT_EQ(evidence.size(), 1u);

  // C holds the other branch; once it has the evidence, both leave #5 out alike.
  ASSERT_TRUE(Node::init({tmp_.sub("c"), std::string("c1"), std::nullopt, nullptr}));
  auto c = open_node(tmp_.sub("c"));
  auto twin_all = twin->read_range(twin->node_id(), 1, 10, 1 << 20);
  ASSERT_TRUE(twin_all && twin_all->head);
  ASSERT_EQ(c->ingest(twin_all->updates, {*twin_all->head})->accepted, 5u);
  EXPECT_NE(c->state_hash(), b_->state_hash()) << "two branches, before the evidence reaches C";
  auto kept = c->take_evidence(evidence.front());
  ASSERT_TRUE(kept) << kept.status().message();
  EXPECT_TRUE(*kept);
  EXPECT_EQ(c->state_hash(), b_->state_hash()) << "one state on both branches once the evidence is known";
  EXPECT_FALSE(*c->take_evidence(evidence.front())) << "the same evidence again changes nothing";
  EXPECT_FALSE(c->take_evidence("\x93\x01")) << "bytes that are no evidence are refused";

  // The owner learns its origin forked: it moves to a fresh origin and writes its #5 again there.
  auto moved = a_->take_evidence(evidence.front());
  ASSERT_TRUE(moved && *moved);
  EXPECT_NE(a_->node_id(), forked);
  EXPECT_EQ(seq_of(a_->vector(), a_->node_id()), 1u) << "#5 re-issued as #1 of the fresh origin";
  bool branch_kept = false;
  a_->read([&](const State& st) {
    const Value* v = st.get({"branch"});
    branch_kept = v && v->is_string() && v->as_string() == "a";
  });
  EXPECT_TRUE(branch_kept) << "the call the owner acknowledged is not lost";
  ASSERT_TRUE(b_->close());
  b_.reset();
  auto log = UpdateLog::open(tmp_.sub("b"), {});
  ASSERT_TRUE(log);
  auto held = (*log)->begin_read()->evidence();
  ASSERT_EQ(held.size(), 1u);
  auto e = proof::decode_evidence(held.begin()->second);
  ASSERT_TRUE(e) << e.status().message();
  EXPECT_TRUE(proof::check_evidence(*e, "c1")) << "the stored evidence proves the fork to anyone";
}

// A relay's altered copy of #2 that comes before the genuine one in a batch
// does not cost the genuine run: the altered copy is refused, the genuine run
// stored whole (and nothing is reported refused: the copy's id is the stored
// update's).
TEST_F(VerifyIngest, AnAlteredCopyThatComesFirstDoesNotCostTheGenuineRun) {
  Range ours = a_range();
  ASSERT_EQ(ours.updates.size(), 4u);
  std::string body = ours.updates[1].body();
  body.back() ^= 1;
  auto altered = Update::parse(ours.updates[1].id(), body);
  ASSERT_TRUE(altered);
  // The genuine run delivered twice (two peers relayed it): its #2 then comes twice after the altered one.
  std::vector<Update> batch{*altered};
  batch.insert(batch.end(), ours.updates.begin(), ours.updates.end());
  batch.insert(batch.end(), ours.updates.begin(), ours.updates.end());
  auto rep = b_->ingest(batch, {*ours.head});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, 4u) << verdicts(*rep);
  EXPECT_TRUE(rep->refused.empty()) << verdicts(*rep);
  EXPECT_EQ(seq_of(b_->vector(), a_->node_id()), 4u);
  EXPECT_EQ(b_->state_hash(), a_->state_hash());
}

// Long runs of two origins in one ingest: their chains are worked out ahead,
// by the writer and the side thread, each taking the next origin left
// (Node::chain_ahead). An update altered deep in
// one run, or an altered copy that comes first, is caught as in line, and the
// other origin's run is taken.
TEST_F(VerifyIngest, LongRunsOfTwoOriginsChainedAheadAreJudgedAsInLine) {
  ASSERT_TRUE(Node::init({tmp_.sub("c"), std::string("c1"), std::nullopt, nullptr}));
  auto c = open_node(tmp_.sub("c"));
  ASSERT_TRUE(c);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(c->call("set", set_arg("c" + std::to_string(i), "v")));
  // B holds the first four of each (records, so that the long runs continue a verified chain).
  Range a4 = a_range();
  auto c4 = c->read_range(c->node_id(), 1, 100, 1 << 20);
  ASSERT_TRUE(c4 && c4->head);
  ASSERT_EQ(b_->ingest(a4.updates, {*a4.head})->accepted, 4u);
  ASSERT_EQ(b_->ingest(c4->updates, {*c4->head})->accepted, 4u);
  constexpr int kLong = 150;
  for (int i = 0; i < kLong; ++i) {
    ASSERT_TRUE(a_->call("set", set_arg("a" + std::to_string(i % 9), std::to_string(i))));
    ASSERT_TRUE(c->call("set", set_arg("c" + std::to_string(i % 7), std::to_string(i))));
  }
  auto a_long = a_->read_range(a_->node_id(), 5, 1000, 1 << 20);
  auto c_long = c->read_range(c->node_id(), 5, 1000, 1 << 20);
  ASSERT_TRUE(a_long && a_long->head && c_long && c_long->head);
  ASSERT_EQ(a_long->updates.size(), static_cast<size_t>(kLong));
  const auto altered_at = [](const Range& r, size_t i) {
    std::string body = r.updates[i].body();
    body.back() ^= 1;
    auto u = Update::parse(r.updates[i].id(), body);
    EXPECT_TRUE(u);
    return *u;
  };
  const auto both = [&](std::vector<Update> a_ups, std::vector<Update> c_ups) {
    std::vector<Update> batch = std::move(a_ups);
    batch.insert(batch.end(), c_ups.begin(), c_ups.end());
    return b_->ingest(batch, {*a_long->head, *c_long->head});
  };

  // A's run whole, under its head with one bit of the signature flipped: every
  // byte chains to the head, and the run is still refused (the signature is
  // checked beside the chain, not taken on trust).
  proof::Head forged = *a_long->head;
  forged.signature[7] ^= 1;
  auto refused = b_->ingest(a_long->updates, {forged});
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->accepted, 0u) << verdicts(*refused);
  EXPECT_TRUE(std::all_of(refused->refused.begin(), refused->refused.end(),
                          [](const Refused& x) { return x.verdict == Verdict::kBadProof; }))
      << verdicts(*refused);
  EXPECT_EQ(seq_of(b_->vector(), a_->node_id()), 4u);

  // C's #105 altered in place: C's run is refused, A's taken.
  std::vector<Update> c_bad = c_long->updates;
  c_bad[100] = altered_at(*c_long, 100);
  auto rep = both(a_long->updates, c_bad);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, static_cast<uint64_t>(kLong)) << verdicts(*rep);
  EXPECT_EQ(rep->refused.size(), static_cast<size_t>(kLong)) << verdicts(*rep);
  EXPECT_TRUE(std::all_of(rep->refused.begin(), rep->refused.end(), [&](const Refused& x) {
    return x.verdict == Verdict::kBadProof && x.id.origin == c->node_id();
  })) << verdicts(*rep);
  EXPECT_EQ(seq_of(b_->vector(), a_->node_id()), 4u + kLong);
  EXPECT_EQ(seq_of(b_->vector(), c->node_id()), 4u);

  // C's run again, its #120 altered in a copy that comes first and the genuine run after it.
  std::vector<Update> c_twice{altered_at(*c_long, 115)};
  c_twice.insert(c_twice.end(), c_long->updates.begin(), c_long->updates.end());
  rep = both({}, c_twice);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, static_cast<uint64_t>(kLong)) << verdicts(*rep);
  EXPECT_TRUE(rep->refused.empty()) << verdicts(*rep);
  EXPECT_EQ(seq_of(b_->vector(), c->node_id()), 4u + kLong);
  auto report = verify_data_dir(b_->dir(), std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins()));
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->ok()) << (report->problems.empty() ? "" : report->problems.front());
}

// A copied directory's branch whose runs from the fork seq never reached B
// (lost with a crash): its later runs carry heads its key signed, but their
// bytes do not chain from B's branch, and they cannot prove the fork. B says
// so (IngestReport::unchained, from the run's first seq), so that its engine
// asks for the origin from further down; a run from the fork seq proves it.
TEST_F(VerifyIngest, ALaterRunOfAnotherBranchIsReportedUnchainedUntilARunFromTheForkProvesIt) {
  auto twin = copy_of_a();
  ASSERT_TRUE(a_ && twin);
  const OriginId origin = a_->node_id();
  for (const char* v : {"a5", "a6"}) ASSERT_TRUE(a_->call("set", set_arg("branch", v)));
  for (const char* v : {"t5", "t6", "t7"}) ASSERT_TRUE(twin->call("set", set_arg("branch", v)));
  Range ours = a_range();
  ASSERT_EQ(b_->ingest(ours.updates, {*ours.head})->accepted, 6u);

  // The twin's #6 alone: held with other bytes at B, and not chaining from B's #5.
  auto six = twin->read_range(origin, 6, 1, 1 << 20);
  ASSERT_TRUE(six && six->head && six->head->seq == 6);
  six->updates.resize(1);
  auto rep = b_->ingest(six->updates, {*six->head});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, 0u);
  EXPECT_EQ(rep->forks, 0u) << verdicts(*rep);
  ASSERT_EQ(rep->unchained.count(origin), 1u) << verdicts(*rep);
  EXPECT_EQ(rep->unchained.at(origin), 6u);
  // The twin's #7: past what B holds, and not chaining from its #6.
  auto seven = twin->read_range(origin, 7, 1, 1 << 20);
  ASSERT_TRUE(seven && seven->head);
  rep = b_->ingest(seven->updates, {*seven->head});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->accepted, 0u);
  ASSERT_EQ(rep->unchained.count(origin), 1u) << verdicts(*rep);
  EXPECT_EQ(rep->unchained.at(origin), 7u);
  EXPECT_TRUE(b_->info().fork_evidence.empty());

  // From the fork seq, the twin's branch proves the fork.
  auto from_fork = twin->read_range(origin, 4, 10, 1 << 20);
  ASSERT_TRUE(from_fork && from_fork->head);
  rep = b_->ingest(from_fork->updates, {*from_fork->head});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->forks, 1u) << verdicts(*rep);
  EXPECT_TRUE(rep->unchained.empty());
  ASSERT_EQ(b_->info().fork_evidence.count(origin), 1u);
  EXPECT_EQ(b_->info().fork_evidence.at(origin), 5u);
}

// A node and its copy come to one seq on two branches. B holds A's branch
// and is linked only to the copy: their vectors are equal, so neither would
// pull. The chain tips the vectors carry differ, which makes each ask for
// the other's last update; it does not chain, and the walk down proves the
// fork on both.
TEST_F(VerifyIngest, TwoBranchesAtOneSeqAreFoundByTheirVectorsTipsAndProved) {
  auto twin = copy_of_a();
  ASSERT_TRUE(a_ && twin);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(a_->call("set", set_arg("branch" + std::to_string(i), "a")));
    ASSERT_TRUE(twin->call("set", set_arg("branch" + std::to_string(i), "twin")));
  }
  const OriginId origin = a_->node_id();
  Range ours = a_range();
  ASSERT_EQ(b_->ingest(ours.updates, {*ours.head})->accepted, 7u);
  ASSERT_EQ(b_->vector(), twin->vector()) << "one seq on both branches";
  ManualClock clock(1'790'000'000'000);
  testing::MemoryNetwork net;
  struct Linked {
    std::unique_ptr<testing::ForwardingStore> store;  // stores before the stepped loop goes on
    std::unique_ptr<testing::MemoryTransport> transport;
    std::unique_ptr<PeerService> service;
  };
  std::vector<Linked> linked;
  const std::vector<std::tuple<Node*, std::string, std::string>> sides{{b_.get(), "tcp://b:7000", "tcp://twin:7000"},
                                                                       {twin.get(), "tcp://twin:7000", "tcp://b:7000"}};
  for (const auto& [node, endpoint, peer] : sides) {
    SyncOptions so;
    so.endpoint = endpoint;
    so.anti_entropy_ms = 100;
    so.peers = {peer};
    Linked l;
    l.store = std::make_unique<testing::ForwardingStore>(*node);
    l.transport = std::make_unique<testing::MemoryTransport>(net, endpoint);
    l.service = std::make_unique<PeerService>(*l.store, *l.transport, clock, so, [](int, const std::string&) {});
    PeerService* service = l.service.get();
    node->set_commit_listener([service](const std::vector<Update>& u, const std::vector<proof::Head>& h) { service->on_committed(u, h); });
    linked.push_back(std::move(l));
  }
  for (auto& l : linked) l.service->start();
  const auto settled = [&] {
    return b_->info().fork_evidence.count(origin) && twin->info().fork_evidence.count(origin) &&
           twin->vector() == b_->vector() && twin->state_hash() == b_->state_hash();
  };
  for (int t = 0; t < 5000 && !settled(); ++t) {
    clock.advance(1);
    for (auto& l : linked) l.service->run_once(0);
  }
  for (Node* n : {b_.get(), twin.get()}) n->set_commit_listener(nullptr);
  linked.clear();
  ASSERT_EQ(b_->info().fork_evidence.count(origin), 1u) << "the fork is proved from the vectors' tips";
  EXPECT_EQ(b_->info().fork_evidence.at(origin), 5u) << "the branches part at #5";
  ASSERT_EQ(twin->info().fork_evidence.count(origin), 1u);
  EXPECT_NE(twin->node_id(), origin) << "the owner writes on under a fresh origin";
  EXPECT_EQ(twin->state_hash(), b_->state_hash()) << "one state once the fork is known";
}

}  // namespace
}  // namespace replog

// Ingest and the local call path (DESIGN.md §2, §3): what a node refuses,
// what it accepts, and that a refusal stores nothing.
//
//   - ingest checks form only: framing, (origin, seq, hlc) order, clock skew;
//   - content (an argument that does not decode, an unknown method) is never a
//     reason to refuse at ingest: replay decides it;
//   - forks are reported and quarantine their origin;
//   - local calls are validated first and refused with a message naming the path;
//   - a corrupted stored body is reported by verify and never crashes a reader;
//   - the directory lock and the "own origin seen elsewhere" write block.
#include <gtest/gtest.h>
#include <lmdb.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "node/core/clock.h"
#include "node/core/hlc.h"
#include "node/engine/node.h"
#include "node/api/verify.h"
#include "protocol/json_codec.h"
#include "protocol/msgpack_codec.h"
#include "protocol/update.h"
#include "storage/update_log.h"

namespace replog {
namespace {

constexpr int64_t kT0 = 1'760'000'000'000;  // the ManualClock's start, ms since the epoch
constexpr OriginId kOriginA = 0x0a0a0a0a0a0a0a0aULL;
constexpr OriginId kOriginB = 0x0b0b0b0b0b0b0b0bULL;

using testing::TempDir;

Value json(const std::string& text) {
  auto v = parse_typed_json(text);
  EXPECT_TRUE(v) << v.status().message() << " in " << text;
  return v ? std::move(v).value() : Value();
}

uint64_t at(int64_t millis, uint16_t logical = 0) { return hlc::make(millis, logical); }

EncodedUpdate make_update(OriginId origin, uint64_t seq, uint64_t hlc, const std::string& method, const Value& arg) {
  return EncodedUpdate{UpdateId{hlc, origin}, encode_body(seq, method, encode_msgpack(arg))};
}

EncodedUpdate set_update(OriginId origin, uint64_t seq, uint64_t hlc, const std::string& path, int64_t value) {
  return make_update(origin, seq, hlc, "set", Value(Map{{"path", Value(path)}, {"value", Value(value)}}));
}

std::shared_ptr<const MethodRegistry> builtins() {
  return std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins());
}

const char* kTaskSchema = R"({
  "enums": {"Color": ["Red", "Green", "Blue"]},
  "records": {
    "Task": {
      "fields": {"title": "string", "due": "time", "color": "Color"},
      "required": ["title"],
      "unique": ["title"]
    }
  }
})";

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InitOptions init;
    init.dir = dir_.path();
    init.clock = &clock_;
    ASSERT_TRUE(Node::init(init).is_ok());
    Reopen();
  }

  NodeOptions Options() const {
    NodeOptions o;
    o.dir = dir_.path();
    o.clock = &clock_;
    o.undo_window = undo_window_;
    return o;
  }

  void Reopen() {
    if (node_) {
      ASSERT_TRUE(node_->close().is_ok());
      node_.reset();
    }
    auto n = Node::open(Options());
    ASSERT_TRUE(n) << n.status().message();
    node_ = std::move(n).value();
  }

  IngestReport Ingest(std::vector<EncodedUpdate> updates) {
    auto r = node_->ingest(std::move(updates));
    EXPECT_TRUE(r) << r.status().message();
    return r ? std::move(r).value() : IngestReport{};
  }

  // What must not change when something is refused.
  struct Snapshot {
    std::string hash;
    uint64_t updates;
    VersionVector vector;
  };
  Snapshot Snap() const {
    NodeInfo info = node_->info();
    return Snapshot{node_->state_hash(), info.updates, info.vector};
  }
  void ExpectUnchanged(const Snapshot& before, const std::string& what) {
    Snapshot after = Snap();
    EXPECT_EQ(after.hash, before.hash) << what << ": state changed";
    EXPECT_EQ(after.updates, before.updates) << what << ": something was stored";
    EXPECT_EQ(after.vector.size(), before.vector.size()) << what << ": the vector changed";
    for (const auto& [origin, e] : before.vector) {
      auto it = after.vector.find(origin);
      ASSERT_NE(it, after.vector.end()) << what;
      EXPECT_EQ(it->second.seq, e.seq) << what << ": origin " << hex16(origin);
      EXPECT_EQ(it->second.last_hlc, e.last_hlc) << what << ": origin " << hex16(origin);
    }
  }

  void ExpectVerifyOk() {
    auto report = verify_data_dir(dir_.path(), builtins());
    ASSERT_TRUE(report) << report.status().message();
    for (const auto& p : report->problems) ADD_FAILURE() << "verify: " << p;
    EXPECT_EQ(report->scratch_hash, report->loaded_hash);
  }

  std::optional<Conflict> ConflictOf(const UpdateId& id) {
    std::optional<Conflict> out;
    node_->read([&](const State& s) {
      auto it = s.conflicts().find(id);
      if (it != s.conflicts().end()) out = it->second;
    });
    return out;
  }

  TempDir dir_;
  ManualClock clock_{kT0};
  size_t undo_window_ = 1024;
  std::unique_ptr<Node> node_;
};

// --- seq continuity -------------------------------------------------------------

TEST_F(IngestTest, SeqGapIsRefusedAndNothingStored) {
  auto before = Snap();
  IngestReport r = Ingest({set_update(kOriginA, 2, at(kT0 - 100), "a", 1)});
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_EQ(r.duplicates, 0u);
  EXPECT_EQ(r.forks, 0u);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_NE(r.refused[0].find("gap"), std::string::npos) << r.refused[0];
  ExpectUnchanged(before, "a gap");
  EXPECT_FALSE(node_->info().vector.count(kOriginA));

  // In a batch, the part before the gap commits; the rest does not.
  r = Ingest({set_update(kOriginA, 1, at(kT0 - 200), "a", 1), set_update(kOriginA, 3, at(kT0 - 100), "a", 3)});
  EXPECT_EQ(r.accepted, 1u);
  ASSERT_EQ(r.refused.size(), 1u);
  auto info = node_->info();
  EXPECT_EQ(info.vector.at(kOriginA).seq, 1u);
  EXPECT_EQ(info.updates, 1u);

  // The missing update then fills the gap and the later one is accepted.
  r = Ingest({set_update(kOriginA, 2, at(kT0 - 150), "a", 2), set_update(kOriginA, 3, at(kT0 - 100), "a", 3)});
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_TRUE(r.refused.empty());
  EXPECT_EQ(node_->info().vector.at(kOriginA).seq, 3u);
  ExpectVerifyOk();
}

TEST_F(IngestTest, ExactRepeatIsAQuietDuplicate) {
  auto u1 = set_update(kOriginA, 1, at(kT0 - 300), "a", 1);
  auto u2 = set_update(kOriginA, 2, at(kT0 - 200), "b", 2);
  IngestReport r = Ingest({u1, u2});
  ASSERT_EQ(r.accepted, 2u);
  auto before = Snap();

  r = Ingest({u1, u2, u1});
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_EQ(r.duplicates, 3u);
  EXPECT_EQ(r.forks, 0u);
  EXPECT_TRUE(r.refused.empty()) << r.refused[0];
  ExpectUnchanged(before, "an exact repeat");
  EXPECT_TRUE(node_->info().forks.empty());

  // Still a duplicate after a restart (read from disk, not from memory).
  Reopen();
  r = Ingest({u2});
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_TRUE(r.refused.empty());
  EXPECT_TRUE(node_->info().forks.empty());
}

// --- forks ------------------------------------------------------------------------

TEST_F(IngestTest, ForkIsReportedQuarantinedAndLeavesStateAlone) {
  auto a1 = set_update(kOriginA, 1, at(kT0 - 500), "a", 1);
  auto a2 = set_update(kOriginA, 2, at(kT0 - 400), "a", 2);
  ASSERT_EQ(Ingest({a1, a2}).accepted, 2u);
  auto before = Snap();

  // Same (origin, seq), same id, other bytes.
  auto a2_other = set_update(kOriginA, 2, at(kT0 - 400), "a", 99);
  ASSERT_NE(a2_other.body, a2.body);
  IngestReport r = Ingest({a2_other});
  EXPECT_EQ(r.forks, 1u);
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_EQ(r.duplicates, 0u);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_NE(r.refused[0].find("fork"), std::string::npos) << r.refused[0];
  ExpectUnchanged(before, "a fork");
  NodeInfo info = node_->info();
  ASSERT_EQ(info.forks.size(), 1u);
  EXPECT_TRUE(info.forks.count(kOriginA));
  EXPECT_FALSE(info.forks.at(kOriginA).empty());

  // Later valid updates of the quarantined origin are refused, even its old bytes.
  r = Ingest({set_update(kOriginA, 3, at(kT0 - 300), "a", 3)});
  EXPECT_EQ(r.accepted, 0u);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_NE(r.refused[0].find("quarantine"), std::string::npos) << r.refused[0];
  ExpectUnchanged(before, "an update of a quarantined origin");

  // Other origins are still accepted, and state is exactly the fold of what is held.
  auto b1 = set_update(kOriginB, 1, at(kT0 - 450), "b", 7);
  r = Ingest({b1});
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_TRUE(r.refused.empty());
  {
    MethodRegistry methods = MethodRegistry::with_builtins();
    Replayer ref(methods, 0);
    for (const auto* eu : {&a1, &b1, &a2}) {  // key order
      auto u = parse_body(eu->id, eu->body);
      ASSERT_TRUE(u);
      ref.apply(*u);
    }
    EXPECT_EQ(node_->state_hash(), ref.state().hash_hex());
  }

  // The quarantine is knowledge of this node that survives a restart.
  Reopen();
  EXPECT_TRUE(node_->info().forks.count(kOriginA));
  r = Ingest({set_update(kOriginA, 3, at(kT0 - 300), "a", 3)});
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_EQ(r.refused.size(), 1u);
  ExpectVerifyOk();
}

TEST_F(IngestTest, ForkWithAnotherIdForTheSameSeqIsReported) {
  auto a1 = set_update(kOriginA, 1, at(kT0 - 500), "a", 1);
  ASSERT_EQ(Ingest({a1}).accepted, 1u);
  auto before = Snap();
  // A copy of the data directory wrote its own seq 1 at another time.
  IngestReport r = Ingest({set_update(kOriginA, 1, at(kT0 - 450), "a", 1)});
  EXPECT_EQ(r.forks, 1u);
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_EQ(r.duplicates, 0u);
  ExpectUnchanged(before, "a fork with another id");
  EXPECT_TRUE(node_->info().forks.count(kOriginA));
}

// --- clock skew and hlc order -------------------------------------------------------

TEST_F(IngestTest, TimestampPastMaxClockSkewIsRefusedUntilTheClockCatchesUp) {
  const int64_t skew = NodeOptions{}.max_clock_skew_ms;
  ASSERT_EQ(skew, 3'600'000) << "DESIGN.md §2: the default --max-clock-skew is 1 hour";
  auto near = set_update(kOriginA, 1, at(kT0 + skew - 5'000), "a", 1);
  auto far = set_update(kOriginA, 2, at(kT0 + skew + 10'000), "a", 2);

  IngestReport r = Ingest({near});
  EXPECT_EQ(r.accepted, 1u) << "within the limit";
  auto before = Snap();
  r = Ingest({far});
  EXPECT_EQ(r.accepted, 0u);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_NE(r.refused[0].find("ahead"), std::string::npos) << r.refused[0];
  ExpectUnchanged(before, "a timestamp past the skew limit");

  clock_.advance(5'000);  // not enough yet
  r = Ingest({far});
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_EQ(r.refused.size(), 1u);

  clock_.advance(6'000);  // now within the limit: the refusal was temporary
  r = Ingest({far});
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_TRUE(r.refused.empty());
  EXPECT_EQ(node_->info().vector.at(kOriginA).seq, 2u);

  // The node's own clock moved past the received timestamp (HLC observe).
  auto id = node_->call("set", Value(Map{{"path", Value("own")}, {"value", Value(1)}}));
  ASSERT_TRUE(id) << id.status().message();
  EXPECT_GT(id->hlc, far.id.hlc);
  ExpectVerifyOk();
}

TEST_F(IngestTest, HlcNotRisingWithSeqIsRefused) {
  ASSERT_EQ(Ingest({set_update(kOriginA, 1, at(kT0 - 500, 3), "a", 1)}).accepted, 1u);
  auto before = Snap();
  for (uint64_t hlc : {at(kT0 - 500, 3), at(kT0 - 500, 2), at(kT0 - 600)}) {
    IngestReport r = Ingest({set_update(kOriginA, 2, hlc, "a", 2)});
    EXPECT_EQ(r.accepted, 0u) << hlc::to_string(hlc);
    ASSERT_EQ(r.refused.size(), 1u) << hlc::to_string(hlc);
    EXPECT_EQ(r.forks, 0u);
    ExpectUnchanged(before, "hlc " + hlc::to_string(hlc) + " not above seq 1's");
  }
  IngestReport r = Ingest({set_update(kOriginA, 2, at(kT0 - 500, 4), "a", 2)});
  EXPECT_EQ(r.accepted, 1u);
}

TEST_F(IngestTest, MalformedBodyIsRefused) {
  const std::string arg = encode_msgpack(Value(Map{{"path", Value("a")}, {"value", Value(1)}}));
  std::string good = encode_body(1, "set", arg);
  std::string str_arg = good;  // the arg as str (0xc4 bin8 -> 0xd9 str8)
  size_t bin_at = good.size() - arg.size() - 2;
  ASSERT_EQ(static_cast<uint8_t>(good[bin_at]), 0xc4);
  str_arg[bin_at] = static_cast<char>(0xd9);

  auto two = [] {  // [1, "set"]
    std::string s;
    s += static_cast<char>(0x92);
    s += static_cast<char>(0x01);
    s += static_cast<char>(0xa3);
    s += "set";
    return s;
  }();
  struct Case {
    std::string name;
    std::string body;
  };
  std::vector<Case> cases = {
      {"empty", ""},
      {"not msgpack", std::string("\xc1\xc1\xc1", 3)},
      {"a map", encode_msgpack(Value(Map{{"seq", Value(1)}}))},
      {"two elements", two},
      {"seq 0", encode_body(0, "set", arg)},
      {"empty method", encode_body(1, "", arg)},
      {"arg not bin", str_arg},
      {"trailing bytes", good + std::string(1, '\0')},
      {"truncated", good.substr(0, good.size() - 1)},
  };
  auto before = Snap();
  uint64_t t = at(kT0 - 1000);
  for (const auto& c : cases) {
    IngestReport r = Ingest({EncodedUpdate{UpdateId{t, kOriginA}, c.body}});
    EXPECT_EQ(r.accepted, 0u) << c.name;
    EXPECT_EQ(r.refused.size(), 1u) << c.name;
    EXPECT_EQ(r.forks, 0u) << c.name;
    ExpectUnchanged(before, c.name);
  }
  // None of them counted as seq 1 of the origin.
  IngestReport r = Ingest({EncodedUpdate{UpdateId{t, kOriginA}, good}});
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_TRUE(node_->info().forks.empty());
}

// --- content is decided in replay, never at ingest ----------------------------------------

TEST_F(IngestTest, UndecodableArgumentIsAcceptedAndBecomesABadArgumentConflict) {
  EncodedUpdate bad{UpdateId{at(kT0 - 100), kOriginA}, encode_body(1, "set", std::string("\xc1\x00garbage", 9))};
  IngestReport r = Ingest({bad});
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_TRUE(r.refused.empty()) << r.refused[0];
  auto c = ConflictOf(bad.id);
  ASSERT_TRUE(c.has_value()) << "the update must be recorded as a conflict";
  EXPECT_EQ(c->kind, ConflictKind::kBadArgument);
  EXPECT_EQ(c->skipped, bad.id);

  // A later update of the same origin is accepted (the origin is not poisoned).
  r = Ingest({set_update(kOriginA, 2, at(kT0 - 50), "a", 1)});
  EXPECT_EQ(r.accepted, 1u);

  Reopen();  // survives a checkpoint and a reload
  c = ConflictOf(bad.id);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->kind, ConflictKind::kBadArgument);

  auto report = verify_data_dir(dir_.path(), builtins());
  ASSERT_TRUE(report) << report.status().message();
  EXPECT_TRUE(report->ok()) << report->problems[0];
  EXPECT_EQ(report->undecodable_args, 1u);
}

TEST_F(IngestTest, UnknownMethodIsAcceptedAndCountedInState) {
  EncodedUpdate u = make_update(kOriginA, 1, at(kT0 - 100), "frobnicate_v2", Value(Map{{"x", Value(1)}}));
  IngestReport r = Ingest({u});
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_TRUE(r.refused.empty()) << r.refused[0];
  uint64_t unknown = 0;
  size_t conflicts = 0;
  node_->read([&](const State& s) {
    unknown = s.unknown_method_updates();
    conflicts = s.conflicts().size();
  });
  EXPECT_EQ(unknown, 1u);
  EXPECT_EQ(conflicts, 0u) << "an unknown method is not a conflict";
  EXPECT_EQ(node_->info().updates, 1u) << "kept like any other update";

  // Kept across a restart, and still counted.
  r = Ingest({make_update(kOriginA, 2, at(kT0 - 50), "frobnicate_v2", Value(1))});
  EXPECT_EQ(r.accepted, 1u);
  Reopen();
  node_->read([&](const State& s) { unknown = s.unknown_method_updates(); });
  EXPECT_EQ(unknown, 2u);
  ExpectVerifyOk();
}

// --- local calls are checked first --------------------------------------------------------

class CallRefusalTest : public IngestTest, public ::testing::WithParamInterface<size_t> {
 protected:
  void SetUp() override {
    undo_window_ = GetParam();
    IngestTest::SetUp();
  }
};

TEST_P(CallRefusalTest, InvalidCallsAreRefusedWithThePathAndNothingIsStored) {
  auto s = node_->call("schema", Value(Map{{"document", json(kTaskSchema)}}));
  ASSERT_TRUE(s) << s.status().message();
  auto t1 = node_->call("create", json(R"({"type": "Task", "id": "t1", "fields": {"title": "write tests"}})"));
  ASSERT_TRUE(t1) << t1.status().message();

  struct Case {
    std::string name, method, arg;
    std::vector<std::string> message_has;
  };
  std::vector<Case> cases = {
      {"unknown method", "frobnicate", R"({"path": "a"})", {"frobnicate"}},
      {"schema: wrong type", "create",
       R"({"type": "Task", "id": "t2", "fields": {"title": "x", "due": "tomorrow"}})", {"Task.t2.due", "time"}},
      {"schema: missing required field", "create", R"({"type": "Task", "id": "t3", "fields": {}})",
       {"Task.t3", "title"}},
      {"schema: undeclared field", "update", R"({"type": "Task", "id": "t1", "fields": {"owner": "me"}})",
       {"Task.t1.owner"}},
      {"unique", "create", R"({"type": "Task", "id": "t4", "fields": {"title": "write tests"}})",
       {"Task.t4.title"}},
      {"unknown enum member", "update",
       R"({"type": "Task", "id": "t1", "fields": {"color": {"$enum": "Color.Purple"}}})",
       {"Task.t1.color", "Purple"}},
      {"unknown record type", "create", R"({"type": "Ghost", "id": "g1"})", {"Ghost"}},
      {"update of a missing record", "update", R"({"type": "Task", "id": "nope", "fields": {"title": "y"}})",
       {"nope"}},
      {"inc overflow", "inc", R"({"path": "counter", "by": 9223372036854775807})", {}},
  };
  // "inc overflow" needs a counter to overflow.
  ASSERT_TRUE(node_->call("inc", json(R"({"path": "counter", "by": 1})")));

  for (const auto& c : cases) {
    auto before = Snap();
    auto r = node_->call(c.method, json(c.arg));
    ASSERT_FALSE(r) << c.name << ": accepted";
    EXPECT_NE(r.status().code(), Status::Code::kOk);
    for (const auto& part : c.message_has)
      EXPECT_NE(r.status().message().find(part), std::string::npos)
          << c.name << ": message \"" << r.status().message() << "\" does not name " << part;
    ExpectUnchanged(before, c.name);
    size_t conflicts = 1;
    node_->read([&](const State& st) { conflicts = st.conflicts().size(); });
    EXPECT_EQ(conflicts, 0u) << c.name << ": a refused call must leave no conflict in state";
  }

  // The node still works, and a restart shows that nothing refused was stored.
  auto ok = node_->call("update", json(R"({"type": "Task", "id": "t1", "fields": {"color": {"$enum": "Color.Blue"}}})"));
  ASSERT_TRUE(ok) << ok.status().message();
  std::string hash = node_->state_hash();
  uint64_t updates = node_->info().updates;
  EXPECT_EQ(updates, 4u) << "schema, create, inc, update";
  Reopen();
  EXPECT_EQ(node_->state_hash(), hash);
  EXPECT_EQ(node_->info().vector.at(node_->node_id()).seq, 4u) << "no seq was used by a refused call";
  ExpectVerifyOk();
}

INSTANTIATE_TEST_SUITE_P(UndoWindows, CallRefusalTest, ::testing::Values(size_t{0}, size_t{1}, size_t{1024}),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return "UndoWindow" + std::to_string(info.param);
                         });

// --- corruption, locking, identity -----------------------------------------------------------

TEST_F(IngestTest, CorruptedStoredBodyIsReportedByVerifyAndDoesNotCrashAReader) {
  std::vector<UpdateId> ids;
  for (int i = 0; i < 6; ++i) {
    auto id = node_->call("set", Value(Map{{"path", Value("k" + std::to_string(i))}, {"value", Value(i)}}));
    ASSERT_TRUE(id) << id.status().message();
    ids.push_back(*id);
  }
  ASSERT_TRUE(node_->close().is_ok());
  node_.reset();
  ExpectVerifyOk();

  // Overwrite one stored body with garbage through a raw LMDB write transaction.
  const UpdateId victim = ids[2];
  {
    auto log = UpdateLog::open(dir_.path(), {});
    ASSERT_TRUE(log) << log.status().message();
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin((*log)->env(), nullptr, 0, &txn), 0);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, "log", 0, &dbi), 0);
    auto key = victim.key();
    MDB_val k{key.size(), key.data()};
    std::string garbage = "\xc1 this is not an update \xff";
    MDB_val v{garbage.size(), garbage.data()};
    ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }

  auto report = verify_data_dir(dir_.path(), builtins());
  ASSERT_TRUE(report) << report.status().message();
  EXPECT_FALSE(report->ok()) << "verify must report the corrupted body";
  bool names_it = false;
  for (const auto& p : report->problems) names_it |= p.find(victim.to_string()) != std::string::npos;
  EXPECT_TRUE(names_it) << "a problem should name update " << victim.to_string();

  NodeOptions o = Options();
  auto ro = Node::open_read_only(o);  // may refuse, must not crash
  if (ro) {
    EXPECT_EQ((*ro)->state_hash().size(), 64u);
    (void)(*ro)->info();
  } else {
    EXPECT_FALSE(ro.status().message().empty());
  }
}

TEST_F(IngestTest, SecondWriterOnALockedDirectoryIsBusy) {
  auto second = Node::open(Options());
  ASSERT_FALSE(second) << "two writers on one data directory";
  EXPECT_EQ(second.status().code(), Status::Code::kBusy) << second.status().message();
  // The first writer is unaffected.
  auto id = node_->call("set", Value(Map{{"path", Value("a")}, {"value", Value(1)}}));
  EXPECT_TRUE(id) << id.status().message();
  // Once it closes, the directory can be opened again.
  ASSERT_TRUE(node_->close().is_ok());
  node_.reset();
  auto third = Node::open(Options());
  EXPECT_TRUE(third) << third.status().message();
}

TEST_F(IngestTest, OwnOriginWithAHigherSeqFromElsewhereBlocksWrites) {
  const OriginId self = node_->node_id();
  UpdateId last;
  for (int i = 0; i < 2; ++i) {
    auto id = node_->call("inc", json(R"({"path": "n"})"));
    ASSERT_TRUE(id) << id.status().message();
    last = *id;
  }
  EXPECT_FALSE(node_->info().writes_blocked);

  // A copy of this directory wrote seq 3 somewhere else, and it comes back.
  EncodedUpdate theirs = make_update(self, 3, last.hlc + 5, "inc", json(R"({"path": "n"})"));
  IngestReport r = Ingest({theirs});
  EXPECT_EQ(r.accepted, 1u) << (r.refused.empty() ? "" : r.refused[0]);

  NodeInfo info = node_->info();
  EXPECT_TRUE(info.writes_blocked);
  EXPECT_FALSE(info.writes_blocked_reason.empty());
  auto before = Snap();
  auto call = node_->call("inc", json(R"({"path": "n"})"));
  ASSERT_FALSE(call) << "a node that learns peers hold more of its own origin must refuse to write";
  EXPECT_EQ(call.status().code(), Status::Code::kRefused) << call.status().message();
  ExpectUnchanged(before, "a call while writes are blocked");

  Reopen();  // the block is persistent
  EXPECT_TRUE(node_->info().writes_blocked);
  call = node_->call("inc", json(R"({"path": "n"})"));
  EXPECT_FALSE(call);
  ExpectVerifyOk();
}

}  // namespace
}  // namespace replog

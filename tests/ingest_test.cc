// Ingest and the local call path (docs/ARCHITECTURE.md, PROTOCOL.md): what a node refuses,
// what it accepts, and that a refusal stores nothing.
//
//   - malformed bodies are refused where bytes enter (Update::parse), so they
//     never reach ingest; ingest checks (origin, seq, hlc) order, clock skew
//     and reserved origin ids;
//   - content (an argument that does not decode, an unknown method) is never a
//     reason to refuse at ingest: replay decides it;
//   - forks are reported and quarantine their origin;
//   - local calls are validated first and refused with a message naming the path;
//   - a corrupted stored body is reported by verify and never crashes a reader;
//   - the directory lock, and the move to a fresh origin when this node's own
//     origin is written elsewhere or forks.
#include <gtest/gtest.h>
#include <lmdb.h>
#include <stdlib.h>

#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "node/core/clock.h"
#include "node/core/hlc.h"
#include "node/engine/node.h"
#include "node/api/verify.h"
#include "node/sync/sync_store.h"
#include "protocol/bytes.h"
#include "protocol/json_codec.h"
#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"
#include "protocol/update.h"
#include "storage/update_log.h"

namespace replog {
namespace {

constexpr int64_t kT0 = 1'760'000'000'000;  // the ManualClock's start, ms since the epoch
constexpr OriginId kOriginA = 0x0a0a0a0a0a0a0a0aULL;
constexpr OriginId kOriginB = 0x0b0b0b0b0b0b0b0bULL;

using testing::TempDir;
using engine::InitOptions;
using engine::Node;
using engine::NodeInfo;
using engine::NodeOptions;

Value json(const std::string& text) {
  auto v = parse_typed_json(text);
  EXPECT_TRUE(v) << v.status().message() << " in " << text;
  return v ? std::move(v).value() : Value();
}

uint64_t at(int64_t millis, uint16_t logical = 0) { return hlc::make(millis, logical); }

Update make_update(OriginId origin, uint64_t seq, uint64_t hlc, const std::string& method, const Value& arg) {
  return Update::make(UpdateId{hlc, origin}, seq, method, encode_msgpack(arg));
}

Update set_update(OriginId origin, uint64_t seq, uint64_t hlc, const std::string& path, int64_t value) {
  return make_update(origin, seq, hlc, "set", Value(Map{{"path", Value(path)}, {"value", Value(value)}}));
}

// One line per refusal, for failure messages.
std::string describe(const std::vector<Refused>& refused) {
  std::string out;
  for (const auto& r : refused) out += std::string("\n  ") + verdict_name(r.verdict) + ": " + r.detail;
  return out;
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
    o.verify_origins = false;  // hand-made updates: form and replay, not proof
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

  IngestReport Ingest(std::vector<Update> updates) {
    auto r = node_->ingest(std::move(updates));
    EXPECT_TRUE(r) << r.status().message();
    return r ? std::move(r).value() : IngestReport{};
  }

  // What must not change when something is refused.
  struct Snapshot {
    std::string hash;
    uint64_t updates;
    VersionVector vector;
    std::map<OriginId, std::string> last_ids;  // per origin, the id of its highest held seq (its last hlc)
  };
  Snapshot Snap() const {
    NodeInfo info = node_->info();
    Snapshot snap{node_->state_hash(), info.updates, info.vector, {}};
    for (const auto& [origin, seq] : info.vector) {
      auto last = node_->read_range(origin, seq, 1, std::numeric_limits<size_t>::max());
      EXPECT_TRUE(last) << last.status().message();
      if (!last || last->updates.size() != 1) {
        ADD_FAILURE() << "origin " << hex16(origin) << ": seq " << seq << " is in the vector but not readable";
        continue;
      }
      EXPECT_EQ(last->updates[0].seq(), seq);
      snap.last_ids[origin] = last->updates[0].id().to_string();
    }
    return snap;
  }
  void ExpectUnchanged(const Snapshot& before, const std::string& what) {
    Snapshot after = Snap();
    EXPECT_EQ(after.hash, before.hash) << what << ": state changed";
    EXPECT_EQ(after.updates, before.updates) << what << ": something was stored";
    EXPECT_EQ(after.vector.size(), before.vector.size()) << what << ": the vector changed";
    for (const auto& [origin, seq] : before.vector) {
      auto it = after.vector.find(origin);
      ASSERT_NE(it, after.vector.end()) << what;
      EXPECT_EQ(it->second, seq) << what << ": origin " << hex16(origin);
      EXPECT_EQ(after.last_ids[origin], before.last_ids.at(origin))
          << what << ": origin " << hex16(origin) << " (its last hlc)";
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
  EXPECT_EQ(r.refused[0].verdict, Verdict::kGap) << describe(r.refused);
  EXPECT_EQ(r.refused[0].seq, 2u);
  EXPECT_EQ(r.refused[0].id.origin, kOriginA);
  ExpectUnchanged(before, "a gap");
  EXPECT_FALSE(node_->info().vector.count(kOriginA));

  // In a batch, the part before the gap commits; the rest does not.
  r = Ingest({set_update(kOriginA, 1, at(kT0 - 200), "a", 1), set_update(kOriginA, 3, at(kT0 - 100), "a", 3)});
  EXPECT_EQ(r.accepted, 1u);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_EQ(r.refused[0].verdict, Verdict::kGap) << describe(r.refused);
  EXPECT_EQ(r.refused[0].seq, 3u);
  auto info = node_->info();
  EXPECT_EQ(info.vector.at(kOriginA), 1u);
  EXPECT_EQ(info.updates, 1u);

  // The missing update then fills the gap and the later one is accepted.
  r = Ingest({set_update(kOriginA, 2, at(kT0 - 150), "a", 2), set_update(kOriginA, 3, at(kT0 - 100), "a", 3)});
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_TRUE(r.refused.empty()) << describe(r.refused);
  EXPECT_EQ(node_->info().vector.at(kOriginA), 3u);
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
  EXPECT_TRUE(r.refused.empty()) << describe(r.refused);
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
  ASSERT_EQ(a2_other.id(), a2.id());
  ASSERT_NE(a2_other.body(), a2.body());
  IngestReport r = Ingest({a2_other});
  EXPECT_EQ(r.forks, 1u);
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_EQ(r.duplicates, 0u);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_EQ(r.refused[0].verdict, Verdict::kFork) << describe(r.refused);
  EXPECT_EQ(r.refused[0].seq, 2u);
  EXPECT_FALSE(r.origin_changed) << "another origin's fork";
  ExpectUnchanged(before, "a fork");
  NodeInfo info = node_->info();
  ASSERT_EQ(info.forks.size(), 1u);
  EXPECT_TRUE(info.forks.count(kOriginA));
  EXPECT_FALSE(info.forks.at(kOriginA).empty());

  // Later valid updates of the quarantined origin are refused, even its old bytes.
  r = Ingest({set_update(kOriginA, 3, at(kT0 - 300), "a", 3)});
  EXPECT_EQ(r.accepted, 0u);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_EQ(r.refused[0].verdict, Verdict::kQuarantined) << describe(r.refused);
  ExpectUnchanged(before, "an update of a quarantined origin");
  r = Ingest({a1, a2});
  EXPECT_EQ(r.accepted + r.duplicates + r.forks, 0u) << "its old bytes too";
  ASSERT_EQ(r.refused.size(), 2u);
  for (const auto& ref : r.refused) EXPECT_EQ(ref.verdict, Verdict::kQuarantined) << describe(r.refused);
  ExpectUnchanged(before, "old bytes of a quarantined origin");

  // Other origins are still accepted, and state is exactly the fold of what is held.
  auto b1 = set_update(kOriginB, 1, at(kT0 - 450), "b", 7);
  r = Ingest({b1});
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_TRUE(r.refused.empty()) << describe(r.refused);
  {
    MethodRegistry methods = MethodRegistry::with_builtins();
    Replayer ref(methods, 0);
    for (const auto* u : {&a1, &b1, &a2}) ref.apply(u->view());  // key order
    EXPECT_EQ(node_->state_hash(), ref.state().hash_hex());
  }

  // The quarantine is knowledge of this node that survives a restart.
  Reopen();
  EXPECT_TRUE(node_->info().forks.count(kOriginA));
  r = Ingest({set_update(kOriginA, 3, at(kT0 - 300), "a", 3)});
  EXPECT_EQ(r.accepted, 0u);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_EQ(r.refused[0].verdict, Verdict::kQuarantined) << describe(r.refused);
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
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_EQ(r.refused[0].verdict, Verdict::kFork) << describe(r.refused);
  ExpectUnchanged(before, "a fork with another id");
  EXPECT_TRUE(node_->info().forks.count(kOriginA));
}

// --- clock skew and hlc order -------------------------------------------------------

TEST_F(IngestTest, TimestampPastMaxClockSkewIsRefusedUntilTheClockCatchesUp) {
  const int64_t skew = NodeOptions{}.max_clock_skew_ms;
  ASSERT_EQ(skew, 3'600'000) << "the default --max-clock-skew is 1 hour";
  auto near = set_update(kOriginA, 1, at(kT0 + skew - 5'000), "a", 1);
  auto far = set_update(kOriginA, 2, at(kT0 + skew + 10'000), "a", 2);

  IngestReport r = Ingest({near});
  EXPECT_EQ(r.accepted, 1u) << "within the limit";
  auto before = Snap();
  r = Ingest({far});
  EXPECT_EQ(r.accepted, 0u);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_EQ(r.refused[0].verdict, Verdict::kTooFarAhead) << describe(r.refused);
  ExpectUnchanged(before, "a timestamp past the skew limit");

  clock_.advance(5'000);  // not enough yet
  r = Ingest({far});
  EXPECT_EQ(r.accepted, 0u);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_EQ(r.refused[0].verdict, Verdict::kTooFarAhead) << describe(r.refused);
  ExpectUnchanged(before, "a timestamp still past the skew limit");

  clock_.advance(6'000);  // now within the limit: the refusal was temporary
  r = Ingest({far});
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_TRUE(r.refused.empty()) << describe(r.refused);
  EXPECT_EQ(node_->info().vector.at(kOriginA), 2u);

  // The node's own clock moved past the received timestamp (HLC observe).
  auto id = node_->call("set", Value(Map{{"path", Value("own")}, {"value", Value(1)}}));
  ASSERT_TRUE(id) << id.status().message();
  EXPECT_GT(id->hlc, far.id().hlc);
  ExpectVerifyOk();
}

TEST_F(IngestTest, HlcNotRisingWithSeqIsRefused) {
  ASSERT_EQ(Ingest({set_update(kOriginA, 1, at(kT0 - 500, 3), "a", 1)}).accepted, 1u);
  auto before = Snap();
  for (uint64_t hlc : {at(kT0 - 500, 3), at(kT0 - 500, 2), at(kT0 - 600)}) {
    IngestReport r = Ingest({set_update(kOriginA, 2, hlc, "a", 2)});
    EXPECT_EQ(r.accepted, 0u) << hlc::to_string(hlc);
    ASSERT_EQ(r.refused.size(), 1u) << hlc::to_string(hlc);
    EXPECT_EQ(r.refused[0].verdict, Verdict::kHlcNotRising) << hlc::to_string(hlc) << describe(r.refused);
    EXPECT_EQ(r.forks, 0u);
    ExpectUnchanged(before, "hlc " + hlc::to_string(hlc) + " not above seq 1's");
  }
  IngestReport r = Ingest({set_update(kOriginA, 2, at(kT0 - 500, 4), "a", 2)});
  EXPECT_EQ(r.accepted, 1u);
}

TEST_F(IngestTest, MalformedBodyIsRefusedWhereBytesEnter) {
  // Malformed bodies cannot reach ingest: Update::parse, which the wire
  // decoder and import use, refuses them, so nothing is stored.
  const std::string arg = encode_msgpack(Value(Map{{"path", Value("a")}, {"value", Value(1)}}));
  const uint64_t t = at(kT0 - 1000);
  const UpdateId id{t, kOriginA};
  const std::string good = Update::make(id, 1, "set", arg).body();
  // [1, "set", bin8(arg)]: fixarray 3, fixint 1, fixstr 3 "set", then the arg.
  const size_t bin_at = 6;
  ASSERT_EQ(good.substr(0, bin_at), std::string("\x93\x01\xa3set", bin_at));
  ASSERT_EQ(static_cast<uint8_t>(good[bin_at]), 0xc4);
  ASSERT_EQ(good.size(), bin_at + 2 + arg.size());
  const std::string bin_arg = good.substr(bin_at);

  std::string str_arg = good;  // the arg as str (0xc4 bin8 -> 0xd9 str8)
  str_arg[bin_at] = static_cast<char>(0xd9);
  std::string seq0 = good;  // fixint 0 for the seq
  seq0[1] = 0x00;
  const std::string long_method(256, 'm');

  struct Case {
    std::string name;
    std::string body;
    std::string message_has;
  };
  std::vector<Case> cases = {
      {"empty", "", "body"},
      {"not msgpack", std::string("\xc1\xc1\xc1", 3), "body"},
      {"a map", encode_msgpack(Value(Map{{"seq", Value(1)}})), "[seq, method, arg]"},
      {"two elements", std::string("\x92\x01\xa3set", 6), "[seq, method, arg]"},
      {"four elements", std::string("\x94") + good.substr(1) + std::string("\xc0", 1), "[seq, method, arg]"},
      {"seq 0", seq0, "seq"},
      {"seq not an integer", std::string("\x93\xa1x\xa3set", 7) + bin_arg, "seq"},
      {"empty method", std::string("\x93\x01\xa0", 3) + bin_arg, "method"},
      {"method of 256 bytes", std::string("\x93\x01\xda\x01\x00", 5) + long_method + bin_arg, "method"},
      {"method not a string", std::string("\x93\x01\x07", 3) + bin_arg, "method"},
      {"arg not bin", str_arg, "arg"},
      {"trailing bytes", good + std::string(1, '\0'), "trailing"},
      {"truncated", good.substr(0, good.size() - 1), "truncated"},
  };
  auto before = Snap();
  for (const auto& c : cases) {
    auto u = Update::parse(id, c.body);
    ASSERT_FALSE(u) << c.name << ": Update::parse accepted a malformed body";
    EXPECT_EQ(u.status().code(), Status::Code::kCorruption) << c.name << ": " << u.status().message();
    const std::string m = u.status().message();
    EXPECT_NE(m.find(id.to_string()), std::string::npos) << c.name << ": \"" << m << "\" does not name the update";
    EXPECT_NE(m.find(c.message_has), std::string::npos)
        << c.name << ": \"" << m << "\" does not say what is wrong (" << c.message_has << ")";
    // The non-owning form used for stored bodies refuses it alike.
    EXPECT_FALSE(parse_update(id, c.body)) << c.name;
    ExpectUnchanged(before, c.name);
  }
  // The control for the method length: 255 bytes is within the rule (1..255).
  {
    auto m255 = Update::parse(id, std::string("\x93\x01\xd9\xff", 4) + std::string(255, 'm') + bin_arg);
    ASSERT_TRUE(m255) << m255.status().message();
    EXPECT_EQ(m255->method(), std::string(255, 'm'));
  }
  // Nothing was stored: the well-formed body is still seq 1 of the origin.
  auto u = Update::parse(id, good);
  ASSERT_TRUE(u) << u.status().message();
  EXPECT_EQ(u->seq(), 1u);
  EXPECT_EQ(u->method(), "set");
  EXPECT_EQ(u->arg(), arg);
  IngestReport r = Ingest({std::move(u).value()});
  EXPECT_EQ(r.accepted, 1u) << describe(r.refused);
  EXPECT_TRUE(node_->info().forks.empty());
  EXPECT_EQ(node_->info().vector.at(kOriginA), 1u);
}

// --- the size limit: one number, the whole body ----------------------------------------

TEST_F(IngestTest, BodyOfExactlyTheLimitIsAcceptedAndOneByteMoreIsRefused) {
  ASSERT_EQ(limits::kMaxUpdateBytes, size_t{1'048'576});
  // A body [1, "set", bin(arg)] of exactly `size` bytes: the string in the
  // argument is sized so that the whole body, method included, has that size.
  auto arg_for = [](size_t size) {
    auto make = [](size_t n) { return Value(Map{{"path", Value("big")}, {"value", Value(std::string(n, 'x'))}}); };
    const size_t base = Update::make(UpdateId{1, kOriginA}, 1, "set", encode_msgpack(make(size - 100'000))).body().size();
    Value v = make(size - 100'000 + (size - base));
    EXPECT_EQ(Update::make(UpdateId{1, kOriginA}, 1, "set", encode_msgpack(v)).body().size(), size);
    return v;
  };
  const Value at_limit = arg_for(limits::kMaxUpdateBytes);
  const Value over_limit = arg_for(limits::kMaxUpdateBytes + 1);
  const UpdateId id{at(kT0 - 100), kOriginA};

  // One byte more is refused where the bytes enter, naming the limit.
  const std::string over_body = Update::make(id, 1, "set", encode_msgpack(over_limit)).body();
  ASSERT_EQ(over_body.size(), size_t{1'048'577});
  auto over = Update::parse(id, over_body);
  ASSERT_FALSE(over) << "a body of 1,048,577 bytes";
  EXPECT_NE(over.status().message().find("1048576"), std::string::npos) << over.status().message();

  // Exactly the limit parses and is accepted at ingest.
  auto exact = Update::parse(id, Update::make(id, 1, "set", encode_msgpack(at_limit)).body());
  ASSERT_TRUE(exact) << exact.status().message();
  ASSERT_EQ(exact->body().size(), size_t{1'048'576});
  IngestReport r = Ingest({*exact});
  EXPECT_EQ(r.accepted, 1u) << describe(r.refused);
  EXPECT_TRUE(r.refused.empty()) << describe(r.refused);
  EXPECT_EQ(node_->info().vector.at(kOriginA), 1u);
  auto back = node_->read_range(kOriginA, 1, 1, limits::kMaxUpdateBytes);
  ASSERT_TRUE(back) << back.status().message();
  ASSERT_EQ(back->updates.size(), 1u);
  EXPECT_EQ(back->updates[0].body(), exact->body()) << "kept exactly as its origin encoded it";
  std::optional<Value> big;
  node_->read([&](const State& s) {
    if (const Value* v = s.get({"big"})) big = *v;
  });
  ASSERT_TRUE(big.has_value()) << "the update at the limit is folded like any other";
  EXPECT_EQ(*big, at_limit.as_map().at("value"));

  // A local call whose body would be one byte over is refused and stores
  // nothing. The node's first call is its seq 1, so its body is sized as above.
  ASSERT_EQ(node_->info().vector.count(node_->node_id()), 0u);
  auto before = Snap();
  auto call = node_->call("set", over_limit);
  ASSERT_FALSE(call) << "a local call whose body is 1,048,577 bytes";
  EXPECT_NE(call.status().message().find("1048576"), std::string::npos) << call.status().message();
  ExpectUnchanged(before, "a call over the limit");
  // ... and one exactly at the limit is stored.
  call = node_->call("set", at_limit);
  ASSERT_TRUE(call) << call.status().message();
  auto mine = node_->read_range(node_->node_id(), 1, 1, limits::kMaxUpdateBytes);
  ASSERT_TRUE(mine) << mine.status().message();
  ASSERT_EQ(mine->updates.size(), 1u);
  EXPECT_EQ(mine->updates[0].body().size(), size_t{1'048'576});
  ExpectVerifyOk();
}

// --- reserved origin ids -------------------------------------------------------------------

class ReservedOriginTest : public IngestTest {
 protected:
  void ExpectRefusedAsReserved(OriginId origin) {
    ASSERT_TRUE(is_reserved_origin(origin));
    ASSERT_NE(node_->node_id(), origin) << "init never makes a reserved id";
    auto before = Snap();
    IngestReport r = Ingest({set_update(origin, 1, at(kT0 - 200), "a", 1), set_update(origin, 2, at(kT0 - 100), "a", 2)});
    EXPECT_EQ(r.accepted, 0u);
    EXPECT_EQ(r.duplicates, 0u);
    EXPECT_EQ(r.forks, 0u);
    EXPECT_FALSE(r.origin_changed);
    ASSERT_EQ(r.refused.size(), 2u) << describe(r.refused);
    for (const auto& ref : r.refused) {
      EXPECT_EQ(ref.verdict, Verdict::kReservedOrigin) << describe(r.refused);
      EXPECT_EQ(ref.id.origin, origin);
    }
    EXPECT_EQ(r.refused[0].seq, 1u);
    ExpectUnchanged(before, "an update of reserved origin " + hex16(origin));
    NodeInfo info = node_->info();
    EXPECT_FALSE(info.vector.count(origin));
    EXPECT_TRUE(info.forks.empty());
    // Other origins are unaffected, in the same batch too.
    r = Ingest({set_update(origin, 1, at(kT0 - 200), "a", 1), set_update(kOriginB, 1, at(kT0 - 150), "b", 1)});
    EXPECT_EQ(r.accepted, 1u) << describe(r.refused);
    ASSERT_EQ(r.refused.size(), 1u) << describe(r.refused);
    EXPECT_EQ(r.refused[0].verdict, Verdict::kReservedOrigin);
    EXPECT_EQ(node_->info().vector.at(kOriginB), 1u);
    EXPECT_FALSE(node_->info().vector.count(origin));
    ExpectVerifyOk();
  }
};

TEST_F(ReservedOriginTest, OriginZeroIsRefused) { ExpectRefusedAsReserved(0); }

TEST_F(ReservedOriginTest, OriginAllOnesIsRefused) { ExpectRefusedAsReserved(0xffffffffffffffffULL); }

// --- content is decided in replay, never at ingest ----------------------------------------

TEST_F(IngestTest, UndecodableArgumentIsAcceptedAndBecomesABadArgumentConflict) {
  const UpdateId bad_id{at(kT0 - 100), kOriginA};
  // Where bytes enter only the framing is checked: an argument that does not decode passes.
  auto parsed = Update::parse(bad_id, Update::make(bad_id, 1, "set", std::string("\xc1\x00garbage", 9)).body());
  ASSERT_TRUE(parsed) << "content is not judged where bytes enter: " << parsed.status().message();
  Update bad = std::move(parsed).value();
  IngestReport r = Ingest({bad});
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_TRUE(r.refused.empty()) << describe(r.refused);
  auto c = ConflictOf(bad.id());
  ASSERT_TRUE(c.has_value()) << "the update must be recorded as a conflict";
  EXPECT_EQ(c->kind, ConflictKind::kBadArgument);
  EXPECT_EQ(c->skipped, bad.id());

  // A later update of the same origin is accepted (the origin is not poisoned).
  r = Ingest({set_update(kOriginA, 2, at(kT0 - 50), "a", 1)});
  EXPECT_EQ(r.accepted, 1u) << describe(r.refused);

  Reopen();  // survives a checkpoint and a reload
  c = ConflictOf(bad.id());
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->kind, ConflictKind::kBadArgument);

  auto report = verify_data_dir(dir_.path(), builtins());
  ASSERT_TRUE(report) << report.status().message();
  EXPECT_TRUE(report->ok()) << report->problems[0];
  EXPECT_EQ(report->undecodable_args, 1u);
}

TEST_F(IngestTest, UnknownMethodIsAcceptedAndCountedInState) {
  Update u = make_update(kOriginA, 1, at(kT0 - 100), "frobnicate_v2", Value(Map{{"x", Value(1)}}));
  IngestReport r = Ingest({u});
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_TRUE(r.refused.empty()) << describe(r.refused);
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
  EXPECT_EQ(r.accepted, 1u) << describe(r.refused);
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
  EXPECT_EQ(node_->info().vector.at(node_->node_id()), 4u) << "no seq was used by a refused call";
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

// This node's value of n, folded from what it holds.
int64_t CounterN(Node& node) {
  int64_t n = -1;
  node.read([&](const State& s) {
    const Value* v = s.get({"n"});
    if (v && v->is_int()) n = v->as_int();
  });
  return n;
}

TEST_F(IngestTest, OwnOriginWithAHigherSeqFromElsewhereMovesTheNodeToAFreshOrigin) {
  const OriginId self = node_->node_id();
  UpdateId last;
  for (int i = 0; i < 2; ++i) {
    auto id = node_->call("inc", json(R"({"path": "n"})"));
    ASSERT_TRUE(id) << id.status().message();
    EXPECT_EQ(id->origin, self);
    last = *id;
  }
  EXPECT_TRUE(node_->info().former_origins.empty());

  // A copy of this directory wrote seq 3 somewhere else, and it comes back.
  Update theirs = make_update(self, 3, last.hlc + 5, "inc", json(R"({"path": "n"})"));
  IngestReport r = Ingest({theirs});
  EXPECT_EQ(r.accepted, 1u) << describe(r.refused);
  EXPECT_TRUE(r.refused.empty()) << describe(r.refused);
  EXPECT_EQ(r.forks, 0u);
  EXPECT_TRUE(r.origin_changed) << "the node must leave an origin that others write as";

  // It is kept like any update, and the node writes on as a fresh origin.
  const OriginId fresh = node_->node_id();
  EXPECT_NE(fresh, self);
  EXPECT_FALSE(is_reserved_origin(fresh));
  NodeInfo info = node_->info();
  EXPECT_EQ(info.node_id, fresh);
  EXPECT_EQ(info.vector.at(self), 3u) << "the received update of the old origin is held";
  EXPECT_EQ(info.updates, 3u);
  EXPECT_FALSE(info.vector.count(fresh)) << "nothing written as the fresh origin yet";
  EXPECT_TRUE(info.forks.empty()) << "not a fork: seq 3 was never written here";
  ASSERT_EQ(info.former_origins.size(), 1u);
  ASSERT_TRUE(info.former_origins.count(self)) << "former_origins must name the old id " << hex16(self);
  EXPECT_FALSE(info.former_origins.at(self).empty()) << "with a reason";
  EXPECT_EQ(CounterN(*node_), 3) << "the received update is folded into state";
  {
    auto held = node_->read_range(self, 3, 1, limits::kMaxUpdateBytes);
    ASSERT_TRUE(held) << held.status().message();
    ASSERT_EQ(held->updates.size(), 1u);
    EXPECT_EQ(held->updates[0].id(), theirs.id());
    EXPECT_EQ(held->updates[0].body(), theirs.body());
  }

  // Local writes continue: the next call is seq 1 of the fresh origin.
  auto call = node_->call("inc", json(R"({"path": "n"})"));
  ASSERT_TRUE(call) << "a node whose origin was written elsewhere must keep writing: " << call.status().message();
  EXPECT_EQ(call->origin, fresh);
  EXPECT_GT(call->hlc, theirs.id().hlc);
  info = node_->info();
  EXPECT_EQ(info.vector.at(fresh), 1u);
  EXPECT_EQ(info.vector.at(self), 3u);
  EXPECT_EQ(info.updates, 4u);
  EXPECT_EQ(CounterN(*node_), 4);

  // The old origin is now just another origin: more of it is taken without a further move.
  r = Ingest({make_update(self, 4, last.hlc + 10, "inc", json(R"({"path": "n"})"))});
  EXPECT_EQ(r.accepted, 1u) << describe(r.refused);
  EXPECT_FALSE(r.origin_changed);
  EXPECT_EQ(node_->node_id(), fresh);
  EXPECT_EQ(CounterN(*node_), 5);

  Reopen();  // the move is persistent
  EXPECT_EQ(node_->node_id(), fresh);
  info = node_->info();
  EXPECT_EQ(info.node_id, fresh);
  EXPECT_TRUE(info.former_origins.count(self));
  EXPECT_FALSE(info.former_origins.count(fresh));
  EXPECT_EQ(info.vector.at(self), 4u);
  EXPECT_EQ(info.vector.at(fresh), 1u);
  call = node_->call("inc", json(R"({"path": "n"})"));
  ASSERT_TRUE(call) << call.status().message();
  EXPECT_EQ(call->origin, fresh);
  EXPECT_EQ(node_->info().vector.at(fresh), 2u) << "seq 2 of the fresh origin";
  EXPECT_EQ(node_->info().vector.at(self), 4u) << "nothing more written as the old origin";
  EXPECT_EQ(CounterN(*node_), 6);
  ExpectVerifyOk();
}

TEST_F(IngestTest, ForkOfOwnOriginQuarantinesItAndMovesTheNodeToAFreshOrigin) {
  const OriginId self = node_->node_id();
  std::vector<UpdateId> mine;
  for (int i = 0; i < 2; ++i) {
    auto id = node_->call("inc", json(R"({"path": "n"})"));
    ASSERT_TRUE(id) << id.status().message();
    mine.push_back(*id);
  }
  auto before = Snap();

  // A copy of this directory wrote its own seq 2, at another time.
  Update theirs = make_update(self, 2, mine[1].hlc + 7, "inc", json(R"({"path": "n", "by": 10})"));
  IngestReport r = Ingest({theirs});
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_EQ(r.forks, 1u);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_EQ(r.refused[0].verdict, Verdict::kFork) << describe(r.refused);
  EXPECT_TRUE(r.origin_changed);
  ExpectUnchanged(before, "a fork of this node's own origin");

  const OriginId fresh = node_->node_id();
  EXPECT_NE(fresh, self);
  EXPECT_FALSE(is_reserved_origin(fresh));
  NodeInfo info = node_->info();
  EXPECT_TRUE(info.forks.count(self)) << "the old origin is quarantined like any forked origin";
  ASSERT_TRUE(info.former_origins.count(self));
  EXPECT_FALSE(info.former_origins.at(self).empty());

  // Local writes continue as seq 1 of the fresh origin.
  auto call = node_->call("inc", json(R"({"path": "n"})"));
  ASSERT_TRUE(call) << call.status().message();
  EXPECT_EQ(call->origin, fresh);
  EXPECT_EQ(node_->info().vector.at(fresh), 1u);
  EXPECT_EQ(node_->info().vector.at(self), 2u);
  EXPECT_EQ(CounterN(*node_), 3);

  // Nothing more of the old origin is taken.
  r = Ingest({make_update(self, 3, mine[1].hlc + 20, "inc", json(R"({"path": "n"})"))});
  EXPECT_EQ(r.accepted, 0u);
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_EQ(r.refused[0].verdict, Verdict::kQuarantined) << describe(r.refused);
  EXPECT_FALSE(r.origin_changed);
  EXPECT_EQ(node_->node_id(), fresh);

  Reopen();
  EXPECT_EQ(node_->node_id(), fresh);
  info = node_->info();
  EXPECT_TRUE(info.forks.count(self));
  EXPECT_TRUE(info.former_origins.count(self));
  call = node_->call("inc", json(R"({"path": "n"})"));
  ASSERT_TRUE(call) << call.status().message();
  EXPECT_EQ(call->origin, fresh);
  EXPECT_EQ(node_->info().vector.at(fresh), 2u);
  EXPECT_EQ(CounterN(*node_), 4);
  ExpectVerifyOk();
}

}  // namespace
}  // namespace replog

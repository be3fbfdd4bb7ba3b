// Node-level unit tests: the hybrid clock, late updates through the undo log
// and through checkpoints, checkpoint invalidation, restart.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "node/core/hlc.h"
#include "temp_dir.h"
#include "node/engine/node.h"
#include "storage/fault_point.h"
#include "storage/update_log.h"
#include "node/api/verify.h"
#include "protocol/json_codec.h"
#include "protocol/msgpack_codec.h"

namespace replog {
namespace {

using testing::TempDir;

constexpr int64_t kNow = 1'790'000'000'000;  // 2026-09-21

// An application's own method: doubles the int at `path`.
std::optional<MethodFailure> double_method(MethodContext& ctx, const Value& arg) {
  Path p{arg.find("path")->as_string()};
  return ctx.set(p, Value(ctx.get(p)->as_int() * 2));
}

TEST(HybridClock, NeverRunsBackwardsWhenTheWallClockDoes) {
  ManualClock wall(kNow);
  HybridClock clock(wall, 0);
  uint64_t a = clock.tick();
  wall.set(kNow - 60'000);  // NTP steps back a minute
  uint64_t b = clock.tick();
  uint64_t c = clock.tick();
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(hlc::millis(b), kNow) << "time holds still; the logical counter moves";
}

TEST(HybridClock, BurstOverflowingTheCounterBumpsTime) {
  ManualClock wall(kNow);
  HybridClock clock(wall, 0);
  uint64_t last = 0;
  for (int i = 0; i < 70'000; ++i) {
    uint64_t t = clock.tick();
    ASSERT_GT(t, last);
    last = t;
  }
  EXPECT_EQ(hlc::millis(last), kNow + 1);
}

TEST(HybridClock, ObservedTimestampsMoveItForward) {
  ManualClock wall(kNow);
  HybridClock clock(wall, 0);
  uint64_t remote = hlc::make(kNow + 5'000, 7);
  ASSERT_TRUE(clock.observe(remote, 3'600'000));
  EXPECT_GT(clock.tick(), remote);
}

TEST(HybridClock, RefusesTimestampsBeyondTheSkewLimitUntilItCatchesUp) {
  ManualClock wall(kNow);
  HybridClock clock(wall, 0);
  uint64_t remote = hlc::make(kNow + 2 * 3'600'000, 0);
  Status s = clock.observe(remote, 3'600'000);
  EXPECT_EQ(s.code(), Status::Code::kRefused);
  EXPECT_LT(clock.high_water(), remote) << "a refused timestamp leaves the clock alone";
  wall.advance(3'600'000);
  EXPECT_TRUE(clock.observe(remote, 3'600'000));
}

TEST(HybridClock, HighWaterMarkSurvivesRestartWithClockBehind) {
  TempDir tmp;
  std::string dir = tmp.sub("n");
  ManualClock wall(kNow);
  engine::InitOptions init;
  init.dir = dir;
  init.clock = &wall;
  ASSERT_TRUE(engine::Node::init(init));
  engine::NodeOptions o;
  o.verify_origins = false;  // hand-made updates: form and replay, not proof
  o.dir = dir;
  o.clock = &wall;
  UpdateId first;
  {
    auto node = engine::Node::open(o);
    ASSERT_TRUE(node);
    first = *(*node)->call("set", Value(Map{{"path", Value("a")}, {"value", Value(1)}}));
  }
  wall.set(kNow - 3'600'000);  // the machine restarts with its clock an hour behind
  auto node = engine::Node::open(o);
  ASSERT_TRUE(node);
  auto second = (*node)->call("set", Value(Map{{"path", Value("a")}, {"value", Value(2)}}));
  ASSERT_TRUE(second);
  EXPECT_GT(*second, first);
}

// Builds an update of `origin`.
Update make_update(OriginId origin, uint64_t seq, int64_t ms, const std::string& method, const Value& arg) {
  return Update::make(UpdateId{hlc::make(ms, 0), origin}, seq, method, encode_msgpack(arg));
}

Value set_arg(const std::string& path, Value v) { return Value(Map{{"path", Value(path)}, {"value", std::move(v)}}); }

struct NodeFixture : ::testing::Test {
  TempDir tmp;
  ManualClock wall{kNow + 1'000'000};
  std::string dir = tmp.sub("n");

  std::unique_ptr<engine::Node> open(size_t undo_window, uint64_t checkpoint_interval,
                                     std::shared_ptr<const MethodRegistry> methods = nullptr) {
    engine::NodeOptions o;
    o.methods = std::move(methods);
    o.verify_origins = false;  // hand-made updates: form and replay, not proof
    o.dir = dir;
    o.clock = &wall;
    o.undo_window = undo_window;
    o.checkpoint_interval = checkpoint_interval;
    auto n = engine::Node::open(o);
    EXPECT_TRUE(n) << n.status().message();
    return std::move(n).value();
  }
  void SetUp() override {
    engine::InitOptions init;
    init.dir = dir;
    init.clock = &wall;
    ASSERT_TRUE(engine::Node::init(init));
  }
  // The hash of replaying `updates` in key order into a fresh directory.
  std::string reference_hash(std::vector<Update> updates) {
    std::sort(updates.begin(), updates.end(), [](auto& a, auto& b) { return a.id() < b.id(); });
    std::string ref_dir = tmp.sub("ref");
    engine::InitOptions init;
    init.dir = ref_dir;
    init.clock = &wall;
    EXPECT_TRUE(engine::Node::init(init));
    engine::NodeOptions o;
    o.verify_origins = false;  // hand-made updates: form and replay, not proof
    o.dir = ref_dir;
    o.clock = &wall;
    auto node = std::move(engine::Node::open(o)).value();
    auto r = node->ingest(updates);
    EXPECT_TRUE(r);
    EXPECT_EQ(r->accepted, updates.size());
    return node->state_hash();
  }
};

TEST_F(NodeFixture, LateUpdateWithinTheUndoWindowGivesTheInOrderState) {
  // Origin 1 writes a..j; origin 2's update sorts between them but arrives last.
  std::vector<Update> all;
  for (int i = 0; i < 10; ++i)
    all.push_back(make_update(1, static_cast<uint64_t>(i + 1), kNow + i * 10, "set", set_arg("x", Value(i))));
  Update late = make_update(2, 1, kNow + 45, "inc", Value(Map{{"path", Value("x")}, {"by", Value(100)}}));
  std::vector<Update> with_late = all;
  with_late.push_back(late);
  std::string expected = reference_hash(with_late);

  auto node = open(/*undo_window=*/64, /*checkpoint_interval=*/1'000'000);
  ASSERT_TRUE(node->ingest(all));
  ASSERT_TRUE(node->ingest({late}));
  EXPECT_EQ(node->state_hash(), expected);
  node->read([](const State& s) { EXPECT_EQ(s.get({"x"})->as_int(), 9) << "later sets win over the late inc"; });
}

TEST_F(NodeFixture, LateUpdateBeyondTheUndoWindowReloadsFromACheckpoint) {
  std::vector<Update> all;
  for (int i = 0; i < 200; ++i)
    all.push_back(make_update(1, static_cast<uint64_t>(i + 1), kNow + i * 10, "inc",
                              Value(Map{{"path", Value("n")}, {"by", Value(1)}})));
  Update late = make_update(2, 1, kNow + 15, "set", set_arg("n", Value(1000)));
  std::vector<Update> with_late = all;
  with_late.push_back(late);
  std::string expected = reference_hash(with_late);

  auto node = open(/*undo_window=*/4, /*checkpoint_interval=*/20);
  for (size_t i = 0; i < all.size(); i += 10)
    ASSERT_TRUE(node->ingest(std::vector<Update>(all.begin() + static_cast<long>(i), all.begin() + static_cast<long>(i) + 10)));
  ASSERT_TRUE(node->ingest({late}));
  EXPECT_EQ(node->state_hash(), expected);
  node->read([](const State& s) { EXPECT_EQ(s.get({"n"})->as_int(), 1000 + 198); });
  ASSERT_TRUE(node->close());
  auto report = verify_data_dir(dir, std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins()));
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->ok()) << (report->problems.empty() ? "" : report->problems[0]);
}

TEST_F(NodeFixture, StoringBelowACheckpointCutDeletesItAndNewerOnes) {
  std::vector<Update> all;
  for (int i = 0; i < 100; ++i)
    all.push_back(make_update(1, static_cast<uint64_t>(i + 1), kNow + 100 + i * 10, "set", set_arg("k" + std::to_string(i % 7), Value(i))));
  {
    auto node = open(/*undo_window=*/2, /*checkpoint_interval=*/10);
    for (size_t i = 0; i < all.size(); i += 10)
      ASSERT_TRUE(node->ingest(std::vector<Update>(all.begin() + static_cast<long>(i), all.begin() + static_cast<long>(i) + 10)));
  }
  auto log = UpdateLog::open(dir, {});
  ASSERT_TRUE(log);
  std::vector<UpdateId> cuts;
  for (auto& [cut, _] : (*log)->begin_read()->checkpoints()) cuts.push_back(cut);
  ASSERT_GE(cuts.size(), 2u);
  // An update of a new origin sorting below the newest cut, stored directly.
  UpdateId below{cuts.front().hlc - 1, 9};
  {
    auto txn = (*log)->begin_write();
    ASSERT_TRUE(txn->put_update(below, 1, Update::make(below, 1, "set", encode_msgpack(set_arg("z", Value(1)))).body()));
    ASSERT_TRUE(txn->commit());
  }
  for (auto& [cut, _] : (*log)->begin_read()->checkpoints()) EXPECT_LT(cut, below) << "stale checkpoint left behind";
}

TEST_F(NodeFixture, RestartFromCheckpointEqualsReplayFromScratch) {
  std::vector<Update> all;
  for (int i = 0; i < 500; ++i)
    all.push_back(make_update(1 + static_cast<OriginId>(i % 3), static_cast<uint64_t>(i / 3 + 1), kNow + i, "set",
                              set_arg("k" + std::to_string(i % 50), Value(i))));
  std::string before;
  {
    auto node = open(/*undo_window=*/16, /*checkpoint_interval=*/50);
    for (size_t i = 0; i < all.size(); i += 25)
      ASSERT_TRUE(node->ingest(std::vector<Update>(all.begin() + static_cast<long>(i), all.begin() + static_cast<long>(i) + 25)));
    before = node->state_hash();
  }
  engine::NodeOptions o;
  o.verify_origins = false;  // hand-made updates: form and replay, not proof
  o.dir = dir;
  auto reader = engine::Node::open_read_only(o);
  ASSERT_TRUE(reader);
  EXPECT_EQ((*reader)->state_hash(), before);
  auto report = verify_data_dir(dir, std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins()));
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->ok());
  EXPECT_GT(report->checkpoints_checked, 0u);
  EXPECT_EQ(report->scratch_hash, before);
}

TEST_F(NodeFixture, StateAtATimeFoldsOnlyUpdatesUpToIt) {
  {
    auto node = open(/*undo_window=*/2, /*checkpoint_interval=*/3);
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(node->ingest({make_update(3, static_cast<uint64_t>(i + 1), kNow + i * 1000, "set", set_arg("v", Value(i)))}));
  }
  engine::NodeOptions o;
  o.verify_origins = false;  // hand-made updates: form and replay, not proof
  o.dir = dir;
  auto at = engine::Node::open_read_only(o, kNow + 5 * 1000);
  ASSERT_TRUE(at);
  (*at)->read([](const State& s) { EXPECT_EQ(s.get({"v"})->as_int(), 5); });
  auto head = engine::Node::open_read_only(o);
  ASSERT_TRUE(head);
  (*head)->read([](const State& s) { EXPECT_EQ(s.get({"v"})->as_int(), 19); });
}

// A log where "double" (unknown to the built-ins) doubles a = 3, followed by
// enough updates that the node built with the built-ins writes a checkpoint
// whose cut lies past it: that checkpoint holds a = 3, the true fold with
// "double" known holds a = 6.
struct UnknownMethodLog {
  UpdateId double_id;
  void write(NodeFixture& f) {
    std::vector<Update> ups = {make_update(5, 1, kNow, "set", set_arg("a", Value(3))),
                               make_update(5, 2, kNow + 1, "double", Value(Map{{"path", Value("a")}}))};
    double_id = ups[1].id();
    for (int i = 0; i < 10; ++i) ups.push_back(make_update(5, 3 + static_cast<uint64_t>(i), kNow + 2 + i, "set",
                                                           set_arg("b", Value(i))));
    auto node = f.open(2, 5);
    auto r = node->ingest(ups);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->accepted, ups.size()) << "an unknown method is never a reason to refuse";
    node->read([](const State& s) {
      EXPECT_EQ(s.unknown_method_updates(), 1u);
      EXPECT_EQ(s.get({"a"})->as_int(), 3);
    });
    ASSERT_TRUE(node->close());
    auto log = UpdateLog::open(f.dir, {});
    ASSERT_TRUE(log);
    auto txn = (*log)->begin_read();
    ASSERT_TRUE(txn);
    auto cps = txn->checkpoints();
    ASSERT_FALSE(cps.empty());
    ASSERT_GT(cps.front().first, double_id) << "the checkpoint must lie past the unknown update to matter";
  }
};

std::unique_ptr<engine::Node> open_knowing_double(const std::string& dir) {
  auto methods = std::make_shared<MethodRegistry>(MethodRegistry::with_builtins());
  EXPECT_TRUE(methods->add("double", "1", double_method));
  engine::NodeOptions o;
  o.verify_origins = false;  // hand-made updates: form and replay, not proof
  o.dir = dir;
  o.methods = methods;
  auto node = engine::Node::open_read_only(o);
  EXPECT_TRUE(node);
  return std::move(node).value();
}

TEST_F(NodeFixture, CheckpointOfOtherMethodsIsNotUsed) {
  UnknownMethodLog log;
  ASSERT_NO_FATAL_FAILURE(log.write(*this));
  engine::NodeOptions same;
  same.verify_origins = false;  // hand-made updates: form and replay, not proof
  same.dir = dir;
  auto builtins = engine::Node::open_read_only(same);
  ASSERT_TRUE(builtins);
  (*builtins)->read([](const State& s) { EXPECT_EQ(s.get({"a"})->as_int(), 3) << "same methods: as before"; });
  // A newer replog knows one more method: its digest differs, so it replays from scratch.
  open_knowing_double(dir)->read([](const State& s) { EXPECT_EQ(s.get({"a"})->as_int(), 6); });
}

TEST_F(NodeFixture, UnknownMethodIsKeptAndReplayedOnceKnown) {
  UnknownMethodLog log;
  ASSERT_NO_FATAL_FAILURE(log.write(*this));
  open_knowing_double(dir)->read([](const State& s) {
    EXPECT_EQ(s.unknown_method_updates(), 0u);
    EXPECT_EQ(s.get({"a"})->as_int(), 6);
  });
}

TEST_F(NodeFixture, UniqueConflictFromWorkingApartIsRecordedAndResolved) {
  std::string schema = R"({"records": {"Task": {"fields": {"title": "string"}, "required": ["title"], "unique": ["title"]}}})";
  auto node = open(64, 1000);
  ASSERT_TRUE(node->call("schema", Value(Map{{"document", *parse_typed_json(schema)}})));
  // This node creates t1 "ship"; another device created t2 "ship" earlier while apart.
  wall.advance(10);
  auto mine = node->call("create", *parse_typed_json(R"({"type":"Task","id":"t1","fields":{"title":"ship"}})"));
  ASSERT_TRUE(mine);
  Update theirs =
      make_update(77, 1, hlc::millis(mine->hlc) - 1, "create",
                  *parse_typed_json(R"({"type":"Task","id":"t2","fields":{"title":"ship"}})"));
  ASSERT_TRUE(node->ingest({theirs}));
  UpdateId skipped;
  node->read([&](const State& s) {
    ASSERT_EQ(s.conflicts().size(), 1u);
    const Conflict& c = s.conflicts().begin()->second;
    EXPECT_EQ(c.skipped, *mine) << "the later update is the one skipped";
    EXPECT_EQ(c.kind, ConflictKind::kUnique);
    ASSERT_EQ(c.involved.size(), 1u);
    EXPECT_EQ(c.involved[0], theirs.id());
    EXPECT_EQ(s.get({"Task", "t1"}), nullptr);
    ASSERT_NE(s.get({"Task", "t2"}), nullptr);
    skipped = c.skipped;
  });
  // A person fixes the data, then closes the conflict.
  ASSERT_TRUE(node->call("create", *parse_typed_json(R"j({"type":"Task","id":"t1","fields":{"title":"ship (mine)"}})j")));
  ASSERT_TRUE(node->call("resolve", Value(Map{{"update", Value(skipped.to_string())}})));
  node->read([](const State& s) { EXPECT_TRUE(s.conflicts().empty()); });
  auto again = node->call("resolve", Value(Map{{"update", Value(skipped.to_string())}}));
  EXPECT_FALSE(again) << "resolving a closed conflict is refused at the keyboard";
}

TEST_F(NodeFixture, MapGrowsWhenFull) {
  engine::NodeOptions o;
  o.verify_origins = false;  // hand-made updates: form and replay, not proof
  o.dir = dir;
  o.clock = &wall;
  o.initial_map_bytes = 1 << 20;  // 1 MiB, far too small for what follows
  auto node = engine::Node::open(o);
  ASSERT_TRUE(node) << node.status().message();
  std::string big(2000, 'x');
  std::vector<Update> batch;
  for (int i = 0; i < 5000; ++i) {
    batch.push_back(make_update(4, static_cast<uint64_t>(i + 1), kNow + i, "set", set_arg("k" + std::to_string(i % 100), Value(big))));
    if (batch.size() == 500) {
      auto r = (*node)->ingest(std::move(batch));
      ASSERT_TRUE(r) << r.status().message();
      ASSERT_EQ(r->accepted, 500u);
      batch.clear();
    }
  }
  EXPECT_EQ((*node)->info().updates, 5000u);
  ASSERT_TRUE((*node)->close());
  auto report = verify_data_dir(dir, std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins()));
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->ok());
}

TEST_F(NodeFixture, FailedLocalCallStoresNothing) {
  auto node = open(64, 1000);
  ASSERT_TRUE(node->call("set", set_arg("n", Value(INT64_MAX))));
  auto r = node->call("inc", Value(Map{{"path", Value("n")}, {"by", Value(1)}}));
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("overflow"), std::string::npos);
  engine::NodeInfo info = node->info();
  EXPECT_EQ(info.updates, 1u);
  EXPECT_EQ(info.vector.at(node->node_id()), 1u);
  auto next = node->call("set", set_arg("m", Value(1)));
  ASSERT_TRUE(next);
  EXPECT_EQ(node->info().vector.at(node->node_id()), 2u) << "no seq was used by the refused call";
}

// A method that fails by throwing MethodFailure has failed like one that
// returns it: a conflict, the same on every node.
TEST_F(NodeFixture, MethodThrowingMethodFailureBecomesAConflict) {
  auto methods = std::make_shared<MethodRegistry>(MethodRegistry::with_builtins());
  ASSERT_TRUE(methods->add("refuse", "1", [](MethodContext& ctx, const Value&) -> std::optional<MethodFailure> {
    (void)ctx.set({"half"}, Value(1));  // undone with the rest of the update
    throw MethodFailure{ConflictKind::kUnique, "taken", {"Task", "t1"}, {}};
  }));
  auto node = open(64, 1000, methods);
  const Update u = make_update(2, 1, kNow, "refuse", Value(nullptr));
  ASSERT_TRUE(node->ingest({u}));
  EXPECT_TRUE(node->fold_status());
  node->read([&](const State& s) {
    EXPECT_EQ(s.get({"half"}), nullptr);
    ASSERT_EQ(s.conflicts().size(), 1u);
    const Conflict& c = s.conflicts().begin()->second;
    EXPECT_EQ(c.skipped, u.id());
    EXPECT_EQ(c.kind, ConflictKind::kUnique);
    EXPECT_EQ(c.path, (Path{"Task", "t1"}));
  });
  auto local = node->call("refuse", Value(nullptr));
  ASSERT_FALSE(local);
  EXPECT_EQ(local.status().message(), "taken");
}

// A registry whose "flaky" method sets `flaky` to 1, or throws std::bad_alloc
// while *fail is true: a failure that is not a function of the log.
std::shared_ptr<MethodRegistry> flaky_methods(std::shared_ptr<std::atomic<bool>> fail) {
  auto methods = std::make_shared<MethodRegistry>(MethodRegistry::with_builtins());
  EXPECT_TRUE(methods->add("flaky", "1", [fail](MethodContext& ctx, const Value&) -> std::optional<MethodFailure> {
    if (auto f = ctx.set({"partial"}, Value(1))) return f;
    if (*fail) throw std::bad_alloc();
    return ctx.set({"flaky"}, Value(1));
  }));
  return methods;
}

// The state hash of `dir` folded from scratch by a read-only node whose
// "flaky" method never fails.
std::string fold_from_scratch(const std::string& dir) {
  engine::NodeOptions fresh;
  fresh.verify_origins = false;  // hand-made updates: form and replay, not proof
  fresh.dir = dir;
  fresh.methods = flaky_methods(std::make_shared<std::atomic<bool>>(false));
  auto reference = engine::Node::open_read_only(fresh);
  EXPECT_TRUE(reference) << reference.status().message();
  return reference ? (*reference)->state_hash() : std::string();
}

TEST_F(NodeFixture, MethodThrowingBadAllocStopsTheFoldReportsItAndRetries) {
  auto fail = std::make_shared<std::atomic<bool>>(true);
  auto node = open(64, 1000, flaky_methods(fail));
  const std::vector<Update> updates = {make_update(2, 1, kNow, "set", set_arg("a", Value(1))),
                                       make_update(2, 2, kNow + 10, "flaky", Value(nullptr)),
                                       make_update(2, 3, kNow + 20, "set", set_arg("b", Value(2)))};
  auto r = node->ingest(updates);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->accepted, 3u) << "stored: the fault is this node's, not the update's";

  Status folded = node->fold_status();
  ASSERT_FALSE(folded);
  EXPECT_NE(folded.message().find("std::bad_alloc"), std::string::npos) << folded.message();
  EXPECT_NE(folded.message().find(updates[1].id().to_string()), std::string::npos) << folded.message();
  node->read([](const State& s) {
    EXPECT_NE(s.get({"a"}), nullptr) << "the fold of what sorts before the failure";
    EXPECT_EQ(s.get({"partial"}), nullptr) << "the failing update's changes are undone";
    EXPECT_EQ(s.get({"b"}), nullptr) << "nothing after it is folded";
    EXPECT_TRUE(s.conflicts().empty()) << "never a conflict of this node only";
  });
  auto call = node->call("set", set_arg("c", Value(3)));
  ASSERT_FALSE(call) << "a call cannot be checked against a state that lags the log";
  EXPECT_EQ(call.status().message(), folded.message());

  *fail = false;  // the fault goes away: the next read folds again
  node->read([](const State& s) {
    EXPECT_NE(s.get({"b"}), nullptr);
    EXPECT_NE(s.get({"flaky"}), nullptr);
    EXPECT_TRUE(s.conflicts().empty());
  });
  EXPECT_TRUE(node->fold_status());
  EXPECT_TRUE(node->call("set", set_arg("c", Value(3))));
  const std::string hash = node->state_hash();
  ASSERT_TRUE(node->close());
  // The same state as a fold from scratch by a node that never failed.
  EXPECT_EQ(hash, fold_from_scratch(dir));
}

// A batch of hundreds of updates above the head is folded on the side thread
// while its puts run (Node::start_fold_beside): the same state as a fold from
// scratch, and a method that throws stops that fold exactly where it would
// stop in line.
TEST_F(NodeFixture, ALargeBatchFoldedBesideItsPutsStopsAndResumesLikeAnyFold) {
  auto fail = std::make_shared<std::atomic<bool>>(true);
  auto node = open(64, 100000, flaky_methods(fail));
  constexpr int kBefore = 300, kAfter = 299;
  uint64_t seq = 0;
  const auto next = [&](const std::string& method, const Value& arg) {
    ++seq;
    return make_update(2, seq, kNow + static_cast<int64_t>(seq), method, arg);
  };
  std::vector<Update> updates;
  for (int i = 0; i < kBefore; ++i) updates.push_back(next("set", set_arg("k" + std::to_string(i % 50), Value(i))));
  const Update flaky = next("flaky", Value(nullptr));
  updates.push_back(flaky);
  for (int i = 0; i < kAfter; ++i) updates.push_back(next("set", set_arg("late" + std::to_string(i), Value(i))));
  auto r = node->ingest(updates);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->accepted, updates.size());
  Status folded = node->fold_status();
  ASSERT_FALSE(folded);
  EXPECT_NE(folded.message().find(flaky.id().to_string()), std::string::npos) << folded.message();
  EXPECT_FALSE(node->read_if_current([](const State&) {})) << "state lags the log";

  *fail = false;
  node->read([&](const State& s) {
    EXPECT_NE(s.get({"flaky"}), nullptr);
    EXPECT_NE(s.get({"late" + std::to_string(kAfter - 1)}), nullptr);
    EXPECT_EQ(*s.get({"k49"}), Value(int64_t{299}));
  });
  EXPECT_TRUE(node->fold_status());
  // A second large batch, folded beside its puts with nothing failing.
  std::vector<Update> more;
  for (int i = 0; i < 400; ++i)
    more.push_back(next("set", set_arg("m" + std::to_string(i % 70), Value(i))));
  ASSERT_TRUE(node->ingest(more));
  EXPECT_TRUE(node->fold_status());
  EXPECT_TRUE(node->read_if_current([](const State& s) { EXPECT_EQ(*s.get({"m69"}), Value(int64_t{349})); }));
  const std::string hash = node->state_hash();
  ASSERT_TRUE(node->close());
  EXPECT_EQ(hash, fold_from_scratch(dir));
}

// Fires `point` in one store the next `times` times it is reached.
class FireNext final : public fault::Injector {
 public:
  FireNext(std::string dir, fault::Point point, int times) : dir_(std::move(dir)), point_(point), left_(times) {}
  bool fire(fault::Point point, std::string_view store_dir) override {
    return point == point_ && store_dir == dir_ && left_.fetch_sub(1) > 0;
  }

 private:
  const std::string dir_;
  const fault::Point point_;
  std::atomic<int> left_;
};

// A large batch of received updates alone goes on folding beside its commit
// (nothing after the fold reads the state). A commit that fails meanwhile
// leaves the state as the log has it, and a batch run again after a full map
// is folded once.
TEST_F(NodeFixture, ALargeBatchFoldingThroughAFailedCommitLeavesTheStateAsTheLogHasIt) {
  auto node = open(64, 100000);
  uint64_t seq = 0;
  const auto batch = [&](const std::string& prefix, int n) {
    std::vector<Update> out;
    for (int i = 0; i < n; ++i) {
      ++seq;
      out.push_back(make_update(2, seq, kNow + static_cast<int64_t>(seq), "inc",
                                Value(Map{{"path", Value(prefix + std::to_string(i % 40))}, {"by", Value(1)}})));
    }
    return out;
  };
  ASSERT_TRUE(node->ingest(batch("a", 300)));
  const std::string before = node->state_hash();

  const std::vector<Update> second = batch("b", 400);
  FireNext full_disk(dir, fault::Point::kCommitNoSpace, 1);
  fault::install(&full_disk);
  auto r = node->ingest(second);
  fault::install(nullptr);
  ASSERT_FALSE(r) << "the commit found the disk full";
  EXPECT_EQ(node->state_hash(), before) << "nothing of the batch is in the state";
  EXPECT_TRUE(node->read_if_current([](const State& s) { EXPECT_EQ(s.get({"b0"}), nullptr); }));

  FireNext full_map(dir, fault::Point::kPutMapFull, 1);
  fault::install(&full_map);
  r = node->ingest(second);
  fault::install(nullptr);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->accepted, second.size()) << "the map grown, the batch ran again";
  EXPECT_TRUE(node->read_if_current([](const State& s) {
    EXPECT_EQ(*s.get({"a0"}), Value(int64_t{8}));
    EXPECT_EQ(*s.get({"b0"}), Value(int64_t{10})) << "folded once, not once per try";
  }));
  const std::string hash = node->state_hash();
  ASSERT_TRUE(node->close());
  EXPECT_EQ(hash, fold_from_scratch(dir));
}

TEST_F(NodeFixture, WriterRetriesAStoppedFoldWhenIdle) {
  auto fail = std::make_shared<std::atomic<bool>>(true);
  auto node = open(64, 1000, flaky_methods(fail));
  ASSERT_TRUE(node->ingest({make_update(2, 1, kNow, "flaky", Value(nullptr))}));
  EXPECT_FALSE(node->fold_status());
  *fail = false;
  // No read and no call: the writer's idle retry (after about a second) folds it.
  bool caught_up = false;
  for (int i = 0; i < 100 && !caught_up; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    caught_up = node->read_if_current([](const State& s) { EXPECT_NE(s.get({"flaky"}), nullptr); });
  }
  EXPECT_TRUE(caught_up);
  EXPECT_TRUE(node->fold_status());
}

TEST_F(NodeFixture, LocalCallWhoseMethodThrowsBadAllocIsRefusedAndStoresNothing) {
  auto fail = std::make_shared<std::atomic<bool>>(true);
  auto node = open(64, 1000, flaky_methods(fail));
  auto r = node->call("flaky", Value(nullptr));
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("std::bad_alloc"), std::string::npos);
  EXPECT_EQ(node->info().updates, 0u);
  EXPECT_TRUE(node->fold_status()) << "nothing was stored, so state does not lag";
  node->read([](const State& s) {
    EXPECT_EQ(s.get({"partial"}), nullptr);
    EXPECT_TRUE(s.conflicts().empty());
  });
  *fail = false;
  EXPECT_TRUE(node->call("flaky", Value(nullptr)));
}

// Collects what the node's change sink is handed.
struct ChangeLog {
  std::mutex mu;
  std::vector<Change> changes;
  void attach(engine::Node& node) {
    node.set_change_sink([this](const std::vector<Change>& cs) {
      std::lock_guard<std::mutex> l(mu);
      changes.insert(changes.end(), cs.begin(), cs.end());
    });
  }
  // "kind id" of each change, for comparing stories.
  std::vector<std::string> story() {
    std::lock_guard<std::mutex> l(mu);
    std::vector<std::string> out;
    for (const Change& c : changes) out.push_back(std::string(change_kind_name(c.kind)) + " " + c.id.to_string());
    return out;
  }
};

TEST_F(NodeFixture, ChangesOfInOrderUpdatesNameThePathsAndRecordsTheyWrote) {
  auto node = open(64, 1000);
  ChangeLog log;
  log.attach(*node);
  const Value schema = *parse_typed_json(R"({"records": {"Task": {"fields": {"title": "string"}}}})");
  const Update s = make_update(2, 1, kNow, "schema", Value(Map{{"document", schema}}));
  const Update a = make_update(2, 2, kNow + 10, "set", set_arg("a", Value(1)));
  const Update t = make_update(2, 3, kNow + 20, "create",
                               Value(Map{{"type", "Task"}, {"id", "t1"}, {"fields", Map{{"title", "milk"}}}}));
  const Update bad = make_update(2, 4, kNow + 30, "inc", Value(Map{{"path", "a"}, {"by", "x"}}));
  ASSERT_TRUE(node->ingest({s, a, t, bad}));
  EXPECT_EQ(log.story(), (std::vector<std::string>{"applied " + s.id().to_string(), "applied " + a.id().to_string(),
                                                   "applied " + t.id().to_string(),
                                                   "conflict " + bad.id().to_string()}));
  std::lock_guard<std::mutex> l(log.mu);
  EXPECT_EQ(log.changes[1].method, "set");
  EXPECT_EQ(log.changes[1].paths, (std::vector<Path>{{"a"}}));
  EXPECT_TRUE(log.changes[1].records.empty());
  EXPECT_EQ(log.changes[2].paths, (std::vector<Path>{{"Task", "t1"}}));
  EXPECT_EQ(log.changes[2].records, (std::vector<std::pair<std::string, std::string>>{{"Task", "t1"}}));
}

TEST_F(NodeFixture, ALateUpdateIsHeardAsRolledBackThenReplayed) {
  auto node = open(64, 1000);
  const Update a = make_update(1, 1, kNow, "set", set_arg("a", Value(1)));
  const Update b = make_update(1, 2, kNow + 20, "set", set_arg("b", Value(2)));
  const Update c = make_update(1, 3, kNow + 30, "set", set_arg("c", Value(3)));
  const Update late = make_update(2, 1, kNow + 10, "set", set_arg("b", Value(0)));
  ASSERT_TRUE(node->ingest({a, b, c}));
  ChangeLog log;
  log.attach(*node);
  ASSERT_TRUE(node->ingest({late}));
  EXPECT_EQ(log.story(), (std::vector<std::string>{"rolled-back " + c.id().to_string(),
                                                   "rolled-back " + b.id().to_string(),
                                                   "applied " + late.id().to_string(),
                                                   "applied " + b.id().to_string(),
                                                   "applied " + c.id().to_string()}));
  std::lock_guard<std::mutex> l(log.mu);
  EXPECT_EQ(log.changes[1].paths, (std::vector<Path>{{"b"}})) << "b's write was taken back";
}

TEST_F(NodeFixture, ARefusedCallAndACheckpointAreNotHeardAndARefoldIsOneReload) {
  auto node = open(/*undo_window=*/2, 1000);
  ChangeLog log;
  log.attach(*node);
  ASSERT_TRUE(node->call("set", set_arg("n", Value(INT64_MAX))));
  ASSERT_FALSE(node->call("inc", Value(Map{{"path", Value("n")}, {"by", Value(1)}})));
  EXPECT_EQ(log.story().size(), 1u) << "not the refused inc";
  for (const char* p : {"p1", "p2", "p3"}) ASSERT_TRUE(node->call("set", set_arg(p, Value(1))));
  ASSERT_EQ(log.story().size(), 4u) << "not the checkpoint's undo and redo either";
  // Far below the head, beyond the undo window: folded once, later, and heard as one reload.
  std::vector<Update> old;
  for (uint64_t i = 1; i <= 5; ++i)
    old.push_back(make_update(2, i, kNow - 100'000 + static_cast<int64_t>(i), "set", set_arg("o", Value(1))));
  ASSERT_TRUE(node->ingest(old));
  node->read([](const State& s) { EXPECT_NE(s.get({"o"}), nullptr); });
  auto story = log.story();
  ASSERT_EQ(story.size(), 5u);
  EXPECT_EQ(story[4], "reloaded " + UpdateId{}.to_string());
}

TEST_F(NodeFixture, ReadingSinceAVectorHandsOutEveryUpdateOnceLateOnesIncluded) {
  auto node = open(64, 1000);
  const Update a = make_update(1, 1, kNow, "set", set_arg("a", Value(1)));
  const Update c = make_update(1, 2, kNow + 20, "set", set_arg("c", Value(3)));
  const Update late = make_update(2, 1, kNow + 10, "set", set_arg("b", Value(2)));
  ASSERT_TRUE(node->ingest({a, c}));
  VersionVector seen;
  auto first = node->read_since(seen, 100);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id(), a.id());
  EXPECT_EQ((*first)[1].id(), c.id());
  EXPECT_TRUE(node->read_since(seen, 100)->empty());
  ASSERT_TRUE(node->ingest({late}));
  auto second = node->read_since(seen, 100);
  ASSERT_TRUE(second);
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].id(), late.id());
  EXPECT_EQ(seen, (VersionVector{{1, 2}, {2, 1}}));

  auto from_a = node->read_log(a.id(), 1);
  ASSERT_TRUE(from_a);
  ASSERT_EQ(from_a->size(), 1u);
  EXPECT_EQ((*from_a)[0].id(), late.id()) << "key order, late update in its place";
}

}  // namespace
}  // namespace replog

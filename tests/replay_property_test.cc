// Replay properties (docs/ARCHITECTURE.md): two nodes holding the same updates
// compute the same state, whatever the arrival order, restarts, checkpoint
// placement or undo window.
//
// Each test generates a random log from several origins (colliding keys,
// records with unique fields, a schema change in the middle), computes the
// reference state hash by one in-order replay, and then feeds the log through
// real Nodes in random arrival orders that keep each origin's own seq order
// (a receiver accepts only seq = held + 1) but interleave origins freely, so
// many updates arrive late. Small undo windows and checkpoint intervals of 1
// and 1,000 make both the in-memory undo path and the checkpoint reload path
// run. Every check compares with the fold of the updates delivered so far.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "node/core/clock.h"
#include "node/core/hlc.h"
#include "node/engine/node.h"
#include "node/core/replayer.h"
#include "node/api/verify.h"
#include "protocol/bytes.h"
#include "protocol/json_codec.h"
#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"
#include "random_value.h"
#include "protocol/update.h"
#include "node/sync/sync_store.h"
#include "test_seed.h"

namespace replog {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int64_t kT0 = 1'760'000'000'000;  // ms since the epoch, near the updates' hlc times

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

const MethodRegistry& builtins() {
  static const MethodRegistry r = MethodRegistry::with_builtins();
  return r;
}

std::shared_ptr<const MethodRegistry> shared_builtins() {
  static const auto r = std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins());
  return r;
}

// --- the reference ----------------------------------------------------------------

// Fold of `updates` in key order from empty: what every node must compute.
State fold(const std::map<UpdateId, const Update*>& updates) {
  Replayer r(builtins(), 0);
  for (const auto& [id, u] : updates) {
    // Through the parser, as a stored body is read: every generated body frames.
    auto v = parse_update(id, u->body());
    EXPECT_TRUE(v) << v.status().message();
    if (v) r.apply(*v);
  }
  return r.state();
}

std::string truncated(std::string s, size_t n = 600) {
  if (s.size() > n) s = s.substr(0, n) + "...";
  return s;
}

// Where two states differ, for the failure message.
std::string describe_difference(const State& got, const State& want) {
  std::string out;
  const Map& g = got.root().as_map();
  const Map& w = want.root().as_map();
  std::set<std::string> keys;
  for (const auto& [k, _] : g) keys.insert(k);
  for (const auto& [k, _] : w) keys.insert(k);
  for (const auto& k : keys) {
    auto gi = g.find(k);
    auto wi = w.find(k);
    if (gi != g.end() && wi != w.end() && gi->second == wi->second) continue;
    out += "\n  data." + k + ": node " + (gi == g.end() ? "(absent)" : truncated(to_typed_json(gi->second))) +
           "\n     reference " + (wi == w.end() ? "(absent)" : truncated(to_typed_json(wi->second)));
  }
  for (const auto& [id, c] : got.conflicts())
    if (!want.conflicts().count(id))
      out += "\n  conflict only on the node: " + id.to_string() + " " + conflict_kind_name(c.kind) + " at " +
             path_to_string(c.path);
  for (const auto& [id, c] : want.conflicts()) {
    auto it = got.conflicts().find(id);
    if (it == got.conflicts().end())
      out += "\n  conflict only in the reference: " + id.to_string() + " " + conflict_kind_name(c.kind) + " at " +
             path_to_string(c.path);
    else if (it->second.kind != c.kind || it->second.path != c.path || it->second.involved != c.involved)
      out += "\n  conflict " + id.to_string() + " differs: node " + conflict_kind_name(it->second.kind) + " at " +
             path_to_string(it->second.path) + ", reference " + conflict_kind_name(c.kind) + " at " +
             path_to_string(c.path);
  }
  if (!(got.schema().to_document() == want.schema().to_document())) out += "\n  the schema in force differs";
  if (out.empty()) out = "\n  (data and conflicts equal; retired origins differ?)";
  return out;
}

// --- random logs ------------------------------------------------------------------

const char* kSchemaV1 = R"({
  "enums": {"Color": ["Red", "Green", "Blue"]},
  "records": {"Item": {"fields": {"name": "string", "n": "int", "color": "Color", "tag": "string"},
                       "required": ["name"], "unique": ["name"]}}})";
// The change in the middle of the log: a new field, a new enum member, and
// `note` unique (a new field, so no earlier record holds a note).
const char* kSchemaV2 = R"({
  "enums": {"Color": ["Red", "Green", "Blue", "Yellow"]},
  "records": {"Item": {"fields": {"name": "string", "n": "int", "color": "Color", "tag": "string",
                                  "note": "string"},
                       "required": ["name"], "unique": ["name", "note"]}}})";
// Variant: makes an existing field unique, over records that may already share it.
const char* kSchemaV2UniqueTag = R"({
  "enums": {"Color": ["Red", "Green", "Blue", "Yellow"]},
  "records": {"Item": {"fields": {"name": "string", "n": "int", "color": "Color", "tag": "string",
                                  "note": "string"},
                       "required": ["name"], "unique": ["name", "tag"]}}})";

struct LogSpec {
  // Also write whole record maps at once (set/unset at path ["Item"]).
  bool whole_type_writes = false;
  // The mid-log schema makes `tag` unique although records may already share a tag.
  bool unique_over_existing = false;
  size_t item_ids = 6;  // records i0..i{n-1}
  size_t tags = 3;      // tag values t0..t{n-1}
};

struct GeneratedLog {
  std::vector<OriginId> origins;
  std::vector<std::vector<Update>> per_origin;  // seq order
  std::map<UpdateId, const Update*> all;        // key order
  std::string reference_hash;
  int64_t max_millis = 0;
  size_t size() const { return all.size(); }
};

class LogGenerator {
 public:
  LogGenerator(std::mt19937_64& rng, LogSpec spec) : rng_(rng), values_(rng), spec_(spec) {}

  GeneratedLog make() {
    GeneratedLog log;
    const size_t n_origins = 3 + pick(3);
    const size_t total = 200 + pick(200);
    std::set<OriginId> used;
    while (log.origins.size() < n_origins) {
      OriginId o = rng_();
      if (o != 0 && used.insert(o).second) log.origins.push_back(o);
    }
    std::vector<size_t> counts(n_origins, 1);
    counts[0] = 4;  // the schema origin: v1 first, v2 in the middle
    for (size_t i = std::accumulate(counts.begin(), counts.end(), size_t{0}); i < total; ++i) ++counts[pick(n_origins)];

    // Ids: hlc rising with seq per origin; origins overlap in time.
    std::vector<std::vector<UpdateId>> ids(n_origins);
    for (size_t o = 0; o < n_origins; ++o) {
      uint64_t h = hlc::make(kT0 + static_cast<int64_t>(pick(20)), static_cast<uint16_t>(pick(3)));
      for (size_t s = 0; s < counts[o]; ++s) {
        if (o == 0 && s == 0) {
          ids[o].push_back(UpdateId{hlc::make(kT0 - 1000, 0), log.origins[o]});  // the first schema
          continue;
        }
        if (!ids[o].empty()) h = std::max(h, ids[o].back().hlc + 1 + rng_() % (3 * 65536));
        ids[o].push_back(UpdateId{h, log.origins[o]});
        all_ids_.push_back(ids[o].back());
      }
      log.max_millis = std::max(log.max_millis, hlc::millis(ids[o].back().hlc));
    }

    const size_t mid = counts[0] / 2;  // index of the schema change in origin 0's list
    log.per_origin.resize(n_origins);
    for (size_t o = 0; o < n_origins; ++o) {
      for (size_t s = 0; s < counts[o]; ++s) {
        std::string method;
        std::string arg;
        if (o == 0 && s == 0) {
          method = "schema";
          arg = encode_msgpack(Value(Map{{"document", json(kSchemaV1)}}));
        } else if (o == 0 && s == mid) {
          method = "schema";
          arg = encode_msgpack(
              Value(Map{{"document", json(spec_.unique_over_existing ? kSchemaV2UniqueTag : kSchemaV2)}}));
        } else {
          content(method, arg);
        }
        log.per_origin[o].push_back(Update::make(ids[o][s], s + 1, method, arg));
      }
    }
    for (const auto& list : log.per_origin)
      for (const auto& u : list) log.all[u.id()] = &u;
    log.reference_hash = fold(log.all).hash_hex();
    return log;
  }

 private:
  size_t pick(size_t n) { return static_cast<size_t>(rng_() % n); }
  std::string item_id() { return "i" + std::to_string(pick(spec_.item_ids)); }
  Value tag() { return Value("t" + std::to_string(pick(spec_.tags))); }
  Value small_int() { return Value(static_cast<int64_t>(pick(11)) - 5); }

  Value item_record_fields() {
    Map f{{"name", Value("n" + std::to_string(pick(4)))}, {"n", small_int()}};
    if (pick(2)) f["tag"] = tag();
    if (pick(4) == 0) f["note"] = Value("m" + std::to_string(pick(3)));  // valid only under v2
    if (pick(4) == 0) f["color"] = color();
    return f;
  }

  Value color() {
    static const char* members[] = {"Red", "Green", "Blue", "Yellow"};  // Yellow only under v2
    return Value::enumeration("Color", members[pick(4)]);
  }

  // One random update's method and encoded argument, on a small key space.
  void content(std::string& method, std::string& arg) {
    Value a;
    size_t r = pick(spec_.whole_type_writes ? 100 : 92);
    if (spec_.unique_over_existing && pick(3) == 0) {
      // Records sharing tags, then holders leaving and others taking the tag.
      const std::string id = item_id();
      switch (pick(4)) {
        case 0:
        case 1:
          method = "create";
          a = Value(Map{{"type", Value("Item")}, {"id", Value(id)},
                        {"fields", Value(Map{{"name", Value("u" + std::to_string(pick(8)))}, {"tag", tag()}})}});
          break;
        case 2:
          method = "delete";
          a = Value(Map{{"type", Value("Item")}, {"id", Value(id)}});
          break;
        default:
          method = "update";
          a = Value(Map{{"type", Value("Item")}, {"id", Value(id)}, {"fields", Value(Map{{"tag", tag()}})}});
          break;
      }
    } else if (r < 12) {
      method = "set";
      a = Value(Map{{"path", Value("k." + std::to_string(pick(4)))},
                    {"value", pick(2) ? small_int() : values_.any(2)}});
    } else if (r < 15) {
      method = "unset";
      a = Value(Map{{"path", Value(pick(2) ? "k." + std::to_string(pick(4)) : "Item." + item_id() + ".note")}});
    } else if (r < 24) {
      method = "inc";
      Value by = pick(15) == 0 ? Value(std::numeric_limits<int64_t>::max()) : small_int();
      if (pick(20) == 0) by = Value(0.5);
      a = Value(Map{{"path", Value("c." + std::to_string(pick(3)))}, {"by", by}});
    } else if (r < 32) {
      method = pick(2) ? "add" : "remove";
      static const char* members[] = {"a", "b", "c"};
      a = Value(Map{{"path", Value("s." + std::to_string(pick(2)))},
                    {"value", pick(4) ? Value(members[pick(3)]) : Value(int64_t{1})}});
    } else if (r < 44) {
      method = "create";
      a = Value(Map{{"type", Value("Item")}, {"id", Value(item_id())}, {"fields", item_record_fields()}});
    } else if (r < 60) {
      method = "update";
      Map fields;
      switch (pick(7)) {
        case 0: fields["name"] = Value("n" + std::to_string(pick(4))); break;
        case 1: fields["tag"] = tag(); break;
        case 2: fields["note"] = Value("m" + std::to_string(pick(3))); break;
        case 3: fields["color"] = color(); break;
        case 4: fields["n"] = small_int(); break;
        case 5: fields["name"] = Value(); break;  // unsetting a required field
        default: fields["tag"] = Value(); break;
      }
      a = Value(Map{{"type", Value("Item")}, {"id", Value(item_id())}, {"fields", Value(fields)}});
    } else if (r < 66) {
      method = "delete";
      a = Value(Map{{"type", Value("Item")}, {"id", Value(item_id())}});
    } else if (r < 74) {
      method = "set";
      const std::string id = item_id();
      if (pick(2)) a = Value(Map{{"path", Value(List{Value("Item"), Value(id), Value("n")})}, {"value", small_int()}});
      else a = Value(Map{{"path", Value(List{Value("Item"), Value(id), Value("tag")})},
                         {"value", tag()}});
    } else if (r < 80) {
      method = "resolve";  // a no-op unless that update is a conflict at this point
      a = Value(Map{{"update", Value(all_ids_[pick(all_ids_.size())].to_string())}});
    } else if (r < 84) {
      method = "frobnicate";  // unknown: kept, skipped in replay, counted
      a = Value(Map{{"x", small_int()}});
    } else if (r < 88) {
      method = pick(2) ? "set" : "create";
      arg = std::string("\xc1\x00not msgpack", 13);  // does not decode: a bad-argument conflict
      return;
    } else if (r < 92) {
      method = "set";  // a record of an undeclared type, or a stray value into records
      a = Value(Map{{"path", Value("k.rec")}, {"value", values_.any(3)}});
    } else if (r < 97) {
      method = "set";  // the whole map of Items at once
      Map items;
      for (size_t i = 1 + pick(2); i > 0; --i) items[item_id()] = Value::record("Item", item_record_fields().as_map());
      a = Value(Map{{"path", Value("Item")}, {"value", Value(items)}});
    } else {
      method = "unset";
      a = Value(Map{{"path", Value("Item")}});
    }
    arg = encode_msgpack(a);
  }

  std::mt19937_64& rng_;
  testing::RandomValues values_;
  LogSpec spec_;
  std::vector<UpdateId> all_ids_;
};

// --- arrival orders ---------------------------------------------------------------

enum class Style { kInterleave, kBursts, kLaggard, kWholeOrigins };
const char* style_name(Style s) {
  switch (s) {
    case Style::kInterleave: return "interleave";
    case Style::kBursts: return "bursts";
    case Style::kLaggard: return "laggard";
    case Style::kWholeOrigins: return "whole-origins";
  }
  return "?";
}

// An arrival order that keeps each origin's seq order.
std::vector<const Update*> arrival_order(const GeneratedLog& log, Style style, std::mt19937_64& rng) {
  const size_t n = log.per_origin.size();
  std::vector<size_t> next(n, 0);
  std::vector<const Update*> out;
  auto take = [&](size_t o, size_t k) {
    for (; k > 0 && next[o] < log.per_origin[o].size(); --k) out.push_back(&log.per_origin[o][next[o]++]);
  };
  auto open_origins = [&](std::optional<size_t> except) {
    std::vector<size_t> v;
    for (size_t o = 0; o < n; ++o)
      if (next[o] < log.per_origin[o].size() && o != except) v.push_back(o);
    return v;
  };
  switch (style) {
    case Style::kInterleave:
    case Style::kBursts:
      for (auto v = open_origins({}); !v.empty(); v = open_origins({}))
        take(v[rng() % v.size()], style == Style::kInterleave ? 1 : 1 + rng() % 25);
      break;
    case Style::kLaggard: {
      const size_t lag = rng() % n;  // an origin whose updates arrive far behind everyone else's
      for (auto v = open_origins(lag); !v.empty(); v = open_origins(lag)) {
        if (rng() % 10 == 0) take(lag, 1 + rng() % 3);
        take(v[rng() % v.size()], 1 + rng() % 5);
      }
      take(lag, log.per_origin[lag].size());
      break;
    }
    case Style::kWholeOrigins: {
      std::vector<size_t> perm(n);
      for (size_t i = 0; i < n; ++i) perm[i] = i;
      std::shuffle(perm.begin(), perm.end(), rng);
      for (size_t o : perm) take(o, log.per_origin[o].size());
      break;
    }
  }
  return out;
}

// --- a node fed from outside --------------------------------------------------------

struct TrialConfig {
  uint64_t checkpoint_interval = 1000;
  size_t undo_window = 4;
  size_t checkpoints_kept = 3;
  int restart_one_in = 12;  // batches
  int check_one_in = 4;     // batches: compare with the fold of what was delivered
  size_t max_batch = 8;
};

class FedNode {
 public:
  FedNode(const std::string& dir, int64_t now_ms, const TrialConfig& config) : clock_(now_ms), config_(config) {
    options_.dir = dir;
    options_.verify_origins = false;  // hand-made updates: replay, not proof
    options_.clock = &clock_;
    options_.undo_window = config.undo_window;
    options_.checkpoint_interval = config.checkpoint_interval;
    options_.checkpoints_kept = config.checkpoints_kept;
    InitOptions init;
    init.dir = dir;
    init.clock = &clock_;
    Status s = Node::init(init);
    EXPECT_TRUE(s) << s.message();
    open();
  }

  void open() {
    auto n = Node::open(options_);
    ASSERT_TRUE(n) << n.status().message();
    node_ = std::move(n).value();
  }
  void restart() {
    ++restarts_;
    ASSERT_TRUE(node_->close().is_ok());
    node_.reset();
    open();
  }
  void close() {
    if (!node_) return;
    ASSERT_TRUE(node_->close().is_ok());
    node_.reset();
  }

  // Ingests one batch whose new updates are `fresh` (in order) and whose
  // repeats are `repeats`; checks the report.
  void ingest(const std::vector<const Update*>& fresh, const std::vector<const Update*>& repeats,
              std::mt19937_64& rng) {
    std::vector<Update> batch;
    for (const auto* u : fresh) batch.push_back(*u);
    for (const auto* u : repeats) batch.insert(batch.begin() + static_cast<long>(rng() % (batch.size() + 1)), *u);
    auto r = node_->ingest(std::move(batch));
    ASSERT_TRUE(r) << r.status().message();
    EXPECT_EQ(r->accepted, fresh.size());
    EXPECT_EQ(r->duplicates, repeats.size());
    EXPECT_EQ(r->forks, 0u);
    EXPECT_FALSE(r->origin_changed) << "the log's origins are not this node's";
    for (const auto& ref : r->refused)
      ADD_FAILURE() << "refused (" << verdict_name(ref.verdict) << "): " << ref.detail;
  }

  Node& node() { return *node_; }
  const std::string& dir() const { return options_.dir; }
  int restarts() const { return restarts_; }

 private:
  ManualClock clock_;
  TrialConfig config_;
  NodeOptions options_;
  std::unique_ptr<Node> node_;
  int restarts_ = 0;
};

void expect_node_state(Node& node, const std::map<UpdateId, const Update*>& delivered, const std::string& when) {
  State want = fold(delivered);
  std::string got_hash = node.state_hash();
  if (got_hash == want.hash_hex()) return;
  std::string diff;
  node.read([&](const State& got) { diff = describe_difference(got, want); });
  ADD_FAILURE() << when << ": the node's state differs from the fold of the " << delivered.size()
                << " updates it holds" << diff;
}

// Feeds `order` to a fresh node in random small batches with repeats and
// restarts; checks the state against the fold of what was delivered.
void run_trial(const GeneratedLog& log, const std::vector<const Update*>& order, const std::string& dir,
               const TrialConfig& config, std::mt19937_64& rng) {
  FedNode fed(dir, log.max_millis + 1000, config);
  if (::testing::Test::HasFatalFailure()) return;
  std::map<UpdateId, const Update*> delivered;
  size_t pos = 0;
  int batch_no = 0;
  while (pos < order.size()) {
    ++batch_no;
    size_t b = std::min(order.size() - pos, 1 + static_cast<size_t>(rng() % config.max_batch));
    std::vector<const Update*> fresh(order.begin() + static_cast<long>(pos),
                                            order.begin() + static_cast<long>(pos + b));
    std::vector<const Update*> repeats;
    if (pos > 0 && rng() % 6 == 0) repeats.push_back(order[rng() % pos]);
    fed.ingest(fresh, repeats, rng);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "at batch " << batch_no << " (updates " << pos << ".." << pos + b << ")";
      return;
    }
    for (const auto* u : fresh) delivered[u->id()] = u;
    pos += b;
    if (rng() % config.restart_one_in == 0) {
      fed.restart();
      if (::testing::Test::HasFatalFailure()) return;
      expect_node_state(fed.node(), delivered, "after restart at batch " + std::to_string(batch_no));
    } else if (rng() % config.check_one_in == 0) {
      expect_node_state(fed.node(), delivered, "after batch " + std::to_string(batch_no));
    }
    if (::testing::Test::HasFailure()) return;
  }

  EXPECT_EQ(fed.node().state_hash(), log.reference_hash) << "final state after all " << log.size() << " updates";
  expect_node_state(fed.node(), log.all, "final");
  NodeInfo info = fed.node().info();
  EXPECT_EQ(info.updates, log.size());
  for (size_t o = 0; o < log.origins.size(); ++o) {
    auto it = info.vector.find(log.origins[o]);
    ASSERT_NE(it, info.vector.end());
    EXPECT_EQ(it->second, log.per_origin[o].size());
  }
  fed.close();

  auto report = verify_data_dir(dir, shared_builtins());
  ASSERT_TRUE(report) << report.status().message();
  for (const auto& p : report->problems) ADD_FAILURE() << "verify: " << p;
  EXPECT_EQ(report->scratch_hash, log.reference_hash);
  EXPECT_EQ(report->loaded_hash, log.reference_hash);

  fed.open();  // restart = newest checkpoint + tail
  if (::testing::Test::HasFatalFailure()) return;
  EXPECT_EQ(fed.node().state_hash(), log.reference_hash) << "after the final restart";
  fed.close();
}

// Runs trials over fresh logs, every style, intervals 1 and 1,000, until the
// count or the time budget runs out, but never fewer than `min_trials` (8: one
// whole log through every arrival style and both checkpoint intervals).
void run_property(const LogSpec& spec, int max_logs, std::chrono::seconds budget, int min_trials,
                  int restart_one_in = 12) {
  auto rng = testing::seeded_rng();
  TempDir tmp;
  const auto deadline = SteadyClock::now() + testing::scaled_budget(budget);
  int trials = 0;
  // The budget cuts only trials beyond the minimum: a loaded machine makes the test slower, never emptier.
  auto out_of_time = [&] { return trials >= min_trials && SteadyClock::now() > deadline; };
  for (int l = 0; l < max_logs && !out_of_time(); ++l) {
    LogGenerator gen(rng, spec);
    GeneratedLog log = gen.make();
    {
      State ref = fold(log.all);
      std::map<std::string, int> kinds;
      for (const auto& [id, c] : ref.conflicts()) ++kinds[conflict_kind_name(c.kind)];
      std::cerr << "log " << l << ": " << log.size() << " updates from " << log.origins.size() << " origins; "
                << ref.conflicts().size() << " conflicts (";
      for (const auto& [k, n] : kinds) std::cerr << k << " " << n << " ";
      const Value* items = ref.get({"Item"});
      std::cerr << "), " << (items && items->is_map() ? items->as_map().size() : 0) << " items, "
                << ref.unknown_method_updates() << " unknown-method updates\n";
    }
    for (Style style : {Style::kInterleave, Style::kBursts, Style::kLaggard, Style::kWholeOrigins}) {
      for (uint64_t interval : {uint64_t{1}, uint64_t{1000}}) {
        if (out_of_time()) break;
        TrialConfig config;
        config.checkpoint_interval = interval;
        config.restart_one_in = restart_one_in;
        static const size_t windows[] = {4, 4, 1, 16};
        config.undo_window = windows[rng() % 4];
        config.checkpoints_kept = 2 + rng() % 2;
        auto order = arrival_order(log, style, rng);
        ASSERT_EQ(order.size(), log.size());
        const std::string dir = tmp.path() + "/trial" + std::to_string(trials++);
        SCOPED_TRACE(std::string("log ") + std::to_string(l) + " (" + std::to_string(log.size()) + " updates, " +
                     std::to_string(log.origins.size()) + " origins), order " + style_name(style) +
                     ", checkpoint_interval " + std::to_string(interval) + ", undo_window " +
                     std::to_string(config.undo_window));
        run_trial(log, order, dir, config, rng);
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
  testing::report_trials("trials", trials, max_logs * 8, min_trials);
}

TEST(ReplayProperty, ArrivalOrderRestartsAndCheckpointsDoNotChangeState) {
  run_property(LogSpec{}, 6, std::chrono::seconds(25), /*min_trials=*/8);
}

// Whole record maps written at once and a schema that makes an existing field
// unique: the unique index must still be a function of the log alone, so a
// node that reloaded a checkpoint agrees with one that did not.
TEST(ReplayProperty, UniqueConstraintsDoNotDependOnCheckpointsOrRestarts) {
  LogSpec spec;
  spec.whole_type_writes = true;
  spec.unique_over_existing = true;
  spec.item_ids = 4;
  spec.tags = 2;
  run_property(spec, 4, std::chrono::seconds(15), /*min_trials=*/8, 3);
}

// The same property without I/O, on many logs: folding with a checkpoint
// round trip (State::encode/decode, as a restart or a far-late update does) at
// any position, or undoing the newest k updates and replaying them, gives the
// fold of the log.
TEST(ReplayProperty, CheckpointRoundTripAndUndoAtAnyPositionKeepTheFold) {
  auto rng = testing::seeded_rng();
  const auto deadline = SteadyClock::now() + testing::scaled_budget(std::chrono::seconds(10));
  int logs = 0;
  for (; logs < 150 && (logs < 20 || SteadyClock::now() < deadline); ++logs) {  // 20 always run
    LogSpec spec;
    spec.whole_type_writes = logs % 2 == 1;
    spec.unique_over_existing = logs % 4 >= 2;
    spec.item_ids = 3 + rng() % 4;
    spec.tags = 2 + rng() % 2;
    LogGenerator gen(rng, spec);
    GeneratedLog log = gen.make();
    SCOPED_TRACE(std::string("whole-type writes ") + (spec.whole_type_writes ? "yes" : "no") +
                 ", unique over existing values " + (spec.unique_over_existing ? "yes" : "no"));
    std::vector<Update> updates;
    for (const auto& [id, u] : log.all) {
      auto parsed = Update::parse(id, u->body());
      ASSERT_TRUE(parsed) << parsed.status().message();
      updates.push_back(std::move(parsed).value());
    }

    // A reload from a checkpoint at position p (after p updates).
    for (int t = 0; t < 6; ++t) {
      const size_t p = 1 + rng() % (updates.size() - 1);
      Replayer before(builtins(), 0);
      for (size_t i = 0; i < p; ++i) before.apply(updates[i].view());
      auto state = State::decode(before.state().encode());
      ASSERT_TRUE(state) << state.status().message();
      ASSERT_EQ(state->hash_hex(), before.state().hash_hex()) << "checkpoint round trip at " << p;
      Replayer after(builtins(), 0);
      after.reset(std::move(state).value(), updates[p - 1].id(), before.applied_vector());
      for (size_t i = p; i < updates.size(); ++i) after.apply(updates[i].view());
      if (after.state().hash_hex() != log.reference_hash) {
        Replayer full(builtins(), 0);
        for (const auto& u : updates) full.apply(u.view());
        FAIL() << "log " << logs << " (" << updates.size() << " updates): a reload from a checkpoint after update "
               << p << " (" << updates[p - 1].id().to_string() << ") changes the fold"
               << describe_difference(after.state(), full.state());
      }
    }

    // Undo the newest k from memory and replay them, at several points.
    Replayer r(builtins(), 32);
    size_t i = 0;
    while (i < updates.size()) {
      size_t step = 1 + rng() % 40;
      for (; step > 0 && i < updates.size(); --step) r.apply(updates[i++].view());
      const size_t k = std::min<size_t>(1 + rng() % 32, r.undo_depth());
      const State before = r.state();
      ASSERT_TRUE(r.can_rollback_to(updates[i - k].id()));
      r.rollback_to(updates[i - k].id());
      ASSERT_EQ(r.last_applied().has_value(), i > k);
      for (size_t j = i - k; j < i; ++j) r.apply(updates[j].view());
      ASSERT_EQ(r.state().hash_hex(), before.hash_hex())
          << "log " << logs << " (" << updates.size() << " updates): undo of the newest " << k
          << " updates and redo at " << i << " changes the fold" << describe_difference(r.state(), before);
    }
    ASSERT_EQ(r.state().hash_hex(), log.reference_hash);
  }
  testing::report_trials("logs", logs, 150, /*minimum=*/20);
}

// --- a unique constraint added over records that already share a value ---------------
//
// "schema ... always applies; its constraints bind later updates only": a
// schema that makes `tag` unique while two records already share a tag leaves
// both in place. Which later updates conflict must then follow from the log
// alone, not from whether a node got there by undo, by a checkpoint reload or
// straight through.

struct FixedLog {
  std::vector<Update> a, b;  // origin A's and origin B's updates, seq order
  GeneratedLog log;
};

const char* kTagsV1 = R"({"records": {"Item": {"fields": {"name": "string", "tag": "string", "n": "int"}}}})";
const char* kTagsV2 = R"({"records": {"Item": {"fields": {"name": "string", "tag": "string", "n": "int"},
                                              "unique": ["tag"]}}})";

// A's updates at kT0 + 10 * i; B's single update `late` at kT0 + 10 * late_pos + 5.
FixedLog fixed_log(const std::vector<std::pair<std::string, std::string>>& a_calls,
                   std::optional<std::pair<std::string, std::string>> b_call, size_t b_after) {
  const OriginId A = 0x0a0000000000000aULL, B = 0x0b0000000000000bULL;
  FixedLog f;
  for (size_t i = 0; i < a_calls.size(); ++i)
    f.a.push_back(Update::make(UpdateId{hlc::make(kT0 + 10 * static_cast<int64_t>(i), 0), A}, i + 1,
                               a_calls[i].first, encode_msgpack(json(a_calls[i].second))));
  if (b_call)
    f.b.push_back(Update::make(UpdateId{hlc::make(kT0 + 10 * static_cast<int64_t>(b_after) + 5, 0), B}, 1,
                               b_call->first, encode_msgpack(json(b_call->second))));
  f.log.origins = {A, B};
  f.log.per_origin = {f.a, f.b};
  for (const auto& list : f.log.per_origin)
    for (const auto& u : list) f.log.all[u.id()] = &u;
  f.log.max_millis = kT0 + 10 * static_cast<int64_t>(a_calls.size());
  f.log.reference_hash = fold(f.log.all).hash_hex();
  return f;
}

std::string schema_arg(const char* doc) { return std::string(R"({"document": )") + doc + "}"; }

TEST(ReplayProperty, UniqueOverExistingDuplicatesDoesNotDependOnALateArrival) {
  // In key order: L (B's update) sorts between the schema change and A's retag.
  FixedLog f = fixed_log(
      {
          {"schema", schema_arg(kTagsV1)},
          {"create", R"({"type": "Item", "id": "i1", "fields": {"name": "a", "tag": "t0"}})"},
          {"create", R"({"type": "Item", "id": "i2", "fields": {"name": "b", "tag": "t0"}})"},
          {"schema", schema_arg(kTagsV2)},
          {"update", R"({"type": "Item", "id": "i1", "fields": {"tag": "t1"}})"},
          {"update", R"({"type": "Item", "id": "i2", "fields": {"n": 5}})"},
      },
      std::make_pair(std::string("update"), std::string(R"({"type": "Item", "id": "i2", "fields": {"n": 7}})")), 3);
  const GeneratedLog& log = f.log;
  TempDir tmp;
  for (size_t undo : {size_t{4}, size_t{1024}}) {
    SCOPED_TRACE("undo_window " + std::to_string(undo));
    TrialConfig config;
    config.undo_window = undo;
    config.restart_one_in = 1 << 30;
    const std::string dir = tmp.path() + "/undo" + std::to_string(undo);
    FedNode fed(dir, log.max_millis + 1000, config);
    if (HasFatalFailure()) return;
    std::mt19937_64 rng(1);
    // A's six updates, then B's update, which sorts before A's last two (undone and redone).
    std::vector<const Update*> a_all;
    for (const auto& u : f.a) a_all.push_back(&u);
    fed.ingest(a_all, {}, rng);
    fed.ingest({&f.b[0]}, {}, rng);
    expect_node_state(fed.node(), log.all, "B's update arrived two positions late");
    fed.close();
  }
}

TEST(ReplayProperty, UniqueOverExistingDuplicatesDoesNotDependOnCheckpoints) {
  FixedLog f = fixed_log(
      {
          {"schema", schema_arg(kTagsV1)},
          {"create", R"({"type": "Item", "id": "i1", "fields": {"name": "a", "tag": "t0"}})"},
          {"create", R"({"type": "Item", "id": "i2", "fields": {"name": "b", "tag": "t0"}})"},
          {"schema", schema_arg(kTagsV2)},
          {"delete", R"({"type": "Item", "id": "i1"})"},
          {"create", R"({"type": "Item", "id": "i3", "fields": {"name": "c", "tag": "t0"}})"},
      },
      std::nullopt, 0);
  const GeneratedLog& log = f.log;
  TempDir tmp;
  // Restart after each update in turn: the checkpoint cut lands at every position.
  for (size_t restart_after = 1; restart_after <= f.a.size(); ++restart_after) {
    SCOPED_TRACE("restart after update " + std::to_string(restart_after));
    TrialConfig config;
    config.undo_window = 1;
    config.checkpoint_interval = 1;
    const std::string dir = tmp.path() + "/r" + std::to_string(restart_after);
    FedNode fed(dir, log.max_millis + 1000, config);
    if (HasFatalFailure()) return;
    std::mt19937_64 rng(1);
    std::map<UpdateId, const Update*> delivered;
    for (size_t i = 0; i < f.a.size(); ++i) {
      fed.ingest({&f.a[i]}, {}, rng);
      delivered[f.a[i].id()] = &f.a[i];
      if (i + 1 == restart_after) fed.restart();
      if (HasFatalFailure()) return;
    }
    expect_node_state(fed.node(), log.all, "final");
    fed.close();
    auto report = verify_data_dir(dir, shared_builtins());
    ASSERT_TRUE(report) << report.status().message();
    for (const auto& p : report->problems) ADD_FAILURE() << "verify: " << p;
  }
}

// --- the schema change applies from its position in every order ---------------------

TEST(ReplayProperty, MidLogSchemaChangeAppliesFromItsPositionInEveryOrder) {
  auto rng = testing::seeded_rng();
  TempDir tmp;
  const OriginId S = 0x5c4e3a0000000001ULL, A = 0x0a00000000000002ULL;
  const char* v1 = R"({"records": {"Item": {"fields": {"name": "string", "n": "int"}, "required": ["name"],
                                             "unique": ["name"]}}})";
  const char* v2 = R"({"records": {"Item": {"fields": {"name": "string", "n": "int", "note": "string"},
                                             "required": ["name"], "unique": ["name"]}}})";
  auto mk = [](OriginId o, uint64_t seq, int64_t ms, const std::string& method, const Value& arg) {
    return Update::make(UpdateId{hlc::make(ms, 0), o}, seq, method, encode_msgpack(arg));
  };
  std::vector<Update> s_updates = {
      mk(S, 1, kT0 - 1000, "schema", Value(Map{{"document", json(v1)}})),
      mk(S, 2, kT0 + 100, "schema", Value(Map{{"document", json(v2)}})),
  };
  std::vector<Update> a_updates;
  a_updates.push_back(mk(A, 1, kT0, "create", json(R"({"type": "Item", "id": "x", "fields": {"name": "x"}})")));
  std::vector<UpdateId> before, after;
  for (int k = 0; k < 3; ++k) {  // valid only under v2, but sorted before it
    a_updates.push_back(mk(A, a_updates.size() + 1, kT0 + 10 + 10 * k, "update",
                           Value(Map{{"type", Value("Item")}, {"id", Value("x")},
                                     {"fields", Value(Map{{"note", Value("before-" + std::to_string(k))}})}})));
    before.push_back(a_updates.back().id());
  }
  for (int k = 0; k < 3; ++k) {  // sorted after v2
    a_updates.push_back(mk(A, a_updates.size() + 1, kT0 + 200 + 10 * k, "update",
                           Value(Map{{"type", Value("Item")}, {"id", Value("x")},
                                     {"fields", Value(Map{{"note", Value("after-" + std::to_string(k))}})}})));
    after.push_back(a_updates.back().id());
  }
  a_updates.push_back(mk(A, a_updates.size() + 1, kT0 + 300, "create",
                         json(R"({"type": "Item", "id": "y", "fields": {"name": "y", "note": "only-v2"}})")));
  after.push_back(a_updates.back().id());

  GeneratedLog log;
  log.origins = {S, A};
  log.per_origin = {s_updates, a_updates};
  for (const auto& list : log.per_origin)
    for (const auto& u : list) log.all[u.id()] = &u;
  log.max_millis = kT0 + 300;
  State ref = fold(log.all);
  log.reference_hash = ref.hash_hex();

  // The reference itself: before-updates are schema conflicts at the note field, after-updates apply.
  for (const auto& id : before) {
    auto it = ref.conflicts().find(id);
    ASSERT_NE(it, ref.conflicts().end()) << "reference: " << id.to_string() << " should be a conflict";
    EXPECT_EQ(it->second.kind, ConflictKind::kSchema);
  }
  for (const auto& id : after) EXPECT_FALSE(ref.conflicts().count(id)) << "reference: " << id.to_string();
  ASSERT_NE(ref.get({"Item", "x", "note"}), nullptr);
  EXPECT_EQ(*ref.get({"Item", "x", "note"}), Value("after-2"));

  // Every position of S's two updates among A's, one update per batch, so the
  // schema update arrives anywhere from first to many positions late.
  int trials = 0;
  const auto deadline = SteadyClock::now() + testing::scaled_budget(std::chrono::seconds(15));
  const size_t na = a_updates.size();
  const int planned = static_cast<int>((na + 1) * (na + 2) / 2);
  for (size_t p1 = 0; p1 <= na; ++p1) {
    for (size_t p2 = p1; p2 <= na; ++p2) {
      if (trials >= std::min(planned, 20) && SteadyClock::now() > deadline) break;  // 20 always run
      std::vector<const Update*> order;
      for (size_t i = 0; i <= na; ++i) {
        if (i == p1) order.push_back(&s_updates[0]);
        if (i == p2) order.push_back(&s_updates[1]);
        if (i < na) order.push_back(&a_updates[i]);
      }
      TrialConfig config;
      config.checkpoint_interval = trials % 2 ? 1 : 1000;
      config.undo_window = trials % 3 == 0 ? 1 : 4;
      config.max_batch = 1 + rng() % 2;
      config.restart_one_in = 6;
      config.check_one_in = 1;
      const std::string dir = tmp.path() + "/order" + std::to_string(trials++);
      SCOPED_TRACE("schema v1 delivered at " + std::to_string(p1) + ", v2 at " + std::to_string(p2) +
                   ", checkpoint_interval " + std::to_string(config.checkpoint_interval) + ", undo_window " +
                   std::to_string(config.undo_window));
      {
        FedNode fed(dir, log.max_millis + 1000, config);
        if (HasFatalFailure()) return;
        std::map<UpdateId, const Update*> delivered;
        size_t pos = 0;
        while (pos < order.size()) {
          size_t b = std::min(order.size() - pos, 1 + static_cast<size_t>(rng() % config.max_batch));
          std::vector<const Update*> fresh(order.begin() + static_cast<long>(pos),
                                                  order.begin() + static_cast<long>(pos + b));
          fed.ingest(fresh, {}, rng);
          for (const auto* u : fresh) delivered[u->id()] = u;
          pos += b;
          if (rng() % config.restart_one_in == 0) fed.restart();
          if (HasFatalFailure()) return;
          expect_node_state(fed.node(), delivered, "after " + std::to_string(pos) + " updates");
          if (HasFailure()) return;
        }
        fed.node().read([&](const State& st) {
          for (const auto& id : before) {
            auto it = st.conflicts().find(id);
            ASSERT_NE(it, st.conflicts().end()) << id.to_string() << " sorts before the schema change: a conflict";
            EXPECT_EQ(it->second.kind, ConflictKind::kSchema);
            EXPECT_EQ(it->second.path, (Path{"Item", "x", "note"}));
          }
          for (const auto& id : after)
            EXPECT_FALSE(st.conflicts().count(id)) << id.to_string() << " sorts after the schema change: applied";
          const Value* note = st.get({"Item", "x", "note"});
          ASSERT_NE(note, nullptr);
          EXPECT_EQ(*note, Value("after-2"));
          const Value* y = st.get({"Item", "y", "note"});
          ASSERT_NE(y, nullptr);
          EXPECT_EQ(*y, Value("only-v2"));
          auto item = st.schema().find_record("Item");
          ASSERT_NE(item, nullptr);
          EXPECT_NE(item->find_field("note"), nullptr) << "v2 is the schema in force";
        });
        EXPECT_EQ(fed.node().state_hash(), log.reference_hash);
        fed.close();
      }
      auto report = verify_data_dir(dir, shared_builtins());
      ASSERT_TRUE(report) << report.status().message();
      for (const auto& p : report->problems) ADD_FAILURE() << "verify: " << p;
      EXPECT_EQ(report->loaded_hash, log.reference_hash);
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      if (HasFailure()) return;
    }
  }
  testing::report_trials("orders", trials, planned, /*minimum=*/std::min(planned, 20));
}

// Replay reads the built-in set's argument straight from its bytes when it has
// the usual shape. Whatever the bytes, the fold must be the one of decoding the
// whole argument and calling set: checked against a registry whose set is the
// built-in behind a wrapper, which replay cannot recognise and so decodes.
TEST(ReplayProperty, SetReadFromItsBytesFoldsAsTheDecodedArgument) {
  auto rng = testing::seeded_rng();
  testing::RandomValues values(rng);
  MethodRegistry wrapped;
  const MethodFn& builtin_set = *builtins().find("set");
  ASSERT_TRUE(wrapped.add("set", "1", [&](MethodContext& ctx, Value& arg) { return builtin_set(ctx, arg); }));

  auto str = [](std::string_view s) {  // a str with a str8 header, as another encoder may write it
    std::string out{static_cast<char>(0xd9), static_cast<char>(s.size())};
    return out.append(s);
  };
  auto deep = [](int levels) {
    Value v(int64_t{1});
    for (int i = 0; i < levels; ++i) v = Value(List{std::move(v)});
    return v;
  };
  const char* paths[] = {"a", "a.b", "a.b.c", "a..b", "", ".", "a.", "Task.t1", "é.日本", "$x.0"};
  std::vector<std::string> args;
  for (int i = 0; i < 3000; ++i) {
    std::string path = paths[values.pick(10)];
    Value value = values.pick(4) == 0 ? Value(values.text()) : values.any();
    std::string usual = encode_msgpack(Value(Map{{"path", Value(path)}, {"value", value}}));
    switch (values.pick(12)) {
      case 0:  // the keys the other way round
        args.push_back(std::string("\x82\xa5value") + encode_msgpack(value) + "\xa4path" + encode_msgpack(Value(path)));
        break;
      case 1:  // str8 headers for the keys and the path
        args.push_back("\x82" + str("path") + str(path) + str("value") + encode_msgpack(value));
        break;
      case 2:  // a path that is not valid UTF-8
        args.push_back("\x82\xa4path" + str(path + "\xff") + "\xa5value" + encode_msgpack(value));
        break;
      case 3:  // a list path
        args.push_back(encode_msgpack(Value(Map{{"path", Value(List{Value(path), Value("z")})}, {"value", value}})));
        break;
      case 4:  // a third key
        args.push_back(encode_msgpack(Value(Map{{"path", Value(path)}, {"value", value}, {"x", Value(1)}})));
        break;
      case 5:  // no value
        args.push_back(encode_msgpack(Value(Map{{"path", Value(path)}})));
        break;
      case 6:  // cut short, or a byte too many
        args.push_back(values.pick(2) ? usual.substr(0, usual.size() - 1 - static_cast<size_t>(values.pick(3)))
                                      : usual + "\xc0");
        break;
      case 7:  // nested right at the depth limit, or one deeper
        args.push_back(encode_msgpack(
            Value(Map{{"path", Value(path)}, {"value", deep(static_cast<int>(limits::kMaxDepth) - 1 + values.pick(2))}})));
        break;
      case 8:  // a value that is not valid UTF-8 text
        args.push_back("\x82\xa4path" + encode_msgpack(Value(path)) + "\xa5value" + str("ok\xc3"));
        break;
      default:
        args.push_back(usual);
    }
  }

  Replayer fast(builtins(), 8), decoded(wrapped, 8);
  const OriginId origin = 0x0c0000000000000cULL;
  size_t applied = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    Update u = Update::make(UpdateId{hlc::make(kT0 + static_cast<int64_t>(i), 0), origin}, i + 1, "set", args[i]);
    auto a = fast.apply(u.view());
    auto b = decoded.apply(u.view());
    applied += a.outcome == Replayer::Outcome::kApplied;
    ASSERT_EQ(a.outcome, b.outcome) << "argument " << i << ": " << to_hex(args[i]);
    ASSERT_EQ(a.failure.has_value(), b.failure.has_value()) << "argument " << i << ": " << to_hex(args[i]);
    if (a.failure) {
      ASSERT_EQ(a.failure->kind, b.failure->kind) << "argument " << i << ": " << to_hex(args[i]);
      ASSERT_EQ(a.failure->path, b.failure->path) << "argument " << i << ": " << to_hex(args[i]);
    }
  }
  // Both kinds of outcome occur often enough to mean something.
  EXPECT_GT(applied, args.size() / 8);
  EXPECT_GT(args.size() - applied, args.size() / 8);
  EXPECT_EQ(fast.state().hash_hex(), decoded.state().hash_hex());
  EXPECT_EQ(fast.state().encode(), decoded.state().encode());
  // And taken back alike.
  fast.rollback_newest(8);
  decoded.rollback_newest(8);
  EXPECT_EQ(fast.state().encode(), decoded.state().encode());
}

}  // namespace
}  // namespace replog

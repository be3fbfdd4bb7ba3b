// replog_bench: measures the performance figures of docs/BENCHMARKS.md in one
// run, each against a raw limit measured in the same run on the same file
// system (plain LMDB doing the same puts, plain MessagePack decoding of the
// same records), and prints a table (or JSON with --json).
//
//   replog_bench [--quick] [--dir DIR] [--only NAME[,NAME...]] [--json] [--keep]
//                [--updates N] [--paths N] [--ops N] [--stream N] [--batch N]
//
// Figures (NAME for --only): single, group, ingest, replay, late, restart, memory.
// Goals are reported as met / NOT met; the program never fails because of one.
// It exits non-zero only when the library returns an error or a result is wrong
// (a hash that differs, an update refused).
#include <fcntl.h>
#include <lmdb.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "node/core/clock.h"
#include "node/core/hlc.h"
#include "node/core/methods.h"
#include "node/engine/node.h"
#include "node/core/replayer.h"
#include "node/core/state.h"
#include "protocol/msgpack_codec.h"
#include "replog/value.h"
#include "protocol/update.h"
#include "storage/update_log.h"
#include "bench_common.h"

#ifndef REPLOG_CLI_PATH
#define REPLOG_CLI_PATH ""
#endif

namespace fs = std::filesystem;
using namespace replog;
using namespace replog::bench;

[[noreturn]] void replog::bench::die(const std::string& what) {
  std::fprintf(stderr, "replog_bench: %s\n", what.c_str());
  std::exit(1);
}

namespace {

// --- small helpers ---------------------------------------------------------------

using Steady = std::chrono::steady_clock;

double seconds_since(Steady::time_point t0) {
  return std::chrono::duration<double>(Steady::now() - t0).count();
}

Steady::time_point g_start = Steady::now();

void progress(const std::string& msg) {
  std::fprintf(stderr, "[%7.1fs] %s\n", seconds_since(g_start), msg.c_str());
}

// --- options ------------------------------------------------------------------------

struct Options {
  bool quick = false;
  bool json = false;
  bool keep = false;
  std::string dir;              // parent of the temp dir
  std::set<std::string> only;   // empty: all
  uint64_t updates = 1'000'000; // ingest / replay / restart / memory dataset
  uint64_t paths = 10'000;
  uint64_t single_ops = 10'000; // durable single appends (each side)
  uint64_t group_ops = 2'000;   // per thread, 8 threads
  uint64_t stream = 100'000;    // late-arrival stream
  uint64_t batch = 10;          // late-arrival stream: updates per Node::ingest
  uint64_t late_base = 20'000;  // updates applied before the k-late measurements
  int restart_runs = 5;
  double time_cap_s = 30;       // per durable loop
  std::string cli = REPLOG_CLI_PATH;
};

Options g_opt;

bool wanted(const std::string& name) { return g_opt.only.empty() || g_opt.only.count(name) > 0; }

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// CPU-bound figures are repeated and the fastest run is kept: other processes
// on a shared machine only ever add time.
constexpr int kCpuReps = 3;

// --- the result table -------------------------------------------------------------------

std::vector<Row> g_rows;

void add_row(Row r) {
  progress("  => " + r.fig + " " + r.name + ": " + r.measured + " | raw " + r.raw + " | " + r.ratio +
           (r.met < 0 ? "" : (r.met ? " | goal met" : " | goal NOT met")));
  g_rows.push_back(std::move(r));
}

// --- the workload ---------------------------------------------------------------------

constexpr OriginId kOriginBase = 0x0b0b000000000001ULL;  // dataset origins: base + 0..7
constexpr OriginId kLateOrigin = 0x0c0c000000000001ULL;
constexpr OriginId kRawOrigin = 0x0d0d000000000001ULL;

std::string path_text(uint64_t i) { return "bench.p" + std::to_string(i % g_opt.paths); }

std::string value_text(uint64_t i) {
  std::string s = "value-" + std::to_string(i) + "-";
  s.resize(100, 'x');
  return s;
}

Value set_value(uint64_t i) { return Value(Map{{"path", Value(path_text(i))}, {"value", Value(value_text(i))}}); }
std::string set_arg(uint64_t i) { return encode_msgpack(set_value(i)); }

// Timestamps start ten minutes in the past, so that the clock-skew check of
// ingest passes whatever the batch size; 1e6 updates take ~15 ms of hlc.
const uint64_t g_base_hlc = hlc::make(wall_ms() - 600'000, 0);

// Update i of the main dataset: 4 origins in turn, hlc rising by one.
EncodedUpdate dataset_update(uint64_t i) {
  OriginId origin = kOriginBase + i % 4;
  uint64_t seq = i / 4 + 1;
  return EncodedUpdate{UpdateId{g_base_hlc + i, origin}, encode_body(seq, "set", set_arg(i))};
}

// --- raw LMDB: the reference ------------------------------------------------------------

// An environment with the library's flags (MDB_NOTLS, durable commits) and two
// databases: "log" (16-byte key -> body) and "index" (origin||seq -> key).
struct RawEnv {
  MDB_env* env = nullptr;
  MDB_dbi log = 0, index = 0;

  explicit RawEnv(const std::string& dir) {
    fs::create_directories(dir);
    mdb_check(mdb_env_create(&env), "mdb_env_create");
    mdb_env_set_maxdbs(env, 4);
    mdb_check(mdb_env_set_mapsize(env, size_t{16} << 30), "mdb_env_set_mapsize");
    mdb_check(mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0600), "mdb_env_open " + dir);
    MDB_txn* txn;
    mdb_check(mdb_txn_begin(env, nullptr, 0, &txn), "begin");
    mdb_check(mdb_dbi_open(txn, "log", MDB_CREATE, &log), "open log");
    mdb_check(mdb_dbi_open(txn, "index", MDB_CREATE, &index), "open index");
    mdb_check(mdb_txn_commit(txn), "commit");
  }
  ~RawEnv() { mdb_env_close(env); }

  void put_update(MDB_txn* txn, const UpdateId& id, uint64_t seq, std::string_view body) {
    auto key = id.key();
    MDB_val k{key.size(), key.data()}, v{body.size(), const_cast<char*>(body.data())};
    mdb_check(mdb_put(txn, log, &k, &v, MDB_NOOVERWRITE), "put log");
    char ik[16];
    put_u64_be(ik, id.origin);
    put_u64_be(ik + 8, seq);
    MDB_val k2{sizeof ik, ik}, v2{key.size(), key.data()};
    mdb_check(mdb_put(txn, index, &k2, &v2, 0), "put index");
  }
};

// --- temp directories -------------------------------------------------------------------------

std::string new_node_dir(const std::string& name) {
  std::string d = g_root + "/" + std::to_string(++g_dir_counter) + "-" + name;  // Node::init makes it
  InitOptions io;
  io.dir = d;
  check(Node::init(io), "Node::init " + name);
  return d;
}

// --- /proc ------------------------------------------------------------------------------------

// Runs argv, returns its stdout and exit status.
struct ChildResult {
  std::string out;
  int status = -1;
  double seconds = 0;
};

ChildResult run_child(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe(fds) != 0) die("pipe failed");
  auto t0 = Steady::now();
  pid_t pid = ::fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(fds[1]);
  ChildResult r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int st = 0;
  if (::waitpid(pid, &st, 0) < 0) die("waitpid failed");
  r.seconds = seconds_since(t0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

std::map<std::string, std::string> parse_kv(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

// --- shared fixtures ---------------------------------------------------------------------------------

std::optional<double> g_single_rate;       // figure 1's Node::call rate
std::optional<std::string> g_dataset_dir;  // node dir holding the dataset, closed (checkpoints as close leaves them)
std::optional<std::string> g_scratch_hash; // hash of the fold of the dataset from scratch

// Node::ingest of the dataset in batches of 1000; returns seconds.
double ingest_dataset(const std::string& dir, std::vector<EncodedUpdate>& all) {
  NodeOptions no;
  no.dir = dir;
  auto node = must(Node::open(no), "Node::open");
  const size_t batch = 1000;
  size_t accepted = 0;
  auto t0 = Steady::now();
  for (size_t i = 0; i < all.size(); i += batch) {
    size_t end = std::min(all.size(), i + batch);
    std::vector<EncodedUpdate> b(std::make_move_iterator(all.begin() + static_cast<long>(i)),
                                 std::make_move_iterator(all.begin() + static_cast<long>(end)));
    auto rep = must(node->ingest(std::move(b)), "Node::ingest");
    if (!rep.refused.empty()) die("ingest refused: " + rep.refused.front());
    accepted += rep.accepted;
  }
  double s = seconds_since(t0);
  if (accepted != all.size()) die("ingest accepted " + std::to_string(accepted) + " of " + std::to_string(all.size()));
  check(node->close(), "Node::close");
  return s;
}

std::vector<EncodedUpdate> make_dataset() {
  std::vector<EncodedUpdate> all;
  all.reserve(g_opt.updates);
  for (uint64_t i = 0; i < g_opt.updates; ++i) all.push_back(dataset_update(i));
  return all;
}

const std::string& dataset_dir() {
  if (!g_dataset_dir) {
    progress("building the dataset (" + grouped(static_cast<double>(g_opt.updates)) + " updates via Node::ingest)");
    auto all = make_dataset();
    std::string dir = new_node_dir("dataset");
    ingest_dataset(dir, all);
    g_dataset_dir = dir;
  }
  return *g_dataset_dir;
}

const std::string& scratch_hash() {
  if (!g_scratch_hash) {
    progress("folding the dataset from scratch in memory for the reference hash");
    MethodRegistry reg = MethodRegistry::with_builtins();
    Replayer rep(reg, 1024);
    for (uint64_t i = 0; i < g_opt.updates; ++i) {
      auto eu = dataset_update(i);
      rep.apply(must(parse_body(eu.id, eu.body), "parse_body"));
    }
    g_scratch_hash = rep.state().hash_hex();
  }
  return *g_scratch_hash;
}

// --- figure 1: durable single appends ----------------------------------------------------------
//
// Durable commits depend on the disk, and a shared disk's fsync latency
// drifts during a run. So the node and its raw reference run interleaved
// (one op each in turn here; in blocks in figures 2, 3 and 5b), each side
// summing its own time: both see the same disk at the same moments.

constexpr int kRounds = 10;

void fig_single() {
  progress("figure 1: durable single appends");
  RawEnv raw(fresh_dir("raw-single"));
  std::string dir = new_node_dir("single");
  NodeOptions no;
  no.dir = dir;
  auto node = must(Node::open(no), "Node::open");
  uint64_t raw_done = 0, done = 0;
  double raw_s = 0, node_s = 0;
  // Alternate one raw commit and one node call, so that both sides see the
  // same fsync latency (it drifts by 10x within seconds on a shared disk).
  while (done < g_opt.single_ops && raw_s + node_s < 2 * g_opt.time_cap_s) {
    // Raw: one LMDB commit per update, log put + index put, durable default flags.
    const uint64_t i = raw_done++;
    std::string body = encode_body(i + 1, "set", set_arg(i));
    auto t0 = Steady::now();
    MDB_txn* txn;
    mdb_check(mdb_txn_begin(raw.env, nullptr, 0, &txn), "begin");
    raw.put_update(txn, UpdateId{g_base_hlc + i, kRawOrigin}, i + 1, body);
    mdb_check(mdb_txn_commit(txn), "commit");
    raw_s += seconds_since(t0);
    t0 = Steady::now();
    must(node->call("set", set_value(done)), "Node::call");
    node_s += seconds_since(t0);
    ++done;
  }
  check(node->close(), "Node::close");
  double rate = static_cast<double>(done) / node_s, raw_rate = static_cast<double>(raw_done) / raw_s;
  g_single_rate = rate;
  Row r;
  r.fig = "1";
  r.name = "durable single appends (Node::call set, 1 caller)";
  r.value = rate;
  r.unit = "updates/s";
  r.measured = rate_text(rate) + " (" + grouped(static_cast<double>(done)) + " calls, " + time_text(1.0 / rate) +
               " each)";
  r.raw_value = raw_rate;
  r.raw_unit = "updates/s";
  r.raw = rate_text(raw_rate) + " raw LMDB, 1 commit/update";
  r.ratio_value = rate / raw_rate;
  r.ratio = fmt("%.1f%% of raw", 100 * r.ratio_value);
  r.goal = ">= 80% of raw";
  r.met = r.ratio_value >= 0.8;
  add_row(r);
}

// --- figure 2: group commit --------------------------------------------------------------------
//
// One node; rounds alternate a single caller (2*G calls) and 8 concurrent
// callers (G calls each), so the ratio compares the same disk at the same time.

void fig_group() {
  progress("figure 2: group commit, 8 callers vs 1 caller (interleaved rounds)");
  std::string dir = new_node_dir("group");
  NodeOptions no;
  no.dir = dir;
  auto node = must(Node::open(no), "Node::open");
  const int threads = 8;
  const int rounds = 40;
  const uint64_t g = std::max<uint64_t>(1, g_opt.group_ops / rounds);
  std::atomic<uint64_t> next{0};
  uint64_t single_done = 0, group_done = 0, group_commits = 0;
  double single_s = 0, group_s = 0;
  for (int round = 0; round < rounds && single_s + group_s < 2 * g_opt.time_cap_s; ++round) {
    auto t0 = Steady::now();
    for (uint64_t c = 0; c < 2 * g; ++c, ++single_done) must(node->call("set", set_value(next++)), "Node::call");
    single_s += seconds_since(t0);

    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&] {
        ++ready;
        while (!go.load()) std::this_thread::yield();
        for (uint64_t j = 0; j < g; ++j) must(node->call("set", set_value(next++)), "Node::call");
      });
    }
    while (ready.load() < threads) std::this_thread::yield();
    const uint64_t txn0 = last_txnid(*node);
    t0 = Steady::now();
    go = true;
    for (auto& t : ts) t.join();
    group_s += seconds_since(t0);
    group_commits += last_txnid(*node) - txn0;
    group_done += threads * g;
  }
  check(node->close(), "Node::close");
  double rate = static_cast<double>(group_done) / group_s, single = static_cast<double>(single_done) / single_s;
  Row r;
  r.fig = "2";
  r.name = "group commit (Node::call set, 8 callers)";
  r.value = rate;
  r.unit = "updates/s";
  r.measured = rate_text(rate) + " (" + grouped(static_cast<double>(group_done)) + " calls, " +
               fmt("%.2f calls/commit)",
                   static_cast<double>(group_done) / static_cast<double>(std::max<uint64_t>(1, group_commits)));
  r.raw_value = single;
  r.raw_unit = "updates/s";
  r.raw = rate_text(single) + " 1 caller, same node, interleaved";
  r.ratio_value = rate / single;
  r.ratio = fmt("%.2fx single", r.ratio_value);
  r.goal = ">= 4x single";
  r.met = r.ratio_value >= 4.0;
  add_row(r);
}

// --- figure 3: bulk ingest ---------------------------------------------------------------------

void fig_ingest() {
  progress("figure 3: bulk ingest of " + grouped(static_cast<double>(g_opt.updates)) + " updates, 4 origins");
  auto all = make_dataset();
  RawEnv raw(fresh_dir("raw-ingest"));
  std::string dir = new_node_dir("dataset");
  double raw_s = 0, node_s = 0;
  uint64_t commits = 0;
  {
    NodeOptions no;
    no.dir = dir;
    auto node = must(Node::open(no), "Node::open");
    const size_t batch = 1000;
    const size_t block = std::max<size_t>(batch, (all.size() / kRounds + batch - 1) / batch * batch);
    size_t accepted = 0;
    const uint64_t txn0 = last_txnid(*node);
    for (size_t b0 = 0; b0 < all.size(); b0 += block) {
      const size_t b1 = std::min(all.size(), b0 + block);
      // Raw: the same puts, 1000 updates per commit.
      auto t0 = Steady::now();
      for (size_t i = b0; i < b1; i += batch) {
        MDB_txn* txn;
        mdb_check(mdb_txn_begin(raw.env, nullptr, 0, &txn), "begin");
        for (size_t j = i; j < std::min(b1, i + batch); ++j) raw.put_update(txn, all[j].id, j / 4 + 1, all[j].body);
        mdb_check(mdb_txn_commit(txn), "commit");
      }
      raw_s += seconds_since(t0);
      // Node: the same block through Node::ingest (the copies are made untimed).
      std::vector<std::vector<EncodedUpdate>> batches;
      for (size_t i = b0; i < b1; i += batch)
        batches.emplace_back(all.begin() + static_cast<long>(i),
                             all.begin() + static_cast<long>(std::min(b1, i + batch)));
      t0 = Steady::now();
      for (auto& b : batches) {
        auto rep = must(node->ingest(std::move(b)), "Node::ingest");
        if (!rep.refused.empty()) die("ingest refused: " + rep.refused.front());
        accepted += rep.accepted;
      }
      // The writer may still be writing a checkpoint after acknowledging the
      // last batch; an empty ingest waits for it (and costs one small commit),
      // so that work is timed here and not during the raw block.
      must(node->ingest({}), "Node::ingest (drain)");
      node_s += seconds_since(t0);
    }
    if (accepted != all.size())
      die("ingest accepted " + std::to_string(accepted) + " of " + std::to_string(all.size()));
    commits = last_txnid(*node) - txn0;
    check(node->close(), "Node::close");
  }
  if (!g_dataset_dir) g_dataset_dir = dir;
  double n = static_cast<double>(g_opt.updates);
  Row r;
  r.fig = "3";
  r.name = "bulk ingest (Node::ingest, batches of 1000, 4 origins)";
  r.value = n / node_s;
  r.unit = "updates/s";
  r.measured = rate_text(n / node_s) + " (" + time_text(node_s) + ", " + grouped(static_cast<double>(commits)) +
               " commits)";
  r.raw_value = n / raw_s;
  r.raw_unit = "updates/s";
  r.raw = rate_text(n / raw_s) + " raw LMDB, 1000 updates/commit";
  r.ratio_value = r.value / r.raw_value;
  r.ratio = fmt("%.1f%% of raw", 100 * r.ratio_value);
  r.goal = ">= 60% of raw";
  r.met = r.ratio_value >= 0.6;
  add_row(r);
}

// --- figure 4: replay from scratch --------------------------------------------------------------

// Copies a node dir (mdb_env_copy2, compacting) and deletes every checkpoint
// of the copy, so that a reader folds the log from scratch.
std::string copy_without_checkpoints(const std::string& src) {
  std::string dst = fresh_dir("no-checkpoints");
  {
    auto log = must(UpdateLog::open(src, {}), "UpdateLog::open");
    mdb_check(mdb_env_copy2(log->env(), dst.c_str(), MDB_CP_COMPACT), "mdb_env_copy2");
  }
  auto log = must(UpdateLog::open(dst, {}), "UpdateLog::open copy");
  auto txn = must(log->begin_write(), "begin_write");
  for (const auto& [cut, _] : txn.checkpoints()) check(txn.delete_checkpoint(cut), "delete_checkpoint");
  check(txn.commit(), "commit");
  return dst;
}

void fig_replay() {
  const double n = static_cast<double>(g_opt.updates);
  progress("figure 4: replay from scratch of " + grouped(n) + " set updates over " +
           grouped(static_cast<double>(g_opt.paths)) + " paths");
  std::string hash;
  {
    std::vector<Update> ups;
    ups.reserve(g_opt.updates);
    for (uint64_t i = 0; i < g_opt.updates; ++i) {
      auto eu = dataset_update(i);
      ups.push_back(must(parse_body(eu.id, eu.body), "parse_body"));
    }
    // Raw: decode_msgpack of each argument; alternated with the replay.
    MethodRegistry reg = MethodRegistry::with_builtins();
    double raw_s = 1e9, s = 1e9;
    std::optional<Replayer> last;
    for (int k = 0; k < kCpuReps; ++k) {
      size_t ok = 0;
      auto t0 = Steady::now();
      for (const auto& u : ups) ok += decode_msgpack(u.arg).is_ok();
      raw_s = std::min(raw_s, seconds_since(t0));
      if (ok != ups.size()) die("decode_msgpack failed on the dataset");

      last.reset();
      last.emplace(reg, 1024);
      size_t applied = 0;
      t0 = Steady::now();
      for (const auto& u : ups) applied += last->apply(u).outcome == Replayer::Outcome::kApplied;
      s = std::min(s, seconds_since(t0));
      if (applied != ups.size()) die("replay skipped updates of the dataset");
    }
    Replayer& rep = *last;
    hash = rep.state().hash_hex();
    g_scratch_hash = hash;

    Row r;
    r.fig = "4a";
    r.name = "replay from scratch, in memory (Replayer::apply)";
    r.value = n / s;
    r.unit = "updates/s";
    r.measured = rate_text(n / s) + " (" + time_text(s) + ", best of " + std::to_string(kCpuReps) + ")";
    r.raw_value = n / raw_s;
    r.raw_unit = "updates/s";
    r.raw = rate_text(n / raw_s) + " decode_msgpack of each arg";
    r.ratio_value = r.value / r.raw_value;
    r.ratio = fmt("%.1f%% of raw", 100 * r.ratio_value);
    r.goal = ">= 2,000,000/s";
    r.met = r.value >= 2e6;
    add_row(r);

    // The same through the node: read the log from LMDB, parse, apply.
    std::string copy = copy_without_checkpoints(dataset_dir());
    NodeOptions no;
    no.dir = copy;
    double ns = 1e9;
    for (int k = 0; k < kCpuReps; ++k) {
      auto t0 = Steady::now();
      auto node = must(Node::open_read_only(no), "Node::open_read_only");
      ns = std::min(ns, seconds_since(t0));
      std::string node_hash = node->state_hash();
      if (node_hash != hash) die("read-only node folded hash " + node_hash + ", in-memory replay " + hash);
    }
    Row q;
    q.fig = "4b";
    q.name = "replay from scratch via Node::open_read_only (no checkpoints)";
    q.value = n / ns;
    q.unit = "updates/s";
    q.measured = rate_text(n / ns) + " (" + time_text(ns) + ", best of " + std::to_string(kCpuReps) + ")";
    q.raw_value = n / raw_s;
    q.raw_unit = "updates/s";
    q.raw = rate_text(n / raw_s) + " decode_msgpack of each arg";
    q.ratio_value = q.value / q.raw_value;
    q.ratio = fmt("%.1f%% of raw", 100 * q.ratio_value);
    q.goal = ">= 2,000,000/s";
    q.met = q.value >= 2e6;
    q.note = "hash equal to in-memory replay";
    add_row(q);
    fs::remove_all(copy);
  }
}

// --- figure 5: late updates ------------------------------------------------------------------------

void fig_late_k() {
  progress("figure 5a: one update k positions late (Replayer rollback_to + re-apply)");
  const uint64_t m = g_opt.late_base;
  std::vector<Update> base;
  base.reserve(m);
  for (uint64_t i = 0; i < m; ++i) {
    OriginId origin = kOriginBase + i % 4;
    UpdateId id{g_base_hlc + 2 * i + 2, origin};
    base.push_back(must(parse_body(id, encode_body(i / 4 + 1, "set", set_arg(i))), "parse_body"));
  }
  MethodRegistry reg = MethodRegistry::with_builtins();
  Replayer rep(reg, 1024);
  for (uint64_t i = 0; i < m / 2; ++i) rep.apply(base[i]);
  std::vector<double> chunks;  // in-order cost per update, per chunk of 100
  for (uint64_t i = m / 2; i < m; i += 100) {
    const uint64_t e = std::min(m, i + 100);
    auto t0 = Steady::now();
    for (uint64_t j = i; j < e; ++j) rep.apply(base[j]);
    chunks.push_back(seconds_since(t0) / static_cast<double>(e - i));
  }
  const double apply_s = median_of(chunks);
  const std::string head_hash = rep.state().hash_hex();

  std::map<uint64_t, double> per_k;
  for (uint64_t k : {1, 10, 100, 1000}) {
    if (k + 1 > 1024 || k >= m) continue;
    // The late update sorts between base[m-k-1] and base[m-k].
    uint64_t li = 7'777'777 + k;
    UpdateId lid{base[m - k].id.hlc - 1, kLateOrigin};
    Update late = must(parse_body(lid, encode_body(1, "set", set_arg(li))), "parse_body late");
    int reps = static_cast<int>(std::clamp<uint64_t>(20'000 / k, 50, 5'000));
    std::vector<double> times;
    for (int r = 0; r < reps; ++r) {
      if (!rep.can_rollback_to(lid)) die("late k=" + std::to_string(k) + " is outside the undo window");
      auto t = Steady::now();
      rep.rollback_to(lid);
      rep.apply(late);
      for (uint64_t j = m - k; j < m; ++j) rep.apply(base[j]);
      times.push_back(seconds_since(t));
      // Put the state back (untimed): take the late update out again.
      rep.rollback_to(lid);
      for (uint64_t j = m - k; j < m; ++j) rep.apply(base[j]);
    }
    if (rep.state().hash_hex() != head_hash) die("late-update rollback did not restore the state");
    double cost = median_of(times);
    per_k[k] = cost;
    Row r;
    r.fig = "5a";
    r.name = "one update k=" + std::to_string(k) + " late (Replayer)";
    r.value = cost;
    r.unit = "s";
    r.measured = time_text(cost) + fmt(" (%.2f us/position; median of ", cost * 1e6 / static_cast<double>(k + 1)) +
                 std::to_string(reps) + ")";
    r.raw_value = apply_s * static_cast<double>(k + 1);
    r.raw_unit = "s";
    r.raw = time_text(r.raw_value) + " = " + std::to_string(k + 1) + " in-order applies (median)";
    r.ratio_value = cost / r.raw_value;
    r.ratio = fmt("%.2fx raw time", r.ratio_value);
    add_row(r);
  }
  if (per_k.count(10) && per_k.count(1000)) {
    double slope10 = per_k[10] / 11, slope1000 = per_k[1000] / 1001;
    Row r;
    r.fig = "5a";
    r.name = "linearity: cost per position, k=1000 vs k=10";
    r.value = slope1000 / slope10;
    r.unit = "x";
    r.measured = fmt("%.2f us", slope1000 * 1e6) + " vs " + fmt("%.2f us", slope10 * 1e6);
    r.raw_value = slope10;
    r.raw_unit = "s";
    r.raw = "k=10 per position";
    r.ratio_value = slope1000 / slope10;
    r.ratio = fmt("%.2fx", r.ratio_value);
    r.goal = "O(k): <= 2x";
    r.met = r.ratio_value <= 2.0;
    add_row(r);
  }
}

struct Stream {
  std::vector<EncodedUpdate> in_order;  // key order
  std::vector<size_t> arrival;          // indexes into in_order, in arrival order
  double mean_late = 0;                 // positions, over updates that arrive late
  size_t max_late = 0;
};

// `n` updates from 8 origins (chosen at random), arriving shuffled within a
// window of 50 positions; each origin's own updates keep their seq order (a
// peer sends an origin in seq order, and ingest refuses a gap).
Stream make_stream(uint64_t n) {
  Stream st;
  std::mt19937_64 rng(20261125);
  std::vector<uint64_t> seq(8, 0);
  st.in_order.reserve(n);
  std::vector<uint64_t> origin_of(n);
  for (uint64_t i = 0; i < n; ++i) {
    size_t o = rng() % 8;
    origin_of[i] = o;
    st.in_order.push_back(EncodedUpdate{UpdateId{g_base_hlc + i, kOriginBase + o},
                                        encode_body(++seq[o], "set", set_arg(i))});
  }
  std::vector<double> last(8, -1);
  std::vector<std::pair<double, size_t>> score(n);
  std::uniform_real_distribution<double> delay(0, 50);
  for (uint64_t i = 0; i < n; ++i) {
    double s = std::max(last[origin_of[i]], static_cast<double>(i) + delay(rng));
    last[origin_of[i]] = s;
    score[i] = {s, i};
  }
  std::sort(score.begin(), score.end());
  st.arrival.reserve(n);
  for (const auto& [_, i] : score) st.arrival.push_back(i);
  size_t late = 0;
  double sum = 0;
  // Exact lateness (positions) with a Fenwick tree over indexes.
  std::vector<uint32_t> bit(n + 1, 0);
  auto add = [&](size_t i) { for (++i; i <= n; i += i & (~i + 1)) ++bit[i]; };
  auto prefix = [&](size_t i) { uint64_t s = 0; for (++i; i > 0; i -= i & (~i + 1)) s += bit[i]; return s; };
  for (size_t a = 0; a < n; ++a) {
    size_t i = st.arrival[a];
    size_t larger = a - prefix(i);  // arrived before it with a larger key
    if (larger > 0) {
      ++late;
      sum += static_cast<double>(larger);
      st.max_late = std::max(st.max_late, larger);
    }
    add(i);
  }
  st.mean_late = late ? sum / static_cast<double>(late) : 0;
  return st;
}

// Node::ingest of the stream in batches, in key order into one node and in
// arrival order into another, one batch each in turn so that both see the
// same disk. Returns seconds per side.
struct StreamTimes {
  double in_order_s = 0, shuffled_s = 0;
  std::string in_order_hash, shuffled_hash;
  size_t late_batches = 0, batches = 0;
};

StreamTimes ingest_stream(const Stream& st) {
  StreamTimes out;
  const size_t n = st.in_order.size();
  std::unique_ptr<Node> nodes[2];
  std::string dirs[2];
  for (int k = 0; k < 2; ++k) {
    dirs[k] = new_node_dir(k ? "late-shuffled" : "late-in-order");
    NodeOptions no;
    no.dir = dirs[k];
    nodes[k] = must(Node::open(no), "Node::open");
  }
  const size_t bs = g_opt.batch;
  size_t accepted[2] = {0, 0};
  double secs[2] = {0, 0};
  std::vector<EncodedUpdate> batch;
  size_t round = 0;
  for (size_t a = 0; a < n; a += bs, ++round) {
    // One batch each in turn, alternating which node goes first. (A node
    // writes a checkpoint after acknowledging every 10,000th update; both
    // nodes do so at the same batch, so the overlap is symmetric.)
    for (int pass = 0; pass < 2; ++pass) {
      const int k = static_cast<int>((round + static_cast<size_t>(pass)) % 2);  // 0: in order, 1: shuffled
      batch.clear();
      for (size_t b = a; b < std::min(n, a + bs); ++b) batch.push_back(st.in_order[k ? st.arrival[b] : b]);
      auto t0 = Steady::now();
      auto rep = must(nodes[k]->ingest(std::move(batch)), "Node::ingest");
      secs[k] += seconds_since(t0);
      batch = {};
      if (!rep.refused.empty()) die("stream ingest refused: " + rep.refused.front());
      accepted[k] += rep.accepted;
    }
  }
  for (int k = 0; k < 2; ++k) {
    auto t0 = Steady::now();
    must(nodes[k]->ingest({}), "Node::ingest (drain)");  // waits for a trailing checkpoint
    secs[k] += seconds_since(t0);
  }
  for (int k = 0; k < 2; ++k) {
    if (accepted[k] != n) die("stream ingest accepted " + std::to_string(accepted[k]) + " of " + std::to_string(n));
    (k ? out.shuffled_hash : out.in_order_hash) = nodes[k]->state_hash();
    check(nodes[k]->close(), "Node::close");
    nodes[k].reset();
    fs::remove_all(dirs[k]);
  }
  out.in_order_s = secs[0];
  out.shuffled_s = secs[1];
  // Batches whose lowest key is below the head before them (the rollback path).
  std::optional<UpdateId> h;
  for (size_t a = 0; a < n; a += bs) {
    std::optional<UpdateId> lo, hi;
    for (size_t b = a; b < std::min(n, a + bs); ++b) {
      const auto& id = st.in_order[st.arrival[b]].id;
      if (!lo || id < *lo) lo = id;
      if (!hi || id > *hi) hi = id;
    }
    if (h && *lo < *h) ++out.late_batches;
    if (!h || *hi > *h) h = hi;
    ++out.batches;
  }
  return out;
}

// The node's apply logic without LMDB: sort the batch; if it sorts below the
// head, roll back to its first key and re-apply everything from there.
double replay_stream(const Stream& st, bool shuffled, std::string& hash) {
  std::vector<Update> ups;
  ups.reserve(st.in_order.size());
  for (const auto& eu : st.in_order) ups.push_back(must(parse_body(eu.id, eu.body), "parse_body"));
  MethodRegistry reg = MethodRegistry::with_builtins();
  Replayer rep(reg, 1024);
  std::map<UpdateId, const Update*> held;
  const size_t n = ups.size();
  std::vector<const Update*> batch;
  auto t0 = Steady::now();
  for (size_t a = 0; a < n; a += g_opt.batch) {
    batch.clear();
    for (size_t b = a; b < std::min(n, a + g_opt.batch); ++b) batch.push_back(&ups[shuffled ? st.arrival[b] : b]);
    std::sort(batch.begin(), batch.end(), [](const Update* x, const Update* y) { return x->id < y->id; });
    for (const Update* u : batch) held.emplace(u->id, u);
    auto last = rep.last_applied();
    if (!last || batch.front()->id > *last) {
      for (const Update* u : batch) rep.apply(*u);
    } else {
      if (!rep.can_rollback_to(batch.front()->id)) die("stream: late beyond the undo window");
      rep.rollback_to(batch.front()->id);
      for (auto it = held.lower_bound(batch.front()->id); it != held.end(); ++it) rep.apply(*it->second);
    }
  }
  double s = seconds_since(t0);
  hash = rep.state().hash_hex();
  return s;
}

void fig_late_stream() {
  const double n = static_cast<double>(g_opt.stream);
  progress("figure 5b: " + grouped(n) + " updates from 8 origins shuffled within 50 positions, batches of " +
           std::to_string(g_opt.batch));
  Stream st = make_stream(g_opt.stream);
  StreamTimes t = ingest_stream(st);
  const std::string& h_in = t.in_order_hash;
  if (t.shuffled_hash != h_in) die("shuffled stream folded to hash " + t.shuffled_hash + ", in order " + h_in);
  const double s_in = t.in_order_s, s_sh = t.shuffled_s;
  Row r;
  r.fig = "5b";
  r.name = "shuffled stream via Node::ingest (batches of " + std::to_string(g_opt.batch) + ")";
  r.value = n / s_sh;
  r.unit = "updates/s";
  r.measured = rate_text(n / s_sh) + fmt(" (%.0f%% of batches late",
                                         100.0 * static_cast<double>(t.late_batches) / static_cast<double>(t.batches)) +
               fmt(", mean %.1f", st.mean_late) + " / max " + std::to_string(st.max_late) + " positions)";
  r.raw_value = n / s_in;
  r.raw_unit = "updates/s";
  r.raw = rate_text(n / s_in) + " same stream in order";
  r.ratio_value = r.value / r.raw_value;
  r.ratio = fmt("%.1f%% of in-order", 100 * r.ratio_value);
  r.goal = ">= 50% of in-order";
  r.met = r.ratio_value >= 0.5;
  r.note = "hash equal to in-order ingest";
  add_row(r);

  std::string rh_in, rh_sh;
  double rs_in = 1e9, rs_sh = 1e9;
  for (int k = 0; k < kCpuReps; ++k) {
    rs_in = std::min(rs_in, replay_stream(st, false, rh_in));
    rs_sh = std::min(rs_sh, replay_stream(st, true, rh_sh));
  }
  if (rh_in != rh_sh || rh_in != h_in) die("replayer stream hashes differ");
  Row q;
  q.fig = "5c";
  q.name = "same stream, Replayer only (no LMDB, CPU part of 5b)";
  q.value = n / rs_sh;
  q.unit = "updates/s";
  q.measured = rate_text(n / rs_sh) + " (best of " + std::to_string(kCpuReps) + ")";
  q.raw_value = n / rs_in;
  q.raw_unit = "updates/s";
  q.raw = rate_text(n / rs_in) + " same stream in order";
  q.ratio_value = q.value / q.raw_value;
  q.ratio = fmt("%.1f%% of in-order", 100 * q.ratio_value);
  add_row(q);
}

// --- figure 6: restart ----------------------------------------------------------------------------

// Raw: open the LMDB environment, read the newest checkpoint's bytes and the
// log tail after its cut (copying them), as the floor of any restart.
double raw_restart(const std::string& dir, size_t& tail) {
  auto t0 = Steady::now();
  MDB_env* env;
  mdb_check(mdb_env_create(&env), "create");
  mdb_env_set_maxdbs(env, 16);
  mdb_check(mdb_env_set_mapsize(env, size_t{16} << 30), "mapsize");
  mdb_check(mdb_env_open(env, dir.c_str(), MDB_NOTLS | MDB_RDONLY, 0600), "open " + dir);
  MDB_txn* txn;
  mdb_check(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), "begin");
  MDB_dbi cps, log;
  mdb_check(mdb_dbi_open(txn, "checkpoints", 0, &cps), "open checkpoints");
  mdb_check(mdb_dbi_open(txn, "log", 0, &log), "open log");
  MDB_cursor* c;
  MDB_val k, v;
  std::string cp, cut, sink;
  mdb_check(mdb_cursor_open(txn, cps, &c), "cursor");
  if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0) {
    cut.assign(static_cast<char*>(k.mv_data), k.mv_size);
    cp.assign(static_cast<char*>(v.mv_data), v.mv_size);
  }
  mdb_cursor_close(c);
  mdb_check(mdb_cursor_open(txn, log, &c), "cursor");
  tail = 0;
  int rc;
  if (cut.empty()) {
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  } else {
    k = MDB_val{cut.size(), cut.data()};
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && std::string_view(static_cast<char*>(k.mv_data), k.mv_size) == cut)
      rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    sink.assign(static_cast<char*>(v.mv_data), v.mv_size);
    ++tail;
  }
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return seconds_since(t0);
}

void fig_restart() {
  const std::string& dir = dataset_dir();
  const std::string& expect = scratch_hash();
  progress("figure 6: restart of a node holding " + grouped(static_cast<double>(g_opt.updates)) + " updates");
  size_t checkpoints = 0, cp_bytes = 0;
  {
    auto log = must(UpdateLog::open(dir, {}), "UpdateLog::open");
    auto txn = must(log->begin_read(), "begin_read");
    for (const auto& [cut, bytes] : txn.checkpoints()) {
      ++checkpoints;
      cp_bytes = std::max(cp_bytes, bytes.size());
    }
  }
  std::vector<double> raw, ro, rw;
  size_t tail = 0;
  for (int i = 0; i < g_opt.restart_runs; ++i) raw.push_back(raw_restart(dir, tail));
  NodeOptions no;
  no.dir = dir;
  for (int i = 0; i < g_opt.restart_runs; ++i) {
    auto t0 = Steady::now();
    auto node = must(Node::open_read_only(no), "Node::open_read_only");
    ro.push_back(seconds_since(t0));
    if (node->state_hash() != expect) die("restart (read-only) hash differs from the fold from scratch");
  }
  for (int i = 0; i < g_opt.restart_runs; ++i) {
    auto t0 = Steady::now();
    auto node = must(Node::open(no), "Node::open");
    rw.push_back(seconds_since(t0));
    if (node->state_hash() != expect) die("restart (writable) hash differs from the fold from scratch");
    check(node->close(), "Node::close");  // untimed; writes a checkpoint as a normal shutdown does
  }
  double raw_m = median_of(raw);
  for (auto [name, times] : {std::pair{"Node::open_read_only", &ro}, std::pair{"Node::open", &rw}}) {
    double m = median_of(*times);
    Row r;
    r.fig = "6";
    r.name = std::string("restart to hash-checked state, ") + name;
    r.value = m;
    r.unit = "s";
    r.measured = time_text(m) + " median of " + std::to_string(times->size()) + " (max " +
                 time_text(*std::max_element(times->begin(), times->end())) + ")";
    r.raw_value = raw_m;
    r.raw_unit = "s";
    r.raw = time_text(raw_m) + " LMDB open + read checkpoint (" + mib_text(static_cast<double>(cp_bytes)) + ") + " +
            std::to_string(tail) + "-update tail";
    r.ratio_value = m / raw_m;
    r.ratio = fmt("%.1fx raw time", r.ratio_value);
    r.goal = "< 200 ms";
    r.met = m < 0.2;
    r.note = std::to_string(checkpoints) + " checkpoints held; hash equal to the fold from scratch";
    add_row(r);
  }
}

// --- figure 7: memory -------------------------------------------------------------------------------

// Child mode: load the state read-only and report memory.
int internal_rss(const std::string& dir) {
  long before = status_kib("/proc/self/status", "RssAnon");
  NodeOptions no;
  no.dir = dir;
  auto t0 = Steady::now();
  auto node = must(Node::open_read_only(no), "Node::open_read_only");
  double load_s = seconds_since(t0);
  long anon = status_kib("/proc/self/status", "RssAnon");
  long file = status_kib("/proc/self/status", "RssFile");
  long hwm = status_kib("/proc/self/status", "VmHWM");
  size_t state_bytes = 0;
  std::string hash;
  node->read([&](const State& s) {
    state_bytes = s.encode().size();
    hash = s.hash_hex();
  });
  std::printf("rss_anon_before_kib=%ld\nrss_anon_kib=%ld\nrss_file_kib=%ld\nvm_hwm_kib=%ld\nstate_bytes=%zu\n"
              "hash=%s\nload_s=%f\n",
              before, anon, file, hwm, state_bytes, hash.c_str(), load_s);
  return 0;
}

// Child mode: runs a program and prints, after its output, its peak RSS.
// wait4's ru_maxrss is the larger of the forked child's RSS before exec (the
// pages it shares with its parent) and the program's own peak; forking from
// this small process keeps the first one small (reported as spawner_rss_kib).
int internal_spawn(const std::vector<std::string>& argv) {
  std::fflush(stdout);
  long spawner = status_kib("/proc/self/status", "VmRSS");
  pid_t pid = ::fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  struct rusage ru;
  int st = 0;
  if (::wait4(pid, &st, 0, &ru) < 0) die("wait4 failed");
  std::printf("\nmaxrss_kib=%ld\nspawner_rss_kib=%ld\n", ru.ru_maxrss, spawner);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void fig_memory() {
  const std::string& dir = dataset_dir();
  const std::string& expect = scratch_hash();
  progress("figure 7: memory after loading the state of " + grouped(static_cast<double>(g_opt.updates)) + " updates");
  auto child = run_child({"/proc/self/exe", "--internal-rss", dir});
  if (child.status != 0) die("memory child failed with status " + std::to_string(child.status));
  auto kv = parse_kv(child.out);
  if (kv["hash"] != expect) die("memory child loaded hash " + kv["hash"] + ", expected " + expect);
  double anon = std::stod(kv["rss_anon_kib"]) * 1024, before = std::stod(kv["rss_anon_before_kib"]) * 1024;
  double state_bytes = std::stod(kv["state_bytes"]);
  double limit = 64.0 * 1024 * 1024 + state_bytes;
  Row r;
  r.fig = "7";
  r.name = "RssAnon after Node::open_read_only (child process)";
  r.value = anon;
  r.unit = "bytes";
  r.measured = mib_text(anon) + " (" + mib_text(before) + " before load; VmHWM " +
               mib_text(std::stod(kv["vm_hwm_kib"]) * 1024) + ", RssFile " +
               mib_text(std::stod(kv["rss_file_kib"]) * 1024) + ")";
  r.raw_value = state_bytes;
  r.raw_unit = "bytes";
  r.raw = mib_text(state_bytes) + " State::encode()";
  r.ratio_value = anon / state_bytes;
  r.ratio = fmt("%.1fx state size", r.ratio_value);
  r.goal = "< 64 MiB + state = " + mib_text(limit);
  r.met = anon < limit;
  add_row(r);

  if (!g_opt.cli.empty() && ::access(g_opt.cli.c_str(), X_OK) == 0) {
    auto cli = run_child({"/proc/self/exe", "--internal-spawn", g_opt.cli, "state", "--data", dir, "--hash"});
    if (cli.status != 0) die("replog state --hash failed with status " + std::to_string(cli.status));
    std::string out = cli.out.substr(0, cli.out.find('\n'));
    if (out != expect) die("replog state --hash printed " + out + ", expected " + expect);
    auto ckv = parse_kv(cli.out);
    double peak = std::stod(ckv["maxrss_kib"]) * 1024;
    Row q;
    q.fig = "7";
    q.name = "peak RSS of `replog state --data DIR --hash` (anon + file)";
    q.value = peak;
    q.unit = "bytes";
    q.measured = mib_text(peak) + " (ran " + time_text(cli.seconds) + "; spawner " +
                 mib_text(std::stod(ckv["spawner_rss_kib"]) * 1024) + ")";
    q.raw_value = state_bytes;
    q.raw_unit = "bytes";
    q.raw = mib_text(state_bytes) + " State::encode()";
    q.ratio_value = peak / state_bytes;
    q.ratio = fmt("%.1fx state size", q.ratio_value);
    q.goal = "(peak incl. file pages; goal is on RssAnon)";
    add_row(q);
  } else {
    progress("  (replog CLI not found at '" + g_opt.cli + "'; skipping its row; use --cli PATH)");
  }
}

// --- output -------------------------------------------------------------------------------------------

void print_table() {
  print_rows_table(g_rows);
}

void print_json(const std::string& load_start, const std::string& load_end) {
  std::cout << "{\"options\":{\"quick\":" << (g_opt.quick ? "true" : "false") << ",\"updates\":" << g_opt.updates
            << ",\"paths\":" << g_opt.paths << ",\"single_ops\":" << g_opt.single_ops
            << ",\"group_ops_per_thread\":" << g_opt.group_ops << ",\"stream\":" << g_opt.stream
            << ",\"batch\":" << g_opt.batch << "},\"seconds\":" << seconds_since(g_start) << ",\"loadavg_start\":\""
            << load_start << "\",\"loadavg_end\":\"" << load_end
            << "\",\"cpus\":" << std::thread::hardware_concurrency()
            << ",\"figures\":";
  print_rows_json(g_rows);
  std::cout << "}\n";
}

void usage() {
  std::cout << "usage: replog_bench [options]\n"
               "  --quick          tiny sizes (finishes in seconds; for tests)\n"
               "  --dir DIR        make the temp dir under DIR (default /tmp)\n"
               "  --only A[,B]     run only these figures: single group ingest replay late restart memory\n"
               "  --json           print JSON instead of the table\n"
               "  --keep           keep the temp dir\n"
               "  --updates N      dataset size for ingest/replay/restart/memory (default 1000000)\n"
               "  --paths N        distinct paths written by set (default 10000)\n"
               "  --ops N          durable single appends per side (default 10000)\n"
               "  --group-ops N    calls per thread in the group-commit figure (default 2000)\n"
               "  --stream N       late-arrival stream length (default 100000)\n"
               "  --batch N        updates per Node::ingest in the late stream (default 10)\n"
               "  --cli PATH       the replog program for the memory figure\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "--internal-rss") return internal_rss(args[1]);
  if (args.size() >= 2 && args[0] == "--internal-spawn") return internal_spawn({args.begin() + 1, args.end()});

  std::optional<uint64_t> updates, paths, ops, group_ops, stream, batch;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= args.size()) die(a + " needs a value");
      return args[++i];
    };
    if (a == "--quick") g_opt.quick = true;
    else if (a == "--json") g_opt.json = true;
    else if (a == "--keep") g_opt.keep = true;
    else if (a == "--dir") g_opt.dir = next();
    else if (a == "--cli") g_opt.cli = next();
    else if (a == "--only") g_opt.only = parse_only(next(), {"single", "group", "ingest", "replay", "late", "restart", "memory"});
    else if (a == "--updates") updates = parse_count(next(), "--updates");
    else if (a == "--paths") paths = parse_count(next(), "--paths");
    else if (a == "--ops") ops = parse_count(next(), "--ops");
    else if (a == "--group-ops") group_ops = parse_count(next(), "--group-ops");
    else if (a == "--stream") stream = parse_count(next(), "--stream");
    else if (a == "--batch") batch = parse_count(next(), "--batch");
    else if (a == "--help" || a == "-h") { usage(); return 0; }
    else { usage(); die("unknown option " + a); }
  }
  if (g_opt.quick) {
    g_opt.updates = 20'000;
    g_opt.paths = 1'000;
    g_opt.single_ops = 50;
    g_opt.group_ops = 10;
    g_opt.stream = 2'000;
    g_opt.late_base = 3'000;
    g_opt.restart_runs = 3;
    g_opt.time_cap_s = 3;
  }
  if (updates) g_opt.updates = *updates;
  if (paths) g_opt.paths = *paths;
  if (ops) g_opt.single_ops = *ops;
  if (group_ops) g_opt.group_ops = *group_ops;
  if (stream) g_opt.stream = *stream;
  if (batch) g_opt.batch = *batch;

  std::string parent = g_opt.dir.empty() ? "/tmp" : g_opt.dir;
  fs::create_directories(parent);
  std::string tmpl = parent + "/replog-bench-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) die("mkdtemp " + tmpl + ": " + std::strerror(errno));
  g_root = buf.data();
  progress("working in " + g_root);
  const std::string load_start = loadavg();

  if (wanted("single")) fig_single();
  if (wanted("group")) fig_group();
  if (wanted("ingest")) fig_ingest();
  if (wanted("replay")) fig_replay();
  if (wanted("late")) {
    fig_late_k();
    fig_late_stream();
  }
  if (wanted("restart")) fig_restart();
  if (wanted("memory")) fig_memory();

  if (!g_opt.keep) fs::remove_all(g_root);
  const std::string load_end = loadavg();
  progress("done; load average " + load_start + " at start, " + load_end + " at end");
  if (g_opt.json) {
    print_json(load_start, load_end);
  } else {
    print_table();
    std::cout << "\n" << fmt("%.1f", seconds_since(g_start)) << " s; 1-minute load average " << load_start
              << " at start, " << load_end << " at end (" << std::thread::hardware_concurrency() << " CPUs)\n";
  }
  return 0;
}

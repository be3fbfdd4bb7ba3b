// Crash safety (docs/ARCHITECTURE.md, docs/STORAGE.md): a writer killed with SIGKILL at a
// random moment, 20 times on the same data directory, loses no acknowledged
// update, leaves no partial update, no seq gap and no stale checkpoint, and
// leaves a plain LMDB environment that mdb_stat reads.
//
// The writer is a child process (crash_writer) that prints "ack ID" after each
// committed call; the test reads those lines, kills the child, and checks the
// directory through UpdateLog/LogTxn, verify_data_dir and mdb_stat.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "storage/env.h"
#include "temp_dir.h"
#include "node/engine/node.h"
#include "node/api/verify.h"
#include "protocol/json_codec.h"
#include "protocol/bytes.h"
#include "protocol/update.h"
#include "storage/update_log.h"
#include "test_seed.h"

extern char** environ;

#ifndef CRASH_WRITER
#error "CRASH_WRITER must name the crash_writer executable"
#endif
#ifndef MDB_STAT
#define MDB_STAT "mdb_stat"
#endif

namespace replog {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

using testing::TempDir;

// One crash_writer process, its stdout read through a pipe.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& stderr_path) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    fd_ = fds[0];
    if (rc != 0) {
      ::close(fd_);
      fd_ = -1;
      pid_ = -1;
      throw std::runtime_error(std::string("posix_spawn ") + args[0] + ": " + errno_text(rc));
    }
  }
  ~Child() {
    kill_and_wait();
    if (fd_ >= 0) ::close(fd_);
  }

  // Reads what is available within `timeout`; false once the pipe is closed.
  bool pump(milliseconds timeout) {
    if (eof_) return false;
    pollfd p{fd_, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n <= 0) return true;
    char buf[65536];
    ssize_t r = ::read(fd_, buf, sizeof buf);
    if (r <= 0) {
      eof_ = true;
      return false;
    }
    out_.append(buf, static_cast<size_t>(r));
    return true;
  }

  // Keeps reading until `until` returns true, the deadline passes or the pipe closes.
  template <typename Pred>
  void pump_until(Clock::time_point deadline, Pred until) {
    while (!until() && Clock::now() < deadline && !eof_) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      pump(std::max(milliseconds(1), std::min(left, milliseconds(20))));
    }
  }

  // SIGKILL, reap, then drain the pipe: every line written before the kill is there.
  int kill_and_wait() {
    if (pid_ <= 0) return status_;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    while (pump(milliseconds(1000))) {
    }
    return status_;
  }

  bool exited_early() const { return eof_ && pid_ > 0; }
  size_t complete_lines() const { return static_cast<size_t>(std::count(out_.begin(), out_.end(), '\n')); }
  // Complete lines only: a line cut by the kill promised nothing.
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t nl; (nl = out_.find('\n', start)) != std::string::npos; start = nl + 1)
      out.push_back(out_.substr(start, nl - start));
    return out;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int status_ = 0;
  bool eof_ = false;
  std::string out_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct DirFacts {
  uint64_t seq = 0;
  size_t checkpoints = 0;
};

// Everything the design promises after a crash, checked from outside the writer.
void CheckDirectory(const std::string& dir, const std::set<UpdateId>& acked, DirFacts& facts, int round) {
  SCOPED_TRACE("after kill " + std::to_string(round));
  OriginId self = 0;
  {
    auto log = UpdateLog::open(dir, {});
    ASSERT_TRUE(log) << log.status().message();
    auto txn = (*log)->begin_read();
    ASSERT_TRUE(txn) << txn.status().message();
    auto id_meta = txn->meta("node_id");
    ASSERT_TRUE(id_meta && id_meta->size() == 8) << "node id missing";
    self = get_u64_be(id_meta->data());

    VersionVector vector = txn->vector();
    ASSERT_LE(vector.size(), 1u) << "only this node's own origin writes here";
    const uint64_t k = seq_of(vector, self);
    EXPECT_GE(k, facts.seq) << "the origin's seq went backwards across a crash";
    EXPECT_EQ(txn->update_count(), k) << "log entries and the vector disagree";

    // No gap, no partial update: seqs 1..k all present, framed, hlc rising.
    uint64_t prev_hlc = 0;
    for (uint64_t s = 1; s <= k; ++s) {
      auto id = txn->id_of(self, s);
      ASSERT_TRUE(id) << "seq gap: no index entry for seq " << s << " of " << k;
      auto body = txn->body(*id);
      ASSERT_TRUE(body) << "seq " << s << " indexed at " << id->to_string() << " but not in the log";
      auto u = parse_update(*id, *body);
      ASSERT_TRUE(u) << "partial update at seq " << s << ": " << u.status().message();
      EXPECT_EQ(u->seq, s);
      EXPECT_GT(id->hlc, prev_hlc) << "hlc does not rise at seq " << s;
      prev_hlc = id->hlc;
    }
    if (k > 0) {
      EXPECT_EQ(txn->vector_entry(self)->last_hlc, prev_hlc);
    }

    // Every acknowledged update is there, whole, and indexed by its seq.
    size_t lost = 0;
    for (const auto& id : acked) {
      EXPECT_EQ(id.origin, self);
      auto body = txn->body(id);
      if (!body) {
        if (++lost <= 5) ADD_FAILURE() << "acknowledged update " << id.to_string() << " is not in the log";
        continue;
      }
      auto u = parse_update(id, *body);
      ASSERT_TRUE(u) << u.status().message();
      auto indexed = txn->id_of(self, u->seq);
      EXPECT_TRUE(indexed && *indexed == id) << "seq index of " << id.to_string();
    }
    EXPECT_EQ(lost, 0u) << "acknowledged updates lost";
    facts.seq = k;
    facts.checkpoints = txn->checkpoints().size();
  }

  // No stale checkpoint: verify compares every checkpoint with the fold of the log.
  auto report = verify_data_dir(dir, std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins()));
  ASSERT_TRUE(report) << report.status().message();
  for (const auto& p : report->problems) ADD_FAILURE() << "verify: " << p;
  EXPECT_EQ(report->updates, facts.seq);
  EXPECT_EQ(report->checkpoints_checked, facts.checkpoints);
  EXPECT_EQ(report->scratch_hash, report->loaded_hash);

  // A plain LMDB environment: mdb_stat reads every database.
  std::string cmd = std::string(MDB_STAT) + " -a '" + dir + "' > /dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc)) << cmd;
  EXPECT_NE(WEXITSTATUS(rc), 127) << MDB_STAT << " not found: install lmdb-utils (tools/deps.sh)";
  EXPECT_EQ(WEXITSTATUS(rc), 0) << cmd << " failed";
}

TEST(CrashTest, SigkillAtRandomMomentsLosesNothingAcknowledged) {
  auto rng = testing::seeded_rng();
  TempDir tmp;
  const std::string dir = tmp.path() + "/data";
  const std::string stderr_log = tmp.path() + "/writer.stderr";
  {
    engine::InitOptions init;
    init.dir = dir;
    auto schema = parse_typed_json(
        R"({"records": {"Item": {"fields": {"name": "string", "n": "int"}, "required": ["name"], "unique": ["name"]}}})");
    ASSERT_TRUE(schema);
    init.schema = *schema;
    Status s = engine::Node::init(init);
    ASSERT_TRUE(s) << s.message();
  }

  // REPLOG_CRASH_KILLS and REPLOG_CRASH_SECONDS make a longer crash loop
  // (tools/crashloop.sh); the suite's run is 20 kills within 60 s.
  const char* kills_env = std::getenv("REPLOG_CRASH_KILLS");
  const char* seconds_env = std::getenv("REPLOG_CRASH_SECONDS");
  const int kKills = kills_env ? std::max(1, std::atoi(kills_env)) : 20;
  const auto suite_deadline = Clock::now() + std::chrono::seconds(seconds_env ? std::max(1, std::atoi(seconds_env)) : 60);
  int rounds = 0;
  std::set<UpdateId> acked;
  DirFacts facts;
  CheckDirectory(dir, acked, facts, -1);
  int rounds_with_acks = 0;
  size_t max_checkpoints = 0;
  OriginId origin = 0;

  for (int round = 0; round < kKills && Clock::now() < suite_deadline; ++round) {
    const int threads = 2 + static_cast<int>(rng() % 3);
    const uint64_t interval = 1 + rng() % 12;
    const uint64_t undo = 1 + rng() % 5;  // window 0 has its own bug (ingest_test)
    std::vector<std::string> args = {CRASH_WRITER, dir, std::to_string(threads), std::to_string(interval),
                                     std::to_string(undo), std::to_string(rng())};
    size_t acks_before = acked.size();
    {
      Child child(args, stderr_log);
      if (rng() % 5 == 0) {
        // Anywhere, including while the node opens and loads its checkpoint.
        child.pump_until(Clock::now() + milliseconds(rng() % 40), [] { return false; });
      } else {
        // In the middle of writing: after some acknowledgements, at a random moment.
        const size_t want = 1 + rng() % 150;
        child.pump_until(Clock::now() + std::chrono::seconds(10), [&] { return child.complete_lines() > want; });
        child.pump_until(Clock::now() + milliseconds(rng() % 60), [] { return false; });
      }
      bool early = child.exited_early();
      int status = child.kill_and_wait();
      ASSERT_FALSE(early || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
          << "crash_writer stopped by itself (status " << status << "): " << read_file(stderr_log);
      for (const auto& line : child.lines()) {
        if (line.rfind("open ", 0) == 0) {
          auto o = parse_hex16(line.substr(5));
          ASSERT_TRUE(o) << line;
          if (origin == 0) origin = *o;
          EXPECT_EQ(*o, origin) << "the data directory's origin id changed";
        } else if (line.rfind("ack ", 0) == 0) {
          auto id = UpdateId::parse(line.substr(4));
          ASSERT_TRUE(id) << line;
          EXPECT_TRUE(acked.insert(*id).second) << "acknowledged twice: " << line;
        } else {
          ADD_FAILURE() << "unexpected line from crash_writer: " << line;
        }
      }
    }
    if (acked.size() > acks_before) ++rounds_with_acks;
    ++rounds;
    CheckDirectory(dir, acked, facts, round);
    max_checkpoints = std::max(max_checkpoints, facts.checkpoints);
    if (::testing::Test::HasFatalFailure()) return;
  }

  std::cerr << "crash test: " << rounds << " kills survived (" << rounds_with_acks << " mid-write), "
            << acked.size() << " acknowledged updates, " << facts.seq << " stored"
            << (::testing::Test::HasFailure() ? ", FAILURES above\n" : ", every acknowledged update found after every kill\n");
  EXPECT_GE(rounds_with_acks, kKills / 2) << "most kills must land while the writer is writing";
  EXPECT_GT(max_checkpoints, 0u) << "the writer should have written checkpoints for the stale-checkpoint check";
  EXPECT_GE(facts.seq, acked.size());

  // The directory is still a working node: open it, write, close, verify.
  engine::NodeOptions o;
  o.dir = dir;
  auto node = engine::Node::open(o);
  ASSERT_TRUE(node) << node.status().message();
  auto id = (*node)->call("inc", Value(Map{{"path", Value("after")}}));
  ASSERT_TRUE(id) << id.status().message();
  ASSERT_TRUE((*node)->close().is_ok());
  node->reset();
  acked.insert(*id);
  CheckDirectory(dir, acked, facts, kKills);
}

}  // namespace
}  // namespace replog

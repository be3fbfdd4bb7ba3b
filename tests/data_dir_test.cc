// The data directory: its file names, the socket fallback, and the writer lock
// between a starting node and short-lived commands, across real processes.
#include "storage/data_dir.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <string>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "support/faulty_env.h"
#include "temp_dir.h"

namespace replog {
namespace {

using testing::FaultyEnv;
using testing::TempDir;
using Outcome = CommandLock::Outcome;

int64_t elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since).count();
}

// Waits (at most 10 s) until `ready` holds.
bool eventually(const std::function<bool()>& ready) {
  for (int i = 0; i < 1000; ++i) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Another process running `body`; its exit code is what `body` returns. It
// tells the parent it is ready through a pipe (signal_ready()), so the parent
// can act once the child holds what it takes. Killed and reaped when dropped.
class Child {
 public:
  explicit Child(const std::function<int(Child&)>& body) {
    if (::pipe(pipe_) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::close(pipe_[0]);
      ::_exit(body(*this));
    }
    ::close(pipe_[1]);
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(pipe_[0]);
  }
  pid_t pid() const { return pid_; }
  void signal_ready() { (void)!::write(pipe_[1], "r", 1); }
  bool wait_ready() {
    char c;
    return ::read(pipe_[0], &c, 1) == 1;
  }
  // The child's exit code; -1 when it did not exit normally.
  int wait_exit() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  int pipe_[2] = {-1, -1};
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// A child that holds LOCK as command `name` for `hold_ms`, then exits.
std::unique_ptr<Child> command_holding_lock(const std::string& dir, const std::string& name, int hold_ms) {
  auto child = std::make_unique<Child>([&](Child& self) {
    auto lock = DataDir(dir).lock_for_command(name, 1000);
    if (!lock || lock->outcome != Outcome::kLocked) return 1;
    self.signal_ready();
    std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
    return 0;
  });
  if (!child->wait_ready()) throw std::runtime_error("the child did not take the lock");
  return child;
}

// --- names and endpoints -------------------------------------------------------------

TEST(DataDir, NamesEveryFileOfTheDirectory) {
  DataDir d("/srv/replog/a");
  EXPECT_EQ(d.path(), "/srv/replog/a");
  EXPECT_EQ(d.data_file(), "/srv/replog/a/data.mdb");
  EXPECT_EQ(d.lmdb_lock_file(), "/srv/replog/a/lock.mdb");
  EXPECT_EQ(d.lock_file(), "/srv/replog/a/LOCK");
  EXPECT_EQ(d.node_starting_file(), "/srv/replog/a/NODE_STARTING");
  EXPECT_EQ(d.endpoint_file(), "/srv/replog/a/api.endpoint");
}

TEST(DataDir, SocketsStayInTheDirectoryUpTo80Bytes) {
  std::string at_limit = "/a/" + std::string(77, 'y');
  ASSERT_EQ(at_limit.size(), 80u);
  EXPECT_EQ(DataDir::socket_dir_for(at_limit), at_limit);
  auto e = DataDir("/srv/replog/a").api_endpoints();
  ASSERT_TRUE(e) << e.status().message();
  EXPECT_EQ(e->api, "ipc:///srv/replog/a/api.sock");
  EXPECT_EQ(e->events, "ipc:///srv/replog/a/events.sock");
}

TEST(DataDir, LongDirectoryPutsSocketsInTmpNamedByAn8ByteBlake2bDigest) {
  // Expected names computed independently: hashlib.blake2b(path, digest_size=8).
  EXPECT_EQ(DataDir::socket_dir_for("/a/" + std::string(78, 'y')), "/tmp/replog-128f4f661b3a8944");
  EXPECT_EQ(DataDir::socket_dir_for("/a/" + std::string(80, 'x')), "/tmp/replog-a25179d7ca992e3b");
  EXPECT_EQ(DataDir::socket_dir_for("/var/lib/replog/" + std::string(90, 'd')), "/tmp/replog-4a0e708254f7f72e");
}

TEST(DataDir, FallbackDirectoryIsMadeForTheOwnerOnly) {
  TempDir tmp;
  std::string dir = tmp.sub(std::string(90, 'd'));
  auto e = DataDir(dir).api_endpoints();
  ASSERT_TRUE(e) << e.status().message();
  std::string sockets = DataDir::socket_dir_for(dir);
  EXPECT_EQ(e->api, "ipc://" + sockets + "/api.sock");
  EXPECT_EQ(e->events, "ipc://" + sockets + "/events.sock");
  struct stat st;
  ASSERT_EQ(::stat(sockets.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ::rmdir(sockets.c_str());
}

// Someone else's directory, a wider one, or a link where the fallback goes:
// refused with one line, since the API there can change whom the node trusts.
TEST(DataDir, FallbackDirectoryThatIsNotTheOwnersAloneIsRefused) {
  TempDir tmp;
  std::string dir = tmp.sub(std::string(90, 'e'));
  std::string sockets = DataDir::socket_dir_for(dir);
  ::rmdir(sockets.c_str());
  ASSERT_EQ(::mkdir(sockets.c_str(), 0755), 0);
  ::chmod(sockets.c_str(), 0755);
  auto wide = DataDir(dir).api_endpoints();
  ASSERT_FALSE(wide);
  EXPECT_NE(wide.status().message().find("mode 0755"), std::string::npos) << wide.status().message();
  if (::geteuid() == 0) {
    ASSERT_EQ(::chmod(sockets.c_str(), 0700), 0);
    ASSERT_EQ(::chown(sockets.c_str(), 65534, 65534), 0);
    auto foreign = DataDir(dir).api_endpoints();
    ASSERT_FALSE(foreign);
    EXPECT_NE(foreign.status().message().find("owned by user 65534"), std::string::npos) << foreign.status().message();
  }
  ASSERT_EQ(::rmdir(sockets.c_str()), 0);
  ASSERT_EQ(::symlink(tmp.path().c_str(), sockets.c_str()), 0);
  auto link = DataDir(dir).api_endpoints();
  ::unlink(sockets.c_str());
  ASSERT_FALSE(link);
  EXPECT_NE(link.status().message().find("not a directory"), std::string::npos) << link.status().message();
}

TEST(DataDir, RelativeDirectoryIsMadeAbsoluteFirst) {
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  auto e = DataDir("a").api_endpoints();
  ASSERT_TRUE(e) << e.status().message();
  std::string abs = std::string(cwd) + "/a";
  EXPECT_EQ(e->api, "ipc://" + DataDir::socket_dir_for(abs) + "/api.sock");
  if (DataDir::socket_dir_for(abs) != abs) ::rmdir(DataDir::socket_dir_for(abs).c_str());
}

TEST(DataDir, PublishedApiCountsOnlyWhileANodeHoldsTheLock) {
  TempDir tmp;
  DataDir d(tmp.path());
  ApiEndpoints e{"ipc://x/api.sock", "ipc://x/events.sock"};
  ASSERT_TRUE(d.publish_api(e));
  auto probe = d.node_running();
  ASSERT_TRUE(probe) << probe.status().message();
  EXPECT_FALSE(probe->running) << "nobody holds LOCK";
  {
    auto lock = d.lock_for_node(1000);
    ASSERT_TRUE(lock) << lock.status().message();
    EXPECT_FALSE(d.node_running()->api) << "a file left by an earlier node is stale once the lock is taken";
    ASSERT_TRUE(d.publish_api(e));
    probe = d.node_running();
    ASSERT_TRUE(probe->running);
    ASSERT_TRUE(probe->api);
    EXPECT_EQ(probe->api->api, e.api);
    EXPECT_EQ(probe->api->events, e.events);
    EXPECT_EQ(d.lock_holder().describe(), "pid " + std::to_string(::getpid()) + ", node");
  }
  auto command = d.lock_for_command("call", 1000);
  ASSERT_TRUE(command) << command.status().message();
  EXPECT_FALSE(d.node_running()->running) << "a command is not a node";
  EXPECT_TRUE(d.withdraw_api());
  EXPECT_TRUE(d.withdraw_api()) << "withdrawing twice is fine";
}

// --- the lock across processes ---------------------------------------------------------

TEST(DataDir, NodeWaitsForACommandInAnotherProcessThenStarts) {
  TempDir tmp;
  auto command = command_holding_lock(tmp.path(), "call", 1000);
  ASSERT_TRUE(DataDir(tmp.path()).publish_api({"ipc://old/api.sock", "ipc://old/events.sock"}));
  std::vector<std::string> said;
  auto start = std::chrono::steady_clock::now();
  auto lock = DataDir(tmp.path()).lock_for_node(10'000, [&](const std::string& line) { said.push_back(line); });
  ASSERT_TRUE(lock) << lock.status().message();
  EXPECT_GE(elapsed_ms(start), 500) << "the command held the lock for 1 s";
  EXPECT_LT(elapsed_ms(start), 5'000);
  ASSERT_EQ(said.size(), 1u) << "one line, however long the wait";
  EXPECT_NE(said[0].find("pid " + std::to_string(command->pid()) + ", command call"), std::string::npos) << said[0];
  EXPECT_NE(said[0].find("up to 10 s"), std::string::npos) << said[0];
  EXPECT_FALSE(::access(DataDir(tmp.path()).node_starting_file().c_str(), F_OK) == 0) << "mark removed";
  EXPECT_FALSE(::access(DataDir(tmp.path()).endpoint_file().c_str(), F_OK) == 0) << "a stale api.endpoint removed";
  EXPECT_EQ(command->wait_exit(), 0);
}

TEST(DataDir, NodeGivesUpAfterItsBoundNamingTheHolder) {
  TempDir tmp;
  auto command = command_holding_lock(tmp.path(), "import", 5000);
  auto start = std::chrono::steady_clock::now();
  auto lock = DataDir(tmp.path()).lock_for_node(300);
  ASSERT_FALSE(lock);
  EXPECT_GE(elapsed_ms(start), 290) << "waited its bound (wall and steady clocks round apart)";
  EXPECT_LT(elapsed_ms(start), 3'000);
  EXPECT_EQ(lock.status().code(), Status::Code::kBusy);
  EXPECT_EQ(lock.status().message(), tmp.path() + " is in use by another writer (pid " +
                                         std::to_string(command->pid()) + ", command import): still locked after 300 ms");
  EXPECT_FALSE(::access(DataDir(tmp.path()).node_starting_file().c_str(), F_OK) == 0) << "mark removed";
}

TEST(DataDir, CommandWaitsBrieflyThenNamesTheHolder) {
  TempDir tmp;
  auto command = command_holding_lock(tmp.path(), "import", 5000);
  auto lock = DataDir(tmp.path()).lock_for_command("call", 200);
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.status().code(), Status::Code::kBusy);
  EXPECT_EQ(lock.status().message(),
            tmp.path() + " is in use by another writer (pid " + std::to_string(command->pid()) +
                ", command import): still locked after 200 ms");
}

TEST(DataDir, CommandGivesWayToAStartingNodeAndFindsItsApi) {
  TempDir tmp;
  DataDir d(tmp.path());
  // Each holder is its own process: a forked child would share (and keep) a lock its parent held.
  auto first = command_holding_lock(tmp.path(), "import", 1000);
  ApiEndpoints e{"ipc://n/api.sock", "ipc://n/events.sock"};
  Child node([&](Child&) {
    auto lock = DataDir(tmp.path()).lock_for_node(10'000);
    if (!lock || !DataDir(tmp.path()).publish_api(e)) return 1;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    return 0;
  });
  ASSERT_TRUE(eventually([&] { return ::access(d.node_starting_file().c_str(), F_OK) == 0; }));

  auto second = d.lock_for_command("call", 1000);
  ASSERT_TRUE(second) << second.status().message();
  EXPECT_EQ(second->outcome, Outcome::kNodeStarting);
  EXPECT_EQ(second->lock, nullptr);
  EXPECT_EQ(second->node_pid, node.pid());

  // The first command ends after 1 s; the node takes the lock and serves.
  auto api = d.wait_for_node_api(5'000);
  ASSERT_TRUE(api) << api.status().message();
  EXPECT_EQ(api->api, e.api);
  EXPECT_EQ(first->wait_exit(), 0);
  EXPECT_EQ(node.wait_exit(), 0);
}

// Runs `hook` once, when `path` is first read, then reads it.
class HookedEnv : public FaultyEnv {
 public:
  HookedEnv(std::string path, std::function<void()> hook) : path_(std::move(path)), hook_(std::move(hook)) {}
  Result<std::string> read_file(const std::string& path) override {
    if (hook_ && path == path_) std::exchange(hook_, nullptr)();
    return FaultyEnv::read_file(path);
  }

 private:
  const std::string path_;
  std::function<void()> hook_;
};

// A command waiting for a starting node's API must not take the node for gone
// when, between two of its looks, the node passes from starting (its mark) to
// running (LOCK): the node takes LOCK, then removes its mark. The command used
// to look at LOCK first and the mark second, and failed right as the node came
// up (TSan's slowness made the window wide enough for
// CommandGivesWayToAStartingNodeAndFindsItsApi to fall into it).
TEST(DataDir, NodePassingFromStartingToRunningBetweenTwoLooksIsNotTakenForGone) {
  TempDir tmp;
  DataDir plain(tmp.path());
  auto command = plain.lock_for_command("import", 0);  // LOCK held by a command
  ASSERT_TRUE(command && command->lock);
  // A node (this process) waits for it: its mark, due in a minute.
  ASSERT_TRUE(Env::posix().write_file(plain.node_starting_file(),
                                      std::to_string(::getpid()) + " " +
                                          std::to_string(Env::posix().now_millis() + 60'000) + "\n",
                                      0600));
  ApiEndpoints e{"ipc://n/api.sock", "ipc://n/events.sock"};
  std::unique_ptr<FileLock> node_lock;
  // The instant the waiting command first reads the mark, the node's steps in
  // its order: the command ends, the node takes LOCK, removes its mark, serves.
  HookedEnv env(plain.node_starting_file(), [&] {
    command->lock.reset();
    auto lock = plain.lock_for_node(0);
    ASSERT_TRUE(lock) << lock.status().message();
    node_lock = std::move(lock).value();
    ASSERT_TRUE(Env::posix().remove_file(plain.node_starting_file()));
    ASSERT_TRUE(plain.publish_api(e));
  });
  auto api = DataDir(tmp.path(), env).wait_for_node_api(1000);
  ASSERT_TRUE(api) << api.status().message();
  EXPECT_EQ(api->api, e.api);
  EXPECT_TRUE(node_lock) << "the hook ran";
}

// A node restarted just after a command saw no node took the free lock at once,
// so it put up no mark; the command gives way to it instead of waiting its 5 s
// and failing (the nemesis found `replog call` failing so after a restart).
TEST(DataDir, CommandFindingALiveNodeHoldingTheLockGivesWayToIt) {
  TempDir tmp;
  DataDir d(tmp.path());
  ApiEndpoints e{"ipc://n/api.sock", "ipc://n/events.sock"};
  Child node([&](Child&) {
    auto lock = DataDir(tmp.path()).lock_for_node(0);
    if (!lock) return 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // opening: no API yet
    if (!DataDir(tmp.path()).publish_api(e)) return 1;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    return 0;
  });
  ASSERT_TRUE(eventually([&] { return Env::posix().lock_is_held(d.lock_file()).value() && d.lock_holder().is_node(); }));
  EXPECT_NE(::access(d.node_starting_file().c_str(), F_OK), 0) << "the node found the lock free: no mark";
  auto start = std::chrono::steady_clock::now();
  auto command = d.lock_for_command("call", 5'000);
  ASSERT_TRUE(command) << command.status().message();
  EXPECT_EQ(command->outcome, Outcome::kNodeStarting);
  EXPECT_EQ(command->lock, nullptr);
  EXPECT_EQ(command->node_pid, node.pid());
  EXPECT_LT(elapsed_ms(start), 1'000) << "gave way at once, not after its bound";
  auto api = d.wait_for_node_api(5'000);
  ASSERT_TRUE(api) << api.status().message();
  EXPECT_EQ(api->api, e.api);
  EXPECT_EQ(node.wait_exit(), 0);
}

TEST(DataDir, CommandWaitingForANodeThatGaveUpIsToldSo) {
  TempDir tmp;
  auto command = command_holding_lock(tmp.path(), "import", 5000);
  Child node([&](Child&) { return DataDir(tmp.path()).lock_for_node(300) ? 0 : 1; });
  DataDir d(tmp.path());
  ASSERT_TRUE(eventually([&] { return ::access(d.node_starting_file().c_str(), F_OK) == 0; }));
  auto api = d.wait_for_node_api(5'000);
  ASSERT_FALSE(api);
  EXPECT_EQ(api.status().code(), Status::Code::kNotFound) << api.status().message();
  EXPECT_EQ(node.wait_exit(), 1);
}

TEST(DataDir, StaleMarkOfADeadProcessIsIgnoredAndRemoved) {
  TempDir tmp;
  DataDir d(tmp.path());
  Child gone([](Child&) { return 0; });
  ASSERT_EQ(gone.wait_exit(), 0);
  int64_t tomorrow = Env::posix().now_millis() + 86'400'000;
  ASSERT_TRUE(Env::posix().write_file(d.node_starting_file(), std::to_string(gone.pid()) + " " + std::to_string(tomorrow)));
  auto lock = d.lock_for_command("call", 1000);
  ASSERT_TRUE(lock) << lock.status().message();
  EXPECT_EQ(lock->outcome, Outcome::kLocked);
  EXPECT_NE(::access(d.node_starting_file().c_str(), F_OK), 0) << "stale mark removed";
}

TEST(DataDir, MarkPastItsDeadlineIsStaleEvenWhenItsPidLives) {
  TempDir tmp;
  DataDir d(tmp.path());
  int64_t earlier = Env::posix().now_millis() - 1;
  ASSERT_TRUE(Env::posix().write_file(d.node_starting_file(), std::to_string(::getppid()) + " " + std::to_string(earlier)));
  auto lock = d.lock_for_command("call", 1000);
  ASSERT_TRUE(lock) << lock.status().message();
  EXPECT_EQ(lock->outcome, Outcome::kLocked);
}

TEST(DataDir, LiveMarkMakesACommandGiveWayBeforeTouchingTheLock) {
  TempDir tmp;
  DataDir d(tmp.path());
  int64_t later = Env::posix().now_millis() + 60'000;
  ASSERT_TRUE(Env::posix().write_file(d.node_starting_file(), std::to_string(::getppid()) + " " + std::to_string(later)));
  auto lock = d.lock_for_command("resolve", 1000);
  ASSERT_TRUE(lock) << lock.status().message();
  EXPECT_EQ(lock->outcome, Outcome::kNodeStarting);
  EXPECT_EQ(lock->node_pid, ::getppid());
  EXPECT_FALSE(Env::posix().lock_is_held(d.lock_file()).value());
}

// --- faults through FaultyEnv ---------------------------------------------------------------

// A data directory whose Env fails what each test switches on.
class DataDirFaults : public ::testing::Test {
 protected:
  TempDir tmp;
  FaultyEnv env;
  DataDir d{tmp.path(), env};
};

TEST_F(DataDirFaults, LockFileThatCannotBeOpenedFailsWithItsPathAndReason) {
  env.fail(FaultyEnv::Op::kLock, EIO);
  auto node = d.lock_for_node(1000);
  ASSERT_FALSE(node);
  EXPECT_EQ(node.status().code(), Status::Code::kIOError);
  EXPECT_EQ(node.status().message(), tmp.path() + "/LOCK: Input/output error");
  EXPECT_EQ(env.calls(FaultyEnv::Op::kLock), 1) << "an error that is not 'held' is not waited out";
  EXPECT_NE(::access(d.node_starting_file().c_str(), F_OK), 0) << "no mark left";
  auto command = d.lock_for_command("call", 1000);
  ASSERT_FALSE(command);
  EXPECT_EQ(command.status().message(), tmp.path() + "/LOCK: Input/output error");
}

TEST_F(DataDirFaults, HeldLockIsWaitedForUpToTheBoundThenNamed) {
  env.use_manual_time(1'000'000);
  env.fail(FaultyEnv::Op::kLock, EWOULDBLOCK);
  int lines = 0;
  auto lock = d.lock_for_node(30'000, [&](const std::string&) { ++lines; });
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.status().code(), Status::Code::kBusy);
  EXPECT_NE(lock.status().message().find("still locked after 30 s"), std::string::npos) << lock.status().message();
  EXPECT_EQ(env.now_millis(), 1'030'000) << "waited the whole bound, not more";
  EXPECT_GT(env.calls(FaultyEnv::Op::kLock), 100) << "tried again while waiting";
  EXPECT_EQ(lines, 1);
  EXPECT_NE(::access(d.node_starting_file().c_str(), F_OK), 0) << "mark removed";
}

TEST_F(DataDirFaults, LockThatBreaksWhileWaitedForIsNotWaitedOut) {
  env.use_manual_time(1'000'000);
  env.fail(FaultyEnv::Op::kLock, EWOULDBLOCK, "", 2);
  env.fail(FaultyEnv::Op::kLock, EIO);
  auto node = d.lock_for_node(30'000);
  ASSERT_FALSE(node);
  EXPECT_EQ(node.status().message(), tmp.path() + "/LOCK: Input/output error");
  EXPECT_EQ(env.calls(FaultyEnv::Op::kLock), 3);
  env.heal(FaultyEnv::Op::kLock);
  env.fail(FaultyEnv::Op::kLock, EWOULDBLOCK, "", 2);
  env.fail(FaultyEnv::Op::kLock, EIO);
  auto command = d.lock_for_command("call", 30'000);
  ASSERT_FALSE(command);
  EXPECT_EQ(command.status().message(), tmp.path() + "/LOCK: Input/output error");
  EXPECT_EQ(env.calls(FaultyEnv::Op::kLock), 6);
  EXPECT_EQ(env.now_millis(), 1'000'000 + 4 * 50) << "two waits of one poll each, twice";
}

TEST_F(DataDirFaults, FullDiskDoesNotStopANodeFromTakingTheLock) {
  env.use_manual_time(1'000'000);
  env.fail(FaultyEnv::Op::kWrite, ENOSPC);
  env.fail(FaultyEnv::Op::kLock, EWOULDBLOCK, "", 3);
  auto lock = d.lock_for_node(1000);
  ASSERT_TRUE(lock) << lock.status().message();
  EXPECT_EQ(env.calls(FaultyEnv::Op::kLock), 4) << "held for three tries, taken on the fourth";
  EXPECT_EQ(env.calls(FaultyEnv::Op::kWrite), 1) << "the mark it could not write";
  Status s = d.publish_api({"ipc://a", "ipc://b"});
  EXPECT_EQ(s.code(), Status::Code::kNoSpace);
  EXPECT_EQ(s.message(), tmp.path() + "/api.endpoint: No space left on device");
}

TEST_F(DataDirFaults, UnmakeableSocketDirectoryIsAnError) {
  env.fail(FaultyEnv::Op::kMakeDir, EACCES);
  std::string dir = "/srv/" + std::string(90, 'd');
  auto e = DataDir(dir, env).api_endpoints();
  ASSERT_FALSE(e);
  EXPECT_EQ(e.status().message(),
            "local API socket directory: " + DataDir::socket_dir_for(dir) + ": Permission denied");
}

TEST_F(DataDirFaults, UnreadableLockStateIsAnErrorNotANode) {
  env.fail(FaultyEnv::Op::kLockProbe, EIO);
  auto probe = d.node_running();
  ASSERT_FALSE(probe);
  EXPECT_EQ(probe.status().message(), tmp.path() + "/LOCK: Input/output error");
}

TEST_F(DataDirFaults, FailingWorkingDirectoryIsReportedForARelativePath) {
  env.fail(FaultyEnv::Op::kCurrentDir, ENOENT);
  auto e = DataDir("rel", env).api_endpoints();
  ASSERT_FALSE(e);
  EXPECT_EQ(e.status().message(), "the working directory: No such file or directory");
}

// --- the POSIX Env itself ---------------------------------------------------------------------

TEST(DataDirEnv, WriteFileReplacesTheWholeFileAndLeavesNoTemporary) {
  TempDir tmp;
  Env& env = Env::posix();
  std::string f = tmp.sub("f");
  ASSERT_TRUE(env.write_file(f, "a long first content"));
  ASSERT_TRUE(env.write_file(f, "short"));
  EXPECT_EQ(env.read_file(f).value(), "short");
  EXPECT_FALSE(env.file_exists(f + ".tmp" + std::to_string(::getpid())));
  EXPECT_EQ(env.read_file(tmp.sub("none")).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(env.remove_file(tmp.sub("none")).code(), Status::Code::kNotFound);
  Status s = env.write_file(tmp.sub("none/f"), "x");
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(s.message(), tmp.sub("none/f") + ": No such file or directory") << "names the file, not its temporary";
  ASSERT_TRUE(env.rename_file(f, tmp.sub("g")));
  EXPECT_TRUE(env.file_exists(tmp.sub("g")));
  EXPECT_TRUE(env.make_dir(tmp.sub("d"), 0700));
  EXPECT_TRUE(env.make_dir(tmp.sub("d"), 0700)) << "an existing directory is fine";
  EXPECT_FALSE(env.make_dir(tmp.sub("g"), 0700)) << "a file is not a directory";
}

TEST(DataDirEnv, LockIsExclusiveAndItsNoteNamesTheHolder) {
  TempDir tmp;
  Env& env = Env::posix();
  std::string f = tmp.sub("LOCK");
  EXPECT_FALSE(env.lock_is_held(f).value()) << "no file, no holder";
  auto first = env.lock_file(f, "12 node");
  ASSERT_TRUE(first) << first.status().message();
  EXPECT_TRUE(env.lock_is_held(f).value());
  EXPECT_EQ(env.read_file(f).value(), "12 node");
  auto second = env.lock_file(f, "13 command call");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.status().code(), Status::Code::kBusy);
  first->reset();
  EXPECT_FALSE(env.lock_is_held(f).value());
  EXPECT_TRUE(env.lock_file(f, "13 command call"));
}

TEST(DataDirEnv, RandomBytesDiffer) {
  unsigned char a[16] = {}, b[16] = {};
  ASSERT_TRUE(Env::posix().fill_random(a, sizeof a));
  ASSERT_TRUE(Env::posix().fill_random(b, sizeof b));
  EXPECT_NE(std::string(reinterpret_cast<char*>(a), 16), std::string(reinterpret_cast<char*>(b), 16));
  EXPECT_TRUE(Env::posix().process_alive(::getpid()));
}

}  // namespace
}  // namespace replog

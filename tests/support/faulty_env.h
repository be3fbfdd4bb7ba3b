// FaultyEnv: an Env for tests that passes every call to another Env (the real
// one by default) except the operations a test has switched to fail.
//
//   FaultyEnv env;
//   env.fail(FaultyEnv::Op::kWrite, ENOSPC);          // every write: disk full
//   env.fail(FaultyEnv::Op::kLock, EWOULDBLOCK);      // LOCK is held by "someone"
//   env.fail(FaultyEnv::Op::kRead, EIO, "/LOCK");     // only paths ending in /LOCK
//   env.fail(FaultyEnv::Op::kLock, EWOULDBLOCK, "", 3);  // held for 3 tries,
//   env.fail(FaultyEnv::Op::kLock, EIO);                 // then broken
//   env.use_manual_time(1'000);                       // bounded waits end at once
//
// A switched operation fails the way the real Env would, with errno_status()
// on the path, so the code under test sees the same Status codes and messages
// (kBusy for EWOULDBLOCK, kNotFound for ENOENT, kNoSpace for ENOSPC, kIOError
// otherwise). It lives
// with the tests, not in storage/, because nothing but a test has a use for it.
//
// Thread safety: switches, counts and the manual clock are guarded by a mutex;
// the wrapped Env is called outside it.
#pragma once

#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "storage/env.h"

namespace replog::testing {

class FaultyEnv : public Env {
 public:
  enum class Op { kRead, kWrite, kRename, kRemove, kMakeDir, kCurrentDir, kLock, kLockProbe, kRandom, kStat };

  // REQUIRES: `base` outlives the FaultyEnv.
  explicit FaultyEnv(Env& base = Env::posix()) : base_(base) {}

  // From now on `op` fails with `err` (an errno value), on every path or only
  // on paths that end with `path_suffix`, for `times` failing calls (-1: until
  // heal()). Faults given for one op apply one after the other, in order.
  void fail(Op op, int err, std::string path_suffix = "", int times = -1) {
    std::lock_guard<std::mutex> l(mu_);
    faults_[op].push_back(Fault{err, std::move(path_suffix), times});
  }
  void heal(Op op) {
    std::lock_guard<std::mutex> l(mu_);
    faults_.erase(op);
  }
  // How many times `op` was called, failed or not.
  int calls(Op op) const {
    std::lock_guard<std::mutex> l(mu_);
    auto it = calls_.find(op);
    return it == calls_.end() ? 0 : it->second;
  }
  // From now on now_millis() reads a manual clock starting at `start_ms`, and
  // sleep_millis() advances it instead of sleeping.
  void use_manual_time(int64_t start_ms) {
    std::lock_guard<std::mutex> l(mu_);
    manual_ms_ = start_ms;
  }

  Result<std::string> read_file(const std::string& path) override {
    REPLOG_RETURN_IF_ERROR(check(Op::kRead, path));
    return base_.read_file(path);
  }
  Status write_file(const std::string& path, std::string_view data, unsigned mode) override {
    REPLOG_RETURN_IF_ERROR(check(Op::kWrite, path));
    return base_.write_file(path, data, mode);
  }
  Status rename_file(const std::string& from, const std::string& to) override {
    REPLOG_RETURN_IF_ERROR(check(Op::kRename, to));
    return base_.rename_file(from, to);
  }
  Status remove_file(const std::string& path) override {
    REPLOG_RETURN_IF_ERROR(check(Op::kRemove, path));
    return base_.remove_file(path);
  }
  bool file_exists(const std::string& path) override { return base_.file_exists(path); }
  Result<FileMode> file_mode(const std::string& path) override {
    REPLOG_RETURN_IF_ERROR(check(Op::kStat, path));
    return base_.file_mode(path);
  }
  Status make_dir(const std::string& path, unsigned mode) override {
    REPLOG_RETURN_IF_ERROR(check(Op::kMakeDir, path));
    return base_.make_dir(path, mode);
  }
  Result<std::string> current_dir() override {
    REPLOG_RETURN_IF_ERROR(check(Op::kCurrentDir, "the working directory"));
    return base_.current_dir();
  }
  Result<std::unique_ptr<FileLock>> lock_file(const std::string& path, std::string_view note) override {
    REPLOG_RETURN_IF_ERROR(check(Op::kLock, path));
    return base_.lock_file(path, note);
  }
  Result<bool> lock_is_held(const std::string& path) override {
    REPLOG_RETURN_IF_ERROR(check(Op::kLockProbe, path));
    return base_.lock_is_held(path);
  }
  int64_t process_id() override { return base_.process_id(); }
  int64_t user_id() override { return base_.user_id(); }
  bool process_alive(int64_t pid) override { return base_.process_alive(pid); }
  Status fill_random(void* buf, size_t size) override {
    REPLOG_RETURN_IF_ERROR(check(Op::kRandom, "getrandom"));
    return base_.fill_random(buf, size);
  }
  int64_t now_millis() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (manual_ms_ >= 0) return manual_ms_;
    }
    return base_.now_millis();
  }
  void sleep_millis(int64_t ms) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (manual_ms_ >= 0) {
        manual_ms_ += ms;
        return;
      }
    }
    base_.sleep_millis(ms);
  }

 private:
  struct Fault {
    int err;
    std::string path_suffix;
    int times_left;  // -1: no end
  };

  // Counts the call; the Status a switched-on fault gives `path`, else OK.
  Status check(Op op, const std::string& path) {
    std::lock_guard<std::mutex> l(mu_);
    ++calls_[op];
    auto it = faults_.find(op);
    if (it == faults_.end() || it->second.empty()) return Status::ok();
    Fault& fault = it->second.front();
    const std::string& suffix = fault.path_suffix;
    bool matches = path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (!matches) return Status::ok();
    Status s = errno_status(path, fault.err);
    if (fault.times_left > 0 && --fault.times_left == 0) it->second.pop_front();
    return s;
  }

  Env& base_;
  mutable std::mutex mu_;
  std::map<Op, std::deque<Fault>> faults_;  // guarded by mu_
  std::map<Op, int> calls_;     // guarded by mu_
  int64_t manual_ms_ = -1;      // guarded by mu_; -1: the base's clock
};

}  // namespace replog::testing

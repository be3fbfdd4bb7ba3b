#include "storage/env.h"

#include <sodium.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>

namespace replog {

std::string errno_text(int err) {
  char buf[256];
  // GNU strerror_r: returns the message, in buf or in static storage.
  return strerror_r(err, buf, sizeof buf);
}

Status errno_status(const std::string& path, int err) {
  std::string msg = path + ": " + errno_text(err);
  if (err == ENOENT) return Status::not_found(std::move(msg));
  if (err == EWOULDBLOCK) return Status::busy(std::move(msg));
  if (err == ENOSPC) return Status::no_space(std::move(msg));
  return Status::io_error(std::move(msg));
}

Status check_owner_only(Env& env, const std::string& path, const FileMode& mode, unsigned forbidden,
                        const std::string& kind, const std::string& risk) {
  if (!mode.regular) return Status::invalid_argument(path + ": not a regular file; " + kind + " must be one");
  if (mode.owner != env.user_id())
    return Status::invalid_argument(path + ": owned by user " + std::to_string(mode.owner) + ", not by this user (" +
                                    std::to_string(env.user_id()) + "); run replog as its owner");
  if ((mode.permissions & forbidden) != 0) {
    char octal[16];
    std::snprintf(octal, sizeof octal, "%04o", mode.permissions & 07777u);
    return Status::invalid_argument(path + ": mode " + octal + " " + risk + "; run: chmod 600 " + path);
  }
  return Status::ok();
}

Result<std::string> read_owner_only_file(Env& env, const std::string& path, const std::string& kind,
                                         const std::string& risk) {
  auto mode = env.file_mode(path);
  if (!mode) return mode.status();
  REPLOG_RETURN_IF_ERROR(check_owner_only(env, path, *mode, 077, kind, risk));
  return env.read_file(path);
}

namespace {

// Closes a descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status(path, errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::ok();
}

class PosixFileLock : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // closing the descriptor releases the flock

 private:
  int fd_;
};

class PosixEnv : public Env {
 public:
  Result<std::string> read_file(const std::string& path) override {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return errno_status(path, errno);
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_status(path, errno);
      if (n == 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }

  Status write_file(const std::string& path, std::string_view data, unsigned mode) override {
    // The pid keeps two processes that replace the same file from sharing a temporary.
    std::string tmp = path + ".tmp" + std::to_string(::getpid());
    // Errors name `path`, the file the caller knows of, not the temporary.
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode)));
    if (fd.get() < 0) return errno_status(path, errno);
    Status s = write_all(fd.get(), data, path);
    if (s && ::fsync(fd.get()) != 0) s = errno_status(path, errno);
    if (s && ::close(fd.release()) != 0) s = errno_status(path, errno);
    if (s && ::rename(tmp.c_str(), path.c_str()) != 0) s = errno_status(path, errno);
    if (!s) ::unlink(tmp.c_str());
    return s;
  }

  Status rename_file(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return errno_status(from + " -> " + to, errno);
    return Status::ok();
  }

  Status remove_file(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return errno_status(path, errno);
    return Status::ok();
  }

  bool file_exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Result<FileMode> file_mode(const std::string& path) override {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return errno_status(path, errno);
    return FileMode{static_cast<unsigned>(st.st_mode & 07777), static_cast<int64_t>(st.st_uid), S_ISREG(st.st_mode),
                    S_ISDIR(st.st_mode)};
  }

  Status make_dir(const std::string& path, unsigned mode) override {
    if (::mkdir(path.c_str(), static_cast<mode_t>(mode)) == 0) return Status::ok();
    int err = errno;
    struct stat st;
    if (err == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::ok();
    return errno_status(path, err);
  }

  Result<std::string> current_dir() override {
    char buf[PATH_MAX];
    if (::getcwd(buf, sizeof buf) == nullptr) return errno_status("the working directory", errno);
    return std::string(buf);
  }

  Result<std::unique_ptr<FileLock>> lock_file(const std::string& path, std::string_view note) override {
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (fd.get() < 0) return errno_status(path, errno);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return errno_status(path, errno);
    // The note is informational (who holds the lock); a full disk must not stop the holder.
    if (::ftruncate(fd.get(), 0) == 0) (void)::pwrite(fd.get(), note.data(), note.size(), 0);
    return std::unique_ptr<FileLock>(new PosixFileLock(fd.release()));
  }

  Result<bool> lock_is_held(const std::string& path) override {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0 && errno == ENOENT) return false;
    if (fd.get() < 0) return errno_status(path, errno);
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return false;  // released when fd closes
    if (errno == EWOULDBLOCK) return true;
    return errno_status(path, errno);
  }

  int64_t process_id() override { return ::getpid(); }
  int64_t user_id() override { return ::geteuid(); }

  bool process_alive(int64_t pid) override {
    if (pid <= 0 || pid > INT_MAX) return false;
    return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
  }

  // libsodium's generator (the kernel's getrandom() unless a program installs
  // its own, as the simulator does to make a seed's keys repeatable).
  Status fill_random(void* buf, size_t size) override {
    if (sodium_init() < 0) return Status::io_error("libsodium failed to initialise");
    randombytes_buf(buf, size);
    return Status::ok();
  }

  int64_t now_millis() override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }

  void sleep_millis(int64_t ms) override { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
};

}  // namespace

Env& Env::posix() {
  static PosixEnv env;
  return env;
}

}  // namespace replog

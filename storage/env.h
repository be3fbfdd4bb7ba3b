// Env: what replog needs from the operating system outside LMDB and ZeroMQ.
//
// Small files (api.endpoint, the node-starting mark, the identity key file),
// directories, an exclusive advisory lock on a file, whether a process lives,
// randomness, wall time and sleeping. The data directory (storage/data_dir.h)
// reaches the OS only through an Env, so a test can hand it a wrapper that
// makes chosen operations fail (tests/support/faulty_env.h) without any
// `if (testing)` in the code it tests. Env::posix() is the real one.
//
// Errors come back as Status naming the path and the OS's reason
// ("DATA/LOCK: No space left on device"), with codes from errno_status():
// kNotFound for a missing file, kBusy for a lock held by someone else,
// kNoSpace for a full disk, kIOError for everything else.
//
// Thread safety: Env::posix() is safe to use from any thread. A FileLock is
// owned by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "replog/status.h"

namespace replog {

// An exclusive advisory lock on a file (flock), held until destroyed. The
// kernel also releases it when the holding process dies, however it dies.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

// What Env::file_mode() reports.
struct FileMode {
  unsigned permissions = 0;  // mode & 07777
  int64_t owner = -1;        // the owner's user id
  bool regular = false;      // a regular file (not a link, directory, ...)
  bool directory = false;    // a directory (not a link to one)
};

class Env {
 public:
  virtual ~Env() = default;

  // The real operating system. Lives for the whole program.
  static Env& posix();

  // --- files ---------------------------------------------------------------
  // The whole file. kNotFound when it does not exist.
  virtual Result<std::string> read_file(const std::string& path) = 0;
  // Replaces `path` with `data` at once: written to a temporary file beside it,
  // flushed, then renamed, so a reader sees the old content or the new, never a
  // part. `mode` is the new file's permissions (before the umask).
  virtual Status write_file(const std::string& path, std::string_view data, unsigned mode = 0644) = 0;
  virtual Status rename_file(const std::string& from, const std::string& to) = 0;
  // kNotFound when the file does not exist.
  virtual Status remove_file(const std::string& path) = 0;
  virtual bool file_exists(const std::string& path) = 0;
  // A file's permission bits (mode & 07777) and its owner's user id, as lstat
  // gives them (a symbolic link is not followed). kNotFound when it does not exist.
  virtual Result<FileMode> file_mode(const std::string& path) = 0;
  // OK when the directory exists already (its mode is then left as it is).
  virtual Status make_dir(const std::string& path, unsigned mode) = 0;
  // The process's working directory, to make relative paths absolute.
  virtual Result<std::string> current_dir() = 0;

  // --- the lock --------------------------------------------------------------
  // Takes the exclusive lock on `path` (created 0600 when missing) without
  // waiting: kBusy when another holder has it. The holder then replaces the
  // file's content with `note` (who holds it, for the message others get); the
  // note is best effort, the lock is what counts. Others read the note with
  // read_file(). Waiting, and for how long, is the caller's choice.
  virtual Result<std::unique_ptr<FileLock>> lock_file(const std::string& path, std::string_view note) = 0;
  // Whether someone holds the exclusive lock on `path`; false when the file
  // does not exist. Probes with a shared lock that is released at once.
  virtual Result<bool> lock_is_held(const std::string& path) = 0;

  // --- processes, randomness, time -------------------------------------------
  virtual int64_t process_id() = 0;
  // The process's effective user id.
  virtual int64_t user_id() = 0;
  // Whether a process with this id exists (it may belong to another user).
  virtual bool process_alive(int64_t pid) = 0;
  // Fills `buf` with `size` bytes from the OS's secure random source.
  virtual Status fill_random(void* buf, size_t size) = 0;
  // Wall time, milliseconds since the Unix epoch. Bounded waits use it too:
  // they are seconds long and tolerate a rare clock step.
  virtual int64_t now_millis() = 0;
  virtual void sleep_millis(int64_t ms) = 0;
};

// The Status for an OS error `err` (an errno value) on `path`: kNotFound for
// ENOENT, kBusy for EWOULDBLOCK, kNoSpace for ENOSPC, kIOError otherwise; the message is
// "PATH: strerror(err)". Shared by every Env so that their errors read alike.
Status errno_status(const std::string& path, int err);
// strerror(err), safe from any thread (strerror may share one buffer).
std::string errno_text(int err);

// Whether the file `path`, whose lstat is `mode`, may be used for what only its
// owner may decide: a regular file (a symbolic link is refused, not followed),
// owned by env.user_id(), with none of the permission bits in `forbidden`.
// Otherwise kInvalidArgument with one line naming `path` and the fix; `kind`
// names what the file must be ("an identity key file") and `risk` what a wider
// mode allows ("lets others read the secret key").
Status check_owner_only(Env& env, const std::string& path, const FileMode& mode, unsigned forbidden,
                        const std::string& kind, const std::string& risk);

// The bytes of a secret file (a key): kNotFound when it does not exist; the
// refusals of check_owner_only (group and others may have no bit at all);
// else its content. The caller wipes the bytes once it has taken the key.
Result<std::string> read_owner_only_file(Env& env, const std::string& path, const std::string& kind,
                                         const std::string& risk);

}  // namespace replog

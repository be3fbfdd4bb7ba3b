// DataDir: the files of one replog data directory, named here and nowhere
// else, and the directory's writer lock.
//
// A data directory DATA holds:
//   data.mdb, lock.mdb      LMDB's environment (storage/update_log.h opens it).
//   LOCK                    the writer lock: an exclusive flock held by the one
//                           process that writes, a node or a command working
//                           offline. Its content names the holder, for the
//                           messages others print: "PID node" or
//                           "PID command NAME".
//   NODE_STARTING           present while a node waits for LOCK: "PID DEADLINE_MS",
//                           the waiting node's pid and the wall time (ms) at which
//                           it gives up. Commands that see it give way.
//   identity.key            the node's Ed25519 secret key, 64 bytes, mode 0600
//                           (storage/identity.h); made by init, or by the first
//                           process that takes LOCK and needs it.
//   trust.json              the devices this node trusts, mode 0600
//                           (storage/trust.h); missing: nobody is trusted.
//   peers.json              peers to dial, as `replog join` stored them, mode
//                           0600 (storage/peers.h); missing: none.
//   api.endpoint            present while a node's local API runs: two lines, the
//                           api and events endpoints (PROTOCOL.md §4).
//   api.sock, events.sock   the local API's sockets, in DATA itself unless DATA's
//                           absolute path is too long for a Unix socket path
//                           (more than 80 bytes); then in
//                           /tmp/replog-<hex of the 8-byte BLAKE2b digest of the
//                           absolute path>, made 0700; refused when it is not a
//                           directory of this user's with mode 0700 (or narrower).
//
// The lock, in three moves:
//   - A node (lock_for_node) that finds LOCK held leaves the NODE_STARTING
//     mark and waits, bounded (30 s in `replog node`), saying once whose lock
//     it waits for. A short-lived command that holds LOCK finishes and the node
//     starts; before, a node gave up at once and stayed down.
//   - A command (lock_for_command) gives way to a live mark: it takes no lock
//     and says a node is starting, so its caller waits for the node
//     (wait_for_node_api) and sends its request there. Otherwise it waits
//     briefly (5 s) for LOCK. A mark whose pid is dead or whose deadline has
//     passed is stale: ignored and removed. A LOCK held by a live node (one
//     that found it free, so put up no mark) is given way to the same way.
//   - Whoever takes LOCK removes a leftover api.endpoint: no node ran while
//     LOCK was free, so the file can only be stale (a node killed with SIGKILL).
//     node_running() therefore trusts api.endpoint when LOCK's holder is a node.
// A process that dies loses its flock at once; only the marks outlive it, and
// they carry what tells a stale one apart.
//
// Every OS access goes through the Env given at construction.
//
// Thread safety: a DataDir is immutable; its methods may be called from any
// thread when its Env allows it (Env::posix() does).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "replog/status.h"
#include "storage/env.h"

namespace replog {

// The local API's two ZeroMQ endpoints.
struct ApiEndpoints {
  std::string api;
  std::string events;
};

// Who holds LOCK, as its content says. A holder that has just taken the lock
// may not have written its note yet; then the previous holder's note is read.
struct LockHolder {
  int64_t pid = 0;   // 0 when the note is missing or unreadable
  std::string what;  // "node", "command NAME", or empty when unknown
  bool is_node() const { return what == "node"; }
  // "pid 1234, command call"; "pid ?" when unknown.
  std::string describe() const;
};

// What lock_for_command() got.
struct CommandLock {
  enum class Outcome {
    kLocked,        // `lock` is held: work on the directory directly
    kNodeStarting,  // a node is starting (pid `node_pid`): wait for it, then use its API
  };
  Outcome outcome = Outcome::kLocked;
  std::unique_ptr<FileLock> lock;
  int64_t node_pid = 0;
};

// What node_running() sees.
struct NodeProbe {
  bool running = false;              // a node holds LOCK
  std::optional<ApiEndpoints> api;   // its endpoints, once its local API runs
};

class DataDir {
 public:
  static constexpr int64_t kNodeLockTimeoutMs = 30'000;
  static constexpr int64_t kCommandLockTimeoutMs = 5'000;

  // REQUIRES: `env` outlives the DataDir.
  explicit DataDir(std::string path, Env& env = Env::posix());

  const std::string& path() const { return path_; }
  std::string data_file() const { return file("data.mdb"); }
  std::string lmdb_lock_file() const { return file("lock.mdb"); }
  std::string lock_file() const { return file("LOCK"); }
  std::string node_starting_file() const { return file("NODE_STARTING"); }
  std::string endpoint_file() const { return file("api.endpoint"); }
  std::string identity_file() const { return file("identity.key"); }
  std::string trust_file() const { return file("trust.json"); }
  std::string cluster_secret_file() const { return file("cluster.key"); }
  std::string peers_file() const { return file("peers.json"); }
  // Present in a detached restore (`replog restore --at`): the time it shows.
  std::string detached_file() const { return file("DETACHED"); }

  // The time a detached restore shows (milliseconds since the epoch), or
  // nullopt for a directory that is a member that writes. kCorruption for a
  // DETACHED file that is not one decimal number.
  Result<std::optional<int64_t>> detached_at() const;

  // Whether DATA already holds a log (data.mdb).
  bool holds_log() const;

  // --- the local API's endpoints ---------------------------------------------
  // Where a node's local API binds: "ipc://" + socket_dir_for(absolute DATA) +
  // "/api.sock" and "/events.sock". Makes the fallback directory (0700) when
  // it is used.
  Result<ApiEndpoints> api_endpoints() const;
  // The directory for the sockets of a data directory at `absolute_dir`: the
  // directory itself when "ipc://" + it + "/events.sock" fits the Unix socket
  // path limit with room to spare (absolute_dir + 20 <= 100 bytes), else
  // "/tmp/replog-" + 16 hex digits of the 8-byte BLAKE2b digest (no key) of
  // `absolute_dir`. Pure.
  static std::string socket_dir_for(const std::string& absolute_dir);
  // Writes api.endpoint (REQUIRES: the caller is a node holding LOCK), and
  // removes it when the API stops (OK when it is already gone).
  Status publish_api(const ApiEndpoints& endpoints) const;
  Status withdraw_api() const;

  // --- the lock ----------------------------------------------------------------
  // For a node: takes LOCK, waiting at most `timeout_ms` while someone else
  // holds it. When it has to wait it calls `waiting` once, before waiting, with
  // one line naming the holder and the bound, and puts the NODE_STARTING mark
  // up until it returns. kBusy, naming the holder, when the bound passes.
  Result<std::unique_ptr<FileLock>> lock_for_node(
      int64_t timeout_ms = kNodeLockTimeoutMs,
      const std::function<void(const std::string&)>& waiting = {}) const;
  // For a command called `name` (call, import, ...): kNodeStarting when a live
  // NODE_STARTING mark is up or a live node holds LOCK (pid from LOCK's note),
  // found before taking LOCK or while waiting for it;
  // else LOCK, waiting at most `timeout_ms`; kBusy naming the holder after that.
  Result<CommandLock> lock_for_command(const std::string& name,
                                       int64_t timeout_ms = kCommandLockTimeoutMs) const;

  // Whether a node holds LOCK, and its API's endpoints once api.endpoint is written.
  Result<NodeProbe> node_running() const;
  // For a command that gave way: waits at most `timeout_ms` for the starting
  // (or running) node's local API. kNotFound when no node is starting or
  // running any more (it gave up or died: the caller may try the lock again),
  // kBusy when the bound passes.
  Result<ApiEndpoints> wait_for_node_api(int64_t timeout_ms) const;

  // LOCK's note, as it reads now.
  LockHolder lock_holder() const;

 private:
  std::string file(const char* name) const { return path_ + "/" + name; }
  Result<std::string> absolute_path() const;
  Status check_socket_dir(const std::string& dir) const;
  // The pid of the node whose live mark is up; removes a stale mark.
  std::optional<int64_t> starting_node() const;
  Status put_starting_mark(int64_t deadline_ms) const;
  void remove_own_starting_mark() const;
  // What whoever takes LOCK does first (see above).
  void after_locking() const;

  std::string path_;
  Env& env_;
};

}  // namespace replog
